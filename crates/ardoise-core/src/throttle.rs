//! Per-account throttling of failed sign-ins, on every sign-in path
//! (password form, API, activation codes).
//!
//! The first few failures cost nothing; then each failure locks the account
//! for a growing delay (2 s, 4 s, 8 s… capped at 15 minutes), so the owner
//! who mistyped is never locked out for long. Within a day no more than
//! [`Policy::daily_cap`] failures are possible: at the cap the account is
//! locked until the day's window ends. The count is per account, never per
//! IP address: a school's 1,500 pupils share one address.

use crate::UnixTime;

/// Throttling parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Failures allowed before any delay.
    pub free_failures: u32,
    /// First delay, in seconds; doubled at each further failure.
    pub base_delay_secs: i64,
    /// Longest delay, in seconds, below the daily cap.
    pub max_delay_secs: i64,
    /// Most failures in one window.
    pub daily_cap: u32,
    /// Length of the counting window, in seconds.
    pub window_secs: i64,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            free_failures: 5,
            base_delay_secs: 2,
            max_delay_secs: 15 * 60,
            daily_cap: 100,
            window_secs: 24 * 3600,
        }
    }
}

/// What is remembered of an account's failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct State {
    /// Failures in the current window.
    pub failures: u32,
    /// When the current window began.
    pub window_start: UnixTime,
    /// No attempt is examined before this time.
    pub locked_until: UnixTime,
}

/// The answer to "may this account try now?".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// The attempt may be examined.
    Allowed,
    /// The account is locked until this time; the attempt is refused
    /// without looking at the password.
    LockedUntil(UnixTime),
}

impl Policy {
    /// Whether an attempt may be examined at `now`.
    pub fn check(&self, state: &State, now: UnixTime) -> Decision {
        if now < state.locked_until {
            Decision::LockedUntil(state.locked_until)
        } else {
            Decision::Allowed
        }
    }

    /// The state after a failed attempt at `now`.
    pub fn after_failure(&self, state: &State, now: UnixTime) -> State {
        let mut s = *state;
        if s.failures == 0 || now >= s.window_start + self.window_secs {
            s = State {
                failures: 0,
                window_start: now,
                locked_until: 0,
            };
        }
        s.failures = s.failures.saturating_add(1);
        if s.failures >= self.daily_cap {
            s.locked_until = s.window_start + self.window_secs;
        } else if s.failures > self.free_failures {
            let exponent = (s.failures - self.free_failures - 1).min(30);
            let delay = self
                .base_delay_secs
                .saturating_mul(1_i64 << exponent)
                .min(self.max_delay_secs);
            s.locked_until = now + delay;
        }
        s
    }

    /// The state after a successful sign-in: failures are forgotten.
    pub fn after_success(&self) -> State {
        State::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: UnixTime = 1_800_000_000;

    #[test]
    fn growing_delays_after_free_failures() {
        let p = Policy::default();
        let mut s = State::default();
        // (failure number, expected lock length after it)
        let table = [
            (1, 0),
            (5, 0),
            (6, 2),
            (7, 4),
            (8, 8),
            (12, 128),
            (14, 512),
            (15, 900),
            (40, 900),
        ];
        let mut n = 0;
        for (count, delay) in table {
            while n < count {
                let now = s.locked_until.max(T0);
                s = p.after_failure(&s, now);
                n += 1;
            }
            let now = s.locked_until.max(T0);
            let expected = if delay == 0 {
                Decision::Allowed
            } else {
                Decision::LockedUntil(now)
            };
            let at_failure = now - delay;
            assert_eq!(p.check(&s, at_failure), expected, "after {count} failures");
        }
    }

    #[test]
    fn at_most_the_daily_cap_of_guesses_per_window() {
        let p = Policy::default();
        let mut s = State::default();
        let mut now = T0;
        let mut guesses = 0;
        // An attacker guesses as fast as the lock allows for a whole day.
        while now < T0 + p.window_secs {
            match p.check(&s, now) {
                Decision::Allowed => {
                    s = p.after_failure(&s, now);
                    guesses += 1;
                }
                Decision::LockedUntil(t) => now = t,
            }
        }
        assert!(guesses <= 100, "{guesses} guesses in a day");
        assert!(
            guesses >= 90,
            "the lock should not be far stricter than needed: {guesses}"
        );
    }

    #[test]
    fn success_forgets_failures_and_a_new_day_starts_afresh() {
        let p = Policy::default();
        let mut s = State::default();
        for i in 0..7 {
            s = p.after_failure(&s, T0 + i * 1000);
        }
        assert!(matches!(p.check(&s, T0 + 6000), Decision::LockedUntil(_)));
        assert_eq!(p.check(&p.after_success(), T0 + 6000), Decision::Allowed);
        let next_day = p.after_failure(&s, T0 + p.window_secs + 10);
        assert_eq!(next_day.failures, 1);
        assert_eq!(
            p.check(&next_day, T0 + p.window_secs + 10),
            Decision::Allowed
        );
    }

    #[test]
    fn the_owner_is_never_locked_for_more_than_a_quarter_hour_below_the_cap() {
        let p = Policy::default();
        let mut s = State::default();
        for i in 0..99 {
            let now = T0 + i * 10_000;
            s = p.after_failure(&s, now.max(s.locked_until));
            assert!(s.locked_until - now.max(s.locked_until - 900) <= 900);
        }
    }
}
