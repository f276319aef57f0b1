//! What `ardoise surge` shows: a progress line while it runs, then a
//! table, a JSON report and an SVG chart of goodput and p99 latency over
//! the run (with another run drawn dashed, to compare).

use super::plan::Schedule;
use super::stats::{Percentiles, Stats, Summary};
use super::SurgeArgs;
use serde::Serialize;
use std::fmt::Write as _;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The run's name.
    pub label: String,
    /// Where it was sent.
    pub target: String,
    /// The arrival schedule.
    pub schedule: Schedule,
    /// Share of users resuming a remembered session.
    pub remembered: f64,
    /// Share of naive clients.
    pub naive: f64,
    /// Mean think time.
    pub think_ms: u64,
    /// Seed.
    pub seed: u64,
    /// What was measured.
    pub summary: Summary,
    /// The server's own surge figures at the end (`/metrics`).
    pub server: Vec<(String, f64)>,
}

/// Another run, read back for the chart.
#[derive(Debug, Clone)]
pub struct Comparison {
    label: String,
    /// (second, journeys done, p99 ms)
    points: Vec<(f64, f64, Option<f64>)>,
}

impl Report {
    /// Assembles the report.
    pub fn new(
        args: &SurgeArgs,
        target: &str,
        schedule: Schedule,
        summary: Summary,
        server: Vec<(String, f64)>,
    ) -> Report {
        Report {
            label: args.label.clone(),
            target: target.to_string(),
            schedule,
            remembered: args.remembered,
            naive: args.naive,
            think_ms: args.think_ms,
            seed: args.seed,
            summary,
            server,
        }
    }

