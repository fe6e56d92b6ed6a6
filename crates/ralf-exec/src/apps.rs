//! The command lines of the apps, run in the task's checkout.
//!
//! - bash: `bash <script> <arguments...>`; python: `python3 <script> <arguments...>`
//!   (`PYTHONUNBUFFERED=1`).
//! - ansible: `ansible-playbook -i <inventory> [--user u] [--private-key f |
//!   --connection-password-file f] [--become-user u] [--become-password-file f]
//!   [--vault-id name@f | --vault-password-file f]... [--limit=..] [--tags=..] [--skip-tags=..]
//!   [--check] [--diff] [-vvvv] [--extra-vars @f] <arguments...> <playbook>`, every file 0600
//!   in the task's `.ralf/`; `PYTHONUNBUFFERED=1`, `ANSIBLE_FORCE_COLOR=1`,
//!   `ANSIBLE_HOST_KEY_CHECKING=False`, and `ANSIBLE_INVENTORY_UNPARSED_FAILED=True` when there
//!   is an inventory.
//! - terraform / tofu: `init -input=false [-upgrade]`, `workspace select|new <w>`,
//!   `plan -input=false -detailed-exitcode -out=<plan> [-destroy] [-var k=v]...
//!   <arguments...>`, then `apply -input=false <plan>` at once or after the confirmation;
//!   `TF_IN_AUTOMATION=1`, `TF_INPUT=0`, `CHECKPOINT_DISABLE=1`.
//!
//! Paths in the job (script, playbook, inventory file, terraform directory) are relative to the
//! working directory: the checkout's root or its `working_directory`.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::git::key_bytes;
use crate::process::{self, Abort, Ctx, Spec, Status};
use crate::workspace::{TaskDir, copy_tf_state, make_private_dir, safe_name};
use ralf_core::job::{App, Credential, Inventory, Job};

/// Sets `name` in `env`, replacing an earlier value.
fn set_env(env: &mut Vec<(OsString, OsString)>, name: &str, value: impl Into<OsString>) {
    let value = value.into();
    match env.iter_mut().find(|(n, _)| n == name) {
        Some(entry) => entry.1 = value,
        None => env.push((name.into(), value)),
    }
}

/// The app's environment: the base environment, the app's own variables, then the job's
/// (which win).
fn app_env(ctx: &Ctx<'_>, job: &Job, own: &[(&str, OsString)]) -> Vec<(OsString, OsString)> {
    let mut env = ctx.base_env();
    for (name, value) in own {
        set_env(&mut env, name, value.clone());
    }
    for (name, value) in &job.env {
        set_env(&mut env, name, value.as_str());
    }
    env
}

/// Refuses what would make a broken or ambiguous command line, with a clear message.
pub(crate) fn validate(job: &Job) -> Result<(), Abort> {
    for (name, value) in &job.env {
        if name.is_empty() || name.contains('=') || name.contains('\0') || value.contains('\0') {
            return Err(Abort::Failed(format!(
                "invalid environment variable name '{name}'"
            )));
        }
    }
    for (name, _) in &job.terraform.vars {
        if name.is_empty() || name.contains('=') {
            return Err(Abort::Failed(format!(
                "invalid terraform variable name '{name}'"
            )));
        }
    }
    if let Some(w) = &job.terraform.workspace
        && w.starts_with('-')
    {
        return Err(Abort::Failed(format!(
            "invalid terraform workspace name '{w}'"
        )));
    }
    for vault in &job.ansible.vault_passwords {
        if vault.name.contains('@') {
            return Err(Abort::Failed(format!(
                "invalid vault name '{}': it must not contain '@'",
                vault.name
            )));
        }
    }
    Ok(())
}

/// The working directory's file `path`, which must exist.
fn file_in(cwd: &Path, path: &str, what: &str) -> Result<PathBuf, Abort> {
    if path.trim().is_empty() {
        return Err(Abort::Failed(format!("no {what} given")));
    }
    let full = cwd.join(path);
    if full.is_file() {
        Ok(full)
    } else {
        Err(Abort::Failed(format!(
            "{what} '{path}' not found in the repository"
        )))
    }
}

