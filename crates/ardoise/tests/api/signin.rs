//! Sign-in, sessions, revocation, remembered devices, throttling.

use ardoise_testkit::{client, csrf_in, spawn_app, PASSWORD};
use serde_json::{json, Value};

#[tokio::test]
async fn a_pupil_signs_in_with_the_form_and_sees_their_home_page() {
    let app = spawn_app().await;
    let c = app.sign_in_form(&app.seeded.pupil_a, false).await;
    let resp = c.get(app.url("/home")).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let html = resp.text().await.unwrap();
    assert!(html.contains("Bonjour alice"), "{html}");
    assert!(html.contains("6eA"));
}

#[tokio::test]
async fn the_api_signs_in_returns_a_bearer_token_and_says_who_i_am() {
    let app = spawn_app().await;
    let (_, token) = app.sign_in(&app.seeded.parent_a).await;
    let me: Value = client()
        .get(app.url("/api/v1/me"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["login"], "anne.parent");
    assert_eq!(me["roles"], json!(["parent"]));
    assert_eq!(me["children"], json!([app.seeded.pupil_a.id.0]));
}

#[tokio::test]
async fn a_wrong_password_or_unknown_login_gets_the_same_answer() {
    let app = spawn_app().await;
    for (login, password) in [
        ("alice.pupil", "not the password at all"),
        ("nobody.here", PASSWORD),
    ] {
        let resp = client()
            .post(app.url("/api/v1/session"))
            .json(&json!({"login": login, "password": password}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 401);
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["error"], "bad_credentials");
        assert_eq!(body["message"], "Identifiant ou mot de passe incorrect.");
    }
}

#[tokio::test]
async fn signing_out_revokes_the_session_on_the_very_next_request() {
    let app = spawn_app().await;
    let (c, token) = app.sign_in(&app.seeded.teacher_a).await;
    assert_eq!(
        c.get(app.url("/api/v1/me"))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        200
    );
    let resp = client()
        .delete(app.url("/api/v1/session"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 204);
    // The cookie-holding client carries the same (now revoked) session.
    assert_eq!(
        c.get(app.url("/api/v1/me"))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        401
    );
    assert_eq!(
        client()
            .get(app.url("/api/v1/me"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        401
    );
}

#[tokio::test]
async fn sign_out_everywhere_ends_other_sessions_but_keeps_this_one() {
    let app = spawn_app().await;
    let phone = app.sign_in_form(&app.seeded.parent_a, true).await;
    let laptop = app.sign_in_form(&app.seeded.parent_a, false).await;
    let csrf = app.csrf(&laptop).await;
    let html = laptop
        .get(app.url("/account"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(html.matches("/revoke\"").count(), 2, "two sessions listed");
    let resp = laptop
        .post(app.url("/account/sessions/revoke-others"))
        .form(&[("csrf", csrf)])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 303);
    assert_eq!(
        laptop
            .get(app.url("/home"))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        200
    );
    let resp = phone.get(app.url("/home")).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 303);
    assert!(resp.headers()["location"]
        .to_str()
        .unwrap()
        .starts_with("/login"));
}

#[tokio::test]
async fn a_remembered_device_resumes_after_a_restart_without_a_password() {
    let app = spawn_app().await;
    let c = app.sign_in_form(&app.seeded.pupil_a, true).await;
    let cookie_header = c.get(app.url("/account")).send().await.unwrap();
    assert_eq!(cookie_header.status().as_u16(), 200);
    // Ten days later, on a freshly started node (empty session table).
    app.clock.advance(10 * 86400);
    let (_, address) = ardoise_testkit::start(
        app.store.clone(),
        app.state.files.clone(),
        app.clock.clone(),
        Default::default(),
    )
    .await;
    let home = c.get(format!("{address}/home")).send().await.unwrap();
    assert_eq!(
        home.status().as_u16(),
        200,
        "the remembered session is reloaded from the store"
    );
    // A non-remembered session expires after 12 hours.
    let short = app.sign_in_form(&app.seeded.pupil_b, false).await;
    app.clock.advance(13 * 3600);
    assert_eq!(
        short
            .get(app.url("/home"))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        303
    );
}

#[tokio::test]
async fn failed_attempts_lock_the_account_for_a_growing_while_not_the_school() {
    let app = spawn_app().await;
    let bad = json!({"login": "alice.pupil", "password": "wrong password number"});
    for _ in 0..5 {
        let r = client()
            .post(app.url("/api/v1/session"))
            .json(&bad)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 401);
    }
    // The sixth failure locks; then even the right password waits.
    let r = client()
        .post(app.url("/api/v1/session"))
        .json(&bad)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let good = json!({"login": "alice.pupil", "password": PASSWORD});
    let r = client()
        .post(app.url("/api/v1/session"))
        .json(&good)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 429);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "too_many_attempts");
    // Another pupil behind the same address is not affected.
    app.sign_in(&app.seeded.pupil_b).await;
    // Once the delay has passed, the owner gets in.
    app.clock.advance(3);
    let r = client()
        .post(app.url("/api/v1/session"))
        .json(&good)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
}

#[tokio::test]
async fn a_pupil_activates_their_account_with_the_code_and_a_passphrase() {
    let app = spawn_app().await;
    let p = &app.seeded.pending;
    let c = client();
    let html = c
        .get(app.url("/activate"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = csrf_in(&html).unwrap();
    // Before activation, the account cannot sign in.
    let r = client()
        .post(app.url("/api/v1/session"))
        .json(&json!({"login": p.login, "password": "anything at all here"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"],
        "account_not_activated"
    );
    // A weak password is refused and the code stays unspent.
    let weak = [
        ("login", p.login.as_str()),
        ("code", p.password.as_str()),
        ("password", "motdepasse123"),
        ("confirm", "motdepasse123"),
        ("csrf", &csrf),
    ];
    let r = c
        .post(app.url("/activate"))
        .form(&weak)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 422);
    assert!(r.text().await.unwrap().contains("trop courant"));
    let typed_code = p.password.to_lowercase().replace('-', " ");
    let ok = [
        ("login", p.login.as_str()),
        ("code", typed_code.as_str()),
        ("password", "le chat dort sur le radiateur"),
        ("confirm", "le chat dort sur le radiateur"),
        ("csrf", &csrf),
    ];
    let r = c.post(app.url("/activate")).form(&ok).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 303);
    assert_eq!(
        c.get(app.url("/home"))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        200
    );
    // The code is spent.
    let again = client();
    let html = again
        .get(app.url("/activate"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf2 = csrf_in(&html).unwrap();
    let reuse = [
        ("login", p.login.as_str()),
        ("code", p.password.as_str()),
        ("password", "une autre phrase de passe"),
        ("confirm", "une autre phrase de passe"),
        ("csrf", &csrf2),
    ];
    assert_eq!(
        again
            .post(app.url("/activate"))
            .form(&reuse)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        422
    );
    // And the chosen password works.
    let r = client()
        .post(app.url("/api/v1/session"))
        .json(&json!({"login": p.login, "password": "le chat dort sur le radiateur"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
}

#[tokio::test]
async fn changing_the_password_checks_the_current_one_and_signs_out_other_devices() {
    let app = spawn_app().await;
    let other = app.sign_in_form(&app.seeded.teacher_a, false).await;
    let c = app.sign_in_form(&app.seeded.teacher_a, false).await;
    let csrf = app.csrf(&c).await;
    let wrong = [
        ("csrf", csrf.as_str()),
        ("current", "not my password!"),
        ("password", "une phrase de passe neuve"),
        ("confirm", "une phrase de passe neuve"),
    ];
    assert_eq!(
        c.post(app.url("/account/password"))
            .form(&wrong)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        422
    );
    let ok = [
        ("csrf", csrf.as_str()),
        ("current", PASSWORD),
        ("password", "une phrase de passe neuve"),
        ("confirm", "une phrase de passe neuve"),
    ];
    let r = c
        .post(app.url("/account/password"))
        .form(&ok)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(
        other
            .get(app.url("/home"))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        303,
        "other device signed out"
    );
    assert_eq!(
        c.get(app.url("/home"))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        200,
        "this device stays"
    );
    let r = client()
        .post(app.url("/api/v1/session"))
        .json(&json!({"login": "agathe.teacher", "password": "une phrase de passe neuve"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
}

#[tokio::test]
async fn a_form_without_the_session_csrf_token_changes_nothing() {
    let app = spawn_app().await;
    let c = app.sign_in_form(&app.seeded.pupil_a, false).await;
    let r = c
        .post(app.url("/account/sessions/revoke-others"))
        .form(&[("csrf", "forged")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    let r = c
        .post(app.url("/logout"))
        .form(&[("csrf", "")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    assert_eq!(
        c.get(app.url("/home"))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        200,
        "still signed in"
    );
    // A cross-site post is refused even with the right token.
    let csrf = app.csrf(&c).await;
    let r = c
        .post(app.url("/logout"))
        .header("Origin", "https://evil.example")
        .form(&[("csrf", csrf)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
}
