//! The homework diary (cahier de textes): a pupil's "À faire", a class's or
//! group's week of lessons and homework, and the teacher's forms to write
//! them.
//!
//! Reads come from `DiaryCache`: a class's or group's diary is read from
//! the store once per change, and pages carry an ETag so a browser that
//! already has the page gets a `304 Not Modified`. A pupil's "À faire" puts
//! their class's diary and their groups' diaries together.

use super::RouteTable;
use crate::diary_cache::WeekKey;
use crate::diary_cache::{ClassDiary, PupilTicks};
use crate::error::ApiError;
use crate::extract::{FormIn, JsonIn, Signed};
use crate::i18n::Tr;
use crate::pages::{render, Nav};
use crate::state::AppState;
use crate::upload::Uploaded;
use ardoise_core::diary::{
    due_bucket, parse_date, render_rich_text, week_start, DueBucket, RichTextError,
};
use ardoise_core::policy;
use ardoise_core::{Audience, ClassId, GroupId, HomeworkId, LessonId, PersonId, Role, SubjectId};
use ardoise_store::{
    AttachmentInsert, AudienceView, HandIn, HomeworkInsertForm, LessonInsertForm, PersonSummary,
};
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Json;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::sync::Arc;

/// This module's routes.
pub fn routes() -> RouteTable {
    RouteTable::default()
        .get("/todo", my_todo)
        .get("/pupils/{id}/todo", pupil_todo)
        .get("/classes/{id}/diary", class_diary)
        .post_upload("/classes/{id}/lessons", create_lesson)
        .post_upload("/classes/{id}/homework", create_homework)
        .post("/homework/{id}/done", tick_homework)
        .post("/homework/{id}/delete", delete_homework)
        .post("/lessons/{id}/delete", delete_lesson)
        .get("/api/v1/pupils/{id}/todo", api_pupil_todo)
        .get("/api/v1/classes/{id}/diary", api_class_diary)
        .post("/api/v1/classes/{id}/lessons", api_create_lesson)
        .post("/api/v1/classes/{id}/homework", api_create_homework)
        .put("/api/v1/homework/{id}/done", api_tick_homework)
        .get("/groups/{id}/diary", group_diary)
        .post_upload("/groups/{id}/lessons", create_group_lesson)
        .post_upload("/groups/{id}/homework", create_group_homework)
        .get("/api/v1/groups/{id}/diary", api_group_diary)
        .post("/api/v1/groups/{id}/lessons", api_create_group_lesson)
        .post("/api/v1/groups/{id}/homework", api_create_group_homework)
}

fn iso(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

/// « mercredi 25/11 » / « Wednesday 25/11 ».
pub(crate) fn day_label(t: &Tr, iso_date: &str) -> String {
    use chrono::Datelike;
    match parse_date(iso_date) {
        Some(d) => format!(
            "{} {}",
            t.get(&format!("day-{}", d.weekday().num_days_from_monday())),
            d.format("%d/%m")
        ),
        None => iso_date.to_string(),
    }
}

pub(crate) fn rich_text_error(e: RichTextError) -> ApiError {
    ApiError::Invalid(match e {
        RichTextError::Empty => "text_empty",
        RichTextError::TooLong => "text_too_long",
        RichTextError::Html => "html_not_allowed",
        RichTextError::Image => "image_not_allowed",
        RichTextError::UnsafeLink => "unsafe_link",
    })
}

/// The pupil whose work is asked for, if the caller may see it, with their
/// class and groups.
async fn visible_pupil(
    state: &AppState,
    signed: &Signed,
    id: i64,
) -> Result<(PersonSummary, Vec<Audience>), ApiError> {
    let p = state
        .store
        .find_person(PersonId(id))
        .await?
        .ok_or(ApiError::NotFound)?;
    let r = p.policy_ref();
    if !p.roles.has(Role::Pupil) || !policy::may_see_pupil_work(&signed.session.actor, r) {
        return Err(ApiError::NotFound);
    }
    let class = p.class_id.ok_or(ApiError::NotFound)?;
    let groups = state.store.pupil_groups(p.id).await?;
    Ok((p, audiences(class, &groups)))
}

/// A pupil's class, then their groups: whose diaries make their "À faire".
fn audiences(class: ClassId, groups: &[GroupId]) -> Vec<Audience> {
    std::iter::once(Audience::Class(class))
        .chain(groups.iter().map(|g| Audience::Group(*g)))
        .collect()
}

/// What one pupil has to do, computed from the cached diaries of their
/// class and groups.
struct Todo {
    /// The class's diary first, then each group's.
    diaries: Vec<Arc<ClassDiary>>,
    ticks: Arc<PupilTicks>,
    now: i64,
    today: NaiveDate,
}

impl Todo {
    async fn load(
        state: &AppState,
        pupil: PersonId,
        audiences: &[Audience],
    ) -> Result<Todo, ApiError> {
        let now = state.now();
        let mut diaries = Vec::with_capacity(audiences.len());
        for a in audiences {
            diaries.push(state.diary.class(&state.store, *a, now).await?);
        }
        // Today in the school's zone (the class's establishment's).
        let today = diaries.first().map(|d| d.today).unwrap_or_else(|| {
            ardoise_core::diary::local_date(now, ardoise_core::diary::DEFAULT_ZONE)
        });
        let ticks = state.diary.ticks(&state.store, pupil, today).await?;
        Ok(Todo {
            diaries,
            ticks,
            now,
            today,
        })
    }

    fn visible_homework(&self) -> impl Iterator<Item = &ardoise_store::HomeworkView> {
        self.diaries
            .iter()
            .flat_map(|d| d.homework.iter())
            .filter(move |h| h.publish_at <= self.now)
    }

    /// Changes whenever what the page shows does.
    fn etag(&self, lang: &str) -> String {
        let visible = self.visible_homework().count()
            + self
                .diaries
                .iter()
                .flat_map(|d| d.lessons.iter())
                .filter(|l| l.publish_at <= self.now)
                .count();
        let mut h = Sha256::new();
        for d in &self.diaries {
            h.update(d.version.to_le_bytes());
        }
        h.update(format!(
            "/{}/{}/{}/{}",
            self.ticks.version, visible, self.today, lang
        ));
        format!("\"{}\"", hex::encode(&h.finalize()[..12]))
    }
}

/// Answers 304 when the client already has this version.
fn not_modified(headers: &HeaderMap, etag: &str) -> Option<Response> {
    let matches = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
    matches.then(|| with_etag(StatusCode::NOT_MODIFIED.into_response(), etag))
}

fn with_etag(mut resp: Response, etag: &str) -> Response {
    if let Ok(v) = HeaderValue::from_str(etag) {
        resp.headers_mut().insert(header::ETAG, v);
    }
    // Private: a page of one pupil; revalidated on every visit, cheaply.
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-cache"),
    );
    resp
}

