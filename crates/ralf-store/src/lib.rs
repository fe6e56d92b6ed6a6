//! ralf's persistence. One [`Store`] over either SQLite (the embedded default) or PostgreSQL:
//! every query is written once, with `$N` placeholders both dialects accept, and runs on
//! whichever pool the store holds (`with_db!`); the statements several methods share inside
//! their transactions, and the few that differ between the databases, are methods of the
//! per-driver traits in `driver`. Each backend has its own migrations folder with the same
//! tables and columns.
//!
//! Fixed statements are `&'static str` constants (a shared column list is joined in at compile
//! time); only SQL put together at run time (a sort order, a list of ids) goes through
//! `audited`.
//!
//! SQLite runs in WAL mode with one writer connection and several readers, so writers queue
//! instead of failing with "database is locked".

pub mod backup;
pub mod catalog;
pub mod cluster;
pub mod dispatch;
mod driver;
pub mod environments;
mod error;
mod events;
pub mod host_configs;
mod in_project;
pub mod integrations;
pub mod inventories;
pub mod keys;
pub mod migrate;
pub mod notifications;
pub mod ops;
mod output;
pub mod projects;
mod refs;
pub mod repositories;
pub mod retention;
pub mod runners;
pub mod schedules;
pub mod secrets;
mod task_pages;
pub mod tasks;
pub mod templates;
pub mod users;
pub mod views;

pub use error::StoreError;
pub use output::OutputChunk;
/// Where the store lives (defined in `ralf-core`, which configuration and tests share).
pub use ralf_core::database::DatabaseSettings;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

#[derive(Clone)]
pub(crate) enum Db {
    Sqlite { read: SqlitePool, write: SqlitePool },
    Postgres(PgPool),
}

/// The handle to the database; cheap to clone, shared by every request.
#[derive(Clone)]
pub struct Store {
    pub(crate) db: Db,
    /// Task list pages this server keeps serialized (`task_pages`).
    task_pages: std::sync::Arc<task_pages::TaskPages>,
}

/// Runs `$body` with `$pool` bound to the pool of the store's backend: `read` picks SQLite's
/// reader pool, `write` its single writer. The body is compiled once per backend; what differs
/// between the two is in [`driver`], never in the body.
///
/// `with_db!(store, read, |pool| body)`; the form without the second comma is the older
/// spelling, which rustfmt cannot lay out.
macro_rules! with_db {
    ($store:expr, read, |$pool:ident| $body:expr) => {
        match &$store.db {
            $crate::Db::Sqlite { read: $pool, .. } => $body,
            $crate::Db::Postgres($pool) => $body,
        }
    };
    ($store:expr, write, |$pool:ident| $body:expr) => {
        match &$store.db {
            $crate::Db::Sqlite { write: $pool, .. } => $body,
            $crate::Db::Postgres($pool) => $body,
        }
    };
}
pub(crate) use with_db;

impl Store {
    /// Opens the database and brings its schema up to date.
    pub async fn connect(settings: &DatabaseSettings) -> Result<Store> {
        let db = match settings {
            DatabaseSettings::Sqlite { path } => {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir).map_err(|e| {
                        StoreError::Open(format!("cannot create {}: {e}", dir.display()))
                    })?;
                }
                create_private(path)
                    .map_err(|e| StoreError::Open(format!("{}: {e}", path.display())))?;
                let options = SqliteConnectOptions::new()
                    .filename(path)
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
                    .foreign_keys(true)
                    .busy_timeout(Duration::from_secs(10));
                let write = SqlitePoolOptions::new()
                    .max_connections(1)
                    .connect_with(options.clone())
                    .await
                    .map_err(|e| StoreError::Open(format!("{}: {e}", path.display())))?;
                migrated(sqlx::migrate!("./migrations/sqlite").run(&write).await)?;
                make_private(path)
                    .map_err(|e| StoreError::Open(format!("{}: {e}", path.display())))?;
                let read = SqlitePoolOptions::new()
                    .max_connections(8)
                    .connect_with(options.read_only(true))
                    .await
                    .map_err(|e| StoreError::Open(format!("{}: {e}", path.display())))?;
                Db::Sqlite { read, write }
            }
            DatabaseSettings::Postgres { url } => {
                let options = PgConnectOptions::from_str(url)
                    .map_err(|e| StoreError::Open(format!("{}: {e}", settings.redacted())))?;
                let pool = PgPoolOptions::new()
                    .max_connections(16)
                    .acquire_timeout(Duration::from_secs(10))
                    .connect_with(options)
                    .await
                    .map_err(|e| StoreError::Open(format!("{}: {e}", settings.redacted())))?;
                migrated(sqlx::migrate!("./migrations/postgres").run(&pool).await)?;
                Db::Postgres(pool)
            }
        };
        Ok(Store {
            db,
            task_pages: Default::default(),
        })
    }

    /// `"sqlite"` or `"postgres"`.
    pub fn dialect(&self) -> &'static str {
        match self.db {
            Db::Sqlite { .. } => "sqlite",
            Db::Postgres(_) => "postgres",
        }
    }

    /// Closes every connection (tests call this before dropping a database).
    pub async fn close(&self) {
        match &self.db {
            Db::Sqlite { read, write } => {
                read.close().await;
                write.close().await;
            }
            Db::Postgres(pool) => pool.close().await,
        }
    }
}

