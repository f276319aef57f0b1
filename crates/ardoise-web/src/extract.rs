//! Extractors: who is calling and in what language ([`Ctx`], [`Signed`]),
//! and form and JSON bodies whose rejections become our own errors.

use crate::auth;
use crate::error::ApiError;
use crate::i18n::{Lang, Tr};
use crate::session::LiveSession;
use crate::state::AppState;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header;
use axum::http::request::Parts;
use axum_extra::extract::CookieJar;
use serde::de::DeserializeOwned;
use std::sync::Arc;

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "ardoise_session";
/// Name of the pre-sign-in anti-CSRF cookie.
pub const CSRF_COOKIE: &str = "ardoise_csrf";
/// Name of the language cookie.
pub const LANG_COOKIE: &str = "ardoise_lang";

/// The language of a request: the language cookie, else `Accept-Language`.
pub fn request_lang(headers: &axum::http::HeaderMap) -> Lang {
    lang_from(headers, &CookieJar::from_headers(headers))
}

fn lang_from(headers: &axum::http::HeaderMap, jar: &CookieJar) -> Lang {
    if let Some(l) = jar.get(LANG_COOKIE).and_then(|c| Lang::parse(c.value())) {
        return l;
    }
    headers
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
        .map(Lang::negotiate)
        .unwrap_or_default()
}

/// The session token a request carries: `Authorization: Bearer`, else the
/// session cookie.
pub fn request_token(headers: &axum::http::HeaderMap) -> Option<String> {
    token_from(headers, &CookieJar::from_headers(headers)).map(str::to_string)
}

fn token_from<'a>(headers: &'a axum::http::HeaderMap, jar: &'a CookieJar) -> Option<&'a str> {
    if let Some(auth) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        return auth.strip_prefix("Bearer ").map(str::trim);
    }
    jar.get(SESSION_COOKIE).map(|c| c.value())
}

/// Every handler's context: language, translator, session if any.
#[derive(Clone)]
pub struct Ctx {
    /// The interface language.
    pub lang: Lang,
    /// Messages in that language.
    pub tr: Tr,
    /// The caller's session, if signed in.
    pub session: Option<Arc<LiveSession>>,
    /// The cookies.
    pub jar: CookieJar,
}

impl FromRequestParts<AppState> for Ctx {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        if let Some(ctx) = parts.extensions.get::<Ctx>() {
            return Ok(ctx.clone());
        }
        // The cookies are parsed (and percent-decoded) once per request.
        let jar = CookieJar::from_headers(&parts.headers);
        let lang = lang_from(&parts.headers, &jar);
        let session = match token_from(&parts.headers, &jar) {
            Some(token) => auth::resolve(state, token).await?,
            None => None,
        };
        let ctx = Ctx {
            lang,
            tr: state.catalogs.tr(lang),
            session,
            jar,
        };
        parts.extensions.insert(ctx.clone());
        Ok(ctx)
    }
}

/// A signed-in caller; 401 otherwise (the HTML pages turn it into a
/// redirection to the sign-in page).
#[derive(Clone)]
pub struct Signed {
    /// The context.
    pub ctx: Ctx,
    /// The session.
    pub session: Arc<LiveSession>,
}

impl FromRequestParts<AppState> for Signed {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let ctx = Ctx::from_request_parts(parts, state).await?;
        let session = ctx.session.clone().ok_or(ApiError::Unauthenticated)?;
        Ok(Signed { ctx, session })
    }
}

impl Signed {
    /// Checks the anti-CSRF token of a form posted in this session.
    pub fn check_csrf(&self, field: &str) -> Result<(), ApiError> {
        use subtle::ConstantTimeEq;
        if bool::from(self.session.csrf_token.as_bytes().ct_eq(field.as_bytes())) {
            Ok(())
        } else {
            Err(ApiError::Csrf)
        }
    }
}

/// An `application/x-www-form-urlencoded` body.
pub struct FormIn<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for FormIn<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Form::<T>::from_request(req, state).await {
            Ok(axum::Form(v)) => Ok(FormIn(v)),
            Err(e) => Err(match e.status().as_u16() {
                413 => ApiError::TooLarge,
                415 => ApiError::UnsupportedMediaType,
                _ => ApiError::BadRequest("invalid_form"),
            }),
        }
    }
}

/// An `application/json` body.
pub struct JsonIn<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonIn<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(JsonIn(v)),
            Err(e) => Err(match e.status().as_u16() {
                413 => ApiError::TooLarge,
                415 => ApiError::UnsupportedMediaType,
                _ => ApiError::BadRequest("invalid_json"),
            }),
        }
    }
}
