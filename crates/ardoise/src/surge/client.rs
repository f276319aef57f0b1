//! One virtual user's HTTP side: their cookies, and a request that
//! behaves like a well-behaved or a naive client when refused.
//!
//! Owns the retry policy and the classification of answers (served, the
//! lobby, refused, failed). Every attempt and every answer is recorded in
//! [`Stats`]. It must not decide the journey (that is [`super::vu`]).

use super::stats::{ErrorKind, Stats};
use rand::Rng;
use reqwest::header::{HeaderMap, COOKIE, SET_COOKIE};
use reqwest::Method;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Retries after the first attempt, as the naive client does.
pub const MAX_RETRIES: u32 = 5;

/// How a client reacts to a refusal or a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// Waits for `Retry-After` (or backs off exponentially) plus jitter.
    WellBehaved,
    /// Retries at once: the 2021 "bubble".
    Naive,
}

/// The cookies a browser keeps for Ardoise.
#[derive(Debug, Default, Clone)]
pub struct Jar(Vec<(String, String)>);

impl Jar {
    /// Sets a cookie.
    pub fn set(&mut self, name: &str, value: &str) {
        self.0.retain(|(n, _)| n != name);
        if !value.is_empty() {
            self.0.push((name.to_string(), value.to_string()));
        }
    }

    /// A cookie's value.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn header(&self) -> Option<String> {
        (!self.0.is_empty()).then(|| {
            self.0
                .iter()
                .map(|(n, v)| format!("{n}={v}"))
                .collect::<Vec<_>>()
                .join("; ")
        })
    }

    /// Takes in the `Set-Cookie` headers of an answer.
    fn absorb(&mut self, headers: &HeaderMap) {
        for v in headers
            .get_all(SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
        {
            let mut parts = v.split(';');
            let Some((name, value)) = parts.next().and_then(|p| p.trim().split_once('=')) else {
                continue;
            };
            let expired = parts.any(|a| a.trim().eq_ignore_ascii_case("max-age=0"));
            self.set(name, if expired { "" } else { value });
        }
    }
}

/// What a request came to.
#[derive(Debug)]
pub enum Answer {
    /// Served (any status below 500 that is not the lobby).
    Served {
        /// The status.
        status: u16,
        /// Where a redirection points.
        location: Option<String>,
        /// The body, when asked for.
        body: String,
        /// How long the served attempt took.
        latency: Duration,
    },
    /// The lobby: wait and come back.
    Lobby {
        /// The place shown.
        position: u64,
        /// The estimated wait, in milliseconds, if the server had one.
        estimate_ms: Option<u64>,
        /// When the page asks to be refreshed, in seconds.
        refresh: u64,
        /// The page, when asked for.
        body: String,
        /// Whether the node put them in the teachers' and staff's line.
        staff_lane: Option<bool>,
        /// When the request that got this answer was sent.
        sent: Instant,
    },
    /// Given up after the retries.
    Failed(ErrorKind),
}

/// A refusal given back by [`Net::fetch_or_refusal`].
#[derive(Debug)]
pub struct Refused {
    /// The busy page.
    pub body: String,
    /// When it asks to come back (its `Retry-After`).
    pub retry_after: Duration,
}

/// Before a retry: a well-behaved client waits `base` plus up to half
/// again, at random (so that refused clients do not return together); a
/// naive one retries at once.
pub async fn back_off(behaviour: Behaviour, base: Duration) {
    if behaviour == Behaviour::WellBehaved {
        let jitter = rand::thread_rng().gen_range(0.0..0.5);
        tokio::time::sleep(base.mul_f64(1.0 + jitter)).await;
    }
}

/// The shared HTTP client and where to send requests.
pub struct Net {
    client: reqwest::Client,
    base: String,
    /// Requests in flight at once (each holds a connection, an open file).
    slots: tokio::sync::Semaphore,
    /// Where everything is counted.
    pub stats: Arc<Stats>,
}

