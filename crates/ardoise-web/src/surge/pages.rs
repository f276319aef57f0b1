//! What the surge layer answers instead of the page asked for: the lobby
//! (a tiny page that refreshes itself, or `503` JSON with the position for
//! API clients) and the "busy" refusal.
//!
//! The busy page is rendered once per language when the node starts and
//! then only copied, split around its refresh delay: a refusal must cost
//! far less than the request it refuses. Both pages carry the security
//! headers themselves, since the surge layer answers before the other
//! layers run.

use super::admission::{append_cookie, wants_json};
use super::{conn, BusyPage, Surge};
use crate::extract::request_lang;
use crate::i18n::{Catalogs, Lang, Tr};
use crate::state::AppState;
use ardoise_admission::{retry_after_secs, Lane, QueueTicket};
use askama::Template;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::CookieJar;
use rand::Rng;
use std::sync::Arc;
use std::time::Duration;

/// Where a waiter stands, to show them.
#[derive(Debug, Clone)]
pub(crate) struct Waiting {
    pub lane: Lane,
    pub position: u64,
    pub estimate: Option<Duration>,
    /// When the page should refresh itself (jittered, whole seconds).
    pub refresh: Duration,
    /// The signed ticket (cookie value, and in JSON for cookie-less clients).
    pub ticket: String,
    /// Whether the ticket was just issued (set its cookie).
    pub new_ticket: bool,
    /// The ticket, when the turn is expected soon enough for the refresh to
    /// be held until it comes.
    pub near: Option<QueueTicket>,
}

#[derive(Template)]
#[template(path = "surge/lobby.html")]
struct LobbyPage<'a> {
    t: &'a Tr,
    position: &'a str,
    wait: &'a str,
    refresh_secs: &'a str,
    refresh_text: String,
    staff: bool,
    /// The lobby of the sign-in page: it carries the teachers' and staff's
    /// sign-in form.
    signin: bool,
    csrf: &'a str,
    next: &'a str,
    other_lang: &'a str,
    other_lang_name: &'a str,
}

/// What fills a hole of a pre-rendered page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    Position,
    Wait,
    Refresh,
    Next,
    Csrf,
}

impl Slot {
    const ALL: [Slot; 5] = [
        Slot::Position,
        Slot::Wait,
        Slot::Refresh,
        Slot::Next,
        Slot::Csrf,
    ];

    /// The mark rendered in its place: letters only, so escaping leaves it
    /// alone.
    fn mark(self) -> &'static str {
        match self {
            Slot::Position => "SURGESLOTPOSITION",
            Slot::Wait => "SURGESLOTWAIT",
            Slot::Refresh => "SURGESLOTREFRESH",
            Slot::Next => "SURGESLOTNEXT",
            Slot::Csrf => "SURGESLOTCSRF",
        }
    }
}

/// A page rendered once, with holes: text, then what fills the next hole.
#[derive(Debug, Clone)]
struct Holes(Vec<(String, Option<Slot>)>);

impl Holes {
    fn parse(mut html: &str) -> Holes {
        let mut parts = Vec::new();
        loop {
            let next = Slot::ALL
                .iter()
                .filter_map(|slot| html.find(slot.mark()).map(|at| (at, *slot)))
                .min_by_key(|(at, _)| *at);
            match next {
                Some((at, slot)) => {
                    parts.push((html[..at].to_string(), Some(slot)));
                    html = &html[at + slot.mark().len()..];
                }
                None => {
                    parts.push((html.to_string(), None));
                    return Holes(parts);
                }
            }
        }
    }

    fn fill(&self, fill: impl Fn(Slot) -> String) -> String {
        let mut out = String::with_capacity(4 * 1024);
        for (text, slot) in &self.0 {
            out.push_str(text);
            if let Some(slot) = slot {
                out.push_str(&fill(*slot));
            }
        }
        out
    }
}

/// The wait sentences of one language, escaped for HTML.
#[derive(Debug, Clone)]
struct WaitTexts {
    unknown: String,
    soon: String,
    /// Around the number of minutes.
    minutes: (String, String),
}

/// The lobby, rendered once per language and kind when the node starts:
/// a waiter's page is then a few copies, as cheap as a refusal.
#[derive(Debug, Clone)]
pub(crate) struct LobbyPages {
    /// Per language (French, English): the general lane's, the staff
    /// lane's, and the sign-in page's (the general lane's, with the
    /// teachers' and staff's sign-in form).
    pages: [Holes; 6],
    waits: [WaitTexts; 2],
}

fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Renders the lobby of each language and lane.
pub(crate) fn lobby_pages(catalogs: &Arc<Catalogs>) -> Result<LobbyPages, String> {
    let mut pages = Vec::new();
    let mut waits = Vec::new();
    for lang in [Lang::Fr, Lang::En] {
        let t = catalogs.tr(lang);
        let (other_lang, other_lang_name) = match lang {
            Lang::Fr => ("en", "English"),
            Lang::En => ("fr", "Français"),
        };
        for (staff, signin) in [(false, false), (true, false), (false, true)] {
            let html = LobbyPage {
                t: &t,
                position: Slot::Position.mark(),
                wait: Slot::Wait.mark(),
                refresh_secs: Slot::Refresh.mark(),
                refresh_text: t.with("lobby-refresh", &[("seconds", Slot::Refresh.mark())]),
                staff,
                signin,
                csrf: Slot::Csrf.mark(),
                next: Slot::Next.mark(),
                other_lang,
                other_lang_name,
            }
            .render()
            .map_err(|e| e.to_string())?;
            pages.push(Holes::parse(&html));
        }
        let minutes = escape_html(&t.with("lobby-wait-minutes", &[("minutes", "SURGEMINUTES")]));
        let (before, after) = minutes
            .split_once("SURGEMINUTES")
            .ok_or("lobby-wait-minutes without its number")?;
        waits.push(WaitTexts {
            unknown: escape_html(&t.get("lobby-wait-unknown")),
            soon: escape_html(&t.get("lobby-wait-soon")),
            minutes: (before.to_string(), after.to_string()),
        });
    }
    let pages: [Holes; 6] = pages
        .try_into()
        .map_err(|_| "six lobby pages expected".to_string())?;
    let waits: [WaitTexts; 2] = waits
        .try_into()
        .map_err(|_| "two wait texts expected".to_string())?;
    Ok(LobbyPages { pages, waits })
}

impl LobbyPages {
    /// The page of `waiting`; with `csrf`, the sign-in page's lobby and
    /// its teachers' form.
    fn render(
        &self,
        lang: Lang,
        waiting: &Waiting,
        refresh_secs: u32,
        next: &str,
        csrf: Option<&str>,
    ) -> String {
        let kind = match (waiting.lane, csrf) {
            (Lane::Staff, _) => 1,
            (Lane::General, None) => 0,
            (Lane::General, Some(_)) => 2,
        };
        let page = &self.pages[lang_index(lang) * 3 + kind];
        let w = &self.waits[lang_index(lang)];
        page.fill(|slot| match slot {
            Slot::Position => waiting.position.to_string(),
            Slot::Refresh => refresh_secs.to_string(),
            Slot::Next => next.to_string(),
            Slot::Csrf => csrf.unwrap_or_default().to_string(),
            Slot::Wait => match waiting.estimate {
                None => w.unknown.clone(),
                Some(d) if d < Duration::from_secs(60) => w.soon.clone(),
                Some(d) => format!("{}{}{}", w.minutes.0, d.as_secs().div_ceil(60), w.minutes.1),
            },
        })
    }
}

#[derive(Template)]
#[template(path = "surge/busy.html")]
struct BusyTemplate<'a> {
    t: &'a Tr,
    refresh: Option<&'a str>,
    /// A link to the teachers' and staff's sign-in form, which is not shed.
    staff_link: bool,
}

const SECONDS_MARK: &str = "SURGESECONDSMARK";

/// Renders the busy page of each language, French then English.
pub(crate) fn busy_pages(catalogs: &Arc<Catalogs>) -> Result<[BusyPage; 2], String> {
    let page = |lang: Lang| -> Result<BusyPage, String> {
        let t = catalogs.tr(lang);
        let with_refresh = |staff_link: bool| -> Result<(String, String), String> {
            let page = BusyTemplate {
                t: &t,
                refresh: Some(SECONDS_MARK),
                staff_link,
            }
            .render()
            .map_err(|e| e.to_string())?;
            let (before, after) = page
                .split_once(SECONDS_MARK)
                .ok_or("busy page without its refresh mark")?;
            Ok((before.to_string(), after.to_string()))
        };
        let plain = BusyTemplate {
            t: &t,
            refresh: None,
            staff_link: false,
        }
        .render()
        .map_err(|e| e.to_string())?;
        Ok(BusyPage {
            refresh: with_refresh(false)?,
            sign_in_refresh: with_refresh(true)?,
            plain,
            message: t.get("busy-message"),
        })
    };
    Ok([page(Lang::Fr)?, page(Lang::En)?])
}

