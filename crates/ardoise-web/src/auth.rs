//! Sign-in, activation, password changes and session lifecycle: the rules
//! of who gets a session, independent of HTML or JSON.
//!
//! Password hashes are argon2id with OWASP's parameters (m=19 MiB, t=2,
//! p=1), computed on blocking threads behind their own permits so that a
//! storm of fresh sign-ins cannot take the cores that serve signed-in
//! pupils. Waiters for a permit queue in two lanes, teachers and staff
//! first (so that a class can start while pupils sign in by the
//! thousand), each lane bounded: past it, `ApiError::Busy` at once
//! (the surge layer turns it into its "busy" answer with `Retry-After`).
//! Hashing never takes more than half of the node's cores: on a node of
//! two cores or more the permits alone see to it; on a smaller one (one
//! core, or a CPU quota below two) a permit rests after each pupil's or
//! parent's hash as long as the hash took, since a hashing thread shares
//! the CPU with the runtime's threads and would otherwise take most of it
//! in a storm (seen at 10× load under a quarter of a core: 60 % of the
//! node hashing, pages halved). Not after a teacher's or staff member's:
//! they are few, so a storm of theirs is bounded by their number and the
//! throttle, and their thread, below the threads serving pages
//! ([`STAFF_HASH_NICE`]), gets about a quarter of the CPU when both want
//! it (weights 335 against 1024) without making the pages wait for it.
//! Every path that checks a secret (password, activation code) goes
//! through the per-account throttle.

use crate::error::ApiError;
use crate::session::{new_token, token_digest, LiveSession, Lookup, REMEMBER_SECS, SESSION_SECS};
use crate::state::AppState;
use ardoise_core::password::{validate_new_password, PasswordError};
use ardoise_core::throttle::Decision;
use ardoise_core::{Login, PersonId};
use ardoise_store::{AccountStatus, Credentials, SessionInsertForm};
use argon2::password_hash::{PasswordHash, PasswordHasher, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use dashmap::DashMap;
use rand::Rng;
use sha2::{Digest, Sha256};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::oneshot;

/// Who waits for a password hash: teachers and staff go first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashLane {
    /// Teachers, staff, administrators.
    Staff,
    /// Everyone else, and unknown logins.
    General,
}

impl HashLane {
    /// The lane's name in metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            HashLane::Staff => "staff",
            HashLane::General => "general",
        }
    }
}

/// Records the CPU time of one password hash of `lane`, in
/// `ardoise_password_hash_cpu_seconds{lane}`: its sum's rate is the share
/// of a core that sign-ins take, the figure that tells an operator how
/// much of a node a storm of password sign-ins costs beside the pages (at
/// 10× load under a quarter of a core, teachers' sign-ins alone took
/// 42–48 % of the node).
fn record_hash_cpu(lane: HashLane, took: std::time::Duration) {
    metrics::histogram!("ardoise_password_hash_cpu_seconds", "lane" => lane.as_str())
        .record(took.as_secs_f64());
}

#[derive(Debug)]
struct Waiters {
    free: usize,
    staff: VecDeque<oneshot::Sender<HashPermit>>,
    general: VecDeque<oneshot::Sender<HashPermit>>,
    /// How long a permit is held, hash and rest, smoothed (seconds); `None`
    /// until a permit has been given back.
    hold_secs: Option<f64>,
}

/// The longest a sign-in may expect to wait for a password-hash permit
/// before it is refused at once (`503` with `Retry-After`) rather than
/// queued, and the longest it waits: a sign-in that would wait longer is
/// better told to come back than left to time out (browsers and the load
/// generator give up after ten seconds or so). The queue's length alone
/// did not bound the wait, nor did the expected wait alone (server side, a
/// check waited up to 9.3 s at 10× load): while the node serves many
/// requests a hash takes longer.
const MAX_HASH_WAIT: std::time::Duration = std::time::Duration::from_secs(4);

/// The password-hash permits and their two queues.
#[derive(Debug)]
struct HashQueue {
    waiters: Mutex<Waiters>,
    /// Hashes that may run at once.
    permits: usize,
    /// Most waiters per lane; more are refused at once, as are those who
    /// would wait longer than `max_wait`.
    max_waiting: usize,
    /// The longest a waiter may expect to wait, and waits, for a permit
    /// ([`MAX_HASH_WAIT`]).
    max_wait: std::time::Duration,
}

/// The right to run one hash; handed to the next waiter when dropped
/// (staff first). A permit sent to a waiter who left is dropped with the
/// channel and so passes on too.
#[derive(Debug)]
pub struct HashPermit {
    queue: Option<Arc<HashQueue>>,
    /// When it was handed out.
    since: std::time::Instant,
}

impl HashPermit {
    fn of(queue: &Arc<HashQueue>) -> Self {
        HashPermit {
            queue: Some(Arc::clone(queue)),
            since: std::time::Instant::now(),
        }
    }
}

impl Drop for HashPermit {
    fn drop(&mut self) {
        if let Some(queue) = self.queue.take() {
            HashQueue::release(&queue, self.since.elapsed());
        }
    }
}

impl HashQueue {
    fn new(permits: usize, max_waiting: usize) -> Arc<Self> {
        Arc::new(HashQueue {
            waiters: Mutex::new(Waiters {
                free: permits.max(1),
                staff: VecDeque::new(),
                general: VecDeque::new(),
                hold_secs: None,
            }),
            permits: permits.max(1),
            max_waiting: max_waiting.max(1),
            max_wait: MAX_HASH_WAIT,
        })
    }

    /// Whether a newcomer of `lane` would be refused: their lane's queue
    /// is full, or they would wait longer than `max_wait` behind those
    /// ahead (their lane, and for the general lane the staff's), as far as
    /// the permits' measured hold time tells (not before it is known).
    fn over_bound(&self, w: &Waiters, lane: HashLane) -> bool {
        let (mine, ahead) = match lane {
            HashLane::Staff => (w.staff.len(), w.staff.len()),
            HashLane::General => (w.general.len(), w.staff.len() + w.general.len()),
        };
        mine >= self.max_waiting
            || w.hold_secs.is_some_and(|hold| {
                (ahead + 1) as f64 * hold / self.permits as f64 > self.max_wait.as_secs_f64()
            })
    }

