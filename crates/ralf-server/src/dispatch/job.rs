//! Builds the executor's [`Job`] for a task from what the store holds: template, repository,
//! inventory, variable groups, keys (decrypted here, and only here), survey answers.
//!
//! Precedence of variables, lowest first: the variable groups in order (`environment_id`, then
//! `environment_ids`), their secrets, the task's `environment` (extra vars and survey answers),
//! the task's secret survey answers. Survey variables whose target is `env` become environment
//! variables instead of extra vars. Bash and Python scripts get the extra vars as `name=value`
//! arguments, as Semaphore passes them.

use anyhow::{Context, bail};
use ralf_core::api::environments::SecretKind;
use ralf_core::api::inventories::InventoryKind;
use ralf_core::api::keys::KeyMaterial;
use ralf_core::api::tasks::Task;
use ralf_core::api::templates::{SurveyVarTarget, Template, TemplateApp, VaultType};
use ralf_core::{ProjectId, TaskId, TemplateId};
use ralf_exec::{
    AnsibleOptions, App, Credential, Inventory, Job, LoginPassword, RepositorySource, SshKey,
    TerraformOptions, VaultPassword,
};
use serde_json::{Map, Value};

use crate::state::AppState;

/// Everything needed to run one task (secrets decrypted), and what the dispatcher must know.
pub struct PreparedJob {
    pub job: Job,
    pub template: Template,
}

pub async fn prepare(state: &AppState, task: &Task) -> anyhow::Result<PreparedJob> {
    let store = &state.store;
    let project_id = task.project_id;
    let template = store
        .template(ProjectId(project_id), TemplateId(task.template_id))
        .await
        .context("loading the template")?;
    let settings = &template.settings;
    if !settings.app.runs() {
        bail!(
            "ralf cannot run {app} templates yet: the template is stored as Semaphore stores it, \
             but its tasks need an app ralf does not have; run it with ansible, terraform, tofu, \
             bash or python instead",
            app = settings.app
        );
    }
    let mut secrets: Vec<String> = Vec::new();

    let repository = store
        .repository(ProjectId(project_id), settings.repository_id)
        .await
        .context("loading the repository")?;
    let auth = match repository.ssh_key_id {
        None => None,
        Some(key_id) => credential(state, project_id, key_id, &mut secrets).await?,
    };
    let branch = task
        .git_branch
        .clone()
        .filter(|b| !b.is_empty())
        .or_else(|| settings.git_branch.clone().filter(|b| !b.is_empty()))
        .unwrap_or_else(|| repository.git_branch.clone());

    let mut extra_vars = Map::new();
    let mut env: Vec<(String, String)> = Vec::new();
    for environment_id in settings
        .environment_id
        .iter()
        .chain(&settings.environment_ids)
    {
        let group = store
            .environment(ProjectId(project_id), *environment_id)
            .await
            .context("loading the variable group")?;
        merge_object(
            &mut extra_vars,
            &group.json,
            "the variable group's extra variables",
        )?;
        for (name, value) in parse_object(&group.env, "the variable group's environment")? {
            env.push((name, scalar_text(&value)));
        }
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
            secrets.push(value.clone());
            if secret.kind == SecretKind::Env {
                env.push((secret.name, value));
            } else {
                extra_vars.insert(secret.name, Value::String(value));
            }
        }
    }

    // The task's own variables and survey answers, then its secret answers.
    let answers = parse_object(&task.environment, "the task's environment")?;
    let secret_answers = match state.store.task_secret(TaskId(task.id)).await? {
        Some(stored) => {
            let text = state
                .cipher
                .decrypt(&stored)
                .context("cannot decrypt the task's secret answers")?;
            if text.trim().is_empty() {
                Map::new()
            } else {
                parse_object(&text, "the task's secret answers")?
            }
        }
        None => Map::new(),
    };
    for value in secret_answers.values() {
        secrets.push(scalar_text(value));
    }
    for (name, value) in answers.into_iter().chain(secret_answers) {
        let to_env = settings
            .survey_vars
            .iter()
            .any(|v| v.name == name && v.target == SurveyVarTarget::Env);
        if to_env {
            env.push((name, scalar_text(&value)));
        } else {
            extra_vars.insert(name, value);
        }
    }

    let mut arguments = template.argument_list().map_err(|e| anyhow::anyhow!(e.0))?;
    if matches!(settings.app, TemplateApp::Bash | TemplateApp::Python) {
        // As Semaphore passes them to scripts: `name=value` after the template's arguments,
        // before the task's.
        arguments.extend(
            extra_vars
                .iter()
                .map(|(name, value)| format!("{name}={}", scalar_text(value))),
        );
    }
    if let Some(task_args) = task.arguments.as_deref().filter(|a| !a.trim().is_empty()) {
        arguments.extend(
            ralf_core::validate::json_string_array("arguments", task_args)
                .map_err(|e| anyhow::anyhow!(e.0))?,
        );
    }

    let mut ansible = AnsibleOptions {
        limit: task.params.limit.clone(),
        tags: task.params.tags.clone(),
        skip_tags: task.params.skip_tags.clone(),
        check: task.params.dry_run,
        diff: task.params.diff,
        debug: task.params.debug,
        ..Default::default()
    };
    if ansible.limit.is_empty() && !settings.limit.trim().is_empty() {
        ansible.limit = settings
            .limit
            .split(',')
            .map(|s| s.trim().to_string())
            .collect();
    }
    for vault in &template.vaults {
        if vault.kind != VaultType::Password {
            bail!(
                "vault {:?}: only password vaults can be used; script vaults are not supported",
                vault.name
            );
        }
        let Some(key_id) = vault.vault_key_id else {
            continue;
        };
        let password = match key_material(state, project_id, key_id).await? {
            KeyMaterial::LoginPassword(lp) => lp.password,
            KeyMaterial::String(s) => s,
            _ => bail!(
                "vault {:?}: its key must be a login_password key",
                vault.name
            ),
        };
        secrets.push(password.clone());
        ansible.vault_passwords.push(VaultPassword {
            name: vault.name.clone(),
            password,
        });
    }

    let mut terraform = TerraformOptions {
        destroy: task.params.destroy || settings.task_params.destroy.unwrap_or(false),
        upgrade: task.params.upgrade || settings.task_params.upgrade.unwrap_or(false),
        auto_approve: task.params.auto_approve
            || settings.task_params.auto_approve.unwrap_or(false),
        state_key: Some(format!("template-{}", template.id)),
        ..Default::default()
    };

    let inventory_id = task.inventory_id.or(settings.inventory_id);
    let mut inventory = None;
    if let Some(inventory_id) = inventory_id {
        let inv = store
            .inventory(ProjectId(project_id), inventory_id)
            .await
            .context("loading the inventory")?;
        inventory = match inv.kind {
            InventoryKind::Static => Some(Inventory::Static(inv.inventory.clone())),
            InventoryKind::StaticYaml => Some(Inventory::StaticYaml(inv.inventory.clone())),
            InventoryKind::File if inv.inventory.trim().is_empty() => bail!(
                "inventory {:?} is a file inventory without a path: give it the path of the \
                 inventory file in the repository",
                inv.name
            ),
            InventoryKind::File => Some(Inventory::File(inv.inventory.clone())),
            InventoryKind::TerraformWorkspace | InventoryKind::TofuWorkspace => {
                terraform.workspace = Some(inv.inventory.clone()).filter(|w| !w.trim().is_empty());
                None
            }
        };
        if let Some(key_id) = inv.ssh_key_id {
            ansible.ssh_key = credential(state, project_id, key_id, &mut secrets).await?;
        }
        if let Some(key_id) = inv.become_key_id {
            ansible.become_key = match key_material(state, project_id, key_id).await? {
                KeyMaterial::LoginPassword(lp) => {
                    secrets.push(lp.password.clone());
                    Some(LoginPassword {
                        login: lp.login,
                        password: lp.password,
                    })
                }
                KeyMaterial::None => None,
                _ => bail!("the inventory's become key must be a login_password key"),
            };
        }
    }
    if matches!(settings.app, TemplateApp::Terraform | TemplateApp::Tofu) {
        terraform.vars = extra_vars
            .iter()
            .map(|(k, v)| (k.clone(), scalar_text(v)))
            .collect();
    }

    let playbook = if task.playbook.trim().is_empty() {
        settings.playbook.clone()
    } else {
        task.playbook.clone()
    };
    let job = Job {
        task_id: task.id,
        app: match settings.app {
            TemplateApp::Ansible => App::Ansible,
            TemplateApp::Terraform => App::Terraform,
            TemplateApp::Tofu => App::Tofu,
            TemplateApp::Bash => App::Bash,
            TemplateApp::Python => App::Python,
            other => bail!("ralf cannot run {other} templates yet"),
        },
        repository: RepositorySource {
            url: repository.git_url.clone(),
            branch,
            commit: task.commit_hash.clone().filter(|c| !c.is_empty()),
            auth,
            cache_key: format!("repository-{}", repository.id),
        },
        playbook,
        working_directory: settings.working_directory.clone(),
        arguments,
        env,
        extra_vars,
        inventory,
        ansible,
        terraform,
        secrets,
        timeout: (settings.timeout_secs > 0)
            .then(|| std::time::Duration::from_secs(settings.timeout_secs as u64)),
    };
    Ok(PreparedJob { job, template })
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