impl Net {
    /// A client for `base` (`http://127.0.0.1:8080`), with a per-request
    /// timeout and at most `max_open` requests (connections) at once.
    pub fn new(
        base: &str,
        timeout: Duration,
        max_open: usize,
        stats: Arc<Stats>,
    ) -> anyhow::Result<Net> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(timeout)
            .connect_timeout(timeout)
            .pool_max_idle_per_host(max_open)
            // Idle connections are dropped before the server's keep-alive
            // timeout (10 s by default) could close them under a request
            // being sent, as browsers do; without it, a lobby refreshing
            // after 10 s could meet a connection closed at that instant.
            .pool_idle_timeout(Duration::from_secs(5))
            .tcp_nodelay(true)
            .build()?;
        Ok(Net {
            client,
            base: base.trim_end_matches('/').to_string(),
            slots: tokio::sync::Semaphore::new(max_open),
            stats,
        })
    }

    /// One logical request, retried as `behaviour` says on refusals and
    /// failures. `form` makes it a form POST.
    pub async fn fetch(
        &self,
        jar: &mut Jar,
        behaviour: Behaviour,
        path: &str,
        form: Option<&[(&str, &str)]>,
        want_body: bool,
    ) -> Answer {
        self.attempts(jar, behaviour, path, form, want_body, None)
            .await
    }

    /// [`Net::fetch`], except that a first refusal (`503`) is given back,
    /// with its page and its `Retry-After`, rather than retried: for a
    /// person who reads the busy page and may follow a link on it.
    pub async fn fetch_or_refusal(
        &self,
        jar: &mut Jar,
        behaviour: Behaviour,
        path: &str,
    ) -> Result<Answer, Refused> {
        let mut refused = None;
        let answer = self
            .attempts(jar, behaviour, path, None, true, Some(&mut refused))
            .await;
        refused.map_or(Ok(answer), Err)
    }

    async fn attempts(
        &self,
        jar: &mut Jar,
        behaviour: Behaviour,
        path: &str,
        form: Option<&[(&str, &str)]>,
        want_body: bool,
        mut refusal: Option<&mut Option<Refused>>,
    ) -> Answer {
        self.stats.logical_request();
        let mut kind = ErrorKind::Connect;
        for attempt in 0..=MAX_RETRIES {
            let method = if form.is_some() {
                Method::POST
            } else {
                Method::GET
            };
            let mut req = self
                .client
                .request(method, format!("{}{path}", self.base))
                .header("accept", "text/html")
                .header("accept-language", "fr");
            if let Some(c) = jar.header() {
                req = req.header(COOKIE, c);
            }
            if let Some(f) = form {
                req = req.form(f);
            }
            let sent = Instant::now();
            self.stats.attempt();
            let mut wait = None;
            // Past the generator's own limit, the attempt fails rather than
            // waits: waiting here would close the loop.
            let Ok(_slot) = self.slots.try_acquire() else {
                kind = ErrorKind::GeneratorFull;
                self.stats.error(kind);
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            };
            match req.send().await {
                Err(e) => {
                    kind = if e.is_timeout() {
                        ErrorKind::Timeout
                    } else if e.is_connect() {
                        ErrorKind::Connect
                    } else {
                        ErrorKind::Io
                    };
                    self.stats.error(kind);
                }
                Ok(resp) => {
                    jar.absorb(resp.headers());
                    let status = resp.status().as_u16();
                    let header = |name: &str| {
                        resp.headers()
                            .get(name)
                            .and_then(|v| v.to_str().ok())
                            .and_then(|v| v.trim().parse::<u64>().ok())
                    };
                    let position = header("x-ardoise-queue-position");
                    // Milliseconds, else (an older node) whole seconds.
                    let estimate_ms = header("x-ardoise-estimated-wait-ms").or_else(|| {
                        header("x-ardoise-estimated-wait").map(|s| s.saturating_mul(1_000))
                    });
                    let retry_after = header("retry-after");
                    let held = held_in_lobby(resp.headers());
                    let staff_lane = resp
                        .headers()
                        .get("x-ardoise-queue-lane")
                        .and_then(|v| v.to_str().ok())
                        .map(|lane| lane == "staff");
                    let location = resp
                        .headers()
                        .get("location")
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_string);
                    let body = match resp.text().await {
                        Ok(b) => b,
                        Err(e) => {
                            kind = if e.is_timeout() {
                                ErrorKind::Timeout
                            } else {
                                ErrorKind::Io
                            };
                            self.stats.error(kind);
                            continue;
                        }
                    };
                    // A waiter's page held by the node until their turn
                    // (`Server-Timing: lobby;dur=`) was waiting in line,
                    // not being served: the latency is what came after.
                    let latency = sent.elapsed().saturating_sub(held);
                    if let Some(position) = position {
                        self.stats.lobby_answer(sent, latency);
                        return Answer::Lobby {
                            position,
                            estimate_ms,
                            refresh: retry_after.unwrap_or(5),
                            body: if want_body { body } else { String::new() },
                            staff_lane,
                            sent,
                        };
                    }
                    if let (503, Some(refusal)) = (status, refusal.as_deref_mut()) {
                        self.stats.refused(sent, latency);
                        *refusal = Some(Refused {
                            body,
                            retry_after: Duration::from_secs(retry_after.unwrap_or(1)),
                        });
                        return Answer::Failed(ErrorKind::Refused503);
                    } else if status == 503 {
                        kind = ErrorKind::Refused503;
                        self.stats.refused(sent, latency);
                        wait = Some(Duration::from_secs(retry_after.unwrap_or(1)));
                    } else if status >= 500 {
                        kind = ErrorKind::Server5xx;
                        self.stats.error(kind);
                    } else {
                        self.stats.served(sent, latency, form.is_some());
                        return Answer::Served {
                            status,
                            location,
                            body: if want_body { body } else { String::new() },
                            latency,
                        };
                    }
                }
            }
            if attempt == MAX_RETRIES {
                break;
            }
            back_off(
                behaviour,
                wait.unwrap_or(Duration::from_millis(500 << attempt)),
            )
            .await;
        }
        Answer::Failed(kind)
    }
}

