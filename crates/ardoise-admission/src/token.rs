//! Signed, tamper-evident, cookie-safe tokens: the [`QueueTicket`] a waiter
//! holds in the lobby and the [`AdmissionPass`] an admitted client holds.
//!
//! Owns the tokens' binary layout, their HMAC-SHA256 signature, key
//! rotation, expiry and the sliding renewal of passes. It must not read a
//! clock, set cookies or keep per-token state: a token is verified from
//! its text, the keys and `now_ms` alone, so that a million waiters cost
//! the server nothing.
//!
//! # Format
//!
//! `base64url_nopad(payload ‖ HMAC-SHA256(key, payload))`, where the payload
//! is `version (1) ‖ kind (b'T' | b'P') ‖ lane (0 | 1) ‖ fields`, every
//! integer big-endian:
//!
//! - ticket: `epoch u64 ‖ seq u64 ‖ issued_at_ms u64`: 59 bytes, 79 chars;
//! - pass: `client [u8; 16] ‖ admitted_at_ms u64 ‖ last_active_ms u64`:
//!   67 bytes, 90 chars.
//!
//! The alphabet `A–Z a–z 0–9 - _` is safe in a cookie value without
//! quoting. The kind is inside the signed bytes, so a ticket can never be
//! passed off as a pass. Decoding is canonical (no padding, no stray
//! trailing bits), so changing any character of a token is detected.
//!
//! # Keys
//!
//! [`Signer`] signs with its current key and verifies with the current or
//! the previous one. Rotate no more often than the longest token lifetime
//! (the ticket max age, two hours by default), or waiters holding a ticket
//! signed two keys ago lose their place.

use std::fmt;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

const VERSION: u8 = 1;
const KIND_TICKET: u8 = b'T';
const KIND_PASS: u8 = b'P';
const HEADER_LEN: usize = 3;
const TAG_LEN: usize = 32;
const TICKET_LEN: usize = HEADER_LEN + 24;
const PASS_LEN: usize = HEADER_LEN + 32;
/// Longest payload of any kind, used for stack buffers.
const MAX_PAYLOAD_LEN: usize = PASS_LEN;
/// Longest token text accepted before decoding: bounds the work an
/// attacker can make a verification do.
const MAX_TOKEN_CHARS: usize = 128;
/// SHA-256's block size: HMAC pads or hashes its key to this length.
const HMAC_BLOCK_LEN: usize = 64;

/// A queue lane. Each lane has its own counters in the lobby.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Lane {
    /// Pupils, parents and anyone not yet signed in.
    General,
    /// Teachers, other staff and administrators, so that a class can start.
    Staff,
}

impl Lane {
    /// Both lanes, general first.
    pub const ALL: [Lane; 2] = [Lane::General, Lane::Staff];

    /// A stable lowercase name, for metrics labels and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Lane::General => "general",
            Lane::Staff => "staff",
        }
    }

    fn to_byte(self) -> u8 {
        match self {
            Lane::General => 0,
            Lane::Staff => 1,
        }
    }

    fn from_byte(byte: u8) -> Option<Lane> {
        match byte {
            0 => Some(Lane::General),
            1 => Some(Lane::Staff),
            _ => None,
        }
    }
}

impl fmt::Display for Lane {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A random identifier for one admitted browser or API client, drawn by the
/// caller (16 bytes from a CSPRNG) when it grants the first pass. It lets
/// the web layer count distinct admitted clients without a session.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientId([u8; 16]);

impl ClientId {
    /// Wraps 16 random bytes.
    pub const fn from_bytes(bytes: [u8; 16]) -> Self {
        Self(bytes)
    }

    /// The 16 bytes.
    pub const fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }
}

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for byte in self.0 {
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ClientId({self})")
    }
}

