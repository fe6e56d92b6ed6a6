//! What servers sharing one database ask of it about each other: their heartbeats (`nodes`),
//! ending the tasks of a server or runner that stopped sending them, the secret answers a
//! task keeps until it finishes, whichever server or runner takes it, and PostgreSQL's LISTEN/NOTIFY.

use std::time::Duration;

use const_format::concatcp;
use ralf_core::{TaskId, TaskStatus, Timestamp};

use crate::dispatch::ACTIVE_LIST;
use crate::driver::Tx as _;
use crate::{Db, Result, Store, StoreError, with_db};

/// A connection that hears PostgreSQL notifications.
pub type Listener = sqlx::postgres::PgListener;

/// A task whose server or runner went away, as [`Store::settle_orphaned_tasks`] settled it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrphanedTask {
    pub id: i64,
    pub project_id: i64,
    pub template_id: i64,
    /// `error`, or `waiting` when it went back to the queue.
    pub status: TaskStatus,
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

/// An active task whose server or runner went away, about to be settled.
pub(crate) struct LostTask {
    pub id: TaskId,
    pub project_id: i64,
    pub template_id: i64,
    /// Its template says running it again is safe (`requeue_when_lost`).
    pub requeue: bool,
    /// The task's last line: who went away, and what becomes of the task.
    pub line: String,
}

impl Store {
    /// Records that server `id` (listening on `address`) is alive now.
    pub async fn touch_node(&self, id: &str, address: &str, now: Timestamp) -> Result<()> {
        with_db!(self, write, |pool| sqlx::query(
            "INSERT INTO nodes (id, address, started, touched) VALUES ($1, $2, $3, $3)
                     ON CONFLICT (id) DO UPDATE SET touched = $3",
        )
        .bind(id)
        .bind(address)
        .bind(now)
        .execute(pool)
        .await
        .map(|_| ()))?;
        Ok(())
    }

    /// Takes server `id` out of the table (a clean shutdown).
    pub async fn remove_node(&self, id: &str) -> Result<()> {
        with_db!(self, write, |pool| sqlx::query(
            "DELETE FROM nodes WHERE id = $1"
        )
        .bind(id)
        .execute(pool)
        .await
        .map(|_| ()))?;
        Ok(())
    }

    /// Settles every active task whose server or runner has been silent for longer than its
    /// lease (or that names neither, as tasks claimed before this schema did): it ends in
    /// `error`, or goes back to the queue when its template says that is safe
    /// (`requeue_when_lost`), with a last line saying which went away. Forgets servers silent
    /// past their lease. `me` is the calling server, alive by definition. Every server may
    /// call this at any time: each task is settled once, by whichever call gets to it first.
    pub async fn settle_orphaned_tasks(
        &self,
        me: &str,
        now: Timestamp,
        leases: Leases,
    ) -> Result<Vec<OrphanedTask>> {
        let node_since = before(now, leases.node);
        let runner_since = before(now, leases.runner);
        type Row = (
            i64,
            i64,
            i64,
            bool,
            Option<String>,
            Option<i64>,
            Option<String>,
            Option<String>,
        );
        let orphans = with_db!(self, write, |pool| {
            let mut tx = pool.begin().await?;
            let rows: Vec<Row> = sqlx::query_as(ORPHANED_TASKS)
                .bind(me)
                .bind(node_since)
                .bind(runner_since)
                .fetch_all(&mut *tx)
                .await?;
            let mut orphans = Vec::new();
            for (id, project_id, template_id, requeue, node_id, runner_id, runner, address) in rows
            {
                let lost = Lost::of(node_id, address, runner_id, runner, leases);
                let task = LostTask {
                    id: TaskId(id),
                    project_id,
                    template_id,
                    requeue,
                    line: lost.line(requeue),
                };
                if let Some(settled) = tx.settle_lost(task, now).await? {
                    orphans.push(settled);
                }
            }
            sqlx::query("DELETE FROM nodes WHERE touched < $1 AND id <> $2")
                .bind(node_since)
                .bind(me)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            orphans
        });
        Ok(orphans)
    }

