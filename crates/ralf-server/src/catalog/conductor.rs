//! The conductor: runs every unfinished rollout of every project to its end, on every server.
//!
//! Each look replays each unfinished rollout from its stored events (`Rollout::replay`) and
//! does one thing at a time, re-reading after each: records the end of a step whose task
//! ended (its status object from the task's status, the last lines of its log and the report
//! it left), or starts a step that may start (its task and its `step_started` event in one
//! transaction), and when there is nothing left to do now, records how the rollout and its
//! services stand and ends the rollout when it is done. Each event is appended under the number
//! after the last one replayed: when another server (or this one's API) appended first, the
//! append fails and the conductor simply reads again, so no step starts twice and no result is
//! recorded twice. After a restart it goes on where the events say it stood.
//!
//! It looks when a task's status changes to finished (the live hub, this server's and the
//! others'), when the API changes a rollout here, when a retry's back-off ends, and every few
//! seconds anyway. A failed look is logged and tried again; a panicking one is caught and
//! logged too, so the loop never ends silently.

use ralf_core::{ProjectId, RolloutId, TaskId, TemplateId};
use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;
use std::time::Duration;

use futures::FutureExt;
use ralf_catalog::{
    NextSteps, Rollout, RolloutEvent, RolloutState, ServiceState, StepId, StepStatus, StepToStart,
};
use ralf_core::api::events::NewEvent;
use ralf_core::api::tasks::{Task, TaskFields, TaskRequest};
use ralf_core::{TaskStatus, Timestamp};
use ralf_store::StoreError;
use ralf_store::catalog::{NewStepTask, ServiceRecord, StoredRollout};
use ralf_store::tasks::NewTask;
use tokio::sync::broadcast::Receiver;
use tokio::sync::broadcast::error::RecvError;

use super::read::Templates;
use super::{announce_state, corrupt};
use crate::dispatch::live::LiveEvent;
use crate::state::AppState;

/// The longest the conductor waits without looking (another server may have changed a
/// rollout without this one hearing of it).
const SWEEP: Duration = Duration::from_secs(2);
/// How long it waits after a failed look.
const RETRY: Duration = Duration::from_secs(5);
/// The most events one look records for one rollout before it lets the others have a turn.
const MAX_STEPS_PER_LOOK: usize = 100;

/// Runs until the task is aborted.
pub async fn run(state: AppState) {
    let mut news = state.live.subscribe();
    loop {
        let look = AssertUnwindSafe(look(&state)).catch_unwind().await;
        let wait = match look {
            Ok(Ok(soonest)) => until(soonest),
            Ok(Err(e)) => {
                tracing::error!(error = %e, "catalog: reading the rollouts failed; retrying");
                RETRY
            }
            Err(_) => {
                tracing::error!("catalog: a look at the rollouts panicked; retrying");
                RETRY
            }
        };
        wait_for_news(&state, &mut news, wait).await;
    }
}

/// Waits `wait` at most, until a task finishes or the API changes a rollout here.
async fn wait_for_news(state: &AppState, news: &mut Receiver<LiveEvent>, wait: Duration) {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(deadline) => return,
            _ = state.catalog.wakeup.notified() => return,
            event = news.recv() => match event {
                Ok(LiveEvent::Status { status, .. }) if status.is_finished() => return,
                Ok(_) => {}
                Err(RecvError::Lagged(_)) => return,
                Err(RecvError::Closed) => {
                    tokio::time::sleep_until(deadline).await;
                    return;
                }
            },
        }
    }
}

/// How long to sleep until `soonest` (a little past it), at most [`SWEEP`].
fn until(soonest: Option<Timestamp>) -> Duration {
    let Some(soonest) = soonest else {
        return SWEEP;
    };
    let ms = (soonest.0 - Timestamp::now().0).num_milliseconds().max(0) + 5;
    Duration::from_millis(ms as u64).min(SWEEP)
}

