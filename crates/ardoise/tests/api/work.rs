//! Assignments: attachments, hand-ins and their receipts, replacement until
//! the deadline, feedback seen by the pupil and their parents, the archive,
//! and every refusal leaving nothing written.

use ardoise_testkit::{spawn_app, spawn_app_with, TestApp};
use reqwest::multipart::{Form, Part};
use serde_json::Value;
use std::io::Read;

const PDF: &[u8] =
    b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n";

fn file_part(name: &str, bytes: &[u8]) -> Part {
    Part::bytes(bytes.to_vec()).file_name(name.to_string())
}

/// Teacher A sets an assignment for 6eA with a PDF, through the HTML form
/// (multipart, as a browser sends it). Returns its id.
async fn set_assignment(app: &TestApp, teacher: &reqwest::Client, extra: &[(&str, &str)]) -> i64 {
    let csrf = app.csrf(teacher).await;
    let mut form = Form::new()
        .text("csrf", csrf)
        .text("subject_id", app.seeded.subject.0.to_string())
        .text("due_on", app.date_in(2))
        .text("instructions", "Rédiger la **rédaction** page 12")
        .text("hand_in", "1")
        .text("mark_scale", "20")
        .part("files", file_part("consignes.pdf", PDF));
    for (k, v) in extra {
        form = form.text(k.to_string(), v.to_string());
    }
    let r = teacher
        .post(app.url(&format!("/classes/{}/homework", app.seeded.class_a.0)))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 303, "{}", r.text().await.unwrap());
    let diary: Value = teacher
        .get(app.url(&format!(
            "/api/v1/classes/{}/diary?from={}&to={}",
            app.seeded.class_a.0,
            app.date_in(0),
            app.date_in(7)
        )))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    diary["homework"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| h["hand_in"] == true)
        .filter_map(|h| h["id"].as_i64())
        .max()
        .expect("the assignment is in the class diary")
}

async fn hand_in(
    app: &TestApp,
    c: &reqwest::Client,
    id: i64,
    text: &str,
    files: &[(&str, &[u8])],
) -> reqwest::Response {
    let mut form = Form::new().text("text", text.to_string());
    for (name, bytes) in files {
        form = form.part("files", file_part(name, bytes));
    }
    c.put(app.url(&format!("/api/v1/homework/{id}/submission")))
        .multipart(form)
        .send()
        .await
        .unwrap()
}

