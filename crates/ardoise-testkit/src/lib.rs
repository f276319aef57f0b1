//! Black-box test support: [`spawn_app`] starts the real application on a
//! random port with a fresh database and people of every role, and
//! [`TestApp`] offers one helper per common step.
//!
//! The backend comes from `ARDOISE_TEST_DATABASE_URL`: unset, a temporary
//! SQLite file; `postgres://…`, a new database with a random name on that
//! server. A PostgreSQL server that does not answer fails the test with a
//! clear message; it never passes silently.
//!
//! Panics are the way a test fails, so this crate may `expect`.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use ardoise_core::{
    ClassId, EstablishmentId, GroupId, ManualClock, PersonId, Role, Roles, SubjectId,
};
use ardoise_files::{FileStore, FilesConfig};
use ardoise_store::{AccountStatus, PersonInsertForm, Store};
use ardoise_web::{AppState, WebConfig};
use rand::Rng;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

/// The password of every seeded account.
pub const PASSWORD: &str = "cheval agrafe batterie correcte";

/// A seeded person.
#[derive(Debug, Clone)]
pub struct Person {
    pub id: PersonId,
    pub login: String,
    pub password: String,
}

/// People and places of the test world.
#[derive(Debug, Clone)]
pub struct Seeded {
    /// « Collège Test ».
    pub establishment: EstablishmentId,
    /// Another establishment, to check nothing leaks across.
    pub other_establishment: EstablishmentId,
    /// 6eA and 6eB of the first establishment.
    pub class_a: ClassId,
    pub class_b: ClassId,
    /// A class of the other establishment.
    pub class_other: ClassId,
    pub subject: SubjectId,
    /// « Soutien 6e », a teaching group of the first establishment: pupil A
    /// is its only member (pupil B is not), teacher A teaches it maths.
    pub group_a: GroupId,
    pub pupil_a: Person,
    pub pupil_b: Person,
    pub parent_a: Person,
    pub parent_b: Person,
    /// Teaches maths to 6eA.
    pub teacher_a: Person,
    /// Teaches maths to 6eB.
    pub teacher_b: Person,
    pub staff: Person,
    /// Staff of the other establishment.
    pub foreign_staff: Person,
    pub admin: Person,
    /// A pupil of 6eA who has not activated their account; `password` holds
    /// their activation code.
    pub pending: Person,
}

/// A running application.
pub struct TestApp {
    /// `http://127.0.0.1:PORT`.
    pub address: String,
    pub store: Store,
    pub state: AppState,
    /// The application's clock; tests move it instead of sleeping.
    pub clock: Arc<ManualClock>,
    pub seeded: Seeded,
    /// The database URL (to restart an app on the same data).
    pub database_url: String,
    /// The folder of the local blob store (to restart on the same files).
    pub files_root: std::path::PathBuf,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    _dir: Option<TempDir>,
    _files_dir: TempDir,
}

impl Drop for TestApp {
    /// Stops the server and closes the database connections, so that a
    /// test suite does not exhaust PostgreSQL's connection slots.
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let store = self.store.clone();
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(async move { store.close().await });
        }
    }
}

