//! Documents: a personal space per person, shared spaces per class, group
//! and establishment, folders, uploads, downloads by content URL, sharing,
//! the trash and quotas; HTML pages and their JSON twins.
//!
//! Every item is reached through [`load_folder`] or [`load_document`],
//! which load the folder chain and its shares and ask
//! `ardoise_core::documents::item_access`; anything one may not read is
//! "not found", whichever URL names it (page, content URL, folder, API).
//! Lists ("shared with me", search) apply the policy's audience in SQL.
//!
//! Durability: an upload's bytes are durable in the blob store (and
//! scanned, when a scanner is configured) before the rows naming them are
//! committed, all files of a form in one transaction with the quota check.

use super::RouteTable;
use crate::blob_response::{self, BlobMeta};
use crate::error::ApiError;
use crate::extract::{FormIn, JsonIn, Signed};
use crate::i18n::Tr;
use crate::pages::{render, Nav};
use crate::read_cache::ReadCache;
use crate::routes::work::size_label;
use crate::state::AppState;
use crate::upload::{read_form, Uploaded};
use ardoise_core::documents::{
    self as rules, item_access, space_access, Access, Colleague, ShareRef, ShareTarget, Space,
};
use ardoise_core::policy::Actor;
use ardoise_core::{ClassId, EstablishmentId, GroupId, PersonId, Role};
use ardoise_store::{DocumentInsert, DocumentView, FolderView, ItemKind, ShareView};
use askama::Template;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Arc;
use utoipa::{OpenApi, ToSchema};

/// This module's routes.
pub fn routes() -> RouteTable {
    RouteTable::default()
        .get("/documents", overview_page)
        .get("/documents/trash", trash_page)
        .get("/documents/spaces/{kind}/{id}", space_page)
        .get("/documents/folders/{id}", folder_page)
        .post("/documents/folders/{id}", folder_form)
        .post_upload("/documents/folders/{id}/upload", upload_form)
        .get("/documents/files/{id}", document_page)
        .post("/documents/files/{id}", document_form)
        .get("/documents/files/{id}/content/{hash}", download)
        .get("/api/v1/documents", api_overview)
        .get("/api/v1/documents/trash", api_trash)
        .get("/api/v1/documents/search", api_search)
        .get("/api/v1/documents/spaces/{kind}/{id}", api_space)
        .get("/api/v1/documents/folders/{id}", api_folder)
        .put("/api/v1/documents/folders/{id}", api_update_folder)
        .delete("/api/v1/documents/folders/{id}", api_trash_folder)
        .post("/api/v1/documents/folders/{id}/folders", api_create_folder)
        .post_upload("/api/v1/documents/folders/{id}/files", api_upload)
        .put("/api/v1/documents/folders/{id}/shares", api_share_folder)
        .get("/api/v1/documents/files/{id}", api_document)
        .put("/api/v1/documents/files/{id}", api_update_document)
        .delete("/api/v1/documents/files/{id}", api_trash_document)
        .put("/api/v1/documents/files/{id}/shares", api_share_document)
        .post("/api/v1/documents/folders/{id}/uploads", api_create_partial)
        .head("/api/v1/documents/uploads/{token}", api_partial_offset)
        .patch_upload("/api/v1/documents/uploads/{token}", api_partial_patch)
        .delete("/api/v1/documents/uploads/{token}", api_partial_cancel)
}

// ---------------------------------------------------------------- access

/// A folder chain (the item's folder first, the space's root last), the
/// shares on it and on the item, and what the caller may do.
struct Reach {
    chain: Vec<FolderView>,
    shares: Vec<ShareView>,
    access: Access,
}

fn share_refs<'a>(shares: impl IntoIterator<Item = &'a ShareView>) -> Vec<ShareRef> {
    shares
        .into_iter()
        .map(|s| ShareRef {
            target: s.target,
            write: s.write,
        })
        .collect()
}

impl Reach {
    /// What the caller may do with the folder `chain[i]` (shares on it and
    /// above it only; none on the document).
    fn access_at(&self, actor: &Actor, i: usize) -> Access {
        let Some(f) = self.chain.get(i) else {
            return Access::None;
        };
        let ids: Vec<i64> = self.chain[i..].iter().map(|f| f.id).collect();
        let refs = share_refs(
            self.shares
                .iter()
                .filter(|s| s.item_kind == ItemKind::Folder && ids.contains(&s.item_id)),
        );
        item_access(actor, f.space, &refs)
    }
}

/// Loads a folder's chain and decides. Trashed folders above it hide it;
/// the folder itself may be trashed only when `trashed_ok` (to restore).
async fn reach_folder(
    state: &AppState,
    actor: &Actor,
    folder_id: i64,
    document: Option<&DocumentView>,
) -> Result<Reach, ApiError> {
    let chain = state.store.folder_chain(folder_id).await?;
    let Some(first) = chain.first() else {
        return Err(ApiError::NotFound);
    };
    let ids: Vec<i64> = chain.iter().map(|f| f.id).collect();
    let shares = state.store.shares_on(&ids, document.map(|d| d.id)).await?;
    let access = item_access(actor, first.space, &share_refs(&shares));
    Ok(Reach {
        chain,
        shares,
        access,
    })
}

/// A folder the caller may read (or write, with `need`), with its reach.
async fn load_folder(
    state: &AppState,
    actor: &Actor,
    id: i64,
    need: Access,
    trashed_ok: bool,
) -> Result<(FolderView, Reach), ApiError> {
    let reach = reach_folder(state, actor, id, None).await?;
    let folder = reach.chain[0].clone();
    let hidden = reach.chain[1..].iter().any(|f| f.trashed_at.is_some())
        || (folder.trashed_at.is_some() && !trashed_ok);
    if hidden || !reach.access.read() {
        return Err(ApiError::NotFound);
    }
    if need == Access::Write && !reach.access.write() {
        return Err(ApiError::Forbidden);
    }
    Ok((folder, reach))
}

/// A document the caller may read now (not in the trash), for other
/// capabilities that take documents by id (message attachments).
pub(crate) async fn readable_document(
    state: &AppState,
    actor: &Actor,
    id: i64,
) -> Result<DocumentView, ApiError> {
    Ok(load_document(state, actor, id, Access::Read, false)
        .await?
        .0)
}

/// A document the caller may read (or write), with its folder's reach.
async fn load_document(
    state: &AppState,
    actor: &Actor,
    id: i64,
    need: Access,
    trashed_ok: bool,
) -> Result<(DocumentView, Reach), ApiError> {
    let doc = state
        .store
        .find_document(id)
        .await?
        .ok_or(ApiError::NotFound)?;
    let reach = reach_folder(state, actor, doc.folder_id, Some(&doc)).await?;
    let hidden = reach.chain.iter().any(|f| f.trashed_at.is_some())
        || (doc.trashed_at.is_some() && !trashed_ok);
    if hidden || !reach.access.read() {
        return Err(ApiError::NotFound);
    }
    if need == Access::Write && !reach.access.write() {
        return Err(ApiError::Forbidden);
    }
    Ok((doc, reach))
}

/// The space named in a URL, if it exists and the caller may read it.
async fn space_of(state: &AppState, actor: &Actor, kind: &str, id: i64) -> Result<Space, ApiError> {
    let space = match kind {
        "person" => Space::Person(PersonId(id)),
        "class" => {
            let c = state
                .store
                .find_class(ClassId(id))
                .await?
                .ok_or(ApiError::NotFound)?;
            Space::Class(c.id, c.establishment_id)
        }
        "group" => {
            let e = state
                .store
                .group_establishment(GroupId(id))
                .await?
                .ok_or(ApiError::NotFound)?;
            Space::Group(GroupId(id), e)
        }
        "establishment" => Space::Establishment(EstablishmentId(id)),
        _ => return Err(ApiError::NotFound),
    };
    if !space_access(actor, space).read() {
        return Err(ApiError::NotFound);
    }
    Ok(space)
}

/// The caller's quota, usage and largest upload, in bytes.
async fn quota_of(state: &AppState, actor: &Actor) -> Result<(u64, u64, u64), ApiError> {
    let quota = state.config.documents.quotas.for_actor(actor);
    let limit = state.config.documents.upload_limits.for_actor(actor);
    let used = u64::try_from(state.store.documents_usage(actor.person_id).await?).unwrap_or(0);
    Ok((quota, used, limit))
}

/// Deepest chain of folders accepted.
fn max_depth() -> usize {
    usize::try_from(ardoise_store::DOCUMENTS_MAX_DEPTH).unwrap_or(32)
}

fn access_name(a: Access) -> &'static str {
    match a {
        Access::None => "none",
        Access::Read => "read",
        Access::Write => "write",
    }
}

