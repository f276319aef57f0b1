//! The arrival schedule of the 9:15 wave: open loop, users arrive when the
//! schedule says, whatever the server does.
//!
//! A background rate, then at "9:15" a step to the peak rate, held for a
//! while, then a tail decaying exponentially back to the background. Or a
//! staircase of rates, each held for the same time, to draw goodput and
//! latency against offered load in one run.
//! Arrival times come from a Poisson process of that rate (by thinning),
//! from a seed, so a run can be replayed. Pure: no clock, no I/O.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// The shape of the wave.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
// Reports written before a field existed still read back.
#[serde(default)]
pub struct Schedule {
    /// Arrivals per second before the step.
    pub background: f64,
    /// Arrivals per second during the step.
    pub peak: f64,
    /// When the step starts, in seconds from the start of the run.
    pub step_at: f64,
    /// How long the peak rate holds, in seconds.
    pub hold: f64,
    /// Time constant of the decay back to the background, in seconds.
    pub tail: f64,
    /// Arrivals stop after this many seconds.
    pub duration: f64,
    /// A staircase instead of the wave: these rates, each held for
    /// `stair_secs`, one after the other (the wave's fields then only name
    /// the phases).
    pub stairs: Vec<f64>,
    /// How long each stair lasts, in seconds.
    pub stair_secs: f64,
}

/// A part of the run, for the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Before the step.
    Background,
    /// The peak rate.
    Step,
    /// The decaying tail.
    Tail,
    /// After the last arrival, while journeys finish.
    Drain,
}

impl Phase {
    /// Every phase, in order.
    pub const ALL: [Phase; 4] = [Phase::Background, Phase::Step, Phase::Tail, Phase::Drain];

    /// Its name in the report.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Background => "background",
            Phase::Step => "step",
            Phase::Tail => "tail",
            Phase::Drain => "drain",
        }
    }
}

impl Schedule {
    /// The arrival rate at `t` seconds.
    pub fn rate(&self, t: f64) -> f64 {
        if t < 0.0 || t >= self.duration {
            0.0
        } else if let Some(i) = self.stair(t) {
            self.stairs[i]
        } else if t < self.step_at {
            self.background
        } else if t < self.step_at + self.hold {
            self.peak
        } else {
            let since = t - self.step_at - self.hold;
            let tail = self.tail.max(1e-9);
            self.background + (self.peak - self.background) * (-since / tail).exp()
        }
    }

    /// A staircase of `rates`, each held for `secs`.
    pub fn staircase(rates: Vec<f64>, secs: f64) -> Schedule {
        let duration = rates.len() as f64 * secs;
        Schedule {
            background: rates.first().copied().unwrap_or(0.0),
            peak: rates.iter().copied().fold(0.0, f64::max),
            step_at: 0.0,
            hold: duration,
            tail: 1.0,
            duration,
            stairs: rates,
            stair_secs: secs,
        }
    }

    /// Which stair second `t` is on, for a staircase (`None` for the wave
    /// and after the last stair).
    pub fn stair(&self, t: f64) -> Option<usize> {
        if self.stairs.is_empty() || t < 0.0 || t >= self.duration || self.stair_secs <= 0.0 {
            return None;
        }
        Some(((t / self.stair_secs) as usize).min(self.stairs.len() - 1))
    }

    /// The phase of second `t` (a staircase is all step, then the drain).
    pub fn phase(&self, t: f64) -> Phase {
        if t >= self.duration {
            Phase::Drain
        } else if !self.stairs.is_empty() {
            Phase::Step
        } else if t < self.step_at {
            Phase::Background
        } else if t < self.step_at + self.hold {
            Phase::Step
        } else {
            Phase::Tail
        }
    }

    /// Seconds of `phase` within the arrival period (the drain has none).
    pub fn phase_secs(&self, phase: Phase) -> f64 {
        let step_end = (self.step_at + self.hold).min(self.duration);
        if !self.stairs.is_empty() {
            return if phase == Phase::Step {
                self.duration
            } else {
                0.0
            };
        }
        match phase {
            Phase::Background => self.step_at.min(self.duration),
            Phase::Step => (step_end - self.step_at).max(0.0),
            Phase::Tail => (self.duration - step_end).max(0.0),
            Phase::Drain => 0.0,
        }
    }

    /// The highest rate, to thin from.
    fn max_rate(&self) -> f64 {
        self.stairs
            .iter()
            .copied()
            .fold(self.background.max(self.peak), f64::max)
    }

