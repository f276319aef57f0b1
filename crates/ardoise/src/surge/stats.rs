//! What a run measured: counters, latency histograms (HdrHistogram) per
//! phase and per second, lobby waits, and the summary computed from them.
//!
//! Owns the numbers and their summary. It must not print or write files
//! (that is [`super::report`]).

use super::plan::{Phase, Schedule};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Why a logical request or a journey failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The connection could not be made.
    Connect,
    /// No answer within the timeout.
    Timeout,
    /// The connection broke mid-answer.
    Io,
    /// `503`, after every retry.
    Refused503,
    /// Another 5xx.
    Server5xx,
    /// An answer the journey did not expect (sign-in refused…).
    Unexpected,
    /// Still in the lobby when the run ended.
    LobbyAbandoned,
    /// The generator had too many requests in flight to send one more.
    GeneratorFull,
}

/// A histogram of microseconds, 1 µs to 10 minutes, 3 significant digits.
fn histogram() -> Histogram<u64> {
    // The bounds are constants that hdrhistogram accepts; a failure here
    // would be a bug caught by the tests, so fall back to auto-resizing.
    Histogram::new_with_bounds(1, 600_000_000, 3)
        .or_else(|_| Histogram::new(3))
        .unwrap_or_else(|_| unreachable_histogram())
}

/// Only reached if hdrhistogram refuses 3 significant digits, which it
/// documents as valid.
#[allow(clippy::expect_used)]
fn unreachable_histogram() -> Histogram<u64> {
    // 2 significant digits is always valid.
    Histogram::new(2).expect("2 significant digits are valid")
}

fn record(h: &mut Histogram<u64>, d: Duration) {
    let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX).max(1);
    // Values above the highest trackable one are saturated, not dropped.
    h.saturating_record(us);
}

/// Per phase.
#[derive(Debug)]
struct PhaseData {
    served: Histogram<u64>,
    sign_in: Histogram<u64>,
    refused: Histogram<u64>,
    lobby_answer: Histogram<u64>,
    served_count: u64,
    refused_count: u64,
    lobby_count: u64,
    arrivals: u64,
    journeys_done: u64,
    journeys_failed: u64,
}

impl PhaseData {
    fn new() -> Self {
        Self {
            served: histogram(),
            sign_in: histogram(),
            refused: histogram(),
            lobby_answer: histogram(),
            served_count: 0,
            refused_count: 0,
            lobby_count: 0,
            arrivals: 0,
            journeys_done: 0,
            journeys_failed: 0,
        }
    }
}

/// Per second of the run.
#[derive(Debug)]
struct SecondData {
    arrivals: u64,
    journeys_done: u64,
    served: u64,
    refused: u64,
    lobby: u64,
    errors: u64,
    latency: Histogram<u64>,
}

/// Per stair of a staircase: what was sent or completed during it.
#[derive(Debug)]
struct StairData {
    arrivals: u64,
    journeys_done: u64,
    served: u64,
    latency: Histogram<u64>,
    sign_in: Histogram<u64>,
    lobby: u64,
    lobby_latency: Histogram<u64>,
    refused: u64,
    /// Timeouts, connection errors, broken answers and 5xx other than 503.
    failures: u64,
    generator_full: u64,
    staff_sign_in: Histogram<u64>,
    staff_sign_in_failed: u64,
    staff_first_home: Histogram<u64>,
}

impl StairData {
    fn new() -> Self {
        Self {
            arrivals: 0,
            journeys_done: 0,
            served: 0,
            latency: histogram(),
            sign_in: histogram(),
            lobby: 0,
            lobby_latency: histogram(),
            refused: 0,
            failures: 0,
            generator_full: 0,
            staff_sign_in: histogram(),
            staff_sign_in_failed: 0,
            staff_first_home: histogram(),
        }
    }
}

