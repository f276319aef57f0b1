//! Opening the database: choice of backend by URL scheme, SQLite pragmas,
//! migrations.

use crate::{StoreError, StoreResult};
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Executor};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The database engine behind a [`Store`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite, the embedded default.
    Sqlite,
    /// PostgreSQL, for scale-out.
    Postgres,
}

impl Backend {
    /// The backend a URL names, from its scheme.
    pub fn from_url(url: &str) -> StoreResult<Backend> {
        let scheme = url.split(':').next().unwrap_or_default();
        match scheme {
            "sqlite" => Ok(Backend::Sqlite),
            "postgres" | "postgresql" => Ok(Backend::Postgres),
            other => Err(StoreError::BadUrl(format!(
                "unknown scheme '{other}': use sqlite://PATH or postgres://HOST/DATABASE"
            ))),
        }
    }
}

/// A handle on the database; cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    pub(crate) pool: AnyPool,
    backend: Backend,
    versions: Arc<Versions>,
}

/// Counts of the writes made through a [`Store`] and its clones, by what
/// they change, so that what is kept in memory can tell it is out of date:
/// read the version *before* loading, keep what was loaded with it, and
/// trust it only while the version is the same. A write counts once it is
/// done, so a load that began before it ends carries an older version.
/// Writes made by another process (the command line, another node) are not
/// counted: whatever keeps data from here must also let it age.
#[derive(Debug, Default)]
struct Versions {
    /// The directory: establishments, classes, groups, subjects, people,
    /// their classes, groups, teachings and guardians.
    directory: AtomicU64,
    /// Announcements.
    announcements: AtomicU64,
}

static MIGRATIONS_SQLITE: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");
static MIGRATIONS_POSTGRES: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

impl Store {
    /// Opens the database at `url`. A SQLite file must exist unless
    /// `create` is true, so that a mistyped path never silently starts an
    /// empty school.
    pub async fn connect(url: &str, create: bool, max_connections: u32) -> StoreResult<Store> {
        sqlx::any::install_default_drivers();
        let backend = Backend::from_url(url)?;
        let url = match backend {
            Backend::Sqlite => {
                let path = sqlite_path(url);
                if path.is_empty() || path == ":memory:" {
                    return Err(StoreError::BadUrl(
                        "an in-memory SQLite database loses everything".into(),
                    ));
                }
                if !create && !std::path::Path::new(&path).exists() {
                    return Err(StoreError::BadUrl(format!(
                        "no database at {path}: check the path, or run `ardoise migrate` to create it"
                    )));
                }
                if let Some(dir) = std::path::Path::new(&path)
                    .parent()
                    .filter(|d| !d.as_os_str().is_empty())
                {
                    std::fs::create_dir_all(dir)
                        .map_err(|e| StoreError::BadUrl(format!("{}: {e}", dir.display())))?;
                }
                format!("sqlite://{path}?mode=rwc")
            }
            Backend::Postgres => url.to_string(),
        };
        let options =
            AnyConnectOptions::from_str(&url).map_err(|e| StoreError::BadUrl(e.to_string()))?;
        let pool = AnyPoolOptions::new()
            .max_connections(max_connections.max(1))
            .acquire_timeout(Duration::from_secs(5))
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // Durability first: an acknowledged write survives a
                        // power cut (synchronous=FULL in WAL mode).
                        conn.execute("PRAGMA journal_mode = WAL").await?;
                        conn.execute("PRAGMA synchronous = FULL").await?;
                        conn.execute("PRAGMA foreign_keys = ON").await?;
                        conn.execute("PRAGMA busy_timeout = 5000").await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await
            .map_err(|e| match e {
                sqlx::Error::Configuration(c) => StoreError::BadUrl(c.to_string()),
                e => StoreError::from_sqlx(e, "value"),
            })?;
        Ok(Store {
            pool,
            backend,
            versions: Arc::default(),
        })
    }

