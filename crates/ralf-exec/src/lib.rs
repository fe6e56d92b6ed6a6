//! ralf's executor: runs one task, with no database and no HTTP, so the server's local executor
//! and a remote `ralf runner` call the same code.
//!
//! Given a [`Job`] (everything about the task, secrets decrypted; `ralf_core::job`, re-exported
//! here), [`run`] fetches the
//! repository into a cached bare clone and checks the exact commit out into the task's private
//! directory (`git` command line; see `git`), writes keys, passwords, the inventory and the extra
//! vars to 0600 files that are deleted when the task ends, builds the app's command line
//! (bash, python, ansible, terraform, tofu; see `apps`) and runs each command in its own process
//! group under the task's [`Control`] and time limit. Every output line, git's and ralf's own
//! included, is decoded lossily, has the task's secrets replaced by `**********`, is stamped with
//! its time and handed to an [`OutputSink`]. The result is an [`Outcome`]; a Terraform plan that
//! needs a confirmation stays on disk behind a [`PlanHandle`] until [`apply_plan`] or
//! [`discard_plan`].
//!
//! A task's processes get an environment built from nothing: `PATH`, a few variables of the
//! server ([`ExecConfig::pass_env`]), the app's own and the job's `env` — never the server's
//! configuration or secrets. The app runs in a sandbox (see `sandbox`) as an unprivileged
//! user that sees nothing of the server but its own task; where the sandbox cannot run, tasks
//! fail saying why, unless [`SandboxSettings::allow_unsandboxed`] is set ([`Isolation`]).
//! [`remove_leftovers`] ends what a crashed server or runner left behind.

mod apps;
mod config;
mod confine;
mod control;
mod git;
mod output;
mod process;
mod queue;
mod read;
mod sandbox;
mod workspace;

use std::ffi::OsString;

use tokio::time::Instant;

pub use apps::PlanHandle;
pub use config::{
    DEFAULT_PASS_ENV, DEFAULT_TASK_GID, DEFAULT_TASK_UID, ExecConfig, SandboxSettings,
};
pub use confine::check_repository_url;
pub use control::{Control, StopRequest};
// What the executor takes and reports: plain data in `ralf-core`, which the server's dispatcher
// and the runner's wire share.
pub use git::NewCommit;
pub use output::{MAX_LINE, MIN_SECRET_LEN, OutputLine, OutputSink};
pub use queue::{LINE_COST, QUEUED_BYTES, QueueReceiver, QueueSender, Room, output_queue};
pub use ralf_core::job::{
    AnsibleOptions, App, CheckoutInfo, Credential, Inventory, Job, LoginPassword, RepositorySource,
    SshKey, TerraformOptions, VaultPassword,
};
pub use ralf_core::redact::MASK;
pub use read::{RepositoryRead, commit_to_repository, read_repository, remote_head};
pub use sandbox::Isolation;
pub use workspace::{Leftovers, remove_leftovers};

use apps::Planned;
use output::{Masker, Out};
use process::{Abort, Ctx};
use workspace::TaskDir;

/// The variable that tells a catalog step's task where to leave its report
/// ([`Job::step_report`]).
pub const STEP_REPORT_ENV: &str = "RALF_STEP_REPORT";

/// The most of a step report that is read back (one byte more shows it is larger).
pub const MAX_STEP_REPORT_BYTES: usize = 64 * 1024;

/// How a task ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Everything ran and exited with code 0.
    Success,
    /// Something failed; the reason (also the task's last output line, secrets masked).
    Failed(String),
    /// Stopped through its [`Control`].
    Stopped,
    /// Its time limit was reached.
    TimedOut,
    /// Terraform/OpenTofu planned changes and waits for a confirmation ([`apply_plan`]) or a
    /// rejection ([`discard_plan`]).
    WaitingConfirmation(PlanHandle),
}

impl Outcome {
    /// The line of ralf's own that follows the task's output for this outcome, where one does:
    /// why a timed-out task was stopped, that a plan waits. (A failure's reason is already the
    /// last line.) The server and `ralf runner` both write it.
    pub fn closing_line(&self, job: &Job) -> Option<String> {
        match self {
            Outcome::TimedOut => Some(format!(
                "The task ran longer than its template allows ({} s) and was stopped",
                job.timeout.map_or(0, |t| t.as_secs())
            )),
            Outcome::WaitingConfirmation(_) => {
                Some("The plan waits for a confirmation (confirm or reject the task)".into())
            }
            _ => None,
        }
    }
}