/// A queued user's wait.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct QueueRecord {
    /// Whether they queued in the staff lane.
    pub staff: bool,
    /// When they asked for the page that answered with the lobby (their
    /// place in line dates from then; a page held by the node for the
    /// turn is answered later), seconds since the start.
    pub queued_at: f64,
    /// When they first saw the lobby and its estimate, seconds since the
    /// start.
    pub shown_at: f64,
    /// When they got in, seconds since the start.
    pub admitted_at: f64,
    /// The first estimate given, seconds (to the millisecond), if any.
    pub estimate: Option<f64>,
    /// The first place shown.
    pub position: u64,
    /// Lobby pages shown with an estimate while they waited (the first
    /// one included), and how many of those estimates were within 25 % of
    /// the wait left from that page (see [`estimate_close`]).
    pub pages: u32,
    /// See `pages`.
    pub pages_close: u32,
    /// The refresh interval they were given last (their detection delay).
    pub refresh: u64,
    /// The journey (one per arriving user) and the page they waited for.
    pub journey: u64,
    /// See `journey`: `login`, `home` or `other`.
    pub page: &'static str,
}

#[derive(Debug)]
struct Inner {
    phases: BTreeMap<Phase, PhaseData>,
    stairs: Vec<StairData>,
    seconds: Vec<SecondData>,
    errors: BTreeMap<ErrorKind, u64>,
    failed: BTreeMap<ErrorKind, u64>,
    first_home: Histogram<u64>,
    first_home_staff: Histogram<u64>,
    fresh_sign_in: Histogram<u64>,
    sign_in_whole: Histogram<u64>,
    sign_in_whole_staff: Histogram<u64>,
    sign_in_failed: u64,
    sign_in_failed_staff: u64,
    resume: Histogram<u64>,
    queue: Vec<QueueRecord>,
    abandoned: u64,
}

/// Everything a run counts; shared by every virtual user.
#[derive(Debug)]
pub struct Stats {
    started: Instant,
    schedule: Schedule,
    inner: Mutex<Inner>,
    attempts: AtomicU64,
    logical: AtomicU64,
    /// Users in flight now.
    pub active: AtomicU64,
    /// Users waiting in the lobby now.
    pub in_lobby: AtomicU64,
}

impl Stats {
    /// Counting starts now.
    pub fn new(schedule: Schedule) -> Stats {
        let stairs = schedule.stairs.iter().map(|_| StairData::new()).collect();
        Stats {
            started: Instant::now(),
            schedule,
            inner: Mutex::new(Inner {
                phases: Phase::ALL
                    .into_iter()
                    .map(|p| (p, PhaseData::new()))
                    .collect(),
                stairs,
                seconds: Vec::new(),
                errors: BTreeMap::new(),
                failed: BTreeMap::new(),
                first_home: histogram(),
                first_home_staff: histogram(),
                fresh_sign_in: histogram(),
                sign_in_whole: histogram(),
                sign_in_whole_staff: histogram(),
                sign_in_failed: 0,
                sign_in_failed_staff: 0,
                resume: histogram(),
                queue: Vec::new(),
                abandoned: 0,
            }),
            attempts: AtomicU64::new(0),
            logical: AtomicU64::new(0),
            active: AtomicU64::new(0),
            in_lobby: AtomicU64::new(0),
        }
    }

    /// When the run started.
    pub fn started(&self) -> Instant {
        self.started
    }

