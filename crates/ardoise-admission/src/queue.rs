//! The lobby: first come, first served, with O(1) state per lane.
//!
//! Owns the order of waiters, the staff lane's reserved share, the measured
//! admission rate and the wait estimates shown to waiters. It must not keep
//! anything per waiter (no list, no map): a million waiters cost exactly
//! the memory of ten, which `Lobby` proves by owning no heap memory at all.
//! It reads no clock and does no I/O; the caller holds it behind a mutex
//! (every method is a handful of arithmetic operations).
//!
//! # How it works
//!
//! Each [`Lane`] has two counters: `next_seq`, the number the next
//! [`QueueTicket`] gets, and `admitted_through`: every ticket with
//! `seq <= admitted_through` may enter. A waiter's position is
//! `seq - admitted_through`. Issuing increments `next_seq`, so a new
//! ticket never gets a lower number than an older one; a waiter who comes
//! back (reload, second tab, retry) presents the same signed ticket and so
//! keeps their place. When capacity frees up the caller says how many
//! users it can take and [`Lobby::admit`] advances `admitted_through`:
//! admission order is issue order.
//!
//! # Abandonment
//!
//! Nothing is reserved for a waiter who never comes back: admission only
//! advances the counter, so abandoned numbers are skipped as the front
//! moves past them and never stall the queue. An admitted waiter who comes
//! back late keeps their turn as long as the ticket is valid
//! ([`crate::TokenLifetimes::ticket_max_age`]); [`Lobby::is_late`] tells
//! the caller that no place is held for them any more (the node then lets
//! them in at the next free place, before the front moves on). To avoid admitting twice
//! for the same free capacity while admitted waiters are on their way
//! (they learn of it at their next lobby refresh), the lobby remembers how
//! many grants are pending for [`LobbyConfig::grant_ttl`] and
//! [`Lobby::admit`] subtracts them; a grant is claimed with
//! [`Lobby::record_entry`], and one never claimed simply ages out.
//!
//! # Epochs
//!
//! Sequence numbers only mean something to the lobby that counted them.
//! Each `Lobby` has an epoch (choose the node's start time in unix ms); a
//! ticket from another epoch (issued before a restart, or by another node
//! of a cluster without sticky routing) is [`Standing::OtherEpoch`] and its
//! holder gets a new ticket at the back.
//!
//! Tickets are bearer tokens: a copy of an admitted ticket also enters.
//! The adaptive limit and the delay gate still protect the node.

use std::time::Duration;

use crate::departures::Departures;
use crate::token::{millis, Lane, QueueTicket};

/// A percentage in `0..=100`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Share(u8);

impl Share {
    /// `percent`, or `None` if it is above 100.
    pub const fn from_percent(percent: u8) -> Option<Share> {
        if percent <= 100 {
            Some(Share(percent))
        } else {
            None
        }
    }

    /// The percentage.
    pub const fn percent(self) -> u8 {
        self.0
    }

    /// This share of `n`, rounded up: a non-zero share of at least one slot
    /// is at least one slot.
    fn of_rounded_up(self, n: u64) -> u64 {
        let scaled = u128::from(n) * u128::from(self.0);
        u64::try_from(scaled.div_ceil(100)).unwrap_or(u64::MAX)
    }
}

/// How free slots were split between the lanes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LaneSplit {
    /// Slots given to the staff lane.
    pub staff: u64,
    /// Slots given to the general lane.
    pub general: u64,
    /// Slots nobody in either lane was waiting for: newcomers may use them
    /// directly.
    pub unused: u64,
}

impl LaneSplit {
    /// The slots given to `lane`.
    pub fn for_lane(&self, lane: Lane) -> u64 {
        match lane {
            Lane::General => self.general,
            Lane::Staff => self.staff,
        }
    }
}

/// Splits `free` slots between the lanes: the staff lane gets at least
/// `staff_share` of them (rounded up) while it has waiters, any part of its
/// share it cannot use flows to the general lane, and anything the general
/// lane cannot use flows back to staff. Never gives a lane more slots than
/// it has waiters.
///
/// Rounding up means that when slots free up one at a time and staff are
/// waiting, staff get each one: staff are few, so their lane drains fast
/// and the general lane's turn comes.
pub fn split_slots(
    free: u64,
    staff_backlog: u64,
    general_backlog: u64,
    staff_share: Share,
) -> LaneSplit {
    let reserved = staff_share.of_rounded_up(free).min(free);
    let mut staff = reserved.min(staff_backlog);
    let general = (free - staff).min(general_backlog);
    staff += (free - staff - general).min(staff_backlog - staff);
    LaneSplit {
        staff,
        general,
        unused: free - staff - general,
    }
}

/// Where a ticket holder stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// Their turn has come (position 0 or less): grant a pass.
    Enter,
    /// `position` people are ahead of them or being let in (at least 1).
    Wait {
        /// `seq - admitted_through`.
        position: u64,
    },
    /// The ticket was issued by another lobby: issue a new one.
    OtherEpoch,
}

/// The lobby's settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LobbyConfig {
    /// Share of freed slots reserved for the staff lane while staff are
    /// waiting. Default 10 %.
    pub staff_share: Share,
    /// Time with a non-empty queue over which one admission-rate sample is
    /// taken. Default 1 s.
    pub rate_window: Duration,
    /// Time constant of the rate's exponential smoothing: a sample's weight
    /// falls by e every `rate_smoothing`. Default 10 s.
    pub rate_smoothing: Duration,
    /// How long a place granted to a waiter is held for them before the
    /// lobby assumes they left. Keep it above the lobby's refresh interval
    /// near the front ([`LobbyConfig::refresh_min`]). Default 10 s.
    pub grant_ttl: Duration,
    /// Shortest lobby refresh interval. Default 2 s.
    pub refresh_min: Duration,
    /// Longest lobby refresh interval, for waiters far back. Default 60 s.
    pub refresh_max: Duration,
    /// With a [`LobbyConfig::hold`], waiters whose turn is more than twice
    /// `refresh_max` away come back after half their wait, up to this
    /// (their turn cannot come before unless the estimate was twice too
    /// long; each of their visits costs the node what a page does).
    /// Default 60 s (as `refresh_max`: never longer).
    pub refresh_far: Duration,
    /// Refresh interval while the admission rate is not yet known. Default 5 s.
    pub refresh_unknown: Duration,
    /// How long the node may hold a waiter's refresh when their turn is
    /// expected within that time, answering as soon as it comes (see
    /// [`LobbyPlan::near`]). Zero: never held, the turn is noticed at the
    /// next refresh. Default zero.
    pub hold: Duration,
}

