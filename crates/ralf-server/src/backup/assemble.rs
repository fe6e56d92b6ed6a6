//! A project as a backup: its objects listed by the resources' own reads, each reference
//! turned from an id into the (made unique) name of what it refers to, secrets left out.

use ralf_core::ProjectId;
use std::collections::HashMap;

use ralf_catalog::api::CatalogSettings;
use ralf_core::api::backup::{
    BackupCatalog, BackupCatalogService, BackupEnvironment, BackupHostConfig, BackupIntegration,
    BackupIntegrationExtractValue, BackupIntegrationMatcher, BackupInventory, BackupKey,
    BackupMeta, BackupRepository, BackupSchedule, BackupSecret, BackupTemplate, BackupVault,
    BackupView, ProjectBackup, unique_names,
};
use ralf_core::api::environments::Environment;
use ralf_core::api::host_configs::HostConfig;
use ralf_core::api::integrations::{Integration, IntegrationExtractValue, IntegrationMatcher};
use ralf_core::api::inventories::Inventory;
use ralf_core::api::keys::AccessKey;
use ralf_core::api::projects::Project;
use ralf_core::api::repositories::Repository;
use ralf_core::api::schedules::Schedule;
use ralf_core::api::tasks::TaskRequest;
use ralf_core::api::templates::Template;
use ralf_core::api::views::View;
use ralf_store::Store;
use ralf_store::catalog::ServiceRecord;

use crate::error::{ApiError, ApiResult};

/// The backup names of one kind of object, by id.
struct Names {
    kind: &'static str,
    by_id: HashMap<i64, String>,
}

impl Names {
    /// Names made unique (see `unique_names`); returns them in the order given, too.
    fn new<'a>(
        kind: &'static str,
        objects: impl IntoIterator<Item = (i64, &'a str)>,
    ) -> (Names, Vec<String>) {
        let (ids, names): (Vec<i64>, Vec<&str>) = objects.into_iter().unzip();
        let unique = unique_names(names);
        let by_id = ids.into_iter().zip(unique.iter().cloned()).collect();
        (Names { kind, by_id }, unique)
    }

    fn of(&self, id: i64) -> ApiResult<String> {
        self.by_id.get(&id).cloned().ok_or_else(|| {
            // The lists are read one after the other; an object removed in between leaves a
            // reference to nothing.
            ApiError::Conflict(format!(
                "the project changed while its backup was made ({} {id} is gone); try again",
                self.kind
            ))
        })
    }

    fn of_opt(&self, id: Option<i64>) -> ApiResult<Option<String>> {
        id.map(|id| self.of(id)).transpose()
    }
}

/// Everything in a project, as the resources' lists answer it.
pub struct Contents {
    keys: Vec<AccessKey>,
    repositories: Vec<Repository>,
    inventories: Vec<Inventory>,
    environments: Vec<Environment>,
    views: Vec<View>,
    templates: Vec<Template>,
    schedules: Vec<Schedule>,
    host_configs: Vec<HostConfig>,
    integrations: Vec<IntegrationContents>,
    integration_aliases: Vec<String>,
    catalog: Option<(CatalogSettings, Vec<ServiceRecord>)>,
}

/// An integration with what belongs to it.
struct IntegrationContents {
    integration: Integration,
    matchers: Vec<IntegrationMatcher>,
    values: Vec<IntegrationExtractValue>,
    aliases: Vec<String>,
}

impl Contents {
    /// Everything in project `id`, each kind read by its list (one after the other, so an
    /// object may go in between: [`assemble`] says so).
    pub async fn read(store: &Store, id: i64) -> ApiResult<Contents> {
        Ok(Contents {
            keys: store.keys(ProjectId(id), None, false).await?,
            repositories: store.repositories(ProjectId(id), None, false).await?,
            inventories: store.inventories(ProjectId(id), None, false).await?,
            environments: store.environments(ProjectId(id), None, false).await?,
            views: store.views(ProjectId(id)).await?,
            templates: store.templates(ProjectId(id), None, None, false).await?,
            schedules: store.schedules(ProjectId(id), None).await?,
            host_configs: store.host_configs(ProjectId(id)).await?,
            integrations: integration_contents(store, ProjectId(id)).await?,
            integration_aliases: store
                .integration_aliases(ProjectId(id), None)
                .await?
                .into_iter()
                .map(|a| a.alias)
                .collect(),
            catalog: match store.catalog_settings(ProjectId(id)).await? {
                Some(settings) => Some((settings, store.catalog_services(ProjectId(id)).await?)),
                None => None,
            },
        })
    }
}

