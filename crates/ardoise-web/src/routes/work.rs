//! Assignments (devoirs à rendre): one homework's page, handing work in,
//! the receipt that proves what was received, the teacher's list of who
//! handed in, their feedback, the archive of a class's submissions, and
//! downloading any attachment one may see.
//!
//! Durability: files are made durable in the blob store while the form is
//! read (see `upload`); the submission's row and its file rows are then
//! committed in one transaction. Only after that commit does the pupil see
//! a receipt. A crash in between leaves the previous submission whole and,
//! at worst, unreferenced blobs that the sweeper removes.

use super::RouteTable;
use crate::blob_response::disposition;
use crate::error::ApiError;
use crate::extract::{JsonIn, Signed};
use crate::i18n::Tr;
use crate::pages::{render, Nav};
use crate::state::AppState;
use crate::upload::Uploaded;
use ardoise_core::diary::{render_rich_text, Tz};
use ardoise_core::policy;
use ardoise_core::{HomeworkId, PersonId, Role};
use ardoise_store::{
    AttachmentView, AudienceView, FeedbackInsert, FeedbackView, HandIn, HomeworkView, OwnerKind,
    PersonSummary, SubmissionInsert, SubmissionView,
};
use askama::Template;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashMap;

/// This module's routes.
pub fn routes() -> RouteTable {
    RouteTable::default()
        .get("/homework/{id}", homework_page)
        .get("/pupils/{pupil}/homework/{id}", pupil_homework_page)
        .post_upload("/homework/{id}/submission", hand_in)
        .post_upload("/homework/{id}/feedback/{pupil}", return_feedback)
        .get("/homework/{id}/archive", archive)
        .get("/attachments/{id}", download)
        .get("/api/v1/homework/{id}", api_homework)
        .get("/api/v1/pupils/{pupil}/homework/{id}", api_pupil_homework)
        .put_upload("/api/v1/homework/{id}/submission", api_hand_in)
        .get("/api/v1/homework/{id}/submissions", api_submissions)
        .put("/api/v1/homework/{id}/feedback/{pupil}", api_feedback)
}

/// What the caller may do with one homework.
struct Access {
    homework: HomeworkView,
    /// The class or group it is for.
    class: AudienceView,
    /// Teaches this subject to this class or group: sees everyone's work,
    /// returns feedback, downloads the archive.
    teaches: bool,
    /// Sees everyone's work read-only (staff, admins, other teachers of
    /// the class or group).
    oversees: bool,
    /// The establishment's time zone, for the times shown.
    zone: Tz,
}

/// Loads homework the caller may see; unpublished homework exists only for
/// its teachers and staff. Anything else is "not found".
async fn access(state: &AppState, signed: &Signed, id: i64) -> Result<Access, ApiError> {
    let homework = state
        .store
        .find_homework(HomeworkId(id))
        .await?
        .ok_or(ApiError::NotFound)?;
    let class = state
        .store
        .find_audience(homework.audience)
        .await?
        .ok_or(ApiError::NotFound)?;
    let rights = policy::diary_item_rights(
        &signed.session.actor,
        class.policy_ref(),
        homework.subject_id,
        homework.publish_at,
        state.now(),
    )
    .ok_or(ApiError::NotFound)?;
    let zone = state
        .diary
        .zone(&state.store, class.establishment_id)
        .await?;
    Ok(Access {
        homework,
        class,
        teaches: rights.teaches,
        oversees: rights.oversees,
        zone,
    })
}

/// A pupil of the homework's class or group whose work the caller may
/// see: themself, their parents, and whoever oversees the class's or
/// group's work.
async fn pupil_of(
    state: &AppState,
    signed: &Signed,
    a: &Access,
    pupil: i64,
) -> Result<PersonSummary, ApiError> {
    let p = state
        .store
        .find_person(PersonId(pupil))
        .await?
        .ok_or(ApiError::NotFound)?;
    if !p.roles.has(Role::Pupil) || !is_member(state, &p, a.class.audience).await? {
        return Err(ApiError::NotFound);
    }
    if !(a.oversees || policy::may_see_pupil_work(&signed.session.actor, p.policy_ref())) {
        return Err(ApiError::NotFound);
    }
    Ok(p)
}

/// Whether a pupil belongs to a class or group.
async fn is_member(
    state: &AppState,
    p: &PersonSummary,
    audience: ardoise_core::Audience,
) -> Result<bool, ApiError> {
    Ok(match audience {
        ardoise_core::Audience::Class(c) => p.class_id == Some(c),
        ardoise_core::Audience::Group(g) => state.store.pupil_groups(p.id).await?.contains(&g),
    })
}

/// Whether hand-ins are still accepted, and whether they would be late.
fn window(h: &HandIn, now: i64) -> (bool, bool) {
    let late = now > h.deadline_at;
    (!late || h.late_allowed, late)
}