/// Advances every unfinished rollout; returns the soonest retry not due yet.
async fn look(state: &AppState) -> Result<Option<Timestamp>, StoreError> {
    let mut soonest: Option<Timestamp> = None;
    let mut earliest = |at: Timestamp| soonest = Some(soonest.map_or(at, |s| s.min(at)));
    for (id, project_id) in state.store.unfinished_rollout_ids().await? {
        match advance(state, project_id, id).await {
            Ok(Some(at)) => earliest(at),
            Ok(None) => {}
            Err(e) => {
                tracing::error!(error = %e, rollout.id = id.0, project.id = project_id.0,
                    "catalog: a rollout could not go on; it is tried again");
                earliest(Timestamp(Timestamp::now().0 + RETRY));
            }
        }
    }
    Ok(soonest)
}

/// What one round does to a rollout.
enum Move {
    /// Events to append in order (the first with the task of a step that starts).
    Record(Vec<RolloutEvent>, Option<Box<Step>>),
    /// Nothing to do until something happens.
    Settled,
}

/// A step's task, to create with its `step_started` event.
struct Step {
    fields: TaskFields,
    secret: Option<String>,
    template_id: i64,
    git_branch: Option<String>,
    commit_hash: Option<String>,
    message: String,
    /// The service's environment and ralf's `RALF_*` variables, recorded with the step.
    environment: BTreeMap<String, String>,
}

/// Takes rollout `id` as far as it goes now; returns when to look again for a retry whose
/// back-off has not ended.
async fn advance(
    state: &AppState,
    project_id: ProjectId,
    id: RolloutId,
) -> Result<Option<Timestamp>, StoreError> {
    let mut changed = false;
    for _ in 0..MAX_STEPS_PER_LOOK {
        let stored = state.store.rollout(project_id, id).await?;
        if stored.finished.is_some() {
            return Ok(None);
        }
        let history = state.store.rollout_history(id).await?;
        let rollout = Rollout::replay(stored.plan.clone(), stored.options.clone(), history.events)
            .map_err(|e| corrupt(&stored, e))?;
        let now = Timestamp::now();
        let next = rollout.next(now);
        match next_move(state, &stored, &rollout, &next, now).await? {
            Move::Record(events, step) => {
                match record(state, &stored, history.next_seq, &events, step).await {
                    Ok(()) => changed = true,
                    // Another server (or the API) recorded something first: read again.
                    Err(StoreError::Conflict(_)) => {}
                    Err(e) => return Err(e),
                }
            }
            Move::Settled => {
                settle(state, &stored, &rollout, next.state, changed).await?;
                return Ok(next.wake_at);
            }
        }
    }
    // More to do than one look takes: the next look goes on.
    Ok(Some(Timestamp::now()))
}

/// The next event to record: the end of a step whose task ended, else the start of a step
/// that may start.
async fn next_move(
    state: &AppState,
    stored: &StoredRollout,
    rollout: &Rollout,
    next: &NextSteps,
    now: Timestamp,
) -> Result<Move, StoreError> {
    for step_id in &next.in_flight {
        if let Some(finished) = finished_step(state, stored, rollout, step_id, now).await? {
            return Ok(Move::Record(vec![finished], None));
        }
    }
    let Some(to_start) = next.start.first() else {
        return Ok(Move::Settled);
    };
    let started = RolloutEvent::StepStarted {
        step_id: to_start.step_id.clone(),
        task_id: None,
        at: now,
    };
    Ok(match step_task(state, stored, to_start).await? {
        Ok(step) => Move::Record(vec![started], Some(Box::new(step))),
        // No task can be made: the step is recorded as started without one, and failed.
        Err(why) => {
            tracing::warn!(rollout.id = stored.id.0, step = %to_start.step_id, %why,
                "catalog: a step cannot start");
            let failed = RolloutEvent::StepFinished {
                status: StepStatus::failed(to_start.step_id.clone(), None, why),
                at: now,
            };
            Move::Record(vec![started, failed], None)
        }
    })
}

