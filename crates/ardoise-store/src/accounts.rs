//! Accounts: people, their credentials, activation codes and throttling
//! state.

use crate::directory::{person_from_row, PERSON_COLUMNS, PERSON_JOINS};
use crate::model::*;
use crate::{Store, StoreError, StoreResult};
use ardoise_core::throttle;
use ardoise_core::{Login, PersonId, Roles, UnixTime};
use sqlx::Row;

impl Store {
    /// Creates a person; the login must be free.
    pub async fn create_person(&self, form: &PersonInsertForm) -> StoreResult<PersonId> {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO people (establishment_id, login, first_name, last_name, roles, title, status, password_hash, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
        )
        .bind(form.establishment_id.0)
        .bind(form.login.as_str())
        .bind(&form.first_name)
        .bind(&form.last_name)
        .bind(form.roles.bits())
        .bind(&form.title)
        .bind(form.status.as_str())
        .bind(form.password_hash.as_deref())
        .bind(form.created_at)
        .fetch_one(&self.pool)
        .await
        .map_err(|e| StoreError::from_sqlx(e, "login"))?;
        self.directory_changed();
        Ok(PersonId(id))
    }

    /// One person.
    pub async fn find_person(&self, id: PersonId) -> StoreResult<Option<PersonSummary>> {
        let sql = format!("SELECT {PERSON_COLUMNS} FROM {PERSON_JOINS} WHERE p.id = $1");
        let row = sqlx::query(&sql)
            .bind(id.0)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(person_from_row).transpose()
    }

    /// One person, by login.
    pub async fn find_person_by_login(&self, login: &Login) -> StoreResult<Option<PersonSummary>> {
        let sql = format!("SELECT {PERSON_COLUMNS} FROM {PERSON_JOINS} WHERE p.login = $1");
        let row = sqlx::query(&sql)
            .bind(login.as_str())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(person_from_row).transpose()
    }

    /// The first free login among `base`, `base2`, `base3`…
    pub async fn free_login(&self, base: &str) -> StoreResult<Login> {
        let taken: Vec<String> =
            sqlx::query_scalar("SELECT login FROM people WHERE login = $1 OR login LIKE $2")
                .bind(base)
                .bind(format!("{base}%"))
                .fetch_all(&self.pool)
                .await?;
        let mut n = 1;
        loop {
            let candidate = if n == 1 {
                base.to_string()
            } else {
                format!("{base}{n}")
            };
            if !taken.contains(&candidate) {
                return Login::parse(&candidate)
                    .map_err(|_| StoreError::BadUrl(format!("cannot build a login from {base}")));
            }
            n += 1;
        }
    }

