//! The `[surge]` settings: admission, the lobby, overload control and
//! connection limits (DESIGN.md, "How it survives the surge"). Each can
//! also be set as `ARDOISE_SURGE_<NAME IN CAPITALS>`.

use super::ConfigError;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// A string whose `Debug` never shows it.
#[derive(Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(transparent)]
pub struct Redacted(pub String);

impl std::fmt::Debug for Redacted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_empty() { "\"\"" } else { "****" })
    }
}

/// The `[surge]` table.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct SurgeSettings {
    /// Admission, the lobby and overload control. `false` sends every
    /// request straight to the routes (to compare in benchmarks); the
    /// connection limits still apply.
    pub enabled: bool,
    /// Key for queue tickets and admission passes (32 random characters or
    /// more). Empty: a new random key at each start, so waiters lose their
    /// place on restart. Nodes of a cluster must share it.
    pub token_key: Redacted,
    /// Standing queueing delay tolerated for signed-in requests, in ms.
    pub codel_target_ms: u64,
    /// The same for requests without a session, lower so they are shed first.
    pub prelogin_target_ms: u64,
    /// Window over which the smallest queueing delay is taken, in ms.
    pub codel_interval_ms: u64,
    /// Floor of the adaptive limit on admitted users.
    pub users_floor: u64,
    /// Ceiling of the adaptive limit on admitted users.
    pub users_ceiling: u64,
    /// Where the limit on admitted users starts.
    pub users_initial: u64,
    /// Requests shed (or refused by a full bulkhead) shrink the user limit
    /// when they are at least this percent of a second's requests.
    pub users_overload_percent: u8,
    /// Percent of the user limit reserved for teachers and staff (they also
    /// come first for any free place, up to half the limit while pupils
    /// and parents wait too).
    pub staff_share_percent: u8,
    /// A user counts against capacity while active this recently, in seconds.
    pub active_secs: u64,
    /// An admission pass unused for this long expires, in minutes (sliding).
    pub pass_idle_mins: u64,
    /// A queue ticket older than this is refused, in minutes.
    pub ticket_max_age_mins: u64,
    /// Base of the jittered Retry-After of refused requests, in seconds.
    pub retry_after_secs: u32,
    /// A waiter whose turn is expected within this many seconds has their
    /// refresh held until it comes (then answered at once); 0: never held.
    pub lobby_hold_secs: u64,
    /// Most refreshes held at once (each holds a connection).
    pub lobby_max_held: usize,
    /// Signed-in reads in flight at once; 0 derives it from the cores.
    pub bulkhead_reads: u64,
    /// Signed-in writes in flight at once; 0 derives it from the cores.
    pub bulkhead_writes: u64,
    /// Sign-ins waiting for a password hash, per lane (teachers and staff
    /// queue apart and hash first); past it a sign-in is refused with
    /// Retry-After. 0: 16 per password-hash permit.
    pub bulkhead_sign_in: u64,
    /// Uploads in flight at once; 0 derives it from the cores.
    pub bulkhead_uploads: u64,
    /// Requests without a session in flight at once; 0 derives it from the cores.
    pub bulkhead_pre_login: u64,
    /// Longest wait for a request's headers, and between keep-alive requests.
    pub header_timeout_secs: u64,
    /// Longest wait between two pieces of a request body.
    pub body_timeout_secs: u64,
    /// A connection silent for this long is closed.
    pub idle_timeout_secs: u64,
    /// Most open connections; past it, new ones wait in the kernel's backlog.
    pub max_connections: usize,
    /// Largest request body of any kind (uploads included), in bytes.
    pub max_request_bytes: usize,
    /// Ask a light proof of work (or, without JavaScript, a short wait)
    /// before a sign-in from an address with many recent failures.
    pub challenge_enabled: bool,
    /// Ask it only while the node is under load.
    pub challenge_only_under_load: bool,
    /// Recent failed sign-ins from one address before it is asked.
    pub challenge_failures: u64,
    /// Half-life of the failed sign-ins counted per address, in seconds.
    pub failure_half_life_secs: u64,
}

