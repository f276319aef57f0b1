//! What `ardoise surge` shows: a progress line while it runs, then a
//! table, a JSON report and an SVG chart of goodput and p99 latency over
//! the run (with another run drawn dashed, to compare).

use super::plan::Schedule;
use super::stats::{Percentiles, Stats, Summary};
use super::SurgeArgs;
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// The whole report.
#[derive(Debug, Clone, Serialize, Deserialize)]
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
    /// (second, journeys done, p99 ms, offered arrivals/s)
    points: Vec<(f64, f64, Option<f64>, f64)>,
    /// Per stair: (offered arrivals/s, journeys/s, p99 ms).
    stairs: Vec<(f64, f64, f64)>,
}

/// Line styles of the runs on one chart: this run first, then the others.
const STYLES: [(&str, &str); 4] = [
    ("#1a7", ""),
    ("#c33", "6 4"),
    ("#36c", "2 3"),
    ("#a6c", "10 3 2 3"),
];

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
        let report: Report = serde_json::from_slice(&std::fs::read(path)?)?;
        Ok(report.as_comparison())
    }

    /// This run as a comparison, for the chart.
    pub fn as_comparison(&self) -> Comparison {
        Comparison {
            label: self.label.clone(),
            points: self
                .summary
                .timeline
                .iter()
                .map(|s| {
                    (
                        s.second as f64,
                        s.journeys_done as f64,
                        s.p99_ms,
                        s.offered_rate,
                    )
                })
                .collect(),
            stairs: self
                .summary
                .stairs
                .iter()
                .map(|s| (s.offered_per_sec, s.journeys_per_sec, s.served.p99))
                .collect(),
        }
    }

    /// The terminal table.
    pub fn table(&self) -> String {
        let s = &self.summary;
        let sc = &self.schedule;
        let mut o = String::new();
        let _ = writeln!(o, "\n== ardoise surge: {} → {}", self.label, self.target);
        if sc.stairs.is_empty() {
            let _ = writeln!(
                o,
                "offered: {}/s, then {}/s at {} s for {} s, tail τ = {} s, arrivals for {} s; remembered {:.0} %, naive {:.0} %, think {} ms",
                sc.background, sc.peak, sc.step_at, sc.hold, sc.tail, sc.duration,
                self.remembered * 100.0, self.naive * 100.0, self.think_ms
            );
        } else {
            let rates: Vec<String> = sc.stairs.iter().map(|r| format!("{r}")).collect();
            let _ = writeln!(
                o,
                "offered: stairs of {} arrivals/s, {} s each; remembered {:.0} %, naive {:.0} %, think {} ms",
                rates.join(", "),
                sc.stair_secs,
                self.remembered * 100.0,
                self.naive * 100.0,
                self.think_ms
            );
            let _ = writeln!(
                o,
                "\n{:>10}{:>12}{:>10}{:>9}{:>9}{:>13}{:>13}{:>8}{:>9}{:>9}{:>27}{:>24}{:>24}",
                "offered/s",
                "journeys/s",
                "served/s",
                "p50 ms",
                "p99 ms",
                "sign-in p99",
                "lobby p99 ms",
                "503s",
                "failures",
                "gen.full",
                "staff sign-in p99",
                "staff home p99",
                "estimates within 25 %"
            );
            for st in &s.stairs {
                let _ = writeln!(
                    o,
                    "{:>10.1}{:>12.1}{:>10.1}{:>9.1}{:>9.1}{:>13.1}{:>13.1}{:>8}{:>9}{:>9}{:>12.0} ms{:<12}{:>9.0} ms (n = {:>5}){:>24}",
                    st.offered_per_sec,
                    st.journeys_per_sec,
                    st.served_per_sec,
                    st.served.p50,
                    st.served.p99,
                    st.sign_in.p99,
                    st.lobby_answer_latency.p99,
                    st.refused,
                    st.failures,
                    st.generator_full,
                    st.staff_sign_in.p99,
                    if st.staff_sign_in_failed > 0 {
                        format!(" ({} failed)", st.staff_sign_in_failed)
                    } else {
                        format!(" (n = {})", st.staff_sign_in.count)
                    },
                    st.staff_first_home.p99,
                    st.staff_first_home.count,
                    if st.estimated > 0 {
                        format!(
                            "{:.1} % of {}",
                            st.estimate_within_25pct_share * 100.0,
                            st.estimated
                        )
                    } else {
                        "-".to_string()
                    }
                );
            }
        }
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
        let _ = writeln!(
            o,
            "whole password sign-in (form, answer, retries): {}; {} failed",
            pct(&s.sign_in_whole),
            s.sign_in_failed
        );
        let _ = writeln!(
            o,
            "  teachers and staff: {}; {} failed",
            pct(&s.sign_in_whole_staff),
            s.sign_in_failed_staff
        );
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
            "  admitted in arrival order: {:.1} %; first estimate within 25 % of the actual wait: {:.1} % of {} shown one (general {:.1} %, teachers and staff {:.1} %)",
            l.in_order_share * 100.0,
            l.estimate_within_25pct_share * 100.0,
            l.estimated,
            l.estimate_within_25pct_share_by_lane[0] * 100.0,
            l.estimate_within_25pct_share_by_lane[1] * 100.0
        );
        let _ = writeln!(
            o,
            "  every lobby page's estimate within 25 % of the wait left: {:.1} % of {}",
            l.page_estimate_within_25pct_share * 100.0,
            l.pages_estimated
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

    /// The chart. For a staircase: goodput (completed journeys/s) and p99
    /// of served requests against offered arrivals/s, one line per run.
    /// Otherwise, per second: arrivals offered and journeys completed (left
    /// axis) and p99 of served requests (right axis). This run solid, the
    /// `others` dashed.
    pub fn svg(&self, others: &[Comparison]) -> String {
        chart(self.as_comparison(), others)
    }
}

