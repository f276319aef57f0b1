//! The admission middleware: the first thing every request meets.
//!
//! In order, each step cheaper than what it protects:
//!
//! 1. probes (`/healthz`, `/readyz`, `/metrics`) pass untouched: a probe
//!    refused under load makes a balancer drop a node that still works;
//! 2. application routes need an admission pass. A newcomer gets one if
//!    there is room, else a queue ticket and the lobby. Writes of a
//!    signed-in user are never held back, and a valid pass is always
//!    honoured (renewed while the user is active). While others wait in
//!    line, a newcomer's sign-in page is the lobby too (its link for
//!    teachers and staff shows the form), and a password sign-in without a
//!    pass is marked [`InLine`]: the route checks teachers' and staff's
//!    passwords at once and answers pupils and parents
//!    [`ApiError::Queued`], which becomes their place in line;
//! 3. the CoDel gate of the request's traffic class (a valid session in
//!    the memory table, or not) refuses a request to be served that waited
//!    too long since its bytes arrived: `503` with a jittered
//!    `Retry-After`, no template, no database (the lobby's answers, password
//!    sign-ins and the staff's sign-in form are not shed);
//! 4. a bulkhead per class of work (reads, writes, sign-in, uploads,
//!    pre-login) bounds what is in flight.
//!
//! It must not touch the database, except to find the lane of a
//! remembered device whose session is not in memory yet (after a restart),
//! which the route would have loaded anyway (and the sign-in route looks
//! up the account of a sign-in marked [`InLine`] for its lane).

use super::challenge::{self, Step};
use super::pages::{self, Waiting};
use super::{conn, Refusal, Surge};
use crate::auth;
use crate::error::{ApiError, ErrorMark};
use crate::extract::request_token;
use crate::session::{LiveSession, Lookup};
use crate::state::AppState;
use ardoise_admission::{
    AdmissionPass, BulkheadClass, ClientId, Lane, LobbyPlan, OwnedPermit, QueueTicket, Standing,
    Verdict,
};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::Response;
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use rand::RngCore;
use std::sync::atomic::Ordering;
use std::sync::{Arc, MutexGuard};
use std::time::{Duration, Instant};

/// Cookie holding the admission pass.
pub const PASS_COOKIE: &str = "ardoise_pass";
/// Cookie holding the queue ticket.
pub const TICKET_COOKIE: &str = "ardoise_ticket";
/// The same tokens as headers, for API clients without cookies.
pub const PASS_HEADER: &str = "x-ardoise-pass";
/// See [`PASS_HEADER`].
pub const TICKET_HEADER: &str = "x-ardoise-ticket";

/// What a path is, for admission.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RouteKind {
    /// Health and metrics: never held back.
    Probe,
    /// Reachable without admission: sign-in, sign-out, activation,
    /// language, the root redirection, static files.
    PreLogin,
    /// Everything else needs an admission pass.
    App,
}

fn route_kind(path: &str) -> RouteKind {
    match path {
        "/healthz" | "/readyz" | "/metrics" => RouteKind::Probe,
        "/"
        | "/login"
        | "/logout"
        | "/activate"
        | "/language"
        | "/api/v1/session"
        | "/api/v1/openapi.json"
        | "/favicon.ico"
        | "/robots.txt" => RouteKind::PreLogin,
        p if p.starts_with("/static/") => RouteKind::PreLogin,
        _ => RouteKind::App,
    }
}

/// Put on a password sign-in's request while others wait in line and the
/// client holds no admission pass: a pupil's or parent's password is then
/// not checked ([`ApiError::Queued`], answered with the lobby).
#[derive(Debug, Clone, Copy)]
pub struct InLine;

/// Bodies above this size count as uploads.
const UPLOAD_BYTES: u64 = 1024 * 1024;

fn bulkhead_class(
    method: &Method,
    path: &str,
    headers: &HeaderMap,
    signed_in: bool,
) -> BulkheadClass {
    let hashes_a_password = *method == Method::POST
        && matches!(
            path,
            "/login" | "/activate" | "/api/v1/session" | "/account/password"
        );
    if hashes_a_password {
        return BulkheadClass::SignIn;
    }
    let multipart = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("multipart/") || ct == "application/offset+octet-stream");
    let large = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .is_some_and(|n| n > UPLOAD_BYTES);
    if multipart || large {
        BulkheadClass::Uploads
    } else if !signed_in {
        BulkheadClass::PreLogin
    } else if matches!(*method, Method::GET | Method::HEAD) {
        BulkheadClass::Reads
    } else {
        BulkheadClass::Writes
    }
}

