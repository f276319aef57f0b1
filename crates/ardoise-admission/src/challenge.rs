//! Surge is not attack: sign-in failures counted per address, and a light
//! proof of work asked of an address with many of them, only under load.
//!
//! 1,500 pupils behind one school address must all get in, so nothing here
//! counts requests: only failed sign-ins. An address whose recent failures
//! pass a threshold is asked, while the node is under load, to prove some
//! work before its next sign-in is even hashed: find a number `n` such that
//! `SHA-256(challenge ":" n)` starts with `bits` zero bits (a browser's
//! script does it in about a second), or, without JavaScript, simply wait
//! the challenge's delay. Either costs an attacker time or CPU per attempt
//! and a pupil almost nothing. Nobody is ever blocked.
//!
//! - [`FailureSketch`]: decaying failure counts per address in fixed
//!   memory (a count-min sketch): a million addresses cost no more than
//!   ten. A collision can only over-count, which means a challenge, never
//!   a block.
//! - [`ChallengePolicy`]: who must prove work, and how much.
//! - [`ChallengeSigner`]: signed, address-bound challenges and their check.

use crate::token::{millis, SigningKey};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::Mac;
use sha2::{Digest, Sha256};
use std::time::Duration;

/// Cells per row of the sketch.
const WIDTH: usize = 4096;
/// Rows of the sketch (independent hashes).
const ROWS: usize = 2;

#[derive(Debug, Clone, Copy, Default)]
struct Cell {
    score: f64,
    at_ms: u64,
}

impl Cell {
    fn decayed(&self, now_ms: u64, half_life_ms: f64) -> f64 {
        let age = now_ms.saturating_sub(self.at_ms) as f64;
        self.score * (-age / half_life_ms * std::f64::consts::LN_2).exp()
    }
}

/// Recent sign-in failures per address, decaying with a half-life, in
/// fixed memory.
#[derive(Debug, Clone)]
pub struct FailureSketch {
    cells: Vec<Cell>,
    half_life_ms: f64,
    salt: [u8; 16],
}

impl FailureSketch {
    /// An empty sketch. `salt` (random per node) keeps an attacker from
    /// choosing addresses that collide with a victim's.
    pub fn new(half_life: Duration, salt: [u8; 16]) -> Self {
        Self {
            cells: vec![Cell::default(); WIDTH * ROWS],
            half_life_ms: (millis(half_life).max(1)) as f64,
            salt,
        }
    }

    fn slots(&self, address: &[u8]) -> [usize; ROWS] {
        let digest = Sha256::new()
            .chain_update(self.salt)
            .chain_update(address)
            .finalize();
        let mut out = [0usize; ROWS];
        for (row, slot) in out.iter_mut().enumerate() {
            let b = &digest[row * 4..row * 4 + 4];
            let h = u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize;
            *slot = row * WIDTH + h % WIDTH;
        }
        out
    }

    /// Counts one failed sign-in from `address` at `now_ms`.
    pub fn record_failure(&mut self, address: &[u8], now_ms: u64) {
        let half_life = self.half_life_ms;
        for i in self.slots(address) {
            let cell = &mut self.cells[i];
            cell.score = cell.decayed(now_ms, half_life) + 1.0;
            cell.at_ms = now_ms.max(cell.at_ms);
        }
    }

    /// Recent failures of `address` at `now_ms` (decayed; never less than
    /// the truth, sometimes more after a collision).
    pub fn failures(&self, address: &[u8], now_ms: u64) -> f64 {
        self.slots(address)
            .iter()
            .map(|&i| self.cells[i].decayed(now_ms, self.half_life_ms))
            .fold(f64::INFINITY, f64::min)
    }

    /// Bytes held, whatever the number of addresses.
    pub fn memory_bytes(&self) -> usize {
        self.cells.len() * std::mem::size_of::<Cell>()
    }
}