/// `bash <script> <args>` or `python3 <script> <args>`.
pub(crate) async fn script(ctx: &Ctx<'_>, job: &Job, cwd: &Path) -> Result<(), Abort> {
    let (name, own): (&str, Vec<(&str, OsString)>) = match job.app {
        App::Python => ("python3", vec![("PYTHONUNBUFFERED", "1".into())]),
        _ => ("bash", Vec::new()),
    };
    let program = ctx.find(name)?;
    file_in(cwd, &job.playbook, "script")?;
    let spec = Spec::new(name, program, cwd)
        .arg(&job.playbook)
        .args(&job.arguments)
        .env(app_env(ctx, job, &own))
        .sandboxed()
        .echo();
    process::run(ctx, &spec, None).await?.check(name)
}

/// The files ansible-playbook is given.
#[derive(Default)]
pub(crate) struct AnsibleFiles {
    pub inventory: Option<PathBuf>,
    pub extra_vars: Option<PathBuf>,
    pub private_key: Option<PathBuf>,
    pub connection_password: Option<PathBuf>,
    pub become_password: Option<PathBuf>,
    /// (vault id label, password file).
    pub vaults: Vec<(String, PathBuf)>,
}

/// ansible-playbook's arguments.
pub(crate) fn ansible_args(job: &Job, files: &AnsibleFiles) -> Vec<OsString> {
    let mut args: Vec<OsString> = Vec::new();
    let flag_path = |args: &mut Vec<OsString>, flag: &str, path: &Path| {
        args.push(flag.into());
        args.push(path.into());
    };
    let opts = &job.ansible;
    if let Some(inventory) = &files.inventory {
        flag_path(&mut args, "-i", inventory);
    }
    let user = match &opts.ssh_key {
        Some(Credential::Ssh(key)) => key.login.clone(),
        Some(Credential::LoginPassword(lp)) => Some(lp.login.clone()),
        None => None,
    };
    if let Some(user) = user.filter(|u| !u.is_empty()) {
        args.push("--user".into());
        args.push(user.into());
    }
    if let Some(f) = &files.private_key {
        flag_path(&mut args, "--private-key", f);
    }
    if let Some(f) = &files.connection_password {
        flag_path(&mut args, "--connection-password-file", f);
    }
    if let Some(become_key) = &opts.become_key
        && !become_key.login.is_empty()
    {
        args.push("--become-user".into());
        args.push(become_key.login.clone().into());
    }
    if let Some(f) = &files.become_password {
        flag_path(&mut args, "--become-password-file", f);
    }
    for (name, file) in &files.vaults {
        if name.is_empty() {
            flag_path(&mut args, "--vault-password-file", file);
        } else {
            let mut id = OsString::from(format!("{name}@"));
            id.push(file);
            args.push("--vault-id".into());
            args.push(id);
        }
    }
    for (flag, values) in [
        ("--limit", &opts.limit),
        ("--tags", &opts.tags),
        ("--skip-tags", &opts.skip_tags),
    ] {
        let values: Vec<&str> = values
            .iter()
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
            .collect();
        if !values.is_empty() {
            args.push(format!("{flag}={}", values.join(",")).into());
        }
    }
    if opts.check {
        args.push("--check".into());
    }
    if opts.diff {
        args.push("--diff".into());
    }
    if opts.debug {
        args.push("-vvvv".into());
    }
    if let Some(f) = &files.extra_vars {
        let mut at = OsString::from("@");
        at.push(f);
        args.push("--extra-vars".into());
        args.push(at);
    }
    args.extend(job.arguments.iter().map(OsString::from));
    args.push(job.playbook.clone().into());
    args
}

