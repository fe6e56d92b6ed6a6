//! What to run: one task described completely, with every secret already decrypted, and the
//! commit it ran ([`CheckoutInfo`]).
//!
//! The server builds a [`Job`] from its stored template, task, repository, inventory,
//! environment and keys; its own executor (`ralf-exec`) runs it, or a remote runner receives the
//! same value over the wire (every type here is serde-serialisable, see [`crate::runner_wire`]).
//! `Debug` output never shows a secret value.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::redact::redact_url;

/// The kind of program a template runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum App {
    /// `ansible-playbook`.
    Ansible,
    /// `terraform`: `init`, `plan`, then `apply` of the saved plan.
    Terraform,
    /// OpenTofu (`tofu`, or `terraform` when `tofu` is not installed), like [`App::Terraform`].
    Tofu,
    /// `bash <script> <arguments>`.
    Bash,
    /// `python3 <script> <arguments>`.
    Python,
}

impl App {
    /// Semaphore's name of the app (`ansible`, `terraform`, `tofu`, `bash`, `python`).
    pub fn as_str(self) -> &'static str {
        match self {
            App::Ansible => "ansible",
            App::Terraform => "terraform",
            App::Tofu => "tofu",
            App::Bash => "bash",
            App::Python => "python",
        }
    }
}

/// A login and a password (an HTTPS git login, an SSH connection password, a `become` password).
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginPassword {
    /// The user name; may be empty.
    pub login: String,
    /// The password; may be empty.
    pub password: String,
}

impl fmt::Debug for LoginPassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoginPassword")
            .field("login", &self.login)
            .field("password", &Redacted(&self.password))
            .finish()
    }
}

/// An SSH private key (OpenSSH or PEM text), its passphrase and the user to log in as.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SshKey {
    /// The private key's text.
    pub private_key: String,
    /// The key's passphrase, when it is encrypted.
    #[serde(default)]
    pub passphrase: Option<String>,
    /// The user to log in as (ansible's `--user`; for git, only a default under the URL's user).
    #[serde(default)]
    pub login: Option<String>,
}

impl fmt::Debug for SshKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SshKey")
            .field("private_key", &Redacted(&self.private_key))
            .field("passphrase", &self.passphrase.as_deref().map(Redacted))
            .field("login", &self.login)
            .finish()
    }
}

/// A credential from the key store: the two kinds that can authenticate a connection.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Credential {
    /// Login and password (HTTPS git; SSH password authentication for ansible).
    LoginPassword(LoginPassword),
    /// An SSH key.
    Ssh(SshKey),
}

/// Where the task's files come from.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepositorySource {
    /// `file://...`, an absolute path, `https://...`, `ssh://...` or `user@host:path`.
    pub url: String,
    /// The branch to check out (its tip at fetch time). A tag name works too. Empty: the
    /// remote's default branch.
    #[serde(default)]
    pub branch: String,
    /// Check out exactly this commit (hex, at least 4 digits) instead of the branch's tip. It
    /// must be reachable from the branch (or tag; the remote's default branch when `branch` is
    /// empty): a commit only on another branch, or only behind a ref that is no branch or tag
    /// (`refs/pull/1/head`), fails the task.
    #[serde(default)]
    pub commit: Option<String>,
    /// How to authenticate to the remote; `None` uses no credential of ralf's.
    #[serde(default)]
    pub auth: Option<Credential>,
    /// One cached clone is kept per key (e.g. the repository's id); tasks of the same key share
    /// its objects but never its working files.
    pub cache_key: String,
}

impl fmt::Debug for RepositorySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RepositorySource")
            .field("url", &redact_url(&self.url))
            .field("branch", &self.branch)
            .field("commit", &self.commit)
            .field("auth", &self.auth)
            .field("cache_key", &self.cache_key)
            .finish()
    }
}

/// The inventory of an ansible task.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "value", rename_all = "snake_case")]
pub enum Inventory {
    /// INI text, written to a 0600 file.
    Static(String),
    /// YAML text, written to a 0600 `.yml` file.
    StaticYaml(String),
    /// A path in the repository, relative to the working directory (it may not leave the
    /// checkout).
    File(String),
}

