//! A backup checked into the rows of a new project: every object through the checks of its
//! create endpoint, every reference resolved by name to the index of what it names (the store
//! turns indices into the new ids), secrets sealed. A 400 says where in the backup it is.

use ralf_core::Timestamp;
use std::collections::HashSet;

use ralf_catalog::api::CatalogSettings;
use ralf_catalog::parse::is_valid_name;
use ralf_catalog::{ServiceState, StepStatus};
use ralf_core::api::backup::{
    BackupCatalog, BackupSchedule, BackupTemplate, NameIndex, ProjectBackup, build_cycle, describe,
};
use ralf_core::api::environments::{
    EnvironmentSecretRequest, SecretChange, check_env, check_extra_vars, secret_changes,
};
use ralf_core::api::host_configs::{HostConfigFields, HostConfigRequest};
use ralf_core::api::integrations::{
    ExtractValueFields, IntegrationExtractValueRequest, IntegrationFields,
    IntegrationMatcherRequest, IntegrationRequest, MatcherFields,
};
use ralf_core::api::inventories::{InventoryKind, check_inventory};
use ralf_core::api::keys::{KeyKind, check_key_type};
use ralf_core::api::projects::ProjectRequest;
use ralf_core::api::repositories::git_url;
use ralf_core::api::schedules::{ScheduleFields, ScheduleRequest};
use ralf_core::api::templates::{TemplateRequest, TemplateVaultRequest, VaultType};
use ralf_core::api::views::{ViewFields, ViewRequest};
use ralf_core::secret::SecretCipher;
use ralf_core::validate;
use ralf_store::backup::{
    ProjectRestore, RestoredAlias, RestoredCatalog, RestoredEnvironment, RestoredIntegration,
    RestoredSchedule, RestoredTemplate,
};
use ralf_store::catalog::ServiceRecord;
use ralf_store::environments::{EnvironmentFields, PasswordChange};
use ralf_store::inventories::InventoryFields;
use ralf_store::keys::NewKey;
use ralf_store::repositories::RepositoryFields;

use super::assemble::without_ids;
use crate::error::{ApiError, ApiResult};
use crate::routes::catalog::checked_settings;
use crate::routes::environments::sealed_changes;
use crate::routes::projects::checked_fields;
use crate::state::AppState;

/// Puts where a 400 comes from in front of its message: `templates[2] ("deploy"): ...`.
trait At<T> {
    fn at(self, place: &str) -> ApiResult<T>;
}

impl<T, E: Into<ApiError>> At<T> for Result<T, E> {
    fn at(self, place: &str) -> ApiResult<T> {
        self.map_err(|e| match e.into() {
            ApiError::BadRequest(m) => ApiError::BadRequest(format!("{place}: {m}")),
            other => other,
        })
    }
}

/// The name indices of a backup, one per kind.
struct Indices<'a> {
    keys: NameIndex<'a>,
    repositories: NameIndex<'a>,
    inventories: NameIndex<'a>,
    environments: NameIndex<'a>,
    views: NameIndex<'a>,
    templates: NameIndex<'a>,
}

impl<'a> Indices<'a> {
    fn new(b: &'a ProjectBackup) -> ApiResult<Self> {
        Ok(Indices {
            keys: NameIndex::new("keys", b.keys.iter().map(|o| o.name.as_str()))?,
            repositories: NameIndex::new(
                "repositories",
                b.repositories.iter().map(|o| o.name.as_str()),
            )?,
            inventories: NameIndex::new(
                "inventories",
                b.inventories.iter().map(|o| o.name.as_str()),
            )?,
            environments: NameIndex::new(
                "environments",
                b.environments.iter().map(|o| o.name.as_str()),
            )?,
            views: NameIndex::new("views", b.views.iter().map(|o| o.display_name()))?,
            templates: NameIndex::new("templates", b.templates.iter().map(|o| o.name.as_str()))?,
        })
    }
}

/// A key of a restore: a name and a type, no secret.
struct CheckedKey {
    name: String,
    kind: KeyKind,
}

struct CheckedRepository {
    name: String,
    git_url: String,
    git_branch: String,
    ssh_key: Option<i64>,
}

struct CheckedInventory {
    name: String,
    kind: InventoryKind,
    inventory: String,
    ssh_key: Option<i64>,
    become_key: Option<i64>,
    repository: Option<i64>,
}