impl Default for LobbyConfig {
    fn default() -> Self {
        Self {
            staff_share: Share(10),
            rate_window: Duration::from_secs(1),
            rate_smoothing: Duration::from_secs(10),
            grant_ttl: Duration::from_secs(10),
            refresh_min: Duration::from_secs(2),
            refresh_max: Duration::from_secs(60),
            refresh_far: Duration::from_secs(60),
            refresh_unknown: Duration::from_secs(5),
            hold: Duration::ZERO,
        }
    }
}

/// What a waiter is told (see [`Lobby::plan`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LobbyPlan {
    /// When their page comes back by itself, in whole seconds.
    pub refresh: Duration,
    /// The wait expected (whole seconds without a hold, when the page's
    /// return is the turn; pages show it rounded); `None`: not known yet.
    pub estimate: Option<Duration>,
    /// The turn is expected within [`LobbyConfig::hold`]: the node may hold
    /// this refresh until it comes.
    pub near: bool,
}

/// A duration in whole seconds, rounded up.
fn whole_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

/// A lane's numbers, for `/metrics` and the administrator page.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LaneSnapshot {
    /// The number the next ticket will get.
    pub next_seq: u64,
    /// Every ticket up to this number may enter.
    pub admitted_through: u64,
    /// Tickets issued and not yet admitted, abandoned ones included.
    pub backlog: u64,
    /// Measured admissions per second while the lane had waiters, if known.
    pub admission_rate: Option<f64>,
    /// Places granted recently and not yet claimed.
    pub pending_grants: u64,
}

/// The lobby of one node: two lanes of counters.
#[derive(Debug, Clone, PartialEq)]
pub struct Lobby {
    config: LobbyConfig,
    epoch: u64,
    general: LaneState,
    staff: LaneState,
}

// The proof that a million waiters cost no more than ten: a type that owns
// heap memory (a Vec, a map, a Box) needs dropping; the lobby does not.
const _: () = assert!(!std::mem::needs_drop::<Lobby>());

impl Lobby {
    /// An empty lobby. `epoch` identifies it in its tickets: use the node's
    /// start time in unix milliseconds, so that it changes on restart.
    pub fn new(config: LobbyConfig, epoch: u64) -> Self {
        Self {
            config,
            epoch,
            general: LaneState::default(),
            staff: LaneState::default(),
        }
    }

    /// The epoch stamped on this lobby's tickets.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The settings.
    pub fn config(&self) -> &LobbyConfig {
        &self.config
    }

    /// A new ticket at the back of `lane`. Call it only for a newcomer: a
    /// client presenting a valid ticket of this epoch keeps it.
    pub fn issue(&mut self, lane: Lane, now_ms: u64) -> QueueTicket {
        let config = self.config;
        let state = self.lane_mut(lane);
        state.advance(now_ms);
        state.rate.close_window_if_due(&config);
        let seq = state.next_seq;
        state.next_seq += 1;
        QueueTicket {
            lane,
            epoch: self.epoch,
            seq,
            issued_at_ms: now_ms,
        }
    }

    /// Where the holder of `ticket` stands (the ticket must already be
    /// verified).
    pub fn standing(&self, ticket: &QueueTicket) -> Standing {
        if ticket.epoch != self.epoch {
            return Standing::OtherEpoch;
        }
        match ticket
            .seq
            .saturating_sub(self.lane(ticket.lane).admitted_through)
        {
            0 => Standing::Enter,
            position => Standing::Wait { position },
        }
    }

    /// The front of `lane`: every ticket up to this number may enter.
    pub fn front(&self, lane: Lane) -> u64 {
        self.lane(lane).admitted_through
    }

    /// Tickets issued in `lane` and not yet admitted.
    pub fn backlog(&self, lane: Lane) -> u64 {
        self.lane(lane).backlog()
    }

    /// Whether a newcomer in `lane` may enter at once, without a ticket,
    /// given `free_capacity` (admission limit minus admitted users): only
    /// if nobody waits in their lane, and for the general lane nobody in
    /// the staff lane, and capacity remains once pending grants are held.
    pub fn may_enter_directly(&mut self, lane: Lane, free_capacity: u64, now_ms: u64) -> bool {
        let waiting_ahead = match lane {
            Lane::General => self.general.backlog() + self.staff.backlog(),
            Lane::Staff => self.staff.backlog(),
        };
        waiting_ahead == 0 && free_capacity > self.pending_grants(now_ms)
    }

    /// Lets waiters in. `free_capacity` is how many more users the node can
    /// take now (its admission limit minus admitted users); the places
    /// already granted to waiters not yet back are subtracted, the rest is
    /// split between the lanes by [`split_slots`] and each lane's front
    /// moves forward. Returns the split; its `unused` part is what
    /// newcomers may take directly.
    pub fn admit(&mut self, free_capacity: u64, now_ms: u64) -> LaneSplit {
        let free = free_capacity.saturating_sub(self.pending_grants(now_ms));
        let split = split_slots(
            free,
            self.staff.backlog(),
            self.general.backlog(),
            self.config.staff_share,
        );
        for lane in Lane::ALL {
            self.admit_lane(lane, split.for_lane(lane), now_ms);
        }
        split
    }

    /// Moves `lane`'s front forward by up to `slots` (never past the last
    /// ticket issued: free slots are not banked for future arrivals).
    /// Returns how many places were granted. [`Lobby::admit`] is the usual
    /// entry point; this one ignores pending grants and the staff share.
    pub fn admit_lane(&mut self, lane: Lane, slots: u64, now_ms: u64) -> u64 {
        let config = self.config;
        let state = self.lane_mut(lane);
        state.advance(now_ms);
        let granted = slots.min(state.backlog());
        let front = state.admitted_through;
        state.admitted_through += granted;
        state.rate.count += granted;
        state.rate.close_window_if_due(&config);
        state.grants.grant(granted, now_ms, front, &config);
        granted
    }

    /// Whether the holder of `ticket`, admitted, comes back late: their
    /// grant was forgotten and its place granted again (see
    /// [`LobbyConfig::grant_ttl`]), so no place is held for them now.
    pub fn is_late(&mut self, ticket: &QueueTicket, now_ms: u64) -> bool {
        let config = self.config;
        let state = self.lane_mut(ticket.lane);
        let front = state.admitted_through;
        state
            .grants
            .is_forgotten(ticket.seq, now_ms, front, &config)
    }