/// The receipt's proof: SHA-256 over what was received, in a fixed form
/// (text, then each file's content hash, size and name).
fn receipt_hash(text: &str, files: &[ardoise_store::AttachmentInsert]) -> String {
    let mut h = Sha256::new();
    h.update(b"ardoise-submission-v1\n");
    h.update(text.len().to_string().as_bytes());
    h.update(b"\n");
    h.update(text.as_bytes());
    for f in files {
        h.update(format!("\n{} {} {}", f.blob_hash, f.size, f.file_name).as_bytes());
    }
    hex::encode(h.finalize())
}

/// Checks and records a pupil's hand-in.
async fn hand_in_core(
    state: &AppState,
    signed: &Signed,
    id: i64,
    form: &Uploaded,
) -> Result<SubmissionView, ApiError> {
    let a = access(state, signed, id).await?;
    let actor = &signed.session.actor;
    if !actor.is_pupil_of(a.class.audience) {
        return Err(ApiError::Forbidden);
    }
    let hand = a
        .homework
        .hand_in
        .ok_or(ApiError::Invalid("not_an_assignment"))?;
    let now = state.now();
    let (open, late) = window(&hand, now);
    if !open {
        return Err(ApiError::Invalid("deadline_passed"));
    }
    let text = form.get("text");
    let text = text.trim();
    let files = form.attachments("files");
    if text.is_empty() && files.is_empty() {
        return Err(ApiError::Invalid("submission_empty"));
    }
    let text_html = if text.is_empty() {
        String::new()
    } else {
        render_rich_text(text).map_err(super::diary::rich_text_error)?
    };
    let total_size =
        files.iter().map(|f| f.size).sum::<i64>() + i64::try_from(text.len()).unwrap_or(i64::MAX);
    let sub = SubmissionInsert {
        homework_id: a.homework.id,
        pupil_id: actor.person_id,
        text_source: text.to_string(),
        text_html,
        submitted_at: now,
        late,
        receipt_hash: receipt_hash(text, &files),
        files,
        total_size,
    };
    Ok(state.store.put_submission(&sub).await?)
}

/// Parses a mark such as `15`, `15.5` or `15,5` on a scale; in hundredths.
fn parse_mark(s: &str, scale: Option<i64>) -> Result<Option<i64>, ApiError> {
    let s = s.trim();
    if s.is_empty() {
        return Ok(None);
    }
    let scale = scale.ok_or(ApiError::Invalid("mark_invalid"))?;
    let normalized = s.replace(',', ".");
    let (whole, frac) = normalized.split_once('.').unwrap_or((&normalized, ""));
    if whole.is_empty()
        || !whole.chars().all(|c| c.is_ascii_digit())
        || frac.len() > 2
        || !frac.chars().all(|c| c.is_ascii_digit())
        || whole.len() > 4
    {
        return Err(ApiError::Invalid("mark_invalid"));
    }
    let whole: i64 = whole
        .parse()
        .map_err(|_| ApiError::Invalid("mark_invalid"))?;
    let frac: i64 = format!("{frac:0<2}")
        .parse()
        .map_err(|_| ApiError::Invalid("mark_invalid"))?;
    let hundredths = whole * 100 + frac;
    if hundredths > scale * 100 {
        return Err(ApiError::Invalid("mark_invalid"));
    }
    Ok(Some(hundredths))
}

/// Shows a mark in hundredths: `15,5` in French, `15.5` in English.
fn mark_label(t: &Tr, hundredths: i64, scale: Option<i64>) -> String {
    let whole = hundredths / 100;
    let frac = hundredths % 100;
    let sep = if t.lang.code() == "fr" { "," } else { "." };
    let n = if frac == 0 {
        whole.to_string()
    } else if frac % 10 == 0 {
        format!("{whole}{sep}{}", frac / 10)
    } else {
        format!("{whole}{sep}{frac:02}")
    };
    match scale {
        Some(s) => format!("{n}/{s}"),
        None => n,
    }
}

/// Checks and records a teacher's feedback.
async fn feedback_core(
    state: &AppState,
    signed: &Signed,
    id: i64,
    pupil: i64,
    comment: &str,
    mark: &str,
    file: Option<ardoise_store::AttachmentInsert>,
) -> Result<FeedbackView, ApiError> {
    let a = access(state, signed, id).await?;
    if !a.teaches {
        return Err(ApiError::Forbidden);
    }
    let hand = a
        .homework
        .hand_in
        .ok_or(ApiError::Invalid("not_an_assignment"))?;
    let p = pupil_of(state, signed, &a, pupil).await?;
    let mark = parse_mark(mark, hand.mark_scale)?;
    let comment = comment.trim();
    if comment.is_empty() && mark.is_none() && file.is_none() {
        return Err(ApiError::Invalid("feedback_empty"));
    }
    let comment_html = if comment.is_empty() {
        String::new()
    } else {
        render_rich_text(comment).map_err(super::diary::rich_text_error)?
    };
    let f = FeedbackInsert {
        homework_id: a.homework.id,
        pupil_id: p.id,
        teacher_id: signed.session.person_id(),
        comment_source: comment.to_string(),
        comment_html,
        mark_hundredths: mark,
        returned_at: state.now(),
        file,
    };
    Ok(state.store.put_feedback(&f).await?)
}

