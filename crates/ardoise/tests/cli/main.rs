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
