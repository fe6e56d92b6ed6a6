//! Project backup and restore in Semaphore's format (see `ralf_core::api::backup`).
//!
//! A backup is what any member can already read through the resources' own `GET`s (secrets are
//! left out of both), so, as in Semaphore, any member may take one. A restore creates a new
//! project, so it follows the rule of `POST /api/projects`. Every object of a restore goes
//! through the checks of its create endpoint, its references are resolved by name, and the
//! store creates everything in one transaction: a refused backup leaves no project behind.

use std::collections::HashMap;

use axum::Json;
use axum::extract::State;
use ralf_core::api::backup::{
    BackupEnvironment, BackupHostConfig, BackupInventory, BackupKey, BackupMeta, BackupRepository,
    BackupSchedule, BackupSecret, BackupTemplate, BackupVault, BackupView, NameIndex,
    ProjectBackup, build_cycle, describe, unique_names,
};
use ralf_core::api::environments::{
    Environment, EnvironmentSecretRequest, SecretChange, check_env, check_extra_vars,
    secret_changes,
};
use ralf_core::api::events::NewEvent;
use ralf_core::api::host_configs::{HostConfig, HostConfigFields, HostConfigRequest};
use ralf_core::api::inventories::{Inventory, InventoryKind, check_inventory};
use ralf_core::api::keys::{AccessKey, KeyKind, check_key_type};
use ralf_core::api::projects::{Project, ProjectRequest};
use ralf_core::api::repositories::{Repository, git_url};
use ralf_core::api::schedules::{Schedule, ScheduleFields, ScheduleRequest};
use ralf_core::api::tasks::TaskRequest;
use ralf_core::api::templates::{Template, TemplateRequest, TemplateVaultRequest, VaultType};
use ralf_core::api::views::{View, ViewFields, ViewRequest};
use ralf_core::secret::SecretCipher;
use ralf_core::{Timestamp, validate};
use ralf_store::backup::{ProjectRestore, RestoredEnvironment, RestoredSchedule, RestoredTemplate};
use ralf_store::environments::{EnvironmentFields, PasswordChange};
use ralf_store::inventories::InventoryFields;
use ralf_store::keys::NewKey;
use ralf_store::repositories::RepositoryFields;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::environments::sealed_changes;
use super::projects::checked_fields;
use crate::access::{ProjectAccess, Read};
use crate::auth::CurrentUser;
use crate::error::{ApiError, ApiResult, OrNotFound};
use crate::extract::JsonBody;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(backup))
        .routes(routes!(restore))
}

/// The project and everything in it as Semaphore's backup JSON: objects refer to each other by
/// name, and no secret is included (keys carry their type, environment secrets their name and
/// type, vault passwords are `null`).
#[utoipa::path(get, path = "/api/project/{project_id}/backup", tag = "projects",
    params(("project_id" = i64, Path)),
    responses((status = 200, body = ProjectBackup), (status = 404)))]
async fn backup(
    access: ProjectAccess<Read>,
    State(state): State<AppState>,
) -> ApiResult<Json<ProjectBackup>> {
    let store = &state.store;
    let id = access.project_id;
    let project = store.project(id).await.or_not_found("project")?;
    let contents = Contents {
        keys: store.keys(id, None, false).await?,
        repositories: store.repositories(id, None, false).await?,
        inventories: store.inventories(id, None, false).await?,
        environments: store.environments(id, None, false).await?,
        views: store.views(id).await?,
        templates: store.templates(id, None, None, false).await?,
        schedules: store.schedules(id, None).await?,
        host_configs: store.host_configs(id).await?,
    };
    Ok(Json(assemble(project, &contents)?))
}

/// Creates a new project from a backup, with the caller as its owner, and answers it (200, as
/// Semaphore's spec says). Admins may restore, and everyone when non-admins may create
/// projects. Keys come back without their secrets and environment secrets with empty values:
/// enter them again. Schedules come back as they were (a template's older `cron` as a
/// schedule); integrations in the backup are ignored.
#[utoipa::path(post, path = "/api/projects/restore", tag = "projects", request_body = ProjectBackup,
    responses((status = 200, body = Project), (status = 400), (status = 403)))]
async fn restore(
    CurrentUser(user): CurrentUser,
    State(state): State<AppState>,
    JsonBody(backup): JsonBody<ProjectBackup>,
) -> ApiResult<Json<Project>> {
    if !user.admin && !state.settings.non_admin_can_create_project {
        return Err(ApiError::Forbidden(
            "only administrators may create projects".into(),
        ));
    }
    let checked = Checked::new(&state, &backup)?;
    let project = state
        .store
        .restore_project(&checked.restore(&state.cipher)?, user.id)
        .await?;
    state.schedules.changed();
    state
        .event(NewEvent {
            project_id: Some(project.id),
            user_id: Some(user.id),
            object_id: Some(project.id),
            object_type: "project",
            description: format!("Project {} restored from a backup", project.name),
        })
        .await;
    Ok(Json(project))
}

// ----- backup -----

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
struct Contents {
    keys: Vec<AccessKey>,
    repositories: Vec<Repository>,
    inventories: Vec<Inventory>,
    environments: Vec<Environment>,
    views: Vec<View>,
    templates: Vec<Template>,
    schedules: Vec<Schedule>,
    host_configs: Vec<HostConfig>,
}

fn assemble(project: Project, contents: &Contents) -> ApiResult<ProjectBackup> {
    let Contents {
        keys,
        repositories,
        inventories,
        environments,
        views,
        templates,
        schedules,
        host_configs,
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
                    kind: s.kind.clone(),
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
        integrations: Vec::new(),
    })
}

/// A schedule's task overrides without the ids of objects, which a restore cannot keep.
fn without_ids(params: &TaskRequest) -> TaskRequest {
    TaskRequest {
        template_id: None,
        template_name: None,
        inventory_id: None,
        build_task_id: None,
        secret: None,
        ..params.clone()
    }
}

// ----- restore -----

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
struct Checked {
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
}

/// An index as a row's id field holds it in a restore.
fn as_id(index: usize) -> i64 {
    i64::try_from(index).unwrap_or(i64::MAX)
}

impl Checked {
    fn new(state: &AppState, b: &ProjectBackup) -> ApiResult<Checked> {
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
        })
    }

    /// The rows for the store, borrowing from the checked values; secrets are sealed here.
    fn restore(&self, cipher: &SecretCipher) -> ApiResult<ProjectRestore<'_>> {
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
        })
    }
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
