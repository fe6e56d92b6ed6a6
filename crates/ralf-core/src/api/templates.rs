//! Templates on the wire: what a task runs (an app, and a playbook or script in a repository),
//! with what (inventory, variable groups, vaults) and what a task may change (survey variables,
//! overrides, task parameters). [`Template`] is complete: the executor reads it as it is.
//!
//! A request is checked in two steps: [`TemplateRequest::check`] here (the shape: required
//! fields per app, paths, survey variables, vaults), then the server asks the store whether the
//! ids it names exist in the same project.

use serde::{Deserialize, Deserializer, Serialize};

use crate::api::refs::ObjectRef;
use crate::validate::{self, Checked, invalid};
use crate::{TaskStatus, Timestamp};

/// The apps of Semaphore 2.16. ralf stores all of them; it runs all but [`TemplateApp::Pulumi`],
/// [`TemplateApp::Powershell`] and [`TemplateApp::Terragrunt`] (see [`TemplateApp::runs`]): a
/// task of those fails and says so in its log.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum TemplateApp {
    #[default]
    Ansible,
    Terraform,
    Tofu,
    Bash,
    Python,
    Powershell,
    Pulumi,
    Terragrunt,
}

impl TemplateApp {
    pub const ALL: [TemplateApp; 8] = [
        TemplateApp::Ansible,
        TemplateApp::Terraform,
        TemplateApp::Tofu,
        TemplateApp::Bash,
        TemplateApp::Python,
        TemplateApp::Powershell,
        TemplateApp::Pulumi,
        TemplateApp::Terragrunt,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            TemplateApp::Ansible => "ansible",
            TemplateApp::Terraform => "terraform",
            TemplateApp::Tofu => "tofu",
            TemplateApp::Bash => "bash",
            TemplateApp::Python => "python",
            TemplateApp::Powershell => "powershell",
            TemplateApp::Pulumi => "pulumi",
            TemplateApp::Terragrunt => "terragrunt",
        }
    }

    /// Whether ralf can run a task of this app (it stores templates of every app).
    pub const fn runs(self) -> bool {
        !matches!(
            self,
            TemplateApp::Powershell | TemplateApp::Pulumi | TemplateApp::Terragrunt
        )
    }

    pub fn parse(s: &str) -> Option<TemplateApp> {
        TemplateApp::ALL.into_iter().find(|a| a.as_str() == s)
    }

    /// Terraform, OpenTofu and Terragrunt run in a directory of the repository (the playbook
    /// field, which may be empty); the others need a playbook or a script.
    pub const fn needs_playbook(self) -> bool {
        !matches!(
            self,
            TemplateApp::Terraform | TemplateApp::Tofu | TemplateApp::Terragrunt
        )
    }
}

impl std::fmt::Display for TemplateApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `""` (a plain task), `build` (produces versioned artifacts) or `deploy` (deploys a version
/// built by its `build_template_id`).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum TemplateType {
    #[default]
    #[serde(rename = "")]
    Task,
    Build,
    Deploy,
}

impl TemplateType {
    pub const fn as_str(self) -> &'static str {
        match self {
            TemplateType::Task => "",
            TemplateType::Build => "build",
            TemplateType::Deploy => "deploy",
        }
    }

    pub fn parse(s: &str) -> Option<TemplateType> {
        [
            TemplateType::Task,
            TemplateType::Build,
            TemplateType::Deploy,
        ]
        .into_iter()
        .find(|t| t.as_str() == s)
    }
}

/// The value type of a survey variable.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum SurveyVarType {
    /// A one-line string (`""` on the wire).
    #[default]
    #[serde(rename = "")]
    String,
    Int,
    /// One of `values`.
    Enum,
    /// A string that is passed to the task but never stored.
    Secret,
    /// A multi-line string.
    Text,
}

/// Where a survey answer goes.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum SurveyVarTarget {
    /// To the app's variables: Ansible extra vars, Terraform `-var`, script arguments (`""`).
    #[default]
    #[serde(rename = "")]
    Vars,
    /// To an environment variable of the task's process.
    Env,
}

