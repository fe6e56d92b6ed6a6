//! Templates and their vaults. A template's JSON-valued fields (survey variables, task
//! parameters, extra variable groups, runner tags) are kept as JSON text; its vaults live in
//! `template_vaults` and are replaced as a whole on every update.

use std::collections::HashMap;

use const_format::concatcp;
use ralf_core::api::refs::ObjectRef;
use ralf_core::api::templates::{
    NewVault, Template, TemplateApp, TemplateLastTask, TemplateSettings, TemplateTaskSummary,
    TemplateType, TemplateVault, VaultType,
};
use ralf_core::{ProjectId, TaskStatus, TemplateId, Timestamp};

use crate::driver::Tx as _;
use crate::in_project::InProject;
use crate::{Result, Store, StoreError, audited, order_by, with_db};

/// Every column of `templates`, as [`TemplateRow`] reads them.
const TEMPLATE_COLUMNS: &str = "id, project_id, name, app, type, repository_id, inventory_id,
    environment_id, environment_ids, view_id, build_template_id, playbook, working_directory,
    arguments, description, allow_override_args_in_task, allow_override_branch_in_task,
    limit_hosts, suppress_success_alerts, suppress_error_alerts, git_branch, survey_vars,
    start_version, autorun, task_params, executor_image, allow_parallel_tasks, timeout_secs,
    requeue_when_lost, runner_tags";

/// A template is read and deleted like any project object; the list ([`Store::templates`])
/// joins the objects it may sort by, so it has its own statement and `list` goes unused.
const TEMPLATES: InProject = InProject {
    list: concatcp!(
        "SELECT ",
        TEMPLATE_COLUMNS,
        " FROM templates WHERE project_id = $1"
    ),
    get: concatcp!(
        "SELECT ",
        TEMPLATE_COLUMNS,
        " FROM templates WHERE project_id = $1 AND id = $2"
    ),
    delete: "DELETE FROM templates WHERE project_id = $1 AND id = $2",
};

/// A new template: `$1` the project, `$2` to `$29` its settings in the order of the columns
/// here ([`Tx::save_template`](crate::driver::Tx::save_template) binds them); returns its id.
pub(crate) const INSERT_TEMPLATE: &str = "INSERT INTO templates (project_id,
        name, app, type, repository_id, inventory_id, environment_id, environment_ids, view_id,
        build_template_id, playbook, working_directory, arguments, description,
        allow_override_args_in_task, allow_override_branch_in_task, limit_hosts,
        suppress_success_alerts, suppress_error_alerts, git_branch, survey_vars, start_version,
        autorun, task_params, executor_image, allow_parallel_tasks, timeout_secs,
        requeue_when_lost, runner_tags)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19,
            $20, $21, $22, $23, $24, $25, $26, $27, $28, $29)
    RETURNING id";

/// Template `$30` of project `$1` gets the settings `$2` to `$29`, bound as for
/// [`INSERT_TEMPLATE`]; returns its id.
pub(crate) const UPDATE_TEMPLATE: &str = "UPDATE templates SET
        name = $2, app = $3, type = $4, repository_id = $5, inventory_id = $6,
        environment_id = $7, environment_ids = $8, view_id = $9, build_template_id = $10,
        playbook = $11, working_directory = $12, arguments = $13, description = $14,
        allow_override_args_in_task = $15, allow_override_branch_in_task = $16,
        limit_hosts = $17, suppress_success_alerts = $18, suppress_error_alerts = $19,
        git_branch = $20, survey_vars = $21, start_version = $22, autorun = $23,
        task_params = $24, executor_image = $25, allow_parallel_tasks = $26,
        timeout_secs = $27, requeue_when_lost = $28, runner_tags = $29
    WHERE project_id = $1 AND id = $30
    RETURNING id";

/// The JSON-valued settings, serialised for their text columns.
pub(crate) struct JsonColumns {
    pub(crate) environment_ids: String,
    pub(crate) survey_vars: String,
    pub(crate) task_params: String,
    pub(crate) runner_tags: String,
}

impl JsonColumns {
    pub(crate) fn of(s: &TemplateSettings) -> Result<JsonColumns> {
        let text = |r: serde_json::Result<String>| {
            r.map_err(|e| StoreError::Invalid(format!("cannot encode template settings: {e}")))
        };
        Ok(JsonColumns {
            environment_ids: text(serde_json::to_string(&s.environment_ids))?,
            survey_vars: text(serde_json::to_string(&s.survey_vars))?,
            task_params: text(serde_json::to_string(&s.task_params))?,
            runner_tags: text(serde_json::to_string(&s.runner_tags))?,
        })
    }
}

