//! Store errors, mapped from sqlx's by kind so callers can answer 503 for
//! an unreachable database and 409 for a duplicate.

/// What went wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached now (pool timeout, I/O); try later.
    #[error("database unavailable")]
    Unavailable(#[source] sqlx::Error),
    /// A unique value is already taken; the payload names which one.
    #[error("{0} already exists")]
    Conflict(&'static str),
    /// A referenced row does not exist.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The database URL is not one Ardoise can use.
    #[error("database url: {0}")]
    BadUrl(String),
    /// Migrations could not be applied.
    #[error("migration failed")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// Any other database error (a bug or a corrupt database).
    #[error("database error")]
    Other(#[source] sqlx::Error),
}

impl StoreError {
    /// Maps a sqlx error. `unique` names the domain value a unique
    /// violation means in this query. We go by the error's kind, not its
    /// message nor constraint name: SQLite does not report constraint names,
    /// and each of our inserts has at most one unique constraint a caller
    /// can violate.
    pub(crate) fn from_sqlx(e: sqlx::Error, unique: &'static str) -> Self {
        match &e {
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_) => StoreError::Unavailable(e),
            sqlx::Error::Database(db) => match db.kind() {
                sqlx::error::ErrorKind::UniqueViolation => StoreError::Conflict(unique),
                sqlx::error::ErrorKind::ForeignKeyViolation => {
                    StoreError::NotFound("referenced row")
                }
                _ => StoreError::Other(e),
            },
            _ => StoreError::Other(e),
        }
    }

    /// Whether the database is unreachable (and the request may be retried).
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        StoreError::from_sqlx(e, "value")
    }
}
