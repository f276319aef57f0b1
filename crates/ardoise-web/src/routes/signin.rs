//! Sign-in pages: sign in, sign out, first-login activation, language.

use super::RouteTable;
use crate::auth::{self, ClientInfo, NewSession};
use crate::error::ApiError;
use crate::extract::{Ctx, FormIn, Signed, CSRF_COOKIE, LANG_COOKIE, SESSION_COOKIE};
use crate::i18n::{Lang, Tr};
use crate::pages::{render, Nav};
use crate::session::REMEMBER_SECS;
use crate::state::AppState;
use crate::surge::challenge::ChallengeShown;
use crate::surge::InLine;
use askama::Template;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Extension;
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use serde::Deserialize;

/// This module's routes.
pub fn routes() -> RouteTable {
    RouteTable::default()
        .get("/login", login_page)
        .post("/login", login_submit)
        .post("/logout", logout)
        .get("/activate", activate_page)
        .post("/activate", activate_submit)
        .post("/language", set_language)
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    t: Tr,
    nav: Nav,
    error: Option<String>,
    login: String,
    csrf: String,
    next: String,
    challenge: Option<ChallengeView>,
}

/// The sign-in check shown on a form (see `surge::challenge`).
struct ChallengeView {
    token: String,
    bits: u8,
    notice: String,
    done: String,
}

fn challenge_view(t: &Tr, shown: Option<Extension<ChallengeShown>>) -> Option<ChallengeView> {
    shown.map(|Extension(c)| ChallengeView {
        notice: t.with(
            "challenge-notice",
            &[("wait", c.wait_secs.to_string().as_str())],
        ),
        done: t.get("challenge-done"),
        token: c.token,
        bits: c.bits,
    })
}

#[derive(Template)]
#[template(path = "activate.html")]
struct ActivatePage {
    t: Tr,
    nav: Nav,
    error: Option<String>,
    login: String,
    csrf: String,
    challenge: Option<ChallengeView>,
}

/// Keeps only local paths, so `next` cannot send anyone to another site.
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') => n.to_string(),
        _ => "/home".to_string(),
    }
}

/// The pre-sign-in anti-CSRF token (double-submit cookie), created if absent.
fn csrf_cookie(jar: CookieJar, secure: bool) -> (CookieJar, String) {
    match pre_login_csrf(&jar, secure) {
        (token, Some(cookie)) => (jar.add(cookie), token),
        (token, None) => (jar, token),
    }
}

/// The pre-sign-in anti-CSRF token the client holds, else a new one with
/// the cookie to set (the sign-in form, and the teachers' form of the
/// lobby, carry it).
pub(crate) fn pre_login_csrf(jar: &CookieJar, secure: bool) -> (String, Option<Cookie<'static>>) {
    if let Some(c) = jar.get(CSRF_COOKIE) {
        if c.value().len() == 43 {
            return (c.value().to_string(), None);
        }
    }
    let token = crate::session::new_token();
    let cookie = Cookie::build((CSRF_COOKIE, token.clone()))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(secure)
        .build();
    (token, Some(cookie))
}

fn check_pre_csrf(jar: &CookieJar, field: &str) -> Result<(), ApiError> {
    use subtle::ConstantTimeEq;
    match jar.get(CSRF_COOKIE) {
        Some(c)
            if !field.is_empty() && bool::from(c.value().as_bytes().ct_eq(field.as_bytes())) =>
        {
            Ok(())
        }
        _ => Err(ApiError::Csrf),
    }
}

/// The session cookie for a new session.
pub fn session_cookie(new: &NewSession, secure: bool) -> Cookie<'static> {
    let mut c = Cookie::build((SESSION_COOKIE, new.token.clone()))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(secure);
    if new.session.remembered {
        c = c.max_age(time_secs(REMEMBER_SECS));
    }
    c.build()
}

fn time_secs(s: i64) -> time::Duration {
    time::Duration::seconds(s)
}

/// What the browser sent about itself.
pub fn client_info(headers: &HeaderMap) -> ClientInfo {
    ClientInfo {
        user_agent: headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string(),
        in_line: false,
    }
}

/// The message shown for a sign-in error.
pub fn error_message(t: &Tr, e: &ApiError) -> String {
    match e {
        ApiError::Throttled(until) => {
            t.with("error-too_many_attempts", &[("until", &t.datetime(*until))])
        }
        e => {
            let key = format!("error-{}", e.code());
            if t.has(&key) {
                t.get(&key)
            } else {
                t.get("error-generic")
            }
        }
    }
}

#[derive(Deserialize)]
struct NextQuery {
    next: Option<String>,
}

/// `GET /login`.
async fn login_page(
    State(state): State<AppState>,
    ctx: Ctx,
    shown: Option<Extension<ChallengeShown>>,
    Query(q): Query<NextQuery>,
) -> Response {
    if ctx.session.is_some() {
        return Redirect::to(&safe_next(q.next.as_deref())).into_response();
    }
    let (jar, csrf) = csrf_cookie(ctx.jar.clone(), state.config.secure_cookies);
    let page = LoginPage {
        nav: Nav::public(ctx.tr.get("login-title")),
        challenge: challenge_view(&ctx.tr, shown),
        t: ctx.tr,
        error: None,
        login: String::new(),
        csrf,
        next: safe_next(q.next.as_deref()),
    };
    (jar, render(&page)).into_response()
}