pub fn assemble(project: Project, contents: &Contents) -> ApiResult<ProjectBackup> {
    let Contents {
        keys,
        repositories,
        inventories,
        environments,
        views,
        templates,
        schedules,
        host_configs,
        integrations,
        integration_aliases,
        catalog,
    } = contents;
    let (key_names, key_list) = Names::new("key", keys.iter().map(|k| (k.id, k.name.as_str())));
    let (repository_names, repository_list) = Names::new(
        "repository",
        repositories.iter().map(|r| (r.id, r.name.as_str())),
    );
    let (inventory_names, inventory_list) = Names::new(
        "inventory",
        inventories.iter().map(|i| (i.id, i.name.as_str())),
    );
    let (environment_names, environment_list) = Names::new(
        "environment",
        environments.iter().map(|e| (e.id, e.name.as_str())),
    );
    let (view_names, view_list) =
        Names::new("view", views.iter().map(|v| (v.id, v.title.as_str())));
    let (template_names, template_list) = Names::new(
        "template",
        templates.iter().map(|t| (t.id, t.settings.name.as_str())),
    );

    let keys = keys
        .iter()
        .zip(key_list)
        .map(|(k, name)| BackupKey {
            name,
            kind: k.kind.to_string(),
        })
        .collect();
    let repositories = repositories
        .iter()
        .zip(repository_list)
        .map(|(r, name)| {
            Ok(BackupRepository {
                name,
                git_url: r.git_url.clone(),
                git_branch: r.git_branch.clone(),
                ssh_key: key_names.of_opt(r.ssh_key_id)?,
            })
        })
        .collect::<ApiResult<_>>()?;
    let inventories = inventories
        .iter()
        .zip(inventory_list)
        .map(|(i, name)| {
            Ok(BackupInventory {
                name,
                inventory: i.inventory.clone(),
                ssh_key: key_names.of_opt(i.ssh_key_id)?,
                become_key: key_names.of_opt(i.become_key_id)?,
                repository: repository_names.of_opt(i.repository_id)?,
                kind: i.kind.to_string(),
            })
        })
        .collect::<ApiResult<_>>()?;
    let environments = environments
        .iter()
        .zip(environment_list)
        .map(|(e, name)| BackupEnvironment {
            name,
            password: None,
            json: e.json.clone(),
            env: e.env.clone(),
            secrets: e
                .secrets
                .iter()
                .map(|s| BackupSecret {
                    name: s.name.clone(),
                    kind: s.kind.to_string(),
                })
                .collect(),
        })
        .collect();
    let views = views
        .iter()
        .zip(view_list)
        .map(|(v, title)| BackupView {
            title: Some(title),
            name: None,
            position: v.position,
            hidden: v.hidden,
            kind: v.kind.clone(),
            sort_column: v.sort_column.clone(),
            sort_reverse: v.sort_reverse,
        })
        .collect();
    let templates = templates
        .iter()
        .zip(template_list)
        .map(|(t, name)| {
            let s = &t.settings;
            Ok(BackupTemplate {
                inventory: inventory_names.of_opt(s.inventory_id)?,
                repository: repository_names.of(s.repository_id)?,
                environment: environment_names.of_opt(s.environment_id)?,
                environments: s
                    .environment_ids
                    .iter()
                    .map(|&id| environment_names.of(id))
                    .collect::<ApiResult<_>>()?,
                view: view_names.of_opt(s.view_id)?,
                build_template: template_names.of_opt(s.build_template_id)?,
                name,
                playbook: s.playbook.clone(),
                app: s.app.as_str().to_string(),
                kind: Some(s.kind),
                working_directory: s.working_directory.clone(),
                arguments: s.arguments.clone(),
                description: s.description.clone(),
                allow_override_args_in_task: s.allow_override_args_in_task,
                allow_override_branch_in_task: s.allow_override_branch_in_task,
                vaults: t
                    .vaults
                    .iter()
                    .map(|v| {
                        Ok(BackupVault {
                            name: v.name.clone(),
                            kind: v.kind,
                            vault_key: key_names.of_opt(v.vault_key_id)?,
                            script: v.script.clone(),
                        })
                    })
                    .collect::<ApiResult<_>>()?,
                start_version: s.start_version.clone(),
                autorun: s.autorun,
                survey_vars: s.survey_vars.clone(),
                suppress_success_alerts: s.suppress_success_alerts,
                suppress_error_alerts: s.suppress_error_alerts,
                task_params: s.task_params.clone(),
                limit: s.limit.clone(),
                git_branch: s.git_branch.clone(),
                executor_image: s.executor_image.clone(),
                allow_parallel_tasks: s.allow_parallel_tasks,
                timeout_secs: s.timeout_secs,
                runner_tags: s.runner_tags.clone(),
                requeue_when_lost: s.requeue_when_lost,
                runner_tag: None,
                cron: None,
                vault_key: None,
            })
        })
        .collect::<ApiResult<_>>()?;

    Ok(ProjectBackup {
        meta: BackupMeta {
            name: project.name,
            alert: project.alert,
            alert_chat: project.alert_chat,
            max_parallel_tasks: project.max_parallel_tasks,
            kind: project.kind,
        },
        templates,
        repositories,
        keys,
        views,
        inventories,
        environments,
        schedules: schedules
            .iter()
            .map(|s| {
                Ok(BackupSchedule {
                    name: s.name.clone(),
                    template: template_names.of(s.template_id)?,
                    cron_format: s.cron_format.clone(),
                    active: Some(s.active),
                    kind: s.kind.to_string(),
                    run_at: s.run_at,
                    task_params: s.task_params.as_ref().map(without_ids),
                })
            })
            .collect::<ApiResult<_>>()?,
        host_configs: host_configs
            .iter()
            .map(|h| {
                Ok(BackupHostConfig {
                    kind: h.kind.clone(),
                    host: h.host.clone(),
                    ssh_key: key_names.of_opt(h.ssh_key_id)?,
                })
            })
            .collect::<ApiResult<_>>()?,
        integrations: integrations
            .iter()
            .map(|c| {
                let i = &c.integration;
                Ok(BackupIntegration {
                    name: i.name.clone(),
                    template: template_names.of(i.template_id)?,
                    auth_method: i.auth_method.clone(),
                    auth_secret: key_names.of_opt(i.auth_secret_id)?,
                    auth_header: i.auth_header.clone(),
                    searchable: i.searchable,
                    task_params: i.task_params.as_ref().map(without_ids),
                    aliases: c.aliases.clone(),
                    matchers: c
                        .matchers
                        .iter()
                        .map(|m| BackupIntegrationMatcher {
                            name: m.name.clone(),
                            match_type: m.match_type.clone(),
                            method: m.method.clone(),
                            body_data_type: m.body_data_type.clone(),
                            key: m.key.clone(),
                            value: m.value.clone(),
                        })
                        .collect(),
                    extract_values: c
                        .values
                        .iter()
                        .map(|v| BackupIntegrationExtractValue {
                            name: v.name.clone(),
                            value_source: v.value_source.clone(),
                            body_data_type: v.body_data_type.clone(),
                            key: v.key.clone(),
                            variable: v.variable.clone(),
                            variable_type: v.variable_type.clone(),
                        })
                        .collect(),
                })
            })
            .collect::<ApiResult<_>>()?,
        integration_aliases: integration_aliases.clone(),
        catalog: catalog
            .as_ref()
            .map(|(settings, services)| backup_catalog(settings, services, &repository_names))
            .transpose()?,
    })
}