#[derive(sqlx::FromRow)]
struct TemplateRow {
    id: i64,
    project_id: i64,
    name: String,
    app: String,
    #[sqlx(rename = "type")]
    kind: String,
    repository_id: i64,
    inventory_id: Option<i64>,
    environment_id: Option<i64>,
    environment_ids: String,
    view_id: Option<i64>,
    build_template_id: Option<i64>,
    playbook: String,
    working_directory: Option<String>,
    arguments: Option<String>,
    description: String,
    allow_override_args_in_task: bool,
    allow_override_branch_in_task: bool,
    limit_hosts: String,
    suppress_success_alerts: bool,
    suppress_error_alerts: bool,
    git_branch: Option<String>,
    survey_vars: String,
    start_version: Option<String>,
    autorun: bool,
    task_params: String,
    executor_image: String,
    allow_parallel_tasks: bool,
    timeout_secs: i64,
    requeue_when_lost: bool,
    runner_tags: String,
}

fn stored_json<T: serde::de::DeserializeOwned>(id: i64, column: &str, text: &str) -> Result<T> {
    serde_json::from_str(text).map_err(|e| {
        StoreError::Corrupt(format!("template {id}: stored {column} is not valid: {e}"))
    })
}

impl TemplateRow {
    fn into_template(self, vaults: Vec<TemplateVault>) -> Result<Template> {
        let id = self.id;
        let app = TemplateApp::parse(&self.app).ok_or_else(|| {
            StoreError::Corrupt(format!(
                "template {id}: stored app {:?} is unknown",
                self.app
            ))
        })?;
        let kind = TemplateType::parse(&self.kind).ok_or_else(|| {
            StoreError::Corrupt(format!(
                "template {id}: stored type {:?} is unknown",
                self.kind
            ))
        })?;
        Ok(Template {
            id,
            project_id: self.project_id,
            settings: TemplateSettings {
                name: self.name,
                app,
                kind,
                repository_id: self.repository_id,
                inventory_id: self.inventory_id,
                environment_id: self.environment_id,
                environment_ids: stored_json(id, "environment_ids", &self.environment_ids)?,
                view_id: self.view_id,
                build_template_id: self.build_template_id,
                playbook: self.playbook,
                working_directory: self.working_directory,
                arguments: self.arguments,
                description: self.description,
                allow_override_args_in_task: self.allow_override_args_in_task,
                allow_override_branch_in_task: self.allow_override_branch_in_task,
                limit: self.limit_hosts,
                suppress_success_alerts: self.suppress_success_alerts,
                suppress_error_alerts: self.suppress_error_alerts,
                git_branch: self.git_branch,
                survey_vars: stored_json(id, "survey_vars", &self.survey_vars)?,
                start_version: self.start_version,
                autorun: self.autorun,
                task_params: stored_json(id, "task_params", &self.task_params)?,
                executor_image: self.executor_image,
                allow_parallel_tasks: self.allow_parallel_tasks,
                timeout_secs: self.timeout_secs,
                requeue_when_lost: self.requeue_when_lost,
                runner_tags: stored_json(id, "runner_tags", &self.runner_tags)?,
            },
            vaults,
        })
    }
}

#[derive(sqlx::FromRow)]
struct VaultRow {
    id: i64,
    template_id: i64,
    name: String,
    #[sqlx(rename = "type")]
    kind: String,
    vault_key_id: Option<i64>,
    script: String,
}

impl VaultRow {
    fn into_vault(self) -> Result<TemplateVault> {
        let kind = VaultType::parse(&self.kind).ok_or_else(|| {
            StoreError::Corrupt(format!(
                "vault {}: stored type {:?} is unknown",
                self.id, self.kind
            ))
        })?;
        Ok(TemplateVault {
            id: self.id,
            name: self.name,
            kind,
            vault_key_id: self.vault_key_id,
            script: self.script,
        })
    }
}

#[derive(sqlx::FromRow)]
struct LastTaskRow {
    task_count: i64,
    id: i64,
    template_id: i64,
    project_id: i64,
    status: String,
    user_id: Option<i64>,
    user_name: Option<String>,
    playbook: String,
    arguments: Option<String>,
    git_branch: Option<String>,
    inventory_id: Option<i64>,
    message: String,
    commit_hash: Option<String>,
    commit_message: String,
    version: Option<String>,
    build_task_id: Option<i64>,
    created: Timestamp,
    start: Option<Timestamp>,
    end: Option<Timestamp>,
}