/// A line of "À faire": the class's pre-rendered part and the pupil's tick.
pub struct TodoItem {
    pub id: i64,
    pub html: Arc<str>,
    pub done: bool,
}

/// The static part of a line, rendered once per diary version and language.
#[derive(Template)]
#[template(path = "todo_item.html")]
struct TodoItemFragment {
    t: Tr,
    id: i64,
    subject: String,
    teacher: String,
    due: String,
    minutes: Option<i64>,
    instructions_html: String,
    files: Vec<super::work::FileLink>,
    deadline: Option<String>,
}

/// The past lessons, rendered once per diary version, language and
/// visibility.
#[derive(Template)]
#[template(path = "todo_lessons.html")]
struct TodoLessonsFragment {
    subjects: Vec<SubjectLessons>,
}

/// A heading of "À faire" and its lines.
pub struct TodoBucket {
    pub title: String,
    pub items: Vec<TodoItem>,
}

/// A subject's recent lessons.
pub struct SubjectLessons {
    pub subject: String,
    pub lessons: Vec<LessonLine>,
}

/// A past lesson in "À faire".
pub struct LessonLine {
    pub day: String,
    pub title: String,
    pub html: String,
    pub files: Vec<super::work::FileLink>,
}

#[derive(Template)]
#[template(path = "todo.html")]
struct TodoPage {
    t: Tr,
    nav: Nav,
    pupil_name: String,
    class: Option<AudienceView>,
    is_self: bool,
    csrf: String,
    buckets: Vec<TodoBucket>,
    /// Each diary's past lessons.
    lessons_html: Vec<Arc<str>>,
    no_lessons: bool,
    /// Done, mark done, undo.
    labels: (String, String, String),
}

fn todo_buckets(t: &Tr, todo: &Todo, fragments: &[Arc<Fragments>]) -> Vec<TodoBucket> {
    let mut buckets: BTreeMap<DueBucket, Vec<(NaiveDate, TodoItem)>> = BTreeMap::new();
    for (diary, fragments) in todo.diaries.iter().zip(fragments) {
        for (i, (h, due)) in diary
            .homework
            .iter()
            .zip(&diary.due)
            .enumerate()
            .filter(|(_, (h, _))| h.publish_at <= todo.now)
        {
            let Some(due) = *due else {
                continue;
            };
            let done = todo.ticks.done.contains(&h.id);
            let bucket = due_bucket(due, todo.today);
            if bucket == DueBucket::Late && done {
                continue;
            }
            let Some(html) = fragments.items.get(i) else {
                continue;
            };
            buckets.entry(bucket).or_default().push((
                due,
                TodoItem {
                    id: h.id.0,
                    html: Arc::clone(html),
                    done,
                },
            ));
        }
    }
    buckets
        .into_iter()
        .map(|(b, mut items)| {
            // Each diary is in due order; a pupil with groups gets them
            // merged (stable: a class's order is kept within a day).
            if todo.diaries.len() > 1 {
                items.sort_by_key(|(due, _)| *due);
            }
            TodoBucket {
                title: t.get(b.key()),
                items: items.into_iter().map(|(_, i)| i).collect(),
            }
        })
        .collect()
}

/// A subject's name as a diary shows it: with the group's name for a
/// group's diary (« Allemand (4e LV2) »).
fn subject_in(diary: &ClassDiary, subject: &str) -> String {
    match diary.target.as_ref() {
        Some(g) if matches!(g.audience, Audience::Group(_)) => format!("{subject} ({})", g.name),
        _ => subject.to_string(),
    }
}

fn lessons_by_subject(
    t: &Tr,
    diary: &ClassDiary,
    now: i64,
    today: NaiveDate,
) -> Vec<SubjectLessons> {
    let today = iso(today);
    let mut by: BTreeMap<String, Vec<LessonLine>> = BTreeMap::new();
    for l in diary
        .lessons
        .iter()
        .rev()
        .filter(|l| l.publish_at <= now && l.lesson_on <= today)
    {
        by.entry(subject_in(diary, &l.subject_name))
            .or_default()
            .push(LessonLine {
                day: day_label(t, &l.lesson_on),
                title: l.title.clone(),
                html: l.content_html.clone(),
                files: super::work::file_links(t, &l.attachments),
            });
    }
    by.into_iter()
        .map(|(subject, lessons)| SubjectLessons { subject, lessons })
        .collect()
}

async fn todo_page(
    state: &AppState,
    signed: &Signed,
    headers: &HeaderMap,
    pupil: Whose,
    audiences: &[Audience],
) -> Result<Response, ApiError> {
    let todo = Todo::load(state, pupil.id, audiences).await?;
    let t = signed.ctx.tr.clone();
    let etag = todo.etag(t.lang.code());
    if let Some(r) = not_modified(headers, &etag) {
        return Ok(r);
    }
    let is_self = signed.session.person_id() == pupil.id;
    let title = if is_self {
        t.get("todo-title")
    } else {
        format!("{} — {}", t.get("todo-title"), pupil.first_name)
    };
    let fragments = todo
        .diaries
        .iter()
        .map(|d| fragments(&t, d, todo.now, todo.today))
        .collect::<Result<Vec<_>, _>>()?;
    let page = TodoPage {
        nav: Nav::signed(title, &signed.session),
        pupil_name: pupil.display_name,
        class: todo.diaries.first().and_then(|d| d.target.clone()),
        is_self,
        csrf: signed.session.csrf_token.clone(),
        buckets: todo_buckets(&t, &todo, &fragments),
        no_lessons: fragments.iter().all(|f| f.lesson_count == 0),
        lessons_html: fragments.iter().map(|f| Arc::clone(&f.lessons)).collect(),
        labels: (
            t.get("todo-done"),
            t.get("todo-mark-done"),
            t.get("todo-mark-undone"),
        ),
        t,
    };
    // Rendered into a buffer the size of the pre-rendered parts and the
    // shell, so the page is not copied over and over as it grows.
    let size = 4096
        + page
            .buckets
            .iter()
            .flat_map(|b| b.items.iter())
            .map(|i| i.html.len() + 160)
            .sum::<usize>()
        + page.lessons_html.iter().map(|h| h.len()).sum::<usize>();
    let mut html = String::with_capacity(size);
    page.render_into(&mut html)
        .map_err(|e| ApiError::Internal(format!("todo page: {e}")))?;
    Ok(with_etag(axum::response::Html(html).into_response(), &etag))
}

/// A class diary's parts that are the same for every pupil, rendered once
/// per diary version, language and set of published lessons.
#[derive(Debug)]
pub struct Fragments {
    /// Each homework's line, in the diary's order (indexed like
    /// `ClassDiary::homework`).
    items: Vec<Arc<str>>,
    lessons: Arc<str>,
    /// Number of subjects with past lessons.
    lesson_count: usize,
}

