//! The scheduler: creates the tasks of due schedules, once per firing however many servers
//! share the database.
//!
//! Each schedule row carries its `next_run`. The scheduler reads the active schedules, and for
//! each one whose `next_run` has come it works out the one after (the next cron time after
//! *now*, so firings missed while every server was down are made up once, not once per missed
//! minute; `None` for a `run_at` schedule, which is then switched off) and asks the store to
//! move `next_run` from the value it read to that one and insert the task, in one transaction
//! ([`ralf_store::Store::fire_schedule`]). Of several servers that saw the same firing due,
//! only the one whose compare-and-set changed the row creates the task.
//!
//! It then sleeps until the soonest `next_run` (at most [`MAX_SLEEP`]), or until the API says
//! a schedule changed. A failed look is logged and retried after [`RETRY`]; the loop runs under
//! [`crate::supervise`], which logs a panic and starts it again. Cron times are in UTC.

use std::time::Duration;

use ralf_core::api::events::NewEvent;
use ralf_core::api::schedules::{Schedule, next_cron_time};
use ralf_core::api::tasks::TaskRequest;
use ralf_core::{ProjectId, TaskId, TaskStatus, TemplateId, Timestamp};
use ralf_store::StoreError;
use ralf_store::schedules::Firing;
use ralf_store::tasks::NewTask;
use tokio::sync::Notify;

use crate::dispatch::live::LiveEvent;
use crate::state::AppState;

/// The longest the scheduler sleeps without looking (other servers may have changed a
/// schedule without waking this one).
pub const MAX_SLEEP: Duration = Duration::from_secs(30);
/// How long it waits after a failed look before the next.
pub const RETRY: Duration = Duration::from_secs(5);

/// Wakes the scheduler when a schedule was created, changed or deleted through this server.
#[derive(Debug, Default)]
pub struct ScheduleWakeup(Notify);

impl ScheduleWakeup {
    /// A schedule changed: look again now. A signal sent while the scheduler is busy is kept
    /// for its next wait.
    pub fn changed(&self) {
        self.0.notify_one();
    }
}

