//! The surge layer as people meet it: the lobby and its place in line, the
//! staff lane, API clients, tampered tokens, pre-login traffic, the
//! administrator's page. Capacity is made tiny so that a handful of
//! clients fill the node.

use ardoise_testkit::{client, csrf_in, spawn_app_with_surge, test_surge, Person, TestApp};
use ardoise_web::surge::SurgeConfig;
use serde_json::Value;

/// A node that admits exactly `users` users, `staff_percent` of them
/// reserved for teachers and staff.
fn capacity(users: u64, staff_percent: u8) -> SurgeConfig {
    SurgeConfig {
        users_floor: users,
        users_ceiling: users,
        users_initial: users,
        staff_share_percent: staff_percent,
        ..test_surge()
    }
}

/// `config` with a delay target of zero: every request has waited too
/// long.
fn every_request_late(config: SurgeConfig) -> SurgeConfig {
    SurgeConfig {
        codel_target: std::time::Duration::ZERO,
        prelogin_target: std::time::Duration::ZERO,
        codel_interval: std::time::Duration::from_micros(1),
        ..config
    }
}

/// What a browser shows after `GET path`.
#[derive(Debug, PartialEq)]
enum Seen {
    /// The page asked for (or where it led, such as the sign-in page).
    Page(u16),
    /// The lobby, at this place in line.
    Lobby(u64),
}

async fn visit(app: &TestApp, c: &reqwest::Client, path: &str) -> Seen {
    let resp = c.get(app.url(path)).send().await.unwrap();
    let status = resp.status().as_u16();
    let position = resp
        .headers()
        .get("x-ardoise-queue-position")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let body = resp.text().await.unwrap();
    match position {
        Some(p) => {
            assert!(
                body.contains(&format!("id=\"position\">{p}<")),
                "the lobby shows the place: {body}"
            );
            Seen::Lobby(p)
        }
        None => Seen::Page(status),
    }
}

/// A signed-in browser (the session cookie, no admission pass yet).
async fn browser(app: &TestApp, p: &Person) -> reqwest::Client {
    app.sign_in(p).await.0
}

#[tokio::test]
async fn a_newcomer_over_capacity_waits_in_a_small_lobby_that_shows_their_place() {
    let app = spawn_app_with_surge(capacity(1, 0)).await;
    let first = browser(&app, &app.seeded.pupil_a).await;
    assert_eq!(visit(&app, &first, "/home").await, Seen::Page(200));

    let second = browser(&app, &app.seeded.pupil_b).await;
    let resp = second.get(app.url("/todo")).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(resp.headers()["x-ardoise-queue-position"], "1");
    let refresh = resp.headers()["retry-after"].to_str().unwrap().to_string();
    let page = resp.text().await.unwrap();
    assert!(page.len() < 5 * 1024, "{} bytes", page.len());
    assert!(page.contains("Votre place dans la file"), "{page}");
    assert!(page.contains(&format!("http-equiv=\"refresh\" content=\"{refresh}\"")));
    assert!(page.contains("id=\"position\">1<"));
    assert!(!page.contains("<script"), "works without JavaScript");

    let english = client();
    let resp = english
        .get(app.url("/home"))
        .header("accept-language", "en")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["x-ardoise-queue-position"], "2");
    let page = resp.text().await.unwrap();
    assert!(page.contains("Your place in line"), "{page}");
    assert!(page.contains("cannot estimate the wait yet"));
}

#[tokio::test]
async fn reloading_or_opening_tabs_keeps_ones_place_and_never_jumps_ahead() {
    let app = spawn_app_with_surge(capacity(1, 0)).await;
    let admitted = browser(&app, &app.seeded.pupil_a).await;
    assert_eq!(visit(&app, &admitted, "/home").await, Seen::Page(200));
    let b = client();
    let c = client();
    assert_eq!(visit(&app, &b, "/home").await, Seen::Lobby(1));
    assert_eq!(visit(&app, &c, "/home").await, Seen::Lobby(2));
    for _ in 0..3 {
        // Reloads, and other pages in other tabs of the same browser.
        assert_eq!(visit(&app, &c, "/todo").await, Seen::Lobby(2));
        assert_eq!(visit(&app, &c, "/home").await, Seen::Lobby(2));
        assert_eq!(visit(&app, &b, "/home").await, Seen::Lobby(1));
    }
    // A fresh private window starts at the back, behind both.
    let private_window = client();
    assert_eq!(visit(&app, &private_window, "/home").await, Seen::Lobby(3));
    assert_eq!(visit(&app, &c, "/home").await, Seen::Lobby(2));
}

#[tokio::test]
async fn when_a_place_frees_the_first_in_line_gets_it() {
    let app = spawn_app_with_surge(capacity(1, 0)).await;
    let a = browser(&app, &app.seeded.pupil_a).await;
    assert_eq!(visit(&app, &a, "/home").await, Seen::Page(200));
    let b = browser(&app, &app.seeded.pupil_b).await;
    let c = browser(&app, &app.seeded.parent_a).await;
    assert_eq!(visit(&app, &b, "/home").await, Seen::Lobby(1));
    assert_eq!(visit(&app, &c, "/home").await, Seen::Lobby(2));
    // The first pupil goes quiet for longer than the active window.
    app.clock.advance(121);
    assert_eq!(visit(&app, &c, "/home").await, Seen::Lobby(1));
    assert_eq!(visit(&app, &b, "/home").await, Seen::Page(200));
    assert_eq!(visit(&app, &c, "/home").await, Seen::Lobby(1));
    // The quiet pupil comes back: still in, never cut off.
    assert_eq!(visit(&app, &a, "/todo").await, Seen::Page(200));
}

