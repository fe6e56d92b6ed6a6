//! What servers sharing one database ask of it about each other: their heartbeats (`nodes`),
//! ending the tasks of a server or runner that stopped sending them, handing out the secret
//! answers a task waits with to whichever server takes it, and PostgreSQL's LISTEN/NOTIFY.

use std::time::Duration;

use ralf_core::{TaskStatus, Timestamp};

use crate::dispatch::active_list;
use crate::output::{Chunk, append_chunk};
use crate::{Db, Result, Store, audited, with_db};

/// A connection that hears PostgreSQL notifications.
pub type Listener = sqlx::postgres::PgListener;

/// A task whose server or runner went away, as [`Store::fail_orphaned_tasks`] ended it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrphanedTask {
    pub id: i64,
    pub project_id: i64,
    pub template_id: i64,
    /// What was written as the task's last line, and its index.
    pub line: String,
    pub line_index: i64,
}

/// The last line of a task that was active when the server running it went away unknown (it
/// was claimed before servers had names, or by the only server of an SQLite database).
pub const INTERRUPTED_LINE: &str =
    "ralf restarted while this task was active: the task did not finish and is marked as failed";

/// How long a silent server or runner is still taken for alive.
#[derive(Debug, Clone, Copy)]
pub struct Leases {
    pub node: Duration,
    pub runner: Duration,
}

impl Store {
    /// Records that server `id` (listening on `address`) is alive now.
    pub async fn touch_node(&self, id: &str, address: &str, now: Timestamp) -> Result<()> {
        with_db!(
            self,
            write
                | pool
                | sqlx::query(
                    "INSERT INTO nodes (id, address, started, touched) VALUES ($1, $2, $3, $3)
                     ON CONFLICT (id) DO UPDATE SET touched = $3",
                )
                .bind(id)
                .bind(address)
                .bind(now)
                .execute(pool)
                .await
                .map(|_| ())
        )?;
        Ok(())
    }

    /// Takes server `id` out of the table (a clean shutdown).
    pub async fn remove_node(&self, id: &str) -> Result<()> {
        with_db!(
            self,
            write
                | pool
                | sqlx::query("DELETE FROM nodes WHERE id = $1")
                    .bind(id)
                    .execute(pool)
                    .await
                    .map(|_| ())
        )?;
        Ok(())
    }

    /// The servers that touched their row within `lease` of `now`, as `(id, address)`.
    pub async fn live_nodes(
        &self,
        now: Timestamp,
        lease: Duration,
    ) -> Result<Vec<(String, String)>> {
        let since = before(now, lease);
        Ok(with_db!(
            self,
            read | pool
                | sqlx::query_as("SELECT id, address FROM nodes WHERE touched >= $1 ORDER BY id")
                    .bind(since)
                    .fetch_all(pool)
                    .await
        )?)
    }