fn fragments(
    t: &Tr,
    diary: &ClassDiary,
    now: i64,
    today: NaiveDate,
) -> Result<Arc<Fragments>, ApiError> {
    let visible_lessons = diary.lessons.iter().filter(|l| l.publish_at <= now).count();
    let key = (t.lang.code(), visible_lessons);
    let mut cache = diary
        .rendered
        .lock()
        .map_err(|_| ApiError::Internal("diary fragments lock poisoned".into()))?;
    if let Some(f) = cache.get(&key) {
        return Ok(Arc::clone(f));
    }
    let mut items = Vec::with_capacity(diary.homework.len());
    for h in &diary.homework {
        let item = TodoItemFragment {
            t: t.clone(),
            id: h.id.0,
            subject: subject_in(diary, &h.subject_name),
            teacher: h.teacher_name.clone(),
            due: day_label(t, &h.due_on),
            minutes: h.minutes,
            instructions_html: h.instructions_html.clone(),
            files: super::work::file_links(t, &h.attachments),
            deadline: h.hand_in.map(|x| t.datetime_in(x.deadline_at, diary.zone)),
        };
        let html = item
            .render()
            .map_err(|e| ApiError::Internal(format!("todo item: {e}")))?;
        items.push(Arc::from(html));
    }
    let subjects = lessons_by_subject(t, diary, now, today);
    let lesson_count = subjects.len();
    let lessons = TodoLessonsFragment { subjects }
        .render()
        .map_err(|e| ApiError::Internal(format!("todo lessons: {e}")))?;
    let f = Arc::new(Fragments {
        items,
        lessons: Arc::from(lessons),
        lesson_count,
    });
    // Scheduled lessons appear one by one: keep only the newest state.
    cache.retain(|(lang, _), _| *lang != key.0);
    cache.insert(key, Arc::clone(&f));
    Ok(f)
}

/// Whose "À faire" a page shows.
struct Whose {
    id: PersonId,
    first_name: String,
    display_name: String,
}

impl From<PersonSummary> for Whose {
    fn from(p: PersonSummary) -> Self {
        Whose {
            id: p.id,
            display_name: p.display_name(),
            first_name: p.first_name,
        }
    }
}

/// `GET /todo`: a pupil's own "À faire"; a parent goes to their child's.
async fn my_todo(
    State(state): State<AppState>,
    signed: Signed,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let actor = &signed.session.actor;
    if actor.is(Role::Pupil) {
        // The 9:15 page: everything it needs is in the session and the
        // cached diaries of the class and groups, no database trip.
        let class = actor.class_id.ok_or(ApiError::NotFound)?;
        let me = Whose {
            id: actor.person_id,
            first_name: signed.session.first_name.clone(),
            display_name: signed.session.display_name(),
        };
        let audiences = audiences(class, &actor.group_ids);
        return todo_page(&state, &signed, &headers, me, &audiences).await;
    }
    match actor.children.first() {
        Some(child) => {
            Ok(Redirect::to(&format!("/pupils/{}/todo", child.pupil_id)).into_response())
        }
        None => Ok(Redirect::to("/home").into_response()),
    }
}

