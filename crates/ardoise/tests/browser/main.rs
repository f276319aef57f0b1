//! The browser test: in headless Chromium, on a phone-sized window, a person
//! signs in as pupil, parent, teacher and administrator through the login
//! form, sees their home page, and signs out with the header button; a wrong
//! password shows the error on the page.
//!
//! A full-page screenshot of each home page is kept in
//! `target/browser-artifacts/home-<role>.png` (plus `login-error.png`) under
//! the workspace root.
//!
//! Needs `/usr/bin/chromium` and `/usr/bin/chromedriver`
//! (`scripts/install-browser.sh`); without them the test fails, it never
//! passes silently.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use ardoise_testkit::{Person, TestApp};
use base64::Engine as _;
use fantoccini::wd::{Capabilities, WebDriverCompatibleCommand};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// How long a page may take to arrive after a click.
const PAGE_WAIT: Duration = Duration::from_secs(15);
/// The whole test, so that a stuck browser fails instead of hanging CI.
const WHOLE_TEST: Duration = Duration::from_secs(180);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn people_of_every_role_sign_in_and_out_in_chromium() {
    let driver = Chromedriver::start();
    let app = ardoise_testkit::spawn_app().await;
    let browser = driver.connect().await;
    let outcome = tokio::time::timeout(WHOLE_TEST, run(&browser, &app)).await;
    // Close the session (Chromium quits) before the guard stops chromedriver.
    let _ = browser.close().await;
    drop(driver);
    outcome.unwrap_or_else(|_| panic!("the browser test did not finish within {WHOLE_TEST:?}"));
}

async fn run(b: &Client, app: &TestApp) {
    let dir = artifacts_dir();
    let s = &app.seeded;

    wrong_password_shows_the_error(b, app, &s.pupil_b, &dir).await;

    sign_in(b, app, &s.pupil_a).await;
    home_shows(b, "pupil", "alice").await;
    assert_section_contains(b, "pupil", "6eA").await;
    screenshot(b, &dir.join("home-pupil.png")).await;
    sign_out(b, app).await;

    sign_in(b, app, &s.parent_a).await;
    home_shows(b, "parent", "anne").await;
    assert_section_contains(b, "parent", "alice").await;
    screenshot(b, &dir.join("home-parent.png")).await;
    sign_out(b, app).await;

    sign_in(b, app, &s.teacher_a).await;
    home_shows(b, "teacher", "agathe").await;
    assert_section_contains(b, "teacher", "6eA").await;
    screenshot(b, &dir.join("home-teacher.png")).await;
    sign_out(b, app).await;

    sign_in(b, app, &s.admin).await;
    home_shows(b, "admin", "ada").await;
    let link = b
        .find(Locator::Css("section#admin a[href='/admin']"))
        .await
        .expect("a link to /admin in the admin section");
    assert!(
        link.is_displayed().await.unwrap(),
        "the link to /admin is visible"
    );
    screenshot(b, &dir.join("home-admin.png")).await;
    sign_out(b, app).await;
}

/// Opens /login and types the login and password as a person would, then
/// presses the submit button.
async fn fill_login_form(b: &Client, app: &TestApp, login: &str, password: &str) {
    b.goto(&app.url("/login")).await.expect("open /login");
    assert_eq!(path(b).await, "/login");
    let lang = b
        .find(Locator::Css("html"))
        .await
        .unwrap()
        .attr("lang")
        .await
        .unwrap();
    assert_eq!(lang.as_deref(), Some("fr"), "the page is in French");
    b.find(Locator::Id("login"))
        .await
        .expect("login field")
        .send_keys(login)
        .await
        .unwrap();
    b.find(Locator::Id("password"))
        .await
        .expect("password field")
        .send_keys(password)
        .await
        .unwrap();
    b.find(Locator::Css(
        "main form[action='/login'] button[type='submit']",
    ))
    .await
    .expect("submit button of the login form")
    .click()
    .await
    .unwrap();
}

async fn sign_in(b: &Client, app: &TestApp, p: &Person) {
    fill_login_form(b, app, &p.login, &p.password).await;
    wait_for_path(b, "/home").await;
}

