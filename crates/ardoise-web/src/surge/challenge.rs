//! Surge is not attack, wired: failed sign-ins counted per address, and
//! the light proof of work (or, without JavaScript, a short wait) asked of
//! an address with many of them, only on the unauthenticated sign-in
//! routes and, by default, only while the node is under load. The rules
//! live in `ardoise_admission::challenge`; this module reads and writes
//! the cookies and headers and builds the refusals.
//!
//! A browser gets the challenge in an HttpOnly cookie when it opens the
//! sign-in page; the page's small script (`/static/challenge.js`) finds
//! the answer before the form is sent and puts it in a cookie; without
//! JavaScript, the form is accepted once the challenge's delay has passed.
//! An API client is told `429` with the challenge in JSON and answers with
//! the `X-Ardoise-Challenge` and `X-Ardoise-Challenge-Solution` headers.

use super::admission::{append_cookie, wants_json};
use super::Surge;
use ardoise_admission::{ChallengeError, Requirement};
use axum::extract::{ConnectInfo, Request};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering;

pub use ardoise_admission::challenge::{leading_zero_bits, solve};

/// HttpOnly cookie with the signed challenge.
pub const CHALLENGE_COOKIE: &str = "ardoise_challenge";
/// Cookie the page's script writes with its answer.
pub const SOLUTION_COOKIE: &str = "ardoise_challenge_solution";
/// The challenge, for API clients.
pub const CHALLENGE_HEADER: &str = "x-ardoise-challenge";
/// The answer, for API clients.
pub const SOLUTION_HEADER: &str = "x-ardoise-challenge-solution";

/// What the sign-in page shows when its visitor's address owes work
/// (a request extension the sign-in handlers read).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChallengeShown {
    /// The signed challenge (also in the HttpOnly cookie).
    pub token: String,
    /// Zero bits the script must find.
    pub bits: u8,
    /// Seconds to wait without JavaScript.
    pub wait_secs: u8,
}

/// The routes that check a password or an activation code.
pub(crate) fn hashes_a_secret(method: &Method, path: &str) -> bool {
    *method == Method::POST && matches!(path, "/login" | "/activate" | "/api/v1/session")
}

/// The pages that carry a sign-in form.
fn shows_a_form(method: &Method, path: &str) -> bool {
    matches!(*method, Method::GET | Method::HEAD) && matches!(path, "/login" | "/activate")
}

/// The client's address as the counting key: an IPv4 address, or the /64
/// of an IPv6 one (a client chooses freely within its /64).
pub(crate) fn address_key(req: &Request) -> Vec<u8> {
    match req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
    {
        Some(IpAddr::V4(v4)) => v4.octets().to_vec(),
        Some(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.octets().to_vec(),
            None => v6.octets()[..8].to_vec(),
        },
        None => Vec::new(),
    }
}

/// Whether a sign-in answer with `status` was a failure to count.
pub(crate) fn is_failure(status: StatusCode) -> bool {
    matches!(status.as_u16(), 400 | 401 | 403 | 422 | 429)
}

/// What the middleware does with a pre-login request.
pub(crate) enum Step {
    /// Nothing owed: go on.
    Pass,
    /// Go on, showing the challenge (set its cookie if `new`).
    Show(ChallengeShown, bool),
    /// Refused: this answer.
    Refuse(Response),
}

fn presented(headers: &HeaderMap) -> (Option<String>, Option<u64>) {
    let jar = CookieJar::from_headers(headers);
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let token = header(CHALLENGE_HEADER)
        .or_else(|| jar.get(CHALLENGE_COOKIE).map(|c| c.value().to_string()));
    let solution = header(SOLUTION_HEADER)
        .or_else(|| jar.get(SOLUTION_COOKIE).map(|c| c.value().to_string()))
        .and_then(|s| s.trim().parse::<u64>().ok());
    (token, solution)
}

impl Surge {
    /// Whether the node is under load for the challenge's purpose: a
    /// standing queue at either gate, or the sign-in bulkhead half full.
    fn under_load(&self) -> bool {
        let sign_in = self.bulkheads.get(ardoise_admission::BulkheadClass::SignIn);
        self.signed_in_gate.is_overloaded()
            || self.pre_login_gate.is_overloaded()
            || sign_in.in_flight() * 2 >= sign_in.limit().max(2)
    }

    fn requirement(&self, address: &[u8], now_ms: u64) -> Option<Requirement> {
        let policy = &self.config.challenge;
        if !policy.enabled || address.is_empty() {
            return None;
        }
        let failures = self.failure_sketch().failures(address, now_ms);
        policy.requirement(failures, self.under_load())
    }

    /// Counts a failed sign-in from `address`.
    pub(crate) fn record_sign_in_failure(&self, address: &[u8], now_ms: u64) {
        self.counters
            .sign_in_failures
            .fetch_add(1, Ordering::Relaxed);
        if !address.is_empty() {
            self.failure_sketch().record_failure(address, now_ms);
        }
    }

