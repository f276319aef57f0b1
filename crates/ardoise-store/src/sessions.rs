//! Server-side sessions. The web layer keeps them in memory and comes here
//! on a miss (after a restart, or on another node) and on every change.

use crate::directory::{person_from_row, PERSON_CLASS_JOINS, PERSON_COLUMNS};
use crate::model::*;
use crate::{Store, StoreError, StoreResult};
use ardoise_core::{PersonId, UnixTime};
use sqlx::any::AnyRow;
use sqlx::Row;

const SESSION_COLUMNS: &str =
    "s.id, s.token_hash, s.person_id, s.created_at, s.last_seen_at, s.expires_at, s.remembered, s.user_agent, s.csrf_token";

fn session_from_row(r: &AnyRow) -> StoreResult<SessionRecord> {
    Ok(SessionRecord {
        id: r.try_get("id")?,
        token_hash: r.try_get("token_hash")?,
        person_id: PersonId(r.try_get("person_id")?),
        created_at: r.try_get("created_at")?,
        last_seen_at: r.try_get("last_seen_at")?,
        expires_at: r.try_get("expires_at")?,
        remembered: r.try_get::<i64, _>("remembered")? != 0,
        user_agent: r.try_get("user_agent")?,
        csrf_token: r.try_get("csrf_token")?,
    })
}

impl Store {
    /// Records a new session.
    pub async fn insert_session(&self, form: &SessionInsertForm) -> StoreResult<SessionRecord> {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO sessions (token_hash, person_id, created_at, last_seen_at, expires_at, remembered, user_agent, csrf_token) \
             VALUES ($1, $2, $3, $3, $4, $5, $6, $7) RETURNING id",
        )
        .bind(&form.token_hash)
        .bind(form.person_id.0)
        .bind(form.created_at)
        .bind(form.expires_at)
        .bind(i64::from(form.remembered))
        .bind(&form.user_agent)
        .bind(&form.csrf_token)
        .fetch_one(&self.pool)
        .await
        .map_err(|e| StoreError::from_sqlx(e, "session"))?;
        Ok(SessionRecord {
            id,
            token_hash: form.token_hash.clone(),
            person_id: form.person_id,
            created_at: form.created_at,
            last_seen_at: form.created_at,
            expires_at: form.expires_at,
            remembered: form.remembered,
            user_agent: form.user_agent.clone(),
            csrf_token: form.csrf_token.clone(),
        })
    }

    /// A live session by its token's hash.
    pub async fn find_session(
        &self,
        token_hash: &str,
        now: UnixTime,
    ) -> StoreResult<Option<SessionRecord>> {
        let sql = format!("SELECT {SESSION_COLUMNS} FROM sessions s WHERE s.token_hash = $1 AND s.expires_at > $2");
        let row = sqlx::query(&sql)
            .bind(token_hash)
            .bind(now)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(session_from_row).transpose()
    }

    /// Records activity on a session and its new expiry.
    pub async fn touch_session(
        &self,
        token_hash: &str,
        last_seen_at: UnixTime,
        expires_at: UnixTime,
    ) -> StoreResult<()> {
        sqlx::query("UPDATE sessions SET last_seen_at = $1, expires_at = $2 WHERE token_hash = $3")
            .bind(last_seen_at)
            .bind(expires_at)
            .bind(token_hash)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Ends one session by its token's hash.
    pub async fn delete_session(&self, token_hash: &str) -> StoreResult<()> {
        sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
            .bind(token_hash)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Ends a person's session by its public id; returns its token hash if
    /// it existed and belonged to them.
    pub async fn delete_session_of(
        &self,
        person_id: PersonId,
        id: i64,
    ) -> StoreResult<Option<String>> {
        let hash: Option<String> = sqlx::query_scalar(
            "DELETE FROM sessions WHERE id = $1 AND person_id = $2 RETURNING token_hash",
        )
        .bind(id)
        .bind(person_id.0)
        .fetch_optional(&self.pool)
        .await?;
        Ok(hash)
    }

    /// Ends all of a person's sessions but `keep` (a token hash); returns
    /// the hashes of the ended ones.
    pub async fn delete_sessions_of(
        &self,
        person_id: PersonId,
        keep: Option<&str>,
    ) -> StoreResult<Vec<String>> {
        let hashes: Vec<String> = sqlx::query_scalar(
            "DELETE FROM sessions WHERE person_id = $1 AND token_hash <> $2 RETURNING token_hash",
        )
        .bind(person_id.0)
        .bind(keep.unwrap_or(""))
        .fetch_all(&self.pool)
        .await?;
        Ok(hashes)
    }

    /// A person's live sessions, most recent first.
    pub async fn sessions_of(
        &self,
        person_id: PersonId,
        now: UnixTime,
    ) -> StoreResult<Vec<SessionRecord>> {
        let sql = format!(
            "SELECT {SESSION_COLUMNS} FROM sessions s WHERE s.person_id = $1 AND s.expires_at > $2 ORDER BY s.last_seen_at DESC, s.id DESC"
        );
        let rows = sqlx::query(&sql)
            .bind(person_id.0)
            .bind(now)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(session_from_row).collect()
    }

    /// Live sessions with their owners, most recently active first.
    pub async fn list_active_sessions(
        &self,
        now: UnixTime,
        limit: i64,
    ) -> StoreResult<Vec<ActiveSessionView>> {
        let sql = format!(
            "SELECT {SESSION_COLUMNS}, {PERSON_COLUMNS} FROM sessions s JOIN people p ON p.id = s.person_id {PERSON_CLASS_JOINS} \
             WHERE s.expires_at > $1 ORDER BY s.last_seen_at DESC, s.id DESC LIMIT {}",
            limit.clamp(1, 1000)
        );
        let rows = sqlx::query(&sql).bind(now).fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| {
                let mut person = person_from_row(r)?;
                // Both tables have an `id`; the person's comes from person_id.
                person.id = PersonId(r.try_get("person_id")?);
                Ok(ActiveSessionView {
                    session: session_from_row(r)?,
                    person,
                })
            })
            .collect()
    }

    /// How many sessions are live.
    pub async fn count_active_sessions(&self, now: UnixTime) -> StoreResult<i64> {
        Ok(
            sqlx::query_scalar("SELECT COUNT(*) FROM sessions WHERE expires_at > $1")
                .bind(now)
                .fetch_one(&self.pool)
                .await?,
        )
    }

    /// Forgets expired sessions; returns how many.
    pub async fn delete_expired_sessions(&self, now: UnixTime) -> StoreResult<u64> {
        Ok(sqlx::query("DELETE FROM sessions WHERE expires_at <= $1")
            .bind(now)
            .execute(&self.pool)
            .await?
            .rows_affected())
    }
}
