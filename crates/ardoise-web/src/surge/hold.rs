//! Holding a waiter's lobby refresh until their turn comes.
//!
//! Without it, a waiter learns that their turn has come only when their
//! page comes back by itself, and the place granted to them sits idle
//! meanwhile: at twice the node's capacity, a sixth of the places were
//! held for waiters not yet back. So a waiter whose turn is expected
//! within the hold ([`LobbyConfig::hold`](ardoise_admission::LobbyConfig))
//! has their refresh held: the node answers it the moment the front of
//! their lane passes them (with the page and their pass), or at the end of
//! the hold (with the lobby again). The browser keeps showing the lobby
//! while it waits for the answer; no JavaScript is needed.
//!
//! A waiter who comes back late (the front passed them while they were
//! away, and the place granted to them went to someone else) to a full
//! node is held the same way, first in line: while any is held, the
//! front does not move, and the next place that frees is theirs.
//!
//! Owns the wake-ups and the bound on refreshes held at once. It keeps
//! nothing per waiter: a held refresh is a request in flight, waiting on
//! one of a fixed array of [`Notify`] per lane, picked by its ticket's
//! number; when the front moves, only the buckets it passed are woken.
//! Late returners wait on one more [`Notify`] per lane and are counted
//! while held. Must not decide who enters (the lobby does).

use super::lane_index;
use ardoise_admission::Lane;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::{Notify, Semaphore, SemaphorePermit};

/// Wake-up buckets per lane: a waiter with ticket number `n` waits on
/// bucket `n % BUCKETS`, so that the front moving by a few places wakes
/// only the few waiters it passed (and those sharing their buckets).
const BUCKETS: usize = 256;

/// The node's held refreshes.
#[derive(Debug)]
pub(crate) struct Holds {
    lanes: [Box<[Notify]>; 2],
    held: Semaphore,
    max_held: usize,
    /// Late returners held now, per lane, and their wake-up.
    late: [(AtomicU64, Notify); 2],
}

/// A late returner counted as held while this lives.
#[derive(Debug)]
pub(crate) struct LateHold<'a> {
    count: &'a AtomicU64,
}

impl Drop for LateHold<'_> {
    fn drop(&mut self) {
        self.count.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Holds {
    /// At most `max_held` refreshes held at once.
    pub(crate) fn new(max_held: usize) -> Holds {
        let buckets = || (0..BUCKETS).map(|_| Notify::new()).collect();
        let max_held = max_held.min(Semaphore::MAX_PERMITS);
        Holds {
            lanes: [buckets(), buckets()],
            held: Semaphore::new(max_held),
            max_held,
            late: Default::default(),
        }
    }

    /// Counts a late returner of `lane` as held until the guard drops.
    pub(crate) fn hold_late(&self, lane: Lane) -> LateHold<'_> {
        let count = &self.late[lane_index(lane)].0;
        count.fetch_add(1, Ordering::Relaxed);
        LateHold { count }
    }

    /// Late returners of `lane` held now: the places that free go to them
    /// before the front moves.
    pub(crate) fn late_held(&self, lane: Lane) -> u64 {
        self.late[lane_index(lane)].0.load(Ordering::Relaxed)
    }

    /// What late returners of `lane` wait on (register before looking, as
    /// with [`Holds::bucket`]).
    pub(crate) fn late(&self, lane: Lane) -> &Notify {
        &self.late[lane_index(lane)].1
    }

    /// A place among the held refreshes, if one is free (else answer now).
    pub(crate) fn try_hold(&self) -> Option<SemaphorePermit<'_>> {
        self.held.try_acquire().ok()
    }

    /// Refreshes held now.
    pub(crate) fn held(&self) -> usize {
        self.max_held.saturating_sub(self.held.available_permits())
    }

    /// The bucket the holder of ticket `seq` of `lane` waits on. Register
    /// (`Notified::enable`) before looking at the front, then wait: a move
    /// in between is not missed.
    pub(crate) fn bucket(&self, lane: Lane, seq: u64) -> &Notify {
        &self.lanes[lane_index(lane)][(seq % BUCKETS as u64) as usize]
    }

    /// The front of `lane` moved from `from` to `to`: wakes the holders of
    /// the tickets it passed.
    pub(crate) fn front_moved(&self, lane: Lane, from: u64, to: u64) {
        let buckets = &self.lanes[lane_index(lane)];
        if to.saturating_sub(from) >= BUCKETS as u64 {
            buckets.iter().for_each(Notify::notify_waiters);
            return;
        }
        for seq in from.saturating_add(1)..=to {
            buckets[(seq % BUCKETS as u64) as usize].notify_waiters();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Whether `n` is woken within a short while.
    async fn woken(n: std::pin::Pin<&mut tokio::sync::futures::Notified<'_>>) -> bool {
        tokio::time::timeout(Duration::from_millis(50), n)
            .await
            .is_ok()
    }

    #[tokio::test]
    async fn the_front_wakes_only_the_tickets_it_passed() {
        let holds = Holds::new(10);
        let mut passed = Box::pin(holds.bucket(Lane::General, 7).notified());
        let mut behind = Box::pin(holds.bucket(Lane::General, 9).notified());
        let mut other_lane = Box::pin(holds.bucket(Lane::Staff, 7).notified());
        for n in [&mut passed, &mut behind, &mut other_lane] {
            n.as_mut().enable();
        }
        holds.front_moved(Lane::General, 5, 8);
        assert!(woken(passed.as_mut()).await);
        assert!(!woken(behind.as_mut()).await);
        assert!(!woken(other_lane.as_mut()).await);
        // A big move wakes every bucket.
        holds.front_moved(Lane::General, 8, 8 + BUCKETS as u64);
        assert!(woken(behind.as_mut()).await);
    }

    #[tokio::test]
    async fn late_returners_are_counted_while_held_and_woken_apart() {
        let holds = Holds::new(10);
        let first = holds.hold_late(Lane::General);
        let second = holds.hold_late(Lane::General);
        assert_eq!(holds.late_held(Lane::General), 2);
        assert_eq!(holds.late_held(Lane::Staff), 0);
        let mut late = Box::pin(holds.late(Lane::General).notified());
        let mut in_line = Box::pin(holds.bucket(Lane::General, 3).notified());
        late.as_mut().enable();
        in_line.as_mut().enable();
        holds.late(Lane::General).notify_waiters();
        assert!(woken(late.as_mut()).await);
        assert!(!woken(in_line.as_mut()).await);
        drop(first);
        assert_eq!(holds.late_held(Lane::General), 1);
        drop(second);
        assert_eq!(holds.late_held(Lane::General), 0);
    }

    #[test]
    fn refreshes_held_at_once_are_bounded() {
        let holds = Holds::new(2);
        let a = holds.try_hold();
        let b = holds.try_hold();
        assert!(a.is_some() && b.is_some());
        assert!(holds.try_hold().is_none(), "the third is answered at once");
        assert_eq!(holds.held(), 2);
        drop(a);
        assert!(holds.try_hold().is_some());
    }
}
