//! One's own account: password change, sessions, "sign out everywhere".

use super::signin::error_message;
use super::RouteTable;
use crate::auth;
use crate::error::ApiError;
use crate::extract::{FormIn, Signed};
use crate::i18n::Tr;
use crate::pages::{render, Nav};
use crate::state::AppState;
use askama::Template;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

/// This module's routes.
pub fn routes() -> RouteTable {
    RouteTable::default()
        .get("/account", account_page)
        .post("/account/password", change_password)
        .post("/account/sessions/{id}/revoke", revoke_session)
        .post("/account/sessions/revoke-others", revoke_others)
}

/// A session as the account page lists it.
pub struct SessionRow {
    pub id: i64,
    pub device: String,
    pub created: String,
    pub last_seen: String,
    pub remembered: bool,
    pub current: bool,
}

#[derive(Template)]
#[template(path = "account.html")]
struct AccountPage {
    t: Tr,
    nav: Nav,
    csrf: String,
    login: String,
    sessions: Vec<SessionRow>,
    error: Option<String>,
    notice: Option<String>,
}

async fn page(
    state: &AppState,
    signed: &Signed,
    error: Option<String>,
    notice: Option<String>,
) -> Result<AccountPage, ApiError> {
    let t = signed.ctx.tr.clone();
    let records = state
        .store
        .sessions_of(signed.session.person_id(), state.now())
        .await?;
    let sessions = records
        .into_iter()
        .map(|r| SessionRow {
            id: r.id,
            device: if r.user_agent.is_empty() {
                t.get("account-unknown-device")
            } else {
                r.user_agent.chars().take(80).collect()
            },
            created: t.datetime(r.created_at),
            last_seen: t.datetime(r.last_seen_at),
            remembered: r.remembered,
            current: r.token_hash == signed.session.token_hash,
        })
        .collect();
    Ok(AccountPage {
        nav: Nav::signed(t.get("account-title"), &signed.session),
        t,
        csrf: signed.session.csrf_token.clone(),
        login: signed.session.login.clone(),
        sessions,
        error,
        notice,
    })
}

/// `GET /account`.
async fn account_page(State(state): State<AppState>, signed: Signed) -> Result<Response, ApiError> {
    Ok(render(&page(&state, &signed, None, None).await?))
}

#[derive(Deserialize)]
struct PasswordForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    current: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    confirm: String,
}

/// `POST /account/password`.
async fn change_password(
    State(state): State<AppState>,
    signed: Signed,
    FormIn(form): FormIn<PasswordForm>,
) -> Result<Response, ApiError> {
    signed.check_csrf(&form.csrf)?;
    match auth::change_password(
        &state,
        &signed.session,
        &form.current,
        &form.password,
        &form.confirm,
    )
    .await
    {
        Ok(()) => {
            let notice = signed.ctx.tr.get("account-password-changed");
            Ok(render(&page(&state, &signed, None, Some(notice)).await?))
        }
        Err(e @ (ApiError::Invalid(_) | ApiError::Throttled(_))) => {
            let msg = error_message(&signed.ctx.tr, &e);
            Ok((
                e.status(),
                render(&page(&state, &signed, Some(msg), None).await?),
            )
                .into_response())
        }
        Err(e) => Err(e),
    }
}

#[derive(Deserialize)]
struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

/// `POST /account/sessions/{id}/revoke`: ends one of one's sessions.
async fn revoke_session(
    State(state): State<AppState>,
    signed: Signed,
    Path(id): Path<i64>,
    FormIn(form): FormIn<CsrfForm>,
) -> Result<Response, ApiError> {
    signed.check_csrf(&form.csrf)?;
    let hash = state
        .store
        .delete_session_of(signed.session.person_id(), id)
        .await?
        .ok_or(ApiError::NotFound)?;
    state.sessions.remove_hash(&hash);
    if hash == signed.session.token_hash {
        return Ok(Redirect::to("/login").into_response());
    }
    Ok(Redirect::to("/account").into_response())
}

/// `POST /account/sessions/revoke-others`: signs out everywhere else.
async fn revoke_others(
    State(state): State<AppState>,
    signed: Signed,
    FormIn(form): FormIn<CsrfForm>,
) -> Result<Response, ApiError> {
    signed.check_csrf(&form.csrf)?;
    auth::end_sessions_of(
        &state,
        signed.session.person_id(),
        Some(&signed.session.token_hash),
    )
    .await?;
    Ok(Redirect::to("/account").into_response())
}