fn name_of(raw: &str) -> Result<String, ApiError> {
    rules::validate_name(raw).map_err(|e| ApiError::Invalid(e.code()))
}

/// Parses `class:12`, `group:3` or `person:45`.
fn parse_target(raw: &str) -> Result<ShareTarget, ApiError> {
    let (kind, id) = raw
        .trim()
        .split_once(':')
        .ok_or(ApiError::Invalid("share_target_invalid"))?;
    let id: i64 = id
        .parse()
        .map_err(|_| ApiError::Invalid("share_target_invalid"))?;
    ShareTarget::from_parts(kind, id).ok_or(ApiError::Invalid("share_target_invalid"))
}

fn target_code(t: ShareTarget) -> String {
    format!("{}:{}", t.kind(), t.id())
}

// ---------------------------------------------------------------- actions

/// One change to an item, from a form or the API.
#[derive(Debug, Clone)]
enum Op {
    Rename(String),
    Move(i64),
    Trash,
    Restore,
    NewFolder(String),
    Share(ShareTarget, bool),
    Unshare(ShareTarget),
}

/// Checks that the caller may share with `target` (what they teach, or a
/// colleague), by the policy.
async fn check_share(
    state: &AppState,
    actor: &Actor,
    access: Access,
    target: ShareTarget,
    write: bool,
) -> Result<(), ApiError> {
    let colleague = match target {
        ShareTarget::Person(p) => state.store.find_person(p).await?.map(|p| Colleague {
            id: p.id,
            establishment_id: p.establishment_id,
            school_adult: p.roles.has(Role::Teacher) || p.roles.has(Role::Staff),
        }),
        _ => None,
    };
    if !rules::may_share_with(actor, access, target, write, colleague) {
        return Err(ApiError::Invalid("share_not_allowed"));
    }
    Ok(())
}

/// Applies `op` to a folder; returns where to go next (a folder id).
async fn apply_folder(state: &AppState, actor: &Actor, id: i64, op: Op) -> Result<i64, ApiError> {
    let trashed_ok = matches!(op, Op::Restore);
    let (folder, reach) = load_folder(state, actor, id, Access::Write, trashed_ok).await?;
    let now = state.now();
    let is_root = folder.parent_id.is_none();
    match op {
        Op::Rename(name) => {
            if is_root {
                return Err(ApiError::Invalid("root_folder_fixed"));
            }
            let name = name_of(&name)?;
            state
                .store
                .rename_item(ItemKind::Folder, id, &name, now)
                .await?;
            Ok(id)
        }
        Op::Move(to) => {
            if is_root {
                return Err(ApiError::Invalid("root_folder_fixed"));
            }
            let (target, target_reach) =
                load_folder(state, actor, to, Access::Write, false).await?;
            let above: Vec<i64> = target_reach.chain.iter().map(|f| f.id).collect();
            if rules::move_creates_cycle(id, &above) {
                return Err(ApiError::Invalid("move_into_itself"));
            }
            if target_reach.chain.len() >= max_depth() {
                return Err(ApiError::Invalid("folder_too_deep"));
            }
            state.store.move_folder(id, &target, now).await?;
            Ok(id)
        }
        Op::Trash => {
            if is_root {
                return Err(ApiError::Invalid("root_folder_fixed"));
            }
            state
                .store
                .set_trashed(ItemKind::Folder, id, Some((actor.person_id, now)))
                .await?;
            Ok(folder.parent_id.unwrap_or(id))
        }
        Op::Restore => {
            state.store.set_trashed(ItemKind::Folder, id, None).await?;
            Ok(id)
        }
        Op::NewFolder(name) => {
            let name = name_of(&name)?;
            if reach.chain.len() >= max_depth() {
                return Err(ApiError::Invalid("folder_too_deep"));
            }
            let f = state
                .store
                .create_folder(&folder, &name, actor.person_id, now)
                .await?;
            Ok(f.id)
        }
        Op::Share(target, write) => {
            check_share(state, actor, reach.access, target, write).await?;
            state
                .store
                .put_share(ItemKind::Folder, id, target, write, actor.person_id, now)
                .await?;
            Ok(id)
        }
        Op::Unshare(target) => {
            state
                .store
                .delete_share(ItemKind::Folder, id, target)
                .await?;
            Ok(id)
        }
    }
}

/// Applies `op` to a document.
async fn apply_document(
    state: &AppState,
    actor: &Actor,
    id: i64,
    op: Op,
) -> Result<DocumentView, ApiError> {
    let trashed_ok = matches!(op, Op::Restore);
    let (doc, reach) = load_document(state, actor, id, Access::Write, trashed_ok).await?;
    let now = state.now();
    match op {
        Op::Rename(name) => {
            let name = name_of(&name)?;
            state
                .store
                .rename_item(ItemKind::Document, id, &name, now)
                .await?;
        }
        Op::Move(to) => {
            load_folder(state, actor, to, Access::Write, false).await?;
            state.store.move_document(id, to, now).await?;
        }
        Op::Trash => {
            state
                .store
                .set_trashed(ItemKind::Document, id, Some((actor.person_id, now)))
                .await?;
        }
        Op::Restore => {
            state
                .store
                .set_trashed(ItemKind::Document, id, None)
                .await?
        }
        Op::NewFolder(_) => return Err(ApiError::BadRequest("invalid_form")),
        Op::Share(target, write) => {
            check_share(state, actor, reach.access, target, write).await?;
            state
                .store
                .put_share(ItemKind::Document, id, target, write, actor.person_id, now)
                .await?;
        }
        Op::Unshare(target) => {
            state
                .store
                .delete_share(ItemKind::Document, id, target)
                .await?;
        }
    }
    Ok(state.store.find_document(id).await?.unwrap_or(doc))
}

/// The row naming a durable blob as the caller's document in a folder,
/// counted against `quota`.
fn document_row(
    folder_id: i64,
    name: String,
    blob: &ardoise_files::StoredBlob,
    actor: &Actor,
    now: i64,
    quota: u64,
) -> DocumentInsert {
    DocumentInsert {
        folder_id,
        name,
        blob_hash: blob.hash.as_str().to_string(),
        mime: blob.detected.mime.clone(),
        size: i64::try_from(blob.size).unwrap_or(i64::MAX),
        owner_id: actor.person_id,
        now,
        quota: i64::try_from(quota).unwrap_or(i64::MAX),
    }
}

/// Stores the files of an upload form in a folder the caller may write:
/// each file within the role's upload limit and what is left of the quota,
/// all rows or none.
async fn upload_into(
    state: &AppState,
    signed: &Signed,
    id: i64,
    req: Request,
    check_csrf: bool,
) -> Result<(FolderView, Vec<DocumentView>), ApiError> {
    let actor = &signed.session.actor;
    // Authorize before reading a single byte of the body.
    let (folder, _) = load_folder(state, actor, id, Access::Write, false).await?;
    if !state.files.accepting_writes() {
        return Err(ApiError::Unavailable);
    }
    let (quota, used, limit) = quota_of(state, actor).await?;
    let (allowance, quota_binds) = rules::upload_allowance(limit, quota, used);
    if allowance == 0 {
        return Err(ApiError::Invalid("quota_exceeded"));
    }
    let form: Uploaded = match read_form(req, state, allowance).await {
        Err(ApiError::FileTooLarge) if quota_binds => {
            return Err(ApiError::Invalid("quota_exceeded"))
        }
        other => other?,
    };
    if check_csrf {
        signed.check_csrf(&form.get("csrf"))?;
    }
    if form.files.is_empty() {
        return Err(ApiError::Invalid("file_missing"));
    }
    let now = state.now();
    let mut rows = Vec::with_capacity(form.files.len());
    for f in &form.files {
        rows.push(document_row(
            folder.id,
            name_of(&f.file_name)?,
            &f.blob,
            actor,
            now,
            quota,
        ));
    }
    let docs = state
        .store
        .insert_documents(&rows)
        .await?
        .ok_or(ApiError::Invalid("quota_exceeded"))?;
    Ok((folder, docs))
}

// ---------------------------------------------------------------- views

/// A folder's display name: its own, or its space's for a root.
async fn folder_label(state: &AppState, t: &Tr, actor: &Actor, f: &FolderView) -> String {
    if f.parent_id.is_some() {
        return f.name.clone();
    }
    match f.space {
        Space::Person(p) if p == actor.person_id => t.get("docs-my-space"),
        space => {
            let name = state.store.space_name(space).await.ok().flatten();
            let kind = t.get(&format!("docs-space-{}", space.kind()));
            match name {
                Some(n) => format!("{kind} {n}"),
                None => kind,
            }
        }
    }
}