/// `GET /pupils/{id}/todo`: what a pupil has to do, for them, their
/// parents, their teachers and staff.
async fn pupil_todo(
    State(state): State<AppState>,
    signed: Signed,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> Result<Response, ApiError> {
    let (pupil, audiences) = visible_pupil(&state, &signed, id).await?;
    todo_page(&state, &signed, &headers, pupil.into(), &audiences).await
}

#[derive(Deserialize)]
struct WeekQuery {
    week: Option<String>,
}

/// A day of the week view.
pub struct DayColumn {
    pub label: String,
    pub lessons: Vec<LessonRow>,
    pub homework: Vec<HomeworkRow>,
}

/// A lesson in the week view.
pub struct LessonRow {
    pub id: i64,
    pub subject: String,
    pub title: String,
    pub html: String,
    pub mine: bool,
    pub scheduled: Option<String>,
    pub files: Vec<super::work::FileLink>,
}

/// Homework in the week view.
pub struct HomeworkRow {
    pub id: i64,
    pub subject: String,
    pub html: String,
    pub minutes: Option<i64>,
    pub mine: bool,
    pub scheduled: Option<String>,
    pub files: Vec<super::work::FileLink>,
    /// Hand-in deadline, for assignments.
    pub deadline: Option<String>,
}

#[derive(Template)]
#[template(path = "diary.html")]
struct DiaryPage {
    t: Tr,
    nav: Nav,
    target: AudienceView,
    /// `/classes/{id}` or `/groups/{id}`.
    path: String,
    csrf: String,
    /// The week's days, rendered once per diary version (see [`WeekKey`]).
    days_html: Arc<str>,
    week_label: String,
    previous: String,
    next: String,
    today: String,
    /// Subjects the caller teaches to this class or group (id, name): the
    /// forms.
    my_subjects: Vec<(i64, String)>,
    /// Other classes and groups the caller teaches those subjects to, for
    /// "copy to": (form field, name).
    other_targets: Vec<(String, String)>,
    upload_help: String,
}

/// The days of a week, the part of the week view shared by its readers.
#[derive(Template)]
#[template(path = "diary_days.html")]
struct DiaryDays {
    t: Tr,
    csrf: String,
    days: Vec<DayColumn>,
}

/// A class's or group's diary, if the caller may read it (from the cache:
/// no database trip once loaded).
async fn readable_diary(
    state: &AppState,
    signed: &Signed,
    audience: Audience,
) -> Result<(Arc<ClassDiary>, AudienceView), ApiError> {
    let diary = state
        .diary
        .class(&state.store, audience, state.now())
        .await?;
    let target = diary.target.clone().ok_or(ApiError::NotFound)?;
    if !policy::may_read_diary(&signed.session.actor, target.policy_ref()) {
        return Err(ApiError::NotFound);
    }
    Ok((diary, target))
}

/// A period's lessons and homework of a class or group that the caller
/// sees: from the cached diary when it holds the period, else from the
/// store (older or further weeks).
async fn period_items(
    state: &AppState,
    diary: &ClassDiary,
    audience: Audience,
    from: NaiveDate,
    to: NaiveDate,
    sees_scheduled: bool,
) -> Result<
    (
        Vec<ardoise_store::LessonView>,
        Vec<ardoise_store::HomeworkView>,
    ),
    ApiError,
> {
    let now = state.now();
    let shown = |publish_at: i64| sees_scheduled || publish_at <= now;
    let (from_s, to_s) = (iso(from), iso(to));
    let (lessons, homework) = if diary.covers(from, to) {
        (
            diary
                .lessons
                .iter()
                .filter(|l| l.lesson_on >= from_s && l.lesson_on <= to_s)
                .cloned()
                .collect::<Vec<_>>(),
            diary
                .homework
                .iter()
                .filter(|h| h.due_on >= from_s && h.due_on <= to_s)
                .cloned()
                .collect::<Vec<_>>(),
        )
    } else {
        (
            state
                .store
                .audience_lessons(audience, &from_s, &to_s)
                .await?,
            state
                .store
                .audience_homework(audience, &from_s, &to_s)
                .await?,
        )
    };
    Ok((
        lessons
            .into_iter()
            .filter(|l| shown(l.publish_at))
            .collect(),
        homework
            .into_iter()
            .filter(|h| shown(h.publish_at))
            .collect(),
    ))
}

fn week_days(
    t: &Tr,
    monday: NaiveDate,
    lessons: Vec<ardoise_store::LessonView>,
    homework: Vec<ardoise_store::HomeworkView>,
    me: PersonId,
    now: i64,
    zone: ardoise_core::diary::Tz,
) -> Vec<DayColumn> {
    let scheduled = |publish_at: i64| (publish_at > now).then(|| t.datetime_in(publish_at, zone));
    let mut days: Vec<DayColumn> = (0..7)
        .map(|i| {
            let d = monday + chrono::Duration::days(i);
            DayColumn {
                label: day_label(t, &iso(d)),
                lessons: vec![],
                homework: vec![],
            }
        })
        .collect();
    let index = |date: &str| {
        parse_date(date)
            .map(|d| (d - monday).num_days())
            .filter(|i| (0..7).contains(i))
            .map(|i| i as usize)
    };
    for l in lessons {
        if let Some(i) = index(&l.lesson_on) {
            days[i].lessons.push(LessonRow {
                id: l.id.0,
                mine: l.teacher_id == me,
                scheduled: scheduled(l.publish_at),
                files: super::work::file_links(t, &l.attachments),
                subject: l.subject_name,
                title: l.title,
                html: l.content_html,
            });
        }
    }
    for h in homework {
        if let Some(i) = index(&h.due_on) {
            days[i].homework.push(HomeworkRow {
                id: h.id.0,
                mine: h.teacher_id == me,
                scheduled: scheduled(h.publish_at),
                files: super::work::file_links(t, &h.attachments),
                deadline: h.hand_in.map(|x| t.datetime_in(x.deadline_at, zone)),
                subject: h.subject_name,
                html: h.instructions_html,
                minutes: h.minutes,
            });
        }
    }
    days
}

/// `GET /classes/{id}/diary?week=YYYY-MM-DD`.
async fn class_diary(
    State(state): State<AppState>,
    signed: Signed,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Query(q): Query<WeekQuery>,
) -> Result<Response, ApiError> {
    week_view(&state, &signed, &headers, Audience::Class(ClassId(id)), q).await
}

/// `GET /groups/{id}/diary?week=YYYY-MM-DD`.
async fn group_diary(
    State(state): State<AppState>,
    signed: Signed,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Query(q): Query<WeekQuery>,
) -> Result<Response, ApiError> {
    week_view(&state, &signed, &headers, Audience::Group(GroupId(id)), q).await
}

/// A week of a class's or group's lessons and homework; its teachers also
/// get the forms to write them. Pupils and parents see what is published;
/// those who oversee the class or group also what is scheduled (the one
/// rule of `policy::diary_item_rights`). Within the cached days the week
/// is rendered once per diary version and carries an ETag.
async fn week_view(
    state: &AppState,
    signed: &Signed,
    headers: &HeaderMap,
    audience: Audience,
    q: WeekQuery,
) -> Result<Response, ApiError> {
    let (diary, target) = readable_diary(state, signed, audience).await?;
    let today = diary.today;
    let monday = week_start(q.week.as_deref().and_then(parse_date).unwrap_or(today));
    let sunday = monday + chrono::Duration::days(6);
    let actor = &signed.session.actor;
    let now = state.now();
    let t = signed.ctx.tr.clone();
    let sees_scheduled = policy::may_oversee_work(actor, target.policy_ref());
    let cached = diary.covers(monday, sunday);
    let (from_s, to_s) = (iso(monday), iso(sunday));
    let in_week_l = |l: &&ardoise_store::LessonView| l.lesson_on >= from_s && l.lesson_on <= to_s;
    let in_week_h = |h: &&ardoise_store::HomeworkView| h.due_on >= from_s && h.due_on <= to_s;
    let key = WeekKey {
        lang: t.lang.code(),
        monday,
        sees_scheduled,
        published: diary
            .lessons
            .iter()
            .filter(in_week_l)
            .filter(|l| l.publish_at <= now)
            .count()
            + diary
                .homework
                .iter()
                .filter(in_week_h)
                .filter(|h| h.publish_at <= now)
                .count(),
        author_csrf: (diary
            .lessons
            .iter()
            .filter(in_week_l)
            .any(|l| l.teacher_id == actor.person_id)
            || diary
                .homework
                .iter()
                .filter(in_week_h)
                .any(|h| h.teacher_id == actor.person_id))
        .then(|| signed.session.csrf_token.clone()),
    };
    let etag = cached.then(|| {
        let mut h = Sha256::new();
        h.update(format!(
            "week/{}/{:?}/{}/{}/{}",
            diary.version, key, today, actor.person_id, signed.session.csrf_token
        ));
        format!("\"{}\"", hex::encode(&h.finalize()[..12]))
    });
    if let Some(r) = etag.as_deref().and_then(|e| not_modified(headers, e)) {
        return Ok(r);
    }
    let rendered = if cached {
        diary
            .weeks
            .lock()
            .map_err(|_| ApiError::Internal("week cache lock poisoned".into()))?
            .get(&key)
            .cloned()
    } else {
        None
    };
    let days_html = match rendered {
        Some(html) => html,
        None => {
            let (lessons, homework) =
                period_items(state, &diary, audience, monday, sunday, sees_scheduled).await?;
            let html: Arc<str> = DiaryDays {
                t: t.clone(),
                csrf: signed.session.csrf_token.clone(),
                days: week_days(
                    &t,
                    monday,
                    lessons,
                    homework,
                    actor.person_id,
                    now,
                    diary.zone,
                ),
            }
            .render()
            .map_err(|e| ApiError::Internal(format!("week: {e}")))?
            .into();
            if cached {
                let mut weeks = diary
                    .weeks
                    .lock()
                    .map_err(|_| ApiError::Internal("week cache lock poisoned".into()))?;
                if weeks.len() >= crate::diary_cache::MAX_WEEKS {
                    weeks.clear();
                }
                weeks.insert(key, Arc::clone(&html));
            }
            html
        }
    };
    let (my_subjects, other_targets) = if actor.teaches(audience) {
        teacher_forms(state, actor, &target).await?
    } else {
        (Vec::new(), Vec::new())
    };
    let page = DiaryPage {
        nav: Nav::signed(
            format!("{} {}", t.get("diary-title"), target.name),
            &signed.session,
        ),
        path: target.path(),
        csrf: signed.session.csrf_token.clone(),
        days_html,
        week_label: t.with(
            "diary-week-of",
            &[("date", &monday.format("%d/%m/%Y").to_string())],
        ),
        previous: iso(monday - chrono::Duration::days(7)),
        next: iso(monday + chrono::Duration::days(7)),
        today: iso(today),
        my_subjects,
        other_targets,
        target,
        upload_help: t.with(
            "work-max-size",
            &[(
                "size",
                &super::work::size_label(
                    &t,
                    i64::try_from(state.config.max_upload_bytes).unwrap_or(i64::MAX),
                ),
            )],
        ),
        t,
    };
    let resp = render(&page);
    Ok(match etag {
        Some(e) => with_etag(resp, &e),
        None => resp,
    })
}

/// The subjects a teacher teaches to a class or group, and the other
/// classes and groups they teach those subjects to ("copy to").
async fn teacher_forms(
    state: &AppState,
    actor: &policy::Actor,
    target: &AudienceView,
) -> Result<(Vec<(i64, String)>, Vec<(String, String)>), ApiError> {
    let here = |t: &policy::TeachingRef| match target.audience {
        Audience::Class(c) => t.class_id == Some(c),
        Audience::Group(g) => t.group_id == Some(g),
    };
    let my_subject_ids: Vec<SubjectId> = actor
        .teachings
        .iter()
        .filter(|t| here(t))
        .map(|t| t.subject_id)
        .collect();
    let subjects = state.store.list_subjects(target.establishment_id).await?;
    let my_subjects = subjects
        .iter()
        .filter(|s| my_subject_ids.contains(&s.id))
        .map(|s| (s.id.0, s.name.clone()))
        .collect();
    let mut others: Vec<(String, String)> = Vec::new();
    for t in actor
        .teachings
        .iter()
        .filter(|t| my_subject_ids.contains(&t.subject_id) && !here(t))
    {
        let Some(a) = Audience::from_columns(t.class_id, t.group_id) else {
            continue;
        };
        let field = match a {
            Audience::Class(c) => format!("also_{}", c.0),
            Audience::Group(g) => format!("also_group_{}", g.0),
        };
        if others.iter().any(|(f, _)| *f == field) {
            continue;
        }
        if let Some(v) = state.store.find_audience(a).await? {
            others.push((field, v.name));
        }
    }
    Ok((my_subjects, others))
}

/// What a teacher sends to write a lesson (form or JSON).
#[derive(Deserialize, Serialize, utoipa::ToSchema)]
pub struct LessonIn {
    #[serde(default)]
    pub subject_id: String,
    #[serde(default)]
    pub lesson_on: String,
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub content: String,
    /// `YYYY-MM-DDTHH:MM` in the establishment's time zone; empty: now.
    #[serde(default)]
    pub publish_at: String,
    #[serde(default)]
    pub csrf: String,
}

/// What a teacher sends to set homework (form or JSON).
#[derive(Deserialize, Serialize, utoipa::ToSchema)]
pub struct HomeworkIn {
    #[serde(default)]
    pub subject_id: String,
    #[serde(default)]
    pub due_on: String,
    #[serde(default)]
    pub instructions: String,
    /// Estimated minutes; empty for none.
    #[serde(default)]
    pub minutes: String,
    /// `YYYY-MM-DDTHH:MM` in the establishment's time zone; empty: now.
    #[serde(default)]
    pub publish_at: String,
    /// Other classes (ids) to give the same homework to.
    #[serde(default)]
    pub also: Vec<i64>,
    /// Other teaching groups (ids) to give the same homework to.
    #[serde(default)]
    pub also_groups: Vec<i64>,
    /// Pupils hand work in (an assignment).
    #[serde(default)]
    pub hand_in: bool,
    /// `YYYY-MM-DDTHH:MM` hand-ins close, in the establishment's time zone;
    /// empty: the due date at 08:00 there.
    #[serde(default)]
    pub deadline_at: String,
    /// Accept hand-ins after the deadline, marked late.
    #[serde(default)]
    pub late_allowed: bool,
    /// Mark out of this (1–100); empty: not marked.
    #[serde(default)]
    pub mark_scale: String,
    #[serde(default)]
    pub csrf: String,
}

/// A time typed in a form, in the school's zone; empty: now.
fn parse_publish_at(s: &str, now: i64, zone: ardoise_core::diary::Tz) -> Result<i64, ApiError> {
    if s.trim().is_empty() {
        return Ok(now);
    }
    ardoise_core::diary::parse_local_datetime(s, zone).ok_or(ApiError::Invalid("date_invalid"))
}

fn parse_subject(s: &str) -> Result<SubjectId, ApiError> {
    s.trim()
        .parse::<i64>()
        .map(SubjectId)
        .map_err(|_| ApiError::Invalid("subject_missing"))
}

/// Checks and writes a lesson for a class or group.
async fn write_lesson(
    state: &AppState,
    signed: &Signed,
    audience: Audience,
    f: &LessonIn,
    attachments: Vec<AttachmentInsert>,
) -> Result<LessonId, ApiError> {
    let (diary, target) = readable_diary(state, signed, audience).await?;
    let subject = parse_subject(&f.subject_id)?;
    if !policy::may_write_diary(&signed.session.actor, target.audience, subject) {
        return Err(ApiError::Forbidden);
    }
    let date = parse_date(&f.lesson_on).ok_or(ApiError::Invalid("date_invalid"))?;
    let title = f.title.trim();
    if title.is_empty() || title.chars().count() > 200 || title.chars().any(char::is_control) {
        return Err(ApiError::Invalid("title_invalid"));
    }
    let html = render_rich_text(&f.content).map_err(rich_text_error)?;
    let now = state.now();
    let form = LessonInsertForm {
        audience: target.audience,
        subject_id: subject,
        teacher_id: signed.session.person_id(),
        lesson_on: iso(date),
        title: title.to_string(),
        content_source: f.content.trim().to_string(),
        content_html: html,
        publish_at: parse_publish_at(&f.publish_at, now, diary.zone)?,
        created_at: now,
        attachments,
    };
    let id = state.store.insert_lesson(&form).await?;
    state.diary.invalidate_class(target.audience);
    Ok(id)
}

/// Checks and writes homework for a class or group and the classes and
/// groups it is copied to.
async fn write_homework(
    state: &AppState,
    signed: &Signed,
    audience: Audience,
    f: &HomeworkIn,
    attachments: Vec<AttachmentInsert>,
) -> Result<Vec<HomeworkId>, ApiError> {
    let (diary, target) = readable_diary(state, signed, audience).await?;
    let subject = parse_subject(&f.subject_id)?;
    let actor = &signed.session.actor;
    let mut classes = vec![target.audience];
    let copies = f
        .also
        .iter()
        .map(|c| Audience::Class(ClassId(*c)))
        .chain(f.also_groups.iter().map(|g| Audience::Group(GroupId(*g))));
    for c in copies {
        if !classes.contains(&c) {
            classes.push(c);
        }
    }
    if classes
        .iter()
        .any(|c| !policy::may_write_diary(actor, *c, subject))
    {
        return Err(ApiError::Forbidden);
    }
    let due = parse_date(&f.due_on).ok_or(ApiError::Invalid("date_invalid"))?;
    if due < diary.today {
        return Err(ApiError::Invalid("due_date_past"));
    }
    let minutes = match f.minutes.trim() {
        "" => None,
        m => Some(
            m.parse::<i64>()
                .ok()
                .filter(|m| (1..=600).contains(m))
                .ok_or(ApiError::Invalid("minutes_invalid"))?,
        ),
    };
    let html = render_rich_text(&f.instructions).map_err(rich_text_error)?;
    let now = state.now();
    let publish_at = parse_publish_at(&f.publish_at, now, diary.zone)?;
    let hand_in = if f.hand_in {
        let deadline_at = if f.deadline_at.trim().is_empty() {
            chrono::NaiveTime::from_hms_opt(8, 0, 0)
                .and_then(|eight| ardoise_core::diary::local_time(due, eight, diary.zone))
                .ok_or(ApiError::Invalid("date_invalid"))?
        } else {
            parse_publish_at(&f.deadline_at, now, diary.zone)?
        };
        if deadline_at <= now {
            return Err(ApiError::Invalid("deadline_past"));
        }
        let mark_scale = match f.mark_scale.trim() {
            "" => None,
            m => Some(
                m.parse::<i64>()
                    .ok()
                    .filter(|m| (1..=100).contains(m))
                    .ok_or(ApiError::Invalid("mark_scale_invalid"))?,
            ),
        };
        Some(HandIn {
            deadline_at,
            late_allowed: f.late_allowed,
            mark_scale,
        })
    } else {
        None
    };
    let forms: Vec<HomeworkInsertForm> = classes
        .iter()
        .map(|c| HomeworkInsertForm {
            audience: *c,
            subject_id: subject,
            teacher_id: actor.person_id,
            due_on: iso(due),
            instructions_source: f.instructions.trim().to_string(),
            instructions_html: html.clone(),
            minutes,
            publish_at,
            created_at: now,
            hand_in,
            attachments: attachments.clone(),
        })
        .collect();
    let ids = state.store.insert_homework(&forms).await?;
    for c in &classes {
        state.diary.invalidate_class(*c);
    }
    Ok(ids)
}

fn back_to_week(audience: Audience, date: &str) -> Response {
    let path = match audience {
        Audience::Class(c) => format!("/classes/{}", c.0),
        Audience::Group(g) => format!("/groups/{}", g.0),
    };
    Redirect::to(&format!(
        "{path}/diary?week={}",
        parse_date(date).map(iso).unwrap_or_default()
    ))
    .into_response()
}

/// `POST /classes/{id}/lessons`.
async fn create_lesson(
    State(state): State<AppState>,
    signed: Signed,
    Path(id): Path<i64>,
    form: Uploaded,
) -> Result<Response, ApiError> {
    lesson_form(&state, &signed, Audience::Class(ClassId(id)), form).await
}

/// `POST /groups/{id}/lessons`.
async fn create_group_lesson(
    State(state): State<AppState>,
    signed: Signed,
    Path(id): Path<i64>,
    form: Uploaded,
) -> Result<Response, ApiError> {
    lesson_form(&state, &signed, Audience::Group(GroupId(id)), form).await
}

async fn lesson_form(
    state: &AppState,
    signed: &Signed,
    audience: Audience,
    form: Uploaded,
) -> Result<Response, ApiError> {
    signed.check_csrf(&form.get("csrf"))?;
    let f = LessonIn {
        subject_id: form.get("subject_id"),
        lesson_on: form.get("lesson_on"),
        title: form.get("title"),
        content: form.get("content"),
        publish_at: form.get("publish_at"),
        csrf: String::new(),
    };
    write_lesson(state, signed, audience, &f, form.attachments("files")).await?;
    Ok(back_to_week(audience, &f.lesson_on))
}

/// `POST /classes/{id}/homework`. The form's "copy to" checkboxes arrive as
/// `also_<class id>` and `also_group_<group id>` fields.
async fn create_homework(
    State(state): State<AppState>,
    signed: Signed,
    Path(id): Path<i64>,
    form: Uploaded,
) -> Result<Response, ApiError> {
    homework_form(&state, &signed, Audience::Class(ClassId(id)), form).await
}

/// `POST /groups/{id}/homework`.
async fn create_group_homework(
    State(state): State<AppState>,
    signed: Signed,
    Path(id): Path<i64>,
    form: Uploaded,
) -> Result<Response, ApiError> {
    homework_form(&state, &signed, Audience::Group(GroupId(id)), form).await
}

async fn homework_form(
    state: &AppState,
    signed: &Signed,
    audience: Audience,
    form: Uploaded,
) -> Result<Response, ApiError> {
    let get = |k: &str| form.get(k);
    signed.check_csrf(&get("csrf"))?;
    let ids = |prefix: &str| -> Vec<i64> {
        form.fields
            .keys()
            .filter_map(|k| k.strip_prefix(prefix))
            .filter_map(|v| v.parse::<i64>().ok())
            .collect()
    };
    let also = ids("also_");
    let also_groups = ids("also_group_");
    let f = HomeworkIn {
        subject_id: get("subject_id"),
        due_on: get("due_on"),
        instructions: get("instructions"),
        minutes: get("minutes"),
        publish_at: get("publish_at"),
        also,
        also_groups,
        hand_in: form.checked("hand_in"),
        deadline_at: get("deadline_at"),
        late_allowed: form.checked("late_allowed"),
        mark_scale: get("mark_scale"),
        csrf: String::new(),
    };
    write_homework(state, signed, audience, &f, form.attachments("files")).await?;
    Ok(back_to_week(audience, &f.due_on))
}

async fn tick(state: &AppState, signed: &Signed, id: i64, done: bool) -> Result<(), ApiError> {
    let h = state
        .store
        .find_homework(HomeworkId(id))
        .await?
        .ok_or(ApiError::NotFound)?;
    let actor = &signed.session.actor;
    // Only the pupil ticks their own homework, and only homework they can see.
    if !actor.is_pupil_of(h.audience) || h.publish_at > state.now() {
        return Err(ApiError::NotFound);
    }
    state
        .store
        .set_homework_done(h.id, actor.person_id, done, state.now())
        .await?;
    state.diary.invalidate_ticks(actor.person_id);
    Ok(())
}

#[derive(Deserialize)]
struct TickForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    done: String,
}