/// The `step_finished` event of an in-flight step whose task ended (or is gone), if it did.
async fn finished_step(
    state: &AppState,
    stored: &StoredRollout,
    rollout: &Rollout,
    step_id: &StepId,
    now: Timestamp,
) -> Result<Option<RolloutEvent>, StoreError> {
    let task_id = rollout
        .service(&step_id.service)
        .and_then(|s| s.steps.iter().find(|r| &r.step_id == step_id))
        .and_then(|r| r.task_id);
    let Some(task_id) = task_id else {
        // Recorded as started without a task, and the failure with it was not (another server
        // appended between the two).
        return Ok(Some(RolloutEvent::StepFinished {
            status: StepStatus::failed(step_id.clone(), None, "no task could be made for it"),
            at: now,
        }));
    };
    let task = match state.store.task(stored.project_id, TaskId(task_id)).await {
        Ok(task) => task,
        Err(StoreError::NotFound) => {
            return Ok(Some(RolloutEvent::StepFinished {
                status: StepStatus::failed(
                    step_id.clone(),
                    Some(task_id),
                    format!("task {task_id} was deleted before it ended"),
                ),
                at: now,
            }));
        }
        Err(e) => return Err(e),
    };
    if !task.status.is_finished() {
        return Ok(None);
    }
    let count = state.store.task_output_count(TaskId(task_id)).await?;
    let first = (count - ralf_catalog::report::LOG_TAIL_LINES as i64).max(0);
    let tail: Vec<String> = state
        .store
        .task_output(TaskId(task_id), first, None)
        .await?
        .into_iter()
        .map(|line| line.output)
        .collect();
    let report = state.store.step_report(TaskId(task_id)).await?;
    let status = ralf_catalog::step_status(
        step_id.clone(),
        Some(task_id),
        task.status,
        &tail,
        report.as_deref(),
    );
    Ok(Some(RolloutEvent::StepFinished {
        status,
        at: task.end.unwrap_or(now),
    }))
}

/// The task of a step that starts, or why there can be none (its template is gone, or wants
/// answers a rollout cannot give).
async fn step_task(
    state: &AppState,
    stored: &StoredRollout,
    step: &StepToStart,
) -> Result<Result<Step, String>, StoreError> {
    let project_id = stored.project_id.0;
    let templates = Templates::of(state, project_id).await?;
    let Some(template_id) = templates.id(&step.template) else {
        return Ok(Err(format!(
            "the {} {} is no longer in the project (or its name is not unique)",
            step.step_id.kind, step.template
        )));
    };
    let template = match state
        .store
        .template(ProjectId(project_id), TemplateId(template_id))
        .await
    {
        Ok(t) => t,
        Err(StoreError::NotFound) => {
            return Ok(Err(format!("template {template_id} was deleted")));
        }
        Err(e) => return Err(e),
    };
    let message = format!(
        "Catalog rollout {}: {} of {} (step {})",
        stored.id, step.step_id.kind, step.step_id.service, step.step_id
    );
    let request = TaskRequest {
        template_id: Some(template.id),
        message: Some(message.clone()),
        ..TaskRequest::default()
    };
    let fields = match request.fields_for(&template.settings) {
        Ok(fields) => fields,
        Err(e) => {
            return Ok(Err(format!(
                "template {:?}: {}",
                template.settings.name, e.0
            )));
        }
    };
    // A template of the catalog's own repository runs the commit the rollout was planned
    // from, on the branch the catalog was read from.
    let settings = super::settings(&state.store, project_id).await?;
    let (git_branch, commit_hash) =
        if settings.repository_id == Some(template.settings.repository_id) {
            let branch = match settings.branch.clone().filter(|b| !b.trim().is_empty()) {
                Some(branch) => branch,
                None => {
                    state
                        .store
                        .repository(ProjectId(project_id), template.settings.repository_id)
                        .await?
                        .git_branch
                }
            };
            (Some(branch), Some(stored.commit.clone()))
        } else {
            (None, None)
        };
    let secret = fields.secret.as_deref().map(|s| state.cipher.encrypt(s));
    Ok(Ok(Step {
        fields,
        secret,
        template_id: template.id,
        git_branch,
        commit_hash,
        message,
        environment: step.environment.clone(),
    }))
}