/// A place in the lobby: "you are number `seq` in lane `lane`".
///
/// Issued by [`crate::Lobby::issue`]; the holder keeps their place by
/// presenting the same ticket again (reload, new tab, retry).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct QueueTicket {
    /// The lane the ticket queues in.
    pub lane: Lane,
    /// The lobby that issued it ([`crate::Lobby::epoch`]): sequence numbers
    /// only mean something to the lobby that counted them.
    pub epoch: u64,
    /// The ticket's number in its lane; later tickets have larger numbers.
    pub seq: u64,
    /// When it was issued, unix milliseconds.
    pub issued_at_ms: u64,
}

/// Proof that a client was admitted, renewed while it stays active.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AdmissionPass {
    /// The lane the client was admitted through.
    pub lane: Lane,
    /// The random identifier of the admitted client.
    pub client: ClientId,
    /// When the client was first admitted, unix milliseconds.
    pub admitted_at_ms: u64,
    /// When the client was last seen active, unix milliseconds: the pass
    /// expires an idle timeout after this.
    pub last_active_ms: u64,
}

impl AdmissionPass {
    /// A pass for a client admitted at `now_ms`.
    pub fn new(lane: Lane, client: ClientId, now_ms: u64) -> Self {
        Self {
            lane,
            client,
            admitted_at_ms: now_ms,
            last_active_ms: now_ms,
        }
    }
}

/// Why a token was refused. Every variant means the same to the client:
/// the token is ignored (a waiter gets a new ticket, a client without a
/// valid pass goes through admission again).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum TokenError {
    /// Not base64url, too long or too short, an unknown version or lane.
    #[error("malformed token")]
    Malformed,
    /// The signature matches neither the current nor the previous key:
    /// tampered with, forged, or signed with a key retired since.
    #[error("token signature does not match")]
    BadSignature,
    /// A genuine token of the other kind (a ticket offered as a pass).
    #[error("token is of the wrong kind")]
    WrongKind,
    /// Outside its validity window: a ticket older than the max age, a pass
    /// idle for longer than the idle timeout, or a token dated further in
    /// the future than the allowed clock skew.
    #[error("token has expired")]
    Expired,
}

impl TokenError {
    /// A stable snake_case code for logs and metrics labels.
    pub fn code(self) -> &'static str {
        match self {
            TokenError::Malformed => "token_malformed",
            TokenError::BadSignature => "token_bad_signature",
            TokenError::WrongKind => "token_wrong_kind",
            TokenError::Expired => "token_expired",
        }
    }
}

/// A 256-bit HMAC key. Its `Debug` never shows the key.
#[derive(Clone)]
pub struct SigningKey {
    pub(crate) mac: HmacSha256,
}

impl SigningKey {
    /// A key from 32 random bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self {
            mac: hmac_with_key(&bytes),
        }
    }

    /// A key derived from the application's master secret for one purpose
    /// (`HMAC-SHA256(master, "ardoise-admission/" ‖ context)`), so that the
    /// admission tokens never share a key with sessions or anything else.
    /// The master secret should hold at least 32 random bytes.
    pub fn derive(master: &[u8], context: &str) -> Self {
        let mut mac = hmac_with_key(master);
        mac.update(b"ardoise-admission/");
        mac.update(context.as_bytes());
        Self::from_bytes(mac.finalize().into_bytes().into())
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningKey(redacted)")
    }
}

/// HMAC-SHA256 keyed with `key` of any length, without the `Result` of
/// `Mac::new_from_slice` (which can never fail for HMAC): RFC 2104 zero-pads
/// a key shorter than a block and hashes a longer one first.
fn hmac_with_key(key: &[u8]) -> HmacSha256 {
    let mut block = [0u8; HMAC_BLOCK_LEN];
    if key.len() <= HMAC_BLOCK_LEN {
        block[..key.len()].copy_from_slice(key);
    } else {
        block[..32].copy_from_slice(&Sha256::digest(key));
    }
    <HmacSha256 as hmac::digest::KeyInit>::new(&block.into())
}

