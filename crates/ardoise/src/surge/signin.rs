//! `ardoise surge-signin`: the sign-in storm measured against the machine's
//! own password-hash rate, and remembered-session resumes against fresh
//! sign-ins.
//!
//! Two steps, so that each runs on the cores it should (the script
//! `scripts/signin-bench.sh` pins them): `--hash-only` measures how many
//! argon2id hashes per second this process computes with the server's
//! parameters on `--hash-threads` threads (the server's password-hash
//! permits); the storm then keeps the server's sign-in bulkhead full with
//! fresh password sign-ins for `--secs` seconds and counts those that
//! succeed, then times remembered-session resumes (a request carrying a
//! session token, no password) the same way. The ratios are printed and
//! written as JSON.

use super::{loopback_base, read_accounts};
use anyhow::{bail, Context};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The options of `ardoise surge-signin`.
#[derive(clap::Args, Debug, Clone)]
pub struct SignInArgs {
    /// The running Ardoise; only 127.0.0.0/8 addresses are accepted.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub target: String,
    /// Only measure the raw argon2id hash rate here, print it and stop.
    #[arg(long)]
    pub hash_only: bool,
    /// Threads hashing at once (the server's `signin_permits`).
    #[arg(long, default_value_t = 1)]
    pub hash_threads: usize,
    /// The raw hash rate measured earlier with `--hash-only` (hashes per
    /// second), to compare with.
    #[arg(long)]
    pub raw_hash_rate: Option<f64>,
    /// Seconds of each measurement (at most 120).
    #[arg(long, default_value_t = 15)]
    pub secs: u64,
    /// Sign-ins in flight at once (keep it within the server's sign-in
    /// bulkhead: 16 per password-hash permit by default).
    #[arg(long, default_value_t = 4)]
    pub concurrency: usize,
    /// The accounts file (default: DATA_DIR/demo-accounts.csv).
    #[arg(long)]
    pub accounts: Option<PathBuf>,
    /// Write the figures as JSON here.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

/// What the storm measured.
#[derive(Debug, Serialize)]
pub struct SignInReport {
    /// Raw argon2id hashes per second (from `--hash-only`), if given.
    pub raw_hash_rate: Option<f64>,
    /// Fresh sign-ins completed per second at saturation.
    pub sign_ins_per_sec: f64,
    /// Fresh sign-ins refused (503) and failed, during the storm.
    pub sign_ins_refused: u64,
    /// See `sign_ins_refused`.
    pub sign_ins_failed: u64,
    /// Median latency of one fresh sign-in alone, in ms.
    pub sign_in_alone_ms: f64,
    /// Remembered-session resumes completed per second, same concurrency.
    pub resumes_per_sec: f64,
    /// Median latency of one resume alone, in ms.
    pub resume_alone_ms: f64,
    /// `sign_ins_per_sec / raw_hash_rate` (target ≥ 0.9).
    pub sign_in_share_of_hash_rate: Option<f64>,
    /// `resumes_per_sec / sign_ins_per_sec` (target ≥ 100).
    pub resume_rate_ratio: f64,
    /// `sign_in_alone_ms / resume_alone_ms`.
    pub resume_latency_ratio: f64,
}

/// Hashes per second on `threads` threads for `secs` seconds.
pub fn raw_hash_rate(threads: usize, secs: u64) -> anyhow::Result<f64> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    let done = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let handles: Vec<_> = (0..threads.max(1))
        .map(|_| {
            let done = done.clone();
            std::thread::spawn(move || -> anyhow::Result<()> {
                while Instant::now() < deadline {
                    ardoise_web::auth::hash_password_blocking("une phrase de passe de test")
                        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
                    done.fetch_add(1, Ordering::Relaxed);
                }
                Ok(())
            })
        })
        .collect();
    for h in handles {
        h.join()
            .map_err(|_| anyhow::anyhow!("a hashing thread panicked"))??;
    }
    Ok(done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64())
}

fn median_ms(mut v: Vec<Duration>) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort();
    v[v.len() / 2].as_secs_f64() * 1000.0
}

async fn sign_in(
    client: &reqwest::Client,
    base: &str,
    login: &str,
    password: &str,
) -> anyhow::Result<(u16, Option<String>)> {
    let resp = client
        .post(format!("{base}/api/v1/session"))
        .json(&serde_json::json!({"login": login, "password": password}))
        .send()
        .await?;
    let status = resp.status().as_u16();
    if status != 201 {
        return Ok((status, None));
    }
    let body: serde_json::Value = resp.json().await?;
    Ok((status, body["token"].as_str().map(str::to_string)))
}

/// One request with a remembered session, keeping the admission pass the
/// node hands out (as a browser keeps its cookie): an API client that
/// dropped it would be a newcomer each time.
async fn resume(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    pass: &mut Option<String>,
) -> anyhow::Result<(u16, String)> {
    let mut req = client.get(format!("{base}/api/v1/me")).bearer_auth(token);
    if let Some(p) = pass.as_deref() {
        req = req.header("x-ardoise-pass", p);
    }
    let resp = req.send().await?;
    if let Some(p) = resp
        .headers()
        .get("x-ardoise-pass")
        .and_then(|v| v.to_str().ok())
    {
        *pass = Some(p.to_string());
    }
    let status = resp.status().as_u16();
    // The body says why a refusal happened (overloaded, or the lobby).
    let body = if status == 200 {
        String::new()
    } else {
        resp.text().await.unwrap_or_default()
    };
    Ok((status, body))
}