/// Appends `events` from number `seq` on (the first with its step's task, created in the same
/// transaction), then tells whoever must know.
async fn record(
    state: &AppState,
    stored: &StoredRollout,
    seq: i64,
    events: &[RolloutEvent],
    step: Option<Box<Step>>,
) -> Result<(), StoreError> {
    let new = step.as_ref().map(|s| NewStepTask {
        environment: &s.environment,
        task: NewTask {
            project_id: stored.project_id,
            template_id: TemplateId(s.template_id),
            user_id: stored.started_by,
            playbook: &s.fields.playbook,
            environment: &s.fields.environment,
            arguments: s.fields.arguments.as_deref(),
            git_branch: s.git_branch.as_deref(),
            commit_hash: s.commit_hash.as_deref(),
            message: &s.message,
            inventory_id: None,
            build_task_id: None,
            version: None,
            params: &s.fields.params,
            integration_id: None,
            schedule_id: None,
            secret: s.secret.as_deref(),
        },
    });
    for (i, event) in events.iter().enumerate() {
        let with_task = if i == 0 { new.as_ref() } else { None };
        let task = state
            .store
            .append_rollout_event(stored.id, seq + i as i64, event, with_task)
            .await?;
        match event {
            RolloutEvent::StepStarted { step_id, .. } => {
                tracing::info!(rollout.id = stored.id.0, step = %step_id,
                    task.id = task.as_ref().map(|t| t.id), "catalog: a step starts");
            }
            RolloutEvent::StepFinished { status, .. } => {
                tracing::info!(rollout.id = stored.id.0, step = %status.step_id,
                    result = ?status.result, summary = %status.summary, "catalog: a step ended");
                super::advisor::diagnose(state, stored, status);
            }
            _ => {}
        }
        if let Some(task) = task {
            queued(state, stored, &task).await;
        }
    }
    Ok(())
}

/// A step's task is queued: its first line, the live news, the dispatchers, the activity log.
async fn queued(state: &AppState, stored: &StoredRollout, task: &Task) {
    let line = format!(
        "Task {} added to queue by catalog rollout {}",
        task.id, stored.id
    );
    if let Err(e) = state
        .store
        .append_task_output(TaskId(task.id), &[(Timestamp::now(), line)])
        .await
    {
        tracing::warn!(error = %e, task.id = task.id, "could not write the first line");
    }
    crate::dispatch::announce(
        state,
        task.id,
        task.project_id,
        task.template_id,
        TaskStatus::Waiting,
    );
    state.task_queue.changed();
    state
        .event(NewEvent {
            project_id: Some(task.project_id),
            user_id: stored.started_by,
            object_id: Some(task.id),
            object_type: "task",
            description: format!(
                "Task ID {} queued for running by catalog rollout {}",
                task.id, stored.id
            ),
        })
        .await;
}

/// Nothing more to do now: records how the rollout and its services stand (when it changed),
/// and ends it when it is done.
async fn settle(
    state: &AppState,
    stored: &StoredRollout,
    rollout: &Rollout,
    now_state: RolloutState,
    changed: bool,
) -> Result<(), StoreError> {
    let finished = now_state.is_finished();
    if !changed && !finished && now_state == stored.state {
        return Ok(());
    }
    let outcomes: Vec<ServiceRecord> = rollout
        .services()
        .iter()
        .filter(|p| is_outcome(p.state))
        .map(|p| {
            let last = p.last_status();
            ServiceRecord {
                name: p.name.clone(),
                state: p.state,
                deployed_at: p.deployed_at,
                // Applied by this rollout (a smoke alone changes neither).
                commit: p.deployed_at.map(|_| stored.commit.clone()),
                last_status: last.cloned(),
                last_task_id: last.and_then(|s| s.task_id),
            }
        })
        .collect();
    let at = finished.then(Timestamp::now);
    let changed_here = state
        .store
        .update_rollout(stored.project_id, stored.id, now_state, at, &outcomes)
        .await?;
    if finished && changed_here {
        super::write_back::after_rollout(state, stored, rollout);
        tracing::info!(
            rollout.id = stored.id.0,
            state = now_state.as_str(),
            "catalog: a rollout ended"
        );
        state
            .event(NewEvent {
                project_id: Some(stored.project_id.0),
                user_id: None,
                object_id: Some(stored.id.0),
                object_type: "catalog_rollout",
                description: format!(
                    "Catalog rollout {} ended: {}",
                    stored.id,
                    now_state.as_str()
                ),
            })
            .await;
    }
    announce_state(state, stored, rollout, now_state);
    Ok(())
}

/// The states a service ends a rollout in, which are recorded as its last outcome.
fn is_outcome(state: ServiceState) -> bool {
    state.is_up() || state.is_down()
}
