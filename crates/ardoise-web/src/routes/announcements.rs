//! Announcements (actualités) and the timeline of what is new for a
//! person. Staff publish to the establishment, to parents or to classes;
//! teachers only to the classes they teach. Who sees an announcement is
//! decided by `ardoise_core::messaging::announcement_scope`, applied in the
//! store's query.

use super::RouteTable;
use crate::error::ApiError;
use crate::extract::{FormIn, JsonIn, Signed};
use crate::i18n::Tr;
use crate::pages::{render, Nav};
use crate::state::AppState;
use ardoise_core::diary::render_rich_text;
use ardoise_core::messaging::{self, AnnouncementAudience};
use ardoise_core::policy::ClassScope;
use ardoise_core::{AnnouncementId, ClassId, Role};
use ardoise_store::{
    AnnouncementInsert, AnnouncementView, ClassView, TimelineItem, TimelineKind, TimelineScope,
};
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// Timeline items per page.
pub const TIMELINE_PAGE: i64 = 15;

/// This module's routes.
pub fn routes() -> RouteTable {
    RouteTable::default()
        .get("/announcements", announcements_page)
        .post("/announcements", create_form)
        .post("/announcements/{id}/withdraw", withdraw_form)
        .get("/api/v1/announcements", api_list)
        .post("/api/v1/announcements", api_create)
        .post("/api/v1/announcements/{id}/withdraw", api_withdraw)
        .get("/api/v1/timeline", api_timeline)
}

/// The classes the actor may announce to.
async fn announce_classes(state: &AppState, signed: &Signed) -> Result<Vec<ClassView>, ApiError> {
    let actor = &signed.session.actor;
    if actor.is(Role::Staff) {
        return Ok(state
            .store
            .list_classes(&ClassScope::Establishment(actor.establishment_id))
            .await?);
    }
    if actor.is(Role::Teacher) {
        return Ok(state
            .store
            .list_classes(&ClassScope::Only(actor.taught_classes.clone()))
            .await?);
    }
    Ok(Vec::new())
}

fn may_publish(signed: &Signed) -> bool {
    let a = &signed.session.actor;
    a.is(Role::Staff) || a.is(Role::Teacher)
}

/// Reads a `datetime-local` (UTC) or a date; empty is none.
fn parse_when(s: &str) -> Result<Option<i64>, ApiError> {
    let s = s.trim();
    if s.is_empty() {
        return Ok(None);
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Ok(d.and_hms_opt(0, 0, 0).map(|d| d.and_utc().timestamp()));
    }
    chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M")
        .map(|d| Some(d.and_utc().timestamp()))
        .map_err(|_| ApiError::Invalid("date_invalid"))
}

/// An announcement as the form or the API sent it.
struct Draft<'a> {
    title: &'a str,
    body: &'a str,
    audience: &'a str,
    classes: Vec<ClassId>,
    from: Option<i64>,
    until: Option<i64>,
}

/// Checks and publishes an announcement.
async fn create_core(
    state: &AppState,
    signed: &Signed,
    d: Draft<'_>,
) -> Result<AnnouncementId, ApiError> {
    let Draft {
        title,
        body,
        audience,
        classes,
        from,
        until,
    } = d;
    if !may_publish(signed) {
        return Err(ApiError::Forbidden);
    }
    let actor = &signed.session.actor;
    let title = title.trim();
    if title.is_empty() || title.chars().count() > 200 || title.chars().any(char::is_control) {
        return Err(ApiError::Invalid("title_invalid"));
    }
    let html = render_rich_text(body).map_err(super::diary::rich_text_error)?;
    let audience =
        AnnouncementAudience::parse(audience).ok_or(ApiError::Invalid("audience_invalid"))?;
    let mut classes = classes;
    classes.sort();
    classes.dedup();
    if audience.needs_classes() == classes.is_empty() {
        return Err(ApiError::Invalid("audience_invalid"));
    }
    // Every class must be one of the establishment's.
    let known = state
        .store
        .list_classes(&ClassScope::Establishment(actor.establishment_id))
        .await?;
    if !classes.iter().all(|c| known.iter().any(|k| k.id == *c)) {
        return Err(ApiError::Invalid("audience_invalid"));
    }
    if !messaging::may_announce(actor, audience, &classes) {
        return Err(ApiError::Forbidden);
    }
    let now = state.now();
    let publish_from = from.unwrap_or(now);
    if until.is_some_and(|u| u <= publish_from) {
        return Err(ApiError::Invalid("window_invalid"));
    }
    let a = AnnouncementInsert {
        establishment_id: actor.establishment_id,
        author_id: actor.person_id,
        title: title.to_string(),
        body_source: body.trim().to_string(),
        body_html: html,
        audience,
        classes,
        publish_from,
        publish_until: until,
        created_at: now,
    };
    Ok(state.store.insert_announcement(&a).await?)
}

