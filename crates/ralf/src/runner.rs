//! `ralf runner`: a remote executor. `register` trades a one-time registration token for the
//! runner's own credential (kept in a 0600 file); `start` polls the server for jobs over
//! HTTP(S), runs each with the same executor as the server (`ralf_exec`), streams the output
//! back in batches and reports how each task ends. The runner never holds database
//! credentials; a job's secrets exist only in its memory and in the task's own 0600 files,
//! removed when the task ends.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Subcommand};
use ralf_client::{Client, ClientConfig};
use ralf_core::TaskStatus;
use ralf_core::job::{CheckoutInfo, Job};
use ralf_core::runner_wire::{HeldTask, OutputBatch, Poll};
use ralf_exec::{
    Control, ExecConfig, LINE_COST, Outcome, OutputLine, OutputSink, PlanHandle, QUEUED_BYTES,
    QueueReceiver, QueueSender, Room, output_queue,
};
use serde::{Deserialize, Serialize};

#[derive(Subcommand)]
pub enum RunnerCommand {
    /// Trade a one-time registration token (from `POST /api/runners/{id}/registration-token`)
    /// for this runner's own credential, and store it.
    Register(RegisterArgs),
    /// Take jobs from the server and run them, until Ctrl-C or SIGTERM.
    Start(StartArgs),
}

#[derive(Args)]
pub struct RegisterArgs {
    /// The server, e.g. https://ralf.example.org.
    #[arg(long, env = "RALF_URL")]
    pub url: String,
    /// The one-time registration token.
    #[arg(long, env = "RALF_RUNNER_REGISTRATION_TOKEN")]
    pub registration_token: String,
    /// Where to keep the runner's credential (default: <config dir>/ralf/runner.json).
    #[arg(long, value_name = "FILE")]
    pub credentials: Option<PathBuf>,
}

#[derive(Args)]
pub struct StartArgs {
    /// Where the credential from `ralf runner register` is (default: <config dir>/ralf/runner.json).
    #[arg(long, value_name = "FILE")]
    pub credentials: Option<PathBuf>,
    /// The server, overriding the credential file's (also RALF_URL).
    #[arg(long, env = "RALF_URL")]
    pub url: Option<String>,
    /// The runner's token, instead of a credential file (the `token` of a runner created
    /// with `registered: true`; also RALF_RUNNER_TOKEN).
    #[arg(long, env = "RALF_RUNNER_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Where tasks run: cached clones and each task's private checkout (default ./runner-work).
    #[arg(long, value_name = "DIR", default_value = "runner-work")]
    pub work_dir: PathBuf,
    /// How many tasks this runner runs at once.
    #[arg(long, default_value_t = 4)]
    pub max_parallel_tasks: u32,
    /// Run tasks without a sandbox where bubblewrap is missing or cannot create namespaces
    /// (off by default: such a runner refuses to run tasks).
    #[arg(long, env = "RALF_ALLOW_UNSANDBOXED_TASKS")]
    pub allow_unsandboxed_tasks: bool,
    /// The uid tasks run as when the runner runs as root (inside their user namespace
    /// otherwise).
    #[arg(long, env = "RALF_TASK_UID", default_value_t = ralf_exec::DEFAULT_TASK_UID)]
    pub task_uid: u32,
    /// The gid tasks run as (like --task-uid).
    #[arg(long, env = "RALF_TASK_GID", default_value_t = ralf_exec::DEFAULT_TASK_GID)]
    pub task_gid: u32,
}

/// What `register` stores.
#[derive(Serialize, Deserialize)]
struct Credentials {
    url: String,
    runner_id: i64,
    token: String,
}

pub async fn run(command: RunnerCommand) -> anyhow::Result<std::process::ExitCode> {
    match command {
        RunnerCommand::Register(args) => register(args).await,
        RunnerCommand::Start(args) => start(args).await,
    }
}

fn default_credentials() -> anyhow::Result<PathBuf> {
    let dir = dirs::config_dir().context("no configuration directory; pass --credentials")?;
    Ok(dir.join("ralf").join("runner.json"))
}

async fn register(args: RegisterArgs) -> anyhow::Result<std::process::ExitCode> {
    let path = match args.credentials {
        Some(p) => p,
        None => default_credentials()?,
    };
    let client = Client::new(ClientConfig::new(args.url.clone()))?;
    let registered = client
        .register_runner(&args.registration_token)
        .await
        .context("registration failed")?;
    let credentials = Credentials {
        url: client.url().to_string(),
        runner_id: registered.id,
        token: registered.token,
    };
    write_private(&path, &serde_json::to_vec_pretty(&credentials)?)?;
    println!(
        "registered as runner {}; credential stored in {}",
        credentials.runner_id,
        path.display()
    );
    Ok(std::process::ExitCode::SUCCESS)
}