struct CheckedEnvironment {
    name: String,
    json: String,
    env: String,
    /// The encrypted vault password, when the backup has one.
    password: Option<String>,
    /// Each one a creation, its value empty.
    secrets: Vec<SecretChange>,
}

/// A backup with every object checked and every reference turned into an index.
pub struct Checked {
    meta: ProjectRequest,
    name: String,
    keys: Vec<CheckedKey>,
    repositories: Vec<CheckedRepository>,
    inventories: Vec<CheckedInventory>,
    environments: Vec<CheckedEnvironment>,
    views: Vec<ViewFields>,
    templates: Vec<RestoredTemplate>,
    schedules: Vec<ScheduleFields>,
    host_configs: Vec<HostConfigFields>,
    integrations: Vec<CheckedIntegration>,
    integration_aliases: Vec<String>,
    catalog: Option<RestoredCatalog>,
}

/// An integration of a restore; its template and key are indices.
struct CheckedIntegration {
    fields: IntegrationFields,
    matchers: Vec<MatcherFields>,
    values: Vec<ExtractValueFields>,
    aliases: Vec<String>,
}

/// An alias of a backup: the last part of a URL, so letters, digits, `-` and `_` only.
fn check_alias(alias: &str) -> ApiResult<String> {
    let alias = alias.trim();
    if alias.is_empty()
        || alias.len() > 64
        || !alias
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(ApiError::BadRequest(format!(
            "alias {alias:?} must be 1 to 64 letters, digits, '-' or '_'"
        )));
    }
    Ok(alias.to_string())
}

/// An index as a row's id field holds it in a restore.
fn as_id(index: usize) -> i64 {
    i64::try_from(index).unwrap_or(i64::MAX)
}

