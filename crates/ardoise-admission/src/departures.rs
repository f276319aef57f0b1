//! When the places held by admitted users free up: the lobby's clock.
//!
//! A waiter's turn comes when as many places have freed as there are
//! people ahead of them. A place frees when its user has been idle for the
//! active window, so the node knows, for every admitted user, when their
//! place frees if they click no more: their last activity plus the window
//! (or, for a user still in the middle of their visit, their entry plus
//! the measured mean stay, whichever is later). [`Departures`] is that
//! schedule, bucketed by second, taken when the node sweeps its table of
//! admitted users, plus the mean stay for the turns beyond the places held
//! now (each place then frees again one stay later).
//!
//! This is what the measured admission rate cannot see at the front of a
//! wave: everyone admitted in the same few seconds leaves in the same few
//! seconds, a window later, so the rate measured meanwhile is zero, then a
//! burst. Pure: no clock, no I/O, no heap (a fixed array).

use std::time::Duration;

/// Seconds of departures kept; later ones count in the last bucket.
pub const DEPARTURE_SECS: usize = 128;

/// The places held in one lane now and when they free up.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Departures {
    at_ms: u64,
    per_sec: [u32; DEPARTURE_SECS],
    held: u64,
    mean_stay_ms: Option<u64>,
    /// Share of the places that free which the waiters asking get, in
    /// thousandths (see [`Departures::shared`]).
    share_permille: u64,
    /// How long after its user went idle a place is seen free, on average
    /// (see [`Departures::noticed_after`]).
    lag_ms: u64,
}

impl Departures {
    /// An empty schedule taken at `at_ms`, with the mean stay measured so
    /// far (entry to release), if any.
    pub fn new(at_ms: u64, mean_stay: Option<Duration>) -> Departures {
        Departures {
            at_ms,
            per_sec: [0; DEPARTURE_SECS],
            held: 0,
            mean_stay_ms: mean_stay.map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
            share_permille: 1_000,
            lag_ms: 0,
        }
    }

    /// The same schedule for a node that notices a freed place `lag` later
    /// on average (it sweeps its table of admitted users every so often:
    /// half that period).
    pub fn noticed_after(mut self, lag: Duration) -> Departures {
        self.lag_ms = u64::try_from(lag.as_millis()).unwrap_or(u64::MAX);
        self
    }

    /// Both schedules in one: every place held, in either lane.
    pub fn merged(&self, other: &Departures) -> Departures {
        let mut out = *self;
        for (n, m) in out.per_sec.iter_mut().zip(other.per_sec.iter()) {
            *n = n.saturating_add(*m);
        }
        out.held = out.held.saturating_add(other.held);
        out
    }

    /// The same schedule for waiters who get only `share` (in `(0, 1]`) of
    /// the places that free, the others going to another line first
    /// (teachers and staff, for the general line): their turn comes when
    /// `places / share` have freed.
    pub fn shared(mut self, share: f64) -> Departures {
        let share = if share.is_finite() {
            share.clamp(0.05, 1.0)
        } else {
            1.0
        };
        self.share_permille = (share * 1_000.0).round() as u64;
        self
    }

    /// A place held by a user who entered at `entered_ms` and was last
    /// active at `last_ms`, with an active window of `window_ms`.
    pub fn add(&mut self, entered_ms: u64, last_ms: u64, window_ms: u64) {
        let idle_at = last_ms.saturating_add(window_ms);
        let frees_at = match self.mean_stay_ms {
            Some(stay) => idle_at.max(entered_ms.saturating_add(stay)),
            None => idle_at,
        };
        self.release_at(frees_at, 1);
    }

    /// `places` more held, freeing at `frees_at` (in its second of the
    /// schedule; a later one counts in the last).
    fn release_at(&mut self, frees_at: u64, places: u64) {
        let k = usize::try_from(frees_at.saturating_sub(self.at_ms) / 1_000)
            .unwrap_or(usize::MAX)
            .min(DEPARTURE_SECS - 1);
        self.per_sec[k] = self.per_sec[k].saturating_add(u32::try_from(places).unwrap_or(u32::MAX));
        self.held = self.held.saturating_add(places);
    }

    /// The same schedule with `places` more that free at `at_ms`: places
    /// granted to waiters not back yet, which lapse then if they stay away
    /// and go to the next in line (if they come back, the next schedule
    /// has them as users admitted).
    pub fn with_lapsing(mut self, places: u64, at_ms: u64) -> Departures {
        self.release_at(at_ms, places);
        self
    }

    /// Places held.
    pub fn held(&self) -> u64 {
        self.held
    }

