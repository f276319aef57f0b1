//! An adaptive limit on admitted users or in-flight requests.
//!
//! Owns one number, the current limit, and how it moves with measured
//! queueing delay. It must not count users or requests itself (the caller
//! passes how many are in use) and must not enforce the limit (the lobby
//! and bulkheads do).
//!
//! # Why AIMD on queueing delay, not a latency gradient
//!
//! Gradient limits compare recent latency with a long-term baseline. In
//! Ardoise a request costs anything from a cached `304` to a 15 ms argon2
//! hash, so latency moves with the mix of requests, not with congestion.
//! Queueing delay does not: it stays near zero whenever the node keeps up,
//! whatever the mix, and grows only when demand exceeds capacity. That
//! yes/no congestion signal is exactly what AIMD needs, and AIMD's
//! behaviour is easy to reason about: once per interval, if the minimum
//! delay stayed above the target (a standing queue, as in CoDel), or if
//! half the requests or more waited longer than the target, the limit is
//! multiplied by `backoff`; otherwise, if the limit was actually
//! being used, it grows by `√limit` (at least 1), which climbs quickly from
//! a small limit and probes gently near a large one. The limit never leaves
//! `[floor, ceiling]`, the operator's bounds.
//!
//! Why the median as well as the minimum: the runtime wakes the tasks of
//! many sockets at once after each poll of the operating system, so the
//! first of each batch waits almost nothing even on a saturated node; the
//! minimum then stays low while most requests queue (seen on a node under
//! a CPU quota at 10× its capacity: the limit grew to three times what it
//! could serve). Half the requests above the target is a queue as surely.
//!
//! Queueing delay before a request is handled does not show every
//! bottleneck: requests waiting for a database connection, or for the CPU
//! after their first poll, have already passed the point where delay is
//! measured. So the caller may also report an overload seen otherwise (a
//! full bulkhead, a shed request) with [`AdaptiveLimit::record_overload`];
//! the interval then counts as congested, as a lost packet does for TCP.
//!
//! Before the first congested interval the limit is in *slow start*, as in
//! TCP: it grows by half of itself per interval, so that a node that starts
//! small when the 9:15 wave arrives finds its capacity in seconds rather
//! than minutes. The first standing queue ends slow start for good.
//!
//! Admitted users are never cut off, so a limit that falls below the number
//! of admitted users only stops new admissions until some leave or the
//! delay falls.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use super::{micros, IntervalMin, Tick};

/// The adaptive limit's settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdaptiveLimitConfig {
    /// The operator's floor: the limit never goes below it (at least 1).
    /// Default 8.
    pub floor: u64,
    /// The operator's ceiling: the limit never goes above it. Default 100 000.
    pub ceiling: u64,
    /// Where the limit starts, clamped into `[floor, ceiling]`. Default 64.
    pub initial: u64,
    /// How often the limit may move. Several times the
    /// [`super::CodelConfig::interval`], so that each move can show its
    /// effect before the next. Default 1 s.
    pub interval: Duration,
    /// Standing queueing delay above which the limit shrinks; normally the
    /// delay gate's target. Default 5 ms.
    pub delay_target: Duration,
    /// Overloads seen elsewhere ([`AdaptiveLimit::record_overload`]: a
    /// request shed, a bulkhead full) shrink the limit when they are at
    /// least this share of an interval's requests (those observed plus the
    /// overloads), in `[0, 1]`. Default 0: any one shrinks it.
    pub overload_share: f64,
    /// Multiplicative decrease per congested interval, in `(0, 1)`.
    /// Default 0.9.
    pub backoff: f64,
    /// The limit grows only if at some point of the interval at least this
    /// share of it was in use: an unused limit says nothing about capacity.
    /// Default 0.5.
    pub grow_above_use: f64,
    /// Grow by half the limit per interval until the first congested
    /// interval. Default true.
    pub slow_start: bool,
    /// After slow start, grow by at least this share of the limit per
    /// interval (else by `√limit`): with users who count against capacity
    /// long after their last click, a large limit must be reached in tens
    /// of seconds. Default 0 (pure AIMD).
    pub growth: f64,
}