/// `POST /homework/{id}/done`: the pupil ticks (done=1) or unticks (done=0).
async fn tick_homework(
    State(state): State<AppState>,
    signed: Signed,
    Path(id): Path<i64>,
    FormIn(f): FormIn<TickForm>,
) -> Result<Response, ApiError> {
    signed.check_csrf(&f.csrf)?;
    let done = match f.done.as_str() {
        "1" => true,
        "0" => false,
        _ => return Err(ApiError::Invalid("done_invalid")),
    };
    tick(&state, &signed, id, done).await?;
    Ok(Redirect::to("/todo").into_response())
}

#[derive(Deserialize)]
struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

/// `POST /homework/{id}/delete`: its author removes it.
async fn delete_homework(
    State(state): State<AppState>,
    signed: Signed,
    Path(id): Path<i64>,
    FormIn(f): FormIn<CsrfForm>,
) -> Result<Response, ApiError> {
    signed.check_csrf(&f.csrf)?;
    let h = state
        .store
        .find_homework(HomeworkId(id))
        .await?
        .ok_or(ApiError::NotFound)?;
    if !policy::may_write_diary(&signed.session.actor, h.audience, h.subject_id) {
        return Err(ApiError::NotFound);
    }
    state.store.delete_homework(h.id).await?;
    state.diary.invalidate_class(h.audience);
    Ok(back_to_week(h.audience, &h.due_on))
}

