//! Black-box tests of the HTTP application, on the store chosen by
//! `ARDOISE_TEST_DATABASE_URL` (SQLite by default; CI runs both).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod access_matrix;
mod accounts;
mod diary;
mod errors;
mod groups;
mod signin;
mod surge;
mod time_zone;
mod work;
// Documents (issue 5).
mod documents;
// Messaging, announcements and the timeline (issue 4).
mod messages;