/// Whether the caller wants JSON: the API, or an `Accept` asking for it.
pub(crate) fn wants_json(path: &str, headers: &HeaderMap) -> bool {
    path.starts_with("/api/")
        || headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|a| a.contains("application/json") && !a.contains("text/html"))
}

/// A pass to hand out with the response.
struct Grant {
    token: String,
    /// The ticket that led here is spent: remove its cookie.
    clear_ticket: bool,
}

enum Admission {
    /// Go on, with a new or renewed pass to set, if any.
    In(Option<Grant>),
    /// Wait in the lobby.
    Wait(Waiting),
}

/// Middleware: see the module documentation.
pub async fn admit(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let surge = &state.surge;
    if !surge.config.enabled {
        return next.run(req).await;
    }
    let kind = route_kind(req.uri().path());
    if kind == RouteKind::Probe {
        return next.run(req).await;
    }
    let now = surge.elapsed();
    let delay = req
        .extensions()
        .get::<conn::Arrival>()
        .map(conn::Arrival::queue_delay)
        .unwrap_or_default();
    let token = request_token(req.headers());
    let session = token
        .as_deref()
        .and_then(|t| match state.sessions.check(t, state.now()) {
            Lookup::Live(s) => Some(s),
            Lookup::Miss => None,
        });
    let counters = &surge.counters;
    let (gate, reason) = if session.is_some() {
        counters.with_session.fetch_add(1, Ordering::Relaxed);
        (&surge.signed_in_gate, Refusal::QueueDelaySignedIn)
    } else {
        counters.without_session.fetch_add(1, Ordering::Relaxed);
        (&surge.pre_login_gate, Refusal::QueueDelayPreLogin)
    };
    let checks_secret = challenge::hashes_a_secret(req.method(), req.uri().path());

    let now_ms = state.clock.now_ms();
    let address = challenge::address_key(&req);
    if let Some(s) = session.as_deref() {
        surge
            .mix
            .signed_in_request(s.actor.person_id.0, &address, now_ms);
    }
    // Surge is not attack: failed sign-ins counted per address, and work
    // asked of an address with many, on the pre-login routes only.
    let mut shown = None;
    if kind == RouteKind::PreLogin {
        match surge.challenge_step(&req, &address, now_ms) {
            Step::Pass => {}
            Step::Show(c, new) => {
                shown = Some((c.token.clone(), new));
                req.extensions_mut().insert(c);
            }
            Step::Refuse(resp) => return resp,
        }
    }

    let mut grant = None;
    // How long this request was held for its turn (see `hold`).
    let mut held_for = None;
    // While others wait in line, a newcomer's sign-in form is the lobby
    // (unless asked for the teachers' and staff's line) and a pupil's or
    // parent's password is not checked before their turn.
    let signs_in = checks_secret && matches!(req.uri().path(), "/login" | "/api/v1/session");
    let form = login_form(req.uri()).filter(|_| *req.method() == Method::GET);
    let staff_form = form == Some(LoginForm::Staff);
    let sign_in_form = form == Some(LoginForm::General);
    let mut in_line = None;
    // Where the client waits in line, if they do.
    let mut waiting = None;
    if session.is_none() && (signs_in || sign_in_form) {
        match sign_in_standing(&state, req.headers(), sign_in_form) {
            SignInStanding::Go(g) => grant = g,
            SignInStanding::InLine(Some(w)) => waiting = Some(w),
            SignInStanding::InLine(None) => {
                in_line = Some((
                    req.headers().clone(),
                    req.uri().path().to_string(),
                    pages::BusyFor::of(&req),
                ));
                req.extensions_mut().insert(InLine);
            }
        }
    }
    // The sign-in form is not an application page: one of the two, at most,
    // has put the client in line.
    if kind == RouteKind::App {
        match admit_user(
            &state,
            req.method(),
            req.headers(),
            session.as_deref(),
            token.as_deref(),
        )
        .await
        {
            Admission::In(g) => grant = g,
            Admission::Wait(w) => waiting = Some(w),
        }
    }
    if let Some(waiting) = waiting {
        match lobby_or_turn(
            &state,
            req.method(),
            req.headers(),
            req.uri().path(),
            waiting,
        )
        .await
        {
            Ok((g, held)) => {
                grant = Some(g);
                held_for = Some(held);
            }
            Err(lobby) => return lobby,
        }
    }

    // The delay gate sheds what would be served: a lobby answer above
    // costs no more than the refusal would, and keeps the waiter's place
    // in view. A password sign-in is not shed for its wait either (its own
    // bulkhead and the lanes of the password-hash queue bound it), nor is
    // the teachers' and staff's sign-in form: their sign-ins must get
    // through a storm, and a shed one comes back seconds later.
    let json = wants_json(req.uri().path(), req.headers());
    // A waiter who was just let in after a held refresh is not shed
    // either: their place is taken, and the wait was the hold's, not the
    // node's. Nor is one let in as their page came back by itself: shed,
    // they would come back only after the refusal's Retry-After (2 to 4 s,
    // jittered), behind those who queued after them.
    let entering = grant.as_ref().is_some_and(|g| g.clear_ticket);
    if held_for.is_none() {
        if !(checks_secret || staff_form || entering) && gate.check(delay, now) == Verdict::Shed {
            surge.count(reason);
            // A shed request is a queue the delay samples may not show. Not
            // one shed before sign-in: a flood of those (their target is
            // lower) must not shrink the places of signed-in users, whose
            // own requests are shed too when the node is really full.
            if reason == Refusal::QueueDelaySignedIn {
                surge.users.record_overload();
            }
            return with_pass(surge, pages::busy(surge, &req), grant.as_ref(), json);
        }
        surge.users.observe(delay, surge.admitted.total(), now);
    }

    let class = bulkhead_class(
        req.method(),
        req.uri().path(),
        req.headers(),
        session.is_some(),
    );
    let permit = match surge.bulkheads.get(class).try_acquire_owned() {
        Ok(p) => p,
        Err(full) => {
            // A full bulkhead shows a bottleneck past the delay gate (the
            // database, the CPU after the first poll): admit fewer users.
            // Sign-in's own queue filling up is its normal state in a storm.
            if full.class != BulkheadClass::SignIn {
                surge.users.record_overload();
            }
            // A waiter let in a moment ago waits a little for room rather
            // than meet a refusal after the line: those whose turns came
            // together arrive together.
            let since = Instant::now();
            let waited = if entering {
                wait_for_room(surge, class).await
            } else {
                None
            };
            match waited {
                // Still the line's wait, and said so with the hold's.
                Some(p) => {
                    held_for = Some(held_for.unwrap_or_default() + since.elapsed());
                    p
                }
                None => {
                    surge.count(Refusal::Bulkhead(full.class));
                    return with_pass(surge, pages::busy(surge, &req), grant.as_ref(), json);
                }
            }
        }
    };
    let busy = (class == BulkheadClass::SignIn).then(|| pages::BusyFor::of(&req));
    let mut resp = next.run(req).await;
    drop(permit);
    if let Some((headers, path, busy)) = in_line {
        let queued = resp
            .extensions()
            .get::<ErrorMark>()
            .is_some_and(|m| m.code == ApiError::Queued.code());
        if queued {
            return match admit_user(&state, &Method::GET, &headers, None, None).await {
                Admission::Wait(waiting) => {
                    surge.count(Refusal::Queued);
                    pages::lobby_for(&state, &headers, &path, &waiting)
                }
                // The line moved on meanwhile: in, and to try again at once.
                Admission::In(g) => {
                    let mut resp = pages::busy_for(surge, &busy);
                    if let Some(g) = g {
                        append_cookie(resp.headers_mut(), surge.pass_cookie(&g.token));
                    }
                    resp
                }
            };
        }
    }
    if let Some(busy) = busy {
        // The password-hash queue of the sign-in's lane was full (teachers
        // and staff queue apart, first): the same refusal as a full
        // bulkhead, with its `Retry-After`.
        let queue_full = resp
            .extensions()
            .get::<ErrorMark>()
            .is_some_and(|m| m.code == ApiError::Busy.code());
        if queue_full {
            surge.count(Refusal::Bulkhead(BulkheadClass::SignIn));
            return with_pass(surge, pages::busy_for(surge, &busy), grant.as_ref(), json);
        }
    }
    if checks_secret {
        let failed = challenge::is_failure(resp.status());
        surge.mix.sign_in(failed, now_ms);
        if failed {
            surge.record_sign_in_failure(&address, now_ms);
        }
    }
    if let Some((token, new)) = shown {
        let h = resp.headers_mut();
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(challenge::CSP_WITH_SCRIPT),
        );
        if new {
            append_cookie(h, surge.challenge_cookie(&token));
        }
    }
    if let Some(held) = held_for {
        resp = server_timing(resp, held);
    }
    with_pass(surge, resp, grant.as_ref(), json)
}