/// Runs ansible-playbook.
pub(crate) async fn ansible(
    ctx: &Ctx<'_>,
    job: &Job,
    task: &TaskDir,
    cwd: &Path,
) -> Result<(), Abort> {
    let program = ctx.find("ansible-playbook")?;
    file_in(cwd, &job.playbook, "playbook")?;
    let io = |e: std::io::Error| Abort::Failed(format!("cannot write the task's files: {e}"));
    let mut files = AnsibleFiles::default();
    let mut own: Vec<(&str, OsString)> = vec![
        ("PYTHONUNBUFFERED", "1".into()),
        ("ANSIBLE_FORCE_COLOR", "1".into()),
        ("ANSIBLE_HOST_KEY_CHECKING", "False".into()),
    ];
    files.inventory = match &job.inventory {
        None => None,
        Some(Inventory::Static(text)) => {
            Some(task.secret_file("inventory", text.as_bytes()).map_err(io)?)
        }
        Some(Inventory::StaticYaml(text)) => Some(
            task.secret_file("inventory.yml", text.as_bytes())
                .map_err(io)?,
        ),
        Some(Inventory::File(path)) => {
            let full = cwd.join(path);
            if !full.exists() {
                return Err(Abort::Failed(format!(
                    "inventory file '{path}' not found in the repository"
                )));
            }
            Some(full)
        }
    };
    if files.inventory.is_some() {
        // Without it ansible only warns about an inventory it cannot parse and runs the play
        // against no hosts at all, which ends in success.
        own.push(("ANSIBLE_INVENTORY_UNPARSED_FAILED", "True".into()));
    }
    if !job.extra_vars.is_empty() {
        let json = serde_json::to_vec(&job.extra_vars)
            .map_err(|e| Abort::Failed(format!("cannot encode the extra vars: {e}")))?;
        files.extra_vars = Some(task.secret_file("extra-vars.json", &json).map_err(io)?);
    }
    match &job.ansible.ssh_key {
        None => {}
        Some(Credential::Ssh(key)) => {
            files.private_key = Some(
                task.secret_file("ssh-key", &key_bytes(&key.private_key))
                    .map_err(io)?,
            );
            if let Some(passphrase) = key.passphrase.as_deref().filter(|p| !p.is_empty()) {
                let file = task
                    .secret_file("ssh-passphrase", passphrase.as_bytes())
                    .map_err(io)?;
                let script = task
                    .script(
                        "ssh-askpass",
                        &format!(
                            "#!/bin/sh\ncat {}\n",
                            process::shell_quote(&file.to_string_lossy())
                        ),
                    )
                    .map_err(io)?;
                own.push(("SSH_ASKPASS", script.into()));
                own.push(("SSH_ASKPASS_REQUIRE", "force".into()));
            }
        }
        Some(Credential::LoginPassword(lp)) if !lp.password.is_empty() => {
            files.connection_password = Some(
                task.secret_file("connection-password", lp.password.as_bytes())
                    .map_err(io)?,
            );
        }
        Some(Credential::LoginPassword(_)) => {}
    }
    if let Some(become_key) = &job.ansible.become_key
        && !become_key.password.is_empty()
    {
        files.become_password = Some(
            task.secret_file("become-password", become_key.password.as_bytes())
                .map_err(io)?,
        );
    }
    for (i, vault) in job.ansible.vault_passwords.iter().enumerate() {
        let file = task
            .secret_file(&format!("vault-password-{i}"), vault.password.as_bytes())
            .map_err(io)?;
        files.vaults.push((vault.name.clone(), file));
    }
    let spec = Spec::new("ansible-playbook", program, cwd)
        .args(ansible_args(job, &files))
        .env(app_env(ctx, job, &own))
        .sandboxed()
        .echo();
    process::run(ctx, &spec, None)
        .await?
        .check("ansible-playbook")
}

/// A saved Terraform/OpenTofu plan waiting for its confirmation: what [`crate::apply_plan`]
/// applies or [`crate::discard_plan`] throws away. The files stay in `work_dir/tasks/<id>/`;
/// the handle only names them, so a server can store it and use it after a restart.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanHandle {
    /// The task that made the plan.
    pub task_id: i64,
    /// The program that made it (`terraform` or `tofu`), which must apply it.
    pub program: String,
    /// The repository's cache key (the cache pins the plan's commit until the plan is gone).
    pub cache_key: String,
}

/// What a Terraform run came to.
pub(crate) enum Planned {
    NoChanges,
    Applied,
    Waiting(PlanHandle),
}