/// `POST /lessons/{id}/delete`: its author removes it.
async fn delete_lesson(
    State(state): State<AppState>,
    signed: Signed,
    Path(id): Path<i64>,
    FormIn(f): FormIn<CsrfForm>,
) -> Result<Response, ApiError> {
    signed.check_csrf(&f.csrf)?;
    let l = state
        .store
        .find_lesson(LessonId(id))
        .await?
        .ok_or(ApiError::NotFound)?;
    if !policy::may_write_diary(&signed.session.actor, l.audience, l.subject_id) {
        return Err(ApiError::NotFound);
    }
    state.store.delete_lesson(l.id).await?;
    state.diary.invalidate_class(l.audience);
    Ok(back_to_week(l.audience, &l.lesson_on))
}

/// Homework in the API.
#[derive(Serialize, utoipa::ToSchema)]
pub struct HomeworkOut {
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
    /// For a pupil's list: whether they ticked it.
    pub done: Option<bool>,
    /// Whether pupils hand work in (see `/api/v1/homework/{id}`).
    pub hand_in: bool,
    /// Unix time hand-ins close.
    pub deadline_at: Option<i64>,
    /// Attached files (download at `/attachments/{id}`).
    pub files: Vec<super::work::FileOut>,
}

/// A lesson in the API.
#[derive(Serialize, utoipa::ToSchema)]
pub struct LessonOut {
    pub id: i64,
    /// The class it is for (or null for a group's).
    pub class_id: Option<i64>,
    /// The teaching group it is for (or null for a class's).
    pub group_id: Option<i64>,
    pub subject: String,
    pub teacher: String,
    pub lesson_on: String,
    pub title: String,
    pub content_html: String,
    /// Attached files (download at `/attachments/{id}`).
    pub files: Vec<super::work::FileOut>,
}

