//! Bulkheads: one in-flight limit per class of work.
//!
//! Owns the count of requests in flight in each class and the refusal of
//! the one too many. It must not wait for a free place (a refusal is
//! immediate; a caller who wants a short queue, as sign-in does, builds it
//! on top) and must not decide which class a request belongs to.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// A class of work with its own bulkhead.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BulkheadClass {
    /// Signed-in reads: pages, the diary, document downloads.
    Reads,
    /// Signed-in writes: homework, messages, hand-ins.
    Writes,
    /// Password sign-ins: argon2 hashes, about 15 ms of CPU each.
    SignIn,
    /// Uploads: large bodies, slow clients.
    Uploads,
    /// Traffic without a session: the sign-in page, the lobby, static
    /// files. Kept apart so that a flood of it cannot take capacity from
    /// signed-in users.
    PreLogin,
}

impl BulkheadClass {
    /// Every class.
    pub const ALL: [BulkheadClass; 5] = [
        BulkheadClass::Reads,
        BulkheadClass::Writes,
        BulkheadClass::SignIn,
        BulkheadClass::Uploads,
        BulkheadClass::PreLogin,
    ];

    /// A stable snake_case name, for metrics labels and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            BulkheadClass::Reads => "reads",
            BulkheadClass::Writes => "writes",
            BulkheadClass::SignIn => "sign_in",
            BulkheadClass::Uploads => "uploads",
            BulkheadClass::PreLogin => "pre_login",
        }
    }
}

impl fmt::Display for BulkheadClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A refusal: the class is at its limit. Answer `503` with a jittered
/// `Retry-After`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Full {
    /// The class that is full.
    pub class: BulkheadClass,
    /// Its limit at the time.
    pub limit: u64,
}

/// One class's limit and in-flight count.
#[derive(Debug)]
pub struct Bulkhead {
    class: BulkheadClass,
    limit: AtomicU64,
    in_flight: AtomicU64,
    refused: AtomicU64,
}

impl Bulkhead {
    /// A bulkhead for `class` letting `limit` requests in at once.
    pub fn new(class: BulkheadClass, limit: u64) -> Self {
        Self {
            class,
            limit: AtomicU64::new(limit),
            in_flight: AtomicU64::new(0),
            refused: AtomicU64::new(0),
        }
    }

    /// Its class.
    pub fn class(&self) -> BulkheadClass {
        self.class
    }

    /// Its current limit.
    pub fn limit(&self) -> u64 {
        self.limit.load(Ordering::Acquire)
    }

    /// Changes the limit (from an [`super::AdaptiveLimit`], say). Lowering
    /// it below the number in flight refuses newcomers until enough leave;
    /// nothing in flight is interrupted.
    pub fn set_limit(&self, limit: u64) {
        self.limit.store(limit, Ordering::Release);
    }

    /// Requests in flight now.
    pub fn in_flight(&self) -> u64 {
        self.in_flight.load(Ordering::Acquire)
    }

    /// Refusals since start, for `/metrics`.
    pub fn refused_total(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    /// A place, held until the permit is dropped, or a refusal at once.
    pub fn try_acquire(&self) -> Result<Permit<'_>, Full> {
        self.take()?;
        Ok(Permit { bulkhead: self })
    }

    /// Like [`Bulkhead::try_acquire`], for a permit that must outlive the
    /// borrow (moved into a response body or a spawned task).
    pub fn try_acquire_owned(self: &Arc<Self>) -> Result<OwnedPermit, Full> {
        self.take()?;
        Ok(OwnedPermit {
            bulkhead: Arc::clone(self),
        })
    }

    fn take(&self) -> Result<(), Full> {
        let limit = self.limit();
        self.in_flight
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < limit).then_some(n + 1)
            })
            .map(drop)
            .map_err(|_| {
                self.refused.fetch_add(1, Ordering::Relaxed);
                Full {
                    class: self.class,
                    limit,
                }
            })
    }

    fn release(&self) {
        self.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A place in a bulkhead, given back when dropped.
#[derive(Debug)]
#[must_use = "the place is given back as soon as the permit is dropped"]
pub struct Permit<'a> {
    bulkhead: &'a Bulkhead,
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        self.bulkhead.release();
    }
}

/// A place in a bulkhead that owns a handle to it, given back when dropped.
#[derive(Debug)]
#[must_use = "the place is given back as soon as the permit is dropped"]
pub struct OwnedPermit {
    bulkhead: Arc<Bulkhead>,
}

impl OwnedPermit {
    /// The class the place belongs to.
    pub fn class(&self) -> BulkheadClass {
        self.bulkhead.class
    }
}

impl Drop for OwnedPermit {
    fn drop(&mut self) {
        self.bulkhead.release();
    }
}

/// Starting limits for each class; the operator may override any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BulkheadLimits {
    /// Signed-in reads in flight.
    pub reads: u64,
    /// Signed-in writes in flight.
    pub writes: u64,
    /// Password sign-ins in flight: argon2 is CPU-bound, so more than one
    /// per core only adds queueing.
    pub sign_in: u64,
    /// Uploads in flight.
    pub uploads: u64,
    /// Requests without a session in flight.
    pub pre_login: u64,
}

impl BulkheadLimits {
    /// Limits for a node with `cores` cores. Sign-in gets at most half the
    /// cores (at least one), so that hashing never starves session resumes,
    /// which cost microseconds.
    pub fn for_cores(cores: u64) -> Self {
        let cores = cores.max(1);
        Self {
            reads: 64 * cores,
            writes: 16 * cores,
            sign_in: (cores / 2).max(1),
            uploads: 4 * cores,
            pre_login: 32 * cores,
        }
    }