/// A question asked when a task of the template starts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SurveyVar {
    #[serde(default, deserialize_with = "null_default")]
    pub name: String,
    #[serde(default, deserialize_with = "null_default")]
    pub title: String,
    #[serde(default, deserialize_with = "null_default")]
    pub description: String,
    #[serde(default, rename = "type", deserialize_with = "null_default")]
    pub kind: SurveyVarType,
    #[serde(default, deserialize_with = "null_default")]
    pub target: SurveyVarTarget,
    #[serde(default, deserialize_with = "null_default")]
    pub required: bool,
    /// The choices of an `enum` variable.
    #[serde(default, deserialize_with = "null_default")]
    pub values: Vec<SurveyVarValue>,
    /// The answer a task gets when it is started without one (also over the API).
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub default_value: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SurveyVarValue {
    #[serde(default, deserialize_with = "null_default")]
    pub name: String,
    #[serde(default, deserialize_with = "null_default")]
    pub value: String,
}

/// How an Ansible vault is opened.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum VaultType {
    /// With the password of the key `vault_key_id`.
    #[default]
    Password,
    /// By a client script in the repository (`script`).
    Script,
}

impl VaultType {
    pub const fn as_str(self) -> &'static str {
        match self {
            VaultType::Password => "password",
            VaultType::Script => "script",
        }
    }

    pub fn parse(s: &str) -> Option<VaultType> {
        [VaultType::Password, VaultType::Script]
            .into_iter()
            .find(|t| t.as_str() == s)
    }
}

/// An Ansible vault the template's tasks can open. `name` is the vault id (`""` = default).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TemplateVault {
    pub id: i64,
    pub name: String,
    #[serde(rename = "type")]
    pub kind: VaultType,
    pub vault_key_id: Option<i64>,
    pub script: String,
}

/// A vault as a create or update writes it (the store gives it its id).
#[derive(Debug, Clone, PartialEq)]
pub struct NewVault {
    pub name: String,
    pub kind: VaultType,
    pub vault_key_id: Option<i64>,
    pub script: String,
}

/// A vault in a request; its `id` is ignored, since an update replaces every vault.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TemplateVaultRequest {
    pub id: Option<i64>,
    pub name: Option<String>,
    #[serde(rename = "type")]
    pub kind: Option<VaultType>,
    pub vault_key_id: Option<i64>,
    pub script: Option<String>,
}

/// The defaults a task of the template starts with. The Ansible fields apply to Ansible
/// templates, the Terraform ones to Terraform and OpenTofu; unset fields are absent on the wire.
/// Other keys (Semaphore's UI keeps its `allow_*` switches here) are kept as they were given.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TemplateTaskParams {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub debug: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dry_run: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diff: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skip_tags: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skip_galaxy_install: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destroy: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_approve: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upgrade: Option<bool>,
    #[serde(flatten)]
    #[schema(ignore)]
    pub other: serde_json::Map<String, serde_json::Value>,
}

/// Everything a template says except its ids and vaults: what a create or update writes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TemplateSettings {
    pub name: String,
    pub app: TemplateApp,
    #[serde(rename = "type")]
    pub kind: TemplateType,
    pub repository_id: i64,
    pub inventory_id: Option<i64>,
    pub environment_id: Option<i64>,
    /// Further variable groups, merged after `environment_id`'s.
    pub environment_ids: Vec<i64>,
    pub view_id: Option<i64>,
    /// The build template of a `deploy` template.
    pub build_template_id: Option<i64>,
    /// The Ansible playbook, the script of bash and python, the sub-directory of Terraform.
    pub playbook: String,
    /// Repository-relative directory the task runs in; stays inside the repository.
    pub working_directory: Option<String>,
    /// Extra command-line arguments: a JSON string holding an array of strings.
    pub arguments: Option<String>,
    pub description: String,
    pub allow_override_args_in_task: bool,
    pub allow_override_branch_in_task: bool,
    /// Ansible `--limit`.
    pub limit: String,
    pub suppress_success_alerts: bool,
    pub suppress_error_alerts: bool,
    /// Overrides the repository's branch.
    pub git_branch: Option<String>,
    pub survey_vars: Vec<SurveyVar>,
    /// The first version a `build` template's tasks get.
    pub start_version: Option<String>,
    /// Run this `deploy` template when its build template's task succeeds.
    pub autorun: bool,
    pub task_params: TemplateTaskParams,
    pub executor_image: String,
    /// ralf: whether tasks of this template may run at the same time (default: one at a time).
    pub allow_parallel_tasks: bool,
    /// ralf: a task running longer is stopped; 0 = no limit.
    pub timeout_secs: i64,
    /// ralf: only runners carrying all these tags take the template's tasks.
    pub runner_tags: Vec<String>,
    /// ralf: a task whose runner (or server) is lost mid-run goes back to the queue, to start
    /// again from the beginning elsewhere, instead of ending in error. For templates that are
    /// safe to run again (default: no).
    #[serde(default)]
    pub requeue_when_lost: bool,
}

