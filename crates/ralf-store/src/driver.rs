//! The two drivers behind the one [`Store`](crate::Store). [`Dialect`] is what SQLite and
//! PostgreSQL do differently (locks, and the statement written in each one's JSON functions),
//! implemented once per driver; [`Tx`] is the statements several store methods share inside
//! their transactions, written once and implemented for both drivers' connections by
//! `impl_tx!`. A store method picks its pool with `with_db!` and calls these methods on the
//! transaction or connection it holds; nothing here looks at which database it runs on.

use const_format::concatcp;
use ralf_core::api::projects::Project;
use ralf_core::api::refs::ObjectRef;
use ralf_core::api::templates::{NewVault, TemplateSettings};
use ralf_core::{ProjectId, Role, TaskId, TaskStatus, TemplateId, Timestamp};
use sqlx::{PgConnection, SqliteConnection};

use crate::cluster::{LostTask, OrphanedTask};
use crate::dispatch::ACTIVE_LIST;
use crate::environments::{EnvironmentFields, PasswordChange, SealedSecretChange};
use crate::output::Chunk;
use crate::projects::{INSERT_PROJECT, ProjectFields};
use crate::tasks::{NewTask, TASK_BY_ID, TaskRow};
use crate::templates::{INSERT_TEMPLATE, JsonColumns, UPDATE_TEMPLATE};
use crate::{Result, StoreError};

/// An id a new object names that must be an object of the same project: `count` counts it
/// (`$1` the id, `$2` the project), `missing` says what is wrong when it is not there.
pub(crate) struct Reference {
    pub id: Option<i64>,
    pub count: &'static str,
    pub missing: &'static str,
}

/// What SQLite and PostgreSQL do differently, each in its own impl below.
pub(crate) trait Dialect {
    /// Makes concurrent appends to task `task_id`'s output take turns until the transaction
    /// ends. PostgreSQL locks the task's row; SQLite's one writer serializes them already.
    async fn lock_task_output(&mut self, task_id: TaskId) -> Result<()>;

    /// Makes the task claims of every server take turns until the transaction ends, so the
    /// limits (which count every active task) hold across a cluster. PostgreSQL takes an
    /// advisory lock; SQLite's one writer serializes them already.
    async fn serialize_claims(&mut self) -> Result<()>;

    /// Locks waiting task `id` for the transaction; `false` when it is no longer waiting or
    /// another transaction holds it (a stop), which is skipped rather than waited for.
    /// PostgreSQL locks the row (`FOR UPDATE SKIP LOCKED`); on SQLite nobody else can hold it
    /// and the claim's own compare-and-set does the rest.
    async fn lock_waiting_task(&mut self, id: i64) -> Result<bool>;

    /// The project's templates that use environment `id`, as theirs or as one of their
    /// `environment_ids` (a JSON array, read with each database's JSON functions).
    async fn templates_using_environment(
        &mut self,
        project_id: ProjectId,
        id: i64,
    ) -> Result<Vec<ObjectRef>>;

    /// The id and status of each of the tasks `ids` that exists, in one fixed statement
    /// whatever the ids (a statement with the ids written into it would be prepared anew, and
    /// cached by every connection, for each set of ids).
    async fn task_statuses(&mut self, ids: &[i64]) -> Result<Vec<(i64, String)>>;
}

impl Dialect for SqliteConnection {
    async fn lock_task_output(&mut self, _task_id: TaskId) -> Result<()> {
        Ok(())
    }

    async fn serialize_claims(&mut self) -> Result<()> {
        Ok(())
    }

    async fn lock_waiting_task(&mut self, _id: i64) -> Result<bool> {
        Ok(true)
    }

