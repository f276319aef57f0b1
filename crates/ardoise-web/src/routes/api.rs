//! The JSON API under `/api/v1`, described by the OpenAPI document served
//! at `/api/v1/openapi.json`. Same rules as the pages: the same services,
//! the same policy, the same errors (as `{"error", "message"}`).
//!
//! Non-browser clients authenticate with `Authorization: Bearer <token>`
//! (the token `POST /api/v1/session` returns); browsers use the session
//! cookie. Cookie-authenticated writes need a JSON body, which another site
//! cannot send without a CORS preflight we never grant.

use super::RouteTable;
use crate::auth;
use crate::error::ApiError;
use crate::extract::{Ctx, JsonIn, Signed, SESSION_COOKIE};
use crate::state::AppState;
use ardoise_core::policy::{self, ClassRef};
use ardoise_core::{ClassId, PersonId, Role};
use ardoise_store::{ClassView, PersonSummary};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use axum_extra::extract::cookie::Cookie;
use serde::{Deserialize, Serialize};
use utoipa::{OpenApi, ToSchema};

/// This module's routes.
pub fn routes() -> RouteTable {
    RouteTable::default()
        .post("/api/v1/session", create_session)
        .delete("/api/v1/session", delete_session)
        .get("/api/v1/me", me)
        .get("/api/v1/me/sessions", my_sessions)
        .get("/api/v1/children", children)
        .get("/api/v1/classes", list_classes)
        .get("/api/v1/classes/{id}", class)
        .get("/api/v1/classes/{id}/pupils", class_pupils)
        .get("/api/v1/people/{id}", person)
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Ardoise API",
        version = "1",
        description = "School digital workspace. Errors are {\"error\": code, \"message\": text}."
    ),
    paths(
        create_session,
        delete_session,
        me,
        my_sessions,
        children,
        list_classes,
        class,
        class_pupils,
        person
    ),
    components(schemas(
        SessionIn,
        SessionOut,
        MeOut,
        PersonOut,
        ClassOut,
        SessionInfoOut,
        ErrorOut
    ))
)]
struct ApiDoc;

/// The OpenAPI document.
pub fn openapi_document() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    doc.merge(super::diary::DiaryApiDoc::openapi());
    doc.merge(super::work::WorkApiDoc::openapi());
    // Documents (issue 5).
    doc.merge(super::documents::DocumentsApiDoc::openapi());
    doc.merge(super::messages::MessagesApiDoc::openapi());
    doc.merge(super::announcements::AnnouncementsApiDoc::openapi());
    doc
}

/// An error.
#[derive(Serialize, ToSchema)]
pub struct ErrorOut {
    /// Stable snake_case code.
    pub error: String,
    /// Message in the caller's language.
    pub message: String,
}

/// Sign-in request.
#[derive(Deserialize, ToSchema)]
pub struct SessionIn {
    pub login: String,
    pub password: String,
    /// Keep the session 30 days instead of 12 hours.
    #[serde(default)]
    pub remember: bool,
}

/// A person, as far as the caller may see them.
#[derive(Serialize, ToSchema)]
pub struct PersonOut {
    pub id: i64,
    pub first_name: String,
    pub last_name: String,
    /// `pupil`, `parent`, `teacher`, `staff`, `admin`.
    pub roles: Vec<String>,
    pub class_id: Option<i64>,
    pub class_name: Option<String>,
}

impl From<PersonSummary> for PersonOut {
    fn from(p: PersonSummary) -> Self {
        PersonOut {
            id: p.id.0,
            first_name: p.first_name,
            last_name: p.last_name,
            roles: p.roles.iter().map(|r| r.as_str().to_string()).collect(),
            class_id: p.class_id.map(|c| c.0),
            class_name: p.class_name,
        }
    }
}

/// The caller.
#[derive(Serialize, ToSchema)]
pub struct MeOut {
    pub id: i64,
    pub login: String,
    pub first_name: String,
    pub last_name: String,
    pub roles: Vec<String>,
    pub establishment_id: i64,
    /// As a pupil: their class.
    pub class_id: Option<i64>,
    /// As a parent: their children's ids.
    pub children: Vec<i64>,
    /// As a teacher: the classes they teach.
    pub taught_classes: Vec<i64>,
}