impl Default for SurgeSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            token_key: Redacted::default(),
            codel_target_ms: 5,
            prelogin_target_ms: 2,
            codel_interval_ms: 100,
            users_floor: 50,
            users_ceiling: 100_000,
            users_initial: 500,
            users_overload_percent: 5,
            staff_share_percent: 10,
            active_secs: 10,
            pass_idle_mins: 20,
            ticket_max_age_mins: 120,
            retry_after_secs: 2,
            lobby_hold_secs: 5,
            lobby_max_held: 2_000,
            bulkhead_reads: 0,
            bulkhead_writes: 0,
            bulkhead_sign_in: 0,
            bulkhead_uploads: 0,
            bulkhead_pre_login: 0,
            header_timeout_secs: 10,
            body_timeout_secs: 10,
            idle_timeout_secs: 60,
            max_connections: 10_000,
            max_request_bytes: 100 * 1024 * 1024,
            challenge_enabled: false,
            challenge_only_under_load: true,
            challenge_failures: 20,
            failure_half_life_secs: 600,
        }
    }
}

/// The commented `[surge]` table, appended to the printed defaults.
pub const DEFAULT_TOML: &str = r#"
# The surge layer: admission of users, the waiting line, overload control and
# connection limits. Environment: ARDOISE_SURGE_<NAME> (ARDOISE_SURGE_ENABLED...).
[surge]
# Admission, waiting line and overload control; false sends every request
# straight to the routes (benchmark comparison). Connection limits still apply.
enabled = true
# Key for queue tickets and admission passes (32+ random characters). Empty: a
# new key at each start (waiters lose their place on restart). A cluster shares one.
token_key = ""
# Standing queueing delay tolerated (ms), signed-in and pre-login requests.
codel_target_ms = 5
prelogin_target_ms = 2
# Window over which the smallest queueing delay is taken (ms).
codel_interval_ms = 100
# Adaptive limit on admitted users: floor, ceiling and starting point (it grows
# by half of itself a second until the first standing queue, then by its root).
users_floor = 50
users_ceiling = 100000
users_initial = 500
# Requests shed or refused by a full bulkhead shrink it when they are at least
# this percent of a second's requests (0: any one does).
users_overload_percent = 5
# Percent of the user limit reserved for teachers and staff (they also come
# first for any free place, up to half the limit while others wait too).
staff_share_percent = 10
# A user counts against capacity while active within this many seconds.
active_secs = 10
# An admission pass unused this long expires (minutes, renewed while active).
pass_idle_mins = 20
# A queue ticket older than this is refused (minutes).
ticket_max_age_mins = 120
# Base of the jittered Retry-After of refused requests (seconds).
retry_after_secs = 2
# A waiter whose turn is expected within lobby_hold_secs has their page's
# refresh held until it comes, then answered at once (0: never held); at most
# lobby_max_held at once, each holding a connection.
lobby_hold_secs = 5
lobby_max_held = 2000
# Requests in flight per kind of work; 0 derives it from the cores.
bulkhead_reads = 0
bulkhead_writes = 0
# Sign-ins waiting for a password hash, per lane (teachers and staff first).
bulkhead_sign_in = 0
bulkhead_uploads = 0
bulkhead_pre_login = 0
# Connections: header, body and idle timeouts (seconds), most open
# connections, largest request body (bytes).
header_timeout_secs = 10
body_timeout_secs = 10
idle_timeout_secs = 60
max_connections = 10000
max_request_bytes = 104857600
# Surge is not attack: failed sign-ins are counted per address (never plain
# requests: a school's pupils share one address). Past challenge_failures
# recent failures (halving every failure_half_life_secs), and only under load
# unless challenge_only_under_load = false, sign-ins from that address first
# solve a light proof of work in the browser, or wait a few seconds without
# JavaScript. Nobody is blocked. Off by default.
challenge_enabled = false
challenge_only_under_load = true
challenge_failures = 20
failure_half_life_secs = 600
"#;