    async fn templates_using_environment(
        &mut self,
        project_id: ProjectId,
        id: i64,
    ) -> Result<Vec<ObjectRef>> {
        Ok(sqlx::query_as(
            "SELECT id, name FROM templates t WHERE project_id = $1 AND (environment_id = $2
                OR CASE WHEN json_valid(t.environment_ids)
                   THEN EXISTS (SELECT 1 FROM json_each(t.environment_ids) j WHERE j.value = $2)
                   ELSE 0 END)
             ORDER BY name, id",
        )
        .bind(project_id)
        .bind(id)
        .fetch_all(&mut *self)
        .await?)
    }

    async fn task_statuses(&mut self, ids: &[i64]) -> Result<Vec<(i64, String)>> {
        let ids = serde_json::to_string(ids).map_err(|e| StoreError::Invalid(e.to_string()))?;
        Ok(sqlx::query_as(
            "SELECT id, status FROM tasks WHERE id IN (SELECT value FROM json_each($1))",
        )
        .bind(ids)
        .fetch_all(&mut *self)
        .await?)
    }
}

/// The key of the advisory lock that makes the claims of all servers take turns.
const CLAIM_LOCK: i64 = 0x7261_6c66; // "ralf"

impl Dialect for PgConnection {
    async fn lock_task_output(&mut self, task_id: TaskId) -> Result<()> {
        sqlx::query("SELECT id FROM tasks WHERE id = $1 FOR UPDATE")
            .bind(task_id)
            .execute(&mut *self)
            .await?;
        Ok(())
    }

    async fn serialize_claims(&mut self) -> Result<()> {
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(CLAIM_LOCK)
            .execute(&mut *self)
            .await?;
        Ok(())
    }

    async fn lock_waiting_task(&mut self, id: i64) -> Result<bool> {
        let free: Option<i64> = sqlx::query_scalar(
            "SELECT id FROM tasks WHERE id = $1 AND status = 'waiting' FOR UPDATE SKIP LOCKED",
        )
        .bind(id)
        .fetch_optional(&mut *self)
        .await?;
        Ok(free.is_some())
    }

    async fn templates_using_environment(
        &mut self,
        project_id: ProjectId,
        id: i64,
    ) -> Result<Vec<ObjectRef>> {
        Ok(sqlx::query_as(
            "SELECT id, name FROM templates t WHERE project_id = $1 AND (environment_id = $2
                OR CASE WHEN t.environment_ids ~ '^\\s*\\[[-0-9\\s,]*\\]\\s*$'
                   THEN t.environment_ids::jsonb @> jsonb_build_array($2::BIGINT)
                   ELSE FALSE END)
             ORDER BY name, id",
        )
        .bind(project_id)
        .bind(id)
        .fetch_all(&mut *self)
        .await?)
    }

    async fn task_statuses(&mut self, ids: &[i64]) -> Result<Vec<(i64, String)>> {
        Ok(
            sqlx::query_as("SELECT id, status FROM tasks WHERE id = ANY($1)")
                .bind(ids)
                .fetch_all(&mut *self)
                .await?,
        )
    }
}

/// The statements store methods share inside their transactions.
pub(crate) trait Tx: Dialect {
    /// The `missing` message of the first of `references` that is not an object of the
    /// project; `None` when all are (or name nothing).
    async fn first_missing(
        &mut self,
        project_id: ProjectId,
        references: &[Reference],
    ) -> Result<Option<&'static str>>;

    /// [`StoreError::Invalid`] with the message of the first of `references` that is not an
    /// object of the project.
    async fn check_in_project(
        &mut self,
        project_id: ProjectId,
        references: &[Reference],
    ) -> Result<()> {
        match self.first_missing(project_id, references).await? {
            Some(missing) => Err(StoreError::Invalid(missing.into())),
            None => Ok(()),
        }
    }

