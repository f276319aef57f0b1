//! Sign-in, activation, password changes and session lifecycle: the rules
//! of who gets a session, independent of HTML or JSON.
//!
//! Password hashes are argon2id with OWASP's parameters (m=19 MiB, t=2,
//! p=1), computed on blocking threads behind their own semaphore so that a
//! storm of fresh sign-ins cannot take the cores that serve signed-in
//! pupils. Every path that checks a secret (password, activation code)
//! goes through the per-account throttle.

use crate::error::ApiError;
use crate::session::{new_token, token_digest, LiveSession, Lookup, REMEMBER_SECS, SESSION_SECS};
use crate::state::AppState;
use ardoise_core::password::{validate_new_password, PasswordError};
use ardoise_core::throttle::Decision;
use ardoise_core::{Login, PersonId};
use ardoise_store::{AccountStatus, Credentials, SessionInsertForm};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use rand::Rng;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use tokio::sync::Semaphore;

/// Password hashing with a bulkhead.
pub struct Passwords {
    params: Params,
    permits: Semaphore,
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

fn verify_blocking(params: Params, password: &str, phc: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .verify_password(password.as_bytes(), &parsed)
        .is_ok()
}

impl Passwords {
    /// `permits` hashes may run at once.
    pub fn new(permits: usize) -> Result<Self, ApiError> {
        let params = argon2_params().map_err(|e| ApiError::Internal(e.to_string()))?;
        Ok(Passwords {
            params,
            permits: Semaphore::new(permits.max(1)),
            dummy_hash: hash_password_blocking("dummy password for timing")?,
        })
    }

    /// Hashes a password on a blocking thread.
    pub async fn hash(&self, password: String) -> Result<String, ApiError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| ApiError::Unavailable)?;
        tokio::task::spawn_blocking(move || hash_password_blocking(&password))
            .await
            .map_err(|e| ApiError::Internal(e.to_string()))?
    }

    /// Checks a password against a stored hash (or, with none, against a
    /// dummy hash, to take the same time) on a blocking thread.
    pub async fn verify(&self, password: String, phc: Option<String>) -> Result<bool, ApiError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| ApiError::Unavailable)?;
        let params = self.params.clone();
        let known = phc.is_some();
        let phc = phc.unwrap_or_else(|| self.dummy_hash.clone());
        let ok = tokio::task::spawn_blocking(move || verify_blocking(params, &password, &phc))
            .await
            .map_err(|e| ApiError::Internal(e.to_string()))?;
        Ok(ok && known)
    }
}

/// Where a sign-in came from, for the session list.
#[derive(Debug, Clone, Default)]
pub struct ClientInfo {
    /// The browser's User-Agent, shortened.
    pub user_agent: String,
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
    let creds = state.store.find_credentials(&login).await?;
    let Some(creds) = creds else {
        // Same work as for a real account, then the same answer.
        state.passwords.verify(password.to_string(), None).await?;
        metrics::counter!("ardoise_signin_total", "outcome" => "failure").increment(1);
        return Err(ApiError::BadCredentials);
    };
    throttle_check(state, &creds).await?;
    let ok = state
        .passwords
        .verify(password.to_string(), creds.password_hash.clone())
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
        .verify(current.to_string(), creds.password_hash.clone())
        .await?
    {
        record_failure(state, &creds).await?;
        return Err(ApiError::Invalid("current_password_wrong"));
    }
    validate_new_password(new, &[&creds.login, &creds.first_name, &creds.last_name])
        .map_err(map_password_error)?;
    let hash = state.passwords.hash(new.to_string()).await?;
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
    let hash = state.passwords.hash(password.to_string()).await?;
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
    use super::*;

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
        let Ok(params) = argon2_params() else {
            panic!("params")
        };
        assert!(verify_blocking(params.clone(), "correct horse battery", &h));
        assert!(!verify_blocking(params, "wrong horse battery", &h));
    }
}
