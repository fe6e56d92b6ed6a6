//! Tasks: start one from a template, list and read them with their output, stop, confirm or
//! reject them, delete finished ones. Nothing runs here: a new task is stored as `waiting` and
//! the dispatcher is woken through [`crate::task_queue::TaskQueue`].
//!
//! Every status change goes through `TaskStatus::can_become` and is a compare-and-set in the
//! store, so of two concurrent requests on the same task only one changes it.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderName;
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use ralf_core::api::events::NewEvent;
use ralf_core::api::tasks::{StopRequest, Task, TaskOutput, TaskRequest};
use ralf_core::api::templates::Template;
use ralf_core::api::{ErrorBody, Order};
use ralf_core::{ProjectId, TaskId, TaskStatus, TemplateId, Timestamp};
use ralf_store::StoreError;
use ralf_store::tasks::{MAX_TASK_PAGE, NewTask, TaskQuery};
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::access::{ManageResources, ProjectAccess, Read, RunTasks};
use crate::auth::Admin;
use crate::dispatch::live::LiveEvent;
use crate::error::{ApiError, ApiResult, OrNotFound};
use crate::extract::{Ids, JsonBody, OptionalJsonBody, Params};
use crate::state::AppState;

mod log;

/// The most tasks `…/tasks/last` returns.
const MAX_LAST: i64 = 200;
/// The header of `…/output` with the task's number of output lines.
const TOTAL_COUNT: &str = "x-total-count";
/// How often a stop retries when the task changes status under it.
const STOP_ATTEMPTS: usize = 5;

/// The task named by `{task_id}` in the path.
#[derive(Deserialize)]
struct TaskPath {
    task_id: i64,
}

/// The template named by `{template_id}` in the path.
#[derive(Deserialize)]
struct TemplatePath {
    template_id: i64,
}

/// Which tasks a list returns: newest first unless `order=asc`; page with `before_id` (the
/// last id of the previous page) or `offset`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct TaskListQuery {
    /// At most this many tasks (default and cap: 1000; 200 for `…/last`).
    limit: Option<i64>,
    /// Skip this many tasks first.
    offset: Option<i64>,
    /// Only tasks with a smaller id.
    before_id: Option<i64>,
    /// `id` (default), `created`, `status` or `template`.
    sort: Option<String>,
    /// `desc` (default) or `asc`.
    #[param(value_type = Option<String>)]
    order: Option<Order>,
    /// Only tasks in this status; several as a comma list.
    status: Option<String>,
    /// Only tasks of this template.
    template_id: Option<i64>,
    /// ralf: only tasks started by this user.
    user_id: Option<i64>,
    /// ralf: only tasks created at or after this time (RFC 3339).
    #[param(value_type = Option<String>)]
    created_from: Option<Timestamp>,
    /// ralf: only tasks created before this time (RFC 3339).
    #[param(value_type = Option<String>)]
    created_until: Option<Timestamp>,
}

/// A slice of a long output.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct OutputQuery {
    /// The first line to return, counted from 0.
    offset: Option<i64>,
    /// At most this many lines (default: all).
    limit: Option<i64>,
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(last))
        .routes(routes!(get, delete))
        .routes(routes!(output))
        .routes(routes!(raw_output))
        .routes(routes!(stop))
        .routes(routes!(confirm))
        .routes(routes!(reject))
        .routes(routes!(template_tasks, template_tasks_post))
        .routes(routes!(template_tasks_last))
        .routes(routes!(stop_all_tasks))
        .routes(routes!(active_tasks))
}

/// The statuses of a task that has not finished.
fn active_statuses() -> Vec<TaskStatus> {
    TaskStatus::ALL
        .into_iter()
        .filter(|s| !s.is_finished())
        .collect()
}

/// The queued and running tasks of every project (administrators only), newest first.
#[utoipa::path(get, path = "/api/tasks", tag = "task",
    responses((status = 200, body = [Task]), (status = 403, body = ErrorBody)))]
async fn active_tasks(_admin: Admin, State(state): State<AppState>) -> ApiResult<Response> {
    let statuses = active_statuses();
    let query = TaskQuery {
        statuses: &statuses,
        ..Default::default()
    };
    Ok(json_body(state.store.task_page_json(&query).await?))
}