/// The wait a lobby answer tells, in milliseconds.
fn estimate_ms(resp: &reqwest::Response) -> u64 {
    resp.headers()["x-ardoise-estimated-wait-ms"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn a_waiter_behind_others_away_is_told_when_their_places_lapse_and_gets_in_then() {
    let app = spawn_app_with_surge(capacity(4, 0)).await;
    let x = browser(&app, &app.seeded.parent_a).await;
    let e = browser(&app, &app.seeded.parent_b).await;
    let a = browser(&app, &app.seeded.pupil_a).await;
    let b = browser(&app, &app.seeded.pupil_b).await;
    let anonymous = client();
    for user in [&a, &b, &anonymous, &x] {
        assert!(matches!(visit(&app, user, "/home").await, Seen::Page(_)));
    }
    // Six in line who will be away from their screens, then e.
    let away: Vec<_> = (0..6).map(|_| client()).collect();
    for (n, waiter) in away.iter().enumerate() {
        assert_eq!(
            visit(&app, waiter, "/home").await,
            Seen::Lobby(n as u64 + 1)
        );
    }
    assert_eq!(visit(&app, &e, "/home").await, Seen::Lobby(7));
    // All but the parent go quiet past the active window (10 s); the
    // parent reads on. The three places freed go to the first three in
    // line, who never come back: a few seconds later their places go to
    // the next three, away too.
    app.clock.advance(11);
    assert_eq!(visit(&app, &x, "/home").await, Seen::Page(200));
    assert_eq!(visit(&app, &e, "/home").await, Seen::Lobby(4));
    app.clock.advance(6);
    assert_eq!(visit(&app, &x, "/home").await, Seen::Page(200));
    // The node has seen granted places lapse, and holds few users: e is
    // told the wait until the three lapse, not until the parent leaves
    // (10 s from now).
    let told = e.get(app.url("/home")).send().await.unwrap();
    assert_eq!(told.headers()["x-ardoise-queue-position"], "1");
    let wait = estimate_ms(&told);
    assert!(
        (2_000..=7_000).contains(&wait),
        "told {wait} ms, not the 10 s until the parent leaves"
    );
    // Nobody came back: e gets in when told, and the parent reading on
    // is never cut off.
    app.clock
        .advance(i64::try_from(wait.div_ceil(1_000)).unwrap());
    assert_eq!(visit(&app, &e, "/home").await, Seen::Page(200));
    assert_eq!(visit(&app, &x, "/home").await, Seen::Page(200));
}

#[tokio::test]
async fn a_waiter_whose_turn_has_come_is_not_refused_for_the_node_being_busy() {
    // Every request has waited too long for the delay gate.
    let app = spawn_app_with_surge(every_request_late(capacity(1, 0))).await;
    let a = browser(&app, &app.seeded.pupil_a).await;
    // The first pupil takes the only place; their page is refused, the
    // node being busy, but they are in.
    let first = a.get(app.url("/home")).send().await.unwrap();
    assert_eq!(first.status().as_u16(), 503);
    assert!(set_cookie(&first, "ardoise_pass").is_some());
    let b = browser(&app, &app.seeded.pupil_b).await;
    assert_eq!(visit(&app, &b, "/home").await, Seen::Lobby(1));
    // The first pupil goes quiet: the second one's turn comes. Their page
    // is served, not refused after the line (they would come back after
    // the refusal's Retry-After, behind those who queued after them).
    app.clock.advance(121);
    let turn = b.get(app.url("/home")).send().await.unwrap();
    assert_eq!(turn.status().as_u16(), 200);
    assert!(set_cookie(&turn, "ardoise_pass").is_some());
    // Once in, they are refused like anyone else while the node is busy.
    let next = b.get(app.url("/todo")).send().await.unwrap();
    assert_eq!(next.status().as_u16(), 503);
}

/// The time a response says it was held for its turn (`Server-Timing:
/// lobby;dur=`), in milliseconds.
fn held_ms(resp: &reqwest::Response) -> Option<f64> {
    resp.headers()
        .get("server-timing")?
        .to_str()
        .ok()?
        .strip_prefix("lobby;dur=")?
        .parse()
        .ok()
}

/// A node of one place whose refreshes are held up to 3 s: the first
/// pupil is in, and eight seconds on (their place frees after 10 s quiet),
/// the second pupil's turn is expected within the hold.
async fn second_pupil_near_their_turn() -> (TestApp, reqwest::Client, reqwest::Client) {
    let app = spawn_app_with_surge(SurgeConfig {
        lobby_hold: std::time::Duration::from_secs(3),
        ..capacity(1, 0)
    })
    .await;
    let a = browser(&app, &app.seeded.pupil_a).await;
    let b = browser(&app, &app.seeded.pupil_b).await;
    assert_eq!(visit(&app, &a, "/home").await, Seen::Page(200));
    app.clock.advance(8);
    (app, a, b)
}

#[tokio::test]
async fn a_waiter_whose_turn_is_near_gets_the_page_the_moment_it_comes() {
    let (app, _a, b) = second_pupil_near_their_turn().await;
    let first = b.get(app.url("/home")).send().await.unwrap();
    assert_eq!(first.headers()["x-ardoise-queue-position"], "1");
    assert_eq!(held_ms(&first), None, "a newcomer sees the lobby at once");
    let estimate: u64 = first.headers()["x-ardoise-estimated-wait"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(estimate <= 3, "estimate {estimate} s");
    // Tools get it to the millisecond; the seconds are its rounding.
    let estimate_ms = estimate_ms(&first);
    assert!(
        (estimate_ms as f64 / 1_000.0 - estimate as f64).abs() <= 0.5,
        "{estimate_ms} ms told as {estimate} s"
    );

    // Their page comes back; while it is held the first pupil's place
    // frees, and the page is served at once, with the pass.
    let clock = app.clock.clone();
    let frees = tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        clock.advance(4);
    });
    let refresh = b.get(app.url("/home")).send().await.unwrap();
    frees.await.unwrap();
    assert_eq!(refresh.status().as_u16(), 200);
    assert!(refresh.headers().get("x-ardoise-queue-position").is_none());
    assert!(set_cookie(&refresh, "ardoise_pass").is_some());
    let held = held_ms(&refresh).expect("the refresh says it was held");
    assert!(held > 0.0, "held {held} ms");
    assert!(refresh.text().await.unwrap().contains("Bonjour"));
    assert_eq!(visit(&app, &b, "/todo").await, Seen::Page(200));
}

#[tokio::test]
async fn a_held_refresh_whose_turn_does_not_come_gets_the_lobby_again() {
    let (app, a, b) = second_pupil_near_their_turn().await;
    assert_eq!(visit(&app, &b, "/home").await, Seen::Lobby(1));
    // The first pupil keeps clicking: their place never frees.
    assert_eq!(visit(&app, &a, "/todo").await, Seen::Page(200));
    let again = b.get(app.url("/todo")).send().await.unwrap();
    assert!(held_ms(&again).is_some(), "the refresh was held");
    assert_eq!(again.headers()["x-ardoise-queue-position"], "1");
    assert!(again.headers().get("set-cookie").is_none(), "same ticket");
}

#[tokio::test]
async fn a_waiter_back_late_to_a_full_node_gets_the_next_place_first() {
    // One place, refreshes held up to 3 s.
    let app = spawn_app_with_surge(SurgeConfig {
        lobby_hold: std::time::Duration::from_secs(3),
        ..capacity(1, 0)
    })
    .await;
    let s = &app.seeded;
    let a = browser(&app, &s.pupil_a).await;
    assert_eq!(visit(&app, &a, "/home").await, Seen::Page(200));
    let away = browser(&app, &s.pupil_b).await;
    let next = browser(&app, &s.parent_a).await;
    // Signed in before the line forms (while others wait, pupils and
    // parents sign in on their turn).
    let behind = browser(&app, &s.parent_b).await;
    assert_eq!(visit(&app, &away, "/home").await, Seen::Lobby(1));
    assert_eq!(visit(&app, &next, "/home").await, Seen::Lobby(2));
    // The first pupil goes quiet: the place is the away pupil's, who does
    // not come back for it; seconds later it goes to the parent.
    app.clock.advance(121);
    assert_eq!(visit(&app, &next, "/home").await, Seen::Lobby(1));
    app.clock.advance(7);
    assert_eq!(visit(&app, &next, "/home").await, Seen::Page(200));
    assert_eq!(visit(&app, &behind, "/home").await, Seen::Lobby(1));

    // The away pupil comes back to a full node: not let in over the limit,
    // but first in line, their refresh held.
    let back = app.url("/home");
    let late = tokio::spawn({
        let away = away.clone();
        async move { away.get(back).send().await.unwrap() }
    });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    // Meanwhile the parent goes quiet and their place frees: it goes to
    // the pupil back late, not to the next in line, whose page, held,
    // comes back to the lobby.
    app.clock.advance(121);
    let refresh = behind.get(app.url("/home")).send().await.unwrap();
    let late = late.await.unwrap();
    assert_eq!(late.status().as_u16(), 200);
    assert!(late.headers().get("x-ardoise-queue-position").is_none());
    assert!(
        held_ms(&late).is_some_and(|ms| ms > 0.0),
        "held for the place"
    );
    assert!(late.text().await.unwrap().contains("Bonjour"));
    assert_eq!(refresh.headers()["x-ardoise-queue-position"], "1");
    // The one place is taken: a newcomer queues behind.
    assert_eq!(visit(&app, &client(), "/home").await, Seen::Lobby(2));
}

#[tokio::test]
async fn an_admitted_user_keeps_being_served_while_newcomers_queue() {
    let app = spawn_app_with_surge(capacity(1, 0)).await;
    let s = &app.seeded;
    // Everyone signs in before the line forms (while others wait, pupils
    // and parents sign in on their turn).
    let teacher = browser(&app, &s.teacher_a).await;
    let mut others = Vec::new();
    for p in [&s.pupil_a, &s.pupil_b, &s.parent_a] {
        others.push(browser(&app, p).await);
    }
    assert_eq!(visit(&app, &teacher, "/home").await, Seen::Page(200));
    for c in &others {
        assert!(matches!(visit(&app, c, "/todo").await, Seen::Lobby(_)));
    }
    for path in ["/home", "/todo", "/account", "/api/v1/me"] {
        let seen = visit(&app, &teacher, path).await;
        assert!(matches!(seen, Seen::Page(200 | 303)), "{path}: {seen:?}");
    }
    // Half an hour writing a lesson without a request: the pass has
    // expired, yet the lesson is saved.
    let csrf = app.csrf(&teacher).await;
    app.clock.advance(30 * 60);
    let resp = teacher
        .post(app.url(&format!("/classes/{}/lessons", s.class_a)))
        .form(&[
            ("csrf", csrf.as_str()),
            ("subject_id", &s.subject.0.to_string()),
            ("lesson_on", "2099-01-05"),
            ("title", "Fractions"),
            ("content", "Une longue séance"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 303);
    let week = teacher
        .get(app.url(&format!("/classes/{}/diary?week=2099-01-05", s.class_a)))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(week.contains("Fractions"), "{week}");
}

/// The value of cookie `name` set by `resp`.
fn set_cookie(resp: &reqwest::Response, name: &str) -> Option<String> {
    resp.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix(&format!("{name}=")))
        .map(|v| v.split(';').next().unwrap_or("").to_string())
}

/// `token` with one character changed.
fn tampered(token: &str) -> String {
    let mut chars: Vec<char> = token.chars().collect();
    chars[10] = if chars[10] == 'A' { 'B' } else { 'A' };
    chars.into_iter().collect()
}

#[tokio::test]
async fn a_tampered_ticket_or_pass_is_refused_and_its_holder_treated_as_a_newcomer() {
    let app = spawn_app_with_surge(capacity(1, 0)).await;
    let bare = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let get = |cookie: String| bare.get(app.url("/home")).header("cookie", cookie).send();
    let first = get(String::new()).await.unwrap();
    let pass = set_cookie(&first, "ardoise_pass").expect("a pass for the first visitor");
    let second = get(String::new()).await.unwrap();
    assert_eq!(second.headers()["x-ardoise-queue-position"], "1");
    let ticket = set_cookie(&second, "ardoise_ticket").expect("a ticket");

    // The genuine tokens work.
    let again = get(format!("ardoise_ticket={ticket}")).await.unwrap();
    assert_eq!(again.headers()["x-ardoise-queue-position"], "1");
    let in_again = get(format!("ardoise_pass={pass}")).await.unwrap();
    assert!(in_again.headers().get("x-ardoise-queue-position").is_none());

    // Forged ones put their holder at the back with a new ticket.
    let forged_ticket = get(format!("ardoise_ticket={}", tampered(&ticket)))
        .await
        .unwrap();
    assert_eq!(forged_ticket.headers()["x-ardoise-queue-position"], "2");
    assert!(set_cookie(&forged_ticket, "ardoise_ticket").is_some_and(|t| t != ticket));
    let forged_pass = get(format!("ardoise_pass={}", tampered(&pass)))
        .await
        .unwrap();
    assert_eq!(forged_pass.headers()["x-ardoise-queue-position"], "3");
    // A ticket offered as a pass is no pass either.
    let swapped = get(format!("ardoise_pass={ticket}")).await.unwrap();
    assert_eq!(swapped.headers()["x-ardoise-queue-position"], "4");
}

#[tokio::test]
async fn an_api_client_gets_503_json_with_retry_after_and_its_place() {
    let app = spawn_app_with_surge(capacity(1, 0)).await;
    let s = &app.seeded;
    let admitted = browser(&app, &s.pupil_a).await;
    assert_eq!(visit(&app, &admitted, "/home").await, Seen::Page(200));
    let (_, token) = app.sign_in(&s.pupil_b).await;
    let api = reqwest::Client::new();
    let resp = api
        .get(app.url("/api/v1/me"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 503);
    let retry: u64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry >= 1);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "queued");
    assert_eq!(body["position"], 1);
    assert_eq!(body["retry_after_secs"], retry);
    let ticket = body["ticket"].as_str().unwrap().to_string();

    // Without cookies, the ticket comes back in a header and keeps the place.
    let other: Value = api
        .get(app.url("/todo"))
        .header("accept", "application/json")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(other["position"], 2);
    let again: Value = api
        .get(app.url("/api/v1/me"))
        .bearer_auth(&token)
        .header("x-ardoise-ticket", &ticket)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(again["position"], 1);
}

#[tokio::test]
async fn a_teacher_gets_in_through_the_staff_lane_while_pupils_queue() {
    // Two places, one of them reserved for teachers and staff.
    let app = spawn_app_with_surge(capacity(2, 50)).await;
    let s = &app.seeded;
    let pupil = browser(&app, &s.pupil_a).await;
    assert_eq!(visit(&app, &pupil, "/home").await, Seen::Page(200));
    let waiting_pupil = browser(&app, &s.pupil_b).await;
    assert_eq!(visit(&app, &waiting_pupil, "/home").await, Seen::Lobby(1));

    let teacher = browser(&app, &s.teacher_a).await;
    assert_eq!(visit(&app, &teacher, "/home").await, Seen::Page(200));
    assert_eq!(visit(&app, &waiting_pupil, "/home").await, Seen::Lobby(1));

    // A teacher who first landed in the general line signs in from the
    // lobby and uses the staff line.
    let app = spawn_app_with_surge(capacity(2, 50)).await;
    let s = &app.seeded;
    let pupil = browser(&app, &s.pupil_a).await;
    assert_eq!(visit(&app, &pupil, "/home").await, Seen::Page(200));
    let teacher = client();
    assert_eq!(visit(&app, &teacher, "/home").await, Seen::Lobby(1));
    let signed = teacher
        .post(app.url("/api/v1/session"))
        .json(&serde_json::json!({"login": s.teacher_b.login, "password": s.teacher_b.password}))
        .send()
        .await
        .unwrap();
    assert_eq!(signed.status().as_u16(), 201);
    assert_eq!(visit(&app, &teacher, "/home").await, Seen::Page(200));
}

#[tokio::test]
async fn a_line_of_teachers_does_not_hold_the_pupils_line_still() {
    // Two places, none reserved: teachers come first for a free place,
    // but only until they hold half of them while pupils also wait.
    let app = spawn_app_with_surge(capacity(2, 0)).await;
    let s = &app.seeded;
    for p in [&s.pupil_a, &s.pupil_b] {
        let c = browser(&app, p).await;
        assert_eq!(visit(&app, &c, "/home").await, Seen::Page(200));
    }
    let parent = browser(&app, &s.parent_a).await;
    assert_eq!(visit(&app, &parent, "/home").await, Seen::Lobby(1));
    let first = browser(&app, &s.teacher_a).await;
    assert_eq!(visit(&app, &first, "/home").await, Seen::Lobby(1));
    let second = browser(&app, &s.teacher_b).await;
    assert_eq!(visit(&app, &second, "/home").await, Seen::Lobby(2));

    // Both pupils go quiet: of the two places, the first teacher in line
    // gets one and the parent, first in theirs, the other.
    app.clock.advance(121);
    assert_eq!(visit(&app, &parent, "/home").await, Seen::Page(200));
    assert_eq!(visit(&app, &first, "/home").await, Seen::Page(200));
    assert_eq!(visit(&app, &second, "/home").await, Seen::Lobby(1));

    // With nobody else in line, a teacher takes any place that frees.
    app.clock.advance(121);
    assert_eq!(visit(&app, &second, "/home").await, Seen::Page(200));
}

/// The figure shown in the administrator page's element `id`.
fn figure<'a>(page: &'a str, marker: &str) -> &'a str {
    let start = page
        .find(marker)
        .unwrap_or_else(|| panic!("{marker} in {page}"))
        + marker.len();
    let rest = &page[start..];
    let open = rest.find('>').unwrap() + 1;
    let close = rest[open..].find('<').unwrap() + open;
    &rest[open..close]
}

