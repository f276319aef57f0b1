//! The document space: folders in spaces, documents naming blobs, shares,
//! the trash and quotas.
//!
//! Bytes live in the blob store; a document row is committed only after
//! its blob is durable. Authorization is `ardoise_core::documents`'s: this
//! module loads what the policy needs (a folder's chain up to its space's
//! root, the shares on it) and applies the policy's audience and spaces in
//! the SQL of lists. Recursive queries (`WITH RECURSIVE`) are written once
//! for both engines; their depth is bounded so that a cycle made by two
//! concurrent moves could never loop.

use crate::binds::{bound, Binds};
use crate::{Store, StoreError, StoreResult};
use ardoise_core::documents::{ShareTarget, Space};
use ardoise_core::{ClassId, EstablishmentId, GroupId, PersonId, UnixTime};
use sqlx::any::AnyRow;
use sqlx::Row;

/// Deepest folder chain walked; deeper folders are refused on creation.
pub const MAX_DEPTH: i64 = 32;

/// A folder as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FolderView {
    pub id: i64,
    /// Its space (the same for every folder of a tree).
    pub space: Space,
    /// `None` for a space's root.
    pub parent_id: Option<i64>,
    /// Empty for a space's root (pages name it after the space).
    pub name: String,
    /// Who made it (`None` for a root).
    pub owner_id: Option<PersonId>,
    pub created_at: UnixTime,
    pub updated_at: UnixTime,
    /// When it was put in the trash, if it is there.
    pub trashed_at: Option<UnixTime>,
}

/// A document as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentView {
    pub id: i64,
    pub folder_id: i64,
    pub name: String,
    /// SHA-256 of the content (the download URL carries it).
    pub blob_hash: String,
    /// Type detected from the content.
    pub mime: String,
    pub size: i64,
    pub owner_id: PersonId,
    /// « Prénom Nom » of the owner.
    pub owner_name: String,
    pub created_at: UnixTime,
    pub updated_at: UnixTime,
    pub trashed_at: Option<UnixTime>,
}

/// A new document whose blob is already durable.
#[derive(Debug, Clone)]
pub struct DocumentInsert {
    pub folder_id: i64,
    pub name: String,
    pub blob_hash: String,
    pub mime: String,
    pub size: i64,
    pub owner_id: PersonId,
    pub now: UnixTime,
    /// The owner's quota, in bytes: the insert is refused past it.
    pub quota: i64,
}

/// Folder or document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ItemKind {
    Folder,
    Document,
}

impl ItemKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            ItemKind::Folder => "folder",
            ItemKind::Document => "document",
        }
    }

    fn table(self) -> &'static str {
        match self {
            ItemKind::Folder => "doc_folders",
            ItemKind::Document => "documents",
        }
    }
}

/// A share as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareView {
    pub id: i64,
    pub item_kind: ItemKind,
    pub item_id: i64,
    pub target: ShareTarget,
    /// Read and write (colleagues only).
    pub write: bool,
    /// The class's, group's or person's name.
    pub target_name: String,
}

const FOLDER_COLUMNS: &str = "f.id, f.space_kind, f.space_id, f.establishment_id, f.parent_id, f.name, f.owner_id, f.created_at, f.updated_at, f.trashed_at";
const DOCUMENT_COLUMNS: &str = "d.id, d.folder_id, d.name, d.blob_hash, d.mime, d.size, d.owner_id, p.first_name || ' ' || p.last_name AS owner_name, d.created_at, d.updated_at, d.trashed_at";
const DOCUMENT_FROM: &str = "documents d JOIN people p ON p.id = d.owner_id";

fn space_from(kind: &str, id: i64, establishment: i64) -> StoreResult<Space> {
    let e = EstablishmentId(establishment);
    Ok(match kind {
        "person" => Space::Person(PersonId(id)),
        "class" => Space::Class(ClassId(id), e),
        "group" => Space::Group(GroupId(id), e),
        "establishment" => Space::Establishment(e),
        _ => return Err(StoreError::NotFound("space kind")),
    })
}

