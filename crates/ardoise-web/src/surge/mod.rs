//! The surge layer wired into the server (DESIGN.md, "How it survives the
//! surge"): who is let in, who waits in the lobby, which requests are
//! refused at once, and the connection limits that keep slow clients cheap.
//!
//! - [`conn`]: the accept loop. It stamps when each request's bytes became
//!   ready (so the delay spent queued in the runtime is measurable), and
//!   enforces header, idle and connection-count limits.
//! - [`admission`]: the middleware. Per request: a CoDel gate on queueing
//!   delay (pre-login and signed-in traffic apart), admission of users with
//!   signed passes and queue tickets, then a bulkhead per class of work.
//! - [`pages`]: the lobby page, the "busy" refusal and their JSON twins.
//!
//! The rules and numbers live in `ardoise_admission` (pure, tested there).
//! This module owns the node's single instance of each mechanism and the
//! table of admitted clients. It must not touch the database on the
//! refusal paths, and must not keep anything per waiter: the lobby is two
//! counters per lane, whatever the number of people in it.

pub mod admission;
pub mod challenge;
pub mod conn;
mod hold;
pub mod mix;
pub mod pages;

pub use admission::InLine;
pub use ardoise_admission::ChallengePolicy;

use crate::i18n::Catalogs;
use crate::state::WebConfig;
use ardoise_admission::{
    AdaptiveLimit, AdaptiveLimitConfig, BulkheadClass, BulkheadLimits, Bulkheads, ChallengeSigner,
    ClientId, CodelConfig, CodelGate, Departures, FailureSketch, Lane, Lobby, LobbyConfig,
    LobbyPlan, Share, Signer, SigningKey, TokenLifetimes,
};
use ardoise_core::Clock;
use dashmap::DashMap;
use rand::{Rng, RngCore};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// A secret whose `Debug` never shows it.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            f.write_str("Secret(none)")
        } else {
            f.write_str("Secret(redacted)")
        }
    }
}

/// The surge layer's settings (the binary fills them from `[surge]`).
#[derive(Debug, Clone)]
pub struct SurgeConfig {
    /// Admission, overload control and the lobby. Off, every request goes
    /// straight to the routes (to compare in benchmarks); the connection
    /// limits below still apply.
    pub enabled: bool,
    /// Key material for queue tickets and admission passes. Empty: a random
    /// key per start (tickets and passes then do not survive a restart;
    /// nodes of a cluster must share one).
    pub secret: Secret,
    /// Standing queueing delay tolerated for signed-in requests.
    pub codel_target: Duration,
    /// Standing queueing delay tolerated for pre-login requests: lower, so
    /// that they are shed before signed-in ones.
    pub prelogin_target: Duration,
    /// CoDel's interval.
    pub codel_interval: Duration,
    /// Admitted users: the operator's floor.
    pub users_floor: u64,
    /// Admitted users: the operator's ceiling.
    pub users_ceiling: u64,
    /// Admitted users: where the adaptive limit starts.
    pub users_initial: u64,
    /// Signed-in requests shed or refused by a full bulkhead shrink the user limit
    /// when they are at least this percent of a second's requests.
    pub users_overload_percent: u8,
    /// Share of the user limit reserved for teachers and staff (percent).
    pub staff_share_percent: u8,
    /// A user counts against capacity while they made a request this
    /// recently; their pass stays valid much longer (`pass_idle`).
    pub active_window: Duration,
    /// An admission pass unused for this long expires (sliding).
    pub pass_idle: Duration,
    /// A queue ticket older than this is refused (its holder queues again).
    pub ticket_max_age: Duration,
    /// Base of the jittered `Retry-After` of refused requests.
    pub retry_after_secs: u32,
    /// A waiter whose turn is expected within this time has their refresh
    /// held until it comes (see [`hold`]); zero: never held.
    pub lobby_hold: Duration,
    /// Most refreshes held at once.
    pub lobby_max_held: usize,
    /// Bulkheads: requests in flight per class; `None` derives from cores.
    pub bulkhead_reads: Option<u64>,
    /// See `bulkhead_reads`.
    pub bulkhead_writes: Option<u64>,
    /// Sign-ins (and password changes) waiting for a password-hash
    /// permit, per lane: teachers and staff queue apart and hash first.
    /// `None`: 16 per permit. The sign-in bulkhead around them (requests
    /// looking up their account meanwhile) is 16 times this plus the
    /// permits.
    pub bulkhead_sign_in: Option<u64>,
    /// See `bulkhead_reads`.
    pub bulkhead_uploads: Option<u64>,
    /// See `bulkhead_reads`.
    pub bulkhead_pre_login: Option<u64>,
    /// Connection: longest wait for a request's headers (also closes idle
    /// keep-alive connections). Always applied.
    pub header_timeout: Duration,
    /// Longest wait between two pieces of a request body. Always applied.
    pub body_timeout: Duration,
    /// A connection with no byte read or written for this long is closed.
    /// Always applied.
    pub idle_timeout: Duration,
    /// Most open connections; past it the node stops accepting until one
    /// closes. Always applied.
    pub max_connections: usize,
    /// Largest request body of any kind, uploads included. Always applied.
    pub max_request_bytes: usize,
    /// The proof of work asked of addresses with many failed sign-ins
    /// (off by default; only under load).
    pub challenge: ChallengePolicy,
    /// Half-life of the failed sign-ins counted per address.
    pub failure_half_life: Duration,
}

