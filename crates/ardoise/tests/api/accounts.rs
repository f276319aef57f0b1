//! The administrator console and the directory reads of the API.

use ardoise_testkit::{client, csrf_in, spawn_app};
use serde_json::Value;

#[tokio::test]
async fn an_administrator_creates_an_account_that_activates_with_its_letter() {
    let app = spawn_app().await;
    let c = app.sign_in_form(&app.seeded.admin, false).await;
    let csrf = app.csrf(&c).await;
    let e = app.seeded.establishment.0.to_string();
    let class = app.seeded.class_b.0.to_string();
    let form = [
        ("csrf", csrf.as_str()),
        ("establishment_id", &e),
        ("first_name", "Zoé"),
        ("last_name", "Le Bœuf"),
        ("role_pupil", "1"),
        ("class_id", &class),
    ];
    let r = c
        .post(app.url("/admin/accounts"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let letter = r.text().await.unwrap();
    assert!(letter.contains("zoe.leboeuf"), "{letter}");
    let code_start = letter.find("<code>zoe.leboeuf</code>").unwrap();
    let rest = &letter[code_start + 24..];
    let code = rest
        .split("<code>")
        .nth(1)
        .unwrap()
        .split("</code>")
        .next()
        .unwrap()
        .to_string();
    assert_eq!(code.len(), 14);
    // The new pupil activates and lands in 6eB.
    let p = client();
    let html = p
        .get(app.url("/activate"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let pre = csrf_in(&html).unwrap();
    let form = [
        ("login", "zoe.leboeuf"),
        ("code", code.as_str()),
        ("password", "ma phrase de passe à moi"),
        ("confirm", "ma phrase de passe à moi"),
        ("csrf", &pre),
    ];
    assert_eq!(
        p.post(app.url("/activate"))
            .form(&form)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        303
    );
    let me: Value = p
        .get(app.url("/api/v1/me"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["class_id"], app.seeded.class_b.0);
    // A second Zoé Le Bœuf gets another login.
    let form = [
        ("csrf", csrf.as_str()),
        ("establishment_id", &e),
        ("first_name", "Zoé"),
        ("last_name", "Le Bœuf"),
        ("role_parent", "1"),
    ];
    let letter = c
        .post(app.url("/admin/accounts"))
        .form(&form)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(letter.contains("zoe.leboeuf2"));
    // A pupil without a class is refused.
    let form = [
        ("csrf", csrf.as_str()),
        ("establishment_id", &e),
        ("first_name", "Sans"),
        ("last_name", "Classe"),
        ("role_pupil", "1"),
    ];
    assert_eq!(
        c.post(app.url("/admin/accounts"))
            .form(&form)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        422
    );
}

#[tokio::test]
async fn disabling_an_account_signs_it_out_at_once_and_blocks_sign_in() {
    let app = spawn_app().await;
    let (pupil, _) = app.sign_in(&app.seeded.pupil_a).await;
    let admin = app.sign_in_form(&app.seeded.admin, false).await;
    let csrf = app.csrf(&admin).await;
    let url = app.url(&format!("/admin/accounts/{}/status", app.seeded.pupil_a.id));
    assert_eq!(
        admin
            .post(&url)
            .form(&[("csrf", csrf.as_str()), ("enabled", "0")])
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        303
    );
    assert_eq!(
        pupil
            .get(app.url("/api/v1/me"))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        401
    );
    let r = client()
        .post(app.url("/api/v1/session"))
        .json(&serde_json::json!({"login": "alice.pupil", "password": ardoise_testkit::PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"],
        "account_disabled"
    );
    assert_eq!(
        admin
            .post(&url)
            .form(&[("csrf", csrf.as_str()), ("enabled", "1")])
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        303
    );
    app.sign_in(&app.seeded.pupil_a).await;
    let audit = app.store.list_audit(10).await.unwrap();
    assert!(audit.iter().any(|a| a.action == "account_disabled"));
    assert!(audit.iter().any(|a| a.action == "account_enabled"));
}

#[tokio::test]
async fn september_letters_give_codes_to_every_pupil_and_parent_not_yet_activated() {
    let app = spawn_app().await;
    let admin = app.sign_in_form(&app.seeded.admin, false).await;
    let csrf = app.csrf(&admin).await;
    let r = admin
        .post(app.url(&format!("/admin/classes/{}/letters", app.seeded.class_a)))
        .form(&[("csrf", csrf)])
        .send()
        .await
        .unwrap();
    let html = r.text().await.unwrap();
    assert!(
        html.contains("paul.pending"),
        "the pending pupil gets a letter"
    );
    assert!(
        !html.contains("alice.pupil"),
        "active accounts keep their password"
    );
    assert_eq!(html.matches("class=\"letter\"").count(), 1);
}

#[tokio::test]
async fn lists_show_only_what_the_caller_may_see() {
    let app = spawn_app().await;
    let s = &app.seeded;
    let app = &app;
    let classes = |who| async move {
        let (c, _) = app.sign_in(who).await;
        let list: Vec<Value> = c
            .get(app.url("/api/v1/classes"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        list.iter()
            .map(|c| c["id"].as_i64().unwrap())
            .collect::<Vec<_>>()
    };
    assert_eq!(classes(&s.pupil_a).await, vec![s.class_a.0]);
    assert_eq!(classes(&s.parent_b).await, vec![s.class_b.0]);
    assert_eq!(classes(&s.teacher_a).await, vec![s.class_a.0]);
    let mut staff = classes(&s.staff).await;
    staff.sort();
    assert_eq!(
        staff,
        vec![s.class_a.0, s.class_b.0],
        "staff see their establishment only"
    );
    assert_eq!(classes(&s.admin).await.len(), 3);
    let (c, _) = app.sign_in(&s.teacher_a).await;
    let pupils: Vec<Value> = c
        .get(app.url(&format!("/api/v1/classes/{}/pupils", s.class_a)))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = pupils
        .iter()
        .map(|p| p["first_name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["Paul", "alice"], "by last name: Pending, pupil");
    let (c, _) = app.sign_in(&s.parent_a).await;
    let kids: Vec<Value> = c
        .get(app.url("/api/v1/children"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(kids.len(), 1);
    assert_eq!(kids[0]["id"], s.pupil_a.id.0);
}