impl Checked {
    pub fn new(state: &AppState, b: &ProjectBackup) -> ApiResult<Checked> {
        let meta = ProjectRequest {
            id: None,
            name: b.meta.name.clone(),
            alert: b.meta.alert,
            alert_chat: b.meta.alert_chat.clone(),
            max_parallel_tasks: b.meta.max_parallel_tasks,
            kind: b.meta.kind.clone(),
            demo: false,
        };
        let name = validate::name("name", &meta.name).at("meta")?;
        checked_fields(&name, &meta).at("meta")?;
        let ix = Indices::new(b)?;

        let mut keys = Vec::new();
        for (i, k) in b.keys.iter().enumerate() {
            let place = describe("keys", i, &k.name);
            let name = validate::name("name", &k.name).at(&place)?;
            let kind = check_key_type(&k.kind).at(&place)?;
            keys.push(CheckedKey { name, kind });
        }

        let mut repositories = Vec::new();
        for (i, r) in b.repositories.iter().enumerate() {
            let place = describe("repositories", i, &r.name);
            let check = || -> ApiResult<CheckedRepository> {
                let name = validate::name("name", &r.name)?;
                let git_url = git_url(&r.git_url)?;
                state
                    .settings
                    .check_repository_url(&git_url)
                    .map_err(ApiError::bad_request)?;
                validate::short_text("git_branch", &r.git_branch)?;
                let ssh_key = ix.keys.resolve("ssh_key", r.ssh_key.as_deref())?;
                Ok(CheckedRepository {
                    name,
                    git_url,
                    git_branch: r.git_branch.trim().to_string(),
                    ssh_key: ssh_key.map(as_id),
                })
            };
            repositories.push(check().at(&place)?);
        }

        let mut inventories = Vec::new();
        for (i, inv) in b.inventories.iter().enumerate() {
            let place = describe("inventories", i, &inv.name);
            let check = || -> ApiResult<CheckedInventory> {
                let name = validate::name("name", &inv.name)?;
                let kind = check_inventory(&inv.kind, &inv.inventory)?;
                Ok(CheckedInventory {
                    name,
                    kind,
                    inventory: inv.inventory.clone(),
                    ssh_key: ix
                        .keys
                        .resolve("ssh_key", inv.ssh_key.as_deref())?
                        .map(as_id),
                    become_key: ix
                        .keys
                        .resolve("become_key", inv.become_key.as_deref())?
                        .map(as_id),
                    repository: ix
                        .repositories
                        .resolve("repository", inv.repository.as_deref())?
                        .map(as_id),
                })
            };
            inventories.push(check().at(&place)?);
        }

        let mut environments = Vec::new();
        for (i, e) in b.environments.iter().enumerate() {
            let place = describe("environments", i, &e.name);
            let check = || -> ApiResult<CheckedEnvironment> {
                let name = validate::name("name", &e.name)?;
                let json = check_extra_vars(Some(&e.json))?;
                let env = check_env(Some(&e.env))?;
                let requests: Vec<EnvironmentSecretRequest> = e
                    .secrets
                    .iter()
                    .map(|s| EnvironmentSecretRequest {
                        name: s.name.clone(),
                        kind: s.kind.clone(),
                        ..Default::default()
                    })
                    .collect();
                let secrets = secret_changes(&requests, true)?;
                let password = e
                    .password
                    .as_deref()
                    .filter(|p| !p.is_empty())
                    .map(|p| state.cipher.encrypt(p));
                Ok(CheckedEnvironment {
                    name,
                    json,
                    env,
                    password,
                    secrets,
                })
            };
            environments.push(check().at(&place)?);
        }

        let mut views = Vec::new();
        for (i, v) in b.views.iter().enumerate() {
            let place = describe("views", i, v.display_name());
            let request = ViewRequest {
                title: Some(v.display_name().to_string()),
                position: Some(v.position),
                hidden: Some(v.hidden),
                kind: Some(v.kind.clone()),
                sort_column: v.sort_column.clone(),
                sort_reverse: Some(v.sort_reverse),
                ..Default::default()
            };
            views.push(request.fields().at(&place)?);
        }

        let mut templates = Vec::new();
        for (i, t) in b.templates.iter().enumerate() {
            let place = describe("templates", i, &t.name);
            templates.push(check_template(&ix, i, t).at(&place)?);
        }
        let builds: Vec<Option<usize>> = templates
            .iter()
            .map(|t| {
                t.settings
                    .build_template_id
                    .and_then(|i| usize::try_from(i).ok())
            })
            .collect();
        if let Some(i) = build_cycle(&builds) {
            return Err(ApiError::bad_request(format!(
                "{}: build_template: the build templates form a cycle back to this template",
                describe("templates", i, &b.templates[i].name)
            )));
        }

        // A template's older single `cron` is a schedule, unless the backup lists schedules of
        // that template (a backup may have both).
        let mut backup_schedules = b.schedules.clone();
        for t in &b.templates {
            let cron = t.cron.as_deref().map(str::trim).unwrap_or_default();
            if !cron.is_empty() && !b.schedules.iter().any(|s| s.template == t.name) {
                backup_schedules.push(BackupSchedule {
                    template: t.name.clone(),
                    cron_format: cron.to_string(),
                    ..Default::default()
                });
            }
        }
        let mut schedules = Vec::new();
        for (i, sch) in backup_schedules.iter().enumerate() {
            let place = describe("schedules", i, &sch.name);
            let check = || -> ApiResult<ScheduleFields> {
                let index = ix.templates.require("template", &sch.template)?;
                let request = ScheduleRequest {
                    id: None,
                    project_id: None,
                    template_id: Some(as_id(index) + 1),
                    cron_format: Some(sch.cron_format.clone()),
                    name: Some(sch.name.clone()),
                    active: sch.active,
                    kind: Some(sch.kind.clone()),
                    run_at: sch.run_at,
                    task_params: sch.task_params.as_ref().map(without_ids),
                };
                let mut fields = request.check()?;
                fields
                    .task_params
                    .clone()
                    .unwrap_or_default()
                    .fields_for(&templates[index].settings)
                    .map_err(|e| ApiError::BadRequest(format!("task_params: {}", e.0)))?;
                fields.template_id = as_id(index);
                Ok(fields)
            };
            schedules.push(check().at(&place)?);
        }

        let mut host_configs = Vec::new();
        for (i, h) in b.host_configs.iter().enumerate() {
            let place = describe("host_configs", i, &h.host);
            let check = || -> ApiResult<HostConfigFields> {
                let key = ix.keys.resolve("ssh_key", h.ssh_key.as_deref())?;
                let mut fields = HostConfigRequest {
                    kind: h.kind.clone(),
                    host: h.host.clone(),
                    ..Default::default()
                }
                .fields()?;
                fields.ssh_key_id = key.map(as_id);
                Ok(fields)
            };
            host_configs.push(check().at(&place)?);
        }

        let mut integrations = Vec::new();
        for (i, bi) in b.integrations.iter().enumerate() {
            let place = describe("integrations", i, &bi.name);
            let check = || -> ApiResult<CheckedIntegration> {
                let template = ix.templates.require("template", &bi.template)?;
                let key = ix.keys.resolve("auth_secret", bi.auth_secret.as_deref())?;
                let request = IntegrationRequest {
                    name: Some(bi.name.clone()),
                    template_id: Some(as_id(template) + 1),
                    auth_method: Some(bi.auth_method.clone()),
                    auth_secret_id: key.map(|k| as_id(k) + 1),
                    auth_header: Some(bi.auth_header.clone()),
                    searchable: Some(bi.searchable),
                    task_params: bi.task_params.as_ref().map(without_ids),
                    ..Default::default()
                };
                let mut fields = request.check()?;
                fields.template_id = as_id(template);
                fields.auth_secret_id = key.map(as_id);
                let mut matchers = Vec::new();
                for (j, m) in bi.matchers.iter().enumerate() {
                    let request = IntegrationMatcherRequest {
                        name: Some(m.name.clone()),
                        match_type: Some(m.match_type.clone()).filter(|t| !t.is_empty()),
                        method: Some(m.method.clone()).filter(|t| !t.is_empty()),
                        body_data_type: Some(m.body_data_type.clone()),
                        key: Some(m.key.clone()),
                        value: Some(m.value.clone()),
                        ..Default::default()
                    };
                    matchers.push(request.check().at(&format!("matchers[{j}]"))?);
                }
                let mut values = Vec::new();
                for (j, v) in bi.extract_values.iter().enumerate() {
                    let request = IntegrationExtractValueRequest {
                        name: Some(v.name.clone()),
                        value_source: Some(v.value_source.clone()).filter(|t| !t.is_empty()),
                        body_data_type: Some(v.body_data_type.clone()),
                        key: Some(v.key.clone()),
                        variable: Some(v.variable.clone()),
                        variable_type: Some(v.variable_type.clone()),
                        ..Default::default()
                    };
                    values.push(request.check().at(&format!("extract_values[{j}]"))?);
                }
                let aliases = bi
                    .aliases
                    .iter()
                    .map(|a| check_alias(a))
                    .collect::<ApiResult<_>>()?;
                Ok(CheckedIntegration {
                    fields,
                    matchers,
                    values,
                    aliases,
                })
            };
            integrations.push(check().at(&place)?);
        }
        let integration_aliases = b
            .integration_aliases
            .iter()
            .map(|a| check_alias(a))
            .collect::<ApiResult<_>>()
            .at("integration_aliases")?;
        let catalog = b
            .catalog
            .as_ref()
            .map(|c| check_catalog(&ix, c).at("catalog"))
            .transpose()?;

        Ok(Checked {
            meta,
            name,
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
        })
    }

