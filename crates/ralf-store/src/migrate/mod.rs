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

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use chrono::{DateTime, SecondsFormat, SubsecRound, Utc};
use sha2::{Digest as _, Sha256};

use crate::{Store, StoreError, audited, with_db};

/// Rows read from the source per query.
const BATCH_ROWS: usize = 500;
/// Bind parameters per statement, below SQLite's limit (32766) and PostgreSQL's (65535).
const MAX_PARAMS: usize = 30_000;

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
fn doing(what: impl Into<String>) -> impl FnOnce(sqlx::Error) -> MigrateError {
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
        with_db!(
            self,
            read | source | {
                let mut snapshot = source.begin().await.map_err(doing("opening the source"))?;
                with_db!(
                    target,
                    write | target | {
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
                    }
                )
            }
        )
    }

    /// Compares every table of this store with `other` the way [`Store::migrate_into`] checks
    /// its copy, without changing either.
    pub async fn compare_with(&self, other: &Store) -> Result<Vec<TableReport>, MigrateError> {
        with_db!(
            self,
            read | left | {
                let mut left = left.begin().await.map_err(doing("opening the source"))?;
                with_db!(
                    other,
                    read | right | {
                        let mut right = right.begin().await.map_err(doing("opening the target"))?;
                        let tables =
                            plan(&catalog(&mut *left).await?, &catalog(&mut *right).await?)?;
                        let mut reports = Vec::new();
                        for table in &tables {
                            let (source_rows, source_checksum) =
                                checksum(&mut *left, table).await?;
                            let (target_rows, target_checksum) =
                                checksum(&mut *right, table).await?;
                            reports.push(TableReport {
                                table: table.name.clone(),
                                source_rows,
                                target_rows,
                                source_checksum,
                                target_checksum,
                            });
                        }
                        Ok(reports)
                    }
                )
            }
        )
    }
}

// ---------------------------------------------------------------------------------------------
// Values, and the two drivers.

/// How a column's values are read, bound and rendered for the checksum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Int,
    Bool,
    Time,
    Text,
}

#[derive(Debug, Clone, PartialEq)]
enum Value {
    Null,
    Int(i64),
    Bool(bool),
    Time(DateTime<Utc>),
    Text(String),
}

static NULL: Value = Value::Null;

impl Value {
    fn text(&self) -> &str {
        match self {
            Value::Text(text) => text,
            _ => "",
        }
    }

    fn int(&self) -> i64 {
        match self {
            Value::Int(n) => *n,
            _ => 0,
        }
    }