/// A template as the API answers it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Template {
    pub id: i64,
    pub project_id: i64,
    #[serde(flatten)]
    pub settings: TemplateSettings,
    pub vaults: Vec<TemplateVault>,
}

impl Template {
    /// The extra command-line arguments as a list (empty when there are none).
    pub fn argument_list(&self) -> Checked<Vec<String>> {
        match &self.settings.arguments {
            None => Ok(Vec::new()),
            Some(args) => validate::json_string_array("arguments", args),
        }
    }
}

/// The newest task of a template, as template lists show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TemplateLastTask {
    pub id: i64,
    pub template_id: i64,
    pub project_id: i64,
    pub status: TaskStatus,
    pub user_id: Option<i64>,
    pub user_name: Option<String>,
    pub playbook: String,
    pub arguments: Option<String>,
    pub git_branch: Option<String>,
    pub inventory_id: Option<i64>,
    pub message: String,
    pub commit_hash: Option<String>,
    pub commit_message: String,
    pub version: Option<String>,
    pub build_task_id: Option<i64>,
    pub created: Timestamp,
    pub start: Option<Timestamp>,
    pub end: Option<Timestamp>,
}

/// What a template list adds to a template: its number of tasks and its newest task.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TemplateTaskSummary {
    pub tasks: i64,
    pub last_task: Option<TemplateLastTask>,
}

/// One entry of `GET /api/project/{id}/templates`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TemplateListItem {
    #[serde(flatten)]
    pub template: Template,
    /// How many tasks the template has.
    pub tasks: i64,
    /// The newest task, or `null` before the first.
    pub last_task: Option<TemplateLastTask>,
}

/// `GET /api/project/{id}/templates/{template_id}/refs`: what would stop working without the
/// template: the deploy templates it builds for and the integrations that start it (deleting
/// the template deletes them). Semaphore's shape, so every kind is present; `schedules` stays
/// empty.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TemplateRefs {
    pub templates: Vec<ObjectRef>,
    pub inventories: Vec<ObjectRef>,
    pub repositories: Vec<ObjectRef>,
    pub integrations: Vec<ObjectRef>,
    pub schedules: Vec<ObjectRef>,
}

/// `POST /api/project/{id}/templates`, `PUT …/templates/{template_id}`. Absent and `null`
/// fields take their defaults; an id of 0 counts as absent.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TemplateRequest {
    pub id: Option<i64>,
    pub project_id: Option<i64>,
    pub name: Option<String>,
    /// ansible (default), terraform, tofu, bash or python.
    pub app: Option<String>,
    #[serde(rename = "type")]
    pub kind: Option<TemplateType>,
    pub repository_id: Option<i64>,
    pub inventory_id: Option<i64>,
    pub environment_id: Option<i64>,
    pub environment_ids: Option<Vec<i64>>,
    pub view_id: Option<i64>,
    pub build_template_id: Option<i64>,
    pub playbook: Option<String>,
    pub working_directory: Option<String>,
    /// A JSON string holding an array of strings (`"[\"-v\"]"`); a JSON array is accepted too.
    #[serde(default, deserialize_with = "string_or_array")]
    #[schema(value_type = Option<String>)]
    pub arguments: Option<String>,
    pub description: Option<String>,
    pub allow_override_args_in_task: Option<bool>,
    pub allow_override_branch_in_task: Option<bool>,
    pub limit: Option<String>,
    pub suppress_success_alerts: Option<bool>,
    pub suppress_error_alerts: Option<bool>,
    pub git_branch: Option<String>,
    pub survey_vars: Option<Vec<SurveyVar>>,
    pub vaults: Option<Vec<TemplateVaultRequest>>,
    pub start_version: Option<String>,
    pub autorun: Option<bool>,
    pub task_params: Option<TemplateTaskParams>,
    pub executor_image: Option<String>,
    pub allow_parallel_tasks: Option<bool>,
    pub timeout_secs: Option<i64>,
    pub runner_tags: Option<Vec<String>>,
    pub requeue_when_lost: Option<bool>,
}

