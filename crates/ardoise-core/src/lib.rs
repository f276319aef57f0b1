//! Ardoise's shared vocabulary: identifiers, roles, the clock, the
//! authorization policy, password rules and sign-in throttling.
//!
//! Pure logic only: this crate performs no I/O and depends on neither sqlx
//! nor axum, so every rule here is tested with time passed in.

pub mod clock;
pub mod diary;
pub mod ids;
pub mod password;
pub mod policy;
pub mod role;
pub mod throttle;
// Messaging (issue 4).
pub mod messaging;

pub use clock::{Clock, ManualClock, SystemClock, UnixTime};
pub use ids::*;
pub use policy::{Actor, Audience};
pub use role::{Role, Roles};
// Documents (issue 5).
pub mod documents;
