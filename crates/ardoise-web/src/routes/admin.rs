//! The administrator console: establishments, classes, accounts (create,
//! deactivate, activation codes and first-login letters), live sessions,
//! and the audit log. Every action here is written to the audit log.

use super::RouteTable;
use crate::auth;
use crate::error::ApiError;
use crate::extract::{FormIn, Signed};
use crate::i18n::Tr;
use crate::pages::{render, role_label, Nav};
use crate::state::AppState;
use ardoise_core::policy::{self, ClassScope};
use ardoise_core::{login_base, ClassId, EstablishmentId, PersonId, Role, Roles};
use ardoise_store::{
    AccountStatus, ActiveSessionView, AuditEntry, ChildView, ClassView, Establishment,
    PeopleFilter, PersonInsertForm, PersonSummary, SessionRecord, TeachingView,
};
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

/// This module's routes.
pub fn routes() -> RouteTable {
    RouteTable::default()
        .get("/admin", overview)
        .post("/admin/establishments", create_establishment)
        .get("/admin/establishments/{id}", establishment_page)
        .post("/admin/establishments/{id}/classes", create_class)
        .get("/admin/accounts", accounts_page)
        .post("/admin/accounts", create_account)
        .get("/admin/accounts/{id}", account_page)
        .post("/admin/accounts/{id}/status", set_status)
        .post("/admin/accounts/{id}/activation-code", reset_code)
        .post("/admin/accounts/{id}/sessions/revoke", revoke_sessions)
        .post("/admin/classes/{id}/letters", class_letters)
        .get("/admin/sessions", sessions_page)
}

/// The signed-in administrator; 403 for anyone else.
struct Admin(Signed);

impl Admin {
    /// The administrator posting a form, with its anti-CSRF token checked.
    fn posting(signed: Signed, csrf: &str) -> Result<Admin, ApiError> {
        let a = Admin::check(signed)?;
        a.0.check_csrf(csrf)?;
        Ok(a)
    }
    fn check(signed: Signed) -> Result<Admin, ApiError> {
        if policy::may_administer(&signed.session.actor) {
            Ok(Admin(signed))
        } else {
            Err(ApiError::Forbidden)
        }
    }
    fn t(&self) -> Tr {
        self.0.ctx.tr.clone()
    }
    fn nav(&self, key: &str) -> Nav {
        Nav::signed(self.0.ctx.tr.get(key), &self.0.session)
    }
    fn csrf(&self) -> String {
        self.0.session.csrf_token.clone()
    }
    fn id(&self) -> PersonId {
        self.0.session.person_id()
    }
}

fn clean_name(s: &str, max: usize) -> Result<String, ApiError> {
    let s = s.trim();
    if s.is_empty() || s.chars().count() > max || s.chars().any(char::is_control) {
        return Err(ApiError::Invalid("name_invalid"));
    }
    Ok(s.to_string())
}

/// A UAI (RNE) code: seven digits and a letter, such as `0750001A`.
fn clean_uai(s: &str) -> Result<String, ApiError> {
    let s = s.trim().to_ascii_uppercase();
    let b = s.as_bytes();
    if b.len() == 8 && b[..7].iter().all(u8::is_ascii_digit) && b[7].is_ascii_uppercase() {
        Ok(s)
    } else {
        Err(ApiError::Invalid("uai_invalid"))
    }
}

fn parse_id(s: &str) -> Result<i64, ApiError> {
    s.trim()
        .parse::<i64>()
        .map_err(|_| ApiError::Invalid("id_invalid"))
}

/// An establishment with its head counts.
pub struct EstablishmentRow {
    pub e: Establishment,
    pub pupils: i64,
    pub teachers: i64,
    pub parents: i64,
}

#[derive(Template)]
#[template(path = "admin/overview.html")]
struct OverviewPage {
    t: Tr,
    nav: Nav,
    csrf: String,
    establishments: Vec<EstablishmentRow>,
    live_sessions: i64,
    audit: Vec<AuditEntry>,
}

/// `GET /admin`.
async fn overview(State(state): State<AppState>, signed: Signed) -> Result<Response, ApiError> {
    let a = Admin::check(signed)?;
    let mut establishments = Vec::new();
    for e in state.store.list_establishments().await? {
        let count = |role| PeopleFilter {
            establishment_id: Some(e.id),
            role: Some(role),
            ..Default::default()
        };
        establishments.push(EstablishmentRow {
            pupils: state.store.count_people(&count(Role::Pupil)).await?,
            teachers: state.store.count_people(&count(Role::Teacher)).await?,
            parents: state.store.count_people(&count(Role::Parent)).await?,
            e,
        });
    }
    let page = OverviewPage {
        nav: a.nav("admin-title"),
        csrf: a.csrf(),
        t: a.t(),
        establishments,
        live_sessions: state.store.count_active_sessions(state.now()).await?,
        audit: state.store.list_audit(20).await?,
    };
    Ok(render(&page))
}