    /// Appends the canonical form: a tag, then the value; text carries its length, so no
    /// text can pass for another value or for NULL.
    fn render(&self, out: &mut String) {
        match self {
            Value::Null => out.push('N'),
            Value::Int(n) => {
                let _ = write!(out, "I{n}");
            }
            Value::Bool(b) => {
                let _ = write!(out, "B{b}");
            }
            Value::Time(t) => {
                let _ = write!(out, "T{}", t.to_rfc3339_opts(SecondsFormat::Micros, true));
            }
            Value::Text(s) => {
                let _ = write!(out, "S{}:{s}", s.len());
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dialect {
    Sqlite,
    Postgres,
}

/// What the copy needs of a connection: run a statement with bound values, read rows as values.
trait Conn {
    const DIALECT: Dialect;
    async fn fetch(
        &mut self,
        sql: &str,
        params: &[(Kind, &Value)],
        kinds: &[Kind],
    ) -> Result<Vec<Vec<Value>>, sqlx::Error>;
    async fn execute(&mut self, sql: &str, params: &[(Kind, &Value)]) -> Result<(), sqlx::Error>;
}

/// Implements [`Conn`] for one driver; the body is the same for both.
macro_rules! impl_conn {
    ($conn:ty, $db:ty, $dialect:expr) => {
        impl Conn for $conn {
            const DIALECT: Dialect = $dialect;

            async fn fetch(
                &mut self,
                sql: &str,
                params: &[(Kind, &Value)],
                kinds: &[Kind],
            ) -> Result<Vec<Vec<Value>>, sqlx::Error> {
                use sqlx::Row as _;
                let mut query = sqlx::query::<$db>(audited(sql));
                for (kind, value) in params {
                    query = bind!(query, *kind, *value);
                }
                let rows = query.fetch_all(&mut *self).await?;
                rows.iter()
                    .map(|row| {
                        kinds
                            .iter()
                            .enumerate()
                            .map(|(i, kind)| {
                                Ok(match kind {
                                    Kind::Int => row.try_get::<Option<i64>, _>(i)?.map(Value::Int),
                                    Kind::Bool => {
                                        row.try_get::<Option<bool>, _>(i)?.map(Value::Bool)
                                    }
                                    // PostgreSQL keeps microseconds; so does the copy.
                                    Kind::Time => row
                                        .try_get::<Option<DateTime<Utc>>, _>(i)?
                                        .map(|t| Value::Time(t.trunc_subsecs(6))),
                                    Kind::Text => {
                                        row.try_get::<Option<String>, _>(i)?.map(Value::Text)
                                    }
                                }
                                .unwrap_or(Value::Null))
                            })
                            .collect()
                    })
                    .collect()
            }

            async fn execute(
                &mut self,
                sql: &str,
                params: &[(Kind, &Value)],
            ) -> Result<(), sqlx::Error> {
                let mut query = sqlx::query::<$db>(audited(sql));
                for (kind, value) in params {
                    query = bind!(query, *kind, *value);
                }
                query.execute(&mut *self).await?;
                Ok(())
            }
        }
    };
}

/// Binds a value as the column's kind (a NULL too: PostgreSQL wants its type).
macro_rules! bind {
    ($query:expr, $kind:expr, $value:expr) => {
        match ($kind, $value) {
            (Kind::Int, Value::Int(n)) => $query.bind(*n),
            (Kind::Int, _) => $query.bind(None::<i64>),
            (Kind::Bool, Value::Bool(b)) => $query.bind(*b),
            (Kind::Bool, _) => $query.bind(None::<bool>),
            (Kind::Time, Value::Time(t)) => $query.bind(*t),
            (Kind::Time, _) => $query.bind(None::<DateTime<Utc>>),
            (Kind::Text, Value::Text(s)) => $query.bind(s.as_str()),
            (Kind::Text, _) => $query.bind(None::<String>),
        }
    };
}

impl_conn!(sqlx::SqliteConnection, sqlx::Sqlite, Dialect::Sqlite);
impl_conn!(sqlx::PgConnection, sqlx::Postgres, Dialect::Postgres);

// ---------------------------------------------------------------------------------------------
// The catalog.

/// A table as one database declares it.
#[derive(Debug)]
struct CatalogTable {
    name: String,
    /// Name, declared type, kind (`None`: a type the copy does not handle).
    columns: Vec<(String, String, Option<Kind>)>,
    /// The primary key's columns, in key order.
    key: Vec<String>,
    /// Foreign keys: (column, referenced table).
    references: Vec<(String, String)>,
    /// The column whose counter hands out new ids (identity / AUTOINCREMENT).
    counter: Option<String>,
}

fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn sqlite_kind(declared: &str) -> Option<Kind> {
    let ty = declared.to_ascii_uppercase();
    if ty.contains("INT") {
        Some(Kind::Int)
    } else if ty.contains("BOOL") {
        Some(Kind::Bool)
    } else if ["TEXT", "CHAR", "CLOB", "DATE", "TIME"]
        .iter()
        .any(|t| ty.contains(t))
    {
        Some(Kind::Text)
    } else {
        None
    }
}

fn postgres_kind(declared: &str) -> Option<Kind> {
    match declared {
        "bigint" | "integer" | "smallint" => Some(Kind::Int),
        "boolean" => Some(Kind::Bool),
        "timestamp with time zone" => Some(Kind::Time),
        "text" | "character varying" | "character" => Some(Kind::Text),
        _ => None,
    }
}

async fn catalog<C: Conn>(c: &mut C) -> Result<Vec<CatalogTable>, MigrateError> {
    let fetch_err = doing("reading the catalog");
    let tables = match C::DIALECT {
        Dialect::Sqlite => sqlite_catalog(c).await,
        Dialect::Postgres => postgres_catalog(c).await,
    };
    tables.map_err(fetch_err)
}

async fn sqlite_catalog<C: Conn>(c: &mut C) -> Result<Vec<CatalogTable>, sqlx::Error> {
    use Kind::{Int, Text};
    let names = c
        .fetch(
            "SELECT name, sql FROM sqlite_master WHERE type = 'table' \
             AND name NOT LIKE 'sqlite%' AND name <> '_sqlx_migrations' ORDER BY name",
            &[],
            &[Text, Text],
        )
        .await?;
    let mut tables = Vec::new();
    for row in names {
        let name = Value::Text(row[0].text().to_string());
        let autoincrement = row[1].text().to_ascii_uppercase().contains("AUTOINCREMENT");
        let columns = c
            .fetch(
                "SELECT name, type, pk FROM pragma_table_info($1) ORDER BY cid",
                &[(Text, &name)],
                &[Text, Text, Int],
            )
            .await?;
        let mut key: Vec<(i64, String)> = columns
            .iter()
            .filter(|col| col[2].int() > 0)
            .map(|col| (col[2].int(), col[0].text().to_string()))
            .collect();
        key.sort();
        let references = c
            .fetch(
                "SELECT \"from\", \"table\" FROM pragma_foreign_key_list($1)",
                &[(Text, &name)],
                &[Text, Text],
            )
            .await?;
        tables.push(CatalogTable {
            name: name.text().to_string(),
            columns: columns
                .iter()
                .map(|col| {
                    let ty = col[1].text().to_string();
                    (col[0].text().to_string(), ty.clone(), sqlite_kind(&ty))
                })
                .collect(),
            counter: (autoincrement && key.len() == 1).then(|| key[0].1.clone()),
            key: key.into_iter().map(|(_, column)| column).collect(),
            references: references
                .iter()
                .map(|r| (r[0].text().to_string(), r[1].text().to_string()))
                .collect(),
        });
    }
    Ok(tables)
}

async fn postgres_catalog<C: Conn>(c: &mut C) -> Result<Vec<CatalogTable>, sqlx::Error> {
    use Kind::Text;
    let names = c
        .fetch(
            "SELECT table_name::text FROM information_schema.tables \
             WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' \
             AND table_name <> '_sqlx_migrations' ORDER BY 1",
            &[],
            &[Text],
        )
        .await?;
    let mut tables = Vec::new();
    for row in names {
        let name = &row[0];
        let columns = c
            .fetch(
                "SELECT column_name::text, data_type::text, \
                        (is_identity = 'YES' OR column_default LIKE 'nextval(%')::text \
                 FROM information_schema.columns \
                 WHERE table_schema = current_schema() AND table_name = $1 \
                 ORDER BY ordinal_position",
                &[(Text, name)],
                &[Text, Text, Text],
            )
            .await?;
        let constraint_columns = |kind: &str| {
            format!(
                "SELECT kcu.column_name::text, ccu.table_name::text \
                 FROM information_schema.table_constraints tc \
                 JOIN information_schema.key_column_usage kcu \
                   ON kcu.constraint_schema = tc.constraint_schema \
                  AND kcu.constraint_name = tc.constraint_name \
                 JOIN information_schema.constraint_column_usage ccu \
                   ON ccu.constraint_schema = tc.constraint_schema \
                  AND ccu.constraint_name = tc.constraint_name \
                 WHERE tc.table_schema = current_schema() AND tc.table_name = $1 \
                   AND tc.constraint_type = '{kind}' \
                 ORDER BY kcu.ordinal_position"
            )
        };
        let key = c
            .fetch(
                &constraint_columns("PRIMARY KEY"),
                &[(Text, name)],
                &[Text, Text],
            )
            .await?;
        let references = c
            .fetch(
                &constraint_columns("FOREIGN KEY"),
                &[(Text, name)],
                &[Text, Text],
            )
            .await?;
        tables.push(CatalogTable {
            name: name.text().to_string(),
            counter: columns
                .iter()
                .find(|col| col[2].text() == "true")
                .map(|col| col[0].text().to_string()),
            columns: columns
                .iter()
                .map(|col| {
                    let ty = col[1].text().to_string();
                    (col[0].text().to_string(), ty.clone(), postgres_kind(&ty))
                })
                .collect(),
            key: key.iter().map(|k| k[0].text().to_string()).collect(),
            references: references
                .iter()
                .map(|r| (r[0].text().to_string(), r[1].text().to_string()))
                .collect(),
        });
    }
    Ok(tables)
}

// ---------------------------------------------------------------------------------------------
// The plan: which tables, in which order, each column's kind.

#[derive(Debug)]
struct Table {
    name: String,
    /// Column names and kinds, in the source's order.
    columns: Vec<(String, Kind)>,
    /// Positions in `columns` of the primary key.
    key: Vec<usize>,
    /// Positions of columns that reference this same table: written after all its rows are in.
    self_references: Vec<usize>,
    /// The target's id counter column.
    counter: Option<String>,
}

fn merge_kind(
    table: &str,
    column: &str,
    source: &(String, String, Option<Kind>),
    target: &(String, String, Option<Kind>),
) -> Result<Kind, MigrateError> {
    use Kind::*;
    match (source.2, target.2) {
        (Some(a), Some(b)) if a == b => Ok(a),
        (Some(Time), Some(Text)) | (Some(Text), Some(Time)) => Ok(Time),
        (Some(Bool), Some(Int)) | (Some(Int), Some(Bool)) => Ok(Bool),
        _ => Err(MigrateError::Schema(format!(
            "column {table}.{column} is {} in the source and {} in the target, which cannot be copied",
            source.1, target.1
        ))),
    }
}

fn plan(source: &[CatalogTable], target: &[CatalogTable]) -> Result<Vec<Table>, MigrateError> {
    let names = |tables: &[CatalogTable]| -> BTreeSet<String> {
        tables.iter().map(|t| t.name.clone()).collect()
    };
    let (in_source, in_target) = (names(source), names(target));
    if in_source != in_target {
        let only = |a: &BTreeSet<String>, b: &BTreeSet<String>| {
            a.difference(b).cloned().collect::<Vec<_>>().join(", ")
        };
        return Err(MigrateError::Schema(format!(
            "tables only in the source: [{}]; only in the target: [{}]",
            only(&in_source, &in_target),
            only(&in_target, &in_source)
        )));
    }
    let mut tables = BTreeMap::new();
    let mut depends: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for src in source {
        let dst = target
            .iter()
            .find(|t| t.name == src.name)
            .expect("same names");
        let name = &src.name;
        let column_names = |t: &CatalogTable| -> BTreeSet<String> {
            t.columns.iter().map(|c| c.0.clone()).collect()
        };
        if column_names(src) != column_names(dst) {
            return Err(MigrateError::Schema(format!(
                "table {name} has other columns in the source than in the target"
            )));
        }
        let mut columns = Vec::new();
        for column in &src.columns {
            let other = dst
                .columns
                .iter()
                .find(|c| c.0 == column.0)
                .expect("same columns");
            columns.push((
                column.0.clone(),
                merge_kind(name, &column.0, column, other)?,
            ));
        }
        let position = |column: &str| columns.iter().position(|c| c.0 == column);
        if dst.key.is_empty() {
            return Err(MigrateError::Schema(format!(
                "table {name} has no primary key to copy its rows in order"
            )));
        }
        let key = dst.key.iter().filter_map(|k| position(k)).collect();
        let self_references = dst
            .references
            .iter()
            .filter(|(_, to)| to == name)
            .filter_map(|(column, _)| position(column))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        depends.insert(
            name.clone(),
            dst.references
                .iter()
                .chain(&src.references)
                .map(|(_, to)| to.clone())
                .filter(|to| to != name)
                .collect(),
        );
        tables.insert(
            name.clone(),
            Table {
                name: name.clone(),
                columns,
                key,
                self_references,
                counter: dst.counter.clone(),
            },
        );
    }
    // Referenced tables first; among the ready ones, by name.
    let mut ordered = Vec::new();
    while !tables.is_empty() {
        let ready: Vec<String> = tables
            .keys()
            .filter(|name| depends[*name].iter().all(|to| !tables.contains_key(to)))
            .cloned()
            .collect();
        if ready.is_empty() {
            let rest: Vec<&str> = tables.keys().map(String::as_str).collect();
            return Err(MigrateError::Schema(format!(
                "the foreign keys of {} form a cycle",
                rest.join(", ")
            )));
        }
        for name in ready {
            ordered.extend(tables.remove(&name));
        }
    }
    Ok(ordered)
}

// ---------------------------------------------------------------------------------------------
// Copying and checking.

async fn migration_versions<C: Conn>(c: &mut C) -> Result<Vec<i64>, MigrateError> {
    let rows = c
        .fetch(
            "SELECT version FROM _sqlx_migrations WHERE success ORDER BY version",
            &[],
            &[Kind::Int],
        )
        .await
        .map_err(doing("reading the applied migrations"))?;
    Ok(rows.iter().map(|r| r[0].int()).collect())
}

async fn copy_all<S: Conn, T: Conn>(
    source: &mut S,
    target: &mut T,
    options: &MigrateOptions,
) -> Result<Vec<TableReport>, MigrateError> {
    if S::DIALECT == Dialect::Postgres {
        // One snapshot for every table read.
        source
            .execute(
                "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY",
                &[],
            )
            .await
            .map_err(doing("opening a snapshot of the source"))?;
    }
    let (from, to) = (
        migration_versions(source).await?,
        migration_versions(target).await?,
    );
    if from != to {
        return Err(MigrateError::Schema(format!(
            "the source has migrations {from:?}, the target {to:?}"
        )));
    }
    let tables = plan(&catalog(source).await?, &catalog(target).await?)?;

    let mut filled = Vec::new();
    for table in &tables {
        let sql = format!("SELECT COUNT(*) FROM {}", quote(&table.name));
        let rows = target
            .fetch(&sql, &[], &[Kind::Int])
            .await
            .map_err(doing("counting the target's rows"))?;
        if rows[0][0].int() > 0 {
            filled.push((table.name.clone(), rows[0][0].int() as u64));
        }
    }
    if !filled.is_empty() {
        if !options.force {
            return Err(MigrateError::NotEmpty(filled));
        }
        for table in tables.iter().rev() {
            let sql = format!("DELETE FROM {}", quote(&table.name));
            target
                .execute(&sql, &[])
                .await
                .map_err(doing(format!("emptying {}", table.name)))?;
        }
    }

    let mut reports = Vec::new();
    for table in &tables {
        let (rows, checksum) = copy_table(source, target, table).await?;
        reports.push(TableReport {
            table: table.name.clone(),
            source_rows: rows,
            target_rows: 0,
            source_checksum: checksum,
            target_checksum: String::new(),
        });
    }
    for table in &tables {
        reset_counter(target, table).await?;
    }
    #[cfg(test)]
    if let Some(sql) = &options.tamper {
        target.execute(sql, &[]).await.map_err(doing("tampering"))?;
    }
    for (table, report) in tables.iter().zip(&mut reports) {
        (report.target_rows, report.target_checksum) = checksum(target, table).await?;
    }
    Ok(reports)
}

/// The running row count and SHA-256 of one table.
struct Digest {
    hash: Sha256,
    rows: u64,
    line: String,
}

impl Digest {
    fn new() -> Digest {
        Digest {
            hash: Sha256::new(),
            rows: 0,
            line: String::new(),
        }
    }

    fn add(&mut self, row: &[Value]) {
        self.line.clear();
        for value in row {
            value.render(&mut self.line);
            self.line.push('\u{1f}');
        }
        self.line.push('\u{1e}');
        self.hash.update(self.line.as_bytes());
        self.rows += 1;
    }

    fn finish(self) -> (u64, String) {
        (self.rows, format!("{:x}", self.hash.finalize()))
    }
}

/// The next batch of rows after the key `after`, in primary-key order (byte order for text on
/// both sides, so both read the same sequence).
async fn next_batch<C: Conn>(
    c: &mut C,
    table: &Table,
    after: Option<&[Value]>,
) -> Result<Vec<Vec<Value>>, MigrateError> {
    let postgres = C::DIALECT == Dialect::Postgres;
    let column = |i: usize, ordering: bool| {
        let (name, kind) = &table.columns[i];
        match kind {
            Kind::Int if postgres && !ordering => format!("{}::BIGINT", quote(name)),
            Kind::Text if postgres && ordering => format!("{} COLLATE \"C\"", quote(name)),
            _ => quote(name),
        }
    };
    let select: Vec<String> = (0..table.columns.len()).map(|i| column(i, false)).collect();
    let order: Vec<String> = table.key.iter().map(|&i| column(i, true)).collect();
    let mut sql = format!("SELECT {} FROM {}", select.join(", "), quote(&table.name));
    let mut params = Vec::new();
    if let Some(last) = after {
        // (k1, k2) > (a, b) spelled out: k1 > a OR (k1 = a AND k2 > b).
        let mut alternatives = Vec::new();
        for (n, &i) in table.key.iter().enumerate() {
            let mut terms: Vec<String> = (0..n)
                .map(|m| format!("{} = ${}", order[m], m + 1))
                .collect();
            terms.push(format!("{} > ${}", order[n], n + 1));
            alternatives.push(format!("({})", terms.join(" AND ")));
            params.push((table.columns[i].1, &last[i]));
        }
        let _ = write!(sql, " WHERE {}", alternatives.join(" OR "));
    }
    let _ = write!(sql, " ORDER BY {} LIMIT {BATCH_ROWS}", order.join(", "));
    let kinds: Vec<Kind> = table.columns.iter().map(|c| c.1).collect();
    c.fetch(&sql, &params, &kinds)
        .await
        .map_err(doing(format!("reading {}", table.name)))
}

/// Row count and checksum of a table as `c` sees it.
async fn checksum<C: Conn>(c: &mut C, table: &Table) -> Result<(u64, String), MigrateError> {
    let mut digest = Digest::new();
    let mut after: Option<Vec<Value>> = None;
    loop {
        let rows = next_batch(c, table, after.as_deref()).await?;
        rows.iter().for_each(|row| digest.add(row));
        match rows.into_iter().last() {
            Some(last) => after = Some(last),
            None => return Ok(digest.finish()),
        }
    }
}

/// Copies one table; answers the source's row count and checksum.
async fn copy_table<S: Conn, T: Conn>(
    source: &mut S,
    target: &mut T,
    table: &Table,
) -> Result<(u64, String), MigrateError> {
    let names: Vec<String> = table.columns.iter().map(|c| quote(&c.0)).collect();
    let per_statement = (MAX_PARAMS / table.columns.len()).clamp(1, BATCH_ROWS);
    let mut digest = Digest::new();
    let mut pending = Vec::new();
    let mut after: Option<Vec<Value>> = None;
    loop {
        let rows = next_batch(source, table, after.as_deref()).await?;
        for chunk in rows.chunks(per_statement) {
            let mut params = Vec::with_capacity(chunk.len() * names.len());
            let mut tuples = Vec::with_capacity(chunk.len());
            for row in chunk {
                digest.add(row);
                let start = params.len();
                for (i, value) in row.iter().enumerate() {
                    let deferred = table.self_references.contains(&i);
                    params.push((table.columns[i].1, if deferred { &NULL } else { value }));
                }
                let marks: Vec<String> = (start..params.len())
                    .map(|n| format!("${}", n + 1))
                    .collect();
                tuples.push(format!("({})", marks.join(", ")));
                if table.self_references.iter().any(|&i| row[i] != Value::Null) {
                    pending.push(row.clone());
                }
            }
            let sql = format!(
                "INSERT INTO {} ({}) VALUES {}",
                quote(&table.name),
                names.join(", "),
                tuples.join(", ")
            );
            target
                .execute(&sql, &params)
                .await
                .map_err(doing(format!("writing {}", table.name)))?;
        }
        match rows.into_iter().last() {
            Some(last) => after = Some(last),
            None => break,
        }
    }
    // References to rows of the same table, now that all of them are in.
    if !pending.is_empty() {
        let sets: Vec<String> = table
            .self_references
            .iter()
            .enumerate()
            .map(|(n, &i)| format!("{} = ${}", names[i], n + 1))
            .collect();
        let wheres: Vec<String> = table
            .key
            .iter()
            .enumerate()
            .map(|(n, &i)| format!("{} = ${}", names[i], sets.len() + n + 1))
            .collect();
        let sql = format!(
            "UPDATE {} SET {} WHERE {}",
            quote(&table.name),
            sets.join(", "),
            wheres.join(" AND ")
        );
        for row in &pending {
            let params: Vec<(Kind, &Value)> = table
                .self_references
                .iter()
                .chain(&table.key)
                .map(|&i| (table.columns[i].1, &row[i]))
                .collect();
            target
                .execute(&sql, &params)
                .await
                .map_err(doing(format!("linking {}", table.name)))?;
        }
    }
    Ok(digest.finish())
}

/// Moves the table's id counter past the largest id, so new rows get new ids.
async fn reset_counter<T: Conn>(target: &mut T, table: &Table) -> Result<(), MigrateError> {
    let Some(column) = &table.counter else {
        return Ok(());
    };
    let (name, column) = (quote(&table.name), quote(column));
    let table_name = Value::Text(table.name.clone());
    let quoted_name = Value::Text(name.clone());
    let column_name = Value::Text(column.trim_matches('"').to_string());
    let result = match T::DIALECT {
        Dialect::Postgres => {
            let sql = format!(
                "SELECT setval(pg_get_serial_sequence($1, $2), COALESCE(MAX({column}), 0) + 1, false) FROM {name}"
            );
            target
                .execute(
                    &sql,
                    &[(Kind::Text, &quoted_name), (Kind::Text, &column_name)],
                )
                .await
        }
        Dialect::Sqlite => {
            let params = [(Kind::Text, &table_name)];
            match target
                .execute("DELETE FROM sqlite_sequence WHERE name = $1", &params)
                .await
            {
                Ok(()) => {
                    let sql = format!(
                        "INSERT INTO sqlite_sequence (name, seq) SELECT $1, COALESCE(MAX({column}), 0) FROM {name}"
                    );
                    target.execute(&sql, &params).await
                }
                Err(e) => Err(e),
            }
        }
    };
    result.map_err(doing(format!("resetting the id counter of {}", table.name)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DatabaseSettings;
    use ralf_testkit::{Backend, TestDatabase};

    /// Opens a testkit database with this build of the crate (the testkit links its own).
    async fn open(db: &TestDatabase) -> Store {
        let settings = match &db.settings {
            ralf_testkit::DatabaseSettings::Sqlite { path } => {
                DatabaseSettings::Sqlite { path: path.clone() }
            }
            ralf_testkit::DatabaseSettings::Postgres { url } => {
                DatabaseSettings::Postgres { url: url.clone() }
            }
        };
        Store::connect(&settings).await.expect("connect")
    }

    async fn exec(store: &Store, sql: &str) {
        with_db!(
            store,
            write | pool | sqlx::raw_sql(audited(sql)).execute(pool).await.map(|_| ())
        )
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    async fn count(store: &Store, sql: &str) -> i64 {
        with_db!(
            store,
            read | pool | {
                sqlx::query_scalar::<_, i64>(audited(sql))
                    .fetch_one(pool)
                    .await
            }
        )
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

    #[test]
    fn null_and_empty_text_render_apart() {
        let digest = |row: &[Value]| {
            let mut d = Digest::new();
            d.add(row);
            d.finish().1
        };
        assert_ne!(
            digest(&[Value::Null]),
            digest(&[Value::Text(String::new())])
        );
        assert_ne!(
            digest(&[Value::Text("a".into()), Value::Text("b".into())]),
            digest(&[Value::Text("a\u{1f}Sb".into())])
        );
        assert_ne!(digest(&[Value::Int(1)]), digest(&[Value::Bool(true)]));
    }
}