    /// Seconds since the start at `at`.
    pub fn secs(&self, at: Instant) -> f64 {
        at.saturating_duration_since(self.started).as_secs_f64()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Counters only: a panic elsewhere leaves them usable.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn with_second(inner: &mut Inner, second: usize, f: impl FnOnce(&mut SecondData)) {
        // Bounded: runs last at most 20 minutes.
        while inner.seconds.len() <= second.min(1_200) {
            inner.seconds.push(SecondData {
                arrivals: 0,
                journeys_done: 0,
                served: 0,
                refused: 0,
                lobby: 0,
                errors: 0,
                latency: histogram(),
            });
        }
        if let Some(s) = inner.seconds.get_mut(second.min(1_200)) {
            f(s);
        }
    }

    fn at(&self, at: Instant) -> (Phase, usize) {
        let t = self.secs(at);
        (self.schedule.phase(t), t as usize)
    }

    /// The stair of a staircase that `at` falls on, if any.
    fn stair<'a>(&self, inner: &'a mut Inner, at: Instant) -> Option<&'a mut StairData> {
        let i = self.schedule.stair(self.secs(at))?;
        inner.stairs.get_mut(i)
    }

    fn phase(inner: &mut Inner, phase: Phase) -> &mut PhaseData {
        inner.phases.entry(phase).or_insert_with(PhaseData::new)
    }

    /// One logical request (retries not counted).
    pub fn logical_request(&self) {
        self.logical.fetch_add(1, Ordering::Relaxed);
    }

    /// One attempt sent.
    pub fn attempt(&self) {
        self.attempts.fetch_add(1, Ordering::Relaxed);
    }

    /// A user arrived at `at`.
    pub fn arrival(&self, at: Instant) {
        let (phase, second) = self.at(at);
        let mut inner = self.lock();
        Self::phase(&mut inner, phase).arrivals += 1;
        Self::with_second(&mut inner, second, |s| s.arrivals += 1);
        if let Some(st) = self.stair(&mut inner, at) {
            st.arrivals += 1;
        }
    }

    /// An answer served, sent at `sent`; `sign_in` for a password form.
    pub fn served(&self, sent: Instant, latency: Duration, sign_in: bool) {
        let (phase, second) = self.at(sent);
        let mut inner = self.lock();
        let p = Self::phase(&mut inner, phase);
        p.served_count += 1;
        record(
            if sign_in {
                &mut p.sign_in
            } else {
                &mut p.served
            },
            latency,
        );
        Self::with_second(&mut inner, second, |s| {
            s.served += 1;
            record(&mut s.latency, latency);
        });
        if let Some(st) = self.stair(&mut inner, sent) {
            st.served += 1;
            record(
                if sign_in {
                    &mut st.sign_in
                } else {
                    &mut st.latency
                },
                latency,
            );
        }
    }

    /// A `503`.
    pub fn refused(&self, sent: Instant, latency: Duration) {
        let (phase, second) = self.at(sent);
        let mut inner = self.lock();
        let p = Self::phase(&mut inner, phase);
        p.refused_count += 1;
        record(&mut p.refused, latency);
        Self::with_second(&mut inner, second, |s| s.refused += 1);
        if let Some(st) = self.stair(&mut inner, sent) {
            st.refused += 1;
        }
    }

    /// A lobby page.
    pub fn lobby_answer(&self, sent: Instant, latency: Duration) {
        let (phase, second) = self.at(sent);
        let mut inner = self.lock();
        let p = Self::phase(&mut inner, phase);
        p.lobby_count += 1;
        record(&mut p.lobby_answer, latency);
        Self::with_second(&mut inner, second, |s| s.lobby += 1);
        if let Some(st) = self.stair(&mut inner, sent) {
            st.lobby += 1;
            record(&mut st.lobby_latency, latency);
        }
    }

    /// A failed attempt.
    pub fn error(&self, kind: ErrorKind) {
        let now = Instant::now();
        let second = self.secs(now) as usize;
        let mut inner = self.lock();
        *inner.errors.entry(kind).or_default() += 1;
        Self::with_second(&mut inner, second, |s| s.errors += 1);
        if let Some(st) = self.stair(&mut inner, now) {
            match kind {
                ErrorKind::GeneratorFull => st.generator_full += 1,
                ErrorKind::Connect | ErrorKind::Timeout | ErrorKind::Io | ErrorKind::Server5xx => {
                    st.failures += 1
                }
                _ => {}
            }
        }
    }

    /// A journey that arrived at `arrived` ended.
    pub fn journey(&self, arrived: Instant, done: Result<(), ErrorKind>) {
        let (phase, _) = self.at(arrived);
        let now_second = self.secs(Instant::now()) as usize;
        let mut inner = self.lock();
        let p = Self::phase(&mut inner, phase);
        match done {
            Ok(()) => {
                p.journeys_done += 1;
                Self::with_second(&mut inner, now_second, |s| s.journeys_done += 1);
                if let Some(st) = self.stair(&mut inner, Instant::now()) {
                    st.journeys_done += 1;
                }
            }
            Err(kind) => {
                p.journeys_failed += 1;
                if kind == ErrorKind::LobbyAbandoned {
                    inner.abandoned += 1;
                }
                *inner.failed.entry(kind).or_default() += 1;
            }
        }
    }

    /// Time from arrival (at `arrived`) to the first home page.
    pub fn first_home(&self, arrived: Instant, staff: bool) {
        let d = arrived.elapsed();
        let mut inner = self.lock();
        record(&mut inner.first_home, d);
        if !staff {
            return;
        }
        record(&mut inner.first_home_staff, d);
        if let Some(st) = self.stair(&mut inner, arrived) {
            record(&mut st.staff_first_home, d);
        }
    }

    /// A fresh password sign-in (`POST /login`) served.
    pub fn fresh_sign_in(&self, d: Duration) {
        record(&mut self.lock().fresh_sign_in, d);
    }

    /// A whole password sign-in that started at `started` (the form, then
    /// its answer, retries and waits included): `Some(time)` once signed
    /// in, `None` if it failed.
    pub fn sign_in_whole(&self, started: Instant, took: Option<Duration>, staff: bool) {
        let mut inner = self.lock();
        match took {
            Some(d) => {
                record(&mut inner.sign_in_whole, d);
                if staff {
                    record(&mut inner.sign_in_whole_staff, d);
                }
            }
            None => {
                inner.sign_in_failed += 1;
                if staff {
                    inner.sign_in_failed_staff += 1;
                }
            }
        }
        if !staff {
            return;
        }
        if let Some(st) = self.stair(&mut inner, started) {
            match took {
                Some(d) => record(&mut st.staff_sign_in, d),
                None => st.staff_sign_in_failed += 1,
            }
        }
    }

    /// A remembered device's first page served.
    pub fn resume(&self, d: Duration) {
        record(&mut self.lock().resume, d);
    }

    /// A queued user got in.
    pub fn queued(&self, r: QueueRecord) {
        self.lock().queue.push(r);
    }

    /// Every user who waited and got in, one CSV line each, in the order
    /// they queued.
    pub fn waiters_csv(&self) -> String {
        let mut queue = self.lock().queue.clone();
        queue.sort_by(|a, b| a.queued_at.total_cmp(&b.queued_at));
        let mut out = String::from(
            "lane,queued_at,shown_at,admitted_at,estimate_secs,position,last_refresh_secs,journey,page,pages,pages_close\n",
        );
        for r in &queue {
            let lane = if r.staff { "staff" } else { "general" };
            let estimate = r.estimate.map(|e| format!("{e:.3}")).unwrap_or_default();
            out.push_str(&format!(
                "{lane},{:.3},{:.3},{:.3},{estimate},{},{},{},{},{},{}\n",
                r.queued_at,
                r.shown_at,
                r.admitted_at,
                r.position,
                r.refresh,
                r.journey,
                r.page,
                r.pages,
                r.pages_close
            ));
        }
        out
    }

    /// The latest second's served count and p99, for the progress line.
    pub fn last_second(&self) -> (u64, u64, u64, f64) {
        let second = self.secs(Instant::now()) as usize;
        let inner = self.lock();
        second
            .checked_sub(1)
            .and_then(|s| inner.seconds.get(s))
            .map(|s| {
                (
                    s.served,
                    s.refused,
                    s.journeys_done,
                    ms(s.latency.value_at_quantile(0.99)),
                )
            })
            .unwrap_or((0, 0, 0, 0.0))
    }

    /// The summary of the run.
    pub fn summary(&self) -> Summary {
        let inner = self.lock();
        let phases = inner
            .phases
            .iter()
            .map(|(phase, d)| {
                let secs = match phase {
                    Phase::Drain => (inner.seconds.len() as f64 - self.schedule.duration).max(1.0),
                    p => self.schedule.phase_secs(*p).max(1e-9),
                };
                PhaseSummary {
                    phase: *phase,
                    secs,
                    offered_per_sec: d.arrivals as f64 / secs,
                    journeys_done: d.journeys_done,
                    journeys_failed: d.journeys_failed,
                    journeys_per_sec: d.journeys_done as f64 / secs,
                    served_per_sec: d.served_count as f64 / secs,
                    served: Percentiles::of(&d.served),
                    sign_in: Percentiles::of(&d.sign_in),
                    refused: d.refused_count,
                    refused_latency: Percentiles::of(&d.refused),
                    lobby_answers: d.lobby_count,
                    lobby_answer_latency: Percentiles::of(&d.lobby_answer),
                }
            })
            .collect();
        let timeline = inner
            .seconds
            .iter()
            .enumerate()
            .map(|(i, s)| SecondSummary {
                second: i as u64,
                offered_rate: self.schedule.rate(i as f64 + 0.5),
                arrivals: s.arrivals,
                journeys_done: s.journeys_done,
                served: s.served,
                refused: s.refused,
                lobby: s.lobby,
                errors: s.errors,
                p99_ms: (s.served > 0).then(|| ms(s.latency.value_at_quantile(0.99))),
            })
            .collect();
        let stairs = inner
            .stairs
            .iter()
            .zip(&self.schedule.stairs)
            .enumerate()
            .map(|(i, (d, rate))| {
                let secs = self.schedule.stair_secs.max(1e-9);
                let (from, to) = (i as f64 * secs, (i + 1) as f64 * secs);
                let (estimated, close) = estimates_judged(
                    inner
                        .queue
                        .iter()
                        .filter(|r| (from..to).contains(&r.shown_at)),
                );
                StairSummary {
                    rate: *rate,
                    offered_per_sec: d.arrivals as f64 / secs,
                    journeys_per_sec: d.journeys_done as f64 / secs,
                    served_per_sec: d.served as f64 / secs,
                    served: Percentiles::of(&d.latency),
                    sign_in: Percentiles::of(&d.sign_in),
                    lobby_answers: d.lobby,
                    lobby_answer_latency: Percentiles::of(&d.lobby_latency),
                    refused: d.refused,
                    failures: d.failures,
                    generator_full: d.generator_full,
                    staff_sign_in: Percentiles::of(&d.staff_sign_in),
                    staff_sign_in_failed: d.staff_sign_in_failed,
                    staff_first_home: Percentiles::of(&d.staff_first_home),
                    estimated,
                    estimate_within_25pct_share: close as f64 / estimated.max(1) as f64,
                }
            })
            .collect();
        let attempts = self.attempts.load(Ordering::Relaxed);
        let logical = self.logical.load(Ordering::Relaxed);
        Summary {
            phases,
            stairs,
            timeline,
            errors: inner.errors.iter().map(|(k, v)| (*k, *v)).collect(),
            failed_journeys: inner.failed.iter().map(|(k, v)| (*k, *v)).collect(),
            first_home: Percentiles::of(&inner.first_home),
            first_home_staff: Percentiles::of(&inner.first_home_staff),
            fresh_sign_in: Percentiles::of(&inner.fresh_sign_in),
            sign_in_whole: Percentiles::of(&inner.sign_in_whole),
            sign_in_whole_staff: Percentiles::of(&inner.sign_in_whole_staff),
            sign_in_failed: inner.sign_in_failed,
            sign_in_failed_staff: inner.sign_in_failed_staff,
            resume: Percentiles::of(&inner.resume),
            lobby: LobbySummary::of(&inner.queue, inner.abandoned),
            attempts,
            logical_requests: logical,
            retry_amplification: if logical > 0 {
                attempts as f64 / logical as f64
            } else {
                1.0
            },
        }
    }
}