#[derive(Deserialize)]
struct EstablishmentForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    uai: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    city: String,
}

/// `POST /admin/establishments`.
async fn create_establishment(
    State(state): State<AppState>,
    signed: Signed,
    FormIn(f): FormIn<EstablishmentForm>,
) -> Result<Response, ApiError> {
    let a = Admin::posting(signed, &f.csrf)?;
    let uai = clean_uai(&f.uai)?;
    let name = clean_name(&f.name, 120)?;
    let city = if f.city.trim().is_empty() {
        String::new()
    } else {
        clean_name(&f.city, 80)?
    };
    let now = state.now();
    let id = state
        .store
        .create_establishment(&uai, &name, &city, now)
        .await?;
    let (label, starts, ends) = ardoise_core::clock::school_year_for(now);
    state
        .store
        .create_school_year(id, &label, &starts, &ends)
        .await?;
    state
        .store
        .record_audit(now, Some(a.id()), "establishment_created", &uai, &name)
        .await?;
    Ok(Redirect::to(&format!("/admin/establishments/{id}")).into_response())
}

#[derive(Template)]
#[template(path = "admin/establishment.html")]
struct EstablishmentPage {
    t: Tr,
    nav: Nav,
    csrf: String,
    e: Establishment,
    year: String,
    classes: Vec<ClassView>,
}

/// `GET /admin/establishments/{id}`.
async fn establishment_page(
    State(state): State<AppState>,
    signed: Signed,
    Path(id): Path<i64>,
) -> Result<Response, ApiError> {
    let a = Admin::check(signed)?;
    let e = state
        .store
        .find_establishment(EstablishmentId(id))
        .await?
        .ok_or(ApiError::NotFound)?;
    let year = state
        .store
        .current_school_year(e.id)
        .await?
        .map(|y| y.label)
        .unwrap_or_default();
    let classes = state
        .store
        .list_classes(&ClassScope::Establishment(e.id))
        .await?;
    let page = EstablishmentPage {
        nav: Nav::signed(e.name.clone(), &a.0.session),
        csrf: a.csrf(),
        t: a.t(),
        e,
        year,
        classes,
    };
    Ok(render(&page))
}

#[derive(Deserialize)]
struct ClassForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    level: String,
}

/// `POST /admin/establishments/{id}/classes`.
async fn create_class(
    State(state): State<AppState>,
    signed: Signed,
    Path(id): Path<i64>,
    FormIn(f): FormIn<ClassForm>,
) -> Result<Response, ApiError> {
    let a = Admin::posting(signed, &f.csrf)?;
    let e = state
        .store
        .find_establishment(EstablishmentId(id))
        .await?
        .ok_or(ApiError::NotFound)?;
    let name = clean_name(&f.name, 40)?;
    let level = f.level.trim().chars().take(20).collect::<String>();
    let year = match state.store.current_school_year(e.id).await? {
        Some(y) => y.id,
        None => {
            let (label, starts, ends) = ardoise_core::clock::school_year_for(state.now());
            state
                .store
                .create_school_year(e.id, &label, &starts, &ends)
                .await?
        }
    };
    state.store.create_class(e.id, year, &name, &level).await?;
    state
        .store
        .record_audit(state.now(), Some(a.id()), "class_created", &e.uai, &name)
        .await?;
    Ok(Redirect::to(&format!("/admin/establishments/{id}")).into_response())
}

#[derive(Deserialize, Default)]
struct AccountsQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    establishment: String,
    #[serde(default)]
    page: String,
}

#[derive(Template)]
#[template(path = "admin/accounts.html")]
struct AccountsPage {
    t: Tr,
    nav: Nav,
    csrf: String,
    q: String,
    role: String,
    role_options: Vec<(String, String, bool)>,
    establishment: String,
    establishments: Vec<Establishment>,
    classes: Vec<ClassView>,
    people: Vec<PersonRow>,
    total: i64,
    page: i64,
    pages: i64,
}

