//! The store's one error type: database failures translated into what callers act on.

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    /// A unique value is taken (a username, an e-mail, a name).
    #[error("{0}")]
    Conflict(String),
    /// The object is still referenced by another and cannot be deleted.
    #[error("{0}")]
    InUse(String),
    /// The caller asked for something the store cannot do (an unknown sort field, say).
    #[error("{0}")]
    Invalid(String),
    /// A stored row the store cannot read (an unknown status, JSON that does not parse): the
    /// database's fault, not the caller's.
    #[error("corrupt data in the database: {0}")]
    Corrupt(String),
    #[error("cannot open the database: {0}")]
    Open(String),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database error: {0}")]
    Database(sqlx::Error),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::RowNotFound => StoreError::NotFound,
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                StoreError::Conflict("an object with that name or value exists already".into())
            }
            sqlx::Error::Database(db) if db.is_foreign_key_violation() => {
                StoreError::InUse("the object is referenced by another object".into())
            }
            sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_) => {
                StoreError::Corrupt(e.to_string())
            }
            _ => StoreError::Database(e),
        }
    }
}

impl StoreError {
    /// Replaces the generic conflict message with one that names what is taken.
    pub(crate) fn conflict_as(self, message: impl Into<String>) -> StoreError {
        match self {
            StoreError::Conflict(_) => StoreError::Conflict(message.into()),
            other => other,
        }
    }
}