/// Runs a task to its end: checkout, the app, cleanup. Never panics on a task's failure and
/// never leaves a process of the task running; the task's directory is removed unless a plan
/// waits for its confirmation (its secret files are removed in any case).
pub async fn run(
    job: &Job,
    config: &ExecConfig,
    sink: &dyn OutputSink,
    control: &Control,
) -> Outcome {
    let out = Out::new(sink, masker(job));
    let mut ctx = context(job, config, &out, control);
    let isolation = Isolation::of(config);
    match &isolation {
        Isolation::Refused { why } => {
            return finish(
                &out,
                Err(Abort::Failed(format!(
                    "The task was not run: this machine cannot sandbox tasks: {why} (the \
                     setting allow_unsandboxed_tasks allows running them without a sandbox)"
                ))),
            );
        }
        Isolation::Unsandboxed { why } => out.say(format!(
            "Running without a sandbox, as the server's user (allow_unsandboxed_tasks): {why}"
        )),
        Isolation::Sandboxed(_) => {}
    }
    let task = match TaskDir::create(config, job.task_id).await {
        Ok(task) => task,
        Err(e) => {
            return finish(
                &out,
                Err(Abort::Failed(format!(
                    "cannot create the task's directory: {e}"
                ))),
            );
        }
    };
    let with_report;
    let job = if job.step_report {
        with_report = match offer_step_report(job, &task) {
            Ok(job) => job,
            Err(why) => return finish(&out, Err(Abort::Failed(why))),
        };
        &with_report
    } else {
        job
    };
    enter(&mut ctx, &isolation, config, job, &task);
    let mut pin = None;
    let result = run_task(&ctx, job, &task, &mut pin).await;
    task.remove_secrets().await;
    let outcome = finish(&out, result);
    if let Outcome::WaitingConfirmation(_) = outcome {
        task.disarm();
    } else {
        hand_step_report(job, &task, &out, sink);
        task.remove().await;
        if let Some(pin) = pin {
            pin.release().await;
        }
    }
    outcome
}

async fn run_task(
    ctx: &Ctx<'_>,
    job: &Job,
    task: &TaskDir,
    pin: &mut Option<git::Pin>,
) -> Result<Outcome, Abort> {
    apps::validate(job)?;
    ctx.config
        .check_repository_url(&job.repository.url)
        .map_err(Abort::Failed)?;
    let checkout = git::checkout(ctx, task, job.task_id, &job.repository).await?;
    *pin = Some(checkout.pin);
    let cwd = confine_paths(job, &checkout.dir)?;
    match job.app {
        App::Bash | App::Python => apps::script(ctx, job, &cwd).await?,
        App::Ansible => apps::ansible(ctx, job, task, &cwd).await?,
        App::Terraform | App::Tofu => match apps::terraform(ctx, job, task, &cwd).await? {
            Planned::NoChanges | Planned::Applied => {}
            Planned::Waiting(plan) => return Ok(Outcome::WaitingConfirmation(plan)),
        },
    }
    Ok(Outcome::Success)
}

/// The working directory, after checking that it and the paths the job names in it (playbook,
/// script or Terraform directory; inventory file) stay inside the checkout (see `confine`).
fn confine_paths(job: &Job, checkout: &std::path::Path) -> Result<std::path::PathBuf, Abort> {
    let wd = job
        .working_directory
        .as_deref()
        .map(str::trim)
        .unwrap_or_default();
    let cwd = confine::directory(checkout, Some(wd), "working directory")?;
    let playbook = match job.app {
        App::Ansible => "playbook",
        App::Bash | App::Python => "script",
        App::Terraform | App::Tofu => "directory",
    };
    if !job.playbook.trim().is_empty() {
        confine::path(checkout, &cwd, wd, &job.playbook, playbook)?;
    }
    if let Some(Inventory::File(file)) = &job.inventory {
        confine::path(checkout, &cwd, wd, file, "inventory file")?;
    }
    Ok(cwd)
}

/// Applies exactly the plan that [`run`] saved (after the task's confirmation), then removes the
/// task's directory. `job` is the same job (its environment reaches `apply`; its time limit
/// counts again from here).
pub async fn apply_plan(
    job: &Job,
    config: &ExecConfig,
    sink: &dyn OutputSink,
    control: &Control,
    plan: PlanHandle,
) -> Outcome {
    let out = Out::new(sink, masker(job));
    let mut ctx = context(job, config, &out, control);
    let isolation = Isolation::of(config);
    if let Isolation::Refused { why } = &isolation {
        return finish(
            &out,
            Err(Abort::Failed(format!(
                "The plan was not applied: this machine cannot sandbox tasks: {why}"
            ))),
        );
    }
    if plan.task_id != job.task_id {
        return finish(
            &out,
            Err(Abort::Failed(format!(
                "the plan belongs to task {}, not to task {}",
                plan.task_id, job.task_id
            ))),
        );
    }
    let task = TaskDir::existing(config, job.task_id);
    let with_report;
    let job = if job.step_report {
        with_report = match offer_step_report(job, &task) {
            Ok(job) => job,
            Err(why) => return finish(&out, Err(Abort::Failed(why))),
        };
        &with_report
    } else {
        job
    };
    enter(&mut ctx, &isolation, config, job, &task);
    let ctx = ctx;
    let result = async {
        let plan_file = task.plan_dir().join("tfplan");
        if !plan_file.is_file() {
            return Err(Abort::Failed(format!(
                "the saved plan of task {} is gone",
                job.task_id
            )));
        }
        let cwd = match job.working_directory.as_deref().map(str::trim) {
            Some(wd) if !wd.is_empty() => task.checkout().join(wd),
            _ => task.checkout(),
        };
        let dir = apps::tf_dir(&cwd, job);
        let program = ctx.find(&plan.program)?;
        out.say("Plan confirmed: applying it");
        apps::apply(&ctx, job, &plan.program, &program, &dir, &plan_file).await?;
        Ok(Outcome::Success)
    }
    .await;
    let outcome = finish(&out, result);
    hand_step_report(job, &task, &out, sink);
    task.remove().await;
    git::Pin::new(config, &plan.cache_key, plan.task_id)
        .release()
        .await;
    outcome
}