/// The breadcrumb: the folders of the chain the caller may open, root
/// first.
async fn breadcrumb(state: &AppState, t: &Tr, actor: &Actor, reach: &Reach) -> Vec<(i64, String)> {
    let mut out = Vec::new();
    for i in (0..reach.chain.len()).rev() {
        if reach.access_at(actor, i).read() {
            out.push((
                reach.chain[i].id,
                folder_label(state, t, actor, &reach.chain[i]).await,
            ));
        }
    }
    out
}

/// The content URL of a document: changes with its content, so it may be
/// cached forever.
fn content_url(d: &DocumentView) -> String {
    format!("/documents/files/{}/content/{}", d.id, d.blob_hash)
}

/// A type for people: « PDF », « Image PNG », « Texte »…
fn type_label(t: &Tr, mime: &str) -> String {
    let m = mime.split(';').next().unwrap_or(mime).trim();
    let key = match m {
        "application/pdf" => "docs-type-pdf",
        "text/plain" => "docs-type-text",
        "text/html" => "docs-type-html",
        "image/svg+xml" => "docs-type-svg",
        "application/zip" => "docs-type-zip",
        _ if m.starts_with("image/") => "docs-type-image",
        _ if m.starts_with("audio/") => "docs-type-audio",
        _ if m.starts_with("video/") => "docs-type-video",
        _ if m.contains("officedocument")
            || m.contains("opendocument")
            || m == "application/msword" =>
        {
            "docs-type-office"
        }
        _ => "docs-type-other",
    };
    t.get(key)
}

/// One line of a file list.
struct FileLine {
    id: i64,
    name: String,
    kind: String,
    size: String,
    date: String,
    owner: String,
    url: String,
}

fn file_line(t: &Tr, d: &DocumentView) -> FileLine {
    FileLine {
        id: d.id,
        name: d.name.clone(),
        kind: type_label(t, &d.mime),
        size: size_label(t, d.size),
        date: t.datetime(d.updated_at),
        owner: d.owner_name.clone(),
        url: content_url(d),
    }
}

/// A folder line.
struct FolderLine {
    id: i64,
    name: String,
    date: String,
}

/// Usage against quota, for the bar.
struct Usage {
    used: String,
    quota: String,
    percent: u64,
    max_upload: String,
}

fn usage_view(t: &Tr, quota: u64, used: u64, limit: u64, allowance: u64) -> Usage {
    let i = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    Usage {
        used: size_label(t, i(used)),
        quota: size_label(t, i(quota)),
        // A zero quota is full.
        percent: used
            .saturating_mul(100)
            .checked_div(quota)
            .map_or(100, |p| p.min(100)),
        max_upload: size_label(t, i(limit.min(allowance))),
    }
}

/// A space link on the overview.
struct SpaceLink {
    href: String,
    label: String,
}

/// The spaces the caller sees on the overview: theirs, their classes' and
/// groups', their establishment's.
async fn space_links(state: &AppState, t: &Tr, actor: &Actor) -> Vec<SpaceLink> {
    let mut out = Vec::new();
    for space in rules::readable_spaces(actor) {
        let label = match space {
            Space::Person(_) => t.get("docs-my-space"),
            _ => {
                let name = state.store.space_name(space).await.ok().flatten();
                format!(
                    "{} {}",
                    t.get(&format!("docs-space-{}", space.kind())),
                    name.unwrap_or_default()
                )
            }
        };
        out.push(SpaceLink {
            href: format!("/documents/spaces/{}/{}", space.kind(), space.id()),
            label,
        });
    }
    out
}

// ---------------------------------------------------------------- pages

#[derive(Template)]
#[template(path = "documents.html")]
struct OverviewPage {
    t: Tr,
    nav: Nav,
    spaces: Vec<SpaceLink>,
    usage: Usage,
    shared_folders: Vec<FolderLine>,
    shared_files: Vec<FileLine>,
    q: String,
    results: Option<Vec<FileLine>>,
}

#[derive(Deserialize)]
struct SearchQuery {
    #[serde(default)]
    q: String,
}

/// Folders and documents shared with the caller, as single checks allow.
async fn shared_with_me(
    state: &AppState,
    actor: &Actor,
) -> Result<(Vec<FolderView>, Vec<DocumentView>), ApiError> {
    let audience = rules::share_audience(actor);
    let (folders, docs) = state.store.shared_with(&audience).await?;
    // The query applied the audience; items under a trashed folder are
    // hidden as their pages would hide them.
    let mut shown_folders = Vec::new();
    for f in folders {
        if load_folder(state, actor, f.id, Access::Read, false)
            .await
            .is_ok()
        {
            shown_folders.push(f);
        }
    }
    let mut shown_docs = Vec::new();
    for d in docs {
        if load_document(state, actor, d.id, Access::Read, false)
            .await
            .is_ok()
        {
            shown_docs.push(d);
        }
    }
    Ok((shown_folders, shown_docs))
}

/// Documents whose name contains `q`, among what the caller may read.
async fn search(state: &AppState, actor: &Actor, q: &str) -> Result<Vec<DocumentView>, ApiError> {
    let q = q.trim();
    if q.is_empty() {
        return Ok(Vec::new());
    }
    if q.chars().count() > 100 {
        return Err(ApiError::Invalid("search_too_long"));
    }
    let found = state
        .store
        .search_documents(
            &rules::readable_spaces(actor),
            &rules::share_audience(actor),
            q,
            100,
        )
        .await?;
    let mut out = Vec::new();
    for d in found {
        if load_document(state, actor, d.id, Access::Read, false)
            .await
            .is_ok()
        {
            out.push(d);
        }
    }
    Ok(out)
}

/// `GET /documents`: my spaces, what is shared with me, my quota, search.
async fn overview_page(
    State(state): State<AppState>,
    signed: Signed,
    Query(query): Query<SearchQuery>,
) -> Result<Response, ApiError> {
    let actor = &signed.session.actor;
    let t = signed.ctx.tr.clone();
    let (quota, used, limit) = quota_of(&state, actor).await?;
    let (allowance, _) = rules::upload_allowance(limit, quota, used);
    let (folders, docs) = shared_with_me(&state, actor).await?;
    let results = if query.q.trim().is_empty() {
        None
    } else {
        Some(
            search(&state, actor, &query.q)
                .await?
                .iter()
                .map(|d| file_line(&t, d))
                .collect(),
        )
    };
    let page = OverviewPage {
        nav: Nav::signed(t.get("docs-title"), &signed.session),
        spaces: space_links(&state, &t, actor).await,
        usage: usage_view(&t, quota, used, limit, allowance),
        shared_folders: folders
            .iter()
            .map(|f| FolderLine {
                id: f.id,
                name: f.name.clone(),
                date: t.datetime(f.updated_at),
            })
            .collect(),
        shared_files: docs.iter().map(|d| file_line(&t, d)).collect(),
        q: query.q,
        results,
        t,
    };
    Ok(render(&page))
}

/// `GET /documents/spaces/{kind}/{id}`: the root folder of a space
/// (created on first visit).
async fn space_page(
    State(state): State<AppState>,
    signed: Signed,
    Path((kind, id)): Path<(String, i64)>,
) -> Result<Response, ApiError> {
    let actor = &signed.session.actor;
    let space = space_of(&state, actor, &kind, id).await?;
    let root = state
        .store
        .space_root(space, actor.establishment_id, state.now())
        .await?;
    Ok(Redirect::to(&format!("/documents/folders/{}", root.id)).into_response())
}

/// A destination in a "move to" list.
struct Destination {
    id: i64,
    label: String,
}

/// A share as shown.
struct ShareLine {
    code: String,
    label: String,
    write: bool,
}

/// A possible share target in the form.
struct TargetOption {
    code: String,
    label: String,
}

/// What the caller may share with: the classes and groups they teach,
/// the teachers and staff of their establishment.
async fn share_options(
    state: &AppState,
    t: &Tr,
    actor: &Actor,
) -> Result<Vec<TargetOption>, ApiError> {
    let mut out = Vec::new();
    if !(actor.is(Role::Teacher) || actor.is(Role::Staff)) {
        return Ok(out);
    }
    for c in &actor.taught_classes {
        if let Some(class) = state.store.find_class(*c).await? {
            out.push(TargetOption {
                code: target_code(ShareTarget::Class(*c)),
                label: format!("{} {}", t.get("docs-space-class"), class.name),
            });
        }
    }
    for g in &actor.taught_groups {
        let name = state
            .store
            .space_name(Space::Group(*g, actor.establishment_id))
            .await?
            .unwrap_or_default();
        out.push(TargetOption {
            code: target_code(ShareTarget::Group(*g)),
            label: format!("{} {name}", t.get("docs-space-group")),
        });
    }
    for role in [Role::Teacher, Role::Staff] {
        let people = state
            .store
            .list_people(&ardoise_store::PeopleFilter {
                establishment_id: Some(actor.establishment_id),
                role: Some(role),
                limit: 500,
                ..Default::default()
            })
            .await?;
        for p in people {
            let code = target_code(ShareTarget::Person(p.id));
            if p.id != actor.person_id && !out.iter().any(|o| o.code == code) {
                out.push(TargetOption {
                    code,
                    label: p.display_name(),
                });
            }
        }
    }
    Ok(out)
}