/// How long tokens live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenLifetimes {
    /// A ticket older than this is refused and its holder queues again.
    /// Also how late an admitted waiter may still come back. Default 2 h.
    pub ticket_max_age: Duration,
    /// A pass unused for longer than this expires (sliding: every renewal
    /// restarts it). Default 20 min.
    pub pass_idle_timeout: Duration,
    /// Renew a pass (a new `Set-Cookie`) only when it is at least this old,
    /// not on every response. Default 1 min.
    pub pass_renew_every: Duration,
    /// How far in the future a token may be dated (clocks of the nodes of a
    /// cluster disagree a little). Default 5 min.
    pub max_clock_skew: Duration,
}

impl Default for TokenLifetimes {
    fn default() -> Self {
        Self {
            ticket_max_age: Duration::from_secs(2 * 60 * 60),
            pass_idle_timeout: Duration::from_secs(20 * 60),
            pass_renew_every: Duration::from_secs(60),
            max_clock_skew: Duration::from_secs(5 * 60),
        }
    }
}

/// Signs and verifies tickets and passes.
#[derive(Debug, Clone)]
pub struct Signer {
    current: SigningKey,
    previous: Option<SigningKey>,
    lifetimes: TokenLifetimes,
}

impl Signer {
    /// A signer with one key.
    pub fn new(current: SigningKey, lifetimes: TokenLifetimes) -> Self {
        Self {
            current,
            previous: None,
            lifetimes,
        }
    }

    /// Also accepts tokens signed with `previous` (key rotation).
    pub fn with_previous(mut self, previous: SigningKey) -> Self {
        self.previous = Some(previous);
        self
    }

    /// The lifetimes this signer enforces.
    pub fn lifetimes(&self) -> TokenLifetimes {
        self.lifetimes
    }

    /// The cookie value for `ticket`, signed with the current key.
    pub fn sign_ticket(&self, ticket: &QueueTicket) -> String {
        let mut payload = [0u8; TICKET_LEN];
        payload[..HEADER_LEN].copy_from_slice(&[VERSION, KIND_TICKET, ticket.lane.to_byte()]);
        payload[3..11].copy_from_slice(&ticket.epoch.to_be_bytes());
        payload[11..19].copy_from_slice(&ticket.seq.to_be_bytes());
        payload[19..27].copy_from_slice(&ticket.issued_at_ms.to_be_bytes());
        self.seal(&payload)
    }

    /// The cookie value for `pass`, signed with the current key.
    pub fn sign_pass(&self, pass: &AdmissionPass) -> String {
        let mut payload = [0u8; PASS_LEN];
        payload[..HEADER_LEN].copy_from_slice(&[VERSION, KIND_PASS, pass.lane.to_byte()]);
        payload[3..19].copy_from_slice(pass.client.as_bytes());
        payload[19..27].copy_from_slice(&pass.admitted_at_ms.to_be_bytes());
        payload[27..35].copy_from_slice(&pass.last_active_ms.to_be_bytes());
        self.seal(&payload)
    }

    /// The ticket in `token` if it is genuine and not older than the ticket
    /// max age at `now_ms`.
    pub fn verify_ticket(&self, token: &str, now_ms: u64) -> Result<QueueTicket, TokenError> {
        let (buf, len) = self.open(token, KIND_TICKET)?;
        if len != TICKET_LEN {
            return Err(TokenError::Malformed);
        }
        let ticket = QueueTicket {
            lane: Lane::from_byte(buf[2]).ok_or(TokenError::Malformed)?,
            epoch: be_u64(&buf[3..11]),
            seq: be_u64(&buf[11..19]),
            issued_at_ms: be_u64(&buf[19..27]),
        };
        if !self.fresh(ticket.issued_at_ms, self.lifetimes.ticket_max_age, now_ms) {
            return Err(TokenError::Expired);
        }
        Ok(ticket)
    }

