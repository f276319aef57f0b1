//! A virtual user's journey at 9:15: resume a remembered session (or sign
//! in with a password), open the home page (waiting in the lobby as a
//! browser would, following its refresh), think, then open "À faire".
//!
//! Owns the journey and what it records about it. It must not retry by
//! itself (that is [`super::client`]).

use super::client::{back_off, Answer, Behaviour, Jar, Net};
use super::stats::{estimate_close, ErrorKind, QueueRecord};
use rand::Rng;
use std::time::{Duration, Instant};

/// An account of `demo-accounts.csv`.
#[derive(Debug, Clone)]
pub struct Account {
    /// Login.
    pub login: String,
    /// Password.
    pub password: String,
    /// Whether they queue in the staff lane (teacher, staff, admin).
    pub staff: bool,
}

/// Who arrives, and how they behave.
#[derive(Debug, Clone)]
pub struct User {
    /// Their account.
    pub account: Account,
    /// A remembered session token, or `None` to sign in with the password.
    pub session: Option<String>,
    /// On refusals.
    pub behaviour: Behaviour,
    /// Mean think time between pages.
    pub think: Duration,
    /// Give up waiting in the lobby at this time.
    pub deadline: Instant,
    /// This journey's number in the run.
    pub id: u64,
}

/// The hidden anti-CSRF field of the sign-in form.
fn csrf_field(html: &str) -> Option<&str> {
    let marker = "name=\"csrf\" value=\"";
    let start = html.find(marker)? + marker.len();
    let end = html[start..].find('"')? + start;
    Some(&html[start..end])
}

/// What a visit was served.
struct Page {
    status: u16,
    location: Option<String>,
    latency: Duration,
    /// The body, when asked for.
    body: String,
}

/// Opens `path`, waiting in the lobby while shown it.
async fn visit(
    net: &Net,
    jar: &mut Jar,
    user: &User,
    path: &str,
    want_body: bool,
) -> Result<Page, ErrorKind> {
    // When they asked, when they saw the lobby, the place and estimate
    // shown, and their line.
    let mut queued: Option<(Instant, Instant, u64, Option<f64>, bool)> = None;
    // Every estimate shown, and when: each is judged against the wait
    // left from its page.
    let mut shown: Vec<(Instant, f64)> = Vec::new();
    let mut refresh = 0;
    loop {
        match net.fetch(jar, user.behaviour, path, None, want_body).await {
            Answer::Served {
                status,
                location,
                latency,
                body,
            } => {
                if let Some((since, first_shown, position, estimate, staff)) = queued {
                    net.stats
                        .in_lobby
                        .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
                    let now = Instant::now();
                    let pages_close = shown
                        .iter()
                        .filter(|(at, e)| estimate_close(*e, (now - *at).as_secs_f64()))
                        .count();
                    net.stats.queued(QueueRecord {
                        staff,
                        queued_at: net.stats.secs(since),
                        shown_at: net.stats.secs(first_shown),
                        admitted_at: net.stats.secs(now),
                        estimate,
                        position,
                        pages: u32::try_from(shown.len()).unwrap_or(u32::MAX),
                        pages_close: u32::try_from(pages_close).unwrap_or(u32::MAX),
                        refresh,
                        journey: user.id,
                        page: match path {
                            "/login" => "login",
                            "/home" => "home",
                            _ => "other",
                        },
                    });
                }
                return Ok(Page {
                    status,
                    location,
                    latency,
                    body,
                });
            }
            Answer::Lobby {
                position,
                estimate_ms,
                refresh: next,
                staff_lane,
                sent,
                ..
            } => {
                let estimate = estimate_ms.map(|ms| ms as f64 / 1_000.0);
                if let Some(e) = estimate {
                    shown.push((Instant::now(), e));
                }
                if queued.is_none() {
                    net.stats
                        .in_lobby
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    // The line the node says, else the one the account's
                    // roles suggest.
                    let staff = staff_lane.unwrap_or(user.account.staff);
                    queued = Some((sent, Instant::now(), position, estimate, staff));
                }
                refresh = next;
                let wake = Instant::now() + Duration::from_secs(next.max(1));
                if wake > user.deadline {
                    net.stats
                        .in_lobby
                        .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
                    return Err(ErrorKind::LobbyAbandoned);
                }
                tokio::time::sleep_until(wake.into()).await;
            }
            Answer::Failed(kind) => {
                if queued.is_some() {
                    net.stats
                        .in_lobby
                        .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
                }
                return Err(kind);
            }
        }
    }
}

async fn think(user: &User) {
    // Exponential think time around the mean, capped at 5 means.
    let u: f64 = rand::thread_rng().gen_range(f64::EPSILON..1.0);
    let secs = (-u.ln()).min(5.0) * user.think.as_secs_f64();
    tokio::time::sleep(Duration::from_secs_f64(secs)).await;
}

