//! The access matrix: every route × every role × ownership, run against the
//! real application. A route the router serves without a row here fails
//! `every_route_has_an_access_matrix_entry`.
//!
//! `A` allows, `D` denies (401, 403 or 404 — or, for a signed-out browser,
//! a redirection to the sign-in page). Columns, in order: anonymous,
//! pupil of 6eA, pupil of 6eB, parent of the 6eA pupil, parent of the 6eB
//! pupil, teacher of 6eA, teacher of 6eB, staff, staff of another
//! establishment, administrator. "Own" and "of pupil A" name whose thing
//! the `{id}` is.

use ardoise_testkit::{client, csrf_in, spawn_app, Person, TestApp, PASSWORD};
use std::collections::HashMap;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Target {
    None,
    ClassA,
    PupilA,
    Establishment,
    /// The acting person's own session.
    OwnSession,
    /// Pupil A's session.
    PupilASession,
    /// Homework set by teacher A for class 6eA.
    HomeworkA,
    /// A lesson written by teacher A for class 6eA.
    LessonA,
    /// The PDF attached to homework A.
    HomeworkFileA,
    /// The file pupil A handed in for homework A.
    SubmissionFileA,
    // Messaging (issue 4).
    /// Teacher A's conversation with pupil A and parent A.
    ConversationA,
    /// The first message of that conversation.
    MessageA,
    /// The PDF attached to that message.
    MessageFileA,
    /// A draft of teacher A.
    DraftA,
    /// Staff's quarantine of pupil B's messages.
    QuarantineA,
    /// Parent A's report of message A.
    ReportA,
    /// Teacher A's announcement to 6eA.
    AnnouncementA,
    // Documents (issue 5).
    /// A folder of class 6eA's space, made by teacher A.
    DocFolderA,
    /// A PDF in that folder.
    DocA,
    /// A PDF in teacher A's own space, shared with no one.
    PrivateDocA,
    /// A PDF in teacher A's own space, shared with class 6eA.
    SharedDocA,
    /// Group « Soutien 6e »: pupil A is a member (pupil B is not), teacher
    /// A teaches it.
    GroupA,
    /// Homework to hand in set by teacher A for group A.
    GroupHomeworkA,
    /// A lesson written by teacher A for group A.
    GroupLessonA,
    /// The PDF attached to group A's homework.
    GroupHomeworkFileA,
    /// The file pupil A handed in for group A's homework.
    GroupSubmissionFileA,
    /// An upload in pieces teacher A started into the class 6eA folder.
    UploadA,
}

