//! Copying a whole database from one store to another (SQLite ⇄ PostgreSQL) and proving the copy.
//!
//! Nothing here names a table: the tables, their columns, keys and foreign keys are read from
//! each database's catalog (`sqlite_master`/`pragma_*`, `information_schema`), so a table added
//! by a later migration is copied with no change here. Both sides must have been migrated by
//! this ralf (same `_sqlx_migrations` versions); the tables and column names must match, and
//! each column's kind is taken from the pair of declared types: a `TIMESTAMPTZ` on either side
//! makes an RFC 3339 `TEXT` on the other a time, a `BOOLEAN` makes `INTEGER` 0/1 a boolean.
//!
//! The copy runs inside one transaction on the target (and one snapshot on the source): rows go
//! table by table in foreign-key order, in primary-key order, in batches; ids are kept; then
//! the id counters are moved past the copied ids (PostgreSQL `setval`, SQLite
//! `sqlite_sequence`). Finally every table is read back through the same transaction and
//! compared with the source by row count and a SHA-256 over its rows rendered canonically;
//! any difference rolls everything back.
//!
//! The code that reads and binds values is written once and expanded per driver
//! (`impl_conn!`); the copy itself is generic over the two connections.
//!
//! One module per step: `catalog` reads what each database declares, `plan` matches the two
//! and orders the tables, `copy` moves and checksums the rows; `conn` holds the values and the
//! two drivers they share.

mod catalog;
mod conn;
mod copy;
mod plan;

use crate::{Store, StoreError, with_db};
use catalog::catalog;
use copy::{checksum, copy_all};
use plan::plan;

/// How to copy.
#[derive(Debug, Clone, Default)]
pub struct MigrateOptions {
    /// Empty a target that holds rows first (in the same transaction) instead of refusing.
    pub force: bool,
    /// Runs on the target after the copy and before the check, to prove a bad copy is caught.
    #[cfg(test)]
    pub(crate) tamper: Option<String>,
}

/// One table's rows and checksum on each side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableReport {
    pub table: String,
    pub source_rows: u64,
    pub target_rows: u64,
    /// Hex SHA-256 of the source's rows, ordered by primary key, rendered canonically.
    pub source_checksum: String,
    pub target_checksum: String,
}

impl TableReport {
    pub fn ok(&self) -> bool {
        self.source_rows == self.target_rows && self.source_checksum == self.target_checksum
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    /// The target holds rows; each table that does, with its count.
    #[error("the target database is not empty: {}", list_counts(.0))]
    NotEmpty(Vec<(String, u64)>),
    /// The two schemas cannot be copied into each other.
    #[error("the databases' schemas differ: {0}")]
    Schema(String),
    /// The copy read back differs from the source; the target was rolled back.
    #[error("the copy differs from the source in {}; the target was left as it was", list_mismatches(.0))]
    Mismatch(Vec<TableReport>),
    #[error("{doing}: {error}")]
    Database { doing: String, error: sqlx::Error },
}

impl From<StoreError> for MigrateError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Database(error) => MigrateError::Database {
                doing: "database error".into(),
                error,
            },
            other => MigrateError::Schema(other.to_string()),
        }
    }
}

fn list_counts(counts: &[(String, u64)]) -> String {
    let parts: Vec<String> = counts
        .iter()
        .map(|(table, rows)| format!("{table} ({rows} rows)"))
        .collect();
    parts.join(", ")
}

fn list_mismatches(reports: &[TableReport]) -> String {
    let parts: Vec<&str> = reports
        .iter()
        .filter(|r| !r.ok())
        .map(|r| r.table.as_str())
        .collect();
    parts.join(", ")
}

/// Wraps a driver error with what was being done.
pub(super) fn doing(what: impl Into<String>) -> impl FnOnce(sqlx::Error) -> MigrateError {
    let doing = what.into();
    move |error| MigrateError::Database { doing, error }
}

impl Store {
    /// Copies every table of this store into `target`, checks the copy and commits it; on any
    /// error or difference the target is rolled back. Answers the per-table check.
    pub async fn migrate_into(
        &self,
        target: &Store,
        options: &MigrateOptions,
    ) -> Result<Vec<TableReport>, MigrateError> {
        with_db!(self, read, |source| {
            let mut snapshot = source.begin().await.map_err(doing("opening the source"))?;
            with_db!(target, write, |target| {
                let mut tx = target.begin().await.map_err(doing("opening the target"))?;
                let copied = copy_all(&mut *snapshot, &mut *tx, options).await;
                match copied {
                    Ok(reports) if reports.iter().all(TableReport::ok) => {
                        tx.commit().await.map_err(doing("committing the target"))?;
                        Ok(reports)
                    }
                    Ok(reports) => {
                        tx.rollback()
                            .await
                            .map_err(doing("rolling back the target"))?;
                        Err(MigrateError::Mismatch(reports))
                    }
                    Err(e) => {
                        let _ = tx.rollback().await;
                        Err(e)
                    }
                }
            })
        })
    }

