//! The dispatcher: takes waiting tasks from the store in order, within the limits (the global
//! `max_parallel_tasks`, each project's, one running task per template unless the template
//! allows parallel runs), runs each with the executor, stores its output, and follows what is
//! decided about it from outside (stop, confirm, reject).
//!
//! It is woken at once by the API ([`crate::task_queue::TaskQueue`]) — no polling tick — and
//! also looks every few seconds, so nothing waits on a lost wake-up. The store is the one truth
//! about tasks: a stop request is a status change there, which the dispatcher sees and acts on.
//!
//! Each task runs on a tokio task of its own, supervised ([`Dispatcher::run_task`]): however
//! its work ends, a panic included, the task gets its final status and its slot comes free.

pub mod job;
pub mod limits;
pub mod live;
pub mod output;

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ralf_core::{ProjectId, TaskId, TaskStatus, Timestamp};
use ralf_exec::{Control, ExecConfig, Outcome, PlanHandle};
use ralf_store::dispatch::Claimant;

use crate::state::AppState;
use crate::supervise;
use live::LiveEvent;
use output::OutputPipe;

/// How often the dispatcher looks at the store without being woken.
const SWEEP: Duration = Duration::from_secs(2);
/// How many waiting tasks one look considers.
pub const LOOKAHEAD: i64 = 500;

pub use ralf_store::cluster::INTERRUPTED_LINE;

/// The last line of a task whose run panicked (the server's log has the panic).
pub const PANICKED_LINE: &str = "ralf failed while running this task (an internal error, \
    described in the server's log): the task did not finish and is marked as failed";

pub struct Dispatcher {
    state: AppState,
    exec: ExecConfig,
    /// Tasks this server runs now, by id.
    running: Mutex<HashMap<i64, Control>>,
    /// Terraform plans waiting for a confirmation, by task id.
    plans: Mutex<HashMap<i64, WaitingPlan>>,
}

struct WaitingPlan {
    prepared: job::PreparedJob,
    plan: PlanHandle,
    project_id: i64,
}

/// A task that holds a slot while this server runs it.
#[derive(Debug, Clone, Copy)]
struct TaskSlot {
    task_id: i64,
    project_id: i64,
    template_id: i64,
}

impl Dispatcher {
    pub fn new(state: AppState, exec: ExecConfig) -> Arc<Dispatcher> {
        Arc::new(Dispatcher {
            state,
            exec,
            running: Mutex::new(HashMap::new()),
            plans: Mutex::new(HashMap::new()),
        })
    }

    /// Runs until the process ends. A failed look at the store is logged and tried again; the
    /// server runs this under [`crate::supervise`], which starts it again after a panic.
    pub async fn run(self: Arc<Self>) {
        loop {
            if let Err(e) = self.look().await {
                tracing::error!(
                    error = format!("{e:#}"),
                    "dispatcher could not look at the queue"
                );
            }
            self.state.health.dispatcher_looked();
            tokio::select! {
                _ = self.state.task_queue.wakeup() => {}
                _ = tokio::time::sleep(SWEEP) => {}
            }
        }
    }

    /// Stops every task this server runs and waits (a little longer than the executor's grace
    /// period) for them to end; plans waiting for a confirmation are thrown away.
    pub async fn stop_all(&self) {
        let controls: Vec<Control> = self.running().values().cloned().collect();
        for control in &controls {
            control.stop(false);
        }
        let deadline = tokio::time::Instant::now() + self.exec.stop_grace + Duration::from_secs(3);
        while !self.running().is_empty() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let plans: Vec<(i64, WaitingPlan)> = self.plans().drain().collect();
        for (id, waiting) in plans {
            ralf_exec::discard_plan(&self.exec, waiting.plan).await;
            self.finish(
                id,
                waiting.project_id,
                waiting.prepared.template.id,
                TaskStatus::Error,
            )
            .await;
        }
    }

    async fn look(self: &Arc<Self>) -> anyhow::Result<()> {
        self.follow_decisions().await?;
        self.start_queued().await
    }