impl Default for AdaptiveLimitConfig {
    fn default() -> Self {
        Self {
            floor: 8,
            ceiling: 100_000,
            initial: 64,
            interval: Duration::from_secs(1),
            delay_target: Duration::from_millis(5),
            overload_share: 0.0,
            backoff: 0.9,
            grow_above_use: 0.5,
            slow_start: true,
            growth: 0.0,
        }
    }
}

/// The limit. Share one per quantity (admitted users, in-flight requests)
/// behind an `Arc`; [`AdaptiveLimit::observe`] is lock-free.
#[derive(Debug)]
pub struct AdaptiveLimit {
    floor: u64,
    ceiling: u64,
    interval_us: u64,
    target_us: u64,
    backoff: f64,
    grow_above_use: f64,
    growth: f64,
    limit: AtomicU64,
    window: IntervalMin,
    max_in_use: AtomicU64,
    slow_start: AtomicBool,
    overload_share: f64,
    overloads: AtomicU64,
    /// Samples of the current interval, and those above the target.
    samples: AtomicU64,
    above_target: AtomicU64,
}

impl AdaptiveLimit {
    /// A limit with `config`, its bounds made consistent: the floor is at
    /// least 1, the ceiling at least the floor, the backoff within
    /// `[0.1, 0.99]`.
    pub fn new(config: AdaptiveLimitConfig) -> Self {
        let floor = config.floor.max(1);
        let ceiling = config.ceiling.max(floor);
        let backoff = if config.backoff.is_finite() {
            config.backoff.clamp(0.1, 0.99)
        } else {
            AdaptiveLimitConfig::default().backoff
        };
        let grow_above_use = if config.grow_above_use.is_finite() {
            config.grow_above_use.clamp(0.0, 1.0)
        } else {
            AdaptiveLimitConfig::default().grow_above_use
        };
        let overload_share = if config.overload_share.is_finite() {
            config.overload_share.clamp(0.0, 1.0)
        } else {
            0.0
        };
        let growth = if config.growth.is_finite() {
            config.growth.clamp(0.0, 1.0)
        } else {
            0.0
        };
        Self {
            floor,
            ceiling,
            growth,
            interval_us: micros(config.interval).max(1),
            target_us: micros(config.delay_target),
            backoff,
            grow_above_use,
            limit: AtomicU64::new(config.initial.clamp(floor, ceiling)),
            window: IntervalMin::new(),
            max_in_use: AtomicU64::new(0),
            slow_start: AtomicBool::new(config.slow_start),
            overload_share,
            overloads: AtomicU64::new(0),
            samples: AtomicU64::new(0),
            above_target: AtomicU64::new(0),
        }
    }

    /// The current limit.
    pub fn limit(&self) -> u64 {
        self.limit.load(Ordering::Acquire)
    }

    /// The operator's bounds, `(floor, ceiling)`.
    pub fn bounds(&self) -> (u64, u64) {
        (self.floor, self.ceiling)
    }

    /// Records an overload seen other than by queueing delay (a bulkhead
    /// refusing, a request shed): enough of them (see
    /// [`AdaptiveLimitConfig::overload_share`]) and the current interval
    /// counts as congested.
    pub fn record_overload(&self) {
        self.overloads.fetch_add(1, Ordering::AcqRel);
    }