impl Default for SurgeConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            secret: Secret::default(),
            codel_target: Duration::from_millis(5),
            prelogin_target: Duration::from_millis(2),
            codel_interval: Duration::from_millis(100),
            users_floor: 50,
            users_ceiling: 100_000,
            users_initial: 500,
            users_overload_percent: 5,
            staff_share_percent: 10,
            active_window: Duration::from_secs(10),
            pass_idle: Duration::from_secs(20 * 60),
            ticket_max_age: Duration::from_secs(2 * 60 * 60),
            retry_after_secs: 2,
            lobby_hold: Duration::from_secs(5),
            lobby_max_held: 2_000,
            bulkhead_reads: None,
            bulkhead_writes: None,
            bulkhead_sign_in: None,
            bulkhead_uploads: None,
            bulkhead_pre_login: None,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_connections: 10_000,
            max_request_bytes: 100 * 1024 * 1024,
            challenge: ChallengePolicy::default(),
            failure_half_life: Duration::from_secs(10 * 60),
        }
    }
}

impl SurgeConfig {
    /// Most sign-ins waiting for a password hash, per lane: the operator's
    /// `bulkhead_sign_in`, else 16 per permit: while others wait in line,
    /// pupils sign in on their turn, so the sign-ins that reach the queue
    /// follow admissions, and waiting a few tenths of a second for a hash
    /// costs less than a refusal sent back and tried again.
    pub fn hash_queue_limit(&self, signin_permits: usize) -> usize {
        let permits = signin_permits.max(1) as u64;
        usize::try_from(self.bulkhead_sign_in.unwrap_or(16 * permits).max(1)).unwrap_or(usize::MAX)
    }

    /// The bulkhead limits: the operator's, else derived from the cores
    /// (sign-in: room for both hash queues and the hashes running, so that
    /// the lanes of the hash queue decide who waits).
    pub fn bulkhead_limits(&self, signin_permits: usize) -> BulkheadLimits {
        let cores = std::thread::available_parallelism()
            .map(|n| n.get() as u64)
            .unwrap_or(1);
        let auto = BulkheadLimits::for_cores(cores);
        BulkheadLimits {
            reads: self.bulkhead_reads.unwrap_or(auto.reads).max(1),
            writes: self.bulkhead_writes.unwrap_or(auto.writes).max(1),
            sign_in: (16 * self.hash_queue_limit(signin_permits) + signin_permits.max(1)) as u64,
            uploads: self.bulkhead_uploads.unwrap_or(auto.uploads).max(1),
            pre_login: self.bulkhead_pre_login.unwrap_or(auto.pre_login).max(1),
        }
    }
}

/// Why a request was refused or held back, for `/metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// A signed-in request waited past the delay target.
    QueueDelaySignedIn,
    /// A pre-login request waited past its delay target.
    QueueDelayPreLogin,
    /// The bulkhead of this class was full.
    Bulkhead(BulkheadClass),
    /// A newcomer was shown the lobby (or a 503 with their position).
    Queued,
}

impl Refusal {
    const ALL: [Refusal; 8] = [
        Refusal::QueueDelaySignedIn,
        Refusal::QueueDelayPreLogin,
        Refusal::Bulkhead(BulkheadClass::Reads),
        Refusal::Bulkhead(BulkheadClass::Writes),
        Refusal::Bulkhead(BulkheadClass::SignIn),
        Refusal::Bulkhead(BulkheadClass::Uploads),
        Refusal::Bulkhead(BulkheadClass::PreLogin),
        Refusal::Queued,
    ];

    /// A stable snake_case label.
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::QueueDelaySignedIn => "queue_delay_signed_in",
            Refusal::QueueDelayPreLogin => "queue_delay_pre_login",
            Refusal::Bulkhead(BulkheadClass::Reads) => "bulkhead_reads",
            Refusal::Bulkhead(BulkheadClass::Writes) => "bulkhead_writes",
            Refusal::Bulkhead(BulkheadClass::SignIn) => "bulkhead_sign_in",
            Refusal::Bulkhead(BulkheadClass::Uploads) => "bulkhead_uploads",
            Refusal::Bulkhead(BulkheadClass::PreLogin) => "bulkhead_pre_login",
            Refusal::Queued => "queued",
        }
    }

    fn index(self) -> usize {
        Refusal::ALL.iter().position(|r| *r == self).unwrap_or(0)
    }
}

/// Running totals since the node started (lock-free).
#[derive(Debug, Default)]
struct Counters {
    refusals: [AtomicU64; 8],
    with_session: AtomicU64,
    without_session: AtomicU64,
    passes_direct: AtomicU64,
    passes_from_queue: AtomicU64,
    late_entries: AtomicU64,
    tickets_issued: AtomicU64,
    tokens_refused: AtomicU64,
    sign_in_failures: AtomicU64,
    challenges_issued: AtomicU64,
    challenges_passed: AtomicU64,
    challenges_refused: AtomicU64,
}

/// One admitted client in the table.
#[derive(Debug)]
struct AdmittedEntry {
    lane: Lane,
    first_ms: u64,
    last_ms: AtomicU64,
}

