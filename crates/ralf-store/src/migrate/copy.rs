//! Copying and checking: the target must be empty (or is emptied), rows go table by table in
//! batches, self-references are linked after, id counters are moved past the copied ids, and
//! each table's row count and SHA-256 are taken on both sides.

use std::fmt::Write as _;

use sha2::{Digest as _, Sha256};

use super::catalog::catalog;
use super::conn::{Conn, Dialect, Kind, NULL, Value};
use super::plan::{Table, plan};
use super::{MigrateError, MigrateOptions, TableReport, doing};

/// Rows read from the source per query.
const BATCH_ROWS: usize = 500;
/// Bind parameters per statement, below SQLite's limit (32766) and PostgreSQL's (65535).
const MAX_PARAMS: usize = 30_000;

fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

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

pub(super) async fn copy_all<S: Conn, T: Conn>(
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
pub(super) async fn checksum<C: Conn>(
    c: &mut C,
    table: &Table,
) -> Result<(u64, String), MigrateError> {
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