/// A new session.
#[derive(Serialize, ToSchema)]
pub struct SessionOut {
    /// Bearer token for non-browser clients; also set as a cookie.
    pub token: String,
    /// Unix time of expiry.
    pub expires_at: i64,
    pub me: MeOut,
}

/// A class.
#[derive(Serialize, ToSchema)]
pub struct ClassOut {
    pub id: i64,
    pub establishment_id: i64,
    pub name: String,
    pub level: String,
    pub pupil_count: i64,
}

impl From<ClassView> for ClassOut {
    fn from(c: ClassView) -> Self {
        ClassOut {
            id: c.id.0,
            establishment_id: c.establishment_id.0,
            name: c.name,
            level: c.level,
            pupil_count: c.pupil_count,
        }
    }
}

/// One of the caller's sessions.
#[derive(Serialize, ToSchema)]
pub struct SessionInfoOut {
    pub id: i64,
    pub created_at: i64,
    pub last_seen_at: i64,
    pub expires_at: i64,
    pub remembered: bool,
    pub user_agent: String,
    pub current: bool,
}

fn me_out(s: &crate::session::LiveSession) -> MeOut {
    let a = &s.actor;
    MeOut {
        id: a.person_id.0,
        login: s.login.clone(),
        first_name: s.first_name.clone(),
        last_name: s.last_name.clone(),
        roles: a.roles.iter().map(|r| r.as_str().to_string()).collect(),
        establishment_id: a.establishment_id.0,
        class_id: a.class_id.map(|c| c.0),
        children: a.children.iter().map(|c| c.pupil_id.0).collect(),
        taught_classes: a.taught_classes.iter().map(|c| c.0).collect(),
    }
}

/// Sign in.
#[utoipa::path(post, path = "/api/v1/session", request_body = SessionIn,
    responses((status = 201, body = SessionOut), (status = 401, body = ErrorOut), (status = 429, body = ErrorOut),
        (status = 503, description = "Refused under load (`overloaded`, with `Retry-After`), or others wait in line (`queued`, with the place and ticket)")))]
async fn create_session(
    State(state): State<AppState>,
    ctx: Ctx,
    in_line: Option<axum::Extension<crate::surge::InLine>>,
    headers: HeaderMap,
    JsonIn(body): JsonIn<SessionIn>,
) -> Result<Response, ApiError> {
    let new = auth::sign_in(
        &state,
        &body.login,
        &body.password,
        body.remember,
        &auth::ClientInfo {
            in_line: in_line.is_some(),
            ..super::signin::client_info(&headers)
        },
    )
    .await?;
    let out = SessionOut {
        token: new.token.clone(),
        expires_at: new.session.expires_at,
        me: me_out(&new.session),
    };
    let jar = ctx.jar.clone().add(super::signin::session_cookie(
        &new,
        state.config.secure_cookies,
    ));
    Ok((StatusCode::CREATED, jar, Json(out)).into_response())
}

/// Sign out (ends the session of the token or cookie used).
#[utoipa::path(delete, path = "/api/v1/session", responses((status = 204), (status = 401, body = ErrorOut)))]
async fn delete_session(
    State(state): State<AppState>,
    signed: Signed,
) -> Result<Response, ApiError> {
    auth::end_session(&state, &signed.session.token_hash).await?;
    let jar = signed
        .ctx
        .jar
        .clone()
        .remove(Cookie::build(SESSION_COOKIE).path("/"));
    Ok((StatusCode::NO_CONTENT, jar).into_response())
}

/// Who the caller is.
#[utoipa::path(get, path = "/api/v1/me", responses((status = 200, body = MeOut), (status = 401, body = ErrorOut)))]
async fn me(signed: Signed) -> Json<MeOut> {
    Json(me_out(&signed.session))
}

