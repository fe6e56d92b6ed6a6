//! The dispatcher: takes waiting tasks from the store in order, within the limits (the global
//! `max_parallel_tasks`, each project's, one running task per template unless the template
//! allows parallel runs), runs each with the executor, stores its output, and follows what is
//! decided about it from outside (stop, confirm, reject).
//!
//! It is woken at once by the API ([`crate::task_queue::TaskQueue`]) — no polling tick — and
//! also looks every few seconds, so nothing waits on a lost wake-up. The store is the one truth
//! about tasks: a stop request is a status change there, which the dispatcher sees and acts on.

pub mod job;
pub mod limits;
pub mod live;
pub mod output;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ralf_core::{ProjectId, TaskId, TaskStatus, Timestamp};
use ralf_exec::{Control, ExecConfig, Outcome, PlanHandle};
use ralf_store::dispatch::Claimant;

use crate::state::AppState;
use live::LiveEvent;

/// How often the dispatcher looks at the store without being woken.
const SWEEP: Duration = Duration::from_secs(2);
/// How many waiting tasks one look considers.
pub const LOOKAHEAD: i64 = 500;

pub use ralf_store::cluster::INTERRUPTED_LINE;

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

impl Dispatcher {
    pub fn new(state: AppState, exec: ExecConfig) -> Arc<Dispatcher> {
        Arc::new(Dispatcher {
            state,
            exec,
            running: Mutex::new(HashMap::new()),
            plans: Mutex::new(HashMap::new()),
        })
    }

    /// Runs until the process ends. A failed look at the store is logged and tried again.
    pub async fn run(self: Arc<Self>) {
        loop {
            if let Err(e) = self.look().await {
                tracing::error!(
                    error = format!("{e:#}"),
                    "dispatcher could not look at the queue"
                );
            }
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
            let control = Control::new();
            self.running().insert(task.id, control.clone());
            let me = self.clone();
            tokio::spawn(async move {
                me.execute(task.id, task.project_id, task.template_id, control)
                    .await;
                me.running().remove(&task.id);
                me.state.task_queue.changed();
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
                    let control = Control::new();
                    self.running().insert(id, control.clone());
                    let me = self.clone();
                    tokio::spawn(async move {
                        me.apply(id, waiting, control).await;
                        me.running().remove(&id);
                        me.state.task_queue.changed();
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

    /// Runs one claimed task to its end (or to its plan's confirmation).
    async fn execute(
        self: &Arc<Self>,
        task_id: i64,
        project_id: i64,
        template_id: i64,
        control: Control,
    ) {
        let (pipe, writer) = output::start(&self.state, task_id, project_id);
        let outcome = self
            .prepare_and_run(task_id, project_id, &pipe, &control)
            .await;
        let status = match outcome {
            Err(message) => {
                pipe.say(message);
                TaskStatus::Error
            }
            Ok((prepared, outcome)) => {
                let status = self.status_of(&pipe, &outcome, &prepared);
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
        };
        drop(pipe);
        let _ = writer.await;
        self.finish(task_id, project_id, template_id, status).await;
    }

    async fn prepare_and_run(
        &self,
        task_id: i64,
        project_id: i64,
        pipe: &output::OutputPipe,
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

    /// Applies a confirmed plan.
    async fn apply(self: &Arc<Self>, task_id: i64, waiting: WaitingPlan, control: Control) {
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
            let to = if moved.is_ok() {
                TaskStatus::Stopped
            } else {
                TaskStatus::Error
            };
            self.finish(task_id, project_id, template_id, to).await;
            return;
        }
        self.announce(task_id, project_id, template_id, TaskStatus::Running);
        let (pipe, writer) = output::start(&self.state, task_id, project_id);
        let outcome = ralf_exec::apply_plan(&prepared.job, &self.exec, &pipe, &control, plan).await;
        let status = self.status_of(&pipe, &outcome, &prepared);
        drop(pipe);
        let _ = writer.await;
        self.finish(task_id, project_id, template_id, status).await;
    }

    /// The status an outcome moves the task to, after writing its closing line.
    fn status_of(
        &self,
        pipe: &output::OutputPipe,
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