/// A class's diary over a period.
#[derive(Serialize, utoipa::ToSchema)]
pub struct DiaryOut {
    pub lessons: Vec<LessonOut>,
    pub homework: Vec<HomeworkOut>,
}

fn homework_out(h: &ardoise_store::HomeworkView, done: Option<bool>) -> HomeworkOut {
    HomeworkOut {
        id: h.id.0,
        class_id: h.audience.class_id().map(|c| c.0),
        group_id: h.audience.group_id().map(|g| g.0),
        subject: h.subject_name.clone(),
        teacher: h.teacher_name.clone(),
        due_on: h.due_on.clone(),
        instructions_html: h.instructions_html.clone(),
        minutes: h.minutes,
        done,
        hand_in: h.hand_in.is_some(),
        deadline_at: h.hand_in.map(|x| x.deadline_at),
        files: super::work::files_out(&h.attachments),
    }
}

/// A pupil's homework from today on (and late homework not done), with ticks.
#[utoipa::path(get, path = "/api/v1/pupils/{id}/todo", params(("id" = i64, Path)),
    responses((status = 200, body = [HomeworkOut]), (status = 304), (status = 404, body = crate::routes::api::ErrorOut)))]
async fn api_pupil_todo(
    State(state): State<AppState>,
    signed: Signed,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> Result<Response, ApiError> {
    let (pupil, audiences) = visible_pupil(&state, &signed, id).await?;
    let todo = Todo::load(&state, pupil.id, &audiences).await?;
    let etag = todo.etag("json");
    if let Some(r) = not_modified(&headers, &etag) {
        return Ok(r);
    }
    let list: Vec<HomeworkOut> = todo
        .visible_homework()
        .filter(|h| {
            let late = parse_date(&h.due_on).is_some_and(|d| d < todo.today);
            !(late && todo.ticks.done.contains(&h.id))
        })
        .map(|h| homework_out(h, Some(todo.ticks.done.contains(&h.id))))
        .collect();
    Ok(with_etag(Json(list).into_response(), &etag))
}

#[derive(Deserialize)]
struct PeriodQuery {
    from: Option<String>,
    to: Option<String>,
}

/// A class's lessons and homework between two dates (at most 62 days;
/// default: this week).
#[utoipa::path(get, path = "/api/v1/classes/{id}/diary", params(("id" = i64, Path), ("from" = Option<String>, Query), ("to" = Option<String>, Query)),
    responses((status = 200, body = DiaryOut), (status = 404, body = crate::routes::api::ErrorOut), (status = 422, body = crate::routes::api::ErrorOut)))]
async fn api_class_diary(
    State(state): State<AppState>,
    signed: Signed,
    Path(id): Path<i64>,
    Query(q): Query<PeriodQuery>,
) -> Result<Json<DiaryOut>, ApiError> {
    api_diary(&state, &signed, Audience::Class(ClassId(id)), q).await
}

