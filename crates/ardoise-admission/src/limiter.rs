//! Capacity measured, not guessed: what to refuse, and when to come back.
//!
//! Owns four small mechanisms, each cheap enough to run on every request:
//!
//! - [`CodelGate`]: refuses requests that waited too long before being
//!   handled, CoDel-style, once a standing queue has formed;
//! - [`AdaptiveLimit`]: an AIMD limit on admitted users or in-flight
//!   requests, driven by the same queueing delay;
//! - [`Bulkhead`]: a separate in-flight limit per class of work, so that
//!   one class filling up never takes capacity from another;
//! - [`retry_after_secs`]: jittered `Retry-After` values.
//!
//! It must not read a clock, sleep, wait or spawn: `now` is a
//! [`Duration`] since the node started (from a monotonic clock), queueing
//! delays are measured by the caller, and refusal is immediate. Everything
//! here is `Sync` and lock-free, to be shared behind an `Arc`.

mod adaptive;
mod bulkhead;
mod codel;
mod jitter;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

pub use adaptive::{AdaptiveLimit, AdaptiveLimitConfig};
pub use bulkhead::{Bulkhead, BulkheadClass, BulkheadLimits, Bulkheads, Full, OwnedPermit, Permit};
pub use codel::{CodelConfig, CodelGate, Verdict};
pub use jitter::retry_after_secs;

/// Whole microseconds of `d`, saturating.
fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// What [`IntervalMin::record`] saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tick {
    /// The sample joined the current interval.
    Within,
    /// The sample closed the previous interval and opened a new one.
    Closed {
        /// The smallest sample of the interval just closed.
        min: u64,
        /// Whether a whole interval passed with no sample at all (or this
        /// is the first sample ever): nothing was waiting, so `min` is stale.
        idle: bool,
    },
}

/// The minimum of a stream of samples over consecutive intervals, without
/// a lock. An interval opens with the first sample after the previous one
/// closed, and lasts `interval`. Concurrent callers may occasionally count
/// a sample in the neighbouring interval; a minimum over a hundred
/// milliseconds does not mind.
#[derive(Debug)]
struct IntervalMin {
    /// End of the current interval, in µs since start; 0 before the first
    /// sample.
    end_us: AtomicU64,
    min: AtomicU64,
}

impl IntervalMin {
    fn new() -> Self {
        Self {
            end_us: AtomicU64::new(0),
            min: AtomicU64::new(u64::MAX),
        }
    }

    fn record(&self, sample: u64, now_us: u64, interval_us: u64) -> Tick {
        let end = self.end_us.load(Ordering::Acquire);
        if now_us < end {
            self.min.fetch_min(sample, Ordering::AcqRel);
            return Tick::Within;
        }
        let next_end = now_us.saturating_add(interval_us.max(1));
        match self
            .end_us
            .compare_exchange(end, next_end, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => {
                let min = self.min.swap(sample, Ordering::AcqRel);
                let idle = end == 0 || now_us >= end.saturating_add(interval_us);
                Tick::Closed { min, idle }
            }
            Err(_) => {
                // Another caller closed the interval first; join the new one.
                self.min.fetch_min(sample, Ordering::AcqRel);
                Tick::Within
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interval_min_reports_the_minimum_of_each_closed_interval() {
        let w = IntervalMin::new();
        assert_eq!(
            w.record(50, 1_000, 100),
            Tick::Closed {
                min: u64::MAX,
                idle: true
            }
        );
        assert_eq!(w.record(30, 1_050, 100), Tick::Within);
        assert_eq!(w.record(70, 1_099, 100), Tick::Within);
        assert_eq!(
            w.record(90, 1_100, 100),
            Tick::Closed {
                min: 30,
                idle: false
            }
        );
        assert_eq!(w.record(10, 1_150, 100), Tick::Within);
        // A silent interval in between: the next close is marked idle.
        assert_eq!(
            w.record(40, 1_400, 100),
            Tick::Closed {
                min: 10,
                idle: true
            }
        );
    }
}
