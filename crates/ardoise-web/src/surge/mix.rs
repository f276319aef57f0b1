//! What the traffic is made of, to tell a surge from an attack: over the
//! last full minute, how many distinct accounts and addresses made
//! signed-in requests (accounts per address: a school behind one address
//! shows hundreds, honestly), requests per account, and how many sign-ins
//! failed. Bounded memory: past `CAP` distinct values a window stops
//! counting new ones and says so.

use std::collections::HashSet;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Most distinct accounts or addresses counted in one window.
const CAP: usize = 200_000;
/// The window.
const WINDOW_MS: u64 = 60_000;

#[derive(Debug, Default)]
struct Window {
    start_ms: u64,
    addresses: HashSet<u64>,
    accounts: HashSet<i64>,
    requests: u64,
    sign_ins: u64,
    sign_in_failures: u64,
}

/// The figures of the last full window.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct MixFigures {
    /// Distinct addresses of signed-in requests.
    pub addresses: u64,
    /// Distinct accounts of signed-in requests.
    pub accounts: u64,
    /// Signed-in requests.
    pub requests: u64,
    /// Sign-in attempts, and those that failed.
    pub sign_ins: u64,
    /// See `sign_ins`.
    pub sign_in_failures: u64,
    /// Whether a set reached its cap (the distinct counts are then floors).
    pub saturated: bool,
}

impl MixFigures {
    /// Accounts per address.
    pub fn accounts_per_address(&self) -> f64 {
        if self.addresses == 0 {
            0.0
        } else {
            self.accounts as f64 / self.addresses as f64
        }
    }

    /// Requests per account.
    pub fn requests_per_account(&self) -> f64 {
        if self.accounts == 0 {
            0.0
        } else {
            self.requests as f64 / self.accounts as f64
        }
    }

    /// Share of sign-ins that failed.
    pub fn failure_share(&self) -> f64 {
        if self.sign_ins == 0 {
            0.0
        } else {
            self.sign_in_failures as f64 / self.sign_ins as f64
        }
    }
}

/// The running window and the last full one.
#[derive(Debug, Default)]
pub struct TrafficMix {
    current: Mutex<Window>,
    last: Mutex<MixFigures>,
    /// Requests since start, for a quick check without the lock.
    seen: AtomicU64,
}

fn key(address: &[u8]) -> u64 {
    let mut h = DefaultHasher::new();
    address.hash(&mut h);
    h.finish()
}

impl TrafficMix {
    fn with_window(&self, now_ms: u64, f: impl FnOnce(&mut Window)) {
        let mut w = self
            .current
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if now_ms >= w.start_ms.saturating_add(WINDOW_MS) {
            let saturated = w.addresses.len() >= CAP || w.accounts.len() >= CAP;
            let figures = MixFigures {
                addresses: w.addresses.len() as u64,
                accounts: w.accounts.len() as u64,
                requests: w.requests,
                sign_ins: w.sign_ins,
                sign_in_failures: w.sign_in_failures,
                saturated,
            };
            // A window that ended long ago (an idle node) says nothing of
            // the last minute.
            let stale = now_ms >= w.start_ms.saturating_add(2 * WINDOW_MS);
            *self
                .last
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = if stale && w.start_ms > 0 {
                MixFigures::default()
            } else {
                figures
            };
            *w = Window {
                start_ms: now_ms - now_ms % WINDOW_MS,
                ..Window::default()
            };
        }
        f(&mut w);
    }

    /// A request with a valid session of `account` from `address`.
    pub fn signed_in_request(&self, account: i64, address: &[u8], now_ms: u64) {
        self.seen.fetch_add(1, Ordering::Relaxed);
        self.with_window(now_ms, |w| {
            w.requests += 1;
            if w.accounts.len() < CAP {
                w.accounts.insert(account);
            }
            if w.addresses.len() < CAP {
                w.addresses.insert(key(address));
            }
        });
    }

    /// A sign-in attempt and whether it failed.
    pub fn sign_in(&self, failed: bool, now_ms: u64) {
        self.with_window(now_ms, |w| {
            w.sign_ins += 1;
            if failed {
                w.sign_in_failures += 1;
            }
        });
    }

    /// The last full minute's figures (rolls the window if it is over).
    pub fn figures(&self, now_ms: u64) -> MixFigures {
        self.with_window(now_ms, |_| {});
        *self
            .last
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: u64 = 1_775_458_500_000 - 1_775_458_500_000 % WINDOW_MS;

    #[test]
    fn a_school_behind_one_address_shows_many_accounts_per_address() {
        let mix = TrafficMix::default();
        for pupil in 0..1_500 {
            for _ in 0..3 {
                mix.signed_in_request(pupil, &[192, 0, 2, 10], T0 + 1_000);
            }
        }
        let f = mix.figures(T0 + WINDOW_MS + 1);
        assert_eq!(f.accounts, 1_500);
        assert_eq!(f.addresses, 1);
        assert_eq!(f.accounts_per_address(), 1_500.0);
        assert_eq!(f.requests_per_account(), 3.0);
    }

    #[test]
    fn failures_are_a_share_of_sign_ins() {
        let mix = TrafficMix::default();
        for i in 0..100 {
            mix.sign_in(i % 4 == 0, T0 + 10);
        }
        let f = mix.figures(T0 + WINDOW_MS);
        assert_eq!(f.sign_ins, 100);
        assert!((f.failure_share() - 0.25).abs() < 1e-9);
    }

    #[test]
    fn an_idle_minute_reads_as_nothing() {
        let mix = TrafficMix::default();
        mix.signed_in_request(1, &[127, 0, 0, 1], T0);
        assert_eq!(mix.figures(T0 + WINDOW_MS).accounts, 1);
        assert_eq!(mix.figures(T0 + 5 * WINDOW_MS), MixFigures::default());
    }
}
