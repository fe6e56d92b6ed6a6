//! Restoring a project from a backup: a new project and every object in it, in one
//! transaction, so that either all of it exists afterwards or none of it does.
//!
//! Reading a backup needs no method of its own: the server assembles it from the resources'
//! list calls.

use ralf_core::api::host_configs::HostConfigFields;
use ralf_core::api::integrations::{
    ExtractValueFields, IntegrationExtractValue, IntegrationFields, IntegrationMatcher,
    MatcherFields,
};
use ralf_core::api::projects::Project;
use ralf_core::api::schedules::ScheduleFields;
use ralf_core::api::templates::{NewVault, TemplateSettings};
use ralf_core::api::views::ViewFields;
use ralf_core::{ProjectId, Timestamp};

use ralf_catalog::api::CatalogSettings;

use crate::catalog::{NextRuns, RECORD_SERVICE, SAVE_SETTINGS, ServiceRecord, to_json};
use crate::driver::Tx as _;
use crate::environments::{EnvironmentFields, SealedSecretChange};
use crate::integrations::IntegrationPart as _;
use crate::inventories::InventoryFields;
use crate::keys::NewKey;
use crate::projects::ProjectFields;
use crate::repositories::RepositoryFields;
use crate::{Result, Store, StoreError, with_db};

/// Everything a restore creates, checked. The objects refer to each other by position: every
/// id field of a row (a repository's `ssh_key_id`, a template's `inventory_id`, a vault's
/// `vault_key_id`, ...) holds the index of the object in this restore's list of that kind, and
/// the store puts the new object's id in its place.
pub struct ProjectRestore<'a> {
    pub project: ProjectFields<'a>,
    pub keys: Vec<NewKey<'a>>,
    pub repositories: Vec<RepositoryFields<'a>>,
    pub inventories: Vec<InventoryFields<'a>>,
    pub environments: Vec<RestoredEnvironment<'a>>,
    pub views: Vec<ViewFields>,
    pub templates: Vec<RestoredTemplate>,
    pub schedules: Vec<RestoredSchedule>,
    /// `ssh_key_id` is an index, as in all of [`ProjectRestore`].
    pub host_configs: Vec<HostConfigFields>,
    pub integrations: Vec<RestoredIntegration>,
    /// The project's own aliases.
    pub integration_aliases: Vec<RestoredAlias>,
    /// The service catalog's settings and recorded states, when the backup has a catalog.
    pub catalog: Option<RestoredCatalog>,
}

/// An integration; `fields.template_id` and `fields.auth_secret_id` are indices, as in all of
/// [`ProjectRestore`].
pub struct RestoredIntegration {
    pub fields: IntegrationFields,
    pub matchers: Vec<MatcherFields>,
    pub values: Vec<ExtractValueFields>,
    pub aliases: Vec<RestoredAlias>,
}

/// An alias of the backup, kept when no other project has it, else replaced by `fallback`
/// (made by the caller, random) so that a restore next to the original project works.
pub struct RestoredAlias {
    pub alias: String,
    pub fallback: String,
}

/// A catalog: `settings.repository_id` is an index, as in all of [`ProjectRestore`]; the
/// webhook secret is not restored; the services' `last_task_id`s are ignored (no task is).
#[derive(Debug, Clone)]
pub struct RestoredCatalog {
    pub settings: CatalogSettings,
    pub next_runs: NextRuns,
    pub services: Vec<ServiceRecord>,
}

/// An environment with its secrets (only `Create` changes make sense here).
pub struct RestoredEnvironment<'a> {
    pub fields: EnvironmentFields<'a>,
    pub secrets: Vec<SealedSecretChange>,
}

/// A template with its vaults; ids are indices, as in all of [`ProjectRestore`].
pub struct RestoredTemplate {
    pub settings: TemplateSettings,
    pub vaults: Vec<NewVault>,
}

/// A schedule; `fields.template_id` is an index, as in all of [`ProjectRestore`].
pub struct RestoredSchedule {
    pub fields: ScheduleFields,
    /// When it fires first.
    pub next_run: Option<Timestamp>,
}

/// The new id of the object at `index` of a restore's list of `kind`.
fn new_id(ids: &[i64], kind: &str, index: i64) -> Result<i64> {
    usize::try_from(index)
        .ok()
        .and_then(|i| ids.get(i))
        .copied()
        .ok_or_else(|| StoreError::Invalid(format!("restore: there is no {kind} number {index}")))
}

fn new_ids(ids: &[i64], kind: &str, index: Option<i64>) -> Result<Option<i64>> {
    index.map(|i| new_id(ids, kind, i)).transpose()
}