    /// The rows for the store, borrowing from the checked values; secrets are sealed here.
    pub fn restore(&self, cipher: &SecretCipher) -> ApiResult<ProjectRestore<'_>> {
        Ok(ProjectRestore {
            project: checked_fields(&self.name, &self.meta)?,
            keys: self
                .keys
                .iter()
                .map(|k| NewKey {
                    name: &k.name,
                    kind: k.kind,
                    secret: None,
                })
                .collect(),
            repositories: self
                .repositories
                .iter()
                .map(|r| RepositoryFields {
                    name: &r.name,
                    git_url: &r.git_url,
                    git_branch: &r.git_branch,
                    ssh_key_id: r.ssh_key,
                })
                .collect(),
            inventories: self
                .inventories
                .iter()
                .map(|i| InventoryFields {
                    name: &i.name,
                    kind: i.kind,
                    inventory: &i.inventory,
                    ssh_key_id: i.ssh_key,
                    become_key_id: i.become_key,
                    repository_id: i.repository,
                })
                .collect(),
            environments: self
                .environments
                .iter()
                .map(|e| RestoredEnvironment {
                    fields: EnvironmentFields {
                        name: &e.name,
                        json: &e.json,
                        env: &e.env,
                        password: match &e.password {
                            Some(p) => PasswordChange::Set(p),
                            None => PasswordChange::Keep,
                        },
                    },
                    secrets: sealed_changes(cipher, e.secrets.clone()),
                })
                .collect(),
            views: self.views.clone(),
            templates: self
                .templates
                .iter()
                .map(|t| RestoredTemplate {
                    settings: t.settings.clone(),
                    vaults: t.vaults.clone(),
                })
                .collect(),
            schedules: self
                .schedules
                .iter()
                .map(|f| RestoredSchedule {
                    fields: f.clone(),
                    next_run: f.next_run(Timestamp::now()),
                })
                .collect(),
            host_configs: self.host_configs.clone(),
            integrations: self
                .integrations
                .iter()
                .map(|i| RestoredIntegration {
                    fields: i.fields.clone(),
                    matchers: i.matchers.clone(),
                    values: i.values.clone(),
                    aliases: i.aliases.iter().map(|a| restored_alias(a)).collect(),
                })
                .collect(),
            integration_aliases: self
                .integration_aliases
                .iter()
                .map(|a| restored_alias(a))
                .collect(),
            catalog: self.catalog.clone(),
        })
    }
}