fn ms(us: u64) -> f64 {
    us as f64 / 1_000.0
}

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct Percentiles {
    /// How many values.
    pub count: u64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// Largest.
    pub max: f64,
}

impl Percentiles {
    fn of(h: &Histogram<u64>) -> Percentiles {
        if h.is_empty() {
            return Percentiles::default();
        }
        Percentiles {
            count: h.len(),
            p50: ms(h.value_at_quantile(0.5)),
            p90: ms(h.value_at_quantile(0.9)),
            p99: ms(h.value_at_quantile(0.99)),
            p999: ms(h.value_at_quantile(0.999)),
            max: ms(h.max()),
        }
    }
}

/// One phase's figures.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PhaseSummary {
    /// Which.
    pub phase: Phase,
    /// Its length in seconds.
    pub secs: f64,
    /// Arrivals per second offered.
    pub offered_per_sec: f64,
    /// Journeys of users who arrived in it and completed.
    pub journeys_done: u64,
    /// Journeys of users who arrived in it and failed.
    pub journeys_failed: u64,
    /// Completed journeys per second (of users who arrived in it).
    pub journeys_per_sec: f64,
    /// Requests served per second (sent in it; lobby and refusals excluded).
    pub served_per_sec: f64,
    /// Latency of served pages (password sign-ins apart).
    pub served: Percentiles,
    /// Latency of password sign-ins served (`POST /login`).
    pub sign_in: Percentiles,
    /// `503` answers.
    pub refused: u64,
    /// Their latency, as the client saw it.
    pub refused_latency: Percentiles,
    /// Lobby pages.
    pub lobby_answers: u64,
    /// Their latency.
    pub lobby_answer_latency: Percentiles,
}