    /// Ends in `error` every active task whose server or runner has been silent for longer
    /// than its lease (or that names neither, as tasks claimed before this schema did), with a
    /// last line saying which went away; forgets servers silent past their lease. `me` is the
    /// calling server, alive by definition. Every server may call this at any time: each task
    /// is ended once, by whichever call gets to it first.
    pub async fn fail_orphaned_tasks(
        &self,
        me: &str,
        now: Timestamp,
        leases: Leases,
    ) -> Result<Vec<OrphanedTask>> {
        let node_since = before(now, leases.node);
        let runner_since = before(now, leases.runner);
        let sql = format!(
            "SELECT t.id, t.project_id, t.template_id, t.node_id, t.runner_id,
                    r.name, n.address
             FROM tasks t
             LEFT JOIN nodes n ON n.id = t.node_id
             LEFT JOIN runners r ON r.id = t.runner_id
             WHERE t.status IN ({active})
               AND NOT (t.node_id IS NOT NULL AND (t.node_id = $1 OR n.touched >= $2))
               AND NOT (t.runner_id IS NOT NULL AND r.touched >= $3)",
            active = active_list()
        );
        type Row = (
            i64,
            i64,
            i64,
            Option<String>,
            Option<i64>,
            Option<String>,
            Option<String>,
        );
        let orphans = with_db!(
            self,
            write | pool | {
                let mut tx = pool.begin().await?;
                let rows: Vec<Row> = sqlx::query_as(audited(&sql))
                    .bind(me)
                    .bind(node_since)
                    .bind(runner_since)
                    .fetch_all(&mut *tx)
                    .await?;
                let mut orphans = Vec::new();
                for (id, project_id, template_id, node_id, runner_id, runner_name, address) in rows
                {
                    let line = orphan_line(node_id, address, runner_id, runner_name, leases);
                    // Compare-and-set on "still active", so a task ended meanwhile (by its
                    // server after all, or by another server's sweep) is left alone.
                    let update = format!(
                        "UPDATE tasks SET status = '{}', \"end\" = $1
                         WHERE id = $2 AND status IN ({})",
                        TaskStatus::Error.as_str(),
                        active_list()
                    );
                    let changed = sqlx::query(audited(&update))
                        .bind(now)
                        .bind(id)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                    if changed == 1 {
                        let chunk = Chunk::new(&[(now, line.clone())]);
                        let line_index = append_chunk!(tx, id, chunk);
                        orphans.push(OrphanedTask {
                            id,
                            project_id,
                            template_id,
                            line,
                            line_index,
                        });
                    }
                }
                sqlx::query("DELETE FROM nodes WHERE touched < $1 AND id <> $2")
                    .bind(node_since)
                    .bind(me)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                orphans
            }
        );
        Ok(orphans)
    }

    /// Hands out a task's secret answers once, removing them.
    pub async fn take_task_secret(&self, task_id: i64) -> Result<Option<String>> {
        Ok(with_db!(
            self,
            write
                | pool
                | sqlx::query_scalar(
                    "DELETE FROM task_secrets WHERE task_id = $1 RETURNING secret"
                )
                .bind(task_id)
                .fetch_optional(pool)
                .await
        )?)
    }

    /// Sends `payload` on PostgreSQL channel `channel` to every server listening; nothing on
    /// SQLite, where one server is all there is.
    pub async fn notify(&self, channel: &str, payload: &str) -> Result<()> {
        if let Db::Postgres(pool) = &self.db {
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(channel)
                .bind(payload)
                .execute(pool)
                .await?;
        }
        Ok(())
    }

    /// A listener on PostgreSQL channels; `None` on SQLite.
    pub async fn listen(&self, channels: &[&str]) -> Result<Option<Listener>> {
        let Db::Postgres(pool) = &self.db else {
            return Ok(None);
        };
        let mut listener = Listener::connect_with(pool).await?;
        listener.listen_all(channels.iter().copied()).await?;
        Ok(Some(listener))
    }
}

fn before(now: Timestamp, lease: Duration) -> Timestamp {
    let lease = chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::MAX);
    Timestamp(now.0 - lease)
}

fn orphan_line(
    node_id: Option<String>,
    address: Option<String>,
    runner_id: Option<i64>,
    runner_name: Option<String>,
    leases: Leases,
) -> String {
    match (runner_id, node_id) {
        (Some(id), _) => format!(
            "The runner {:?} (id {id}) was lost: it sent no heartbeat for {} s while running \
             this task; the task did not finish and is marked as failed",
            runner_name.unwrap_or_default(),
            leases.runner.as_secs()
        ),
        (None, Some(node)) => {
            let at = address.map(|a| format!(" at {a}")).unwrap_or_default();
            format!(
                "The ralf server that ran this task (node {node}{at}) stopped or restarted while \
                 the task was active: the task did not finish and is marked as failed"
            )
        }
        (None, None) => INTERRUPTED_LINE.to_string(),
    }
}
