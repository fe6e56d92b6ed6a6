//! A project backup in Semaphore's format (`GET /api/project/{id}/backup`,
//! `POST /api/projects/restore`): the project's settings and every object in it, without ids and
//! without secret material. Objects refer to each other by name (a repository names its
//! `ssh_key`, a template its `inventory`), so within one kind names must be unique.
//!
//! Reading is lenient, so a backup written by any Semaphore 2.x restores: every field may be
//! absent or `null`, `survey_vars` may be an array or a string holding one, a view's name may be
//! `title` or `name`, keys ralf does not know are ignored. ralf writes its own template fields
//! (`allow_parallel_tasks`, `timeout_secs`, `runner_tags`, ...) as extra keys Semaphore ignores.

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Deserializer, Serialize};

use crate::Timestamp;
use crate::api::tasks::TaskRequest;
use crate::api::templates::{
    SurveyVar, TemplateTaskParams, TemplateType, VaultType, null_default, string_or_array,
};
use crate::validate::{self, Checked, invalid};

/// The whole backup.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ProjectBackup {
    #[serde(default, deserialize_with = "null_default")]
    pub meta: BackupMeta,
    #[serde(default, deserialize_with = "null_default")]
    pub templates: Vec<BackupTemplate>,
    #[serde(default, deserialize_with = "null_default")]
    pub repositories: Vec<BackupRepository>,
    #[serde(default, deserialize_with = "null_default")]
    pub keys: Vec<BackupKey>,
    #[serde(default, deserialize_with = "null_default")]
    pub views: Vec<BackupView>,
    #[serde(default, deserialize_with = "null_default")]
    pub inventories: Vec<BackupInventory>,
    #[serde(default, deserialize_with = "null_default")]
    pub environments: Vec<BackupEnvironment>,
    /// The project's schedules; each names its template.
    #[serde(default, deserialize_with = "null_default")]
    pub schedules: Vec<BackupSchedule>,
    /// The project's host configs; each names its key.
    #[serde(default, deserialize_with = "null_default")]
    pub host_configs: Vec<BackupHostConfig>,
    /// The project's integrations; each names its template and its secret's key.
    #[serde(default, deserialize_with = "null_default")]
    pub integrations: Vec<BackupIntegration>,
    /// The project's own aliases (the last part of their webhook URLs).
    #[serde(default, deserialize_with = "null_default")]
    pub integration_aliases: Vec<String>,
    /// ralf's service catalog: its settings and the states ralf recorded of its services;
    /// absent (and so not written) when the project has no catalog settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub catalog: Option<BackupCatalog>,
}

/// The project's service catalog (see docs/catalog.md). The webhook's secret is never
/// written: a restored catalog has no webhook until a secret is set again.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BackupCatalog {
    /// The name of the repository the catalog is in; `null`: none.
    #[serde(default)]
    pub repository: Option<String>,
    /// Absent: `catalog/projects/`.
    #[serde(default)]
    pub path: Option<String>,
    #[serde(default)]
    pub branch: Option<String>,
    #[serde(default, deserialize_with = "null_default")]
    pub write_back: bool,
    /// Absent: 1.
    #[serde(default)]
    pub parallelism: Option<u32>,
    #[serde(default)]
    pub schedule: Option<String>,
    #[serde(default)]
    pub check_schedule: Option<String>,
    /// Whether the webhook had a secret when the backup was made (its value is not in it);
    /// ignored on restore.
    #[serde(default, deserialize_with = "null_default")]
    pub webhook_secret_set: bool,
    /// What ralf recorded of each service's last rollout.
    #[serde(default, deserialize_with = "null_default")]
    pub services: Vec<BackupCatalogService>,
}