impl fmt::Debug for Inventory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Inventory::Static(text) => write!(f, "Static({} bytes)", text.len()),
            Inventory::StaticYaml(text) => write!(f, "StaticYaml({} bytes)", text.len()),
            Inventory::File(path) => f.debug_tuple("File").field(path).finish(),
        }
    }
}

/// An ansible vault password: `name` empty means `--vault-password-file`, otherwise
/// `--vault-id <name>@<file>`.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VaultPassword {
    /// The vault id's label (must not contain `@`); may be empty.
    #[serde(default)]
    pub name: String,
    /// The password.
    pub password: String,
}

impl fmt::Debug for VaultPassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VaultPassword")
            .field("name", &self.name)
            .field("password", &Redacted(&self.password))
            .finish()
    }
}

/// Options that only ansible uses.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AnsibleOptions {
    /// `--limit` (joined with commas).
    pub limit: Vec<String>,
    /// `--tags` (joined with commas).
    pub tags: Vec<String>,
    /// `--skip-tags` (joined with commas).
    pub skip_tags: Vec<String>,
    /// `--check` (Semaphore's `dry_run`).
    pub check: bool,
    /// `--diff`.
    pub diff: bool,
    /// `-vvvv`.
    pub debug: bool,
    /// The inventory's connection credential: an SSH key (`--private-key`) or a login and
    /// password (`--connection-password-file`); its login becomes `--user`.
    pub ssh_key: Option<Credential>,
    /// The inventory's `become` credential: `--become-user` and `--become-password-file`.
    pub become_key: Option<LoginPassword>,
    /// Vault passwords, one file each.
    pub vault_passwords: Vec<VaultPassword>,
}

/// Options that only Terraform and OpenTofu use.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TerraformOptions {
    /// Select (or create) this workspace before planning; `None` keeps `default`.
    pub workspace: Option<String>,
    /// `plan -destroy`.
    pub destroy: bool,
    /// `init -upgrade`.
    pub upgrade: bool,
    /// Apply the plan at once instead of waiting for a confirmation.
    pub auto_approve: bool,
    /// Input variables, one `-var name=value` each.
    pub vars: Vec<(String, String)>,
    /// Keeps the local state (`terraform.tfstate`, `terraform.tfstate.d/`) between tasks in
    /// `work_dir/state/<key>/` (e.g. the template's id): each task's checkout is new, so without
    /// it a configuration with no remote backend starts from an empty state every time. Tasks
    /// with the same key must not run at the same time (one task per template at a time).
    pub state_key: Option<String>,
}

impl fmt::Debug for TerraformOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TerraformOptions")
            .field("workspace", &self.workspace)
            .field("destroy", &self.destroy)
            .field("upgrade", &self.upgrade)
            .field("auto_approve", &self.auto_approve)
            .field("vars", &Keys(self.vars.iter().map(|(k, _)| k.as_str())))
            .field("state_key", &self.state_key)
            .finish()
    }
}

/// One task, ready to run.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    /// The task's id; names its directory `work_dir/tasks/<task_id>`.
    pub task_id: i64,
    /// What runs the playbook.
    pub app: App,
    /// Where the files come from.
    pub repository: RepositorySource,
    /// The playbook (ansible), the script (bash, python) or the subdirectory (terraform, tofu;
    /// empty: the working directory itself), relative to the working directory.
    pub playbook: String,
    /// A subdirectory of the checkout to run in; `None` or empty: the checkout's root.
    #[serde(default)]
    pub working_directory: Option<String>,
    /// Extra command-line arguments (the template's, then the task's).
    #[serde(default)]
    pub arguments: Vec<String>,
    /// Environment variables of the app (environment, secrets of type env, survey answers
    /// targeted at the environment). They override the few variables passed from the server's
    /// own environment (`ralf_exec::ExecConfig::pass_env`).
    #[serde(default)]
    pub env: Vec<(String, String)>,
    /// Ansible's extra vars (environment JSON, survey answers, secret vars), passed as
    /// `--extra-vars @<0600 json file>`.
    #[serde(default)]
    pub extra_vars: Map<String, Value>,
    /// The inventory (ansible only).
    #[serde(default)]
    pub inventory: Option<Inventory>,
    /// Ansible's options.
    #[serde(default)]
    pub ansible: AnsibleOptions,
    /// Terraform's and OpenTofu's options.
    #[serde(default)]
    pub terraform: TerraformOptions,
    /// Every secret value of the task, replaced by `**********` in all output. The credentials
    /// in `repository.auth` and `ansible` are masked too without being listed here.
    #[serde(default)]
    pub secrets: Vec<String>,
    /// The task's time limit, from the start of the checkout to the end of the app.
    #[serde(default)]
    pub timeout: Option<Duration>,
    /// A step of a catalog rollout: the task may leave a report at the path in
    /// `$RALF_STEP_REPORT`, handed to [`crate::OutputSink::step_report`] when it ends.
    #[serde(default)]
    pub step_report: bool,
}