/// Clients admitted and active within the active window, by lane. Its
/// size is bounded by the user limit (waiters are not in it).
#[derive(Debug)]
struct AdmittedTable {
    map: DashMap<ClientId, AdmittedEntry>,
    counts: [AtomicU64; 2],
    last_sweep_ms: AtomicU64,
    /// Mean time from entry to release of those who left, smoothed
    /// (milliseconds; 0: none left yet).
    mean_stay_ms: AtomicU64,
    /// Those who left since the mean stay was last updated, and their
    /// stays added up (the mean moves once a second, whatever the sweeps).
    stays: Mutex<StaySample>,
    /// Users let in, per lane, since the node started.
    entries: [AtomicU64; 2],
    /// The general lane's share of the users let in, smoothed over
    /// seconds, in thousandths (teachers and staff take places first).
    general_share_permille: AtomicU64,
    /// When the places held free up, per lane, as of the last sweep.
    departures: Mutex<[Departures; 2]>,
}

/// Stays of the users who left since `since_ms`, and the entries per
/// lane counted then.
#[derive(Debug, Default, Clone, Copy)]
struct StaySample {
    since_ms: u64,
    left: u64,
    total_ms: u64,
    entries_at_start: [u64; 2],
}

/// How often the table of admitted users is swept: places free a fifth of
/// a second after their users went quiet at most, rather than all at once
/// each second (then granted at once, their waiters' pages came back
/// together and filled the reads' bulkhead).
const SWEEP_EVERY_MS: u64 = 200;

/// While pupils and parents wait in line too, teachers and staff come
/// first for free places only until they hold this share of the limit (or
/// their reserved share, if larger); past it, each lane gets the places
/// its own users leave. See [`Surge::staff_cap`].
const STAFF_FIRST_UP_TO_PERCENT: u64 = 50;

impl Default for AdmittedTable {
    fn default() -> Self {
        AdmittedTable {
            map: DashMap::new(),
            counts: Default::default(),
            last_sweep_ms: AtomicU64::new(0),
            mean_stay_ms: AtomicU64::new(0),
            stays: Mutex::new(StaySample::default()),
            entries: Default::default(),
            general_share_permille: AtomicU64::new(1_000),
            departures: Mutex::new([Departures::new(0, None); 2]),
        }
    }
}

fn lane_index(lane: Lane) -> usize {
    match lane {
        Lane::General => 0,
        Lane::Staff => 1,
    }
}