#[derive(Deserialize)]
struct LoginForm {
    #[serde(default)]
    login: String,
    #[serde(default)]
    password: String,
    remember: Option<String>,
    #[serde(default)]
    csrf: String,
    next: Option<String>,
}

/// `POST /login`.
async fn login_submit(
    State(state): State<AppState>,
    ctx: Ctx,
    shown: Option<Extension<ChallengeShown>>,
    in_line: Option<Extension<InLine>>,
    headers: HeaderMap,
    FormIn(form): FormIn<LoginForm>,
) -> Response {
    let next = safe_next(form.next.as_deref());
    let result = match check_pre_csrf(&ctx.jar, &form.csrf) {
        Ok(()) => {
            auth::sign_in(
                &state,
                &form.login,
                &form.password,
                form.remember.is_some(),
                &ClientInfo {
                    in_line: in_line.is_some(),
                    ..client_info(&headers)
                },
            )
            .await
        }
        Err(e) => Err(e),
    };
    match result {
        Ok(new) => {
            let jar = ctx
                .jar
                .clone()
                .add(session_cookie(&new, state.config.secure_cookies))
                .remove(Cookie::build(CSRF_COOKIE).path("/"));
            (jar, Redirect::to(&next)).into_response()
        }
        Err(e)
            if matches!(
                e,
                ApiError::Unavailable | ApiError::Busy | ApiError::Queued | ApiError::Internal(_)
            ) =>
        {
            e.into_response()
        }
        Err(e) => {
            let (jar, csrf) = csrf_cookie(ctx.jar.clone(), state.config.secure_cookies);
            let page = LoginPage {
                nav: Nav::public(ctx.tr.get("login-title")),
                challenge: challenge_view(&ctx.tr, shown),
                error: Some(error_message(&ctx.tr, &e)),
                t: ctx.tr,
                login: form.login.chars().take(64).collect(),
                csrf,
                next,
            };
            (e.status(), jar, render(&page)).into_response()
        }
    }
}

#[derive(Deserialize)]
struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

/// `POST /logout`.
async fn logout(
    State(state): State<AppState>,
    signed: Signed,
    FormIn(form): FormIn<CsrfForm>,
) -> Result<Response, ApiError> {
    signed.check_csrf(&form.csrf)?;
    auth::end_session(&state, &signed.session.token_hash).await?;
    let jar = signed
        .ctx
        .jar
        .clone()
        .remove(Cookie::build(SESSION_COOKIE).path("/"));
    Ok((jar, Redirect::to("/login")).into_response())
}

/// `GET /activate`.
async fn activate_page(
    State(state): State<AppState>,
    ctx: Ctx,
    shown: Option<Extension<ChallengeShown>>,
) -> Response {
    let (jar, csrf) = csrf_cookie(ctx.jar.clone(), state.config.secure_cookies);
    let page = ActivatePage {
        nav: Nav::public(ctx.tr.get("activate-title")),
        challenge: challenge_view(&ctx.tr, shown),
        t: ctx.tr,
        error: None,
        login: String::new(),
        csrf,
    };
    (jar, render(&page)).into_response()
}

#[derive(Deserialize)]
struct ActivateForm {
    #[serde(default)]
    login: String,
    #[serde(default)]
    code: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    confirm: String,
    #[serde(default)]
    csrf: String,
}

/// `POST /activate`.
async fn activate_submit(
    State(state): State<AppState>,
    ctx: Ctx,
    shown: Option<Extension<ChallengeShown>>,
    headers: HeaderMap,
    FormIn(form): FormIn<ActivateForm>,
) -> Response {
    let result = match check_pre_csrf(&ctx.jar, &form.csrf) {
        Ok(()) => {
            auth::activate(
                &state,
                &form.login,
                &form.code,
                &form.password,
                &form.confirm,
                &client_info(&headers),
            )
            .await
        }
        Err(e) => Err(e),
    };
    match result {
        Ok(new) => {
            let jar = ctx
                .jar
                .clone()
                .add(session_cookie(&new, state.config.secure_cookies));
            (jar, Redirect::to("/home")).into_response()
        }
        Err(e)
            if matches!(
                e,
                ApiError::Unavailable | ApiError::Busy | ApiError::Internal(_)
            ) =>
        {
            e.into_response()
        }
        Err(e) => {
            let (jar, csrf) = csrf_cookie(ctx.jar.clone(), state.config.secure_cookies);
            let page = ActivatePage {
                nav: Nav::public(ctx.tr.get("activate-title")),
                challenge: challenge_view(&ctx.tr, shown),
                error: Some(error_message(&ctx.tr, &e)),
                t: ctx.tr,
                login: form.login.chars().take(64).collect(),
                csrf,
            };
            (e.status(), jar, render(&page)).into_response()
        }
    }
}

#[derive(Deserialize)]
struct LanguageForm {
    #[serde(default)]
    lang: String,
    back: Option<String>,
}

/// `POST /language`: remembers the chosen language in a cookie.
async fn set_language(ctx: Ctx, FormIn(form): FormIn<LanguageForm>) -> Result<Response, ApiError> {
    let lang = Lang::parse(&form.lang).ok_or(ApiError::Invalid("unknown_language"))?;
    let cookie = Cookie::build((LANG_COOKIE, lang.code()))
        .path("/")
        .max_age(time_secs(365 * 24 * 3600))
        .same_site(SameSite::Lax);
    let back = safe_next(form.back.as_deref());
    Ok((ctx.jar.clone().add(cookie), Redirect::to(&back)).into_response())
}