/// A temporary folder, removed on drop.
pub struct TempDir(pub PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn seeded_hash() -> String {
    static HASH: OnceLock<String> = OnceLock::new();
    HASH.get_or_init(|| ardoise_web::auth::hash_password_blocking(PASSWORD).expect("hashing works"))
        .clone()
}

/// A fresh, migrated database: SQLite by default, PostgreSQL if
/// `ARDOISE_TEST_DATABASE_URL` says so.
pub async fn fresh_database() -> (Store, String, Option<TempDir>) {
    let suffix: u64 = rand::thread_rng().gen();
    match std::env::var("ARDOISE_TEST_DATABASE_URL") {
        Ok(url) if url.starts_with("postgres") => {
            let name = format!("ardoise_t_{suffix:016x}");
            let db_url = Store::create_postgres_database(&url, &name).await.unwrap_or_else(|e| {
                panic!("PostgreSQL at {url} is not usable ({e:?}): start it, or unset ARDOISE_TEST_DATABASE_URL to test on SQLite")
            });
            let store = Store::connect(&db_url, false, 4)
                .await
                .expect("connect to the new PostgreSQL database");
            store
                .migrate()
                .await
                .expect("migrations apply on PostgreSQL");
            (store, db_url, None)
        }
        Ok(url) if !url.is_empty() && !url.starts_with("sqlite") => {
            panic!("ARDOISE_TEST_DATABASE_URL={url}: unknown backend")
        }
        _ => {
            let dir = std::env::temp_dir().join(format!("ardoise-test-{suffix:016x}"));
            std::fs::create_dir_all(&dir).expect("temp dir");
            let url = format!("sqlite://{}", dir.join("ardoise.db").display());
            let store = Store::connect(&url, true, 8).await.expect("open SQLite");
            store.migrate().await.expect("migrations apply on SQLite");
            (store, url, Some(TempDir(dir)))
        }
    }
}

async fn person(store: &Store, e: EstablishmentId, login: &str, roles: Roles, now: i64) -> Person {
    let form = PersonInsertForm {
        establishment_id: e,
        login: ardoise_core::Login::parse(login).expect("valid login"),
        first_name: login.split('.').next().unwrap_or(login).to_string(),
        last_name: login.split('.').nth(1).unwrap_or("test").to_string(),
        roles,
        title: String::new(),
        status: AccountStatus::Active,
        password_hash: Some(seeded_hash()),
        created_at: now,
    };
    let id = store.create_person(&form).await.expect("seed person");
    Person {
        id,
        login: login.to_string(),
        password: PASSWORD.to_string(),
    }
}

/// Seeds the test world.
pub async fn seed(store: &Store, now: i64) -> Seeded {
    let e1 = store
        .create_establishment("0990001A", "Collège Test", "Testville", now)
        .await
        .expect("seed");
    let e2 = store
        .create_establishment("0990002B", "Collège Ailleurs", "Autreville", now)
        .await
        .expect("seed");
    let y1 = store
        .create_school_year(e1, "2026-2027", "2026-09-01", "2027-08-31")
        .await
        .expect("seed");
    let y2 = store
        .create_school_year(e2, "2026-2027", "2026-09-01", "2027-08-31")
        .await
        .expect("seed");
    let class_a = store.create_class(e1, y1, "6eA", "6e").await.expect("seed");
    let class_b = store.create_class(e1, y1, "6eB", "6e").await.expect("seed");
    let class_other = store.create_class(e2, y2, "6eA", "6e").await.expect("seed");
    let subject = store
        .create_subject(e1, "MATH", "Mathématiques")
        .await
        .expect("seed");
    let r = Roles::only;
    let pupil_a = person(store, e1, "alice.pupil", r(Role::Pupil), now).await;
    let pupil_b = person(store, e1, "bruno.pupil", r(Role::Pupil), now).await;
    let parent_a = person(store, e1, "anne.parent", r(Role::Parent), now).await;
    let parent_b = person(store, e1, "bernard.parent", r(Role::Parent), now).await;
    let teacher_a = person(store, e1, "agathe.teacher", r(Role::Teacher), now).await;
    let teacher_b = person(store, e1, "benoit.teacher", r(Role::Teacher), now).await;
    let staff = person(store, e1, "sonia.staff", r(Role::Staff), now).await;
    let foreign_staff = person(store, e2, "xavier.staff", r(Role::Staff), now).await;
    let admin = person(store, e1, "ada.admin", r(Role::Admin), now).await;
    store
        .set_pupil_class(pupil_a.id, class_a)
        .await
        .expect("seed");
    store
        .set_pupil_class(pupil_b.id, class_b)
        .await
        .expect("seed");
    store
        .add_guardian(parent_a.id, pupil_a.id, true)
        .await
        .expect("seed");
    store
        .add_guardian(parent_b.id, pupil_b.id, true)
        .await
        .expect("seed");
    store
        .create_teaching(teacher_a.id, subject, Some(class_a), None)
        .await
        .expect("seed");
    store
        .create_teaching(teacher_b.id, subject, Some(class_b), None)
        .await
        .expect("seed");
    let group_a = store
        .create_group(e1, y1, "Soutien 6e")
        .await
        .expect("seed");
    store
        .add_group_member(group_a, pupil_a.id)
        .await
        .expect("seed");
    store
        .create_teaching(teacher_a.id, subject, None, Some(group_a))
        .await
        .expect("seed");
    let form = PersonInsertForm {
        establishment_id: e1,
        login: ardoise_core::Login::parse("paul.pending").expect("valid"),
        first_name: "Paul".into(),
        last_name: "Pending".into(),
        roles: r(Role::Pupil),
        title: String::new(),
        status: AccountStatus::Pending,
        password_hash: None,
        created_at: now,
    };
    let pending_id = store.create_person(&form).await.expect("seed");
    store
        .set_pupil_class(pending_id, class_a)
        .await
        .expect("seed");
    let code = ardoise_web::auth::new_activation_code();
    store
        .set_activation_code(
            pending_id,
            &ardoise_web::auth::activation_code_hash(&code),
            now + 90 * 86400,
        )
        .await
        .expect("seed");
    Seeded {
        establishment: e1,
        other_establishment: e2,
        class_a,
        class_b,
        class_other,
        subject,
        group_a,
        pupil_a,
        pupil_b,
        parent_a,
        parent_b,
        teacher_a,
        teacher_b,
        staff,
        foreign_staff,
        admin,
        pending: Person {
            id: pending_id,
            login: "paul.pending".into(),
            password: code,
        },
    }
}

/// Opens a local blob store in `root`.
pub async fn open_files(root: &std::path::Path) -> FileStore {
    FileStore::open(&FilesConfig::Local {
        root: root.to_path_buf(),
    })
    .await
    .expect("open the local blob store")
}

/// Starts the application on a fresh, seeded database.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(WebConfig {
        surge: test_surge(),
        ..WebConfig::default()
    })
    .await
}