    /// The version of the directory (see `Versions`): it changes with
    /// every write to establishments, classes, groups, subjects, people,
    /// teachings, guardians and memberships made through this store.
    pub fn directory_version(&self) -> u64 {
        self.versions.directory.load(Ordering::Acquire)
    }

    /// The version of the announcements: it changes with every
    /// announcement published or withdrawn through this store.
    pub fn announcements_version(&self) -> u64 {
        self.versions.announcements.load(Ordering::Acquire)
    }

    /// A write to the directory is done.
    pub(crate) fn directory_changed(&self) {
        self.versions.directory.fetch_add(1, Ordering::AcqRel);
    }

    /// A write to the announcements is done.
    pub(crate) fn announcements_changed(&self) {
        self.versions.announcements.fetch_add(1, Ordering::AcqRel);
    }

    /// Applies pending migrations.
    pub async fn migrate(&self) -> StoreResult<()> {
        let migrator = match self.backend {
            Backend::Sqlite => &MIGRATIONS_SQLITE,
            Backend::Postgres => &MIGRATIONS_POSTGRES,
        };
        migrator.run(&self.pool).await?;
        Ok(())
    }

    /// The engine in use.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Checks that the database answers.
    pub async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Closes every connection. On SQLite, first folds the write-ahead
    /// log back into the database file, so a stopped node leaves one file.
    pub async fn close(&self) {
        if self.backend == Backend::Sqlite {
            if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                .execute(&self.pool)
                .await
            {
                tracing::debug!(error = %e, "no checkpoint on close");
            }
        }
        self.pool.close().await;
    }

    /// Creates a new, empty PostgreSQL database named `name` on the server
    /// of `admin_url`, and returns the URL of the new database. Used by
    /// tests to give every test its own database.
    pub async fn create_postgres_database(admin_url: &str, name: &str) -> StoreResult<String> {
        sqlx::any::install_default_drivers();
        if !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        {
            return Err(StoreError::BadUrl(format!("bad database name {name}")));
        }
        let pool = AnyPoolOptions::new()
            .max_connections(1)
            .connect(admin_url)
            .await?;
        // Identifiers cannot be bound as parameters; the name was checked above.
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&pool)
            .await?;
        pool.close().await;
        let mut url = url::Url::parse(admin_url).map_err(|e| StoreError::BadUrl(e.to_string()))?;
        url.set_path(name);
        Ok(url.to_string())
    }

    /// Size of the database in bytes, as the engine reports it.
    pub async fn size_bytes(&self) -> StoreResult<i64> {
        let sql = match self.backend {
            Backend::Sqlite => {
                "SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()"
            }
            Backend::Postgres => "SELECT pg_database_size(current_database())",
        };
        Ok(sqlx::query_scalar::<_, i64>(sql)
            .fetch_one(&self.pool)
            .await?)
    }
}

fn sqlite_path(url: &str) -> String {
    let rest = url.trim_start_matches("sqlite:").trim_start_matches("//");
    rest.split('?').next().unwrap_or_default().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_comes_from_the_scheme() {
        assert_eq!(
            Backend::from_url("sqlite://data/a.db").ok(),
            Some(Backend::Sqlite)
        );
        assert_eq!(
            Backend::from_url("postgres://localhost/x").ok(),
            Some(Backend::Postgres)
        );
        assert_eq!(
            Backend::from_url("postgresql://localhost/x").ok(),
            Some(Backend::Postgres)
        );
        assert!(matches!(
            Backend::from_url("mysql://x"),
            Err(StoreError::BadUrl(_))
        ));
        assert!(matches!(
            Backend::from_url("data/a.db"),
            Err(StoreError::BadUrl(_))
        ));
    }

    #[test]
    fn sqlite_paths_are_read_from_urls() {
        assert_eq!(sqlite_path("sqlite://data/a.db"), "data/a.db");
        assert_eq!(sqlite_path("sqlite:///tmp/a.db?mode=rwc"), "/tmp/a.db");
        assert_eq!(sqlite_path("sqlite:a.db"), "a.db");
    }
}
