//! Home pages, one section per role the person holds (a teacher who is also
//! a parent sees both), and the class page.

use super::RouteTable;
use crate::error::ApiError;
use crate::extract::{Ctx, Signed};
use crate::i18n::Tr;
use crate::pages::{render, role_label, Nav};
use crate::state::AppState;
use ardoise_core::policy::{self, ClassScope};
use ardoise_core::{ClassId, Role};
use ardoise_store::{ChildView, ClassTeacherView, ClassView, PersonSummary, TeachingView};
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};

/// This module's routes.
pub fn routes() -> RouteTable {
    RouteTable::default()
        .get("/", root)
        .get("/home", home)
        .get("/classes/{id}", class_page)
}

/// `GET /`: home if signed in, the sign-in page otherwise.
async fn root(ctx: Ctx) -> Response {
    if ctx.session.is_some() {
        Redirect::to("/home").into_response()
    } else {
        Redirect::to("/login").into_response()
    }
}

/// A child with their class's teachers.
#[derive(Debug, Clone)]
pub struct ChildSection {
    pub child: ChildView,
    pub teachers: Vec<ClassTeacherView>,
}

#[derive(Template)]
#[template(path = "home.html")]
struct HomePage {
    t: Tr,
    nav: Nav,
    first_name: String,
    roles: Vec<String>,
    establishment: String,
    today: String,
    pupil_class: Option<ClassView>,
    pupil_teachers: Vec<ClassTeacherView>,
    is_parent: bool,
    children: Vec<ChildSection>,
    is_teacher: bool,
    teachings: Vec<TeachingView>,
    is_staff: bool,
    classes: Vec<ClassView>,
    is_admin: bool,
    /// Messaging: unread messages, current announcements, the timeline.
    unread: i64,
    announcements: Vec<super::announcements::AnnouncementShown>,
    timeline: Vec<super::announcements::TimelineShown>,
    timeline_page: i64,
    timeline_more: bool,
}

#[derive(serde::Deserialize, Default)]
struct HomeQuery {
    #[serde(default)]
    page: String,
}

/// `GET /home?page=`: the page number is the timeline's.
async fn home(
    State(state): State<AppState>,
    signed: Signed,
    Query(q): Query<HomeQuery>,
) -> Result<Response, ApiError> {
    let actor = &signed.session.actor;
    let t = signed.ctx.tr.clone();
    let store = &state.store;
    // The parts many people share come from memory (see `home_cache`).
    let cache = &state.home;
    let establishment = cache
        .establishment_name(store, actor.establishment_id)
        .await?
        .to_string();
    let (pupil_class, pupil_teachers) = match actor.class_id.filter(|_| actor.is(Role::Pupil)) {
        Some(c) => {
            let entry = cache.class(store, c).await?;
            (entry.class.clone(), entry.teachers.clone())
        }
        None => (None, vec![]),
    };
    let children = if actor.is(Role::Parent) {
        cache.children(store, actor.person_id).await?.to_vec()
    } else {
        vec![]
    };
    let teachings = if actor.is(Role::Teacher) {
        store.teachings_of(actor.person_id).await?
    } else {
        vec![]
    };
    let classes = if actor.is(Role::Staff) {
        store
            .list_classes(&ClassScope::Establishment(actor.establishment_id))
            .await?
    } else {
        vec![]
    };
    let timeline_page = q.page.trim().parse::<i64>().unwrap_or(1).clamp(1, 10_000);
    let (timeline, timeline_more, unread) =
        super::announcements::timeline_page(&state, &signed, timeline_page).await?;
    let scope = ardoise_core::messaging::announcement_scope(actor);
    let current = cache
        .current_announcements(store, &scope, state.now(), 5)
        .await?;
    let announcements = super::announcements::shown(&signed.ctx.tr, &signed, state.now(), &current);
    let today = chrono::DateTime::from_timestamp(state.now(), 0)
        .map(|d| d.format("%d/%m/%Y").to_string())
        .unwrap_or_default();
    let page = HomePage {
        nav: Nav::signed(t.get("home-title"), &signed.session),
        first_name: signed.session.first_name.clone(),
        roles: actor.roles.iter().map(|r| role_label(&t, r)).collect(),
        establishment,
        today,
        pupil_class,
        pupil_teachers,
        is_parent: actor.is(Role::Parent),
        children,
        is_teacher: actor.is(Role::Teacher),
        teachings,
        is_staff: actor.is(Role::Staff),
        classes,
        is_admin: actor.is(Role::Admin),
        unread,
        announcements,
        timeline,
        timeline_page,
        timeline_more,
        t,
    };
    Ok(render(&page))
}

#[derive(Template)]
#[template(path = "class.html")]
struct ClassPage {
    t: Tr,
    nav: Nav,
    class: ClassView,
    teachers: Vec<ClassTeacherView>,
    pupils: Option<Vec<PersonSummary>>,
}

/// `GET /classes/{id}`: the class, its teachers, and its pupils for those
/// who may see the roster. A class one may not see is "not found".
async fn class_page(
    State(state): State<AppState>,
    signed: Signed,
    Path(id): Path<i64>,
) -> Result<Response, ApiError> {
    let class = state
        .store
        .find_class(ClassId(id))
        .await?
        .ok_or(ApiError::NotFound)?;
    let r = class.policy_ref();
    if !policy::may_read_class(&signed.session.actor, r) {
        return Err(ApiError::NotFound);
    }
    let pupils = if policy::may_read_class_roster(&signed.session.actor, r) {
        Some(state.store.class_pupils(class.id).await?)
    } else {
        None
    };
    let teachers = state.store.class_teachers(class.id).await?;
    let t = signed.ctx.tr.clone();
    let page = ClassPage {
        nav: Nav::signed(class.name.clone(), &signed.session),
        t,
        class,
        teachers,
        pupils,
    };
    Ok(render(&page))
}
