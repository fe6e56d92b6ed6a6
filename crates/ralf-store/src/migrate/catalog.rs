//! The catalog: the tables as one database declares them (`sqlite_master` and `pragma_*` on
//! SQLite, `information_schema` on PostgreSQL): columns and their types, primary key, foreign
//! keys, the id counter.

use super::conn::{Conn, Dialect, Kind, Value};
use super::{MigrateError, doing};

/// A table as one database declares it.
#[derive(Debug)]
pub(super) struct CatalogTable {
    pub(super) name: String,
    /// Name, declared type, kind (`None`: a type the copy does not handle).
    pub(super) columns: Vec<(String, String, Option<Kind>)>,
    /// The primary key's columns, in key order.
    pub(super) key: Vec<String>,
    /// Foreign keys: (column, referenced table).
    pub(super) references: Vec<(String, String)>,
    /// The column whose counter hands out new ids (identity / AUTOINCREMENT).
    pub(super) counter: Option<String>,
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

pub(super) async fn catalog<C: Conn>(c: &mut C) -> Result<Vec<CatalogTable>, MigrateError> {
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