/// The caller's live sessions.
#[utoipa::path(get, path = "/api/v1/me/sessions", responses((status = 200, body = [SessionInfoOut]), (status = 401, body = ErrorOut)))]
async fn my_sessions(
    State(state): State<AppState>,
    signed: Signed,
) -> Result<Json<Vec<SessionInfoOut>>, ApiError> {
    let list = state
        .store
        .sessions_of(signed.session.person_id(), state.now())
        .await?;
    Ok(Json(
        list.into_iter()
            .map(|r| SessionInfoOut {
                current: r.token_hash == signed.session.token_hash,
                id: r.id,
                created_at: r.created_at,
                last_seen_at: r.last_seen_at,
                expires_at: r.expires_at,
                remembered: r.remembered,
                user_agent: r.user_agent,
            })
            .collect(),
    ))
}

/// A parent's children (empty for others).
#[utoipa::path(get, path = "/api/v1/children", responses((status = 200, body = [PersonOut]), (status = 401, body = ErrorOut)))]
async fn children(
    State(state): State<AppState>,
    signed: Signed,
) -> Result<Json<Vec<PersonOut>>, ApiError> {
    if !signed.session.actor.is(Role::Parent) {
        return Ok(Json(vec![]));
    }
    let list = state.store.children_of(signed.session.person_id()).await?;
    Ok(Json(list.into_iter().map(|c| c.person.into()).collect()))
}

/// The classes the caller may see.
#[utoipa::path(get, path = "/api/v1/classes", responses((status = 200, body = [ClassOut]), (status = 401, body = ErrorOut)))]
async fn list_classes(
    State(state): State<AppState>,
    signed: Signed,
) -> Result<Json<Vec<ClassOut>>, ApiError> {
    let scope = policy::class_scope(&signed.session.actor);
    Ok(Json(
        state
            .store
            .list_classes(&scope)
            .await?
            .into_iter()
            .map(Into::into)
            .collect(),
    ))
}

async fn visible_class(
    state: &AppState,
    signed: &Signed,
    id: i64,
) -> Result<(ClassView, ClassRef), ApiError> {
    let c = state
        .store
        .find_class(ClassId(id))
        .await?
        .ok_or(ApiError::NotFound)?;
    let r = c.policy_ref();
    if !policy::may_read_class(&signed.session.actor, r) {
        // Not "forbidden": the caller may not even know the class exists.
        return Err(ApiError::NotFound);
    }
    Ok((c, r))
}

/// One class.
#[utoipa::path(get, path = "/api/v1/classes/{id}", params(("id" = i64, Path)),
    responses((status = 200, body = ClassOut), (status = 404, body = ErrorOut)))]
async fn class(
    State(state): State<AppState>,
    signed: Signed,
    Path(id): Path<i64>,
) -> Result<Json<ClassOut>, ApiError> {
    Ok(Json(visible_class(&state, &signed, id).await?.0.into()))
}

/// The pupils of a class (its teachers, its pupils, staff).
#[utoipa::path(get, path = "/api/v1/classes/{id}/pupils", params(("id" = i64, Path)),
    responses((status = 200, body = [PersonOut]), (status = 403, body = ErrorOut), (status = 404, body = ErrorOut)))]
async fn class_pupils(
    State(state): State<AppState>,
    signed: Signed,
    Path(id): Path<i64>,
) -> Result<Json<Vec<PersonOut>>, ApiError> {
    let (c, r) = visible_class(&state, &signed, id).await?;
    if !policy::may_read_class_roster(&signed.session.actor, r) {
        return Err(ApiError::Forbidden);
    }
    Ok(Json(
        state
            .store
            .class_pupils(c.id)
            .await?
            .into_iter()
            .map(Into::into)
            .collect(),
    ))
}

/// A person's directory card.
#[utoipa::path(get, path = "/api/v1/people/{id}", params(("id" = i64, Path)),
    responses((status = 200, body = PersonOut), (status = 404, body = ErrorOut)))]
async fn person(
    State(state): State<AppState>,
    signed: Signed,
    Path(id): Path<i64>,
) -> Result<Json<PersonOut>, ApiError> {
    let p = state
        .store
        .find_person(PersonId(id))
        .await?
        .ok_or(ApiError::NotFound)?;
    let r = p.policy_ref();
    if !policy::may_read_person(&signed.session.actor, r) {
        return Err(ApiError::NotFound);
    }
    Ok(Json(p.into()))
}
