//! Teaching groups in the diary: lessons and homework for a group reach
//! its members and their parents, alongside their class's; staff read;
//! nobody else sees them; a group's write changes its members' views and
//! no one else's; hand-ins and the roster follow the group's members.

use ardoise_core::{Role, Roles};
use ardoise_store::{AccountStatus, PersonInsertForm};
use ardoise_testkit::{spawn_app, Person, TestApp, PASSWORD};
use serde_json::Value;

/// A pupil of 6eA who is not in the group, signed in through the form.
async fn classmate(app: &TestApp) -> (Person, reqwest::Client) {
    let form = PersonInsertForm {
        establishment_id: app.seeded.establishment,
        login: ardoise_core::Login::parse("chloe.pupil").unwrap(),
        first_name: "Chloé".into(),
        last_name: "Classmate".into(),
        roles: Roles::only(Role::Pupil),
        title: String::new(),
        status: AccountStatus::Active,
        password_hash: Some(ardoise_web::auth::hash_password_blocking(PASSWORD).unwrap()),
        created_at: 0,
    };
    let id = app.store.create_person(&form).await.unwrap();
    app.store
        .set_pupil_class(id, app.seeded.class_a)
        .await
        .unwrap();
    let p = Person {
        id,
        login: "chloe.pupil".into(),
        password: PASSWORD.into(),
    };
    let c = app.sign_in_form(&p, false).await;
    (p, c)
}