    /// Claims as many waiting tasks as the limits allow (see [`limits::pick`]) and starts
    /// them.
    async fn start_queued(self: &Arc<Self>) -> anyhow::Result<()> {
        let taker = limits::Taker::Server {
            use_remote_runner: self.state.settings.use_remote_runner,
        };
        let global = self.state.settings.max_parallel_tasks as usize;
        let claimed = self
            .state
            .store
            .claim_tasks(
                Claimant::Node(&self.state.node_id),
                LOOKAHEAD,
                |queued, active| limits::pick(&taker, global, queued, active),
            )
            .await?;
        for task in claimed {
            self.announce(
                task.id,
                task.project_id,
                task.template_id,
                TaskStatus::Starting,
            );
            let me = self.clone();
            let slot = TaskSlot {
                task_id: task.id,
                project_id: task.project_id,
                template_id: task.template_id,
            };
            self.run_task(slot, move |pipe, control| async move {
                me.execute(task.id, task.project_id, &pipe, control).await
            });
        }
        Ok(())
    }

    /// Acts on status changes made from outside to the tasks this server holds.
    async fn follow_decisions(self: &Arc<Self>) -> anyhow::Result<()> {
        let running: Vec<(i64, Control)> = self
            .running()
            .iter()
            .map(|(id, c)| (*id, c.clone()))
            .collect();
        let planned: Vec<i64> = self.plans().keys().copied().collect();
        if running.is_empty() && planned.is_empty() {
            return Ok(());
        }
        let ids: Vec<i64> = running
            .iter()
            .map(|(id, _)| *id)
            .chain(planned.iter().copied())
            .collect();
        let statuses: HashMap<i64, TaskStatus> = self
            .state
            .store
            .task_statuses(&ids)
            .await?
            .into_iter()
            .collect();
        for (id, control) in running {
            match statuses.get(&id) {
                Some(TaskStatus::Stopping) => control.stop(false),
                // Stopped, deleted, or ended by another server that took this one for dead.
                Some(s) if s.is_finished() => control.stop(true),
                None => control.stop(true),
                _ => {}
            }
        }
        for id in planned {
            let status = statuses.get(&id).copied();
            match status {
                Some(TaskStatus::WaitingConfirmation) => {}
                Some(TaskStatus::Confirmed) => {
                    let Some(waiting) = self.plans().remove(&id) else {
                        continue;
                    };
                    let me = self.clone();
                    let slot = TaskSlot {
                        task_id: id,
                        project_id: waiting.project_id,
                        template_id: waiting.prepared.template.id,
                    };
                    self.run_task(slot, move |pipe, control| async move {
                        me.apply(id, waiting, &pipe, control).await
                    });
                }
                _ => {
                    // Rejected, stopped, deleted: the plan is thrown away.
                    let Some(waiting) = self.plans().remove(&id) else {
                        continue;
                    };
                    ralf_exec::discard_plan(&self.exec, waiting.plan).await;
                    if status == Some(TaskStatus::Stopping) {
                        self.finish(
                            id,
                            waiting.project_id,
                            waiting.prepared.template.id,
                            TaskStatus::Stopped,
                        )
                        .await;
                    }
                    self.state.task_queue.changed();
                }
            }
        }
        Ok(())
    }

    /// Runs `work` for the task of `slot` on a tokio task of its own, holding the task's slot
    /// in `running` until it ends. The work writes the task's output to the pipe it is given
    /// and answers the status the task ends in. If it panics instead, the task ends `error`
    /// with [`PANICKED_LINE`]. Either way the task's output is stored, its status set, its
    /// slot freed and the queue looked at again.
    fn run_task<W, F>(self: &Arc<Self>, slot: TaskSlot, work: W) -> tokio::task::JoinHandle<()>
    where
        W: FnOnce(OutputPipe, Control) -> F,
        F: Future<Output = TaskStatus> + Send + 'static,
    {
        let TaskSlot {
            task_id,
            project_id,
            template_id,
        } = slot;
        let control = Control::new();
        self.running().insert(task_id, control.clone());
        let (pipe, writer) = output::start(&self.state, task_id, project_id);
        let work = work(pipe.clone(), control);
        let me = self.clone();
        // Whatever the task's work logs carries its id (a field of each JSON log line).
        let span = tracing::info_span!("task", task.id = task_id, project.id = project_id);
        let supervised = async move {
            let status = match supervise::catch_panic(work).await {
                Ok(status) => status,
                Err(panic) => {
                    tracing::error!(task.id = task_id, %panic, "running the task panicked; it ends in error");
                    pipe.say(PANICKED_LINE);
                    TaskStatus::Error
                }
            };
            drop(pipe);
            let _ = writer.await;
            me.finish(task_id, project_id, template_id, status).await;
            me.running().remove(&task_id);
            me.state.task_queue.changed();
        };
        tokio::spawn(tracing::Instrument::instrument(supervised, span))
    }

