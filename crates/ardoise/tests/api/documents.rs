//! Documents: spaces, folders, uploads, content URLs, sharing, the trash,
//! quotas, the virus-scanning hook, and every refusal leaving the store as
//! it was.

use ardoise_testkit::{spawn_app, spawn_app_with, TestApp};
use ardoise_web::WebConfig;
use reqwest::multipart::{Form, Part};
use serde_json::{json, Value};

const PDF: &[u8] =
    b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n";
const HTML: &[u8] =
    b"<!doctype html><html><body><script>alert(document.cookie)</script></body></html>";
const SVG: &[u8] = b"<?xml version=\"1.0\"?><svg xmlns=\"http://www.w3.org/2000/svg\"><script>alert(1)</script></svg>";
/// The standard anti-virus test file (harmless by design).
const EICAR: &[u8] = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*";

async fn get_json(c: &reqwest::Client, url: String) -> (u16, Value) {
    let r = c.get(url).send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn send_json(
    c: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    body: Value,
) -> (u16, Value) {
    let r = c.request(method, url).json(&body).send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// The root folder id of a space.
async fn root(app: &TestApp, c: &reqwest::Client, kind: &str, id: i64) -> i64 {
    let (status, v) = get_json(c, app.url(&format!("/api/v1/documents/spaces/{kind}/{id}"))).await;
    assert_eq!(status, 200, "{v}");
    v["folder"]["id"].as_i64().unwrap()
}

async fn new_folder(app: &TestApp, c: &reqwest::Client, parent: i64, name: &str) -> i64 {
    let (status, v) = send_json(
        c,
        reqwest::Method::POST,
        app.url(&format!("/api/v1/documents/folders/{parent}/folders")),
        json!({ "name": name }),
    )
    .await;
    assert_eq!(status, 201, "{v}");
    v["id"].as_i64().unwrap()
}

async fn upload(
    app: &TestApp,
    c: &reqwest::Client,
    folder: i64,
    name: &str,
    bytes: &[u8],
) -> (u16, Value) {
    let form = Form::new().part(
        "files",
        Part::bytes(bytes.to_vec()).file_name(name.to_string()),
    );
    let r = c
        .post(app.url(&format!("/api/v1/documents/folders/{folder}/files")))
        .multipart(form)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn upload_ok(
    app: &TestApp,
    c: &reqwest::Client,
    folder: i64,
    name: &str,
    bytes: &[u8],
) -> Value {
    let (status, v) = upload(app, c, folder, name, bytes).await;
    assert_eq!(status, 201, "{v}");
    v[0].clone()
}

/// Everything the store holds about documents, to check that a refusal
/// changed nothing.
async fn snapshot(app: &TestApp) -> Vec<String> {
    let mut out = Vec::new();
    let s = &app.seeded;
    for p in [&s.teacher_a, &s.teacher_b, &s.pupil_a] {
        out.push(format!(
            "usage {} {}",
            p.id,
            app.store.documents_usage(p.id).await.unwrap()
        ));
        let (f, d) = app.store.trash_of(p.id).await.unwrap();
        out.push(format!("trash {f:?} {d:?}"));
    }
    let mut stack: Vec<i64> = Vec::new();
    for space in [
        ardoise_core::documents::Space::Person(s.teacher_a.id),
        ardoise_core::documents::Space::Person(s.pupil_a.id),
        ardoise_core::documents::Space::Class(s.class_a, s.establishment),
    ] {
        for f in app.store.folders_in_space(space).await.unwrap() {
            out.push(format!("folder {f:?}"));
            stack.push(f.id);
        }
    }
    for id in stack {
        let (_, docs) = app.store.folder_children(id).await.unwrap();
        out.push(format!("docs {docs:?}"));
        out.push(format!(
            "shares {:?}",
            app.store
                .shares_of(ardoise_store::ItemKind::Folder, id)
                .await
                .unwrap()
        ));
        for d in docs {
            out.push(format!(
                "doc shares {:?}",
                app.store
                    .shares_of(ardoise_store::ItemKind::Document, d.id)
                    .await
                    .unwrap()
            ));
        }
    }
    out
}

#[tokio::test]
async fn a_pdf_shared_with_a_class_reaches_it_and_no_one_else_by_any_url() {
    let app = spawn_app().await;
    let s = &app.seeded;
    let (teacher, _) = app.sign_in(&s.teacher_a).await;
    let home = root(&app, &teacher, "person", s.teacher_a.id.0).await;
    let folder = new_folder(&app, &teacher, home, "Maths 6eA").await;
    let doc = upload_ok(&app, &teacher, folder, "fiche-1.pdf", PDF).await;
    let doc_id = doc["id"].as_i64().unwrap();
    let content = doc["content_url"].as_str().unwrap().to_string();
    assert_eq!(doc["mime"], "application/pdf", "type from the content");
    let (status, shares) = send_json(
        &teacher,
        reqwest::Method::PUT,
        app.url(&format!("/api/v1/documents/folders/{folder}/shares")),
        json!([{ "target": format!("class:{}", s.class_a.0) }]),
    )
    .await;
    assert_eq!(status, 200, "{shares}");
    assert_eq!(shares[0]["name"], "6eA");

    // Pupil A and parent A find it under "shared with me", open the folder
    // and download it.
    for p in [&s.pupil_a, &s.parent_a] {
        let (c, _) = app.sign_in(p).await;
        let (_, overview) = get_json(&c, app.url("/api/v1/documents")).await;
        assert_eq!(overview["shared_folders"][0]["id"], folder, "{}", p.login);
        let (status, listing) =
            get_json(&c, app.url(&format!("/api/v1/documents/folders/{folder}"))).await;
        assert_eq!(status, 200);
        assert_eq!(listing["access"], "read");
        assert_eq!(listing["documents"][0]["name"], "fiche-1.pdf");
        assert_eq!(
            listing["breadcrumb"],
            json!([]),
            "the teacher's own space stays hidden"
        );
        let r = c.get(app.url(&content)).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 200);
        let h = r.headers().clone();
        assert_eq!(h["content-type"], "application/pdf");
        assert_eq!(h["x-content-type-options"], "nosniff");
        assert!(h["cache-control"].to_str().unwrap().contains("immutable"));
        assert!(h["cache-control"].to_str().unwrap().starts_with("private"));
        assert!(h["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("sandbox"));
        assert_eq!(h["etag"], format!("\"{}\"", doc["hash"].as_str().unwrap()));
        assert_eq!(r.bytes().await.unwrap().as_ref(), PDF);
        // A broken download resumes; a second visit costs a 304.
        let r = c
            .get(app.url(&content))
            .header("range", "bytes=9-")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 206);
        assert_eq!(r.bytes().await.unwrap().as_ref(), &PDF[9..]);
        let r = c
            .get(app.url(&content))
            .header("if-none-match", h["etag"].clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 304);
        // Reading is not writing.
        let (status, _) = upload(&app, &c, folder, "mine.pdf", PDF).await;
        assert_eq!(status, 403);
    }
    let (pupil_a, _) = app.sign_in(&s.pupil_a).await;
    let (_, found) = get_json(&pupil_a, app.url("/api/v1/documents/search?q=FICHE")).await;
    assert_eq!(found[0]["id"], doc_id, "search finds it for the class");

    // Pupil B, parent B, teacher B, staff of another school: nothing, by
    // page, API, folder, content URL, search or "shared with me".
    let urls = [
        format!("/documents/folders/{folder}"),
        format!("/documents/files/{doc_id}"),
        content.clone(),
        format!("/api/v1/documents/folders/{folder}"),
        format!("/api/v1/documents/files/{doc_id}"),
        format!("/api/v1/documents/folders/{home}"),
        format!("/documents/spaces/person/{}", s.teacher_a.id.0),
    ];
    for p in [&s.pupil_b, &s.parent_b, &s.teacher_b, &s.foreign_staff] {
        let (c, _) = app.sign_in(p).await;
        for u in &urls {
            let r = c.get(app.url(u)).send().await.unwrap();
            assert_eq!(r.status().as_u16(), 404, "{} {u}", p.login);
        }
        let (_, found) = get_json(&c, app.url("/api/v1/documents/search?q=fiche")).await;
        assert_eq!(found, json!([]), "{} search", p.login);
        let (_, overview) = get_json(&c, app.url("/api/v1/documents")).await;
        assert_eq!(overview["shared_folders"], json!([]), "{}", p.login);
        assert_eq!(overview["shared_documents"], json!([]), "{}", p.login);
        let html = c
            .get(app.url("/documents"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(!html.contains("Maths 6eA"), "{}", p.login);
    }
    // Knowing the content hash opens nothing: not with another document's
    // id, not on its own.
    let (pupil_b, _) = app.sign_in(&s.pupil_b).await;
    let b_home = root(&app, &pupil_b, "person", s.pupil_b.id.0).await;
    let own = upload_ok(&app, &pupil_b, b_home, "moi.txt", b"mes notes").await;
    let r = pupil_b
        .get(app.url(&format!(
            "/documents/files/{}/content/{}",
            own["id"],
            doc["hash"].as_str().unwrap()
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);
    let r = pupil_b
        .get(app.url(&format!("/attachments/{}", doc["hash"].as_str().unwrap())))
        .send()
        .await
        .unwrap();
    assert!(
        matches!(r.status().as_u16(), 400 | 404),
        "no route takes a bare hash"
    );
}

#[tokio::test]
async fn a_group_share_reaches_its_pupils_and_their_parents_only() {
    let app = spawn_app().await;
    let s = &app.seeded;
    let (teacher, _) = app.sign_in(&s.teacher_a).await;
    let home = root(&app, &teacher, "person", s.teacher_a.id.0).await;
    let doc = upload_ok(&app, &teacher, home, "soutien-1.pdf", PDF).await;
    let doc_id = doc["id"].as_i64().unwrap();
    let (status, shares) = send_json(
        &teacher,
        reqwest::Method::PUT,
        app.url(&format!("/api/v1/documents/files/{doc_id}/shares")),
        json!([{ "target": format!("group:{}", s.group_a.0) }]),
    )
    .await;
    assert_eq!(status, 200, "{shares}");
    // The group's space too: its teacher writes there.
    let group_root = root(&app, &teacher, "group", s.group_a.0).await;
    upload_ok(&app, &teacher, group_root, "groupe.pdf", PDF).await;

    // Pupil A is in the group; parent A is pupil A's parent.
    for p in [&s.pupil_a, &s.parent_a] {
        let (c, _) = app.sign_in(p).await;
        let (_, overview) = get_json(&c, app.url("/api/v1/documents")).await;
        assert_eq!(
            overview["shared_documents"][0]["id"], doc_id,
            "{}: {overview}",
            p.login
        );
        let r = c
            .get(app.url(doc["content_url"].as_str().unwrap()))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200, "{}", p.login);
        let (status, listing) = get_json(
            &c,
            app.url(&format!("/api/v1/documents/folders/{group_root}")),
        )
        .await;
        assert_eq!(status, 200, "{}", p.login);
        assert_eq!(listing["access"], "read");
        assert_eq!(listing["documents"][0]["name"], "groupe.pdf");
    }
    // Pupil B (same school, not in the group) and parent B: nothing.
    for p in [&s.pupil_b, &s.parent_b] {
        let (c, _) = app.sign_in(p).await;
        let (_, overview) = get_json(&c, app.url("/api/v1/documents")).await;
        assert_eq!(overview["shared_documents"], json!([]), "{}", p.login);
        for u in [
            doc["content_url"].as_str().unwrap().to_string(),
            format!("/api/v1/documents/folders/{group_root}"),
        ] {
            let r = c.get(app.url(&u)).send().await.unwrap();
            assert_eq!(r.status().as_u16(), 404, "{} {u}", p.login);
        }
    }
}

#[tokio::test]
async fn a_pupil_who_just_downloaded_loses_it_at_once_when_the_share_ends_or_the_file_moves() {
    let app = spawn_app().await;
    let s = &app.seeded;
    let (teacher, _) = app.sign_in(&s.teacher_a).await;
    let home = root(&app, &teacher, "person", s.teacher_a.id.0).await;
    let folder = new_folder(&app, &teacher, home, "Fiches").await;
    let doc = upload_ok(&app, &teacher, folder, "fiche.pdf", PDF).await;
    let doc_id = doc["id"].as_i64().unwrap();
    let content = doc["content_url"].as_str().unwrap().to_string();
    let share = |targets: Value| {
        let (teacher, url) = (
            teacher.clone(),
            app.url(&format!("/api/v1/documents/folders/{folder}/shares")),
        );
        async move { send_json(&teacher, reqwest::Method::PUT, url, targets).await }
    };
    let (status, _) = share(json!([{ "target": format!("class:{}", s.class_a.0) }])).await;
    assert_eq!(status, 200);
    let (pupil, _) = app.sign_in(&s.pupil_a).await;
    let status = |c: &reqwest::Client| {
        let (c, url) = (c.clone(), app.url(&content));
        async move { c.get(url).send().await.unwrap().status().as_u16() }
    };
    // Opened twice (the second answer comes from what was decided first).
    assert_eq!(status(&pupil).await, 200);
    assert_eq!(status(&pupil).await, 200);
    // Signed out; a pupil of another class signs in next (on SQLite their
    // session may get the same row id): what was decided is not theirs.
    let r = pupil
        .delete(app.url("/api/v1/session"))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    let (other, _) = app.sign_in(&s.pupil_b).await;
    assert_eq!(status(&other).await, 404, "another class's pupil");
    let (pupil, _) = app.sign_in(&s.pupil_a).await;

    // The share ends: the very next request is refused.
    let (code, _) = share(json!([])).await;
    assert_eq!(code, 200);
    assert_eq!(status(&pupil).await, 404, "share revoked");

    // Shared again, opened, then moved to the teacher's own space.
    share(json!([{ "target": format!("class:{}", s.class_a.0) }])).await;
    assert_eq!(status(&pupil).await, 200);
    let (code, body) = send_json(
        &teacher,
        reqwest::Method::PUT,
        app.url(&format!("/api/v1/documents/files/{doc_id}")),
        json!({ "folder_id": home }),
    )
    .await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(status(&pupil).await, 404, "moved out of the shared folder");

    // Back, opened, then put in the trash.
    send_json(
        &teacher,
        reqwest::Method::PUT,
        app.url(&format!("/api/v1/documents/files/{doc_id}")),
        json!({ "folder_id": folder }),
    )
    .await;
    assert_eq!(status(&pupil).await, 200);
    let r = teacher
        .delete(app.url(&format!("/api/v1/documents/files/{doc_id}")))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    assert_eq!(status(&pupil).await, 404, "in the trash");
}

#[tokio::test]
async fn html_and_svg_are_downloaded_never_rendered() {
    let app = spawn_app().await;
    let s = &app.seeded;
    let (teacher, _) = app.sign_in(&s.teacher_a).await;
    let class_root = root(&app, &teacher, "class", s.class_a.0).await;
    for (name, bytes) in [("page.pdf", HTML), ("image.svg", SVG), ("cours.html", HTML)] {
        let doc = upload_ok(&app, &teacher, class_root, name, bytes).await;
        let (pupil, _) = app.sign_in(&s.pupil_a).await;
        let r = pupil
            .get(app.url(doc["content_url"].as_str().unwrap()))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
        let h = r.headers();
        assert_eq!(h["content-type"], "application/octet-stream", "{name}");
        assert!(
            h["content-disposition"]
                .to_str()
                .unwrap()
                .starts_with("attachment"),
            "{name}"
        );
        assert_eq!(h["x-content-type-options"], "nosniff");
    }
}

#[tokio::test]
async fn pages_list_upload_share_trash_and_restore_without_javascript() {
    let app = spawn_app().await;
    let s = &app.seeded;
    let teacher = app.sign_in_form(&s.teacher_a, false).await;
    let csrf = app.csrf(&teacher).await;
    // The class's space, created on the first visit.
    let r = teacher
        .get(app.url(&format!("/documents/spaces/class/{}", s.class_a.0)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 303);
    let folder_url = r.headers()["location"].to_str().unwrap().to_string();
    let folder_id: i64 = folder_url.rsplit('/').next().unwrap().parse().unwrap();
    let form = Form::new().text("csrf", csrf.clone()).part(
        "files",
        Part::bytes(PDF.to_vec()).file_name("Évaluation 3.pdf"),
    );
    let r = teacher
        .post(app.url(&format!("/documents/folders/{folder_id}/upload")))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 303);
    let html = teacher
        .get(app.url(&folder_url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("Évaluation 3.pdf"), "{html}");
    assert!(
        html.contains("<td>PDF</td>") && html.contains(&format!("<td>{} o</td>", PDF.len())),
        "type and size: {html}"
    );
    assert!(html.contains("Classe 6eA"), "breadcrumb names the space");
    assert!(html.contains("<meter"), "quota bar");
    assert!(!html.contains("<script"), "no JavaScript");
    let (_, listing) = get_json(
        &teacher,
        app.url(&format!("/api/v1/documents/folders/{folder_id}")),
    )
    .await;
    let doc_id = listing["documents"][0]["id"].as_i64().unwrap();
    // New folder, move the document in, rename it, all by forms.
    let r = teacher
        .post(app.url(&folder_url))
        .form(&[
            ("csrf", csrf.as_str()),
            ("op", "new_folder"),
            ("name", "Évaluations"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 303);
    let sub: i64 = r.headers()["location"]
        .to_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let doc_url = app.url(&format!("/documents/files/{doc_id}"));
    for (op, field, value) in [
        ("move", "to", sub.to_string()),
        ("rename", "name", "Éval 3.pdf".into()),
    ] {
        let r = teacher
            .post(&doc_url)
            .form(&[("csrf", csrf.as_str()), ("op", op), (field, value.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 303, "{op}");
    }
    let (_, d) = get_json(
        &teacher,
        app.url(&format!("/api/v1/documents/files/{doc_id}")),
    )
    .await;
    assert_eq!(d["document"]["folder_id"], sub);
    assert_eq!(d["document"]["name"], "Éval 3.pdf");
    // The pupil sees it on the class space page, in French.
    let pupil = app.sign_in_form(&s.pupil_a, false).await;
    let html = pupil
        .get(app.url(&format!("/documents/folders/{sub}")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("Éval 3.pdf") && html.contains("Télécharger"),
        "{html}"
    );
    assert!(
        !html.contains("name=\"op\""),
        "a pupil gets no management forms"
    );
    // Trash, the trash page, restore.
    let r = teacher
        .post(&doc_url)
        .form(&[("csrf", csrf.as_str()), ("op", "trash")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 303);
    let r = pupil
        .get(app.url(&format!("/documents/files/{doc_id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404, "trashed: gone for readers");
    let trash = teacher
        .get(app.url("/documents/trash"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(trash.contains("Éval 3.pdf"), "{trash}");
    let r = teacher
        .post(&doc_url)
        .form(&[("csrf", csrf.as_str()), ("op", "restore"), ("to", "trash")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["location"], "/documents/trash");
    let r = pupil
        .get(app.url(&format!("/documents/files/{doc_id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200, "restored");
    // The overview lists the spaces and the navigation links to it.
    let html = pupil
        .get(app.url("/documents"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("Mes documents") && html.contains("Classe 6eA"),
        "{html}"
    );
    let home = pupil
        .get(app.url("/home"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(home.contains("href=\"/documents\""));
}

#[tokio::test]
async fn the_trash_keeps_30_days_then_the_sweeper_purges_rows_and_blobs() {
    let app = spawn_app().await;
    let s = &app.seeded;
    let (teacher, _) = app.sign_in(&s.teacher_a).await;
    let home = root(&app, &teacher, "person", s.teacher_a.id.0).await;
    let folder = new_folder(&app, &teacher, home, "Ancien").await;
    let doc = upload_ok(&app, &teacher, folder, "vieux.pdf", PDF).await;
    let hash = doc["hash"].as_str().unwrap().to_string();
    let used = app.store.documents_usage(s.teacher_a.id).await.unwrap();
    assert_eq!(used, PDF.len() as i64);
    let r = teacher
        .delete(app.url(&format!("/api/v1/documents/folders/{folder}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 204);
    let (status, _) = get_json(
        &teacher,
        app.url(&format!("/api/v1/documents/files/{}", doc["id"])),
    )
    .await;
    assert_eq!(status, 404, "inside a trashed folder");
    let (_, trash) = get_json(&teacher, app.url("/api/v1/documents/trash")).await;
    assert_eq!(trash["folders"][0]["id"], folder);
    // 29 days later it is still there and restorable.
    app.clock.advance(29 * 86_400);
    let (teacher, _) = app.sign_in(&s.teacher_a).await;
    let now = ardoise_core::Clock::now(&*app.clock);
    let cutoff = now - ardoise_core::documents::TRASH_DAYS * 86_400;
    assert_eq!(app.store.purge_trash(cutoff).await.unwrap(), 0);
    let (status, _) = send_json(
        &teacher,
        reqwest::Method::PUT,
        app.url(&format!("/api/v1/documents/folders/{folder}")),
        json!({ "trashed": false }),
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = get_json(
        &teacher,
        app.url(&format!("/api/v1/documents/files/{}", doc["id"])),
    )
    .await;
    assert_eq!(status, 200, "restored with its content");
    // Trashed again; 30 days on, the purge removes folder and document,
    // the quota is freed and the blob is no longer referenced.
    let r = teacher
        .delete(app.url(&format!("/api/v1/documents/folders/{folder}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 204);
    app.clock.advance(30 * 86_400);
    let now = ardoise_core::Clock::now(&*app.clock);
    let cutoff = now - ardoise_core::documents::TRASH_DAYS * 86_400;
    assert_eq!(app.store.purge_trash(cutoff).await.unwrap(), 1);
    assert!(app.store.find_folder(folder).await.unwrap().is_none());
    assert_eq!(app.store.documents_usage(s.teacher_a.id).await.unwrap(), 0);
    assert!(!app.store.referenced_blobs().await.unwrap().contains(&hash));
    let report = app
        .state
        .files
        .sweep(|h| h.as_str() != hash, std::time::Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(report.blobs_removed, 1);
}

#[tokio::test]
async fn bad_input_gets_a_clear_error_and_changes_nothing() {
    let mut config = WebConfig {
        surge: ardoise_testkit::test_surge(),
        ..WebConfig::default()
    };
    config.documents.upload_limits.teacher = 500;
    config.documents.quotas.teacher = 600;
    config.documents.upload_limits.pupil = 300;
    let app = spawn_app_with(config).await;
    let s = &app.seeded;
    let (teacher, _) = app.sign_in(&s.teacher_a).await;
    let home = root(&app, &teacher, "person", s.teacher_a.id.0).await;
    let a = new_folder(&app, &teacher, home, "A").await;
    let b = new_folder(&app, &teacher, a, "B").await;
    let doc = upload_ok(&app, &teacher, a, "fiche.pdf", PDF).await;
    let doc_id = doc["id"].as_i64().unwrap();
    // 600 - 176 bytes left: less than the 500-byte limit, so the quota binds.
    upload_ok(&app, &teacher, a, "notes.txt", &[b'n'; 100]).await;
    let class_root = root(&app, &teacher, "class", s.class_a.0).await;
    let (pupil, _) = app.sign_in(&s.pupil_a).await;
    let pupil_home = root(&app, &pupil, "person", s.pupil_a.id.0).await;
    let before = snapshot(&app).await;

    let long = "x".repeat(1000);
    // Past the role's upload limit (a pupil's, 300 bytes here).
    let (got, v) = upload(&app, &pupil, pupil_home, "gros.bin", &[b'a'; 301]).await;
    assert_eq!(
        (got, v["error"].as_str()),
        (413, Some("file_too_large")),
        "{v}"
    );
    let uploads: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        ("vide.pdf", Vec::new(), 422, "file_empty"),
        ("plein.bin", vec![b'a'; 450], 422, "quota_exceeded"),
        ("tres-plein.bin", vec![b'a'; 501], 422, "quota_exceeded"),
        ("a/b.pdf", PDF.to_vec(), 422, "file_name_invalid"),
        // The multipart reader already refuses a control character in a
        // part's header.
        ("a\u{7}b.pdf", PDF.to_vec(), 400, "invalid_form"),
        (long.as_str(), PDF.to_vec(), 422, "file_name_invalid"),
    ];
    for (name, bytes, status, code) in uploads {
        let (got, v) = upload(&app, &teacher, a, name, &bytes).await;
        assert_eq!(
            (got, v["error"].as_str()),
            (status, Some(code)),
            "{name:.20}: {v}"
        );
    }
    // Renames and new folders with bad names.
    for name in ["", "a/b", "a\\b", "x\u{0}y", long.as_str(), ".."] {
        let (got, v) = send_json(
            &teacher,
            reqwest::Method::PUT,
            app.url(&format!("/api/v1/documents/files/{doc_id}")),
            json!({ "name": name }),
        )
        .await;
        assert_eq!(got, 422, "{name:.20}: {v}");
        let (got, _) = send_json(
            &teacher,
            reqwest::Method::POST,
            app.url(&format!("/api/v1/documents/folders/{a}/folders")),
            json!({ "name": name }),
        )
        .await;
        assert_eq!(got, 422, "{name:.20}");
    }
    // A folder into itself or below itself; a space's root anywhere.
    for (moved, to) in [(a, a), (a, b)] {
        let (got, v) = send_json(
            &teacher,
            reqwest::Method::PUT,
            app.url(&format!("/api/v1/documents/folders/{moved}")),
            json!({ "folder_id": to }),
        )
        .await;
        assert_eq!((got, v["error"].as_str()), (422, Some("move_into_itself")));
    }
    let (got, v) = send_json(
        &teacher,
        reqwest::Method::PUT,
        app.url(&format!("/api/v1/documents/folders/{home}")),
        json!({ "folder_id": a }),
    )
    .await;
    assert_eq!((got, v["error"].as_str()), (422, Some("root_folder_fixed")));
    // Shares to a class or group one does not teach, to a pupil, to
    // someone of another school, to oneself, to a class with write, junk.
    let targets = [
        json!([{ "target": format!("class:{}", s.class_b.0) }]),
        json!([{ "target": format!("class:{}", s.class_other.0) }]),
        json!([{ "target": format!("person:{}", s.pupil_a.id.0) }]),
        json!([{ "target": format!("person:{}", s.foreign_staff.id.0) }]),
        json!([{ "target": format!("person:{}", s.teacher_a.id.0) }]),
        json!([{ "target": format!("class:{}", s.class_a.0), "write": true }]),
        json!([{ "target": "class:nope" }]),
        // One good target does not let a bad one through.
        json!([{ "target": format!("class:{}", s.class_a.0) }, { "target": format!("class:{}", s.class_b.0) }]),
    ];
    for t in targets {
        let (got, v) = send_json(
            &teacher,
            reqwest::Method::PUT,
            app.url(&format!("/api/v1/documents/files/{doc_id}/shares")),
            t.clone(),
        )
        .await;
        assert_eq!(got, 422, "{t}: {v}");
    }
    // Moving into a space one may only read, or one cannot see.
    let (got, _) = send_json(
        &pupil,
        reqwest::Method::POST,
        app.url(&format!("/api/v1/documents/folders/{class_root}/folders")),
        json!({ "name": "Tag" }),
    )
    .await;
    assert_eq!(got, 403, "pupils read the class space, never write it");
    let (got, _) = send_json(
        &teacher,
        reqwest::Method::PUT,
        app.url(&format!("/api/v1/documents/files/{doc_id}")),
        json!({ "folder_id": pupil_home }),
    )
    .await;
    assert_eq!(got, 404, "another person's space does not exist for them");
    // Garbage bodies.
    for body in ["{", "[]", "{\"name\": 3}"] {
        let r = teacher
            .put(app.url(&format!("/api/v1/documents/files/{doc_id}")))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_client_error(), "{body}");
    }
    assert_eq!(snapshot(&app).await, before, "nothing written");
}

#[tokio::test]
async fn moving_a_folder_into_a_class_space_shares_it_with_the_class() {
    let app = spawn_app().await;
    let s = &app.seeded;
    let (teacher, _) = app.sign_in(&s.teacher_a).await;
    let home = root(&app, &teacher, "person", s.teacher_a.id.0).await;
    let folder = new_folder(&app, &teacher, home, "Chapitre 2").await;
    let inner = new_folder(&app, &teacher, folder, "Exercices").await;
    upload_ok(&app, &teacher, inner, "ex.pdf", PDF).await;
    let (pupil, _) = app.sign_in(&s.pupil_a).await;
    let (status, _) = get_json(
        &pupil,
        app.url(&format!("/api/v1/documents/folders/{inner}")),
    )
    .await;
    assert_eq!(status, 404);
    let class_root = root(&app, &teacher, "class", s.class_a.0).await;
    let (status, v) = send_json(
        &teacher,
        reqwest::Method::PUT,
        app.url(&format!("/api/v1/documents/folders/{folder}")),
        json!({ "folder_id": class_root, "name": "Chapitre 2 — 6eA" }),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["space_kind"], "class");
    let (status, listing) = get_json(
        &pupil,
        app.url(&format!("/api/v1/documents/folders/{inner}")),
    )
    .await;
    assert_eq!(status, 200, "everything below moved with it");
    assert_eq!(listing["documents"][0]["name"], "ex.pdf");
    assert_eq!(listing["breadcrumb"][1]["name"], "Chapitre 2 — 6eA");
}

#[tokio::test]
async fn a_colleague_with_write_access_adds_to_a_shared_folder() {
    let app = spawn_app().await;
    let s = &app.seeded;
    let (a, _) = app.sign_in(&s.teacher_a).await;
    let home = root(&app, &a, "person", s.teacher_a.id.0).await;
    let folder = new_folder(&app, &a, home, "Conseil pédagogique").await;
    let (b, _) = app.sign_in(&s.teacher_b).await;
    let (status, _) = upload(&app, &b, folder, "b.pdf", PDF).await;
    assert_eq!(status, 404);
    let (status, _) = send_json(
        &a,
        reqwest::Method::PUT,
        app.url(&format!("/api/v1/documents/folders/{folder}/shares")),
        json!([{ "target": format!("person:{}", s.teacher_b.id.0), "write": true }]),
    )
    .await;
    assert_eq!(status, 200);
    let doc = upload_ok(&app, &b, folder, "b.pdf", PDF).await;
    assert_eq!(doc["owner_id"], s.teacher_b.id.0, "counted in B's quota");
    let (status, _) = send_json(
        &a,
        reqwest::Method::PUT,
        app.url(&format!("/api/v1/documents/folders/{folder}/shares")),
        json!([]),
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = get_json(&b, app.url(&format!("/api/v1/documents/folders/{folder}"))).await;
    assert_eq!(status, 404, "unshared: gone");
}

/// A tiny clamd: speaks INSTREAM on a Unix socket and flags the EICAR
/// test string (real ClamAV signatures cannot be downloaded here).
async fn fake_clamd(path: std::path::PathBuf) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::UnixListener::bind(&path).unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut conn, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut cmd = [0u8; 10];
                if conn.read_exact(&mut cmd).await.is_err() || &cmd != b"zINSTREAM\0" {
                    return;
                }
                let mut data = Vec::new();
                loop {
                    let mut len = [0u8; 4];
                    if conn.read_exact(&mut len).await.is_err() {
                        return;
                    }
                    let len = u32::from_be_bytes(len) as usize;
                    if len == 0 {
                        break;
                    }
                    let mut chunk = vec![0u8; len];
                    if conn.read_exact(&mut chunk).await.is_err() {
                        return;
                    }
                    data.extend_from_slice(&chunk);
                }
                let infected = data.windows(EICAR.len()).any(|w| w == EICAR);
                let answer: &[u8] = if infected {
                    b"stream: Eicar-Test-Signature FOUND\0"
                } else {
                    b"stream: OK\0"
                };
                let _ = conn.write_all(answer).await;
            });
        }
    });
}

#[tokio::test]
async fn with_a_scanner_an_infected_upload_is_refused_and_nothing_is_kept() {
    let dir = std::env::temp_dir().join(format!("ardoise-clamd-{}", rand_suffix()));
    std::fs::create_dir_all(&dir).unwrap();
    let socket = dir.join("clamd.sock");
    fake_clamd(socket.clone()).await;
    let app = spawn_app_with(WebConfig {
        surge: ardoise_testkit::test_surge(),
        clamd: Some(ardoise_web::clamd::ClamdAddress(
            socket.display().to_string(),
        )),
        ..WebConfig::default()
    })
    .await;
    let s = &app.seeded;
    let (teacher, _) = app.sign_in(&s.teacher_a).await;
    let home = root(&app, &teacher, "person", s.teacher_a.id.0).await;
    let before = snapshot(&app).await;
    let (status, v) = upload(&app, &teacher, home, "eicar.pdf", EICAR).await;
    assert_eq!(
        (status, v["error"].as_str()),
        (422, Some("file_infected")),
        "{v}"
    );
    assert_eq!(snapshot(&app).await, before, "no row names it");
    upload_ok(&app, &teacher, home, "propre.pdf", PDF).await;
    // A scanner that cannot be reached refuses rather than skips.
    std::fs::remove_file(&socket).unwrap();
    let (status, _) = upload(&app, &teacher, home, "autre.pdf", b"%PDF-1.4 autre").await;
    assert_eq!(status, 503);
    let _ = std::fs::remove_dir_all(&dir);
}

fn rand_suffix() -> u64 {
    use std::time::{SystemTime, UNIX_EPOCH};
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
        ^ u64::from(std::process::id())
}

/// Sends `first` bytes of a `PATCH` announced with `announced` bytes, then
/// drops the connection: a weak connection breaking off mid-piece.
async fn broken_patch(
    app: &TestApp,
    token: &str,
    location: &str,
    offset: u64,
    first: &[u8],
    announced: usize,
) {
    use tokio::io::AsyncWriteExt;
    let host = app.address.trim_start_matches("http://").to_string();
    let mut s = tokio::net::TcpStream::connect(host.as_str()).await.unwrap();
    let head = format!(
        "PATCH {location} HTTP/1.1\r\nhost: {}\r\nauthorization: Bearer {token}\r\n\
         tus-resumable: 1.0.0\r\ncontent-type: application/offset+octet-stream\r\n\
         upload-offset: {offset}\r\ncontent-length: {announced}\r\n\r\n",
        host
    );
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(first).await.unwrap();
    s.flush().await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    drop(s);
}

#[tokio::test]
async fn a_large_upload_resumes_after_a_break_and_becomes_one_whole_document() {
    let app = spawn_app().await;
    let s = &app.seeded;
    let (teacher, token) = app.sign_in(&s.teacher_a).await;
    let home = root(&app, &teacher, "person", s.teacher_a.id.0).await;
    // 300 KB: a PDF header, then varied bytes.
    let mut file = PDF.to_vec();
    file.extend((0..300_000u32).map(|i| (i * 7 % 251) as u8));
    let name = "cours-complet.pdf";
    use base64::Engine;
    let meta = format!(
        "filename {}",
        base64::engine::general_purpose::STANDARD.encode(name)
    );
    let r = teacher
        .post(app.url(&format!("/api/v1/documents/folders/{home}/uploads")))
        .header("tus-resumable", "1.0.0")
        .header("upload-length", file.len().to_string())
        .header("upload-metadata", &meta)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    assert_eq!(r.headers()["tus-resumable"], "1.0.0");
    let location = r.headers()["location"].to_str().unwrap().to_string();
    let offset = |c: reqwest::Client| {
        let url = app.url(&location);
        async move {
            let r = c.head(url).send().await.unwrap();
            (
                r.status().as_u16(),
                r.headers()
                    .get("upload-offset")
                    .map(|v| v.to_str().unwrap().parse::<usize>().unwrap()),
            )
        }
    };
    assert_eq!(offset(teacher.clone()).await, (200, Some(0)));
    // First piece, whole.
    let r = teacher
        .patch(app.url(&location))
        .header("tus-resumable", "1.0.0")
        .header("content-type", "application/offset+octet-stream")
        .header("upload-offset", "0")
        .body(file[..100_000].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 204);
    assert_eq!(r.headers()["upload-offset"], "100000");
    assert!(
        r.headers().get("x-ardoise-document").is_none(),
        "not whole yet"
    );
    // A resumption from the wrong place is refused and changes nothing.
    let r = teacher
        .patch(app.url(&location))
        .header("content-type", "application/offset+octet-stream")
        .header("upload-offset", "0")
        .body(file[..10].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 409);
    // The connection breaks after 50,000 bytes of a 150,000-byte piece.
    broken_patch(
        &app,
        &token,
        &location,
        100_000,
        &file[100_000..150_000],
        150_000,
    )
    .await;
    // The client asks where to go on from and sends the rest.
    let mut done = None;
    for _ in 0..50 {
        let (status, at) = offset(teacher.clone()).await;
        assert_eq!(status, 200);
        let at = at.unwrap();
        assert!((100_000..=150_000).contains(&at), "kept what arrived: {at}");
        let r = teacher
            .patch(app.url(&location))
            .header("content-type", "application/offset+octet-stream")
            .header("upload-offset", at.to_string())
            .body(file[at..].to_vec())
            .send()
            .await
            .unwrap();
        if r.status().as_u16() == 409 {
            // The broken request is still being wound up.
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            continue;
        }
        assert_eq!(r.status().as_u16(), 204);
        assert_eq!(r.headers()["upload-offset"], file.len().to_string());
        done = Some(
            r.headers()["x-ardoise-document"]
                .to_str()
                .unwrap()
                .parse::<i64>()
                .unwrap(),
        );
        break;
    }
    let doc_id = done.expect("the upload finished");
    let (status, detail) = get_json(
        &teacher,
        app.url(&format!("/api/v1/documents/files/{doc_id}")),
    )
    .await;
    assert_eq!(status, 200, "{detail}");
    let doc = &detail["document"];
    assert_eq!(doc["name"], name);
    assert_eq!(doc["mime"], "application/pdf");
    assert_eq!(doc["size"], file.len());
    let got = teacher
        .get(app.url(doc["content_url"].as_str().unwrap()))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert!(got.as_ref() == file.as_slice(), "byte for byte");
    // Finished: the upload is gone; nobody else ever saw it.
    assert_eq!(offset(teacher.clone()).await.0, 404);
    let (other, _) = app.sign_in(&s.teacher_b).await;
    assert_eq!(offset(other).await.0, 404);
}

#[tokio::test]
async fn bad_uploads_in_pieces_get_clear_errors_and_leave_nothing() {
    let app = spawn_app_with(WebConfig {
        documents: ardoise_web::state::DocumentsConfig {
            upload_limits: ardoise_core::documents::RoleLimits {
                teacher: 1_000,
                ..ardoise_core::documents::DEFAULT_UPLOAD_LIMITS
            },
            ..Default::default()
        },
        ..Default::default()
    })
    .await;
    let s = &app.seeded;
    let (teacher, _) = app.sign_in(&s.teacher_a).await;
    let home = root(&app, &teacher, "person", s.teacher_a.id.0).await;
    let before = snapshot(&app).await;
    let create = |length: &str, meta: &str| {
        let r = teacher
            .post(app.url(&format!("/api/v1/documents/folders/{home}/uploads")))
            .header("upload-metadata", meta.to_string());
        let r = if length.is_empty() {
            r
        } else {
            r.header("upload-length", length.to_string())
        };
        async move {
            let r = r.send().await.unwrap();
            let status = r.status().as_u16();
            let v: Value = r.json().await.unwrap_or(Value::Null);
            (status, v["error"].as_str().unwrap_or("").to_string())
        }
    };
    let ok_name = "filename Y291cnMucGRm"; // cours.pdf
    for (length, meta, status, code) in [
        ("", ok_name, 400, "upload_header_invalid"),
        ("douze", ok_name, 400, "upload_header_invalid"),
        ("0", ok_name, 422, "file_empty"),
        ("1001", ok_name, 413, "file_too_large"),
        (
            "10",
            "filename Li4vZXRjL3Bhc3N3ZA==",
            422,
            "file_name_invalid",
        ), // ../etc/passwd
        ("10", "filename %%%", 422, "file_name_invalid"),
        ("10", "", 422, "file_name_invalid"),
    ] {
        assert_eq!(
            create(length, meta).await,
            (status, code.to_string()),
            "{length:?} {meta:?}"
        );
    }
    // A pupil cannot start one in a folder they only read.
    let (pupil, _) = app.sign_in(&s.pupil_a).await;
    let r = pupil
        .post(app.url(&format!("/api/v1/documents/folders/{home}/uploads")))
        .header("upload-length", "10")
        .header("upload-metadata", ok_name)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);
    // Wrong content type; more bytes than announced: refused, and the
    // upload is dropped whole.
    let r = teacher
        .post(app.url(&format!("/api/v1/documents/folders/{home}/uploads")))
        .header("upload-length", "10")
        .header("upload-metadata", ok_name)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    let location = r.headers()["location"].to_str().unwrap().to_string();
    let r = teacher
        .patch(app.url(&location))
        .header("content-type", "application/octet-stream")
        .header("upload-offset", "0")
        .body(b"%PDF-1.4\n".to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 415);
    let r = teacher
        .patch(app.url(&location))
        .header("content-type", "application/offset+octet-stream")
        .header("upload-offset", "0")
        .body(b"%PDF-1.4\nplus long".to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 422);
    let r = teacher.head(app.url(&location)).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 404, "dropped");
    // Abandoning one leaves nothing either.
    let r = teacher
        .post(app.url(&format!("/api/v1/documents/folders/{home}/uploads")))
        .header("upload-length", "10")
        .header("upload-metadata", ok_name)
        .send()
        .await
        .unwrap();
    let location = r.headers()["location"].to_str().unwrap().to_string();
    let r = pupil.delete(app.url(&location)).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 404, "not the pupil's");
    let r = teacher.delete(app.url(&location)).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 204);
    assert_eq!(
        teacher
            .head(app.url(&location))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        404
    );
    assert_eq!(snapshot(&app).await, before, "no document, no usage");
    let partial = app.files_root.join("partial");
    let left = std::fs::read_dir(&partial).map(|d| d.count()).unwrap_or(0);
    assert_eq!(left, 0, "no piece left on disk");
}