async fn json(c: &reqwest::Client, url: String) -> (u16, Value) {
    let r = c.get(url).send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn an_attached_pdf_reaches_the_class_and_no_one_else() {
    let app = spawn_app().await;
    let s = &app.seeded;
    let teacher = app.sign_in_form(&s.teacher_a, false).await;
    let id = set_assignment(&app, &teacher, &[]).await;
    let pupil = app.sign_in_form(&s.pupil_a, false).await;
    let todo = pupil
        .get(app.url("/todo"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(todo.contains("consignes.pdf"), "{todo}");
    assert!(todo.contains(&format!("/homework/{id}")), "link to hand in");
    let (_, h) = json(&pupil, app.url(&format!("/api/v1/homework/{id}"))).await;
    let file_id = h["files"][0]["id"].as_i64().unwrap();
    let r = pupil
        .get(app.url(&format!("/attachments/{file_id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.headers()["content-type"], "application/pdf");
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    let etag = r.headers()["etag"].to_str().unwrap().to_string();
    assert_eq!(r.bytes().await.unwrap().as_ref(), PDF);
    // A weak connection resumes: the rest of the file from byte 10.
    let r = pupil
        .get(app.url(&format!("/attachments/{file_id}")))
        .header("range", "bytes=10-")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 206);
    assert_eq!(r.bytes().await.unwrap().as_ref(), &PDF[10..]);
    // A second visit costs nothing.
    let r = pupil
        .get(app.url(&format!("/attachments/{file_id}")))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 304);
    // Parent A sees it; pupil B and parent B do not, by any of these URLs.
    let parent = app.sign_in_form(&s.parent_a, false).await;
    let r = parent
        .get(app.url(&format!("/attachments/{file_id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    for other in [&s.pupil_b, &s.parent_b] {
        let c = app.sign_in_form(other, false).await;
        for path in [
            format!("/attachments/{file_id}"),
            format!("/homework/{id}"),
            format!("/api/v1/homework/{id}"),
        ] {
            let r = c.get(app.url(&path)).send().await.unwrap();
            assert_eq!(r.status().as_u16(), 404, "{} on {path}", other.login);
        }
        let page = c
            .get(app.url("/todo"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(!page.contains("consignes.pdf"), "{}", other.login);
    }
}

#[tokio::test]
async fn a_hand_in_gets_a_receipt_can_be_replaced_and_the_teacher_returns_feedback() {
    let app = spawn_app().await;
    let s = &app.seeded;
    let teacher = app.sign_in_form(&s.teacher_a, false).await;
    let id = set_assignment(&app, &teacher, &[]).await;
    let (pupil, _) = app.sign_in(&s.pupil_a).await;
    let r = hand_in(&app, &pupil, id, "Ma rédaction", &[("copie.pdf", PDF)]).await;
    assert_eq!(r.status().as_u16(), 200);
    let first: Value = r.json().await.unwrap();
    assert_eq!(first["revision"], 1);
    assert_eq!(first["late"], false);
    assert_eq!(first["files"][0]["name"], "copie.pdf");
    assert_eq!(first["size"], (PDF.len() + "Ma rédaction".len()) as i64);
    assert_eq!(first["sha256"].as_str().unwrap().len(), 64);
    // The file handed in is exactly what was sent.
    let fid = first["files"][0]["id"].as_i64().unwrap();
    let got = pupil
        .get(app.url(&format!("/attachments/{fid}")))
        .send()
        .await
        .unwrap();
    assert_eq!(got.bytes().await.unwrap().as_ref(), PDF);
    // Replaced before the deadline: one submission, the new one, whole.
    let v2 = b"%PDF-1.4\nversion 2\n%%EOF\n";
    let r = hand_in(
        &app,
        &pupil,
        id,
        "",
        &[("copie-v2.pdf", v2), ("annexe.txt", b"notes")],
    )
    .await;
    let second: Value = r.json().await.unwrap();
    assert_eq!(second["revision"], 2);
    assert_ne!(second["sha256"], first["sha256"]);
    let names: Vec<&str> = second["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["copie-v2.pdf", "annexe.txt"]);
    // The teacher sees who handed in.
    let (status, roster) = json(
        &teacher,
        app.url(&format!("/api/v1/homework/{id}/submissions")),
    )
    .await;
    assert_eq!(status, 200);
    let mine = roster
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["pupil_id"] == s.pupil_a.id.0)
        .unwrap();
    assert_eq!(mine["status"], "handed_in");
    assert_eq!(mine["submission"]["revision"], 2);
    assert!(roster
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["pupil_id"] != s.pupil_a.id.0)
        .all(|r| r["status"] == "missing"));
    let page = teacher
        .get(app.url(&format!("/homework/{id}")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("copie-v2.pdf") && page.contains("Non rendu"),
        "{page}"
    );
    // Feedback with a mark, through the form with an annotated file.
    let csrf = app.csrf(&teacher).await;
    let form = Form::new()
        .text("csrf", csrf)
        .text("comment", "Très bien, *attention* à l'orthographe")
        .text("mark", "15,5")
        .part("file", file_part("corrige.pdf", PDF));
    let r = teacher
        .post(app.url(&format!("/homework/{id}/feedback/{}", s.pupil_a.id.0)))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 303);
    // The pupil and their parent see it; the parent sees the hand-in too.
    let (_, mine) = json(&pupil, app.url(&format!("/api/v1/homework/{id}"))).await;
    assert_eq!(mine["feedback"]["mark"], 15.5);
    assert_eq!(mine["feedback"]["files"][0]["name"], "corrige.pdf");
    let parent = app.sign_in_form(&s.parent_a, false).await;
    let page = parent
        .get(app.url(&format!("/pupils/{}/homework/{id}", s.pupil_a.id.0)))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("15,5/20"), "{page}");
    assert!(page.contains("copie-v2.pdf") && page.contains("corrige.pdf"));
    assert!(
        page.contains(second["sha256"].as_str().unwrap()),
        "the receipt"
    );
    // Pupil B's parent sees none of it.
    let other = app.sign_in_form(&s.parent_b, false).await;
    let r = other
        .get(app.url(&format!("/pupils/{}/homework/{id}", s.pupil_a.id.0)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);
    // The archive holds the pupil's files and receipt.
    let r = teacher
        .get(app.url(&format!("/homework/{id}/archive")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.headers()["content-type"], "application/zip");
    let bytes = r.bytes().await.unwrap();
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes.to_vec())).unwrap();
    let names: Vec<String> = zip.file_names().map(str::to_string).collect();
    let pdf = names
        .iter()
        .find(|n| n.ends_with("/copie-v2.pdf"))
        .expect("the file")
        .clone();
    assert!(names.iter().any(|n| n.ends_with("/reçu.txt")), "{names:?}");
    assert!(
        !names.iter().any(|n| n.ends_with("/copie.pdf")),
        "replaced file is gone"
    );
    let mut content = Vec::new();
    zip.by_name(&pdf)
        .unwrap()
        .read_to_end(&mut content)
        .unwrap();
    assert_eq!(content, v2);
    // Homework that was handed in cannot be deleted.
    let csrf = app.csrf(&teacher).await;
    let r = teacher
        .post(app.url(&format!("/homework/{id}/delete")))
        .form(&[("csrf", csrf)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 409);
}

#[tokio::test]
async fn refused_hand_ins_change_nothing() {
    let app = spawn_app_with(ardoise_web::WebConfig {
        max_upload_bytes: 1024,
        ..Default::default()
    })
    .await;
    let s = &app.seeded;
    let teacher = app.sign_in_form(&s.teacher_a, false).await;
    let id = set_assignment(&app, &teacher, &[]).await;
    let (pupil, _) = app.sign_in(&s.pupil_a).await;
    let r = hand_in(&app, &pupil, id, "Première version", &[]).await;
    assert_eq!(r.status().as_u16(), 200);
    let before: Value = r.json().await.unwrap();
    let big = vec![b'a'; 2048];
    let long_name = format!("{}.pdf", "a".repeat(1000));
    // (text, files, expected status, expected error code)
    type Case<'a> = (&'a str, Vec<(&'a str, &'a [u8])>, u16, &'a str);
    let cases: Vec<Case> = vec![
        ("", vec![], 422, "submission_empty"),
        ("<script>alert(1)</script>", vec![], 422, "html_not_allowed"),
        ("x", vec![("gros.txt", &big)], 413, "file_too_large"),
        ("x", vec![("vide.pdf", b"")], 422, "file_empty"),
        (
            "x",
            vec![("dossier/copie.pdf", PDF)],
            422,
            "file_name_invalid",
        ),
        ("x", vec![(&long_name, PDF)], 422, "file_name_invalid"),
    ];
    for (text, files, status, code) in cases {
        let names: Vec<&str> = files.iter().map(|(n, _)| *n).collect();
        let r = hand_in(&app, &pupil, id, text, &files).await;
        assert_eq!(r.status().as_u16(), status, "{text:?} {names:?}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"], code, "{body}");
        assert!(!body["message"].as_str().unwrap_or("").is_empty());
    }
    // A pupil of another class cannot hand in.
    let (other, _) = app.sign_in(&s.pupil_b).await;
    let r = hand_in(&app, &other, id, "x", &[]).await;
    assert_eq!(r.status().as_u16(), 404);
    // After the deadline (no late hand-ins): refused.
    app.clock.advance(3 * 86400);
    let (pupil, _) = app.sign_in(&s.pupil_a).await;
    let (teacher, _) = app.sign_in(&s.teacher_a).await;
    let r = hand_in(&app, &pupil, id, "Trop tard", &[]).await;
    assert_eq!(r.status().as_u16(), 422);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "deadline_passed");
    let (_, now) = json(&pupil, app.url(&format!("/api/v1/homework/{id}"))).await;
    assert_eq!(now["submission"]["sha256"], before["sha256"], "unchanged");
    assert_eq!(now["submission"]["revision"], 1);
    assert_eq!(now["open"], false);
    // Feedback off the scale is refused too.
    let r = teacher
        .put(app.url(&format!(
            "/api/v1/homework/{id}/feedback/{}",
            s.pupil_a.id.0
        )))
        .json(&serde_json::json!({"mark": "21"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 422);
    let (_, now) = json(&pupil, app.url(&format!("/api/v1/homework/{id}"))).await;
    assert!(now["feedback"].is_null());
}

#[tokio::test]
async fn late_hand_ins_are_accepted_and_flagged_when_the_teacher_allows_them() {
    let app = spawn_app().await;
    let s = &app.seeded;
    let teacher = app.sign_in_form(&s.teacher_a, false).await;
    let id = set_assignment(&app, &teacher, &[("late_allowed", "1")]).await;
    app.clock.advance(3 * 86400);
    let (pupil, _) = app.sign_in(&s.pupil_a).await;
    let (teacher, _) = app.sign_in(&s.teacher_a).await;
    let r = hand_in(&app, &pupil, id, "En retard, pardon", &[]).await;
    assert_eq!(r.status().as_u16(), 200);
    let receipt: Value = r.json().await.unwrap();
    assert_eq!(receipt["late"], true);
    let (_, roster) = json(
        &teacher,
        app.url(&format!("/api/v1/homework/{id}/submissions")),
    )
    .await;
    assert!(roster
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["pupil_id"] == s.pupil_a.id.0 && r["status"] == "late"));
}

#[tokio::test]
async fn two_tabs_handing_in_at_once_leave_one_whole_submission() {
    let app = spawn_app().await;
    let s = &app.seeded;
    let teacher = app.sign_in_form(&s.teacher_a, false).await;
    let id = set_assignment(&app, &teacher, &[]).await;
    let (pupil, _) = app.sign_in(&s.pupil_a).await;
    let contents: Vec<Vec<u8>> = (0..6)
        .map(|i| format!("%PDF-1.4\ntab {i}\n%%EOF\n").into_bytes())
        .collect();
    let sends = contents.iter().enumerate().map(|(i, c)| {
        let name = format!("onglet-{i}.pdf");
        let pupil = pupil.clone();
        let app = &app;
        async move {
            hand_in(
                app,
                &pupil,
                id,
                &format!("onglet {i}"),
                &[(&name, c), ("commun.txt", b"x")],
            )
            .await
            .status()
            .as_u16()
        }
    });
    let statuses = futures_util::future::join_all(sends).await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    let (_, h) = json(&pupil, app.url(&format!("/api/v1/homework/{id}"))).await;
    let sub = &h["submission"];
    assert_eq!(sub["revision"], 6, "each hand-in replaced the previous");
    let files = sub["files"].as_array().unwrap();
    assert_eq!(files.len(), 2, "one tab's files, not a mix: {files:?}");
    let tab = files[0]["name"].as_str().unwrap();
    let i: usize = tab
        .trim_start_matches("onglet-")
        .trim_end_matches(".pdf")
        .parse()
        .unwrap();
    assert!(sub["text_html"]
        .as_str()
        .unwrap()
        .contains(&format!("onglet {i}")));
    let fid = files[0]["id"].as_i64().unwrap();
    let got = pupil
        .get(app.url(&format!("/attachments/{fid}")))
        .send()
        .await
        .unwrap();
    assert_eq!(got.bytes().await.unwrap().as_ref(), contents[i].as_slice());
}

#[tokio::test]
async fn html_and_svg_uploads_are_downloaded_never_rendered() {
    let app = spawn_app().await;
    let s = &app.seeded;
    let teacher = app.sign_in_form(&s.teacher_a, false).await;
    let id = set_assignment(&app, &teacher, &[]).await;
    let (pupil, _) = app.sign_in(&s.pupil_a).await;
    let svg = b"<svg xmlns=\"http://www.w3.org/2000/svg\"><script>alert(1)</script></svg>";
    let html = b"<!doctype html><script>alert(1)</script>";
    let r = hand_in(
        &app,
        &pupil,
        id,
        "",
        &[("image.png", svg), ("page.pdf", html)],
    )
    .await;
    assert_eq!(r.status().as_u16(), 200);
    let receipt: Value = r.json().await.unwrap();
    for f in receipt["files"].as_array().unwrap() {
        let fid = f["id"].as_i64().unwrap();
        let r = teacher
            .get(app.url(&format!("/attachments/{fid}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
        assert_eq!(
            r.headers()["content-type"],
            "application/octet-stream",
            "{f}"
        );
        assert!(r.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment;"));
        assert!(r.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("sandbox"));
    }
}