/// An alias to restore, with a fresh random one in case another project has it.
fn restored_alias(alias: &str) -> RestoredAlias {
    RestoredAlias {
        alias: alias.to_string(),
        fallback: ralf_core::token::generate()[..32].to_string(),
    }
}

/// Checks a catalog's settings as `PUT .../catalog/settings` does (the repository named, the
/// webhook secret never in a backup) and its recorded service states.
fn check_catalog(ix: &Indices<'_>, c: &BackupCatalog) -> ApiResult<RestoredCatalog> {
    let mut settings = CatalogSettings {
        repository_id: ix
            .repositories
            .resolve("repository", c.repository.as_deref())?
            .map(as_id),
        path: c.path.clone().unwrap_or(CatalogSettings::default().path),
        branch: c.branch.clone(),
        write_back: c.write_back,
        parallelism: c.parallelism.unwrap_or(1),
        schedule: c.schedule.clone(),
        check_schedule: c.check_schedule.clone(),
        webhook_secret: None,
        webhook_secret_set: false,
    };
    let next_runs = checked_settings(&mut settings)?;
    let mut names = HashSet::new();
    let mut services = Vec::new();
    for (i, service) in c.services.iter().enumerate() {
        let place = describe("services", i, &service.name);
        let mut check = || -> ApiResult<ServiceRecord> {
            if !is_valid_name(&service.name) {
                return Err(ApiError::bad_request(format!(
                    "name: {:?} is not a valid service name",
                    service.name
                )));
            }
            if !names.insert(service.name.as_str()) {
                return Err(ApiError::bad_request(format!(
                    "name: {:?} is listed twice",
                    service.name
                )));
            }
            let state = ServiceState::parse(&service.state)
                .filter(|state| state.is_up() || state.is_down())
                .ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "state: {:?} is not one of deployed, degraded, failed, held, rolled_back",
                        service.state
                    ))
                })?;
            let last_status = service
                .last_status
                .clone()
                .map(serde_json::from_value::<StepStatus>)
                .transpose()
                .map_err(|e| ApiError::bad_request(format!("last_status: {e}")))?
                .map(|status| StepStatus {
                    task_id: None,
                    ..status
                });
            if let Some(commit) = &service.commit {
                validate::short_text("commit", commit)?;
            }
            Ok(ServiceRecord {
                name: service.name.clone(),
                state,
                deployed_at: service.deployed_at,
                commit: service.commit.clone(),
                last_status,
                last_task_id: None,
            })
        };
        services.push(check().at(&place)?);
    }
    Ok(RestoredCatalog {
        settings,
        next_runs,
        services,
    })
}

