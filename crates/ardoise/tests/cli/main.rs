//! The `ardoise` command itself: demo, migrate, config, and refusing a
//! mistyped database path.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::Command;

fn ardoise(dir: &PathBuf) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ardoise"));
    c.current_dir(dir)
        .env_remove("ARDOISE_DATABASE_URL")
        .env("ARDOISE_LOG", "warn");
    c
}

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ardoise-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn the_demo_creates_a_school_prints_sign_ins_and_lists_every_account() {
    let dir = temp_dir("demo");
    let out = ardoise(&dir).args(["demo"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for role in ["pupil", "parent", "teacher", "staff", "administrator"] {
        assert!(stdout.contains(role), "{role} in {stdout}");
    }
    let csv = std::fs::read_to_string(dir.join("data/demo-accounts.csv")).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "login,password,roles,establishment,class");
    assert_eq!(lines.iter().filter(|l| l.contains(",pupil,")).count(), 200);
    assert!(lines
        .iter()
        .any(|l| l.contains("teacher+parent") || l.contains("parent+teacher")));
    // Running it again changes nothing and says so.
    let again = ardoise(&dir).args(["demo"]).output().unwrap();
    assert!(again.status.success());
    assert!(String::from_utf8_lossy(&again.stdout).contains("already"));
    assert_eq!(
        std::fs::read_to_string(dir.join("data/demo-accounts.csv")).unwrap(),
        csv
    );
    // The same seed gives the same world.
    let other = temp_dir("demo2");
    assert!(ardoise(&other)
        .args(["demo"])
        .output()
        .unwrap()
        .status
        .success());
    assert_eq!(
        std::fs::read_to_string(other.join("data/demo-accounts.csv")).unwrap(),
        csv
    );
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&other);
}

