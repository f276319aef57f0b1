//! What the session check costs inside a signed-in request (issue 2: it must
//! be under 10 % of the request).
//!
//! The real router runs in-process on a temporary SQLite database seeded with
//! the test world; one pupil signs in once, then three things are measured in
//! the same run:
//!
//! - `session_check`: `SessionTable::check`, the in-memory lookup the session
//!   extractor does on every request (SHA-256 of the token, then a map
//!   lookup, no database trip);
//! - `get_healthz`: an unauthenticated `GET /healthz` through every layer;
//! - `get_me_authenticated`: `GET /api/v1/me` with `Authorization: Bearer`
//!   on the already-open session, through every layer.
//!
//! Requests go through `tower::ServiceExt::oneshot` (no socket), and their
//! bodies are read to the end. After criterion's report, a plain timing loop
//! runs the three back to back, interleaved, and prints one summary line
//! with the nanoseconds of each and the ratio check / authenticated request.
//! Nothing asserts a wall-clock time.
//!
//! Run: `cargo bench -p ardoise-web --bench session`
//! (a filter works as usual: `cargo bench -p ardoise-web --bench session -- me`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use ardoise_core::{Clock, SystemClock};
use ardoise_store::Store;
use ardoise_web::auth::ClientInfo;
use ardoise_web::session::Lookup;
use ardoise_web::{AppState, WebConfig};
use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::Router;
use criterion::{black_box, Criterion};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::runtime::Runtime;
use tower::ServiceExt;

/// Iterations of each measurement in the final summary.
const SUMMARY_ITERATIONS: u32 = 200_000;
/// The summary interleaves the three measurements in this many rounds.
const SUMMARY_ROUNDS: u32 = 8;

/// The application under test and an open session on it.
struct Fixture {
    state: AppState,
    app: Router,
    token: String,
    dir: std::path::PathBuf,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn fixture() -> Fixture {
    let dir = std::env::temp_dir().join(format!("ardoise-bench-session-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temporary folder");
    let url = format!("sqlite://{}", dir.join("ardoise.db").display());
    let store = Store::connect(&url, true, 4).await.expect("open SQLite");
    store.migrate().await.expect("migrations apply");
    let now = SystemClock.now();
    let seeded = ardoise_testkit::seed(&store, now).await;
    let files = ardoise_testkit::open_files(&dir.join("files")).await;
    let state =
        AppState::new(store, files, Arc::new(SystemClock), WebConfig::default()).expect("state");
    let pupil = &seeded.pupil_a;
    let signed = ardoise_web::auth::sign_in(
        &state,
        &pupil.login,
        &pupil.password,
        false,
        &ClientInfo::default(),
    )
    .await
    .map_err(|e| format!("{e:?}"))
    .expect("the seeded pupil signs in");
    let app = ardoise_web::app(state.clone());
    Fixture {
        state,
        app,
        token: signed.token,
        dir,
    }
}

fn healthz() -> Request<Body> {
    Request::get("/healthz")
        .body(Body::empty())
        .expect("request")
}

fn me(bearer: &str) -> Request<Body> {
    Request::get("/api/v1/me")
        .header(header::AUTHORIZATION, bearer)
        .body(Body::empty())
        .expect("request")
}

/// One request through the whole router, body read to the end.
async fn send(app: &Router, req: Request<Body>) -> (StatusCode, usize) {
    let resp = app.clone().oneshot(req).await.expect("infallible");
    let status = resp.status();
    let body = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .expect("body");
    (status, body.len())
}

fn check_is_live(state: &AppState, token: &str, now: i64) -> bool {
    matches!(state.sessions.check(token, now), Lookup::Live(_))
}

fn bench_session(c: &mut Criterion, rt: &Runtime, f: &Fixture) {
    let bearer = format!("Bearer {}", f.token);
    let now = f.state.now();
    let mut group = c.benchmark_group("session");
    group.bench_function("session_check", |b| {
        b.iter(|| black_box(f.state.sessions.check(black_box(&f.token), now)))
    });
    group.bench_function("get_healthz", |b| {
        b.to_async(rt).iter(|| send(&f.app, healthz()))
    });
    group.bench_function("get_me_authenticated", |b| {
        b.to_async(rt).iter(|| send(&f.app, me(&bearer)))
    });
    group.finish();
}

/// Nanoseconds per iteration of `SUMMARY_ITERATIONS` runs of each
/// measurement, interleaved in rounds so that drift hits all three alike.
fn summary(rt: &Runtime, f: &Fixture) -> (f64, f64, f64) {
    let bearer = format!("Bearer {}", f.token);
    let now = f.state.now();
    let per_round = SUMMARY_ITERATIONS / SUMMARY_ROUNDS;
    let (mut check, mut health, mut authed) = (Duration::ZERO, Duration::ZERO, Duration::ZERO);
    for _ in 0..SUMMARY_ROUNDS {
        let start = Instant::now();
        for _ in 0..per_round {
            black_box(f.state.sessions.check(black_box(&f.token), now));
        }
        check += start.elapsed();
        health += rt.block_on(async {
            let start = Instant::now();
            for _ in 0..per_round {
                black_box(send(&f.app, healthz()).await);
            }
            start.elapsed()
        });
        authed += rt.block_on(async {
            let start = Instant::now();
            for _ in 0..per_round {
                black_box(send(&f.app, me(&bearer)).await);
            }
            start.elapsed()
        });
    }
    let n = f64::from(per_round * SUMMARY_ROUNDS);
    let ns = |d: Duration| d.as_nanos() as f64 / n;
    (ns(check), ns(health), ns(authed))
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let f = rt.block_on(fixture());

    // The measurements are only meaningful if each path does what it says.
    let now = f.state.now();
    assert!(
        check_is_live(&f.state, &f.token, now),
        "the session is live in memory"
    );
    let (status, _) = rt.block_on(send(&f.app, healthz()));
    assert_eq!(status, StatusCode::OK, "GET /healthz");
    let (status, len) = rt.block_on(send(&f.app, me(&format!("Bearer {}", f.token))));
    assert_eq!(
        status,
        StatusCode::OK,
        "GET /api/v1/me with the bearer token"
    );
    assert!(len > 0, "GET /api/v1/me has a body");

    let mut c = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .sample_size(50)
        .configure_from_args();
    bench_session(&mut c, &rt, &f);
    c.final_summary();

    // `cargo test --benches` runs this without `--bench`: criterion then only
    // checks that each routine runs, and so do we.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let (check, health, authed) = summary(&rt, &f);
    println!(
        "summary ({SUMMARY_ITERATIONS} iterations each): session_check {check:.0} ns, GET /healthz {health:.0} ns, \
         GET /api/v1/me authenticated {authed:.0} ns; session check / authenticated request = {:.2} % (target < 10 %)",
        100.0 * check / authed
    );
}