/// The binary of a Terraform-like app: `terraform`, or `tofu` (`terraform` when there is no
/// `tofu`).
fn tf_binary(ctx: &Ctx<'_>, app: App) -> Result<(String, PathBuf), Abort> {
    if app == App::Tofu {
        match ctx.find("tofu") {
            Ok(p) => return Ok(("tofu".into(), p)),
            Err(e) => match ctx.find("terraform") {
                Ok(p) => {
                    ctx.out
                        .say("tofu is not installed on this server; using terraform instead");
                    return Ok(("terraform".into(), p));
                }
                Err(_) => return Err(e),
            },
        }
    }
    Ok(("terraform".into(), ctx.find("terraform")?))
}

fn tf_env(ctx: &Ctx<'_>, job: &Job) -> Vec<(OsString, OsString)> {
    app_env(
        ctx,
        job,
        &[
            ("TF_IN_AUTOMATION", "1".into()),
            ("TF_INPUT", "0".into()),
            ("CHECKPOINT_DISABLE", "1".into()),
        ],
    )
}

/// Where the job's Terraform state is kept between tasks, if it is.
fn state_dir(ctx: &Ctx<'_>, job: &Job) -> Option<PathBuf> {
    let key = job.terraform.state_key.as_deref().map(str::trim)?;
    (!key.is_empty()).then(|| ctx.config.work_dir.join("state").join(safe_name(key)))
}

/// The directory Terraform runs in.
pub(crate) fn tf_dir(cwd: &Path, job: &Job) -> PathBuf {
    if job.playbook.trim().is_empty() {
        cwd.to_path_buf()
    } else {
        cwd.join(&job.playbook)
    }
}

/// `init`, workspace, `plan`, and `apply` when auto-approved.
pub(crate) async fn terraform(
    ctx: &Ctx<'_>,
    job: &Job,
    task: &TaskDir,
    cwd: &Path,
) -> Result<Planned, Abort> {
    let (name, program) = tf_binary(ctx, job.app)?;
    let dir = tf_dir(cwd, job);
    if !dir.is_dir() {
        return Err(Abort::Failed(format!(
            "directory '{}' not found in the repository",
            job.playbook
        )));
    }
    if let Some(state) = state_dir(ctx, job)
        && state.is_dir()
    {
        copy_tf_state(&state, &dir)
            .map_err(|e| Abort::Failed(format!("cannot restore the kept terraform state: {e}")))?;
        ctx.out
            .say("Restored the terraform state kept from the previous task");
    }
    let env = tf_env(ctx, job);
    let cmd = |args: Vec<OsString>| {
        Spec::new(&name, program.clone(), &dir)
            .args(args)
            .env(env.clone())
            .sandboxed()
            .echo()
    };
    let os = |args: &[&str]| args.iter().map(OsString::from).collect::<Vec<_>>();

    let mut init = os(&["init", "-input=false"]);
    if job.terraform.upgrade {
        init.push("-upgrade".into());
    }
    process::run(ctx, &cmd(init), None).await?.check(&name)?;

    if let Some(ws) = job.terraform.workspace.as_deref().map(str::trim)
        && !ws.is_empty()
        && ws != "default"
    {
        let select = Spec::new(&name, program.clone(), &dir)
            .args(["workspace", "select", ws])
            .env(env.clone())
            .sandboxed();
        let mut ignored = Vec::new();
        let exit = process::run(ctx, &select, Some(&mut ignored)).await?;
        if exit.check(&name).is_ok() {
            ctx.out.say(format!("Selected workspace {ws}"));
        } else {
            ctx.out
                .say(format!("Workspace {ws} does not exist yet: creating it"));
            process::run(ctx, &cmd(os(&["workspace", "new", ws])), None)
                .await?
                .check(&name)?;
        }
    }

    let plan_dir = task.plan_dir();
    if !plan_dir.is_dir() {
        make_private_dir(&plan_dir)
            .map_err(|e| Abort::Failed(format!("cannot create the plan directory: {e}")))?;
    }
    let plan_file = plan_dir.join("tfplan");
    let mut plan = os(&["plan", "-input=false", "-detailed-exitcode"]);
    let mut out_arg = OsString::from("-out=");
    out_arg.push(&plan_file);
    plan.push(out_arg);
    if job.terraform.destroy {
        plan.push("-destroy".into());
    }
    for (k, v) in &job.terraform.vars {
        plan.push("-var".into());
        plan.push(format!("{k}={v}").into());
    }
    plan.extend(job.arguments.iter().map(OsString::from));
    let exit = process::run(ctx, &cmd(plan), None).await?;
    match (exit.interrupted, exit.status) {
        (None, Status::Code(0)) => {
            ctx.out.say("No changes: nothing to apply");
            return Ok(Planned::NoChanges);
        }
        (None, Status::Code(2)) => {}
        _ => exit.check(&name)?,
    }
    if job.terraform.auto_approve {
        apply(ctx, job, &name, &program, &dir, &plan_file).await?;
        return Ok(Planned::Applied);
    }
    ctx.out.say("Plan saved: waiting for confirmation");
    Ok(Planned::Waiting(PlanHandle {
        task_id: job.task_id,
        program: name,
        cache_key: job.repository.cache_key.clone(),
    }))
}

