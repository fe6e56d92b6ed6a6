//! Builds the executor's [`Job`] for a task in two steps: [`load`] reads what the store holds
//! for it (template, repository, inventory, variable groups, keys decrypted here and only here,
//! secret survey answers), and [`build_job`] merges that by the rules in [`build`], without I/O.

mod build;

use ralf_core::{ProjectId, TaskId, TemplateId};
use std::collections::HashMap;

use anyhow::Context;
use ralf_core::api::environments::SecretKind;
use ralf_core::api::inventories::Inventory;
use ralf_core::api::keys::KeyMaterial;
use ralf_core::api::repositories::Repository;
use ralf_core::api::tasks::Task;
use ralf_core::api::templates::{Template, VaultType};
use ralf_exec::Job;

pub use build::build_job;

use crate::state::AppState;

/// Everything needed to run one task (secrets decrypted), and what the dispatcher must know.
pub struct PreparedJob {
    pub job: Job,
    pub template: Template,
}

/// What a task's job is built from, as the store holds it, every secret decrypted.
#[derive(Debug, Clone)]
pub struct JobSources {
    pub template: Template,
    pub repository: Repository,
    /// The variable groups, in order: the template's `environment_id`, then its
    /// `environment_ids`.
    pub groups: Vec<VariableGroup>,
    /// The inventory: the task's, else the template's.
    pub inventory: Option<Inventory>,
    /// The task's secret survey answers: a JSON object in a string, or nothing.
    pub secret_answers: Option<String>,
    /// The keys the job uses (the repository's, the password vaults', the inventory's), by id.
    pub keys: HashMap<i64, KeyMaterial>,
    /// When the task is a step of a catalog rollout: the service's environment and ralf's
    /// `RALF_*` variables (see [`crate::catalog`]); the task may then leave a report.
    pub catalog_step: Option<std::collections::BTreeMap<String, String>>,
}

/// A variable group's extra variables and environment (JSON objects in strings) and its
/// secrets, decrypted.
#[derive(Debug, Clone, Default)]
pub struct VariableGroup {
    pub json: String,
    pub env: String,
    pub secrets: Vec<GroupSecret>,
}

#[derive(Clone)]
pub struct GroupSecret {
    pub name: String,
    /// An environment variable or an extra variable.
    pub kind: SecretKind,
    pub value: String,
}

impl std::fmt::Debug for GroupSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupSecret")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

/// Loads what the task's job is built from, then builds it.
pub async fn prepare(state: &AppState, task: &Task) -> anyhow::Result<PreparedJob> {
    let sources = load(state, task).await?;
    build_job(task, sources)
}

/// Reads from the store what [`build_job`] needs for `task`, decrypting the secrets.
pub async fn load(state: &AppState, task: &Task) -> anyhow::Result<JobSources> {
    let store = &state.store;
    let project_id = task.project_id;
    let template = store
        .template(ProjectId(project_id), TemplateId(task.template_id))
        .await
        .context("loading the template")?;
    let settings = &template.settings;
    let repository = store
        .repository(ProjectId(project_id), settings.repository_id)
        .await
        .context("loading the repository")?;

    let mut groups = Vec::new();
    for environment_id in settings
        .environment_id
        .iter()
        .chain(&settings.environment_ids)
    {
        let group = store
            .environment(ProjectId(project_id), *environment_id)
            .await
            .context("loading the variable group")?;
        let mut secrets = Vec::new();
        for secret in store
            .environment_secret_values(ProjectId(project_id), *environment_id)
            .await?
        {
            let value = match secret.secret.as_deref() {
                Some(stored) => state
                    .cipher
                    .decrypt(stored)
                    .context("decrypting a secret")?,
                None => String::new(),
            };
            secrets.push(GroupSecret {
                name: secret.name,
                kind: secret.kind,
                value,
            });
        }
        groups.push(VariableGroup {
            json: group.json,
            env: group.env,
            secrets,
        });
    }

    let secret_answers = match store.task_secret(TaskId(task.id)).await? {
        Some(stored) => Some(
            state
                .cipher
                .decrypt(&stored)
                .context("cannot decrypt the task's secret answers")?,
        ),
        None => None,
    };

    let inventory = match task.inventory_id.or(settings.inventory_id) {
        Some(inventory_id) => Some(
            store
                .inventory(ProjectId(project_id), inventory_id)
                .await
                .context("loading the inventory")?,
        ),
        None => None,
    };

    // The keys the job uses: the repository's, the password vaults', the inventory's.
    let mut key_ids: Vec<i64> = repository.ssh_key_id.into_iter().collect();
    for vault in &template.vaults {
        if vault.kind == VaultType::Password {
            key_ids.extend(vault.vault_key_id);
        }
    }
    if let Some(inv) = &inventory {
        key_ids.extend(inv.ssh_key_id);
        key_ids.extend(inv.become_key_id);
    }
    key_ids.sort_unstable();
    key_ids.dedup();
    let mut keys = HashMap::new();
    for key_id in key_ids {
        keys.insert(key_id, key_material(state, project_id, key_id).await?);
    }

    let catalog_step = store
        .catalog_step(TaskId(task.id))
        .await?
        .map(|step| step.environment);

    Ok(JobSources {
        template,
        repository,
        groups,
        inventory,
        secret_answers,
        keys,
        catalog_step,
    })
}

/// The key of a repository's cached clone, which its tasks (and the server's own reads of it)
/// share.
pub(crate) fn cache_key(repository_id: i64) -> String {
    format!("repository-{repository_id}")
}

/// Key `key_id` as a connection credential; its secret parts are added to `secrets` for
/// masking.
pub(crate) async fn credential(
    state: &AppState,
    project_id: i64,
    key_id: i64,
    secrets: &mut Vec<String>,
) -> anyhow::Result<Option<ralf_exec::Credential>> {
    let material = key_material(state, project_id, key_id).await?;
    build::credential(key_id, &material, secrets)
}

async fn key_material(
    state: &AppState,
    project_id: i64,
    key_id: i64,
) -> anyhow::Result<KeyMaterial> {
    let stored = state
        .store
        .key_secret(ProjectId(project_id), key_id)
        .await
        .context("loading a key")?;
    KeyMaterial::open(&state.cipher, stored.kind, stored.secret.as_deref())
        .with_context(|| format!("key {key_id}"))
}