/// Writes a file only its owner can read.
fn write_private(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    file.write_all(contents)?;
    Ok(())
}

async fn start(args: StartArgs) -> anyhow::Result<std::process::ExitCode> {
    let (url, token) = match (args.url, args.token) {
        (Some(url), Some(token)) => (url, token),
        (url, token) => {
            let path = match &args.credentials {
                Some(p) => p.clone(),
                None => default_credentials()?,
            };
            let text = std::fs::read(&path).with_context(|| {
                format!(
                    "cannot read the runner's credential {} (run `ralf runner register` first, \
                     or pass --url and --token)",
                    path.display()
                )
            })?;
            let stored: Credentials = serde_json::from_slice(&text)
                .with_context(|| format!("{} is not a runner credential", path.display()))?;
            (url.unwrap_or(stored.url), token.unwrap_or(stored.token))
        }
    };
    let mut config = ClientConfig::new(url);
    config.runner_token = Some(token);
    // A poll may be held back for POLL_WAIT on the server.
    config.request_timeout = Duration::from_secs(40);
    let client = Client::new(config)?;
    let work_dir = std::path::absolute(&args.work_dir)
        .with_context(|| format!("work directory {}", args.work_dir.display()))?;
    let mut exec = ExecConfig::new(work_dir);
    exec.sandbox.allow_unsandboxed = args.allow_unsandboxed_tasks;
    exec.sandbox.uid = args.task_uid;
    exec.sandbox.gid = args.task_gid;
    if let Some(credentials) = &args.credentials {
        exec.sandbox.hide.push(std::path::absolute(credentials)?);
    } else if let Ok(default) = default_credentials() {
        exec.sandbox.hide.push(default);
    }
    ralf_server::prepare_executor(&exec);
    let runner = Arc::new(Runner {
        client,
        exec,
        max_parallel: args.max_parallel_tasks.max(1),
        tasks: Mutex::new(HashMap::new()),
    });
    tracing::info!(server = %runner.client.url(), "runner started");
    tokio::select! {
        _ = runner.clone().serve() => {}
        _ = shutdown_signal() => {
            tracing::info!("runner shutting down: stopping its tasks");
            runner.stop_all().await;
        }
    }
    Ok(std::process::ExitCode::SUCCESS)
}

struct Runner {
    client: Client,
    exec: ExecConfig,
    max_parallel: u32,
    /// The tasks held, by id.
    tasks: Mutex<HashMap<i64, Held>>,
}

/// A task this runner holds.
struct Held {
    known: Known,
    state: HeldState,
}

/// What the runner knows of the status of a task it holds.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Known {
    /// The status it last knew of it; `None`: deleted.
    Status(Option<TaskStatus>),
    /// Nothing: the server refused the report that its plan waits for a confirmation; the
    /// server's next answer says why (see `news`).
    Unknown,
}

impl Known {
    /// As a poll names it: an unknown status as none, which the server's answer corrects.
    fn status(self) -> Option<TaskStatus> {
        match self {
            Known::Status(status) => status,
            Known::Unknown => None,
        }
    }
}

enum HeldState {
    Running(Control),
    Planned(Box<Job>, PlanHandle),
}