/// Where the caller may move things: the folders of this space they may
/// write, and the roots of their other writable spaces.
async fn destinations(
    state: &AppState,
    t: &Tr,
    actor: &Actor,
    space: Space,
    exclude: Option<i64>,
) -> Result<Vec<Destination>, ApiError> {
    let mut out = Vec::new();
    for f in state.store.folders_in_space(space).await? {
        if Some(f.id) == exclude {
            continue;
        }
        if let Ok((f, reach)) = load_folder(state, actor, f.id, Access::Write, false).await {
            if exclude.is_some_and(|x| reach.chain.iter().any(|c| c.id == x)) {
                continue;
            }
            let path: Vec<String> = {
                let mut names = Vec::new();
                for c in reach.chain.iter().rev() {
                    names.push(folder_label(state, t, actor, c).await);
                }
                names
            };
            out.push(Destination {
                id: f.id,
                label: path.join(" / "),
            });
        }
    }
    let mut others = vec![Space::Person(actor.person_id)];
    others.extend(
        actor
            .taught_classes
            .iter()
            .map(|c| Space::Class(*c, actor.establishment_id)),
    );
    for s in others.into_iter().filter(|s| *s != space) {
        if space_access(actor, s).write() {
            let root = state
                .store
                .space_root(s, actor.establishment_id, state.now())
                .await?;
            out.push(Destination {
                id: root.id,
                label: folder_label(state, t, actor, &root).await,
            });
        }
    }
    Ok(out)
}

fn share_lines(shares: &[ShareView], kind: ItemKind, id: i64) -> Vec<ShareLine> {
    shares
        .iter()
        .filter(|s| s.item_kind == kind && s.item_id == id)
        .map(|s| ShareLine {
            code: target_code(s.target),
            label: s.target_name.clone(),
            write: s.write,
        })
        .collect()
}

#[derive(Template)]
#[template(path = "documents_folder.html")]
struct FolderPage {
    t: Tr,
    nav: Nav,
    csrf: String,
    /// Where the share forms post.
    action: String,
    id: i64,
    name: String,
    is_root: bool,
    crumbs: Vec<(i64, String)>,
    folders: Vec<FolderLine>,
    files: Vec<FileLine>,
    can_write: bool,
    usage: Usage,
    destinations: Vec<Destination>,
    shares: Vec<ShareLine>,
    share_options: Vec<TargetOption>,
}

/// `GET /documents/folders/{id}`: a folder's content.
async fn folder_page(
    State(state): State<AppState>,
    signed: Signed,
    Path(id): Path<i64>,
) -> Result<Response, ApiError> {
    let actor = &signed.session.actor;
    let t = signed.ctx.tr.clone();
    let (folder, reach) = load_folder(&state, actor, id, Access::Read, false).await?;
    let (folders, docs) = state.store.folder_children(id).await?;
    let (quota, used, limit) = quota_of(&state, actor).await?;
    let (allowance, _) = rules::upload_allowance(limit, quota, used);
    let can_write = reach.access.write();
    let is_root = folder.parent_id.is_none();
    let name = folder_label(&state, &t, actor, &folder).await;
    let page = FolderPage {
        nav: Nav::signed(name.clone(), &signed.session),
        csrf: signed.session.csrf_token.clone(),
        action: format!("/documents/folders/{id}"),
        id,
        name,
        is_root,
        crumbs: breadcrumb(&state, &t, actor, &reach).await,
        folders: folders
            .iter()
            .map(|f| FolderLine {
                id: f.id,
                name: f.name.clone(),
                date: t.datetime(f.updated_at),
            })
            .collect(),
        files: docs.iter().map(|d| file_line(&t, d)).collect(),
        usage: usage_view(&t, quota, used, limit, allowance),
        destinations: if can_write && !is_root {
            destinations(&state, &t, actor, folder.space, Some(id)).await?
        } else {
            Vec::new()
        },
        shares: if can_write {
            share_lines(&reach.shares, ItemKind::Folder, id)
        } else {
            Vec::new()
        },
        share_options: if can_write {
            share_options(&state, &t, actor).await?
        } else {
            Vec::new()
        },
        can_write,
        t,
    };
    Ok(render(&page))
}

#[derive(Template)]
#[template(path = "documents_file.html")]
struct FilePage {
    t: Tr,
    nav: Nav,
    csrf: String,
    /// Where the share forms post.
    action: String,
    file: FileLine,
    crumbs: Vec<(i64, String)>,
    can_write: bool,
    destinations: Vec<Destination>,
    shares: Vec<ShareLine>,
    share_options: Vec<TargetOption>,
}

/// `GET /documents/files/{id}`: a document, its download link and, for
/// those who may write it, rename, move, share and trash.
async fn document_page(
    State(state): State<AppState>,
    signed: Signed,
    Path(id): Path<i64>,
) -> Result<Response, ApiError> {
    let actor = &signed.session.actor;
    let t = signed.ctx.tr.clone();
    let (doc, reach) = load_document(&state, actor, id, Access::Read, false).await?;
    let can_write = reach.access.write();
    let space = reach.chain[0].space;
    let page = FilePage {
        nav: Nav::signed(doc.name.clone(), &signed.session),
        csrf: signed.session.csrf_token.clone(),
        action: format!("/documents/files/{id}"),
        file: file_line(&t, &doc),
        crumbs: breadcrumb(&state, &t, actor, &reach).await,
        destinations: if can_write {
            destinations(&state, &t, actor, space, None).await?
        } else {
            Vec::new()
        },
        shares: if can_write {
            share_lines(&reach.shares, ItemKind::Document, id)
        } else {
            Vec::new()
        },
        share_options: if can_write {
            share_options(&state, &t, actor).await?
        } else {
            Vec::new()
        },
        can_write,
        t,
    };
    Ok(render(&page))
}

/// The fields of an action form.
#[derive(Deserialize)]
struct ActionForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    op: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    target: String,
    #[serde(default)]
    write: Option<String>,
}

fn op_of(f: &ActionForm) -> Result<Op, ApiError> {
    Ok(match f.op.as_str() {
        "rename" => Op::Rename(f.name.clone()),
        "move" => Op::Move(
            f.to.trim()
                .parse()
                .map_err(|_| ApiError::Invalid("id_invalid"))?,
        ),
        "trash" => Op::Trash,
        "restore" => Op::Restore,
        "new_folder" => Op::NewFolder(f.name.clone()),
        "share" => Op::Share(parse_target(&f.target)?, f.write.is_some()),
        "unshare" => Op::Unshare(parse_target(&f.target)?),
        _ => return Err(ApiError::BadRequest("invalid_form")),
    })
}

/// `POST /documents/folders/{id}`: rename, move, trash, restore, new
/// folder, share, unshare (the form's `op`).
async fn folder_form(
    State(state): State<AppState>,
    signed: Signed,
    Path(id): Path<i64>,
    FormIn(form): FormIn<ActionForm>,
) -> Result<Response, ApiError> {
    signed.check_csrf(&form.csrf)?;
    let op = op_of(&form)?;
    let back_to_trash = matches!(op, Op::Restore) && form.to == "trash";
    let next = apply_folder(&state, &signed.session.actor, id, op).await?;
    if back_to_trash {
        return Ok(Redirect::to("/documents/trash").into_response());
    }
    Ok(Redirect::to(&format!("/documents/folders/{next}")).into_response())
}

/// `POST /documents/files/{id}`: rename, move, trash, restore, share,
/// unshare.
async fn document_form(
    State(state): State<AppState>,
    signed: Signed,
    Path(id): Path<i64>,
    FormIn(form): FormIn<ActionForm>,
) -> Result<Response, ApiError> {
    signed.check_csrf(&form.csrf)?;
    let op = op_of(&form)?;
    let trash = matches!(op, Op::Trash);
    let back_to_trash = matches!(op, Op::Restore) && form.to == "trash";
    let doc = apply_document(&state, &signed.session.actor, id, op).await?;
    if back_to_trash {
        return Ok(Redirect::to("/documents/trash").into_response());
    }
    if trash {
        return Ok(Redirect::to(&format!("/documents/folders/{}", doc.folder_id)).into_response());
    }
    Ok(Redirect::to(&format!("/documents/files/{id}")).into_response())
}