/// A person in the accounts list.
pub struct PersonRow {
    pub p: PersonSummary,
    pub roles: String,
    pub status: String,
}

const PAGE_SIZE: i64 = 50;

fn person_row(t: &Tr, p: PersonSummary) -> PersonRow {
    let roles = p
        .roles
        .iter()
        .map(|r| role_label(t, r))
        .collect::<Vec<_>>()
        .join(", ");
    let status = t.get(&format!("status-{}", p.status.as_str()));
    PersonRow { p, roles, status }
}

/// `GET /admin/accounts`: search and filter accounts, 50 a page.
async fn accounts_page(
    State(state): State<AppState>,
    signed: Signed,
    Query(q): Query<AccountsQuery>,
) -> Result<Response, ApiError> {
    let a = Admin::check(signed)?;
    let t = a.t();
    let page = q.page.parse::<i64>().unwrap_or(1).max(1);
    let establishment_id = q.establishment.parse::<i64>().ok().map(EstablishmentId);
    let filter = PeopleFilter {
        establishment_id,
        query: q.q.chars().take(100).collect(),
        role: Role::parse(&q.role),
        class_id: None,
        limit: PAGE_SIZE,
        offset: (page - 1) * PAGE_SIZE,
    };
    let total = state.store.count_people(&filter).await?;
    let people = state
        .store
        .list_people(&filter)
        .await?
        .into_iter()
        .map(|p| person_row(&t, p))
        .collect();
    let establishments = state.store.list_establishments().await?;
    let classes = match establishment_id.or(establishments.first().map(|e| e.id)) {
        Some(e) => {
            state
                .store
                .list_classes(&ClassScope::Establishment(e))
                .await?
        }
        None => vec![],
    };
    let role_options = Role::ALL
        .iter()
        .map(|r| {
            (
                r.as_str().to_string(),
                role_label(&t, *r),
                q.role == r.as_str(),
            )
        })
        .collect();
    let page = AccountsPage {
        role_options,
        nav: a.nav("admin-accounts-title"),
        csrf: a.csrf(),
        t,
        q: filter.query.clone(),
        role: q.role.clone(),
        establishment: q.establishment.clone(),
        establishments,
        classes,
        people,
        total,
        page,
        pages: (total + PAGE_SIZE - 1) / PAGE_SIZE,
    };
    Ok(render(&page))
}

#[derive(Deserialize)]
struct AccountForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    establishment_id: String,
    #[serde(default)]
    first_name: String,
    #[serde(default)]
    last_name: String,
    #[serde(default)]
    title: String,
    #[serde(default)]
    class_id: String,
    role_pupil: Option<String>,
    role_parent: Option<String>,
    role_teacher: Option<String>,
    role_staff: Option<String>,
    role_admin: Option<String>,
}

/// A first-login letter.
pub struct Letter {
    pub name: String,
    pub login: String,
    pub code: String,
    pub detail: String,
}

#[derive(Template)]
#[template(path = "admin/letters.html")]
struct LettersPage {
    t: Tr,
    nav: Nav,
    establishment: String,
    letters: Vec<Letter>,
    expires: String,
}