// ---------------------------------------------------------------- pages

/// A file link on a page.
pub struct FileLink {
    pub id: i64,
    pub name: String,
    pub size: String,
}

/// Human size: `1,2 Mo` / `1.2 MB`.
pub fn size_label(t: &Tr, bytes: i64) -> String {
    let fr = t.lang.code() == "fr";
    let (value, unit) = if bytes < 1024 {
        return format!("{bytes} {}", if fr { "o" } else { "B" });
    } else if bytes < 1024 * 1024 {
        (bytes as f64 / 1024.0, if fr { "Ko" } else { "KB" })
    } else {
        (
            bytes as f64 / (1024.0 * 1024.0),
            if fr { "Mo" } else { "MB" },
        )
    };
    let s = format!("{value:.1}");
    format!("{} {unit}", if fr { s.replace('.', ",") } else { s })
}

/// Links to a list of attachments.
pub fn file_links(t: &Tr, files: &[AttachmentView]) -> Vec<FileLink> {
    files
        .iter()
        .map(|f| FileLink {
            id: f.id,
            name: f.file_name.clone(),
            size: size_label(t, f.size),
        })
        .collect()
}

/// A receipt as shown.
pub struct ReceiptView {
    pub at: String,
    pub size: String,
    pub hash: String,
    pub revision: i64,
    pub late: bool,
    pub text_html: String,
    pub files: Vec<FileLink>,
}

fn receipt_view(t: &Tr, s: &SubmissionView, zone: Tz) -> ReceiptView {
    ReceiptView {
        at: t.datetime_in(s.submitted_at, zone),
        size: size_label(t, s.total_size),
        hash: s.receipt_hash.clone(),
        revision: s.revision,
        late: s.late,
        text_html: s.text_html.clone(),
        files: file_links(t, &s.files),
    }
}

/// Feedback as shown.
pub struct FeedbackShown {
    pub teacher: String,
    pub at: String,
    pub mark: Option<String>,
    pub comment_html: String,
    pub files: Vec<FileLink>,
}

fn feedback_shown(t: &Tr, f: &FeedbackView, scale: Option<i64>, zone: Tz) -> FeedbackShown {
    FeedbackShown {
        teacher: f.teacher_name.clone(),
        at: t.datetime_in(f.returned_at, zone),
        mark: f.mark_hundredths.map(|m| mark_label(t, m, scale)),
        comment_html: f.comment_html.clone(),
        files: file_links(t, &f.files),
    }
}

/// One pupil's line in the teacher's list.
pub struct RosterLine {
    pub pupil_id: i64,
    pub name: String,
    pub status: Status,
    /// The status in words.
    pub status_label: String,
    pub receipt: Option<ReceiptView>,
    pub feedback: Option<FeedbackShown>,
}

#[derive(Template)]
#[template(path = "homework.html")]
struct HomeworkPage {
    t: Tr,
    nav: Nav,
    csrf: String,
    id: i64,
    class_name: String,
    /// `/classes/{id}` or `/groups/{id}`.
    class_path: String,
    subject: String,
    teacher: String,
    due: String,
    minutes: Option<i64>,
    instructions_html: String,
    files: Vec<FileLink>,
    /// Set for assignments: deadline text, late allowed, still open.
    deadline: Option<String>,
    late_allowed: bool,
    open: bool,
    mark_scale: Option<i64>,
    /// The pupil whose work is shown (pupil, parent views).
    pupil_name: Option<String>,
    /// The pupil themself: may hand in.
    can_hand_in: bool,
    receipt: Option<ReceiptView>,
    feedback: Option<FeedbackShown>,
    /// Teacher and staff views.
    roster: Vec<RosterLine>,
    teaches: bool,
    counts: (usize, usize, usize),
    max_upload: String,
}

impl HomeworkPage {
    fn new(t: &Tr, signed: &Signed, state: &AppState, a: &Access) -> HomeworkPage {
        let h = &a.homework;
        let now = state.now();
        HomeworkPage {
            t: t.clone(),
            nav: Nav::signed(
                format!("{} — {}", h.subject_name, a.class.name),
                &signed.session,
            ),
            csrf: signed.session.csrf_token.clone(),
            id: h.id.0,
            class_name: a.class.name.clone(),
            class_path: a.class.path(),
            subject: h.subject_name.clone(),
            teacher: h.teacher_name.clone(),
            due: super::diary::day_label(t, &h.due_on),
            minutes: h.minutes,
            instructions_html: h.instructions_html.clone(),
            files: file_links(t, &h.attachments),
            deadline: h.hand_in.map(|x| t.datetime_in(x.deadline_at, a.zone)),
            late_allowed: h.hand_in.is_some_and(|x| x.late_allowed),
            open: h.hand_in.is_some_and(|x| window(&x, now).0),
            mark_scale: h.hand_in.and_then(|x| x.mark_scale),
            pupil_name: None,
            can_hand_in: false,
            receipt: None,
            feedback: None,
            roster: Vec::new(),
            teaches: a.teaches,
            counts: (0, 0, 0),
            max_upload: size_label(
                t,
                i64::try_from(state.config.max_upload_bytes).unwrap_or(i64::MAX),
            ),
        }
    }
}