/// `POST /documents/folders/{id}/upload`: files into a folder.
async fn upload_form(
    State(state): State<AppState>,
    signed: Signed,
    Path(id): Path<i64>,
    req: Request,
) -> Result<Response, ApiError> {
    let (folder, _) = upload_into(&state, &signed, id, req, true).await?;
    Ok(Redirect::to(&format!("/documents/folders/{}", folder.id)).into_response())
}

/// `GET /documents/files/{id}/content/{hash}`: the bytes, at a URL that
/// names the content, so browsers keep it for good. Any other hash is "not
/// found": a hash alone never opens a file.
async fn download(
    State(state): State<AppState>,
    signed: Signed,
    headers: HeaderMap,
    Path((id, hash)): Path<(i64, String)>,
) -> Result<Response, ApiError> {
    let session = ReadCache::session_key(&signed.session.token_hash);
    let cached = session.and_then(|k| state.read_cache.get(k, id));
    let doc = match cached {
        Some(doc) => doc,
        None => {
            let generation = state.read_cache.generation();
            let (doc, _) =
                load_document(&state, &signed.session.actor, id, Access::Read, false).await?;
            let doc = Arc::new(doc);
            if let Some(k) = session {
                state.read_cache.keep(k, generation, Arc::clone(&doc));
            }
            doc
        }
    };
    if doc.blob_hash != hash {
        return Err(ApiError::NotFound);
    }
    blob_response::serve(
        &state,
        &headers,
        BlobMeta {
            hash: &doc.blob_hash,
            size: doc.size,
            mime: &doc.mime,
            file_name: &doc.name,
        },
        blob_response::CACHE_PRIVATE_IMMUTABLE,
    )
    .await
}

/// Middleware: after any request that may change documents, folders or
/// shares (every method but `GET` and `HEAD` on their URLs), the download
/// decisions kept in memory are forgotten.
pub async fn note_changes(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let path = req.uri().path();
    let writes = !matches!(*req.method(), Method::GET | Method::HEAD)
        && (path.starts_with("/documents/") || path.starts_with("/api/v1/documents/"));
    let resp = next.run(req).await;
    if writes {
        state.read_cache.changed();
    }
    resp
}

/// A trashed item as shown.
struct TrashLine {
    kind: &'static str,
    id: i64,
    name: String,
    trashed: String,
    purge: String,
}

#[derive(Template)]
#[template(path = "documents_trash.html")]
struct TrashPage {
    t: Tr,
    nav: Nav,
    csrf: String,
    items: Vec<TrashLine>,
}

/// What the caller trashed (or owns and is trashed) and may still restore.
async fn trash_items(
    state: &AppState,
    actor: &Actor,
) -> Result<(Vec<FolderView>, Vec<DocumentView>), ApiError> {
    let (folders, docs) = state.store.trash_of(actor.person_id).await?;
    let mut f_out = Vec::new();
    for f in folders {
        if load_folder(state, actor, f.id, Access::Write, true)
            .await
            .is_ok()
        {
            f_out.push(f);
        }
    }
    let mut d_out = Vec::new();
    for d in docs {
        if load_document(state, actor, d.id, Access::Write, true)
            .await
            .is_ok()
        {
            d_out.push(d);
        }
    }
    Ok((f_out, d_out))
}

/// `GET /documents/trash`: restorable for 30 days.
async fn trash_page(State(state): State<AppState>, signed: Signed) -> Result<Response, ApiError> {
    let actor = &signed.session.actor;
    let t = signed.ctx.tr.clone();
    let (folders, docs) = trash_items(&state, actor).await?;
    let purge = |at: Option<i64>| t.datetime(at.unwrap_or(0) + rules::TRASH_DAYS * 86_400);
    let mut items: Vec<TrashLine> = folders
        .iter()
        .map(|f| TrashLine {
            kind: "folders",
            id: f.id,
            name: f.name.clone(),
            trashed: t.datetime(f.trashed_at.unwrap_or(0)),
            purge: purge(f.trashed_at),
        })
        .collect();
    items.extend(docs.iter().map(|d| TrashLine {
        kind: "files",
        id: d.id,
        name: d.name.clone(),
        trashed: t.datetime(d.trashed_at.unwrap_or(0)),
        purge: purge(d.trashed_at),
    }));
    let page = TrashPage {
        nav: Nav::signed(t.get("docs-trash"), &signed.session),
        csrf: signed.session.csrf_token.clone(),
        items,
        t,
    };
    Ok(render(&page))
}

// ---------------------------------------------------------------- API

/// A folder in the API.
#[derive(Serialize, ToSchema)]
pub struct FolderOut {
    pub id: i64,
    /// Its own name; a space's root has an empty name.
    pub name: String,
    pub parent_id: Option<i64>,
    /// `person`, `class`, `group` or `establishment`.
    pub space_kind: &'static str,
    pub space_id: i64,
    pub updated_at: i64,
    pub trashed_at: Option<i64>,
}

/// A document in the API.
#[derive(Serialize, ToSchema)]
pub struct DocumentOut {
    pub id: i64,
    pub folder_id: i64,
    pub name: String,
    /// Type detected from the content.
    pub mime: String,
    pub size: i64,
    /// SHA-256 of the content.
    pub hash: String,
    pub owner_id: i64,
    pub owner_name: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub trashed_at: Option<i64>,
    /// Download here (cacheable for good: it names the content).
    pub content_url: String,
}

/// A share in the API.
#[derive(Serialize, Deserialize, ToSchema, Clone)]
pub struct ShareOut {
    /// `class:ID`, `group:ID` or `person:ID`.
    pub target: String,
    /// Read and write (colleagues only).
    #[serde(default)]
    pub write: bool,
    /// Whom it reaches (ignored on input).
    #[serde(default)]
    pub name: String,
}

/// A folder's content.
#[derive(Serialize, ToSchema)]
pub struct ListingOut {
    pub folder: FolderOut,
    /// `read` or `write`.
    pub access: &'static str,
    /// The folders above it that the caller may open, root first.
    pub breadcrumb: Vec<FolderOut>,
    pub folders: Vec<FolderOut>,
    pub documents: Vec<DocumentOut>,
    /// Its shares (for those who may write it).
    pub shares: Vec<ShareOut>,
}

/// One document.
#[derive(Serialize, ToSchema)]
pub struct DocumentDetailOut {
    pub document: DocumentOut,
    /// `read` or `write`.
    pub access: &'static str,
    pub shares: Vec<ShareOut>,
}

/// A space on the overview.
#[derive(Serialize, ToSchema)]
pub struct SpaceOut {
    pub kind: &'static str,
    pub id: i64,
    pub name: String,
    /// `GET` it for the root folder's content.
    pub url: String,
}

/// The caller's document space.
#[derive(Serialize, ToSchema)]
pub struct OverviewOut {
    pub spaces: Vec<SpaceOut>,
    pub shared_folders: Vec<FolderOut>,
    pub shared_documents: Vec<DocumentOut>,
    /// Bytes of documents the caller owns, trash included.
    pub used_bytes: u64,
    pub quota_bytes: u64,
    /// Largest file the caller may upload now.
    pub max_upload_bytes: u64,
}

/// What is in the caller's trash.
#[derive(Serialize, ToSchema)]
pub struct TrashOut {
    pub folders: Vec<FolderOut>,
    pub documents: Vec<DocumentOut>,
}

/// A change to a folder or document: any of rename, move, restore.
#[derive(Deserialize, ToSchema)]
pub struct ItemUpdateIn {
    /// New name.
    pub name: Option<String>,
    /// New parent folder (for a folder) or folder (for a document).
    pub folder_id: Option<i64>,
    /// `false` restores from the trash; `true` trashes.
    pub trashed: Option<bool>,
}

/// A new folder.
#[derive(Deserialize, ToSchema)]
pub struct FolderIn {
    pub name: String,
}

fn folder_out(f: &FolderView) -> FolderOut {
    FolderOut {
        id: f.id,
        name: f.name.clone(),
        parent_id: f.parent_id,
        space_kind: f.space.kind(),
        space_id: f.space.id(),
        updated_at: f.updated_at,
        trashed_at: f.trashed_at,
    }
}

fn document_out(d: &DocumentView) -> DocumentOut {
    DocumentOut {
        id: d.id,
        folder_id: d.folder_id,
        name: d.name.clone(),
        mime: d.mime.clone(),
        size: d.size,
        hash: d.blob_hash.clone(),
        owner_id: d.owner_id.0,
        owner_name: d.owner_name.clone(),
        created_at: d.created_at,
        updated_at: d.updated_at,
        trashed_at: d.trashed_at,
        content_url: content_url(d),
    }
}