/// A teaching group's lessons and homework between two dates (at most 62
/// days; default: this week).
#[utoipa::path(get, path = "/api/v1/groups/{id}/diary", params(("id" = i64, Path), ("from" = Option<String>, Query), ("to" = Option<String>, Query)),
    responses((status = 200, body = DiaryOut), (status = 404, body = crate::routes::api::ErrorOut), (status = 422, body = crate::routes::api::ErrorOut)))]
async fn api_group_diary(
    State(state): State<AppState>,
    signed: Signed,
    Path(id): Path<i64>,
    Query(q): Query<PeriodQuery>,
) -> Result<Json<DiaryOut>, ApiError> {
    api_diary(&state, &signed, Audience::Group(GroupId(id)), q).await
}

async fn api_diary(
    state: &AppState,
    signed: &Signed,
    audience: Audience,
    q: PeriodQuery,
) -> Result<Json<DiaryOut>, ApiError> {
    let (diary, target) = readable_diary(state, signed, audience).await?;
    let monday = week_start(diary.today);
    let parse = |s: &Option<String>, default: NaiveDate| match s {
        Some(s) => parse_date(s).ok_or(ApiError::Invalid("date_invalid")),
        None => Ok(default),
    };
    let from = parse(&q.from, monday)?;
    let to = parse(&q.to, monday + chrono::Duration::days(6))?;
    if to < from || (to - from).num_days() > 62 {
        return Err(ApiError::Invalid("period_invalid"));
    }
    let sees_scheduled = policy::may_oversee_work(&signed.session.actor, target.policy_ref());
    let (lessons, homework) =
        period_items(state, &diary, audience, from, to, sees_scheduled).await?;
    Ok(Json(DiaryOut {
        lessons: lessons
            .into_iter()
            .map(|l| LessonOut {
                id: l.id.0,
                class_id: l.audience.class_id().map(|c| c.0),
                group_id: l.audience.group_id().map(|g| g.0),
                subject: l.subject_name,
                teacher: l.teacher_name,
                lesson_on: l.lesson_on,
                files: super::work::files_out(&l.attachments),
                title: l.title,
                content_html: l.content_html,
            })
            .collect(),
        homework: homework.iter().map(|h| homework_out(h, None)).collect(),
    }))
}

/// Id of what was created.
#[derive(Serialize, utoipa::ToSchema)]
pub struct CreatedOut {
    pub ids: Vec<i64>,
}

/// Writes a lesson (teachers of the class and subject).
#[utoipa::path(post, path = "/api/v1/classes/{id}/lessons", params(("id" = i64, Path)), request_body = LessonIn,
    responses((status = 201, body = CreatedOut), (status = 403, body = crate::routes::api::ErrorOut), (status = 422, body = crate::routes::api::ErrorOut)))]
async fn api_create_lesson(
    State(state): State<AppState>,
    signed: Signed,
    Path(id): Path<i64>,
    JsonIn(f): JsonIn<LessonIn>,
) -> Result<Response, ApiError> {
    created_lesson(&state, &signed, Audience::Class(ClassId(id)), &f).await
}

/// Writes a lesson for a teaching group (its teachers of the subject).
#[utoipa::path(post, path = "/api/v1/groups/{id}/lessons", params(("id" = i64, Path)), request_body = LessonIn,
    responses((status = 201, body = CreatedOut), (status = 403, body = crate::routes::api::ErrorOut), (status = 422, body = crate::routes::api::ErrorOut)))]
async fn api_create_group_lesson(
    State(state): State<AppState>,
    signed: Signed,
    Path(id): Path<i64>,
    JsonIn(f): JsonIn<LessonIn>,
) -> Result<Response, ApiError> {
    created_lesson(&state, &signed, Audience::Group(GroupId(id)), &f).await
}

async fn created_lesson(
    state: &AppState,
    signed: &Signed,
    audience: Audience,
    f: &LessonIn,
) -> Result<Response, ApiError> {
    let lesson = write_lesson(state, signed, audience, f, Vec::new()).await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedOut {
            ids: vec![lesson.0],
        }),
    )
        .into_response())
}

/// Sets homework (teachers of the class and subject), optionally for other
/// classes too.
#[utoipa::path(post, path = "/api/v1/classes/{id}/homework", params(("id" = i64, Path)), request_body = HomeworkIn,
    responses((status = 201, body = CreatedOut), (status = 403, body = crate::routes::api::ErrorOut), (status = 422, body = crate::routes::api::ErrorOut)))]
async fn api_create_homework(
    State(state): State<AppState>,
    signed: Signed,
    Path(id): Path<i64>,
    JsonIn(f): JsonIn<HomeworkIn>,
) -> Result<Response, ApiError> {
    created_homework(&state, &signed, Audience::Class(ClassId(id)), &f).await
}

/// Sets homework for a teaching group (its teachers of the subject),
/// optionally for other classes and groups too.
#[utoipa::path(post, path = "/api/v1/groups/{id}/homework", params(("id" = i64, Path)), request_body = HomeworkIn,
    responses((status = 201, body = CreatedOut), (status = 403, body = crate::routes::api::ErrorOut), (status = 422, body = crate::routes::api::ErrorOut)))]
async fn api_create_group_homework(
    State(state): State<AppState>,
    signed: Signed,
    Path(id): Path<i64>,
    JsonIn(f): JsonIn<HomeworkIn>,
) -> Result<Response, ApiError> {
    created_homework(&state, &signed, Audience::Group(GroupId(id)), &f).await
}

async fn created_homework(
    state: &AppState,
    signed: &Signed,
    audience: Audience,
    f: &HomeworkIn,
) -> Result<Response, ApiError> {
    let ids = write_homework(state, signed, audience, f, Vec::new()).await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedOut {
            ids: ids.into_iter().map(|i| i.0).collect(),
        }),
    )
        .into_response())
}

/// Ticks or unticks homework.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct DoneIn {
    pub done: bool,
}

/// The pupil ticks their homework done, or not.
#[utoipa::path(put, path = "/api/v1/homework/{id}/done", params(("id" = i64, Path)), request_body = DoneIn,
    responses((status = 204), (status = 404, body = crate::routes::api::ErrorOut)))]
async fn api_tick_homework(
    State(state): State<AppState>,
    signed: Signed,
    Path(id): Path<i64>,
    JsonIn(f): JsonIn<DoneIn>,
) -> Result<Response, ApiError> {
    tick(&state, &signed, id, f.done).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// The diary's part of the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(
        api_pupil_todo,
        api_class_diary,
        api_create_lesson,
        api_create_homework,
        api_tick_homework,
        api_group_diary,
        api_create_group_lesson,
        api_create_group_homework
    ),
    components(schemas(
        HomeworkOut,
        LessonOut,
        DiaryOut,
        LessonIn,
        HomeworkIn,
        CreatedOut,
        DoneIn
    ))
)]
pub struct DiaryApiDoc;