/// `resp` with the pass of `grant`, if any (and the spent ticket's cookie
/// removed). A request refused after its user was let in carries it too:
/// the place is theirs, and their retry must not ask for another.
fn with_pass(surge: &Surge, mut resp: Response, grant: Option<&Grant>, json: bool) -> Response {
    if let Some(g) = grant {
        let h = resp.headers_mut();
        append_cookie(h, surge.pass_cookie(&g.token));
        if g.clear_ticket {
            append_cookie(h, surge.expired_ticket_cookie());
        }
        if json {
            if let Ok(v) = HeaderValue::from_str(&g.token) {
                h.insert(PASS_HEADER, v);
            }
        }
    }
    resp
}

/// The lobby's answer to `waiting`, unless their refresh, held, ends with
/// their turn: then their pass, and how long the refresh was held.
async fn lobby_or_turn(
    state: &AppState,
    method: &Method,
    headers: &HeaderMap,
    path: &str,
    waiting: Waiting,
) -> Result<(Grant, Duration), Response> {
    let held = hold(state, method, &waiting).await;
    if !matches!(held, Held::In(..)) {
        state.surge.count(Refusal::Queued);
    }
    match held {
        Held::In(g, held) => Ok((g, held)),
        Held::Wait(again, held) => Err(server_timing(
            pages::lobby_for(state, headers, path, &again),
            held,
        )),
        Held::Not => Err(pages::lobby_for(state, headers, path, &waiting)),
    }
}