fn shares_out(shares: &[ShareView], kind: ItemKind, id: i64) -> Vec<ShareOut> {
    shares
        .iter()
        .filter(|s| s.item_kind == kind && s.item_id == id)
        .map(|s| ShareOut {
            target: target_code(s.target),
            write: s.write,
            name: s.target_name.clone(),
        })
        .collect()
}

async fn listing(state: &AppState, actor: &Actor, id: i64) -> Result<ListingOut, ApiError> {
    let (folder, reach) = load_folder(state, actor, id, Access::Read, false).await?;
    let (folders, docs) = state.store.folder_children(id).await?;
    let mut crumbs = Vec::new();
    for i in (1..reach.chain.len()).rev() {
        if reach.access_at(actor, i).read() {
            crumbs.push(folder_out(&reach.chain[i]));
        }
    }
    Ok(ListingOut {
        folder: folder_out(&folder),
        access: access_name(reach.access),
        breadcrumb: crumbs,
        folders: folders.iter().map(folder_out).collect(),
        documents: docs.iter().map(document_out).collect(),
        shares: if reach.access.write() {
            shares_out(&reach.shares, ItemKind::Folder, id)
        } else {
            Vec::new()
        },
    })
}

/// `GET /api/v1/documents`: the caller's spaces, what is shared with them,
/// their quota.
#[utoipa::path(get, path = "/api/v1/documents", tag = "documents",
    responses((status = 200, body = OverviewOut)))]
async fn api_overview(
    State(state): State<AppState>,
    signed: Signed,
) -> Result<Json<OverviewOut>, ApiError> {
    let actor = &signed.session.actor;
    let (quota, used, limit) = quota_of(&state, actor).await?;
    let (allowance, _) = rules::upload_allowance(limit, quota, used);
    let (folders, docs) = shared_with_me(&state, actor).await?;
    let mut spaces = Vec::new();
    for s in rules::readable_spaces(actor) {
        spaces.push(SpaceOut {
            kind: s.kind(),
            id: s.id(),
            name: state.store.space_name(s).await?.unwrap_or_default(),
            url: format!("/api/v1/documents/spaces/{}/{}", s.kind(), s.id()),
        });
    }
    Ok(Json(OverviewOut {
        spaces,
        shared_folders: folders.iter().map(folder_out).collect(),
        shared_documents: docs.iter().map(document_out).collect(),
        used_bytes: used,
        quota_bytes: quota,
        max_upload_bytes: limit.min(allowance),
    }))
}

/// `GET /api/v1/documents/trash`.
#[utoipa::path(get, path = "/api/v1/documents/trash", tag = "documents",
    responses((status = 200, body = TrashOut)))]
async fn api_trash(
    State(state): State<AppState>,
    signed: Signed,
) -> Result<Json<TrashOut>, ApiError> {
    let (folders, docs) = trash_items(&state, &signed.session.actor).await?;
    Ok(Json(TrashOut {
        folders: folders.iter().map(folder_out).collect(),
        documents: docs.iter().map(document_out).collect(),
    }))
}

/// `GET /api/v1/documents/search?q=`: documents whose name contains `q`.
#[utoipa::path(get, path = "/api/v1/documents/search", tag = "documents",
    params(("q" = String, Query, description = "Part of a name (100 characters at most)")),
    responses((status = 200, body = [DocumentOut])))]
async fn api_search(
    State(state): State<AppState>,
    signed: Signed,
    Query(query): Query<SearchQuery>,
) -> Result<Json<Vec<DocumentOut>>, ApiError> {
    let found = search(&state, &signed.session.actor, &query.q).await?;
    Ok(Json(found.iter().map(document_out).collect()))
}

/// `GET /api/v1/documents/spaces/{kind}/{id}`: a space's root folder.
#[utoipa::path(get, path = "/api/v1/documents/spaces/{kind}/{id}", tag = "documents",
    params(("kind" = String, Path, description = "person, class, group or establishment"), ("id" = i64, Path, description = "Its id")),
    responses((status = 200, body = ListingOut), (status = 404, description = "No such space the caller may read")))]
async fn api_space(
    State(state): State<AppState>,
    signed: Signed,
    Path((kind, id)): Path<(String, i64)>,
) -> Result<Json<ListingOut>, ApiError> {
    let actor = &signed.session.actor;
    let space = space_of(&state, actor, &kind, id).await?;
    let root = state
        .store
        .space_root(space, actor.establishment_id, state.now())
        .await?;
    Ok(Json(listing(&state, actor, root.id).await?))
}

/// `GET /api/v1/documents/folders/{id}`.
#[utoipa::path(get, path = "/api/v1/documents/folders/{id}", tag = "documents",
    params(("id" = i64, Path, description = "Folder id")),
    responses((status = 200, body = ListingOut), (status = 404, description = "No such folder the caller may read")))]
async fn api_folder(
    State(state): State<AppState>,
    signed: Signed,
    Path(id): Path<i64>,
) -> Result<Json<ListingOut>, ApiError> {
    Ok(Json(listing(&state, &signed.session.actor, id).await?))
}

fn update_ops(u: &ItemUpdateIn) -> Vec<Op> {
    let mut ops = Vec::new();
    // Restore first, so that a restored item can be renamed or moved in
    // the same request; trash last.
    if u.trashed == Some(false) {
        ops.push(Op::Restore);
    }
    if let Some(n) = &u.name {
        ops.push(Op::Rename(n.clone()));
    }
    if let Some(f) = u.folder_id {
        ops.push(Op::Move(f));
    }
    if u.trashed == Some(true) {
        ops.push(Op::Trash);
    }
    ops
}

/// `PUT /api/v1/documents/folders/{id}`: rename, move, trash or restore.
#[utoipa::path(put, path = "/api/v1/documents/folders/{id}", tag = "documents",
    params(("id" = i64, Path, description = "Folder id")), request_body = ItemUpdateIn,
    responses((status = 200, body = FolderOut), (status = 422, description = "Invalid name, move into itself")))]
async fn api_update_folder(
    State(state): State<AppState>,
    signed: Signed,
    Path(id): Path<i64>,
    JsonIn(body): JsonIn<ItemUpdateIn>,
) -> Result<Json<FolderOut>, ApiError> {
    let actor = &signed.session.actor;
    // Check every change before making any, so that a refused one leaves
    // the folder as it was.
    if let Some(n) = &body.name {
        name_of(n)?;
    }
    for op in update_ops(&body) {
        apply_folder(&state, actor, id, op).await?;
    }
    let f = state
        .store
        .find_folder(id)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(Json(folder_out(&f)))
}

/// `DELETE /api/v1/documents/folders/{id}`: to the trash.
#[utoipa::path(delete, path = "/api/v1/documents/folders/{id}", tag = "documents",
    params(("id" = i64, Path, description = "Folder id")),
    responses((status = 204, description = "In the trash for 30 days")))]