/// Where a pupil stands on an assignment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    HandedIn,
    Late,
    Missing,
}

impl Status {
    fn of(sub: Option<&SubmissionView>) -> Status {
        match sub {
            Some(s) if s.late => Status::Late,
            Some(_) => Status::HandedIn,
            None => Status::Missing,
        }
    }

    /// The API's code.
    fn code(self) -> &'static str {
        match self {
            Status::HandedIn => "handed_in",
            Status::Late => "late",
            Status::Missing => "missing",
        }
    }

    /// The catalogue key of its label.
    fn key(self) -> &'static str {
        match self {
            Status::HandedIn => "work-status-handed-in",
            Status::Late => "work-status-late",
            Status::Missing => "work-status-missing",
        }
    }
}

/// One pupil of the class and their work on an assignment.
struct PupilWork {
    pupil: PersonSummary,
    submission: Option<SubmissionView>,
    feedback: Option<FeedbackView>,
}

/// Every pupil of the assignment's class or group with their hand-in and
/// feedback, by name: the teacher's page and the API list both read it.
async fn class_work(state: &AppState, a: &Access) -> Result<Vec<PupilWork>, ApiError> {
    let pupils = state.store.audience_pupils(a.class.audience).await?;
    let mut subs: HashMap<PersonId, SubmissionView> = state
        .store
        .homework_submissions(a.homework.id)
        .await?
        .into_iter()
        .map(|s| (s.pupil_id, s))
        .collect();
    let mut feedback: HashMap<PersonId, FeedbackView> = state
        .store
        .homework_feedback(a.homework.id)
        .await?
        .into_iter()
        .map(|f| (f.pupil_id, f))
        .collect();
    Ok(pupils
        .into_iter()
        .map(|p| PupilWork {
            submission: subs.remove(&p.id),
            feedback: feedback.remove(&p.id),
            pupil: p,
        })
        .collect())
}

async fn roster(state: &AppState, t: &Tr, a: &Access) -> Result<Vec<RosterLine>, ApiError> {
    let scale = a.homework.hand_in.and_then(|h| h.mark_scale);
    Ok(class_work(state, a)
        .await?
        .into_iter()
        .map(|w| {
            let status = Status::of(w.submission.as_ref());
            RosterLine {
                pupil_id: w.pupil.id.0,
                name: w.pupil.display_name(),
                status,
                status_label: t.get(status.key()),
                receipt: w.submission.as_ref().map(|s| receipt_view(t, s, a.zone)),
                feedback: w.feedback.map(|f| feedback_shown(t, &f, scale, a.zone)),
            }
        })
        .collect())
}

async fn pupil_work(
    state: &AppState,
    t: &Tr,
    page: &mut HomeworkPage,
    a: &Access,
    pupil: &PersonSummary,
) -> Result<(), ApiError> {
    page.pupil_name = Some(pupil.display_name());
    if a.homework.hand_in.is_some() {
        let scale = a.homework.hand_in.and_then(|h| h.mark_scale);
        page.receipt = state
            .store
            .find_submission(a.homework.id, pupil.id)
            .await?
            .map(|s| receipt_view(t, &s, a.zone));
        page.feedback = state
            .store
            .find_feedback(a.homework.id, pupil.id)
            .await?
            .map(|f| feedback_shown(t, &f, scale, a.zone));
    }
    Ok(())
}

/// `GET /homework/{id}`: the homework; for its pupil, their hand-in; for
/// its teachers and staff, who handed in.
async fn homework_page(
    State(state): State<AppState>,
    signed: Signed,
    Path(id): Path<i64>,
) -> Result<Response, ApiError> {
    let a = access(&state, &signed, id).await?;
    let actor = &signed.session.actor;
    let t = signed.ctx.tr.clone();
    // A parent with one child in this class or group goes to that child's
    // view.
    if !actor.is_pupil_of(a.class.audience) && !a.oversees {
        let pupils = state.store.audience_pupils(a.class.audience).await?;
        let child = pupils.iter().find(|p| actor.is_parent_of(p.id));
        return match child {
            Some(c) => {
                Ok(Redirect::to(&format!("/pupils/{}/homework/{id}", c.id.0)).into_response())
            }
            None => Err(ApiError::NotFound),
        };
    }
    let mut page = HomeworkPage::new(&t, &signed, &state, &a);
    if actor.is_pupil_of(a.class.audience) {
        let me = state
            .store
            .find_person(actor.person_id)
            .await?
            .ok_or(ApiError::NotFound)?;
        pupil_work(&state, &t, &mut page, &a, &me).await?;
        page.can_hand_in = page.open;
    } else if a.oversees && a.homework.hand_in.is_some() {
        page.roster = roster(&state, &t, &a).await?;
        page.counts = page
            .roster
            .iter()
            .fold((0, 0, 0), |(h, l, m), r| match r.status {
                Status::HandedIn => (h + 1, l, m),
                Status::Late => (h, l + 1, m),
                Status::Missing => (h, l, m + 1),
            });
    }
    Ok(render(&page))
}