    /// Reads another run's JSON report, for the chart.
    pub fn read(path: &Path) -> anyhow::Result<Comparison> {
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(path)?)?;
        let points = v["summary"]["timeline"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|s| {
                        (
                            s["second"].as_f64().unwrap_or(0.0),
                            s["journeys_done"].as_f64().unwrap_or(0.0),
                            s["p99_ms"].as_f64(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(Comparison {
            label: v["label"].as_str().unwrap_or("other run").to_string(),
            points,
        })
    }

    /// The terminal table.
    pub fn table(&self) -> String {
        let s = &self.summary;
        let sc = &self.schedule;
        let mut o = String::new();
        let _ = writeln!(o, "\n== ardoise surge: {} → {}", self.label, self.target);
        let _ = writeln!(
            o,
            "offered: {}/s, then {}/s at {} s for {} s, tail τ = {} s, arrivals for {} s; remembered {:.0} %, naive {:.0} %, think {} ms",
            sc.background, sc.peak, sc.step_at, sc.hold, sc.tail, sc.duration,
            self.remembered * 100.0, self.naive * 100.0, self.think_ms
        );
        let _ = writeln!(
            o,
            "\n{:<11}{:>6}{:>11}{:>12}{:>10}{:>9}{:>9}{:>10}{:>13}{:>8}{:>8}",
            "phase",
            "secs",
            "offered/s",
            "journeys/s",
            "served/s",
            "p50 ms",
            "p99 ms",
            "p99.9 ms",
            "lobby p99 ms",
            "503s",
            "failed"
        );
        for p in &s.phases {
            let _ = writeln!(
                o,
                "{:<11}{:>6.0}{:>11.1}{:>12.1}{:>10.1}{:>9.1}{:>9.1}{:>10.1}{:>13.1}{:>8}{:>8}",
                p.phase.as_str(),
                p.secs,
                p.offered_per_sec,
                p.journeys_per_sec,
                p.served_per_sec,
                p.served.p50,
                p.served.p99,
                p.served.p999,
                p.lobby_answer_latency.p99,
                p.refused,
                p.journeys_failed
            );
        }
        let pct = |p: &Percentiles| {
            format!(
                "p50 {:.0} ms, p90 {:.0} ms, p99 {:.0} ms (n = {})",
                p.p50, p.p90, p.p99, p.count
            )
        };
        let _ = writeln!(o, "\ntime to first home page: {}", pct(&s.first_home));
        let _ = writeln!(o, "  teachers and staff:    {}", pct(&s.first_home_staff));
        let _ = writeln!(o, "fresh sign-in (POST /login): {}", pct(&s.fresh_sign_in));
        let _ = writeln!(o, "resume (first page, remembered): {}", pct(&s.resume));
        if s.resume.p50 > 0.0 && s.fresh_sign_in.count > 0 {
            let _ = writeln!(
                o,
                "  fresh sign-in / resume, medians: {:.0}×",
                s.fresh_sign_in.p50 / s.resume.p50
            );
        }
        let l = &s.lobby;
        let _ = writeln!(
            o,
            "lobby: {} waited and got in, {} still waiting at the end; wait p50 {:.1} s, p90 {:.1} s, max {:.1} s",
            l.admitted, l.abandoned, l.wait_p50_secs, l.wait_p90_secs, l.wait_max_secs
        );
        let _ = writeln!(
            o,
            "  admitted in arrival order: {:.1} %; estimate within 25 % of the actual wait: {:.1} % of {} shown one",
            l.in_order_share * 100.0,
            l.estimate_within_25pct_share * 100.0,
            l.estimated
        );
        let _ = writeln!(
            o,
            "retry amplification: {:.3}× ({} attempts for {} requests)",
            s.retry_amplification, s.attempts, s.logical_requests
        );
        let list = |v: &[(super::stats::ErrorKind, u64)]| {
            if v.is_empty() {
                "none".to_string()
            } else {
                v.iter()
                    .map(|(k, n)| format!("{k:?} {n}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        };
        let _ = writeln!(o, "failed attempts: {}", list(&s.errors));
        let _ = writeln!(o, "failed journeys: {}", list(&s.failed_journeys));
        let mut sign_in = s.phases.iter().map(|p| (p.phase.as_str(), p.sign_in));
        let sign_in: Vec<String> = sign_in
            .by_ref()
            .filter(|(_, p)| p.count > 0)
            .map(|(name, p)| format!("{name} p50 {:.0} ms p99 {:.0} ms", p.p50, p.p99))
            .collect();
        let _ = writeln!(
            o,
            "password sign-ins served, by phase: {}",
            sign_in.join("; ")
        );
        if !self.server.is_empty() {
            let _ = writeln!(o, "server (/metrics at the end):");
            let mut server = self.server.clone();
            server.sort_by(|a, b| a.0.cmp(&b.0));
            for (name, v) in server
                .iter()
                .filter(|(n, _)| !n.contains("bulkhead_in_flight"))
            {
                let _ = writeln!(o, "  {name} {v}");
            }
        }
        o
    }

    /// The chart: per second, arrivals offered and journeys completed (left
    /// axis) and p99 of served requests (right axis); `other` dashed.
    pub fn svg(&self, other: Option<&Comparison>) -> String {
        let (w, h, left, right, top, bottom) = (900.0, 420.0, 60.0, 60.0, 40.0, 50.0);
        let tl = &self.summary.timeline;
        let mut xmax = tl.len() as f64;
        let mut ymax: f64 = tl
            .iter()
            .map(|s| s.offered_rate.max(s.journeys_done as f64))
            .fold(1.0, f64::max);
        let mut lmax: f64 = tl.iter().filter_map(|s| s.p99_ms).fold(1.0, f64::max);
        if let Some(c) = other {
            xmax = xmax.max(c.points.len() as f64);
            ymax = c.points.iter().map(|p| p.1).fold(ymax, f64::max);
            lmax = c.points.iter().filter_map(|p| p.2).fold(lmax, f64::max);
        }
        let x = |t: f64| left + (w - left - right) * t / xmax.max(1.0);
        let y = |v: f64| h - bottom - (h - top - bottom) * v / (ymax * 1.05);
        let yl = |v: f64| h - bottom - (h - top - bottom) * v / (lmax * 1.05);
        let path = |pts: &mut dyn Iterator<Item = (f64, f64)>| {
            let mut d = String::new();
            for (i, (px, py)) in pts.enumerate() {
                let _ = write!(d, "{}{px:.1},{py:.1} ", if i == 0 { "M" } else { "L" });
            }
            d
        };
        let mut o = String::new();
        let _ = write!(
            o,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12"><rect width="100%" height="100%" fill="white"/>"#
        );
        let _ = write!(
            o,
            r#"<text x="{left}" y="20" font-size="14">{}</text>"#,
            escape(&format!(
                "ardoise surge: {} (solid){}",
                self.label,
                other
                    .map(|c| format!(" vs {} (dashed)", c.label))
                    .unwrap_or_default()
            ))
        );
        let _ = write!(
            o,
            r##"<line x1="{left}" y1="{b}" x2="{r}" y2="{b}" stroke="#333"/><line x1="{left}" y1="{top}" x2="{left}" y2="{b}" stroke="#333"/><line x1="{r}" y1="{top}" x2="{r}" y2="{b}" stroke="#333"/>"##,
            b = h - bottom,
            r = w - right
        );
        for i in 0..=4 {
            let f = i as f64 / 4.0;
            let _ = write!(
                o,
                r##"<text x="{}" y="{:.1}" text-anchor="end" fill="#2a6">{:.0}</text><text x="{}" y="{:.1}" fill="#c33">{:.0}</text>"##,
                left - 4.0,
                y(ymax * f) + 4.0,
                ymax * f,
                w - right + 4.0,
                yl(lmax * f) + 4.0,
                lmax * f
            );
            let _ = write!(
                o,
                r#"<text x="{:.1}" y="{}" text-anchor="middle">{:.0} s</text>"#,
                x(xmax * f),
                h - bottom + 16.0,
                xmax * f
            );
        }
        let offered = path(&mut tl.iter().map(|s| (x(s.second as f64), y(s.offered_rate))));
        let done = path(
            &mut tl
                .iter()
                .map(|s| (x(s.second as f64), y(s.journeys_done as f64))),
        );
        let p99 = path(
            &mut tl
                .iter()
                .filter_map(|s| s.p99_ms.map(|v| (x(s.second as f64), yl(v)))),
        );
        let _ = write!(
            o,
            r##"<path d="{offered}" fill="none" stroke="#999" stroke-width="1.5"/>"##
        );
        let _ = write!(
            o,
            r##"<path d="{done}" fill="none" stroke="#2a6" stroke-width="2"/>"##
        );
        let _ = write!(
            o,
            r##"<path d="{p99}" fill="none" stroke="#c33" stroke-width="1.5"/>"##
        );
        if let Some(c) = other {
            let done = path(&mut c.points.iter().map(|p| (x(p.0), y(p.1))));
            let p99 = path(&mut c.points.iter().filter_map(|p| p.2.map(|v| (x(p.0), yl(v)))));
            let _ = write!(
                o,
                r##"<path d="{done}" fill="none" stroke="#2a6" stroke-width="2" stroke-dasharray="6 4"/>"##
            );
            let _ = write!(
                o,
                r##"<path d="{p99}" fill="none" stroke="#c33" stroke-width="1.5" stroke-dasharray="6 4"/>"##
            );
        }
        let _ = write!(
            o,
            r##"<text x="{left}" y="{}" fill="#999">offered arrivals/s</text><text x="{}" y="{}" fill="#2a6">completed journeys/s (left)</text><text x="{}" y="{}" fill="#c33">p99 of served requests, ms (right)</text></svg>"##,
            h - 12.0,
            left + 160.0,
            h - 12.0,
            left + 380.0,
            h - 12.0
        );
        o
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Prints a progress line every second until aborted.
pub async fn progress(stats: Arc<Stats>, users: usize) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        let t = stats.secs(std::time::Instant::now());
        let (served, refused, done, p99) = stats.last_second();
        let active = stats.active.load(Ordering::Relaxed);
        let lobby = stats.in_lobby.load(Ordering::Relaxed);
        eprint!(
            "\r{t:>5.0} s | {users} users | in flight {active:>6}, in lobby {lobby:>6} | last second: served {served:>6}, 503 {refused:>5}, journeys {done:>5}, p99 {p99:>7.1} ms   "
        );
    }
}

/// The server's `ardoise_surge_*` figures from `/metrics`, if it answers.
pub async fn server_figures(base: &str) -> Vec<(String, f64)> {
    let Ok(resp) = reqwest::get(format!("{base}/metrics")).await else {
        return Vec::new();
    };
    let Ok(text) = resp.text().await else {
        return Vec::new();
    };
    text.lines()
        .filter(|l| l.starts_with("ardoise_surge_"))
        .filter_map(|l| {
            let (name, value) = l.rsplit_once(' ')?;
            Some((name.to_string(), value.parse().ok()?))
        })
        .collect()
}