/// A migration run's result; a database migrated by a newer ralf is named as such.
fn migrated(result: Result<(), sqlx::migrate::MigrateError>) -> Result<()> {
    match result {
        Err(sqlx::migrate::MigrateError::VersionMissing(version)) => {
            Err(StoreError::Open(format!(
                "it has migration {version}, which this ralf does not know: a newer ralf wrote it; \
             use that version or a later one"
            )))
        }
        other => Ok(other?),
    }
}

/// Builds `ORDER BY` from a list call's `sort`/`order`, allowing only the named columns.
/// `allowed` maps the API's field names to SQL expressions; the first entry is the default.
/// `id` breaks ties so pages are stable.
pub(crate) fn order_by(
    allowed: &[(&str, &str)],
    sort: Option<&str>,
    descending: bool,
) -> Result<String> {
    let column = match sort {
        None | Some("") => allowed[0].1,
        Some(field) => allowed
            .iter()
            .find(|(name, _)| *name == field)
            .map(|(_, sql)| *sql)
            .ok_or_else(|| {
                let names: Vec<&str> = allowed.iter().map(|(n, _)| *n).collect();
                StoreError::Invalid(format!(
                    "cannot sort by {field:?}; sort by one of: {}",
                    names.join(", ")
                ))
            })?,
    };
    let dir = if descending { "DESC" } else { "ASC" };
    Ok(format!("ORDER BY {column} {dir}, id {dir}"))
}

/// `Ok` when a statement aimed at one row changed it, [`StoreError::NotFound`] when it changed
/// none.
pub(crate) fn found(rows_affected: u64) -> Result<()> {
    if rows_affected == 0 {
        Err(StoreError::NotFound)
    } else {
        Ok(())
    }
}

/// Creates an SQLite database file readable by its owner only, if there is none yet (SQLite
/// gives its `-wal` and `-shm` files the database file's mode).
fn create_private(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// Takes group and other access away from an SQLite database file and its `-wal` and `-shm`
/// files (a database made before ralf did so, or by another program), saying so in the log.
fn make_private(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    for suffix in ["", "-wal", "-shm"] {
        let mut file = path.as_os_str().to_owned();
        file.push(suffix);
        let file = std::path::PathBuf::from(file);
        let mode = match std::fs::metadata(&file) {
            Ok(meta) => meta.permissions().mode(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        if mode & 0o077 != 0 {
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600))?;
            tracing::info!(file = %file.display(), was = format!("{:o}", mode & 0o777),
                "made the database file readable by its owner only (0600)");
        }
    }
    Ok(())
}

/// Marks SQL that was put together at run time from constants and whitelisted column names
/// only (never from user input), which sqlx asks callers to vouch for.
pub(crate) fn audited(sql: &str) -> sqlx::AssertSqlSafe<&str> {
    sqlx::AssertSqlSafe(sql)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorting_accepts_only_listed_fields() {
        let allowed = [("name", "name"), ("created", "created")];
        assert_eq!(
            order_by(&allowed, None, false).unwrap(),
            "ORDER BY name ASC, id ASC"
        );
        assert_eq!(
            order_by(&allowed, Some("created"), true).unwrap(),
            "ORDER BY created DESC, id DESC"
        );
        assert!(order_by(&allowed, Some("password; DROP TABLE users"), false).is_err());
    }
}