fn folder_from_row(r: &AnyRow) -> StoreResult<FolderView> {
    let kind: String = r.try_get("space_kind")?;
    Ok(FolderView {
        id: r.try_get("id")?,
        space: space_from(
            &kind,
            r.try_get("space_id")?,
            r.try_get("establishment_id")?,
        )?,
        parent_id: r.try_get("parent_id")?,
        name: r.try_get("name")?,
        owner_id: r.try_get::<Option<i64>, _>("owner_id")?.map(PersonId),
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
        trashed_at: r.try_get("trashed_at")?,
    })
}

fn document_from_row(r: &AnyRow) -> StoreResult<DocumentView> {
    Ok(DocumentView {
        id: r.try_get("id")?,
        folder_id: r.try_get("folder_id")?,
        name: r.try_get("name")?,
        blob_hash: r.try_get("blob_hash")?,
        mime: r.try_get("mime")?,
        size: r.try_get("size")?,
        owner_id: PersonId(r.try_get("owner_id")?),
        owner_name: r.try_get("owner_name")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
        trashed_at: r.try_get("trashed_at")?,
    })
}

fn share_from_row(r: &AnyRow) -> StoreResult<ShareView> {
    let item: String = r.try_get("item_kind")?;
    let kind: String = r.try_get("target_kind")?;
    let target = ShareTarget::from_parts(&kind, r.try_get("target_id")?)
        .ok_or(StoreError::NotFound("share target kind"))?;
    Ok(ShareView {
        id: r.try_get("id")?,
        item_kind: if item == "folder" {
            ItemKind::Folder
        } else {
            ItemKind::Document
        },
        item_id: r.try_get("item_id")?,
        target,
        write: r.try_get::<i64, _>("can_write")? != 0,
        target_name: r.try_get("target_name")?,
    })
}

/// SQL matching shares (aliased `s`) whose target is one of `audience`,
/// the ids bound to `binds`.
fn audience_sql(audience: &[ShareTarget], binds: &mut Binds) -> String {
    let targets: Vec<(&str, i64)> = audience.iter().map(|t| (t.kind(), t.id())).collect();
    by_kind(&targets, ["class", "group", "person"], "s.target", binds)
}

/// SQL matching root folders (aliased `f`) of `spaces`, the ids bound to
/// `binds`.
fn spaces_sql(spaces: &[Space], binds: &mut Binds) -> String {
    let roots: Vec<(&str, i64)> = spaces.iter().map(|s| (s.kind(), s.id())).collect();
    by_kind(
        &roots,
        ["person", "class", "group", "establishment"],
        "f.space",
        binds,
    )
}

/// SQL matching rows whose `{column}_kind` and `{column}_id` are one of
/// `items`: one list of ids per kind, in the order of `kinds` (so that the
/// text does not depend on the order of `items`), bound to `binds`.
fn by_kind<const N: usize>(
    items: &[(&str, i64)],
    kinds: [&str; N],
    column: &str,
    binds: &mut Binds,
) -> String {
    let parts = kinds
        .into_iter()
        .filter_map(|kind| {
            let ids: Vec<i64> = items
                .iter()
                .filter(|(k, _)| *k == kind)
                .map(|(_, id)| *id)
                .collect();
            (!ids.is_empty()).then(|| {
                format!(
                    "({column}_kind = '{kind}' AND {column}_id IN ({}))",
                    binds.list(ids)
                )
            })
        })
        .collect();
    any_of(parts)
}

/// `parts` joined by OR; nothing matches none.
fn any_of(parts: Vec<String>) -> String {
    if parts.is_empty() {
        "1 = 0".into()
    } else {
        format!("({})", parts.join(" OR "))
    }
}

/// The space's establishment, stored on each folder.
fn space_establishment(space: Space, person_establishment: EstablishmentId) -> EstablishmentId {
    match space {
        Space::Person(_) => person_establishment,
        Space::Class(_, e) | Space::Group(_, e) | Space::Establishment(e) => e,
    }
}