impl SurgeSettings {
    /// Applies `ARDOISE_SURGE_<NAME>`; other names are not this table's.
    pub fn apply_env(&mut self, name: &str, value: &str) -> Result<(), ConfigError> {
        let Some(field) = name.strip_prefix("ARDOISE_SURGE_") else {
            return Ok(());
        };
        let field = field.to_ascii_lowercase();
        let err = |message: String| ConfigError::Env {
            name: name.to_string(),
            message,
        };
        let mut table = toml::Value::try_from(&*self).map_err(|e| err(e.to_string()))?;
        let slot = table
            .as_table_mut()
            .and_then(|t| t.get_mut(&field))
            .ok_or_else(|| err("no such surge setting".into()))?;
        let v = value.trim();
        *slot = match slot {
            toml::Value::Boolean(_) => toml::Value::Boolean(match v {
                "1" | "true" | "yes" => true,
                "0" | "false" | "no" | "" => false,
                _ => return Err(err(format!("'{v}' is not true or false"))),
            }),
            toml::Value::Integer(_) => toml::Value::Integer(
                v.parse()
                    .map_err(|_| err(format!("'{v}' is not a number")))?,
            ),
            _ => toml::Value::String(value.to_string()),
        };
        *self = table
            .try_into()
            .map_err(|e: toml::de::Error| err(e.to_string()))?;
        Ok(())
    }

    /// The web layer's part.
    pub fn web(&self) -> ardoise_web::surge::SurgeConfig {
        let ms = Duration::from_millis;
        let secs = Duration::from_secs;
        let auto = |n: u64| (n > 0).then_some(n);
        ardoise_web::surge::SurgeConfig {
            enabled: self.enabled,
            secret: ardoise_web::surge::Secret(self.token_key.0.clone()),
            codel_target: ms(self.codel_target_ms),
            prelogin_target: ms(self.prelogin_target_ms),
            codel_interval: ms(self.codel_interval_ms.max(1)),
            users_floor: self.users_floor,
            users_ceiling: self.users_ceiling,
            users_initial: self.users_initial,
            users_overload_percent: self.users_overload_percent.min(100),
            staff_share_percent: self.staff_share_percent.min(100),
            active_window: secs(self.active_secs),
            pass_idle: secs(self.pass_idle_mins.saturating_mul(60)),
            ticket_max_age: secs(self.ticket_max_age_mins.saturating_mul(60)),
            retry_after_secs: self.retry_after_secs,
            lobby_hold: secs(self.lobby_hold_secs.min(60)),
            lobby_max_held: self.lobby_max_held,
            bulkhead_reads: auto(self.bulkhead_reads),
            bulkhead_writes: auto(self.bulkhead_writes),
            bulkhead_sign_in: auto(self.bulkhead_sign_in),
            bulkhead_uploads: auto(self.bulkhead_uploads),
            bulkhead_pre_login: auto(self.bulkhead_pre_login),
            header_timeout: secs(self.header_timeout_secs.max(1)),
            body_timeout: secs(self.body_timeout_secs.max(1)),
            idle_timeout: secs(self.idle_timeout_secs.max(1)),
            max_connections: self.max_connections.max(1),
            max_request_bytes: self.max_request_bytes,
            challenge: ardoise_web::surge::ChallengePolicy {
                enabled: self.challenge_enabled,
                only_under_load: self.challenge_only_under_load,
                threshold: self.challenge_failures.max(1) as f64,
                ..ardoise_web::surge::ChallengePolicy::default()
            },
            failure_half_life: secs(self.failure_half_life_secs.max(1)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_sets_surge_settings_and_refuses_bad_values() {
        let mut s = SurgeSettings::default();
        assert!(s.apply_env("ARDOISE_SURGE_ENABLED", "false").is_ok());
        assert!(s.apply_env("ARDOISE_SURGE_USERS_CEILING", "300").is_ok());
        assert!(s.apply_env("ARDOISE_SURGE_TOKEN_KEY", "s3cret").is_ok());
        assert!(!s.enabled);
        assert_eq!(s.users_ceiling, 300);
        assert_eq!(s.token_key.0, "s3cret");
        assert!(!format!("{s:?}").contains("s3cret"));
        assert!(s.apply_env("ARDOISE_SURGE_USERS_FLOOR", "many").is_err());
        assert!(s.apply_env("ARDOISE_SURGE_NO_SUCH_THING", "1").is_err());
        assert!(s
            .apply_env("ARDOISE_SURGE_STAFF_SHARE_PERCENT", "300")
            .is_err());
    }
}