    /// Records that the holder of `ticket`, admitted, came back and got a
    /// pass. Returns whether their place was still held for them: `false`
    /// for a late entry, whose grant was forgotten and its place granted
    /// again (they enter all the same; see [`LobbyConfig::grant_ttl`]).
    pub fn record_entry(&mut self, ticket: &QueueTicket, now_ms: u64) -> bool {
        let config = self.config;
        let state = self.lane_mut(ticket.lane);
        let front = state.admitted_through;
        state.grants.claim(ticket.seq, now_ms, front, &config)
    }

    /// Places granted in the last [`LobbyConfig::grant_ttl`] or so, both
    /// lanes, and not yet claimed. A look: it changes nothing (granting and
    /// claiming forget the old grants).
    pub fn pending_grants(&self, now_ms: u64) -> u64 {
        Lane::ALL
            .into_iter()
            .map(|lane| {
                let state = self.lane(lane);
                let mut ledger = state.grants;
                ledger.pending(now_ms, state.admitted_through, &self.config)
            })
            .sum()
    }

    /// When the places granted in `lane` and not yet claimed lapse if
    /// their waiters stay away: `(places, at_ms)`, soonest first. A look,
    /// as [`Lobby::pending_grants`]: it changes nothing.
    pub fn grant_lapses(&self, lane: Lane, now_ms: u64) -> [(u64, u64); 2] {
        let state = self.lane(lane);
        let mut ledger = state.grants;
        ledger.lapses(now_ms, state.admitted_through, &self.config)
    }

    /// The measured admission rate of `lane`, in places per second while it
    /// had waiters, or `None` until one full rate window has been measured.
    pub fn admission_rate(&self, lane: Lane, now_ms: u64) -> Option<f64> {
        self.lane(lane).rate_at(now_ms, &self.config)
    }

    /// An honest estimate of the wait at `position` in `lane`:
    /// `position / admission rate`. `Some(ZERO)` at position 0; `None` when
    /// the rate is not known yet or the queue has stalled (rate zero): say
    /// "we cannot estimate the wait yet" rather than invent a number.
    pub fn estimated_wait(&self, lane: Lane, position: u64, now_ms: u64) -> Option<Duration> {
        if position == 0 {
            return Some(Duration::ZERO);
        }
        let rate = self.admission_rate(lane, now_ms)?;
        if rate <= 0.0 {
            return None;
        }
        Duration::try_from_secs_f64(position as f64 / rate).ok()
    }

    /// The wait until the `position`-th place of `lane` frees: from
    /// `departures` (see [`crate::Departures`]) when given and known, else
    /// `position / admission rate` ([`Lobby::estimated_wait`]). What
    /// [`Lobby::plan`] tells waiters, and what metrics show.
    pub fn wait_at(
        &self,
        lane: Lane,
        position: u64,
        now_ms: u64,
        departures: Option<&Departures>,
    ) -> Option<Duration> {
        departures
            .and_then(|d| d.wait_for(position, now_ms))
            .or_else(|| self.estimated_wait(lane, position, now_ms))
    }

    /// What a waiter at `position` in `lane` is told: when their page comes
    /// back, and the wait it shows. `jitter`, in `[0, 1)`, spreads the
    /// returns of waiters told the same thing (up to an eighth more).
    ///
    /// The wait is when the `position`-th place of the lane frees, from
    /// `departures` (the places held now and when their users go idle,
    /// see [`crate::Departures`]) when given and known, else
    /// `position / admission rate`.
    ///
    /// With a [`LobbyConfig::hold`], the page comes back half a hold
    /// before the turn is expected (never sooner than
    /// [`LobbyConfig::refresh_min`], never later than
    /// [`LobbyConfig::refresh_max`] or, further back, half the wait up to
    /// [`LobbyConfig::refresh_far`]) and the node holds it until the turn
    /// comes: the wait shown is the expected one.
    ///
    /// Without, a waiter's turn is only noticed when their page comes
    /// back, so the honest wait to show is the time of the visit that
    /// should let them in. Near the front (the turn expected within
    /// `refresh_max`) the page comes back when the turn is expected, never
    /// sooner than `refresh_min`, and shows that delay; further back it
    /// comes back after `refresh_max` for a fresher estimate and shows the
    /// whole wait.
    ///
    /// With no wait known yet it shows no number and comes back after
    /// [`LobbyConfig::refresh_unknown`].
    pub fn plan(
        &self,
        lane: Lane,
        position: u64,
        now_ms: u64,
        jitter: f64,
        departures: Option<&Departures>,
    ) -> LobbyPlan {
        let c = &self.config;
        let min = whole_secs(c.refresh_min).max(1);
        let max = whole_secs(c.refresh_max).max(min);
        let spread = |secs: u64| {
            let extra = (jitter.clamp(0.0, 1.0) * (secs / 8 + 1) as f64) as u64;
            Duration::from_secs(secs + extra.min(secs / 8))
        };
        let Some(wait) = self.wait_at(lane, position, now_ms, departures) else {
            return LobbyPlan {
                refresh: spread(whole_secs(c.refresh_unknown).max(1)),
                estimate: None,
                near: false,
            };
        };
        if !c.hold.is_zero() {
            let back = whole_secs(wait.saturating_sub(c.hold / 2));
            let far = (whole_secs(wait) / 2).min(whole_secs(c.refresh_far));
            let refresh = spread(back.clamp(min, max.max(far)));
            // A turn that comes before the page does is taken when it
            // comes back; else the page waits for it (in whole seconds, a
            // wait of 1.4 s told "2 s" was 40 % off).
            let estimate = wait.max(refresh);
            return LobbyPlan {
                refresh,
                estimate: Some(estimate),
                near: wait <= c.hold,
            };
        }
        if wait <= Duration::from_secs(max) {
            let refresh = spread(whole_secs(wait).clamp(min, max));
            LobbyPlan {
                refresh,
                estimate: Some(refresh),
                near: false,
            }
        } else {
            LobbyPlan {
                refresh: spread(max),
                estimate: Some(Duration::from_secs(whole_secs(wait))),
                near: false,
            }
        }
    }