impl AdmittedTable {
    fn touch(&self, client: ClientId, lane: Lane, now_ms: u64) {
        if let Some(e) = self.map.get(&client) {
            e.last_ms.fetch_max(now_ms, Ordering::Relaxed);
            return;
        }
        if let dashmap::mapref::entry::Entry::Vacant(v) = self.map.entry(client) {
            v.insert(AdmittedEntry {
                lane,
                first_ms: now_ms,
                last_ms: AtomicU64::new(now_ms),
            });
            self.counts[lane_index(lane)].fetch_add(1, Ordering::Relaxed);
            self.entries[lane_index(lane)].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Forgets clients idle for longer than `window`, at most every
    /// [`SWEEP_EVERY_MS`] (one caller does it; the others go on).
    fn sweep_if_due(&self, now_ms: u64, window: Duration) {
        let last = self.last_sweep_ms.load(Ordering::Relaxed);
        if now_ms < last.saturating_add(SWEEP_EVERY_MS)
            || self
                .last_sweep_ms
                .compare_exchange(last, now_ms, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        let window_ms = u64::try_from(window.as_millis()).unwrap_or(u64::MAX);
        let stay = match self.mean_stay_ms.load(Ordering::Relaxed) {
            0 => None,
            ms => Some(Duration::from_millis(ms)),
        };
        let mut departures = [Departures::new(now_ms, stay)
            .noticed_after(Duration::from_millis(SWEEP_EVERY_MS / 2));
            2];
        let (mut left, mut stays_ms) = (0u64, 0u64);
        self.map.retain(|_, e| {
            let last = e.last_ms.load(Ordering::Relaxed);
            let keep = now_ms.saturating_sub(last) <= window_ms;
            if keep {
                departures[lane_index(e.lane)].add(e.first_ms, last, window_ms);
            } else {
                self.counts[lane_index(e.lane)].fetch_sub(1, Ordering::Relaxed);
                left += 1;
                stays_ms = stays_ms
                    .saturating_add(last.saturating_add(window_ms).saturating_sub(e.first_ms));
            }
            keep
        });
        let second = {
            let mut stays = self
                .stays
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            stays.left += left;
            stays.total_ms = stays.total_ms.saturating_add(stays_ms);
            if now_ms >= stays.since_ms.saturating_add(1_000) {
                let done = *stays;
                let entries =
                    Lane::ALL.map(|l| self.entries[lane_index(l)].load(Ordering::Relaxed));
                *stays = StaySample {
                    since_ms: now_ms,
                    entries_at_start: entries,
                    ..StaySample::default()
                };
                self.update_general_share(done.entries_at_start, entries);
                Some(done)
            } else {
                None
            }
        };
        if let Some(sample) = second.and_then(|s| s.total_ms.checked_div(s.left)) {
            // Smoothed over seconds: a quarter of the way to this second's mean.
            let old = self.mean_stay_ms.load(Ordering::Relaxed);
            let new = if old == 0 {
                sample
            } else {
                (old * 3 + sample) / 4
            };
            self.mean_stay_ms.store(new.max(1), Ordering::Relaxed);
        }
        *self
            .departures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = departures;
    }

    /// One second's entries per lane (from `before` to `after`) moves the
    /// general lane's share a quarter of the way to that second's.
    fn update_general_share(&self, before: [u64; 2], after: [u64; 2]) {
        let [general, staff] = [0, 1].map(|i| after[i].saturating_sub(before[i]));
        let Some(sample) = (general * 1_000).checked_div(general + staff) else {
            return;
        };
        let old = self.general_share_permille.load(Ordering::Relaxed);
        self.general_share_permille
            .store((old * 3 + sample) / 4, Ordering::Relaxed);
    }

    /// When the places a waiter of `lane` may get free up, as of the last
    /// sweep: a place of either lane, once freed, goes to teachers and
    /// staff first, so the general lane gets its measured share of them;
    /// but while staff hold their cap (`staff_capped`), a teacher's next
    /// place is one a teacher or staff member leaves.
    fn departures(&self, lane: Lane, staff_capped: bool) -> Departures {
        let [general, staff] = *self
            .departures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match lane {
            Lane::Staff if staff_capped => staff,
            Lane::Staff => general.merged(&staff),
            Lane::General => general
                .merged(&staff)
                .shared(self.general_share_permille.load(Ordering::Relaxed) as f64 / 1_000.0),
        }
    }

    fn count(&self, lane: Lane) -> u64 {
        self.counts[lane_index(lane)].load(Ordering::Relaxed)
    }

    fn total(&self) -> u64 {
        self.count(Lane::General) + self.count(Lane::Staff)
    }
}

/// The pre-rendered "busy" page of one language.
#[derive(Debug, Clone)]
pub(crate) struct BusyPage {
    /// The page up to the refresh delay, and after it (GET requests).
    pub refresh: (String, String),
    /// The same for the sign-in form, with a link to the teachers' and
    /// staff's form (never shed): shed at 2× load, teachers waited 3 to 7 s
    /// for the sign-in form before they could type their password.
    pub sign_in_refresh: (String, String),
    /// The page for other methods: no refresh, which would not resend.
    pub plain: String,
    /// The message, for JSON bodies.
    pub message: String,
}

/// The node's surge layer: one per process, in the application state.
pub struct Surge {
    config: SurgeConfig,
    signer: Signer,
    lobby: Mutex<Lobby>,
    started: Instant,
    signed_in_gate: CodelGate,
    pre_login_gate: CodelGate,
    users: AdaptiveLimit,
    bulkheads: Bulkheads,
    admitted: AdmittedTable,
    counters: Counters,
    busy: [BusyPage; 2],
    lobby_pages: pages::LobbyPages,
    secure_cookies: bool,
    failures: Mutex<FailureSketch>,
    challenges: ChallengeSigner,
    mix: mix::TrafficMix,
    holds: hold::Holds,
}

impl fmt::Debug for Surge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Surge")
            .field("enabled", &self.config.enabled)
            .field("user_limit", &self.users.limit())
            .finish_non_exhaustive()
    }
}

/// The figures of the surge layer at one moment, for `/metrics` and the
/// administrator page.
#[derive(Debug, Clone)]
pub struct SurgeSnapshot {
    /// Whether admission is on.
    pub enabled: bool,
    /// The adaptive limit on admitted users now.
    pub user_limit: u64,
    /// The operator's floor and ceiling.
    pub user_bounds: (u64, u64),
    /// Places reserved for the staff lane within the limit.
    pub staff_reserved: u64,
    /// Per lane, general then staff.
    pub lanes: [LaneFigures; 2],
    /// Requests refused or queued since start, by reason.
    pub refusals: Vec<(&'static str, u64)>,
    /// Requests seen with and without a valid session since start.
    pub requests_with_session: u64,
    /// See `requests_with_session`.
    pub requests_without_session: u64,
    /// Passes granted at once, and to waiters whose turn came.
    pub passes_direct: u64,
    /// See `passes_direct`.
    pub passes_from_queue: u64,
    /// Of `passes_from_queue`, waiters back after their place was held
    /// for them and granted again (they enter all the same).
    pub late_entries: u64,
    /// Queue tickets issued.
    pub tickets_issued: u64,
    /// Tickets and passes refused (tampered, expired, foreign).
    pub tokens_refused: u64,
    /// Whether each CoDel gate sees a standing queue (signed-in, pre-login).
    pub overloaded: (bool, bool),
    /// Bulkheads: class, in flight, limit.
    pub bulkheads: Vec<(&'static str, u64, u64)>,
    /// Failed sign-ins since start.
    pub sign_in_failures: u64,
    /// Challenges issued, passed and refused since start.
    pub challenges: (u64, u64, u64),
    /// The traffic of the last full minute.
    pub mix: mix::MixFigures,
    /// Whether the sign-in check may be asked.
    pub challenge_enabled: bool,
    /// Waiters' refreshes held now until their turn, and the most at once.
    pub lobby_held: (u64, u64),
}

/// One lane's figures.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LaneFigures {
    /// The lane.
    pub lane: Lane,
    /// Users admitted and active in it.
    pub admitted: u64,
    /// Tickets waiting (abandoned ones included until the front passes them).
    pub queued: u64,
    /// Admissions per second while the lane had waiters, once measured.
    pub admission_rate: Option<f64>,
    /// The wait at the back of the lane, as a newcomer would be told it
    /// (from the places held and when they free, else the measured rate).
    pub estimated_wait: Option<Duration>,
}

impl SurgeSnapshot {
    /// Share of requests that carried a valid session, if any were seen.
    pub fn session_share(&self) -> Option<f64> {
        let total = self.requests_with_session + self.requests_without_session;
        (total > 0).then(|| self.requests_with_session as f64 / total as f64)
    }
}

impl Surge {
    /// The surge layer of `web.surge`; the password-hash permits size the
    /// sign-in bulkhead by default.
    pub fn new(
        web: &WebConfig,
        clock: &dyn Clock,
        catalogs: &Arc<Catalogs>,
    ) -> Result<Surge, String> {
        let config = &web.surge;
        let master = if config.secret.0.is_empty() {
            let mut bytes = [0u8; 32];
            rand::rngs::OsRng.fill_bytes(&mut bytes);
            bytes.to_vec()
        } else {
            config.secret.0.as_bytes().to_vec()
        };
        let lifetimes = TokenLifetimes {
            ticket_max_age: config.ticket_max_age,
            pass_idle_timeout: config.pass_idle,
            ..TokenLifetimes::default()
        };
        let staff_share = Share::from_percent(config.staff_share_percent.min(100))
            .ok_or("staff share above 100 %")?;
        let lobby = Lobby::new(
            LobbyConfig {
                staff_share,
                // Waiters whose turn is within 40 s come back at least
                // every 20 s: admitted waiters who learn late leave places
                // unused meanwhile, then return together.
                refresh_max: Duration::from_secs(20),
                // Further back, after half their wait, up to 40 s. Up to
                // 2 minutes, waiters far back whose estimate was too long
                // were away when their turn came: in the 9:15 wave at 10×
                // (`ardoise surge --peak 1400`), admitted users fell to 139
                // under a limit of 1,339 while 39,000 waited. Up to 40 s,
                // 10,900-16,500 waiters got in against 5,200-12,600 (three
                // runs against four), each waiter's page costing a
                // refusal's 24 µs every 40 s instead of every 2 minutes.
                refresh_far: Duration::from_secs(40),
                // A place granted to a waiter is held for them only a few
                // seconds: near the front, pages come back when the turn is
                // due (refresh_min at the soonest, plus an eighth); a waiter
                // who learns later still enters with their ticket. Held
                // longer, granted places sat idle by the hundred while the
                // queue stood still (seen at 10× load: 600 users admitted
                // under a limit of 1,240, 16,000 waiting).
                grant_ttl: Duration::from_secs(3),
                hold: config.lobby_hold,
                // A held refresh is answered when the turn comes: the page
                // may come back sooner, it will not come back for nothing.
                refresh_min: if config.lobby_hold.is_zero() {
                    LobbyConfig::default().refresh_min
                } else {
                    Duration::from_secs(1)
                },
                ..LobbyConfig::default()
            },
            clock.now_ms(),
        );
        let gate = |target| {
            CodelGate::new(CodelConfig {
                target,
                interval: config.codel_interval,
            })
        };
        let users = AdaptiveLimit::new(AdaptiveLimitConfig {
            floor: config.users_floor,
            ceiling: config.users_ceiling,
            initial: config.users_initial,
            // A few requests shed in a second are the delay gate doing its
            // work on a node near its limit, not a sign of too many users:
            // counted as congestion one by one, they kept the limit under
            // what the node served with the surge layer off (seen at 1×:
            // 2 of 170 requests a second shed, the limit shrinking every
            // other second, 38 journeys/s against 60).
            overload_share: f64::from(config.users_overload_percent.min(100)) / 100.0,
            delay_target: config.codel_target,
            // Users count for the whole active window after their last
            // click: the limit must be able to climb 10 % a second.
            growth: 0.1,
            // ...but only while it binds. Places granted to waiters not
            // back yet leave it unused, and a limit grown meanwhile let in
            // thousands at once when they were (seen at 10×: the limit
            // climbed from 1,600 to 2,300 with 1,100 users in, the front
            // jumped, the reads' bulkhead overflowed for 20 s).
            grow_above_use: 0.9,
            ..AdaptiveLimitConfig::default()
        });
        let mut salt = [0u8; 16];
        rand::rngs::OsRng.fill_bytes(&mut salt);
        Ok(Surge {
            failures: Mutex::new(FailureSketch::new(config.failure_half_life, salt)),
            challenges: ChallengeSigner::new(
                SigningKey::derive(&master, "challenge"),
                config.challenge.max_age,
            ),
            mix: mix::TrafficMix::default(),
            holds: hold::Holds::new(config.lobby_max_held),
            config: config.clone(),
            signer: Signer::new(SigningKey::derive(&master, "admission"), lifetimes),
            lobby: Mutex::new(lobby),
            started: Instant::now(),
            signed_in_gate: gate(config.codel_target),
            pre_login_gate: gate(config.prelogin_target),
            users,
            bulkheads: Bulkheads::new(config.bulkhead_limits(web.signin_permits)),
            secure_cookies: web.secure_cookies,
            admitted: AdmittedTable::default(),
            counters: Counters::default(),
            busy: pages::busy_pages(catalogs)?,
            lobby_pages: pages::lobby_pages(catalogs)?,
        })
    }