    /// Inserts the `waiting` task `new` with its `params` JSON (and its secret answers, if
    /// any); returns the new id.
    async fn insert_task(&mut self, new: &NewTask<'_>, params: &str) -> Result<i64>;

    /// Task `id` as lists show it.
    async fn task_row(&mut self, id: i64) -> Result<TaskRow>;

    /// Appends a [`Chunk`] to task `task_id`'s output, after the lines already there;
    /// returns the index of its first line.
    async fn append_chunk(&mut self, task_id: TaskId, chunk: &Chunk) -> Result<i64>;

    /// Records that task `task_id` entering `status` is owed to its project's alert channels
    /// (when the status is notifiable; once per task and status), due at `now`. Called in the
    /// transaction that stores the status, so no end is stored without it.
    async fn owe_notification(
        &mut self,
        task_id: TaskId,
        status: TaskStatus,
        now: Timestamp,
    ) -> Result<()>;

    /// Moves `task` back to `waiting` (when it may be requeued) or to `error`, appending its
    /// last line; `None` when the task was no longer active (a compare-and-set, so a task
    /// settled meanwhile, by its server after all or by another sweep, is left alone).
    async fn settle_lost(&mut self, task: LostTask, now: Timestamp)
    -> Result<Option<OrphanedTask>>;

    /// Creates a project with `owner` as its first member (role owner).
    async fn insert_project(&mut self, fields: &ProjectFields<'_>, owner: i64) -> Result<Project>;

    /// Creates an environment with its secrets (`Create` changes only); returns its id.
    async fn insert_environment(
        &mut self,
        project_id: ProjectId,
        fields: &EnvironmentFields<'_>,
        secrets: &[SealedSecretChange],
    ) -> Result<i64>;

    /// Writes a template's settings: a new template of the project when `id` is `None`, else
    /// template `id` of the project. Returns its id; `None` when there is no such template.
    async fn save_template(
        &mut self,
        project_id: ProjectId,
        id: Option<TemplateId>,
        settings: &TemplateSettings,
    ) -> Result<Option<TemplateId>>;

    /// Adds a vault to template `template_id`.
    async fn insert_vault(
        &mut self,
        project_id: ProjectId,
        template_id: TemplateId,
        vault: &NewVault,
    ) -> Result<()>;
}

/// Implements [`Tx`] for one driver's connection; the bodies are the same for both.
macro_rules! impl_tx {
    ($conn:ty) => {
        impl Tx for $conn {
            async fn first_missing(
                &mut self,
                project_id: ProjectId,
                references: &[Reference],
            ) -> Result<Option<&'static str>> {
                for reference in references {
                    let Some(id) = reference.id else { continue };
                    let found: i64 = sqlx::query_scalar(reference.count)
                        .bind(id)
                        .bind(project_id)
                        .fetch_one(&mut *self)
                        .await?;
                    if found == 0 {
                        return Ok(Some(reference.missing));
                    }
                }
                Ok(None)
            }

            async fn insert_task(&mut self, new: &NewTask<'_>, params: &str) -> Result<i64> {
                let id: i64 = sqlx::query_scalar(
                    "INSERT INTO tasks (project_id, template_id, status, user_id, playbook,
                        environment, arguments, git_branch, commit_hash, message, inventory_id,
                        build_task_id, version, params, integration_id, schedule_id, created)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15,
                             $16, $17)
                     RETURNING id",
                )
                .bind(new.project_id)
                .bind(new.template_id)
                .bind(TaskStatus::Waiting.as_str())
                .bind(new.user_id)
                .bind(new.playbook)
                .bind(new.environment)
                .bind(new.arguments)
                .bind(new.git_branch)
                .bind(new.commit_hash)
                .bind(new.message)
                .bind(new.inventory_id)
                .bind(new.build_task_id)
                .bind(new.version)
                .bind(params)
                .bind(new.integration_id)
                .bind(new.schedule_id)
                .bind(Timestamp::now())
                .fetch_one(&mut *self)
                .await?;
                if let Some(secret) = new.secret {
                    sqlx::query("INSERT INTO task_secrets (task_id, secret) VALUES ($1, $2)")
                        .bind(id)
                        .bind(secret)
                        .execute(&mut *self)
                        .await?;
                }
                Ok(id)
            }

            async fn task_row(&mut self, id: i64) -> Result<TaskRow> {
                Ok(sqlx::query_as(TASK_BY_ID)
                    .bind(id)
                    .fetch_one(&mut *self)
                    .await?)
            }

            async fn append_chunk(&mut self, task_id: TaskId, chunk: &Chunk) -> Result<i64> {
                self.lock_task_output(task_id).await?;
                let first: i64 = sqlx::query_scalar(
                    "SELECT COALESCE(MAX(first_line + line_count), 0) FROM task_output
                     WHERE task_id = $1",
                )
                .bind(task_id)
                .fetch_one(&mut *self)
                .await?;
                sqlx::query(
                    "INSERT INTO task_output (task_id, first_line, line_count, time, offsets,
                                              output)
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(task_id)
                .bind(first)
                .bind(chunk.count)
                .bind(chunk.time)
                .bind(&chunk.offsets)
                .bind(&chunk.output)
                .execute(&mut *self)
                .await?;
                Ok(first)
            }

            async fn owe_notification(
                &mut self,
                task_id: TaskId,
                status: TaskStatus,
                now: Timestamp,
            ) -> Result<()> {
                if status.is_notifiable() {
                    sqlx::query(crate::notifications::OWE_NOTIFICATION)
                        .bind(task_id)
                        .bind(status.as_str())
                        .bind(now.0.timestamp_millis())
                        .execute(&mut *self)
                        .await?;
                }
                Ok(())
            }

            async fn settle_lost(
                &mut self,
                task: LostTask,
                now: Timestamp,
            ) -> Result<Option<OrphanedTask>> {
                let changed = if task.requeue {
                    sqlx::query(REQUEUE_ACTIVE_TASK)
                        .bind(task.id)
                        .execute(&mut *self)
                        .await?
                } else {
                    sqlx::query(FAIL_ACTIVE_TASK)
                        .bind(task.id)
                        .bind(now)
                        .execute(&mut *self)
                        .await?
                }
                .rows_affected();
                if changed != 1 {
                    return Ok(None);
                }
                if !task.requeue {
                    // A finished task needs its secret answers no more.
                    sqlx::query("DELETE FROM task_secrets WHERE task_id = $1")
                        .bind(task.id)
                        .execute(&mut *self)
                        .await?;
                    self.owe_notification(task.id, TaskStatus::Error, now)
                        .await?;
                }
                let chunk = Chunk::new(&[(now, task.line.clone())]);
                let line_index = self.append_chunk(task.id, &chunk).await?;
                Ok(Some(OrphanedTask {
                    id: task.id.0,
                    project_id: task.project_id,
                    template_id: task.template_id,
                    status: if task.requeue {
                        TaskStatus::Waiting
                    } else {
                        TaskStatus::Error
                    },
                    line: task.line,
                    line_index,
                }))
            }

            async fn insert_project(
                &mut self,
                fields: &ProjectFields<'_>,
                owner: i64,
            ) -> Result<Project> {
                let project: Project = sqlx::query_as(INSERT_PROJECT)
                    .bind(fields.name)
                    .bind(Timestamp::now())
                    .bind(fields.alert)
                    .bind(fields.alert_chat)
                    .bind(fields.max_parallel_tasks)
                    .bind(fields.kind)
                    .fetch_one(&mut *self)
                    .await?;
                sqlx::query(
                    "INSERT INTO project_users (project_id, user_id, role) VALUES ($1, $2, $3)",
                )
                .bind(project.id)
                .bind(owner)
                .bind(Role::Owner.as_str())
                .execute(&mut *self)
                .await?;
                Ok(project)
            }

            async fn insert_environment(
                &mut self,
                project_id: ProjectId,
                fields: &EnvironmentFields<'_>,
                secrets: &[SealedSecretChange],
            ) -> Result<i64> {
                let password = match fields.password {
                    PasswordChange::Set(p) => Some(p),
                    PasswordChange::Keep | PasswordChange::Clear => None,
                };
                let id: i64 = sqlx::query_scalar(
                    "INSERT INTO environments (project_id, name, password, json, env)
                     VALUES ($1, $2, $3, $4, $5) RETURNING id",
                )
                .bind(project_id)
                .bind(fields.name)
                .bind(password)
                .bind(fields.json)
                .bind(fields.env)
                .fetch_one(&mut *self)
                .await?;
                for change in secrets {
                    let SealedSecretChange::Create { name, kind, secret } = change else {
                        return Err(StoreError::Invalid(
                            "a new environment has no secrets to update or delete".into(),
                        ));
                    };
                    sqlx::query(INSERT_ENVIRONMENT_SECRET)
                        .bind(project_id)
                        .bind(name)
                        .bind(secret)
                        .bind(id)
                        .bind(kind.as_str())
                        .execute(&mut *self)
                        .await?;
                }
                Ok(id)
            }

            async fn save_template(
                &mut self,
                project_id: ProjectId,
                id: Option<TemplateId>,
                settings: &TemplateSettings,
            ) -> Result<Option<TemplateId>> {
                let s = settings;
                let json = JsonColumns::of(s)?;
                let sql = if id.is_some() {
                    UPDATE_TEMPLATE
                } else {
                    INSERT_TEMPLATE
                };
                let mut query = sqlx::query_scalar::<_, TemplateId>(sql)
                    .bind(project_id)
                    .bind(&s.name)
                    .bind(s.app.as_str())
                    .bind(s.kind.as_str())
                    .bind(s.repository_id)
                    .bind(s.inventory_id)
                    .bind(s.environment_id)
                    .bind(&json.environment_ids)
                    .bind(s.view_id)
                    .bind(s.build_template_id)
                    .bind(&s.playbook)
                    .bind(s.working_directory.as_deref())
                    .bind(s.arguments.as_deref())
                    .bind(&s.description)
                    .bind(s.allow_override_args_in_task)
                    .bind(s.allow_override_branch_in_task)
                    .bind(&s.limit)
                    .bind(s.suppress_success_alerts)
                    .bind(s.suppress_error_alerts)
                    .bind(s.git_branch.as_deref())
                    .bind(&json.survey_vars)
                    .bind(s.start_version.as_deref())
                    .bind(s.autorun)
                    .bind(&json.task_params)
                    .bind(&s.executor_image)
                    .bind(s.allow_parallel_tasks)
                    .bind(s.timeout_secs)
                    .bind(s.requeue_when_lost)
                    .bind(&json.runner_tags);
                if let Some(id) = id {
                    query = query.bind(id);
                }
                Ok(query.fetch_optional(&mut *self).await?)
            }

            async fn insert_vault(
                &mut self,
                project_id: ProjectId,
                template_id: TemplateId,
                vault: &NewVault,
            ) -> Result<()> {
                sqlx::query(
                    "INSERT INTO template_vaults
                        (template_id, project_id, name, type, vault_key_id, script)
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(template_id)
                .bind(project_id)
                .bind(&vault.name)
                .bind(vault.kind.as_str())
                .bind(vault.vault_key_id)
                .bind(&vault.script)
                .execute(&mut *self)
                .await?;
                Ok(())
            }
        }
    };
}

impl_tx!(SqliteConnection);
impl_tx!(PgConnection);

/// Puts an active task back in the queue as if it had never started (`$1` the task).
const REQUEUE_ACTIVE_TASK: &str = concatcp!(
    "UPDATE tasks SET status = 'waiting', node_id = NULL, runner_id = NULL, start = NULL
     WHERE id = $1 AND status IN (",
    ACTIVE_LIST,
    ")"
);

/// Ends an active task in `error` (`$1` the task, `$2` the time).
const FAIL_ACTIVE_TASK: &str = concatcp!(
    "UPDATE tasks SET status = 'error', \"end\" = $2 WHERE id = $1 AND status IN (",
    ACTIVE_LIST,
    ")"
);

/// A secret of an environment (`$1` the project, `$2` its name, `$3` the sealed value, `$4`
/// the environment, `$5` `env` or `var`).
pub(crate) const INSERT_ENVIRONMENT_SECRET: &str =
    "INSERT INTO access_keys (project_id, name, type, secret, environment_id, owner)
     VALUES ($1, $2, 'string', $3, $4, $5)";