/// A service's recorded state. The task that reached it is not in the backup.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BackupCatalogService {
    #[serde(default, deserialize_with = "null_default")]
    pub name: String,
    /// `deployed`, `degraded`, `failed`, `held` or `rolled_back`.
    #[serde(default, deserialize_with = "null_default")]
    pub state: String,
    #[serde(default)]
    pub deployed_at: Option<Timestamp>,
    /// The catalog's commit it was deployed from.
    #[serde(default)]
    pub commit: Option<String>,
    /// The status object of its last finished step (without its task).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub last_status: Option<serde_json::Value>,
}

/// An integration with its matchers, extract values and aliases; `template` names its
/// template, `auth_secret` the key holding its secret (restored without the secret, as keys
/// are).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BackupIntegration {
    #[serde(default, deserialize_with = "null_default")]
    pub name: String,
    #[serde(default, deserialize_with = "null_default")]
    pub template: String,
    #[serde(default, deserialize_with = "null_default")]
    pub auth_method: String,
    #[serde(default)]
    pub auth_secret: Option<String>,
    #[serde(default, deserialize_with = "null_default")]
    pub auth_header: String,
    #[serde(default, deserialize_with = "null_default")]
    pub searchable: bool,
    /// The task's overrides, without object ids.
    #[serde(default)]
    pub task_params: Option<TaskRequest>,
    #[serde(default, deserialize_with = "null_default")]
    pub aliases: Vec<String>,
    #[serde(default, deserialize_with = "null_default")]
    pub matchers: Vec<BackupIntegrationMatcher>,
    #[serde(default, deserialize_with = "null_default")]
    pub extract_values: Vec<BackupIntegrationExtractValue>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BackupIntegrationMatcher {
    #[serde(default, deserialize_with = "null_default")]
    pub name: String,
    #[serde(default, deserialize_with = "null_default")]
    pub match_type: String,
    #[serde(default, deserialize_with = "null_default")]
    pub method: String,
    #[serde(default, deserialize_with = "null_default")]
    pub body_data_type: String,
    #[serde(default, deserialize_with = "null_default")]
    pub key: String,
    #[serde(default, deserialize_with = "null_default")]
    pub value: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BackupIntegrationExtractValue {
    #[serde(default, deserialize_with = "null_default")]
    pub name: String,
    #[serde(default, deserialize_with = "null_default")]
    pub value_source: String,
    #[serde(default, deserialize_with = "null_default")]
    pub body_data_type: String,
    #[serde(default, deserialize_with = "null_default")]
    pub key: String,
    #[serde(default, deserialize_with = "null_default")]
    pub variable: String,
    #[serde(default, deserialize_with = "null_default")]
    pub variable_type: String,
}

/// A host config; `ssh_key` names its key.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BackupHostConfig {
    /// `host` or `url`.
    #[serde(default, rename = "type", deserialize_with = "null_default")]
    pub kind: String,
    #[serde(default, deserialize_with = "null_default")]
    pub host: String,
    #[serde(default)]
    pub ssh_key: Option<String>,
}

/// A schedule; `template` names its template. A backup written by an older Semaphore may
/// have a template's `cron` instead, which restores as a schedule of that template.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BackupSchedule {
    #[serde(default, deserialize_with = "null_default")]
    pub name: String,
    #[serde(default, deserialize_with = "null_default")]
    pub template: String,
    #[serde(default, deserialize_with = "null_default")]
    pub cron_format: String,
    /// Absent: `true`.
    #[serde(default)]
    pub active: Option<bool>,
    /// `""` (cron) or `"run_at"`.
    #[serde(default, rename = "type", deserialize_with = "null_default")]
    pub kind: String,
    #[serde(default)]
    pub run_at: Option<Timestamp>,
    /// The task's overrides, without object ids (they do not survive a restore).
    #[serde(default)]
    pub task_params: Option<TaskRequest>,
}

