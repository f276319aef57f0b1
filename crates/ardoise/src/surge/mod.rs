//! `ardoise surge`: the load generator that replays the 9:15 wave against
//! a running Ardoise on this machine, and reports what users got.
//!
//! Open loop: users arrive on a schedule ([`plan`]) whatever the server
//! does, as pupils do; each follows a journey ([`vu`]) through a client
//! that is well-behaved or naive when refused ([`client`]); everything is
//! counted ([`stats`]) and reported as a table, JSON and an SVG chart
//! ([`report`]).
//!
//! It must only ever load this machine (targets in 127.0.0.0/8), and is
//! bounded in users, time and open connections.

pub mod client;
pub mod plan;
pub mod report;
pub mod signin;
pub mod stats;
pub mod vu;

use anyhow::{bail, Context};
use client::{Behaviour, Net};
use plan::Schedule;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use vu::{Account, User};

/// Longest arrival period and longest drain, in seconds.
pub const MAX_SECS: f64 = 600.0;
/// Most users in one run.
pub const MAX_USERS: usize = 200_000;
/// Most stairs in a staircase.
pub const MAX_STAIRS: usize = 12;

/// The options of `ardoise surge`.
#[derive(clap::Args, Debug, Clone)]
pub struct SurgeArgs {
    /// The running Ardoise; only 127.0.0.0/8 addresses are accepted.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub target: String,
    /// Arrivals per second before 9:15.
    #[arg(long, default_value_t = 5.0)]
    pub background: f64,
    /// Arrivals per second at 9:15.
    #[arg(long, default_value_t = 100.0)]
    pub peak: f64,
    /// Seconds before the step.
    #[arg(long, default_value_t = 10.0)]
    pub step_at: f64,
    /// Seconds the peak holds.
    #[arg(long, default_value_t = 20.0)]
    pub hold: f64,
    /// Time constant of the decay after the peak, in seconds.
    #[arg(long, default_value_t = 15.0)]
    pub tail: f64,
    /// Seconds during which users arrive (at most 600).
    #[arg(long, default_value_t = 60.0)]
    pub duration: f64,
    /// A staircase of arrival rates instead of the wave (`25,50,100,250`):
    /// each held for `--stair-secs`, to chart goodput and latency against
    /// offered load in one run. Replaces the wave's options and
    /// `--duration`.
    #[arg(long, value_delimiter = ',')]
    pub stairs: Vec<f64>,
    /// Seconds each stair lasts.
    #[arg(long, default_value_t = 20.0)]
    pub stair_secs: f64,
    /// Seconds after the last arrival for journeys to finish (at most 600).
    #[arg(long, default_value_t = 60.0)]
    pub grace: f64,
    /// Most users in the run.
    #[arg(long, default_value_t = 100_000)]
    pub max_users: usize,
    /// Most requests in flight at once, each holding a connection (the
    /// sandbox allows 20 000 open files per process, the server's included).
    #[arg(long, default_value_t = 8_000)]
    pub max_open: usize,
    /// Share of users who resume a remembered session (the others sign in
    /// with their password).
    #[arg(long, default_value_t = 0.9)]
    pub remembered: f64,
    /// Share of naive clients (retry at once, up to 5 times).
    #[arg(long, default_value_t = 0.0)]
    pub naive: f64,
    /// Mean think time between pages, in milliseconds.
    #[arg(long, default_value_t = 1_000)]
    pub think_ms: u64,
    /// Per-request timeout, in seconds.
    #[arg(long, default_value_t = 10)]
    pub timeout_secs: u64,
    /// Accounts signed in beforehand for remembered sessions (cached in
    /// DATA_DIR/surge-sessions.csv).
    #[arg(long, default_value_t = 300)]
    pub sessions: usize,
    /// Seed of the arrivals and of who arrives.
    #[arg(long, default_value_t = 915)]
    pub seed: u64,
    /// The accounts file (default: DATA_DIR/demo-accounts.csv, written by
    /// `ardoise demo`).
    #[arg(long)]
    pub accounts: Option<PathBuf>,
    /// A name for this run in the report ("surge on", "surge off"…).
    #[arg(long, default_value = "run")]
    pub label: String,
    /// Write the report as JSON here.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Draw goodput and p99 latency over time as SVG here.
    #[arg(long)]
    pub svg: Option<PathBuf>,
    /// Write one line per user who waited in the lobby and got in here
    /// (CSV: lane, when they queued and got in, the first estimate and
    /// place shown, the last refresh interval), to study order and
    /// estimates.
    #[arg(long)]
    pub waiters_csv: Option<PathBuf>,
    /// Other runs' JSON reports, drawn on the same chart for comparison
    /// (repeat the option for several).
    #[arg(long)]
    pub compare: Vec<PathBuf>,
    /// Send nothing: draw the chart (`--svg`) of this earlier run's JSON
    /// report and the `--compare` ones.
    #[arg(long)]
    pub chart_only: Option<PathBuf>,
}