/// One stair of a staircase: what was sent (latencies) or completed
/// (journeys) while it lasted.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StairSummary {
    /// The schedule's arrival rate.
    pub rate: f64,
    /// Arrivals per second that came.
    pub offered_per_sec: f64,
    /// Goodput: journeys completed per second during the stair (whenever
    /// their users arrived).
    pub journeys_per_sec: f64,
    /// Requests served per second (lobby and refusals excluded).
    pub served_per_sec: f64,
    /// Latency of the served requests sent during the stair, password
    /// sign-ins apart.
    pub served: Percentiles,
    /// Latency of the password sign-ins served (`POST /login`).
    pub sign_in: Percentiles,
    /// Lobby pages.
    pub lobby_answers: u64,
    /// Their latency.
    pub lobby_answer_latency: Percentiles,
    /// `503` answers.
    pub refused: u64,
    /// Timeouts, connection errors, broken answers, 5xx other than 503.
    pub failures: u64,
    /// Requests the generator could not send (too many open).
    pub generator_full: u64,
    /// Teachers' and staff's whole password sign-ins begun in the stair.
    pub staff_sign_in: Percentiles,
    /// Those that failed.
    pub staff_sign_in_failed: u64,
    /// Time from arrival to the first home page of the teachers and staff
    /// who arrived in the stair, remembered or not: whether a class can
    /// start. (Absent from reports written before it was.)
    #[serde(default)]
    pub staff_first_home: Percentiles,
    /// Waiters first shown an estimate during the stair (and let in).
    pub estimated: u64,
    /// Share of those whose estimate was within 25 % of their wait. Those
    /// let in after a later stair's load came were told what could not
    /// be known then.
    pub estimate_within_25pct_share: f64,
}

