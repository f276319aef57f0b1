//! The one error type of the web layer, and how errors reach people.
//!
//! A handler returns [`ApiError`]; its response carries only an
//! [`ErrorMark`]. The `render_errors` middleware (in `layers`) then writes
//! the body in the caller's language: JSON `{"error": code, "message": …}`
//! under `/api`, a small HTML page elsewhere. Bare 4xx answers produced by
//! axum itself (unknown route, wrong method, body too large…) get the same
//! treatment, so no one ever sees an English plain-text rejection.

use ardoise_core::UnixTime;
use ardoise_store::StoreError;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// An error answered to a client. Each variant's doc gives its status.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the request is malformed; the code says how.
    #[error("bad request: {0}")]
    BadRequest(&'static str),
    /// 401: no valid session or token.
    #[error("not signed in")]
    Unauthenticated,
    /// 403: signed in, but not allowed.
    #[error("forbidden")]
    Forbidden,
    /// 403: the anti-CSRF token is missing or wrong.
    #[error("csrf check failed")]
    Csrf,
    /// 404: no such thing, or not one the caller may know of.
    #[error("not found")]
    NotFound,
    /// 409: a unique value is taken; the code names it.
    #[error("conflict: {0}")]
    Conflict(&'static str),
    /// 413: the body is too large.
    #[error("body too large")]
    TooLarge,
    /// 413: an uploaded file is larger than allowed.
    #[error("file too large")]
    FileTooLarge,
    /// 416: the requested byte range is outside the file.
    #[error("range not satisfiable")]
    RangeNotSatisfiable,
    /// 415: wrong content type.
    #[error("unsupported media type")]
    UnsupportedMediaType,
    /// 422: well-formed but invalid input; the code says which rule.
    #[error("invalid: {0}")]
    Invalid(&'static str),
    /// 401: wrong login or password (one message for both).
    #[error("bad credentials")]
    BadCredentials,
    /// 429: too many failed attempts; locked until the given time.
    #[error("throttled")]
    Throttled(UnixTime),
    /// 503: the database (or another dependency) is unreachable.
    #[error("unavailable")]
    Unavailable,
    /// 503: too much work of this kind waits already (the password-hash
    /// queue of the sign-in's lane is full); the surge layer answers it as
    /// its other refusals, with a jittered `Retry-After`.
    #[error("overloaded")]
    Busy,
    /// 503: others wait in line and this pupil's or parent's sign-in was
    /// not checked; the surge layer answers it with the lobby (a place in
    /// line), and the form comes back when their turn comes.
    #[error("queued")]
    Queued,
    /// 500: a bug; logged, never shown.
    #[error("internal: {0}")]
    Internal(String),
    /// 403: signed in, but this action is refused; the code says why
    /// (a forbidden recipient, a suspended account).
    #[error("refused: {0}")]
    Refused(&'static str),
    /// 429: a limit on how often one may do this is reached; the code
    /// says which.
    #[error("limited: {0}")]
    Limited(&'static str),
}

/// What the error middleware needs to write an error body.
#[derive(Debug, Clone)]
pub struct ErrorMark {
    /// Stable snake_case code; also the catalogue key `error-<code>`.
    pub code: &'static str,
    /// For throttling: when to try again.
    pub until: Option<UnixTime>,
}

impl ApiError {
    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthenticated | ApiError::BadCredentials => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden | ApiError::Csrf => StatusCode::FORBIDDEN,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::TooLarge | ApiError::FileTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::RangeNotSatisfiable => StatusCode::RANGE_NOT_SATISFIABLE,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Throttled(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable | ApiError::Busy | ApiError::Queued => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::Refused(_) => StatusCode::FORBIDDEN,
            ApiError::Limited(_) => StatusCode::TOO_MANY_REQUESTS,
        }
    }

    /// The stable code clients and catalogues use.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest(c)
            | ApiError::Conflict(c)
            | ApiError::Invalid(c)
            | ApiError::Refused(c)
            | ApiError::Limited(c) => c,
            ApiError::Unauthenticated => "unauthenticated",
            ApiError::Forbidden => "forbidden",
            ApiError::Csrf => "csrf_failed",
            ApiError::NotFound => "not_found",
            ApiError::TooLarge => "body_too_large",
            ApiError::FileTooLarge => "file_too_large",
            ApiError::RangeNotSatisfiable => "range_not_satisfiable",
            ApiError::UnsupportedMediaType => "unsupported_media_type",
            ApiError::BadCredentials => "bad_credentials",
            ApiError::Throttled(_) => "too_many_attempts",
            ApiError::Unavailable => "service_unavailable",
            ApiError::Busy => "overloaded",
            ApiError::Queued => "queued",
            ApiError::Internal(_) => "internal_error",
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(_) => ApiError::Unavailable,
            StoreError::Conflict(what) => ApiError::Conflict(match what {
                "login" => "login_taken",
                "establishment_uai" => "uai_taken",
                "class_name" => "class_name_taken",
                "submissions" => "homework_has_submissions",
                _ => "already_exists",
            }),
            StoreError::NotFound(_) => ApiError::NotFound,
            other => ApiError::Internal(error_chain(&other)),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if let ApiError::Internal(detail) = &self {
            tracing::error!(%detail, "internal error");
        }
        let mut resp = status.into_response();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        }
        let until = match self {
            ApiError::Throttled(t) => Some(t),
            _ => None,
        };
        resp.extensions_mut().insert(ErrorMark {
            code: self.code(),
            until,
        });
        resp
    }
}

/// The code for a bare error status that axum produced without an
/// [`ApiError`] (a rejection or the router's own answer).
pub fn code_for_status(status: StatusCode) -> &'static str {
    match status {
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::PAYLOAD_TOO_LARGE => "body_too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::UNPROCESSABLE_ENTITY => "invalid_input",
        StatusCode::REQUEST_TIMEOUT => "request_timeout",
        s if s.is_server_error() => "internal_error",
        _ => "bad_request",
    }
}

/// An error and all its sources, for the log.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}
