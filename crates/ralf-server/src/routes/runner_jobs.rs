//! The work of remote runners (`/api/internal/runners/...`, authenticated by the runner's own
//! token): a runner polls for jobs and for news of the tasks it holds, streams each task's
//! output, and reports its status changes. The wire types are `ralf_core::runner_wire`'s.
//!
//! Claims go through the same [`limits::pick`] and store transaction as the server's own
//! dispatcher, so the global, project and template limits hold across servers and runners.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use ralf_core::api::runners::Runner;
use ralf_core::job::Job;
use ralf_core::runner_wire::{HeldTask, OutputBatch, Poll, PollAnswer, StatusAnswer, StatusReport};
use ralf_core::{ProjectId, TaskId, TaskStatus, Timestamp};
use ralf_store::dispatch::Claimant;
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::RunnerAuth;
use crate::dispatch::{self, LOOKAHEAD, job, limits, output};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Ids, JsonBody};
use crate::state::AppState;

/// The longest a poll is held back while there is nothing to tell; a runner polls again at
/// once, so this is also the longest between two of its heartbeats (well inside
/// [`crate::cluster::LEASES`]).
pub const POLL_WAIT: Duration = Duration::from_secs(10);

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(poll))
        .routes(routes!(task_output))
        .routes(routes!(task_status))
}

#[derive(Deserialize)]
struct TaskPath {
    task_id: i64,
}

/// A runner asks for jobs and for news of the tasks it holds; also its heartbeat. Answers at
/// once when there is a job or news, else after at most `wait_secs` (capped at 10 s).
#[utoipa::path(post, path = "/api/internal/runners/poll", tag = "runner", security(()),
    request_body = serde_json::Value,
    responses((status = 200, body = serde_json::Value), (status = 401), (status = 403)))]
async fn poll(
    RunnerAuth(runner): RunnerAuth,
    State(state): State<AppState>,
    JsonBody(poll): JsonBody<Poll>,
) -> ApiResult<Json<PollAnswer>> {
    let deadline =
        tokio::time::Instant::now() + POLL_WAIT.min(Duration::from_secs(poll.wait_secs.into()));
    let mut changes = state.task_queue.changes();
    forget_lost_tasks(&state, &runner, &poll.holding).await?;
    loop {
        changes.mark_unchanged();
        let jobs = if poll.free > 0 {
            claim(&state, &runner, poll.free).await?
        } else {
            Vec::new()
        };
        let held = held_now(&state, &poll.holding).await?;
        let news = held
            .iter()
            .zip(&poll.holding)
            .any(|(now, known)| now != known);
        if !jobs.is_empty() || news || tokio::time::Instant::now() >= deadline {
            return Ok(Json(PollAnswer { jobs, held }));
        }
        // Nothing yet: wait for a change in the queue (here or on another server), or the
        // deadline. Touch the runner's row when waking, so a long wait is a heartbeat too.
        if tokio::time::timeout_at(deadline, changes.changed())
            .await
            .is_err()
        {
            return Ok(Json(PollAnswer { jobs, held }));
        }
        state
            .store
            .touch_runner(runner.id, Timestamp::now())
            .await?;
    }
}

/// Claims up to `free` tasks for the runner and builds their jobs; a task whose job cannot be
/// built ends in error here, saying why.
async fn claim(state: &AppState, runner: &Runner, free: u32) -> ApiResult<Vec<Job>> {
    let own_cap = runner.task_cap().unwrap_or(0);
    let taker = limits::Taker::Runner {
        id: runner.id,
        project_id: runner.project_id,
        tags: &runner.tags,
        max_parallel_tasks: own_cap,
    };
    let global = state.settings.max_parallel_tasks as usize;
    let free = free as usize;
    let claimed = state
        .store
        .claim_tasks(Claimant::Runner(runner.id), LOOKAHEAD, |queued, active| {
            let mut picked = limits::pick(&taker, global, queued, active);
            picked.truncate(free);
            picked
        })
        .await?;
    let mut jobs = Vec::with_capacity(claimed.len());
    for task in claimed {
        dispatch::announce(
            state,
            task.id,
            task.project_id,
            task.template_id,
            TaskStatus::Starting,
        );
        let prepared = match state
            .store
            .task(ProjectId(task.project_id), TaskId(task.id))
            .await
        {
            Ok(stored) => job::prepare(state, &stored)
                .await
                .map_err(|e| format!("cannot prepare the task: {e:#}")),
            Err(e) => Err(format!("cannot load the task: {e}")),
        };
        match prepared {
            Ok(prepared) => {
                tracing::info!(
                    task.id = task.id,
                    runner.id = runner.id,
                    "task handed to a runner"
                );
                jobs.push(prepared.job);
            }
            Err(message) => {
                say(state, task.id, task.project_id, message).await;
                dispatch::finish(
                    state,
                    task.id,
                    task.project_id,
                    task.template_id,
                    TaskStatus::Error,
                )
                .await;
            }
        }
    }
    Ok(jobs)
}

