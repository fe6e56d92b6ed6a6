//! What an operator watches: whether the database answers, the queue's depth and age, who
//! runs the active tasks, which runners are online, and how busy the connection pools are.
//! Read at each scrape of `/metrics` and each readiness probe; nothing here writes.

use ralf_core::Timestamp;

use crate::{Db, Result, Store, with_db};

/// The waiting tasks: how many, and since when the oldest waits.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct QueueStats {
    pub waiting: i64,
    pub oldest_created: Option<Timestamp>,
}

/// One connection pool: its open connections, and how many of them are idle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStats {
    /// `"read"`, `"write"` (SQLite's two pools) or `"main"` (PostgreSQL's one).
    pub pool: &'static str,
    pub size: u32,
    pub idle: u32,
    pub max: u32,
}

impl Store {
    /// Asks the database a trivial question; an error says it does not answer.
    pub async fn ping(&self) -> Result<()> {
        with_db!(self, read, |pool| {
            sqlx::query("SELECT 1").execute(pool).await?;
        });
        Ok(())
    }

    /// The tasks waiting for a server or runner.
    pub async fn queue_stats(&self) -> Result<QueueStats> {
        let (waiting, oldest): (i64, Option<Timestamp>) = with_db!(self, read, |pool| {
            sqlx::query_as("SELECT COUNT(*), MIN(created) FROM tasks WHERE status = 'waiting'")
                .fetch_one(pool)
                .await?
        });
        Ok(QueueStats {
            waiting,
            oldest_created: oldest,
        })
    }

    /// Running tasks by the server (node id) that runs them.
    pub async fn running_by_node(&self) -> Result<Vec<(String, i64)>> {
        Ok(with_db!(self, read, |pool| {
            sqlx::query_as(
                "SELECT node_id, COUNT(*) FROM tasks
                 WHERE status IN ('starting', 'running', 'stopping') AND node_id IS NOT NULL
                 GROUP BY node_id",
            )
            .fetch_all(pool)
            .await?
        }))
    }

    /// Every runner (its id and name) with the number of active tasks it runs.
    pub async fn running_by_runner(&self) -> Result<Vec<(i64, String, i64)>> {
        Ok(with_db!(self, read, |pool| {
            sqlx::query_as(
                "SELECT r.id, r.name, COUNT(t.id) FROM runners r
                 LEFT JOIN tasks t ON t.runner_id = r.id
                     AND t.status IN ('starting', 'running', 'stopping')
                 GROUP BY r.id, r.name",
            )
            .fetch_all(pool)
            .await?
        }))
    }

    /// Active runners heard from since `since`.
    pub async fn runners_online(&self, since: Timestamp) -> Result<i64> {
        Ok(with_db!(self, read, |pool| {
            sqlx::query_scalar("SELECT COUNT(*) FROM runners WHERE active AND touched >= $1")
                .bind(since)
                .fetch_one(pool)
                .await?
        }))
    }

    /// The connection pools' use now.
    pub fn pool_stats(&self) -> Vec<PoolStats> {
        fn of<DB: sqlx::Database>(name: &'static str, pool: &sqlx::Pool<DB>) -> PoolStats {
            PoolStats {
                pool: name,
                size: pool.size(),
                idle: pool.num_idle() as u32,
                max: pool.options().get_max_connections(),
            }
        }
        match &self.db {
            Db::Sqlite { read, write } => vec![of("read", read), of("write", write)],
            Db::Postgres(pool) => vec![of("main", pool)],
        }
    }
}

/// Counter: tasks that entered `running`, by project.
pub const TASKS_STARTED: &str = "ralf_tasks_started_total";
/// Counter: tasks that ended, by project and final status.
pub const TASKS_FINISHED: &str = "ralf_tasks_finished_total";
/// Histogram: seconds from a task's start to its end, by final status.
pub const TASK_DURATION: &str = "ralf_task_duration_seconds";
/// Counter: lines of task output stored.
pub const LOG_LINES: &str = "ralf_task_log_lines_total";

impl Store {
    /// Counts a status change this store just made: a start, or an end with its duration. A
    /// failure to read the task back costs the metric, never the change.
    pub(crate) async fn count_status_change(
        &self,
        id: ralf_core::TaskId,
        to: ralf_core::TaskStatus,
    ) {
        if to != ralf_core::TaskStatus::Running && !to.is_finished() {
            return;
        }
        // The task's project, start and end.
        type Times = (i64, Option<Timestamp>, Option<Timestamp>);
        let row: Result<Option<Times>> = async {
            Ok(with_db!(self, write, |pool| {
                sqlx::query_as("SELECT project_id, start, \"end\" FROM tasks WHERE id = $1")
                    .bind(id)
                    .fetch_optional(pool)
                    .await?
            }))
        }
        .await;
        let Ok(Some((project, start, end))) = row else {
            return;
        };
        let project = project.to_string();
        if to == ralf_core::TaskStatus::Running {
            metrics::counter!(TASKS_STARTED, "project" => project).increment(1);
            return;
        }
        let status = to.as_str();
        metrics::counter!(TASKS_FINISHED, "project" => project, "status" => status).increment(1);
        if let (Some(start), Some(end)) = (start, end) {
            let seconds = (end.0 - start.0).num_milliseconds().max(0) as f64 / 1000.0;
            metrics::histogram!(TASK_DURATION, "status" => status).record(seconds);
        }
    }
}

impl Store {
    /// Writes a consistent copy of this SQLite database to `path` (SQLite's `VACUUM INTO`, on
    /// a reader connection: the server goes on writing meanwhile). `path` must not exist. On
    /// PostgreSQL this is [`StoreError::Invalid`]; copy it into an SQLite store with
    /// [`Store::migrate_into`] instead.
    pub async fn vacuum_into(&self, path: &std::path::Path) -> Result<()> {
        let Db::Sqlite { read, .. } = &self.db else {
            return Err(crate::StoreError::Invalid(
                "VACUUM INTO is SQLite's; a PostgreSQL database is exported with a copy".into(),
            ));
        };
        let path = path
            .to_str()
            .ok_or_else(|| crate::StoreError::Invalid("the path is not valid UTF-8".into()))?;
        sqlx::query("VACUUM INTO $1")
            .bind(path)
            .execute(read)
            .await?;
        Ok(())
    }
}

impl Store {
    /// Forgets every server that ran on this database (the `nodes` table), as after a restore:
    /// they ran on the database the backup was taken from. The tasks they held are settled by
    /// the next server that starts, as those of any server that went away.
    pub async fn forget_nodes(&self) -> Result<()> {
        with_db!(self, write, |pool| {
            sqlx::query("DELETE FROM nodes").execute(pool).await?;
        });
        Ok(())
    }
}