/// The catalog's settings (the repository by name, no webhook secret) and recorded states.
fn backup_catalog(
    settings: &CatalogSettings,
    services: &[ServiceRecord],
    repository_names: &Names,
) -> ApiResult<BackupCatalog> {
    Ok(BackupCatalog {
        repository: repository_names.of_opt(settings.repository_id)?,
        path: Some(settings.path.clone()),
        branch: settings.branch.clone(),
        write_back: settings.write_back,
        parallelism: Some(settings.parallelism),
        schedule: settings.schedule.clone(),
        check_schedule: settings.check_schedule.clone(),
        webhook_secret_set: settings.webhook_secret_set,
        services: services
            .iter()
            .map(|s| BackupCatalogService {
                name: s.name.clone(),
                state: s.state.as_str().to_string(),
                deployed_at: s.deployed_at,
                commit: s.commit.clone(),
                last_status: s.last_status.as_ref().and_then(|status| {
                    let mut status = status.clone();
                    status.task_id = None;
                    serde_json::to_value(status).ok()
                }),
            })
            .collect(),
    })
}

/// The project's integrations, each with its matchers, extract values and aliases.
async fn integration_contents(
    store: &Store,
    project_id: ProjectId,
) -> ApiResult<Vec<IntegrationContents>> {
    let mut all = Vec::new();
    for integration in store.integrations(project_id).await? {
        let id = integration.id;
        all.push(IntegrationContents {
            matchers: store.integration_parts(project_id, id).await?,
            values: store.integration_parts(project_id, id).await?,
            aliases: store
                .integration_aliases(project_id, Some(id))
                .await?
                .into_iter()
                .map(|a| a.alias)
                .collect(),
            integration,
        });
    }
    Ok(all)
}

/// A schedule's or integration's task overrides without the ids of objects, which a restore cannot keep.
pub(super) fn without_ids(params: &TaskRequest) -> TaskRequest {
    TaskRequest {
        template_id: None,
        template_name: None,
        inventory_id: None,
        build_task_id: None,
        secret: None,
        ..params.clone()
    }
}