/// Stops every task of the template that has not finished (`force` kills running ones at once).
#[utoipa::path(post, path = "/api/project/{project_id}/templates/{template_id}/stop_all_tasks", tag = "template",
    params(("project_id" = i64, Path), ("template_id" = i64, Path)), request_body = StopRequest,
    responses((status = 204), (status = 403), (status = 404, body = ErrorBody)))]
async fn stop_all_tasks(
    access: ProjectAccess<RunTasks>,
    State(state): State<AppState>,
    Ids(TemplatePath { template_id }): Ids<TemplatePath>,
    OptionalJsonBody(StopRequest { force }): OptionalJsonBody<StopRequest>,
) -> ApiResult<StatusCode> {
    template_of(&state, access.project_id, TemplateId(template_id)).await?;
    let statuses = active_statuses();
    loop {
        let query = TaskQuery {
            template_id: Some(TemplateId(template_id)),
            statuses: &statuses,
            ..Default::default()
        };
        let tasks = state.store.tasks(access.project_id, &query).await?;
        let mut stopped_any = false;
        for task in &tasks {
            // Asking a stopping task to stop again changes nothing, so a page of tasks that
            // are all stopping already ends the loop.
            if task.status == TaskStatus::Stopping && !force {
                continue;
            }
            match stop_task(&state, &access, task.id, force).await {
                Ok(_) => stopped_any = true,
                // Finished (or deleted) meanwhile.
                Err(ApiError::Conflict(_) | ApiError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        if !stopped_any || (tasks.len() as i64) < MAX_TASK_PAGE {
            return Ok(StatusCode::NO_CONTENT);
        }
    }
}

/// Starts a task of a template: stored as `waiting`, with a first output line, and handed to
/// the dispatcher.
#[utoipa::path(post, path = "/api/project/{project_id}/tasks", tag = "task",
    params(("project_id" = i64, Path)), request_body = TaskRequest,
    responses((status = 201, body = Task), (status = 400, body = ErrorBody), (status = 403), (status = 404)))]
async fn create(
    access: ProjectAccess<RunTasks>,
    State(state): State<AppState>,
    JsonBody(body): JsonBody<TaskRequest>,
) -> ApiResult<(StatusCode, Json<Task>)> {
    let template = requested_template(&state, access.project_id, &body).await?;
    let fields = body.fields_for(&template.settings)?;

    // Secret answers are kept encrypted beside the task until it runs, never in the clear.
    let secret = fields.secret.as_deref().map(|s| state.cipher.encrypt(s));
    let task = state
        .store
        .create_task(&NewTask {
            project_id: access.project_id,
            template_id: TemplateId(template.id),
            user_id: Some(access.user.id),
            playbook: &fields.playbook,
            environment: &fields.environment,
            arguments: fields.arguments.as_deref(),
            git_branch: fields.git_branch.as_deref(),
            commit_hash: fields.commit_hash.as_deref(),
            message: &fields.message,
            inventory_id: body.inventory_id.filter(|&id| id != 0),
            build_task_id: body.build_task_id.filter(|&id| id != 0),
            version: None,
            params: &fields.params,
            integration_id: None,
            schedule_id: None,
            secret: secret.as_deref(),
        })
        .await?;
    line(&state, task.id, format!("Task {} added to queue", task.id)).await?;
    announce(&state, &task, TaskStatus::Waiting);
    state.task_queue.changed();
    state
        .event(NewEvent {
            project_id: Some(access.project_id.0),
            user_id: Some(access.user.id),
            object_id: Some(task.id),
            object_type: "task",
            description: format!("Task ID {} queued for running", task.id),
        })
        .await;
    Ok((StatusCode::CREATED, Json(task)))
}

/// The project's tasks, newest first (at most 1000 a call).
#[utoipa::path(get, path = "/api/project/{project_id}/tasks", tag = "task",
    params(("project_id" = i64, Path), TaskListQuery),
    responses((status = 200, body = [Task]), (status = 400, body = ErrorBody)))]