    /// Forgets the waiters who left (their request was dropped): they hold
    /// no place.
    fn forget_gone(w: &mut Waiters) {
        w.staff.retain(|tx| !tx.is_closed());
        w.general.retain(|tx| !tx.is_closed());
    }

    fn lock(&self) -> MutexGuard<'_, Waiters> {
        // Every change under this lock is one push, pop or counter step.
        self.waiters
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A permit at once if one is free and nobody of this lane (or, for
    /// the general lane, of either) waits; else a place in the lane's
    /// queue; `None` if that queue is full.
    fn enter(
        this: &Arc<Self>,
        lane: HashLane,
    ) -> Option<Result<HashPermit, oneshot::Receiver<HashPermit>>> {
        let mut w = this.lock();
        let ahead = match lane {
            HashLane::Staff => w.staff.len(),
            HashLane::General => w.staff.len() + w.general.len(),
        };
        if w.free > 0 && ahead == 0 {
            w.free -= 1;
            return Some(Ok(HashPermit::of(this)));
        }
        if this.over_bound(&w, lane) {
            Self::forget_gone(&mut w);
            if this.over_bound(&w, lane) {
                return None;
            }
        }
        let queue = match lane {
            HashLane::Staff => &mut w.staff,
            HashLane::General => &mut w.general,
        };
        let (tx, rx) = oneshot::channel();
        queue.push_back(tx);
        Some(Err(rx))
    }

    /// Whether a newcomer of `lane` would be refused now.
    fn is_full(this: &Arc<Self>, lane: HashLane) -> bool {
        let mut w = this.lock();
        if w.free > 0 {
            return false;
        }
        Self::forget_gone(&mut w);
        this.over_bound(&w, lane)
    }

    /// A permit comes back after being held for `held`: to the next
    /// waiter, staff first.
    fn release(this: &Arc<Self>, held: std::time::Duration) {
        let mut w = this.lock();
        let sample = held.as_secs_f64();
        w.hold_secs = Some(match w.hold_secs {
            None => sample,
            // Smoothed over the last ten permits or so.
            Some(hold) => hold + 0.1 * (sample - hold),
        });
        loop {
            let Some(tx) = w.staff.pop_front().or_else(|| w.general.pop_front()) else {
                w.free += 1;
                return;
            };
            match tx.send(HashPermit::of(this)) {
                Ok(()) => return,
                // That waiter left: disarm the returned permit (dropping it
                // armed would re-enter this lock) and try the next one.
                Err(mut back) => back.queue = None,
            }
        }
    }

    async fn acquire(this: &Arc<Self>, lane: HashLane) -> Result<HashPermit, ApiError> {
        match Self::enter(this, lane) {
            None => Err(ApiError::Busy),
            Some(Ok(permit)) => Ok(permit),
            // The estimate above can be wrong (a hash that gives way to
            // requests takes longer than the last ones did): the wait is
            // also cut at the bound. A permit sent just as the wait ends is
            // dropped with the channel, and so passes on to the next.
            Some(Err(rx)) => match tokio::time::timeout(this.max_wait, rx).await {
                Ok(sent) => sent.map_err(|_| ApiError::Unavailable),
                Err(_) => Err(ApiError::Busy),
            },
        }
    }
}

/// Password hashing with a bulkhead.
pub struct Passwords {
    checkers: Checkers,
    queue: Arc<HashQueue>,
    /// Share of the time a permit may hash, in `(0, 1]`: after a hash that
    /// took `d` of CPU time, the permit rests `d × (1 / duty − 1)`.
    duty: f64,
    /// The hash lane of logins seen during the current storm (while the
    /// general lane is full; forgotten as soon as it is not), so that a
    /// sign-in whose lane is full is refused before its account is looked
    /// up: in a storm the same people retry every few seconds. Only ever
    /// decides a queue. (A cache with expiry touched on every sign-in cost
    /// a third of the sign-in rate in `scripts/signin-bench.sh`.)
    lanes: DashMap<String, HashLane>,
    /// A hash to verify against when the login is unknown, so that a wrong
    /// login takes as long as a wrong password (no account enumeration).
    dummy_hash: String,
}

/// OWASP's argon2id parameters: 19 MiB, 2 passes, 1 lane.
pub fn argon2_params() -> Result<Params, argon2::Error> {
    Params::new(19 * 1024, 2, 1, None)
}

/// Hashes a password now, on this thread (the demo and tests use it).
pub fn hash_password_blocking(password: &str) -> Result<String, ApiError> {
    let params = argon2_params().map_err(|e| ApiError::Internal(e.to_string()))?;
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| ApiError::Internal(e.to_string()))
}

thread_local! {
    /// Argon2's working memory (19 MiB with OWASP's parameters), kept by
    /// each thread that checks passwords. Allocated for each check, it was
    /// mapped, zeroed page by page and unmapped again every time: a sixth
    /// of the node's CPU at 10× (`perf`), as much as a third of the hash.
    static BLOCKS: std::cell::RefCell<Vec<argon2::Block>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Checks `password` against the PHC string `phc`, with the parameters,
/// salt and algorithm it names, in the memory this thread keeps for that.
fn verify_blocking(password: &str, phc: &str) -> bool {
    use subtle::ConstantTimeEq;
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        return false;
    };
    let (Ok(algorithm), Ok(params)) = (
        Algorithm::try_from(parsed.algorithm),
        Params::try_from(&parsed),
    ) else {
        return false;
    };
    let version = parsed
        .version
        .and_then(|v| Version::try_from(v).ok())
        .unwrap_or_default();
    let mut salt_buf = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_buf) else {
        return false;
    };
    let blocks = params.block_count();
    let argon = Argon2::new(algorithm, version, params);
    let mut out = vec![0u8; expected.len()];
    let computed = BLOCKS.with(|kept| {
        let mut kept = kept.borrow_mut();
        if kept.len() < blocks {
            kept.resize(blocks, argon2::Block::default());
        }
        argon
            .hash_password_into_with_memory(
                password.as_bytes(),
                salt,
                &mut out,
                &mut kept[..blocks],
            )
            .is_ok()
    });
    computed && bool::from(expected.as_bytes().ct_eq(&out))
}

