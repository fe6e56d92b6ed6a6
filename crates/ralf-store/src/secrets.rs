//! Every secret the database holds, taken together: the key check (a value sealed under the
//! access key, in `options`, that tells whether a key is the database's) and re-sealing all
//! secrets under another key in one transaction. The secrets are `access_keys.secret` (keys,
//! vault passwords and environment secrets), `environments.password` and `task_secrets.secret`;
//! runners' credentials are kept as hashes only.

use crate::{Result, Store, StoreError, with_db};

/// The `options` key of the key check.
pub const KEY_CHECK_OPTION: &str = "access_key_check";

/// How many secrets a re-sealing rewrote, per table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ResealReport {
    pub access_keys: u64,
    pub environments: u64,
    pub task_secrets: u64,
}

/// The secret columns: table, id column, secret column.
const SECRET_COLUMNS: [(&str, &str, &str); 3] = [
    ("access_keys", "id", "secret"),
    ("environments", "id", "password"),
    ("task_secrets", "task_id", "secret"),
];

impl Store {
    /// The stored key check, if a server has written one.
    pub async fn key_check(&self) -> Result<Option<String>> {
        Ok(with_db!(self, read, |pool| sqlx::query_scalar(
            "SELECT value FROM options WHERE key = $1"
        )
        .bind(KEY_CHECK_OPTION)
        .fetch_optional(pool)
        .await)?)
    }

    /// In one transaction: replaces the key check `expected` (`None`: there is none yet) by
    /// `new_check` and every stored secret by `reseal(secret)`. The check is changed first, so
    /// of two servers or commands doing this at once, the second finds the check changed and
    /// gets [`StoreError::Conflict`] with nothing done. A `reseal` error (with the table it
    /// came from) leaves everything as it was and is returned as [`StoreError::Invalid`].
    pub async fn reseal_secrets(
        &self,
        expected: Option<&str>,
        new_check: &str,
        mut reseal: impl FnMut(&str) -> std::result::Result<String, String> + Send,
    ) -> Result<ResealReport> {
        let mut counts = [0u64; 3];
        with_db!(self, write, |pool| {
            let mut tx = pool.begin().await?;
            let changed = match expected {
                None => sqlx::query(
                    "INSERT INTO options (key, value) VALUES ($1, $2)
                             ON CONFLICT (key) DO NOTHING",
                )
                .bind(KEY_CHECK_OPTION)
                .bind(new_check)
                .execute(&mut *tx)
                .await?
                .rows_affected(),
                Some(old) => {
                    sqlx::query("UPDATE options SET value = $1 WHERE key = $2 AND value = $3")
                        .bind(new_check)
                        .bind(KEY_CHECK_OPTION)
                        .bind(old)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected()
                }
            };
            if changed != 1 {
                return Err(StoreError::Conflict(
                    "the key check changed meanwhile: another server or command \
                             changed the access key"
                        .into(),
                ));
            }
            for ((table, id, column), count) in SECRET_COLUMNS.iter().zip(&mut counts) {
                let select =
                    format!("SELECT {id}, {column} FROM {table} WHERE {column} IS NOT NULL");
                let rows: Vec<(i64, String)> = sqlx::query_as(crate::audited(&select))
                    .fetch_all(&mut *tx)
                    .await?;
                let update = format!("UPDATE {table} SET {column} = $1 WHERE {id} = $2");
                for (row_id, sealed) in rows {
                    let resealed = reseal(&sealed)
                        .map_err(|e| StoreError::Invalid(format!("{table} {row_id}: {e}")))?;
                    sqlx::query(crate::audited(&update))
                        .bind(resealed)
                        .bind(row_id)
                        .execute(&mut *tx)
                        .await?;
                    *count += 1;
                }
            }
            tx.commit().await?;
        });
        Ok(ResealReport {
            access_keys: counts[0],
            environments: counts[1],
            task_secrets: counts[2],
        })
    }

    /// How many servers touched their row at `since` or later (running ones, given their
    /// heartbeat).
    pub async fn live_nodes(&self, since: ralf_core::Timestamp) -> Result<i64> {
        Ok(with_db!(self, read, |pool| sqlx::query_scalar(
            "SELECT COUNT(*) FROM nodes WHERE touched >= $1"
        )
        .bind(since)
        .fetch_one(pool)
        .await)?)
    }
}