async fn list(
    access: ProjectAccess<Read>,
    State(state): State<AppState>,
    Params(q): Params<TaskListQuery>,
) -> ApiResult<Response> {
    page(&state, &access, None, &q, MAX_TASK_PAGE).await
}

/// The project's newest tasks (`?limit=`, at most 200).
#[utoipa::path(get, path = "/api/project/{project_id}/tasks/last", tag = "task",
    params(("project_id" = i64, Path), TaskListQuery),
    responses((status = 200, body = [Task]), (status = 400, body = ErrorBody)))]
async fn last(
    access: ProjectAccess<Read>,
    State(state): State<AppState>,
    Params(q): Params<TaskListQuery>,
) -> ApiResult<Response> {
    page(&state, &access, None, &q, MAX_LAST).await
}

#[utoipa::path(get, path = "/api/project/{project_id}/tasks/{task_id}", tag = "task",
    params(("project_id" = i64, Path), ("task_id" = i64, Path)),
    responses((status = 200, body = Task), (status = 404, body = ErrorBody)))]
async fn get(
    access: ProjectAccess<Read>,
    State(state): State<AppState>,
    Ids(TaskPath { task_id }): Ids<TaskPath>,
) -> ApiResult<Json<Task>> {
    Ok(Json(
        state
            .store
            .task(access.project_id, TaskId(task_id))
            .await
            .or_not_found("task")?,
    ))
}

/// Deletes a task with its output. A task that has not finished is stopped at once first (its
/// process killed), as Semaphore does.
#[utoipa::path(delete, path = "/api/project/{project_id}/tasks/{task_id}", tag = "task",
    params(("project_id" = i64, Path), ("task_id" = i64, Path)),
    responses((status = 204), (status = 403), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn delete(
    access: ProjectAccess<ManageResources>,
    State(state): State<AppState>,
    Ids(TaskPath { task_id }): Ids<TaskPath>,
) -> ApiResult<StatusCode> {
    let task = state
        .store
        .task(access.project_id, TaskId(task_id))
        .await
        .or_not_found("task")?;
    if !task.status.is_finished() {
        match stop_task(&state, &access, task_id, true).await {
            // Finished meanwhile: nothing to stop.
            Ok(_) | Err(ApiError::Conflict(_)) => {}
            Err(e) => return Err(e),
        }
    }
    state
        .store
        .delete_task(access.project_id, TaskId(task_id))
        .await
        .or_not_found("task")?;
    state
        .event(NewEvent {
            project_id: Some(access.project_id.0),
            user_id: Some(access.user.id),
            object_id: Some(task_id),
            object_type: "task",
            description: format!("Task ID {task_id} deleted"),
        })
        .await;
    Ok(StatusCode::NO_CONTENT)
}

/// The task's output lines in order; `?offset=` and `?limit=` read a slice of a long one.
/// Streamed a page at a time, so a long output never sits in memory whole.
/// `X-Total-Count` says how many lines the task has, so a client can page through them.
#[utoipa::path(get, path = "/api/project/{project_id}/tasks/{task_id}/output", tag = "task",
    params(("project_id" = i64, Path), ("task_id" = i64, Path), OutputQuery),
    responses((status = 200, body = [TaskOutput],
            headers(("X-Total-Count" = i64, description = "How many output lines the task has"))),
        (status = 404, body = ErrorBody)))]
async fn output(
    access: ProjectAccess<Read>,
    State(state): State<AppState>,
    Ids(TaskPath { task_id }): Ids<TaskPath>,
    Params(q): Params<OutputQuery>,
) -> ApiResult<Response> {
    let offset = q.offset.unwrap_or(0);
    if offset < 0 {
        return Err(ApiError::bad_request("offset must not be negative"));
    }
    if q.limit.is_some_and(|l| l < 0) {
        return Err(ApiError::bad_request("limit must not be negative"));
    }
    let task = state
        .store
        .task(access.project_id, TaskId(task_id))
        .await
        .or_not_found("task")?;
    // Counted before reading: a line written in between may be in the answer beyond the count.
    let total = state.store.task_output_count(TaskId(task.id)).await?;
    let end = q.limit.map_or(i64::MAX, |l| offset.saturating_add(l));
    let body = log::json_body(state.store.clone(), TaskId(task.id), offset, end);
    Ok((
        [
            (CONTENT_TYPE, "application/json".to_owned()),
            (HeaderName::from_static(TOTAL_COUNT), total.to_string()),
        ],
        body,
    )
        .into_response())
}