/// Runs until the task is aborted.
pub async fn run(state: AppState) {
    loop {
        let wait = match look(&state).await {
            Ok(soonest) => until(soonest),
            Err(e) => {
                tracing::error!(error = %e, "scheduler: reading the schedules failed; retrying");
                RETRY
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = state.schedules.0.notified() => {}
        }
    }
}

/// How long to sleep until `soonest` (a little past it, so it is due when we wake).
fn until(soonest: Option<Timestamp>) -> Duration {
    let Some(soonest) = soonest else {
        return MAX_SLEEP;
    };
    let ms = (soonest.0 - Timestamp::now().0).num_milliseconds().max(0) + 5;
    Duration::from_millis(ms as u64).min(MAX_SLEEP)
}

/// Fires every due schedule; returns the soonest next firing.
async fn look(state: &AppState) -> Result<Option<Timestamp>, StoreError> {
    // The service catalogs' schedules fire here too (see `catalog::schedule`).
    let now = Timestamp::now();
    let mut soonest = match crate::catalog::schedule::look(state).await {
        Ok(soonest) => soonest,
        Err(e) => {
            tracing::error!(error = %e, "scheduler: firing the catalogs' schedules failed; retrying");
            Some(Timestamp(now.0 + RETRY))
        }
    };
    for schedule in state.store.pending_schedules().await? {
        let Some(due) = schedule.next_run else {
            continue;
        };
        let next = if due <= now {
            match fire(state, &schedule, due, now).await {
                Ok(next) => next,
                Err(e) => {
                    tracing::error!(error = %e, schedule_id = schedule.id,
                        "scheduler: firing a schedule failed; it is tried again");
                    Some(Timestamp(Timestamp::now().0 + RETRY))
                }
            }
        } else {
            Some(due)
        };
        if let Some(next) = next {
            soonest = Some(soonest.map_or(next, |s| s.min(next)));
        }
    }
    Ok(soonest)
}

/// Claims one due firing and, if this server won it, queues its task. Returns when the
/// schedule fires next as far as this server knows.
async fn fire(
    state: &AppState,
    schedule: &Schedule,
    due: Timestamp,
    now: Timestamp,
) -> Result<Option<Timestamp>, StoreError> {
    let next = if schedule.kind == ralf_core::api::schedules::RUN_AT {
        None
    } else {
        let next = next_cron_time(&schedule.cron_format, now);
        if next.is_none() {
            tracing::warn!(schedule_id = schedule.id, cron = %schedule.cron_format,
                "scheduler: the cron pattern matches no later time; the schedule is switched off");
        }
        next
    };
    let template = match state
        .store
        .template(
            ProjectId(schedule.project_id),
            TemplateId(schedule.template_id),
        )
        .await
    {
        Ok(t) => Some(t),
        // Deleting the template deletes the schedule too; it is gone by the next look.
        Err(StoreError::NotFound) => return Ok(None),
        Err(e) => return Err(e),
    };
    let request = task_request(schedule);
    let fields = match template.as_ref().map(|t| request.fields_for(&t.settings)) {
        Some(Ok(fields)) => Some(fields),
        Some(Err(e)) => {
            tracing::warn!(schedule_id = schedule.id, reason = %e.0,
                "scheduler: the schedule's task overrides no longer suit its template");
            None
        }
        None => None,
    };
    // A schedule made before secret answers were refused keeps them in its environment: they
    // are taken out and kept encrypted like any secret answer.
    let secret = fields
        .as_ref()
        .and_then(|f| f.secret.as_deref())
        .map(|s| state.cipher.encrypt(s));
    let new = fields.as_ref().map(|f| NewTask {
        project_id: ProjectId(schedule.project_id),
        template_id: TemplateId(schedule.template_id),
        user_id: None,
        playbook: &f.playbook,
        environment: &f.environment,
        arguments: f.arguments.as_deref(),
        git_branch: f.git_branch.as_deref(),
        commit_hash: f.commit_hash.as_deref(),
        message: &f.message,
        inventory_id: request.inventory_id.filter(|&id| id != 0),
        build_task_id: request.build_task_id.filter(|&id| id != 0),
        version: None,
        params: &f.params,
        integration_id: None,
        schedule_id: Some(schedule.id),
        secret: secret.as_deref(),
    });
    match state
        .store
        .fire_schedule(schedule.id, due, next, new.as_ref())
        .await?
    {
        Firing::Fired(task) => {
            tracing::info!(schedule_id = schedule.id, task_id = task.id, due = %due,
                "scheduler: queued a task");
            let line = format!(
                "Task {} added to queue by schedule {}",
                task.id,
                label(schedule)
            );
            if let Err(e) = state
                .store
                .append_task_output(TaskId(task.id), &[(Timestamp::now(), line)])
                .await
            {
                tracing::warn!(error = %e, task_id = task.id, "could not write the first line");
            }
            state.live.publish(LiveEvent::Status {
                task_id: task.id,
                project_id: task.project_id,
                template_id: task.template_id,
                status: TaskStatus::Waiting,
            });
            state.task_queue.changed();
            state
                .event(NewEvent {
                    project_id: Some(task.project_id),
                    user_id: None,
                    object_id: Some(task.id),
                    object_type: "task",
                    description: format!(
                        "Task ID {} queued for running by schedule {}",
                        task.id,
                        label(schedule)
                    ),
                })
                .await;
        }
        Firing::Skipped(reason) => {
            tracing::warn!(schedule_id = schedule.id, %reason,
                "scheduler: a firing made no task");
            state
                .event(NewEvent {
                    project_id: Some(schedule.project_id),
                    user_id: None,
                    object_id: Some(schedule.id),
                    object_type: "schedule",
                    description: format!("Schedule {} made no task: {reason}", label(schedule)),
                })
                .await;
        }
        Firing::Lost => {
            tracing::debug!(
                schedule_id = schedule.id,
                "scheduler: another server fired it"
            );
            // Whatever the winner set; the next look reads it.
            return Ok(Some(Timestamp::now()));
        }
    }
    Ok(next)
}

/// The overrides of a schedule's task, as `POST /tasks` takes them, for its template.
fn task_request(schedule: &Schedule) -> TaskRequest {
    TaskRequest {
        template_id: Some(schedule.template_id),
        template_name: None,
        secret: None,
        ..schedule.task_params.clone().unwrap_or_default()
    }
}

fn label(schedule: &Schedule) -> String {
    if schedule.name.is_empty() {
        format!("ID {}", schedule.id)
    } else {
        schedule.name.clone()
    }
}