/// `GET /pupils/{pupil}/homework/{id}`: one pupil's work on one homework,
/// for them, their parents, their teachers and staff.
async fn pupil_homework_page(
    State(state): State<AppState>,
    signed: Signed,
    Path((pupil, id)): Path<(i64, i64)>,
) -> Result<Response, ApiError> {
    let a = access(&state, &signed, id).await?;
    let p = pupil_of(&state, &signed, &a, pupil).await?;
    let t = signed.ctx.tr.clone();
    let mut page = HomeworkPage::new(&t, &signed, &state, &a);
    pupil_work(&state, &t, &mut page, &a, &p).await?;
    page.can_hand_in = page.open && signed.session.person_id() == p.id;
    Ok(render(&page))
}

/// `POST /homework/{id}/submission`: hands work in (text and files).
async fn hand_in(
    State(state): State<AppState>,
    signed: Signed,
    Path(id): Path<i64>,
    form: Uploaded,
) -> Result<Response, ApiError> {
    signed.check_csrf(&form.get("csrf"))?;
    hand_in_core(&state, &signed, id, &form).await?;
    Ok(Redirect::to(&format!("/homework/{id}#receipt")).into_response())
}

/// `POST /homework/{id}/feedback/{pupil}`: returns feedback (comment, mark,
/// annotated file).
async fn return_feedback(
    State(state): State<AppState>,
    signed: Signed,
    Path((id, pupil)): Path<(i64, i64)>,
    form: Uploaded,
) -> Result<Response, ApiError> {
    signed.check_csrf(&form.get("csrf"))?;
    let file = form.attachments("file").into_iter().next();
    feedback_core(
        &state,
        &signed,
        id,
        pupil,
        &form.get("comment"),
        &form.get("mark"),
        file,
    )
    .await?;
    Ok(Redirect::to(&format!("/homework/{id}#pupil-{pupil}")).into_response())
}

// ---------------------------------------------------------------- files

/// Whether the caller may read an attachment, by what it belongs to.
async fn may_download(
    state: &AppState,
    signed: &Signed,
    a: &AttachmentView,
) -> Result<bool, ApiError> {
    let actor = &signed.session.actor;
    let (audience, subject, publish_at) = match a.owner_kind {
        OwnerKind::Homework => match state.store.find_homework(HomeworkId(a.owner_id)).await? {
            Some(h) => (h.audience, h.subject_id, h.publish_at),
            None => return Ok(false),
        },
        OwnerKind::Lesson => match state
            .store
            .find_lesson(ardoise_core::LessonId(a.owner_id))
            .await?
        {
            Some(l) => (l.audience, l.subject_id, l.publish_at),
            None => return Ok(false),
        },
        // A message's file: only for the message's participants, never
        // while it is quarantined.
        OwnerKind::Message => {
            return Ok(state
                .store
                .message_visible_to(actor.person_id, ardoise_core::MessageId(a.owner_id))
                .await?
                .is_some());
        }
        OwnerKind::Submission | OwnerKind::Feedback => {
            let Some((homework, pupil)) = state.store.work_owner(a.owner_kind, a.owner_id).await?
            else {
                return Ok(false);
            };
            let Some(p) = state.store.find_person(pupil).await? else {
                return Ok(false);
            };
            if policy::may_see_pupil_work(actor, p.policy_ref()) {
                return Ok(true);
            }
            // A group's teachers see its members' work on the group's
            // homework, whatever their class.
            let Some(h) = state.store.find_homework(homework).await? else {
                return Ok(false);
            };
            let Some(target) = state.store.find_audience(h.audience).await? else {
                return Ok(false);
            };
            return Ok(policy::may_oversee_work(actor, target.policy_ref())
                && is_member(state, &p, h.audience).await?);
        }
    };
    let Some(target) = state.store.find_audience(audience).await? else {
        return Ok(false);
    };
    Ok(
        policy::diary_item_rights(actor, target.policy_ref(), subject, publish_at, state.now())
            .is_some(),
    )
}

