//! Time as a parameter: the rest of the code asks a [`Clock`] for "now" so
//! that expiry, deadlines and throttling are tested without sleeping.

use std::sync::atomic::{AtomicI64, Ordering};

/// Seconds since the Unix epoch (UTC).
pub type UnixTime = i64;

/// Source of the current time.
pub trait Clock: Send + Sync + 'static {
    /// The current time in seconds since the Unix epoch.
    fn now(&self) -> UnixTime;

    /// The current time in milliseconds since the Unix epoch, for what
    /// needs finer steps than a second (the surge layer's queue and
    /// tokens). By default, whole seconds of [`Clock::now`].
    fn now_ms(&self) -> u64 {
        u64::try_from(self.now()).unwrap_or(0).saturating_mul(1000)
    }
}

/// The real wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> UnixTime {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            // A clock before 1970 is a broken host; treat it as the epoch.
            .unwrap_or(0)
    }

    fn now_ms(&self) -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
            // As above: a clock before 1970 counts as the epoch.
            .unwrap_or(0)
    }
}

/// A clock that only moves when told to, for tests.
#[derive(Debug, Default)]
pub struct ManualClock(AtomicI64);

impl ManualClock {
    /// A clock stopped at `now`.
    pub fn new(now: UnixTime) -> Self {
        Self(AtomicI64::new(now))
    }

    /// Moves the clock forward by `secs` seconds.
    pub fn advance(&self, secs: i64) {
        self.0.fetch_add(secs, Ordering::SeqCst);
    }

    /// Sets the clock to `now`.
    pub fn set(&self, now: UnixTime) {
        self.0.store(now, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> UnixTime {
        self.0.load(Ordering::SeqCst)
    }
}

/// The school year that contains `now`, from September to August: its
/// label (`2026-2027`) and its first and last days (ISO dates).
pub fn school_year_for(now: UnixTime) -> (String, String, String) {
    use chrono::Datelike;
    let d = chrono::DateTime::from_timestamp(now, 0)
        .map(|d| d.date_naive())
        .unwrap_or_default();
    let start = if d.month() >= 9 {
        d.year()
    } else {
        d.year() - 1
    };
    (
        format!("{start}-{}", start + 1),
        format!("{start}-09-01"),
        format!("{}-08-31", start + 1),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn school_years_run_from_september_to_august() {
        // 2026-11-23 and 2027-03-01 are in 2026-2027; 2026-07-01 in 2025-2026.
        assert_eq!(school_year_for(1_795_392_000).0, "2026-2027");
        assert_eq!(school_year_for(1_803_859_200).0, "2026-2027");
        assert_eq!(
            school_year_for(1_782_864_000),
            ("2025-2026".into(), "2025-09-01".into(), "2026-08-31".into())
        );
        // The first of September starts the new year.
        assert_eq!(school_year_for(1_788_220_800).0, "2026-2027");
    }
}