#[tokio::test]
async fn a_flood_of_pre_login_requests_takes_no_place_from_signed_in_users() {
    let app = spawn_app_with_surge(capacity(2, 0)).await;
    let mut flood = Vec::new();
    for i in 0..200 {
        let c = client();
        let url = app.url(
            [
                "/login",
                "/healthz",
                "/",
                "/activate",
                "/api/v1/openapi.json",
            ][i % 5],
        );
        flood.push(tokio::spawn(async move {
            c.get(url).send().await.map(|r| {
                let queued = r.headers().contains_key("x-ardoise-queue-position");
                (r.status().as_u16(), queued)
            })
        }));
    }
    for f in flood {
        let (status, queued) = f.await.unwrap().unwrap();
        assert!(matches!(status, 200 | 303) && !queued, "{status}");
    }
    // Both places are still free for signed-in pupils.
    let s = &app.seeded;
    let a = browser(&app, &s.pupil_a).await;
    let b = browser(&app, &s.admin).await;
    assert_eq!(visit(&app, &a, "/home").await, Seen::Page(200));
    assert_eq!(visit(&app, &b, "/home").await, Seen::Page(200));
    // And at capacity the sign-in page still opens; only the application waits.
    let late = client();
    assert_eq!(visit(&app, &late, "/login").await, Seen::Page(200));
    assert_eq!(visit(&app, &late, "/home").await, Seen::Lobby(1));
    let page = b
        .get(app.url("/admin/surge"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let general = &page[page.find("id=\"lane-general\"").unwrap()..];
    assert_eq!(figure(general, "class=\"admitted\""), "1");
    assert_eq!(figure(general, "class=\"queued\""), "1");
}

#[tokio::test]
async fn requests_shed_before_sign_in_do_not_shrink_the_places_of_signed_in_users() {
    use std::time::{Duration, Instant};
    // Requests without a session have all waited too long; signed-in ones
    // never have. The user limit may move between 10 and 1,000.
    let app = spawn_app_with_surge(SurgeConfig {
        users_floor: 10,
        users_ceiling: 1_000,
        users_initial: 100,
        prelogin_target: Duration::ZERO,
        // A signed-in request that waited this long would be stale.
        codel_interval: Duration::from_millis(300),
        ..test_surge()
    })
    .await;
    let limit = |metrics: String| {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix("ardoise_surge_user_limit "))
            .unwrap_or_else(|| panic!("no user limit in {metrics}"))
            .parse::<u64>()
            .unwrap()
    };
    assert_eq!(limit(app.metrics().await), 100);
    let teacher = browser(&app, &app.seeded.teacher_a).await;
    assert_eq!(visit(&app, &teacher, "/home").await, Seen::Page(200));
    // More than a second (the limit's interval) of sign-in pages, shed
    // once the pre-login gate has seen them all wait (an interval).
    let until = Instant::now() + Duration::from_millis(1_500);
    let mut shed = 0;
    while Instant::now() < until {
        let pages = (0..8).map(|_| {
            let (c, url) = (client(), app.url("/login"));
            tokio::spawn(async move { c.get(url).send().await.unwrap().status().as_u16() })
        });
        for page in pages.collect::<Vec<_>>() {
            if page.await.unwrap() == 503 {
                shed += 1;
            }
        }
    }
    assert!(shed > 0, "no sign-in page was shed");
    // The teacher's next page closes the limit's interval: it has not shrunk.
    assert_eq!(visit(&app, &teacher, "/home").await, Seen::Page(200));
    let after = limit(app.metrics().await);
    assert!(
        after >= 100,
        "{shed} sign-in pages shed, the limit fell to {after}"
    );
}

#[tokio::test]
async fn the_administrator_page_shows_the_figures_and_is_refused_to_others() {
    let app = spawn_app_with_surge(capacity(3, 0)).await;
    let s = &app.seeded;
    let admin = browser(&app, &s.admin).await;
    assert_eq!(visit(&app, &admin, "/home").await, Seen::Page(200));
    let pupil = browser(&app, &s.pupil_a).await;
    assert_eq!(visit(&app, &pupil, "/home").await, Seen::Page(200));
    let parent = browser(&app, &s.parent_a).await;
    assert_eq!(visit(&app, &parent, "/home").await, Seen::Page(200));
    for _ in 0..2 {
        assert!(matches!(
            visit(&app, &client(), "/todo").await,
            Seen::Lobby(_)
        ));
    }
    let resp = admin.get(app.url("/admin/surge")).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let page = resp.text().await.unwrap();
    assert_eq!(figure(&page, "id=\"user-limit\""), "3");
    let general = &page[page.find("id=\"lane-general\"").unwrap()..];
    assert_eq!(figure(general, "class=\"admitted\""), "2");
    assert_eq!(figure(general, "class=\"queued\""), "2");
    let staff = &page[page.find("id=\"lane-staff\"").unwrap()..];
    assert_eq!(figure(staff, "class=\"admitted\""), "1");
    assert!(figure(&page, "id=\"session-share\"").ends_with('%'));

    let metrics = app.metrics().await;
    assert!(metrics.contains("ardoise_surge_user_limit 3"), "{metrics}");
    assert!(metrics.contains("ardoise_surge_queue_length{lane=\"general\"} 2"));
    assert!(metrics.contains("ardoise_surge_refusals_total{reason=\"queued\"} 2"));

    let refused = pupil.get(app.url("/admin/surge")).send().await.unwrap();
    assert_eq!(refused.status().as_u16(), 403);
}

#[tokio::test]
async fn with_the_surge_layer_off_nobody_waits() {
    let app = spawn_app_with_surge(SurgeConfig {
        enabled: false,
        ..capacity(1, 0)
    })
    .await;
    for p in [
        &app.seeded.pupil_a,
        &app.seeded.pupil_b,
        &app.seeded.parent_a,
    ] {
        let c = browser(&app, p).await;
        assert_eq!(visit(&app, &c, "/home").await, Seen::Page(200));
    }
}

#[tokio::test]
async fn a_request_that_waited_too_long_is_refused_at_once_and_told_when_to_come_back() {
    // A delay target of zero: every request has waited too long.
    let app = spawn_app_with_surge(every_request_late(test_surge())).await;
    let c = client();
    let resp = c.get(app.url("/login")).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 503);
    let retry: u64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((2..=4).contains(&retry), "{retry}");
    let page = resp.text().await.unwrap();
    assert!(page.contains("Ardoise est très sollicitée"), "{page}");
    assert!(page.contains(&format!("http-equiv=\"refresh\" content=\"{retry}\"")));

    // A form is not resent by a refresh: the page says nothing was saved.
    let resp = c
        .post(app.url("/language"))
        .header("accept-language", "en")
        .form(&[("lang", "en")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 503);
    let page = resp.text().await.unwrap();
    assert!(page.contains("Nothing was saved"), "{page}");
    assert!(!page.contains("refresh"));

    // A password sign-in is not shed for its wait (its own bulkhead and
    // hash lanes bound it): it reaches the sign-in form's checks.
    let resp = c
        .post(app.url("/login"))
        .form(&[("login", "x"), ("password", "y")])
        .send()
        .await
        .unwrap();
    assert_ne!(resp.status().as_u16(), 503);

    let resp = c.get(app.url("/api/v1/me")).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 503);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "overloaded");
    assert!(body["retry_after_secs"].as_u64().is_some_and(|s| s >= 2));
    // Probes are never refused.
    let health = c.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status().as_u16(), 200);
}