/// The project's own settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BackupMeta {
    #[serde(default, deserialize_with = "null_default")]
    pub name: String,
    #[serde(default, deserialize_with = "null_default")]
    pub alert: bool,
    #[serde(default)]
    pub alert_chat: Option<String>,
    #[serde(default, deserialize_with = "null_default")]
    pub max_parallel_tasks: i64,
    #[serde(default, rename = "type", deserialize_with = "null_default")]
    pub kind: String,
}

/// An access key: its name and type only. A restored key has no secret.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BackupKey {
    #[serde(default, deserialize_with = "null_default")]
    pub name: String,
    #[serde(default, rename = "type", deserialize_with = "null_default")]
    pub kind: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BackupRepository {
    #[serde(default, deserialize_with = "null_default")]
    pub name: String,
    #[serde(default, deserialize_with = "null_default")]
    pub git_url: String,
    #[serde(default, deserialize_with = "null_default")]
    pub git_branch: String,
    /// The name of the key used to clone; `null` for none.
    #[serde(default)]
    pub ssh_key: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BackupInventory {
    #[serde(default, deserialize_with = "null_default")]
    pub name: String,
    #[serde(default, deserialize_with = "null_default")]
    pub inventory: String,
    /// Key names; `null` for none.
    #[serde(default)]
    pub ssh_key: Option<String>,
    #[serde(default)]
    pub become_key: Option<String>,
    /// For `file` inventories: the name of the repository the path is in.
    #[serde(default)]
    pub repository: Option<String>,
    #[serde(default, rename = "type", deserialize_with = "null_default")]
    pub kind: String,
}

/// An environment ("variable group"). The vault password is never written (`null`); secrets
/// are named with their type, without their values.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BackupEnvironment {
    #[serde(default, deserialize_with = "null_default")]
    pub name: String,
    /// Always `null` in ralf's backups; a password found in a backup is restored (encrypted).
    #[serde(default)]
    pub password: Option<String>,
    /// Extra variables: a JSON object in a string.
    #[serde(default, deserialize_with = "null_default")]
    pub json: String,
    /// Environment variables: a JSON object in a string.
    #[serde(default, deserialize_with = "null_default")]
    pub env: String,
    #[serde(default, deserialize_with = "null_default")]
    pub secrets: Vec<BackupSecret>,
}

/// A secret of an environment: restored with an empty value, to be entered again.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BackupSecret {
    #[serde(default, deserialize_with = "null_default")]
    pub name: String,
    /// `env` or `var`.
    #[serde(default, rename = "type", deserialize_with = "null_default")]
    pub kind: String,
}

/// A view. Semaphore writes its name as `title` (its spec says `name`; both are read).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BackupView {
    #[serde(default)]
    pub title: Option<String>,
    /// Read only: what the spec calls the title.
    #[serde(default, skip_serializing)]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "null_default")]
    pub position: i64,
    #[serde(default, deserialize_with = "null_default")]
    pub hidden: bool,
    #[serde(default, rename = "type", deserialize_with = "null_default")]
    pub kind: String,
    #[serde(default)]
    pub sort_column: Option<String>,
    #[serde(default, deserialize_with = "null_default")]
    pub sort_reverse: bool,
}

impl BackupView {
    /// The view's name: `title`, or `name` when there is no title.
    pub fn display_name(&self) -> &str {
        self.title
            .as_deref()
            .filter(|t| !t.trim().is_empty())
            .or(self.name.as_deref())
            .unwrap_or_default()
    }
}

/// An Ansible vault of a template; `vault_key` names the key holding its password.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BackupVault {
    #[serde(default, deserialize_with = "null_default")]
    pub name: String,
    #[serde(default, rename = "type", deserialize_with = "null_default")]
    pub kind: VaultType,
    #[serde(default)]
    pub vault_key: Option<String>,
    #[serde(default, deserialize_with = "null_default")]
    pub script: String,
}