/// Accepts only `http://` targets on a loopback IPv4 address.
pub fn loopback_base(target: &str) -> anyhow::Result<String> {
    let url = url::Url::parse(target).with_context(|| format!("{target} is not a URL"))?;
    if url.scheme() != "http" {
        bail!("only http:// targets on this machine are accepted");
    }
    let ip = match url.host() {
        Some(url::Host::Ipv4(ip)) => ip,
        Some(url::Host::Domain("localhost")) => Ipv4Addr::LOCALHOST,
        _ => bail!("{target}: only addresses in 127.0.0.0/8 are accepted"),
    };
    if !IpAddr::V4(ip).is_loopback() {
        bail!("{target}: only addresses in 127.0.0.0/8 are accepted");
    }
    let port = url.port().unwrap_or(80);
    Ok(format!("http://{ip}:{port}"))
}

fn check(args: &SurgeArgs) -> anyhow::Result<Schedule> {
    let finite = [
        args.background,
        args.peak,
        args.step_at,
        args.hold,
        args.tail,
        args.duration,
        args.grace,
        args.stair_secs,
    ];
    if finite
        .iter()
        .chain(&args.stairs)
        .any(|x| !x.is_finite() || *x < 0.0)
    {
        bail!("rates and times must be positive numbers");
    }
    if !args.stairs.is_empty() {
        if args.stairs.len() > MAX_STAIRS {
            bail!("--stairs takes at most {MAX_STAIRS} rates");
        }
        if args.stair_secs < 1.0 || args.stair_secs * args.stairs.len() as f64 > MAX_SECS {
            bail!("each stair lasts at least 1 second, and all of them at most {MAX_SECS} seconds");
        }
        if args.grace > MAX_SECS {
            bail!("--grace is at most {MAX_SECS} seconds");
        }
        return Ok(Schedule::staircase(args.stairs.clone(), args.stair_secs));
    }
    if args.duration > MAX_SECS || args.grace > MAX_SECS {
        bail!("--duration and --grace are at most {MAX_SECS} seconds");
    }
    if args.max_users > MAX_USERS {
        bail!("--max-users is at most {MAX_USERS}");
    }
    if args.max_open > 15_000 {
        bail!("--max-open is at most 15000 (open files are limited)");
    }
    if !(0.0..=1.0).contains(&args.remembered) || !(0.0..=1.0).contains(&args.naive) {
        bail!("--remembered and --naive are shares between 0 and 1");
    }
    Ok(Schedule {
        background: args.background,
        peak: args.peak,
        step_at: args.step_at,
        hold: args.hold,
        tail: args.tail,
        duration: args.duration,
        stairs: Vec::new(),
        stair_secs: 0.0,
    })
}

/// Reads `demo-accounts.csv` (login, password, roles, …); administrators
/// are left out.
pub fn read_accounts(path: &Path) -> anyhow::Result<Vec<Account>> {
    let mut reader = csv::Reader::from_path(path)
        .with_context(|| format!("cannot read {} (run `ardoise demo` first)", path.display()))?;
    let mut out = Vec::new();
    for row in reader.records() {
        let row = row?;
        let (Some(login), Some(password), Some(roles)) = (row.get(0), row.get(1), row.get(2))
        else {
            continue;
        };
        if roles.split('+').any(|r| r == "admin") {
            continue;
        }
        out.push(Account {
            login: login.to_string(),
            password: password.to_string(),
            staff: roles
                .split('+')
                .any(|r| matches!(r, "teacher" | "staff" | "admin")),
        });
    }
    if out.is_empty() {
        bail!("{} lists no account", path.display());
    }
    Ok(out)
}