    /// Records one request that waited `queue_delay` while `in_use` users
    /// (or requests) were admitted, at `now` since the node started.
    /// Returns the new limit when this sample closed an interval and the
    /// limit moved.
    pub fn observe(&self, queue_delay: Duration, in_use: u64, now: Duration) -> Option<u64> {
        self.max_in_use.fetch_max(in_use, Ordering::AcqRel);
        let delay = micros(queue_delay);
        let Tick::Closed { min, idle } = self.window.record(delay, micros(now), self.interval_us)
        else {
            self.samples.fetch_add(1, Ordering::Relaxed);
            if delay > self.target_us {
                self.above_target.fetch_add(1, Ordering::Relaxed);
            }
            return None;
        };
        let used = self.max_in_use.swap(in_use, Ordering::AcqRel);
        let overloads = self.overloads.swap(0, Ordering::AcqRel);
        // This sample opens the next interval.
        let samples = self.samples.swap(1, Ordering::AcqRel);
        let overload_seen = overloads > 0
            && overloads as f64 >= self.overload_share * samples.saturating_add(overloads) as f64;
        let above = self
            .above_target
            .swap(u64::from(delay > self.target_us), Ordering::AcqRel);
        if idle {
            return None;
        }
        let median_above = samples > 0 && above * 2 >= samples;
        let current = self.limit();
        let next = if min > self.target_us || median_above || overload_seen {
            self.slow_start.store(false, Ordering::Release);
            let shrunk = (current as f64 * self.backoff) as u64;
            shrunk.min(current.saturating_sub(1)).max(self.floor)
        } else if used as f64 >= current as f64 * self.grow_above_use {
            let additive = ((current as f64).sqrt() as u64)
                .max((current as f64 * self.growth) as u64)
                .max(1);
            let step = if self.slow_start.load(Ordering::Acquire) {
                additive.max(current / 2)
            } else {
                additive
            };
            current.saturating_add(step).min(self.ceiling)
        } else {
            current
        };
        if next == current {
            return None;
        }
        self.limit.store(next, Ordering::Release);
        Some(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn config(floor: u64, ceiling: u64, initial: u64) -> AdaptiveLimitConfig {
        // AIMD alone; slow start has its own tests.
        AdaptiveLimitConfig {
            floor,
            ceiling,
            initial,
            slow_start: false,
            ..AdaptiveLimitConfig::default()
        }
    }

    /// One second of requests, one every 10 ms, each waiting `delay_ms`
    /// with the limit fully used. Returns the limit afterwards.
    fn second(limit: &AdaptiveLimit, start_ms: u64, delay_ms: u64) -> u64 {
        for t in (start_ms..start_ms + 1_000).step_by(10) {
            limit.observe(ms(delay_ms), limit.limit(), ms(t));
        }
        limit.limit()
    }

    #[test]
    fn the_limit_shrinks_under_rising_delay_and_recovers_when_it_falls() {
        let limit = AdaptiveLimit::new(config(10, 1_000, 400));
        // Delay per second: rising past the 5 ms target, then falling back.
        let series = [1, 2, 3, 8, 15, 30, 60, 90, 60, 30, 4, 2, 1, 1, 1, 1, 1, 1];
        let limits: Vec<u64> = series
            .iter()
            .enumerate()
            .map(|(i, &delay)| second(&limit, i as u64 * 1_000, delay))
            .collect();
        // Each second's verdict lands with the first sample of the next one.
        let moves: Vec<i64> = limits
            .windows(2)
            .map(|w| w[1] as i64 - w[0] as i64)
            .collect();
        for (i, &m) in moves.iter().enumerate() {
            let delay_of_closed_second = series[i];
            if delay_of_closed_second > 5 {
                assert!(
                    m < 0,
                    "second {i}: delay {delay_of_closed_second} ms but limit moved {m}"
                );
            } else {
                assert!(
                    m > 0,
                    "second {i}: delay {delay_of_closed_second} ms but limit moved {m}"
                );
            }
        }
        let lowest = *limits.iter().min().unwrap_or(&0);
        assert!(lowest < 400 * 6 / 10, "lowest {lowest}");
        assert!(limits[limits.len() - 1] > lowest + 100, "{limits:?}");
    }

    #[test]
    fn the_limit_settles_around_the_capacity_of_a_simulated_node_and_follows_it() {
        // A node that serves `capacity` users without queueing; past that,
        // the queue grows with the excess.
        let limit = AdaptiveLimit::new(config(10, 5_000, 50));
        let mut t = 0;
        let mut run = |capacity: u64, seconds: u64| {
            let mut seen = Vec::new();
            for _ in 0..seconds * 100 {
                let in_use = limit.limit();
                let delay = if in_use > capacity {
                    1 + (in_use - capacity) / 2
                } else {
                    1
                };
                limit.observe(ms(delay), in_use, ms(t));
                t += 10;
                seen.push(limit.limit());
            }
            seen
        };
        let settled = run(600, 120);
        let tail = &settled[settled.len() - 3_000..];
        assert!(
            tail.iter().all(|&l| (480..=720).contains(&l)),
            "{:?}",
            &tail[..20]
        );
        // Capacity falls (a costly job starts): the limit follows it down.
        let fallen = run(150, 60);
        let tail = &fallen[fallen.len() - 3_000..];
        assert!(
            tail.iter().all(|&l| (110..=190).contains(&l)),
            "{:?}",
            &tail[..20]
        );
        // And back up when it ends.
        let recovered = run(600, 60);
        let tail = &recovered[recovered.len() - 2_000..];
        assert!(
            tail.iter().all(|&l| (480..=720).contains(&l)),
            "{:?}",
            &tail[..20]
        );
    }

    #[test]
    fn the_limit_never_leaves_the_operator_bounds() {
        let limit = AdaptiveLimit::new(config(20, 200, 100));
        let mut t = 0;
        let mut seen = Vec::new();
        // A minute of huge delays, then ten minutes of none.
        for second in 0..660u64 {
            let delay = if second < 60 { 500 } else { 0 };
            for _ in 0..10 {
                limit.observe(ms(delay), 1_000_000, ms(t));
                t += 100;
            }
            seen.push(limit.limit());
        }
        assert_eq!(seen[59], 20);
        assert_eq!(seen[659], 200);
        assert!(seen.iter().all(|l| (20..=200).contains(l)));
    }

    #[test]
    fn slow_start_finds_a_large_capacity_in_seconds_then_growth_turns_additive() {
        let limit = AdaptiveLimit::new(AdaptiveLimitConfig {
            slow_start: true,
            ..config(10, 100_000, 100)
        });
        // Ten quiet seconds from 100: ×1.5 a second reaches thousands.
        let mut t = 0;
        for _ in 0..10 {
            second(&limit, t, 1);
            t += 1_000;
        }
        let grown = limit.limit();
        assert!(grown > 3_000, "{grown}");
        // One congested second ends slow start for good (each second's
        // verdict lands with the first sample of the next one).
        second(&limit, t, 20);
        t += 1_000;
        let before_backoff = limit.limit();
        second(&limit, t, 1);
        t += 1_000;
        let after_backoff = limit.limit();
        assert!(after_backoff < before_backoff);
        second(&limit, t, 1);
        let step = limit.limit() - after_backoff;
        assert!(
            step <= (after_backoff as f64).sqrt() as u64 + 1,
            "step {step}"
        );
    }

    #[test]
    fn without_slow_start_growth_is_additive_from_the_start() {
        let limit = AdaptiveLimit::new(config(10, 100_000, 100));
        let mut t = 0;
        for _ in 0..10 {
            second(&limit, t, 1);
            t += 1_000;
        }
        assert!(limit.limit() < 250, "{}", limit.limit());
    }

    #[test]
    fn most_requests_queueing_shrinks_the_limit_even_when_some_wait_nothing() {
        // Batches woken together: the first of each waits nothing, the
        // others 8 to 20 ms. The minimum stays at 0; the median does not.
        let limit = AdaptiveLimit::new(config(10, 1_000, 400));
        second(&limit, 0, 1);
        let before = limit.limit();
        for t in (1_000..2_010).step_by(10) {
            let delay = if t % 40 == 0 { 0 } else { 8 + t % 13 };
            limit.observe(ms(delay), limit.limit(), ms(t));
        }
        let after = limit.limit();
        assert!(after < before, "{before} then {after}");
        // A quarter of the requests waiting long is not a queue.
        for t in (2_010..4_010).step_by(10) {
            let delay = if t % 40 == 0 { 30 } else { 1 };
            limit.observe(ms(delay), limit.limit(), ms(t));
        }
        assert!(limit.limit() > after, "{after} then {}", limit.limit());
    }

    #[test]
    fn an_overload_seen_elsewhere_shrinks_the_limit_even_with_short_delays() {
        let limit = AdaptiveLimit::new(config(10, 1_000, 400));
        second(&limit, 0, 1);
        let before = limit.limit();
        // Short delays, but a bulkhead refused requests during the second.
        limit.observe(ms(1), before, ms(1_000));
        limit.record_overload();
        second(&limit, 1_010, 1);
        let after = limit.limit();
        assert!(after < before, "{before} then {after}");
        // The signal is spent: the next quiet second grows again.
        second(&limit, 2_010, 1);
        assert!(limit.limit() > after);
    }

    #[test]
    fn with_an_overload_share_a_few_overloads_among_many_requests_do_not_shrink_the_limit() {
        let limit = AdaptiveLimit::new(AdaptiveLimitConfig {
            overload_share: 0.05,
            ..config(10, 1_000, 400)
        });
        second(&limit, 0, 1);
        let before = limit.limit();
        // A hundred requests in the second with short delays, two shed.
        limit.record_overload();
        limit.record_overload();
        second(&limit, 1_000, 1);
        let grown = limit.limit();
        assert!(grown > before, "{before} then {grown}");
        // Ten shed: a twentieth of the second's requests, the limit shrinks.
        for _ in 0..10 {
            limit.record_overload();
        }
        second(&limit, 2_000, 1);
        assert!(limit.limit() < grown, "{grown} then {}", limit.limit());
    }

    #[test]
    fn a_growth_share_climbs_faster_than_the_square_root() {
        let limit = AdaptiveLimit::new(AdaptiveLimitConfig {
            growth: 0.1,
            ..config(10, 100_000, 5_000)
        });
        second(&limit, 0, 1);
        second(&limit, 1_000, 1);
        // 10 % rather than √5000 ≈ 70.
        assert_eq!(limit.limit(), 5_500);
    }

    #[test]
    fn an_unused_limit_does_not_grow() {
        let limit = AdaptiveLimit::new(config(10, 1_000, 100));
        for t in (0..10_000).step_by(10) {
            limit.observe(ms(1), 20, ms(t));
        }
        assert_eq!(limit.limit(), 100);
        for t in (10_000..20_000).step_by(10) {
            limit.observe(ms(1), 60, ms(t));
        }
        assert!(limit.limit() > 100);
    }

    #[test]
    fn an_idle_node_leaves_the_limit_alone() {
        let limit = AdaptiveLimit::new(config(10, 1_000, 100));
        limit.observe(ms(50), 100, ms(0));
        // The next request comes a minute later: the congested second before
        // the silence says nothing about now.
        assert_eq!(limit.observe(ms(50), 100, ms(60_000)), None);
        assert_eq!(limit.limit(), 100);
    }

    #[test]
    fn inconsistent_bounds_are_made_consistent() {
        let limit = AdaptiveLimit::new(AdaptiveLimitConfig {
            floor: 0,
            ceiling: 0,
            initial: 50,
            backoff: f64::NAN,
            ..AdaptiveLimitConfig::default()
        });
        assert_eq!(limit.bounds(), (1, 1));
        assert_eq!(limit.limit(), 1);
    }
}
