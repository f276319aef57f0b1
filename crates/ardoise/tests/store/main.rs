//! The store's conformance suite: the same tests on SQLite and on
//! PostgreSQL (`ARDOISE_TEST_DATABASE_URL`), through the store's API.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use ardoise_core::policy::ClassScope;
use ardoise_core::throttle;
use ardoise_core::{Login, Role, Roles};
use ardoise_store::{
    AccountStatus, PeopleFilter, PersonInsertForm, SessionInsertForm, Store, StoreError, Val,
};
use ardoise_testkit::{fresh_database, seed};

const NOW: i64 = 1_795_000_000;

#[tokio::test]
async fn migrations_are_idempotent() {
    let (store, _url, _dir) = fresh_database().await;
    store.migrate().await.unwrap();
    store.migrate().await.unwrap();
    store.ping().await.unwrap();
}

#[tokio::test]
async fn a_taken_login_is_a_conflict_and_writes_nothing() {
    let (store, _url, _dir) = fresh_database().await;
    let s = seed(&store, NOW).await;
    let form = PersonInsertForm {
        establishment_id: s.establishment,
        login: Login::parse("alice.pupil").unwrap(),
        first_name: "Other".into(),
        last_name: "Alice".into(),
        roles: Roles::only(Role::Pupil),
        title: String::new(),
        status: AccountStatus::Pending,
        password_hash: None,
        created_at: NOW,
    };
    let before = store.count_people(&PeopleFilter::default()).await.unwrap();
    assert!(matches!(
        store.create_person(&form).await,
        Err(StoreError::Conflict("login"))
    ));
    assert_eq!(
        store.count_people(&PeopleFilter::default()).await.unwrap(),
        before
    );
    assert_eq!(
        store.free_login("alice.pupil").await.unwrap().as_str(),
        "alice.pupil2"
    );
    let dup = store
        .create_establishment("0990001A", "Again", "", NOW)
        .await;
    assert!(matches!(
        dup,
        Err(StoreError::Conflict("establishment_uai"))
    ));
}

#[tokio::test]
async fn class_scopes_are_applied_in_the_query() {
    let (store, _url, _dir) = fresh_database().await;
    let s = seed(&store, NOW).await;
    let ids = |v: Vec<ardoise_store::ClassView>| v.into_iter().map(|c| c.id).collect::<Vec<_>>();
    assert_eq!(
        ids(store
            .list_classes(&ClassScope::Only(vec![s.class_b]))
            .await
            .unwrap()),
        vec![s.class_b]
    );
    assert_eq!(
        ids(store.list_classes(&ClassScope::Only(vec![])).await.unwrap()),
        vec![]
    );
    assert_eq!(
        ids(store
            .list_classes(&ClassScope::Establishment(s.other_establishment))
            .await
            .unwrap()),
        vec![s.class_other]
    );
    assert_eq!(store.list_classes(&ClassScope::All).await.unwrap().len(), 3);
    let a = store.find_class(s.class_a).await.unwrap().unwrap();
    assert_eq!(a.pupil_count, 2, "alice and the pending pupil");
}

#[tokio::test]
async fn the_actor_carries_every_relationship_and_disabled_people_have_none() {
    let (store, _url, _dir) = fresh_database().await;
    let s = seed(&store, NOW).await;
    let parent = store.load_actor(s.parent_a.id).await.unwrap().unwrap();
    assert_eq!(parent.children.len(), 1);
    assert_eq!(parent.children[0].pupil_id, s.pupil_a.id);
    assert_eq!(parent.children[0].class_id, Some(s.class_a));
    let teacher = store.load_actor(s.teacher_a.id).await.unwrap().unwrap();
    assert_eq!(teacher.taught_classes, vec![s.class_a]);
    let pupil = store.load_actor(s.pupil_a.id).await.unwrap().unwrap();
    assert_eq!(pupil.class_id, Some(s.class_a));
    assert!(
        store.load_actor(s.pending.id).await.unwrap().is_none(),
        "pending accounts cannot act"
    );
    store.set_status(s.pupil_a.id, false).await.unwrap();
    assert!(store.load_actor(s.pupil_a.id).await.unwrap().is_none());
    store.set_status(s.pupil_a.id, true).await.unwrap();
    assert!(store.load_actor(s.pupil_a.id).await.unwrap().is_some());
}

