//! Bad input gets a clear 4xx in the caller's language and changes nothing;
//! a database that is down gives 503 with Retry-After.

use ardoise_testkit::{client, spawn_app};
use serde_json::Value;

#[tokio::test]
async fn unknown_routes_are_404_in_json_under_api_and_html_elsewhere() {
    let app = spawn_app().await;
    let r = client()
        .get(app.url("/api/v1/nothing"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "not_found");
    let r = client()
        .get(app.url("/nothing"))
        .header("Accept-Language", "en-GB,en;q=0.9")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    assert!(r.text().await.unwrap().contains("This page does not exist"));
}

#[tokio::test]
async fn malformed_json_wrong_content_type_and_huge_bodies_are_refused_clearly() {
    let app = spawn_app().await;
    let url = app.url("/api/v1/session");
    let r = client()
        .post(&url)
        .header("content-type", "application/json")
        .body("{\"login\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "invalid_json");
    assert_eq!(body["message"], "Le JSON envoyé est invalide ou incomplet.");
    let r = client()
        .post(&url)
        .header("content-type", "text/plain")
        .body("login=x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 415);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"],
        "unsupported_media_type"
    );
    let huge = format!(
        "{{\"login\": \"{}\", \"password\": \"x\"}}",
        "a".repeat(200_000)
    );
    let r = client()
        .post(&url)
        .header("content-type", "application/json")
        .body(huge)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 413);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "body_too_large");
    let r = client().delete(app.url("/api/v1/me")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 405);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"],
        "method_not_allowed"
    );
}