/// One second of the run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SecondSummary {
    /// Seconds since the start.
    pub second: u64,
    /// The schedule's rate at that second.
    pub offered_rate: f64,
    /// Users who arrived.
    pub arrivals: u64,
    /// Journeys completed.
    pub journeys_done: u64,
    /// Requests served.
    pub served: u64,
    /// `503` answers.
    pub refused: u64,
    /// Lobby pages.
    pub lobby: u64,
    /// Failed attempts.
    pub errors: u64,
    /// p99 of served requests sent in that second.
    pub p99_ms: Option<f64>,
}

/// How the lobby treated the users who waited in it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct LobbySummary {
    /// Users who waited and got in.
    pub admitted: u64,
    /// Users still waiting when the run ended.
    pub abandoned: u64,
    /// Their waits, in seconds: median, 90th percentile, longest.
    pub wait_p50_secs: f64,
    /// See `wait_p50_secs`.
    pub wait_p90_secs: f64,
    /// See `wait_p50_secs`.
    pub wait_max_secs: f64,
    /// Share admitted in order: nobody who queued after them got in more
    /// than one of their refresh intervals before them.
    pub in_order_share: f64,
    /// Waiters shown an estimate.
    pub estimated: u64,
    /// Share of those whose estimate was within 25 % of the actual wait.
    pub estimate_within_25pct_share: f64,
    /// The same per lane: general, then teachers and staff.
    pub estimate_within_25pct_share_by_lane: [f64; 2],
    /// Lobby pages shown with an estimate, every page of every waiter (a
    /// waiter reads the latest one).
    pub pages_estimated: u64,
    /// Share of those pages whose estimate was within 25 % of the wait
    /// left from that page.
    pub page_estimate_within_25pct_share: f64,
}