/// `GET /attachments/{id}`: a file, if the caller may see what it is
/// attached to. Immutable content: ETag is its hash, `Range` resumes a
/// broken download, HTML and SVG are never rendered inline.
async fn download(
    State(state): State<AppState>,
    signed: Signed,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> Result<Response, ApiError> {
    let a = state
        .store
        .find_attachment(id)
        .await?
        .ok_or(ApiError::NotFound)?;
    if !may_download(&state, &signed, &a).await? {
        return Err(ApiError::NotFound);
    }
    crate::blob_response::serve(
        &state,
        &headers,
        crate::blob_response::BlobMeta {
            hash: &a.blob_hash,
            size: a.size,
            mime: &a.mime,
            file_name: &a.file_name,
        },
        crate::blob_response::CACHE_PRIVATE_DAY,
    )
    .await
}

/// `GET /homework/{id}/archive`: every submission of the class in one ZIP
/// (a folder per pupil with their files, their text and their receipt).
/// Written to a temporary file, then streamed: no submission is held in
/// memory whole.
async fn archive(
    State(state): State<AppState>,
    signed: Signed,
    Path(id): Path<i64>,
) -> Result<Response, ApiError> {
    let a = access(&state, &signed, id).await?;
    if !a.teaches {
        return Err(ApiError::NotFound);
    }
    let subs = state.store.homework_submissions(a.homework.id).await?;
    let pupils: HashMap<PersonId, String> = state
        .store
        .audience_pupils(a.class.audience)
        .await?
        .into_iter()
        .map(|p| {
            (
                p.id,
                format!("{} {}", p.last_name.to_uppercase(), p.first_name),
            )
        })
        .collect();
    let file = crate::archive::build(&state.files, &subs, &pupils)
        .await
        .map_err(|e| ApiError::Internal(format!("archive: {e}")))?;
    let len = file.metadata().await.map(|m| m.len()).unwrap_or(0);
    let stream = tokio_util::io::ReaderStream::new(file);
    let mut resp = Response::new(Body::from_stream(stream));
    let name = format!(
        "{}-{}-{}.zip",
        a.class.name, a.homework.subject_name, a.homework.due_on
    );
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/zip"),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    if let Ok(v) = HeaderValue::from_str(&disposition("attachment", &name)) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    Ok(resp)
}

// ---------------------------------------------------------------- API

/// A file in the API.
#[derive(Serialize, utoipa::ToSchema)]
pub struct FileOut {
    /// Download at `/attachments/{id}`.
    pub id: i64,
    pub name: String,
    pub mime: String,
    pub size: i64,
    /// SHA-256 of the content.
    pub sha256: String,
}

pub(crate) fn files_out(files: &[AttachmentView]) -> Vec<FileOut> {
    files
        .iter()
        .map(|f| FileOut {
            id: f.id,
            name: f.file_name.clone(),
            mime: f.mime.clone(),
            size: f.size,
            sha256: f.blob_hash.clone(),
        })
        .collect()
}

/// The receipt of a hand-in: proof of what was received, and when.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ReceiptOut {
    pub pupil_id: i64,
    /// Unix time the hand-in was recorded.
    pub submitted_at: i64,
    /// 1, then +1 at each replacement.
    pub revision: i64,
    pub late: bool,
    /// Bytes received (text and files).
    pub size: i64,
    /// SHA-256 over the text and each file's hash, size and name.
    pub sha256: String,
    pub text_html: String,
    pub files: Vec<FileOut>,
}

fn receipt_out(s: &SubmissionView) -> ReceiptOut {
    ReceiptOut {
        pupil_id: s.pupil_id.0,
        submitted_at: s.submitted_at,
        revision: s.revision,
        late: s.late,
        size: s.total_size,
        sha256: s.receipt_hash.clone(),
        text_html: s.text_html.clone(),
        files: files_out(&s.files),
    }
}

/// Feedback in the API.
#[derive(Serialize, utoipa::ToSchema)]
pub struct FeedbackOut {
    pub pupil_id: i64,
    pub teacher: String,
    pub returned_at: i64,
    /// The mark, e.g. 15.5 (on `mark_scale`).
    pub mark: Option<f64>,
    pub comment_html: String,
    pub files: Vec<FileOut>,
}

fn feedback_out(f: &FeedbackView) -> FeedbackOut {
    FeedbackOut {
        pupil_id: f.pupil_id.0,
        teacher: f.teacher_name.clone(),
        returned_at: f.returned_at,
        mark: f.mark_hundredths.map(|m| m as f64 / 100.0),
        comment_html: f.comment_html.clone(),
        files: files_out(&f.files),
    }
}