fn lang_index(lang: Lang) -> usize {
    match lang {
        Lang::Fr => 0,
        Lang::En => 1,
    }
}

/// Headers every surge answer carries (the security-headers layer has not
/// run): never stored, never framed, no script.
fn protect(h: &mut HeaderMap) {
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
}

fn with_retry_after(mut resp: Response, secs: u32) -> Response {
    let h = resp.headers_mut();
    protect(h);
    h.insert(header::RETRY_AFTER, HeaderValue::from(secs));
    resp
}

/// What the "busy" answer needs to know of a request, taken before the
/// request goes to its route (which consumes it).
pub(crate) struct BusyFor {
    pace: Option<conn::Pace>,
    lang: Lang,
    json: bool,
    refresh: bool,
    /// The sign-in form was asked for (not the teachers' and staff's).
    sign_in_form: bool,
}

impl BusyFor {
    pub(crate) fn of(req: &Request) -> BusyFor {
        let refresh = matches!(*req.method(), Method::GET | Method::HEAD);
        BusyFor {
            pace: req.extensions().get::<conn::Pace>().cloned(),
            lang: request_lang(req.headers()),
            json: wants_json(req.uri().path(), req.headers()),
            refresh,
            sign_in_form: refresh
                && super::admission::login_form(req.uri())
                    == Some(super::admission::LoginForm::General),
        }
    }
}

/// `503` with a jittered `Retry-After`: the request was not handled.
pub(crate) fn busy(surge: &Surge, req: &Request) -> Response {
    busy_for(surge, &BusyFor::of(req))
}

/// [`busy`], for a request already gone to its route.
pub(crate) fn busy_for(surge: &Surge, req: &BusyFor) -> Response {
    let secs = retry_after_secs(surge.config.retry_after_secs, rand::thread_rng().gen());
    if let Some(pace) = &req.pace {
        pace.hold_next(Duration::from_secs(u64::from(secs)));
    }
    let page = &surge.busy[lang_index(req.lang)];
    let resp = if req.json {
        let body = serde_json::json!({
            "error": "overloaded",
            "message": page.message,
            "retry_after_secs": secs,
        });
        (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response()
    } else {
        let html = if req.refresh {
            let (before, after) = if req.sign_in_form {
                &page.sign_in_refresh
            } else {
                &page.refresh
            };
            let mut s = String::with_capacity(before.len() + after.len() + 4);
            s.push_str(before);
            s.push_str(&secs.to_string());
            s.push_str(after);
            s
        } else {
            page.plain.clone()
        };
        let mut resp = (StatusCode::SERVICE_UNAVAILABLE, Body::from(html)).into_response();
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        resp
    };
    with_retry_after(resp, secs)
}

/// Keeps a path to come back to only if it is plainly local.
fn local_path(path: &str) -> &str {
    let plain = path.starts_with('/')
        && !path.starts_with("//")
        && path
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'-' | b'_' | b'.'));
    if plain {
        path
    } else {
        "/home"
    }
}

/// A duration in whole seconds, to the nearest.
fn nearest_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_millis() >= 500)
}