impl LobbySummary {
    fn of(queue: &[QueueRecord], abandoned: u64) -> LobbySummary {
        if queue.is_empty() {
            return LobbySummary {
                abandoned,
                ..LobbySummary::default()
            };
        }
        let mut waits: Vec<f64> = queue.iter().map(|r| r.admitted_at - r.queued_at).collect();
        waits.sort_by(f64::total_cmp);
        let at = |q: f64| waits[((waits.len() - 1) as f64 * q).round() as usize];
        let mut in_order = 0;
        let mut total = 0;
        for staff in [false, true] {
            let mut lane: Vec<&QueueRecord> = queue.iter().filter(|r| r.staff == staff).collect();
            lane.sort_by(|a, b| a.queued_at.total_cmp(&b.queued_at));
            let mut later_min = f64::INFINITY;
            for r in lane.iter().rev() {
                total += 1;
                if r.admitted_at <= later_min + r.refresh as f64 {
                    in_order += 1;
                }
                later_min = later_min.min(r.admitted_at);
            }
        }
        let (estimated, close) = estimates_judged(queue.iter());
        let by_lane = [false, true].map(|staff| {
            let (n, close) = estimates_judged(queue.iter().filter(|r| r.staff == staff));
            close as f64 / n.max(1) as f64
        });
        let pages: u64 = queue.iter().map(|r| u64::from(r.pages)).sum();
        let pages_close: u64 = queue.iter().map(|r| u64::from(r.pages_close)).sum();
        LobbySummary {
            admitted: queue.len() as u64,
            abandoned,
            wait_p50_secs: at(0.5),
            wait_p90_secs: at(0.9),
            wait_max_secs: at(1.0),
            in_order_share: in_order as f64 / total.max(1) as f64,
            estimated,
            estimate_within_25pct_share: close as f64 / estimated.max(1) as f64,
            estimate_within_25pct_share_by_lane: by_lane,
            pages_estimated: pages,
            page_estimate_within_25pct_share: pages_close as f64 / pages.max(1) as f64,
        }
    }
}

/// Of these waiters, how many were shown an estimate, and how many of
/// those waited within 25 % of it (from when it was shown to when they
/// got in; waits under a second judged as a second's).
fn estimates_judged<'a>(queue: impl Iterator<Item = &'a QueueRecord>) -> (u64, u64) {
    let (mut estimated, mut close) = (0, 0);
    for r in queue {
        if let Some(e) = r.estimate {
            estimated += 1;
            if estimate_close(e, r.admitted_at - r.shown_at) {
                close += 1;
            }
        }
    }
    (estimated, close)
}

/// Whether an estimate of `estimate` seconds was within 25 % of the
/// `actual` wait (a wait under a second judged as a second's).
pub fn estimate_close(estimate: f64, actual: f64) -> bool {
    (estimate - actual).abs() <= 0.25 * actual.max(1.0)
}

/// Everything the report shows.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
// Reports written before a field existed still read back.
#[serde(default)]
pub struct Summary {
    /// Per phase.
    pub phases: Vec<PhaseSummary>,
    /// Per stair, for a staircase.
    pub stairs: Vec<StairSummary>,
    /// Per second.
    pub timeline: Vec<SecondSummary>,
    /// Failed attempts, by kind (a refusal is not a failure until the
    /// retries run out).
    pub errors: Vec<(ErrorKind, u64)>,
    /// Failed journeys, by what ended them.
    pub failed_journeys: Vec<(ErrorKind, u64)>,
    /// Arrival to first home page, everyone.
    pub first_home: Percentiles,
    /// The same, teachers and staff.
    pub first_home_staff: Percentiles,
    /// `POST /login` with a password, served.
    pub fresh_sign_in: Percentiles,
    /// Whole password sign-ins (form, answer, retries and waits).
    pub sign_in_whole: Percentiles,
    /// The same, teachers and staff.
    pub sign_in_whole_staff: Percentiles,
    /// Password sign-ins that failed, everyone.
    pub sign_in_failed: u64,
    /// The same, teachers and staff.
    pub sign_in_failed_staff: u64,
    /// First page of a remembered device, served.
    pub resume: Percentiles,
    /// The lobby.
    pub lobby: LobbySummary,
    /// Attempts sent.
    pub attempts: u64,
    /// Logical requests (a retry is not a new one; a lobby refresh is).
    pub logical_requests: u64,
    /// `attempts / logical_requests`.
    pub retry_amplification: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(queued_at: f64, admitted_at: f64, estimate: Option<f64>) -> QueueRecord {
        QueueRecord {
            staff: false,
            queued_at,
            shown_at: queued_at,
            admitted_at,
            estimate,
            position: 1,
            pages: 0,
            pages_close: 0,
            refresh: 2,
            journey: 0,
            page: "home",
        }
    }