    /// The settings.
    pub fn config(&self) -> &SurgeConfig {
        &self.config
    }

    /// Time since the node started, for the monotonic measurements.
    fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// The lobby, even if a thread panicked while holding it (its counters
    /// are updated in single statements, so they are never half-written).
    fn lobby(&self) -> MutexGuard<'_, Lobby> {
        self.lobby
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The failure counts per address (see [`Self::lobby`] on poisoning).
    fn failure_sketch(&self) -> MutexGuard<'_, FailureSketch> {
        self.failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn count(&self, refusal: Refusal) {
        self.counters.refusals[refusal.index()].fetch_add(1, Ordering::Relaxed);
    }

    /// Places reserved for staff within `limit`: the staff share, rounded
    /// up, so that a non-zero share is at least one place.
    fn staff_reserved(&self, limit: u64) -> u64 {
        (u128::from(limit) * u128::from(self.config.staff_share_percent.min(100)))
            .div_ceil(100)
            .try_into()
            .unwrap_or(limit)
    }

    /// Places staff may hold: all of them, except while pupils and parents
    /// wait in line too; then their reserved share or half the limit,
    /// whichever is more. Staff come first for any free place, so with no
    /// cap a line of teachers longer than the places freeing would hold
    /// the general line still (seen in the 9:15 wave at 10× load: 1,500
    /// teachers and staff in line, the general front stood still for 75 s
    /// with 3 pupils in under a limit of 300).
    fn staff_cap(&self, lobby: &Lobby, limit: u64) -> u64 {
        if lobby.backlog(Lane::General) > 0 {
            self.staff_reserved(limit)
                .max(limit * STAFF_FIRST_UP_TO_PERCENT / 100)
        } else {
            limit
        }
    }

