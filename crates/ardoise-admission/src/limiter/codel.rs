//! A CoDel-style gate on queueing delay.
//!
//! Owns the decision "serve or shed" from the time a request waited
//! between being accepted and starting to be handled. It must not measure
//! that delay itself (the caller stamps the accept time) and must not
//! queue, wait or sleep.
//!
//! In-flight counts do not protect a CPU-bound node: requests queue in the
//! accept backlog and the runtime's run queue, before any middleware counts
//! them. Their queueing delay does show it. As CoDel does, the gate looks at
//! the *minimum* delay over an interval: a burst leaves some requests
//! served promptly, so the minimum stays low; a standing queue makes every
//! request wait, so the minimum rises above the target. Then, as in
//! Facebook's "controlled delay" for server queues, the gate refuses every
//! request that waited more than the target, until an interval's minimum
//! falls back under it. Outside overload only requests that waited longer
//! than a whole interval are refused (they are already stale).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use super::{micros, IntervalMin, Tick};

/// The gate's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CodelConfig {
    /// Acceptable standing queueing delay. Set it a few times above the
    /// delay seen at light load (the runtime's own scheduling jitter) and
    /// well under what a user notices. Default 5 ms.
    pub target: Duration,
    /// Window over which the minimum delay is taken; also the delay past
    /// which a request is refused even outside overload. About the
    /// duration of a burst to absorb. Default 100 ms.
    pub interval: Duration,
}

impl Default for CodelConfig {
    fn default() -> Self {
        Self {
            target: Duration::from_millis(5),
            interval: Duration::from_millis(100),
        }
    }
}

/// Serve the request or refuse it at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Serve it.
    Accept,
    /// Refuse it now (`503` with a jittered `Retry-After`).
    Shed,
}

/// The gate. Share one per node (or per class of traffic) behind an `Arc`.
#[derive(Debug)]
pub struct CodelGate {
    target_us: u64,
    interval_us: u64,
    window: IntervalMin,
    overloaded: AtomicBool,
    shed: AtomicU64,
}

impl CodelGate {
    /// A gate with `config`.
    pub fn new(config: CodelConfig) -> Self {
        Self {
            target_us: micros(config.target),
            interval_us: micros(config.interval).max(1),
            window: IntervalMin::new(),
            overloaded: AtomicBool::new(false),
            shed: AtomicU64::new(0),
        }
    }

    /// Judges a request that waited `queue_delay` before being handled,
    /// at `now` (since the node started).
    pub fn check(&self, queue_delay: Duration, now: Duration) -> Verdict {
        let delay = micros(queue_delay);
        if let Tick::Closed { min, idle } = self.window.record(delay, micros(now), self.interval_us)
        {
            self.overloaded
                .store(!idle && min > self.target_us, Ordering::Release);
        }
        let allowed = if self.overloaded.load(Ordering::Acquire) {
            self.target_us
        } else {
            self.interval_us
        };
        if delay > allowed {
            self.shed.fetch_add(1, Ordering::Relaxed);
            Verdict::Shed
        } else {
            Verdict::Accept
        }
    }

    /// Whether the last interval showed a standing queue.
    pub fn is_overloaded(&self) -> bool {
        self.overloaded.load(Ordering::Acquire)
    }

    /// Requests shed since start, for `/metrics`.
    pub fn shed_total(&self) -> u64 {
        self.shed.load(Ordering::Relaxed)
    }
}

impl Default for CodelGate {
    fn default() -> Self {
        Self::new(CodelConfig::default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// Feeds one request every `step_ms` from `start_ms` to `end_ms`, each
    /// with the delay `delay(t)`; returns how many were shed.
    fn run(
        gate: &CodelGate,
        start_ms: u64,
        end_ms: u64,
        step_ms: u64,
        delay: impl Fn(u64) -> u64,
    ) -> u64 {
        let mut shed = 0;
        let mut t = start_ms;
        while t < end_ms {
            if gate.check(ms(delay(t)), ms(t)) == Verdict::Shed {
                shed += 1;
            }
            t += step_ms;
        }
        shed
    }

    #[test]
    fn light_load_is_never_shed() {
        let gate = CodelGate::default();
        assert_eq!(run(&gate, 0, 10_000, 1, |t| t % 4), 0);
        assert!(!gate.is_overloaded());
    }

    #[test]
    fn a_short_burst_is_absorbed() {
        let gate = CodelGate::default();
        // Quiet, then 80 ms in which delays climb to 60 ms and drain, then quiet.
        let delay = |t: u64| match t {
            1_000..=1_040 => (t - 1_000) * 3 / 2,
            1_041..=1_080 => (1_080 - t) * 3 / 2,
            _ => 1,
        };
        assert_eq!(run(&gate, 0, 3_000, 1, delay), 0);
        assert!(!gate.is_overloaded());
    }

    #[test]
    fn a_standing_queue_is_shed_and_shedding_stops_when_it_drains() {
        let gate = CodelGate::default();
        // Every request waits 20–40 ms for two seconds: a standing queue.
        let standing = |t: u64| 20 + t % 21;
        assert_eq!(run(&gate, 0, 1_000, 1, |_| 1), 0);
        // The first interval of the standing queue is served; from the next one on, all is shed.
        let shed = run(&gate, 1_000, 3_000, 1, standing);
        assert!(gate.is_overloaded());
        assert_eq!(shed, 2_000 - 100);
        // While overloaded, a request that hardly waited is still served.
        assert_eq!(gate.check(ms(2), ms(3_000)), Verdict::Accept);
        // The queue drains: within two intervals nothing is shed any more.
        run(&gate, 3_001, 3_200, 1, |_| 1);
        assert!(!gate.is_overloaded());
        assert_eq!(run(&gate, 3_200, 4_000, 1, |t| t % 50), 0);
        assert_eq!(gate.shed_total(), shed);
    }

    #[test]
    fn outside_overload_only_requests_older_than_an_interval_are_shed() {
        let gate = CodelGate::default();
        assert_eq!(gate.check(ms(100), ms(0)), Verdict::Accept);
        assert_eq!(gate.check(ms(101), ms(1)), Verdict::Shed);
        assert!(!gate.is_overloaded());
    }

    #[test]
    fn an_idle_interval_ends_overload() {
        let gate = CodelGate::default();
        run(&gate, 0, 500, 1, |_| 30);
        assert!(gate.is_overloaded());
        // No request at all for a second, then one that waited 30 ms.
        assert_eq!(gate.check(ms(30), ms(1_500)), Verdict::Accept);
        assert!(!gate.is_overloaded());
    }
}