/// One homework, with the caller's (or the pupil's) work.
#[derive(Serialize, utoipa::ToSchema)]
pub struct HomeworkDetailOut {
    pub id: i64,
    /// The class it is for (or null for a group's).
    pub class_id: Option<i64>,
    /// The teaching group it is for (or null for a class's).
    pub group_id: Option<i64>,
    pub subject: String,
    pub teacher: String,
    pub due_on: String,
    pub instructions_html: String,
    pub minutes: Option<i64>,
    pub files: Vec<FileOut>,
    /// Whether pupils hand work in.
    pub hand_in: bool,
    /// Unix time hand-ins close.
    pub deadline_at: Option<i64>,
    pub late_allowed: bool,
    pub mark_scale: Option<i64>,
    /// Whether a hand-in would be accepted now.
    pub open: bool,
    pub submission: Option<ReceiptOut>,
    pub feedback: Option<FeedbackOut>,
}

fn detail_out(state: &AppState, h: &HomeworkView) -> HomeworkDetailOut {
    HomeworkDetailOut {
        id: h.id.0,
        class_id: h.audience.class_id().map(|c| c.0),
        group_id: h.audience.group_id().map(|g| g.0),
        subject: h.subject_name.clone(),
        teacher: h.teacher_name.clone(),
        due_on: h.due_on.clone(),
        instructions_html: h.instructions_html.clone(),
        minutes: h.minutes,
        files: files_out(&h.attachments),
        hand_in: h.hand_in.is_some(),
        deadline_at: h.hand_in.map(|x| x.deadline_at),
        late_allowed: h.hand_in.is_some_and(|x| x.late_allowed),
        mark_scale: h.hand_in.and_then(|x| x.mark_scale),
        open: h.hand_in.is_some_and(|x| window(&x, state.now()).0),
        submission: None,
        feedback: None,
    }
}

async fn with_work(
    state: &AppState,
    mut out: HomeworkDetailOut,
    h: &HomeworkView,
    pupil: PersonId,
) -> Result<HomeworkDetailOut, ApiError> {
    out.submission = state
        .store
        .find_submission(h.id, pupil)
        .await?
        .map(|s| receipt_out(&s));
    out.feedback = state
        .store
        .find_feedback(h.id, pupil)
        .await?
        .map(|f| feedback_out(&f));
    Ok(out)
}

/// `GET /api/v1/homework/{id}`
#[utoipa::path(get, path = "/api/v1/homework/{id}", tag = "diary",
    params(("id" = i64, Path, description = "Homework id")),
    responses((status = 200, body = HomeworkDetailOut), (status = 404, description = "No such homework the caller may see")))]
async fn api_homework(
    State(state): State<AppState>,
    signed: Signed,
    Path(id): Path<i64>,
) -> Result<Json<HomeworkDetailOut>, ApiError> {
    let a = access(&state, &signed, id).await?;
    let out = detail_out(&state, &a.homework);
    let actor = &signed.session.actor;
    if actor.is_pupil_of(a.class.audience) {
        return Ok(Json(
            with_work(&state, out, &a.homework, actor.person_id).await?,
        ));
    }
    Ok(Json(out))
}

/// `GET /api/v1/pupils/{pupil}/homework/{id}`
#[utoipa::path(get, path = "/api/v1/pupils/{pupil}/homework/{id}", tag = "diary",
    params(("pupil" = i64, Path, description = "Pupil id"), ("id" = i64, Path, description = "Homework id")),
    responses((status = 200, body = HomeworkDetailOut), (status = 404, description = "Not a pupil or homework the caller may see")))]
async fn api_pupil_homework(
    State(state): State<AppState>,
    signed: Signed,
    Path((pupil, id)): Path<(i64, i64)>,
) -> Result<Json<HomeworkDetailOut>, ApiError> {
    let a = access(&state, &signed, id).await?;
    let p = pupil_of(&state, &signed, &a, pupil).await?;
    let out = detail_out(&state, &a.homework);
    Ok(Json(with_work(&state, out, &a.homework, p.id).await?))
}

/// `PUT /api/v1/homework/{id}/submission` (multipart: `text`, `files`):
/// hands in or replaces the caller's work; answers the receipt once it is
/// durable.
#[utoipa::path(put, path = "/api/v1/homework/{id}/submission", tag = "diary",
    params(("id" = i64, Path, description = "Homework id")),
    request_body(content_type = "multipart/form-data", description = "`text` and any number of `files` parts"),
    responses((status = 200, body = ReceiptOut), (status = 413, description = "A file is too large"),
        (status = 422, description = "Empty, closed deadline, unsafe text")))]
async fn api_hand_in(
    State(state): State<AppState>,
    signed: Signed,
    Path(id): Path<i64>,
    form: Uploaded,
) -> Result<Json<ReceiptOut>, ApiError> {
    let s = hand_in_core(&state, &signed, id, &form).await?;
    Ok(Json(receipt_out(&s)))
}

/// A pupil's state in the teacher's list.
#[derive(Serialize, utoipa::ToSchema)]
pub struct RosterOut {
    pub pupil_id: i64,
    pub name: String,
    /// `handed_in`, `late` or `missing`.
    pub status: &'static str,
    pub submission: Option<ReceiptOut>,
    pub feedback: Option<FeedbackOut>,
}