/// A password hash (a check or a new password) to run on a [`Checkers`]
/// thread.
type Check = Box<dyn FnOnce() + Send>;

/// The threads that hash passwords (checks and new ones): for each lane, as many as the hash
/// permits, each keeping argon2's memory (19 MiB) between its checks, so
/// what hashing holds is bounded by the permits (tokio's blocking threads,
/// which files use too, are many and come and go). Both lanes' threads
/// run below the threads serving requests: the general lane's well below
/// ([`HASH_NICE`]), the teachers' and staff's less
/// ([`STAFF_HASH_NICE`]).
struct Checkers {
    staff: CheckerPool,
    general: CheckerPool,
}

impl Checkers {
    fn start(threads: usize) -> Result<Checkers, ApiError> {
        Ok(Checkers {
            staff: CheckerPool::start(threads, "ardoise-hash-staff", STAFF_HASH_NICE)?,
            general: CheckerPool::start(threads, "ardoise-hash", HASH_NICE)?,
        })
    }

    async fn run<T: Send + 'static>(
        &self,
        lane: HashLane,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, ApiError> {
        match lane {
            HashLane::Staff => self.staff.run(f).await,
            HashLane::General => self.general.run(f).await,
        }
    }
}

/// The hashing threads of one lane.
struct CheckerPool {
    tx: std::sync::mpsc::Sender<Check>,
}

impl CheckerPool {
    /// `threads` threads named `name-0`, `name-1`... at nice value `nice`
    /// (0: the node's own).
    fn start(threads: usize, name: &str, nice: i32) -> Result<CheckerPool, ApiError> {
        let (tx, rx) = std::sync::mpsc::channel::<Check>();
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..threads.max(1) {
            let rx = Arc::clone(&rx);
            std::thread::Builder::new()
                .name(format!("{name}-{i}"))
                .spawn(move || {
                    if nice != 0 {
                        lower_priority(nice);
                    }
                    loop {
                        // Held only while taking the next check.
                        let next = rx
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner)
                            .recv();
                        let Ok(check) = next else {
                            return; // The passwords were dropped.
                        };
                        // A check that panics loses its answer (its caller sees
                        // an internal error), not the thread.
                        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(check));
                    }
                })
                .map_err(|e| ApiError::Internal(e.to_string()))?;
        }
        Ok(CheckerPool { tx })
    }

    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, ApiError> {
        let (done, answer) = oneshot::channel();
        self.tx
            .send(Box::new(move || {
                let _ = done.send(f());
            }))
            .map_err(|_| ApiError::Internal("the password checking threads stopped".into()))?;
        answer
            .await
            .map_err(|_| ApiError::Internal("a password check failed".into()))
    }
}

impl Passwords {
    /// `permits` hashes may run at once; at most `max_waiting` requests
    /// wait for one in each lane (`usize::MAX`: no bound).
    pub fn new(permits: usize, max_waiting: usize) -> Result<Self, ApiError> {
        Ok(Passwords {
            checkers: Checkers::start(permits)?,
            queue: HashQueue::new(permits, max_waiting),
            duty: duty_for(
                std::thread::available_parallelism().map_or(1, |n| n.get()),
                permits.max(1),
            ),
            lanes: DashMap::new(),
            dummy_hash: hash_password_blocking("dummy password for timing")?,
        })
    }

    /// Whether a sign-in of `login` would be refused now because its
    /// lane's queue is full, as far as its lane is known without the
    /// database (advisory: the queue decides again).
    pub fn lane_full_for(&self, login: &str) -> bool {
        if !self.in_a_storm() {
            return false;
        }
        self.lanes
            .get(login)
            .is_some_and(|lane| HashQueue::is_full(&self.queue, *lane))
    }

    /// Notes the lane of `login` during a storm (see
    /// [`Passwords::lane_full_for`]).
    pub fn note_lane(&self, login: &str, lane: HashLane) {
        if !self.in_a_storm() {
            return;
        }
        if self.lanes.len() >= MAX_LANES_KEPT {
            self.lanes.clear();
        }
        self.lanes.insert(login.to_string(), lane);
    }

    /// Whether the general lane is full now; when it is not, the lanes
    /// noted are forgotten (a role may change between storms).
    fn in_a_storm(&self) -> bool {
        let storm = HashQueue::is_full(&self.queue, HashLane::General);
        if !storm && !self.lanes.is_empty() {
            self.lanes.clear();
        }
        storm
    }

    /// Gives `permit` back after a hash of `lane` that took `took`, once
    /// its rest is over: at once on nodes where permits need no rest, and
    /// after a teacher's or staff member's hash. Their permit resting left
    /// teachers waiting at 10× load (`scripts/surge-overload.sh`, three
    /// runs each: teachers' sign-ins p99 7.4, 6.7 and 6.2 s with the rest,
    /// 1.6, 1.7 and 2.7 s without) and did not bound their hashing, which
    /// the scheduler already shares with the pages: 10–12 % of a core with
    /// the rest, 9–11 % without, for 4.9–5.1 hashes a second against
    /// 5.7–7.1.
    fn release_after(&self, permit: HashPermit, took: std::time::Duration, lane: HashLane) {
        if self.duty >= 1.0 || lane == HashLane::Staff {
            return;
        }
        let rest = took.mul_f64(1.0 / self.duty - 1.0);
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                tokio::time::sleep(rest).await;
                drop(permit);
            });
        }
    }

    /// A hash permit for `lane`: at once, after the waiters ahead, or
    /// `ApiError::Busy` if the lane's queue is full.
    pub async fn permit(&self, lane: HashLane) -> Result<HashPermit, ApiError> {
        HashQueue::acquire(&self.queue, lane).await
    }

    /// Runs `f`, an argon2 hash, on a thread of `lane` once a permit is
    /// free, records its CPU time and gives the permit back after its
    /// rest.
    async fn hashing<T: Send + 'static>(
        &self,
        lane: HashLane,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, ApiError> {
        let permit = self.permit(lane).await?;
        let (out, took) = match self.checkers.run(lane, move || on_cpu(f)).await {
            Ok(done) => done,
            // The hash panicked: the permit rests no longer.
            Err(e) => {
                drop(permit);
                return Err(e);
            }
        };
        record_hash_cpu(lane, took);
        self.release_after(permit, took, lane);
        Ok(out)
    }

    /// Hashes a new password (activation, password change) on a thread of
    /// its lane, as checks are: a pupil's gives way to the requests (in
    /// September, pupils activate their accounts by the hundred).
    pub async fn hash(&self, password: String, lane: HashLane) -> Result<String, ApiError> {
        self.hashing(lane, move || hash_password_blocking(&password))
            .await?
    }

    /// Checks a password against a stored hash (or, with none, against a
    /// dummy hash, to take the same time) on a hashing thread.
    pub async fn verify(
        &self,
        password: String,
        phc: Option<String>,
        lane: HashLane,
    ) -> Result<bool, ApiError> {
        let known = phc.is_some();
        let phc = phc.unwrap_or_else(|| self.dummy_hash.clone());
        let ok = self
            .hashing(lane, move || verify_blocking(&password, &phc))
            .await?;
        Ok(ok && known)
    }
}