/// A template; the objects it uses are named, not numbered.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BackupTemplate {
    #[serde(default)]
    pub inventory: Option<String>,
    #[serde(default, deserialize_with = "null_default")]
    pub repository: String,
    #[serde(default)]
    pub environment: Option<String>,
    /// ralf: further variable groups (`environment_ids`), by name.
    #[serde(default, deserialize_with = "null_default")]
    pub environments: Vec<String>,
    #[serde(default)]
    pub view: Option<String>,
    /// The build template of a `deploy` template.
    #[serde(default)]
    pub build_template: Option<String>,
    #[serde(default, deserialize_with = "null_default")]
    pub name: String,
    #[serde(default, deserialize_with = "null_default")]
    pub playbook: String,
    #[serde(default, deserialize_with = "null_default")]
    pub app: String,
    #[serde(default, rename = "type")]
    pub kind: Option<TemplateType>,
    #[serde(default)]
    pub working_directory: Option<String>,
    /// A JSON string holding an array of strings; a JSON array is read too.
    #[serde(default, deserialize_with = "string_or_array")]
    #[schema(value_type = Option<String>)]
    pub arguments: Option<String>,
    #[serde(default, deserialize_with = "null_default")]
    pub description: String,
    #[serde(default, deserialize_with = "null_default")]
    pub allow_override_args_in_task: bool,
    #[serde(default, deserialize_with = "null_default")]
    pub allow_override_branch_in_task: bool,
    #[serde(default, deserialize_with = "null_default")]
    pub vaults: Vec<BackupVault>,
    #[serde(default)]
    pub start_version: Option<String>,
    #[serde(default, deserialize_with = "null_default")]
    pub autorun: bool,
    /// An array (what Semaphore writes, though its spec says string); a string holding the
    /// array is read too.
    #[serde(default, deserialize_with = "survey_vars")]
    pub survey_vars: Vec<SurveyVar>,
    #[serde(default, deserialize_with = "null_default")]
    pub suppress_success_alerts: bool,
    #[serde(default, deserialize_with = "null_default")]
    pub suppress_error_alerts: bool,
    #[serde(default, deserialize_with = "null_default")]
    pub task_params: TemplateTaskParams,
    #[serde(default, deserialize_with = "null_default")]
    pub limit: String,
    #[serde(default)]
    pub git_branch: Option<String>,
    #[serde(default, deserialize_with = "null_default")]
    pub executor_image: String,
    /// ralf: whether tasks of the template may run at the same time.
    #[serde(default, deserialize_with = "null_default")]
    pub allow_parallel_tasks: bool,
    /// ralf: a task running longer is stopped; 0 = no limit.
    #[serde(default, deserialize_with = "null_default")]
    pub timeout_secs: i64,
    /// ralf: only runners with all these tags take the template's tasks.
    #[serde(default, deserialize_with = "null_default")]
    pub runner_tags: Vec<String>,
    /// ralf: a task whose runner or server is lost goes back to the queue.
    #[serde(default, deserialize_with = "null_default")]
    pub requeue_when_lost: bool,
    /// Semaphore's single runner tag; read as one of `runner_tags`, never written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runner_tag: Option<String>,
    /// Semaphore's older single schedule of the template: restored as a schedule when the
    /// backup's `schedules` name none for this template; never written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cron: Option<String>,
    /// Older backups' single vault password key; read as a password vault, never written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vault_key: Option<String>,
}

/// `survey_vars` as an array, as a string holding one, or `null`/`""` for none.
fn survey_vars<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<SurveyVar>, D::Error> {
    use serde::de::Error;
    match Option::<serde_json::Value>::deserialize(d)? {
        None | Some(serde_json::Value::Null) => Ok(Vec::new()),
        Some(serde_json::Value::String(s)) if s.trim().is_empty() => Ok(Vec::new()),
        Some(serde_json::Value::String(s)) => {
            serde_json::from_str(&s).map_err(|e| D::Error::custom(format!("survey_vars: {e}")))
        }
        Some(list @ serde_json::Value::Array(_)) => {
            serde_json::from_value(list).map_err(|e| D::Error::custom(format!("survey_vars: {e}")))
        }
        Some(_) => Err(D::Error::custom(
            "survey_vars must be an array of survey variables",
        )),
    }
}