    /// Free places for `lane` now, before pending grants: staff may use any
    /// place up to their cap ([`Surge::staff_cap`]); the general lane may
    /// not use the staff's reserved share.
    fn free_places(&self, lobby: &Lobby, lane: Lane) -> u64 {
        let limit = self.users.limit();
        let total_free = limit.saturating_sub(self.admitted.total());
        match lane {
            // Staff may always use their reserved share, even when the
            // general lane holds more than its own after the limit fell.
            Lane::Staff => {
                let staff = self.admitted.count(Lane::Staff);
                let cap = self.staff_cap(lobby, limit);
                total_free
                    .min(cap.saturating_sub(staff))
                    .max(self.staff_reserved(limit).saturating_sub(staff))
            }
            Lane::General => {
                let general_capacity = limit.saturating_sub(self.staff_reserved(limit));
                general_capacity
                    .saturating_sub(self.admitted.count(Lane::General))
                    .min(total_free)
            }
        }
    }

    /// Places of `lane` held above its capacity now (the limit came down,
    /// or staff hold their cap while others wait): they must free before
    /// any waiter of the lane gets one.
    fn over_capacity(&self, lobby: &Lobby, lane: Lane) -> u64 {
        let limit = self.users.limit();
        let staff = self.admitted.count(Lane::Staff);
        match lane {
            Lane::Staff if staff < self.staff_reserved(limit) => 0,
            Lane::Staff => self
                .admitted
                .total()
                .saturating_sub(limit)
                .max(staff.saturating_sub(self.staff_cap(lobby, limit))),
            Lane::General => self
                .admitted
                .count(Lane::General)
                .saturating_sub(limit.saturating_sub(self.staff_reserved(limit))),
        }
    }

    /// Whether staff hold their cap while others wait: their next place is
    /// then one a teacher or staff member leaves.
    fn staff_capped(&self, lobby: &Lobby) -> bool {
        lobby.backlog(Lane::General) > 0
            && self.admitted.count(Lane::Staff) >= self.staff_cap(lobby, self.users.limit())
    }

    /// Places that must free before the first waiter of `lane` gets one:
    /// those held above capacity, and those granted to waiters not back
    /// yet beyond the free ones.
    fn ahead_of_line(&self, lobby: &Lobby, lane: Lane, now_ms: u64) -> u64 {
        let granted = lobby
            .pending_grants(now_ms)
            .saturating_sub(self.free_places(lobby, lane));
        self.over_capacity(lobby, lane).saturating_add(granted)
    }

    /// What the waiter at `position` in `lane` is told: their turn comes
    /// when the places held above capacity, those granted to waiters not
    /// back yet (beyond the free ones), then `position` more, have freed
    /// (the schedule of the places held now), returns jittered.
    fn plan(&self, lobby: &Lobby, lane: Lane, position: u64, now_ms: u64) -> LobbyPlan {
        let place = position.saturating_add(self.ahead_of_line(lobby, lane, now_ms));
        self.plan_for_place(lobby, lane, place, now_ms)
    }

    /// What a late returner of `lane` waiting for a place is told: their
    /// turn comes when the places held above capacity have freed, then one
    /// for each late returner held ahead of them, then theirs.
    fn late_plan(&self, lobby: &Lobby, lane: Lane, now_ms: u64) -> LobbyPlan {
        let ahead = self
            .over_capacity(lobby, lane)
            .saturating_add(self.holds.late_held(lane));
        self.plan_for_place(lobby, lane, ahead.saturating_add(1), now_ms)
    }

    /// What a waiter of `lane` whose turn comes when `place` places have
    /// freed is told, from the schedule of the places held now; returns
    /// jittered.
    fn plan_for_place(&self, lobby: &Lobby, lane: Lane, place: u64, now_ms: u64) -> LobbyPlan {
        lobby.plan(
            lane,
            place,
            now_ms,
            rand::thread_rng().gen(),
            Some(&self.schedule(lobby, lane, now_ms)),
        )
    }