    /// Runs one claimed task to its end (or to its plan's confirmation); answers the status
    /// it ends in.
    async fn execute(
        self: &Arc<Self>,
        task_id: i64,
        project_id: i64,
        pipe: &OutputPipe,
        control: Control,
    ) -> TaskStatus {
        let outcome = self
            .prepare_and_run(task_id, project_id, pipe, &control)
            .await;
        match outcome {
            Err(message) => {
                pipe.say(message);
                TaskStatus::Error
            }
            Ok((prepared, outcome)) => {
                let status = self.status_of(pipe, &outcome, &prepared);
                if let Outcome::WaitingConfirmation(plan) = outcome {
                    self.plans().insert(
                        task_id,
                        WaitingPlan {
                            prepared,
                            plan,
                            project_id,
                        },
                    );
                }
                status
            }
        }
    }

    async fn prepare_and_run(
        &self,
        task_id: i64,
        project_id: i64,
        pipe: &OutputPipe,
        control: &Control,
    ) -> Result<(job::PreparedJob, Outcome), String> {
        let task = self
            .state
            .store
            .task(ProjectId(project_id), TaskId(task_id))
            .await
            .map_err(|e| format!("cannot load the task: {e}"))?;
        let prepared = job::prepare(&self.state, &task)
            .await
            .map_err(|e| format!("cannot prepare the task: {e:#}"))?;
        let moved = self
            .state
            .store
            .set_task_status(
                TaskId(task_id),
                TaskStatus::Starting,
                TaskStatus::Running,
                Timestamp::now(),
            )
            .await
            .map_err(|e| format!("cannot start the task: {e}"))?;
        if !moved {
            return Ok((prepared, Outcome::Stopped));
        }
        self.announce(
            task_id,
            project_id,
            prepared.template.id,
            TaskStatus::Running,
        );
        tracing::info!(task.id = task_id, template = %prepared.template.settings.name, "task started");
        let outcome = ralf_exec::run(&prepared.job, &self.exec, pipe, control).await;
        Ok((prepared, outcome))
    }

    /// Applies a confirmed plan; answers the status the task ends in.
    async fn apply(
        self: &Arc<Self>,
        task_id: i64,
        waiting: WaitingPlan,
        pipe: &OutputPipe,
        control: Control,
    ) -> TaskStatus {
        let WaitingPlan {
            prepared,
            plan,
            project_id,
        } = waiting;
        let template_id = prepared.template.id;
        let moved = self
            .state
            .store
            .set_task_status(
                TaskId(task_id),
                TaskStatus::Confirmed,
                TaskStatus::Running,
                Timestamp::now(),
            )
            .await;
        if !matches!(moved, Ok(true)) {
            ralf_exec::discard_plan(&self.exec, plan).await;
            // Stopped since the confirmation: nothing else holds the task any more, so a
            // `stopping` one must end here (it would keep its slot forever otherwise).
            return if moved.is_ok() {
                TaskStatus::Stopped
            } else {
                TaskStatus::Error
            };
        }
        self.announce(task_id, project_id, template_id, TaskStatus::Running);
        let outcome = ralf_exec::apply_plan(&prepared.job, &self.exec, pipe, &control, plan).await;
        self.status_of(pipe, &outcome, &prepared)
    }

    /// The status an outcome moves the task to, after writing its closing line.
    fn status_of(
        &self,
        pipe: &OutputPipe,
        outcome: &Outcome,
        prepared: &job::PreparedJob,
    ) -> TaskStatus {
        if let Some(line) = outcome.closing_line(&prepared.job) {
            pipe.say(line);
        }
        match outcome {
            Outcome::Success => TaskStatus::Success,
            // The executor already wrote the reason as the last line.
            Outcome::Failed(_) | Outcome::TimedOut => TaskStatus::Error,
            Outcome::Stopped => TaskStatus::Stopped,
            Outcome::WaitingConfirmation(_) => TaskStatus::WaitingConfirmation,
        }
    }