/// Where an object of a backup sits, for messages: `templates[2] ("deploy")`.
pub fn describe(kind: &str, index: usize, name: &str) -> String {
    format!("{kind}[{index}] ({name:?})")
}

/// The objects of one kind by name, for resolving references. Names are compared trimmed; a
/// blank name is left for the object's own check to refuse; a name used twice is refused, since
/// a reference to it could not be resolved.
#[derive(Debug)]
pub struct NameIndex<'a> {
    kind: &'static str,
    by_name: HashMap<&'a str, usize>,
}

impl<'a> NameIndex<'a> {
    /// `kind` is the backup's list (`keys`, `inventories`, ...).
    pub fn new(kind: &'static str, names: impl IntoIterator<Item = &'a str>) -> Checked<Self> {
        let mut by_name: HashMap<&'a str, usize> = HashMap::new();
        for (index, name) in names.into_iter().enumerate() {
            let name = name.trim();
            if name.is_empty() {
                continue;
            }
            if let Some(first) = by_name.insert(name, index) {
                return invalid(format!(
                    "{}: {kind}[{first}] has the same name; names must be unique within each \
                     kind in a backup, since objects refer to each other by name",
                    describe(kind, index, name)
                ));
            }
        }
        Ok(NameIndex { kind, by_name })
    }

    /// The index of the object a reference names; `field` is the referring field, for the
    /// message. `None` and blank references name nothing.
    pub fn resolve(&self, field: &str, reference: Option<&str>) -> Checked<Option<usize>> {
        let Some(name) = reference.map(str::trim).filter(|n| !n.is_empty()) else {
            return Ok(None);
        };
        match self.by_name.get(name) {
            Some(&index) => Ok(Some(index)),
            None => invalid(format!(
                "{field}: {name:?} is not the name of any of the backup's {}",
                self.kind
            )),
        }
    }

    /// Like [`NameIndex::resolve`] for a reference that must be given.
    pub fn require(&self, field: &str, reference: &str) -> Checked<usize> {
        match self.resolve(field, Some(reference))? {
            Some(index) => Ok(index),
            None => invalid(format!(
                "{field} must name one of the backup's {}",
                self.kind
            )),
        }
    }
}

/// Names made unique for a backup: the first object of a name keeps it, later ones get
/// `"name (2)"`, `"name (3)"`, ... (a number no other object uses), so every reference resolves.
/// ralf does not require unique names within a project; a backup does.
pub fn unique_names<'a>(names: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let names: Vec<&str> = names.into_iter().collect();
    let mut taken: HashSet<String> = names.iter().map(|n| n.to_string()).collect();
    let mut seen: HashSet<&str> = HashSet::new();
    names
        .iter()
        .map(|&name| {
            if seen.insert(name) {
                return name.to_string();
            }
            let mut n = 2;
            loop {
                let suffix = format!(" ({n})");
                let room = validate::MAX_NAME_LEN.saturating_sub(suffix.chars().count());
                let base: String = name.chars().take(room).collect();
                let candidate = format!("{base}{suffix}");
                if taken.insert(candidate.clone()) {
                    return candidate;
                }
                n += 1;
            }
        })
        .collect()
}