    /// How long from `now_ms` until `places` more places have freed:
    /// the `places`-th release of the schedule, the releases of one second
    /// spread evenly over it, plus the lag before a freed place is seen;
    /// beyond the places held now, each one frees again a mean stay later.
    /// `None` with no place held, or when that needs a stay not measured
    /// yet.
    pub fn wait_for(&self, places: u64, now_ms: u64) -> Option<Duration> {
        if places == 0 {
            return Some(Duration::ZERO);
        }
        let places = places
            .saturating_mul(1_000)
            .div_ceil(self.share_permille.max(1));
        if self.held == 0 {
            return None;
        }
        let rounds = (places - 1) / self.held;
        let nth = (places - 1) % self.held + 1;
        let mut seen = 0u64;
        // Milliseconds into the schedule; a release beyond it (the last
        // bucket holds them all) counts at the end.
        let mut in_ms = DEPARTURE_SECS as u64 * 1_000;
        for (k, n) in self.per_sec.iter().enumerate() {
            let n = u64::from(*n);
            if seen + n >= nth {
                // The j-th of n releases in a second comes (j - 1/2)/n
                // into it.
                let j = nth - seen;
                in_ms = k as u64 * 1_000 + (2 * j - 1) * 500 / n;
                break;
            }
            seen += n;
        }
        let later = if rounds > 0 {
            rounds.saturating_mul(self.mean_stay_ms?)
        } else {
            0
        };
        let at = self
            .at_ms
            .saturating_add(in_ms)
            .saturating_add(later)
            .saturating_add(self.lag_ms);
        Some(Duration::from_millis(at.saturating_sub(now_ms)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: u64 = 1_000_000;

    #[test]
    fn places_granted_to_waiters_away_free_when_the_grants_lapse() {
        let mut d = Departures::new(T0, None);
        d.add(T0, T0, 10_000);
        let d = d.with_lapsing(2, T0 + 4_000).with_lapsing(0, T0);
        assert_eq!(d.held(), 3);
        let ms = |p| d.wait_for(p, T0).map(|w| w.as_millis());
        // The two lapsing places first, spread over their second, then the
        // user's, 10 s after their last click.
        assert_eq!(ms(1), Some(4_250));
        assert_eq!(ms(2), Some(4_750));
        assert_eq!(ms(3), Some(10_500));
    }

    #[test]
    fn the_nth_place_frees_when_its_holder_has_been_idle_for_the_window() {
        let mut d = Departures::new(T0, None);
        // Three users admitted together, a fourth two seconds before.
        for _ in 0..3 {
            d.add(T0, T0, 10_000);
        }
        d.add(T0 - 2_000, T0 - 2_000, 10_000);
        assert_eq!(d.held(), 4);
        let ms = |p| d.wait_for(p, T0).map(|w| w.as_millis());
        assert_eq!(ms(0), Some(0));
        // The early one goes 8 s from now: in the middle of that second.
        assert_eq!(ms(1), Some(8_500));
        // The three of the 10th second, spread over it.
        assert_eq!(ms(2), Some(10_166));
        assert_eq!(ms(3), Some(10_500));
        assert_eq!(ms(4), Some(10_833));
        // Beyond the places held, a stay must be known.
        assert_eq!(ms(5), None);
        // Asked later, the same schedule gives less.
        assert_eq!(
            d.wait_for(2, T0 + 5_000).map(|w| w.as_millis()),
            Some(5_166)
        );
        // A node that sees a freed place 100 ms later on average says so.
        let late = d.noticed_after(Duration::from_millis(100));
        assert_eq!(late.wait_for(1, T0), Some(Duration::from_millis(8_600)));
    }

    #[test]
    fn users_in_mid_visit_and_later_rounds_count_the_measured_stay() {
        let stay = Duration::from_secs(12);
        let mut d = Departures::new(T0, Some(stay));
        // Entered a second ago, last click then: likely to click again, so
        // gone at entry + mean stay (11 s from now), not at 9 s.
        d.add(T0 - 1_000, T0 - 1_000, 10_000);
        d.add(T0 - 9_000, T0 - 5_000, 10_000);
        assert_eq!(d.wait_for(1, T0), Some(Duration::from_millis(5_500)));
        assert_eq!(d.wait_for(2, T0), Some(Duration::from_millis(11_500)));
        // The third waiter takes the first place again, one stay later.
        assert_eq!(d.wait_for(3, T0), Some(Duration::from_millis(17_500)));
        assert_eq!(d.wait_for(4, T0), Some(Duration::from_millis(23_500)));
    }

    #[test]
    fn waiters_who_get_a_share_of_the_places_wait_for_more_of_them_to_free() {
        let mut general = Departures::new(T0, None);
        let mut staff = Departures::new(T0, None);
        for s in 0..10 {
            general.add(T0, T0 + s * 1_000, 10_000);
        }
        staff.add(T0, T0, 10_000);
        let all = general.merged(&staff);
        assert_eq!(all.held(), 11);
        // The second place of all frees when the staff's and the first
        // general one do (both in the 10th second, the second of them).
        assert_eq!(all.wait_for(2, T0), Some(Duration::from_millis(10_750)));
        // Getting half the places, the 2nd general waiter needs 4 to free.
        let half = all.shared(0.5);
        assert_eq!(half.wait_for(2, T0), Some(Duration::from_millis(12_500)));
        assert_eq!(half.wait_for(0, T0), Some(Duration::ZERO));
        // Nonsense shares are bounded.
        assert!(all.shared(f64::NAN).wait_for(2, T0).is_some());
        assert_eq!(
            all.shared(0.0).wait_for(1, T0),
            all.wait_for(20, T0),
            "a share is at least a twentieth"
        );
    }

    #[test]
    fn an_empty_table_knows_nothing_and_far_departures_share_the_last_second() {
        let d = Departures::new(T0, Some(Duration::from_secs(5)));
        assert_eq!(d.wait_for(1, T0), None);
        let mut d = Departures::new(T0, None);
        d.add(T0, T0, 3_600_000);
        assert_eq!(
            d.wait_for(1, T0),
            Some(Duration::from_millis(DEPARTURE_SECS as u64 * 1_000 - 500))
        );
        // Never panics on extreme values.
        d.add(u64::MAX, u64::MAX, u64::MAX);
        assert_eq!(d.wait_for(u64::MAX, 0), None, "a stay would be needed");
        let mut d = Departures::new(u64::MAX, Some(Duration::from_secs(u64::MAX / 1_000)));
        d.add(0, u64::MAX, u64::MAX);
        assert!(d.wait_for(u64::MAX, 0).is_some());
        const _: () = assert!(!std::mem::needs_drop::<Departures>());
    }
}
