//! Cross-cutting middleware: localized error bodies, security headers,
//! and the cross-origin check on every state-changing request.

use crate::error::{code_for_status, ApiError, ErrorMark};
use crate::extract::request_lang;
use crate::i18n::Tr;
use crate::pages::render;
use crate::state::AppState;
use askama::Template;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    t: Tr,
    title: String,
    message: String,
    status: u16,
    signed_in: bool,
}

/// Middleware: gives every error response a body in the caller's language
/// (JSON under `/api`, HTML elsewhere); sends people who are not signed in
/// to the sign-in page.
pub async fn render_errors(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let is_api = req.uri().path().starts_with("/api/");
    let is_get = req.method() == Method::GET;
    // What an error page needs is kept aside cheaply (reference-counted
    // copies) and read only if the answer is an error: most are not.
    let uri = req.uri().clone();
    let mut lang_headers = axum::http::HeaderMap::new();
    for name in [header::COOKIE, header::ACCEPT_LANGUAGE] {
        for v in req.headers().get_all(&name) {
            lang_headers.append(name.clone(), v.clone());
        }
    }
    let resp = next.run(req).await;
    let status = resp.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return resp;
    }
    let lang = request_lang(&lang_headers);
    let path_and_query = uri
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();
    let signed_in = lang_headers
        .get_all(header::COOKIE)
        .iter()
        .any(|c| c.to_str().unwrap_or("").contains("ardoise_session="));
    let mark = resp.extensions().get::<ErrorMark>().cloned();
    let already_rendered = mark.is_none()
        && resp
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.starts_with("application/json") || ct.starts_with("text/html"));
    if already_rendered {
        return resp;
    }
    let mark = mark.unwrap_or(ErrorMark {
        code: code_for_status(status),
        until: None,
    });
    if !is_api && status == StatusCode::UNAUTHORIZED && mark.code == "unauthenticated" {
        let next = if is_get {
            format!("/login?next={}", urlencode(&path_and_query))
        } else {
            "/login".into()
        };
        return Redirect::to(&next).into_response();
    }
    let tr = state.catalogs.tr(lang);
    let key = format!("error-{}", mark.code);
    let mut message = if tr.has(&key) {
        tr.get(&key)
    } else {
        tr.get("error-generic")
    };
    if let Some(until) = mark.until {
        message = tr.with("error-too_many_attempts", &[("until", &tr.datetime(until))]);
    }
    let retry_after = resp.headers().get(header::RETRY_AFTER).cloned();
    let mut out = if is_api {
        (
            status,
            axum::Json(serde_json::json!({ "error": mark.code, "message": message })),
        )
            .into_response()
    } else {
        let page = ErrorPage {
            title: tr.get("error-title"),
            t: tr,
            message,
            status: status.as_u16(),
            signed_in,
        };
        (status, render(&page)).into_response()
    };
    if let Some(r) = retry_after {
        out.headers_mut().insert(header::RETRY_AFTER, r);
    }
    // Kept for the layers outside (the surge layer answers `overloaded`
    // and `queued` itself).
    out.extensions_mut().insert(mark);
    out
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Middleware: refuses state-changing requests sent from another site
/// (`Origin` or `Sec-Fetch-Site` say so). Together with SameSite cookies
/// and per-session form tokens, this is the CSRF defence.
pub async fn same_origin(req: Request, next: Next) -> Response {
    let unsafe_method = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if unsafe_method {
        let headers = req.headers();
        if headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) == Some("cross-site") {
            return ApiError::Csrf.into_response();
        }
        if let (Some(origin), Some(host)) = (
            headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()),
            headers.get(header::HOST).and_then(|v| v.to_str().ok()),
        ) {
            let origin_host = origin.split("://").nth(1).unwrap_or("");
            if origin != "null" && origin_host != host {
                return ApiError::Csrf.into_response();
            }
        }
    }
    next.run(req).await
}

/// Middleware: security headers on every response; pages and API answers
/// are private and never stored by shared caches.
pub async fn security_headers(req: Request, next: Next) -> Response {
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    // A handler may set a stricter policy (file downloads are sandboxed).
    if !h.contains_key(header::CONTENT_SECURITY_POLICY) {
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'none'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
            ),
        );
    }
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    resp
}