impl Store {
    /// The root folder of a space, created on first use. `establishment`
    /// is the owner's for a person's space (ignored for the others).
    pub async fn space_root(
        &self,
        space: Space,
        establishment: EstablishmentId,
        now: UnixTime,
    ) -> StoreResult<FolderView> {
        let e = space_establishment(space, establishment);
        // Two first visits at once: the partial unique index keeps one root.
        sqlx::query(
            "INSERT INTO doc_folders (space_kind, space_id, establishment_id, parent_id, name, owner_id, created_at, updated_at) \
             VALUES ($1, $2, $3, NULL, '', NULL, $4, $4) \
             ON CONFLICT (space_kind, space_id) WHERE parent_id IS NULL DO NOTHING",
        )
        .bind(space.kind())
        .bind(space.id())
        .bind(e.0)
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(|e| StoreError::from_sqlx(e, "space"))?;
        let sql = format!(
            "SELECT {FOLDER_COLUMNS} FROM doc_folders f WHERE f.space_kind = $1 AND f.space_id = $2 AND f.parent_id IS NULL"
        );
        let row = sqlx::query(&sql)
            .bind(space.kind())
            .bind(space.id())
            .fetch_one(&self.pool)
            .await?;
        folder_from_row(&row)
    }

    /// One folder, trashed or not.
    pub async fn find_folder(&self, id: i64) -> StoreResult<Option<FolderView>> {
        let sql = format!("SELECT {FOLDER_COLUMNS} FROM doc_folders f WHERE f.id = $1");
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(folder_from_row).transpose()
    }

    /// A folder and every folder above it, the folder first and the root
    /// last. Empty if there is no such folder.
    pub async fn folder_chain(&self, id: i64) -> StoreResult<Vec<FolderView>> {
        let sql = format!(
            "WITH RECURSIVE chain(id, depth) AS ( \
               SELECT id, 0 FROM doc_folders WHERE id = $1 \
               UNION ALL \
               SELECT f.parent_id, c.depth + 1 FROM doc_folders f JOIN chain c ON f.id = c.id \
               WHERE f.parent_id IS NOT NULL AND c.depth < {MAX_DEPTH} \
             ) \
             SELECT {FOLDER_COLUMNS} FROM doc_folders f JOIN chain c ON f.id = c.id ORDER BY c.depth"
        );
        let rows = sqlx::query(&sql).bind(id).fetch_all(&self.pool).await?;
        rows.iter().map(folder_from_row).collect()
    }

    /// The shares on a document (if any) and on the folders `folder_ids`.
    pub async fn shares_on(
        &self,
        folder_ids: &[i64],
        document: Option<i64>,
    ) -> StoreResult<Vec<ShareView>> {
        let (sql, values) = shares_on_query(folder_ids, document);
        let rows = bound(&sql, values).fetch_all(&self.pool).await?;
        rows.iter().map(share_from_row).collect()
    }

    /// What a folder holds, outside the trash: folders, then documents,
    /// each by name.
    pub async fn folder_children(
        &self,
        id: i64,
    ) -> StoreResult<(Vec<FolderView>, Vec<DocumentView>)> {
        let sql = format!(
            "SELECT {FOLDER_COLUMNS} FROM doc_folders f WHERE f.parent_id = $1 AND f.trashed_at IS NULL ORDER BY lower(f.name), f.id"
        );
        let rows = sqlx::query(&sql).bind(id).fetch_all(&self.pool).await?;
        let folders = rows
            .iter()
            .map(folder_from_row)
            .collect::<StoreResult<_>>()?;
        let sql = format!(
            "SELECT {DOCUMENT_COLUMNS} FROM {DOCUMENT_FROM} WHERE d.folder_id = $1 AND d.trashed_at IS NULL ORDER BY lower(d.name), d.id"
        );
        let rows = sqlx::query(&sql).bind(id).fetch_all(&self.pool).await?;
        let docs = rows
            .iter()
            .map(document_from_row)
            .collect::<StoreResult<_>>()?;
        Ok((folders, docs))
    }

    /// One document, trashed or not.
    pub async fn find_document(&self, id: i64) -> StoreResult<Option<DocumentView>> {
        let sql = format!("SELECT {DOCUMENT_COLUMNS} FROM {DOCUMENT_FROM} WHERE d.id = $1");
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(document_from_row).transpose()
    }