/// Where a sign-in came from, for the session list.
#[derive(Debug, Clone, Default)]
pub struct ClientInfo {
    /// The browser's User-Agent, shortened.
    pub user_agent: String,
    /// Others wait in line and this client's turn has not come: a pupil's
    /// or parent's password is not checked now ([`ApiError::Queued`]);
    /// teachers and staff go on.
    pub in_line: bool,
}

/// A new session and its secret token (to put in a cookie or return once).
pub struct NewSession {
    /// The token: only the client keeps it.
    pub token: String,
    /// The session.
    pub session: Arc<LiveSession>,
}

fn map_password_error(e: PasswordError) -> ApiError {
    ApiError::Invalid(match e {
        PasswordError::TooShort => "password_too_short",
        PasswordError::TooLong => "password_too_long",
        PasswordError::TooCommon => "password_too_common",
        PasswordError::Personal => "password_personal",
    })
}

async fn throttle_check(state: &AppState, creds: &Credentials) -> Result<(), ApiError> {
    match state.throttle.check(&creds.throttle, state.now()) {
        Decision::Allowed => Ok(()),
        Decision::LockedUntil(t) => {
            metrics::counter!("ardoise_signin_total", "outcome" => "locked").increment(1);
            Err(ApiError::Throttled(t))
        }
    }
}

async fn record_failure(state: &AppState, creds: &Credentials) -> Result<(), ApiError> {
    let next = state.throttle.after_failure(&creds.throttle, state.now());
    state.store.save_throttle(creds.person_id, &next).await?;
    metrics::counter!("ardoise_signin_total", "outcome" => "failure").increment(1);
    Ok(())
}

/// Most logins whose lane is kept during a storm.
const MAX_LANES_KEPT: usize = 100_000;

/// The scheduling priority (nice value) of the threads that hash the
/// passwords of the general lane (pupils, parents): below the threads that
/// serve requests, so that a request ready to run takes the CPU from a
/// hash at once instead of waiting for the hash's turn to end. On a node
/// of one core under a CPU quota at 10× load (`scripts/surge-overload.sh`),
/// a hashing thread at the node's priority ran 94 % of the node's CPU time
/// while the requests, which needed about 1 %, were served late enough
/// for the delay gate to shed them: the user limit fell and goodput with
/// it. Nice 10 still leaves hashing about a tenth of a CPU that requests
/// want entirely (weights 110 against 1024), so sign-ins never stop; the
/// duty cycle ([`duty_for`]) bounds it from above.
const HASH_NICE: i32 = 10;

/// The nice value of the threads that hash teachers' and staff's
/// passwords: below the threads that serve requests, above the general
/// lane's. At the node's priority, their hashes took the CPU as readily
/// as the pages did; at 10× load, where teachers' password sign-ins alone
/// want half of the node, the delay gate then shed signed-in requests and
/// the user limit fell, and teachers' and staff's places with it: the
/// nine teachers in ten who come back on a remembered device waited
/// behind the one who types a password. `scripts/surge-overload.sh` with
/// `MULTS="1 10 10 10"`, three runs each, at nice 0 then 5:
/// - teachers who reached their home page during the run: 3,041, 2,729
///   and 1,448, against 4,579, 4,583 and 4,618 (all who came); p50 of
///   their wait 21, 26 and 50 s against 8, 4 and 25 s;
/// - goodput over the 10× stairs: 67, 63 and 27 journeys/s against 113,
///   128 and 80; user limit 933, 1,001 and 558 against 1,630, 1,841
///   and 1,053;
/// - the price: those who type a password wait longer for the hash (p50
///   1.0, 1.5 and 5.4 s against 7.3, 6.7 and 3.1 s) and more are refused
///   five times running (0, 0 and 4 of about 400 against 39, 35 and 0).
///
/// Nice 2 to 4 fell in between (two runs each).
const STAFF_HASH_NICE: i32 = 5;

/// Lowers this thread's priority to nice value `nice` (Linux: a nice
/// value is per thread). Failing leaves it as it was: hashing is then
/// slower to give way, not wrong.
fn lower_priority(nice: i32) {
    let tid = rustix::thread::gettid();
    if let Err(e) = rustix::process::setpriority_process(Some(tid), nice) {
        tracing::warn!(error = %e, "could not lower the password-hashing thread's priority");
    }
}

/// Runs `f` on this thread and says how much CPU time it took: the time
/// this thread ran, not the time that passed (on a busy node a hash waits
/// for the CPU as long as it computes, and resting that long too would
/// leave hashing a quarter of the node instead of half).
fn on_cpu<T>(f: impl FnOnce() -> T) -> (T, std::time::Duration) {
    let cpu = || {
        let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
        std::time::Duration::new(
            u64::try_from(t.tv_sec).unwrap_or(0),
            u32::try_from(t.tv_nsec).unwrap_or(0),
        )
    };
    let before = cpu();
    let out = f();
    (out, cpu().saturating_sub(before))
}

