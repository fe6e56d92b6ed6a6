//! Where the store lives: the one value that configuration, the store, the server and the tests'
//! databases all pass around.

use std::path::PathBuf;

use crate::redact::redact_url;

/// Where the store lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseSettings {
    /// An SQLite file; created with its directory when missing.
    Sqlite { path: PathBuf },
    /// A PostgreSQL connection URL (`postgres://user:pass@host:port/db?options`).
    Postgres { url: String },
}

impl DatabaseSettings {
    /// The database location with any password in the URL replaced, safe for logs.
    pub fn redacted(&self) -> String {
        match self {
            DatabaseSettings::Sqlite { path } => format!("sqlite:{}", path.display()),
            DatabaseSettings::Postgres { url } => redact_url(url),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_postgres_password() {
        let db = DatabaseSettings::Postgres {
            url: "postgres://ralf:s3cret@db.internal:5432/ralf".into(),
        };
        assert_eq!(
            db.redacted(),
            "postgres://ralf:**********@db.internal:5432/ralf"
        );
    }
}