/// The chart of `main` (solid) and `others` (see [`Report::svg`]).
pub fn chart(main: Comparison, others: &[Comparison]) -> String {
    let stairs = !main.stairs.is_empty();
    let runs: Vec<Comparison> = std::iter::once(main)
        .chain(others.iter().cloned())
        .take(STYLES.len())
        .collect();
    if stairs {
        stairs_svg(&runs)
    } else {
        timeline_svg(&runs)
    }
}

fn timeline_svg(runs: &[Comparison]) -> String {
    let (w, h, left, right, top, bottom) = (900.0, 420.0, 60.0, 60.0, 40.0, 50.0);
    let tl = &runs[0].points;
    let xmax = runs
        .iter()
        .map(|c| c.points.len() as f64)
        .fold(1.0, f64::max);
    let ymax = runs
        .iter()
        .flat_map(|c| c.points.iter().map(|p| p.1.max(p.3)))
        .fold(1.0, f64::max);
    let lmax = runs
        .iter()
        .flat_map(|c| c.points.iter().filter_map(|p| p.2))
        .fold(1.0, f64::max);
    let x = |t: f64| left + (w - left - right) * t / xmax;
    let y = |v: f64| h - bottom - (h - top - bottom) * v / (ymax * 1.05);
    let yl = |v: f64| h - bottom - (h - top - bottom) * v / (lmax * 1.05);
    let mut o = svg_open(w, h);
    let _ = write!(
        o,
        r#"<text x="{left}" y="20" font-size="14">{}</text>"#,
        escape(&format!("ardoise surge: {}", legend(runs)))
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
    let offered = path(tl.iter().map(|p| (x(p.0), y(p.3))));
    let _ = write!(
        o,
        r##"<path d="{offered}" fill="none" stroke="#999" stroke-width="1.5"/>"##
    );
    for (c, (_, dash)) in runs.iter().zip(STYLES) {
        let done = path(c.points.iter().map(|p| (x(p.0), y(p.1))));
        let p99 = path(c.points.iter().filter_map(|p| p.2.map(|v| (x(p.0), yl(v)))));
        let _ = write!(
            o,
            r##"<path d="{done}" fill="none" stroke="#2a6" stroke-width="2" stroke-dasharray="{dash}"/><path d="{p99}" fill="none" stroke="#c33" stroke-width="1.5" stroke-dasharray="{dash}"/>"##
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

fn stairs_svg(runs: &[Comparison]) -> String {
    let (w, h, left, right, top) = (900.0, 640.0, 70.0, 30.0, 50.0);
    let panel = 230.0;
    let gap = 70.0;
    let points = || runs.iter().flat_map(|c| c.stairs.iter());
    let xmax = points().map(|p| p.0).fold(1.0, f64::max) * 1.05;
    let ymax = points().map(|p| p.1).fold(1.0, f64::max) * 1.1;
    // p99 on a log scale, 1 ms to the largest seen (at least 1 s).
    let lmax = points().map(|p| p.2).fold(1_000.0, f64::max).log10().ceil();
    let x = |v: f64| left + (w - left - right) * v / xmax;
    let y = |v: f64| top + panel - panel * v / ymax;
    let l_top = top + panel + gap;
    let yl = |v: f64| l_top + panel - panel * v.max(1.0).log10() / lmax;
    let mut o = svg_open(w, h);
    let _ = write!(
        o,
        r#"<text x="{left}" y="22" font-size="14">ardoise surge: goodput and p99 against offered load</text>"#
    );
    for (t, label) in [
        (top, "goodput: completed journeys/s"),
        (l_top, "p99 of served requests, ms (log)"),
    ] {
        let b = t + panel;
        let r = w - right;
        let _ = write!(
            o,
            r##"<line x1="{left}" y1="{b}" x2="{r}" y2="{b}" stroke="#333"/><line x1="{left}" y1="{t}" x2="{left}" y2="{b}" stroke="#333"/><text x="{left}" y="{}" fill="#333">{label}</text>"##,
            t - 6.0
        );
        for i in 0..=5 {
            let f = i as f64 / 5.0;
            let _ = write!(
                o,
                r#"<text x="{:.1}" y="{}" text-anchor="middle">{:.0}</text>"#,
                x(xmax * f),
                b + 16.0,
                xmax * f
            );
        }
    }
    for i in 0..=4 {
        let v = ymax * i as f64 / 4.0;
        let _ = write!(
            o,
            r#"<text x="{}" y="{:.1}" text-anchor="end">{v:.0}</text>"#,
            left - 4.0,
            y(v) + 4.0
        );
    }
    let mut decade: f64 = 1.0;
    while decade.log10() <= lmax + 1e-9 {
        let _ = write!(
            o,
            r#"<text x="{}" y="{:.1}" text-anchor="end">{decade}</text>"#,
            left - 4.0,
            yl(decade) + 4.0
        );
        decade *= 10.0;
    }
    // The 500 ms line of the issue's target.
    let _ = write!(
        o,
        r##"<line x1="{left}" y1="{v:.1}" x2="{}" y2="{v:.1}" stroke="#bbb" stroke-dasharray="3 3"/><text x="{}" y="{:.1}" text-anchor="end" fill="#999">500 ms</text>"##,
        w - right,
        w - right,
        yl(500.0) - 3.0,
        v = yl(500.0)
    );
    for (c, (color, dash)) in runs.iter().zip(STYLES) {
        let good = path(c.stairs.iter().map(|p| (x(p.0), y(p.1))));
        // A stair where nothing was served has no latency to draw.
        let served = || c.stairs.iter().filter(|p| p.2 > 0.0);
        let p99 = path(served().map(|p| (x(p.0), yl(p.2))));
        let _ = write!(
            o,
            r##"<path d="{good}" fill="none" stroke="{color}" stroke-width="2" stroke-dasharray="{dash}"/><path d="{p99}" fill="none" stroke="{color}" stroke-width="2" stroke-dasharray="{dash}"/>"##
        );
        for p in &c.stairs {
            let _ = write!(
                o,
                r##"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{color}"/>"##,
                x(p.0),
                y(p.1)
            );
        }
        for p in served() {
            let _ = write!(
                o,
                r##"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{color}"/>"##,
                x(p.0),
                yl(p.2)
            );
        }
    }
    for (i, (c, (color, dash))) in runs.iter().zip(STYLES).enumerate() {
        let ly = h - 40.0 + 16.0 * (i / 2) as f64;
        let lx = left + 400.0 * (i % 2) as f64;
        let _ = write!(
            o,
            r##"<line x1="{lx}" y1="{ly}" x2="{}" y2="{ly}" stroke="{color}" stroke-width="2" stroke-dasharray="{dash}"/><text x="{}" y="{}">{}</text>"##,
            lx + 30.0,
            lx + 36.0,
            ly + 4.0,
            escape(&c.label)
        );
    }
    let _ = write!(
        o,
        r#"<text x="{}" y="{}" text-anchor="end">offered arrivals/s</text></svg>"#,
        w - right,
        l_top + panel + 32.0
    );
    o
}

fn svg_open(w: f64, h: f64) -> String {
    format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12"><rect width="100%" height="100%" fill="white"/>"#
    )
}

fn legend(runs: &[Comparison]) -> String {
    let styles = ["solid", "dashed", "dotted", "dash-dot"];
    runs.iter()
        .zip(styles)
        .map(|(c, s)| format!("{} ({s})", c.label))
        .collect::<Vec<_>>()
        .join(" vs ")
}

fn path(pts: impl Iterator<Item = (f64, f64)>) -> String {
    let mut d = String::new();
    for (i, (px, py)) in pts.enumerate() {
        let _ = write!(d, "{}{px:.1},{py:.1} ", if i == 0 { "M" } else { "L" });
    }
    d
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

#[cfg(test)]
mod tests {
    // A test that cannot set up its case should stop there.
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn run(label: &str, stairs: Vec<(f64, f64, f64)>) -> Comparison {
        Comparison {
            label: label.to_string(),
            points: Vec::new(),
            stairs,
        }
    }

    #[test]
    fn the_staircase_chart_draws_every_run_and_no_latency_where_nothing_was_served() {
        let on = run("surge on", vec![(50.0, 48.0, 40.0), (500.0, 90.0, 300.0)]);
        let off = run("surge <off>", vec![(50.0, 49.0, 35.0), (500.0, 0.0, 0.0)]);
        let svg = chart(on, &[off]);
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert!(svg.contains("surge on") && svg.contains("surge &lt;off&gt;"));
        assert!(svg.contains("against offered load"));
        // Goodput: 4 points; p99: 3 (the collapsed stair served nothing).
        assert_eq!(svg.matches("<circle").count(), 7);
        // A timeline chart when the runs have no stairs.
        let timeline = chart(
            Comparison {
                label: "wave".into(),
                points: vec![(0.0, 1.0, Some(5.0), 10.0), (1.0, 2.0, None, 10.0)],
                stairs: Vec::new(),
            },
            &[],
        );
        assert!(timeline.contains("completed journeys/s (left)"));
    }

    #[test]
    fn a_report_reads_back_as_the_run_it_was_and_older_reports_still_read() {
        let schedule = Schedule::staircase(vec![10.0, 20.0], 1.0);
        let stats = Stats::new(schedule.clone());
        let report = Report {
            label: "surge on".into(),
            target: "http://127.0.0.1:8080".into(),
            schedule,
            remembered: 0.9,
            naive: 0.0,
            think_ms: 1_000,
            seed: 915,
            summary: stats.summary(),
            server: vec![("ardoise_surge_user_limit".into(), 500.0)],
        };
        let path = std::env::temp_dir().join(format!("ardoise-report-{}.json", std::process::id()));
        std::fs::write(&path, serde_json::to_vec(&report).unwrap()).unwrap();
        let back = Report::read(&path).unwrap();
        let this = report.as_comparison();
        assert_eq!(back.label, this.label);
        assert_eq!(back.stairs, this.stairs);
        assert_eq!(back.stairs.len(), 2);
        // A report of the wave, written before stairs and whole sign-ins.
        let mut v = serde_json::to_value(&report).unwrap();
        for key in [
            "stairs",
            "sign_in_whole",
            "sign_in_whole_staff",
            "sign_in_failed",
        ] {
            v["summary"].as_object_mut().unwrap().remove(key);
        }
        v["schedule"].as_object_mut().unwrap().remove("stairs");
        std::fs::write(&path, serde_json::to_vec(&v).unwrap()).unwrap();
        let old = Report::read(&path);
        let _ = std::fs::remove_file(&path);
        assert!(old.unwrap().stairs.is_empty());
    }
}
