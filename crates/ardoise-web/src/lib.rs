//! Ardoise's HTTP face: the axum router, its layers, sessions and sign-in,
//! the HTML pages and the JSON API under `/api/v1`.
//!
//! Handlers stay thin: parse, ask `ardoise_core::policy`, call the store,
//! render. Every route is declared through [`routes::RouteTable`], which
//! records it for the access-matrix test: a route cannot exist without
//! appearing there.

pub mod archive;
pub mod auth;
pub mod diary_cache;
pub mod error;
pub mod extract;
pub mod home_cache;
pub mod i18n;
pub mod layers;
pub mod metrics;
pub mod pages;
pub mod partial;
pub mod read_cache;
pub mod routes;
pub mod session;
pub mod state;
pub mod surge;
pub mod upload;
// Documents (issue 5).
pub mod blob_response;
pub mod clamd;

pub use routes::{RouteEntry, RouteTable};
pub use state::{AppState, WebConfig};

use axum::extract::DefaultBodyLimit;
use axum::Router;
use std::time::Duration;
use tower_http::timeout::TimeoutLayer;

/// The whole application: every route with its layers.
pub fn app(state: AppState) -> Router {
    let table = routes::all();
    let body_limit = state.config.max_body_bytes;
    let timeout = Duration::from_secs(state.config.request_timeout_secs.max(1));
    let surge = state.config.surge.clone();
    table
        .into_router()
        .fallback(routes::system::not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            routes::documents::note_changes,
        ))
        .layer(axum::middleware::from_fn(layers::same_origin))
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            layers::render_errors,
        ))
        .layer(axum::middleware::from_fn(layers::security_headers))
        .layer(axum::middleware::from_fn(metrics::track))
        .layer(TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            timeout,
        ))
        .layer(tower_http::timeout::RequestBodyTimeoutLayer::new(
            surge.body_timeout,
        ))
        .layer(tower_http::limit::RequestBodyLimitLayer::new(
            surge.max_request_bytes,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            surge::admission::admit,
        ))
        .with_state(state)
}

/// Serves the application on a bound listener until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // The Prometheus recorder drains its histograms only when asked; without
    // this, a node nobody scrapes would keep every latency sample.
    let handle = state.metrics.clone();
    let upkeep = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        loop {
            tick.tick().await;
            handle.run_upkeep();
        }
    });
    let c = &state.config;
    let limits = surge::conn::ConnLimits {
        header_timeout: c.surge.header_timeout,
        idle_timeout: c.surge.idle_timeout,
        max_connections: c.surge.max_connections,
        shutdown_grace: Duration::from_secs(c.request_timeout_secs.max(1)),
    };
    let served = surge::conn::serve(listener, app(state), limits, shutdown).await;
    upkeep.abort();
    served
}