/// The lobby for a request known by its headers and path: a tiny page
/// that refreshes itself, or `503` JSON with the position for API clients.
/// Both keep (or give) the ticket.
pub(crate) fn lobby_for(
    state: &AppState,
    headers: &HeaderMap,
    path: &str,
    waiting: &Waiting,
) -> Response {
    let surge = &state.surge;
    let lang = request_lang(headers);
    // Whole seconds, already spread (`Lobby::plan`).
    let secs = u32::try_from(waiting.refresh.as_secs())
        .unwrap_or(u32::MAX)
        .max(1);
    let resp = if wants_json(path, headers) {
        let body = serde_json::json!({
            "error": "queued",
            "message": state.catalogs.tr(lang).get("lobby-heading"),
            "position": waiting.position,
            "lane": waiting.lane.as_str(),
            "estimated_wait_secs": waiting.estimate.map(nearest_secs),
            "retry_after_secs": secs,
            "ticket": waiting.ticket,
        });
        (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response()
    } else {
        // The sign-in page's lobby carries the teachers' and staff's form
        // (their password is checked at once): one visit less for them.
        let csrf = (path == "/login" && waiting.lane == Lane::General).then(|| {
            crate::routes::signin::pre_login_csrf(
                &CookieJar::from_headers(headers),
                state.config.secure_cookies,
            )
        });
        let html = surge.lobby_pages.render(
            lang,
            waiting,
            secs,
            local_path(path),
            csrf.as_ref().map(|(token, _)| token.as_str()),
        );
        let mut resp = (StatusCode::OK, Body::from(html)).into_response();
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        if let Some((_, Some(cookie))) = csrf {
            append_cookie(resp.headers_mut(), cookie);
        }
        resp
    };
    let mut resp = with_retry_after(resp, secs);
    let h = resp.headers_mut();
    h.insert(
        "x-ardoise-queue-position",
        HeaderValue::from(waiting.position),
    );
    h.insert(
        "x-ardoise-queue-lane",
        HeaderValue::from_static(waiting.lane.as_str()),
    );
    // For scripts and the load generator: the figures the page shows.
    if let Some(wait) = waiting.estimate {
        h.insert(
            "x-ardoise-estimated-wait",
            HeaderValue::from(nearest_secs(wait)),
        );
        h.insert(
            "x-ardoise-estimated-wait-ms",
            HeaderValue::from(u64::try_from(wait.as_millis()).unwrap_or(u64::MAX)),
        );
    }
    if waiting.new_ticket {
        append_cookie(h, surge.ticket_cookie(&waiting.ticket));
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_busy_page_is_split_around_its_refresh_delay_in_both_languages() {
        let catalogs = Catalogs::load().unwrap_or_else(|e| panic!("{e}"));
        let pages = busy_pages(&catalogs).unwrap_or_else(|e| panic!("{e}"));
        for page in &pages {
            assert!(page.refresh.0.ends_with("content=\""), "{}", page.refresh.0);
            assert!(!page.plain.contains("refresh"));
            assert!(page.plain.len() < 2_000);
            // Only the sign-in form's shows teachers their own way in.
            assert!(page
                .sign_in_refresh
                .1
                .contains("href=\"/login?lane=staff\""));
            assert!(!page.refresh.1.contains("lane=staff"));
            assert!(!page.plain.contains("lane=staff"));
        }
        assert!(pages[0].plain.contains("lang=\"fr\""));
        assert!(pages[1].plain.contains("lang=\"en\""));
    }

    #[test]
    fn the_pre_rendered_lobby_fills_every_hole_and_stays_small() {
        let catalogs = Catalogs::load().unwrap_or_else(|e| panic!("{e}"));
        let pages = lobby_pages(&catalogs).unwrap_or_else(|e| panic!("{e}"));
        let waiting = |estimate: Option<u64>, lane| Waiting {
            lane,
            position: 12_345,
            estimate: estimate.map(Duration::from_secs),
            refresh: Duration::from_secs(30),
            ticket: String::new(),
            new_ticket: false,
            near: None,
        };
        let fr = pages.render(
            Lang::Fr,
            &waiting(Some(150), Lane::General),
            37,
            "/todo",
            None,
        );
        assert!(!fr.contains("SURGESLOT"), "{fr}");
        assert!(fr.contains("id=\"position\">12345<"));
        assert!(fr.contains("content=\"37\""));
        assert!(fr.contains("environ 3 min"));
        assert!(fr.contains("dans 37 s"));
        assert!(fr.contains("/login?lane=staff&amp;next=/todo"));
        assert!(!fr.contains("type=\"password\""), "signed in already");
        assert!(fr.len() < 5 * 1024, "{} bytes", fr.len());
        let en = pages.render(Lang::En, &waiting(None, Lane::Staff), 5, "/home", None);
        assert!(en.contains("cannot estimate the wait yet"));
        assert!(en.contains("reserved for teachers"));
        assert!(
            !en.contains("/login?lane=staff"),
            "staff are already signed in"
        );
        let soon = pages.render(
            Lang::En,
            &waiting(Some(20), Lane::General),
            5,
            "/home",
            None,
        );
        assert!(soon.contains("less than a minute"));
        // The sign-in page's lobby: the teachers' form, with its token.
        let signin = pages.render(
            Lang::Fr,
            &waiting(Some(150), Lane::General),
            37,
            "/login",
            Some("tok"),
        );
        assert!(!signin.contains("SURGESLOT"), "{signin}");
        assert!(signin.contains("action=\"/login\""));
        assert!(signin.contains("name=\"csrf\" value=\"tok\""));
        assert!(signin.contains("type=\"password\""));
        assert!(signin.contains("Enseignants et personnels"));
        assert!(!signin.contains("<script"));
        assert!(signin.len() < 5 * 1024, "{} bytes", signin.len());
    }

    #[test]
    fn only_plain_local_paths_are_kept_to_come_back_to() {
        assert_eq!(local_path("/classes/3/diary"), "/classes/3/diary");
        assert_eq!(local_path("//evil.example"), "/home");
        assert_eq!(local_path("/a\"b"), "/home");
    }
}
