//! Ardoise's surge layer as pure logic: who may come in, who waits in the
//! lobby and for how long, and which requests are refused when the node is
//! past its capacity (DESIGN.md, "How it survives the surge").
//!
//! - [`token`]: signed queue tickets and admission passes (cookie values),
//!   key rotation, expiry and the sliding renewal of passes.
//! - [`queue`]: the lobby, first come first served with O(1) state per
//!   lane, the staff lane's reserved share, the measured admission rate and
//!   honest wait estimates.
//! - [`limiter`]: capacity measured, not guessed: a CoDel-style gate on
//!   queueing delay, an AIMD limit on admitted users or in-flight requests,
//!   bulkheads per class of work and jittered `Retry-After` values.
//!
//! - [`challenge`]: surge is not attack: sign-in failures per address in
//!   fixed memory, and a light proof of work (or a wait, without
//!   JavaScript) asked of an address with many, only under load.
//!
//! This crate owns the rules and the numbers. It must not do I/O, read a
//! clock, draw random numbers, spawn tasks or know about HTTP: time is
//! always a parameter (`now_ms`, unix milliseconds, for what travels in a
//! token; `now`, a [`std::time::Duration`] since the node started, for the
//! limiter's monotonic measurements), and randomness is passed in as a
//! number. The web layer wires it to requests, cookies and metrics.

pub mod challenge;
pub mod departures;
pub mod limiter;
pub mod queue;
pub mod token;

pub use challenge::{ChallengeError, ChallengePolicy, ChallengeSigner, FailureSketch, Requirement};
pub use departures::Departures;
pub use limiter::{
    retry_after_secs, AdaptiveLimit, AdaptiveLimitConfig, Bulkhead, BulkheadClass, BulkheadLimits,
    Bulkheads, CodelConfig, CodelGate, Full, OwnedPermit, Permit, Verdict,
};
pub use queue::{
    split_slots, LaneSnapshot, LaneSplit, Lobby, LobbyConfig, LobbyPlan, Share, Standing,
};
pub use token::{
    AdmissionPass, ClientId, Lane, QueueTicket, Signer, SigningKey, TokenError, TokenLifetimes,
};