#[tokio::test]
async fn the_same_request_again_before_its_retry_after_waits_until_then_and_others_do_not() {
    // Every request has waited too long: each is refused.
    let app = spawn_app_with_surge(every_request_late(test_surge())).await;
    // One connection, as a browser tab keeps it.
    let c = reqwest::Client::builder()
        .pool_max_idle_per_host(1)
        .build()
        .unwrap();
    let held = |metrics: &str| -> u64 {
        metrics
            .lines()
            .find(|l| l.starts_with("ardoise_surge_retries_held_total"))
            .and_then(|l| l.split_whitespace().last())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    let before = held(&app.metrics().await);

    let resp = c.get(app.url("/login")).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 503);
    let retry: u64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    resp.bytes().await.unwrap();
    // A different request on that connection is judged at once.
    let resp = c.get(app.url("/api/v1/openapi.json")).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 503);
    resp.bytes().await.unwrap();
    assert_eq!(held(&app.metrics().await), before, "nothing held yet");

    // The same request again at once (a naive retry loop): it is answered
    // no sooner than the time the client was given.
    let resp = c
        .get(app.url("/login"))
        .header("accept-language", "en")
        .send()
        .await
        .unwrap();
    resp.bytes().await.unwrap();
    let sent = std::time::Instant::now();
    let resp = c
        .get(app.url("/login"))
        .header("accept-language", "en")
        .send()
        .await
        .unwrap();
    let waited = sent.elapsed();
    // Judged afresh after the wait: still refused on this node.
    assert_eq!(resp.status().as_u16(), 503);
    assert!(
        waited >= std::time::Duration::from_millis(1900),
        "held {waited:?}, told to come back after {retry} s or so"
    );
    assert_eq!(held(&app.metrics().await), before + 1);
}