/// Withdraws an announcement (ends its window now): its author, or staff of
/// its establishment. It stays listed for them, no longer current.
async fn withdraw_core(state: &AppState, signed: &Signed, id: i64) -> Result<(), ApiError> {
    let a = state
        .store
        .find_announcement(AnnouncementId(id))
        .await?
        .ok_or(ApiError::NotFound)?;
    let actor = &signed.session.actor;
    let staff = actor.is(Role::Staff) && actor.establishment_id == a.establishment_id;
    if a.author_id != actor.person_id && !staff {
        return Err(ApiError::NotFound);
    }
    state.store.withdraw_announcement(a.id, state.now()).await?;
    Ok(())
}

/// The announcements the caller sees: current ones, plus scheduled and
/// past ones for those who publish.
async fn visible(state: &AppState, signed: &Signed) -> Result<Vec<AnnouncementView>, ApiError> {
    let scope = messaging::announcement_scope(&signed.session.actor);
    Ok(state
        .store
        .announcements_for(&scope, state.now(), !may_publish(signed), 100)
        .await?)
}

/// An announcement as shown.
pub struct AnnouncementShown {
    pub id: i64,
    pub title: String,
    pub author: String,
    pub body_html: String,
    pub audience: String,
    pub from: String,
    pub until: Option<String>,
    pub current: bool,
    pub withdrawable: bool,
}

/// Announcements for a page.
pub fn shown(
    t: &Tr,
    signed: &Signed,
    now: i64,
    list: &[AnnouncementView],
) -> Vec<AnnouncementShown> {
    let actor = &signed.session.actor;
    list.iter()
        .map(|a| {
            let names = a.class_names.join(", ");
            let current = a.publish_from <= now && a.publish_until.is_none_or(|u| u > now);
            AnnouncementShown {
                id: a.id.0,
                title: a.title.clone(),
                author: a.author_name.clone(),
                body_html: a.body_html.clone(),
                audience: t.with(
                    &format!("ann-audience-{}", a.audience.as_str()),
                    &[("classes", &names)],
                ),
                from: t.datetime(a.publish_from),
                until: a.publish_until.map(|u| t.datetime(u)),
                current,
                withdrawable: current
                    && (a.author_id == actor.person_id
                        || (actor.is(Role::Staff) && actor.establishment_id == a.establishment_id)),
            }
        })
        .collect()
}

#[derive(Template)]
#[template(path = "announcements.html")]
struct AnnouncementsPage {
    t: Tr,
    nav: Nav,
    csrf: String,
    list: Vec<AnnouncementShown>,
    can_publish: bool,
    is_staff: bool,
    classes: Vec<ClassView>,
}

/// `GET /announcements`.
async fn announcements_page(
    State(state): State<AppState>,
    signed: Signed,
) -> Result<Response, ApiError> {
    let list = visible(&state, &signed).await?;
    let t = signed.ctx.tr.clone();
    let p = AnnouncementsPage {
        nav: Nav::signed(t.get("ann-title"), &signed.session),
        csrf: signed.session.csrf_token.clone(),
        list: shown(&t, &signed, state.now(), &list),
        can_publish: may_publish(&signed),
        is_staff: signed.session.actor.is(Role::Staff),
        classes: announce_classes(&state, &signed).await?,
        t,
    };
    Ok(render(&p))
}

/// `POST /announcements`: classes arrive as `class:<id>` checkboxes.
async fn create_form(
    State(state): State<AppState>,
    signed: Signed,
    FormIn(f): FormIn<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let get = |k: &str| f.get(k).cloned().unwrap_or_default();
    signed.check_csrf(&get("csrf"))?;
    let mut classes = Vec::new();
    for k in f.keys() {
        if let Some(id) = k.strip_prefix("class:") {
            classes.push(ClassId(
                id.parse()
                    .map_err(|_| ApiError::Invalid("audience_invalid"))?,
            ));
        }
    }
    let (title, body, audience) = (get("title"), get("body"), get("audience"));
    let d = Draft {
        title: &title,
        body: &body,
        audience: &audience,
        classes,
        from: parse_when(&get("from"))?,
        until: parse_when(&get("until"))?,
    };
    create_core(&state, &signed, d).await?;
    Ok(Redirect::to("/announcements").into_response())
}