    /// The pass in `token` if it is genuine and was active within the idle
    /// timeout at `now_ms`.
    pub fn verify_pass(&self, token: &str, now_ms: u64) -> Result<AdmissionPass, TokenError> {
        let (buf, len) = self.open(token, KIND_PASS)?;
        if len != PASS_LEN {
            return Err(TokenError::Malformed);
        }
        let mut client = [0u8; 16];
        client.copy_from_slice(&buf[3..19]);
        let pass = AdmissionPass {
            lane: Lane::from_byte(buf[2]).ok_or(TokenError::Malformed)?,
            client: ClientId(client),
            admitted_at_ms: be_u64(&buf[19..27]),
            last_active_ms: be_u64(&buf[27..35]),
        };
        if !self.pass_alive(&pass, now_ms) {
            return Err(TokenError::Expired);
        }
        Ok(pass)
    }

    /// `pass` with its activity moved to `now_ms`, unless it has already
    /// expired: an expired pass is never revived.
    pub fn renew(&self, pass: &AdmissionPass, now_ms: u64) -> Result<AdmissionPass, TokenError> {
        if !self.pass_alive(pass, now_ms) {
            return Err(TokenError::Expired);
        }
        Ok(AdmissionPass {
            last_active_ms: pass.last_active_ms.max(now_ms),
            ..*pass
        })
    }

    /// Whether `pass` is old enough to be worth renewing (a new cookie) at
    /// `now_ms`; see [`TokenLifetimes::pass_renew_every`].
    pub fn is_due_for_renewal(&self, pass: &AdmissionPass, now_ms: u64) -> bool {
        now_ms.saturating_sub(pass.last_active_ms) >= millis(self.lifetimes.pass_renew_every)
    }

    fn pass_alive(&self, pass: &AdmissionPass, now_ms: u64) -> bool {
        self.fresh(
            pass.last_active_ms,
            self.lifetimes.pass_idle_timeout,
            now_ms,
        )
    }

    /// Whether a token stamped `stamp_ms` is within `max_age` of `now_ms`,
    /// tolerating the allowed clock skew for stamps in the future.
    fn fresh(&self, stamp_ms: u64, max_age: Duration, now_ms: u64) -> bool {
        if stamp_ms > now_ms {
            stamp_ms - now_ms <= millis(self.lifetimes.max_clock_skew)
        } else {
            now_ms - stamp_ms <= millis(max_age)
        }
    }

    fn seal(&self, payload: &[u8]) -> String {
        let mut mac = self.current.mac.clone();
        mac.update(payload);
        let tag = mac.finalize().into_bytes();
        let mut out = [0u8; MAX_PAYLOAD_LEN + TAG_LEN];
        out[..payload.len()].copy_from_slice(payload);
        out[payload.len()..payload.len() + TAG_LEN].copy_from_slice(&tag);
        URL_SAFE_NO_PAD.encode(&out[..payload.len() + TAG_LEN])
    }

    /// Decodes `token`, checks its signature, version and kind, and returns
    /// the payload (in a stack buffer) and its length.
    ///
    /// The signature is checked before anything in the payload is trusted.
    fn open(&self, token: &str, kind: u8) -> Result<([u8; MAX_PAYLOAD_LEN], usize), TokenError> {
        if token.len() > MAX_TOKEN_CHARS {
            return Err(TokenError::Malformed);
        }
        let mut raw = [0u8; MAX_TOKEN_CHARS];
        let len = URL_SAFE_NO_PAD
            .decode_slice(token, &mut raw)
            .map_err(|_| TokenError::Malformed)?;
        if !(HEADER_LEN + TAG_LEN..=MAX_PAYLOAD_LEN + TAG_LEN).contains(&len) {
            return Err(TokenError::Malformed);
        }
        let (payload, tag) = raw[..len].split_at(len - TAG_LEN);
        if !self.signed_by_us(payload, tag) {
            return Err(TokenError::BadSignature);
        }
        if payload[0] != VERSION {
            return Err(TokenError::Malformed);
        }
        if payload[1] != kind {
            return if payload[1] == KIND_TICKET || payload[1] == KIND_PASS {
                Err(TokenError::WrongKind)
            } else {
                Err(TokenError::Malformed)
            };
        }
        let mut buf = [0u8; MAX_PAYLOAD_LEN];
        buf[..payload.len()].copy_from_slice(payload);
        Ok((buf, payload.len()))
    }