/// How a waiter's refresh was held.
enum Held {
    /// Not held (not near the front, not a page, or too many held already):
    /// answer with the lobby now.
    Not,
    /// Their turn came: in, with this pass, after waiting this long.
    In(Grant, Duration),
    /// The hold ended first: the lobby again, after waiting this long.
    Wait(Waiting, Duration),
}

/// Holds the refresh of a waiter near the front (see [`super::hold`])
/// until the front of their lane passes them or the hold ends. Only pages
/// (`GET`, `HEAD`) are held: another method's body would wait with them.
async fn hold(state: &AppState, method: &Method, waiting: &Waiting) -> Held {
    let surge = &state.surge;
    let Some(ticket) = waiting.near else {
        return Held::Not;
    };
    if !matches!(*method, Method::GET | Method::HEAD) {
        return Held::Not;
    }
    let Some(_permit) = surge.holds.try_hold() else {
        return Held::Not;
    };
    let started = Instant::now();
    let deadline = started + surge.config.lobby_hold;
    // Counted while held once found late (see `Looked::Late`).
    let mut late = None;
    loop {
        // Registered before looking at the front: a move in between wakes it.
        let notified = surge.holds.bucket(ticket.lane, ticket.seq).notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        // Only late returners wait on their lane's one wake-up (the others
        // are spread over the buckets).
        let freed = late
            .is_some()
            .then(|| surge.holds.late(ticket.lane).notified());
        tokio::pin!(freed);
        if let Some(f) = freed.as_mut().as_pin_mut() {
            f.enable();
        }
        let now = Instant::now();
        match look_again(state, &ticket, &waiting.ticket, now >= deadline) {
            Some(Looked::In(grant)) => return Held::In(grant, started.elapsed()),
            Some(Looked::Wait(again)) => return Held::Wait(again, started.elapsed()),
            Some(Looked::Gone) => return Held::Not,
            Some(Looked::Late) if late.is_none() => {
                late = Some(surge.holds.hold_late(ticket.lane));
                // Look again at once, registered for their wake-up.
                continue;
            }
            Some(Looked::Late) | None => {}
        }
        // Places free when a sweep (five times a second) or a request finds
        // them, not only when another request moves the front: look again
        // at least once a second.
        let next_look = deadline.min(now + Duration::from_secs(1));
        tokio::select! {
            () = &mut notified => {}
            () = async {
                match freed.as_mut().as_pin_mut() {
                    Some(f) => f.await,
                    None => std::future::pending().await,
                }
            } => {}
            () = tokio::time::sleep_until(next_look.into()) => {}
        }
    }
}

/// How long a user just let in from the line waits for room in a full
/// bulkhead before being refused.
const ENTRY_WAIT: Duration = Duration::from_secs(1);

/// A permit of `class` within [`ENTRY_WAIT`], looked for every 20 ms;
/// `None`: still full.
async fn wait_for_room(surge: &Surge, class: BulkheadClass) -> Option<OwnedPermit> {
    let until = Instant::now() + ENTRY_WAIT;
    while Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(20)).await;
        if let Ok(p) = surge.bulkheads.get(class).try_acquire_owned() {
            return Some(p);
        }
    }
    None
}

