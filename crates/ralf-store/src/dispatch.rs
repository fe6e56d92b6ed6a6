//! What the task dispatcher asks of the store: claiming waiting tasks in order within the
//! limits, status checks of running tasks, the commit a task runs.

use const_format::concatcp;
use ralf_core::{TaskId, TaskStatus};

use crate::driver::Dialect as _;
use crate::{Result, Store, StoreError, with_db};

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
    /// The tags a runner must carry to take the task (a JSON array of strings).
    pub runner_tags: String,
}

impl QueuedTask {
    /// The runner tags the task's template requires; none when the stored list is unreadable.
    pub fn required_tags(&self) -> Vec<String> {
        serde_json::from_str(&self.runner_tags).unwrap_or_default()
    }
}

/// A task that holds a slot.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ActiveTask {
    pub id: i64,
    pub project_id: i64,
    pub template_id: i64,
    /// The runner that holds it; `None` when a server runs it.
    pub runner_id: Option<i64>,
}

/// [`ACTIVE`] as an SQL list, for `status IN (…)`.
pub(crate) const ACTIVE_LIST: &str =
    "'starting', 'running', 'stopping', 'waiting_confirmation', 'confirmed'";

const ACTIVE_TASKS: &str = concatcp!(
    "SELECT id, project_id, template_id, runner_id FROM tasks WHERE status IN (",
    ACTIVE_LIST,
    ")"
);

const HELD_BY_RUNNER: &str = concatcp!(
    "SELECT id, project_id, template_id, runner_id, status FROM tasks
     WHERE runner_id = $1 AND status IN (",
    ACTIVE_LIST,
    ")"
);

/// Who takes a task: a server of the cluster (by node id) or a remote runner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claimant<'a> {
    Node(&'a str),
    Runner(i64),
}

impl Store {
    /// Claims waiting tasks for `claimant` in one transaction: `pick` is shown the oldest
    /// `lookahead` waiting tasks and every active one (for the limits) and names those to take;
    /// they become `starting`, owned by the claimant, and are returned. On PostgreSQL claims of
    /// every server take turns on an advisory lock and each chosen row is locked with
    /// `FOR UPDATE SKIP LOCKED`; on SQLite the single writer serializes them.
    pub async fn claim_tasks(
        &self,
        claimant: Claimant<'_>,
        lookahead: i64,
        pick: impl FnOnce(&[QueuedTask], &[ActiveTask]) -> Vec<i64>,
    ) -> Result<Vec<QueuedTask>> {
        let (node_id, runner_id) = match claimant {
            Claimant::Node(id) => (Some(id), None),
            Claimant::Runner(id) => (None, Some(id)),
        };
        with_db!(self, write, |pool| {
            let mut tx = pool.begin().await?;
            tx.serialize_claims().await?;
            let queued: Vec<QueuedTask> = sqlx::query_as(
                "SELECT t.id, t.project_id, t.template_id, tpl.allow_parallel_tasks,
                        p.max_parallel_tasks AS project_max_parallel_tasks, tpl.runner_tags
                 FROM tasks t JOIN templates tpl ON tpl.id = t.template_id
                 JOIN projects p ON p.id = t.project_id
                 WHERE t.status = 'waiting' ORDER BY t.id LIMIT $1",
            )
            .bind(lookahead)
            .fetch_all(&mut *tx)
            .await?;
            if queued.is_empty() {
                return Ok(Vec::new());
            }
            let active: Vec<ActiveTask> = sqlx::query_as(ACTIVE_TASKS).fetch_all(&mut *tx).await?;
            let picked = pick(&queued, &active);
            let mut claimed = Vec::with_capacity(picked.len());
            for task in queued.into_iter().filter(|t| picked.contains(&t.id)) {
                // Only the chosen rows are locked (locking every candidate costs a write
                // each).
                if !tx.lock_waiting_task(task.id).await? {
                    continue;
                }
                let changed = sqlx::query(
                    "UPDATE tasks SET status = 'starting', node_id = $2, runner_id = $3
                     WHERE id = $1 AND status = 'waiting'",
                )
                .bind(task.id)
                .bind(node_id)
                .bind(runner_id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if changed == 1 {
                    claimed.push(task);
                }
            }
            tx.commit().await?;
            Ok::<_, StoreError>(claimed)
        })
    }

    /// The current status of each of these tasks (missing ones were deleted).
    pub async fn task_statuses(&self, ids: &[i64]) -> Result<Vec<(i64, TaskStatus)>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let rows = with_db!(self, read, |pool| {
            let mut conn = pool.acquire().await?;
            conn.task_statuses(ids).await?
        });
        Ok(rows
            .into_iter()
            .filter_map(|(id, s)| TaskStatus::parse(&s).map(|s| (id, s)))
            .collect())
    }

    /// The current status of one task.
    pub async fn task_status(&self, id: TaskId) -> Result<Option<TaskStatus>> {
        Ok(self.task_statuses(&[id.0]).await?.first().map(|(_, s)| *s))
    }

    /// Records the commit a task checked out.
    pub async fn set_task_checkout(
        &self,
        id: TaskId,
        commit_hash: &str,
        commit_message: &str,
    ) -> Result<()> {
        with_db!(self, write, |pool| sqlx::query(
            "UPDATE tasks SET commit_hash = $1, commit_message = $2 WHERE id = $3"
        )
        .bind(commit_hash)
        .bind(commit_message)
        .bind(id)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(())
    }
}

/// An active task held by a runner, as the runner's poll sees it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct HeldTask {
    pub id: i64,
    pub project_id: i64,
    pub template_id: i64,
    pub runner_id: Option<i64>,
    pub status: String,
}

impl Store {
    /// Every active task runner `runner_id` holds.
    pub async fn runner_tasks(&self, runner_id: i64) -> Result<Vec<HeldTask>> {
        Ok(with_db!(self, read, |pool| sqlx::query_as::<_, HeldTask>(
            HELD_BY_RUNNER
        )
        .bind(runner_id)
        .fetch_all(pool)
        .await)?)
    }

    /// Who holds a task and its status, whatever the status; `None`: no such task.
    pub async fn task_holder(&self, task_id: TaskId) -> Result<Option<HeldTask>> {
        Ok(with_db!(self, read, |pool| sqlx::query_as::<_, HeldTask>(
            "SELECT id, project_id, template_id, runner_id, status FROM tasks WHERE id = $1",
        )
        .bind(task_id)
        .fetch_optional(pool)
        .await)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_active_list_names_the_active_statuses() {
        let quoted: Vec<String> = ACTIVE.iter().map(|s| format!("'{s}'")).collect();
        assert_eq!(ACTIVE_LIST, quoted.join(", "));
    }
}