async fn group_homework(app: &TestApp, c: &reqwest::Client, text: &str) -> u16 {
    let csrf = app.csrf(c).await;
    let due = app.date_in(1);
    let subject = app.seeded.subject.0.to_string();
    c.post(app.url(&format!("/groups/{}/homework", app.seeded.group_a)))
        .form(&[
            ("csrf", csrf.as_str()),
            ("subject_id", &subject),
            ("due_on", &due),
            ("instructions", text),
        ])
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// How many homework items the caller's timeline shows.
async fn homework_news(app: &TestApp, c: &reqwest::Client) -> usize {
    let tl: Value = c
        .get(app.url("/api/v1/timeline"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    tl.as_array()
        .unwrap()
        .iter()
        .filter(|i| i["kind"] == "homework")
        .count()
}

async fn text(c: &reqwest::Client, url: String) -> (u16, String) {
    let r = c.get(url).send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

async fn etag(c: &reqwest::Client, url: String) -> String {
    let r = c.get(url).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    r.headers()["etag"].to_str().unwrap().to_string()
}

async fn status_with(c: &reqwest::Client, url: String, etag: &str) -> u16 {
    c.get(url)
        .header("If-None-Match", etag)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn group_homework_reaches_its_members_and_their_parents_and_no_one_else() {
    let app = spawn_app().await;
    let s = &app.seeded;
    let (chloe_person, chloe) = classmate(&app).await;
    let chloe_id = chloe_person.id;
    let teacher = app.sign_in_form(&s.teacher_a, false).await;
    assert_eq!(
        group_homework(&app, &teacher, "Fiche de **soutien** n°3").await,
        303
    );
    let group_diary = app.url(&format!("/groups/{}/diary", s.group_a));

    // The member sees it in « À faire », with the group's name.
    let pupil = app.sign_in_form(&s.pupil_a, false).await;
    let (_, page) = text(&pupil, app.url("/todo")).await;
    assert!(page.contains("<strong>soutien</strong>"), "{page}");
    assert!(page.contains("Soutien 6e"), "the group is named: {page}");
    // Their parent too.
    let parent = app.sign_in_form(&s.parent_a, false).await;
    let (_, page) = text(&parent, app.url(&format!("/pupils/{}/todo", s.pupil_a.id))).await;
    assert!(page.contains("n°3"), "{page}");
    // A classmate outside the group, a pupil of another class, a parent of
    // another child: nothing, and the group's week is not found.
    let (_, page) = text(&chloe, app.url("/todo")).await;
    assert!(!page.contains("n°3"), "a classmate outside the group");
    assert_eq!(text(&chloe, group_diary.clone()).await.0, 404);
    let other = app.sign_in_form(&s.pupil_b, false).await;
    assert!(!text(&other, app.url("/todo")).await.1.contains("n°3"));
    let other_parent = app.sign_in_form(&s.parent_b, false).await;
    assert_eq!(text(&other_parent, group_diary.clone()).await.0, 404);
    // A teacher who does not teach the group: neither reads nor writes.
    let teacher_b = app.sign_in_form(&s.teacher_b, false).await;
    assert_eq!(text(&teacher_b, group_diary.clone()).await.0, 404);
    let refused = group_homework(&app, &teacher_b, "Intrus").await;
    assert!(matches!(refused, 403 | 404), "{refused}");
    // Staff read the group's week, without the teacher's forms.
    let staff = app.sign_in_form(&s.staff, false).await;
    let (status, page) = text(&staff, group_diary.clone()).await;
    assert_eq!(status, 200);
    assert!(page.contains("n°3"));
    assert!(!page.contains("name=\"instructions\""), "staff read only");
    let (_, page) = text(&teacher, group_diary).await;
    assert!(page.contains("name=\"instructions\""), "its teacher writes");
    assert!(!page.contains("Intrus"), "the refused write left nothing");

    // The API twins say the same.
    let (api, _) = app.sign_in(&s.pupil_a).await;
    let list: Vec<Value> = api
        .get(app.url(&format!("/api/v1/pupils/{}/todo", s.pupil_a.id)))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["group_id"], s.group_a.0);
    assert_eq!(list[0]["class_id"], Value::Null);
    let week: Value = api
        .get(app.url(&format!(
            "/api/v1/groups/{}/diary?from={}&to={}",
            s.group_a,
            app.date_in(0),
            app.date_in(2)
        )))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(week["homework"].as_array().map(Vec::len), Some(1));
    let (api_b, _) = app.sign_in(&s.pupil_b).await;
    let r = api_b
        .get(app.url(&format!("/api/v1/groups/{}/diary", s.group_a)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);

    // "What is new for me": the member and their parent see the group's
    // homework in their timeline; a classmate outside the group does not.
    assert_eq!(homework_news(&app, &api).await, 1, "the member's timeline");
    let (api_parent, _) = app.sign_in(&s.parent_a).await;
    assert_eq!(homework_news(&app, &api_parent).await, 1, "their parent's");
    let (api_chloe, _) = app
        .sign_in(&Person {
            id: chloe_id,
            login: "chloe.pupil".into(),
            password: PASSWORD.into(),
        })
        .await;
    assert_eq!(
        homework_news(&app, &api_chloe).await,
        0,
        "a classmate outside it"
    );
    assert_eq!(homework_news(&app, &api_b).await, 0, "another class");
}

#[tokio::test]
async fn a_group_write_changes_its_members_views_and_not_the_rest_of_the_class() {
    let app = spawn_app().await;
    let s = &app.seeded;
    let (_, chloe) = classmate(&app).await;
    let pupil = app.sign_in_form(&s.pupil_a, false).await;
    let todo = || app.url("/todo");
    let class_week = app.url(&format!("/classes/{}/diary", s.class_a));
    let group_week = app.url(&format!("/groups/{}/diary", s.group_a));
    let member_todo = etag(&pupil, todo()).await;
    let member_group_week = etag(&pupil, group_week.clone()).await;
    let classmate_todo = etag(&chloe, todo()).await;
    let classmate_week = etag(&chloe, class_week.clone()).await;
    assert_eq!(
        status_with(&chloe, class_week.clone(), &classmate_week).await,
        304
    );

    let teacher = app.sign_in_form(&s.teacher_a, false).await;
    assert_eq!(group_homework(&app, &teacher, "Fiche n°4").await, 303);

    assert_eq!(status_with(&pupil, todo(), &member_todo).await, 200);
    assert_eq!(
        status_with(&pupil, group_week.clone(), &member_group_week).await,
        200
    );
    assert_eq!(
        status_with(&chloe, todo(), &classmate_todo).await,
        304,
        "the group's write leaves the rest of the class's page as it was"
    );
    assert_eq!(status_with(&chloe, class_week, &classmate_week).await, 304);
}

#[tokio::test]
async fn the_class_week_is_served_from_memory_and_a_write_invalidates_it() {
    let app = spawn_app().await;
    let s = &app.seeded;
    let pupil = app.sign_in_form(&s.pupil_a, false).await;
    let week = app.url(&format!("/classes/{}/diary", s.class_a));
    let first = etag(&pupil, week.clone()).await;
    assert_eq!(status_with(&pupil, week.clone(), &first).await, 304);
    let teacher = app.sign_in_form(&s.teacher_a, false).await;
    let csrf = app.csrf(&teacher).await;
    let today = app.date_in(0);
    let r = teacher
        .post(app.url(&format!("/classes/{}/lessons", s.class_a)))
        .form(&[
            ("csrf", csrf.as_str()),
            ("subject_id", "1"),
            ("lesson_on", &today),
            ("title", "Les fractions"),
            ("content", "Partager une tarte."),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 303);
    let after = pupil
        .get(week.clone())
        .header("If-None-Match", &first)
        .send()
        .await
        .unwrap();
    assert_eq!(after.status().as_u16(), 200);
    let second = after.headers()["etag"].to_str().unwrap().to_string();
    assert_ne!(first, second);
    assert!(after.text().await.unwrap().contains("Les fractions"));
    // The teacher's own view shows the delete button; the pupil's does not.
    let (_, mine) = text(&teacher, week.clone()).await;
    assert!(mine.contains("/delete"), "the author may delete");
    let (_, theirs) = text(&pupil, week).await;
    assert!(!theirs.contains("/delete"));
}

#[tokio::test]
async fn a_groups_assignment_collects_hand_ins_from_its_members_only() {
    let app = spawn_app().await;
    let s = &app.seeded;
    let (chloe_person, _) = classmate(&app).await;
    let (teacher, _) = app.sign_in(&s.teacher_a).await;
    let due = app.date_in(2);
    let r = teacher
        .post(app.url(&format!("/api/v1/groups/{}/homework", s.group_a)))
        .json(&serde_json::json!({
            "subject_id": "1", "due_on": due, "instructions": "Rédaction", "hand_in": true
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    let id = r.json::<Value>().await.unwrap()["ids"][0].as_i64().unwrap();
    let hand_in = |c: &reqwest::Client| {
        let form = reqwest::multipart::Form::new().text("text", "Ma rédaction");
        c.put(app.url(&format!("/api/v1/homework/{id}/submission")))
            .multipart(form)
            .send()
    };
    let (pupil, _) = app.sign_in(&s.pupil_a).await;
    assert_eq!(hand_in(&pupil).await.unwrap().status().as_u16(), 200);
    let (chloe_api, _) = app.sign_in(&chloe_person).await;
    let refused = hand_in(&chloe_api).await.unwrap().status().as_u16();
    assert!(matches!(refused, 403 | 404), "{refused}");
    let roster: Vec<Value> = teacher
        .get(app.url(&format!("/api/v1/homework/{id}/submissions")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(roster.len(), 1, "the group's members only: {roster:?}");
    assert_eq!(roster[0]["pupil_id"], s.pupil_a.id.0);
    assert_eq!(roster[0]["status"], "handed_in");
    let r = teacher
        .put(app.url(&format!("/api/v1/homework/{id}/feedback/{}", s.pupil_a.id)))
        .json(&serde_json::json!({"comment": "Très bien"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let (parent, _) = app.sign_in(&s.parent_a).await;
    let seen: Value = parent
        .get(app.url(&format!("/api/v1/pupils/{}/homework/{id}", s.pupil_a.id)))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(seen["feedback"]["comment_html"]
        .as_str()
        .unwrap_or_default()
        .contains("Très bien"));
    let archive = teacher
        .get(app.url(&format!("/homework/{id}/archive")))
        .send()
        .await
        .unwrap();
    assert_eq!(archive.status().as_u16(), 200);
}

#[tokio::test]
async fn homework_is_copied_from_a_class_to_a_group_the_teacher_teaches() {
    let app = spawn_app().await;
    let s = &app.seeded;
    let (_, chloe) = classmate(&app).await;
    let teacher = app.sign_in_form(&s.teacher_a, false).await;
    // The class's week offers the group as a copy target.
    let (_, week) = text(&teacher, app.url(&format!("/classes/{}/diary", s.class_a))).await;
    let field = format!("also_group_{}", s.group_a);
    assert!(week.contains(&field), "{week}");
    assert!(week.contains("Soutien 6e"));
    // Set for the group, copied to the class: the classmate outside the
    // group gets the class's copy; the group's week holds one copy.
    let csrf = app.csrf(&teacher).await;
    let due = app.date_in(1);
    let also = format!("also_{}", s.class_a);
    let r = teacher
        .post(app.url(&format!("/groups/{}/homework", s.group_a)))
        .form(&[
            ("csrf", csrf.as_str()),
            ("subject_id", "1"),
            ("due_on", &due),
            ("instructions", "Problème du jour"),
            (also.as_str(), "1"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 303);
    assert!(text(&chloe, app.url("/todo"))
        .await
        .1
        .contains("Problème du jour"));
    let (api, _) = app.sign_in(&s.teacher_a).await;
    let group_week: Value = api
        .get(app.url(&format!(
            "/api/v1/groups/{}/diary?from={due}&to={due}",
            s.group_a
        )))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(group_week["homework"].as_array().map(Vec::len), Some(1));
    // Copying to a group one does not teach is refused, and writes nothing.
    let teacher_b = app.sign_in_form(&s.teacher_b, false).await;
    let csrf = app.csrf(&teacher_b).await;
    let r = teacher_b
        .post(app.url(&format!("/classes/{}/homework", s.class_b)))
        .form(&[
            ("csrf", csrf.as_str()),
            ("subject_id", "1"),
            ("due_on", &due),
            ("instructions", "Copie interdite"),
            (field.as_str(), "1"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    let pupil_b = app.sign_in_form(&s.pupil_b, false).await;
    assert!(!text(&pupil_b, app.url("/todo"))
        .await
        .1
        .contains("Copie interdite"));
}