    /// The challenge step for a pre-login request.
    pub(crate) fn challenge_step(&self, req: &Request, address: &[u8], now_ms: u64) -> Step {
        let (method, path) = (req.method(), req.uri().path());
        let form = shows_a_form(method, path);
        if !form && !hashes_a_secret(method, path) {
            return Step::Pass;
        }
        let Some(owed) = self.requirement(address, now_ms) else {
            return Step::Pass;
        };
        let (token, solution) = presented(req.headers());
        if form {
            // Keep a challenge that still meets what is owed (its wait has
            // been running); else issue a new one.
            let kept = token.filter(|t| {
                self.challenges
                    .open(t, address, now_ms)
                    .is_ok_and(|c| c.bits >= owed.bits && c.wait_secs >= owed.wait_secs)
            });
            let new = kept.is_none();
            let token = kept.unwrap_or_else(|| self.issue_challenge(owed, address, now_ms));
            return Step::Show(
                ChallengeShown {
                    token,
                    bits: owed.bits,
                    wait_secs: owed.wait_secs,
                },
                new,
            );
        }
        let checked = self
            .challenges
            .check(token.as_deref(), solution, owed, address, now_ms);
        match checked {
            Ok(c) => {
                self.counters
                    .challenges_passed
                    .fetch_add(1, Ordering::Relaxed);
                // A form shown again after this attempt carries the same
                // challenge, already answered.
                Step::Show(
                    ChallengeShown {
                        token: token.unwrap_or_default(),
                        bits: c.bits,
                        wait_secs: c.wait_secs,
                    },
                    false,
                )
            }
            Err(e) => {
                self.counters
                    .challenges_refused
                    .fetch_add(1, Ordering::Relaxed);
                // A challenge still running keeps its clock; anything else
                // gets a new one.
                let token = match (e, token) {
                    (ChallengeError::NotYet, Some(t)) => t,
                    _ => self.issue_challenge(owed, address, now_ms),
                };
                Step::Refuse(self.challenge_refusal(req, &token, owed, e))
            }
        }
    }

    fn issue_challenge(&self, owed: Requirement, address: &[u8], now_ms: u64) -> String {
        self.counters
            .challenges_issued
            .fetch_add(1, Ordering::Relaxed);
        self.challenges.issue(owed, address, now_ms)
    }

    pub(crate) fn challenge_cookie(&self, token: &str) -> Cookie<'static> {
        Cookie::build((CHALLENGE_COOKIE, token.to_string()))
            .path("/")
            .http_only(true)
            .same_site(SameSite::Lax)
            .secure(self.secure_cookies)
            .max_age(time::Duration::minutes(10))
            .build()
    }

    /// `429` with the challenge: JSON for API clients, else back to the
    /// form, which explains and carries the challenge.
    fn challenge_refusal(
        &self,
        req: &Request,
        token: &str,
        owed: Requirement,
        e: ChallengeError,
    ) -> Response {
        let mut resp = if wants_json(req.uri().path(), req.headers()) {
            let body = serde_json::json!({
                "error": "challenge_required",
                "reason": e.code(),
                "challenge": token,
                "bits": owed.bits,
                "wait_secs": owed.wait_secs,
                "message": "Too many failed sign-ins from this network: solve the challenge \
                            (SHA-256(challenge \":\" n) starting with `bits` zero bits, n in \
                            X-Ardoise-Challenge-Solution, the challenge in X-Ardoise-Challenge) \
                            or wait `wait_secs` seconds and send the challenge alone.",
            });
            (StatusCode::TOO_MANY_REQUESTS, axum::Json(body)).into_response()
        } else {
            let back = if req.uri().path() == "/activate" {
                "/activate"
            } else {
                "/login"
            };
            Redirect::to(back).into_response()
        };
        let h = resp.headers_mut();
        if let Ok(v) = HeaderValue::from_str(&owed.wait_secs.to_string()) {
            h.insert(header::RETRY_AFTER, v);
        }
        append_cookie(h, self.challenge_cookie(token));
        resp
    }
}

/// The page's policy when it carries the challenge's script.
pub(crate) const CSP_WITH_SCRIPT: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_secret_checking_routes_and_their_forms_are_concerned() {
        assert!(hashes_a_secret(&Method::POST, "/login"));
        assert!(hashes_a_secret(&Method::POST, "/api/v1/session"));
        assert!(hashes_a_secret(&Method::POST, "/activate"));
        assert!(!hashes_a_secret(&Method::GET, "/login"));
        assert!(!hashes_a_secret(&Method::POST, "/account/password"));
        assert!(shows_a_form(&Method::GET, "/login"));
        assert!(!shows_a_form(&Method::GET, "/todo"));
    }

    #[test]
    fn refusals_for_bad_credentials_count_and_successes_do_not() {
        assert!(is_failure(StatusCode::UNAUTHORIZED));
        assert!(is_failure(StatusCode::BAD_REQUEST));
        assert!(!is_failure(StatusCode::SEE_OTHER));
        assert!(!is_failure(StatusCode::OK));
        assert!(!is_failure(StatusCode::SERVICE_UNAVAILABLE));
    }
}