/// The share of time each of `permits` hash permits may hash on a node of
/// `cores` cores so that hashing takes at most half of them.
fn duty_for(cores: usize, permits: usize) -> f64 {
    (cores as f64 * 0.5 / permits.max(1) as f64).clamp(0.05, 1.0)
}

/// The hash lane of an account's roles.
pub fn hash_lane(roles: ardoise_core::Roles) -> HashLane {
    if roles.is_staff_lane() {
        HashLane::Staff
    } else {
        HashLane::General
    }
}

/// Signs in with a login and password.
pub async fn sign_in(
    state: &AppState,
    login: &str,
    password: &str,
    remember: bool,
    client: &ClientInfo,
) -> Result<NewSession, ApiError> {
    if password.is_empty() || password.len() > 1024 {
        return Err(ApiError::BadCredentials);
    }
    let Ok(login) = Login::parse(login) else {
        return Err(ApiError::BadCredentials);
    };
    if state.passwords.lane_full_for(login.as_str()) {
        return Err(ApiError::Busy);
    }
    let creds = state.store.find_credentials(&login).await?;
    let lane = creds
        .as_ref()
        .map_or(HashLane::General, |c| hash_lane(c.roles));
    state.passwords.note_lane(login.as_str(), lane);
    if client.in_line && lane == HashLane::General {
        return Err(ApiError::Queued);
    }
    let Some(creds) = creds else {
        // Same work as for a real account, then the same answer.
        state
            .passwords
            .verify(password.to_string(), None, HashLane::General)
            .await?;
        metrics::counter!("ardoise_signin_total", "outcome" => "failure").increment(1);
        return Err(ApiError::BadCredentials);
    };
    throttle_check(state, &creds).await?;
    let ok = state
        .passwords
        .verify(
            password.to_string(),
            creds.password_hash.clone(),
            hash_lane(creds.roles),
        )
        .await?;
    if !ok {
        record_failure(state, &creds).await?;
        if creds.status == AccountStatus::Pending {
            return Err(ApiError::Invalid("account_not_activated"));
        }
        return Err(ApiError::BadCredentials);
    }
    if creds.status != AccountStatus::Active {
        return Err(ApiError::Invalid("account_disabled"));
    }
    if creds.throttle.failures > 0 {
        state
            .store
            .save_throttle(creds.person_id, &state.throttle.after_success())
            .await?;
    }
    metrics::counter!("ardoise_signin_total", "outcome" => "success").increment(1);
    start_session(state, creds.person_id, remember, client).await
}

/// Opens a session for a person who just proved who they are.
pub async fn start_session(
    state: &AppState,
    person_id: PersonId,
    remember: bool,
    client: &ClientInfo,
) -> Result<NewSession, ApiError> {
    let now = state.now();
    let token = new_token();
    let form = SessionInsertForm {
        token_hash: hex::encode(token_digest(&token)),
        person_id,
        created_at: now,
        expires_at: now
            + if remember {
                REMEMBER_SECS
            } else {
                SESSION_SECS
            },
        remembered: remember,
        user_agent: client.user_agent.chars().take(200).collect(),
        csrf_token: new_token(),
    };
    let record = state.store.insert_session(&form).await?;
    let session = load_live(state, &record)
        .await?
        .ok_or(ApiError::Unauthenticated)?;
    state.sessions.insert(Arc::clone(&session));
    Ok(NewSession { token, session })
}

async fn load_live(
    state: &AppState,
    record: &ardoise_store::SessionRecord,
) -> Result<Option<Arc<LiveSession>>, ApiError> {
    let Some(actor) = state.store.load_actor(record.person_id).await? else {
        return Ok(None);
    };
    let Some(person) = state.store.find_person(record.person_id).await? else {
        return Ok(None);
    };
    Ok(Some(Arc::new(LiveSession::new(
        record,
        actor,
        person.first_name,
        person.last_name,
        person.login,
    ))))
}

/// Finds the session of a token: in memory, or else in the database (after
/// a restart), which then caches it.
pub async fn resolve(state: &AppState, token: &str) -> Result<Option<Arc<LiveSession>>, ApiError> {
    let now = state.now();
    match state.sessions.check(token, now) {
        Lookup::Live(s) => {
            if s.claim_touch(now) {
                // Off the request path: the session list shows activity to
                // within a few minutes, and a request never waits on a write.
                let store = state.store.clone();
                let (hash, expires) = (s.token_hash.clone(), s.expires_at);
                tokio::spawn(async move {
                    if let Err(e) = store.touch_session(&hash, now, expires).await {
                        tracing::debug!(error = %e, "could not record session activity");
                    }
                });
            }
            Ok(Some(s))
        }
        Lookup::Miss => {
            if token.len() != 43 {
                return Ok(None);
            }
            let hash = hex::encode(token_digest(token));
            let Some(record) = state.store.find_session(&hash, now).await? else {
                return Ok(None);
            };
            let live = load_live(state, &record).await?;
            if let Some(s) = &live {
                state.sessions.insert(Arc::clone(s));
            }
            Ok(live)
        }
    }
}

/// Ends one session.
pub async fn end_session(state: &AppState, token_hash: &str) -> Result<(), ApiError> {
    state.sessions.remove_hash(token_hash);
    state.store.delete_session(token_hash).await?;
    Ok(())
}

/// Ends every session of a person but `keep` (a token hash).
pub async fn end_sessions_of(
    state: &AppState,
    person_id: PersonId,
    keep: Option<&str>,
) -> Result<usize, ApiError> {
    let ended = state.store.delete_sessions_of(person_id, keep).await?;
    for h in &ended {
        state.sessions.remove_hash(h);
    }
    Ok(ended.len())
}