/// When and how much work is asked.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ChallengePolicy {
    /// Off by default: an operator turns it on.
    pub enabled: bool,
    /// Ask only while the node is under load (the normal setting; tests
    /// turn it off to see the challenge on a quiet node).
    pub only_under_load: bool,
    /// Recent failures from one address before a challenge is asked.
    pub threshold: f64,
    /// Zero bits asked at the threshold; one more each time the failures
    /// double, up to `max_bits`.
    pub base_bits: u8,
    /// The most zero bits ever asked.
    pub max_bits: u8,
    /// The no-JavaScript way: wait this long at the threshold, twice as
    /// long each time the failures double, up to a minute.
    pub base_wait: Duration,
    /// A challenge older than this is refused (a new one is issued).
    pub max_age: Duration,
}

impl Default for ChallengePolicy {
    fn default() -> Self {
        Self {
            enabled: false,
            only_under_load: true,
            threshold: 20.0,
            base_bits: 14,
            max_bits: 20,
            base_wait: Duration::from_secs(5),
            max_age: Duration::from_secs(10 * 60),
        }
    }
}

/// The work asked of one address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Requirement {
    /// Leading zero bits of the hash.
    pub bits: u8,
    /// Or this long since the challenge was issued (no JavaScript).
    pub wait_secs: u8,
}

impl ChallengePolicy {
    /// The work asked of an address with `failures` recent failures, or
    /// `None`.
    pub fn requirement(&self, failures: f64, under_load: bool) -> Option<Requirement> {
        if !self.enabled || (self.only_under_load && !under_load) {
            return None;
        }
        let threshold = self.threshold.max(1.0);
        // NaN counts as no failure.
        if failures.partial_cmp(&threshold).is_none_or(|o| o.is_lt()) {
            return None;
        }
        // Doublings past the threshold: 0 at the threshold.
        let level = (failures / threshold).log2().floor().clamp(0.0, 16.0) as u32;
        let bits =
            (u32::from(self.base_bits) + level).min(u32::from(self.max_bits.max(self.base_bits)));
        let wait = self
            .base_wait
            .as_secs()
            .max(1)
            .saturating_mul(1u64 << level.min(6))
            .min(60);
        Some(Requirement {
            bits: u8::try_from(bits).unwrap_or(u8::MAX),
            wait_secs: u8::try_from(wait).unwrap_or(60),
        })
    }
}

/// Why a challenge answer was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChallengeError {
    /// No challenge was presented.
    Missing,
    /// Not one of ours, altered, or malformed.
    Invalid,
    /// Issued to another address.
    OtherAddress,
    /// Older than the policy's max age.
    Expired,
    /// Asks less work than the address now owes.
    TooEasy,
    /// No valid proof, and the no-JavaScript wait is not over.
    NotYet,
}

impl ChallengeError {
    /// A stable snake_case code.
    pub fn code(self) -> &'static str {
        match self {
            ChallengeError::Missing => "challenge_missing",
            ChallengeError::Invalid => "challenge_invalid",
            ChallengeError::OtherAddress => "challenge_other_address",
            ChallengeError::Expired => "challenge_expired",
            ChallengeError::TooEasy => "challenge_too_easy",
            ChallengeError::NotYet => "challenge_not_yet",
        }
    }
}

const VERSION: u8 = 1;
const KIND: u8 = b'C';
const PAYLOAD_LEN: usize = 3 + 1 + 8 + 8;
const TAG_LEN: usize = 32;

/// Issues and checks challenges, bound to an address and signed.
#[derive(Debug, Clone)]
pub struct ChallengeSigner {
    key: SigningKey,
    max_age_ms: u64,
}

/// A challenge read back from its token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Challenge {
    /// Zero bits asked.
    pub bits: u8,
    /// Seconds to wait instead.
    pub wait_secs: u8,
    /// When it was issued (unix ms).
    pub issued_ms: u64,
}