    /// What sign-in needs about the account with this login.
    pub async fn find_credentials(&self, login: &Login) -> StoreResult<Option<Credentials>> {
        let row = sqlx::query(
            "SELECT id, login, first_name, last_name, roles, status, password_hash, activation_code_hash, activation_expires_at, \
                    failures, failure_window_start, locked_until FROM people WHERE login = $1",
        )
        .bind(login.as_str())
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(Credentials {
                person_id: PersonId(r.try_get("id")?),
                login: r.try_get("login")?,
                first_name: r.try_get("first_name")?,
                last_name: r.try_get("last_name")?,
                roles: Roles::from_bits(r.try_get("roles")?),
                status: AccountStatus::parse(&r.try_get::<String, _>("status")?),
                password_hash: r.try_get("password_hash")?,
                activation_code_hash: r.try_get("activation_code_hash")?,
                activation_expires_at: r.try_get("activation_expires_at")?,
                throttle: throttle::State {
                    failures: u32::try_from(r.try_get::<i64, _>("failures")?).unwrap_or(u32::MAX),
                    window_start: r.try_get("failure_window_start")?,
                    locked_until: r.try_get("locked_until")?,
                },
            })
        })
        .transpose()
    }

    /// Records the throttling state after an attempt.
    pub async fn save_throttle(
        &self,
        person_id: PersonId,
        state: &throttle::State,
    ) -> StoreResult<()> {
        sqlx::query("UPDATE people SET failures = $1, failure_window_start = $2, locked_until = $3 WHERE id = $4")
            .bind(i64::from(state.failures))
            .bind(state.window_start)
            .bind(state.locked_until)
            .bind(person_id.0)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Sets a new password hash; the account becomes active and any
    /// activation code is spent.
    pub async fn set_password(&self, person_id: PersonId, password_hash: &str) -> StoreResult<()> {
        let done = sqlx::query(
            "UPDATE people SET password_hash = $1, status = 'active', activation_code_hash = NULL, \
             activation_expires_at = NULL WHERE id = $2 AND status <> 'disabled'",
        )
        .bind(password_hash)
        .bind(person_id.0)
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound("active account"));
        }
        Ok(())
    }

    /// Gives an account a new activation code (its hash) valid until
    /// `expires_at`; the account must activate again.
    pub async fn set_activation_code(
        &self,
        person_id: PersonId,
        code_hash: &str,
        expires_at: UnixTime,
    ) -> StoreResult<()> {
        let done = sqlx::query(
            "UPDATE people SET activation_code_hash = $1, activation_expires_at = $2, status = 'pending', \
             password_hash = NULL, failures = 0, locked_until = 0 WHERE id = $3",
        )
        .bind(code_hash)
        .bind(expires_at)
        .bind(person_id.0)
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound("person"));
        }
        Ok(())
    }

    /// Switches an account on or off. Re-enabling an account that never
    /// chose a password leaves it waiting for activation.
    pub async fn set_status(&self, person_id: PersonId, enabled: bool) -> StoreResult<()> {
        let sql = if enabled {
            "UPDATE people SET status = CASE WHEN password_hash IS NULL THEN 'pending' ELSE 'active' END WHERE id = $1"
        } else {
            "UPDATE people SET status = 'disabled' WHERE id = $1"
        };
        let done = sqlx::query(sql)
            .bind(person_id.0)
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound("person"));
        }
        self.directory_changed();
        Ok(())
    }

    /// People matching a filter, by name.
    pub async fn list_people(&self, filter: &PeopleFilter) -> StoreResult<Vec<PersonSummary>> {
        let (where_sql, binds) = people_where(filter);
        let sql = format!(
            "SELECT {PERSON_COLUMNS} FROM {PERSON_JOINS} {where_sql} ORDER BY lower(p.last_name), lower(p.first_name), p.id LIMIT {} OFFSET {}",
            filter.limit.clamp(1, 500),
            filter.offset.max(0)
        );
        let mut q = sqlx::query(&sql);
        for b in binds {
            q = match b {
                Bind::I(i) => q.bind(i),
                Bind::T(t) => q.bind(t),
            };
        }
        let rows = q.fetch_all(&self.pool).await?;
        rows.iter().map(person_from_row).collect()
    }

    /// How many people match a filter (ignoring limit and offset).
    pub async fn count_people(&self, filter: &PeopleFilter) -> StoreResult<i64> {
        let (where_sql, binds) = people_where(filter);
        let sql = format!("SELECT COUNT(*) FROM {PERSON_JOINS} {where_sql}");
        let mut q = sqlx::query_scalar::<_, i64>(&sql);
        for b in binds {
            q = match b {
                Bind::I(i) => q.bind(i),
                Bind::T(t) => q.bind(t),
            };
        }
        Ok(q.fetch_one(&self.pool).await?)
    }
}

enum Bind {
    I(i64),
    T(String),
}

fn people_where(filter: &PeopleFilter) -> (String, Vec<Bind>) {
    let mut clauses = Vec::new();
    let mut binds = Vec::new();
    if let Some(e) = filter.establishment_id {
        binds.push(Bind::I(e.0));
        clauses.push(format!("p.establishment_id = ${}", binds.len()));
    }
    if let Some(role) = filter.role {
        binds.push(Bind::I(ardoise_core::Roles::only(role).bits()));
        let n = binds.len();
        clauses.push(format!("(p.roles & ${n}) = ${n}"));
    }
    if let Some(c) = filter.class_id {
        binds.push(Bind::I(c.0));
        clauses.push(format!("m.class_id = ${}", binds.len()));
    }
    let query = filter.query.trim().to_lowercase();
    if !query.is_empty() {
        // LIKE wildcards typed by a person are taken literally.
        let escaped = query
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        binds.push(Bind::T(format!("%{escaped}%")));
        let n = binds.len();
        clauses.push(format!(
            "(lower(p.login) LIKE ${n} ESCAPE '\\' OR lower(p.first_name) LIKE ${n} ESCAPE '\\' \
             OR lower(p.last_name) LIKE ${n} ESCAPE '\\')"
        ));
    }
    let sql = if clauses.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", clauses.join(" AND "))
    };
    (sql, binds)
}