#[derive(Deserialize)]
struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

/// `POST /announcements/{id}/withdraw`.
async fn withdraw_form(
    State(state): State<AppState>,
    signed: Signed,
    Path(id): Path<i64>,
    FormIn(f): FormIn<CsrfForm>,
) -> Result<Response, ApiError> {
    signed.check_csrf(&f.csrf)?;
    withdraw_core(&state, &signed, id).await?;
    Ok(Redirect::to("/announcements").into_response())
}

// ---------------------------------------------------------------- timeline

/// The caller's timeline scope, from the policy.
pub fn timeline_scope(actor: &ardoise_core::Actor) -> TimelineScope {
    let mut classes: Vec<ClassId> = actor.children.iter().filter_map(|c| c.class_id).collect();
    let mut pupils: Vec<ardoise_core::PersonId> =
        actor.children.iter().map(|c| c.pupil_id).collect();
    let mut groups: Vec<ardoise_core::GroupId> = actor
        .children
        .iter()
        .flat_map(|c| c.group_ids.iter().copied())
        .collect();
    if actor.is(Role::Pupil) {
        classes.extend(actor.class_id);
        groups.extend(actor.group_ids.iter().copied());
        pupils.push(actor.person_id);
    }
    classes.sort();
    classes.dedup();
    groups.sort();
    groups.dedup();
    TimelineScope {
        person_id: actor.person_id,
        homework_classes: classes,
        homework_groups: groups,
        feedback_pupils: pupils,
        announcements: messaging::announcement_scope(actor),
    }
}

/// A timeline item as shown.
pub struct TimelineShown {
    pub kind: &'static str,
    pub label: String,
    pub title: String,
    pub by: String,
    pub at: String,
    pub href: String,
}

/// Where an item leads.
fn item_href(actor: &ardoise_core::Actor, i: &TimelineItem) -> String {
    match i.kind {
        TimelineKind::Homework => format!("/homework/{}", i.id),
        TimelineKind::Message => format!("/messages/{}", i.id),
        TimelineKind::Announcement => format!("/announcements#a-{}", i.id),
        TimelineKind::Feedback => match i.pupil_id {
            Some(p) if p != actor.person_id => format!("/pupils/{p}/homework/{}", i.id),
            _ => format!("/homework/{}", i.id),
        },
    }
}

/// One page of the caller's timeline, for a page, whether there is more,
/// and the caller's unread count (read with it).
pub async fn timeline_page(
    state: &AppState,
    signed: &Signed,
    page: i64,
) -> Result<(Vec<TimelineShown>, bool, i64), ApiError> {
    let actor = &signed.session.actor;
    let t = &signed.ctx.tr;
    let (mut items, unread) = state
        .store
        .timeline_with_unread(
            &timeline_scope(actor),
            state.now(),
            TIMELINE_PAGE + 1,
            (page - 1) * TIMELINE_PAGE,
        )
        .await?;
    let more = items.len() as i64 > TIMELINE_PAGE;
    items.truncate(TIMELINE_PAGE as usize);
    Ok((
        items
            .iter()
            .map(|i| TimelineShown {
                kind: i.kind.as_str(),
                label: t.get(&format!("timeline-{}", i.kind.as_str())),
                title: i.title.clone(),
                by: i.by.clone(),
                at: t.datetime(i.at),
                href: item_href(actor, i),
            })
            .collect(),
        more,
        unread,
    ))
}

// ---------------------------------------------------------------- API

/// An announcement in the API.
#[derive(Serialize, utoipa::ToSchema)]
pub struct AnnouncementOut {
    pub id: i64,
    pub title: String,
    pub author: String,
    pub body_html: String,
    /// `all`, `parents`, `class`, `class_parents`.
    pub audience: String,
    pub classes: Vec<String>,
    pub publish_from: i64,
    pub publish_until: Option<i64>,
}

/// `GET /api/v1/announcements`
#[utoipa::path(get, path = "/api/v1/announcements", tag = "announcements",
    responses((status = 200, body = [AnnouncementOut])))]