/// How far a chain of build templates is followed when looking for a cycle.
const MAX_BUILD_CHAIN: usize = 64;

impl Store {
    /// The project's templates, optionally only those of one view, sorted by `name` (default),
    /// `playbook`, `inventory`, `environment`, `repository` or `ssh_key` (the repository's key).
    pub async fn templates(
        &self,
        project_id: ProjectId,
        view_id: Option<i64>,
        sort: Option<&str>,
        descending: bool,
    ) -> Result<Vec<Template>> {
        let order = order_by(
            &[
                ("name", "t.name"),
                ("playbook", "t.playbook"),
                ("inventory", "COALESCE(i.name, '')"),
                ("environment", "COALESCE(e.name, '')"),
                ("repository", "COALESCE(r.name, '')"),
                ("ssh_key", "COALESCE(k.name, '')"),
            ],
            sort,
            descending,
        )?
        .replace(", id ", ", t.id ");
        let view_filter = if view_id.is_some() {
            "AND t.view_id = $2"
        } else {
            "AND $2 IS NULL"
        };
        let sql = format!(
            "SELECT {} FROM templates t
               LEFT JOIN inventories i ON i.id = t.inventory_id
               LEFT JOIN environments e ON e.id = t.environment_id
               LEFT JOIN repositories r ON r.id = t.repository_id
               LEFT JOIN access_keys k ON k.id = r.ssh_key_id
             WHERE t.project_id = $1 {view_filter} {order}",
            prefixed("t", TEMPLATE_COLUMNS)
        );
        let rows = with_db!(self, read, |pool| sqlx::query_as::<_, TemplateRow>(
            audited(&sql)
        )
        .bind(project_id)
        .bind(view_id)
        .fetch_all(pool)
        .await)?;
        let mut vaults = self.project_vaults(project_id).await?;
        rows.into_iter()
            .map(|row| {
                let mine = vaults.remove(&row.id).unwrap_or_default();
                row.into_template(mine)
            })
            .collect()
    }

    /// One template of the project.
    pub async fn template(&self, project_id: ProjectId, id: TemplateId) -> Result<Template> {
        let row: TemplateRow = self.get_in_project(&TEMPLATES, project_id, id.0).await?;
        let vaults = self.template_vaults(id).await?;
        row.into_template(vaults)
    }

    /// The template of the project called `name`. Names need not be unique: when several
    /// templates share it, this refuses to guess (`Invalid`, naming how many).
    pub async fn template_by_name(&self, project_id: ProjectId, name: &str) -> Result<Template> {
        let ids: Vec<i64> = with_db!(self, read, |pool| sqlx::query_scalar(
            "SELECT id FROM templates WHERE project_id = $1 AND name = $2 ORDER BY id LIMIT 2",
        )
        .bind(project_id)
        .bind(name)
        .fetch_all(pool)
        .await)?;
        match ids.as_slice() {
            [] => Err(StoreError::NotFound),
            [id] => self.template(project_id, TemplateId(*id)).await,
            _ => Err(StoreError::Invalid(format!(
                "several templates are called {name:?}; name the template by its id"
            ))),
        }
    }

    /// Creates a template with its vaults.
    pub async fn create_template(
        &self,
        project_id: ProjectId,
        settings: &TemplateSettings,
        vaults: &[NewVault],
    ) -> Result<Template> {
        let id = with_db!(self, write, |pool| {
            let mut tx = pool.begin().await?;
            let id = tx
                .save_template(project_id, None, settings)
                .await?
                .ok_or(StoreError::NotFound)?;
            for vault in vaults {
                tx.insert_vault(project_id, id, vault).await?;
            }
            tx.commit().await?;
            id
        });
        self.template(project_id, id).await
    }