    /// When places free for a waiter of `lane`: those users hold now (see
    /// [`AdmittedTable::departures`]), and the free places granted to
    /// waiters not back yet, which lapse to the next in line if they stay
    /// away (as many as lately did, [`Lobby::grant_lapses`]). Without
    /// them, a node whose free places were all granted to waiters away
    /// from their screens told the next ones to wait for its few users to
    /// leave, many rounds of a stay (seen from a cold start at 10×:
    /// teachers told 900 s who got in after 50 s, away meanwhile while the
    /// node sat idle with 900 free places).
    ///
    /// Only while users hold less than half the limit: where the limit
    /// binds, grants are few next to the places held, and counted they
    /// told the general lane at a load step waits 1.5-2.2 times too short
    /// (two runs of `scripts/surge-overload.sh` at 1× then 10×).
    fn schedule(&self, lobby: &Lobby, lane: Lane, now_ms: u64) -> Departures {
        let capped = self.staff_capped(lobby);
        if self.admitted.total().saturating_mul(2) >= self.users.limit() {
            return self.admitted.departures(lane, capped);
        }
        let lanes: &[Lane] = if lane == Lane::Staff && capped {
            &[Lane::Staff]
        } else {
            &Lane::ALL
        };
        let mut lapses = [(0, u64::MAX); 4];
        for (i, l) in lanes.iter().enumerate() {
            let [older, newer] = lobby.grant_lapses(*l, now_ms);
            lapses[2 * i] = older;
            lapses[2 * i + 1] = newer;
        }
        lapses.sort_unstable_by_key(|(_, at)| *at);
        // Granted places beyond the free ones are held above capacity
        // ([`Surge::ahead_of_line`]): only the free ones go on.
        let mut room = self.free_places(lobby, lane);
        let mut schedule = self.admitted.departures(lane, capped);
        for (n, at) in lapses {
            let n = n.min(room);
            room -= n;
            schedule = schedule.with_lapsing(n, at);
        }
        schedule
    }

    /// Moves the fronts of the lanes forward by the free places (staff
    /// first), holding back places granted to waiters not yet back and
    /// those owed to late returners held for one (woken when places are
    /// free), and wakes the refreshes held for the places granted.
    fn admit_waiting(&self, lobby: &mut Lobby, now_ms: u64) {
        for lane in [Lane::Staff, Lane::General] {
            let places = self.free_places(lobby, lane);
            let late = self.holds.late_held(lane);
            if late > 0 && places > 0 {
                self.holds.late(lane).notify_waiters();
            }
            if lobby.backlog(lane) == 0 {
                continue;
            }
            let free = places
                .saturating_sub(lobby.pending_grants(now_ms))
                .saturating_sub(late);
            if free > 0 {
                let from = lobby.front(lane);
                let granted = lobby.admit_lane(lane, free, now_ms);
                self.holds.front_moved(lane, from, from + granted);
            }
        }
    }

    /// The figures now.
    pub fn snapshot(&self, now_ms: u64) -> SurgeSnapshot {
        let limit = self.users.limit();
        let lanes = {
            let mut lobby = self.lobby();
            Lane::ALL.map(|lane| {
                let snap = lobby.snapshot(lane, now_ms);
                LaneFigures {
                    lane,
                    admitted: self.admitted.count(lane),
                    queued: snap.backlog,
                    admission_rate: snap.admission_rate,
                    // The wait at the back of the line, as a newcomer
                    // would be told it.
                    estimated_wait: lobby.wait_at(
                        lane,
                        snap.backlog
                            .saturating_add(self.ahead_of_line(&lobby, lane, now_ms)),
                        now_ms,
                        Some(&self.schedule(&lobby, lane, now_ms)),
                    ),
                }
            })
        };
        let c = &self.counters;
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        SurgeSnapshot {
            enabled: self.config.enabled,
            user_limit: limit,
            user_bounds: self.users.bounds(),
            staff_reserved: self.staff_reserved(limit),
            lanes,
            refusals: Refusal::ALL
                .iter()
                .map(|r| (r.as_str(), load(&c.refusals[r.index()])))
                .collect(),
            requests_with_session: load(&c.with_session),
            requests_without_session: load(&c.without_session),
            passes_direct: load(&c.passes_direct),
            passes_from_queue: load(&c.passes_from_queue),
            late_entries: load(&c.late_entries),
            tickets_issued: load(&c.tickets_issued),
            tokens_refused: load(&c.tokens_refused),
            overloaded: (
                self.signed_in_gate.is_overloaded(),
                self.pre_login_gate.is_overloaded(),
            ),
            bulkheads: BulkheadClass::ALL
                .iter()
                .map(|class| {
                    let b = self.bulkheads.get(*class);
                    (class.as_str(), b.in_flight(), b.limit())
                })
                .collect(),
            sign_in_failures: load(&c.sign_in_failures),
            challenges: (
                load(&c.challenges_issued),
                load(&c.challenges_passed),
                load(&c.challenges_refused),
            ),
            mix: self.mix.figures(now_ms),
            challenge_enabled: self.config.challenge.enabled,
            lobby_held: (self.holds.held() as u64, self.config.lobby_max_held as u64),
        }
    }

