//! The establishment's time zone: "today", due dates, deadlines typed in
//! forms, scheduled times and lateness follow the school's clock (Europe/
//! Paris by default), not UTC. Time is moved with the app's ManualClock.

use ardoise_testkit::{spawn_app, TestApp};
use serde_json::{json, Value};

fn utc(y: i32, m: u32, d: u32, h: u32, min: u32) -> i64 {
    chrono::NaiveDate::from_ymd_opt(y, m, d)
        .and_then(|d| d.and_hms_opt(h, min, 0))
        .unwrap()
        .and_utc()
        .timestamp()
}

/// Sets an assignment for class 6eA through the API; returns its id.
async fn assignment(app: &TestApp, c: &reqwest::Client, due: &str, deadline: &str) -> i64 {
    let r = c
        .post(app.url(&format!("/api/v1/classes/{}/homework", app.seeded.class_a)))
        .json(&json!({
            "subject_id": "1", "due_on": due, "instructions": "Rédaction",
            "hand_in": true, "deadline_at": deadline
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201, "{}", r.text().await.unwrap());
    r.json::<Value>().await.unwrap()["ids"][0].as_i64().unwrap()
}

async fn deadline_of(app: &TestApp, c: &reqwest::Client, id: i64) -> i64 {
    c.get(app.url(&format!("/api/v1/homework/{id}")))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap()["deadline_at"]
        .as_i64()
        .unwrap()
}

#[tokio::test]
async fn just_after_midnight_in_paris_homework_due_that_day_is_for_today() {
    let app = spawn_app().await;
    let s = &app.seeded;
    // Tuesday 24 November 2026, 23:30 UTC: already Wednesday 25 in Paris.
    app.clock.set(utc(2026, 11, 24, 23, 30));
    let (teacher, _) = app.sign_in(&s.teacher_a).await;
    // Due "yesterday" by the school's clock: refused, nothing written.
    let r = teacher
        .post(app.url(&format!("/api/v1/classes/{}/homework", s.class_a)))
        .json(&json!({"subject_id": "1", "due_on": "2026-11-24", "instructions": "Trop tard"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 422);
    let r = teacher
        .post(app.url(&format!("/api/v1/classes/{}/homework", s.class_a)))
        .json(&json!({"subject_id": "1", "due_on": "2026-11-25", "instructions": "Réciter la poésie"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    let pupil = app.sign_in_form(&s.pupil_a, false).await;
    let page = pupil
        .get(app.url("/todo"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Réciter la poésie"));
    assert!(!page.contains("Trop tard"));
    assert!(
        page.contains("Pour aujourd&#39;hui") || page.contains("Pour aujourd'hui"),
        "{page}"
    );
    assert!(
        !page.contains("Pour demain"),
        "UTC would say tomorrow: {page}"
    );
    // The week shown is the school's week: Sunday 23:30 UTC is Monday in Paris.
    app.clock.set(utc(2026, 11, 29, 23, 30));
    let pupil = app.sign_in_form(&s.pupil_a, false).await;
    let week = pupil
        .get(app.url(&format!("/classes/{}/diary", s.class_a)))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(week.contains("30/11/2026"), "the week of Monday 30: {week}");
}

#[tokio::test]
async fn a_deadline_typed_as_18_00_is_18_00_at_school_on_both_sides_of_summer_time() {
    let app = spawn_app().await;
    let s = &app.seeded;
    app.clock.set(utc(2027, 3, 20, 10, 0));
    let (teacher, _) = app.sign_in(&s.teacher_a).await;
    // Winter time (UTC+1) before 28 March 2027, summer time (UTC+2) after.
    let winter = assignment(&app, &teacher, "2027-03-27", "2027-03-27T18:00").await;
    let summer = assignment(&app, &teacher, "2027-03-29", "2027-03-29T18:00").await;
    let default = assignment(&app, &teacher, "2027-03-30", "").await;
    assert_eq!(
        deadline_of(&app, &teacher, winter).await,
        utc(2027, 3, 27, 17, 0)
    );
    assert_eq!(
        deadline_of(&app, &teacher, summer).await,
        utc(2027, 3, 29, 16, 0)
    );
    assert_eq!(
        deadline_of(&app, &teacher, default).await,
        utc(2027, 3, 30, 6, 0),
        "the due date at 08:00 in Paris"
    );
    // A time the clocks skip is refused.
    let r = teacher
        .post(app.url(&format!("/api/v1/classes/{}/homework", s.class_a)))
        .json(&json!({
            "subject_id": "1", "due_on": "2027-03-28", "instructions": "x",
            "hand_in": true, "deadline_at": "2027-03-28T02:30"
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 422);
    // The page shows it as typed.
    let pupil = app.sign_in_form(&s.pupil_a, false).await;
    let page = pupil
        .get(app.url(&format!("/homework/{summer}")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("29/03/2027 18:00"), "{page}");
    // Lateness by the same clock: 17:59 in Paris is on time, 18:01 is not.
    let hand_in = |c: &reqwest::Client| {
        c.put(app.url(&format!("/api/v1/homework/{summer}/submission")))
            .multipart(reqwest::multipart::Form::new().text("text", "Ma rédaction"))
            .send()
    };
    app.clock.set(utc(2027, 3, 29, 15, 59));
    let (api, _) = app.sign_in(&s.pupil_a).await;
    assert_eq!(hand_in(&api).await.unwrap().status().as_u16(), 200);
    app.clock.set(utc(2027, 3, 29, 16, 1));
    assert_eq!(hand_in(&api).await.unwrap().status().as_u16(), 422);
}

#[tokio::test]
async fn each_establishment_has_its_own_time_zone() {
    let app = spawn_app().await;
    let s = &app.seeded;
    app.store
        .set_establishment_time_zone(s.establishment, "America/Martinique")
        .await
        .unwrap();
    app.state.diary.invalidate_zone(s.establishment);
    app.clock.set(utc(2027, 1, 10, 12, 0));
    let (teacher, _) = app.sign_in(&s.teacher_a).await;
    let id = assignment(&app, &teacher, "2027-01-12", "2027-01-12T18:00").await;
    // Martinique is UTC-4 all year.
    assert_eq!(
        deadline_of(&app, &teacher, id).await,
        utc(2027, 1, 12, 22, 0)
    );
}