impl ChallengeSigner {
    /// A signer whose challenges live `max_age`.
    pub fn new(key: SigningKey, max_age: Duration) -> Self {
        Self {
            key,
            max_age_ms: millis(max_age),
        }
    }

    fn address_tag(&self, address: &[u8]) -> [u8; 8] {
        let mut mac = self.key.mac.clone();
        mac.update(b"address:");
        mac.update(address);
        let full = mac.finalize().into_bytes();
        let mut out = [0u8; 8];
        out.copy_from_slice(&full[..8]);
        out
    }

    /// A challenge asking `req` of `address`, issued at `now_ms`.
    pub fn issue(&self, req: Requirement, address: &[u8], now_ms: u64) -> String {
        let mut payload = [0u8; PAYLOAD_LEN];
        payload[..3].copy_from_slice(&[VERSION, KIND, req.bits]);
        payload[3] = req.wait_secs;
        payload[4..12].copy_from_slice(&now_ms.to_be_bytes());
        payload[12..20].copy_from_slice(&self.address_tag(address));
        let mut mac = self.key.mac.clone();
        mac.update(&payload);
        let tag = mac.finalize().into_bytes();
        let mut out = [0u8; PAYLOAD_LEN + TAG_LEN];
        out[..PAYLOAD_LEN].copy_from_slice(&payload);
        out[PAYLOAD_LEN..].copy_from_slice(&tag);
        URL_SAFE_NO_PAD.encode(out)
    }

    /// The challenge in `token` if it is ours, for `address` and fresh.
    pub fn open(
        &self,
        token: &str,
        address: &[u8],
        now_ms: u64,
    ) -> Result<Challenge, ChallengeError> {
        if token.len() > 96 {
            return Err(ChallengeError::Invalid);
        }
        let mut raw = [0u8; 96];
        let len = URL_SAFE_NO_PAD
            .decode_slice(token, &mut raw)
            .map_err(|_| ChallengeError::Invalid)?;
        if len != PAYLOAD_LEN + TAG_LEN {
            return Err(ChallengeError::Invalid);
        }
        let (payload, tag) = raw[..len].split_at(PAYLOAD_LEN);
        let mut mac = self.key.mac.clone();
        mac.update(payload);
        if mac.verify_slice(tag).is_err() || payload[0] != VERSION || payload[1] != KIND {
            return Err(ChallengeError::Invalid);
        }
        if payload[12..20] != self.address_tag(address) {
            return Err(ChallengeError::OtherAddress);
        }
        let mut issued = [0u8; 8];
        issued.copy_from_slice(&payload[4..12]);
        let issued_ms = u64::from_be_bytes(issued);
        // A minute of clock skew between nodes is tolerated.
        if issued_ms > now_ms.saturating_add(60_000)
            || now_ms.saturating_sub(issued_ms) > self.max_age_ms
        {
            return Err(ChallengeError::Expired);
        }
        Ok(Challenge {
            bits: payload[2],
            wait_secs: payload[3],
            issued_ms,
        })
    }

    /// Whether `token` with `solution` (or, without one, enough waiting)
    /// meets `req` for `address` at `now_ms`.
    pub fn check(
        &self,
        token: Option<&str>,
        solution: Option<u64>,
        req: Requirement,
        address: &[u8],
        now_ms: u64,
    ) -> Result<Challenge, ChallengeError> {
        let token = token.ok_or(ChallengeError::Missing)?;
        let c = self.open(token, address, now_ms)?;
        if c.bits < req.bits || c.wait_secs < req.wait_secs {
            return Err(ChallengeError::TooEasy);
        }
        if let Some(n) = solution {
            if leading_zero_bits(token, n) >= u32::from(c.bits) {
                return Ok(c);
            }
        }
        if now_ms.saturating_sub(c.issued_ms) >= u64::from(c.wait_secs) * 1000 {
            return Ok(c);
        }
        Err(ChallengeError::NotYet)
    }
}