/// How long the node held the request for its turn in line, from its
/// `Server-Timing: lobby;dur=<ms>` entry.
fn held_in_lobby(headers: &HeaderMap) -> Duration {
    headers
        .get_all("server-timing")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|entry| entry.trim().strip_prefix("lobby;dur="))
        .filter_map(|ms| ms.trim().parse::<f64>().ok())
        .find_map(|ms| Duration::try_from_secs_f64(ms / 1_000.0).ok())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn the_time_held_in_line_is_read_from_server_timing() {
        let mut h = HeaderMap::new();
        assert_eq!(held_in_lobby(&h), Duration::ZERO);
        h.append(
            "server-timing",
            HeaderValue::from_static("db;dur=3, lobby;dur=1250.5"),
        );
        assert_eq!(held_in_lobby(&h), Duration::from_micros(1_250_500));
        let mut bad = HeaderMap::new();
        bad.append("server-timing", HeaderValue::from_static("lobby;dur=-5"));
        assert_eq!(held_in_lobby(&bad), Duration::ZERO);
    }

    #[test]
    fn the_jar_keeps_set_cookies_and_forgets_expired_ones() {
        let mut jar = Jar::default();
        let mut h = HeaderMap::new();
        h.append(
            SET_COOKIE,
            HeaderValue::from_static("ardoise_pass=abc; HttpOnly; Path=/"),
        );
        h.append(
            SET_COOKIE,
            HeaderValue::from_static("ardoise_ticket=t1; Max-Age=7200"),
        );
        jar.absorb(&h);
        assert_eq!(jar.get("ardoise_pass"), Some("abc"));
        assert_eq!(
            jar.header().as_deref(),
            Some("ardoise_pass=abc; ardoise_ticket=t1")
        );
        let mut h = HeaderMap::new();
        h.append(
            SET_COOKIE,
            HeaderValue::from_static("ardoise_ticket=; Max-Age=0; Path=/"),
        );
        jar.absorb(&h);
        assert_eq!(jar.get("ardoise_ticket"), None);
    }
}