    /// The numbers of `lane`, for metrics.
    pub fn snapshot(&mut self, lane: Lane, now_ms: u64) -> LaneSnapshot {
        let config = self.config;
        let admission_rate = self.admission_rate(lane, now_ms);
        let state = self.lane_mut(lane);
        LaneSnapshot {
            next_seq: state.next_seq,
            admitted_through: state.admitted_through,
            backlog: state.backlog(),
            admission_rate,
            pending_grants: state
                .grants
                .pending(now_ms, state.admitted_through, &config),
        }
    }

    fn lane(&self, lane: Lane) -> &LaneState {
        match lane {
            Lane::General => &self.general,
            Lane::Staff => &self.staff,
        }
    }

    fn lane_mut(&mut self, lane: Lane) -> &mut LaneState {
        match lane {
            Lane::General => &mut self.general,
            Lane::Staff => &mut self.staff,
        }
    }
}

/// One lane's counters.
#[derive(Debug, Clone, Copy, PartialEq)]
struct LaneState {
    /// Sequence numbers start at 1, so `admitted_through = 0` admits nobody.
    next_seq: u64,
    admitted_through: u64,
    /// The last time the lane was told of (monotone: a clock going back is
    /// ignored).
    last_ms: Option<u64>,
    rate: RateMeter,
    grants: GrantLedger,
}

impl Default for LaneState {
    fn default() -> Self {
        Self {
            next_seq: 1,
            admitted_through: 0,
            last_ms: None,
            rate: RateMeter::default(),
            grants: GrantLedger::default(),
        }
    }
}

impl LaneState {
    fn backlog(&self) -> u64 {
        (self.next_seq - 1).saturating_sub(self.admitted_through)
    }

    /// Moves the lane's clock to `now_ms`, counting the time elapsed as
    /// busy if anybody was waiting. The caller closes the rate window after
    /// counting what happened at `now_ms`: places granted now were freed
    /// during the time just elapsed.
    fn advance(&mut self, now_ms: u64) {
        let last = self.last_ms.unwrap_or(now_ms);
        if now_ms > last && self.backlog() > 0 {
            self.rate.busy_ms += now_ms - last;
        }
        self.last_ms = Some(last.max(now_ms));
    }

    /// The rate as it would be if the lane were advanced to `now_ms`: a
    /// queue that has not moved for a while is seen slowing down even if
    /// nobody has called [`Lobby::admit`].
    fn rate_at(&self, now_ms: u64, config: &LobbyConfig) -> Option<f64> {
        let mut probe = *self;
        probe.advance(now_ms);
        probe.rate.close_window_if_due(config);
        probe.rate.per_sec
    }
}

/// The admission rate, measured only while the lane has waiters (an empty
/// queue admits nobody, which says nothing about capacity), smoothed
/// exponentially over windows of busy time.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
struct RateMeter {
    busy_ms: u64,
    count: u64,
    per_sec: Option<f64>,
}

impl RateMeter {
    fn close_window_if_due(&mut self, config: &LobbyConfig) {
        let window = millis(config.rate_window).max(1);
        if self.busy_ms < window {
            return;
        }
        let busy = self.busy_ms as f64;
        let sample = self.count as f64 * 1000.0 / busy;
        // Irregular windows: weigh a sample by how long it lasted.
        let tau = millis(config.rate_smoothing).max(1) as f64;
        let alpha = 1.0 - (-busy / tau).exp();
        self.per_sec = Some(match self.per_sec {
            None => sample,
            Some(rate) => rate + alpha * (sample - rate),
        });
        self.busy_ms = 0;
        self.count = 0;
    }
}

/// Places granted and claimed in two consecutive buckets of
/// [`LobbyConfig::grant_ttl`]: grants older than one to two buckets are
/// forgotten (their holders are assumed gone). The lane's front at each
/// bucket's start tells a claim of a remembered grant from a late entry:
/// a waiter whose grant was forgotten (its place granted again since) who
/// comes back still enters, but claims nothing: counted as a claim, it
/// would cancel a newer grant still on its way and let the lobby grant
/// that place a third time.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
struct GrantLedger {
    bucket_start_ms: u64,
    granted: u64,
    claimed: u64,
    previous_granted: u64,
    previous_claimed: u64,
    /// The lane's front when the current bucket started.
    front_at_start: u64,
    /// Tickets up to this one were granted before the remembered buckets.
    forgotten_through: u64,
    /// Places granted and grants claimed since the start: with those
    /// pending, the rest lapsed.
    granted_total: u64,
    claimed_total: u64,
    /// Claims and lapses at the last rotation.
    claimed_at_rotation: u64,
    lapsed_at_rotation: u64,
    /// Of the grants claimed or lapsed lately, the share that lapsed, in
    /// thousandths, smoothed over rotations; `None` until one has.
    lapse_permille: Option<u64>,
}

impl GrantLedger {
    fn rotate(&mut self, now_ms: u64, front: u64, config: &LobbyConfig) {
        let ttl = millis(config.grant_ttl).max(1);
        if now_ms < self.bucket_start_ms.saturating_add(ttl) {
            return;
        }
        if now_ms < self.bucket_start_ms.saturating_add(2 * ttl) {
            self.previous_granted = self.granted;
            self.previous_claimed = self.claimed;
            self.forgotten_through = self.front_at_start;
        } else {
            self.previous_granted = 0;
            self.previous_claimed = 0;
            self.forgotten_through = front;
        }
        self.granted = 0;
        self.claimed = 0;
        self.front_at_start = front;
        self.bucket_start_ms = now_ms - now_ms % ttl;
        // Every grant is claimed, pending or lapsed.
        let pending = self.previous_granted.saturating_sub(self.previous_claimed);
        let lapsed = self
            .granted_total
            .saturating_sub(self.claimed_total)
            .saturating_sub(pending);
        let new_lapses = lapsed.saturating_sub(self.lapsed_at_rotation);
        let new_claims = self.claimed_total - self.claimed_at_rotation;
        if let Some(sample) = (new_lapses * 1_000).checked_div(new_lapses + new_claims) {
            self.lapse_permille = Some(match self.lapse_permille {
                None => sample,
                Some(old) => (old + sample) / 2,
            });
        }
        self.claimed_at_rotation = self.claimed_total;
        self.lapsed_at_rotation = lapsed;
    }

    /// `n` places granted now, the front standing at `front` before them.
    fn grant(&mut self, n: u64, now_ms: u64, front: u64, config: &LobbyConfig) {
        self.rotate(now_ms, front, config);
        self.granted += n;
        self.granted_total += n;
    }