/// Runs `ardoise surge-signin`.
pub async fn run(args: SignInArgs, data_dir: &Path) -> anyhow::Result<()> {
    if args.secs == 0 || args.secs > 120 {
        bail!("--secs must be between 1 and 120");
    }
    if args.hash_only {
        let rate = raw_hash_rate(args.hash_threads, args.secs)?;
        println!("{rate:.2}");
        return Ok(());
    }
    let base = loopback_base(&args.target)?;
    let path = args
        .accounts
        .clone()
        .unwrap_or_else(|| data_dir.join("demo-accounts.csv"));
    let accounts = Arc::new(read_accounts(&path)?);
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(args.concurrency.max(1))
        .build()?;

    // One at a time, unloaded: the latency of each kind alone.
    let mut alone = Vec::new();
    let mut tokens = Vec::new();
    for a in accounts.iter().take(20) {
        let t0 = Instant::now();
        let (status, token) = sign_in(&client, &base, &a.login, &a.password).await?;
        alone.push(t0.elapsed());
        if status != 201 {
            bail!("signing in as {} answered {status}", a.login);
        }
        tokens.extend(token);
    }
    let sign_in_alone_ms = median_ms(alone);
    let token = tokens.first().cloned().context("no session token")?;
    let mut alone = Vec::new();
    let mut pass = None;
    for _ in 0..500 {
        let t0 = Instant::now();
        let (status, body) = resume(&client, &base, &token, &mut pass).await?;
        alone.push(t0.elapsed());
        if status != 200 {
            bail!("resuming a session answered {status}: {body}");
        }
    }
    let resume_alone_ms = median_ms(alone);

    // The storm: `concurrency` sign-ins in flight for `secs` seconds.
    let ok = Arc::new(AtomicU64::new(0));
    let refused = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.secs);
    let mut tasks = Vec::new();
    for _ in 0..args.concurrency.max(1) {
        let (client, base, accounts) = (client.clone(), base.clone(), accounts.clone());
        let (ok, refused, failed, next) =
            (ok.clone(), refused.clone(), failed.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            while Instant::now() < deadline {
                let i = next.fetch_add(1, Ordering::Relaxed) as usize % accounts.len();
                let a = &accounts[i];
                match sign_in(&client, &base, &a.login, &a.password).await {
                    Ok((201, _)) => ok.fetch_add(1, Ordering::Relaxed),
                    Ok((503, _)) => {
                        tokio::time::sleep(Duration::from_millis(5)).await;
                        refused.fetch_add(1, Ordering::Relaxed)
                    }
                    _ => failed.fetch_add(1, Ordering::Relaxed),
                };
            }
        }));
    }
    for t in tasks {
        t.await?;
    }
    let sign_ins_per_sec = ok.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64();

    // Resumes at the same concurrency, for as long.
    let resumed = Arc::new(AtomicU64::new(0));
    let tokens = Arc::new(tokens);
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.secs);
    let mut tasks = Vec::new();
    for k in 0..args.concurrency.max(1) {
        let (client, base, tokens, resumed) = (
            client.clone(),
            base.clone(),
            tokens.clone(),
            resumed.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let token = &tokens[k % tokens.len()];
            let mut pass = None;
            while Instant::now() < deadline {
                if let Ok((200, _)) = resume(&client, &base, token, &mut pass).await {
                    resumed.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for t in tasks {
        t.await?;
    }
    let resumes_per_sec = resumed.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64();

    let report = SignInReport {
        raw_hash_rate: args.raw_hash_rate,
        sign_ins_per_sec,
        sign_ins_refused: refused.load(Ordering::Relaxed),
        sign_ins_failed: failed.load(Ordering::Relaxed),
        sign_in_alone_ms,
        resumes_per_sec,
        resume_alone_ms,
        sign_in_share_of_hash_rate: args
            .raw_hash_rate
            .filter(|r| *r > 0.0)
            .map(|r| sign_ins_per_sec / r),
        resume_rate_ratio: if sign_ins_per_sec > 0.0 {
            resumes_per_sec / sign_ins_per_sec
        } else {
            0.0
        },
        resume_latency_ratio: if resume_alone_ms > 0.0 {
            sign_in_alone_ms / resume_alone_ms
        } else {
            0.0
        },
    };
    if let Some(raw) = report.raw_hash_rate {
        println!("raw argon2id hashes/s           {raw:>10.1}");
    }
    println!(
        "fresh sign-ins/s (saturated)    {:>10.1}",
        report.sign_ins_per_sec
    );
    if let Some(share) = report.sign_in_share_of_hash_rate {
        println!(
            "  share of the raw hash rate    {:>9.1} %  (target >= 90 %)",
            share * 100.0
        );
    }
    println!(
        "  refused (503) / failed        {:>10} / {}",
        report.sign_ins_refused, report.sign_ins_failed
    );
    println!(
        "remembered resumes/s            {:>10.1}",
        report.resumes_per_sec
    );
    println!(
        "  resumes/s vs sign-ins/s       {:>9.0} x  (target >= 100 x)",
        report.resume_rate_ratio
    );
    println!(
        "one sign-in alone {:.2} ms, one resume alone {:.3} ms: {:.0} x",
        report.sign_in_alone_ms, report.resume_alone_ms, report.resume_latency_ratio
    );
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_vec_pretty(&report)?)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}