/// A catalog step's job (docs/catalog.md) with `$RALF_STEP_REPORT` naming a file in the
/// task's own `report/` directory (made here; the sandbox lets the task write it).
fn offer_step_report(job: &Job, task: &TaskDir) -> Result<Job, String> {
    task.make_report_dir()
        .map_err(|e| format!("cannot create the step report's directory: {e}"))?;
    let mut job = job.clone();
    job.env.retain(|(name, _)| name != STEP_REPORT_ENV);
    job.env.push((
        STEP_REPORT_ENV.to_owned(),
        task.step_report_file().to_string_lossy().into_owned(),
    ));
    Ok(job)
}

/// Reads the report a catalog step's task left (before its directory goes) and hands it to
/// the sink, secrets masked; a report that cannot be read is named in the task's output.
fn hand_step_report(job: &Job, task: &TaskDir, out: &Out<'_>, sink: &dyn OutputSink) {
    if !job.step_report {
        return;
    }
    match task.read_step_report(MAX_STEP_REPORT_BYTES) {
        None => {}
        Some(Ok(bytes)) => {
            let masked = out.masker.mask(&bytes);
            sink.step_report(&String::from_utf8_lossy(&masked));
        }
        Some(Err(why)) => out.say(format!("The step report is ignored: {why}")),
    }
}

/// Throws a waiting plan away (the task was rejected): removes the task's directory.
pub async fn discard_plan(config: &ExecConfig, plan: PlanHandle) {
    TaskDir::existing(config, plan.task_id).remove().await;
    git::Pin::new(config, &plan.cache_key, plan.task_id)
        .release()
        .await;
}

fn path_of(config: &ExecConfig) -> OsString {
    config
        .path_env
        .clone()
        .or_else(|| std::env::var_os("PATH"))
        .unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into())
}

/// Gives the task's context its directory: where its process groups are recorded and, when
/// tasks are sandboxed, what its sandbox shows.
fn enter(ctx: &mut Ctx<'_>, isolation: &Isolation, config: &ExecConfig, job: &Job, task: &TaskDir) {
    ctx.group_file = Some(task.group_file());
    if let Isolation::Sandboxed(tools) = isolation {
        ctx.sandbox = Some(sandbox::Sandbox {
            tools: tools.clone(),
            view: sandbox::View {
                task_root: task.root.clone(),
                cache_objects: std::path::absolute(git::cache_dir(
                    config,
                    &job.repository.cache_key,
                ))
                .unwrap_or_default()
                .join("objects"),
            },
        });
    }
}

fn context<'a>(
    job: &Job,
    config: &'a ExecConfig,
    out: &'a Out<'a>,
    control: &'a Control,
) -> Ctx<'a> {
    Ctx {
        out,
        control,
        config,
        deadline: job.timeout.map(|t| Instant::now() + t),
        timeout: job.timeout,
        path: path_of(config),
        sandbox: None,
        group_file: None,
    }
}

/// Masks the job's secrets and every credential it carries.
fn masker(job: &Job) -> Masker {
    let mut secrets: Vec<&str> = job.secrets.iter().map(String::as_str).collect();
    fn credential<'a>(secrets: &mut Vec<&'a str>, c: &'a Credential) {
        match c {
            Credential::LoginPassword(lp) => secrets.push(&lp.password),
            Credential::Ssh(key) => {
                if let Some(p) = &key.passphrase {
                    secrets.push(p);
                }
                // The key's body, line by line (a script printing the key file shows nothing).
                secrets.extend(
                    key.private_key
                        .lines()
                        .map(str::trim)
                        .filter(|l| l.len() >= 16 && !l.starts_with("-----")),
                );
            }
        }
    }
    if let Some(c) = &job.repository.auth {
        credential(&mut secrets, c);
    }
    if let Some(c) = &job.ansible.ssh_key {
        credential(&mut secrets, c);
    }
    if let Some(b) = &job.ansible.become_key {
        secrets.push(&b.password);
    }
    secrets.extend(
        job.ansible
            .vault_passwords
            .iter()
            .map(|v| v.password.as_str()),
    );
    Masker::new(secrets)
}

/// The outcome of a result; a failure's reason becomes the last output line.
fn finish(out: &Out<'_>, result: Result<Outcome, Abort>) -> Outcome {
    match result {
        Ok(outcome) => outcome,
        Err(Abort::Failed(why)) => {
            let why = String::from_utf8_lossy(&out.masker.mask(why.as_bytes())).into_owned();
            out.say(&why);
            Outcome::Failed(why)
        }
        Err(Abort::Stopped) => Outcome::Stopped,
        Err(Abort::TimedOut) => Outcome::TimedOut,
    }
}