    #[test]
    fn teachers_first_home_pages_count_in_the_stair_they_arrived_in() {
        // Two stairs of 100 s: the run started 150 s ago, so now is in the
        // second one.
        let Some(ago) = Instant::now().checked_sub(Duration::from_secs(150)) else {
            // A monotonic clock this young cannot place a start 150 s back.
            return;
        };
        let stats = Stats {
            started: ago,
            ..Stats::new(Schedule::staircase(vec![1.0, 10.0], 100.0))
        };
        let at = |secs: u64| ago + Duration::from_secs(secs);
        // A teacher who arrived in the first stair and got home now, after
        // 130 s, counts there; one who arrived at 140 s, 10 s ago, in the
        // second; a pupil counts in neither.
        stats.first_home(at(20), true);
        stats.first_home(at(140), true);
        stats.first_home(at(140), false);
        let s = stats.summary();
        let [first, second] = [&s.stairs[0], &s.stairs[1]];
        assert_eq!(first.staff_first_home.count, 1);
        assert!(
            (129_000.0..=131_500.0).contains(&first.staff_first_home.p50),
            "{:?}",
            first.staff_first_home
        );
        assert_eq!(second.staff_first_home.count, 1);
        assert!(
            (9_000.0..=11_500.0).contains(&second.staff_first_home.p50),
            "{:?}",
            second.staff_first_home
        );
        assert_eq!(s.first_home.count, 3);
        assert_eq!(s.first_home_staff.count, 2);
    }

    #[test]
    fn estimates_are_judged_to_the_millisecond_and_short_waits_as_a_second() {
        // 1.0 s told for 0.8 s: within a quarter of a second; 1.4 s for
        // 1.0 s is not; 30 s for 26 s is within 25 %; no estimate, no judge.
        let queue = [
            rec(0.0, 0.8, Some(1.0)),
            rec(0.0, 1.0, Some(1.4)),
            rec(0.0, 26.0, Some(30.0)),
            rec(0.0, 5.0, None),
        ];
        assert_eq!(estimates_judged(queue.iter()), (3, 2));
    }

    #[test]
    fn lobby_order_and_estimates_are_judged_per_waiter() {
        let staff = |r: QueueRecord| QueueRecord { staff: true, ..r };
        let pages = |r: QueueRecord, pages, pages_close| QueueRecord {
            pages,
            pages_close,
            ..r
        };
        let queue = [
            pages(rec(0.0, 10.0, Some(10.0)), 2, 2),
            // The first page said 20 s, the next three were right.
            pages(rec(1.0, 11.0, Some(20.0)), 4, 3),
            // Queued third, got in 5 s before the first two, who were overtaken.
            rec(2.0, 5.0, None),
            staff(pages(rec(3.0, 12.0, Some(9.0)), 1, 1)),
        ];
        let s = LobbySummary::of(&queue, 1);
        assert_eq!(s.admitted, 4);
        assert_eq!(s.abandoned, 1);
        assert!(
            (s.in_order_share - 0.5).abs() < 1e-9,
            "{}",
            s.in_order_share
        );
        assert_eq!(s.estimated, 3);
        // 10 vs 10 and 9 vs 9 are right; 20 vs 10 is not.
        assert!((s.estimate_within_25pct_share - 2.0 / 3.0).abs() < 1e-9);
        assert_eq!(s.estimate_within_25pct_share_by_lane, [0.5, 1.0]);
        assert_eq!(s.pages_estimated, 7);
        assert!((s.page_estimate_within_25pct_share - 6.0 / 7.0).abs() < 1e-9);
        assert_eq!(s.wait_max_secs, 10.0);
    }
}