    /// Whether the grant of ticket `seq` is forgotten.
    fn is_forgotten(&mut self, seq: u64, now_ms: u64, front: u64, config: &LobbyConfig) -> bool {
        self.rotate(now_ms, front, config);
        seq <= self.forgotten_through
    }

    /// The holder of ticket `seq` entered; whether it claimed a grant still
    /// remembered.
    fn claim(&mut self, seq: u64, now_ms: u64, front: u64, config: &LobbyConfig) -> bool {
        if self.is_forgotten(seq, now_ms, front, config) {
            return false;
        }
        self.claimed += 1;
        self.claimed_total += 1;
        true
    }

    fn pending(&mut self, now_ms: u64, front: u64, config: &LobbyConfig) -> u64 {
        self.rotate(now_ms, front, config);
        (self.granted + self.previous_granted).saturating_sub(self.claimed + self.previous_claimed)
    }

    /// The pending grants expected to lapse unclaimed (the share of grants
    /// that lapsed lately), and when: the previous bucket's when the
    /// current one ends, the current one's a bucket later. Claims count
    /// against the older grants first (a claim does not say which bucket
    /// it came from; waiters granted first are expected first).
    fn lapses(&mut self, now_ms: u64, front: u64, config: &LobbyConfig) -> [(u64, u64); 2] {
        let pending = self.pending(now_ms, front, config);
        let ttl = millis(config.grant_ttl).max(1);
        let claimed = self.claimed + self.previous_claimed;
        let older = self.previous_granted.saturating_sub(claimed).min(pending);
        let share = self.lapse_permille.unwrap_or(0);
        let expected = |n: u64| (n * share).div_ceil(1_000);
        [
            (expected(older), self.bucket_start_ms.saturating_add(ttl)),
            (
                expected(pending - older),
                self.bucket_start_ms.saturating_add(2 * ttl),
            ),
        ]
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const T0: u64 = 1_775_458_500_000;
    const EPOCH: u64 = T0 - 3_600_000;

    fn lobby() -> Lobby {
        Lobby::new(LobbyConfig::default(), EPOCH)
    }

    fn share(percent: u8) -> Share {
        Share::from_percent(percent).unwrap()
    }

    fn position(lobby: &Lobby, ticket: &QueueTicket) -> u64 {
        match lobby.standing(ticket) {
            Standing::Enter => 0,
            Standing::Wait { position } => position,
            Standing::OtherEpoch => panic!("ticket from another epoch"),
        }
    }

    #[test]
    fn tickets_are_numbered_in_issue_order_per_lane() {
        let mut l = lobby();
        let a = l.issue(Lane::General, T0);
        let b = l.issue(Lane::General, T0);
        let s = l.issue(Lane::Staff, T0);
        let c = l.issue(Lane::General, T0 + 1);
        assert_eq!([a.seq, b.seq, c.seq, s.seq], [1, 2, 3, 1]);
        assert_eq!([a.epoch, s.epoch], [EPOCH, EPOCH]);
        assert_eq!(c.issued_at_ms, T0 + 1);
        assert_eq!(l.backlog(Lane::General), 3);
        assert_eq!(l.backlog(Lane::Staff), 1);
    }

    #[test]
    fn presenting_the_same_ticket_again_keeps_the_same_position() {
        let mut l = lobby();
        let mine = l.issue(Lane::General, T0);
        let first_look = position(&l, &mine);
        // Ten thousand others arrive; I reload in three tabs after each hundred.
        for i in 0..10_000 {
            l.issue(Lane::General, T0 + i);
            if i % 100 == 0 {
                for _tab in 0..3 {
                    assert_eq!(position(&l, &mine), first_look);
                }
            }
        }
        assert_eq!(first_look, 1);
    }

    #[test]
    fn a_ticket_issued_later_always_stands_further_back() {
        let mut l = lobby();
        let mut issued = Vec::new();
        for i in 0..1_000 {
            issued.push(l.issue(Lane::General, T0 + i));
            if i % 7 == 0 {
                l.admit_lane(Lane::General, 3, T0 + i);
            }
            // Whatever has been admitted so far, positions rise with issue order,
            // strictly among those still waiting.
            for pair in issued.windows(2) {
                let (older, newer) = (position(&l, &pair[0]), position(&l, &pair[1]));
                assert!(pair[1].seq > pair[0].seq);
                assert!(
                    newer > older || newer == 0 && older == 0,
                    "{older} then {newer}"
                );
            }
        }
        // The first admission found a single waiter; the 142 others let 3 in each.
        assert_eq!(position(&l, &issued[999]), 1_000 - (1 + 3 * 142));
    }

    #[test]
    fn admission_order_equals_issue_order() {
        let mut l = lobby();
        let tickets: Vec<_> = (0..500).map(|i| l.issue(Lane::General, T0 + i)).collect();
        let mut admitted_in_order = Vec::new();
        let mut now = T0 + 1_000;
        while admitted_in_order.len() < tickets.len() {
            now += 250;
            l.admit(7, now);
            for t in &tickets {
                if l.standing(t) == Standing::Enter && !admitted_in_order.contains(&t.seq) {
                    admitted_in_order.push(t.seq);
                    l.record_entry(t, now);
                }
            }
        }
        let issued: Vec<_> = tickets.iter().map(|t| t.seq).collect();
        assert_eq!(admitted_in_order, issued);
    }

    #[test]
    fn position_is_seq_minus_admitted_through() {
        let mut l = lobby();
        let tickets: Vec<_> = (0..10).map(|_| l.issue(Lane::General, T0)).collect();
        assert_eq!(l.admit_lane(Lane::General, 4, T0), 4);
        let positions: Vec<_> = tickets.iter().map(|t| l.standing(t)).collect();
        assert_eq!(positions[..4], [Standing::Enter; 4]);
        assert_eq!(positions[4], Standing::Wait { position: 1 });
        assert_eq!(positions[9], Standing::Wait { position: 6 });
    }

    #[test]
    fn free_slots_are_not_banked_for_future_arrivals() {
        let mut l = lobby();
        l.issue(Lane::General, T0);
        assert_eq!(l.admit_lane(Lane::General, 100, T0), 1);
        let late = l.issue(Lane::General, T0 + 1);
        assert_eq!(l.standing(&late), Standing::Wait { position: 1 });
    }

    #[test]
    fn abandoned_tickets_do_not_stall_the_queue_and_late_returners_still_enter() {
        let mut l = lobby();
        let tickets: Vec<_> = (0..100).map(|i| l.issue(Lane::General, T0 + i)).collect();
        // Only every tenth waiter ever comes back; the front moves anyway.
        let mut now = T0 + 1_000;
        for _ in 0..10 {
            now += 30_000; // pending grants have aged out
            l.admit(10, now);
        }
        assert_eq!(l.backlog(Lane::General), 0);
        // One who wandered off for an hour comes back: still admitted.
        assert_eq!(l.standing(&tickets[3]), Standing::Enter);
    }

    #[test]
    fn a_ticket_from_another_epoch_is_recognised() {
        let mut before_restart = Lobby::new(LobbyConfig::default(), EPOCH);
        let old = before_restart.issue(Lane::General, T0);
        let after_restart = Lobby::new(LobbyConfig::default(), T0 + 5_000);
        assert_eq!(after_restart.standing(&old), Standing::OtherEpoch);
    }

    #[test]
    fn a_million_waiters_cost_no_more_memory_than_ten() {
        // A `Lobby` owns no heap memory (it needs no drop: no Vec, map or
        // Box can hide in it), so its whole footprint is its fixed size.
        assert!(!std::mem::needs_drop::<Lobby>());
        let mut ten = lobby();
        let mut million = lobby();
        for _ in 0..10 {
            ten.issue(Lane::General, T0);
        }
        let mut last = None;
        for i in 0..1_000_000u64 {
            last = Some(million.issue(Lane::General, T0 + i / 1_000));
        }
        assert_eq!(std::mem::size_of_val(&million), std::mem::size_of_val(&ten));
        assert!(std::mem::size_of::<Lobby>() <= 512);
        assert_eq!(million.backlog(Lane::General), 1_000_000);
        assert_eq!(position(&million, &last.unwrap()), 1_000_000);
    }

    #[test]
    fn staff_share_of_free_slots() {
        // (free, staff backlog, general backlog, share %) → (staff, general, unused)
        let cases = [
            // Both lanes backlogged: staff get their share, rounded up.
            (100, 1_000, 1_000, 10, (10, 90, 0)),
            (95, 1_000, 1_000, 10, (10, 85, 0)),
            (1, 1_000, 1_000, 10, (1, 0, 0)),
            (100, 1_000, 1_000, 0, (0, 100, 0)),
            (100, 1_000, 1_000, 100, (100, 0, 0)),
            // No staff waiting: general gets everything.
            (100, 0, 1_000, 10, (0, 100, 0)),
            // Few staff waiting: the rest of their share flows to general.
            (100, 3, 1_000, 10, (3, 97, 0)),
            // Few general waiting: the rest flows back to staff.
            (100, 1_000, 20, 10, (80, 20, 0)),
            // Nobody waiting enough: the remainder is unused.
            (100, 5, 20, 10, (5, 20, 75)),
            (0, 5, 20, 10, (0, 0, 0)),
            (u64::MAX, u64::MAX, 0, 10, (u64::MAX, 0, 0)),
        ];
        for (free, staff_backlog, general_backlog, percent, (staff, general, unused)) in cases {
            let split = split_slots(free, staff_backlog, general_backlog, share(percent));
            assert_eq!(
                split,
                LaneSplit {
                    staff,
                    general,
                    unused
                },
                "free {free}, backlogs {staff_backlog}/{general_backlog}, {percent} %"
            );
        }
    }

    #[test]
    fn with_both_lanes_backlogged_staff_always_get_at_least_their_share() {
        for percent in [1u8, 5, 10, 25, 50] {
            for free in 1..=300u64 {
                let split = split_slots(free, u64::MAX / 2, u64::MAX / 2, share(percent));
                assert!(
                    split.staff * 100 >= free * u64::from(percent),
                    "{percent} % of {free}"
                );
                assert_eq!(split.staff + split.general, free);
            }
        }
    }

    #[test]
    fn the_lobby_applies_the_staff_share_when_admitting() {
        let mut l = lobby();
        let teacher_tickets: Vec<_> = (0..50).map(|_| l.issue(Lane::Staff, T0)).collect();
        for _ in 0..5_000 {
            l.issue(Lane::General, T0);
        }
        let split = l.admit(200, T0 + 100);
        assert_eq!((split.staff, split.general), (20, 180));
        assert_eq!(l.standing(&teacher_tickets[19]), Standing::Enter);
        assert_eq!(
            l.standing(&teacher_tickets[20]),
            Standing::Wait { position: 1 }
        );
    }

    #[test]
    fn share_rejects_more_than_a_hundred_percent() {
        assert_eq!(Share::from_percent(101), None);
        assert_eq!(Share::from_percent(100).map(Share::percent), Some(100));
    }

    #[test]
    fn admitting_holds_back_places_granted_to_waiters_not_yet_back() {
        let mut l = lobby();
        let tickets: Vec<_> = (0..100).map(|_| l.issue(Lane::General, T0)).collect();
        assert_eq!(l.admit(10, T0).general, 10);
        // A second later the 10 have not come back: the capacity is theirs.
        assert_eq!(l.pending_grants(T0 + 1_000), 10);
        assert_eq!(l.admit(10, T0 + 1_000).general, 0);
        // Four come back.
        for t in &tickets[..4] {
            assert!(l.record_entry(t, T0 + 2_000));
        }
        assert_eq!(l.pending_grants(T0 + 2_000), 6);
        assert_eq!(l.admit(10, T0 + 2_000).general, 4);
        // The rest never come: their hold lapses after one to two TTLs.
        // Looking changes nothing.
        let before = l.clone();
        assert_eq!(l.pending_grants(T0 + 25_000), 0);
        assert_eq!(l, before);
        assert_eq!(l.admit(10, T0 + 25_000).general, 10);
    }

    /// A lobby whose grants are held 3 s, the start of one of its
    /// buckets, and `n` general tickets issued then.
    fn lobby_of_3s_grants(n: usize) -> (Lobby, u64, Vec<QueueTicket>) {
        let config = LobbyConfig {
            grant_ttl: Duration::from_secs(3),
            ..LobbyConfig::default()
        };
        let mut l = Lobby::new(config, EPOCH);
        let t0 = T0 - T0 % 3_000;
        let tickets = (0..n).map(|_| l.issue(Lane::General, t0)).collect();
        (l, t0, tickets)
    }

    #[test]
    fn a_late_entry_does_not_claim_a_newer_grant() {
        let (mut l, t0, tickets) = lobby_of_3s_grants(100);
        // Ten places granted; nobody comes back.
        assert_eq!(l.admit(10, t0).general, 10);
        // Six to nine seconds later the ten grants are forgotten and their
        // places go to the next ten.
        assert_eq!(l.pending_grants(t0 + 6_000), 0);
        assert_eq!(l.admit(10, t0 + 6_000).general, 10);
        assert_eq!(l.pending_grants(t0 + 6_500), 10);
        // The first ten come back at last: they enter (their ticket says
        // so) but the ten places granted since are still held for the
        // second ten.
        for t in &tickets[..10] {
            assert_eq!(l.standing(t), Standing::Enter);
            assert!(l.is_late(t, t0 + 7_000));
            assert!(!l.record_entry(t, t0 + 7_000));
        }
        assert_eq!(l.pending_grants(t0 + 7_000), 10);
        assert_eq!(l.admit(10, t0 + 7_000).general, 0);
        // One of the second ten comes back: that one was held.
        assert!(!l.is_late(&tickets[10], t0 + 7_500));
        assert!(l.record_entry(&tickets[10], t0 + 7_500));
        assert_eq!(l.pending_grants(t0 + 7_500), 9);
        // A grant of the previous bucket is still remembered in the next.
        assert!(l.record_entry(&tickets[11], t0 + 9_500));
        assert_eq!(l.pending_grants(t0 + 9_500), 8);
    }

    #[test]
    fn places_granted_lapse_as_many_as_lately_did_a_bucket_after_the_one_they_were_granted_in() {
        let (mut l, t0, tickets) = lobby_of_3s_grants(40);
        let lapses = |l: &Lobby, at| l.grant_lapses(Lane::General, at);
        // Ten places granted: until grants have lapsed, none is expected to.
        assert_eq!(l.admit(10, t0).general, 10);
        assert_eq!(lapses(&l, t0 + 1_000), [(0, t0 + 3_000), (0, t0 + 6_000)]);
        // Nobody came back: six seconds later their places go to the next
        // ten, which are expected to lapse too, a bucket after theirs.
        assert_eq!(l.admit(10, t0 + 6_000).general, 10);
        assert_eq!(lapses(&l, t0 + 6_500), [(0, t0 + 9_000), (10, t0 + 12_000)]);
        // Five of them come back: the five others may still lapse.
        for t in &tickets[10..15] {
            assert!(l.record_entry(t, t0 + 7_000));
        }
        let before = l.clone();
        assert_eq!(lapses(&l, t0 + 7_000), [(0, t0 + 9_000), (5, t0 + 12_000)]);
        assert_eq!(l, before, "looking changes nothing");
        // In the next bucket, of the grants settled lately half lapsed
        // (ten lapsed, then five claimed): half the five are expected to.
        assert_eq!(lapses(&l, t0 + 9_000), [(3, t0 + 12_000), (0, t0 + 15_000)]);
        assert_eq!(
            l.grant_lapses(Lane::Staff, t0 + 9_000).map(|(n, _)| n),
            [0, 0]
        );
    }

    #[test]
    fn newcomers_enter_directly_only_when_nobody_waits_ahead_of_them() {
        let mut l = lobby();
        assert!(l.may_enter_directly(Lane::General, 1, T0));
        assert!(!l.may_enter_directly(Lane::General, 0, T0));
        let teacher = l.issue(Lane::Staff, T0);
        assert!(!l.may_enter_directly(Lane::General, 5, T0));
        assert!(!l.may_enter_directly(Lane::Staff, 5, T0));
        l.admit(5, T0);
        assert_eq!(l.standing(&teacher), Standing::Enter);
        // One place is held for the teacher on their way.
        assert!(!l.may_enter_directly(Lane::General, 1, T0));
        assert!(l.may_enter_directly(Lane::General, 2, T0));
    }

    #[test]
    fn the_wait_is_unknown_until_the_admission_rate_has_been_measured() {
        let mut l = lobby();
        for _ in 0..1_000 {
            l.issue(Lane::General, T0);
        }
        assert_eq!(l.estimated_wait(Lane::General, 500, T0), None);
        assert_eq!(l.estimated_wait(Lane::General, 0, T0), Some(Duration::ZERO));
        l.admit_lane(Lane::General, 10, T0 + 500);
        assert_eq!(l.admission_rate(Lane::General, T0 + 500), None);
    }

    #[test]
    fn the_estimated_wait_follows_a_known_admission_rate() {
        let mut l = lobby();
        for _ in 0..10_000 {
            l.issue(Lane::General, T0);
        }
        // 20 admitted every 100 ms: 200 per second, for 30 seconds.
        for step in 1..=300 {
            l.admit_lane(Lane::General, 20, T0 + step * 100);
        }
        let now = T0 + 30_000;
        let rate = l.admission_rate(Lane::General, now).unwrap();
        assert!((rate - 200.0).abs() < 1e-6, "rate {rate}");
        let wait = l.estimated_wait(Lane::General, 1_000, now).unwrap();
        assert_eq!(wait.as_millis(), 5_000);
        let snap = l.snapshot(Lane::General, now);
        assert_eq!(snap.admitted_through, 6_000);
        assert_eq!(snap.backlog, 4_000);
    }

    #[test]
    fn the_rate_follows_a_change_of_pace_within_a_few_smoothing_constants() {
        let mut l = lobby();
        for _ in 0..100_000 {
            l.issue(Lane::General, T0);
        }
        let mut now = T0;
        for _ in 0..300 {
            now += 100;
            l.admit_lane(Lane::General, 20, now); // 200/s
        }
        for _ in 0..400 {
            now += 100;
            l.admit_lane(Lane::General, 5, now); // 50/s for 40 s = 4 τ
        }
        let rate = l.admission_rate(Lane::General, now).unwrap();
        assert!((rate - 50.0).abs() < 0.02 * 150.0 + 1e-9, "rate {rate}");
    }

    #[test]
    fn a_stalled_queue_is_seen_slowing_down_without_any_call_to_admit() {
        let mut l = lobby();
        for _ in 0..10_000 {
            l.issue(Lane::General, T0);
        }
        for step in 1..=100 {
            l.admit_lane(Lane::General, 10, T0 + step * 100);
        }
        let at_stall = T0 + 10_000;
        let before = l.admission_rate(Lane::General, at_stall).unwrap();
        let after = l.admission_rate(Lane::General, at_stall + 30_000).unwrap();
        assert!((before - 100.0).abs() < 1e-6);
        assert!(after < before * 0.1, "{after}");
        let longer = l
            .estimated_wait(Lane::General, 100, at_stall + 30_000)
            .unwrap();
        assert!(longer > l.estimated_wait(Lane::General, 100, at_stall).unwrap() * 10);
    }

    #[test]
    fn time_without_waiters_does_not_dilute_the_rate() {
        let mut l = lobby();
        let mut now = T0;
        for _ in 0..20 {
            // 100 arrive, are admitted at 100/s over one second, then an idle minute.
            for _ in 0..100 {
                l.issue(Lane::General, now);
            }
            for _ in 0..10 {
                now += 100;
                l.admit_lane(Lane::General, 10, now);
            }
            now += 60_000;
        }
        let rate = l.admission_rate(Lane::General, now).unwrap();
        assert!((rate - 100.0).abs() < 1e-6, "rate {rate}");
    }

    /// A lobby whose general lane admits `rate` places per second.
    fn lobby_at_rate(rate: u64) -> (Lobby, u64) {
        let mut l = lobby();
        let mut now = T0;
        for _ in 0..(10 * rate) {
            l.issue(Lane::General, now);
        }
        for _ in 0..10 {
            now += 1_000;
            l.admit_lane(Lane::General, rate, now);
        }
        (l, now)
    }

    #[test]
    fn near_the_front_the_page_comes_back_when_the_turn_is_due_and_says_so() {
        let (l, now) = lobby_at_rate(10);
        // 10 places a second: place 50 is expected in 5 s, place 3 in
        // 0.3 s (but a page never comes back sooner than refresh_min).
        for (position, secs) in [(50, 5), (3, 2), (600, 60)] {
            let plan = l.plan(Lane::General, position, now, 0.0, None);
            assert_eq!(plan.refresh, Duration::from_secs(secs), "{position}");
            assert_eq!(plan.estimate, Some(plan.refresh), "{position}");
        }
        // Further back: come back after refresh_max, see the whole wait.
        let plan = l.plan(Lane::General, 36_000, now, 0.0, None);
        assert_eq!(plan.refresh, Duration::from_secs(60));
        assert_eq!(plan.estimate, Some(Duration::from_secs(3_600)));
    }

    #[test]
    fn jitter_spreads_returns_by_at_most_an_eighth() {
        let (l, now) = lobby_at_rate(10);
        let soon = l.plan(Lane::General, 400, now, 0.0, None);
        let late = l.plan(Lane::General, 400, now, 0.999, None);
        assert_eq!(soon.refresh, Duration::from_secs(40));
        assert_eq!(late.refresh, Duration::from_secs(45));
        assert_eq!(
            late.estimate,
            Some(late.refresh),
            "the wait shown is the visit's"
        );
        // Short delays are not stretched.
        let short = l.plan(Lane::General, 20, now, 0.999, None);
        assert_eq!(short.refresh, Duration::from_secs(2));
    }

    #[test]
    fn with_a_hold_the_page_comes_back_half_a_hold_early_and_shows_the_turn() {
        let (mut l, now) = lobby_at_rate(10);
        l.config.hold = Duration::from_secs(4);
        l.config.refresh_min = Duration::from_secs(1);
        // (position, refresh, estimate, near): 10 places a second.
        for (position, refresh, estimate, near) in [
            // Turn before the page comes back: the page's delay.
            (3, 1, 1_000, true),
            // After: the turn itself (1.4 s).
            (14, 1, 1_400, true),
            (40, 2, 4_000, true),
            (50, 3, 5_000, false),
            (300, 28, 30_000, false),
            (6_000, 60, 600_000, false),
        ] {
            let plan = l.plan(Lane::General, position, now, 0.0, None);
            assert_eq!(plan.refresh, Duration::from_secs(refresh), "{position}");
            assert_eq!(
                plan.estimate,
                Some(Duration::from_millis(estimate)),
                "{position}"
            );
            assert_eq!(plan.near, near, "{position}");
        }
        // Far back, the page comes back after half the wait, up to
        // refresh_far; within twice refresh_max, after refresh_max.
        l.config.refresh_max = Duration::from_secs(20);
        l.config.refresh_far = Duration::from_secs(120);
        for (position, refresh) in [(150, 13), (300, 20), (1_000, 50), (6_000, 120)] {
            let plan = l.plan(Lane::General, position, now, 0.0, None);
            assert_eq!(plan.refresh, Duration::from_secs(refresh), "{position}");
            assert_eq!(
                plan.estimate,
                Some(Duration::from_millis(position * 100)),
                "{position}"
            );
        }
        // Unknown waits are never held.
        let mut fresh = lobby();
        fresh.config.hold = Duration::from_secs(4);
        fresh.issue(Lane::General, T0);
        assert!(!fresh.plan(Lane::General, 1, T0, 0.0, None).near);
    }

    #[test]
    fn with_no_rate_measured_no_number_is_shown() {
        let mut l = lobby();
        l.issue(Lane::General, T0);
        let plan = l.plan(Lane::General, 1, T0, 0.5, None);
        assert_eq!(plan.estimate, None);
        assert_eq!(plan.refresh, Duration::from_secs(5));
    }

    #[test]
    fn the_departures_of_the_places_held_come_before_the_measured_rate() {
        let (l, now) = lobby_at_rate(10);
        // Everyone in was admitted in the last second: nobody leaves for
        // 10 s, whatever the rate measured before says (place 5: 0.5 s).
        let mut d = Departures::new(now, Some(Duration::from_secs(10)));
        for _ in 0..100 {
            d.add(now, now, 10_000);
        }
        let plan = l.plan(Lane::General, 5, now, 0.0, Some(&d));
        assert_eq!(plan.refresh, Duration::from_secs(11));
        assert_eq!(plan.estimate, Some(plan.refresh));
        // Place 250: two stays later than place 50.
        let plan = l.plan(Lane::General, 250, now, 0.0, Some(&d));
        assert_eq!(plan.estimate, Some(Duration::from_secs(31)));
        // An empty table says nothing: back to the rate.
        let empty = Departures::new(now, None);
        let plan = l.plan(Lane::General, 50, now, 0.0, Some(&empty));
        assert_eq!(plan.estimate, Some(Duration::from_secs(5)));
    }
}