/// `POST /admin/accounts`: creates an account waiting for activation and
/// shows its first-login letter.
async fn create_account(
    State(state): State<AppState>,
    signed: Signed,
    FormIn(f): FormIn<AccountForm>,
) -> Result<Response, ApiError> {
    let a = Admin::posting(signed, &f.csrf)?;
    let e = state
        .store
        .find_establishment(EstablishmentId(parse_id(&f.establishment_id)?))
        .await?
        .ok_or(ApiError::Invalid("establishment_unknown"))?;
    let first_name = clean_name(&f.first_name, 100)?;
    let last_name = clean_name(&f.last_name, 100)?;
    let roles: Roles = [
        (f.role_pupil.is_some(), Role::Pupil),
        (f.role_parent.is_some(), Role::Parent),
        (f.role_teacher.is_some(), Role::Teacher),
        (f.role_staff.is_some(), Role::Staff),
        (f.role_admin.is_some(), Role::Admin),
    ]
    .into_iter()
    .filter_map(|(on, r)| on.then_some(r))
    .collect();
    if roles.is_empty() {
        return Err(ApiError::Invalid("roles_missing"));
    }
    let class = if roles.has(Role::Pupil) {
        let c = state
            .store
            .find_class(ClassId(
                parse_id(&f.class_id).map_err(|_| ApiError::Invalid("class_missing"))?,
            ))
            .await?;
        Some(
            c.filter(|c| c.establishment_id == e.id)
                .ok_or(ApiError::Invalid("class_missing"))?,
        )
    } else {
        None
    };
    let base = login_base(&first_name, &last_name);
    if base.len() < 3 {
        return Err(ApiError::Invalid("name_invalid"));
    }
    let login = state.store.free_login(&base).await?;
    let now = state.now();
    let form = PersonInsertForm {
        establishment_id: e.id,
        login: login.clone(),
        first_name: first_name.clone(),
        last_name: last_name.clone(),
        roles,
        title: f.title.trim().chars().take(60).collect(),
        status: AccountStatus::Pending,
        password_hash: None,
        created_at: now,
    };
    let id = state.store.create_person(&form).await?;
    if let Some(c) = &class {
        state.store.set_pupil_class(id, c.id).await?;
    }
    state
        .store
        .record_audit(now, Some(a.id()), "account_created", login.as_str(), "")
        .await?;
    let code = auth::reset_activation_code(&state, id, Some(a.id())).await?;
    let t = a.t();
    let letters = vec![Letter {
        name: format!("{first_name} {}", last_name.to_uppercase()),
        login: login.to_string(),
        code,
        detail: class.map(|c| c.name).unwrap_or_default(),
    }];
    let expires = t.datetime(now + state.config.activation_days * 86400);
    Ok(render(&LettersPage {
        nav: a.nav("letters-title"),
        t,
        establishment: e.name,
        letters,
        expires,
    }))
}

#[derive(Template)]
#[template(path = "admin/account.html")]
struct AccountPage {
    t: Tr,
    nav: Nav,
    csrf: String,
    p: PersonRow,
    children: Vec<ChildView>,
    parents: Vec<PersonSummary>,
    teachings: Vec<TeachingView>,
    sessions: Vec<SessionRecord>,
    active: bool,
}

/// `GET /admin/accounts/{id}`.
async fn account_page(
    State(state): State<AppState>,
    signed: Signed,
    Path(id): Path<i64>,
) -> Result<Response, ApiError> {
    let a = Admin::check(signed)?;
    let t = a.t();
    let p = state
        .store
        .find_person(PersonId(id))
        .await?
        .ok_or(ApiError::NotFound)?;
    let children = state.store.children_of(p.id).await?;
    let parents = if p.roles.has(Role::Pupil) {
        state.store.parents_of(p.id).await?
    } else {
        vec![]
    };
    let teachings = state.store.teachings_of(p.id).await?;
    let sessions = state.store.sessions_of(p.id, state.now()).await?;
    let active = p.status != AccountStatus::Disabled;
    let page = AccountPage {
        nav: Nav::signed(p.display_name(), &a.0.session),
        csrf: a.csrf(),
        p: person_row(&t, p),
        t,
        children,
        parents,
        teachings,
        sessions,
        active,
    };
    Ok(render(&page))
}

#[derive(Deserialize)]
struct StatusForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    enabled: String,
}

/// `POST /admin/accounts/{id}/status`: enables or disables an account; a
/// disabled account is signed out at once.
async fn set_status(
    State(state): State<AppState>,
    signed: Signed,
    Path(id): Path<i64>,
    FormIn(f): FormIn<StatusForm>,
) -> Result<Response, ApiError> {
    let a = Admin::posting(signed, &f.csrf)?;
    let enabled = match f.enabled.as_str() {
        "1" | "true" => true,
        "0" | "false" => false,
        _ => return Err(ApiError::Invalid("status_invalid")),
    };
    let person = PersonId(id);
    if !enabled && person == a.id() {
        return Err(ApiError::Invalid("cannot_disable_self"));
    }
    state.store.set_status(person, enabled).await?;
    if !enabled {
        auth::end_sessions_of(&state, person, None).await?;
    }
    state.sessions.forget_person(person);
    let action = if enabled {
        "account_enabled"
    } else {
        "account_disabled"
    };
    state
        .store
        .record_audit(state.now(), Some(a.id()), action, &id.to_string(), "")
        .await?;
    Ok(Redirect::to(&format!("/admin/accounts/{id}")).into_response())
}

#[derive(Deserialize)]
struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

