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
use super::{BusyPage, Surge};
use crate::extract::request_lang;
use crate::i18n::{Catalogs, Lang, Tr};
use crate::state::AppState;
use ardoise_admission::{retry_after_secs, Lane};
use askama::Template;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use rand::Rng;
use std::sync::Arc;
use std::time::Duration;

/// Where a waiter stands, to show them.
#[derive(Debug, Clone)]
pub(crate) struct Waiting {
    pub lane: Lane,
    pub position: u64,
    pub estimate: Option<Duration>,
    /// When the page should refresh itself (before jitter).
    pub refresh: Duration,
    /// The signed ticket (cookie value, and in JSON for cookie-less clients).
    pub ticket: String,
    /// Whether the ticket was just issued (set its cookie).
    pub new_ticket: bool,
}

#[derive(Template)]
#[template(path = "surge/lobby.html")]
struct LobbyPage<'a> {
    t: &'a Tr,
    position: u64,
    wait: String,
    refresh_secs: u32,
    refresh_text: String,
    staff: bool,
    next: &'a str,
    other_lang: &'a str,
    other_lang_name: &'a str,
}

#[derive(Template)]
#[template(path = "surge/busy.html")]
struct BusyTemplate<'a> {
    t: &'a Tr,
    refresh: Option<&'a str>,
}

const SECONDS_MARK: &str = "SURGESECONDSMARK";

/// Renders the busy page of each language, French then English.
pub(crate) fn busy_pages(catalogs: &Arc<Catalogs>) -> Result<[BusyPage; 2], String> {
    let page = |lang: Lang| -> Result<BusyPage, String> {
        let t = catalogs.tr(lang);
        let with_refresh = BusyTemplate {
            t: &t,
            refresh: Some(SECONDS_MARK),
        }
        .render()
        .map_err(|e| e.to_string())?;
        let (before, after) = with_refresh
            .split_once(SECONDS_MARK)
            .ok_or("busy page without its refresh mark")?;
        let plain = BusyTemplate {
            t: &t,
            refresh: None,
        }
        .render()
        .map_err(|e| e.to_string())?;
        Ok(BusyPage {
            refresh: (before.to_string(), after.to_string()),
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

fn jittered(base: Duration) -> u32 {
    let secs = u32::try_from(base.as_secs()).unwrap_or(u32::MAX);
    retry_after_secs(secs, rand::thread_rng().gen())
}

fn with_retry_after(mut resp: Response, secs: u32) -> Response {
    let h = resp.headers_mut();
    protect(h);
    h.insert(header::RETRY_AFTER, HeaderValue::from(secs));
    resp
}

/// `503` with a jittered `Retry-After`: the request was not handled.
pub(crate) fn busy(surge: &Surge, req: &Request) -> Response {
    let secs = retry_after_secs(surge.config.retry_after_secs, rand::thread_rng().gen());
    let lang = request_lang(req.headers());
    let page = &surge.busy[lang_index(lang)];
    let resp = if wants_json(req.uri().path(), req.headers()) {
        let body = serde_json::json!({
            "error": "overloaded",
            "message": page.message,
            "retry_after_secs": secs,
        });
        (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response()
    } else {
        let html = if matches!(*req.method(), Method::GET | Method::HEAD) {
            let (before, after) = &page.refresh;
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

/// The wait as people read it.
fn wait_text(t: &Tr, estimate: Option<Duration>) -> String {
    match estimate {
        None => t.get("lobby-wait-unknown"),
        Some(d) if d < Duration::from_secs(60) => t.get("lobby-wait-soon"),
        Some(d) => {
            let minutes = d.as_secs().div_ceil(60).to_string();
            t.with("lobby-wait-minutes", &[("minutes", &minutes)])
        }
    }
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

/// The lobby: a tiny page that refreshes itself, or `503` JSON with the
/// position for API clients. Both keep (or give) the ticket.
pub(crate) fn lobby(state: &AppState, req: &Request, waiting: &Waiting) -> Response {
    let surge = &state.surge;
    let lang = request_lang(req.headers());
    let t = state.catalogs.tr(lang);
    let secs = jittered(waiting.refresh);
    let resp = if wants_json(req.uri().path(), req.headers()) {
        let body = serde_json::json!({
            "error": "queued",
            "message": t.get("lobby-heading"),
            "position": waiting.position,
            "lane": waiting.lane.as_str(),
            "estimated_wait_secs": waiting.estimate.map(|d| d.as_secs()),
            "retry_after_secs": secs,
            "ticket": waiting.ticket,
        });
        (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response()
    } else {
        let (other_lang, other_lang_name) = match lang {
            Lang::Fr => ("en", "English"),
            Lang::En => ("fr", "Français"),
        };
        let page = LobbyPage {
            t: &t,
            position: waiting.position,
            wait: wait_text(&t, waiting.estimate),
            refresh_secs: secs,
            refresh_text: t.with("lobby-refresh", &[("seconds", &secs.to_string())]),
            staff: waiting.lane == Lane::Staff,
            next: local_path(req.uri().path()),
            other_lang,
            other_lang_name,
        };
        match page.render() {
            Ok(html) => {
                let mut resp = (StatusCode::OK, Body::from(html)).into_response();
                resp.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/html; charset=utf-8"),
                );
                resp
            }
            Err(e) => {
                tracing::error!(error = %e, "lobby rendering failed");
                return busy(surge, req);
            }
        }
    };
    let mut resp = with_retry_after(resp, secs);
    let h = resp.headers_mut();
    h.insert(
        "x-ardoise-queue-position",
        HeaderValue::from(waiting.position),
    );
    // For scripts and the load generator: the figures the page shows.
    if let Some(wait) = waiting.estimate {
        h.insert(
            "x-ardoise-estimated-wait",
            HeaderValue::from(wait.as_secs()),
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
        }
        assert!(pages[0].plain.contains("lang=\"fr\""));
        assert!(pages[1].plain.contains("lang=\"en\""));
    }

    #[test]
    fn only_plain_local_paths_are_kept_to_come_back_to() {
        assert_eq!(local_path("/classes/3/diary"), "/classes/3/diary");
        assert_eq!(local_path("//evil.example"), "/home");
        assert_eq!(local_path("/a\"b"), "/home");
    }
}