/// The task's output as plain text, one line per output line; streamed like `output`.
#[utoipa::path(get, path = "/api/project/{project_id}/tasks/{task_id}/raw_output", tag = "task",
    params(("project_id" = i64, Path), ("task_id" = i64, Path)),
    responses((status = 200, body = String, content_type = "text/plain"), (status = 404, body = ErrorBody)))]
async fn raw_output(
    access: ProjectAccess<Read>,
    State(state): State<AppState>,
    Ids(TaskPath { task_id }): Ids<TaskPath>,
) -> ApiResult<Response> {
    let task = state
        .store
        .task(access.project_id, TaskId(task_id))
        .await
        .or_not_found("task")?;
    Ok((
        [(CONTENT_TYPE, "text/plain; charset=utf-8")],
        log::text_body(state.store.clone(), TaskId(task.id)),
    )
        .into_response())
}

/// Stops a task: a waiting one (or any, with `force`) is `stopped` at once, an active one
/// becomes `stopping` until its process ends. A finished task is a 409.
#[utoipa::path(post, path = "/api/project/{project_id}/tasks/{task_id}/stop", tag = "task",
    params(("project_id" = i64, Path), ("task_id" = i64, Path)), request_body = StopRequest,
    responses((status = 204), (status = 403), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn stop(
    access: ProjectAccess<RunTasks>,
    State(state): State<AppState>,
    Ids(TaskPath { task_id }): Ids<TaskPath>,
    OptionalJsonBody(StopRequest { force }): OptionalJsonBody<StopRequest>,
) -> ApiResult<StatusCode> {
    stop_task(&state, &access, task_id, force).await
}

/// Stops a task (see [`stop`]); a finished one is a 409.
async fn stop_task<N>(
    state: &AppState,
    access: &ProjectAccess<N>,
    task_id: i64,
    force: bool,
) -> ApiResult<StatusCode> {
    for _ in 0..STOP_ATTEMPTS {
        let task = state
            .store
            .task(access.project_id, TaskId(task_id))
            .await
            .or_not_found("task")?;
        let from = task.status;
        if from.is_finished() {
            return Err(ApiError::Conflict(format!(
                "task {task_id} is {from} already; a finished task cannot be stopped"
            )));
        }
        let to = if force || from == TaskStatus::Waiting {
            TaskStatus::Stopped
        } else {
            TaskStatus::Stopping
        };
        if from == to {
            // Asked to stop a task that is stopping already: nothing more to do.
            return Ok(StatusCode::NO_CONTENT);
        }
        if !from.can_become(to) {
            return Err(ApiError::Conflict(format!(
                "task {task_id} is {from}; it cannot become {to}"
            )));
        }
        if !state
            .store
            .set_task_status(TaskId(task_id), from, to, Timestamp::now())
            .await?
        {
            continue; // Changed under us: look again.
        }
        let who = &access.user.username;
        let text = if to == TaskStatus::Stopped {
            format!("Task stopped by {who}")
        } else {
            format!("Task stop requested by {who}")
        };
        line(state, task_id, text).await?;
        announce(state, &task, to);
        state.task_queue.changed();
        task_event(state, access, task_id, to).await;
        return Ok(StatusCode::NO_CONTENT);
    }
    Err(ApiError::Conflict(format!(
        "task {task_id} kept changing status; try again"
    )))
}

/// Confirms a task waiting for confirmation (a Terraform plan), so it applies.
#[utoipa::path(post, path = "/api/project/{project_id}/tasks/{task_id}/confirm", tag = "task",
    params(("project_id" = i64, Path), ("task_id" = i64, Path)),
    responses((status = 204), (status = 403), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn confirm(
    access: ProjectAccess<RunTasks>,
    State(state): State<AppState>,
    Ids(TaskPath { task_id }): Ids<TaskPath>,
) -> ApiResult<StatusCode> {
    decide(&state, &access, task_id, TaskStatus::Confirmed).await
}

/// Rejects a task waiting for confirmation: it ends without applying.
#[utoipa::path(post, path = "/api/project/{project_id}/tasks/{task_id}/reject", tag = "task",
    params(("project_id" = i64, Path), ("task_id" = i64, Path)),
    responses((status = 204), (status = 403), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn reject(
    access: ProjectAccess<RunTasks>,
    State(state): State<AppState>,
    Ids(TaskPath { task_id }): Ids<TaskPath>,
) -> ApiResult<StatusCode> {
    decide(&state, &access, task_id, TaskStatus::Rejected).await
}

/// The template's tasks, newest first (at most 1000 a call; the list's filters apply).
#[utoipa::path(get, path = "/api/project/{project_id}/templates/{template_id}/tasks", tag = "task",
    params(("project_id" = i64, Path), ("template_id" = i64, Path), TaskListQuery),
    responses((status = 200, body = [Task]), (status = 404, body = ErrorBody)))]
async fn template_tasks(
    access: ProjectAccess<Read>,
    State(state): State<AppState>,
    Ids(TemplatePath { template_id }): Ids<TemplatePath>,
    Params(q): Params<TaskListQuery>,
) -> ApiResult<Response> {
    let template = template_of(&state, access.project_id, TemplateId(template_id)).await?;
    page(&state, &access, Some(template.id), &q, MAX_TASK_PAGE).await
}

/// Not a way to start a task (as in Semaphore, this path only lists): always a 404 that says
/// how tasks are started.
#[utoipa::path(post, path = "/api/project/{project_id}/templates/{template_id}/tasks", tag = "task",
    params(("project_id" = i64, Path), ("template_id" = i64, Path)),
    responses((status = 404, body = ErrorBody)))]