    async fn finish(&self, task_id: i64, project_id: i64, template_id: i64, to: TaskStatus) {
        finish(&self.state, task_id, project_id, template_id, to).await;
    }

    fn announce(&self, task_id: i64, project_id: i64, template_id: i64, status: TaskStatus) {
        announce(&self.state, task_id, project_id, template_id, status);
    }

    fn running(&self) -> std::sync::MutexGuard<'_, HashMap<i64, Control>> {
        self.running.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn plans(&self) -> std::sync::MutexGuard<'_, HashMap<i64, WaitingPlan>> {
        self.plans.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Moves a task to `to` from whatever active status it is in now (a stop may have moved it
/// meanwhile); a task already finished stays as it is. Says whether it moved.
pub async fn finish(
    state: &AppState,
    task_id: i64,
    project_id: i64,
    template_id: i64,
    to: TaskStatus,
) -> bool {
    let store = &state.store;
    for _ in 0..5 {
        let current = match store.task_status(TaskId(task_id)).await {
            Ok(Some(s)) => s,
            Ok(None) => return false, // deleted
            Err(e) => {
                tracing::error!(task.id = task_id, error = %e, "cannot read the task's status");
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        // A task that was asked to stop ends stopped, whatever its processes said last.
        let to = if current == TaskStatus::Stopping && to != TaskStatus::WaitingConfirmation {
            TaskStatus::Stopped
        } else {
            to
        };
        if !current.can_become(to) {
            return false;
        }
        match store
            .set_task_status(TaskId(task_id), current, to, Timestamp::now())
            .await
        {
            Ok(true) => {
                tracing::info!(task.id = task_id, status = %to, "task finished");
                announce(state, task_id, project_id, template_id, to);
                return true;
            }
            Ok(false) => continue,
            Err(e) => {
                tracing::error!(task.id = task_id, error = %e, "cannot set the task's status");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
    false
}

/// Tells live listeners (of every server) that a task changed status.
pub fn announce(
    state: &AppState,
    task_id: i64,
    project_id: i64,
    template_id: i64,
    status: TaskStatus,
) {
    state.live.publish(LiveEvent::Status {
        task_id,
        project_id,
        template_id,
        status,
    });
}

#[cfg(test)]
mod tests {
    use ralf_core::api::tasks::TaskParams;
    use ralf_core::api::templates::TemplateRequest;
    use ralf_core::secret::SecretCipher;
    use ralf_store::projects::ProjectFields;
    use ralf_store::repositories::RepositoryFields;
    use ralf_store::tasks::NewTask;
    use ralf_store::users::NewUser;
    use ralf_store::{DatabaseSettings, Store};

    use super::*;
    use crate::settings::Settings;
    use ralf_core::TemplateId;

    /// A dispatcher over a fresh SQLite store holding one template whose tasks run one at a
    /// time; it is not running (the test drives it).
    async fn dispatcher(dir: &std::path::Path) -> (Arc<Dispatcher>, i64, i64) {
        let database = DatabaseSettings::Sqlite {
            path: dir.join("ralf.db"),
        };
        let store = Store::connect(&database).await.expect("store");
        let settings = Settings {
            listen: "127.0.0.1:0".parse().unwrap(),
            database,
            access_key_encryption: None,
            web_host: String::new(),
            max_parallel_tasks: 10,
            non_admin_can_create_project: false,
            use_remote_runner: false,
            admin: None,
            data_dir: dir.to_path_buf(),
            work_dir: dir.join("work"),
            exec_path: None,
            sandbox: Default::default(),
            trusted_proxies: Vec::new(),
            session_lifetime: crate::settings::DEFAULT_SESSION_LIFETIME,
            http_idle_timeout: crate::settings::DEFAULT_HTTP_IDLE_TIMEOUT,
            initial_admin_password_file: None,
            advisor: None,
            notify: Default::default(),
            metrics: Default::default(),
            log: Default::default(),
        };
        let state = AppState {
            store: store.clone(),
            cipher: SecretCipher::new(None).expect("cipher"),
            settings: Arc::new(settings),
            login_throttle: Default::default(),
            password_checks: Default::default(),
            task_queue: Default::default(),
            live: Default::default(),
            node_id: "test-node".into(),
            address: "127.0.0.1:0".into(),
            schedules: Default::default(),
            catalog: Arc::new(crate::catalog::CatalogEngine::new(ExecConfig::new(
                dir.join("work"),
            ))),
            notifier: Default::default(),
            health: Default::default(),
        };
        let user = store
            .create_user(&NewUser {
                username: "owner",
                name: "Owner",
                email: "owner@example.test",
                password_hash: "",
                admin: true,
                external: false,
                alert: false,
            })
            .await
            .expect("user")
            .id;
        let project = store
            .create_project(
                &ProjectFields {
                    name: "p",
                    alert: false,
                    alert_chat: None,
                    max_parallel_tasks: 0,
                    kind: "",
                },
                user,
            )
            .await
            .expect("project")
            .id;
        let repository = store
            .create_repository(
                ProjectId(project),
                &RepositoryFields {
                    name: "r",
                    git_url: "https://git.example/r.git",
                    git_branch: "main",
                    ssh_key_id: None,
                },
            )
            .await
            .expect("repository")
            .id;
        let (settings, vaults) = TemplateRequest {
            name: Some("one at a time".into()),
            app: Some("bash".into()),
            repository_id: Some(repository),
            playbook: Some("run.sh".into()),
            ..Default::default()
        }
        .check()
        .expect("a valid template");
        let template = store
            .create_template(ProjectId(project), &settings, &vaults)
            .await
            .expect("template")
            .id;
        let exec = ExecConfig::new(dir.join("work"));
        (Dispatcher::new(state, exec), project, template)
    }

    /// Queues a task of the template and has this server claim it (it is then `starting`).
    async fn claimed_task(dispatcher: &Dispatcher, project: i64, template: i64) -> Vec<i64> {
        let store = &dispatcher.state.store;
        store
            .create_task(&NewTask {
                project_id: ProjectId(project),
                template_id: TemplateId(template),
                user_id: None,
                playbook: "",
                environment: "",
                arguments: None,
                git_branch: None,
                commit_hash: None,
                message: "",
                inventory_id: None,
                build_task_id: None,
                version: None,
                params: &TaskParams::default(),
                integration_id: None,
                schedule_id: None,
                secret: None,
            })
            .await
            .expect("task");
        let taker = limits::Taker::Server {
            use_remote_runner: false,
        };
        store
            .claim_tasks(Claimant::Node("test-node"), LOOKAHEAD, |queued, active| {
                limits::pick(&taker, 10, queued, active)
            })
            .await
            .expect("claim")
            .into_iter()
            .map(|task| task.id)
            .collect()
    }

    #[tokio::test]
    async fn a_panic_in_a_tasks_work_ends_it_in_error_and_frees_its_slot() {
        let dir = tempfile::tempdir().unwrap();
        let (dispatcher, project, template) = self::dispatcher(dir.path()).await;
        let store = dispatcher.state.store.clone();
        let [task_id] = claimed_task(&dispatcher, project, template).await[..] else {
            panic!("the first task is claimed");
        };
        assert!(
            claimed_task(&dispatcher, project, template)
                .await
                .is_empty(),
            "the template's one slot is taken"
        );

        let slot = TaskSlot {
            task_id,
            project_id: project,
            template_id: template,
        };
        let run = dispatcher.run_task(slot, |pipe, _control| async move {
            pipe.say("a line before the panic");
            tokio::task::yield_now().await;
            panic!("a bug in the task's work");
        });
        run.await
            .expect("the supervising task itself ends normally");

        assert_eq!(
            store.task_status(TaskId(task_id)).await.unwrap(),
            Some(TaskStatus::Error)
        );
        let lines: Vec<String> = store
            .task_output(TaskId(task_id), 0, None)
            .await
            .unwrap()
            .into_iter()
            .map(|line| line.output)
            .collect();
        assert_eq!(lines, ["a line before the panic", PANICKED_LINE]);
        assert!(dispatcher.running().is_empty(), "the server holds no slot");
        assert_eq!(
            claimed_task(&dispatcher, project, template).await.len(),
            1,
            "the template's slot is free again: the next waiting task is taken"
        );
        store.close().await;
    }
}
