//! The merge rules that turn a task and what it draws on ([`JobSources`]) into the executor's
//! [`Job`]; no I/O, so each rule is tested here.
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
use ralf_core::api::templates::{SurveyVarTarget, TemplateApp, VaultType};
use ralf_exec::{
    AnsibleOptions, App, Credential, Inventory, Job, LoginPassword, RepositorySource, SshKey,
    TerraformOptions, VaultPassword,
};
use serde_json::{Map, Value};

use super::{JobSources, PreparedJob};

/// Builds the job of `task` from its sources; every secret it holds is listed in the job's
/// `secrets`, for masking.
pub fn build_job(task: &Task, sources: JobSources) -> anyhow::Result<PreparedJob> {
    let JobSources {
        template,
        repository,
        groups,
        inventory: stored_inventory,
        secret_answers,
        keys,
        catalog_step,
    } = sources;
    let settings = &template.settings;
    if !settings.app.runs() {
        bail!(
            "ralf cannot run {app} templates yet: the template is stored as Semaphore stores it, \
             but its tasks need an app ralf does not have; run it with ansible, terraform, tofu, \
             bash or python instead",
            app = settings.app
        );
    }
    let key = |key_id: i64| -> anyhow::Result<&KeyMaterial> {
        keys.get(&key_id)
            .with_context(|| format!("key {key_id} was not loaded"))
    };
    let mut secrets: Vec<String> = Vec::new();

    let auth = match repository.ssh_key_id {
        None => None,
        Some(key_id) => credential(key_id, key(key_id)?, &mut secrets)?,
    };
    let branch = task
        .git_branch
        .clone()
        .filter(|b| !b.is_empty())
        .or_else(|| settings.git_branch.clone().filter(|b| !b.is_empty()))
        .unwrap_or_else(|| repository.git_branch.clone());

    let mut extra_vars = Map::new();
    let mut env: Vec<(String, String)> = Vec::new();
    for group in groups {
        merge_object(
            &mut extra_vars,
            &group.json,
            "the variable group's extra variables",
        )?;
        for (name, value) in parse_object(&group.env, "the variable group's environment")? {
            env.push((name, scalar_text(&value)));
        }
        for secret in group.secrets {
            secrets.push(secret.value.clone());
            if secret.kind == SecretKind::Env {
                env.push((secret.name, secret.value));
            } else {
                extra_vars.insert(secret.name, Value::String(secret.value));
            }
        }
    }

    // The task's own variables and survey answers, then its secret answers.
    let answers = parse_object(&task.environment, "the task's environment")?;
    let secret_answers = match secret_answers {
        Some(text) if !text.trim().is_empty() => parse_object(&text, "the task's secret answers")?,
        _ => Map::new(),
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
        let password = match key(key_id)? {
            KeyMaterial::LoginPassword(lp) => lp.password.clone(),
            KeyMaterial::String(s) => s.clone(),
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

    let mut inventory = None;
    if let Some(inv) = &stored_inventory {
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
            ansible.ssh_key = credential(key_id, key(key_id)?, &mut secrets)?;
        }
        if let Some(key_id) = inv.become_key_id {
            ansible.become_key = match key(key_id)? {
                KeyMaterial::LoginPassword(lp) => {
                    secrets.push(lp.password.clone());
                    Some(LoginPassword {
                        login: lp.login.clone(),
                        password: lp.password.clone(),
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

    // A step of a catalog rollout: the service's environment and ralf's RALF_* variables,
    // over everything else.
    env.extend(
        catalog_step
            .iter()
            .flatten()
            .map(|(k, v)| (k.clone(), v.clone())),
    );

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
            cache_key: super::cache_key(repository.id),
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
        step_report: catalog_step.is_some(),
    };
    Ok(PreparedJob { job, template })
}

/// A key as a connection credential; every secret part is added to `secrets` for masking.
pub(super) fn credential(
    key_id: i64,
    material: &KeyMaterial,
    secrets: &mut Vec<String>,
) -> anyhow::Result<Option<Credential>> {
    Ok(match material {
        KeyMaterial::None => None,
        KeyMaterial::LoginPassword(lp) => {
            secrets.push(lp.password.clone());
            Some(Credential::LoginPassword(LoginPassword {
                login: lp.login.clone(),
                password: lp.password.clone(),
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
                private_key: key.private_key.clone(),
                passphrase: Some(key.passphrase.clone()).filter(|p| !p.is_empty()),
                login: Some(key.login.clone()).filter(|l| !l.is_empty()),
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

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use ralf_core::api::inventories::Inventory as StoredInventory;
    use ralf_core::api::keys::{LoginPassword as StoredLogin, SshKey as StoredSsh};
    use ralf_core::api::repositories::Repository;
    use ralf_core::api::templates::{SurveyVar, Template, TemplateRequest, TemplateVault};
    use serde_json::json;

    use super::*;
    use crate::dispatch::job::{GroupSecret, VariableGroup};

    fn template(app: &str) -> Template {
        let (settings, _) = TemplateRequest {
            name: Some("deploy".into()),
            app: Some(app.into()),
            repository_id: Some(1),
            inventory_id: Some(4),
            playbook: Some("site.yml".into()),
            ..Default::default()
        }
        .check()
        .expect("a valid template");
        Template {
            id: 3,
            project_id: 1,
            settings,
            vaults: Vec::new(),
        }
    }

    fn sources(template: Template) -> JobSources {
        JobSources {
            template,
            repository: Repository {
                id: 1,
                name: "repo".into(),
                project_id: 1,
                git_url: "https://git.example/repo.git".into(),
                git_branch: "main".into(),
                ssh_key_id: None,
            },
            groups: Vec::new(),
            inventory: None,
            secret_answers: None,
            keys: HashMap::new(),
            catalog_step: None,
        }
    }

    /// A task of template 3 with `fields` set over the defaults of a new one.
    fn task(fields: Value) -> Task {
        let mut task = json!({
            "id": 7, "template_id": 3, "project_id": 1, "status": "waiting",
            "debug": false, "dry_run": false, "diff": false, "playbook": "", "environment": "",
            "secret": "", "limit": "", "arguments": null, "git_branch": null, "user_id": null,
            "integration_id": null, "schedule_id": null, "created": "2026-01-01T00:00:00Z",
            "start": null, "end": null, "message": "", "commit_hash": null,
            "commit_message": "", "build_task_id": null, "version": null, "inventory_id": null,
            "params": {}, "tpl_playbook": "", "tpl_alias": "", "tpl_type": "", "tpl_app": "",
            "user_name": null,
        });
        for (name, value) in fields.as_object().expect("an object") {
            task[name] = value.clone();
        }
        serde_json::from_value(task).expect("a task")
    }

    fn build(task: &Task, sources: JobSources) -> Job {
        build_job(task, sources).expect("the job builds").job
    }

    fn build_error(task: &Task, sources: JobSources) -> String {
        match build_job(task, sources) {
            Ok(_) => panic!("the job built"),
            Err(e) => format!("{e:#}"),
        }
    }

    fn group(json: Value, env: Value, secrets: &[(&str, &str, &str)]) -> VariableGroup {
        VariableGroup {
            json: json.to_string(),
            env: env.to_string(),
            secrets: secrets
                .iter()
                .map(|(name, kind, value)| GroupSecret {
                    name: name.to_string(),
                    kind: SecretKind::try_from(kind.to_string()).expect("a secret kind"),
                    value: value.to_string(),
                })
                .collect(),
        }
    }

    fn login_password(login: &str, password: &str) -> KeyMaterial {
        KeyMaterial::LoginPassword(StoredLogin {
            login: login.into(),
            password: password.into(),
        })
    }

    fn inventory(kind: &str, text: &str) -> StoredInventory {
        StoredInventory {
            id: 4,
            name: "hosts".into(),
            project_id: 1,
            inventory: text.into(),
            ssh_key_id: None,
            become_key_id: None,
            repository_id: None,
            kind: InventoryKind::try_from(kind.to_string()).expect("an inventory kind"),
        }
    }

    #[test]
    fn variables_merge_lowest_first() {
        let mut sources = sources(template("ansible"));
        let all = |value: &str| json!({"a": value, "b": value, "c": value, "d": value, "e": value});
        sources.groups = vec![
            group(all("first group"), json!({}), &[]),
            group(
                json!({"b": "second group", "c": "second group", "d": "second group", "e": "second group"}),
                json!({}),
                &[("c", "var", "group secret")],
            ),
        ];
        sources.secret_answers = Some(json!({"e": "secret answer"}).to_string());
        let task = task(json!({"environment": json!({"d": "task", "e": "task"}).to_string()}));
        let job = build(&task, sources);
        assert_eq!(
            Value::Object(job.extra_vars),
            json!({"a": "first group", "b": "second group", "c": "group secret", "d": "task",
                   "e": "secret answer"})
        );
        assert!(job.secrets.contains(&"group secret".to_string()));
        assert!(job.secrets.contains(&"secret answer".to_string()));
    }

    #[test]
    fn environment_variables_come_from_groups_secrets_and_env_survey_answers() {
        let mut template = template("ansible");
        template.settings.survey_vars = vec![SurveyVar {
            name: "region".into(),
            target: SurveyVarTarget::Env,
            ..serde_json::from_value(json!({})).expect("a survey variable")
        }];
        let mut sources = sources(template);
        sources.groups = vec![group(
            json!({}),
            json!({"DEPTH": 2, "MODE": "fast"}),
            &[("TOKEN", "env", "t0ken")],
        )];
        let task = task(json!({"environment": json!({"region": "eu", "size": 3}).to_string()}));
        let job = build(&task, sources);
        let env: Vec<(&str, &str)> = job
            .env
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str()))
            .collect();
        assert_eq!(
            env,
            [
                ("DEPTH", "2"),
                ("MODE", "fast"),
                ("TOKEN", "t0ken"),
                ("region", "eu")
            ]
        );
        assert_eq!(Value::Object(job.extra_vars), json!({"size": 3}));
        assert_eq!(job.secrets, ["t0ken"]);
    }

    #[test]
    fn scripts_get_the_extra_vars_as_arguments_between_the_templates_and_the_tasks() {
        let mut template = template("bash");
        template.settings.arguments = Some(r#"["-v"]"#.into());
        let mut sources = sources(template);
        sources.groups = vec![group(json!({"name": "x", "count": 2}), json!({}), &[])];
        let task = task(json!({"arguments": r#"["--last"]"#}));
        assert_eq!(
            build(&task, sources).arguments,
            ["-v", "count=2", "name=x", "--last"]
        );

        let mut sources = self::sources(template_with_args("ansible", r#"["-v"]"#));
        sources.groups = vec![group(json!({"name": "x"}), json!({}), &[])];
        assert_eq!(build(&task, sources).arguments, ["-v", "--last"]);
    }

    fn template_with_args(app: &str, arguments: &str) -> Template {
        let mut template = template(app);
        template.settings.arguments = Some(arguments.into());
        template
    }

    #[test]
    fn the_task_overrides_the_template_and_the_template_the_repository() {
        let plain = task(json!({}));
        let overriding = task(json!({
            "git_branch": "feature",
            "playbook": "other.yml",
            "commit_hash": "abc123",
            "params": {"limit": ["web1"], "tags": ["t"], "dry_run": true},
        }));

        let job = build(&plain, sources(template("ansible")));
        assert_eq!(job.repository.branch, "main");
        assert_eq!(job.repository.commit, None);
        assert_eq!(job.playbook, "site.yml");
        assert!(job.ansible.limit.is_empty());

        let mut template = template("ansible");
        template.settings.git_branch = Some("release".into());
        template.settings.limit = "db1, db2".into();
        let job = build(&plain, sources(template.clone()));
        assert_eq!(job.repository.branch, "release");
        assert_eq!(job.ansible.limit, ["db1", "db2"]);

        let job = build(&overriding, sources(template));
        assert_eq!(job.repository.branch, "feature");
        assert_eq!(job.repository.commit.as_deref(), Some("abc123"));
        assert_eq!(job.playbook, "other.yml");
        assert_eq!(job.ansible.limit, ["web1"]);
        assert_eq!(job.ansible.tags, ["t"]);
        assert!(job.ansible.check);
    }

    #[test]
    fn terraform_switches_of_task_and_template_add_up_and_vars_are_text() {
        let mut template = template("terraform");
        template.settings.task_params.destroy = Some(true);
        let mut sources = sources(template);
        sources.groups = vec![group(json!({"size": 3, "name": "x"}), json!({}), &[])];
        sources.inventory = Some(inventory("terraform-workspace", "staging"));
        let task = task(json!({"params": {"auto_approve": true}}));
        let job = build(&task, sources);
        assert!(job.terraform.destroy && job.terraform.auto_approve && !job.terraform.upgrade);
        assert_eq!(job.terraform.workspace.as_deref(), Some("staging"));
        assert_eq!(job.terraform.state_key.as_deref(), Some("template-3"));
        assert_eq!(
            job.terraform.vars,
            [
                ("name".to_string(), "x".to_string()),
                ("size".into(), "3".into())
            ]
        );
        assert!(job.inventory.is_none());
    }

    #[test]
    fn keys_become_credentials_and_every_secret_part_is_masked() {
        let mut template = template("ansible");
        template.vaults = vec![TemplateVault {
            id: 1,
            name: "prod".into(),
            kind: VaultType::Password,
            vault_key_id: Some(12),
            script: String::new(),
        }];
        let mut sources = sources(template);
        sources.repository.ssh_key_id = Some(10);
        let mut inv = inventory("static", "[web]\nweb1\n");
        inv.become_key_id = Some(11);
        sources.inventory = Some(inv);
        sources.keys = HashMap::from([
            (
                10,
                KeyMaterial::Ssh(StoredSsh {
                    login: "git".into(),
                    passphrase: "phrase".into(),
                    private_key: "PRIVATE".into(),
                }),
            ),
            (11, login_password("root", "become-pw")),
            (12, KeyMaterial::String("vault-pw".into())),
        ]);
        let job = build(&task(json!({})), sources);
        match &job.repository.auth {
            Some(Credential::Ssh(key)) => {
                assert_eq!(key.private_key, "PRIVATE");
                assert_eq!(key.login.as_deref(), Some("git"));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            job.ansible.become_key.as_ref().map(|k| k.login.as_str()),
            Some("root")
        );
        assert_eq!(job.ansible.vault_passwords.len(), 1);
        assert_eq!(job.ansible.vault_passwords[0].password, "vault-pw");
        assert!(matches!(&job.inventory, Some(Inventory::Static(text)) if text.contains("web1")));
        for secret in ["PRIVATE", "phrase", "become-pw", "vault-pw"] {
            assert!(
                job.secrets.iter().any(|s| s == secret),
                "{secret} is masked"
            );
        }
    }

    #[test]
    fn refusals() {
        let mut script_vault = template("ansible");
        script_vault.vaults = vec![TemplateVault {
            id: 1,
            name: "v".into(),
            kind: VaultType::Script,
            vault_key_id: None,
            script: "get-pass.sh".into(),
        }];
        assert!(
            build_error(&task(json!({})), sources(script_vault))
                .contains("only password vaults can be used")
        );

        let sources_with = |kind: &str, key: KeyMaterial| {
            let mut sources = sources(template("ansible"));
            let mut inv = inventory(kind, "hosts.ini");
            inv.become_key_id = Some(11);
            sources.inventory = Some(inv);
            sources.keys = HashMap::from([(11, key)]);
            sources
        };
        assert_eq!(
            build_error(
                &task(json!({})),
                sources_with("static", KeyMaterial::String("x".into()))
            ),
            "the inventory's become key must be a login_password key"
        );
        let job = build(
            &task(json!({})),
            sources_with("file", login_password("a", "b")),
        );
        assert!(matches!(&job.inventory, Some(Inventory::File(path)) if path == "hosts.ini"));
        let mut empty_file = sources(template("ansible"));
        empty_file.inventory = Some(inventory("file", " "));
        assert!(
            build_error(&task(json!({})), empty_file).contains("a file inventory without a path")
        );

        let mut bad_answers = sources(template("ansible"));
        bad_answers.secret_answers = Some("[1]".into());
        assert_eq!(
            build_error(&task(json!({})), bad_answers),
            "the task's secret answers must be a JSON object"
        );
        assert_eq!(
            build_error(
                &task(json!({"environment": "{"})),
                sources(template("ansible"))
            )
            .split(':')
            .next(),
            Some("the task's environment is not valid JSON")
        );
    }
}