/// The surge layer as tests want it: admission as configured, but no
/// refusal that depends on timing (a test machine busy with other tests
/// stalls for longer than the production delay targets) and room for
/// sign-ins in parallel. Tests of the surge layer start from this. A
/// waiter's refresh is not held for their turn (the lobby is answered at
/// once): the tests of the hold turn it on.
pub fn test_surge() -> ardoise_web::surge::SurgeConfig {
    use std::time::Duration;
    ardoise_web::surge::SurgeConfig {
        lobby_hold: Duration::ZERO,
        codel_target: Duration::from_secs(600),
        prelogin_target: Duration::from_secs(600),
        codel_interval: Duration::from_secs(600),
        bulkhead_sign_in: Some(1_000),
        bulkhead_pre_login: Some(10_000),
        ..ardoise_web::surge::SurgeConfig::default()
    }
}

/// Starts the application with given surge-layer settings (a tiny user
/// limit, say, on top of [`test_surge`]), the other settings at their
/// defaults.
pub async fn spawn_app_with_surge(surge: ardoise_web::surge::SurgeConfig) -> TestApp {
    spawn_app_with(WebConfig {
        surge,
        ..WebConfig::default()
    })
    .await
}

/// Starts the application with given web settings.
pub async fn spawn_app_with(mut config: WebConfig) -> TestApp {
    let (store, database_url, dir) = fresh_database().await;
    let now = ardoise_core::Clock::now(&ardoise_core::SystemClock);
    let seeded = seed(&store, now).await;
    let clock = Arc::new(ManualClock::new(now));
    let suffix: u64 = rand::thread_rng().gen();
    let files_root = std::env::temp_dir().join(format!("ardoise-files-{suffix:016x}"));
    let files = open_files(&files_root).await;
    config
        .partial_uploads_dir
        .get_or_insert_with(|| files_root.join("partial"));
    let (state, address, shutdown) =
        start_with_shutdown(store.clone(), files, clock.clone(), config).await;
    TestApp {
        address,
        store,
        state,
        clock,
        seeded,
        database_url,
        files_root: files_root.clone(),
        shutdown: Some(shutdown),
        _dir: dir,
        _files_dir: TempDir(files_root),
    }
}