    /// Settles one active task of runner `runner_id` that the runner says it no longer holds
    /// (it restarted): as [`Store::settle_orphaned_tasks`] does; `None` when the task is no
    /// longer active.
    pub async fn settle_task_lost_by_runner(
        &self,
        task_id: TaskId,
        runner_id: i64,
        runner_name: &str,
        now: Timestamp,
    ) -> Result<Option<OrphanedTask>> {
        let lost = Lost::Dropped {
            runner: runner_name.to_string(),
            id: runner_id,
        };
        with_db!(self, write, |pool| {
            let mut tx = pool.begin().await?;
            let row: Option<(i64, i64, bool)> = sqlx::query_as(
                "SELECT t.project_id, t.template_id, tpl.requeue_when_lost
                     FROM tasks t JOIN templates tpl ON tpl.id = t.template_id
                     WHERE t.id = $1 AND t.runner_id = $2",
            )
            .bind(task_id)
            .bind(runner_id)
            .fetch_optional(&mut *tx)
            .await?;
            let Some((project_id, template_id, requeue)) = row else {
                return Ok(None);
            };
            let task = LostTask {
                id: task_id,
                project_id,
                template_id,
                requeue,
                line: lost.line(requeue),
            };
            let settled = tx.settle_lost(task, now).await?;
            tx.commit().await?;
            Ok::<_, StoreError>(settled)
        })
    }

    /// A task's secret answers (encrypted); removed when the task finishes.
    pub async fn task_secret(&self, task_id: TaskId) -> Result<Option<String>> {
        Ok(with_db!(self, read, |pool| sqlx::query_scalar(
            "SELECT secret FROM task_secrets WHERE task_id = $1"
        )
        .bind(task_id)
        .fetch_optional(pool)
        .await)?)
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

/// The active tasks whose server (`$1` the caller, alive by definition; `$2` the oldest
/// heartbeat of a live server) or runner (`$3` likewise) went away, with who that was.
const ORPHANED_TASKS: &str = concatcp!(
    "SELECT t.id, t.project_id, t.template_id, tpl.requeue_when_lost, t.node_id,
            t.runner_id, r.name, n.address
     FROM tasks t
     JOIN templates tpl ON tpl.id = t.template_id
     LEFT JOIN nodes n ON n.id = t.node_id
     LEFT JOIN runners r ON r.id = t.runner_id
     WHERE t.status IN (",
    ACTIVE_LIST,
    ")
       AND NOT (t.node_id IS NOT NULL AND (t.node_id = $1 OR n.touched >= $2))
       AND NOT (t.runner_id IS NOT NULL AND r.touched >= $3)"
);

fn before(now: Timestamp, lease: Duration) -> Timestamp {
    let lease = chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::MAX);
    Timestamp(now.0 - lease)
}

/// Who went away from a task, and how.
enum Lost {
    Runner {
        name: String,
        id: i64,
        lease: Duration,
    },
    /// The runner polled again without the task.
    Dropped {
        runner: String,
        id: i64,
    },
    Node {
        id: String,
        address: Option<String>,
    },
    /// Claimed before servers had names.
    Unknown,
}

impl Lost {
    fn of(
        node_id: Option<String>,
        address: Option<String>,
        runner_id: Option<i64>,
        runner_name: Option<String>,
        leases: Leases,
    ) -> Lost {
        match (runner_id, node_id) {
            (Some(id), _) => Lost::Runner {
                name: runner_name.unwrap_or_default(),
                id,
                lease: leases.runner,
            },
            (None, Some(id)) => Lost::Node { id, address },
            (None, None) => Lost::Unknown,
        }
    }

    /// The task's last line: what happened, and what becomes of the task.
    fn line(&self, requeued: bool) -> String {
        let cause = match self {
            Lost::Runner { name, id, lease } => format!(
                "The runner {name:?} (id {id}) was lost: it sent no heartbeat for {} s while \
                 running this task",
                lease.as_secs()
            ),
            Lost::Dropped { runner, id } => format!(
                "The runner {runner:?} (id {id}) no longer holds this task (it restarted or \
                 lost it)"
            ),
            Lost::Node { id, address } => {
                let at = address
                    .as_ref()
                    .map(|a| format!(" at {a}"))
                    .unwrap_or_default();
                format!(
                    "The ralf server that ran this task (node {id}{at}) stopped or restarted \
                     while the task was active"
                )
            }
            Lost::Unknown if !requeued => return INTERRUPTED_LINE.to_string(),
            Lost::Unknown => "ralf restarted while this task was active".to_string(),
        };
        if requeued {
            format!(
                "{cause}; its template allows running its tasks again, so the task is back in \
                 the queue and starts again from the beginning"
            )
        } else {
            format!("{cause}: the task did not finish and is marked as failed")
        }
    }
}