/// `GET /api/v1/homework/{id}/submissions`: who handed in, for the class's
/// teachers and staff.
#[utoipa::path(get, path = "/api/v1/homework/{id}/submissions", tag = "diary",
    params(("id" = i64, Path, description = "Homework id")),
    responses((status = 200, body = [RosterOut]), (status = 404, description = "Not homework the caller oversees")))]
async fn api_submissions(
    State(state): State<AppState>,
    signed: Signed,
    Path(id): Path<i64>,
) -> Result<Json<Vec<RosterOut>>, ApiError> {
    let a = access(&state, &signed, id).await?;
    if !a.oversees {
        return Err(ApiError::NotFound);
    }
    Ok(Json(
        class_work(&state, &a)
            .await?
            .into_iter()
            .map(|w| RosterOut {
                pupil_id: w.pupil.id.0,
                name: w.pupil.display_name(),
                status: Status::of(w.submission.as_ref()).code(),
                submission: w.submission.as_ref().map(receipt_out),
                feedback: w.feedback.as_ref().map(feedback_out),
            })
            .collect(),
    ))
}

/// Feedback sent through the API.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct FeedbackIn {
    #[serde(default)]
    pub comment: String,
    /// e.g. "15.5"; on the assignment's scale.
    #[serde(default)]
    pub mark: String,
}

/// `PUT /api/v1/homework/{id}/feedback/{pupil}`
#[utoipa::path(put, path = "/api/v1/homework/{id}/feedback/{pupil}", tag = "diary",
    params(("id" = i64, Path, description = "Homework id"), ("pupil" = i64, Path, description = "Pupil id")),
    request_body = FeedbackIn,
    responses((status = 200, body = FeedbackOut), (status = 403, description = "Not the class's teacher of this subject"),
        (status = 422, description = "Empty feedback or a mark off the scale")))]
async fn api_feedback(
    State(state): State<AppState>,
    signed: Signed,
    Path((id, pupil)): Path<(i64, i64)>,
    JsonIn(f): JsonIn<FeedbackIn>,
) -> Result<Json<FeedbackOut>, ApiError> {
    let fb = feedback_core(&state, &signed, id, pupil, &f.comment, &f.mark, None).await?;
    Ok(Json(feedback_out(&fb)))
}

/// The OpenAPI description of this module.
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(
        api_homework,
        api_pupil_homework,
        api_hand_in,
        api_submissions,
        api_feedback
    ),
    components(schemas(
        HomeworkDetailOut,
        ReceiptOut,
        FeedbackOut,
        FileOut,
        RosterOut,
        FeedbackIn
    ))
)]
pub struct WorkApiDoc;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_are_read_in_french_or_english_and_kept_on_the_scale() {
        assert_eq!(parse_mark("15", Some(20)).ok(), Some(Some(1500)));
        assert_eq!(parse_mark("15,5", Some(20)).ok(), Some(Some(1550)));
        assert_eq!(parse_mark(" 7.25 ", Some(10)).ok(), Some(Some(725)));
        assert_eq!(parse_mark("", Some(20)).ok(), Some(None));
        for bad in ["21", "-1", "1.234", "abc", "1e3", ".5", "20.01"] {
            assert!(parse_mark(bad, Some(20)).is_err(), "{bad}");
        }
        assert!(parse_mark("5", None).is_err(), "no scale, no mark");
    }

    #[test]
    fn the_receipt_changes_with_any_byte_received() {
        let f = |name: &str, hash: &str| ardoise_store::AttachmentInsert {
            blob_hash: hash.into(),
            file_name: name.into(),
            mime: "application/pdf".into(),
            size: 10,
        };
        let a = receipt_hash("text", &[f("a.pdf", "00")]);
        assert_eq!(a, receipt_hash("text", &[f("a.pdf", "00")]));
        assert_ne!(a, receipt_hash("text.", &[f("a.pdf", "00")]));
        assert_ne!(a, receipt_hash("text", &[f("b.pdf", "00")]));
        assert_ne!(a, receipt_hash("text", &[f("a.pdf", "01")]));
        assert_ne!(a, receipt_hash("text", &[]));
    }

    #[test]
    fn downloads_name_the_file_safely() {
        let d = disposition("attachment", "exposé \"final\".pdf");
        assert!(
            d.starts_with("attachment; filename=\"expos_ _final_.pdf\""),
            "{d}"
        );
        assert!(
            d.ends_with("filename*=UTF-8''expos%C3%A9%20%22final%22.pdf"),
            "{d}"
        );
        assert!(!ardoise_files::is_inline_safe("text/html"));
        assert!(!ardoise_files::is_inline_safe("image/svg+xml"));
        assert!(ardoise_files::is_inline_safe("application/pdf"));
        // The type detection gives plain text with its charset.
        let text = ardoise_files::detect_type(b"notes de cours");
        assert!(ardoise_files::is_inline_safe(&text.mime));
    }
}