/// Changes one's password, after checking the current one; other sessions
/// are signed out.
pub async fn change_password(
    state: &AppState,
    session: &LiveSession,
    current: &str,
    new: &str,
    confirm: &str,
) -> Result<(), ApiError> {
    if new != confirm {
        return Err(ApiError::Invalid("password_mismatch"));
    }
    let login = Login::parse(&session.login)
        .map_err(|_| ApiError::Internal("stored login invalid".into()))?;
    let creds = state
        .store
        .find_credentials(&login)
        .await?
        .ok_or(ApiError::Unauthenticated)?;
    throttle_check(state, &creds).await?;
    if !state
        .passwords
        .verify(
            current.to_string(),
            creds.password_hash.clone(),
            hash_lane(creds.roles),
        )
        .await?
    {
        record_failure(state, &creds).await?;
        return Err(ApiError::Invalid("current_password_wrong"));
    }
    validate_new_password(new, &[&creds.login, &creds.first_name, &creds.last_name])
        .map_err(map_password_error)?;
    let hash = state
        .passwords
        .hash(new.to_string(), hash_lane(creds.roles))
        .await?;
    state.store.set_password(creds.person_id, &hash).await?;
    end_sessions_of(state, creds.person_id, Some(&session.token_hash)).await?;
    state
        .store
        .record_audit(
            state.now(),
            Some(creds.person_id),
            "password_changed",
            &creds.login,
            "",
        )
        .await?;
    Ok(())
}

/// The alphabet of activation codes: no 0/O, 1/I/L to misread on paper.
const CODE_ALPHABET: &[u8] = b"23456789ABCDEFGHJKMNPQRSTUVWXYZ";

/// A new activation code, `XXXX-XXXX-XXXX` (about 59 bits).
pub fn new_activation_code() -> String {
    let mut rng = rand::rngs::OsRng;
    let chars: Vec<char> = (0..12)
        .map(|_| CODE_ALPHABET[rng.gen_range(0..CODE_ALPHABET.len())] as char)
        .collect();
    chars
        .chunks(4)
        .map(|c| c.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join("-")
}

/// The stored form of a code: SHA-256 of its letters, uppercase, without
/// separators, so `abcd efgh-jkmn` and `ABCD-EFGH-JKMN` match.
pub fn activation_code_hash(code: &str) -> String {
    let normal: String = code
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_uppercase())
        .collect();
    hex::encode(Sha256::digest(normal.as_bytes()))
}

/// Gives an account a new activation code, valid for the configured
/// number of days; returns the code (shown once, printed on a letter).
pub async fn reset_activation_code(
    state: &AppState,
    person_id: PersonId,
    by: Option<PersonId>,
) -> Result<String, ApiError> {
    let code = new_activation_code();
    let expires = state.now() + state.config.activation_days * 24 * 3600;
    state
        .store
        .set_activation_code(person_id, &activation_code_hash(&code), expires)
        .await?;
    end_sessions_of(state, person_id, None).await?;
    state.sessions.forget_person(person_id);
    state
        .store
        .record_audit(
            state.now(),
            by,
            "activation_code_reset",
            &person_id.to_string(),
            "",
        )
        .await?;
    Ok(code)
}

/// First sign-in: a person proves who they are with their activation code
/// and chooses their password.
pub async fn activate(
    state: &AppState,
    login: &str,
    code: &str,
    password: &str,
    confirm: &str,
    client: &ClientInfo,
) -> Result<NewSession, ApiError> {
    let login = Login::parse(login).map_err(|_| ApiError::Invalid("activation_failed"))?;
    let creds = state
        .store
        .find_credentials(&login)
        .await?
        .ok_or(ApiError::Invalid("activation_failed"))?;
    throttle_check(state, &creds).await?;
    let now = state.now();
    let matches = creds.activation_code_hash.as_deref().is_some_and(|stored| {
        use subtle::ConstantTimeEq;
        bool::from(
            stored
                .as_bytes()
                .ct_eq(activation_code_hash(code).as_bytes()),
        )
    });
    let fresh = creds.activation_expires_at.is_some_and(|t| now < t);
    if !matches || creds.status != AccountStatus::Pending {
        record_failure(state, &creds).await?;
        return Err(ApiError::Invalid("activation_failed"));
    }
    if !fresh {
        return Err(ApiError::Invalid("activation_expired"));
    }
    if password != confirm {
        return Err(ApiError::Invalid("password_mismatch"));
    }
    validate_new_password(
        password,
        &[&creds.login, &creds.first_name, &creds.last_name],
    )
    .map_err(map_password_error)?;
    let hash = state
        .passwords
        .hash(password.to_string(), hash_lane(creds.roles))
        .await?;
    state.store.set_password(creds.person_id, &hash).await?;
    state
        .store
        .save_throttle(creds.person_id, &state.throttle.after_success())
        .await?;
    state
        .store
        .record_audit(
            now,
            Some(creds.person_id),
            "account_activated",
            &creds.login,
            "",
        )
        .await?;
    start_session(state, creds.person_id, false, client).await
}

#[cfg(test)]
mod tests {
    // A test that cannot set up its case should stop there.
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn queue(permits: usize, max_waiting: usize) -> Arc<HashQueue> {
        HashQueue::new(permits, max_waiting)
    }

    fn waiting(q: &Arc<HashQueue>, lane: HashLane) -> oneshot::Receiver<HashPermit> {
        match HashQueue::enter(q, lane) {
            Some(Err(rx)) => rx,
            other => panic!("expected to wait, got {other:?}"),
        }
    }

    #[test]
    fn teachers_hash_before_pupils_who_waited_longer_and_full_lanes_refuse() {
        let q = queue(1, 2);
        let Some(Ok(running)) = HashQueue::enter(&q, HashLane::General) else {
            panic!("the free permit is taken at once");
        };
        let mut pupil1 = waiting(&q, HashLane::General);
        let mut pupil2 = waiting(&q, HashLane::General);
        // The pupils' lane is full; the staff lane is not.
        assert!(HashQueue::enter(&q, HashLane::General).is_none());
        let mut teacher = waiting(&q, HashLane::Staff);
        drop(running);
        let teacher_permit = teacher.try_recv().expect("the teacher goes first");
        assert!(pupil1.try_recv().is_err() && pupil2.try_recv().is_err());
        drop(teacher_permit);
        let p1 = pupil1.try_recv().expect("then the pupils, in order");
        assert!(pupil2.try_recv().is_err());
        // A pupil who gave up holds no permit: it passes to the next.
        drop(pupil2);
        drop(p1);
        let Some(Ok(p)) = HashQueue::enter(&q, HashLane::General) else {
            panic!("the permit came back once nobody waited");
        };
        // One permit in all: nobody else gets one while it is held.
        assert!(matches!(
            HashQueue::enter(&q, HashLane::Staff),
            Some(Err(_))
        ));
        drop(p);
    }