/// The sign-in form. While others wait in line, pupils and parents wait
/// in the lobby for it; teachers and staff sign in with the lobby's form
/// for them (or follow its link to their own line), as the page tells
/// them to, and when the node is too busy to show the form they follow
/// the busy page's link to theirs.
async fn sign_in_form(net: &Net, jar: &mut Jar, user: &User) -> Result<String, ErrorKind> {
    if !user.account.staff {
        let page = visit(net, jar, user, "/login", true).await?;
        return match page.status {
            200 => Ok(page.body),
            _ => Err(ErrorKind::Unexpected),
        };
    }
    const STAFF_FORM: &str = "/login?lane=staff";
    let mut path = "/login";
    for _ in 0..2 {
        let answer = if path == STAFF_FORM {
            net.fetch(jar, user.behaviour, path, None, true).await
        } else {
            match net.fetch_or_refusal(jar, user.behaviour, path).await {
                Ok(answer) => answer,
                Err(busy) if busy.body.contains(STAFF_FORM) => {
                    path = STAFF_FORM;
                    continue;
                }
                // A busy page without the link (an older node): come back
                // when it says, as `fetch` does.
                Err(busy) => {
                    back_off(user.behaviour, busy.retry_after).await;
                    net.fetch(jar, user.behaviour, path, None, true).await
                }
            }
        };
        match answer {
            Answer::Served {
                status: 200, body, ..
            } => return Ok(body),
            Answer::Lobby { body, .. } if csrf_field(&body).is_some() => return Ok(body),
            Answer::Lobby { .. } => path = STAFF_FORM,
            Answer::Failed(kind) => return Err(kind),
            Answer::Served { .. } => return Err(ErrorKind::Unexpected),
        }
    }
    Err(ErrorKind::Unexpected)
}

/// Signs in with the password: the form, then its answer. A pupil whose
/// answer is the lobby (others came first) waits for their turn and fills
/// the form again.
async fn sign_in(net: &Net, jar: &mut Jar, user: &User) -> Result<(), ErrorKind> {
    for _ in 0..3 {
        let page = sign_in_form(net, jar, user).await?;
        let csrf = csrf_field(&page).ok_or(ErrorKind::Unexpected)?.to_string();
        let form = [
            ("login", user.account.login.as_str()),
            ("password", user.account.password.as_str()),
            ("csrf", csrf.as_str()),
            ("remember", "1"),
        ];
        match net
            .fetch(jar, user.behaviour, "/login", Some(&form), false)
            .await
        {
            Answer::Served {
                status: 303,
                latency,
                ..
            } => {
                net.stats.fresh_sign_in(latency);
                return Ok(());
            }
            Answer::Lobby { .. } => continue,
            Answer::Failed(kind) => return Err(kind),
            Answer::Served { .. } => return Err(ErrorKind::Unexpected),
        }
    }
    Err(ErrorKind::Unexpected)
}

/// The whole journey of one user who arrived at `arrived`.
pub async fn journey(net: &Net, user: User, arrived: Instant) -> Result<(), ErrorKind> {
    let mut jar = Jar::default();
    let remembered = user.session.is_some();
    if let Some(token) = &user.session {
        jar.set("ardoise_session", token);
    } else {
        let started = Instant::now();
        let signed_in = sign_in(net, &mut jar, &user).await;
        net.stats.sign_in_whole(
            started,
            signed_in.is_ok().then(|| started.elapsed()),
            user.account.staff,
        );
        signed_in?;
    }
    let home = visit(net, &mut jar, &user, "/home", false).await?;
    if home.status != 200 {
        return Err(ErrorKind::Unexpected);
    }
    net.stats.first_home(arrived, user.account.staff);
    if remembered {
        net.stats.resume(home.latency);
    }
    think(&user).await;
    let mut page = visit(net, &mut jar, &user, "/todo", false).await?;
    // A parent's "À faire" leads to their child's; a teacher's to home.
    for _ in 0..2 {
        match (page.status, page.location.take()) {
            (303, Some(next)) if next.starts_with('/') => {
                page = visit(net, &mut jar, &user, &next, false).await?;
            }
            _ => break,
        }
    }
    if page.status == 200 {
        Ok(())
    } else {
        Err(ErrorKind::Unexpected)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_csrf_field_is_read_from_the_sign_in_form() {
        let html =
            r#"<form><input type="hidden" name="csrf" value="abc-123"><input name="next"></form>"#;
        assert_eq!(csrf_field(html), Some("abc-123"));
        assert_eq!(csrf_field("<form></form>"), None);
    }
}