    /// Arrival times in seconds, at most `max` of them, from `seed`.
    pub fn arrivals(&self, seed: u64, max: usize) -> Vec<f64> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let lambda = self.max_rate();
        let mut out = Vec::new();
        if lambda <= 0.0 || !lambda.is_finite() {
            return out;
        }
        let mut t = 0.0;
        while out.len() < max {
            // Exponential gap at the highest rate, kept with probability
            // rate(t) / highest rate: a Poisson process of rate(t).
            let u: f64 = rng.gen_range(f64::EPSILON..1.0);
            t += -u.ln() / lambda;
            if t >= self.duration {
                break;
            }
            if rng.gen::<f64>() * lambda < self.rate(t) {
                out.push(t);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wave() -> Schedule {
        Schedule {
            background: 10.0,
            peak: 200.0,
            step_at: 10.0,
            hold: 10.0,
            tail: 5.0,
            duration: 60.0,
            stairs: Vec::new(),
            stair_secs: 0.0,
        }
    }

    #[test]
    fn a_staircase_holds_each_rate_for_its_time() {
        let s = Schedule::staircase(vec![10.0, 50.0, 200.0], 20.0);
        assert_eq!(s.duration, 60.0);
        assert_eq!(s.stair(0.0), Some(0));
        assert_eq!(s.stair(19.9), Some(0));
        assert_eq!(s.stair(20.0), Some(1));
        assert_eq!(s.stair(59.9), Some(2));
        assert_eq!(s.stair(60.0), None);
        assert_eq!(s.phase(30.0), Phase::Step);
        assert_eq!(s.phase(61.0), Phase::Drain);
        assert_eq!(Phase::ALL.map(|p| s.phase_secs(p)), [0.0, 60.0, 0.0, 0.0]);
        let arrivals = s.arrivals(5, usize::MAX);
        let count =
            |from: f64, to: f64| arrivals.iter().filter(|t| (from..to).contains(*t)).count() as f64;
        // Expected 200, 1,000 and 4,000.
        assert!((160.0..=240.0).contains(&count(0.0, 20.0)));
        assert!((900.0..=1_100.0).contains(&count(20.0, 40.0)));
        assert!((3_800.0..=4_200.0).contains(&count(40.0, 60.0)));
        assert!(wave().stair(15.0).is_none());
    }

    #[test]
    fn the_rate_steps_up_holds_and_decays_back_to_the_background() {
        let s = wave();
        let cases = [
            (0.0, 10.0),
            (9.99, 10.0),
            (10.0, 200.0),
            (19.99, 200.0),
            (20.0, 200.0),
            (25.0, 10.0 + 190.0 / std::f64::consts::E),
            (59.0, 10.0 + 190.0 * (-39.0f64 / 5.0).exp()),
            (60.0, 0.0),
        ];
        for (t, rate) in cases {
            assert!((s.rate(t) - rate).abs() < 1e-9, "t = {t}: {}", s.rate(t));
        }
        assert_eq!(s.phase(5.0), Phase::Background);
        assert_eq!(s.phase(15.0), Phase::Step);
        assert_eq!(s.phase(30.0), Phase::Tail);
        assert_eq!(s.phase(61.0), Phase::Drain);
        assert_eq!(Phase::ALL.map(|p| s.phase_secs(p)), [10.0, 10.0, 40.0, 0.0]);
    }

    #[test]
    fn arrivals_follow_the_rate_in_each_phase() {
        let s = wave();
        let arrivals = s.arrivals(2021, usize::MAX);
        let count =
            |from: f64, to: f64| arrivals.iter().filter(|t| (from..to).contains(*t)).count() as f64;
        // Expected: 100 before the step, 2 000 during it, ~950 + 400 after.
        let background = count(0.0, 10.0);
        let step = count(10.0, 20.0);
        let tail = count(20.0, 60.0);
        assert!((70.0..=130.0).contains(&background), "{background}");
        assert!((1_850.0..=2_150.0).contains(&step), "{step}");
        let expected_tail = 10.0 * 40.0 + 190.0 * 5.0 * (1.0 - (-8.0f64).exp());
        assert!((tail - expected_tail).abs() < 0.1 * expected_tail, "{tail}");
        assert!(arrivals.windows(2).all(|w| w[0] <= w[1]));
    }

    #[test]
    fn arrivals_are_reproducible_and_bounded() {
        let s = wave();
        assert_eq!(s.arrivals(7, 1_000), s.arrivals(7, 1_000));
        assert_ne!(s.arrivals(7, 1_000), s.arrivals(8, 1_000));
        assert_eq!(s.arrivals(7, 50).len(), 50);
        let none = Schedule {
            background: 0.0,
            peak: 0.0,
            ..s.clone()
        };
        assert!(none.arrivals(7, 10).is_empty());
    }
}
