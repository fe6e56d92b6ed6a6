//! Tasks and their output.
//!
//! Lists page on the `(project_id, id)` index first and join the template and the user only
//! for the rows of the page, so a project with a million tasks lists as fast as a new one.
//! Status changes are compare-and-set (`UPDATE … WHERE id = $1 AND status = $2`): of two
//! concurrent changes from the same status, one wins and the other learns it lost.
//! Their output is kept in `output.rs`.

use const_format::concatcp;
use ralf_core::api::tasks::{Task, TaskParams};
use ralf_core::{ProjectId, TaskId, TaskStatus, TemplateId, Timestamp};

use crate::driver::{Reference, Tx as _};
use crate::{Result, Store, StoreError, audited, order_by, with_db};

/// The columns of a task row with its template and user, over a source aliased `t`.
pub(crate) const TASK_COLUMNS: &str = r#"t.id, t.template_id, t.project_id, t.status, t.user_id, t.playbook,
    t.environment, t.arguments, t.git_branch, t.commit_hash, t.commit_message, t.message,
    t.inventory_id, t.build_task_id, t.version, t.params, t.integration_id, t.schedule_id,
    t.created, t.start, t."end" AS finished,
    tpl.playbook AS tpl_playbook, tpl.name AS tpl_alias, tpl.type AS tpl_type, tpl.app AS tpl_app,
    u.name AS user_name"#;

pub(crate) const TASK_JOINS: &str =
    "JOIN templates tpl ON tpl.id = t.template_id LEFT JOIN users u ON u.id = t.user_id";

/// One task (`$1`) of any project.
pub(crate) const TASK_BY_ID: &str = concatcp!(
    "SELECT ",
    TASK_COLUMNS,
    " FROM tasks t ",
    TASK_JOINS,
    " WHERE t.id = $1"
);

/// One task (`$1`) of project `$2`.
const TASK_IN_PROJECT: &str = concatcp!(TASK_BY_ID, " AND t.project_id = $2");

/// The most tasks one list call returns.
pub const MAX_TASK_PAGE: i64 = 1000;

/// A task about to be queued. The handler has checked every field and that the template
/// belongs to the project; the store checks the ids it is given against the project.
pub struct NewTask<'a> {
    pub project_id: ProjectId,
    pub template_id: TemplateId,
    pub user_id: Option<i64>,
    pub playbook: &'a str,
    /// A JSON object.
    pub environment: &'a str,
    /// A JSON array of strings.
    pub arguments: Option<&'a str>,
    pub git_branch: Option<&'a str>,
    pub commit_hash: Option<&'a str>,
    pub message: &'a str,
    pub inventory_id: Option<i64>,
    pub build_task_id: Option<i64>,
    pub version: Option<&'a str>,
    pub params: &'a TaskParams,
    pub integration_id: Option<i64>,
    pub schedule_id: Option<i64>,
    /// The secret survey answers, already encrypted: kept beside the task until whichever
    /// server or runner takes it reads them ([`Store::task_secret`]); removed when it finishes.
    pub secret: Option<&'a str>,
}

/// Which tasks of a project a list call wants, newest first by default.
#[derive(Debug, Clone)]
pub struct TaskQuery<'a> {
    pub template_id: Option<TemplateId>,
    /// Only tasks in one of these statuses (all when empty).
    pub statuses: &'a [TaskStatus],
    /// Only tasks with a smaller id (keyset paging: pass the last id of the previous page).
    pub before_id: Option<i64>,
    /// Rows to skip first.
    pub offset: i64,
    /// At most this many (capped at [`MAX_TASK_PAGE`]).
    pub limit: i64,
    /// `id` (default), `created`, `status` or `template`.
    pub sort: Option<&'a str>,
    /// Ascending instead of the default newest first.
    pub ascending: bool,
    /// Only tasks started by this user.
    pub user_id: Option<i64>,
    /// Only tasks created at or after this time.
    pub created_from: Option<Timestamp>,
    /// Only tasks created before this time.
    pub created_until: Option<Timestamp>,
}