impl TemplateRequest {
    /// Checks everything that needs no database and returns what to store.
    pub fn check(&self) -> Checked<(TemplateSettings, Vec<NewVault>)> {
        let name = validate::name("name", self.name.as_deref().unwrap_or_default())?;

        let app_text = self.app.as_deref().unwrap_or_default().trim();
        let app = if app_text.is_empty() {
            TemplateApp::Ansible
        } else {
            TemplateApp::parse(app_text).ok_or_else(|| {
                let names: Vec<&str> = TemplateApp::ALL.iter().map(|a| a.as_str()).collect();
                validate::Invalid(format!(
                    "app {app_text:?} is not supported; app must be one of: {}",
                    names.join(", ")
                ))
            })?
        };
        let kind = self.kind.unwrap_or_default();

        let playbook = self.playbook.clone().unwrap_or_default();
        validate::short_text("playbook", &playbook)?;
        if app.needs_playbook() && playbook.trim().is_empty() {
            return invalid(match app {
                TemplateApp::Ansible => "playbook is required for ansible templates".to_string(),
                _ => format!("playbook (the script to run) is required for {app} templates"),
            });
        }

        let repository_id = present(self.repository_id)
            .ok_or_else(|| validate::Invalid("repository_id is required".into()))?;
        let inventory_id = present(self.inventory_id);
        if app == TemplateApp::Ansible && inventory_id.is_none() {
            return invalid("inventory_id is required for ansible templates");
        }
        let build_template_id = present(self.build_template_id);
        if kind == TemplateType::Deploy && build_template_id.is_none() {
            return invalid("build_template_id is required for deploy templates");
        }
        let mut environment_ids = Vec::new();
        for &id in self.environment_ids.iter().flatten() {
            if id != 0 && !environment_ids.contains(&id) {
                environment_ids.push(id);
            }
        }

        let working_directory = self.working_directory.as_deref().unwrap_or_default();
        validate::inside_repository("working_directory", working_directory)?;
        validate::inside_repository_from("playbook", working_directory, &playbook)?;
        if let Some(args) = &self.arguments {
            validate::json_string_array("arguments", args)?;
        }
        let description = self.description.clone().unwrap_or_default();
        validate::long_text("description", &description)?;
        let limit = self.limit.clone().unwrap_or_default();
        validate::long_text("limit", &limit)?;
        for (field, value) in [
            ("git_branch", &self.git_branch),
            ("start_version", &self.start_version),
            ("executor_image", &self.executor_image),
        ] {
            if let Some(value) = value {
                validate::short_text(field, value)?;
            }
        }

        let survey_vars = self.survey_vars.clone().unwrap_or_default();
        check_survey_vars(&survey_vars)?;
        let vaults = self
            .vaults
            .iter()
            .flatten()
            .enumerate()
            .map(|(i, v)| check_vault(i, v))
            .collect::<Checked<Vec<_>>>()?;

        let timeout_secs = self.timeout_secs.unwrap_or(0);
        if timeout_secs < 0 {
            return invalid("timeout_secs must not be negative (0 means no limit)");
        }
        let mut runner_tags: Vec<String> = Vec::new();
        for (i, tag) in self.runner_tags.iter().flatten().enumerate() {
            let tag = validate::name(&format!("runner_tags[{i}]"), tag)?;
            if !runner_tags.contains(&tag) {
                runner_tags.push(tag);
            }
        }

        let settings = TemplateSettings {
            name,
            app,
            kind,
            repository_id,
            inventory_id,
            environment_id: present(self.environment_id),
            environment_ids,
            view_id: present(self.view_id),
            build_template_id,
            playbook,
            working_directory: self.working_directory.clone(),
            arguments: self.arguments.clone(),
            description,
            allow_override_args_in_task: self.allow_override_args_in_task.unwrap_or(false),
            allow_override_branch_in_task: self.allow_override_branch_in_task.unwrap_or(false),
            limit,
            suppress_success_alerts: self.suppress_success_alerts.unwrap_or(false),
            suppress_error_alerts: self.suppress_error_alerts.unwrap_or(false),
            git_branch: self.git_branch.clone(),
            survey_vars,
            start_version: self.start_version.clone(),
            autorun: self.autorun.unwrap_or(false),
            task_params: self.task_params.clone().unwrap_or_default(),
            executor_image: self.executor_image.clone().unwrap_or_default(),
            allow_parallel_tasks: self.allow_parallel_tasks.unwrap_or(false),
            timeout_secs,
            runner_tags,
            requeue_when_lost: self.requeue_when_lost.unwrap_or(false),
        };
        Ok((settings, vaults))
    }
}

