//! Messaging: sending under the communication rules, replies, unread
//! counts, drafts, search, attachments; containment (suspension,
//! quarantine, reports) and the audit log; announcements and the timeline;
//! every refusal leaving nothing stored; a 1,000-member group.

use ardoise_core::{GroupId, PersonId, Role, Roles};
use ardoise_store::Val;
use ardoise_testkit::{spawn_app, spawn_app_with, Person, TestApp};
use reqwest::multipart::{Form, Part};
use serde_json::{json, Value};

async fn post_json(c: &reqwest::Client, url: String, body: Value) -> (u16, Value) {
    let r = c.post(url).json(&body).send().await.unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn get_json(c: &reqwest::Client, url: String) -> (u16, Value) {
    let r = c.get(url).send().await.unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn send(
    app: &TestApp,
    c: &reqwest::Client,
    subject: &str,
    body: &str,
    to: &[String],
) -> (u16, Value) {
    post_json(
        c,
        app.url("/api/v1/messages"),
        json!({"subject": subject, "body": body, "to": to}),
    )
    .await
}

fn person(p: &Person) -> String {
    format!("person:{}", p.id.0)
}

async fn unread(app: &TestApp, p: &Person) -> i64 {
    app.store.unread_count(p.id).await.unwrap()
}

async fn inbox_len(app: &TestApp, p: &Person) -> usize {
    app.store.inbox(p.id, 100, 0).await.unwrap().len()
}

#[tokio::test]
async fn a_teacher_writes_to_the_parents_of_a_class_and_a_parent_replies_to_the_teacher_only() {
    let app = spawn_app().await;
    let s = &app.seeded;
    // A second parent in 6eA, to see that a parent's reply stays private.
    let other = app
        .store
        .create_person(&ardoise_store::PersonInsertForm {
            establishment_id: s.establishment,
            login: ardoise_core::Login::parse("odile.parent").unwrap(),
            first_name: "Odile".into(),
            last_name: "Parent".into(),
            roles: Roles::only(Role::Parent),
            title: String::new(),
            status: ardoise_store::AccountStatus::Active,
            password_hash: None,
            created_at: 0,
        })
        .await
        .unwrap();
    let classmate = app
        .store
        .create_person(&ardoise_store::PersonInsertForm {
            establishment_id: s.establishment,
            login: ardoise_core::Login::parse("olga.pupil").unwrap(),
            first_name: "Olga".into(),
            last_name: "Pupil".into(),
            roles: Roles::only(Role::Pupil),
            title: String::new(),
            status: ardoise_store::AccountStatus::Active,
            password_hash: None,
            created_at: 0,
        })
        .await
        .unwrap();
    app.store
        .set_pupil_class(classmate, s.class_a)
        .await
        .unwrap();
    app.store
        .add_guardian(other, classmate, true)
        .await
        .unwrap();

    let (teacher, _) = app.sign_in(&s.teacher_a).await;
    let (status, sent) = send(
        &app,
        &teacher,
        "Sortie au musée",
        "La sortie a lieu **jeudi**.",
        &[format!("parents:{}", s.class_a.0)],
    )
    .await;
    assert_eq!(status, 201, "{sent}");
    let conv = sent["conversation_id"].as_i64().unwrap();

    assert_eq!(unread(&app, &s.parent_a).await, 1);
    assert_eq!(app.store.unread_count(PersonId(other.0)).await.unwrap(), 1);
    assert_eq!(
        unread(&app, &s.parent_b).await,
        0,
        "6eB's parents get nothing"
    );
    assert_eq!(unread(&app, &s.pupil_a).await, 0, "pupils are not parents");

    let (parent, _) = app.sign_in(&s.parent_a).await;
    let (status, inbox) = get_json(&parent, app.url("/api/v1/messages")).await;
    assert_eq!(status, 200);
    assert_eq!(inbox["unread"], 1);
    assert_eq!(inbox["conversations"][0]["subject"], "Sortie au musée");
    let (status, c) = get_json(&parent, app.url(&format!("/api/v1/messages/{conv}"))).await;
    assert_eq!(status, 200);
    assert!(c["messages"][0]["body_html"]
        .as_str()
        .unwrap()
        .contains("<strong>jeudi</strong>"));
    assert_eq!(c["reply_to_sender_only"], true);
    assert_eq!(unread(&app, &s.parent_a).await, 0, "reading marks it read");

    let (status, _) = post_json(
        &parent,
        app.url(&format!("/api/v1/messages/{conv}/reply")),
        json!({"body": "Mon enfant sera présent."}),
    )
    .await;
    assert_eq!(status, 201);
    assert_eq!(
        unread(&app, &s.teacher_a).await,
        1,
        "the teacher gets the reply"
    );
    let other_view = app
        .store
        .conversation_for(PersonId(other.0), ardoise_core::ConversationId(conv))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        other_view.messages.len(),
        1,
        "another parent does not see a parent's reply"
    );
    let (_, t) = get_json(&teacher, app.url(&format!("/api/v1/messages/{conv}"))).await;
    assert_eq!(t["messages"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn communication_rules_refuse_forbidden_recipients_and_store_nothing() {
    let app = spawn_app().await;
    let s = &app.seeded;
    let (pupil, _) = app.sign_in(&s.pupil_a).await;
    // Another pupil's parent, another pupil, a whole class: refused.
    for (to, code) in [
        (person(&s.parent_b), "recipient_not_allowed"),
        (person(&s.pupil_b), "recipient_not_allowed"),
        (format!("class:{}", s.class_a.0), "recipient_not_allowed"),
        (format!("parents:{}", s.class_a.0), "recipient_not_allowed"),
        (person(&s.teacher_b), "recipient_not_allowed"),
        (person(&s.foreign_staff), "recipient_not_allowed"),
    ] {
        let (status, body) =
            send(&app, &pupil, "Salut", "Bonjour", std::slice::from_ref(&to)).await;
        assert_eq!(status, 403, "{to}: {body}");
        assert_eq!(body["error"], code, "{to}");
    }
    // Nothing was stored for anyone.
    for p in [
        &s.pupil_a,
        &s.parent_b,
        &s.pupil_b,
        &s.teacher_b,
        &s.foreign_staff,
    ] {
        assert_eq!(inbox_len(&app, p).await, 0, "{}", p.login);
    }
    assert_eq!(app.store.sent_since(s.pupil_a.id, 0).await.unwrap(), 0);
    // Their own teacher and the school's staff are fine.
    let (status, _) = send(
        &app,
        &pupil,
        "Devoir",
        "Je n'ai pas compris l'exercice 2.",
        &[person(&s.teacher_a), person(&s.staff)],
    )
    .await;
    assert_eq!(status, 201);
    assert_eq!(unread(&app, &s.teacher_a).await, 1);
    assert_eq!(unread(&app, &s.staff).await, 1);

    // The picker offers only allowed recipients.
    let (_, choices) = get_json(&pupil, app.url("/api/v1/messages/recipients")).await;
    let values: Vec<&str> = choices
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["value"].as_str())
        .collect();
    assert!(
        values.contains(&person(&s.teacher_a).as_str()),
        "{values:?}"
    );
    assert!(
        !values.contains(&person(&s.parent_b).as_str()),
        "{values:?}"
    );
    assert!(!values.contains(&person(&s.pupil_b).as_str()), "{values:?}");
    assert!(!values.contains(&format!("class:{}", s.class_a.0).as_str()));

    // Staff open pupil-to-pupil messages within a class; then allowed.
    let (staff, _) = app.sign_in(&s.staff).await;
    let r = staff
        .put(app.url("/api/v1/messages/rules"))
        .json(&json!({"pupils_to_pupils": true, "pupils_to_parents": false, "parents_to_parents": false,
            "pupil_hourly_limit": 20, "adult_hourly_limit": 200, "pupil_max_recipients": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 204);
    // One recipient at most for pupils now.
    let (status, body) = send(
        &app,
        &pupil,
        "Deux",
        "À deux personnes",
        &[person(&s.teacher_a), person(&s.staff)],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (422, Some("too_many_recipients"))
    );
    let audit = app.store.list_audit(50).await.unwrap();
    assert!(audit
        .iter()
        .any(|a| a.action == "messaging.rules" && a.actor_id == Some(s.staff.id)));
}

#[tokio::test]
async fn bad_messages_get_clear_errors_and_nothing_is_sent() {
    let app = spawn_app_with(ardoise_web::WebConfig {
        max_upload_bytes: 1024,
        ..Default::default()
    })
    .await;
    let s = &app.seeded;
    let (teacher, _) = app.sign_in(&s.teacher_a).await;
    let to = vec![person(&s.pupil_a)];
    let cases: Vec<(&str, &str, Vec<String>, u16, &str)> = vec![
        ("Objet", "   ", to.clone(), 422, "message_empty"),
        ("", "Texte", to.clone(), 422, "subject_invalid"),
        ("Objet", "Texte", vec![], 422, "recipients_missing"),
        (
            "Objet",
            "Texte",
            vec!["person:999999".into()],
            422,
            "recipient_unknown",
        ),
        (
            "Objet",
            "Texte",
            vec!["everyone:1".into()],
            422,
            "recipient_unknown",
        ),
        (
            "Objet",
            "Texte",
            vec!["class:999999".into()],
            422,
            "recipient_unknown",
        ),
        (
            "Objet",
            "<script>alert(1)</script>",
            to.clone(),
            422,
            "html_not_allowed",
        ),
        (
            "Objet",
            "[x](javascript:alert(1))",
            to.clone(),
            422,
            "unsafe_link",
        ),
        (
            "Objet",
            "Texte",
            vec![person(&s.pupil_b)],
            403,
            "recipient_not_allowed",
        ),
    ];
    for (subject, body, to, status, code) in cases {
        let (st, b) = send(&app, &teacher, subject, body, &to).await;
        assert_eq!(
            (st, b["error"].as_str()),
            (status, Some(code)),
            "{subject:?} {body:?} {to:?}"
        );
    }
    // An oversized attachment through the compose form.
    let csrf = app.csrf(&teacher).await;
    let form = Form::new()
        .text("csrf", csrf.clone())
        .text(format!("to:{}", person(&s.pupil_a)), "1")
        .text("subject", "Pièce jointe")
        .text("body", "Voici le fichier")
        .part("files", Part::bytes(vec![b'a'; 4096]).file_name("gros.txt"));
    let r = teacher
        .post(app.url("/messages"))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 413);
    assert_eq!(app.store.sent_since(s.teacher_a.id, 0).await.unwrap(), 0);
    assert_eq!(inbox_len(&app, &s.pupil_a).await, 0);
    assert_eq!(inbox_len(&app, &s.pupil_b).await, 0);

    // A reply to a conversation one is not in.
    let (pupil, _) = app.sign_in(&s.pupil_a).await;
    let (status, sent) = send(&app, &pupil, "Question", "Bonjour", &[person(&s.teacher_a)]).await;
    assert_eq!(status, 201);
    let conv = sent["conversation_id"].as_i64().unwrap();
    let (intruder, _) = app.sign_in(&s.pupil_b).await;
    let (status, _) = post_json(
        &intruder,
        app.url(&format!("/api/v1/messages/{conv}/reply")),
        json!({"body": "Je m'invite"}),
    )
    .await;
    assert_eq!(status, 404);
    let (status, body) = post_json(
        &teacher,
        app.url(&format!("/api/v1/messages/{conv}/reply")),
        json!({"body": ""}),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (422, Some("message_empty"))
    );
    let v = app
        .store
        .conversation_for(s.pupil_a.id, ardoise_core::ConversationId(conv))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(v.messages.len(), 1, "no refused reply was stored");
}

#[tokio::test]
async fn no_one_reads_a_conversation_they_are_not_part_of() {
    let app = spawn_app().await;
    let s = &app.seeded;
    let teacher = app.sign_in_form(&s.teacher_a, false).await;
    let csrf = app.csrf(&teacher).await;
    let form = Form::new()
        .text("csrf", csrf)
        .text(format!("to:{}", person(&s.parent_a)), "1")
        .text("subject", "Bulletin confidentiel")
        .text("body", "Résultats du trimestre de votre enfant")
        .part(
            "files",
            Part::bytes(b"%PDF-1.4\n%%EOF\n".to_vec()).file_name("bulletin.pdf"),
        );
    let r = teacher
        .post(app.url("/messages"))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 303);
    let conv = app.store.inbox(s.parent_a.id, 10, 0).await.unwrap()[0]
        .conversation_id
        .0;
    let (parent, _) = app.sign_in(&s.parent_a).await;
    let (_, c) = get_json(&parent, app.url(&format!("/api/v1/messages/{conv}"))).await;
    let file = c["messages"][0]["files"][0]["id"].as_i64().unwrap();
    let r = parent
        .get(app.url(&format!("/attachments/{file}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200, "a participant downloads the file");

    for p in [&s.parent_b, &s.pupil_a, &s.teacher_b, &s.staff, &s.admin] {
        let (c, _) = app.sign_in(p).await;
        let (st, _) = get_json(&c, app.url(&format!("/api/v1/messages/{conv}"))).await;
        assert_eq!(st, 404, "{} by id", p.login);
        let st = c
            .get(app.url(&format!("/messages/{conv}")))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16();
        assert_eq!(st, 404, "{} page", p.login);
        let (_, hits) = get_json(&c, app.url("/api/v1/messages/search?q=bulletin")).await;
        assert_eq!(
            hits.as_array().map(Vec::len),
            Some(0),
            "{} by search",
            p.login
        );
        let st = c
            .get(app.url(&format!("/attachments/{file}")))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16();
        assert_eq!(st, 404, "{} by attachment", p.login);
        let (_, tl) = get_json(&c, app.url("/api/v1/timeline")).await;
        assert!(
            !tl.as_array()
                .unwrap()
                .iter()
                .any(|i| i["kind"] == "message"),
            "{} through the timeline",
            p.login
        );
    }
    let (_, hits) = get_json(&parent, app.url("/api/v1/messages/search?q=BULLETIN")).await;
    assert_eq!(hits[0]["conversation_id"], conv, "the recipient finds it");
    let (_, tl) = get_json(&parent, app.url("/api/v1/timeline")).await;
    assert_eq!(tl[0]["kind"], "message");
    assert_eq!(tl[0]["href"], format!("/messages/{conv}"));
}

#[tokio::test]
async fn staff_quarantine_hides_a_pupils_messages_from_everyone_and_can_restore_them() {
    let app = spawn_app().await;
    let s = &app.seeded;
    let (pupil, _) = app.sign_in(&s.pupil_a).await;
    for i in 0..3 {
        let (st, _) = send(
            &app,
            &pupil,
            &format!("Menace {i}"),
            "Message inacceptable",
            &[person(&s.teacher_a), person(&s.staff)],
        )
        .await;
        assert_eq!(st, 201);
    }
    assert_eq!(unread(&app, &s.teacher_a).await, 3);
    // The teacher reports one.
    let (teacher, _) = app.sign_in(&s.teacher_a).await;
    let (_, inbox) = get_json(&teacher, app.url("/api/v1/messages")).await;
    let conv = inbox["conversations"][0]["id"].as_i64().unwrap();
    let (_, c) = get_json(&teacher, app.url(&format!("/api/v1/messages/{conv}"))).await;
    let msg = c["messages"][0]["id"].as_i64().unwrap();
    let (st, _) = post_json(
        &teacher,
        app.url(&format!("/api/v1/messages/items/{msg}/report")),
        json!({"reason": "menaces"}),
    )
    .await;
    assert_eq!(st, 204);

    // A pupil may not quarantine anyone.
    let (st, _) = post_json(
        &pupil,
        app.url("/api/v1/messages/containment/quarantines"),
        json!({"person_id": s.teacher_a.id.0}),
    )
    .await;
    assert_eq!(st, 404);

    let (staff, _) = app.sign_in(&s.staff).await;
    let (_, cont) = get_json(&staff, app.url("/api/v1/messages/containment")).await;
    assert_eq!(cont["reports"][0]["message_id"], msg);
    let (st, _) = post_json(
        &staff,
        app.url("/api/v1/messages/containment/suspensions"),
        json!({"person_id": s.pupil_a.id.0, "suspended": true, "reason": "enquête"}),
    )
    .await;
    assert_eq!(st, 204);
    let (st, q) = post_json(
        &staff,
        app.url("/api/v1/messages/containment/quarantines"),
        json!({"person_id": s.pupil_a.id.0, "reason": "menaces"}),
    )
    .await;
    assert_eq!(st, 201, "{q}");
    assert_eq!(q["messages"], 3);
    for p in [&s.teacher_a, &s.staff, &s.pupil_a] {
        assert_eq!(unread(&app, p).await, 0, "{}", p.login);
        assert_eq!(inbox_len(&app, p).await, 0, "{}", p.login);
    }
    let (st, _) = get_json(&teacher, app.url(&format!("/api/v1/messages/{conv}"))).await;
    assert_eq!(st, 404, "gone from the conversation too");
    // Suspended: nothing more can be sent.
    let (st, body) = send(&app, &pupil, "Encore", "Texte", &[person(&s.teacher_a)]).await;
    assert_eq!(
        (st, body["error"].as_str()),
        (403, Some("sending_suspended"))
    );
    // Kept for the investigation, and restorable.
    let held = app
        .store
        .held_messages(ardoise_core::QuarantineId(q["id"].as_i64().unwrap()))
        .await
        .unwrap();
    assert_eq!(held.len(), 3);
    let (st, lifted) = post_json(
        &staff,
        app.url(&format!(
            "/api/v1/messages/containment/quarantines/{}/lift",
            q["id"]
        )),
        json!({}),
    )
    .await;
    assert_eq!(st, 200);
    assert_eq!(lifted["restored"], 3);
    assert_eq!(inbox_len(&app, &s.teacher_a).await, 3);
    // All three actions are in the audit log, with who and what.
    let audit = app.store.list_audit(100).await.unwrap();
    for action in [
        "message.report",
        "messaging.suspend",
        "messaging.quarantine",
        "messaging.quarantine_lift",
    ] {
        assert!(
            audit
                .iter()
                .any(|a| a.action == action && a.at > 0 && a.actor_id.is_some()),
            "{action} in {audit:?}"
        );
    }
    let q = audit
        .iter()
        .find(|a| a.action == "messaging.quarantine")
        .unwrap();
    assert_eq!(q.actor_id, Some(s.staff.id));
    assert_eq!(q.target, format!("person:{}", s.pupil_a.id.0));
    // Staff of another establishment cannot touch this pupil.
    let (foreign, _) = app.sign_in(&s.foreign_staff).await;
    let (st, _) = post_json(
        &foreign,
        app.url("/api/v1/messages/containment/quarantines"),
        json!({"person_id": s.pupil_a.id.0}),
    )
    .await;
    assert_eq!(st, 422);
}

#[tokio::test]
async fn a_pupil_is_held_to_the_hourly_sending_limit() {
    let app = spawn_app().await;
    let s = &app.seeded;
    let (pupil, _) = app.sign_in(&s.pupil_a).await;
    for i in 0..20 {
        let (st, _) = send(&app, &pupil, &format!("n{i}"), "x", &[person(&s.teacher_a)]).await;
        assert_eq!(st, 201, "message {i}");
    }
    let (st, body) = send(&app, &pupil, "n20", "x", &[person(&s.teacher_a)]).await;
    assert_eq!(
        (st, body["error"].as_str()),
        (429, Some("sending_rate_limited"))
    );
    assert_eq!(app.store.sent_since(s.pupil_a.id, 0).await.unwrap(), 20);
    app.clock.advance(3601);
    let (st, _) = send(&app, &pupil, "later", "x", &[person(&s.teacher_a)]).await;
    assert_eq!(st, 201, "an hour later the pupil may write again");
}

#[tokio::test]
async fn drafts_are_kept_until_sent() {
    let app = spawn_app().await;
    let s = &app.seeded;
    let (teacher, _) = app.sign_in(&s.teacher_a).await;
    let (st, d) = post_json(
        &teacher,
        app.url("/api/v1/messages/drafts"),
        json!({"subject": "Brouillon", "body": "à finir", "to": [person(&s.pupil_a)]}),
    )
    .await;
    assert_eq!(st, 200);
    let (_, list) = get_json(&teacher, app.url("/api/v1/messages/drafts")).await;
    assert_eq!(list[0]["subject"], "Brouillon");
    assert_eq!(list[0]["to"][0], person(&s.pupil_a));
    let (other, _) = app.sign_in(&s.teacher_b).await;
    let r = other
        .delete(app.url(&format!("/api/v1/messages/drafts/{}", d["id"])))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404, "not someone else's draft");
    assert_eq!(inbox_len(&app, &s.pupil_a).await, 0, "a draft is not sent");
}

#[tokio::test]
async fn announcements_reach_their_audience_within_their_window_and_fill_the_timeline() {
    let app = spawn_app().await;
    let s = &app.seeded;
    let (staff, _) = app.sign_in(&s.staff).await;
    let (st, _) = post_json(
        &staff,
        app.url("/api/v1/announcements"),
        json!({"title": "Fermeture", "body": "Le collège ferme vendredi.", "audience": "all"}),
    )
    .await;
    assert_eq!(st, 201);
    let (teacher, _) = app.sign_in(&s.teacher_a).await;
    let (st, _) = post_json(
        &teacher,
        app.url("/api/v1/announcements"),
        json!({"title": "Contrôle", "body": "Contrôle lundi", "audience": "class", "class_ids": [s.class_a.0]}),
    )
    .await;
    assert_eq!(st, 201);
    let (st, _) = post_json(
        &teacher,
        app.url("/api/v1/announcements"),
        json!({"title": "Autre classe", "body": "x", "audience": "class", "class_ids": [s.class_b.0]}),
    )
    .await;
    assert_eq!(st, 403, "a teacher announces only to classes they teach");
    let (st, _) = post_json(
        &teacher,
        app.url("/api/v1/announcements"),
        json!({"title": "Tous", "body": "x", "audience": "all"}),
    )
    .await;
    assert_eq!(st, 403);
    let now = ardoise_core::Clock::now(&*app.clock);
    let (st, _) = post_json(
        &staff,
        app.url("/api/v1/announcements"),
        json!({"title": "Plus tard", "body": "x", "audience": "all", "publish_from": now + 86400}),
    )
    .await;
    assert_eq!(st, 201);
    let (st, b) = post_json(
        &staff,
        app.url("/api/v1/announcements"),
        json!({"title": "<b>", "body": "<script>x</script>", "audience": "all"}),
    )
    .await;
    assert_eq!((st, b["error"].as_str()), (422, Some("html_not_allowed")));

    let titles = |v: &Value| -> Vec<String> {
        v.as_array()
            .unwrap_or_else(|| panic!("a list: {v}"))
            .iter()
            .filter_map(|a| a["title"].as_str().map(str::to_string))
            .collect()
    };
    let (pupil_a, _) = app.sign_in(&s.pupil_a).await;
    let (st, a) = get_json(&pupil_a, app.url("/api/v1/announcements")).await;
    assert_eq!(st, 200, "{a}");
    assert_eq!(titles(&a), vec!["Contrôle", "Fermeture"]);
    let (pupil_b, _) = app.sign_in(&s.pupil_b).await;
    let (_, b) = get_json(&pupil_b, app.url("/api/v1/announcements")).await;
    assert_eq!(titles(&b), vec!["Fermeture"]);
    let (_, tl) = get_json(&pupil_a, app.url("/api/v1/timeline")).await;
    let kinds: Vec<&str> = tl
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["kind"].as_str())
        .collect();
    assert_eq!(kinds, vec!["announcement", "announcement"]);
    let home = pupil_a
        .get(app.url("/home"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        home.contains("Le collège ferme vendredi."),
        "on the home page"
    );
    assert!(!home.contains("Plus tard"), "not before its window");
    app.clock.advance(86401);
    // Sessions last 12 hours: sign in again the next day.
    let (pupil_b, _) = app.sign_in(&s.pupil_b).await;
    let (_, b) = get_json(&pupil_b, app.url("/api/v1/announcements")).await;
    assert_eq!(titles(&b), vec!["Plus tard", "Fermeture"]);
}

#[tokio::test]
async fn a_pupils_home_page_follows_announcements_and_teachers_as_they_change() {
    let app = spawn_app().await;
    let s = &app.seeded;
    let (pupil, _) = app.sign_in(&s.pupil_a).await;
    let home = |c: reqwest::Client| {
        let url = app.url("/home");
        async move { c.get(url).send().await.unwrap().text().await.unwrap() }
    };
    // The part of the page a section holds (empty if it is not shown).
    let section = |page: &str, id: &str| -> String {
        let start = format!("<section id=\"{id}\">");
        page.split_once(&start)
            .and_then(|(_, rest)| rest.split_once("</section>"))
            .map(|(inside, _)| inside.to_string())
            .unwrap_or_default()
    };
    let first = home(pupil.clone()).await;
    assert_eq!(section(&first, "announcements"), "", "none yet");
    let teachers = section(&first, "pupil");
    assert!(teachers.contains("agathe TEACHER"), "{teachers}");
    assert!(!teachers.contains("benoit TEACHER"), "{teachers}");

    let (staff, _) = app.sign_in(&s.staff).await;
    let now = ardoise_core::Clock::now(&*app.clock);
    let (st, closed) = post_json(
        &staff,
        app.url("/api/v1/announcements"),
        json!({"title": "Fermeture", "body": "Le collège ferme vendredi.", "audience": "all"}),
    )
    .await;
    assert_eq!(st, 201);
    let (st, _) = post_json(
        &staff,
        app.url("/api/v1/announcements"),
        json!({"title": "Sortie", "body": "Sortie au musée.", "audience": "class",
               "class_ids": [s.class_a.0], "publish_from": now + 3600}),
    )
    .await;
    assert_eq!(st, 201);
    let shown = section(&home(pupil.clone()).await, "announcements");
    assert!(
        shown.contains("Le collège ferme vendredi."),
        "at once: {shown}"
    );
    assert!(!shown.contains("Sortie"), "not before its time: {shown}");

    let (st, _) = post_json(
        &staff,
        app.url(&format!("/api/v1/announcements/{}/withdraw", closed["id"])),
        json!({}),
    )
    .await;
    assert_eq!(st, 204);
    let shown = section(&home(pupil.clone()).await, "announcements");
    assert_eq!(shown, "", "withdrawn at once");

    // Its time comes: no write, and it shows.
    app.clock.advance(3601);
    let shown = section(&home(pupil.clone()).await, "announcements");
    assert!(shown.contains("Sortie au musée."), "{shown}");

    // A teacher joins the class: the class's page of teachers shows them.
    app.store
        .create_teaching(s.teacher_b.id, s.subject, Some(s.class_a), None)
        .await
        .unwrap();
    let teachers = section(&home(pupil).await, "pupil");
    assert!(teachers.contains("benoit TEACHER"), "{teachers}");
}

#[tokio::test]
async fn a_message_to_a_thousand_member_group_reaches_all_and_quarantine_hides_it_from_all() {
    let app = spawn_app().await;
    let s = &app.seeded;
    let rows: Vec<Vec<Val>> = (0..1000)
        .map(|i| {
            vec![
                Val::I(s.establishment.0),
                Val::T(format!("member.{i:04}")),
                Val::T(format!("Membre{i}")),
                Val::T("Groupe".into()),
                Val::I(Roles::only(Role::Pupil).bits()),
                Val::T("active".into()),
                Val::I(0),
            ]
        })
        .collect();
    let inserted = app
        .store
        .insert_many(
            "people",
            &[
                "establishment_id",
                "login",
                "first_name",
                "last_name",
                "roles",
                "status",
                "created_at",
            ],
            rows,
            Some("id"),
        )
        .await
        .unwrap();
    let members: Vec<PersonId> = inserted
        .iter()
        .map(|r| PersonId(ardoise_store::row::Row::try_get::<i64, _>(r, "id").unwrap()))
        .collect();
    let year = app
        .store
        .current_school_year(s.establishment)
        .await
        .unwrap()
        .unwrap()
        .id;
    let group: GroupId = app
        .store
        .create_group(s.establishment, year, "Option latin")
        .await
        .unwrap();
    app.store
        .insert_many(
            "group_members",
            &["group_id", "pupil_id"],
            members
                .iter()
                .map(|m| vec![Val::I(group.0), Val::I(m.0)])
                .collect(),
            None,
        )
        .await
        .unwrap();
    app.store
        .create_teaching(s.teacher_a.id, s.subject, None, Some(group))
        .await
        .unwrap();
    // Sessions load relationships at sign-in: sign in after the teaching.
    let (teacher, _) = app.sign_in(&s.teacher_a).await;

    let started = std::time::Instant::now();
    let (st, sent) = send(
        &app,
        &teacher,
        "Voyage",
        "Réunion d'information mardi.",
        &[format!("group:{}", group.0)],
    )
    .await;
    let send_time = started.elapsed();
    assert_eq!(st, 201, "{sent}");
    for m in &members {
        assert_eq!(
            app.store.unread_count(*m).await.unwrap(),
            1,
            "{m:?} sees it"
        );
    }
    let first = app.store.inbox(members[0], 10, 0).await.unwrap();
    assert_eq!(first[0].subject, "Voyage");

    let (staff, _) = app.sign_in(&s.staff).await;
    let started = std::time::Instant::now();
    let (st, q) = post_json(
        &staff,
        app.url("/api/v1/messages/containment/quarantines"),
        json!({"person_id": s.teacher_a.id.0, "reason": "test"}),
    )
    .await;
    let quarantine_time = started.elapsed();
    assert_eq!(st, 201, "{q}");
    assert_eq!(q["messages"], 1);
    for m in &members {
        assert_eq!(app.store.unread_count(*m).await.unwrap(), 0, "{m:?}");
        assert!(
            app.store.inbox(*m, 10, 0).await.unwrap().is_empty(),
            "{m:?}"
        );
    }
    eprintln!(
        "1,000-member group on {:?}: send {:?} (request, durable), quarantine {:?} (request, durable)",
        app.store.backend(),
        send_time,
        quarantine_time
    );
}

#[tokio::test]
async fn a_pupil_who_changes_class_keeps_old_messages_but_gets_none_of_the_old_class_after() {
    let app = spawn_app().await;
    let s = &app.seeded;
    let (teacher, _) = app.sign_in(&s.teacher_a).await;
    let to = vec![format!("class:{}", s.class_a.0)];
    let (st, _) = send(&app, &teacher, "Avant", "Premier message", &to).await;
    assert_eq!(st, 201);
    assert_eq!(unread(&app, &s.pupil_a).await, 1);
    app.store
        .set_pupil_class(s.pupil_a.id, s.class_b)
        .await
        .unwrap();
    let (st, _) = send(&app, &teacher, "Après", "Second message", &to).await;
    assert_eq!(st, 201);
    let subjects: Vec<String> = app
        .store
        .inbox(s.pupil_a.id, 10, 0)
        .await
        .unwrap()
        .into_iter()
        .map(|l| l.subject)
        .collect();
    assert_eq!(
        subjects,
        vec!["Avant"],
        "recipients were resolved when sent"
    );
}

#[tokio::test]
async fn api_messages_carry_documents_the_sender_may_read_and_nothing_else() {
    let app = spawn_app().await;
    let s = &app.seeded;
    let pdf: &[u8] =
        b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n";
    // Each teacher puts a document in their own space.
    let mut docs = Vec::new();
    for t in [&s.teacher_a, &s.teacher_b] {
        let (c, _) = app.sign_in(t).await;
        let (_, space) = get_json(
            &c,
            app.url(&format!("/api/v1/documents/spaces/person/{}", t.id.0)),
        )
        .await;
        let folder = space["folder"]["id"].as_i64().unwrap();
        let form = Form::new().part("files", Part::bytes(pdf.to_vec()).file_name("fiche.pdf"));
        let r = c
            .post(app.url(&format!("/api/v1/documents/folders/{folder}/files")))
            .multipart(form)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 201);
        let v: Value = r.json().await.unwrap();
        docs.push(v[0]["id"].as_i64().unwrap());
    }
    let (teacher, _) = app.sign_in(&s.teacher_a).await;
    let to = vec![person(&s.pupil_a)];
    // Another teacher's private document, an unknown id: refused whole.
    for bad in [docs[1], 999_999] {
        let (st, b) = post_json(
            &teacher,
            app.url("/api/v1/messages"),
            json!({"subject": "Fiche", "body": "Ci-joint", "to": to, "documents": [bad]}),
        )
        .await;
        assert_eq!((st, b["error"].as_str()), (422, Some("attachment_unknown")));
    }
    assert_eq!(inbox_len(&app, &s.pupil_a).await, 0, "nothing was sent");
    // Their own document travels with the message.
    let (st, sent) = post_json(
        &teacher,
        app.url("/api/v1/messages"),
        json!({"subject": "Fiche", "body": "Ci-joint", "to": to, "documents": [docs[0]]}),
    )
    .await;
    assert_eq!(st, 201, "{sent}");
    let conv = sent["conversation_id"].as_i64().unwrap();
    let (pupil, _) = app.sign_in(&s.pupil_a).await;
    let (_, c) = get_json(&pupil, app.url(&format!("/api/v1/messages/{conv}"))).await;
    let file = &c["messages"][0]["files"][0];
    assert_eq!(file["name"], "fiche.pdf");
    assert_eq!(file["mime"], "application/pdf");
    let r = pupil
        .get(app.url(&format!("/attachments/{}", file["id"])))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.bytes().await.unwrap().as_ref(), pdf);
    // The pupil cannot pass the teacher's document on by its id in a reply.
    let (st, b) = post_json(
        &pupil,
        app.url(&format!("/api/v1/messages/{conv}/reply")),
        json!({"body": "Merci", "documents": [docs[0]]}),
    )
    .await;
    assert_eq!((st, b["error"].as_str()), (422, Some("attachment_unknown")));
    let (_, c) = get_json(&pupil, app.url(&format!("/api/v1/messages/{conv}"))).await;
    assert_eq!(c["messages"].as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn a_reply_can_go_to_one_person_who_wrote_instead_of_everyone() {
    let app = spawn_app().await;
    let s = &app.seeded;
    let (teacher, _) = app.sign_in(&s.teacher_a).await;
    let (st, sent) = send(
        &app,
        &teacher,
        "Sortie au musée",
        "Qui vient ?",
        &[person(&s.pupil_a), person(&s.parent_a)],
    )
    .await;
    assert_eq!(st, 201, "{sent}");
    let conv = sent["conversation_id"].as_i64().unwrap();
    // The pupil's page offers to answer everyone or the teacher alone.
    let pupil_page = app.sign_in_form(&s.pupil_a, false).await;
    let html = pupil_page
        .get(app.url(&format!("/messages/{conv}")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        html.contains(&format!("name=\"only\" value=\"{}\"", s.teacher_a.id.0)),
        "{html}"
    );
    let (pupil, _) = app.sign_in(&s.pupil_a).await;
    let reply = |body: &str, only: Value| json!({"body": body, "only": only});
    // Someone who has not written in the thread cannot be picked alone.
    let (st, b) = post_json(
        &pupil,
        app.url(&format!("/api/v1/messages/{conv}/reply")),
        reply("Pour maman", json!(s.parent_a.id.0)),
    )
    .await;
    assert_eq!((st, b["error"].as_str()), (422, Some("reply_to_unknown")));
    let (st, _) = post_json(
        &pupil,
        app.url(&format!("/api/v1/messages/{conv}/reply")),
        reply("Je viens, monsieur.", json!(s.teacher_a.id.0)),
    )
    .await;
    assert_eq!(st, 201);
    let bodies = |v: &Value| -> Vec<String> {
        v["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["body_html"].as_str().unwrap().to_string())
            .collect()
    };
    let (_, t) = get_json(&teacher, app.url(&format!("/api/v1/messages/{conv}"))).await;
    assert_eq!(bodies(&t).len(), 2, "the teacher gets the reply");
    let (parent, _) = app.sign_in(&s.parent_a).await;
    let (_, p) = get_json(&parent, app.url(&format!("/api/v1/messages/{conv}"))).await;
    assert_eq!(bodies(&p).len(), 1, "the parent does not: {p}");
    // A reply to everyone still reaches both.
    let (st, _) = post_json(
        &pupil,
        app.url(&format!("/api/v1/messages/{conv}/reply")),
        reply("Avec mon frère ?", Value::Null),
    )
    .await;
    assert_eq!(st, 201);
    let (_, p) = get_json(&parent, app.url(&format!("/api/v1/messages/{conv}"))).await;
    assert_eq!(bodies(&p).len(), 2);
}

#[tokio::test]
async fn the_picker_lists_a_class_pupils_and_parents_by_name_for_its_teachers_and_staff() {
    let app = spawn_app().await;
    let s = &app.seeded;
    let url = app.url(&format!(
        "/api/v1/messages/recipients?class={}",
        s.class_a.0
    ));
    let values = |v: &Value| -> Vec<String> {
        v.as_array()
            .unwrap_or_else(|| panic!("a list: {v}"))
            .iter()
            .map(|c| c["value"].as_str().unwrap().to_string())
            .collect()
    };
    for p in [&s.staff, &s.teacher_a] {
        let (c, _) = app.sign_in(p).await;
        let (st, v) = get_json(&c, url.clone()).await;
        assert_eq!(st, 200, "{} {v}", p.login);
        let got = values(&v);
        assert!(got.contains(&person(&s.pupil_a)), "{} {got:?}", p.login);
        assert!(got.contains(&person(&s.parent_a)), "{} {got:?}", p.login);
        assert!(!got.contains(&person(&s.pupil_b)), "another class's pupil");
        assert!(
            !got.contains(&person(&s.parent_b)),
            "another class's parent"
        );
        let parent = v
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["value"] == person(&s.parent_a))
            .unwrap();
        assert!(
            parent["label"].as_str().unwrap().contains("alice PUPIL"),
            "a parent is named with their child: {parent}"
        );
        // And a message to that parent alone goes through.
        let (st, b) = send(&app, &c, "Rendez-vous", "Bonjour", &[person(&s.parent_a)]).await;
        assert_eq!(st, 201, "{} {b}", p.login);
    }
    // Teacher B does not teach 6eA; a pupil lists no class; bad input.
    for (p, status) in [(&s.teacher_b, 404), (&s.pupil_a, 404)] {
        let (c, _) = app.sign_in(p).await;
        assert_eq!(get_json(&c, url.clone()).await.0, status, "{}", p.login);
    }
    let (c, _) = app.sign_in(&s.staff).await;
    let (st, b) = get_json(&c, app.url("/api/v1/messages/recipients?class=six")).await;
    assert_eq!((st, b["error"].as_str()), (400, Some("class_invalid")));
    // The compose page offers the class choice and ticks nothing by itself.
    let page = app.sign_in_form(&s.staff, false).await;
    let html = page
        .get(app.url(&format!("/messages/new?class={}", s.class_a.0)))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("id=\"pick-class\""), "{html}");
    assert!(html.contains(&format!("name=\"to:{}\"", person(&s.parent_a))));
    assert!(!html.contains(" checked>"), "nothing chosen for the user");
}