/// Refuses build templates that lead back to themselves: `build[i]` is the index of template
/// `i`'s build template. Returns the first template found on a cycle.
pub fn build_cycle(build: &[Option<usize>]) -> Option<usize> {
    for start in 0..build.len() {
        let mut current = build[start];
        for _ in 0..build.len() {
            match current {
                None => break,
                Some(i) if i == start => return Some(start),
                Some(i) => current = build.get(i).copied().flatten(),
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn semaphore_backups_with_nulls_and_strings_read() {
        let backup: ProjectBackup = serde_json::from_value(json!({
            "meta": {"name": "homelab", "alert": true, "alert_chat": null,
                     "max_parallel_tasks": 0, "type": null, "created": "2024-01-01T00:00:00Z"},
            "templates": [{"name": "Build", "repository": "Demo", "inventory": "Build",
                           "environment": "Empty", "vault_key": null, "build_template": null,
                           "survey_vars": "[{\"name\":\"v\",\"title\":\"V\",\"type\":\"int\"}]",
                           "arguments": "[]", "description": null, "type": "build",
                           "cron": "* * * * *", "task_params": null}],
            "views": [{"name": "Build", "position": 0}, {"title": "Deploy", "position": 1}],
            "environments": [{"name": "Empty", "password": null, "json": "{}", "env": null}],
            "keys": null,
            "integration_aliases": null
        }))
        .unwrap();
        assert_eq!(backup.meta.kind, "");
        assert_eq!(backup.meta.alert_chat, None);
        let t = &backup.templates[0];
        assert_eq!(t.survey_vars.len(), 1);
        assert_eq!(t.kind, Some(TemplateType::Build));
        assert_eq!(t.cron.as_deref(), Some("* * * * *"));
        assert_eq!(backup.views[0].display_name(), "Build");
        assert_eq!(backup.views[1].display_name(), "Deploy");
        assert_eq!(backup.environments[0].env, "");
        assert!(backup.keys.is_empty());

        let array: BackupTemplate =
            serde_json::from_value(json!({"survey_vars": [{"name": "a"}], "arguments": ["-v"]}))
                .unwrap();
        assert_eq!(array.survey_vars[0].name, "a");
        assert_eq!(array.arguments.as_deref(), Some(r#"["-v"]"#));
        let empty: BackupTemplate = serde_json::from_value(json!({"survey_vars": ""})).unwrap();
        assert!(empty.survey_vars.is_empty());
    }

    #[test]
    fn views_are_written_with_a_title() {
        let view = BackupView {
            title: Some("Web".into()),
            name: Some("ignored".into()),
            ..Default::default()
        };
        let written = serde_json::to_value(&view).unwrap();
        assert_eq!(written["title"], "Web");
        assert!(written.get("name").is_none());
    }

    #[test]
    fn names_resolve_or_say_what_is_missing() {
        let index = NameIndex::new("inventories", ["prod", " staging "]).unwrap();
        assert_eq!(
            index.resolve("inventory", Some("staging")).unwrap(),
            Some(1)
        );
        assert_eq!(index.resolve("inventory", None).unwrap(), None);
        assert_eq!(
            index.resolve("inventory", Some("dev")).unwrap_err().0,
            "inventory: \"dev\" is not the name of any of the backup's inventories"
        );
        assert!(index.require("repository", "").is_err());
        let e = NameIndex::new("keys", ["a", "b", "a"]).unwrap_err().0;
        assert!(
            e.starts_with("keys[2] (\"a\"): keys[0] has the same name"),
            "{e}"
        );
    }

    #[test]
    fn duplicate_names_get_numbers() {
        assert_eq!(
            unique_names(["a", "b", "a", "a (2)", "a"]),
            ["a", "b", "a (3)", "a (2)", "a (4)"]
        );
        let long = "x".repeat(validate::MAX_NAME_LEN);
        let renamed = unique_names([long.as_str(), long.as_str()]);
        assert_eq!(renamed[1].chars().count(), validate::MAX_NAME_LEN);
        assert!(renamed[1].ends_with(" (2)"));
    }

    #[test]
    fn build_cycles_are_found() {
        assert_eq!(build_cycle(&[None, Some(0), Some(1)]), None);
        assert_eq!(build_cycle(&[Some(0)]), Some(0));
        assert_eq!(build_cycle(&[None, Some(2), Some(1)]), Some(1));
    }
}
