//! The audit log: who did what, when, to whom. Append-only.

use crate::model::AuditEntry;
use crate::{Store, StoreResult};
use ardoise_core::{PersonId, UnixTime};
use sqlx::Row;

impl Store {
    /// Appends a line to the audit log.
    pub async fn record_audit(
        &self,
        at: UnixTime,
        actor: Option<PersonId>,
        action: &str,
        target: &str,
        detail: &str,
    ) -> StoreResult<()> {
        sqlx::query("INSERT INTO audit_log (at, actor_id, action, target, detail) VALUES ($1, $2, $3, $4, $5)")
            .bind(at)
            .bind(actor.map(|a| a.0))
            .bind(action)
            .bind(target)
            .bind(detail)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The latest lines of the audit log, newest first.
    pub async fn list_audit(&self, limit: i64) -> StoreResult<Vec<AuditEntry>> {
        let rows = sqlx::query("SELECT id, at, actor_id, action, target, detail FROM audit_log ORDER BY id DESC LIMIT $1")
            .bind(limit.clamp(1, 1000))
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(AuditEntry {
                    id: r.try_get("id")?,
                    at: r.try_get("at")?,
                    actor_id: r.try_get::<Option<i64>, _>("actor_id")?.map(PersonId),
                    action: r.try_get("action")?,
                    target: r.try_get("target")?,
                    detail: r.try_get("detail")?,
                })
            })
            .collect()
    }
}