    /// Compares every table of this store with `other` the way [`Store::migrate_into`] checks
    /// its copy, without changing either.
    pub async fn compare_with(&self, other: &Store) -> Result<Vec<TableReport>, MigrateError> {
        with_db!(self, read, |left| {
            let mut left = left.begin().await.map_err(doing("opening the source"))?;
            with_db!(other, read, |right| {
                let mut right = right.begin().await.map_err(doing("opening the target"))?;
                let tables = plan(&catalog(&mut *left).await?, &catalog(&mut *right).await?)?;
                let mut reports = Vec::new();
                for table in &tables {
                    let (source_rows, source_checksum) = checksum(&mut *left, table).await?;
                    let (target_rows, target_checksum) = checksum(&mut *right, table).await?;
                    reports.push(TableReport {
                        table: table.name.clone(),
                        source_rows,
                        target_rows,
                        source_checksum,
                        target_checksum,
                    });
                }
                Ok(reports)
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audited;
    use ralf_testdb::{Backend, TestDatabase};

    async fn open(db: &TestDatabase) -> Store {
        Store::connect(&db.settings).await.expect("connect")
    }

    async fn exec(store: &Store, sql: &str) {
        with_db!(store, write, |pool| sqlx::raw_sql(audited(sql))
            .execute(pool)
            .await
            .map(|_| ()))
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    async fn count(store: &Store, sql: &str) -> i64 {
        with_db!(store, read, |pool| {
            sqlx::query_scalar::<_, i64>(audited(sql))
                .fetch_one(pool)
                .await
        })
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// Rows that try the corners: sub-microsecond times, NULL beside '', booleans, a task
    /// built from a later task, text keys whose byte order differs from a locale's.
    const ROWS: &str = "
        INSERT INTO users (id, username, name, email, password, admin, created) VALUES
            (1, 'ann', 'Ann', 'ann@x', 'h', 1, '2026-01-02T03:04:05.123456789+00:00'),
            (7, 'bob', '', 'bob@x', '', 0, '2026-01-02T03:04:06+00:00');
        INSERT INTO projects (id, name, created, alert, alert_chat) VALUES
            (3, 'p', '2026-01-02T03:04:05Z', 1, NULL), (4, 'q', '2026-01-03T00:00:00Z', 0, '');
        INSERT INTO templates (id, project_id, name, app, playbook) VALUES (5, 3, 't', 'bash', 'a.sh');
        INSERT INTO tasks (id, project_id, template_id, status, user_id, build_task_id, created, start)
            VALUES (10, 3, 5, 'success', 1, 12, '2026-01-02T03:04:07.5+00:00', NULL),
                   (12, 3, 5, 'error', NULL, NULL, '2026-01-02T03:04:08+00:00', '2026-01-02T03:04:09+00:00');
        INSERT INTO task_output (id, task_id, first_line, line_count, time, offsets, output)
            VALUES (20, 10, 0, 2, '2026-01-02T03:04:07.5+00:00', '0,15', 'one\ntwo');
        INSERT INTO options (key, value) VALUES ('b', '1'), ('B', '2'), ('a', ''), ('é', 'x');
        INSERT INTO events (id, project_id, user_id, object_type, description, created)
            VALUES (30, 3, 1, 'task', 'ran', '2026-01-02T03:04:07+00:00');
    ";

    fn all_ok(reports: &[TableReport]) {
        for r in reports {
            assert!(r.ok(), "{r:?}");
        }
    }

    fn rows_of<'a>(reports: &'a [TableReport], table: &str) -> &'a TableReport {
        reports.iter().find(|r| r.table == table).expect(table)
    }

    #[tokio::test]
    async fn copies_sqlite_to_postgres_and_back() {
        let sqlite = TestDatabase::new(Backend::Sqlite).await;
        let source = open(&sqlite).await;
        exec(&source, ROWS).await;

        let pg = TestDatabase::new(Backend::Postgres).await;
        let target = open(&pg).await;
        let reports = source
            .migrate_into(&target, &MigrateOptions::default())
            .await
            .unwrap();
        all_ok(&reports);
        assert_eq!(rows_of(&reports, "tasks").target_rows, 2);
        assert_eq!(rows_of(&reports, "options").target_rows, 4);
        assert!(
            reports.iter().any(|r| r.table == "task_secrets"),
            "every table is copied"
        );
        // Referenced tables come first.
        let at = |t: &str| reports.iter().position(|r| r.table == t).unwrap();
        assert!(at("users") < at("tasks") && at("tasks") < at("task_output"));
        all_ok(&source.compare_with(&target).await.unwrap());
        assert_eq!(
            count(&target, "SELECT build_task_id FROM tasks WHERE id = 10").await,
            12
        );
        // New rows get ids after the copied ones.
        exec(&target, "INSERT INTO users (username, name, email, password, created) VALUES ('c', 'c', 'c@x', '', now())").await;
        assert_eq!(count(&target, "SELECT MAX(id) FROM users").await, 8);

        let back_db = TestDatabase::new(Backend::Sqlite).await;
        let back = open(&back_db).await;
        all_ok(
            &target
                .migrate_into(&back, &MigrateOptions::default())
                .await
                .unwrap(),
        );
        all_ok(&target.compare_with(&back).await.unwrap());
        assert_eq!(
            count(
                &back,
                "SELECT seq FROM sqlite_sequence WHERE name = 'users'"
            )
            .await,
            8
        );
        assert_eq!(
            count(
                &back,
                "SELECT seq FROM sqlite_sequence WHERE name = 'tasks'"
            )
            .await,
            12
        );
        assert_eq!(
            count(&back, "SELECT admin FROM users WHERE id = 1").await,
            1
        );
        for store in [source, target, back] {
            store.close().await;
        }
    }

    #[tokio::test]
    async fn a_target_with_rows_is_refused_unless_forced() {
        let (a, b) = (
            TestDatabase::new(Backend::Sqlite).await,
            TestDatabase::new(Backend::Postgres).await,
        );
        let (source, target) = (open(&a).await, open(&b).await);
        exec(&source, ROWS).await;
        exec(
            &target,
            "INSERT INTO options (key, value) VALUES ('old', 'x')",
        )
        .await;
        let refused = source
            .migrate_into(&target, &MigrateOptions::default())
            .await;
        match refused {
            Err(MigrateError::NotEmpty(tables)) => assert_eq!(tables, [("options".to_string(), 1)]),
            other => panic!("{other:?}"),
        }
        assert_eq!(count(&target, "SELECT COUNT(*) FROM users").await, 0);
        let forced = MigrateOptions {
            force: true,
            ..Default::default()
        };
        all_ok(&source.migrate_into(&target, &forced).await.unwrap());
        assert_eq!(
            count(&target, "SELECT COUNT(*) FROM options WHERE key = 'old'").await,
            0
        );
        all_ok(&source.compare_with(&target).await.unwrap());
        source.close().await;
        target.close().await;
    }

    #[tokio::test]
    async fn a_copy_that_differs_is_caught_and_rolled_back() {
        for backend in [Backend::Sqlite, Backend::Postgres] {
            let (a, b) = (
                TestDatabase::new(Backend::Sqlite).await,
                TestDatabase::new(backend).await,
            );
            let (source, target) = (open(&a).await, open(&b).await);
            exec(&source, ROWS).await;
            let tampered = MigrateOptions {
                tamper: Some("UPDATE users SET name = 'Bob' WHERE id = 7".into()),
                ..Default::default()
            };
            match source.migrate_into(&target, &tampered).await {
                Err(MigrateError::Mismatch(reports)) => {
                    let bad: Vec<&str> = reports
                        .iter()
                        .filter(|r| !r.ok())
                        .map(|r| r.table.as_str())
                        .collect();
                    assert_eq!(bad, ["users"]);
                }
                other => panic!("{other:?}"),
            }
            assert_eq!(
                count(&target, "SELECT COUNT(*) FROM tasks").await,
                0,
                "rolled back"
            );
            // A difference found after the fact: one row's time moved by a microsecond.
            all_ok(
                &source
                    .migrate_into(&target, &MigrateOptions::default())
                    .await
                    .unwrap(),
            );
            let later = match target.dialect() {
                "sqlite" => "UPDATE events SET created = '2026-01-02T03:04:07.000001+00:00'",
                _ => "UPDATE events SET created = created + interval '1 microsecond'",
            };
            exec(&target, later).await;
            let reports = source.compare_with(&target).await.unwrap();
            assert!(!rows_of(&reports, "events").ok());
            assert!(rows_of(&reports, "users").ok());
            source.close().await;
            target.close().await;
        }
    }
}