    /// The limit of `class`.
    pub fn of(&self, class: BulkheadClass) -> u64 {
        match class {
            BulkheadClass::Reads => self.reads,
            BulkheadClass::Writes => self.writes,
            BulkheadClass::SignIn => self.sign_in,
            BulkheadClass::Uploads => self.uploads,
            BulkheadClass::PreLogin => self.pre_login,
        }
    }
}

/// One bulkhead per class.
#[derive(Debug)]
pub struct Bulkheads {
    by_class: [Arc<Bulkhead>; 5],
}

impl Bulkheads {
    /// A bulkhead for each class with `limits`.
    pub fn new(limits: BulkheadLimits) -> Self {
        Self {
            by_class: BulkheadClass::ALL
                .map(|class| Arc::new(Bulkhead::new(class, limits.of(class)))),
        }
    }

    /// The bulkhead of `class`.
    pub fn get(&self, class: BulkheadClass) -> &Arc<Bulkhead> {
        // `ALL` lists the classes in declaration order.
        &self.by_class[class as usize]
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn bulkheads() -> Bulkheads {
        Bulkheads::new(BulkheadLimits {
            reads: 4,
            writes: 2,
            sign_in: 1,
            uploads: 2,
            pre_login: 3,
        })
    }

    #[test]
    fn each_class_gets_its_own_bulkhead() {
        let b = bulkheads();
        for class in BulkheadClass::ALL {
            assert_eq!(b.get(class).class(), class);
        }
        assert_eq!(b.get(BulkheadClass::Reads).limit(), 4);
        assert_eq!(b.get(BulkheadClass::PreLogin).limit(), 3);
    }

    #[test]
    fn a_bulkhead_refuses_the_one_too_many() {
        let b = bulkheads();
        let reads = b.get(BulkheadClass::Reads);
        let held: Vec<_> = (0..4).map(|_| reads.try_acquire().unwrap()).collect();
        assert_eq!(reads.in_flight(), 4);
        assert_eq!(
            reads.try_acquire().unwrap_err(),
            Full {
                class: BulkheadClass::Reads,
                limit: 4
            }
        );
        assert_eq!(reads.refused_total(), 1);
        drop(held);
    }

    #[test]
    fn exhausting_uploads_leaves_every_other_class_available() {
        let b = bulkheads();
        let uploads = b.get(BulkheadClass::Uploads);
        let _held: Vec<_> = (0..2)
            .map(|_| uploads.try_acquire_owned().unwrap())
            .collect();
        assert!(uploads.try_acquire().is_err());
        for class in BulkheadClass::ALL {
            if class != BulkheadClass::Uploads {
                let bulkhead = b.get(class);
                let all: Vec<_> = (0..bulkhead.limit())
                    .map(|_| bulkhead.try_acquire().unwrap())
                    .collect();
                assert_eq!(all.len() as u64, bulkhead.limit(), "{class}");
            }
        }
    }

    #[test]
    fn a_flood_of_pre_login_traffic_leaves_signed_in_reads_available() {
        let b = bulkheads();
        let pre_login = b.get(BulkheadClass::PreLogin);
        let _flood: Vec<_> = (0..3).map(|_| pre_login.try_acquire().unwrap()).collect();
        let refused = (0..1_000)
            .filter(|_| pre_login.try_acquire().is_err())
            .count();
        assert_eq!(refused, 1_000);
        assert!(b.get(BulkheadClass::Reads).try_acquire().is_ok());
    }

    #[test]
    fn places_are_given_back_when_permits_are_dropped() {
        let b = bulkheads();
        let sign_in = b.get(BulkheadClass::SignIn);
        for _ in 0..100 {
            let permit = sign_in.try_acquire().unwrap();
            assert!(sign_in.try_acquire().is_err());
            drop(permit);
            assert_eq!(sign_in.in_flight(), 0);
        }
        let owned = sign_in.try_acquire_owned().unwrap();
        assert_eq!(owned.class(), BulkheadClass::SignIn);
        assert_eq!(sign_in.in_flight(), 1);
        drop(owned);
        assert_eq!(sign_in.in_flight(), 0);
    }

    #[test]
    fn lowering_the_limit_refuses_newcomers_until_enough_leave() {
        let bulkhead = Bulkhead::new(BulkheadClass::Writes, 3);
        let a = bulkhead.try_acquire().unwrap();
        let b = bulkhead.try_acquire().unwrap();
        bulkhead.set_limit(1);
        assert!(bulkhead.try_acquire().is_err());
        drop(a);
        assert!(bulkhead.try_acquire().is_err());
        drop(b);
        assert!(bulkhead.try_acquire().is_ok());
    }

    #[test]
    fn concurrent_acquisitions_never_exceed_the_limit() {
        let bulkhead = Arc::new(Bulkhead::new(BulkheadClass::Reads, 3));
        let peak = Arc::new(AtomicU64::new(0));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let bulkhead = Arc::clone(&bulkhead);
                let peak = Arc::clone(&peak);
                std::thread::spawn(move || {
                    for _ in 0..10_000 {
                        if let Ok(_permit) = bulkhead.try_acquire() {
                            peak.fetch_max(bulkhead.in_flight(), Ordering::AcqRel);
                        }
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        assert!(peak.load(Ordering::Acquire) <= 3);
        assert_eq!(bulkhead.in_flight(), 0);
    }

    #[test]
    fn default_limits_keep_sign_in_to_half_the_cores() {
        let cases = [(1, 1), (2, 1), (8, 4)];
        for (cores, sign_in) in cases {
            assert_eq!(BulkheadLimits::for_cores(cores).sign_in, sign_in);
        }
    }
}