async fn template_tasks_post(
    access: ProjectAccess<Read>,
    Ids(TemplatePath { template_id }): Ids<TemplatePath>,
) -> ApiError {
    ApiError::NotFound(format!(
        "tasks are started with POST /api/project/{}/tasks {{\"template_id\": {template_id}}}",
        access.project_id
    ))
}

/// The template's newest tasks (`?limit=`, at most 200).
#[utoipa::path(get, path = "/api/project/{project_id}/templates/{template_id}/tasks/last", tag = "task",
    params(("project_id" = i64, Path), ("template_id" = i64, Path), TaskListQuery),
    responses((status = 200, body = [Task]), (status = 404, body = ErrorBody)))]
async fn template_tasks_last(
    access: ProjectAccess<Read>,
    State(state): State<AppState>,
    Ids(TemplatePath { template_id }): Ids<TemplatePath>,
    Params(q): Params<TaskListQuery>,
) -> ApiResult<Response> {
    let template = template_of(&state, access.project_id, TemplateId(template_id)).await?;
    page(&state, &access, Some(template.id), &q, MAX_LAST).await
}

/// The template a start request names: `template_id` if given (and not 0), else
/// `template_name`. A template that is not in the project is a 400 naming the field.
async fn requested_template(
    state: &AppState,
    project_id: ProjectId,
    body: &TaskRequest,
) -> ApiResult<Template> {
    if let Some(id) = body.template_id.filter(|&id| id != 0) {
        return state
            .store
            .template(project_id, TemplateId(id))
            .await
            .map_err(|e| match e {
                StoreError::NotFound => {
                    ApiError::bad_request("template_id: no such template in this project")
                }
                other => other.into(),
            });
    }
    match body.template_name.as_deref().map(str::trim) {
        Some(name) if !name.is_empty() => state
            .store
            .template_by_name(project_id, name)
            .await
            .map_err(|e| match e {
                StoreError::NotFound => ApiError::bad_request(format!(
                    "template_name: no template called {name:?} in this project"
                )),
                other => other.into(),
            }),
        _ => Err(ApiError::bad_request(
            "template_id or template_name is required",
        )),
    }
}

async fn template_of(
    state: &AppState,
    project_id: ProjectId,
    template_id: TemplateId,
) -> ApiResult<Template> {
    state
        .store
        .template(project_id, template_id)
        .await
        .or_not_found("template")
}