/// Surge is not attack: the sign-in check asked of a network with many
/// failures, here on a quiet node and from the third failure.
fn checked(only_under_load: bool) -> SurgeConfig {
    SurgeConfig {
        challenge: ardoise_web::surge::ChallengePolicy {
            enabled: true,
            only_under_load,
            threshold: 2.5,
            base_bits: 8,
            ..ardoise_web::surge::ChallengePolicy::default()
        },
        // Failures fade slowly enough that the tests' waits leave them
        // past the threshold.
        failure_half_life: std::time::Duration::from_secs(86_400),
        ..test_surge()
    }
}

async fn api_sign_in(app: &TestApp, login: &str, password: &str) -> reqwest::Response {
    client()
        .post(app.url("/api/v1/session"))
        .json(&serde_json::json!({"login": login, "password": password}))
        .send()
        .await
        .unwrap()
}

async fn fail_sign_ins(app: &TestApp, n: usize) {
    for i in 0..n {
        let resp = api_sign_in(app, &format!("nobody.{i}"), "pas le bon mot de passe").await;
        assert_eq!(resp.status().as_u16(), 401);
    }
}

#[tokio::test]
async fn a_network_with_many_failed_sign_ins_proves_some_work_before_the_next_one() {
    let app = spawn_app_with_surge(checked(false)).await;
    let pupil = app.seeded.pupil_a.clone();
    fail_sign_ins(&app, 3).await;

    // The next attempt, even with the right password, is asked to work
    // first: nothing is hashed, nobody is blocked.
    let resp = api_sign_in(&app, &pupil.login, &pupil.password).await;
    assert_eq!(resp.status().as_u16(), 429);
    let retry: u64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "challenge_required");
    let challenge = body["challenge"].as_str().unwrap().to_string();
    let bits = u8::try_from(body["bits"].as_u64().unwrap()).unwrap();
    assert_eq!(body["wait_secs"].as_u64().unwrap(), retry);

    // A wrong answer is refused; the right one lets the sign-in through.
    let answer = ardoise_web::surge::challenge::solve(&challenge, bits);
    let with = |solution: u64| {
        client()
            .post(app.url("/api/v1/session"))
            .header("x-ardoise-challenge", challenge.clone())
            .header("x-ardoise-challenge-solution", solution.to_string())
            .json(&serde_json::json!({"login": pupil.login, "password": pupil.password}))
    };
    let wrong = (0..)
        .find(|&n| {
            ardoise_web::surge::challenge::leading_zero_bits(&challenge, n) < u32::from(bits)
        })
        .unwrap();
    let refused = with(wrong).send().await.unwrap();
    assert_eq!(refused.status().as_u16(), 429);
    let accepted = with(answer).send().await.unwrap();
    assert_eq!(accepted.status().as_u16(), 201);

    // A challenge is bound to the address and cannot be forged.
    let forged = client()
        .post(app.url("/api/v1/session"))
        .header("x-ardoise-challenge", format!("{challenge}x"))
        .json(&serde_json::json!({"login": pupil.login, "password": pupil.password}))
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status().as_u16(), 429);

    // Without any computation, waiting the delay is enough.
    let resp = api_sign_in(&app, &pupil.login, &pupil.password).await;
    let body: Value = resp.json().await.unwrap();
    let token = body["challenge"].as_str().unwrap().to_string();
    app.clock
        .advance(i64::try_from(body["wait_secs"].as_u64().unwrap()).unwrap());
    let waited = client()
        .post(app.url("/api/v1/session"))
        .header("x-ardoise-challenge", token)
        .json(&serde_json::json!({"login": pupil.login, "password": pupil.password}))
        .send()
        .await
        .unwrap();
    assert_eq!(waited.status().as_u16(), 201);

    let metrics = app.metrics().await;
    assert!(
        metrics.contains("ardoise_surge_sign_in_failures_total 3"),
        "{metrics}"
    );
    assert!(
        metrics.contains("ardoise_surge_challenges_total{outcome=\"passed\"} 2"),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_browser_without_javascript_signs_in_after_the_shown_wait() {
    let app = spawn_app_with_surge(checked(false)).await;
    let pupil = app.seeded.pupil_a.clone();
    fail_sign_ins(&app, 3).await;

    let browser = client();
    let resp = browser.get(app.url("/login")).send().await.unwrap();
    let csp = resp.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(csp.contains("script-src 'self'"), "{csp}");
    let html = resp.text().await.unwrap();
    assert!(html.contains("id=\"challenge-status\""), "{html}");
    assert!(html.contains("data-challenge=\""), "{html}");
    assert!(
        html.contains("<script src=\"/static/challenge.js\""),
        "{html}"
    );
    let script = client()
        .get(app.url("/static/challenge.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(script.status().as_u16(), 200);
    assert!(script.text().await.unwrap().contains("crypto.subtle"));

    let form = |csrf: String| {
        vec![
            ("login", pupil.login.clone()),
            ("password", pupil.password.clone()),
            ("csrf", csrf),
        ]
    };
    // Sent at once: back to the form, still signed out.
    let early = browser
        .post(app.url("/login"))
        .form(&form(csrf_in(&html).unwrap()))
        .send()
        .await
        .unwrap();
    assert_eq!(early.status().as_u16(), 303);
    assert_eq!(early.headers()["location"], "/login");
    let home = browser.get(app.url("/home")).send().await.unwrap();
    assert!(home.headers()["location"]
        .to_str()
        .unwrap()
        .starts_with("/login"));

    // After the wait shown on the page, the same form goes through.
    app.clock.advance(60);
    let html = browser
        .get(app.url("/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let late = browser
        .post(app.url("/login"))
        .form(&form(csrf_in(&html).unwrap()))
        .send()
        .await
        .unwrap();
    assert_eq!(late.status().as_u16(), 303);
    assert_eq!(late.headers()["location"], "/home");
    let home = browser.get(app.url("/home")).send().await.unwrap();
    assert_eq!(home.status().as_u16(), 200);
}

#[tokio::test]
async fn a_school_of_pupils_behind_one_address_is_never_asked_to_prove_anything() {
    let app = spawn_app_with_surge(checked(false)).await;
    // Everyone here shares 127.0.0.1, as a school shares its address:
    // successes are not counted, only failures.
    let people = [
        app.seeded.pupil_a.clone(),
        app.seeded.pupil_b.clone(),
        app.seeded.parent_a.clone(),
        app.seeded.teacher_a.clone(),
    ];
    for _ in 0..10 {
        for p in &people {
            let resp = api_sign_in(&app, &p.login, &p.password).await;
            assert_eq!(resp.status().as_u16(), 201, "{}", p.login);
        }
    }
    // Two typos are below the threshold.
    fail_sign_ins(&app, 2).await;
    let p = &app.seeded.pupil_a;
    assert_eq!(
        api_sign_in(&app, &p.login, &p.password)
            .await
            .status()
            .as_u16(),
        201
    );
    let page = client()
        .get(app.url("/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!page.contains("<script"), "no check, no script");
}

#[tokio::test]
async fn by_default_the_check_is_asked_only_under_load() {
    let app = spawn_app_with_surge(checked(true)).await;
    fail_sign_ins(&app, 10).await;
    // A quiet node: past the threshold, but nobody is asked anything.
    let p = &app.seeded.pupil_a;
    assert_eq!(
        api_sign_in(&app, &p.login, &p.password)
            .await
            .status()
            .as_u16(),
        201
    );
    let page = client()
        .get(app.url("/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!page.contains("data-challenge"), "{page}");
}

#[tokio::test]
async fn teachers_sign_in_while_a_storm_of_pupils_is_refused_with_retry_after() {
    // One hash at a time, one sign-in waiting per lane: pupils signing in
    // in a loop keep their lane full.
    let app = std::sync::Arc::new(
        spawn_app_with_surge(SurgeConfig {
            bulkhead_sign_in: Some(1),
            ..test_surge()
        })
        .await,
    );
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut storm = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let (app, stop) = (std::sync::Arc::clone(&app), std::sync::Arc::clone(&stop));
        storm.spawn(async move {
            let (mut signed_in, mut refused) = (0, 0);
            let body = serde_json::json!({"login": app.seeded.pupil_a.login, "password": app.seeded.pupil_a.password});
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let resp = client()
                    .post(app.url("/api/v1/session"))
                    .json(&body)
                    .send()
                    .await
                    .unwrap();
                match resp.status().as_u16() {
                    201 => signed_in += 1,
                    503 => {
                        assert!(resp.headers().contains_key("retry-after"));
                        let v: Value = resp.json().await.unwrap();
                        assert_eq!(v["error"], "overloaded", "{v}");
                        refused += 1;
                    }
                    other => panic!("pupil sign-in answered {other}"),
                }
            }
            (signed_in, refused)
        });
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let teacher = &app.seeded.teacher_a;
    for _ in 0..5 {
        let resp = client()
            .post(app.url("/api/v1/session"))
            .json(&serde_json::json!({"login": teacher.login, "password": teacher.password}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 201, "the teacher is refused");
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (mut signed_in, mut refused) = (0, 0);
    while let Some(r) = storm.join_next().await {
        let (s, f) = r.unwrap();
        signed_in += s;
        refused += f;
    }
    assert!(signed_in > 0, "pupils sign in too, one hash at a time");
    assert!(
        refused > 0,
        "the pupils' lane was full: some were told to come back"
    );
}

/// Posts the sign-in form of `page` as `p` (with `password`) from `c`.
async fn post_sign_in(
    app: &TestApp,
    c: &reqwest::Client,
    page: &str,
    p: &Person,
    password: &str,
) -> reqwest::Response {
    let csrf = csrf_in(page).expect("a sign-in form");
    c.post(app.url("/login"))
        .form(&[
            ("login", p.login.as_str()),
            ("password", password),
            ("csrf", csrf.as_str()),
        ])
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn while_others_wait_pupils_sign_in_on_their_turn_and_teachers_at_once() {
    let app = spawn_app_with_surge(capacity(1, 0)).await;
    let s = &app.seeded;
    let admitted = browser(&app, &s.pupil_a).await;
    assert_eq!(visit(&app, &admitted, "/home").await, Seen::Page(200));
    let first_in_line = client();
    assert_eq!(visit(&app, &first_in_line, "/home").await, Seen::Lobby(1));

    // A pupil opening the sign-in page while others wait meets the lobby,
    // which carries the teachers' and staff's sign-in form.
    let pupil = client();
    let resp = pupil.get(app.url("/login")).send().await.unwrap();
    assert_eq!(resp.headers()["x-ardoise-queue-position"], "2");
    let lobby = resp.text().await.unwrap();
    assert!(lobby.contains("Enseignants et personnels"), "{lobby}");
    assert!(lobby.contains("type=\"password\""), "{lobby}");
    // Using that form anyway, the pupil's password is not checked before
    // their turn: even a wrong one gets their place in line back, not an
    // error.
    let resp = post_sign_in(&app, &pupil, &lobby, &s.pupil_b, "not the password").await;
    assert_eq!(resp.headers()["x-ardoise-queue-position"], "2");
    assert!(set_cookie(&resp, "ardoise_session").is_none());
    let page = resp.text().await.unwrap();
    assert!(page.contains("id=\"position\">2<"), "{page}");
    // An API client too: 503, its place, a ticket.
    let api = client();
    let resp = api
        .post(app.url("/api/v1/session"))
        .json(&serde_json::json!({"login": s.parent_a.login, "password": s.parent_a.password}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 503);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "queued", "{body}");
    assert_eq!(body["position"], 3);

    // Teachers sign in at once: by the API, by the lobby's form, or by
    // the form of their own line (the link of the other pages' lobby).
    let resp = client()
        .post(app.url("/api/v1/session"))
        .json(&serde_json::json!({"login": s.teacher_a.login, "password": s.teacher_a.password}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 201);
    let teacher = client();
    let resp = teacher.get(app.url("/login")).send().await.unwrap();
    assert_eq!(resp.headers()["x-ardoise-queue-position"], "4");
    let lobby = resp.text().await.unwrap();
    let resp = post_sign_in(&app, &teacher, &lobby, &s.teacher_b, &s.teacher_b.password).await;
    assert_eq!(resp.status().as_u16(), 303);
    assert!(set_cookie(&resp, "ardoise_session").is_some());
    let other = client();
    let form = other
        .get(app.url("/login?lane=staff"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let resp = post_sign_in(&app, &other, &form, &s.teacher_a, &s.teacher_a.password).await;
    assert_eq!(resp.status().as_u16(), 303);

    // The places free one after the other: the first in line, then the
    // pupil, whose sign-in page is now the form, and whose password is
    // checked.
    app.clock.advance(121);
    assert_eq!(visit(&app, &first_in_line, "/home").await, Seen::Page(303));
    assert_eq!(visit(&app, &pupil, "/login").await, Seen::Lobby(1));
    app.clock.advance(121);
    let resp = pupil.get(app.url("/login")).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert!(resp.headers().get("x-ardoise-queue-position").is_none());
    let form = resp.text().await.unwrap();
    let resp = post_sign_in(&app, &pupil, &form, &s.pupil_b, "not the password").await;
    assert_eq!(resp.status().as_u16(), 401, "checked now, and wrong");
    let form = resp.text().await.unwrap();
    let resp = post_sign_in(&app, &pupil, &form, &s.pupil_b, &s.pupil_b.password).await;
    assert_eq!(resp.status().as_u16(), 303);
    assert_eq!(visit(&app, &pupil, "/home").await, Seen::Page(200));
}

#[tokio::test]
async fn under_a_long_queue_delay_waiters_still_see_their_place_and_teachers_their_form() {
    // Every request has waited too long, and the node takes one user.
    let app = spawn_app_with_surge(every_request_late(capacity(1, 0))).await;
    let s = &app.seeded;
    let admitted = browser(&app, &s.pupil_a).await;
    // What would be served is shed, the place taken all the same, and the
    // refusal carries the pass: the retry does not ask for another place.
    let resp = admitted.get(app.url("/home")).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 503);
    assert!(set_cookie(&resp, "ardoise_pass").is_some());
    let again = admitted.get(app.url("/todo")).send().await.unwrap();
    assert_eq!(again.status().as_u16(), 503);
    assert!(again.headers().get("x-ardoise-queue-position").is_none());
    // A newcomer's answer is the lobby, never a refusal: it costs no more
    // and keeps their place in view.
    let waiting = client();
    assert_eq!(visit(&app, &waiting, "/home").await, Seen::Lobby(1));
    assert_eq!(visit(&app, &waiting, "/login").await, Seen::Lobby(1));
    assert_eq!(visit(&app, &client(), "/login").await, Seen::Lobby(2));
    // The teachers' sign-in form is served: their sign-in gets through.
    let resp = client()
        .get(app.url("/login?lane=staff"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert!(csrf_in(&resp.text().await.unwrap()).is_some());
}

#[tokio::test]
async fn a_teacher_refused_the_sign_in_form_is_shown_their_own_way_in() {
    // Every request has waited too long: the sign-in form is shed.
    let app = spawn_app_with_surge(every_request_late(test_surge())).await;
    let teacher = client();
    let resp = teacher.get(app.url("/login")).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 503);
    let page = resp.text().await.unwrap();
    assert!(page.contains("http-equiv=\"refresh\""), "{page}");
    assert!(
        page.contains("<a href=\"/login?lane=staff\">Enseignants et personnels"),
        "{page}"
    );
    let en = client()
        .get(app.url("/login"))
        .header("accept-language", "en")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        en.contains("<a href=\"/login?lane=staff\">Teachers and staff"),
        "{en}"
    );
    // Other pages shed before sign-in do not show it.
    let other = client().get(app.url("/activate")).send().await.unwrap();
    assert_eq!(other.status().as_u16(), 503);
    assert!(!other.text().await.unwrap().contains("lane=staff"));
    // The link's form is served all the same, and the teacher signs in.
    let form = teacher
        .get(app.url("/login?lane=staff"))
        .send()
        .await
        .unwrap();
    assert_eq!(form.status().as_u16(), 200);
    let form = form.text().await.unwrap();
    let s = &app.seeded;
    let resp = post_sign_in(&app, &teacher, &form, &s.teacher_a, &s.teacher_a.password).await;
    assert_eq!(resp.status().as_u16(), 303);
    assert!(set_cookie(&resp, "ardoise_session").is_some());
}