#[tokio::test]
async fn sessions_expire_and_are_revoked_per_person() {
    let (store, _url, _dir) = fresh_database().await;
    let s = seed(&store, NOW).await;
    let form = |hash: &str, expires| SessionInsertForm {
        token_hash: hash.into(),
        person_id: s.pupil_a.id,
        created_at: NOW,
        expires_at: expires,
        remembered: false,
        user_agent: "test".into(),
        csrf_token: "c".into(),
    };
    store.insert_session(&form("h1", NOW + 100)).await.unwrap();
    store.insert_session(&form("h2", NOW + 100)).await.unwrap();
    store.insert_session(&form("h3", NOW + 10)).await.unwrap();
    assert!(store.find_session("h1", NOW).await.unwrap().is_some());
    assert!(
        store.find_session("h3", NOW + 10).await.unwrap().is_none(),
        "expired"
    );
    assert_eq!(
        store
            .sessions_of(s.pupil_a.id, NOW + 50)
            .await
            .unwrap()
            .len(),
        2
    );
    let ended = store
        .delete_sessions_of(s.pupil_a.id, Some("h1"))
        .await
        .unwrap();
    assert_eq!(ended.len(), 2);
    assert!(
        store.find_session("h1", NOW).await.unwrap().is_some(),
        "kept"
    );
    assert!(store.find_session("h2", NOW).await.unwrap().is_none());
    let h1 = store.find_session("h1", NOW).await.unwrap().unwrap();
    assert_eq!(
        store.delete_session_of(s.pupil_b.id, h1.id).await.unwrap(),
        None,
        "not theirs"
    );
    assert_eq!(
        store.delete_session_of(s.pupil_a.id, h1.id).await.unwrap(),
        Some("h1".to_string())
    );
    assert_eq!(
        store.delete_expired_sessions(NOW + 1000).await.unwrap(),
        0,
        "h3 was removed with the others"
    );
}

