//! What the copy reads, binds and checksums: a column's [`Kind`], a [`Value`], and the two
//! drivers behind one [`Conn`] trait, written once and expanded per driver (`impl_conn!`).

use std::fmt::Write as _;

use chrono::{DateTime, SecondsFormat, SubsecRound, Utc};

use crate::audited;

/// How a column's values are read, bound and rendered for the checksum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Int,
    Bool,
    Time,
    Text,
}

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Value {
    Null,
    Int(i64),
    Bool(bool),
    Time(DateTime<Utc>),
    Text(String),
}

pub(super) static NULL: Value = Value::Null;

impl Value {
    pub(super) fn text(&self) -> &str {
        match self {
            Value::Text(text) => text,
            _ => "",
        }
    }

    pub(super) fn int(&self) -> i64 {
        match self {
            Value::Int(n) => *n,
            _ => 0,
        }
    }

    /// Appends the canonical form: a tag, then the value; text carries its length, so no
    /// text can pass for another value or for NULL.
    pub(super) fn render(&self, out: &mut String) {
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
pub(super) enum Dialect {
    Sqlite,
    Postgres,
}

/// What the copy needs of a connection: run a statement with bound values, read rows as values.
pub(super) trait Conn {
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