/// Remembered sessions for up to `want` accounts taken evenly across
/// `accounts`: from the cache if still valid, else signed in now (before
/// the wave, like "yesterday").
async fn prepare_sessions(
    base: &str,
    accounts: &[Account],
    want: usize,
    cache: &Path,
) -> anyhow::Result<Vec<(usize, String)>> {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()?;
    let mut cached: HashMap<String, String> = HashMap::new();
    if let Ok(mut r) = csv::Reader::from_path(cache) {
        for row in r.records().flatten() {
            if let (Some(l), Some(t)) = (row.get(0), row.get(1)) {
                cached.insert(l.to_string(), t.to_string());
            }
        }
    }
    let mut out = Vec::new();
    let mut signed_in = 0;
    // Spread over the whole file, which lists accounts role by role: the
    // first 300 were 8 % teachers and staff, the demo world has 4 %.
    let n = want.min(accounts.len());
    for i in (0..n).map(|k| k * accounts.len() / n) {
        let a = &accounts[i];
        if let Some(token) = cached.get(&a.login) {
            // `/` needs no admission: it only says where a session leads.
            let resp = client
                .get(format!("{base}/"))
                .header("cookie", format!("ardoise_session={token}"))
                .send()
                .await?;
            let location = resp.headers().get("location").and_then(|v| v.to_str().ok());
            if location == Some("/home") {
                out.push((i, token.clone()));
                continue;
            }
        }
        let body = serde_json::json!({"login": a.login, "password": a.password, "remember": true});
        let mut token = None;
        for _ in 0..20 {
            let resp = client
                .post(format!("{base}/api/v1/session"))
                .json(&body)
                .send()
                .await?;
            if resp.status().as_u16() == 503 {
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
            let v: serde_json::Value = resp.json().await?;
            token = v["token"].as_str().map(str::to_string);
            break;
        }
        let Some(token) = token else {
            bail!("could not sign {} in: is this the demo database?", a.login);
        };
        signed_in += 1;
        out.push((i, token));
    }
    let mut w = csv::Writer::from_path(cache)?;
    w.write_record(["login", "token"])?;
    for (i, t) in &out {
        w.write_record([accounts[*i].login.as_str(), t.as_str()])?;
    }
    w.flush()?;
    eprintln!(
        "surge: {} remembered sessions ready ({signed_in} signed in now, the rest from {})",
        out.len(),
        cache.display()
    );
    Ok(out)
}

fn read_compared(args: &SurgeArgs) -> anyhow::Result<Vec<report::Comparison>> {
    args.compare
        .iter()
        .map(|p| report::Report::read(p).with_context(|| format!("cannot read {}", p.display())))
        .collect()
}

/// Runs `ardoise surge`.
pub async fn run(args: SurgeArgs, data_dir: &Path) -> anyhow::Result<()> {
    if let Some(main) = &args.chart_only {
        let Some(svg) = &args.svg else {
            bail!("--chart-only draws a chart: say where with --svg");
        };
        let main = report::Report::read(main)
            .with_context(|| format!("cannot read {}", main.display()))?;
        std::fs::write(svg, report::chart(main, &read_compared(&args)?))
            .with_context(|| format!("cannot write {}", svg.display()))?;
        eprintln!("surge: chart in {}", svg.display());
        return Ok(());
    }
    let schedule = check(&args)?;
    let base = loopback_base(&args.target)?;
    let accounts_path = args
        .accounts
        .clone()
        .unwrap_or_else(|| data_dir.join("demo-accounts.csv"));
    let accounts = read_accounts(&accounts_path)?;
    let sessions = prepare_sessions(
        &base,
        &accounts,
        args.sessions.max(1),
        &data_dir.join("surge-sessions.csv"),
    )
    .await?;
    let arrivals = schedule.arrivals(args.seed, args.max_users);
    eprintln!(
        "surge: {} users over {:.0} s against {base} (label \"{}\")",
        arrivals.len(),
        schedule.duration,
        args.label
    );

    let stats = Arc::new(stats::Stats::new(schedule.clone()));
    let net = Arc::new(Net::new(
        &base,
        Duration::from_secs(args.timeout_secs.max(1)),
        args.max_open,
        Arc::clone(&stats),
    )?);
    let start = stats.started();
    // For tools that line up the server's own samples with the stairs.
    if let Ok(epoch) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        eprintln!(
            "surge: schedule starts at {:.3} (Unix time)",
            epoch.as_secs_f64()
        );
    }
    let deadline = start + Duration::from_secs_f64(schedule.duration + args.grace);
    let mut rng = ChaCha8Rng::seed_from_u64(args.seed ^ 0x9_15);
    let progress = tokio::spawn(report::progress(Arc::clone(&stats), arrivals.len()));
    let mut tasks = tokio::task::JoinSet::new();
    for (journey, t) in (0u64..).zip(&arrivals) {
        let at = start + Duration::from_secs_f64(*t);
        tokio::time::sleep_until(at.into()).await;
        stats.arrival(at);
        let remembered = rng.gen::<f64>() < args.remembered;
        let (account, session) = if remembered {
            let (i, token) = &sessions[rng.gen_range(0..sessions.len())];
            (accounts[*i].clone(), Some(token.clone()))
        } else {
            (accounts[rng.gen_range(0..accounts.len())].clone(), None)
        };
        let user = User {
            account,
            session,
            behaviour: if rng.gen::<f64>() < args.naive {
                Behaviour::Naive
            } else {
                Behaviour::WellBehaved
            },
            think: Duration::from_millis(args.think_ms),
            deadline,
            id: journey,
        };
        let net = Arc::clone(&net);
        stats.active.fetch_add(1, Ordering::Relaxed);
        tasks.spawn(async move {
            let done = vu::journey(&net, user, at).await;
            net.stats.journey(at, done);
            net.stats.active.fetch_sub(1, Ordering::Relaxed);
        });
        // Reap finished users so the set does not grow without bound.
        while tasks.try_join_next().is_some() {}
    }
    // Journeys still going at the deadline are cut short (their lobby
    // waits end at the deadline on their own).
    let drain = async { while tasks.join_next().await.is_some() {} };
    if tokio::time::timeout_at(
        (deadline + Duration::from_secs(args.timeout_secs)).into(),
        drain,
    )
    .await
    .is_err()
    {
        eprintln!("surge: some journeys were still running at the end and were stopped");
    }
    tasks.abort_all();
    progress.abort();
    eprintln!();
    let server = report::server_figures(&base).await;
    let report = report::Report::new(&args, &base, schedule, stats.summary(), server);
    print!("{}", report.table());
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_vec_pretty(&report)?)
            .with_context(|| format!("cannot write {}", path.display()))?;
        eprintln!("surge: JSON report in {}", path.display());
    }
    if let Some(path) = &args.waiters_csv {
        std::fs::write(path, stats.waiters_csv())
            .with_context(|| format!("cannot write {}", path.display()))?;
        eprintln!("surge: waiters in {}", path.display());
    }
    if let Some(path) = &args.svg {
        std::fs::write(path, report.svg(&read_compared(&args)?))
            .with_context(|| format!("cannot write {}", path.display()))?;
        eprintln!("surge: chart in {}", path.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_targets_are_accepted() {
        let ok = [
            ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
            ("http://127.3.2.1:9000/", "http://127.3.2.1:9000"),
            ("http://localhost:8080", "http://127.0.0.1:8080"),
        ];
        for (target, base) in ok {
            assert_eq!(
                loopback_base(target).ok().as_deref(),
                Some(base),
                "{target}"
            );
        }
        for bad in [
            "http://10.0.0.1:8080",
            "http://example.org",
            "http://[::1]:8080",
            "https://127.0.0.1",
            "http://0.0.0.0:8080",
            "not a url",
        ] {
            assert!(loopback_base(bad).is_err(), "{bad}");
        }
    }
}