    /// Replaces a template's settings and vaults.
    pub async fn update_template(
        &self,
        project_id: ProjectId,
        id: TemplateId,
        settings: &TemplateSettings,
        vaults: &[NewVault],
    ) -> Result<()> {
        with_db!(self, write, |pool| {
            let mut tx = pool.begin().await?;
            tx.save_template(project_id, Some(id), settings)
                .await?
                .ok_or(StoreError::NotFound)?;
            sqlx::query("DELETE FROM template_vaults WHERE template_id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            for vault in vaults {
                tx.insert_vault(project_id, id, vault).await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    /// Deletes a template with its vaults and tasks (as Semaphore does). A template that is the
    /// build template of another cannot go (`InUse`, naming the other).
    pub async fn delete_template(&self, project_id: ProjectId, id: TemplateId) -> Result<()> {
        let users = self.templates_built_by(project_id, id).await?;
        if let Some(user) = users.first() {
            return Err(StoreError::InUse(format!(
                "the template is the build template of {:?}; change that template first",
                user.name
            )));
        }
        self.delete_in_project(&TEMPLATES, project_id, id.0)
            .await
            .map_err(|e| match e {
                StoreError::InUse(_) => StoreError::InUse(
                    "the template is still the build template of another template".into(),
                ),
                other => other,
            })
    }

    /// The templates whose build template is `id` (what `…/templates/{id}/refs` lists).
    pub async fn templates_built_by(
        &self,
        project_id: ProjectId,
        id: TemplateId,
    ) -> Result<Vec<ObjectRef>> {
        let rows: Vec<(i64, String)> = with_db!(self, read, |pool| sqlx::query_as(
            "SELECT id, name FROM templates
                     WHERE project_id = $1 AND build_template_id = $2 ORDER BY name, id",
        )
        .bind(project_id)
        .bind(id)
        .fetch_all(pool)
        .await)?;
        Ok(rows
            .into_iter()
            .map(|(id, name)| ObjectRef { id, name })
            .collect())
    }

    /// Checks that every object a template names exists in its project: `Invalid` with a
    /// message naming the field otherwise. `template_id` is the template being updated (none
    /// for a create): its build template may not lead back to it.
    pub async fn check_template_references(
        &self,
        project_id: ProjectId,
        template_id: Option<TemplateId>,
        settings: &TemplateSettings,
        vaults: &[NewVault],
    ) -> Result<()> {
        let mut wanted: Vec<(String, &str, &str, i64)> = vec![(
            "repository_id".into(),
            "repository",
            "repositories",
            settings.repository_id,
        )];
        if let Some(id) = settings.inventory_id {
            wanted.push(("inventory_id".into(), "inventory", "inventories", id));
        }
        if let Some(id) = settings.environment_id {
            wanted.push(("environment_id".into(), "environment", "environments", id));
        }
        for &id in &settings.environment_ids {
            wanted.push(("environment_ids".into(), "environment", "environments", id));
        }
        if let Some(id) = settings.view_id {
            wanted.push(("view_id".into(), "view", "views", id));
        }
        if let Some(id) = settings.build_template_id {
            wanted.push(("build_template_id".into(), "template", "templates", id));
        }
        for (i, vault) in vaults.iter().enumerate() {
            if let Some(id) = vault.vault_key_id {
                wanted.push((
                    format!("vaults[{i}].vault_key_id"),
                    "key",
                    "access_keys",
                    id,
                ));
            }
        }
        for (field, what, table, id) in wanted {
            // Environment secrets are access keys too, but not ones a template may name.
            let only_project_keys = if table == "access_keys" {
                "AND owner = ''"
            } else {
                ""
            };
            let sql = format!(
                "SELECT COUNT(*) FROM {table} WHERE project_id = $1 AND id = $2 {only_project_keys}"
            );
            let found: i64 = with_db!(self, read, |pool| sqlx::query_scalar(audited(&sql))
                .bind(project_id)
                .bind(id)
                .fetch_one(pool)
                .await)?;
            if found == 0 {
                return Err(StoreError::Invalid(format!(
                    "{field}: no such {what} in this project"
                )));
            }
        }
        if let (Some(me), Some(build)) = (template_id, settings.build_template_id) {
            self.refuse_build_cycle(project_id, me.0, build).await?;
        }
        Ok(())
    }

    /// Follows the chain of build templates from `build`; reaching `me` would make deploys
    /// trigger each other for ever.
    async fn refuse_build_cycle(&self, project_id: ProjectId, me: i64, build: i64) -> Result<()> {
        let mut next = Some(build);
        for _ in 0..MAX_BUILD_CHAIN {
            let Some(current) = next else {
                return Ok(());
            };
            if current == me {
                return Err(StoreError::Invalid(
                    "build_template_id: the build templates would form a cycle back to this template"
                        .into(),
                ));
            }
            next = with_db!(self, read, |pool| sqlx::query_scalar::<_, Option<i64>>(
                "SELECT build_template_id FROM templates WHERE project_id = $1 AND id = $2",
            )
            .bind(project_id)
            .bind(current)
            .fetch_optional(pool)
            .await)?
            .flatten();
        }
        Ok(())
    }

    /// For each template of the project that has tasks: how many, and the newest one. Template
    /// lists show both; templates without tasks are absent.
    pub async fn template_task_summaries(
        &self,
        project_id: ProjectId,
    ) -> Result<HashMap<i64, TemplateTaskSummary>> {
        let rows = with_db!(self, read, |pool| sqlx::query_as::<_, LastTaskRow>(
            r#"SELECT c.task_count, t.id, t.template_id, t.project_id, t.status, t.user_id,
                              u.name AS user_name, t.playbook, t.arguments, t.git_branch,
                              t.inventory_id, t.message, t.commit_hash, t.commit_message,
                              t.version, t.build_task_id, t.created, t.start, t."end"
                       FROM (SELECT template_id, COUNT(*) AS task_count, MAX(id) AS last_id
                             FROM tasks WHERE project_id = $1 GROUP BY template_id) c
                       JOIN tasks t ON t.id = c.last_id
                       LEFT JOIN users u ON u.id = t.user_id"#,
        )
        .bind(project_id)
        .fetch_all(pool)
        .await)?;
        rows.into_iter()
            .map(|row| {
                let status = TaskStatus::parse(&row.status).ok_or_else(|| {
                    StoreError::Corrupt(format!(
                        "task {}: stored status {:?} is unknown",
                        row.id, row.status
                    ))
                })?;
                let summary = TemplateTaskSummary {
                    tasks: row.task_count,
                    last_task: Some(TemplateLastTask {
                        id: row.id,
                        template_id: row.template_id,
                        project_id: row.project_id,
                        status,
                        user_id: row.user_id,
                        user_name: row.user_name,
                        playbook: row.playbook,
                        arguments: row.arguments,
                        git_branch: row.git_branch,
                        inventory_id: row.inventory_id,
                        message: row.message,
                        commit_hash: row.commit_hash,
                        commit_message: row.commit_message,
                        version: row.version,
                        build_task_id: row.build_task_id,
                        created: row.created,
                        start: row.start,
                        end: row.end,
                    }),
                };
                Ok((row.template_id, summary))
            })
            .collect()
    }

    async fn template_vaults(&self, template_id: TemplateId) -> Result<Vec<TemplateVault>> {
        let rows = with_db!(self, read, |pool| sqlx::query_as::<_, VaultRow>(
            "SELECT id, template_id, name, type, vault_key_id, script FROM template_vaults
                     WHERE template_id = $1 ORDER BY id",
        )
        .bind(template_id)
        .fetch_all(pool)
        .await)?;
        rows.into_iter().map(VaultRow::into_vault).collect()
    }

    /// Every vault of the project's templates, by template.
    async fn project_vaults(
        &self,
        project_id: ProjectId,
    ) -> Result<HashMap<i64, Vec<TemplateVault>>> {
        let rows = with_db!(self, read, |pool| sqlx::query_as::<_, VaultRow>(
            "SELECT id, template_id, name, type, vault_key_id, script FROM template_vaults
                     WHERE project_id = $1 ORDER BY id",
        )
        .bind(project_id)
        .fetch_all(pool)
        .await)?;
        let mut by_template: HashMap<i64, Vec<TemplateVault>> = HashMap::new();
        for row in rows {
            let template_id = row.template_id;
            by_template
                .entry(template_id)
                .or_default()
                .push(row.into_vault()?);
        }
        Ok(by_template)
    }
}

/// `a, b` → `t.a, t.b`.
fn prefixed(alias: &str, columns: &str) -> String {
    columns
        .split(',')
        .map(|c| format!("{alias}.{}", c.trim()))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The columns of a statement's list in parentheses, and of its `column = $n` pairs.
    fn words(sql: &str) -> Vec<String> {
        sql.split(|c: char| !(c.is_alphanumeric() || c == '_' || c == '$'))
            .filter(|w| !w.is_empty())
            .map(str::to_string)
            .collect()
    }

    #[test]
    fn inserts_and_updates_bind_the_settings_in_the_same_order() {
        let insert = words(INSERT_TEMPLATE);
        let first = insert.iter().position(|w| w == "project_id").unwrap();
        let inserted: Vec<&String> = insert[first + 1..]
            .iter()
            .take_while(|w| *w != "VALUES")
            .collect();
        assert_eq!(inserted.len(), 28);
        let update = words(UPDATE_TEMPLATE);
        for (i, column) in inserted.iter().enumerate() {
            let at = update.iter().position(|w| w == *column).unwrap();
            assert_eq!(update[at + 1], format!("${}", i + 2), "{column}");
        }
    }
}