async fn wrong_password_shows_the_error(b: &Client, app: &TestApp, p: &Person, dir: &Path) {
    fill_login_form(b, app, &p.login, "pas le bon mot de passe").await;
    let error = b
        .wait()
        .at_most(PAGE_WAIT)
        .for_element(Locator::Css("p.error[role='alert']"))
        .await
        .expect("an error message after a wrong password");
    assert!(
        error.is_displayed().await.unwrap(),
        "the error message is visible"
    );
    assert_eq!(
        error.text().await.unwrap().trim(),
        "Identifiant ou mot de passe incorrect."
    );
    assert_eq!(path(b).await, "/login", "still on the sign-in page");
    screenshot(b, &dir.join("login-error.png")).await;
}

/// The home page greets the person by first name and shows the role's
/// section.
async fn home_shows(b: &Client, role: &str, first_name: &str) {
    let h1 = b
        .find(Locator::Css("h1"))
        .await
        .expect("a heading on /home");
    assert!(h1.is_displayed().await.unwrap(), "the greeting is visible");
    let greeting = h1.text().await.unwrap();
    assert!(
        greeting.starts_with("Bonjour") && greeting.contains(first_name),
        "{role}: the greeting {greeting:?} is « Bonjour {first_name} »"
    );
    let section = b
        .find(Locator::Css(&format!("section#{role}")))
        .await
        .unwrap_or_else(|_| panic!("a section#{role} on /home"));
    assert!(
        section.is_displayed().await.unwrap(),
        "the {role} section is visible"
    );
}

async fn assert_section_contains(b: &Client, role: &str, text: &str) {
    let section = b
        .find(Locator::Css(&format!("section#{role}")))
        .await
        .unwrap();
    let shown = section.text().await.unwrap();
    assert!(
        shown.contains(text),
        "the {role} section shows {text:?}; it shows {shown:?}"
    );
}

async fn sign_out(b: &Client, app: &TestApp) {
    let button = b
        .find(Locator::Css("header form[action='/logout'] button"))
        .await
        .expect("a sign-out button in the header");
    assert!(
        button.is_displayed().await.unwrap(),
        "the sign-out button is visible"
    );
    assert_eq!(button.text().await.unwrap().trim(), "Se déconnecter");
    button.click().await.unwrap();
    wait_for_path(b, "/login").await;
    assert!(
        b.find(Locator::Id("password")).await.is_ok(),
        "the sign-in form is shown after signing out"
    );
    // The session is over: the home page sends back to sign-in.
    b.goto(&app.url("/home")).await.unwrap();
    assert_eq!(path(b).await, "/login", "/home after signing out");
}

async fn path(b: &Client) -> String {
    b.current_url()
        .await
        .expect("current URL")
        .path()
        .to_string()
}

