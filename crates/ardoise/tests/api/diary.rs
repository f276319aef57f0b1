//! The homework diary: teachers write, pupils and parents read, ticks,
//! scheduled publication, cache invalidation and ETags.

use ardoise_testkit::{client, spawn_app, TestApp};
use serde_json::{json, Value};

async fn set_homework(
    app: &TestApp,
    c: &reqwest::Client,
    class: i64,
    extra: &[(&str, &str)],
) -> reqwest::Response {
    let csrf = app.csrf(c).await;
    let due = app.date_in(1);
    let subject = app.seeded.subject.0.to_string();
    let mut form: Vec<(&str, &str)> = vec![
        ("csrf", &csrf),
        ("subject_id", &subject),
        ("due_on", &due),
        ("minutes", "30"),
    ];
    form.extend_from_slice(extra);
    if !form.iter().any(|(k, _)| *k == "instructions") {
        form.push(("instructions", "Exercices **12 et 13** page 42"));
    }
    c.post(app.url(&format!("/classes/{class}/homework")))
        .form(&form)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn homework_set_by_the_teacher_reaches_the_class_its_parents_and_no_one_else() {
    let app = spawn_app().await;
    let s = &app.seeded;
    let teacher = app.sign_in_form(&s.teacher_a, false).await;
    let r = set_homework(&app, &teacher, s.class_a.0, &[]).await;
    assert_eq!(r.status().as_u16(), 303);
    let pupil = app.sign_in_form(&s.pupil_a, false).await;
    let page = pupil
        .get(app.url("/todo"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Pour demain"), "{page}");
    assert!(
        page.contains("<strong>12 et 13</strong>"),
        "rich text rendered"
    );
    assert!(page.contains("30 min"));
    let parent = app.sign_in_form(&s.parent_a, false).await;
    let page = parent
        .get(app.url(&format!("/pupils/{}/todo", s.pupil_a.id)))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("12 et 13"));
    assert!(
        !page.contains("J&#39;ai fait ce travail"),
        "a parent sees ticks but cannot tick"
    );
    let other = app.sign_in_form(&s.pupil_b, false).await;
    let page = other
        .get(app.url("/todo"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!page.contains("12 et 13"), "another class sees nothing");
    let other_parent = app.sign_in_form(&s.parent_b, false).await;
    let r = other_parent
        .get(app.url(&format!("/pupils/{}/todo", s.pupil_a.id)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);
}

#[tokio::test]
async fn unsafe_or_impossible_homework_is_refused_and_nothing_is_written() {
    let app = spawn_app().await;
    let s = &app.seeded;
    let teacher = app.sign_in_form(&s.teacher_a, false).await;
    let yesterday = app.date_in(-1);
    // (form fields overriding the valid ones, expected status, word the error must contain)
    type Case<'a> = (Vec<(&'a str, &'a str)>, u16, &'a str);
    let cases: Vec<Case> = vec![
        (
            vec![("instructions", "<script>alert(1)</script>")],
            422,
            "HTML",
        ),
        (
            vec![("instructions", "![x](https://cdn.example/x.png)")],
            422,
            "images",
        ),
        (
            vec![("instructions", "[x](javascript:alert(1))")],
            422,
            "liens",
        ),
        (vec![("instructions", "   ")], 422, "vide"),
        (vec![("due_on", yesterday.as_str())], 422, "passée"),
        (vec![("minutes", "9999")], 422, "minutes"),
    ];
    for (extra, status, words) in cases {
        let r = set_homework(&app, &teacher, s.class_a.0, &extra).await;
        assert_eq!(r.status().as_u16(), status, "{extra:?}");
        assert!(r.text().await.unwrap().contains(words), "{extra:?}");
    }
    // A class the teacher does not teach.
    let r = set_homework(&app, &teacher, s.class_b.0, &[]).await;
    assert!(matches!(r.status().as_u16(), 403 | 404));
    let from = app.date_in(-30);
    let to = app.date_in(30);
    let (c, _) = app.sign_in(&s.staff).await;
    for class in [s.class_a, s.class_b] {
        let diary: Value = c
            .get(app.url(&format!(
                "/api/v1/classes/{class}/diary?from={from}&to={to}"
            )))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(
            diary["homework"],
            json!([]),
            "nothing written for class {class}"
        );
    }
}

#[tokio::test]
async fn the_todo_page_is_served_from_memory_with_an_etag_that_follows_every_change() {
    let app = spawn_app().await;
    let s = &app.seeded;
    let pupil = app.sign_in_form(&s.pupil_a, false).await;
    let first = pupil.get(app.url("/todo")).send().await.unwrap();
    let etag = first.headers()["etag"].to_str().unwrap().to_string();
    let again = pupil
        .get(app.url("/todo"))
        .header("If-None-Match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status().as_u16(), 304);
    // A teacher's write changes the pupil's page at once.
    let teacher = app.sign_in_form(&s.teacher_a, false).await;
    set_homework(&app, &teacher, s.class_a.0, &[]).await;
    let after = pupil
        .get(app.url("/todo"))
        .header("If-None-Match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(after.status().as_u16(), 200);
    let etag2 = after.headers()["etag"].to_str().unwrap().to_string();
    assert_ne!(etag, etag2);
    // The pupil's tick changes it too, and shows.
    let list: Vec<Value> = pupil
        .get(app.url(&format!("/api/v1/pupils/{}/todo", s.pupil_a.id)))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["done"], false);
    let id = list[0]["id"].as_i64().unwrap();
    let r = pupil
        .put(app.url(&format!("/api/v1/homework/{id}/done")))
        .json(&json!({"done": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 204);
    let after_tick = pupil
        .get(app.url("/todo"))
        .header("If-None-Match", &etag2)
        .send()
        .await
        .unwrap();
    assert_eq!(after_tick.status().as_u16(), 200);
    assert!(after_tick.text().await.unwrap().contains("✓ Fait"));
    let list: Vec<Value> = pupil
        .get(app.url(&format!("/api/v1/pupils/{}/todo", s.pupil_a.id)))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list[0]["done"], true);
    // Nobody else can tick it.
    let (other, _) = app.sign_in(&s.pupil_b).await;
    let r = other
        .put(app.url(&format!("/api/v1/homework/{id}/done")))
        .json(&json!({"done": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);
}

#[tokio::test]
async fn scheduled_homework_stays_hidden_from_pupils_until_its_time() {
    let app = spawn_app().await;
    let s = &app.seeded;
    let now = ardoise_core::Clock::now(&*app.clock);
    // Typed as the school's wall-clock time (Paris).
    let at = chrono::DateTime::from_timestamp(now + 7200, 0)
        .unwrap()
        .with_timezone(&ardoise_core::diary::DEFAULT_ZONE)
        .format("%Y-%m-%dT%H:%M")
        .to_string();
    let teacher = app.sign_in_form(&s.teacher_a, false).await;
    let due = app.date_in(3);
    assert_eq!(
        set_homework(
            &app,
            &teacher,
            s.class_a.0,
            &[("publish_at", &at), ("due_on", &due)]
        )
        .await
        .status()
        .as_u16(),
        303
    );
    let pupil = app.sign_in_form(&s.pupil_a, false).await;
    assert!(!pupil
        .get(app.url("/todo"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
        .contains("12 et 13"));
    let week = teacher
        .get(app.url(&format!("/classes/{}/diary?week={due}", s.class_a)))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        week.contains("12 et 13") && week.contains("publication prévue"),
        "the teacher sees it scheduled"
    );
    app.clock.advance(7300);
    assert!(pupil
        .get(app.url("/todo"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
        .contains("12 et 13"));
}

#[tokio::test]
async fn a_teacher_copies_homework_to_another_class_they_teach() {
    let app = spawn_app().await;
    let s = &app.seeded;
    app.store
        .create_teaching(s.teacher_a.id, s.subject, Some(s.class_b), None)
        .await
        .unwrap();
    let teacher = app.sign_in_form(&s.teacher_a, false).await;
    let also = format!("also_{}", s.class_b);
    assert_eq!(
        set_homework(&app, &teacher, s.class_a.0, &[(also.as_str(), "1")])
            .await
            .status()
            .as_u16(),
        303
    );
    for p in [&s.pupil_a, &s.pupil_b] {
        let c = app.sign_in_form(p, false).await;
        assert!(
            c.get(app.url("/todo"))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
                .contains("12 et 13"),
            "{}",
            p.login
        );
    }
}

#[tokio::test]
async fn lessons_show_in_the_week_and_in_the_pupils_recent_diary() {
    let app = spawn_app().await;
    let s = &app.seeded;
    let (teacher, _) = app.sign_in(&s.teacher_a).await;
    let today = app.date_in(0);
    let body = json!({"subject_id": s.subject.0.to_string(), "lesson_on": today, "title": "Les fractions", "content": "- simplifier\n- comparer"});
    let r = teacher
        .post(app.url(&format!("/api/v1/classes/{}/lessons", s.class_a)))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    let (parent, _) = app.sign_in(&s.parent_a).await;
    let week = parent
        .get(app.url(&format!("/classes/{}/diary", s.class_a)))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        week.contains("Les fractions") && week.contains("<li>simplifier</li>"),
        "{week}"
    );
    assert!(!week.contains("Écrire une séance"), "no forms for parents");
    let pupil = app.sign_in_form(&s.pupil_a, false).await;
    assert!(pupil
        .get(app.url("/todo"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
        .contains("Les fractions"));
    let r = client()
        .get(app.url(&format!("/classes/{}/diary", s.class_a)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 303, "signed out: to the sign-in page");
}
