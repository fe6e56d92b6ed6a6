//! What the task dispatcher asks of the store: the queue in order, what is active (for the
//! limits), status checks of running tasks, the commit a task runs, and the clean-up after a
//! crash.

use ralf_core::{TaskStatus, Timestamp};

use crate::output::{Chunk, append_chunk};
use crate::{Result, Store, audited, with_db};

/// The statuses of a task that holds a slot: it runs, or it waits for a decision on its plan.
pub const ACTIVE: [TaskStatus; 5] = [
    TaskStatus::Starting,
    TaskStatus::Running,
    TaskStatus::Stopping,
    TaskStatus::WaitingConfirmation,
    TaskStatus::Confirmed,
];

/// A waiting task with what the limits need to know about it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct QueuedTask {
    pub id: i64,
    pub project_id: i64,
    pub template_id: i64,
    /// The template allows several running tasks at once.
    pub allow_parallel_tasks: bool,
    /// The project's own cap on active tasks; 0 = none.
    pub project_max_parallel_tasks: i64,
}

/// A task that holds a slot.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ActiveTask {
    pub id: i64,
    pub project_id: i64,
    pub template_id: i64,
}

fn active_list() -> String {
    ACTIVE
        .iter()
        .map(|s| format!("'{}'", s.as_str()))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Store {
    /// Waiting tasks, oldest first (at most `limit`).
    pub async fn queued_tasks(&self, limit: i64) -> Result<Vec<QueuedTask>> {
        Ok(with_db!(
            self,
            read | pool
                | sqlx::query_as::<_, QueuedTask>(
                    "SELECT t.id, t.project_id, t.template_id,
                            tpl.allow_parallel_tasks, p.max_parallel_tasks AS project_max_parallel_tasks
                     FROM tasks t JOIN templates tpl ON tpl.id = t.template_id
                     JOIN projects p ON p.id = t.project_id
                     WHERE t.status = 'waiting' ORDER BY t.id LIMIT $1",
                )
                .bind(limit)
                .fetch_all(pool)
                .await
        )?)
    }

    /// Every task that holds a slot.
    pub async fn active_tasks(&self) -> Result<Vec<ActiveTask>> {
        let sql = format!(
            "SELECT id, project_id, template_id FROM tasks WHERE status IN ({})",
            active_list()
        );
        Ok(with_db!(
            self,
            read | pool
                | sqlx::query_as::<_, ActiveTask>(audited(&sql))
                    .fetch_all(pool)
                    .await
        )?)
    }

    /// The current status of each of these tasks (missing ones were deleted).
    pub async fn task_statuses(&self, ids: &[i64]) -> Result<Vec<(i64, TaskStatus)>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let list = ids
            .iter()
            .map(i64::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!("SELECT id, status FROM tasks WHERE id IN ({list})");
        let rows: Vec<(i64, String)> = with_db!(
            self,
            read | pool | sqlx::query_as(audited(&sql)).fetch_all(pool).await
        )?;
        Ok(rows
            .into_iter()
            .filter_map(|(id, s)| TaskStatus::parse(&s).map(|s| (id, s)))
            .collect())
    }

    /// The current status of one task.
    pub async fn task_status(&self, id: i64) -> Result<Option<TaskStatus>> {
        Ok(self.task_statuses(&[id]).await?.first().map(|(_, s)| *s))
    }

    /// Records the commit a task checked out.
    pub async fn set_task_checkout(
        &self,
        id: i64,
        commit_hash: &str,
        commit_message: &str,
    ) -> Result<()> {
        with_db!(
            self,
            write
                | pool
                | sqlx::query(
                    "UPDATE tasks SET commit_hash = $1, commit_message = $2 WHERE id = $3"
                )
                .bind(commit_hash)
                .bind(commit_message)
                .bind(id)
                .execute(pool)
                .await
                .map(|r| r.rows_affected())
        )?;
        Ok(())
    }

    /// Ends every task that was active when the server stopped without finishing it: the
    /// status becomes `error` and `line` is appended to each one's output. Returns their ids.
    pub async fn fail_interrupted_tasks(&self, line: &str) -> Result<Vec<i64>> {
        let now = Timestamp::now();
        let sql = format!(
            "UPDATE tasks SET status = 'error', \"end\" = $1 WHERE status IN ({}) RETURNING id",
            active_list()
        );
        let ids: Vec<i64> = with_db!(
            self,
            write | pool | {
                let mut tx = pool.begin().await?;
                let ids: Vec<i64> = sqlx::query_scalar(audited(&sql))
                    .bind(now)
                    .fetch_all(&mut *tx)
                    .await?;
                let chunk = Chunk::new(&[(now, line.to_string())]);
                for id in &ids {
                    append_chunk!(tx, *id, chunk);
                }
                tx.commit().await?;
                ids
            }
        );
        Ok(ids)
    }
}