async fn wait_for_path(b: &Client, want: &str) {
    let deadline = Instant::now() + PAGE_WAIT;
    loop {
        let now = path(b).await;
        if now == want {
            return;
        }
        if Instant::now() > deadline {
            let body = b.find(Locator::Css("body")).await.ok();
            let text = match body {
                Some(e) => e.text().await.unwrap_or_default(),
                None => String::new(),
            };
            panic!(
                "expected to reach {want} within {PAGE_WAIT:?}; still on {now}, showing: {text:?}"
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Saves a full-page PNG screenshot (Chromium's DevTools protocol, through
/// chromedriver, since WebDriver's own screenshot stops at the viewport).
async fn screenshot(b: &Client, to: &Path) {
    let metrics = b
        .issue_cmd(Cdp::new("Page.getLayoutMetrics", json!({})))
        .await
        .expect("layout metrics");
    let size = &metrics["cssContentSize"];
    let (width, height) = (
        size["width"].as_f64().expect("content width"),
        size["height"].as_f64().expect("content height"),
    );
    let shot = b
        .issue_cmd(Cdp::new(
            "Page.captureScreenshot",
            json!({
                "format": "png",
                "captureBeyondViewport": true,
                "clip": {"x": 0, "y": 0, "width": width.ceil(), "height": height.ceil(), "scale": 1},
            }),
        ))
        .await
        .expect("screenshot");
    let png = base64::engine::general_purpose::STANDARD
        .decode(shot["data"].as_str().expect("screenshot data"))
        .expect("base64 PNG");
    assert!(
        png.starts_with(b"\x89PNG\r\n\x1a\n"),
        "the screenshot is a PNG"
    );
    std::fs::write(to, png).unwrap_or_else(|e| panic!("write {}: {e}", to.display()));
}

/// A Chrome DevTools Protocol command sent through chromedriver.
#[derive(Debug)]
struct Cdp {
    cmd: &'static str,
    params: Value,
}

impl Cdp {
    fn new(cmd: &'static str, params: Value) -> Self {
        Self { cmd, params }
    }
}

impl WebDriverCompatibleCommand for Cdp {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/goog/cdp/execute",
            session_id.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _request_url: &url::Url) -> (http::Method, Option<String>) {
        (
            http::Method::POST,
            Some(json!({"cmd": self.cmd, "params": self.params}).to_string()),
        )
    }
}

/// `<workspace>/target/browser-artifacts`, created.
fn artifacts_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/browser-artifacts");
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
    dir.canonicalize().unwrap()
}

/// A chromedriver child process on a free port, with a fresh browser
/// profile; dropping it stops chromedriver and everything it started, and
/// removes the profile, also when the test fails.
struct Chromedriver {
    child: Child,
    port: u16,
    profile: PathBuf,
}

impl Chromedriver {
    fn start() -> Self {
        for b in [CHROMIUM, CHROMEDRIVER] {
            assert!(
                Path::new(b).exists(),
                "{b} is missing: the browser test needs Debian's chromium and chromium-driver; run scripts/install-browser.sh"
            );
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let profile = std::env::temp_dir().join(format!(
            "ardoise-browser-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_nanos()
        ));
        std::fs::create_dir_all(&profile).expect("browser profile folder");
        let child = std::os::unix::process::CommandExt::process_group(
            Command::new(CHROMEDRIVER).arg(format!("--port={port}")),
            0,
        )
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("start {CHROMEDRIVER} ({e}); run scripts/install-browser.sh"));
        let mut driver = Self {
            child,
            port,
            profile,
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = driver.child.try_wait() {
                panic!("{CHROMEDRIVER} exited ({status}) before listening on port {port}");
            }
            assert!(
                Instant::now() < deadline,
                "{CHROMEDRIVER} did not listen on port {port} within 15 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        driver
    }

    /// Opens a WebDriver session: headless Chromium, phone-sized, French.
    async fn connect(&self) -> Client {
        let user_data_dir = format!("--user-data-dir={}", self.profile.display());
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--window-size=412,915",
            "--lang=fr-FR",
            user_data_dir.as_str(),
        ];
        let mut caps = Capabilities::new();
        caps.insert("browserName".into(), json!("chrome"));
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": CHROMIUM,
                "args": args,
                // Accept-Language: the pages must come in French.
                "prefs": {"intl.accept_languages": "fr-FR,fr"},
                // Headless windows are at least 500 px wide; emulate the
                // phone's viewport (412 × 915 CSS px) for real.
                "mobileEmulation": {"deviceMetrics": {"width": 412, "height": 915, "pixelRatio": 1.0, "mobile": true}},
            }),
        );
        ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{}", self.port))
            .await
            .unwrap_or_else(|e| panic!("open a Chromium session through {CHROMEDRIVER}: {e}"))
    }

    /// Signals chromedriver's whole process group (Chromium included).
    fn signal_group(&self, signal: &str) {
        let _ = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg("--")
            .arg(format!("-{}", self.child.id()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

impl Drop for Chromedriver {
    fn drop(&mut self) {
        self.signal_group("TERM");
        let deadline = Instant::now() + Duration::from_secs(3);
        while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        self.signal_group("KILL");
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// Issue 3's journey in Chromium: a teacher posts a lesson and an
/// assignment with a PDF for 6eA; a pupil of 6eA sees it in "À faire",
/// downloads the PDF and hands in a file; the teacher returns feedback; the
/// pupil's parent sees homework, hand-in and feedback; a pupil of 6eB sees
/// none of it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_assignment_goes_from_teacher_to_pupil_to_parent_in_chromium() {
    let driver = Chromedriver::start();
    let app = ardoise_testkit::spawn_app().await;
    let browser = driver.connect().await;
    let outcome = tokio::time::timeout(WHOLE_TEST, assignment_journey(&browser, &app)).await;
    let _ = browser.close().await;
    drop(driver);
    outcome.unwrap_or_else(|_| panic!("the browser test did not finish within {WHOLE_TEST:?}"));
}

const PDF: &[u8] =
    b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n";

async fn set_value(b: &Client, id: &str, value: &str) {
    b.execute(
        "document.getElementById(arguments[0]).value = arguments[1];",
        vec![json!(id), json!(value)],
    )
    .await
    .unwrap_or_else(|e| panic!("set #{id}: {e}"));
}

async fn type_into(b: &Client, css: &str, text: &str) {
    b.find(Locator::Css(css))
        .await
        .unwrap_or_else(|_| panic!("a field {css}"))
        .send_keys(text)
        .await
        .unwrap();
}

async fn click(b: &Client, css: &str) {
    b.find(Locator::Css(css))
        .await
        .unwrap_or_else(|_| panic!("an element {css}"))
        .click()
        .await
        .unwrap();
}

/// Waits until the page shows `text` (after a form posts and redirects).
async fn wait_for_text(b: &Client, text: &str) {
    let deadline = Instant::now() + PAGE_WAIT;
    loop {
        let shown = body_text(b).await;
        if shown.contains(text) {
            return;
        }
        if Instant::now() > deadline {
            panic!("expected the page to show {text:?} within {PAGE_WAIT:?}; it shows {shown:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The page's text; empty while a new page replaces the old one.
async fn body_text(b: &Client) -> String {
    match b.find(Locator::Css("body")).await {
        Ok(body) => body.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    }
}

/// Fetches a URL with the browser's own session cookie (the pages' CSP
/// forbids scripts to fetch); returns (status, body).
async fn fetch_as_browser(b: &Client, app: &TestApp, path: &str) -> (u16, Vec<u8>) {
    let cookies = b.get_all_cookies().await.expect("the browser's cookies");
    let header = cookies
        .iter()
        .map(|c| format!("{}={}", c.name(), c.value()))
        .collect::<Vec<_>>()
        .join("; ");
    let r = reqwest::Client::new()
        .get(app.url(path))
        .header("cookie", header)
        .send()
        .await
        .expect("download");
    let status = r.status().as_u16();
    (
        status,
        r.bytes().await.map(|b| b.to_vec()).unwrap_or_default(),
    )
}

async fn assignment_journey(b: &Client, app: &TestApp) {
    let dir = artifacts_dir();
    let s = &app.seeded;
    let pdf_path = dir.join("consignes.pdf");
    std::fs::write(&pdf_path, PDF).unwrap();
    let copy_path = dir.join("ma-copie.pdf");
    std::fs::write(&copy_path, b"%PDF-1.4\nla copie d'alice\n%%EOF\n").unwrap();
    let due = app.date_in(2);

    // The teacher writes a lesson and sets the assignment.
    sign_in(b, app, &s.teacher_a).await;
    b.goto(&app.url(&format!("/classes/{}/diary?week={due}", s.class_a.0)))
        .await
        .unwrap();
    type_into(b, "#title", "Le récit d'aventure").await;
    type_into(b, "#content", "Lecture du chapitre 3.").await;
    b.find(Locator::Id("l_files"))
        .await
        .unwrap()
        .send_keys(pdf_path.to_str().unwrap())
        .await
        .unwrap();
    click(b, "form[action$='/lessons'] button[type='submit']").await;
    wait_for_text(b, "Le récit d'aventure").await;
    set_value(b, "due_on", &due).await;
    type_into(b, "#instructions", "Écrire la suite du récit (une page).").await;
    b.find(Locator::Id("hw_files"))
        .await
        .unwrap()
        .send_keys(pdf_path.to_str().unwrap())
        .await
        .unwrap();
    click(b, "#hand_in").await;
    type_into(b, "#mark_scale", "20").await;
    click(b, "form[action$='/homework'] button[type='submit']").await;
    b.wait()
        .at_most(PAGE_WAIT)
        .for_element(Locator::Css(".homework a[href^='/homework/']"))
        .await
        .expect("the assignment in the week after saving it");
    let week = body_text(b).await;
    assert!(
        week.contains("Le récit d'aventure") && week.contains("Écrire la suite du récit"),
        "{week}"
    );
    screenshot(b, &dir.join("diary-teacher.png")).await;
    let homework_href = b
        .find(Locator::Css(".homework a[href^='/homework/']"))
        .await
        .expect("a link to the assignment")
        .attr("href")
        .await
        .unwrap()
        .unwrap();
    sign_out(b, app).await;

    // The pupil sees it in "À faire", downloads the PDF, hands in a file.
    sign_in(b, app, &s.pupil_a).await;
    b.goto(&app.url("/todo")).await.unwrap();
    let todo = body_text(b).await;
    assert!(
        todo.contains("Écrire la suite du récit") && todo.contains("consignes.pdf"),
        "{todo}"
    );
    let pdf_href = b
        .find(Locator::Css("li a[href^='/attachments/']"))
        .await
        .expect("the PDF's link")
        .attr("href")
        .await
        .unwrap()
        .unwrap();
    let (status, bytes) = fetch_as_browser(b, app, &pdf_href).await;
    assert_eq!(status, 200);
    assert_eq!(bytes, PDF, "the pupil downloads the PDF");
    screenshot(b, &dir.join("todo-pupil.png")).await;
    b.goto(&app.url(&homework_href)).await.unwrap();
    b.find(Locator::Id("files"))
        .await
        .expect("the hand-in form")
        .send_keys(copy_path.to_str().unwrap())
        .await
        .unwrap();
    click(b, "form[action$='/submission'] button[type='submit']").await;
    let receipt = b
        .wait()
        .at_most(PAGE_WAIT)
        .for_element(Locator::Css(".receipt"))
        .await
        .expect("a receipt after handing in")
        .text()
        .await
        .unwrap();
    assert!(
        receipt.contains("Reçu le") && receipt.contains("ma-copie.pdf"),
        "{receipt}"
    );
    screenshot(b, &dir.join("receipt-pupil.png")).await;
    b.goto(&app.url("/home")).await.unwrap();
    sign_out(b, app).await;

    // The teacher sees the hand-in and returns feedback.
    sign_in(b, app, &s.teacher_a).await;
    b.goto(&app.url(&homework_href)).await.unwrap();
    let roster = body_text(b).await;
    assert!(roster.contains("ma-copie.pdf"), "{roster}");
    let pupil = s.pupil_a.id.0;
    click(b, &format!("#pupil-{pupil} summary")).await;
    type_into(
        b,
        &format!("#comment-{pupil}"),
        "Belle imagination, soigne la ponctuation.",
    )
    .await;
    type_into(b, &format!("#mark-{pupil}"), "16").await;
    click(b, &format!("#pupil-{pupil} button[type='submit']")).await;
    wait_for_text(b, "16/20").await;
    screenshot(b, &dir.join("roster-teacher.png")).await;
    b.goto(&app.url("/home")).await.unwrap();
    sign_out(b, app).await;

    // The parent sees homework, hand-in and feedback.
    sign_in(b, app, &s.parent_a).await;
    b.goto(&app.url("/todo")).await.unwrap();
    wait_for_path(b, &format!("/pupils/{pupil}/todo")).await;
    click(b, "a[href*='/homework/']").await;
    wait_for_text(b, "16/20").await;
    let seen = body_text(b).await;
    assert!(
        seen.contains("Écrire la suite du récit")
            && seen.contains("ma-copie.pdf")
            && seen.contains("16/20")
            && seen.contains("soigne la ponctuation"),
        "{seen}"
    );
    screenshot(b, &dir.join("homework-parent.png")).await;
    sign_out(b, app).await;

    // A pupil of another class sees none of it, by page or by URL.
    sign_in(b, app, &s.pupil_b).await;
    b.goto(&app.url("/todo")).await.unwrap();
    let other = body_text(b).await;
    assert!(!other.contains("Écrire la suite du récit"), "{other}");
    assert_eq!(fetch_as_browser(b, app, &pdf_href).await.0, 404);
    assert_eq!(fetch_as_browser(b, app, &homework_href).await.0, 404);
    sign_out(b, app).await;
}

// Documents (issue 5).

/// Issue 5's journey in Chromium: a teacher puts a PDF in a folder of the
/// 6eA class space; a pupil of 6eA downloads it; a pupil of 6eB cannot, by
/// the folder, document or download URL; an uploaded HTML or SVG file is
/// downloaded as an attachment, never rendered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_class_document_goes_from_teacher_to_pupil_in_chromium() {
    let driver = Chromedriver::start();
    let app = ardoise_testkit::spawn_app().await;
    let browser = driver.connect().await;
    let outcome = tokio::time::timeout(WHOLE_TEST, documents_journey(&browser, &app)).await;
    let _ = browser.close().await;
    drop(driver);
    outcome.unwrap_or_else(|_| panic!("the browser test did not finish within {WHOLE_TEST:?}"));
}

/// The headers a download gets, with the browser's own session cookie.
async fn headers_as_browser(b: &Client, app: &TestApp, path: &str) -> reqwest::header::HeaderMap {
    let cookies = b.get_all_cookies().await.expect("the browser's cookies");
    let header = cookies
        .iter()
        .map(|c| format!("{}={}", c.name(), c.value()))
        .collect::<Vec<_>>()
        .join("; ");
    reqwest::Client::new()
        .get(app.url(path))
        .header("cookie", header)
        .send()
        .await
        .expect("download")
        .headers()
        .clone()
}

async fn xpath_href(b: &Client, xpath: &str) -> String {
    b.find(Locator::XPath(xpath))
        .await
        .unwrap_or_else(|_| panic!("a link {xpath}"))
        .attr("href")
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("{xpath} has an href"))
}

async fn documents_journey(b: &Client, app: &TestApp) {
    let dir = artifacts_dir();
    let s = &app.seeded;
    let pdf_path = dir.join("fiche-fractions.pdf");
    std::fs::write(&pdf_path, PDF).unwrap();
    let html_path = dir.join("piege.html");
    std::fs::write(
        &html_path,
        b"<!doctype html><html><head><title>RENDERED-MARKER</title></head><body>RENDERED-MARKER</body></html>",
    )
    .unwrap();
    let svg_path = dir.join("dessin.svg");
    std::fs::write(
        &svg_path,
        b"<svg xmlns=\"http://www.w3.org/2000/svg\"><text x=\"0\" y=\"15\">RENDERED-MARKER</text></svg>",
    )
    .unwrap();

    // The teacher opens the class space, makes a folder, uploads files.
    sign_in(b, app, &s.teacher_a).await;
    click(b, "header a[href='/documents']").await;
    wait_for_path(b, "/documents").await;
    click(
        b,
        &format!("a[href='/documents/spaces/class/{}']", s.class_a.0),
    )
    .await;
    b.wait()
        .at_most(PAGE_WAIT)
        .for_element(Locator::Id("new-name"))
        .await
        .expect("the new-folder field of the class space");
    type_into(b, "#new-name", "Fiches").await;
    click(b, "form:has(#new-name) button[type='submit']").await;
    b.wait()
        .at_most(PAGE_WAIT)
        .for_element(Locator::Css("h1"))
        .await
        .unwrap();
    wait_for_text(b, "Fiches").await;
    let folder_path = path(b).await;
    assert!(
        folder_path.starts_with("/documents/folders/"),
        "{folder_path}"
    );
    for f in [&pdf_path, &html_path, &svg_path] {
        b.find(Locator::Id("files"))
            .await
            .expect("the upload form")
            .send_keys(f.to_str().unwrap())
            .await
            .unwrap();
        click(b, "form[action$='/upload'] button[type='submit']").await;
        wait_for_text(b, f.file_name().unwrap().to_str().unwrap()).await;
    }
    screenshot(b, &dir.join("documents-teacher.png")).await;
    let listing = body_text(b).await;
    assert!(
        listing.contains("PDF") && listing.contains("Classe 6eA"),
        "{listing}"
    );
    let pdf_page = xpath_href(b, "//a[text()='fiche-fractions.pdf']").await;
    let pdf_url = xpath_href(
        b,
        "//tr[td/a[text()='fiche-fractions.pdf']]//a[contains(@href, '/content/')]",
    )
    .await;
    let mut others = Vec::new();
    for name in ["piege.html", "dessin.svg"] {
        let row = format!("//tr[td/a[text()='{name}']]//a[contains(@href, '/content/')]");
        others.push(xpath_href(b, &row).await);
    }
    sign_out(b, app).await;

    // The pupil finds it through the class space and downloads it.
    sign_in(b, app, &s.pupil_a).await;
    b.goto(&app.url("/documents")).await.unwrap();
    click(
        b,
        &format!("a[href='/documents/spaces/class/{}']", s.class_a.0),
    )
    .await;
    wait_for_text(b, "Fiches").await;
    b.goto(&app.url(&folder_path)).await.unwrap();
    wait_for_text(b, "fiche-fractions.pdf").await;
    assert!(
        b.find(Locator::Id("files")).await.is_err(),
        "no upload form for a pupil"
    );
    screenshot(b, &dir.join("documents-pupil.png")).await;
    let (status, bytes) = fetch_as_browser(b, app, &pdf_url).await;
    assert_eq!(status, 200);
    assert_eq!(bytes, PDF, "the pupil downloads the PDF");
    // HTML and SVG: attachments, and opening their URL renders nothing.
    for url in &others {
        let h = headers_as_browser(b, app, url).await;
        assert!(
            h["content-disposition"]
                .to_str()
                .unwrap()
                .starts_with("attachment"),
            "{url}: {h:?}"
        );
        assert_eq!(h["content-type"], "application/octet-stream");
        let _ = b.goto(&app.url(url)).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let shown = body_text(b).await;
        let title = b.title().await.unwrap_or_default();
        assert!(
            !shown.contains("RENDERED-MARKER") && !title.contains("RENDERED-MARKER"),
            "{url} was rendered: {shown:?} {title:?}"
        );
    }
    b.goto(&app.url("/home")).await.unwrap();
    sign_out(b, app).await;

    // A pupil of 6eB: not by the folder, the document page or the download.
    sign_in(b, app, &s.pupil_b).await;
    for url in [folder_path.as_str(), pdf_page.as_str(), pdf_url.as_str()] {
        assert_eq!(fetch_as_browser(b, app, url).await.0, 404, "{url}");
        b.goto(&app.url(url)).await.unwrap();
        let shown = body_text(b).await;
        assert!(!shown.contains("fiche-fractions"), "{url}: {shown}");
    }
    b.goto(&app.url("/documents")).await.unwrap();
    let overview = body_text(b).await;
    assert!(
        !overview.contains("Fiches") && !overview.contains("6eA"),
        "{overview}"
    );
    sign_out(b, app).await;
}

/// Issue 4's journey in Chromium: a teacher writes to the parents of 6eA;
/// a parent reads it and replies; a pupil finds no way to write to another
/// pupil's parent, and a forged form is refused; staff quarantine the
/// pupil's messages and they disappear from every recipient's inbox.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_go_from_teacher_to_parents_and_staff_quarantine_a_pupil_in_chromium() {
    let driver = Chromedriver::start();
    let app = ardoise_testkit::spawn_app().await;
    let browser = driver.connect().await;
    let outcome = tokio::time::timeout(WHOLE_TEST, messaging_journey(&browser, &app)).await;
    let _ = browser.close().await;
    drop(driver);
    outcome.unwrap_or_else(|_| panic!("the browser test did not finish within {WHOLE_TEST:?}"));
}

async fn messaging_journey(b: &Client, app: &TestApp) {
    let dir = artifacts_dir();
    let s = &app.seeded;

    // The teacher writes to the parents of 6eA.
    sign_in(b, app, &s.teacher_a).await;
    b.goto(&app.url("/messages/new")).await.unwrap();
    click(b, &format!("input[name='to:parents:{}']", s.class_a.0)).await;
    type_into(b, "#subject", "Réunion parents-professeurs").await;
    type_into(b, "#body", "La réunion a lieu **mardi à 18 h**.").await;
    screenshot(b, &dir.join("messages-compose.png")).await;
    click(b, "#compose button[value='send']").await;
    wait_for_text(b, "La réunion a lieu mardi à 18 h.").await;
    sign_out(b, app).await;

    // The parent sees one unread message, reads it and replies.
    sign_in(b, app, &s.parent_a).await;
    b.goto(&app.url("/messages")).await.unwrap();
    let unread = b
        .find(Locator::Css("#unread strong"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(unread.trim(), "1");
    screenshot(b, &dir.join("messages-inbox-parent.png")).await;
    click(b, "#inbox a[href^='/messages/']").await;
    wait_for_text(b, "La réunion a lieu mardi à 18 h.").await;
    type_into(b, "#reply #body", "Nous serons là, merci.").await;
    click(b, "#reply button[type='submit']").await;
    wait_for_text(b, "Nous serons là, merci.").await;
    screenshot(b, &dir.join("messages-conversation-parent.png")).await;
    sign_out(b, app).await;

    // The teacher gets the reply.
    assert_eq!(app.store.unread_count(s.teacher_a.id).await.unwrap(), 1);

    // A pupil is offered no way to write to another pupil's parent; a
    // forged checkbox is refused and nothing is sent.
    sign_in(b, app, &s.pupil_a).await;
    b.goto(&app.url("/messages/new")).await.unwrap();
    let forbidden = format!("person:{}", s.parent_b.id.0);
    assert!(
        b.find(Locator::Css(&format!("input[name='to:{forbidden}']")))
            .await
            .is_err(),
        "the picker does not offer another pupil's parent"
    );
    b.execute(
        "const i = document.createElement('input'); i.type = 'hidden'; i.name = 'to:' + arguments[0]; i.value = '1'; document.getElementById('compose').appendChild(i);",
        vec![json!(forbidden)],
    )
    .await
    .unwrap();
    type_into(b, "#subject", "Coucou").await;
    type_into(b, "#body", "Message interdit").await;
    click(b, "#compose button[value='send']").await;
    wait_for_text(b, "ne vous permettent pas d’écrire à ce destinataire").await;
    screenshot(b, &dir.join("messages-refused.png")).await;
    assert_eq!(app.store.unread_count(s.parent_b.id).await.unwrap(), 0);

    // The pupil writes to their teacher and to the staff (allowed).
    b.goto(&app.url("/messages/new")).await.unwrap();
    click(b, &format!("input[name='to:person:{}']", s.teacher_a.id.0)).await;
    click(b, &format!("input[name='to:person:{}']", s.staff.id.0)).await;
    type_into(b, "#subject", "Message de menace").await;
    type_into(b, "#body", "Texte inacceptable").await;
    click(b, "#compose button[value='send']").await;
    wait_for_text(b, "Texte inacceptable").await;
    sign_out(b, app).await;
    assert_eq!(app.store.unread_count(s.teacher_a.id).await.unwrap(), 2);

    // Staff quarantine everything the pupil sent.
    sign_in(b, app, &s.staff).await;
    b.goto(&app.url("/messages")).await.unwrap();
    wait_for_text(b, "Message de menace").await;
    b.goto(&app.url("/messages/containment")).await.unwrap();
    type_into(b, "#q-login", &s.pupil_a.login).await;
    type_into(b, "#q-reason", "menaces").await;
    click(b, "#quarantine form button[type='submit']").await;
    wait_for_text(b, "Lever la quarantaine").await;
    screenshot(b, &dir.join("messages-containment.png")).await;
    b.goto(&app.url("/messages")).await.unwrap();
    let inbox = body_text(b).await;
    assert!(!inbox.contains("Message de menace"), "{inbox}");
    sign_out(b, app).await;

    sign_in(b, app, &s.teacher_a).await;
    b.goto(&app.url("/messages")).await.unwrap();
    let inbox = body_text(b).await;
    assert!(
        inbox.contains("Réunion parents-professeurs") && !inbox.contains("Message de menace"),
        "{inbox}"
    );
    sign_out(b, app).await;
}