/// An optional id, where 0 (what some clients send for "none") means none.
fn present(id: Option<i64>) -> Option<i64> {
    id.filter(|&id| id != 0)
}

fn check_survey_vars(vars: &[SurveyVar]) -> Checked<()> {
    let mut seen: Vec<&str> = Vec::new();
    for (i, var) in vars.iter().enumerate() {
        // Semaphore stores variables without a name (a form saved half-filled); they are
        // never asked for and never passed to a task.
        let name = var.name.trim();
        validate::short_text(&format!("survey_vars[{i}].name"), name)?;
        if !name.is_empty() && seen.contains(&name) {
            return invalid(format!(
                "survey_vars[{i}].name: the variable {name:?} is defined twice"
            ));
        }
        seen.push(name);
        validate::short_text(&format!("survey_vars[{i}].title"), &var.title)?;
        validate::long_text(&format!("survey_vars[{i}].description"), &var.description)?;
        // An enum variable without values is stored too (Semaphore does): a task is started
        // without an answer to it, or with its default.
        for (j, value) in var.values.iter().enumerate() {
            validate::short_text(&format!("survey_vars[{i}].values[{j}].name"), &value.name)?;
            validate::long_text(&format!("survey_vars[{i}].values[{j}].value"), &value.value)?;
        }
    }
    Ok(())
}

fn check_vault(i: usize, vault: &TemplateVaultRequest) -> Checked<NewVault> {
    let name = vault.name.clone().unwrap_or_default();
    validate::short_text(&format!("vaults[{i}].name"), &name)?;
    let kind = vault.kind.unwrap_or_default();
    let vault_key_id = present(vault.vault_key_id);
    let script = vault.script.clone().unwrap_or_default();
    match kind {
        VaultType::Password if vault_key_id.is_none() => {
            return invalid(format!(
                "vaults[{i}].vault_key_id is required for a password vault"
            ));
        }
        VaultType::Script if script.trim().is_empty() => {
            return invalid(format!("vaults[{i}].script is required for a script vault"));
        }
        VaultType::Script => validate::inside_repository(&format!("vaults[{i}].script"), &script)?,
        VaultType::Password => {}
    }
    Ok(NewVault {
        name,
        kind,
        vault_key_id,
        script,
    })
}

/// `null` as the type's default, for fields Semaphore's clients send as `null`.
pub(crate) fn null_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// A JSON object given in a string, as Semaphore sends `environment`, or as the object itself
/// (which is read as its serialization).
pub(crate) fn string_or_object<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<String>, D::Error> {
    match Option::<serde_json::Value>::deserialize(d)? {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(s)) => Ok(Some(s)),
        Some(object @ serde_json::Value::Object(_)) => Ok(Some(object.to_string())),
        Some(_) => Err(serde::de::Error::custom(
            "must be a JSON object, or a string holding one",
        )),
    }
}