#[tokio::test]
async fn throttling_state_and_passwords_round_trip() {
    let (store, _url, _dir) = fresh_database().await;
    let s = seed(&store, NOW).await;
    let state = throttle::State {
        failures: 7,
        window_start: NOW,
        locked_until: NOW + 4,
    };
    store.save_throttle(s.pupil_a.id, &state).await.unwrap();
    let creds = store
        .find_credentials(&Login::parse("alice.pupil").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(creds.throttle, state);
    store
        .set_activation_code(s.pupil_a.id, "hash", NOW + 10)
        .await
        .unwrap();
    let creds = store
        .find_credentials(&Login::parse("alice.pupil").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(creds.status, AccountStatus::Pending);
    assert_eq!(creds.password_hash, None);
    assert_eq!(creds.throttle.failures, 0);
    store.set_password(s.pupil_a.id, "new-hash").await.unwrap();
    let creds = store
        .find_credentials(&Login::parse("alice.pupil").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (
            creds.status,
            creds.password_hash.as_deref(),
            creds.activation_code_hash
        ),
        (AccountStatus::Active, Some("new-hash"), None)
    );
}

#[tokio::test]
async fn account_search_takes_wildcards_literally_and_pages() {
    let (store, _url, _dir) = fresh_database().await;
    let s = seed(&store, NOW).await;
    let q = |query: &str| PeopleFilter {
        query: query.into(),
        limit: 50,
        ..Default::default()
    };
    assert_eq!(
        store.list_people(&q("PUPIL")).await.unwrap().len(),
        2,
        "case-insensitive"
    );
    assert_eq!(
        store.list_people(&q("%")).await.unwrap().len(),
        0,
        "% is literal"
    );
    assert_eq!(
        store.list_people(&q("_")).await.unwrap().len(),
        0,
        "_ is literal"
    );
    let teachers = PeopleFilter {
        role: Some(Role::Teacher),
        establishment_id: Some(s.establishment),
        limit: 50,
        ..Default::default()
    };
    assert_eq!(store.count_people(&teachers).await.unwrap(), 2);
    let page = PeopleFilter {
        limit: 3,
        offset: 3,
        ..Default::default()
    };
    let all = store.count_people(&page).await.unwrap();
    assert_eq!(all, 10);
    assert_eq!(store.list_people(&page).await.unwrap().len(), 3);
}

#[tokio::test]
async fn bulk_inserts_span_many_statements_in_one_transaction() {
    let (store, _url, _dir) = fresh_database().await;
    let s = seed(&store, NOW).await;
    let rows: Vec<Vec<Val>> = (0..1234)
        .map(|i| {
            vec![
                Val::I(s.establishment.0),
                Val::T(format!("bulk.{i}")),
                Val::T("B".into()),
                Val::T("Ulk".into()),
                Val::I(1),
                Val::T("active".into()),
                Val::I(NOW),
            ]
        })
        .collect();
    let cols = [
        "establishment_id",
        "login",
        "first_name",
        "last_name",
        "roles",
        "status",
        "created_at",
    ];
    let back = store
        .insert_many("people", &cols, rows, Some("id, login"))
        .await
        .unwrap();
    assert_eq!(back.len(), 1234);
    // A batch with one duplicate inserts nothing at all.
    let before = store.count_people(&PeopleFilter::default()).await.unwrap();
    let rows: Vec<Vec<Val>> = ["fresh.one", "fresh.two", "bulk.5"]
        .iter()
        .map(|l| {
            vec![
                Val::I(s.establishment.0),
                Val::T(l.to_string()),
                Val::T("B".into()),
                Val::T("U".into()),
                Val::I(1),
                Val::T("active".into()),
                Val::I(NOW),
            ]
        })
        .collect();
    assert!(store
        .insert_many("people", &cols, rows, None)
        .await
        .is_err());
    assert_eq!(
        store.count_people(&PeopleFilter::default()).await.unwrap(),
        before
    );
}

#[tokio::test]
async fn a_mistyped_sqlite_path_is_never_created_and_unknown_schemes_are_refused() {
    let missing = std::env::temp_dir().join("ardoise-no-such-dir-xyz/typo.db");
    let r = Store::connect(&format!("sqlite://{}", missing.display()), false, 1).await;
    assert!(matches!(r, Err(StoreError::BadUrl(_))));
    assert!(!missing.exists());
    assert!(matches!(
        Store::connect("mysql://localhost/x", true, 1).await,
        Err(StoreError::BadUrl(_))
    ));
    assert!(matches!(
        Store::connect("sqlite::memory:", true, 1).await,
        Err(StoreError::BadUrl(_))
    ));
}

#[tokio::test]
async fn uploads_at_once_by_one_person_never_pass_their_quota() {
    use ardoise_core::documents::Space;
    use ardoise_store::DocumentInsert;
    let (store, _url, _dir) = fresh_database().await;
    let s = seed(&store, NOW).await;
    let root = store
        .space_root(Space::Person(s.teacher_a.id), s.establishment, NOW)
        .await
        .unwrap();
    // Twenty 100-byte uploads at once against a 1,000-byte quota: ten fit.
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let store = store.clone();
            let doc = DocumentInsert {
                folder_id: root.id,
                name: format!("copie-{i}.pdf"),
                blob_hash: format!("{i:064x}"),
                mime: "application/pdf".into(),
                size: 100,
                owner_id: s.teacher_a.id,
                now: NOW,
                quota: 1_000,
            };
            tokio::spawn(async move { store.insert_documents(&[doc]).await })
        })
        .collect();
    let mut accepted = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(Some(_)) => accepted += 1,
            Ok(None) => {}
            // SQLite may answer "busy" to a writer that waited too long;
            // that upload is refused whole, which is also within quota.
            Err(e) => eprintln!("refused: {e}"),
        }
    }
    let used = store.documents_usage(s.teacher_a.id).await.unwrap();
    assert_eq!(
        used,
        accepted * 100,
        "usage counts exactly what was accepted"
    );
    assert!(used <= 1_000, "quota passed: {used} bytes");
    assert_eq!(accepted, 10, "every upload that fits is accepted");
}