    /// Writes the figures into the Prometheus recorder (called when
    /// `/metrics` is scraped, so the request path pays nothing for them).
    pub fn publish_metrics(&self, now_ms: u64) {
        let s = self.snapshot(now_ms);
        metrics::gauge!("ardoise_surge_enabled").set(if s.enabled { 1.0 } else { 0.0 });
        metrics::gauge!("ardoise_surge_user_limit").set(s.user_limit as f64);
        metrics::gauge!("ardoise_surge_user_limit_floor").set(s.user_bounds.0 as f64);
        metrics::gauge!("ardoise_surge_user_limit_ceiling").set(s.user_bounds.1 as f64);
        for lane in &s.lanes {
            let name = lane.lane.as_str();
            metrics::gauge!("ardoise_surge_admitted_users", "lane" => name)
                .set(lane.admitted as f64);
            metrics::gauge!("ardoise_surge_queue_length", "lane" => name).set(lane.queued as f64);
            metrics::gauge!("ardoise_surge_admission_rate", "lane" => name)
                .set(lane.admission_rate.unwrap_or(0.0));
            // -1: not known yet (no admission rate measured).
            metrics::gauge!("ardoise_surge_estimated_wait_seconds", "lane" => name)
                .set(lane.estimated_wait.map_or(-1.0, |d| d.as_secs_f64()));
        }
        for (reason, n) in &s.refusals {
            metrics::counter!("ardoise_surge_refusals_total", "reason" => *reason).absolute(*n);
        }
        metrics::counter!("ardoise_surge_requests_total", "session" => "valid")
            .absolute(s.requests_with_session);
        metrics::counter!("ardoise_surge_requests_total", "session" => "none")
            .absolute(s.requests_without_session);
        metrics::gauge!("ardoise_surge_session_share").set(s.session_share().unwrap_or(0.0));
        metrics::counter!("ardoise_surge_passes_total", "how" => "direct")
            .absolute(s.passes_direct);
        metrics::counter!("ardoise_surge_passes_total", "how" => "from_queue")
            .absolute(s.passes_from_queue);
        metrics::counter!("ardoise_surge_late_entries_total").absolute(s.late_entries);
        metrics::counter!("ardoise_surge_tickets_issued_total").absolute(s.tickets_issued);
        metrics::counter!("ardoise_surge_tokens_refused_total").absolute(s.tokens_refused);
        metrics::counter!("ardoise_surge_retries_held_total").absolute(conn::held_total());
        metrics::gauge!("ardoise_surge_lobby_held").set(s.lobby_held.0 as f64);
        for lane in Lane::ALL {
            // Waiters back late to a full node, held first in line.
            metrics::gauge!("ardoise_surge_late_held", "lane" => lane.as_str())
                .set(self.holds.late_held(lane) as f64);
        }
        metrics::gauge!("ardoise_surge_overloaded", "traffic" => "signed_in")
            .set(if s.overloaded.0 { 1.0 } else { 0.0 });
        metrics::gauge!("ardoise_surge_overloaded", "traffic" => "pre_login")
            .set(if s.overloaded.1 { 1.0 } else { 0.0 });
        metrics::counter!("ardoise_surge_sign_in_failures_total").absolute(s.sign_in_failures);
        for (outcome, n) in [
            ("issued", s.challenges.0),
            ("passed", s.challenges.1),
            ("refused", s.challenges.2),
        ] {
            metrics::counter!("ardoise_surge_challenges_total", "outcome" => outcome).absolute(n);
        }
        metrics::gauge!("ardoise_surge_accounts_per_address").set(s.mix.accounts_per_address());
        metrics::gauge!("ardoise_surge_requests_per_account").set(s.mix.requests_per_account());
        metrics::gauge!("ardoise_surge_distinct_accounts").set(s.mix.accounts as f64);
        metrics::gauge!("ardoise_surge_distinct_addresses").set(s.mix.addresses as f64);
        metrics::gauge!("ardoise_surge_sign_in_failure_share").set(s.mix.failure_share());
        for (class, in_flight, limit) in &s.bulkheads {
            metrics::gauge!("ardoise_surge_bulkhead_in_flight", "class" => *class)
                .set(*in_flight as f64);
            metrics::gauge!("ardoise_surge_bulkhead_limit", "class" => *class).set(*limit as f64);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(n: u8) -> ClientId {
        ClientId::from_bytes([n; 16])
    }

    #[test]
    fn the_general_lane_waits_for_its_share_of_the_places_of_both_lanes() {
        let table = AdmittedTable::default();
        let window = Duration::from_secs(10);
        // One second: three pupils and one teacher let in.
        for n in 0..3 {
            table.touch(client(n), Lane::General, 500);
        }
        table.touch(client(9), Lane::Staff, 500);
        table.sweep_if_due(1_000, window);
        table.sweep_if_due(2_000, window);
        // A quarter of the way from "all general" to three quarters.
        let share = table.general_share_permille.load(Ordering::Relaxed);
        assert_eq!(share, (1_000 * 3 + 750) / 4);
        // All four places free 10 s after their users' last click; the
        // staff lane may take any of them, the general lane its share.
        let staff = table.departures(Lane::Staff, false);
        let general = table.departures(Lane::General, false);
        assert_eq!(staff.held(), 4);
        // The last of the four frees late in the 8th second from the
        // sweep, and is seen free half a sweep later on average.
        assert_eq!(staff.wait_for(4, 2_000), Some(Duration::from_millis(8_975)));
        assert_eq!(
            general.wait_for(4, 2_000),
            None,
            "5 places needed (4 / 0.937), a stay not measured yet"
        );
        assert_eq!(
            general.wait_for(3, 2_000),
            Some(Duration::from_millis(8_975))
        );
        // Staff holding their cap while pupils wait get only the places
        // teachers and staff leave: the one teacher's.
        let capped = table.departures(Lane::Staff, true);
        assert_eq!(capped.held(), 1);
        assert_eq!(capped.wait_for(2, 2_000), None, "a stay not measured yet");
    }
}