impl Default for TaskQuery<'_> {
    fn default() -> Self {
        TaskQuery {
            template_id: None,
            statuses: &[],
            before_id: None,
            offset: 0,
            limit: MAX_TASK_PAGE,
            sort: None,
            ascending: false,
            user_id: None,
            created_from: None,
            created_until: None,
        }
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct TaskRow {
    id: i64,
    template_id: i64,
    project_id: i64,
    status: String,
    user_id: Option<i64>,
    playbook: String,
    environment: String,
    arguments: Option<String>,
    git_branch: Option<String>,
    commit_hash: Option<String>,
    commit_message: String,
    message: String,
    inventory_id: Option<i64>,
    build_task_id: Option<i64>,
    version: Option<String>,
    params: String,
    integration_id: Option<i64>,
    schedule_id: Option<i64>,
    created: Timestamp,
    start: Option<Timestamp>,
    finished: Option<Timestamp>,
    tpl_playbook: String,
    tpl_alias: String,
    tpl_type: String,
    tpl_app: String,
    user_name: Option<String>,
}

impl TaskRow {
    pub(crate) fn into_task(self) -> Result<Task> {
        let status = TaskStatus::parse(&self.status).ok_or_else(|| {
            StoreError::Corrupt(format!(
                "task {} has the unknown status {:?}",
                self.id, self.status
            ))
        })?;
        let params: TaskParams = if self.params.trim().is_empty() {
            TaskParams::default()
        } else {
            serde_json::from_str(&self.params).map_err(|e| {
                StoreError::Corrupt(format!("task {} has unreadable params: {e}", self.id))
            })?
        };
        Ok(Task {
            id: self.id,
            template_id: self.template_id,
            project_id: self.project_id,
            status,
            debug: params.debug,
            dry_run: params.dry_run,
            diff: params.diff,
            playbook: self.playbook,
            environment: self.environment,
            secret: String::new(),
            limit: params.limit.join(","),
            arguments: self.arguments,
            git_branch: self.git_branch,
            user_id: self.user_id,
            integration_id: self.integration_id,
            schedule_id: self.schedule_id,
            created: self.created,
            start: self.start,
            end: self.finished,
            message: self.message,
            commit_hash: self.commit_hash,
            commit_message: self.commit_message,
            build_task_id: self.build_task_id,
            version: self.version,
            inventory_id: self.inventory_id,
            params,
            tpl_playbook: self.tpl_playbook,
            tpl_alias: self.tpl_alias,
            tpl_type: self.tpl_type,
            tpl_app: self.tpl_app,
            user_name: self.user_name,
        })
    }
}

/// The ids a new task names that must be objects of its project.
pub(crate) fn task_references(new: &NewTask<'_>) -> [Reference; 3] {
    [
        Reference {
            id: Some(new.template_id.0),
            count: "SELECT COUNT(*) FROM templates WHERE id = $1 AND project_id = $2",
            missing: "template_id: no such template in this project",
        },
        Reference {
            id: new.inventory_id,
            count: "SELECT COUNT(*) FROM inventories WHERE id = $1 AND project_id = $2",
            missing: "inventory_id: no such inventory in this project",
        },
        Reference {
            id: new.build_task_id,
            count: "SELECT COUNT(*) FROM tasks WHERE id = $1 AND project_id = $2",
            missing: "build_task_id: no such task in this project",
        },
    ]
}

impl Store {
    /// Queues a task in status `waiting`. `inventory_id` and `build_task_id` must belong to the
    /// project (else [`StoreError::Invalid`] naming the field), as must the template.
    pub async fn create_task(&self, new: &NewTask<'_>) -> Result<Task> {
        let params = serde_json::to_string(new.params)
            .map_err(|e| StoreError::Invalid(format!("params: {e}")))?;
        let row = with_db!(self, write, |pool| {
            let mut tx = pool.begin().await?;
            tx.check_in_project(new.project_id, &task_references(new))
                .await?;
            let id = tx.insert_task(new, &params).await?;
            let row = tx.task_row(id).await?;
            tx.commit().await?;
            row
        });
        row.into_task()
    }

    /// One task of the project.
    pub async fn task(&self, project_id: ProjectId, id: TaskId) -> Result<Task> {
        let row = with_db!(self, read, |pool| sqlx::query_as::<_, TaskRow>(
            TASK_IN_PROJECT
        )
        .bind(id)
        .bind(project_id)
        .fetch_one(pool)
        .await)?;
        row.into_task()
    }

    /// A page of the project's tasks. The page is chosen on the tasks table alone (by the
    /// `(project_id, id)`, `(project_id, status, id)` or `(template_id, id)` index), then joined.
    /// Sorting by `created` is sorting by `id`: tasks get their `created` from the server clock
    /// as they are inserted, in id order.
    pub async fn tasks(&self, project_id: ProjectId, query: &TaskQuery<'_>) -> Result<Vec<Task>> {
        self.tasks_of(Some(project_id), query).await
    }

    /// A page of the tasks of every project (administrators' view), chosen as [`Store::tasks`].
    pub async fn tasks_of_every_project(&self, query: &TaskQuery<'_>) -> Result<Vec<Task>> {
        self.tasks_of(None, query).await
    }

    async fn tasks_of(
        &self,
        project_id: Option<ProjectId>,
        query: &TaskQuery<'_>,
    ) -> Result<Vec<Task>> {
        const INNER: [(&str, &str); 4] = [
            ("id", "id"),
            ("created", "id"),
            ("status", "status"),
            ("template", "template_id"),
        ];
        const OUTER: [(&str, &str); 4] = [
            ("id", "t.id"),
            ("created", "t.id"),
            ("status", "t.status"),
            ("template", "t.template_id"),
        ];
        let descending = !query.ascending;
        let inner_order = order_by(&INNER, query.sort, descending)?;
        let outer_order = order_by(&OUTER, query.sort, descending)?.replace(", id ", ", t.id ");

        // Every project: every id is above 0.
        let (mut filter, project_id) = match project_id {
            Some(id) => (String::from("project_id = $1"), id),
            None => (String::from("project_id > $1"), ProjectId(0)),
        };
        let mut next = 4;
        if query.template_id.is_some() {
            filter.push_str(&format!(" AND template_id = ${next}"));
            next += 1;
        }
        if query.before_id.is_some() {
            filter.push_str(&format!(" AND id < ${next}"));
            next += 1;
        }
        if query.user_id.is_some() {
            filter.push_str(&format!(" AND user_id = ${next}"));
            next += 1;
        }
        if query.created_from.is_some() {
            filter.push_str(&format!(" AND created >= ${next}"));
            next += 1;
        }
        if query.created_until.is_some() {
            filter.push_str(&format!(" AND created < ${next}"));
            next += 1;
        }
        if !query.statuses.is_empty() {
            let list: Vec<String> = (next..next + query.statuses.len())
                .map(|n| format!("${n}"))
                .collect();
            filter.push_str(&format!(" AND status IN ({})", list.join(", ")));
        }
        let sql = format!(
            "SELECT {TASK_COLUMNS} FROM
               (SELECT * FROM tasks WHERE {filter} {inner_order} LIMIT $2 OFFSET $3) t
             {TASK_JOINS} {outer_order}"
        );
        let limit = query.limit.clamp(0, MAX_TASK_PAGE);
        let offset = query.offset.max(0);
        let rows = with_db!(self, read, |pool| {
            let mut q = sqlx::query_as::<_, TaskRow>(audited(&sql))
                .bind(project_id)
                .bind(limit)
                .bind(offset);
            if let Some(template_id) = query.template_id {
                q = q.bind(template_id);
            }
            if let Some(before_id) = query.before_id {
                q = q.bind(before_id);
            }
            if let Some(user_id) = query.user_id {
                q = q.bind(user_id);
            }
            if let Some(from) = query.created_from {
                q = q.bind(from);
            }
            if let Some(until) = query.created_until {
                q = q.bind(until);
            }
            for status in query.statuses {
                q = q.bind(status.as_str());
            }
            q.fetch_all(pool).await?
        });
        rows.into_iter().map(TaskRow::into_task).collect()
    }

    /// Moves task `id` from `from` to `to` if it is still in `from`, in one statement; `true`
    /// when this call made the change, `false` when the task was not in `from` (another change
    /// won, or there is no such task). Entering `running` sets `start` (once); entering a
    /// finished status sets `end`. A change the state machine forbids is
    /// [`StoreError::Invalid`].
    pub async fn set_task_status(
        &self,
        id: TaskId,
        from: TaskStatus,
        to: TaskStatus,
        now: Timestamp,
    ) -> Result<bool> {
        if !from.can_become(to) {
            return Err(StoreError::Invalid(format!(
                "a {from} task cannot become {to}"
            )));
        }
        // `$1` the new status, `$2` the task, `$3` the old status, `$4` the time.
        let (sql, stamps) = if to == TaskStatus::Running {
            (
                "UPDATE tasks SET status = $1, start = COALESCE(start, $4)
                 WHERE id = $2 AND status = $3",
                true,
            )
        } else if to.is_finished() {
            (
                "UPDATE tasks SET status = $1, \"end\" = $4 WHERE id = $2 AND status = $3",
                true,
            )
        } else {
            (
                "UPDATE tasks SET status = $1 WHERE id = $2 AND status = $3",
                false,
            )
        };
        let done = with_db!(self, write, |pool| {
            let mut tx = pool.begin().await?;
            let mut q = sqlx::query(sql)
                .bind(to.as_str())
                .bind(id)
                .bind(from.as_str());
            if stamps {
                q = q.bind(now);
            }
            let done = q.execute(&mut *tx).await?.rows_affected();
            if done == 1 {
                if to.is_finished() {
                    // A finished task needs its secret answers no more.
                    sqlx::query("DELETE FROM task_secrets WHERE task_id = $1")
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                }
                tx.owe_notification(id, to, now).await?;
            }
            tx.commit().await?;
            done
        });
        if done == 1 {
            self.count_status_change(id, to).await;
        }
        Ok(done == 1)
    }

    /// Deletes a finished task with its output. A task that is not finished is a
    /// [`StoreError::Conflict`]; tasks built from it lose their `build_task_id`.
    pub async fn delete_task(&self, project_id: ProjectId, id: TaskId) -> Result<()> {
        with_db!(self, write, |pool| {
            let mut tx = pool.begin().await?;
            let status: Option<String> =
                sqlx::query_scalar("SELECT status FROM tasks WHERE id = $1 AND project_id = $2")
                    .bind(id)
                    .bind(project_id)
                    .fetch_optional(&mut *tx)
                    .await?;
            let Some(status) = status else {
                return Err(StoreError::NotFound);
            };
            // Finished is final, so the status cannot change before the delete below.
            if !TaskStatus::parse(&status).is_some_and(TaskStatus::is_finished) {
                return Err(StoreError::Conflict(format!(
                    "task {id} is {status}; only finished tasks can be deleted (stop it first)"
                )));
            }
            sqlx::query("DELETE FROM task_output WHERE task_id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            sqlx::query("DELETE FROM tasks WHERE id = $1 AND project_id = $2")
                .bind(id)
                .bind(project_id)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
        });
        Ok(())
    }
}