/// What a held waiter found on looking at the front again.
enum Looked {
    /// Their turn has come.
    In(Grant),
    /// Still waiting, and the hold is over.
    Wait(Waiting),
    /// Back late to a full node: hold on, first in line for a place.
    Late,
    /// The ticket is not of this lobby.
    Gone,
}

/// Moves the front if places freed, and says where the holder of `ticket`
/// (signed as `text`) stands; `None`: still waiting, hold on (unless
/// `last`, the end of the hold).
fn look_again(state: &AppState, ticket: &QueueTicket, text: &str, last: bool) -> Option<Looked> {
    let surge = &state.surge;
    let now_ms = state.clock.now_ms();
    surge
        .admitted
        .sweep_if_due(now_ms, surge.config.active_window);
    let mut lobby = surge.lobby();
    surge.admit_waiting(&mut lobby, now_ms);
    match lobby.standing(ticket) {
        Standing::Enter => match surge.take_turn(lobby, ticket, now_ms) {
            Ok(grant) => Some(Looked::In(grant)),
            Err(lobby) if last => Some(Looked::Wait(surge.late_waiting(
                &lobby,
                ticket,
                text.to_string(),
                now_ms,
            ))),
            Err(_) => Some(Looked::Late),
        },
        Standing::Wait { position } if last => Some(Looked::Wait(surge.waiting(
            &lobby,
            ticket,
            text.to_string(),
            position,
            now_ms,
        ))),
        Standing::Wait { .. } => None,
        Standing::OtherEpoch => Some(Looked::Gone),
    }
}

/// `resp` with the time it was held for, as `Server-Timing: lobby;dur=`
/// (milliseconds): browsers show it in their developer tools, and the load
/// generator tells the node's service time from the waiter's wait by it.
fn server_timing(mut resp: Response, held: Duration) -> Response {
    let value = format!("lobby;dur={:.1}", held.as_secs_f64() * 1_000.0);
    if let Ok(v) = HeaderValue::from_str(&value) {
        resp.headers_mut().append(SERVER_TIMING, v);
    }
    resp
}

/// The `Server-Timing` header (W3C Server Timing).
const SERVER_TIMING: HeaderName = HeaderName::from_static("server-timing");

pub(crate) fn append_cookie(headers: &mut HeaderMap, cookie: Cookie<'static>) {
    if let Ok(v) = HeaderValue::from_str(&cookie.to_string()) {
        headers.append(header::SET_COOKIE, v);
    }
}