/// `apply` of the saved plan; the local state is kept (when the job says so) whatever the
/// outcome, since a failed or stopped apply may have changed things too.
pub(crate) async fn apply(
    ctx: &Ctx<'_>,
    job: &Job,
    name: &str,
    program: &Path,
    dir: &Path,
    plan_file: &Path,
) -> Result<(), Abort> {
    let spec = Spec::new(name, program.to_path_buf(), dir)
        .args(["apply", "-input=false"])
        .arg(plan_file)
        .env(tf_env(ctx, job))
        .sandboxed()
        .echo();
    let result = process::run(ctx, &spec, None).await;
    if let Some(state) = state_dir(ctx, job) {
        copy_tf_state(dir, &state).map_err(|e| {
            Abort::Failed(format!(
                "cannot keep the terraform state for the next task: {e}"
            ))
        })?;
    }
    result?.check(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ralf_core::job::{AnsibleOptions, LoginPassword, RepositorySource, SshKey, VaultPassword};

    fn job() -> Job {
        let mut job = Job::new(
            7,
            App::Ansible,
            RepositorySource {
                url: "file:///r".into(),
                branch: "main".into(),
                commit: None,
                auth: None,
                cache_key: "1".into(),
            },
            "site.yml",
        );
        job.arguments = vec!["--forks=2".into()];
        job.ansible = AnsibleOptions {
            limit: vec!["web".into(), " db ".into()],
            tags: vec!["a".into()],
            skip_tags: vec![],
            check: true,
            diff: true,
            debug: true,
            ssh_key: Some(Credential::Ssh(SshKey {
                private_key: "k".into(),
                passphrase: None,
                login: Some("deploy".into()),
            })),
            become_key: Some(LoginPassword {
                login: "root".into(),
                password: "pw".into(),
            }),
            vault_passwords: vec![
                VaultPassword {
                    name: String::new(),
                    password: "v1".into(),
                },
                VaultPassword {
                    name: "prod".into(),
                    password: "v2".into(),
                },
            ],
        };
        job
    }

    #[test]
    fn ansible_command_line() {
        let p = |s: &str| Some(PathBuf::from(s));
        let files = AnsibleFiles {
            inventory: p("/t/inv"),
            extra_vars: p("/t/ev.json"),
            private_key: p("/t/key"),
            connection_password: None,
            become_password: p("/t/become"),
            vaults: vec![
                (String::new(), "/t/v0".into()),
                ("prod".into(), "/t/v1".into()),
            ],
        };
        let args: Vec<String> = ansible_args(&job(), &files)
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect();
        assert_eq!(
            args.join(" "),
            "-i /t/inv --user deploy --private-key /t/key --become-user root \
             --become-password-file /t/become --vault-password-file /t/v0 --vault-id prod@/t/v1 \
             --limit=web,db --tags=a --check --diff -vvvv --extra-vars @/t/ev.json --forks=2 \
             site.yml"
        );
    }

    #[test]
    fn refuses_ambiguous_names() {
        let mut j = job();
        j.env.push(("A=B".into(), "x".into()));
        assert!(validate(&j).is_err());
        let mut j = job();
        j.ansible.vault_passwords[1].name = "a@b".into();
        assert!(validate(&j).is_err());
        let mut j = job();
        j.terraform.workspace = Some("-chdir=/".into());
        assert!(validate(&j).is_err());
        assert!(validate(&job()).is_ok());
    }
}