    #[test]
    fn hashing_takes_at_most_half_of_the_node() {
        assert_eq!(duty_for(2, 1), 1.0);
        assert_eq!(duty_for(8, 2), 1.0);
        assert_eq!(duty_for(1, 1), 0.5);
        assert_eq!(duty_for(2, 2), 0.5);
    }

    #[tokio::test]
    async fn on_a_small_node_a_permit_rests_after_a_pupils_hash_not_a_teachers() {
        let q = queue(1, 8);
        let passwords = Passwords {
            checkers: Checkers::start(1).expect("a thread"),
            queue: Arc::clone(&q),
            duty: duty_for(1, 1),
            lanes: DashMap::new(),
            dummy_hash: String::new(),
        };
        let permit = passwords.permit(HashLane::General).await.expect("free");
        passwords.release_after(
            permit,
            std::time::Duration::from_millis(50),
            HashLane::General,
        );
        let mut next = waiting(&q, HashLane::Staff);
        tokio::task::yield_now().await;
        assert!(next.try_recv().is_err(), "still resting");
        let permit = tokio::time::timeout(std::time::Duration::from_secs(5), next)
            .await
            .expect("given back after its rest")
            .expect("sent, not dropped");
        // After a teacher's hash, the permit is back at once, for the next
        // teacher as for a pupil.
        let mut after_teacher = waiting(&q, HashLane::Staff);
        passwords.release_after(permit, std::time::Duration::from_secs(60), HashLane::Staff);
        let permit = after_teacher
            .try_recv()
            .expect("no rest after a teacher's hash");
        // Where a permit needs no rest, it is back at once.
        let busy = Passwords {
            duty: 1.0,
            ..passwords
        };
        busy.release_after(
            permit,
            std::time::Duration::from_secs(60),
            HashLane::General,
        );
        assert!(matches!(
            HashQueue::enter(&q, HashLane::General),
            Some(Ok(_))
        ));
    }

    #[test]
    fn a_sign_in_whose_known_lane_is_full_is_refused_before_the_database() {
        let q = queue(1, 1);
        let passwords = Passwords {
            checkers: Checkers::start(1).expect("a thread"),
            queue: Arc::clone(&q),
            duty: 1.0,
            lanes: DashMap::new(),
            dummy_hash: String::new(),
        };
        // No storm: nothing is noted, nothing refused early.
        passwords.note_lane("eleve", HashLane::General);
        assert!(!passwords.lane_full_for("eleve"), "a permit is free");
        let Some(Ok(running)) = HashQueue::enter(&q, HashLane::General) else {
            panic!("free permit");
        };
        let waiter = waiting(&q, HashLane::General);
        passwords.note_lane("eleve", HashLane::General);
        passwords.note_lane("prof", HashLane::Staff);
        assert!(passwords.lane_full_for("eleve"));
        assert!(!passwords.lane_full_for("prof"), "the staff lane has room");
        assert!(
            !passwords.lane_full_for("inconnu"),
            "unknown: ask the database"
        );
        // The storm over, the lanes noted are forgotten.
        drop(running);
        drop(waiter);
        assert!(!passwords.lane_full_for("eleve"));
        assert!(passwords.lanes.is_empty());
    }

    #[test]
    fn a_hash_counts_the_cpu_time_it_took_not_the_time_it_waited() {
        let ((), slept) = on_cpu(|| std::thread::sleep(std::time::Duration::from_millis(50)));
        assert!(slept < std::time::Duration::from_millis(25), "{slept:?}");
        let (_, hashed) = on_cpu(|| hash_password_blocking("a password"));
        assert!(hashed > std::time::Duration::from_millis(1), "{hashed:?}");
    }

    #[tokio::test]
    async fn passwords_are_checked_on_the_hashing_threads() {
        let passwords = Passwords::new(2, 4).expect("passwords");
        let phc = hash_password_blocking("une phrase").expect("hash");
        let check = |password: &str, phc: Option<String>| {
            passwords.verify(password.to_string(), phc, HashLane::General)
        };
        assert!(check("une phrase", Some(phc.clone()))
            .await
            .expect("checked"));
        assert!(!check("une autre", Some(phc.clone()))
            .await
            .expect("checked"));
        // An unknown login is checked against the dummy hash, and fails.
        assert!(!check("une phrase", None).await.expect("checked"));
        // Passwords are checked below the threads that serve requests,
        // pupils' and parents' further below than teachers' (as `ps -L -o
        // tid,ni,comm` shows).
        let nice = |tid| rustix::process::getpriority_process(Some(tid)).expect("nice value");
        let on = |lane| {
            passwords.checkers.run(lane, move || {
                (
                    std::thread::current().name().map(str::to_string),
                    nice(rustix::thread::gettid()),
                )
            })
        };
        let (general_name, general) = on(HashLane::General).await.expect("ran");
        let (staff_name, staff) = on(HashLane::Staff).await.expect("ran");
        let serving = nice(rustix::thread::gettid());
        assert!(
            general_name.is_some_and(|n| n.starts_with("ardoise-hash-") && !n.contains("staff"))
        );
        assert!(staff_name.is_some_and(|n| n.starts_with("ardoise-hash-staff-")));
        assert!(general >= HASH_NICE, "general lane at nice {general}");
        assert!(
            serving < staff && staff < general,
            "serving at nice {serving}, teachers' hashing {staff}, others' {general}"
        );
    }