/// A token from its header, else its cookie.
fn presented(
    headers: &HeaderMap,
    jar: &CookieJar,
    header_name: &str,
    cookie: &str,
) -> Option<String> {
    headers
        .get(header_name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or_else(|| jar.get(cookie).map(|c| c.value().to_string()))
}

fn lane_of(session: &LiveSession) -> Lane {
    if session.actor.roles.is_staff_lane() {
        Lane::Staff
    } else {
        Lane::General
    }
}

/// A valid admission pass presented: the user is in (touched in the
/// admitted table), with a renewed pass if it is due. `None`: no valid pass.
fn valid_pass(
    surge: &Surge,
    headers: &HeaderMap,
    jar: &CookieJar,
    now_ms: u64,
) -> Option<Option<Grant>> {
    let text = presented(headers, jar, PASS_HEADER, PASS_COOKIE)?;
    match surge.signer.verify_pass(&text, now_ms) {
        Ok(pass) => {
            surge.admitted.touch(pass.client, pass.lane, now_ms);
            let renewed = surge
                .signer
                .is_due_for_renewal(&pass, now_ms)
                .then(|| surge.signer.renew(&pass, now_ms).ok())
                .flatten();
            Some(renewed.map(|p| Grant {
                token: surge.signer.sign_pass(&p),
                clear_ticket: false,
            }))
        }
        Err(_) => {
            token_refused(surge);
            None
        }
    }
}

fn token_refused(surge: &Surge) {
    surge
        .counters
        .tokens_refused
        .fetch_add(1, Ordering::Relaxed);
}

/// A valid queue ticket presented, with its text.
fn valid_ticket(
    surge: &Surge,
    headers: &HeaderMap,
    jar: &CookieJar,
    now_ms: u64,
) -> Option<(QueueTicket, String)> {
    let text = presented(headers, jar, TICKET_HEADER, TICKET_COOKIE)?;
    match surge.signer.verify_ticket(&text, now_ms) {
        Ok(t) => Some((t, text)),
        Err(_) => {
            token_refused(surge);
            None
        }
    }
}

/// Where a newcomer signing in with a password (or asking for the form)
/// stands while others wait in line: pupils and parents do not have their
/// password checked before their turn (the hash is the costliest thing
/// the node does, and a sign-in refused in a storm comes back again and
/// again), teachers and staff go on (their lane is found from the login).
enum SignInStanding {
    /// Nobody waits, or this client's turn has come (with the pass to set).
    Go(Option<Grant>),
    /// Others wait: take one's place in the general line first. For the
    /// form, the lobby answer (a new ticket if the client had none); for a
    /// password sign-in, none yet (a teacher's is checked at once).
    InLine(Option<Waiting>),
}

fn sign_in_standing(state: &AppState, headers: &HeaderMap, form: bool) -> SignInStanding {
    let surge = &state.surge;
    let now_ms = state.clock.now_ms();
    let jar = CookieJar::from_headers(headers);
    if let Some(renewed) = valid_pass(surge, headers, &jar, now_ms) {
        return SignInStanding::Go(renewed);
    }
    surge
        .admitted
        .sweep_if_due(now_ms, surge.config.active_window);
    let mut lobby = surge.lobby();
    surge.admit_waiting(&mut lobby, now_ms);
    if let Some((t, text)) = valid_ticket(surge, headers, &jar, now_ms) {
        match lobby.standing(&t) {
            // The form, asked for late to a full node, waits first in
            // line; a password typed is checked.
            Standing::Enter if form => {
                return match surge.take_turn(lobby, &t, now_ms) {
                    Ok(grant) => SignInStanding::Go(Some(grant)),
                    Err(lobby) => {
                        SignInStanding::InLine(Some(surge.late_waiting(&lobby, &t, text, now_ms)))
                    }
                }
            }
            Standing::Enter => return SignInStanding::Go(Some(surge.enter(lobby, &t, now_ms))),
            Standing::Wait { position } => {
                return SignInStanding::InLine(
                    form.then(|| surge.waiting(&lobby, &t, text, position, now_ms)),
                )
            }
            Standing::OtherEpoch => {}
        }
    }
    if lobby.backlog(Lane::General) > 0 {
        SignInStanding::InLine(form.then(|| surge.new_ticket(lobby, Lane::General, now_ms)))
    } else {
        SignInStanding::Go(None)
    }
}

/// Which sign-in form a request for `uri` asks for, if it asks for one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LoginForm {
    /// `/login`: while others wait in line, a newcomer's is the lobby.
    General,
    /// `/login?lane=staff`, the teachers' and staff's line (the lobby's
    /// and the busy page's link for them): shown at once, never shed.
    Staff,
}

/// The sign-in form `uri` asks for (whatever the method), if any.
pub(crate) fn login_form(uri: &axum::http::Uri) -> Option<LoginForm> {
    if uri.path() != "/login" {
        return None;
    }
    let staff = uri
        .query()
        .is_some_and(|q| q.split('&').any(|p| p == "lane=staff"));
    Some(if staff {
        LoginForm::Staff
    } else {
        LoginForm::General
    })
}

async fn admit_user(
    state: &AppState,
    method: &Method,
    headers: &HeaderMap,
    session: Option<&LiveSession>,
    token: Option<&str>,
) -> Admission {
    let surge = &state.surge;
    let now_ms = state.clock.now_ms();
    let jar = CookieJar::from_headers(headers);
    if let Some(renewed) = valid_pass(surge, headers, &jar, now_ms) {
        return Admission::In(renewed);
    }
    surge
        .admitted
        .sweep_if_due(now_ms, surge.config.active_window);

    // A remembered device whose session is not in memory yet: load it now
    // (the route would) to know its lane.
    let loaded: Option<Arc<LiveSession>> = match (session, token) {
        (None, Some(t)) if t.len() == 43 => auth::resolve(state, t).await.ok().flatten(),
        _ => None,
    };
    let session = session.or(loaded.as_deref());
    let session_lane = session.map(lane_of);

    // A signed-in user's writes are never held back: a teacher half-way
    // through writing homework whose pass expired is let in again.
    if session.is_some() && !matches!(*method, Method::GET | Method::HEAD) {
        let lane = session_lane.unwrap_or(Lane::General);
        return Admission::In(Some(surge.grant(lane, now_ms, false, false)));
    }

    let ticket = valid_ticket(surge, headers, &jar, now_ms);
    // A general ticket does not hold a teacher back once signed in.
    let ticket =
        ticket.filter(|(t, _)| !(session_lane == Some(Lane::Staff) && t.lane == Lane::General));

    let mut lobby = surge.lobby();
    surge.admit_waiting(&mut lobby, now_ms);
    if let Some((t, text)) = ticket {
        match lobby.standing(&t) {
            Standing::Enter => {
                return match surge.take_turn(lobby, &t, now_ms) {
                    Ok(grant) => Admission::In(Some(grant)),
                    Err(lobby) => Admission::Wait(surge.late_waiting(&lobby, &t, text, now_ms)),
                }
            }
            Standing::Wait { position } => {
                return Admission::Wait(surge.waiting(&lobby, &t, text, position, now_ms))
            }
            Standing::OtherEpoch => {}
        }
    }
    let lane = session_lane.unwrap_or(Lane::General);
    let free = surge
        .free_places(&lobby, lane)
        .saturating_sub(surge.holds.late_held(lane));
    if lobby.may_enter_directly(lane, free, now_ms) {
        drop(lobby);
        return Admission::In(Some(surge.grant(lane, now_ms, false, false)));
    }
    Admission::Wait(surge.new_ticket(lobby, lane, now_ms))
}