/// `POST /admin/accounts/{id}/activation-code`: a new code and its letter;
/// the account must activate again (for a forgotten password too).
async fn reset_code(
    State(state): State<AppState>,
    signed: Signed,
    Path(id): Path<i64>,
    FormIn(f): FormIn<CsrfForm>,
) -> Result<Response, ApiError> {
    let a = Admin::posting(signed, &f.csrf)?;
    let p = state
        .store
        .find_person(PersonId(id))
        .await?
        .ok_or(ApiError::NotFound)?;
    if p.status == AccountStatus::Disabled {
        return Err(ApiError::Invalid("account_disabled"));
    }
    let code = auth::reset_activation_code(&state, p.id, Some(a.id())).await?;
    let e = state
        .store
        .find_establishment(p.establishment_id)
        .await?
        .map(|e| e.name)
        .unwrap_or_default();
    let t = a.t();
    let expires = t.datetime(state.now() + state.config.activation_days * 86400);
    let letters = vec![Letter {
        name: p.display_name(),
        login: p.login.clone(),
        code,
        detail: p.class_name.clone().unwrap_or_default(),
    }];
    Ok(render(&LettersPage {
        nav: a.nav("letters-title"),
        t,
        establishment: e,
        letters,
        expires,
    }))
}

/// `POST /admin/accounts/{id}/sessions/revoke`: signs a person out everywhere.
async fn revoke_sessions(
    State(state): State<AppState>,
    signed: Signed,
    Path(id): Path<i64>,
    FormIn(f): FormIn<CsrfForm>,
) -> Result<Response, ApiError> {
    let a = Admin::posting(signed, &f.csrf)?;
    let n = auth::end_sessions_of(&state, PersonId(id), None).await?;
    state
        .store
        .record_audit(
            state.now(),
            Some(a.id()),
            "sessions_revoked",
            &id.to_string(),
            &n.to_string(),
        )
        .await?;
    Ok(Redirect::to(&format!("/admin/accounts/{id}")).into_response())
}

/// `POST /admin/classes/{id}/letters`: new activation codes and printable
/// letters for every pupil of a class who has not activated yet, and for
/// their parents who have not either (September's first-login letters).
async fn class_letters(
    State(state): State<AppState>,
    signed: Signed,
    Path(id): Path<i64>,
    FormIn(f): FormIn<CsrfForm>,
) -> Result<Response, ApiError> {
    let a = Admin::posting(signed, &f.csrf)?;
    let class = state
        .store
        .find_class(ClassId(id))
        .await?
        .ok_or(ApiError::NotFound)?;
    let t = a.t();
    let mut letters = Vec::new();
    for pupil in state.store.class_pupils(class.id).await? {
        if pupil.status == AccountStatus::Pending {
            let code = auth::reset_activation_code(&state, pupil.id, Some(a.id())).await?;
            letters.push(Letter {
                name: pupil.display_name(),
                login: pupil.login.clone(),
                code,
                detail: class.name.clone(),
            });
        }
        for parent in state.store.parents_of(pupil.id).await? {
            if parent.status == AccountStatus::Pending {
                let code = auth::reset_activation_code(&state, parent.id, Some(a.id())).await?;
                let detail = t.with("letters-parent-of", &[("child", &pupil.display_name())]);
                letters.push(Letter {
                    name: parent.display_name(),
                    login: parent.login.clone(),
                    code,
                    detail,
                });
            }
        }
    }
    let e = state
        .store
        .find_establishment(class.establishment_id)
        .await?
        .map(|e| e.name)
        .unwrap_or_default();
    let expires = t.datetime(state.now() + state.config.activation_days * 86400);
    Ok(render(&LettersPage {
        nav: a.nav("letters-title"),
        t,
        establishment: e,
        letters,
        expires,
    }))
}

#[derive(Template)]
#[template(path = "admin/sessions.html")]
struct SessionsPage {
    t: Tr,
    nav: Nav,
    total: i64,
    sessions: Vec<ActiveSessionView>,
}

/// `GET /admin/sessions`: who is connected, most recent first.
async fn sessions_page(
    State(state): State<AppState>,
    signed: Signed,
) -> Result<Response, ApiError> {
    let a = Admin::check(signed)?;
    let now = state.now();
    let page = SessionsPage {
        nav: a.nav("admin-sessions-title"),
        t: a.t(),
        total: state.store.count_active_sessions(now).await?,
        sessions: state.store.list_active_sessions(now, 200).await?,
    };
    Ok(render(&page))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uai_codes_are_seven_digits_and_a_letter() {
        assert_eq!(clean_uai(" 0750001a ").ok(), Some("0750001A".to_string()));
        for bad in ["", "075001A", "07500011", "0750001AB", "O750001A"] {
            assert!(clean_uai(bad).is_err(), "{bad}");
        }
    }
}