#[derive(Clone, Copy, Debug)]
enum Body {
    Empty,
    /// A form with the session's anti-CSRF token and these fields.
    Form(&'static [(&'static str, &'static str)]),
    /// A form posted before sign-in, with the pre-session token.
    PreForm(&'static [(&'static str, &'static str)]),
    Json(&'static str),
}

struct Row {
    method: &'static str,
    path: &'static str,
    target: Target,
    body: Body,
    /// One letter per role, in the column order above.
    expect: &'static str,
}

const WHO: [&str; 10] = [
    "anonymous",
    "pupil A",
    "pupil B",
    "parent A",
    "parent B",
    "teacher A",
    "teacher B",
    "staff",
    "foreign staff",
    "admin",
];

const PUBLIC: &str = "AAAAAAAAAA";
const SIGNED: &str = "DAAAAAAAAA";
/// Participants of conversation A: pupil A, parent A, teacher A.
const CONVERSATION_A: &str = "DADADADDDD";
/// Staff of an establishment (their own), administrators.
const STAFF_OWN: &str = "DDDDDDDAAA";
/// Staff of the first establishment, administrators.
const STAFF_A: &str = "DDDDDDDADA";
/// Who may write to teacher A: pupil A, parent A, teacher B, staff, admin.
const TO_TEACHER_A: &str = "DADADDAADA";
const RULES_FORM: &[(&str, &str)] = &[
    ("pupil_hourly_limit", "20"),
    ("adult_hourly_limit", "200"),
    ("pupil_max_recipients", "5"),
];
const RULES_JSON: &str = r#"{"pupils_to_pupils": false, "pupils_to_parents": false, "parents_to_parents": false, "pupil_hourly_limit": 20, "adult_hourly_limit": 200, "pupil_max_recipients": 5}"#;
const ADMIN: &str = "DDDDDDDDDA";
/// Class 6eA: its pupils, their parents, its teachers, staff, admin.
const CLASS_A: &str = "DADADADADA";
/// Only the teacher of 6eA (in its subject).
const TEACHER_A: &str = "DDDDDADDDD";
/// Only pupil A.
const PUPIL_A: &str = "DADDDDDDDD";
/// Pupil A's work: them, their parent, their teacher, staff, admin.
const PUPIL_A_WORK: &str = "DADADADADA";
const LESSON_FORM: &[(&str, &str)] = &[
    ("subject_id", "1"),
    ("lesson_on", "2099-01-05"),
    ("title", "Séance"),
    ("content", "Contenu"),
];
const HOMEWORK_FORM: &[(&str, &str)] = &[
    ("subject_id", "1"),
    ("due_on", "2099-01-05"),
    ("instructions", "Exercice 1"),
];
// Documents (issue 5).
/// Class 6eA's document space: its pupils, their parents, its teachers,
/// staff of the establishment (not administrators: school spaces belong to
/// the school).
const CLASS_A_DOCS: &str = "DADADADADD";
/// Shared with class 6eA from a teacher's own space: its pupils, their
/// parents, its teachers.
const SHARED_A_DOCS: &str = "DADADADDDD";
/// The establishment's space: its teachers and staff.
const ESTABLISHMENT_DOCS: &str = "DDDDDAAADD";
const PASSWORD_FORM: &[(&str, &str)] = &[
    ("current", PASSWORD),
    ("password", "une phrase de passe neuve"),
    ("confirm", "une phrase de passe neuve"),
];

fn rows() -> Vec<Row> {
    use Body::*;
    use Target::*;
    let r = |method, path, target, body, expect| Row {
        method,
        path,
        target,
        body,
        expect,
    };
    vec![
        r("GET", "/healthz", None, Empty, PUBLIC),
        r("GET", "/readyz", None, Empty, PUBLIC),
        r("GET", "/metrics", None, Empty, PUBLIC),
        r("GET", "/api/v1/openapi.json", None, Empty, PUBLIC),
        r("GET", "/static/ardoise.css", None, Empty, PUBLIC),
        r("GET", "/static/challenge.js", None, Empty, PUBLIC),
        r("GET", "/login", None, Empty, PUBLIC),
        r(
            "POST",
            "/login",
            None,
            PreForm(&[("login", "alice.pupil"), ("password", PASSWORD)]),
            PUBLIC,
        ),
        r("POST", "/logout", None, Form(&[]), SIGNED),
        r("GET", "/activate", None, Empty, PUBLIC),
        r(
            "POST",
            "/activate",
            None,
            PreForm(&[
                ("login", "paul.pending"),
                ("code", "WRONG-CODE-0000"),
                ("password", "x"),
                ("confirm", "x"),
            ]),
            PUBLIC,
        ),
        r("POST", "/language", None, Form(&[("lang", "en")]), PUBLIC),
        r("GET", "/account", None, Empty, SIGNED),
        r(
            "POST",
            "/account/password",
            None,
            Form(PASSWORD_FORM),
            SIGNED,
        ),
        r(
            "POST",
            "/account/sessions/{id}/revoke",
            OwnSession,
            Form(&[]),
            SIGNED,
        ),
        r(
            "POST",
            "/account/sessions/{id}/revoke",
            PupilASession,
            Form(&[]),
            "DADDDDDDDD",
        ),
        r(
            "POST",
            "/account/sessions/revoke-others",
            None,
            Form(&[]),
            SIGNED,
        ),
        r("GET", "/", None, Empty, PUBLIC),
        r("GET", "/home", None, Empty, SIGNED),
        r("GET", "/classes/{id}", ClassA, Empty, CLASS_A),
        r("GET", "/admin", None, Empty, ADMIN),
        r(
            "POST",
            "/admin/establishments",
            None,
            Form(&[("uai", "0990099Z"), ("name", "Collège Nouveau")]),
            ADMIN,
        ),
        r(
            "GET",
            "/admin/establishments/{id}",
            Establishment,
            Empty,
            ADMIN,
        ),
        r(
            "POST",
            "/admin/establishments/{id}/classes",
            Establishment,
            Form(&[("name", "5eC"), ("level", "5e")]),
            ADMIN,
        ),
        r("GET", "/admin/accounts", None, Empty, ADMIN),
        r(
            "POST",
            "/admin/accounts",
            None,
            Form(&[
                ("establishment_id", "1"),
                ("first_name", "Nouvel"),
                ("last_name", "Arrivant"),
                ("role_parent", "1"),
            ]),
            ADMIN,
        ),
        r("GET", "/admin/accounts/{id}", PupilA, Empty, ADMIN),
        r(
            "POST",
            "/admin/accounts/{id}/status",
            PupilA,
            Form(&[("enabled", "0")]),
            ADMIN,
        ),
        r(
            "POST",
            "/admin/accounts/{id}/activation-code",
            PupilA,
            Form(&[]),
            ADMIN,
        ),
        r(
            "POST",
            "/admin/accounts/{id}/sessions/revoke",
            PupilA,
            Form(&[]),
            ADMIN,
        ),
        r(
            "POST",
            "/admin/classes/{id}/letters",
            ClassA,
            Form(&[]),
            ADMIN,
        ),
        r("GET", "/admin/sessions", None, Empty, ADMIN),
        r("GET", "/admin/surge", None, Empty, ADMIN),
        r(
            "POST",
            "/api/v1/session",
            None,
            Json(r#"{"login": "bruno.pupil", "password": "cheval agrafe batterie correcte"}"#),
            PUBLIC,
        ),
        r("DELETE", "/api/v1/session", None, Empty, SIGNED),
        r("GET", "/api/v1/me", None, Empty, SIGNED),
        r("GET", "/api/v1/me/sessions", None, Empty, SIGNED),
        r("GET", "/api/v1/children", None, Empty, SIGNED),
        r("GET", "/api/v1/classes", None, Empty, SIGNED),
        r("GET", "/api/v1/classes/{id}", ClassA, Empty, CLASS_A),
        // Parents see their child's class, not the classmates.
        r(
            "GET",
            "/api/v1/classes/{id}/pupils",
            ClassA,
            Empty,
            "DADDDADADA",
        ),
        // Pupil A themself, their parent, their teacher, classmates' view excluded for class B.
        r("GET", "/api/v1/people/{id}", PupilA, Empty, "DADADADADA"),
        // The homework diary.
        r("GET", "/todo", None, Empty, SIGNED),
        r("GET", "/pupils/{id}/todo", PupilA, Empty, PUPIL_A_WORK),
        r("GET", "/classes/{id}/diary", ClassA, Empty, CLASS_A),
        r(
            "POST",
            "/classes/{id}/lessons",
            ClassA,
            Form(LESSON_FORM),
            TEACHER_A,
        ),
        r(
            "POST",
            "/classes/{id}/homework",
            ClassA,
            Form(HOMEWORK_FORM),
            TEACHER_A,
        ),
        r(
            "POST",
            "/homework/{id}/done",
            HomeworkA,
            Form(&[("done", "1")]),
            PUPIL_A,
        ),
        r(
            "POST",
            "/homework/{id}/delete",
            HomeworkA,
            Form(&[]),
            TEACHER_A,
        ),
        r(
            "POST",
            "/lessons/{id}/delete",
            LessonA,
            Form(&[]),
            TEACHER_A,
        ),
        r(
            "GET",
            "/api/v1/pupils/{id}/todo",
            PupilA,
            Empty,
            PUPIL_A_WORK,
        ),
        r("GET", "/api/v1/classes/{id}/diary", ClassA, Empty, CLASS_A),
        r(
            "POST",
            "/api/v1/classes/{id}/lessons",
            ClassA,
            Json(r#"{"subject_id": "1", "lesson_on": "2099-01-05", "title": "T", "content": "C"}"#),
            TEACHER_A,
        ),
        r(
            "POST",
            "/api/v1/classes/{id}/homework",
            ClassA,
            Json(r#"{"subject_id": "1", "due_on": "2099-01-05", "instructions": "I"}"#),
            TEACHER_A,
        ),
        r(
            "PUT",
            "/api/v1/homework/{id}/done",
            HomeworkA,
            Json(r#"{"done": true}"#),
            PUPIL_A,
        ),
        // Assignments: hand-ins, feedback, files.
        r("GET", "/homework/{id}", HomeworkA, Empty, CLASS_A),
        r(
            "GET",
            "/pupils/{pupil}/homework/{id}",
            HomeworkA,
            Empty,
            PUPIL_A_WORK,
        ),
        r(
            "POST",
            "/homework/{id}/submission",
            HomeworkA,
            Form(&[("text", "Mon devoir")]),
            PUPIL_A,
        ),
        r(
            "POST",
            "/homework/{id}/feedback/{pupil}",
            HomeworkA,
            Form(&[("comment", "Bien")]),
            TEACHER_A,
        ),
        r("GET", "/homework/{id}/archive", HomeworkA, Empty, TEACHER_A),
        r("GET", "/attachments/{id}", HomeworkFileA, Empty, CLASS_A),
        r(
            "GET",
            "/attachments/{id}",
            SubmissionFileA,
            Empty,
            PUPIL_A_WORK,
        ),
        r("GET", "/api/v1/homework/{id}", HomeworkA, Empty, CLASS_A),
        r(
            "GET",
            "/api/v1/pupils/{pupil}/homework/{id}",
            HomeworkA,
            Empty,
            PUPIL_A_WORK,
        ),
        r(
            "PUT",
            "/api/v1/homework/{id}/submission",
            HomeworkA,
            Form(&[("text", "Mon devoir")]),
            PUPIL_A,
        ),
        // Who handed in: the class's teachers, staff, admin.
        r(
            "GET",
            "/api/v1/homework/{id}/submissions",
            HomeworkA,
            Empty,
            "DDDDDADADA",
        ),
        r(
            "PUT",
            "/api/v1/homework/{id}/feedback/{pupil}",
            HomeworkA,
            Json(r#"{"comment": "Bien"}"#),
            TEACHER_A,
        ),
        // Teaching groups: a pupil outside the group, a parent of another
        // child, a teacher not teaching the group are each refused.
        r("GET", "/groups/{id}/diary", GroupA, Empty, CLASS_A),
        r(
            "POST",
            "/groups/{id}/lessons",
            GroupA,
            Form(LESSON_FORM),
            TEACHER_A,
        ),
        r(
            "POST",
            "/groups/{id}/homework",
            GroupA,
            Form(HOMEWORK_FORM),
            TEACHER_A,
        ),
        r("GET", "/api/v1/groups/{id}/diary", GroupA, Empty, CLASS_A),
        r(
            "POST",
            "/api/v1/groups/{id}/lessons",
            GroupA,
            Json(r#"{"subject_id": "1", "lesson_on": "2099-01-05", "title": "T", "content": "C"}"#),
            TEACHER_A,
        ),
        r(
            "POST",
            "/api/v1/groups/{id}/homework",
            GroupA,
            Json(r#"{"subject_id": "1", "due_on": "2099-01-05", "instructions": "I"}"#),
            TEACHER_A,
        ),
        r("GET", "/homework/{id}", GroupHomeworkA, Empty, CLASS_A),
        r(
            "GET",
            "/api/v1/homework/{id}",
            GroupHomeworkA,
            Empty,
            CLASS_A,
        ),
        r(
            "GET",
            "/pupils/{pupil}/homework/{id}",
            GroupHomeworkA,
            Empty,
            PUPIL_A_WORK,
        ),
        r(
            "POST",
            "/homework/{id}/done",
            GroupHomeworkA,
            Form(&[("done", "1")]),
            PUPIL_A,
        ),
        r(
            "POST",
            "/homework/{id}/submission",
            GroupHomeworkA,
            Form(&[("text", "Mon devoir")]),
            PUPIL_A,
        ),
        r(
            "GET",
            "/api/v1/homework/{id}/submissions",
            GroupHomeworkA,
            Empty,
            "DDDDDADADA",
        ),
        r(
            "PUT",
            "/api/v1/homework/{id}/feedback/{pupil}",
            GroupHomeworkA,
            Json(r#"{"comment": "Bien"}"#),
            TEACHER_A,
        ),
        r(
            "GET",
            "/homework/{id}/archive",
            GroupHomeworkA,
            Empty,
            TEACHER_A,
        ),
        r(
            "POST",
            "/homework/{id}/delete",
            GroupHomeworkA,
            Form(&[]),
            TEACHER_A,
        ),
        r(
            "POST",
            "/lessons/{id}/delete",
            GroupLessonA,
            Form(&[]),
            TEACHER_A,
        ),
        r(
            "GET",
            "/attachments/{id}",
            GroupHomeworkFileA,
            Empty,
            CLASS_A,
        ),
        r(
            "GET",
            "/attachments/{id}",
            GroupSubmissionFileA,
            Empty,
            PUPIL_A_WORK,
        ),
        // Documents (issue 5).
        r("GET", "/documents", None, Empty, SIGNED),
        r("GET", "/documents/trash", None, Empty, SIGNED),
        r(
            "GET",
            "/documents/spaces/{kind}/{id}",
            ClassA,
            Empty,
            CLASS_A_DOCS,
        ),
        r(
            "GET",
            "/documents/spaces/{kind}/{id}",
            PupilA,
            Empty,
            PUPIL_A,
        ),
        r(
            "GET",
            "/documents/spaces/{kind}/{id}",
            Establishment,
            Empty,
            ESTABLISHMENT_DOCS,
        ),
        r(
            "GET",
            "/documents/folders/{id}",
            DocFolderA,
            Empty,
            CLASS_A_DOCS,
        ),
        r(
            "POST",
            "/documents/folders/{id}",
            DocFolderA,
            Form(&[("op", "new_folder"), ("name", "Séquence 2")]),
            TEACHER_A,
        ),
        r(
            "POST",
            "/documents/folders/{id}/upload",
            DocFolderA,
            Form(&[]),
            TEACHER_A,
        ),
        r("GET", "/documents/files/{id}", DocA, Empty, CLASS_A_DOCS),
        r(
            "GET",
            "/documents/files/{id}",
            PrivateDocA,
            Empty,
            TEACHER_A,
        ),
        r(
            "GET",
            "/documents/files/{id}",
            SharedDocA,
            Empty,
            SHARED_A_DOCS,
        ),
        r(
            "POST",
            "/documents/files/{id}",
            DocA,
            Form(&[("op", "rename"), ("name", "fiche.pdf")]),
            TEACHER_A,
        ),
        r(
            "POST",
            "/documents/files/{id}",
            SharedDocA,
            Form(&[("op", "trash")]),
            TEACHER_A,
        ),
        r(
            "GET",
            "/documents/files/{id}/content/{hash}",
            DocA,
            Empty,
            CLASS_A_DOCS,
        ),
        r(
            "GET",
            "/documents/files/{id}/content/{hash}",
            PrivateDocA,
            Empty,
            TEACHER_A,
        ),
        r(
            "GET",
            "/documents/files/{id}/content/{hash}",
            SharedDocA,
            Empty,
            SHARED_A_DOCS,
        ),
        r("GET", "/api/v1/documents", None, Empty, SIGNED),
        r("GET", "/api/v1/documents/trash", None, Empty, SIGNED),
        r("GET", "/api/v1/documents/search", None, Empty, SIGNED),
        r(
            "GET",
            "/api/v1/documents/spaces/{kind}/{id}",
            ClassA,
            Empty,
            CLASS_A_DOCS,
        ),
        r(
            "GET",
            "/api/v1/documents/spaces/{kind}/{id}",
            PupilA,
            Empty,
            PUPIL_A,
        ),
        r(
            "GET",
            "/api/v1/documents/folders/{id}",
            DocFolderA,
            Empty,
            CLASS_A_DOCS,
        ),
        r(
            "PUT",
            "/api/v1/documents/folders/{id}",
            DocFolderA,
            Json(r#"{"name": "Séquence 1 bis"}"#),
            TEACHER_A,
        ),
        r(
            "DELETE",
            "/api/v1/documents/folders/{id}",
            DocFolderA,
            Empty,
            TEACHER_A,
        ),
        r(
            "POST",
            "/api/v1/documents/folders/{id}/folders",
            DocFolderA,
            Json(r#"{"name": "Exercices"}"#),
            TEACHER_A,
        ),
        r(
            "POST",
            "/api/v1/documents/folders/{id}/files",
            DocFolderA,
            Form(&[]),
            TEACHER_A,
        ),
        r(
            "PUT",
            "/api/v1/documents/folders/{id}/shares",
            DocFolderA,
            Json("[]"),
            TEACHER_A,
        ),
        r(
            "GET",
            "/api/v1/documents/files/{id}",
            DocA,
            Empty,
            CLASS_A_DOCS,
        ),
        r(
            "GET",
            "/api/v1/documents/files/{id}",
            PrivateDocA,
            Empty,
            TEACHER_A,
        ),
        r(
            "GET",
            "/api/v1/documents/files/{id}",
            SharedDocA,
            Empty,
            SHARED_A_DOCS,
        ),
        r(
            "PUT",
            "/api/v1/documents/files/{id}",
            DocA,
            Json(r#"{"name": "fiche.pdf"}"#),
            TEACHER_A,
        ),
        r(
            "DELETE",
            "/api/v1/documents/files/{id}",
            SharedDocA,
            Empty,
            TEACHER_A,
        ),
        r(
            "PUT",
            "/api/v1/documents/files/{id}/shares",
            SharedDocA,
            Json(r#"[{"target": "class:1"}]"#),
            TEACHER_A,
        ),
        // Uploads in pieces: only the folder's writers start one, only
        // the person who started it sees or continues it.
        r(
            "POST",
            "/api/v1/documents/folders/{id}/uploads",
            DocFolderA,
            Empty,
            TEACHER_A,
        ),
        r(
            "HEAD",
            "/api/v1/documents/uploads/{token}",
            UploadA,
            Empty,
            TEACHER_A,
        ),
        r(
            "PATCH",
            "/api/v1/documents/uploads/{token}",
            UploadA,
            Empty,
            TEACHER_A,
        ),
        r(
            "DELETE",
            "/api/v1/documents/uploads/{token}",
            UploadA,
            Empty,
            TEACHER_A,
        ),
        // Messaging (issue 4). Foreign staff get 422 on another school's
        // accounts (counted as "allowed to use the route"); the API tests
        // check nothing happens to the account.
        r("GET", "/messages", None, Empty, SIGNED),
        r("GET", "/messages/new", None, Empty, SIGNED),
        r(
            "POST",
            "/messages",
            None,
            Form(&[("to", "person:{teacher}"), ("subject", "S"), ("body", "B")]),
            TO_TEACHER_A,
        ),
        r("GET", "/messages/search", None, Empty, SIGNED),
        r("GET", "/messages/drafts", None, Empty, SIGNED),
        r(
            "POST",
            "/messages/drafts/{id}/delete",
            DraftA,
            Form(&[]),
            TEACHER_A,
        ),
        r(
            "GET",
            "/messages/{id}",
            ConversationA,
            Empty,
            CONVERSATION_A,
        ),
        r(
            "GET",
            "/attachments/{id}",
            MessageFileA,
            Empty,
            CONVERSATION_A,
        ),
        r(
            "POST",
            "/messages/{id}/reply",
            ConversationA,
            Form(&[("body", "Réponse")]),
            CONVERSATION_A,
        ),
        r(
            "POST",
            "/messages/items/{id}/report",
            MessageA,
            Form(&[("reason", "x")]),
            CONVERSATION_A,
        ),
        r("GET", "/messages/containment", None, Empty, STAFF_OWN),
        r(
            "POST",
            "/messages/containment/suspend",
            None,
            Form(&[("login", "bruno.pupil")]),
            STAFF_OWN,
        ),
        r(
            "POST",
            "/messages/containment/unsuspend",
            None,
            Form(&[("login", "bruno.pupil")]),
            STAFF_OWN,
        ),
        r(
            "POST",
            "/messages/containment/quarantine",
            None,
            Form(&[("login", "bruno.pupil")]),
            STAFF_OWN,
        ),
        r(
            "POST",
            "/messages/containment/quarantines/{id}/lift",
            QuarantineA,
            Form(&[]),
            STAFF_A,
        ),
        r(
            "POST",
            "/messages/containment/reports/{id}/close",
            ReportA,
            Form(&[]),
            STAFF_A,
        ),
        r("GET", "/messages/rules", None, Empty, STAFF_OWN),
        r("POST", "/messages/rules", None, Form(RULES_FORM), STAFF_OWN),
        r("GET", "/announcements", None, Empty, SIGNED),
        r(
            "POST",
            "/announcements",
            None,
            Form(&[("title", "T"), ("body", "B"), ("audience", "all")]),
            "DDDDDDDAAD",
        ),
        r(
            "POST",
            "/announcements/{id}/withdraw",
            AnnouncementA,
            Form(&[]),
            "DDDDDADADD",
        ),
        r("GET", "/api/v1/messages", None, Empty, SIGNED),
        r(
            "POST",
            "/api/v1/messages",
            None,
            Json(r#"{"subject": "S", "body": "B", "to": ["person:{teacher}"]}"#),
            TO_TEACHER_A,
        ),
        r("GET", "/api/v1/messages/recipients", None, Empty, SIGNED),
        r("GET", "/api/v1/messages/search", None, Empty, SIGNED),
        r("GET", "/api/v1/messages/drafts", None, Empty, SIGNED),
        r(
            "POST",
            "/api/v1/messages/drafts",
            None,
            Json(r#"{"subject": "S", "body": "B"}"#),
            SIGNED,
        ),
        r(
            "DELETE",
            "/api/v1/messages/drafts/{id}",
            DraftA,
            Empty,
            TEACHER_A,
        ),
        r(
            "GET",
            "/api/v1/messages/{id}",
            ConversationA,
            Empty,
            CONVERSATION_A,
        ),
        r(
            "POST",
            "/api/v1/messages/{id}/reply",
            ConversationA,
            Json(r#"{"body": "Réponse"}"#),
            CONVERSATION_A,
        ),
        r(
            "POST",
            "/api/v1/messages/items/{id}/report",
            MessageA,
            Json(r#"{"reason": "x"}"#),
            CONVERSATION_A,
        ),
        r(
            "GET",
            "/api/v1/messages/containment",
            None,
            Empty,
            STAFF_OWN,
        ),
        r(
            "POST",
            "/api/v1/messages/containment/suspensions",
            None,
            Json(r#"{"person_id": {pupil_b}, "suspended": true}"#),
            STAFF_OWN,
        ),
        r(
            "POST",
            "/api/v1/messages/containment/quarantines",
            None,
            Json(r#"{"person_id": {pupil_b}}"#),
            STAFF_OWN,
        ),
        r(
            "POST",
            "/api/v1/messages/containment/quarantines/{id}/lift",
            QuarantineA,
            Empty,
            STAFF_A,
        ),
        r("GET", "/api/v1/messages/rules", None, Empty, STAFF_OWN),
        r(
            "PUT",
            "/api/v1/messages/rules",
            None,
            Json(RULES_JSON),
            STAFF_OWN,
        ),
        r("GET", "/api/v1/announcements", None, Empty, SIGNED),
        r(
            "POST",
            "/api/v1/announcements",
            None,
            Json(r#"{"title": "T", "body": "B", "audience": "all"}"#),
            "DDDDDDDAAD",
        ),
        r(
            "POST",
            "/api/v1/announcements/{id}/withdraw",
            AnnouncementA,
            Empty,
            "DDDDDADADD",
        ),
        r("GET", "/api/v1/timeline", None, Empty, SIGNED),
    ]
}

#[test]
fn every_route_has_an_access_matrix_entry() {
    let rows = rows();
    let mut missing = Vec::new();
    for e in ardoise_web::routes::all().entries() {
        if !rows
            .iter()
            .any(|r| r.method == e.method && r.path == e.path)
        {
            missing.push(format!("{} {}", e.method, e.path));
        }
    }
    assert!(
        missing.is_empty(),
        "routes without an access-matrix entry: {missing:?}"
    );
    for r in &rows {
        assert_eq!(r.expect.len(), WHO.len(), "{} {}", r.method, r.path);
        assert!(
            ardoise_web::routes::all()
                .entries()
                .iter()
                .any(|e| e.method == r.method && e.path == r.path),
            "matrix row for a route that does not exist: {} {}",
            r.method,
            r.path
        );
    }
}

struct Actor {
    client: reqwest::Client,
    csrf: String,
    session_id: i64,
}

async fn sign_in(app: &TestApp, p: &Person) -> Actor {
    let (client, _) = app.sign_in(p).await;
    let csrf = app.csrf(&client).await;
    let sessions: Vec<serde_json::Value> = client
        .get(app.url("/api/v1/me/sessions"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let session_id = sessions
        .iter()
        .find(|s| s["current"] == true)
        .and_then(|s| s["id"].as_i64())
        .unwrap();
    Actor {
        client,
        csrf,
        session_id,
    }
}

/// A small PDF put in the application's blob store, as an attachment row.
async fn stored_pdf(app: &TestApp, name: &str) -> ardoise_store::AttachmentInsert {
    let bytes = format!("%PDF-1.4\n% {name}\n%%EOF\n");
    let blob = app
        .state
        .files
        .put_bytes(bytes.into_bytes().into(), 1 << 20)
        .await
        .unwrap();
    ardoise_store::AttachmentInsert {
        blob_hash: blob.hash.as_str().to_string(),
        file_name: name.to_string(),
        mime: blob.detected.mime.clone(),
        size: blob.size as i64,
    }
}

/// The documents of the matrix: ids (and content hashes).
struct DocsFixture {
    folder: i64,
    doc: (i64, String),
    private: (i64, String),
    shared: (i64, String),
}

async fn documents_fixture(app: &TestApp) -> DocsFixture {
    use ardoise_core::documents::{ShareTarget, Space};
    let s = &app.seeded;
    let now = ardoise_core::Clock::now(&*app.clock);
    let class_root = app
        .store
        .space_root(
            Space::Class(s.class_a, s.establishment),
            s.establishment,
            now,
        )
        .await
        .unwrap();
    let folder = app
        .store
        .create_folder(&class_root, "Séquence 1", s.teacher_a.id, now)
        .await
        .unwrap();
    let own_root = app
        .store
        .space_root(Space::Person(s.teacher_a.id), s.establishment, now)
        .await
        .unwrap();
    let mut out = Vec::new();
    for (folder_id, name) in [
        (folder.id, "fiche.pdf"),
        (own_root.id, "brouillon.pdf"),
        (own_root.id, "cours.pdf"),
    ] {
        let f = stored_pdf(app, name).await;
        let doc = app
            .store
            .insert_documents(&[ardoise_store::DocumentInsert {
                folder_id,
                name: name.into(),
                blob_hash: f.blob_hash.clone(),
                mime: f.mime,
                size: f.size,
                owner_id: s.teacher_a.id,
                now,
                quota: i64::MAX,
            }])
            .await
            .unwrap()
            .unwrap();
        out.push((doc[0].id, f.blob_hash));
    }
    app.store
        .put_share(
            ardoise_store::ItemKind::Document,
            out[2].0,
            ShareTarget::Class(s.class_a),
            false,
            s.teacher_a.id,
            now,
        )
        .await
        .unwrap();
    let mut it = out.into_iter();
    DocsFixture {
        folder: folder.id,
        doc: it.next().unwrap(),
        private: it.next().unwrap(),
        shared: it.next().unwrap(),
    }
}

/// A body with `{teacher}` (teacher A) and `{pupil_b}` replaced by ids.
fn people_in(body: &str, s: &ardoise_testkit::Seeded) -> String {
    body.replace("{teacher}", &s.teacher_a.id.to_string())
        .replace("{pupil_b}", &s.pupil_b.id.to_string())
}

async fn run_row(row: &Row) -> Vec<String> {
    let app = spawn_app().await;
    let s = app.seeded.clone();
    assert_eq!(s.subject.0, 1, "the matrix's forms name subject 1");
    let now = ardoise_core::Clock::now(&*app.clock);
    let homework = ardoise_store::HomeworkInsertForm {
        audience: ardoise_core::Audience::Class(s.class_a),
        subject_id: s.subject,
        teacher_id: s.teacher_a.id,
        due_on: "2099-01-05".into(),
        instructions_source: "x".into(),
        instructions_html: "<p>x</p>".into(),
        minutes: None,
        publish_at: now,
        created_at: now,
        hand_in: Some(ardoise_store::HandIn {
            deadline_at: 4_070_908_800, // 2099-01-01
            late_allowed: false,
            mark_scale: Some(20),
        }),
        attachments: vec![stored_pdf(&app, "consignes.pdf").await],
    };
    let homework_form = homework.clone();
    let homework_a = app.store.insert_homework(&[homework]).await.unwrap()[0];
    let homework_file_a = app
        .store
        .attachments_of(ardoise_store::OwnerKind::Homework, homework_a.0)
        .await
        .unwrap()[0]
        .id;
    let submission = ardoise_store::SubmissionInsert {
        homework_id: homework_a,
        pupil_id: s.pupil_a.id,
        text_source: String::new(),
        text_html: String::new(),
        submitted_at: now,
        late: false,
        files: vec![stored_pdf(&app, "copie.pdf").await],
        total_size: 20,
        receipt_hash: "0".repeat(64),
    };
    let submission_file_a = app.store.put_submission(&submission).await.unwrap().files[0].id;
    let lesson = ardoise_store::LessonInsertForm {
        audience: ardoise_core::Audience::Class(s.class_a),
        subject_id: s.subject,
        teacher_id: s.teacher_a.id,
        lesson_on: "2099-01-05".into(),
        title: "t".into(),
        content_source: "x".into(),
        content_html: "<p>x</p>".into(),
        publish_at: now,
        created_at: now,
        attachments: vec![],
    };
    let docs = documents_fixture(&app).await;
    let lesson_a = app.store.insert_lesson(&lesson).await.unwrap();
    let group = ardoise_core::Audience::Group(s.group_a);
    let group_homework = ardoise_store::HomeworkInsertForm {
        audience: group,
        attachments: vec![stored_pdf(&app, "groupe.pdf").await],
        ..homework_form.clone()
    };
    let group_homework_a = app.store.insert_homework(&[group_homework]).await.unwrap()[0];
    let group_homework_file_a = app
        .store
        .attachments_of(ardoise_store::OwnerKind::Homework, group_homework_a.0)
        .await
        .unwrap()[0]
        .id;
    let group_submission = ardoise_store::SubmissionInsert {
        homework_id: group_homework_a,
        files: vec![stored_pdf(&app, "copie-groupe.pdf").await],
        ..submission.clone()
    };
    let group_submission_file_a = app
        .store
        .put_submission(&group_submission)
        .await
        .unwrap()
        .files[0]
        .id;
    let group_lesson_a = app
        .store
        .insert_lesson(&ardoise_store::LessonInsertForm {
            audience: group,
            ..lesson.clone()
        })
        .await
        .unwrap();
    // Messaging (issue 4).
    let conv = ardoise_store::MessageInsert {
        conversation_id: None,
        establishment_id: s.establishment,
        subject: "Conversation A".into(),
        broadcast: false,
        sender_id: s.teacher_a.id,
        body_source: "x".into(),
        body_html: "<p>x</p>".into(),
        recipients_label: String::new(),
        recipients: vec![s.pupil_a.id, s.parent_a.id],
        sent_at: now,
        files: vec![stored_pdf(&app, "message.pdf").await],
    };
    let (conversation_a, message_a) = app.store.send_message(&conv).await.unwrap();
    let message_file_a = app
        .store
        .conversation_for(s.teacher_a.id, conversation_a)
        .await
        .unwrap()
        .unwrap()
        .messages[0]
        .files[0]
        .id;
    let draft_a = app
        .store
        .save_draft(s.teacher_a.id, None, "d", "b", "", now)
        .await
        .unwrap()
        .unwrap();
    let (quarantine_a, _) = app
        .store
        .quarantine(s.pupil_b.id, 0, now, s.staff.id, now, "")
        .await
        .unwrap();
    let report_a = app
        .store
        .report_message(message_a, s.parent_a.id, "", now)
        .await
        .unwrap();
    let announcement_a = app
        .store
        .insert_announcement(&ardoise_store::AnnouncementInsert {
            establishment_id: s.establishment,
            author_id: s.teacher_a.id,
            title: "t".into(),
            body_source: "b".into(),
            body_html: "<p>b</p>".into(),
            audience: ardoise_core::messaging::AnnouncementAudience::Class,
            classes: vec![s.class_a],
            publish_from: now,
            publish_until: None,
            created_at: now,
        })
        .await
        .unwrap();
    let people: Vec<Option<&Person>> = vec![
        None,
        Some(&s.pupil_a),
        Some(&s.pupil_b),
        Some(&s.parent_a),
        Some(&s.parent_b),
        Some(&s.teacher_a),
        Some(&s.teacher_b),
        Some(&s.staff),
        Some(&s.foreign_staff),
        Some(&s.admin),
    ];
    let mut actors: Vec<Option<Actor>> = Vec::new();
    for p in &people {
        actors.push(match p {
            Some(p) => Some(sign_in(&app, p).await),
            None => None,
        });
    }
    let pupil_a_session = actors[1].as_ref().map(|a| a.session_id).unwrap();
    // Teacher A starts an upload in pieces into the class folder.
    let upload_a = {
        let r = actors[5]
            .as_ref()
            .unwrap()
            .client
            .post(app.url(&format!(
                "/api/v1/documents/folders/{}/uploads",
                docs.folder
            )))
            .header("upload-length", "100")
            .header("upload-metadata", "filename Y291cnMucGRm")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 201, "an upload in pieces starts");
        r.headers()["location"]
            .to_str()
            .unwrap()
            .rsplit('/')
            .next()
            .unwrap()
            .to_string()
    };
    let mut failures = Vec::new();
    for (i, expect) in row.expect.chars().enumerate() {
        let actor = actors[i].as_ref();
        let id = match row.target {
            Target::None => String::new(),
            Target::ClassA => s.class_a.to_string(),
            Target::PupilA => s.pupil_a.id.to_string(),
            Target::Establishment => s.establishment.to_string(),
            Target::OwnSession => actor
                .map(|a| a.session_id)
                .unwrap_or(pupil_a_session)
                .to_string(),
            Target::PupilASession => pupil_a_session.to_string(),
            Target::HomeworkA => homework_a.to_string(),
            Target::LessonA => lesson_a.to_string(),
            Target::HomeworkFileA => homework_file_a.to_string(),
            Target::SubmissionFileA => submission_file_a.to_string(),
            Target::GroupA => s.group_a.to_string(),
            Target::GroupHomeworkA => group_homework_a.to_string(),
            Target::GroupLessonA => group_lesson_a.to_string(),
            Target::GroupHomeworkFileA => group_homework_file_a.to_string(),
            Target::GroupSubmissionFileA => group_submission_file_a.to_string(),
            Target::DocFolderA => docs.folder.to_string(),
            Target::DocA => docs.doc.0.to_string(),
            Target::PrivateDocA => docs.private.0.to_string(),
            Target::SharedDocA => docs.shared.0.to_string(),
            Target::ConversationA => conversation_a.to_string(),
            Target::MessageA => message_a.to_string(),
            Target::MessageFileA => message_file_a.to_string(),
            Target::DraftA => draft_a.to_string(),
            Target::QuarantineA => quarantine_a.to_string(),
            Target::ReportA => report_a.to_string(),
            Target::AnnouncementA => announcement_a.to_string(),
            Target::UploadA => String::new(),
        };
        let (kind, hash) = match row.target {
            Target::ClassA => ("class", ""),
            Target::PupilA => ("person", ""),
            Target::Establishment => ("establishment", ""),
            Target::DocA => ("", docs.doc.1.as_str()),
            Target::PrivateDocA => ("", docs.private.1.as_str()),
            Target::SharedDocA => ("", docs.shared.1.as_str()),
            _ => ("", ""),
        };
        let path = row
            .path
            .replace("{kind}", kind)
            .replace("{hash}", hash)
            .replace("{id}", &id)
            .replace("{token}", &upload_a)
            .replace("{pupil}", &s.pupil_a.id.to_string());
        let c = actor.map(|a| a.client.clone()).unwrap_or_else(client);
        let mut req = match row.method {
            "GET" => c.get(app.url(&path)),
            "POST" => c.post(app.url(&path)),
            "DELETE" => c.delete(app.url(&path)),
            "PUT" => c.put(app.url(&path)),
            "HEAD" => c.head(app.url(&path)),
            "PATCH" => c.patch(app.url(&path)),
            m => panic!("method {m}"),
        };
        req = match row.body {
            Body::Empty => req,
            Body::Json(j) => req
                .header("content-type", "application/json")
                .body(people_in(j, &s)),
            Body::Form(fields) => {
                let mut f: HashMap<&str, String> =
                    fields.iter().map(|(k, v)| (*k, people_in(v, &s))).collect();
                f.insert("csrf", actor.map(|a| a.csrf.clone()).unwrap_or_default());
                req.form(&f)
            }
            Body::PreForm(fields) => {
                let html = c
                    .get(app.url("/activate"))
                    .send()
                    .await
                    .unwrap()
                    .text()
                    .await
                    .unwrap();
                let mut f: HashMap<&str, String> =
                    fields.iter().map(|(k, v)| (*k, v.to_string())).collect();
                f.insert("csrf", csrf_in(&html).unwrap_or_default());
                req.form(&f)
            }
        };
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let location = resp
            .headers()
            .get("location")
            .and_then(|l| l.to_str().ok())
            .unwrap_or("")
            .to_string();
        let to_login = (300..400).contains(&status) && location.starts_with("/login");
        let denied = matches!(status, 401 | 403 | 404)
            || (to_login
                && row.path != "/"
                && row.path != "/logout"
                && !row.path.starts_with("/account/sessions"));
        let allowed = !denied && status < 500 && status != 405;
        let ok = match expect {
            'A' => allowed,
            'D' => denied || (i == 0 && to_login),
            _ => false,
        };
        if !ok {
            failures.push(format!(
                "{} {} as {}: expected {expect}, got {status} {location}",
                row.method, path, WHO[i]
            ));
        }
    }
    failures
}

#[tokio::test]
async fn every_route_answers_each_role_as_the_matrix_says() {
    let mut failures = Vec::new();
    for row in rows() {
        failures.extend(run_row(&row).await);
    }
    assert!(
        failures.is_empty(),
        "access matrix violations:\n{}",
        failures.join("\n")
    );
}