/// The lobby answer for the holder of `ticket` (signed as `text`) at
/// `position`, told `plan`; their refresh may be held if the plan says
/// their turn is near.
fn lobby_answer(ticket: &QueueTicket, text: String, position: u64, plan: LobbyPlan) -> Waiting {
    Waiting {
        lane: ticket.lane,
        position,
        estimate: plan.estimate,
        refresh: plan.refresh,
        ticket: text,
        new_ticket: false,
        near: plan.near.then_some(*ticket),
    }
}

impl Surge {
    /// The lobby answer for the holder of `ticket` (signed as `text`),
    /// waiting at `position`.
    fn waiting(
        &self,
        lobby: &ardoise_admission::Lobby,
        ticket: &QueueTicket,
        text: String,
        position: u64,
        now_ms: u64,
    ) -> Waiting {
        let plan = self.plan(lobby, ticket.lane, position, now_ms);
        lobby_answer(ticket, text, position, plan)
    }

    /// The lobby answer for the holder of `ticket` (signed as `text`), back
    /// late to a full node: next in line, their refresh held if it can be
    /// (the places that free go to late returners held first).
    fn late_waiting(
        &self,
        lobby: &ardoise_admission::Lobby,
        ticket: &QueueTicket,
        text: String,
        now_ms: u64,
    ) -> Waiting {
        let plan = self.late_plan(lobby, ticket.lane, now_ms);
        Waiting {
            near: Some(*ticket),
            ..lobby_answer(ticket, text, 1, plan)
        }
    }

    /// A new ticket at the back of `lane`, and its lobby answer (signed
    /// once the lobby is let go).
    fn new_ticket(
        &self,
        mut lobby: MutexGuard<'_, ardoise_admission::Lobby>,
        lane: Lane,
        now_ms: u64,
    ) -> Waiting {
        let t = lobby.issue(lane, now_ms);
        self.counters.tickets_issued.fetch_add(1, Ordering::Relaxed);
        let position = match lobby.standing(&t) {
            Standing::Wait { position } => position,
            Standing::Enter | Standing::OtherEpoch => 1,
        };
        let waiting = self.waiting(&lobby, &t, String::new(), position, now_ms);
        drop(lobby);
        Waiting {
            ticket: self.signer.sign_ticket(&t),
            new_ticket: true,
            // A newcomer sees the lobby at once; their next visit may be held.
            near: None,
            ..waiting
        }
    }