/// Settles the tasks the store says this runner holds but the runner does not (it restarted,
/// or never received the job): nobody runs them any more, so they end in error, or go back to
/// the queue where their template allows it.
async fn forget_lost_tasks(
    state: &AppState,
    runner: &Runner,
    holding: &[HeldTask],
) -> ApiResult<()> {
    for task in state.store.runner_tasks(runner.id).await? {
        if holding.iter().any(|h| h.task_id == task.id) {
            continue;
        }
        let now = Timestamp::now();
        if let Some(settled) = state
            .store
            .settle_task_lost_by_runner(TaskId(task.id), runner.id, &runner.name, now)
            .await?
        {
            crate::cluster::announce_settled(state, settled, now);
        }
    }
    Ok(())
}

/// The status now of each task a runner names.
async fn held_now(state: &AppState, holding: &[HeldTask]) -> ApiResult<Vec<HeldTask>> {
    let ids: Vec<i64> = holding.iter().map(|h| h.task_id).collect();
    let statuses: HashMap<i64, TaskStatus> =
        state.store.task_statuses(&ids).await?.into_iter().collect();
    Ok(ids
        .into_iter()
        .map(|task_id| HeldTask {
            task_id,
            status: statuses.get(&task_id).copied(),
        })
        .collect())
}

/// The next output lines of a task the runner holds.
#[utoipa::path(post, path = "/api/internal/runners/tasks/{task_id}/output", tag = "runner",
    security(()), params(("task_id" = i64, Path)), request_body = serde_json::Value,
    responses((status = 204), (status = 401), (status = 403), (status = 409, body = ralf_core::api::ErrorBody)))]
async fn task_output(
    RunnerAuth(runner): RunnerAuth,
    State(state): State<AppState>,
    Ids(TaskPath { task_id }): Ids<TaskPath>,
    JsonBody(batch): JsonBody<OutputBatch>,
) -> ApiResult<axum::http::StatusCode> {
    let task = held_by(&state, &runner, task_id).await?;
    if let Some(checkout) = &batch.checkout {
        state
            .store
            .set_task_checkout(
                TaskId(task_id),
                &checkout.commit_hash,
                &checkout.commit_message,
            )
            .await?;
    }
    if !batch.lines.is_empty() {
        let lines = Arc::new(
            batch
                .lines
                .into_iter()
                .map(|(time, text)| (Timestamp(time), text))
                .collect(),
        );
        output::store_and_announce(&state.store, &state.live, task_id, task.project_id, &lines)
            .await?;
    }
    Ok(axum::http::StatusCode::NO_CONTENT)
}

/// A task the runner holds moved on.
#[utoipa::path(post, path = "/api/internal/runners/tasks/{task_id}/status", tag = "runner",
    security(()), params(("task_id" = i64, Path)), request_body = serde_json::Value,
    responses((status = 200, body = serde_json::Value), (status = 400, body = ralf_core::api::ErrorBody),
        (status = 401), (status = 403), (status = 409, body = ralf_core::api::ErrorBody)))]
async fn task_status(
    RunnerAuth(runner): RunnerAuth,
    State(state): State<AppState>,
    Ids(TaskPath { task_id }): Ids<TaskPath>,
    JsonBody(report): JsonBody<StatusReport>,
) -> ApiResult<Json<StatusAnswer>> {
    let reported = report.status;
    let task = held_by(&state, &runner, task_id).await?;
    let accepted = match reported {
        TaskStatus::Running => {
            // It began: from `starting`, or from `confirmed` to apply a plan.
            let mut moved = false;
            for from in [TaskStatus::Starting, TaskStatus::Confirmed] {
                if state
                    .store
                    .set_task_status(TaskId(task_id), from, TaskStatus::Running, Timestamp::now())
                    .await?
                {
                    moved = true;
                    break;
                }
            }
            if !moved {
                // A report sent again after its answer was lost finds the task running.
                moved =
                    state.store.task_status(TaskId(task_id)).await? == Some(TaskStatus::Running);
            } else {
                dispatch::announce(
                    &state,
                    task_id,
                    task.project_id,
                    task.template_id,
                    TaskStatus::Running,
                );
            }
            moved
        }
        TaskStatus::WaitingConfirmation
        | TaskStatus::Success
        | TaskStatus::Error
        | TaskStatus::Stopped => {
            let moved =
                dispatch::finish(&state, task_id, task.project_id, task.template_id, reported)
                    .await;
            state.task_queue.changed();
            moved
        }
        other => {
            return Err(ApiError::bad_request(format!(
                "a runner cannot report a task {other}"
            )));
        }
    };
    Ok(Json(StatusAnswer { accepted }))
}

/// The task, when this runner holds it; 409 otherwise (it was ended meanwhile, say by a sweep
/// that took the runner for lost), so the runner stops it.
async fn held_by(
    state: &AppState,
    runner: &Runner,
    task_id: i64,
) -> ApiResult<ralf_store::dispatch::HeldTask> {
    match state.store.task_holder(TaskId(task_id)).await? {
        Some(task) if task.runner_id == Some(runner.id) => Ok(task),
        Some(_) => Err(ApiError::Conflict(format!(
            "task {task_id} is not held by this runner"
        ))),
        None => Err(ApiError::NotFound(format!("no task {task_id}"))),
    }
}

/// A line of ralf's own after a task's output.
async fn say(state: &AppState, task_id: i64, project_id: i64, line: String) {
    let lines = Arc::new(vec![(Timestamp::now(), line)]);
    if let Err(e) =
        output::store_and_announce(&state.store, &state.live, task_id, project_id, &lines).await
    {
        tracing::error!(task.id = task_id, error = %e, "could not write a line to the task's output");
    }
}