async fn api_trash_folder(
    State(state): State<AppState>,
    signed: Signed,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    apply_folder(&state, &signed.session.actor, id, Op::Trash).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/v1/documents/folders/{id}/folders`: a new folder inside.
#[utoipa::path(post, path = "/api/v1/documents/folders/{id}/folders", tag = "documents",
    params(("id" = i64, Path, description = "Parent folder id")), request_body = FolderIn,
    responses((status = 201, body = FolderOut), (status = 422, description = "Invalid name")))]
async fn api_create_folder(
    State(state): State<AppState>,
    signed: Signed,
    Path(id): Path<i64>,
    JsonIn(body): JsonIn<FolderIn>,
) -> Result<(StatusCode, Json<FolderOut>), ApiError> {
    let new_id = apply_folder(&state, &signed.session.actor, id, Op::NewFolder(body.name)).await?;
    let f = state
        .store
        .find_folder(new_id)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok((StatusCode::CREATED, Json(folder_out(&f))))
}

/// `POST /api/v1/documents/folders/{id}/files`: upload (multipart, any
/// number of `files` parts; all kept or none).
#[utoipa::path(post, path = "/api/v1/documents/folders/{id}/files", tag = "documents",
    params(("id" = i64, Path, description = "Folder id")),
    request_body(content_type = "multipart/form-data", description = "One or more file parts"),
    responses((status = 201, body = [DocumentOut]), (status = 413, description = "A file is larger than the role's limit"),
        (status = 422, description = "Empty file, invalid name, quota exceeded, infected")))]
async fn api_upload(
    State(state): State<AppState>,
    signed: Signed,
    Path(id): Path<i64>,
    req: Request,
) -> Result<(StatusCode, Json<Vec<DocumentOut>>), ApiError> {
    let (_, docs) = upload_into(&state, &signed, id, req, false).await?;
    Ok((
        StatusCode::CREATED,
        Json(docs.iter().map(document_out).collect()),
    ))
}

/// Replaces an item's shares with `wanted`: every new target is checked
/// first, so a refused one changes nothing.
async fn replace_shares(
    state: &AppState,
    actor: &Actor,
    kind: ItemKind,
    id: i64,
    wanted: &[ShareOut],
) -> Result<Vec<ShareOut>, ApiError> {
    let reach = match kind {
        ItemKind::Folder => load_folder(state, actor, id, Access::Write, false).await?.1,
        ItemKind::Document => {
            load_document(state, actor, id, Access::Write, false)
                .await?
                .1
        }
    };
    let mut targets: HashMap<ShareTarget, bool> = HashMap::new();
    for w in wanted {
        let t = parse_target(&w.target)?;
        check_share(state, actor, reach.access, t, w.write).await?;
        targets.insert(t, w.write);
    }
    let now = state.now();
    for old in state.store.shares_of(kind, id).await? {
        if !targets.contains_key(&old.target) {
            state.store.delete_share(kind, id, old.target).await?;
        }
    }
    for (t, write) in &targets {
        state
            .store
            .put_share(kind, id, *t, *write, actor.person_id, now)
            .await?;
    }
    let shares = state.store.shares_of(kind, id).await?;
    Ok(shares_out(&shares, kind, id))
}

/// `PUT /api/v1/documents/folders/{id}/shares`: the folder's shares.
#[utoipa::path(put, path = "/api/v1/documents/folders/{id}/shares", tag = "documents",
    params(("id" = i64, Path, description = "Folder id")), request_body = [ShareOut],
    responses((status = 200, body = [ShareOut]), (status = 422, description = "A class or group not taught, not a colleague")))]
async fn api_share_folder(
    State(state): State<AppState>,
    signed: Signed,
    Path(id): Path<i64>,
    JsonIn(body): JsonIn<Vec<ShareOut>>,
) -> Result<Json<Vec<ShareOut>>, ApiError> {
    Ok(Json(
        replace_shares(&state, &signed.session.actor, ItemKind::Folder, id, &body).await?,
    ))
}

/// `GET /api/v1/documents/files/{id}`.
#[utoipa::path(get, path = "/api/v1/documents/files/{id}", tag = "documents",
    params(("id" = i64, Path, description = "Document id")),
    responses((status = 200, body = DocumentDetailOut), (status = 404, description = "No such document the caller may read")))]
async fn api_document(
    State(state): State<AppState>,
    signed: Signed,
    Path(id): Path<i64>,
) -> Result<Json<DocumentDetailOut>, ApiError> {
    let (doc, reach) =
        load_document(&state, &signed.session.actor, id, Access::Read, false).await?;
    Ok(Json(DocumentDetailOut {
        document: document_out(&doc),
        access: access_name(reach.access),
        shares: if reach.access.write() {
            shares_out(&reach.shares, ItemKind::Document, id)
        } else {
            Vec::new()
        },
    }))
}

/// `PUT /api/v1/documents/files/{id}`: rename, move, trash or restore.
#[utoipa::path(put, path = "/api/v1/documents/files/{id}", tag = "documents",
    params(("id" = i64, Path, description = "Document id")), request_body = ItemUpdateIn,
    responses((status = 200, body = DocumentOut), (status = 422, description = "Invalid name")))]
async fn api_update_document(
    State(state): State<AppState>,
    signed: Signed,
    Path(id): Path<i64>,
    JsonIn(body): JsonIn<ItemUpdateIn>,
) -> Result<Json<DocumentOut>, ApiError> {
    let actor = &signed.session.actor;
    if let Some(n) = &body.name {
        name_of(n)?;
    }
    let mut last = None;
    for op in update_ops(&body) {
        last = Some(apply_document(&state, actor, id, op).await?);
    }
    let doc = match last {
        Some(d) => d,
        None => {
            load_document(&state, actor, id, Access::Read, false)
                .await?
                .0
        }
    };
    Ok(Json(document_out(&doc)))
}

/// `DELETE /api/v1/documents/files/{id}`: to the trash.
#[utoipa::path(delete, path = "/api/v1/documents/files/{id}", tag = "documents",
    params(("id" = i64, Path, description = "Document id")),
    responses((status = 204, description = "In the trash for 30 days")))]
async fn api_trash_document(
    State(state): State<AppState>,
    signed: Signed,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    apply_document(&state, &signed.session.actor, id, Op::Trash).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `PUT /api/v1/documents/files/{id}/shares`: the document's shares.
#[utoipa::path(put, path = "/api/v1/documents/files/{id}/shares", tag = "documents",
    params(("id" = i64, Path, description = "Document id")), request_body = [ShareOut],
    responses((status = 200, body = [ShareOut]), (status = 422, description = "A class or group not taught, not a colleague")))]
async fn api_share_document(
    State(state): State<AppState>,
    signed: Signed,
    Path(id): Path<i64>,
    JsonIn(body): JsonIn<Vec<ShareOut>>,
) -> Result<Json<Vec<ShareOut>>, ApiError> {
    Ok(Json(
        replace_shares(&state, &signed.session.actor, ItemKind::Document, id, &body).await?,
    ))
}

// ------------------------------------------------ uploads in pieces (tus)

/// The tus protocol version spoken.
const TUS_VERSION: &str = "1.0.0";

/// A tus answer: `status`, the given headers, the protocol version and no
/// caching.
fn tus_response(status: StatusCode, headers: &[(&'static str, String)]) -> Response {
    let mut r = status.into_response();
    let h = r.headers_mut();
    for (name, value) in headers {
        if let Ok(v) = axum::http::HeaderValue::from_str(value) {
            h.insert(axum::http::HeaderName::from_static(name), v);
        }
    }
    h.insert(
        axum::http::HeaderName::from_static("tus-resumable"),
        axum::http::HeaderValue::from_static(TUS_VERSION),
    );
    h.insert(
        axum::http::header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    r
}

/// A header holding a whole number, if present and valid.
fn header_u64(headers: &HeaderMap, name: &str) -> Result<Option<u64>, ApiError> {
    match headers.get(name) {
        None => Ok(None),
        Some(v) => v
            .to_str()
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Some)
            .ok_or(ApiError::BadRequest("upload_header_invalid")),
    }
}

/// Refuses another version of the protocol.
fn check_tus_version(headers: &HeaderMap) -> Result<(), ApiError> {
    match headers.get("tus-resumable") {
        Some(v) if v.as_bytes() != TUS_VERSION.as_bytes() => {
            Err(ApiError::BadRequest("tus_version"))
        }
        _ => Ok(()),
    }
}

/// The `filename` of `Upload-Metadata` (comma-separated `key base64`).
fn upload_file_name(headers: &HeaderMap) -> Result<String, ApiError> {
    use base64::Engine;
    let raw = headers
        .get("upload-metadata")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    for pair in raw.split(',') {
        let mut it = pair.trim().splitn(2, ' ');
        if it.next() == Some("filename") {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(it.next().unwrap_or("").trim())
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or(ApiError::Invalid("file_name_invalid"))?;
            let clean =
                ardoise_files::validate_file_name(&decoded).map_err(crate::upload::files_error)?;
            return name_of(&clean);
        }
    }
    Err(ApiError::Invalid("file_name_invalid"))
}

/// `POST /api/v1/documents/folders/{id}/uploads`: starts an upload in
/// pieces (tus creation): `Upload-Length` and `Upload-Metadata: filename
/// <base64>`; answers `Location` to send the bytes to.
#[utoipa::path(post, path = "/api/v1/documents/folders/{id}/uploads", tag = "documents",
    params(("id" = i64, Path, description = "Folder id"),
        ("Upload-Length" = u64, Header, description = "The whole file's length"),
        ("Upload-Metadata" = String, Header, description = "`filename` and the name in base64")),
    responses((status = 201, description = "Created; `Location` names the upload"),
        (status = 413, description = "Larger than the role's limit"),
        (status = 422, description = "Empty, invalid name, quota exceeded")))]