    /// The pass of the holder of `ticket`, whose turn has come, unless they
    /// come back late (the place granted to them went to someone else
    /// while they were away) to a node with no place free for their lane:
    /// then the lobby back (`Err`), and they wait first in line for the
    /// next place that frees. Let in past the limit, the late returners of
    /// a wave came back together and took the node far over it (seen at
    /// 10× load with every user resuming a session: 1,138 users in under
    /// a limit of 687, which then shrank while the node idled).
    fn take_turn<'a>(
        &self,
        mut lobby: MutexGuard<'a, ardoise_admission::Lobby>,
        ticket: &QueueTicket,
        now_ms: u64,
    ) -> Result<Grant, MutexGuard<'a, ardoise_admission::Lobby>> {
        if lobby.is_late(ticket, now_ms) && self.free_places(&lobby, ticket.lane) == 0 {
            return Err(lobby);
        }
        Ok(self.enter(lobby, ticket, now_ms))
    }

    /// The pass of the holder of `ticket`, whose turn has come: their entry
    /// is recorded (for the lobby's measured rate) and counted among the
    /// admitted before the lobby is let go (so that the next late returner
    /// sees the place taken).
    fn enter(
        &self,
        mut lobby: MutexGuard<'_, ardoise_admission::Lobby>,
        ticket: &QueueTicket,
        now_ms: u64,
    ) -> Grant {
        if !lobby.record_entry(ticket, now_ms) {
            self.counters.late_entries.fetch_add(1, Ordering::Relaxed);
        }
        let grant = self.grant(ticket.lane, now_ms, true, true);
        drop(lobby);
        grant
    }

    /// A new pass for a client entering `lane` now.
    fn grant(&self, lane: Lane, now_ms: u64, from_queue: bool, clear_ticket: bool) -> Grant {
        let mut id = [0u8; 16];
        rand::thread_rng().fill_bytes(&mut id);
        let pass = AdmissionPass::new(lane, ClientId::from_bytes(id), now_ms);
        self.admitted.touch(pass.client, lane, now_ms);
        let counter = if from_queue {
            &self.counters.passes_from_queue
        } else {
            &self.counters.passes_direct
        };
        counter.fetch_add(1, Ordering::Relaxed);
        Grant {
            token: self.signer.sign_pass(&pass),
            clear_ticket,
        }
    }

    fn cookie(
        &self,
        name: &'static str,
        value: String,
        max_age: std::time::Duration,
    ) -> Cookie<'static> {
        Cookie::build((name, value))
            .path("/")
            .http_only(true)
            .same_site(SameSite::Lax)
            .secure(self.secure_cookies)
            .max_age(time::Duration::seconds(
                i64::try_from(max_age.as_secs()).unwrap_or(i64::MAX),
            ))
            .build()
    }

    fn pass_cookie(&self, token: &str) -> Cookie<'static> {
        self.cookie(PASS_COOKIE, token.to_string(), self.config.pass_idle)
    }

    pub(crate) fn ticket_cookie(&self, token: &str) -> Cookie<'static> {
        self.cookie(TICKET_COOKIE, token.to_string(), self.config.ticket_max_age)
    }

    fn expired_ticket_cookie(&self) -> Cookie<'static> {
        self.cookie(TICKET_COOKIE, String::new(), std::time::Duration::ZERO)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probes_and_sign_in_pages_do_not_need_admission() {
        let cases = [
            ("/healthz", RouteKind::Probe),
            ("/metrics", RouteKind::Probe),
            ("/login", RouteKind::PreLogin),
            ("/api/v1/session", RouteKind::PreLogin),
            ("/static/app.css", RouteKind::PreLogin),
            ("/", RouteKind::PreLogin),
            ("/home", RouteKind::App),
            ("/todo", RouteKind::App),
            ("/api/v1/me", RouteKind::App),
            ("/admin/surge", RouteKind::App),
        ];
        for (path, kind) in cases {
            assert_eq!(route_kind(path), kind, "{path}");
        }
    }

    #[test]
    fn requests_fall_into_their_bulkhead() {
        let none = HeaderMap::new();
        let mut multipart = HeaderMap::new();
        multipart.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("multipart/form-data; boundary=x"),
        );
        let cases = [
            (Method::POST, "/login", &none, false, BulkheadClass::SignIn),
            (
                Method::POST,
                "/api/v1/session",
                &none,
                false,
                BulkheadClass::SignIn,
            ),
            (
                Method::POST,
                "/account/password",
                &none,
                true,
                BulkheadClass::SignIn,
            ),
            (Method::GET, "/login", &none, false, BulkheadClass::PreLogin),
            (Method::GET, "/todo", &none, true, BulkheadClass::Reads),
            (
                Method::POST,
                "/homework/1/done",
                &none,
                true,
                BulkheadClass::Writes,
            ),
            (
                Method::POST,
                "/documents",
                &multipart,
                true,
                BulkheadClass::Uploads,
            ),
        ];
        for (method, path, headers, signed_in, class) in cases {
            assert_eq!(
                bulkhead_class(&method, path, headers, signed_in),
                class,
                "{method} {path}"
            );
        }
    }

    #[test]
    fn api_paths_and_json_accept_headers_want_json() {
        let mut json = HeaderMap::new();
        json.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
        let mut browser = HeaderMap::new();
        browser.insert(
            header::ACCEPT,
            HeaderValue::from_static("text/html,application/xhtml+xml,application/json;q=0.9"),
        );
        assert!(wants_json("/api/v1/me", &HeaderMap::new()));
        assert!(wants_json("/todo", &json));
        assert!(!wants_json("/todo", &browser));
        assert!(!wants_json("/todo", &HeaderMap::new()));
    }
}