    /// Bytes of documents a person owns, trash included (the trash counts
    /// until it is purged).
    pub async fn documents_usage(&self, owner: PersonId) -> StoreResult<i64> {
        Ok(sqlx::query_scalar::<_, i64>(
            "SELECT CAST(COALESCE(SUM(size), 0) AS BIGINT) FROM documents WHERE owner_id = $1",
        )
        .bind(owner.0)
        .fetch_one(&self.pool)
        .await?)
    }

    /// Records documents, all or none: `Ok(None)` (and nothing written)
    /// if one would take its owner past their quota. Each quota check and
    /// its insert are one statement, inside one transaction. On SQLite the
    /// transaction holds the only write lock from its first insert; on
    /// PostgreSQL (read committed, where two transactions would each miss
    /// the other's rows) it first takes each owner's advisory lock, so two
    /// uploads by one person at once are counted one after the other.
    pub async fn insert_documents(
        &self,
        docs: &[DocumentInsert],
    ) -> StoreResult<Option<Vec<DocumentView>>> {
        let mut tx = self.pool.begin().await?;
        if self.backend() == crate::Backend::Postgres {
            // In one order, so that two transactions never wait on each other.
            let mut owners: Vec<i64> = docs.iter().map(|d| d.owner_id.0).collect();
            owners.sort_unstable();
            owners.dedup();
            for owner in owners {
                // The key space of advisory locks holds only owner ids (no
                // other advisory lock is taken). The void result is wrapped
                // in a count, which the `Any` driver can decode.
                sqlx::query_scalar::<_, i64>(
                    "SELECT COUNT(*) FROM (SELECT pg_advisory_xact_lock($1)) AS l",
                )
                .bind(owner)
                .fetch_one(&mut *tx)
                .await?;
            }
        }
        let mut ids = Vec::with_capacity(docs.len());
        for d in docs {
            let id: Option<i64> = sqlx::query_scalar(
                "INSERT INTO documents (folder_id, name, blob_hash, mime, size, owner_id, created_at, updated_at) \
                 SELECT $1, $2, $3, $4, $5, $6, $7, $7 \
                 WHERE (SELECT COALESCE(SUM(size), 0) FROM documents WHERE owner_id = $6) + $5 <= $8 \
                 RETURNING id",
            )
            .bind(d.folder_id)
            .bind(&d.name)
            .bind(&d.blob_hash)
            .bind(&d.mime)
            .bind(d.size)
            .bind(d.owner_id.0)
            .bind(d.now)
            .bind(d.quota)
            .fetch_optional(&mut *tx)
            .await
            .map_err(|e| StoreError::from_sqlx(e, "document"))?;
            match id {
                Some(id) => ids.push(id),
                None => {
                    tx.rollback().await?;
                    return Ok(None);
                }
            }
        }
        tx.commit().await?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            out.extend(self.find_document(id).await?);
        }
        Ok(Some(out))
    }

    /// Every folder of a space outside the trash (for "move to" lists).
    pub async fn folders_in_space(&self, space: Space) -> StoreResult<Vec<FolderView>> {
        let sql = format!(
            "SELECT {FOLDER_COLUMNS} FROM doc_folders f WHERE f.space_kind = $1 AND f.space_id = $2 \
             AND f.trashed_at IS NULL ORDER BY f.parent_id IS NOT NULL, lower(f.name), f.id"
        );
        let rows = sqlx::query(&sql)
            .bind(space.kind())
            .bind(space.id())
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(folder_from_row).collect()
    }

    /// The name of a class, group or establishment space (a person's:
    /// their name). `None` if it does not exist.
    pub async fn space_name(&self, space: Space) -> StoreResult<Option<String>> {
        let sql = match space {
            Space::Person(_) => "SELECT first_name || ' ' || last_name FROM people WHERE id = $1",
            Space::Class(..) => "SELECT name FROM classes WHERE id = $1",
            Space::Group(..) => "SELECT name FROM teaching_groups WHERE id = $1",
            Space::Establishment(_) => "SELECT name FROM establishments WHERE id = $1",
        };
        Ok(sqlx::query_scalar::<_, String>(sql)
            .bind(space.id())
            .fetch_optional(&self.pool)
            .await?)
    }

    /// A group's establishment, `None` if there is no such group.
    pub async fn group_establishment(&self, id: GroupId) -> StoreResult<Option<EstablishmentId>> {
        Ok(sqlx::query_scalar::<_, i64>(
            "SELECT establishment_id FROM teaching_groups WHERE id = $1",
        )
        .bind(id.0)
        .fetch_optional(&self.pool)
        .await?
        .map(EstablishmentId))
    }

    /// A new folder inside `parent`, in the same space.
    pub async fn create_folder(
        &self,
        parent: &FolderView,
        name: &str,
        owner: PersonId,
        now: UnixTime,
    ) -> StoreResult<FolderView> {
        // The new folder takes its parent's space and establishment.
        let id: Option<i64> = sqlx::query_scalar(
            "INSERT INTO doc_folders (space_kind, space_id, establishment_id, parent_id, name, owner_id, created_at, updated_at) \
             SELECT space_kind, space_id, establishment_id, id, $1, $2, $3, $3 FROM doc_folders WHERE id = $4 \
             RETURNING id",
        )
        .bind(name)
        .bind(owner.0)
        .bind(now)
        .bind(parent.id)
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| StoreError::from_sqlx(e, "folder"))?;
        let id = id.ok_or(StoreError::NotFound("folder"))?;
        self.find_folder(id)
            .await?
            .ok_or(StoreError::NotFound("folder"))
    }

    /// Renames a folder or document.
    pub async fn rename_item(
        &self,
        kind: ItemKind,
        id: i64,
        name: &str,
        now: UnixTime,
    ) -> StoreResult<()> {
        let sql = format!(
            "UPDATE {} SET name = $1, updated_at = $2 WHERE id = $3",
            kind.table()
        );
        sqlx::query(&sql)
            .bind(name)
            .bind(now)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Moves a document into another folder.
    pub async fn move_document(&self, id: i64, folder: i64, now: UnixTime) -> StoreResult<()> {
        sqlx::query("UPDATE documents SET folder_id = $1, updated_at = $2 WHERE id = $3")
            .bind(folder)
            .bind(now)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Moves a folder under `parent`; it and everything below it take the
    /// parent's space. The caller has refused moves into itself.
    pub async fn move_folder(
        &self,
        id: i64,
        parent: &FolderView,
        now: UnixTime,
    ) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        let e: i64 = sqlx::query_scalar("SELECT establishment_id FROM doc_folders WHERE id = $1")
            .bind(parent.id)
            .fetch_one(&mut *tx)
            .await?;
        sqlx::query("UPDATE doc_folders SET parent_id = $1, updated_at = $2 WHERE id = $3")
            .bind(parent.id)
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let sql = format!(
            "WITH RECURSIVE sub(id, depth) AS ( \
               SELECT id, 0 FROM doc_folders WHERE id = $1 \
               UNION ALL \
               SELECT f.id, s.depth + 1 FROM doc_folders f JOIN sub s ON f.parent_id = s.id WHERE s.depth < {MAX_DEPTH} \
             ) \
             UPDATE doc_folders SET space_kind = $2, space_id = $3, establishment_id = $4 \
             WHERE id IN (SELECT id FROM sub)"
        );
        sqlx::query(&sql)
            .bind(id)
            .bind(parent.space.kind())
            .bind(parent.space.id())
            .bind(e)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Puts an item in the trash (or takes it out with `None`).
    pub async fn set_trashed(
        &self,
        kind: ItemKind,
        id: i64,
        trashed: Option<(PersonId, UnixTime)>,
    ) -> StoreResult<()> {
        let sql = format!(
            "UPDATE {} SET trashed_at = $1, trashed_by = $2 WHERE id = $3",
            kind.table()
        );
        sqlx::query(&sql)
            .bind(trashed.map(|t| t.1))
            .bind(trashed.map(|t| t.0 .0))
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// What a person put in the trash, or owns and is in the trash, newest
    /// first.
    pub async fn trash_of(
        &self,
        person: PersonId,
    ) -> StoreResult<(Vec<FolderView>, Vec<DocumentView>)> {
        let sql = format!(
            "SELECT {FOLDER_COLUMNS} FROM doc_folders f WHERE f.trashed_at IS NOT NULL \
             AND (f.trashed_by = $1 OR f.owner_id = $1) ORDER BY f.trashed_at DESC, f.id"
        );
        let rows = sqlx::query(&sql)
            .bind(person.0)
            .fetch_all(&self.pool)
            .await?;
        let folders = rows
            .iter()
            .map(folder_from_row)
            .collect::<StoreResult<_>>()?;
        let sql = format!(
            "SELECT {DOCUMENT_COLUMNS} FROM {DOCUMENT_FROM} WHERE d.trashed_at IS NOT NULL \
             AND (d.trashed_by = $1 OR d.owner_id = $1) ORDER BY d.trashed_at DESC, d.id"
        );
        let rows = sqlx::query(&sql)
            .bind(person.0)
            .fetch_all(&self.pool)
            .await?;
        let docs = rows
            .iter()
            .map(document_from_row)
            .collect::<StoreResult<_>>()?;
        Ok((folders, docs))
    }

    /// Removes for good what was trashed at or before `before`: documents, and
    /// folders with everything below them and their shares. Returns the
    /// number of documents removed. Their blobs go at the next blob sweep.
    pub async fn purge_trash(&self, before: UnixTime) -> StoreResult<u64> {
        let mut tx = self.pool.begin().await?;
        let sub = format!(
            "WITH RECURSIVE sub(id, depth) AS ( \
               SELECT id, 0 FROM doc_folders WHERE trashed_at IS NOT NULL AND trashed_at <= $1 \
               UNION ALL \
               SELECT f.id, s.depth + 1 FROM doc_folders f JOIN sub s ON f.parent_id = s.id WHERE s.depth < {MAX_DEPTH} \
             )"
        );
        let mut removed = sqlx::query(&format!(
            "{sub} DELETE FROM documents WHERE folder_id IN (SELECT id FROM sub)"
        ))
        .bind(before)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        removed +=
            sqlx::query("DELETE FROM documents WHERE trashed_at IS NOT NULL AND trashed_at <= $1")
                .bind(before)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        sqlx::query(&format!(
            "{sub} DELETE FROM doc_shares WHERE item_kind = 'folder' AND item_id IN (SELECT id FROM sub)"
        ))
        .bind(before)
        .execute(&mut *tx)
        .await?;
        sqlx::query(&format!(
            "{sub} DELETE FROM doc_folders WHERE id IN (SELECT id FROM sub)"
        ))
        .bind(before)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "DELETE FROM doc_shares WHERE item_kind = 'document' AND item_id NOT IN (SELECT id FROM documents)",
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(removed)
    }

    /// The shares of one item, with the names of whom they reach.
    pub async fn shares_of(&self, kind: ItemKind, id: i64) -> StoreResult<Vec<ShareView>> {
        let sql = format!("{SHARE_SELECT} WHERE s.item_kind = $1 AND s.item_id = $2 ORDER BY s.id");
        let rows = sqlx::query(&sql)
            .bind(kind.as_str())
            .bind(id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(share_from_row).collect()
    }

    /// Shares an item (again: the access is updated).
    pub async fn put_share(
        &self,
        kind: ItemKind,
        id: i64,
        target: ShareTarget,
        write: bool,
        by: PersonId,
        now: UnixTime,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO doc_shares (item_kind, item_id, target_kind, target_id, can_write, created_by, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (item_kind, item_id, target_kind, target_id) DO UPDATE SET can_write = excluded.can_write",
        )
        .bind(kind.as_str())
        .bind(id)
        .bind(target.kind())
        .bind(target.id())
        .bind(i64::from(write))
        .bind(by.0)
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(|e| StoreError::from_sqlx(e, "share"))?;
        Ok(())
    }

    /// Stops sharing an item with a target. Whether there was such a share.
    pub async fn delete_share(
        &self,
        kind: ItemKind,
        id: i64,
        target: ShareTarget,
    ) -> StoreResult<bool> {
        let n = sqlx::query(
            "DELETE FROM doc_shares WHERE item_kind = $1 AND item_id = $2 AND target_kind = $3 AND target_id = $4",
        )
        .bind(kind.as_str())
        .bind(id)
        .bind(target.kind())
        .bind(target.id())
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(n > 0)
    }

    /// Items shared with any of `audience` (computed by the policy), not in
    /// the trash, newest share first.
    pub async fn shared_with(
        &self,
        audience: &[ShareTarget],
    ) -> StoreResult<(Vec<FolderView>, Vec<DocumentView>)> {
        let mut binds = Binds::from(1);
        let who = audience_sql(audience, &mut binds);
        let sql = format!(
            "SELECT DISTINCT {FOLDER_COLUMNS} FROM doc_folders f JOIN doc_shares s \
             ON s.item_kind = 'folder' AND s.item_id = f.id \
             WHERE {who} AND f.trashed_at IS NULL ORDER BY f.name, f.id"
        );
        let rows = bound(&sql, binds.values.clone())
            .fetch_all(&self.pool)
            .await?;
        let folders = rows
            .iter()
            .map(folder_from_row)
            .collect::<StoreResult<_>>()?;
        let sql = format!(
            "SELECT DISTINCT {DOCUMENT_COLUMNS} FROM {DOCUMENT_FROM} JOIN doc_shares s \
             ON s.item_kind = 'document' AND s.item_id = d.id \
             WHERE {who} AND d.trashed_at IS NULL ORDER BY d.name, d.id"
        );
        let rows = bound(&sql, binds.values).fetch_all(&self.pool).await?;
        let docs = rows
            .iter()
            .map(document_from_row)
            .collect::<StoreResult<_>>()?;
        Ok((folders, docs))
    }

    /// Documents whose name contains `q` (case-insensitive, ASCII), among
    /// what the actor may read: documents in folders reached from the
    /// roots of `spaces` or from folders shared with `audience` (never
    /// through a trashed folder), and documents shared with `audience`.
    pub async fn search_documents(
        &self,
        spaces: &[Space],
        audience: &[ShareTarget],
        q: &str,
        limit: i64,
    ) -> StoreResult<Vec<DocumentView>> {
        let pattern = format!(
            "%{}%",
            q.to_lowercase()
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_")
        );
        let (sql, values) = search_query(spaces, audience);
        let rows = bound(&sql, values)
            .bind(pattern)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(document_from_row).collect()
    }
}

/// The query of [`Store::shares_on`] and the values it binds.
fn shares_on_query(folder_ids: &[i64], document: Option<i64>) -> (String, Vec<i64>) {
    let mut binds = Binds::from(1);
    let folders = if folder_ids.is_empty() {
        "1 = 0".to_string()
    } else {
        format!(
            "(s.item_kind = 'folder' AND s.item_id IN ({}))",
            binds.list(folder_ids.iter().copied())
        )
    };
    let doc = match document {
        Some(id) => format!(
            " OR (s.item_kind = 'document' AND s.item_id = {})",
            binds.one(id)
        ),
        None => String::new(),
    };
    (
        format!("{SHARE_SELECT} WHERE {folders}{doc} ORDER BY s.id"),
        binds.values,
    )
}

/// The query of [`Store::search_documents`] and the ids it binds, which
/// come before the pattern and the limit (the last two placeholders).
fn search_query(spaces: &[Space], audience: &[ShareTarget]) -> (String, Vec<i64>) {
    let mut binds = Binds::from(1);
    let roots = spaces_sql(spaces, &mut binds);
    // Used twice: the same placeholders, bound once.
    let who = audience_sql(audience, &mut binds);
    let (pattern_at, limit_at) = (binds.next, binds.next + 1);
    let sql = format!(
        "WITH RECURSIVE reach(id, depth) AS ( \
           SELECT f.id, 0 FROM doc_folders f WHERE f.parent_id IS NULL AND {roots} \
           UNION \
           SELECT f.id, 0 FROM doc_folders f JOIN doc_shares s ON s.item_kind = 'folder' AND s.item_id = f.id \
           WHERE {who} AND f.trashed_at IS NULL \
           UNION \
           SELECT f.id, r.depth + 1 FROM doc_folders f JOIN reach r ON f.parent_id = r.id \
           WHERE f.trashed_at IS NULL AND r.depth < {MAX_DEPTH} \
         ) \
         SELECT {DOCUMENT_COLUMNS} FROM {DOCUMENT_FROM} WHERE d.trashed_at IS NULL \
         AND lower(d.name) LIKE ${pattern_at} ESCAPE '\\' \
         AND (d.folder_id IN (SELECT id FROM reach) \
              OR d.id IN (SELECT s.item_id FROM doc_shares s WHERE s.item_kind = 'document' AND {who})) \
         ORDER BY lower(d.name), d.id LIMIT ${limit_at}"
    );
    (sql, binds.values)
}

const SHARE_SELECT: &str =
    "SELECT s.id, s.item_kind, s.item_id, s.target_kind, s.target_id, s.can_write, \
    COALESCE(c.name, g.name, p.first_name || ' ' || p.last_name, '') AS target_name \
    FROM doc_shares s \
    LEFT JOIN classes c ON s.target_kind = 'class' AND c.id = s.target_id \
    LEFT JOIN teaching_groups g ON s.target_kind = 'group' AND g.id = s.target_id \
    LEFT JOIN people p ON s.target_kind = 'person' AND p.id = s.target_id";

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::binds::first_appearances;

    fn pupil(person: i64, class: i64, groups: &[i64]) -> Vec<ShareTarget> {
        let mut audience = vec![ShareTarget::Person(PersonId(person))];
        audience.push(ShareTarget::Class(ClassId(class)));
        audience.extend(groups.iter().map(|g| ShareTarget::Group(GroupId(*g))));
        audience
    }

    #[test]
    fn opening_a_document_is_one_statement_for_every_folder_as_deep() {
        let (a, a_ids) = shares_on_query(&[40, 41, 42], Some(900));
        assert_eq!(a_ids, vec![40, 41, 42, -1, 900]);
        let (b, b_ids) = shares_on_query(&[50, 51, 52], Some(901));
        assert_eq!(a, b);
        for id in ["50", "51", "52", "901"] {
            assert!(!b.contains(id), "{id} written into {b}");
        }
        // Three folders padded to four with an id nobody has, then the
        // document.
        assert_eq!(b_ids, vec![50, 51, 52, -1, 901]);
        assert_eq!(first_appearances(&b), (1..=5).collect::<Vec<_>>());
        // A document at the root and a folder alone are other statements.
        assert_ne!(shares_on_query(&[40], Some(900)).0, a);
        assert_ne!(shares_on_query(&[40, 41, 42], None).0, a);
    }

    #[test]
    fn a_search_is_one_statement_for_pupils_with_as_many_groups() {
        let spaces_a = [
            Space::Person(PersonId(1_001)),
            Space::Class(ClassId(17), EstablishmentId(1)),
            Space::Establishment(EstablishmentId(1)),
        ];
        let spaces_b = [
            Space::Establishment(EstablishmentId(2)),
            Space::Class(ClassId(18), EstablishmentId(2)),
            Space::Person(PersonId(2_002)),
        ];
        let (a, _) = search_query(&spaces_a, &pupil(1_001, 17, &[23, 24]));
        let (b, b_ids) = search_query(&spaces_b, &pupil(2_002, 18, &[26, 27]));
        assert_eq!(a, b, "the order the spaces come in does not matter");
        for id in ["2002", "18", "26", "27"] {
            assert!(!b.contains(id), "{id} written into {b}");
        }
        // Spaces by kind (person, class, establishment), then the audience
        // by kind (class, groups, person); each list padded.
        assert_eq!(b_ids, vec![2_002, 18, 2, 18, 26, 27, 2_002]);
        // The ids, then the pattern and the limit; the audience's
        // placeholders repeat (it is used twice), bound once.
        assert_eq!(
            first_appearances(&b),
            (1..=b_ids.len() + 2).collect::<Vec<_>>()
        );
        // Someone with three groups pads to four: another statement.
        let (c, _) = search_query(&spaces_b, &pupil(2_002, 18, &[26, 27, 28]));
        assert_ne!(b, c);
    }

    #[test]
    fn no_audience_and_no_space_match_nothing() {
        let (sql, ids) = search_query(&[], &[]);
        assert!(ids.is_empty());
        assert_eq!(sql.matches("1 = 0").count(), 3);
        assert_eq!(first_appearances(&sql), vec![1, 2]);
        let (sql, ids) = shares_on_query(&[], None);
        assert!(ids.is_empty());
        assert!(sql.ends_with("WHERE 1 = 0 ORDER BY s.id"), "{sql}");
    }
}