/// `arguments` as Semaphore sends it (a string holding JSON), or as a JSON array.
pub(crate) fn string_or_array<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    match Option::<serde_json::Value>::deserialize(d)? {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(s)) => Ok(Some(s)),
        Some(array @ serde_json::Value::Array(_)) => Ok(Some(array.to_string())),
        Some(_) => Err(serde::de::Error::custom(
            "arguments must be a JSON array of strings, like [\"-v\"]",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn request(value: serde_json::Value) -> TemplateRequest {
        serde_json::from_value(value).unwrap()
    }

    fn error(value: serde_json::Value) -> String {
        request(value).check().unwrap_err().0
    }

    #[test]
    fn a_minimal_ansible_template() {
        let (settings, vaults) = request(json!({
            "name": " deploy ", "playbook": "site.yml", "inventory_id": 2, "repository_id": 3,
            "view_id": 0, "environment_id": null, "arguments": ["-v"]
        }))
        .check()
        .unwrap();
        assert_eq!(settings.name, "deploy");
        assert_eq!(settings.app, TemplateApp::Ansible);
        assert_eq!(settings.view_id, None);
        assert_eq!(settings.arguments.as_deref(), Some(r#"["-v"]"#));
        assert!(vaults.is_empty());
    }

    #[test]
    fn each_app_needs_its_fields() {
        assert_eq!(
            error(json!({"name": "x", "repository_id": 1, "inventory_id": 1})),
            "playbook is required for ansible templates"
        );
        assert_eq!(
            error(json!({"name": "x", "repository_id": 1, "playbook": "a.yml"})),
            "inventory_id is required for ansible templates"
        );
        assert_eq!(
            error(json!({"name": "x", "repository_id": 1, "app": "bash"})),
            "playbook (the script to run) is required for bash templates"
        );
        assert!(
            request(json!({"name": "x", "repository_id": 1, "app": "tofu"}))
                .check()
                .is_ok()
        );
        assert_eq!(
            error(json!({"name": "x", "repository_id": 1, "app": "pulumi"})),
            "playbook (the script to run) is required for pulumi templates"
        );
        assert!(
            request(json!({"name": "x", "repository_id": 1, "app": "terragrunt"}))
                .check()
                .is_ok()
        );
        assert!(
            error(json!({"name": "x", "repository_id": 1, "app": "chef"}))
                .starts_with("app \"chef\" is not supported; app must be one of: ansible,")
        );
        assert_eq!(
            error(json!({"name": "x", "app": "terraform"})),
            "repository_id is required"
        );
        assert_eq!(
            error(json!({"name": "x", "repository_id": 1, "app": "terraform", "type": "deploy"})),
            "build_template_id is required for deploy templates"
        );
    }

    #[test]
    fn paths_stay_inside_the_repository() {
        let base = json!({"name": "x", "repository_id": 1, "app": "bash", "playbook": "a.sh"});
        let with = |fields: serde_json::Value| {
            let mut body = base.clone();
            for (k, v) in fields.as_object().unwrap() {
                body[k] = v.clone();
            }
            request(body).check().map(|_| ()).map_err(|e| e.0)
        };
        assert!(with(json!({"working_directory": "deploy", "playbook": "../a.sh"})).is_ok());
        assert_eq!(
            with(json!({"playbook": "/etc/passwd"})).unwrap_err(),
            "playbook must be relative to the repository, not an absolute path"
        );
        assert_eq!(
            with(json!({"working_directory": "deploy", "playbook": "../../x"})).unwrap_err(),
            "playbook must stay inside the repository"
        );
        assert_eq!(
            with(json!({"working_directory": "a/../../etc"})).unwrap_err(),
            "working_directory must stay inside the repository"
        );
    }

    #[test]
    fn survey_vars_and_vaults_are_checked() {
        let base = json!({"name": "x", "repository_id": 1, "app": "bash", "playbook": "a.sh"});
        let with = |key: &str, value: serde_json::Value| {
            let mut body = base.clone();
            body[key] = value;
            error(body)
        };
        assert_eq!(
            with("survey_vars", json!([{"name": "a"}, {"name": "a"}])),
            "survey_vars[1].name: the variable \"a\" is defined twice"
        );
        let mut body = base.clone();
        body["survey_vars"] = json!([{"name": "a", "type": "enum"}]);
        assert!(request(body).check().is_ok());
        assert_eq!(
            with("vaults", json!([{"type": "password"}])),
            "vaults[0].vault_key_id is required for a password vault"
        );
        assert_eq!(
            with("vaults", json!([{"type": "script"}])),
            "vaults[0].script is required for a script vault"
        );
        assert_eq!(
            with("timeout_secs", json!(-1)),
            "timeout_secs must not be negative (0 means no limit)"
        );
    }

    #[test]
    fn task_params_keep_unknown_keys() {
        let params: TemplateTaskParams =
            serde_json::from_value(json!({"tags": ["a"], "allow_debug": true})).unwrap();
        assert_eq!(params.tags, Some(vec!["a".to_string()]));
        assert_eq!(
            serde_json::to_value(&params).unwrap(),
            json!({"tags": ["a"], "allow_debug": true})
        );
    }
}