async fn api_list(
    State(state): State<AppState>,
    signed: Signed,
) -> Result<Json<Vec<AnnouncementOut>>, ApiError> {
    Ok(Json(
        visible(&state, &signed)
            .await?
            .into_iter()
            .map(|a| AnnouncementOut {
                id: a.id.0,
                title: a.title,
                author: a.author_name,
                body_html: a.body_html,
                audience: a.audience.as_str().to_string(),
                classes: a.class_names,
                publish_from: a.publish_from,
                publish_until: a.publish_until,
            })
            .collect(),
    ))
}

/// A new announcement.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct AnnouncementIn {
    pub title: String,
    pub body: String,
    /// `all`, `parents`, `class`, `class_parents`.
    pub audience: String,
    /// For `class` and `class_parents`.
    #[serde(default)]
    pub class_ids: Vec<i64>,
    /// Unix time; none: now.
    pub publish_from: Option<i64>,
    pub publish_until: Option<i64>,
}

/// The id of what was created.
#[derive(Serialize, utoipa::ToSchema)]
pub struct CreatedOut {
    pub id: i64,
}

/// `POST /api/v1/announcements`
#[utoipa::path(post, path = "/api/v1/announcements", tag = "announcements", request_body = AnnouncementIn,
    responses((status = 201, body = CreatedOut), (status = 403, description = "Not staff, or a class the teacher does not teach"),
        (status = 422, description = "Empty, unsafe or badly addressed")))]
async fn api_create(
    State(state): State<AppState>,
    signed: Signed,
    JsonIn(a): JsonIn<AnnouncementIn>,
) -> Result<Response, ApiError> {
    let d = Draft {
        title: &a.title,
        body: &a.body,
        audience: &a.audience,
        classes: a.class_ids.iter().copied().map(ClassId).collect(),
        from: a.publish_from,
        until: a.publish_until,
    };
    let id = create_core(&state, &signed, d).await?;
    Ok((StatusCode::CREATED, Json(CreatedOut { id: id.0 })).into_response())
}

/// `POST /api/v1/announcements/{id}/withdraw`
#[utoipa::path(post, path = "/api/v1/announcements/{id}/withdraw", tag = "announcements",
    params(("id" = i64, Path, description = "Announcement id")),
    responses((status = 204), (status = 404, description = "Not the caller's to withdraw")))]
async fn api_withdraw(
    State(state): State<AppState>,
    signed: Signed,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    withdraw_core(&state, &signed, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A timeline item.
#[derive(Serialize, utoipa::ToSchema)]
pub struct TimelineOut {
    /// `homework`, `message`, `announcement`, `feedback`.
    pub kind: String,
    /// The homework, conversation or announcement.
    pub id: i64,
    /// For feedback: whose.
    pub pupil_id: Option<i64>,
    pub at: i64,
    pub title: String,
    pub by: String,
    /// The page it leads to.
    pub href: String,
}

#[derive(Deserialize, Default)]
struct PageQuery {
    #[serde(default)]
    page: String,
}

/// `GET /api/v1/timeline?page=`: what is new for the caller, newest first.
#[utoipa::path(get, path = "/api/v1/timeline", tag = "announcements",
    params(("page" = Option<i64>, Query, description = "Page, from 1")),
    responses((status = 200, body = [TimelineOut])))]
async fn api_timeline(
    State(state): State<AppState>,
    signed: Signed,
    Query(q): Query<PageQuery>,
) -> Result<Json<Vec<TimelineOut>>, ApiError> {
    let page = q.page.trim().parse::<i64>().unwrap_or(1).clamp(1, 10_000);
    let actor = &signed.session.actor;
    let items = state
        .store
        .timeline(
            &timeline_scope(actor),
            state.now(),
            TIMELINE_PAGE,
            (page - 1) * TIMELINE_PAGE,
        )
        .await?;
    Ok(Json(
        items
            .iter()
            .map(|i| TimelineOut {
                kind: i.kind.as_str().to_string(),
                id: i.id,
                pupil_id: i.pupil_id.map(|p| p.0),
                at: i.at,
                title: i.title.clone(),
                by: i.by.clone(),
                href: item_href(actor, i),
            })
            .collect(),
    ))
}

/// The OpenAPI description of this module.
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(api_list, api_create, api_withdraw, api_timeline),
    components(schemas(AnnouncementOut, AnnouncementIn, CreatedOut, TimelineOut))
)]
pub struct AnnouncementsApiDoc;
