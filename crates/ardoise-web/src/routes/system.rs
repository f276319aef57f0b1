//! Health, readiness, metrics, the OpenAPI document, and the fallback.

use super::RouteTable;
use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

/// This module's routes.
pub fn routes() -> RouteTable {
    RouteTable::default()
        .get("/healthz", healthz)
        .get("/readyz", readyz)
        .get("/metrics", metrics_text)
        .get("/api/v1/openapi.json", openapi)
        .get("/static/ardoise.css", stylesheet)
        .get("/static/challenge.js", challenge_script)
}

/// `GET /static/challenge.js`: the sign-in check's script, on the sign-in
/// pages only while the surge layer asks work of the visitor's network.
async fn challenge_script() -> impl axum::response::IntoResponse {
    (
        [
            (
                axum::http::header::CONTENT_TYPE,
                "text/javascript; charset=utf-8",
            ),
            (axum::http::header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("../../static/challenge.js"),
    )
}

/// `GET /static/ardoise.css`: the stylesheet; its URL carries a version,
/// so it is cached for a year.
async fn stylesheet() -> impl axum::response::IntoResponse {
    (
        [
            (axum::http::header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (
                axum::http::header::CACHE_CONTROL,
                "public, max-age=31536000, immutable",
            ),
        ],
        crate::pages::CSS,
    )
}

/// `GET /healthz`: the process is up. Touches nothing.
async fn healthz() -> &'static str {
    "ok"
}

/// `GET /readyz`: the store answers; 503 with `Retry-After` otherwise.
async fn readyz(State(state): State<AppState>) -> Result<&'static str, ApiError> {
    state
        .store
        .ping()
        .await
        .map_err(|_| ApiError::Unavailable)?;
    Ok("ready")
}

/// `GET /metrics`: Prometheus text format.
async fn metrics_text(State(state): State<AppState>) -> Response {
    metrics::gauge!("ardoise_sessions_live").set(state.sessions.len() as f64);
    state.surge.publish_metrics(state.clock.now_ms());
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
        .into_response()
}

/// `GET /api/v1/openapi.json`.
async fn openapi() -> Response {
    axum::Json(super::api::openapi_document()).into_response()
}

/// Unknown routes: 404, localized by the error layer.
pub async fn not_found() -> Response {
    (StatusCode::NOT_FOUND, ApiError::NotFound).into_response()
}