    /// Whether `tag` is the payload's HMAC under the current or previous
    /// key. `verify_slice` compares in constant time, so the time taken
    /// reveals nothing about how much of a forged tag was right.
    fn signed_by_us(&self, payload: &[u8], tag: &[u8]) -> bool {
        std::iter::once(&self.current)
            .chain(self.previous.as_ref())
            .any(|key| {
                let mut mac = key.mac.clone();
                mac.update(payload);
                mac.verify_slice(tag).is_ok()
            })
    }
}

fn be_u64(bytes: &[u8]) -> u64 {
    let mut buf = [0u8; 8];
    buf.copy_from_slice(bytes);
    u64::from_be_bytes(buf)
}

/// Whole milliseconds of `d`, saturating (a lifetime of centuries is
/// "forever", not an overflow).
pub(crate) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const T0: u64 = 1_775_458_500_000; // 9:15 one April morning, unix ms
    const MIN: u64 = 60_000;

    fn key(byte: u8) -> SigningKey {
        SigningKey::from_bytes([byte; 32])
    }

    fn signer() -> Signer {
        Signer::new(key(1), TokenLifetimes::default())
    }

    fn ticket() -> QueueTicket {
        QueueTicket {
            lane: Lane::Staff,
            epoch: 42,
            seq: 123_456_789,
            issued_at_ms: T0,
        }
    }

    fn pass() -> AdmissionPass {
        AdmissionPass::new(Lane::General, ClientId::from_bytes([7; 16]), T0)
    }

    /// Every token obtained by changing one character of `token` to another
    /// character of the base64url alphabet.
    fn one_char_mutations(token: &str) -> Vec<String> {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let mut out = Vec::new();
        for i in 0..token.len() {
            for &c in ALPHABET {
                if c != token.as_bytes()[i] {
                    let mut bytes = token.as_bytes().to_vec();
                    bytes[i] = c;
                    out.push(String::from_utf8(bytes).unwrap());
                }
            }
        }
        out
    }

    #[test]
    fn a_signed_ticket_verifies_to_the_same_ticket() {
        let s = signer();
        for lane in Lane::ALL {
            for seq in [0, 1, u64::MAX] {
                let t = QueueTicket {
                    lane,
                    seq,
                    ..ticket()
                };
                let token = s.sign_ticket(&t);
                assert_eq!(s.verify_ticket(&token, T0 + MIN), Ok(t));
            }
        }
    }

    #[test]
    fn a_signed_pass_verifies_to_the_same_pass() {
        let s = signer();
        let p = AdmissionPass {
            last_active_ms: T0 + 5 * MIN,
            ..pass()
        };
        let token = s.sign_pass(&p);
        assert_eq!(s.verify_pass(&token, T0 + 6 * MIN), Ok(p));
    }

    #[test]
    fn tokens_are_cookie_safe_and_short() {
        let s = signer();
        let t = s.sign_ticket(&ticket());
        let p = s.sign_pass(&pass());
        assert_eq!((t.len(), p.len()), (79, 90));
        for token in [t, p] {
            assert!(token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        }
    }

    #[test]
    fn changing_any_character_of_a_ticket_is_rejected() {
        let s = signer();
        let token = s.sign_ticket(&ticket());
        let mutations = one_char_mutations(&token);
        assert_eq!(mutations.len(), 79 * 63);
        for bad in mutations {
            let err = s.verify_ticket(&bad, T0).unwrap_err();
            assert!(
                matches!(err, TokenError::BadSignature | TokenError::Malformed),
                "{bad} gave {err:?}"
            );
        }
    }

    #[test]
    fn flipping_any_bit_of_a_pass_is_rejected_as_a_bad_signature() {
        let s = signer();
        let raw = URL_SAFE_NO_PAD.decode(s.sign_pass(&pass())).unwrap();
        for i in 0..raw.len() {
            for bit in 0..8 {
                let mut bytes = raw.clone();
                bytes[i] ^= 1 << bit;
                let bad = URL_SAFE_NO_PAD.encode(&bytes);
                assert_eq!(s.verify_pass(&bad, T0), Err(TokenError::BadSignature));
            }
        }
    }

    #[test]
    fn truncated_extended_and_garbage_tokens_are_malformed() {
        let s = signer();
        let token = s.sign_ticket(&ticket());
        let cases = [
            String::new(),
            "not a token".to_string(),
            token[..token.len() - 1].to_string(),
            format!("{token}AA"),
            format!("{token}="),
            "A".repeat(200),
            URL_SAFE_NO_PAD.encode([0u8; 34]),
        ];
        for bad in cases {
            assert_eq!(
                s.verify_ticket(&bad, T0),
                Err(TokenError::Malformed),
                "{bad}"
            );
        }
    }

    #[test]
    fn a_token_signed_with_another_key_is_rejected() {
        let other = Signer::new(key(2), TokenLifetimes::default());
        let s = signer();
        assert_eq!(
            s.verify_ticket(&other.sign_ticket(&ticket()), T0),
            Err(TokenError::BadSignature)
        );
        assert_eq!(
            s.verify_pass(&other.sign_pass(&pass()), T0),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn during_rotation_tokens_of_the_previous_key_still_verify_and_new_ones_use_the_current_key() {
        let old = signer();
        let old_token = old.sign_ticket(&ticket());
        let rotated = Signer::new(key(2), TokenLifetimes::default()).with_previous(key(1));
        assert_eq!(rotated.verify_ticket(&old_token, T0), Ok(ticket()));

        let new_token = rotated.sign_ticket(&ticket());
        assert_ne!(new_token, old_token);
        let only_new = Signer::new(key(2), TokenLifetimes::default());
        assert_eq!(only_new.verify_ticket(&new_token, T0), Ok(ticket()));

        let retired = Signer::new(key(3), TokenLifetimes::default()).with_previous(key(2));
        assert_eq!(
            retired.verify_ticket(&old_token, T0),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn a_ticket_is_not_a_pass_and_a_pass_is_not_a_ticket() {
        let s = signer();
        assert_eq!(
            s.verify_pass(&s.sign_ticket(&ticket()), T0),
            Err(TokenError::WrongKind)
        );
        assert_eq!(
            s.verify_ticket(&s.sign_pass(&pass()), T0),
            Err(TokenError::WrongKind)
        );
    }

    #[test]
    fn tickets_expire_after_their_max_age() {
        let s = signer();
        let token = s.sign_ticket(&ticket());
        let max_age = 120 * MIN;
        let cases = [
            (T0, true),
            (T0 + max_age, true),
            (T0 + max_age + 1, false),
            (T0 + 10 * max_age, false),
            (T0 - 5 * MIN, true),      // issued by a node 5 min ahead
            (T0 - 5 * MIN - 1, false), // further than the allowed skew
        ];
        for (now, valid) in cases {
            let expected = if valid {
                Ok(ticket())
            } else {
                Err(TokenError::Expired)
            };
            assert_eq!(
                s.verify_ticket(&token, now),
                expected,
                "now = T0{:+}",
                now as i64 - T0 as i64
            );
        }
    }

    #[test]
    fn the_ticket_max_age_is_configurable() {
        let lifetimes = TokenLifetimes {
            ticket_max_age: Duration::from_secs(60),
            ..TokenLifetimes::default()
        };
        let s = Signer::new(key(1), lifetimes);
        let token = s.sign_ticket(&ticket());
        assert!(s.verify_ticket(&token, T0 + MIN).is_ok());
        assert_eq!(
            s.verify_ticket(&token, T0 + MIN + 1),
            Err(TokenError::Expired)
        );
    }

    #[test]
    fn a_pass_expires_after_twenty_idle_minutes_counted_from_last_activity() {
        let s = signer();
        let p = AdmissionPass {
            last_active_ms: T0 + 30 * MIN,
            ..pass()
        };
        let token = s.sign_pass(&p);
        // Admitted 50 minutes ago but active 20 minutes ago: still valid.
        assert_eq!(s.verify_pass(&token, T0 + 50 * MIN), Ok(p));
        assert_eq!(
            s.verify_pass(&token, T0 + 50 * MIN + 1),
            Err(TokenError::Expired)
        );
    }

    #[test]
    fn renewing_a_live_pass_slides_its_idle_timeout() {
        let s = signer();
        let mut p = pass();
        // Active every 15 minutes for five hours: never cut off.
        for step in 1..=20 {
            let now = T0 + step * 15 * MIN;
            let verified = s.verify_pass(&s.sign_pass(&p), now).unwrap();
            p = s.renew(&verified, now).unwrap();
            assert_eq!(p.last_active_ms, now);
            assert_eq!(p.admitted_at_ms, T0);
            assert_eq!(p.client, pass().client);
        }
    }

    #[test]
    fn an_expired_pass_is_not_renewed() {
        let s = signer();
        assert_eq!(
            s.renew(&pass(), T0 + 20 * MIN + 1),
            Err(TokenError::Expired)
        );
        assert!(s.renew(&pass(), T0 + 20 * MIN).is_ok());
    }

    #[test]
    fn renewal_never_moves_activity_backwards() {
        let s = signer();
        let p = AdmissionPass {
            last_active_ms: T0 + MIN,
            ..pass()
        };
        assert_eq!(s.renew(&p, T0).unwrap().last_active_ms, T0 + MIN);
    }

    #[test]
    fn a_pass_is_due_for_renewal_once_a_minute() {
        let s = signer();
        assert!(!s.is_due_for_renewal(&pass(), T0 + MIN - 1));
        assert!(s.is_due_for_renewal(&pass(), T0 + MIN));
    }

    #[test]
    fn hmac_with_key_matches_the_hmac_crate_for_short_and_long_keys() {
        for len in [0, 1, 32, 64, 65, 200] {
            let key = vec![0xA5u8; len];
            let mut ours = hmac_with_key(&key);
            let mut theirs = <HmacSha256 as Mac>::new_from_slice(&key).unwrap();
            ours.update(b"payload");
            theirs.update(b"payload");
            assert_eq!(ours.finalize().into_bytes(), theirs.finalize().into_bytes());
        }
    }

    #[test]
    fn derived_keys_differ_by_context_and_master() {
        let master = [9u8; 32];
        let t = ticket();
        let sign = |k: SigningKey| Signer::new(k, TokenLifetimes::default()).sign_ticket(&t);
        let a = sign(SigningKey::derive(&master, "tickets"));
        assert_eq!(a, sign(SigningKey::derive(&master, "tickets")));
        assert_ne!(a, sign(SigningKey::derive(&master, "passes")));
        assert_ne!(a, sign(SigningKey::derive(&[8u8; 32], "tickets")));
    }

    #[test]
    fn debug_output_never_shows_the_key() {
        let shown = format!("{:?}", signer());
        assert!(shown.contains("redacted"));
        assert!(!shown.contains("[1, 1"));
    }

    #[test]
    fn error_codes_are_stable() {
        let codes = [
            TokenError::Malformed,
            TokenError::BadSignature,
            TokenError::WrongKind,
            TokenError::Expired,
        ]
        .map(TokenError::code);
        assert_eq!(
            codes,
            [
                "token_malformed",
                "token_bad_signature",
                "token_wrong_kind",
                "token_expired"
            ]
        );
    }
}