async fn api_create_partial(
    State(state): State<AppState>,
    signed: Signed,
    Path(id): Path<i64>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    check_tus_version(&headers)?;
    let actor = &signed.session.actor;
    let (folder, _) = load_folder(&state, actor, id, Access::Write, false).await?;
    if !state.files.accepting_writes() {
        return Err(ApiError::Unavailable);
    }
    let length = header_u64(&headers, "upload-length")?
        .ok_or(ApiError::BadRequest("upload_header_invalid"))?;
    if length == 0 {
        return Err(ApiError::Invalid("file_empty"));
    }
    let name = upload_file_name(&headers)?;
    let (quota, used, limit) = quota_of(&state, actor).await?;
    let (allowance, quota_binds) = rules::upload_allowance(limit, quota, used);
    if length > allowance {
        return Err(if quota_binds {
            ApiError::Invalid("quota_exceeded")
        } else {
            ApiError::FileTooLarge
        });
    }
    let token = state
        .partials
        .create(&crate::partial::PartialMeta {
            person_id: actor.person_id.0,
            folder_id: folder.id,
            name,
            length,
            created_at: state.now(),
        })
        .await?;
    Ok(tus_response(
        StatusCode::CREATED,
        &[
            ("location", format!("/api/v1/documents/uploads/{token}")),
            ("upload-offset", "0".into()),
        ],
    ))
}

/// `HEAD /api/v1/documents/uploads/{token}`: how much of the caller's
/// upload has arrived (`Upload-Offset`).
#[utoipa::path(head, path = "/api/v1/documents/uploads/{token}", tag = "documents",
    params(("token" = String, Path, description = "The upload, from its Location")),
    responses((status = 200, description = "`Upload-Offset` and `Upload-Length`"),
        (status = 404, description = "Not an upload of the caller, or abandoned for a day")))]
async fn api_partial_offset(
    State(state): State<AppState>,
    signed: Signed,
    Path(token): Path<String>,
) -> Result<Response, ApiError> {
    let (meta, offset) = state
        .partials
        .find(&token, signed.session.person_id().0, state.now())
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(tus_response(
        StatusCode::OK,
        &[
            ("upload-offset", offset.to_string()),
            ("upload-length", meta.length.to_string()),
        ],
    ))
}

/// `PATCH /api/v1/documents/uploads/{token}`: the next bytes
/// (`Content-Type: application/offset+octet-stream`), from `Upload-Offset`,
/// which must be what arrived so far. Bytes are kept even if the
/// connection breaks. With the last byte, the file becomes a document:
/// the answer then carries its id (`x-ardoise-document`).
#[utoipa::path(patch, path = "/api/v1/documents/uploads/{token}", tag = "documents",
    params(("token" = String, Path, description = "The upload, from its Location"),
        ("Upload-Offset" = u64, Header, description = "Bytes already sent")),
    request_body(content_type = "application/offset+octet-stream", description = "The next bytes"),
    responses((status = 204, description = "The new `Upload-Offset`; `x-ardoise-document` once whole"),
        (status = 409, description = "`Upload-Offset` is not what arrived, or another request is sending"),
        (status = 415, description = "Not application/offset+octet-stream"),
        (status = 422, description = "More bytes than declared, quota exceeded, infected")))]
async fn api_partial_patch(
    State(state): State<AppState>,
    signed: Signed,
    Path(token): Path<String>,
    req: Request,
) -> Result<Response, ApiError> {
    use futures_util::TryStreamExt;
    check_tus_version(req.headers())?;
    let me = signed.session.person_id().0;
    if state
        .partials
        .find(&token, me, state.now())
        .await?
        .is_none()
    {
        return Err(ApiError::NotFound);
    }
    let octets = req
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes() == b"application/offset+octet-stream");
    if !octets {
        return Err(ApiError::UnsupportedMediaType);
    }
    let claimed = header_u64(req.headers(), "upload-offset")?
        .ok_or(ApiError::BadRequest("upload_header_invalid"))?;
    let busy = state
        .partials
        .lock(&token)
        .ok_or(ApiError::Conflict("upload_busy"))?;
    // Read again under the lock: another request may just have ended.
    let (meta, offset) = state
        .partials
        .find(&token, me, state.now())
        .await?
        .ok_or(ApiError::NotFound)?;
    if claimed != offset {
        return Err(ApiError::Conflict("upload_offset_mismatch"));
    }
    let at = if offset < meta.length {
        let body = req
            .into_body()
            .into_data_stream()
            .map_err(std::io::Error::other);
        match state
            .partials
            .append(&busy, &token, offset, meta.length, body)
            .await
        {
            Err(ApiError::Invalid("upload_too_long")) => {
                // Not the file announced: nothing of it is kept.
                state.partials.remove(&token).await?;
                return Err(ApiError::Invalid("upload_too_long"));
            }
            other => other?,
        }
    } else {
        offset
    };
    if at < meta.length {
        return Ok(tus_response(
            StatusCode::NO_CONTENT,
            &[("upload-offset", at.to_string())],
        ));
    }
    let doc = finish_partial(&state, &signed, &token, &meta).await;
    if matches!(
        doc,
        Err(ApiError::Invalid(_)
            | ApiError::FileTooLarge
            | ApiError::NotFound
            | ApiError::Forbidden)
    ) {
        // It can never become a document: do not keep the bytes.
        state.partials.remove(&token).await?;
    }
    let doc = doc?;
    Ok(tus_response(
        StatusCode::NO_CONTENT,
        &[
            ("upload-offset", at.to_string()),
            ("x-ardoise-document", doc.id.to_string()),
        ],
    ))
}

/// The last byte is in: the file goes to the blob store (durable, scanned)
/// and becomes a document of the folder, if the caller may still write
/// there and it fits their quota; then the pieces are forgotten.
async fn finish_partial(
    state: &AppState,
    signed: &Signed,
    token: &str,
    meta: &crate::partial::PartialMeta,
) -> Result<DocumentView, ApiError> {
    let actor = &signed.session.actor;
    let (folder, _) = load_folder(state, actor, meta.folder_id, Access::Write, false).await?;
    let file = state.partials.open(token).await?;
    let blob = state
        .files
        .put(
            Box::pin(tokio_util::io::ReaderStream::new(file)),
            meta.length,
        )
        .await
        .map_err(crate::upload::files_error)?;
    crate::upload::scan(state, &blob).await?;
    // The insert checks usage against the quota itself.
    let quota = state.config.documents.quotas.for_actor(actor);
    let docs = state
        .store
        .insert_documents(&[document_row(
            folder.id,
            meta.name.clone(),
            &blob,
            actor,
            state.now(),
            quota,
        )])
        .await?
        .ok_or(ApiError::Invalid("quota_exceeded"))?;
    state.partials.remove(token).await?;
    docs.into_iter()
        .next()
        .ok_or_else(|| ApiError::Internal("document not recorded".into()))
}

/// `DELETE /api/v1/documents/uploads/{token}`: abandons the caller's
/// upload (tus termination).
#[utoipa::path(delete, path = "/api/v1/documents/uploads/{token}", tag = "documents",
    params(("token" = String, Path, description = "The upload, from its Location")),
    responses((status = 204), (status = 404, description = "Not an upload of the caller"),
        (status = 409, description = "A request is sending bytes to it")))]
async fn api_partial_cancel(
    State(state): State<AppState>,
    signed: Signed,
    Path(token): Path<String>,
) -> Result<Response, ApiError> {
    let me = signed.session.person_id().0;
    if state
        .partials
        .find(&token, me, state.now())
        .await?
        .is_none()
    {
        return Err(ApiError::NotFound);
    }
    let _busy = state
        .partials
        .lock(&token)
        .ok_or(ApiError::Conflict("upload_busy"))?;
    state.partials.remove(&token).await?;
    Ok(tus_response(StatusCode::NO_CONTENT, &[]))
}

/// The documents API's part of the OpenAPI document.
#[derive(OpenApi)]
#[openapi(
    paths(
        api_overview,
        api_trash,
        api_search,
        api_space,
        api_folder,
        api_update_folder,
        api_trash_folder,
        api_create_folder,
        api_upload,
        api_share_folder,
        api_document,
        api_update_document,
        api_trash_document,
        api_share_document,
        api_create_partial,
        api_partial_offset,
        api_partial_patch,
        api_partial_cancel
    ),
    components(schemas(
        FolderOut,
        DocumentOut,
        ShareOut,
        ListingOut,
        DocumentDetailOut,
        SpaceOut,
        OverviewOut,
        TrashOut,
        ItemUpdateIn,
        FolderIn
    ))
)]
pub struct DocumentsApiDoc;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn share_targets_are_read_strictly() {
        assert_eq!(
            parse_target(" class:12 ").ok(),
            Some(ShareTarget::Class(ClassId(12)))
        );
        assert_eq!(
            parse_target("person:4").ok(),
            Some(ShareTarget::Person(PersonId(4)))
        );
        for bad in ["", "class", "class:", "class:x", "school:1", "1:class"] {
            assert!(parse_target(bad).is_err(), "{bad}");
        }
    }
}