/// Serves an application on `store` on a random port, for the rest of the
/// test.
pub async fn start(
    store: Store,
    files: FileStore,
    clock: Arc<ManualClock>,
    config: WebConfig,
) -> (AppState, String) {
    let (state, address, shutdown) = start_with_shutdown(store, files, clock, config).await;
    std::mem::forget(shutdown);
    (state, address)
}

/// Serves an application on `store` on a random port until the sender is
/// used or dropped.
pub async fn start_with_shutdown(
    store: Store,
    files: FileStore,
    clock: Arc<ManualClock>,
    config: WebConfig,
) -> (AppState, String, tokio::sync::oneshot::Sender<()>) {
    let state = AppState::new(store, files, clock, config).expect("state");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = format!("http://{}", listener.local_addr().expect("addr"));
    let served = state.clone();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let _ = ardoise_web::serve(listener, served, async move {
            let _ = rx.await;
        })
        .await;
    });
    (state, address, tx)
}

/// A browser-like client: keeps cookies, does not follow redirects.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

/// Reads the first `name="csrf"` hidden field of a page.
pub fn csrf_in(html: &str) -> Option<String> {
    let start = html.find("name=\"csrf\" value=\"")? + "name=\"csrf\" value=\"".len();
    let end = html[start..].find('"')? + start;
    Some(html[start..end].to_string())
}

impl TestApp {
    /// The ISO date (`YYYY-MM-DD`) `days` days from the app's clock, in
    /// the seeded schools' zone (the default, Europe/Paris).
    pub fn date_in(&self, days: i64) -> String {
        let now = ardoise_core::Clock::now(&*self.clock);
        ardoise_core::diary::local_date(now + days * 86400, ardoise_core::diary::DEFAULT_ZONE)
            .format("%Y-%m-%d")
            .to_string()
    }

    /// The full URL of a path.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    /// What `/metrics` shows now (Prometheus text).
    pub async fn metrics(&self) -> String {
        client()
            .get(self.url("/metrics"))
            .send()
            .await
            .expect("GET /metrics")
            .text()
            .await
            .expect("the metrics page")
    }

    /// Signs in through the API; the client keeps the session cookie. Returns
    /// the client and the bearer token.
    pub async fn sign_in(&self, p: &Person) -> (reqwest::Client, String) {
        let c = client();
        let resp = c
            .post(self.url("/api/v1/session"))
            .json(&serde_json::json!({"login": p.login, "password": p.password}))
            .send()
            .await
            .expect("request");
        assert_eq!(resp.status().as_u16(), 201, "sign in as {}", p.login);
        let body: serde_json::Value = resp.json().await.expect("json");
        (c, body["token"].as_str().expect("token").to_string())
    }

    /// The anti-CSRF token of a signed-in client's session.
    pub async fn csrf(&self, c: &reqwest::Client) -> String {
        let html = c
            .get(self.url("/account"))
            .send()
            .await
            .expect("request")
            .text()
            .await
            .expect("text");
        csrf_in(&html).expect("csrf field on /account")
    }

    /// Signs in through the HTML form, as a browser does.
    pub async fn sign_in_form(&self, p: &Person, remember: bool) -> reqwest::Client {
        let c = client();
        let html = c
            .get(self.url("/login"))
            .send()
            .await
            .expect("request")
            .text()
            .await
            .expect("text");
        let csrf = csrf_in(&html).expect("csrf on /login");
        let mut form = vec![
            ("login", p.login.clone()),
            ("password", p.password.clone()),
            ("csrf", csrf),
        ];
        if remember {
            form.push(("remember", "1".into()));
        }
        let resp = c
            .post(self.url("/login"))
            .form(&form)
            .send()
            .await
            .expect("request");
        assert_eq!(resp.status().as_u16(), 303, "form sign in as {}", p.login);
        c
    }
}