/// One page of a project's (or a template's) tasks, as a list call asked for it: the JSON
/// array, kept serialized by the store while the project's tasks do not change.
async fn page(
    state: &AppState,
    access: &ProjectAccess<Read>,
    template_id: Option<i64>,
    q: &TaskListQuery,
    cap: i64,
) -> ApiResult<Response> {
    let limit = match q.limit {
        None => cap,
        Some(n) if n < 1 => return Err(ApiError::bad_request("limit must be at least 1")),
        Some(n) => n.min(cap),
    };
    let offset = q.offset.unwrap_or(0);
    if offset < 0 {
        return Err(ApiError::bad_request("offset must not be negative"));
    }
    let statuses = match q.status.as_deref().map(str::trim) {
        None | Some("") => Vec::new(),
        Some(list) => list
            .split(',')
            .map(|s| {
                TaskStatus::parse(s.trim()).ok_or_else(|| {
                    let names: Vec<&str> = TaskStatus::ALL.iter().map(|s| s.as_str()).collect();
                    ApiError::bad_request(format!(
                        "status {:?} is not a task status; use one of: {}",
                        s.trim(),
                        names.join(", ")
                    ))
                })
            })
            .collect::<ApiResult<Vec<_>>>()?,
    };
    let query = TaskQuery {
        template_id: template_id.or(q.template_id).map(TemplateId),
        statuses: &statuses,
        before_id: q.before_id,
        offset,
        limit,
        sort: q.sort.as_deref(),
        ascending: q.order == Some(Order::Asc),
        user_id: q.user_id,
        created_from: q.created_from,
        created_until: q.created_until,
    };
    Ok(json_body(
        state
            .store
            .project_task_page_json(access.project_id, access.task_list_version, &query)
            .await?,
    ))
}

/// A 200 answer of JSON already serialized, with the header `Json` would give it.
fn json_body(body: Bytes) -> Response {
    ([(CONTENT_TYPE, "application/json")], body).into_response()
}

/// Confirms or rejects a task in `waiting_confirmation`; any other status is a 409.
async fn decide(
    state: &AppState,
    access: &ProjectAccess<RunTasks>,
    task_id: i64,
    to: TaskStatus,
) -> ApiResult<StatusCode> {
    let task = state
        .store
        .task(access.project_id, TaskId(task_id))
        .await
        .or_not_found("task")?;
    let verb = if to == TaskStatus::Confirmed {
        "confirmed"
    } else {
        "rejected"
    };
    let refuse = |status: TaskStatus| {
        ApiError::Conflict(format!(
            "task {task_id} is {status}; only a task waiting for confirmation can be {verb}"
        ))
    };
    if task.status != TaskStatus::WaitingConfirmation || !task.status.can_become(to) {
        return Err(refuse(task.status));
    }
    if !state
        .store
        .set_task_status(TaskId(task_id), task.status, to, Timestamp::now())
        .await?
    {
        let now = state
            .store
            .task(access.project_id, TaskId(task_id))
            .await
            .or_not_found("task")?;
        return Err(refuse(now.status));
    }
    line(
        state,
        task_id,
        format!("Task {verb} by {}", access.user.username),
    )
    .await?;
    announce(state, &task, to);
    state.task_queue.changed();
    task_event(state, access, task_id, to).await;
    Ok(StatusCode::NO_CONTENT)
}

/// Writes one output line, stamped now.
async fn line(state: &AppState, task_id: i64, text: String) -> ApiResult<()> {
    state
        .store
        .append_task_output(TaskId(task_id), &[(Timestamp::now(), text)])
        .await?;
    Ok(())
}

/// Tells live listeners (WebSocket clients) of a status change made here; called once the
/// change and its output line are stored.
fn announce(state: &AppState, task: &Task, status: TaskStatus) {
    state.live.publish(LiveEvent::Status {
        task_id: task.id,
        project_id: task.project_id,
        template_id: task.template_id,
        status,
    });
}

async fn task_event<N>(state: &AppState, access: &ProjectAccess<N>, task_id: i64, to: TaskStatus) {
    state
        .event(NewEvent {
            project_id: Some(access.project_id.0),
            user_id: Some(access.user.id),
            object_id: Some(task_id),
            object_type: "task",
            description: format!("Task ID {task_id} {to}"),
        })
        .await;
}