impl Runner {
    /// Polls until the process ends; the server unreachable is retried with a growing wait.
    async fn serve(self: Arc<Self>) {
        let mut failures = 0u32;
        loop {
            let poll = self.poll_request();
            match self.client.poll_runner(&poll).await {
                Ok(answer) => {
                    failures = 0;
                    for held in answer.held {
                        self.news(held).await;
                    }
                    for job in answer.jobs {
                        self.take(job);
                    }
                }
                Err(e) => {
                    failures += 1;
                    let wait = Duration::from_millis(500 * 2u64.pow(failures.min(5)));
                    tracing::warn!(error = %e, wait_ms = wait.as_millis() as u64, "poll failed; trying again");
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }

    fn poll_request(&self) -> Poll {
        let tasks = self.tasks();
        let running = tasks
            .values()
            .filter(|h| matches!(h.state, HeldState::Running(_)))
            .count() as u32;
        Poll {
            holding: tasks
                .iter()
                .map(|(id, h)| HeldTask {
                    task_id: *id,
                    status: h.known.status(),
                })
                .collect(),
            free: self.max_parallel.saturating_sub(running),
            wait_secs: 10,
        }
    }

    /// Acts on what the server says of a task held here.
    async fn news(self: &Arc<Self>, held: HeldTask) {
        let status = held.status;
        let planned = {
            let mut tasks = self.tasks();
            let Some(task) = tasks.get_mut(&held.task_id) else {
                return;
            };
            if task.known == Known::Status(status) {
                return;
            }
            task.known = Known::Status(status);
            match &task.state {
                HeldState::Running(control) => {
                    match status {
                        Some(TaskStatus::Stopping) => control.stop(false),
                        Some(
                            TaskStatus::Starting | TaskStatus::Running | TaskStatus::Confirmed,
                        ) => {}
                        // Stopped by force, ended by the server (it took this runner for
                        // lost), deleted.
                        _ => control.stop(true),
                    }
                    return;
                }
                HeldState::Planned(..) if status == Some(TaskStatus::WaitingConfirmation) => {
                    return;
                }
                HeldState::Planned(..) => match tasks.remove(&held.task_id) {
                    Some(Held {
                        state: HeldState::Planned(job, plan),
                        ..
                    }) => (job, plan),
                    _ => return,
                },
            }
        };
        let (job, plan) = planned;
        if status == Some(TaskStatus::Confirmed) {
            self.apply(*job, plan).await;
            return;
        }
        // Rejected, stopped, deleted: the plan is thrown away.
        ralf_exec::discard_plan(&self.exec, plan).await;
        if status == Some(TaskStatus::Stopping) {
            self.report(held.task_id, TaskStatus::Stopped).await;
        }
    }

    /// Starts a job the server handed over.
    fn take(self: &Arc<Self>, job: Job) {
        let control = Control::new();
        self.tasks().insert(
            job.task_id,
            Held {
                known: Known::Status(Some(TaskStatus::Starting)),
                state: HeldState::Running(control.clone()),
            },
        );
        let me = self.clone();
        tokio::spawn(async move {
            let task_id = job.task_id;
            if !me.report(task_id, TaskStatus::Running).await {
                me.tasks().remove(&task_id);
                return;
            }
            me.set_known(task_id, Known::Status(Some(TaskStatus::Running)));
            tracing::info!(task.id = task_id, "task started");
            let (sink, sending) = RemoteOutput::start(me.client.clone(), task_id);
            let outcome = ralf_exec::run(&job, &me.exec, &sink, &control).await;
            me.ended(job, outcome, sink, sending).await;
        });
    }

    /// Applies a confirmed plan.
    async fn apply(self: &Arc<Self>, job: Job, plan: PlanHandle) {
        let task_id = job.task_id;
        if !self.report(task_id, TaskStatus::Running).await {
            ralf_exec::discard_plan(&self.exec, plan).await;
            self.report(task_id, TaskStatus::Stopped).await;
            return;
        }
        let control = Control::new();
        self.tasks().insert(
            task_id,
            Held {
                known: Known::Status(Some(TaskStatus::Running)),
                state: HeldState::Running(control.clone()),
            },
        );
        let me = self.clone();
        tokio::spawn(async move {
            let (sink, sending) = RemoteOutput::start(me.client.clone(), task_id);
            let outcome = ralf_exec::apply_plan(&job, &me.exec, &sink, &control, plan).await;
            me.ended(job, outcome, sink, sending).await;
        });
    }

    /// Sends the last lines, then the task's end (or its plan's wait for a confirmation).
    async fn ended(
        &self,
        job: Job,
        outcome: Outcome,
        sink: RemoteOutput,
        sending: tokio::task::JoinHandle<()>,
    ) {
        let task_id = job.task_id;
        if let Some(line) = outcome.closing_line(&job) {
            sink.say(line);
        }
        let status = match outcome {
            Outcome::Success => TaskStatus::Success,
            Outcome::Failed(_) | Outcome::TimedOut => TaskStatus::Error,
            Outcome::Stopped => TaskStatus::Stopped,
            Outcome::WaitingConfirmation(plan) => {
                self.tasks().insert(
                    task_id,
                    Held {
                        known: Known::Status(Some(TaskStatus::WaitingConfirmation)),
                        state: HeldState::Planned(Box::new(job), plan),
                    },
                );
                drop(sink);
                let _ = sending.await;
                if !self.report(task_id, TaskStatus::WaitingConfirmation).await {
                    // Stopped or ended meanwhile, or a report sent again found the wait taken
                    // already: whatever the server says next settles the plan.
                    self.set_known(task_id, Known::Unknown);
                }
                return;
            }
        };
        drop(sink);
        let _ = sending.await;
        self.report(task_id, status).await;
        self.tasks().remove(&task_id);
        tracing::info!(task.id = task_id, status = status.as_str(), "task finished");
    }

    /// Reports a status change, trying again while the server is away; says whether the
    /// server took it.
    async fn report(&self, task_id: i64, status: TaskStatus) -> bool {
        let mut wait = Duration::from_millis(500);
        let status_name = status.as_str();
        loop {
            match self.client.report_task_status(task_id, status).await {
                Ok(answer) => return answer.accepted,
                Err(e) if e.is_refusal() => {
                    tracing::warn!(task.id = task_id, status = status_name, error = %e, "the server refused the task's status");
                    return false;
                }
                Err(e) => {
                    tracing::warn!(task.id = task_id, status = status_name, error = %e, "cannot report the task's status; trying again");
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(10));
                }
            }
        }
    }

    fn set_known(&self, task_id: i64, known: Known) {
        if let Some(task) = self.tasks().get_mut(&task_id) {
            task.known = known;
        }
    }

    /// Stops every running task and waits for their ends to be reported.
    async fn stop_all(&self) {
        for task in self.tasks().values() {
            if let HeldState::Running(control) = &task.state {
                control.stop(false);
            }
        }
        let deadline = tokio::time::Instant::now() + self.exec.stop_grace + Duration::from_secs(5);
        while tokio::time::Instant::now() < deadline
            && self
                .tasks()
                .values()
                .any(|t| matches!(t.state, HeldState::Running(_)))
        {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn tasks(&self) -> std::sync::MutexGuard<'_, HashMap<i64, Held>> {
        self.tasks.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A task's output on its way to the server: the executor puts lines in a queue (never
/// blocking; the task waits on its pipe while [`QUEUED_BYTES`] wait) and one sender per task
/// posts them in batches, in order, retrying while the server is away; nothing is dropped.
struct RemoteOutput {
    tx: QueueSender<Item>,
}

enum Item {
    Line(OutputLine),
    Checkout(CheckoutInfo),
}

/// The most lines one request carries.
const BATCH: usize = 2000;
/// The most bytes one request carries (as the queue counts them; a batch ends at the line
/// that passes it).
const BATCH_BYTES: usize = 2 << 20;

impl RemoteOutput {
    fn start(client: Client, task_id: i64) -> (RemoteOutput, tokio::task::JoinHandle<()>) {
        let (tx, rx) = output_queue(QUEUED_BYTES);
        (
            RemoteOutput { tx },
            tokio::spawn(send_output(client, task_id, rx)),
        )
    }

    /// A line of ralf's own about the task.
    fn say(&self, text: impl Into<String>) {
        self.line(OutputLine {
            time: chrono::Utc::now(),
            text: text.into(),
        });
    }
}

impl OutputSink for RemoteOutput {
    fn line(&self, line: OutputLine) {
        let cost = line.text.len() + LINE_COST;
        self.tx.send(Item::Line(line), cost);
    }

    fn room(&self) -> Option<Room<'_>> {
        self.tx.room()
    }

    fn checked_out(&self, info: &CheckoutInfo) {
        self.tx.send(Item::Checkout(info.clone()), LINE_COST);
    }
}

async fn send_output(client: Client, task_id: i64, mut rx: QueueReceiver<Item>) {
    while let Some(items) = rx.recv_batch(BATCH, BATCH_BYTES).await {
        let mut batch = OutputBatch::default();
        for item in items {
            match item {
                Item::Line(line) => batch.lines.push((line.time, line.text)),
                Item::Checkout(info) => batch.checkout = Some(info),
            }
        }
        let mut wait = Duration::from_millis(200);
        loop {
            match client.send_task_output(task_id, &batch).await {
                Ok(()) => break,
                Err(e) if e.is_refusal() => {
                    // The task is no longer this runner's: the poll tells it to stop.
                    tracing::warn!(task.id = task_id, error = %e, "the server refused the task's output");
                    break;
                }
                Err(e) => {
                    tracing::warn!(task.id = task_id, error = %e, "cannot send output; trying again");
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(10));
                }
            }
        }
    }
}

async fn shutdown_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