    /// Keeps the general lane's one thread of `passwords` busy until the
    /// sender returned is used (or dropped); await the future after that.
    async fn occupy_general_thread(
        passwords: &Passwords,
    ) -> (
        std::sync::mpsc::Sender<()>,
        std::pin::Pin<Box<impl std::future::Future<Output = Result<(), ApiError>> + '_>>,
    ) {
        let (stop, busy) = std::sync::mpsc::channel::<()>();
        let mut blocker = Box::pin(passwords.checkers.run(HashLane::General, move || {
            let _ = busy.recv();
        }));
        // Polled once, the blocker is sent to the thread, and stays there.
        assert!(
            tokio::time::timeout(std::time::Duration::from_millis(50), &mut blocker)
                .await
                .is_err()
        );
        (stop, blocker)
    }

    #[tokio::test]
    async fn new_passwords_are_hashed_on_their_lanes_threads() {
        let passwords = Passwords::new(1, 4).expect("passwords");
        let (stop, blocker) = occupy_general_thread(&passwords).await;
        // The new password waits behind the blocker on that thread (on
        // tokio's blocking threads it would be done).
        let new_password = passwords.hash("une phrase".into(), HashLane::General);
        tokio::pin!(new_password);
        assert!(
            tokio::time::timeout(std::time::Duration::from_millis(300), &mut new_password)
                .await
                .is_err(),
            "hashed elsewhere than on the general lane's thread"
        );
        stop.send(()).expect("the blocker waits");
        blocker.await.expect("ran");
        let phc = new_password.await.expect("hashed");
        assert!(verify_blocking("une phrase", &phc));
        // A teacher's new password does not wait for the pupils' thread.
        let (stop, blocker) = occupy_general_thread(&passwords).await;
        let phc = tokio::time::timeout(
            std::time::Duration::from_secs(30),
            passwords.hash("une autre".into(), HashLane::Staff),
        )
        .await
        .expect("not behind the pupils' thread")
        .expect("hashed");
        assert!(verify_blocking("une autre", &phc));
        stop.send(()).expect("the blocker waits");
        blocker.await.expect("ran");
    }

    #[test]
    fn a_sign_in_that_would_wait_too_long_is_refused_at_once() {
        let q = queue(1, 100);
        let Some(Ok(mut first)) = HashQueue::enter(&q, HashLane::General) else {
            panic!("free permit");
        };
        // Before any permit came back, only the queue's length bounds it.
        let early: Vec<_> = (0..10).map(|_| waiting(&q, HashLane::General)).collect();
        drop(early);
        // A permit held a second, hash and rest: four sign-ins in line
        // expect to wait up to four seconds, a fifth would wait longer.
        first.queue = None;
        HashQueue::release(&q, std::time::Duration::from_secs(1));
        let Some(Ok(_running)) = HashQueue::enter(&q, HashLane::General) else {
            panic!("free permit");
        };
        let _in_line: Vec<_> = (0..4).map(|_| waiting(&q, HashLane::General)).collect();
        assert!(HashQueue::is_full(&q, HashLane::General));
        assert!(
            HashQueue::enter(&q, HashLane::General).is_none(),
            "refused, not queued for five seconds"
        );
        // A teacher waits behind teachers only, and goes first.
        assert!(!HashQueue::is_full(&q, HashLane::Staff));
        let _teacher = waiting(&q, HashLane::Staff);
    }

    #[tokio::test]
    async fn a_sign_in_still_waiting_at_the_bound_is_refused_and_loses_no_permit() {
        let mut q = queue(1, 8);
        Arc::get_mut(&mut q).expect("only owner").max_wait = std::time::Duration::from_millis(50);
        let Some(Ok(running)) = HashQueue::enter(&q, HashLane::General) else {
            panic!("free permit");
        };
        // The hash in progress takes longer than the bound: the waiter is
        // refused (503 with Retry-After, as for a full queue).
        let refused = HashQueue::acquire(&q, HashLane::General).await;
        assert!(matches!(refused, Err(ApiError::Busy)), "{refused:?}");
        // The permit then goes to the next who asks, not to the one who left.
        drop(running);
        let next = HashQueue::acquire(&q, HashLane::General).await;
        assert!(next.is_ok(), "{next:?}");
    }

    #[test]
    fn a_permit_sent_to_a_waiter_who_left_is_not_lost() {
        let q = queue(1, 8);
        let Some(Ok(running)) = HashQueue::enter(&q, HashLane::General) else {
            panic!("free permit");
        };
        let gone = waiting(&q, HashLane::General);
        let mut next = waiting(&q, HashLane::General);
        drop(running); // sent to `gone`, who never reads it
        drop(gone); // the permit inside passes on
        assert!(next.try_recv().is_ok());
    }

    #[test]
    fn activation_codes_are_readable_and_match_loosely() {
        let code = new_activation_code();
        assert_eq!(code.len(), 14);
        assert!(code
            .chars()
            .all(|c| c == '-' || CODE_ALPHABET.contains(&(c as u8))));
        let typed = code.to_lowercase().replace('-', " ");
        assert_eq!(activation_code_hash(&typed), activation_code_hash(&code));
        assert_ne!(
            activation_code_hash(&new_activation_code()),
            activation_code_hash(&code)
        );
    }

    #[test]
    fn password_hashes_are_argon2id_with_owasp_parameters() {
        let Ok(h) = hash_password_blocking("correct horse battery") else {
            panic!("hashing failed")
        };
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(verify_blocking("correct horse battery", &h));
        assert!(!verify_blocking("wrong horse battery", &h));
        // Again on the same thread, in the memory kept from the first check.
        assert!(verify_blocking("correct horse battery", &h));
        assert!(!verify_blocking("correct horse battery!", &h));
        // Other parameters (an older or lighter hash) are honoured, in the
        // same memory.
        let light = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(1024, 1, 1, None).expect("valid parameters"),
        )
        .hash_password(b"light", &SaltString::generate(&mut rand::rngs::OsRng))
        .expect("hash")
        .to_string();
        assert!(verify_blocking("light", &light));
        assert!(!verify_blocking("heavy", &light));
        assert!(verify_blocking("correct horse battery", &h));
        assert!(!verify_blocking("x", "not a hash"));
    }
}