/// Leading zero bits of `SHA-256(token ":" n)`, `n` in decimal: what the
/// browser's script and API clients compute.
pub fn leading_zero_bits(token: &str, n: u64) -> u32 {
    let digest = Sha256::new()
        .chain_update(token.as_bytes())
        .chain_update(b":")
        .chain_update(n.to_string().as_bytes())
        .finalize();
    let mut bits = 0;
    for byte in digest {
        if byte == 0 {
            bits += 8;
        } else {
            bits += byte.leading_zeros();
            break;
        }
    }
    bits
}

/// The first `n` that solves `token` for `bits` (what a client does; used
/// by tests and by `ardoise surge`).
pub fn solve(token: &str, bits: u8) -> u64 {
    (0u64..)
        .find(|&n| leading_zero_bits(token, n) >= u32::from(bits))
        .unwrap_or(0)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const T0: u64 = 1_775_458_500_000;
    const SCHOOL: &[u8] = &[192, 0, 2, 10];
    const OTHER: &[u8] = &[198, 51, 100, 7];

    fn sketch() -> FailureSketch {
        FailureSketch::new(Duration::from_secs(600), [7; 16])
    }

    fn policy() -> ChallengePolicy {
        ChallengePolicy {
            enabled: true,
            ..ChallengePolicy::default()
        }
    }

    fn signer() -> ChallengeSigner {
        ChallengeSigner::new(SigningKey::from_bytes([3; 32]), Duration::from_secs(600))
    }

    #[test]
    fn only_failures_count_and_they_fade_with_the_half_life() {
        let mut s = sketch();
        assert_eq!(s.failures(SCHOOL, T0), 0.0);
        for _ in 0..30 {
            s.record_failure(SCHOOL, T0);
        }
        assert!((s.failures(SCHOOL, T0) - 30.0).abs() < 1e-9);
        let later = s.failures(SCHOOL, T0 + 600_000);
        assert!((later - 15.0).abs() < 1e-6, "{later}");
        assert!(s.failures(SCHOOL, T0 + 6_000_000) < 0.1);
        assert_eq!(s.failures(OTHER, T0), 0.0);
    }

    #[test]
    fn a_million_addresses_cost_no_more_memory_than_ten() {
        let mut s = sketch();
        let before = s.memory_bytes();
        for i in 0u32..1_000_000 {
            s.record_failure(&i.to_be_bytes(), T0);
        }
        assert_eq!(s.memory_bytes(), before);
        assert!(before <= 128 * 1024, "{before}");
    }

    #[test]
    fn collisions_only_ever_over_count() {
        let mut s = sketch();
        for i in 0u32..20_000 {
            s.record_failure(&i.to_be_bytes(), T0);
        }
        for i in 0u32..20_000 {
            assert!(s.failures(&i.to_be_bytes(), T0) >= 1.0 - 1e-9);
        }
    }

    #[test]
    fn a_school_full_of_pupils_signing_in_is_never_challenged() {
        // 1,500 pupils behind one address: successes are never counted,
        // and the few typos stay far below the threshold.
        let mut s = sketch();
        for i in 0..1_500u64 {
            if i % 100 == 0 {
                s.record_failure(SCHOOL, T0 + i * 100);
            }
        }
        let f = s.failures(SCHOOL, T0 + 150_000);
        assert_eq!(policy().requirement(f, true), None, "{f}");
    }

    #[test]
    fn the_work_grows_with_the_failures_and_stays_bounded() {
        let p = policy();
        assert_eq!(p.requirement(19.0, true), None);
        let at = p.requirement(20.0, true).unwrap();
        assert_eq!(
            at,
            Requirement {
                bits: 14,
                wait_secs: 5
            }
        );
        let doubled = p.requirement(40.0, true).unwrap();
        assert_eq!(
            doubled,
            Requirement {
                bits: 15,
                wait_secs: 10
            }
        );
        let huge = p.requirement(1e12, true).unwrap();
        assert_eq!(huge.bits, 20);
        assert_eq!(huge.wait_secs, 60);
        assert_eq!(p.requirement(f64::NAN, true), None);
    }

    #[test]
    fn off_by_default_and_only_under_load() {
        assert_eq!(ChallengePolicy::default().requirement(1e6, true), None);
        assert_eq!(policy().requirement(1e6, false), None);
        let always = ChallengePolicy {
            only_under_load: false,
            ..policy()
        };
        assert!(always.requirement(1e6, false).is_some());
    }

    #[test]
    fn a_solved_challenge_passes_and_a_wrong_answer_does_not() {
        let sg = signer();
        let req = Requirement {
            bits: 10,
            wait_secs: 5,
        };
        let token = sg.issue(req, SCHOOL, T0);
        let n = solve(&token, 10);
        assert!(leading_zero_bits(&token, n) >= 10);
        assert!(sg
            .check(Some(&token), Some(n), req, SCHOOL, T0 + 10)
            .is_ok());
        let wrong = (0..).find(|&m| leading_zero_bits(&token, m) < 10).unwrap();
        assert_eq!(
            sg.check(Some(&token), Some(wrong), req, SCHOOL, T0 + 10),
            Err(ChallengeError::NotYet)
        );
    }

    #[test]
    fn without_javascript_waiting_the_delay_is_enough() {
        let sg = signer();
        let req = Requirement {
            bits: 18,
            wait_secs: 5,
        };
        let token = sg.issue(req, SCHOOL, T0);
        assert_eq!(
            sg.check(Some(&token), None, req, SCHOOL, T0 + 4_999),
            Err(ChallengeError::NotYet)
        );
        assert!(sg
            .check(Some(&token), None, req, SCHOOL, T0 + 5_000)
            .is_ok());
    }

    #[test]
    fn a_challenge_is_bound_to_its_address_its_age_and_its_signature() {
        let sg = signer();
        let req = Requirement {
            bits: 8,
            wait_secs: 5,
        };
        let token = sg.issue(req, SCHOOL, T0);
        assert_eq!(
            sg.check(Some(&token), None, req, OTHER, T0 + 6_000),
            Err(ChallengeError::OtherAddress)
        );
        assert_eq!(
            sg.check(Some(&token), None, req, SCHOOL, T0 + 601_000),
            Err(ChallengeError::Expired)
        );
        assert_eq!(
            sg.check(None, None, req, SCHOOL, T0),
            Err(ChallengeError::Missing)
        );
        let other_key =
            ChallengeSigner::new(SigningKey::from_bytes([4; 32]), Duration::from_secs(600));
        assert_eq!(
            other_key.check(Some(&token), None, req, SCHOOL, T0 + 6_000),
            Err(ChallengeError::Invalid)
        );
        // Any altered character is refused.
        for i in 0..token.len() {
            let mut t = token.clone().into_bytes();
            t[i] = if t[i] == b'A' { b'B' } else { b'A' };
            let t = String::from_utf8(t).unwrap();
            assert!(
                sg.check(Some(&t), None, req, SCHOOL, T0 + 6_000).is_err(),
                "{i}"
            );
        }
        assert_eq!(
            sg.check(Some("garbage"), None, req, SCHOOL, T0),
            Err(ChallengeError::Invalid)
        );
    }

    #[test]
    fn an_easier_old_challenge_does_not_meet_a_grown_requirement() {
        let sg = signer();
        let easy = Requirement {
            bits: 8,
            wait_secs: 5,
        };
        let token = sg.issue(easy, SCHOOL, T0);
        let n = solve(&token, 8);
        let grown = Requirement {
            bits: 12,
            wait_secs: 10,
        };
        assert_eq!(
            sg.check(Some(&token), Some(n), grown, SCHOOL, T0 + 100),
            Err(ChallengeError::TooEasy)
        );
    }
}