/// A template's settings with its indices replaced by the new ids, but for the build template,
/// which is set once every template exists.
fn resolved_settings(
    settings: &TemplateSettings,
    repositories: &[i64],
    inventories: &[i64],
    environments: &[i64],
    views: &[i64],
) -> Result<TemplateSettings> {
    let mut s = settings.clone();
    s.repository_id = new_id(repositories, "repository", s.repository_id)?;
    s.inventory_id = new_ids(inventories, "inventory", s.inventory_id)?;
    s.environment_id = new_ids(environments, "environment", s.environment_id)?;
    s.environment_ids = s
        .environment_ids
        .iter()
        .map(|&i| new_id(environments, "environment", i))
        .collect::<Result<_>>()?;
    s.view_id = new_ids(views, "view", s.view_id)?;
    s.build_template_id = None;
    Ok(s)
}

impl Store {
    /// Creates the project of a restore with `owner` as its owner, and every object in it, in
    /// one transaction: any failure leaves nothing behind.
    pub async fn restore_project(
        &self,
        restore: &ProjectRestore<'_>,
        owner: i64,
    ) -> Result<Project> {
        with_db!(self, write, |pool| {
            let mut tx = pool.begin().await?;
            let project = tx.insert_project(&restore.project, owner).await?;
            let project_id = ProjectId(project.id);

            let mut keys = Vec::with_capacity(restore.keys.len());
            for key in &restore.keys {
                let id: i64 = sqlx::query_scalar(
                    "INSERT INTO access_keys (project_id, name, type, secret, owner)
                         VALUES ($1, $2, $3, $4, '') RETURNING id",
                )
                .bind(project_id)
                .bind(key.name)
                .bind(key.kind.as_str())
                .bind(key.secret)
                .fetch_one(&mut *tx)
                .await?;
                keys.push(id);
            }

            let mut repositories = Vec::with_capacity(restore.repositories.len());
            for repository in &restore.repositories {
                let id: i64 = sqlx::query_scalar(
                    "INSERT INTO repositories
                            (project_id, name, git_url, git_branch, ssh_key_id)
                         VALUES ($1, $2, $3, $4, $5) RETURNING id",
                )
                .bind(project_id)
                .bind(repository.name)
                .bind(repository.git_url)
                .bind(repository.git_branch)
                .bind(new_ids(&keys, "key", repository.ssh_key_id)?)
                .fetch_one(&mut *tx)
                .await?;
                repositories.push(id);
            }

            for host_config in &restore.host_configs {
                sqlx::query(
                    "INSERT INTO host_configs (project_id, type, host, ssh_key_id)
                         VALUES ($1, $2, $3, $4)",
                )
                .bind(project_id)
                .bind(&host_config.kind)
                .bind(&host_config.host)
                .bind(new_ids(&keys, "key", host_config.ssh_key_id)?)
                .execute(&mut *tx)
                .await?;
            }

            let mut inventories = Vec::with_capacity(restore.inventories.len());
            for inventory in &restore.inventories {
                let id: i64 = sqlx::query_scalar(
                    "INSERT INTO inventories
                            (project_id, name, type, inventory, ssh_key_id, become_key_id,
                             repository_id)
                         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
                )
                .bind(project_id)
                .bind(inventory.name)
                .bind(inventory.kind.as_str())
                .bind(inventory.inventory)
                .bind(new_ids(&keys, "key", inventory.ssh_key_id)?)
                .bind(new_ids(&keys, "key", inventory.become_key_id)?)
                .bind(new_ids(
                    &repositories,
                    "repository",
                    inventory.repository_id,
                )?)
                .fetch_one(&mut *tx)
                .await?;
                inventories.push(id);
            }

            let mut environments = Vec::with_capacity(restore.environments.len());
            for environment in &restore.environments {
                let id = tx
                    .insert_environment(project_id, &environment.fields, &environment.secrets)
                    .await?;
                environments.push(id);
            }

            let mut views = Vec::with_capacity(restore.views.len());
            for view in &restore.views {
                let id: i64 = sqlx::query_scalar(
                    "INSERT INTO views
                            (project_id, title, position, hidden, type, sort_column, sort_reverse)
                         VALUES ($1, $2,
                                 COALESCE($3, (SELECT COALESCE(MAX(position), 0) + 1
                                               FROM views WHERE project_id = $1)),
                                 $4, $5, $6, $7)
                         RETURNING id",
                )
                .bind(project_id)
                .bind(&view.title)
                .bind(view.position)
                .bind(view.hidden)
                .bind(&view.kind)
                .bind(view.sort_column.as_deref())
                .bind(view.sort_reverse)
                .fetch_one(&mut *tx)
                .await?;
                views.push(id);
            }

            let mut templates = Vec::with_capacity(restore.templates.len());
            for template in &restore.templates {
                let settings = resolved_settings(
                    &template.settings,
                    &repositories,
                    &inventories,
                    &environments,
                    &views,
                )?;
                let id = tx
                    .save_template(project_id, None, &settings)
                    .await?
                    .ok_or(StoreError::NotFound)?;
                for vault in &template.vaults {
                    let vault = NewVault {
                        vault_key_id: new_ids(&keys, "key", vault.vault_key_id)?,
                        ..vault.clone()
                    };
                    tx.insert_vault(project_id, id, &vault).await?;
                }
                templates.push(id.0);
            }
            // Build templates may come after the templates that name them.
            for (template, &id) in restore.templates.iter().zip(&templates) {
                let Some(build) = template.settings.build_template_id else {
                    continue;
                };
                sqlx::query("UPDATE templates SET build_template_id = $1 WHERE id = $2")
                    .bind(new_id(&templates, "template", build)?)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
            }

            for schedule in &restore.schedules {
                let f = &schedule.fields;
                let params = f
                    .task_params
                    .as_ref()
                    .map(serde_json::to_string)
                    .transpose()
                    .map_err(|e| StoreError::Invalid(format!("task_params: {e}")))?;
                sqlx::query(
                    "INSERT INTO schedules (project_id, template_id, name, cron_format, type,
                            run_at, active, task_params, created, next_run)
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                )
                .bind(project_id)
                .bind(new_id(&templates, "template", f.template_id)?)
                .bind(&f.name)
                .bind(&f.cron_format)
                .bind(&f.kind)
                .bind(f.run_at)
                .bind(f.active)
                .bind(params)
                .bind(Timestamp::now())
                .bind(schedule.next_run)
                .execute(&mut *tx)
                .await?;
            }

            let mut aliases: Vec<(Option<i64>, &RestoredAlias)> = Vec::new();
            for integration in &restore.integrations {
                let f = &integration.fields;
                let params = f
                    .task_params
                    .as_ref()
                    .map(serde_json::to_string)
                    .transpose()
                    .map_err(|e| StoreError::Invalid(format!("task_params: {e}")))?;
                let id: i64 = sqlx::query_scalar(crate::integrations::INSERT_INTEGRATION)
                    .bind(project_id)
                    .bind(new_id(&templates, "template", f.template_id)?)
                    .bind(&f.name)
                    .bind(&f.auth_method)
                    .bind(new_ids(&keys, "key", f.auth_secret_id)?)
                    .bind(&f.auth_header)
                    .bind(f.searchable)
                    .bind(params)
                    .fetch_one(&mut *tx)
                    .await?;
                let matchers = integration.matchers.iter().map(|m| {
                    let insert = IntegrationMatcher::TABLE.insert();
                    (insert, IntegrationMatcher::columns(m))
                });
                let values = integration.values.iter().map(|v| {
                    let insert = IntegrationExtractValue::TABLE.insert();
                    (insert, IntegrationExtractValue::columns(v))
                });
                for (insert, [c1, c2, c3, c4, c5, c6]) in matchers.chain(values) {
                    sqlx::query(crate::audited(&insert))
                        .bind(id)
                        .bind(c1)
                        .bind(c2)
                        .bind(c3)
                        .bind(c4)
                        .bind(c5)
                        .bind(c6)
                        .execute(&mut *tx)
                        .await?;
                }
                aliases.extend(integration.aliases.iter().map(|a| (Some(id), a)));
            }
            aliases.extend(restore.integration_aliases.iter().map(|a| (None, a)));
            // An alias of the backup is kept when it is free, else the fallback takes its
            // place (a restore next to the original project).
            for (integration_id, alias) in aliases {
                let mut inserted = 0;
                for candidate in [&alias.alias, &alias.fallback] {
                    inserted = sqlx::query(
                        "INSERT INTO integration_aliases (alias, project_id, integration_id)
                             VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                    )
                    .bind(candidate)
                    .bind(project_id)
                    .bind(integration_id)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                    if inserted > 0 {
                        break;
                    }
                }
                if inserted == 0 {
                    return Err(StoreError::Conflict(
                        "restore: an integration alias of the backup is taken".into(),
                    ));
                }
            }
            if let Some(catalog) = &restore.catalog {
                let settings = &catalog.settings;
                sqlx::query(SAVE_SETTINGS)
                    .bind(project_id)
                    .bind(new_ids(
                        &repositories,
                        "repository",
                        settings.repository_id,
                    )?)
                    .bind(&settings.path)
                    .bind(settings.branch.as_deref())
                    .bind(settings.write_back)
                    .bind(i64::from(settings.parallelism))
                    .bind(settings.schedule.as_deref())
                    .bind(catalog.next_runs.deploy)
                    .bind(settings.check_schedule.as_deref())
                    .bind(catalog.next_runs.check)
                    .execute(&mut *tx)
                    .await?;
                let now = Timestamp::now();
                for service in &catalog.services {
                    let status = service
                        .last_status
                        .as_ref()
                        .map(|status| to_json(status, "last_status"))
                        .transpose()?;
                    sqlx::query(RECORD_SERVICE)
                        .bind(project_id)
                        .bind(&service.name)
                        .bind(service.state.as_str())
                        .bind(service.deployed_at)
                        .bind(service.commit.as_deref())
                        .bind(status)
                        .bind(None::<i64>)
                        .bind(now)
                        .execute(&mut *tx)
                        .await?;
                }
            }

            tx.commit().await?;
            Ok(project)
        })
    }
}