/// Announcements of every audience, window and author, read at many times.
async fn many_announcements(store: &Store, s: &ardoise_testkit::Seeded) {
    use ardoise_core::messaging::AnnouncementAudience as A;
    let cases = [
        (s.staff.id, A::All, vec![], 0, None),
        (s.staff.id, A::Parents, vec![], 50, Some(150)),
        (s.teacher_a.id, A::Class, vec![s.class_a], 100, None),
        (s.teacher_b.id, A::Class, vec![s.class_b], 0, Some(100)),
        (s.staff.id, A::ClassParents, vec![s.class_a], 150, Some(300)),
        (s.staff.id, A::Class, vec![s.class_a, s.class_b], 200, None),
        (s.teacher_a.id, A::ClassParents, vec![s.class_b], 0, None),
        // Same publication time: the newer id first.
        (s.staff.id, A::All, vec![], 100, Some(250)),
    ];
    for (author, audience, classes, from, until) in cases {
        store
            .insert_announcement(&ardoise_store::AnnouncementInsert {
                establishment_id: s.establishment,
                author_id: author,
                title: format!("{audience:?} {from}"),
                body_source: "x".into(),
                body_html: "<p>x</p>".into(),
                audience,
                classes,
                publish_from: NOW + from,
                publish_until: until.map(|u| NOW + u),
                created_at: NOW,
            })
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn announcements_picked_in_memory_are_those_the_database_picks() {
    let (store, _url, _dir) = fresh_database().await;
    let s = seed(&store, NOW).await;
    many_announcements(&store, &s).await;
    let people = [
        &s.pupil_a,
        &s.pupil_b,
        &s.parent_a,
        &s.parent_b,
        &s.teacher_a,
        &s.teacher_b,
        &s.staff,
        &s.foreign_staff,
    ];
    let times = [
        -10, 0, 49, 50, 99, 100, 149, 150, 200, 249, 250, 300, 10_000,
    ];
    let mut seen_any = 0;
    for p in people {
        let actor = store.load_actor(p.id).await.unwrap().unwrap();
        let scope = ardoise_core::messaging::announcement_scope(&actor);
        for (i, loaded_at) in times.iter().enumerate() {
            // What a node loaded at `loaded_at`, read at every later time.
            let (live, complete) = store
                .live_announcements(scope.establishment_id, NOW + loaded_at, 500)
                .await
                .unwrap();
            assert!(complete);
            for at in &times[i..] {
                let db: Vec<_> = store
                    .announcements_for(&scope, NOW + at, true, 200)
                    .await
                    .unwrap();
                let memory: Vec<_> = live
                    .iter()
                    .filter(|a| ardoise_store::announcement_seen(&scope, a, NOW + at))
                    .cloned()
                    .collect();
                assert_eq!(memory, db, "{} at {at}, loaded at {loaded_at}", p.login);
                seen_any += db.len();
            }
        }
    }
    assert!(seen_any > 100, "the cases show announcements: {seen_any}");
    // Past the cap, the list says it is not whole.
    let (some, complete) = store
        .live_announcements(s.establishment, NOW + 100, 3)
        .await
        .unwrap();
    assert_eq!((some.len(), complete), (3, false));
}

#[tokio::test]
async fn home_parts_kept_in_memory_follow_writes_here_and_age_out_for_writes_elsewhere() {
    use ardoise_web::home_cache::HomeCache;
    let (store, url, _dir) = fresh_database().await;
    let s = seed(&store, NOW).await;
    // Another process on the same database (the command line, a node).
    let elsewhere = Store::connect(&url, false, 2).await.unwrap();
    let ttl = std::time::Duration::from_millis(600);
    let cache = HomeCache::with_ttl(ttl);
    let teachers = |e: &ardoise_web::home_cache::ClassEntry| -> Vec<String> {
        e.teachers.iter().map(|t| t.teacher.login.clone()).collect()
    };
    let before = cache.class(&store, s.class_b).await.unwrap();
    assert_eq!(teachers(&before), vec!["benoit.teacher"]);
    // A write here shows at once.
    store
        .create_teaching(s.teacher_a.id, s.subject, Some(s.class_b), None)
        .await
        .unwrap();
    let after = cache.class(&store, s.class_b).await.unwrap();
    assert_eq!(after.teachers.len(), 2, "{:?}", teachers(&after));
    let actor = store.load_actor(s.pupil_b.id).await.unwrap().unwrap();
    let scope = ardoise_core::messaging::announcement_scope(&actor);
    let titles = |list: Vec<ardoise_store::AnnouncementView>| -> Vec<String> {
        list.into_iter().map(|a| a.title).collect()
    };
    assert!(titles(
        cache
            .current_announcements(&store, &scope, NOW, 5)
            .await
            .unwrap()
    )
    .is_empty());
    many_announcements(&store, &s).await;
    assert_eq!(
        titles(
            cache
                .current_announcements(&store, &scope, NOW, 5)
                .await
                .unwrap()
        ),
        vec!["Class 0", "All 0"]
    );
    // A write elsewhere shows once the entry has aged out; until then the
    // node serves what it holds.
    let started = std::time::Instant::now();
    elsewhere
        .create_teaching(s.teacher_b.id, s.subject, Some(s.class_b), None)
        .await
        .unwrap();
    let held = cache.class(&store, s.class_b).await.unwrap();
    if started.elapsed() < ttl / 2 {
        assert_eq!(held.teachers.len(), 2, "{:?}", teachers(&held));
    }
    tokio::time::sleep(ttl + std::time::Duration::from_millis(100)).await;
    let aged = cache.class(&store, s.class_b).await.unwrap();
    assert_eq!(aged.teachers.len(), 3, "{:?}", teachers(&aged));
}

#[tokio::test]
async fn the_timeline_with_the_unread_count_is_both_read_apart() {
    let (store, _url, _dir) = fresh_database().await;
    let s = seed(&store, NOW).await;
    let message =
        |to: Vec<ardoise_core::PersonId>, at: i64, subject: &str| ardoise_store::MessageInsert {
            conversation_id: None,
            establishment_id: s.establishment,
            subject: subject.into(),
            broadcast: false,
            sender_id: s.teacher_a.id,
            body_source: "x".into(),
            body_html: "<p>x</p>".into(),
            recipients_label: "x".into(),
            recipients: to,
            sent_at: at,
            files: vec![],
        };
    let (first, _) = store
        .send_message(&message(vec![s.pupil_a.id, s.pupil_b.id], NOW, "Un"))
        .await
        .unwrap();
    store
        .send_message(&message(vec![s.pupil_a.id], NOW + 5, "Deux"))
        .await
        .unwrap();
    store.mark_read(s.pupil_b.id, first).await.unwrap();
    // The teacher's later messages, quarantined: hidden and not unread.
    store
        .send_message(&message(vec![s.pupil_a.id], NOW + 50, "Trois"))
        .await
        .unwrap();
    store
        .quarantine(
            s.teacher_a.id,
            NOW + 40,
            NOW + 60,
            s.staff.id,
            NOW + 70,
            "test",
        )
        .await
        .unwrap();
    let scope = |p: ardoise_core::PersonId| ardoise_store::TimelineScope {
        person_id: p,
        homework_classes: vec![],
        homework_groups: vec![],
        feedback_pupils: vec![p],
        announcements: ardoise_core::messaging::AnnouncementScope {
            establishment_id: s.establishment,
            everything: false,
            parent: false,
            classes: vec![],
            parent_classes: vec![],
            author: p,
        },
    };
    let mut expected_unread = vec![];
    // Two unread; one read; nothing at all; a page past the end.
    for (who, offset) in [
        (s.pupil_a.id, 0),
        (s.pupil_b.id, 0),
        (s.parent_a.id, 0),
        (s.pupil_a.id, 10),
    ] {
        let (items, unread) = store
            .timeline_with_unread(&scope(who), NOW + 100, 11, offset)
            .await
            .unwrap();
        let apart = store
            .timeline(&scope(who), NOW + 100, 11, offset)
            .await
            .unwrap();
        assert_eq!(
            items.iter().map(|i| &i.title).collect::<Vec<_>>(),
            apart.iter().map(|i| &i.title).collect::<Vec<_>>()
        );
        assert_eq!(unread, store.unread_count(who).await.unwrap());
        expected_unread.push((items.len(), unread));
    }
    assert_eq!(expected_unread, vec![(2, 2), (1, 0), (0, 0), (0, 2)]);
}