#[tokio::test]
async fn forged_or_expired_cookies_are_treated_as_signed_out() {
    let app = spawn_app().await;
    for token in [
        "forged",
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "a;b=c",
        "é",
    ] {
        let r = client()
            .get(app.url("/home"))
            .header("Cookie", format!("ardoise_session={token}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 303, "{token}");
        assert!(r.headers()["location"]
            .to_str()
            .unwrap()
            .starts_with("/login"));
        let r = client()
            .get(app.url("/api/v1/me"))
            .header("Authorization", format!("Bearer {token}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 401, "{token}");
    }
}

#[tokio::test]
async fn a_bad_admin_form_is_refused_and_writes_nothing() {
    let app = spawn_app().await;
    let c = app.sign_in_form(&app.seeded.admin, false).await;
    let csrf = app.csrf(&c).await;
    let before = app.store.list_establishments().await.unwrap().len();
    for (uai, name) in [
        ("12345", "Collège X"),
        ("0750001A", ""),
        ("0750001A", "\u{1}bad"),
    ] {
        let r = c
            .post(app.url("/admin/establishments"))
            .form(&[("csrf", csrf.as_str()), ("uai", uai), ("name", name)])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 422, "{uai} {name:?}");
    }
    // A form that is not a form at all.
    let r = c
        .post(app.url("/admin/establishments"))
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 415);
    assert_eq!(app.store.list_establishments().await.unwrap().len(), before);
    // A duplicate UAI is a conflict, in French.
    let r = c
        .post(app.url("/admin/establishments"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("uai", "0990001A"),
            ("name", "Doublon"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 409);
    assert!(r.text().await.unwrap().contains("code UAI"));
}

#[tokio::test]
async fn a_database_that_is_down_gives_503_with_retry_after_and_readyz_fails() {
    let app = spawn_app().await;
    assert_eq!(
        client()
            .get(app.url("/readyz"))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        200
    );
    app.store.close().await;
    let r = client().get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 503);
    assert!(r.headers().contains_key("retry-after"));
    let r = client()
        .post(app.url("/api/v1/session"))
        .json(&serde_json::json!({"login": "alice.pupil", "password": "whatever it is"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 503);
    assert!(r.headers().contains_key("retry-after"));
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"],
        "service_unavailable"
    );
    assert_eq!(
        client()
            .get(app.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        200,
        "the process is up"
    );
}

#[tokio::test]
async fn pages_are_french_by_default_and_english_on_request() {
    let app = spawn_app().await;
    let fr = client()
        .get(app.url("/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(fr.contains("<html lang=\"fr\">") && fr.contains("Se connecter"));
    let en = client()
        .get(app.url("/login"))
        .header("Accept-Language", "en-US,en;q=0.8")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(en.contains("<html lang=\"en\">") && en.contains("Sign in"));
    // The language form sets a cookie that wins over the header.
    let c = client();
    let r = c
        .post(app.url("/language"))
        .form(&[("lang", "en"), ("back", "/login")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 303);
    let page = c
        .get(app.url("/login"))
        .header("Accept-Language", "fr")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("<html lang=\"en\">"));
    let r = c
        .post(app.url("/language"))
        .form(&[("lang", "klingon")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 422);
}

#[tokio::test]
async fn every_page_is_light_and_makes_no_third_party_request() {
    let app = spawn_app().await;
    let (c, _) = app.sign_in(&app.seeded.admin).await;
    for path in ["/login", "/activate"] {
        let html = client()
            .get(app.url(path))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            html.len() < 30 * 1024 && !html.contains("https://") && !html.contains("<script"),
            "{path}"
        );
    }
    for path in [
        "/activate",
        "/home",
        "/account",
        "/admin",
        "/admin/accounts",
        "/admin/sessions",
    ] {
        let r = c.get(app.url(path)).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 200, "{path}");
        let html = r.text().await.unwrap();
        assert!(
            html.len() < 30 * 1024,
            "{path} is {} bytes before compression",
            html.len()
        );
        for needle in ["http://", "https://", "<script"] {
            assert!(!html.contains(needle), "{path} contains {needle}");
        }
    }
}

#[tokio::test]
async fn metrics_count_requests_by_route_and_status() {
    let app = spawn_app().await;
    client().get(app.url("/healthz")).send().await.unwrap();
    app.sign_in(&app.seeded.pupil_a).await;
    let text = app.metrics().await;
    assert!(
        text.contains(
            "ardoise_http_requests_total{route=\"/healthz\",method=\"GET\",status=\"200\"}"
        ),
        "{text}"
    );
    assert!(text.contains("ardoise_http_request_duration_seconds_bucket"));
    assert!(text.contains("ardoise_sessions_live"));
    assert!(text.contains("ardoise_signin_total{outcome=\"success\"}"));
}

/// The count of password hashes of `lane` on a `/metrics` page, and the
/// CPU seconds they took.
fn hash_cpu(text: &str, lane: &str) -> (f64, f64) {
    let value = |name: &str| {
        let key = format!("ardoise_password_hash_cpu_seconds_{name}{{lane=\"{lane}\"}} ");
        text.lines()
            .find_map(|l| l.strip_prefix(key.as_str()))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (value("count"), value("sum"))
}

#[tokio::test]
async fn metrics_show_the_cpu_time_of_password_hashes_by_lane() {
    let app = spawn_app().await;
    let before = app.metrics().await;
    app.sign_in(&app.seeded.pupil_a).await;
    let after_pupil = app.metrics().await;
    app.sign_in(&app.seeded.teacher_a).await;
    let after_teacher = app.metrics().await;

    // A pupil's check is counted in the general lane, with the CPU time
    // it took (argon2id with 19 MiB takes milliseconds, never nothing).
    let (g0, gs0) = hash_cpu(&before, "general");
    let (g1, gs1) = hash_cpu(&after_pupil, "general");
    assert_eq!(g1 - g0, 1.0, "{after_pupil}");
    assert!(gs1 > gs0, "{after_pupil}");
    // A teacher's in the staff lane, and not in the general one.
    let (s1, _) = hash_cpu(&after_pupil, "staff");
    let (s2, ss2) = hash_cpu(&after_teacher, "staff");
    assert_eq!(s2 - s1, 1.0, "{after_teacher}");
    assert!(ss2 > 0.0);
    assert_eq!(hash_cpu(&after_teacher, "general").0, g1);
}

#[tokio::test]
async fn the_openapi_document_describes_every_api_route() {
    let app = spawn_app().await;
    let doc: Value = client()
        .get(app.url("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for e in ardoise_web::routes::all().entries() {
        if e.path.starts_with("/api/v1/") && e.path != "/api/v1/openapi.json" {
            let method = e.method.to_lowercase();
            assert!(
                doc["paths"][e.path][&method].is_object(),
                "{} {} is not in the OpenAPI document",
                e.method,
                e.path
            );
        }
    }
}
