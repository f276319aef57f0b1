//! Sessions: random 256-bit tokens, of which only the SHA-256 is stored,
//! kept in an in-memory table so that checking a session costs a hash and
//! a map lookup, never a database trip. The database holds the sessions
//! too, so a restart or another node can reload one on a miss.
//!
//! Revocation removes the session from this node's table and from the
//! database, so it takes effect on the very next request to this node.
//! (Across nodes, cached sessions are dropped by the scale-out issue's
//! event bus; until then, one node per school is the supported shape.)

use ardoise_core::{Actor, PersonId, UnixTime};
use ardoise_store::SessionRecord;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use dashmap::DashMap;
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

/// How long a session lasts without "remember this device": 12 hours.
pub const SESSION_SECS: i64 = 12 * 3600;
/// How long a remembered device stays signed in: 30 days.
pub const REMEMBER_SECS: i64 = 30 * 24 * 3600;

/// A new random token, URL-safe (43 characters for 256 bits).
pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The digest under which a token is stored and looked up.
pub fn token_digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// A signed-in session as held in memory.
#[derive(Debug)]
pub struct LiveSession {
    /// The public id (to list and revoke it).
    pub id: i64,
    /// Hex SHA-256 of the token, as stored.
    pub token_hash: String,
    /// Who, with their relationships.
    pub actor: Actor,
    /// For display.
    pub first_name: String,
    /// For display.
    pub last_name: String,
    /// For display.
    pub login: String,
    /// Put in every form of this session.
    pub csrf_token: String,
    /// Creation time.
    pub created_at: UnixTime,
    /// End of validity.
    pub expires_at: UnixTime,
    /// Whether it is a remembered device.
    pub remembered: bool,
    /// Last request seen by this node.
    pub last_seen: AtomicI64,
    /// Last activity written to the database (written at most every
    /// [`TOUCH_EVERY_SECS`], never on the request path).
    pub persisted_seen: AtomicI64,
}

/// How stale the stored "last seen" of a session may get.
pub const TOUCH_EVERY_SECS: i64 = 300;

impl LiveSession {
    /// Builds the live session from its record and owner.
    pub fn new(
        record: &SessionRecord,
        actor: Actor,
        first_name: String,
        last_name: String,
        login: String,
    ) -> Self {
        LiveSession {
            id: record.id,
            token_hash: record.token_hash.clone(),
            actor,
            first_name,
            last_name,
            login,
            csrf_token: record.csrf_token.clone(),
            created_at: record.created_at,
            expires_at: record.expires_at,
            remembered: record.remembered,
            last_seen: AtomicI64::new(record.last_seen_at),
            persisted_seen: AtomicI64::new(record.last_seen_at),
        }
    }

    /// The person.
    pub fn person_id(&self) -> PersonId {
        self.actor.person_id
    }

    /// « Prénom NOM ».
    pub fn display_name(&self) -> String {
        format!("{} {}", self.first_name, self.last_name.to_uppercase())
    }

    /// Whether the stored "last seen" is stale at `now`; if so, marks it as
    /// written, so that only one request per interval writes it.
    pub fn claim_touch(&self, now: UnixTime) -> bool {
        let seen = self.persisted_seen.load(Ordering::Relaxed);
        now - seen >= TOUCH_EVERY_SECS
            && self
                .persisted_seen
                .compare_exchange(seen, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
    }
}

/// This node's table of live sessions.
#[derive(Debug, Default)]
pub struct SessionTable {
    map: DashMap<[u8; 32], Arc<LiveSession>>,
}

/// What a lookup found.
#[derive(Debug)]
pub enum Lookup {
    /// A live session.
    Live(Arc<LiveSession>),
    /// Not in memory: ask the database.
    Miss,
}

impl SessionTable {
    /// Checks a token at `now`: a hash and a map lookup.
    pub fn check(&self, token: &str, now: UnixTime) -> Lookup {
        let digest = token_digest(token);
        let Some(entry) = self.map.get(&digest).map(|e| Arc::clone(e.value())) else {
            return Lookup::Miss;
        };
        if entry.expires_at <= now {
            self.map.remove(&digest);
            return Lookup::Miss;
        }
        entry.last_seen.store(now, Ordering::Relaxed);
        Lookup::Live(entry)
    }

    /// Adds or replaces a session.
    pub fn insert(&self, session: Arc<LiveSession>) {
        if let Ok(bytes) = hex::decode(&session.token_hash) {
            if let Ok(digest) = <[u8; 32]>::try_from(bytes.as_slice()) {
                self.map.insert(digest, session);
            }
        }
    }

    /// Forgets one session by its hex hash.
    pub fn remove_hash(&self, token_hash: &str) {
        if let Some(digest) = hex::decode(token_hash)
            .ok()
            .and_then(|b| <[u8; 32]>::try_from(b.as_slice()).ok())
        {
            self.map.remove(&digest);
        }
    }

    /// Forgets every cached session of a person, so the next request reloads
    /// their roles and relationships (or finds the account disabled).
    pub fn forget_person(&self, person_id: PersonId) {
        self.map.retain(|_, s| s.person_id() != person_id);
    }

    /// Sessions held in memory.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether no session is held.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ardoise_core::{EstablishmentId, Role, Roles};

    fn live(token: &str, expires_at: UnixTime) -> Arc<LiveSession> {
        let record = SessionRecord {
            id: 1,
            token_hash: hex::encode(token_digest(token)),
            person_id: PersonId(7),
            created_at: 0,
            last_seen_at: 0,
            expires_at,
            remembered: false,
            user_agent: String::new(),
            csrf_token: "c".into(),
        };
        let actor = Actor {
            person_id: PersonId(7),
            establishment_id: EstablishmentId(1),
            roles: Roles::only(Role::Pupil),
            class_id: None,
            group_ids: vec![],
            children: vec![],
            taught_classes: vec![],
            taught_groups: vec![],
            teachings: vec![],
        };
        Arc::new(LiveSession::new(
            &record,
            actor,
            "A".into(),
            "B".into(),
            "a.b".into(),
        ))
    }

    #[test]
    fn tokens_are_long_random_and_url_safe() {
        let a = new_token();
        assert_eq!(a.len(), 43);
        assert_ne!(a, new_token());
        assert!(a
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
    }

    #[test]
    fn a_session_is_found_until_it_expires_or_is_revoked() {
        let table = SessionTable::default();
        let token = new_token();
        table.insert(live(&token, 100));
        assert!(matches!(table.check(&token, 50), Lookup::Live(_)));
        assert!(matches!(table.check(&new_token(), 50), Lookup::Miss));
        assert!(matches!(table.check(&token, 100), Lookup::Miss), "expired");
        assert!(table.is_empty());
        table.insert(live(&token, 100));
        table.remove_hash(&hex::encode(token_digest(&token)));
        assert!(matches!(table.check(&token, 50), Lookup::Miss), "revoked");
        table.insert(live(&token, 100));
        table.forget_person(PersonId(7));
        assert!(matches!(table.check(&token, 50), Lookup::Miss), "forgotten");
    }

    #[test]
    fn activity_is_written_at_most_once_per_interval() {
        let s = live(&new_token(), 10_000);
        assert!(!s.claim_touch(TOUCH_EVERY_SECS - 1));
        assert!(s.claim_touch(TOUCH_EVERY_SECS));
        assert!(!s.claim_touch(TOUCH_EVERY_SECS + 1), "already claimed");
        assert!(s.claim_touch(2 * TOUCH_EVERY_SECS));
    }
}
