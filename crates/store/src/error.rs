//! The store's errors. Texts of `NotFound` and `Conflict` are written for the person who
//! asked for the change; database errors stay generic on the outside.

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The named object does not exist (or is not visible in this scope).
    #[error("{0}")]
    NotFound(String),
    /// The change would break a rule of the directory; nothing was changed.
    #[error("{0}")]
    Conflict(String),
    /// The database was migrated by a newer Postfach than this one.
    #[error(
        "the database has schema version {found}, but this Postfach knows only up to {known}; run the newer Postfach"
    )]
    SchemaTooNew { found: i64, known: i64 },
    #[error("the database URL is not usable: {0}")]
    BadUrl(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("cannot create the database folder {path}: {source}")]
    Io { path: String, source: std::io::Error },
}

impl StoreError {
    pub(crate) fn is_unique_violation(err: &sqlx::Error) -> bool {
        matches!(err, sqlx::Error::Database(e) if e.is_unique_violation())
    }
}