impl Job {
    /// A job with no arguments, variables, inventory, options, secrets or time limit.
    pub fn new(
        task_id: i64,
        app: App,
        repository: RepositorySource,
        playbook: impl Into<String>,
    ) -> Job {
        Job {
            task_id,
            app,
            repository,
            playbook: playbook.into(),
            working_directory: None,
            arguments: Vec::new(),
            env: Vec::new(),
            extra_vars: Map::new(),
            inventory: None,
            ansible: AnsibleOptions::default(),
            terraform: TerraformOptions::default(),
            secrets: Vec::new(),
            timeout: None,
            step_report: false,
        }
    }
}

impl fmt::Debug for Job {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Job")
            .field("task_id", &self.task_id)
            .field("app", &self.app)
            .field("repository", &self.repository)
            .field("playbook", &self.playbook)
            .field("working_directory", &self.working_directory)
            .field("arguments", &self.arguments)
            .field("env", &Keys(self.env.iter().map(|(k, _)| k.as_str())))
            .field(
                "extra_vars",
                &Keys(self.extra_vars.keys().map(String::as_str)),
            )
            .field("inventory", &self.inventory)
            .field("ansible", &self.ansible)
            .field("terraform", &self.terraform)
            .field("secrets", &format_args!("[{} values]", self.secrets.len()))
            .field("timeout", &self.timeout)
            .field("step_report", &self.step_report)
            .finish()
    }
}

/// The commit a task runs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckoutInfo {
    /// The full commit hash.
    pub commit_hash: String,
    /// The commit message's first line.
    pub commit_message: String,
}

/// Shows that a value is there, never the value.
struct Redacted<'a>(&'a str);

impl fmt::Debug for Redacted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            f.write_str("\"\"")
        } else {
            f.write_str("<redacted>")
        }
    }
}

/// Shows the names of name/value pairs, with the values redacted.
struct Keys<I>(I);

impl<'a, I: Iterator<Item = &'a str> + Clone> fmt::Debug for Keys<I> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.0.clone().map(|k| (k, Redacted("x"))))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_shows_no_secret() {
        let mut job = Job::new(
            1,
            App::Ansible,
            RepositorySource {
                url: "https://bob:url-secret@example.com/r.git".into(),
                branch: "main".into(),
                commit: None,
                auth: Some(Credential::LoginPassword(LoginPassword {
                    login: "bob".into(),
                    password: "auth-secret".into(),
                })),
                cache_key: "1".into(),
            },
            "site.yml",
        );
        job.env = vec![("TOKEN".into(), "env-secret".into())];
        job.extra_vars
            .insert("password".into(), Value::String("var-secret".into()));
        job.inventory = Some(Inventory::Static("h ansible_password=inv-secret".into()));
        job.ansible.ssh_key = Some(Credential::Ssh(SshKey {
            private_key: "key-secret".into(),
            passphrase: Some("phrase-secret".into()),
            login: None,
        }));
        job.ansible.vault_passwords = vec![VaultPassword {
            name: "v".into(),
            password: "vault-secret".into(),
        }];
        job.terraform.vars = vec![("k".into(), "tf-secret".into())];
        job.secrets = vec!["listed-secret".into()];
        let debug = format!("{job:?}");
        assert!(!debug.contains("-secret"), "{debug}");
        assert!(debug.contains("TOKEN") && debug.contains("password"));
    }
}