#[test]
fn serve_refuses_a_mistyped_database_path_instead_of_starting_an_empty_school() {
    let dir = temp_dir("typo");
    let out = ardoise(&dir)
        .args([
            "--database-url",
            "sqlite://data/ardoize.db",
            "serve",
            "--listen",
            "127.0.0.1:0",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("no database at data/ardoize.db"),
        "{stderr}"
    );
    assert!(!dir.join("data/ardoize.db").exists());
    let out = ardoise(&dir)
        .args(["--database-url", "mysql://x/y", "migrate"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown scheme"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn config_print_default_is_valid_and_bad_settings_are_reported() {
    let dir = temp_dir("config");
    let out = ardoise(&dir)
        .args(["config", "print-default"])
        .output()
        .unwrap();
    assert!(out.status.success());
    std::fs::write(dir.join("ardoise.toml"), &out.stdout).unwrap();
    assert!(
        ardoise(&dir)
            .args(["migrate"])
            .output()
            .unwrap()
            .status
            .success(),
        "the printed defaults load"
    );
    std::fs::write(dir.join("ardoise.toml"), "listne = \"oops\"\n").unwrap();
    let out = ardoise(&dir).args(["migrate"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown field"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn serve_answers_and_stops_cleanly_on_sigterm() {
    use std::io::{BufRead, BufReader, Read, Write};
    let dir = temp_dir("serve");
    let mut child = ardoise(&dir)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let banner = lines.next().unwrap().unwrap();
    // "Ardoise is serving on http://127.0.0.1:PORT/ (Ctrl-C to stop)"
    let addr = banner
        .split("http://")
        .nth(1)
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_string();
    let mut conn = std::net::TcpStream::connect(&addr).unwrap();
    conn.write_all(b"GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    conn.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = child.wait().unwrap();
    assert!(status.success(), "exit status {status:?}");
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert!(rest.iter().any(|l| l.contains("stopped")), "{rest:?}");
    // The pool was closed: SQLite folded its write-ahead log back.
    let wal = dir.join("data/ardoise.db-wal");
    assert!(
        !wal.exists() || std::fs::metadata(&wal).unwrap().len() == 0,
        "WAL left behind"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Starts `ardoise serve` on `dir`'s data; returns the child and address.
fn start_server(dir: &PathBuf) -> (std::process::Child, String) {
    use std::io::{BufRead, BufReader};
    let mut child = ardoise(dir)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let banner = lines.next().unwrap().unwrap();
    let addr = banner
        .split("http://")
        .nth(1)
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_string();
    // Keep reading stdout so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    (child, format!("http://{addr}"))
}

/// What a pupil's loop sent and what the server acknowledged.
#[derive(Debug, Default, Clone)]
struct Acked {
    revision: i64,
    sha256: String,
    attempt: usize,
}

fn attempt_bytes(pupil: i64, attempt: usize) -> Vec<u8> {
    // ~256 KB so a kill often lands while a file is being written.
    let mut v = format!("%PDF-1.4\npupil {pupil} attempt {attempt}\n").into_bytes();
    v.resize(256 * 1024, b'0' + (attempt % 10) as u8);
    v
}

async fn sign_in(base: &str, login: &str) -> reqwest::Client {
    let c = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap();
    let r = c
        .post(format!("{base}/api/v1/session"))
        .json(&serde_json::json!({"login": login, "password": ardoise_testkit::PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201, "sign in as {login}");
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_killed_during_hand_ins_keeps_every_acknowledged_one_whole() {
    use ardoise_core::Clock;
    let dir = temp_dir("sigkill");
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    // A seeded school with an assignment for each of two classes.
    let url = format!("sqlite://{}", data.join("ardoise.db").display());
    let store = ardoise_store::Store::connect(&url, true, 2).await.unwrap();
    store.migrate().await.unwrap();
    let now = ardoise_core::SystemClock.now();
    let s = ardoise_testkit::seed(&store, now).await;
    let mut pupils = Vec::new();
    for (pupil, class, teacher) in [
        (&s.pupil_a, s.class_a, &s.teacher_a),
        (&s.pupil_b, s.class_b, &s.teacher_b),
    ] {
        let form = ardoise_store::HomeworkInsertForm {
            audience: ardoise_core::Audience::Class(class),
            subject_id: s.subject,
            teacher_id: teacher.id,
            due_on: "2099-01-05".into(),
            instructions_source: "x".into(),
            instructions_html: "<p>x</p>".into(),
            minutes: None,
            publish_at: now - 60,
            created_at: now - 60,
            hand_in: Some(ardoise_store::HandIn {
                deadline_at: now + 86_400,
                late_allowed: false,
                mark_scale: None,
            }),
            attachments: vec![],
        };
        let id = store.insert_homework(&[form]).await.unwrap()[0];
        pupils.push((pupil.id.0, pupil.login.clone(), id.0));
    }
    store.close().await;

    let (mut child, base) = start_server(&dir);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut loops = Vec::new();
    for (pupil, login, homework) in pupils.clone() {
        let base = base.clone();
        let stop = stop.clone();
        loops.push(tokio::spawn(async move {
            let c = sign_in(&base, &login).await;
            let mut acked = Acked::default();
            let mut attempt = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                attempt += 1;
                let form = reqwest::multipart::Form::new()
                    .text("text", format!("attempt {attempt}"))
                    .part(
                        "files",
                        reqwest::multipart::Part::bytes(attempt_bytes(pupil, attempt))
                            .file_name(format!("copie-{attempt}.pdf")),
                    );
                let sent = c
                    .put(format!("{base}/api/v1/homework/{homework}/submission"))
                    .multipart(form)
                    .send()
                    .await;
                let Ok(r) = sent else { break };
                if r.status().as_u16() != 200 {
                    break;
                }
                let Ok(v) = r.json::<serde_json::Value>().await else {
                    break;
                };
                acked = Acked {
                    revision: v["revision"].as_i64().unwrap(),
                    sha256: v["sha256"].as_str().unwrap().to_string(),
                    attempt,
                };
            }
            acked
        }));
    }
    // Let some hand-ins through, then pull the plug.
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    child.kill().unwrap(); // SIGKILL
    let _ = child.wait();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut acked = Vec::new();
    for l in loops {
        acked.push(l.await.unwrap());
    }
    eprintln!("acknowledged before the kill: {acked:?}");
    assert!(
        acked.iter().all(|a| a.revision > 0),
        "every pupil got at least one receipt before the kill: {acked:?}"
    );

    let (mut child, base) = start_server(&dir);
    for ((pupil, login, homework), acked) in pupils.iter().zip(&acked) {
        let c = sign_in(&base, login).await;
        let h: serde_json::Value = c
            .get(format!("{base}/api/v1/homework/{homework}"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let sub = &h["submission"];
        let revision = sub["revision"].as_i64().unwrap();
        // The acknowledged hand-in, or one sent after it that committed
        // just before the kill: never an older one.
        assert!(revision >= acked.revision, "{sub} vs {acked:?}");
        eprintln!("after restart, pupil {pupil}: revision {revision}");
        if revision == acked.revision {
            assert_eq!(sub["sha256"], acked.sha256.as_str());
        }
        // Whole: the text and the file are of the same attempt, and the
        // file's bytes are exactly what was sent.
        let text = sub["text_html"].as_str().unwrap();
        let attempt: usize = text
            .trim_start_matches("<p>attempt ")
            .split('<')
            .next()
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert!(attempt >= acked.attempt);
        let files = sub["files"].as_array().unwrap();
        assert_eq!(files.len(), 1, "{sub}");
        assert_eq!(files[0]["name"], format!("copie-{attempt}.pdf"));
        let fid = files[0]["id"].as_i64().unwrap();
        let bytes = c
            .get(format!("{base}/attachments/{fid}"))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        assert_eq!(bytes.as_ref(), attempt_bytes(*pupil, attempt).as_slice());
    }
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
}

// Documents (issue 5).

fn document_bytes(who: usize, n: usize) -> Vec<u8> {
    // ~256 KB, different for every upload, so a kill often lands mid-file.
    let mut v = format!("%PDF-1.4\nuploader {who} document {n}\n").into_bytes();
    v.resize(256 * 1024, b'a' + (n % 26) as u8);
    v
}

/// Downloads `url` as a browser would: a refusal under load (503, the
/// surge layer's busy page, when the machine running the tests is busy)
/// is tried again after its `Retry-After`.
async fn download(c: &reqwest::Client, url: &str) -> Vec<u8> {
    for _ in 0..10 {
        let r = c.get(url).send().await.unwrap();
        if r.status().as_u16() == 503 {
            let secs: u64 = r
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse().ok())
                .unwrap_or(1);
            tokio::time::sleep(std::time::Duration::from_secs(secs.min(5))).await;
            continue;
        }
        assert_eq!(r.status().as_u16(), 200, "{url}");
        return r.bytes().await.unwrap().to_vec();
    }
    panic!("{url} refused ten times");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_killed_during_uploads_keeps_every_acknowledged_document_whole() {
    use ardoise_core::Clock;
    let dir = temp_dir("sigkill-docs");
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    let url = format!("sqlite://{}", data.join("ardoise.db").display());
    let store = ardoise_store::Store::connect(&url, true, 2).await.unwrap();
    store.migrate().await.unwrap();
    let now = ardoise_core::SystemClock.now();
    let s = ardoise_testkit::seed(&store, now).await;
    let mut uploaders = Vec::new();
    for p in [&s.teacher_a, &s.teacher_b] {
        let root = store
            .space_root(
                ardoise_core::documents::Space::Person(p.id),
                s.establishment,
                now,
            )
            .await
            .unwrap();
        uploaders.push((p.login.clone(), root.id));
    }
    store.close().await;

    let (mut child, base) = start_server(&dir);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut loops = Vec::new();
    for (who, (login, folder)) in uploaders.clone().into_iter().enumerate() {
        let base = base.clone();
        let stop = stop.clone();
        loops.push(tokio::spawn(async move {
            let c = sign_in(&base, &login).await;
            // (document id, n) acknowledged; the last n sent.
            let mut acked: Vec<(i64, usize)> = Vec::new();
            let mut sent = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                sent += 1;
                let form = reqwest::multipart::Form::new().part(
                    "files",
                    reqwest::multipart::Part::bytes(document_bytes(who, sent))
                        .file_name(format!("doc-{who}-{sent}.pdf")),
                );
                let Ok(r) = c
                    .post(format!("{base}/api/v1/documents/folders/{folder}/files"))
                    .multipart(form)
                    .send()
                    .await
                else {
                    break;
                };
                if r.status().as_u16() != 201 {
                    break;
                }
                let Ok(v) = r.json::<serde_json::Value>().await else {
                    break;
                };
                acked.push((v[0]["id"].as_i64().unwrap(), sent));
            }
            (acked, sent)
        }));
    }
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    child.kill().unwrap(); // SIGKILL
    let _ = child.wait();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut results = Vec::new();
    for l in loops {
        results.push(l.await.unwrap());
    }
    eprintln!(
        "acknowledged before the kill: {:?}",
        results
            .iter()
            .map(|(a, s)| (a.len(), *s))
            .collect::<Vec<_>>()
    );
    assert!(
        results.iter().all(|(a, _)| !a.is_empty()),
        "every uploader got at least one acknowledgement before the kill"
    );

    let (mut child, base) = start_server(&dir);
    for (who, ((login, folder), (acked, last_sent))) in uploaders.iter().zip(&results).enumerate() {
        let c = sign_in(&base, login).await;
        let listing: serde_json::Value = c
            .get(format!("{base}/api/v1/documents/folders/{folder}"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let docs = listing["documents"].as_array().unwrap();
        // Every acknowledged upload is there, whole.
        for (id, n) in acked {
            let d = docs
                .iter()
                .find(|d| d["id"] == *id)
                .unwrap_or_else(|| panic!("acknowledged document {id} lost"));
            assert_eq!(d["name"], format!("doc-{who}-{n}.pdf"));
        }
        // Nothing else but, at most, the one in flight at the kill (its
        // row committed, its answer lost); every listed file is whole.
        let extra: Vec<&serde_json::Value> = docs
            .iter()
            .filter(|d| !acked.iter().any(|(id, _)| d["id"] == *id))
            .collect();
        assert!(extra.len() <= 1, "unacknowledged documents: {extra:?}");
        if let Some(e) = extra.first() {
            assert_eq!(e["name"], format!("doc-{who}-{last_sent}.pdf"));
        }
        for d in docs {
            let n: usize = d["name"]
                .as_str()
                .unwrap()
                .trim_end_matches(".pdf")
                .rsplit('-')
                .next()
                .unwrap()
                .parse()
                .unwrap();
            let url = format!("{base}{}", d["content_url"].as_str().unwrap());
            let bytes = download(&c, &url).await;
            assert_eq!(bytes, document_bytes(who, n), "{d}");
        }
        eprintln!(
            "after restart, uploader {who}: {} documents, all whole",
            docs.len()
        );
    }
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
}