/// Checks a template with `TemplateRequest::check`, as its create endpoint does. The names it
/// refers to are resolved to indices first; `check` sees them as ids (index + 1, since 0 means
/// none there) and they are turned back into indices after.
fn check_template(ix: &Indices<'_>, me: usize, t: &BackupTemplate) -> ApiResult<RestoredTemplate> {
    let id = |index: usize| as_id(index) + 1;
    let repository = ix.repositories.require("repository", &t.repository)?;
    let inventory = ix
        .inventories
        .resolve("inventory", t.inventory.as_deref())?;
    let environment = ix
        .environments
        .resolve("environment", t.environment.as_deref())?;
    let mut environment_ids = Vec::new();
    for (j, name) in t.environments.iter().enumerate() {
        let index = ix
            .environments
            .require(&format!("environments[{j}]"), name)?;
        environment_ids.push(id(index));
    }
    let view = ix.views.resolve("view", t.view.as_deref())?;
    let build_template = ix
        .templates
        .resolve("build_template", t.build_template.as_deref())?;
    if build_template == Some(me) {
        return Err(ApiError::bad_request(
            "build_template must not be the template itself",
        ));
    }
    let mut vaults = Vec::new();
    for (j, v) in t.vaults.iter().enumerate() {
        let key = ix
            .keys
            .resolve(&format!("vaults[{j}].vault_key"), v.vault_key.as_deref())?;
        vaults.push(TemplateVaultRequest {
            id: None,
            name: Some(v.name.clone()),
            kind: Some(v.kind),
            vault_key_id: key.map(id),
            script: Some(v.script.clone()),
        });
    }
    // Older backups name one vault password key; it is the default vault.
    if vaults.is_empty()
        && let Some(key) = ix.keys.resolve("vault_key", t.vault_key.as_deref())?
    {
        vaults.push(TemplateVaultRequest {
            id: None,
            name: Some(String::new()),
            kind: Some(VaultType::Password),
            vault_key_id: Some(id(key)),
            script: None,
        });
    }
    let mut runner_tags = t.runner_tags.clone();
    if let Some(tag) = t.runner_tag.as_deref().map(str::trim)
        && !tag.is_empty()
        && !runner_tags.iter().any(|t| t.trim() == tag)
    {
        runner_tags.push(tag.to_string());
    }

    let request = TemplateRequest {
        id: None,
        project_id: None,
        name: Some(t.name.clone()),
        app: Some(t.app.clone()),
        kind: t.kind,
        repository_id: Some(id(repository)),
        inventory_id: inventory.map(id),
        environment_id: environment.map(id),
        environment_ids: Some(environment_ids),
        view_id: view.map(id),
        build_template_id: build_template.map(id),
        playbook: Some(t.playbook.clone()),
        working_directory: t.working_directory.clone(),
        arguments: t.arguments.clone(),
        description: Some(t.description.clone()),
        allow_override_args_in_task: Some(t.allow_override_args_in_task),
        allow_override_branch_in_task: Some(t.allow_override_branch_in_task),
        limit: Some(t.limit.clone()),
        suppress_success_alerts: Some(t.suppress_success_alerts),
        suppress_error_alerts: Some(t.suppress_error_alerts),
        git_branch: t.git_branch.clone(),
        survey_vars: Some(t.survey_vars.clone()),
        vaults: Some(vaults),
        start_version: t.start_version.clone(),
        autorun: Some(t.autorun),
        task_params: Some(t.task_params.clone()),
        executor_image: Some(t.executor_image.clone()),
        allow_parallel_tasks: Some(t.allow_parallel_tasks),
        timeout_secs: Some(t.timeout_secs),
        runner_tags: Some(runner_tags),
        requeue_when_lost: Some(t.requeue_when_lost),
    };
    let (mut settings, mut vaults) = request.check().map_err(|e| {
        // The create endpoint's messages name id fields; a backup names objects.
        let message =
            e.0.replace("repository_id", "repository")
                .replace("inventory_id", "inventory")
                .replace("build_template_id", "build_template")
                .replace("vault_key_id", "vault_key");
        ApiError::BadRequest(message)
    })?;
    fn index(id: i64) -> i64 {
        id - 1
    }
    settings.repository_id = index(settings.repository_id);
    settings.inventory_id = settings.inventory_id.map(index);
    settings.environment_id = settings.environment_id.map(index);
    settings.environment_ids = settings.environment_ids.into_iter().map(index).collect();
    settings.view_id = settings.view_id.map(index);
    settings.build_template_id = settings.build_template_id.map(index);
    for vault in &mut vaults {
        vault.vault_key_id = vault.vault_key_id.map(index);
    }
    Ok(RestoredTemplate { settings, vaults })
}