/// A key as a connection credential; every secret part is added to `secrets` for masking.
async fn credential(
    state: &AppState,
    project_id: i64,
    key_id: i64,
    secrets: &mut Vec<String>,
) -> anyhow::Result<Option<Credential>> {
    Ok(match key_material(state, project_id, key_id).await? {
        KeyMaterial::None => None,
        KeyMaterial::LoginPassword(lp) => {
            secrets.push(lp.password.clone());
            Some(Credential::LoginPassword(LoginPassword {
                login: lp.login,
                password: lp.password,
            }))
        }
        KeyMaterial::Ssh(key) if key.private_key.trim().is_empty() => bail!(
            "key {key_id} is an ssh key without a private key (was its type changed without \
             override_secret and a new secret?)"
        ),
        KeyMaterial::Ssh(key) => {
            secrets.push(key.private_key.clone());
            secrets.push(key.passphrase.clone());
            Some(Credential::Ssh(SshKey {
                private_key: key.private_key,
                passphrase: Some(key.passphrase).filter(|p| !p.is_empty()),
                login: Some(key.login).filter(|l| !l.is_empty()),
            }))
        }
        KeyMaterial::String(_) => bail!("key {key_id} is an environment secret, not a credential"),
    })
}

fn parse_object(text: &str, what: &str) -> anyhow::Result<Map<String, Value>> {
    if text.trim().is_empty() {
        return Ok(Map::new());
    }
    match serde_json::from_str::<Value>(text)
        .with_context(|| format!("{what} is not valid JSON"))?
    {
        Value::Object(map) => Ok(map),
        _ => bail!("{what} must be a JSON object"),
    }
}

fn merge_object(into: &mut Map<String, Value>, text: &str, what: &str) -> anyhow::Result<()> {
    into.extend(parse_object(text, what)?);
    Ok(())
}

/// A JSON value as an environment variable or `-var` value: strings as they are, the rest as JSON.
fn scalar_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}
