//! Schedules: a template run by a cron pattern or once at a given time. Members read them;
//! managers of resources create, change, switch on and off, and delete them (as in Semaphore).
//! Nothing fires here: the store keeps each schedule's next firing and the scheduler
//! (`crate::scheduler`) is woken to look again.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use ralf_core::api::events::NewEvent;
use ralf_core::api::schedules::{
    CronValidation, Schedule, ScheduleActive, ScheduleFields, ScheduleRequest, check_cron,
};
use ralf_core::{ProjectId, TemplateId, Timestamp};
use ralf_store::StoreError;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::views::same_project;
use crate::access::{ManageResources, ProjectAccess, Read};
use crate::error::{ApiError, ApiResult, OrNotFound};
use crate::extract::{Ids, JsonBody, same_id};
use crate::state::AppState;

/// The schedule named by `{schedule_id}` in the path.
#[derive(serde::Deserialize)]
struct SchedulePath {
    schedule_id: i64,
}

/// The template named by `{template_id}` in the path.
#[derive(serde::Deserialize)]
struct TemplatePath {
    template_id: i64,
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(validate))
        .routes(routes!(get, update, delete))
        .routes(routes!(set_active))
        .routes(routes!(template_schedules))
}

/// The project's schedules, oldest first.
#[utoipa::path(get, path = "/api/project/{project_id}/schedules", tag = "schedule",
    params(("project_id" = i64, Path)), responses((status = 200, body = [Schedule])))]
async fn list(
    access: ProjectAccess<Read>,
    State(state): State<AppState>,
) -> ApiResult<Json<Vec<Schedule>>> {
    Ok(Json(state.store.schedules(access.project_id, None).await?))
}

/// The schedules of one template.
#[utoipa::path(get, path = "/api/project/{project_id}/templates/{template_id}/schedules", tag = "schedule",
    params(("project_id" = i64, Path), ("template_id" = i64, Path)),
    responses((status = 200, body = [Schedule]), (status = 404)))]
async fn template_schedules(
    access: ProjectAccess<Read>,
    State(state): State<AppState>,
    Ids(TemplatePath { template_id }): Ids<TemplatePath>,
) -> ApiResult<Json<Vec<Schedule>>> {
    state
        .store
        .template(access.project_id, TemplateId(template_id))
        .await
        .or_not_found("template")?;
    Ok(Json(
        state
            .store
            .schedules(access.project_id, Some(TemplateId(template_id)))
            .await?,
    ))
}

/// Creates a schedule. Cron patterns have the five standard fields, in UTC; a `run_at`
/// schedule fires once (at once if `run_at` has passed) and is then switched off.
#[utoipa::path(post, path = "/api/project/{project_id}/schedules", tag = "schedule",
    params(("project_id" = i64, Path)), request_body = ScheduleRequest,
    responses((status = 201, body = Schedule), (status = 400), (status = 403)))]
async fn create(
    access: ProjectAccess<ManageResources>,
    State(state): State<AppState>,
    JsonBody(body): JsonBody<ScheduleRequest>,
) -> ApiResult<(StatusCode, Json<Schedule>)> {
    let fields = checked(&state, access.project_id, &body).await?;
    let schedule = state
        .store
        .create_schedule(
            access.project_id,
            &fields,
            fields.next_run(Timestamp::now()),
        )
        .await?;
    state.schedules.changed();
    state
        .event(NewEvent {
            project_id: Some(access.project_id.0),
            user_id: Some(access.user.id),
            object_id: Some(schedule.id),
            object_type: "schedule",
            description: format!("Schedule {} created", label(&schedule.name, schedule.id)),
        })
        .await;
    Ok((StatusCode::CREATED, Json(schedule)))
}

/// Checks a cron pattern: 200 when it is a valid five-field pattern, 400 saying why not.
#[utoipa::path(post, path = "/api/project/{project_id}/schedules/validate", tag = "schedule",
    params(("project_id" = i64, Path)), request_body = CronValidation,
    responses((status = 200, body = CronValidation), (status = 400), (status = 403)))]
async fn validate(
    _access: ProjectAccess<ManageResources>,
    JsonBody(body): JsonBody<CronValidation>,
) -> ApiResult<Json<CronValidation>> {
    check_cron(&body.cron_format)?;
    Ok(Json(CronValidation {
        cron_format: body.cron_format.trim().to_string(),
    }))
}

#[utoipa::path(get, path = "/api/project/{project_id}/schedules/{schedule_id}", tag = "schedule",
    params(("project_id" = i64, Path), ("schedule_id" = i64, Path)),
    responses((status = 200, body = Schedule), (status = 404)))]
async fn get(
    access: ProjectAccess<Read>,
    State(state): State<AppState>,
    Ids(SchedulePath { schedule_id }): Ids<SchedulePath>,
) -> ApiResult<Json<Schedule>> {
    Ok(Json(
        state
            .store
            .schedule(access.project_id, schedule_id)
            .await
            .or_not_found("schedule")?,
    ))
}

/// Replaces a schedule; its next firing is worked out again from now.
#[utoipa::path(put, path = "/api/project/{project_id}/schedules/{schedule_id}", tag = "schedule",
    params(("project_id" = i64, Path), ("schedule_id" = i64, Path)), request_body = ScheduleRequest,
    responses((status = 204), (status = 400), (status = 403), (status = 404)))]
async fn update(
    access: ProjectAccess<ManageResources>,
    State(state): State<AppState>,
    Ids(SchedulePath { schedule_id }): Ids<SchedulePath>,
    JsonBody(body): JsonBody<ScheduleRequest>,
) -> ApiResult<StatusCode> {
    same_id(body.id, schedule_id, "Schedule")?;
    state
        .store
        .schedule(access.project_id, schedule_id)
        .await
        .or_not_found("schedule")?;
    let fields = checked(&state, access.project_id, &body).await?;
    state
        .store
        .update_schedule(
            access.project_id,
            schedule_id,
            &fields,
            fields.next_run(Timestamp::now()),
        )
        .await
        .or_not_found("schedule")?;
    state.schedules.changed();
    state
        .event(NewEvent {
            project_id: Some(access.project_id.0),
            user_id: Some(access.user.id),
            object_id: Some(schedule_id),
            object_type: "schedule",
            description: format!("Schedule {} updated", label(&fields.name, schedule_id)),
        })
        .await;
    Ok(StatusCode::NO_CONTENT)
}

/// Switches a schedule on or off. Switched on, a cron schedule fires at its next time from
/// now (firings missed while it was off are not made up); a `run_at` schedule at `run_at`.
#[utoipa::path(put, path = "/api/project/{project_id}/schedules/{schedule_id}/active", tag = "schedule",
    params(("project_id" = i64, Path), ("schedule_id" = i64, Path)), request_body = ScheduleActive,
    responses((status = 204), (status = 400), (status = 403), (status = 404)))]
async fn set_active(
    access: ProjectAccess<ManageResources>,
    State(state): State<AppState>,
    Ids(SchedulePath { schedule_id }): Ids<SchedulePath>,
    JsonBody(body): JsonBody<ScheduleActive>,
) -> ApiResult<StatusCode> {
    let schedule = state
        .store
        .schedule(access.project_id, schedule_id)
        .await
        .or_not_found("schedule")?;
    let fields = ScheduleFields {
        template_id: schedule.template_id,
        cron_format: schedule.cron_format.clone(),
        name: schedule.name.clone(),
        active: body.active,
        kind: schedule.kind.clone(),
        run_at: schedule.run_at,
        task_params: None,
    };
    state
        .store
        .set_schedule_active(
            access.project_id,
            schedule_id,
            body.active,
            fields.next_run(Timestamp::now()),
        )
        .await
        .or_not_found("schedule")?;
    state.schedules.changed();
    let what = if body.active {
        "activated"
    } else {
        "deactivated"
    };
    state
        .event(NewEvent {
            project_id: Some(access.project_id.0),
            user_id: Some(access.user.id),
            object_id: Some(schedule_id),
            object_type: "schedule",
            description: format!("Schedule {} {what}", label(&schedule.name, schedule_id)),
        })
        .await;
    Ok(StatusCode::NO_CONTENT)
}

/// Deletes a schedule; the tasks it made stay.
#[utoipa::path(delete, path = "/api/project/{project_id}/schedules/{schedule_id}", tag = "schedule",
    params(("project_id" = i64, Path), ("schedule_id" = i64, Path)),
    responses((status = 204), (status = 403), (status = 404)))]
async fn delete(
    access: ProjectAccess<ManageResources>,
    State(state): State<AppState>,
    Ids(SchedulePath { schedule_id }): Ids<SchedulePath>,
) -> ApiResult<StatusCode> {
    let schedule = state
        .store
        .schedule(access.project_id, schedule_id)
        .await
        .or_not_found("schedule")?;
    state
        .store
        .delete_schedule(access.project_id, schedule_id)
        .await
        .or_not_found("schedule")?;
    state.schedules.changed();
    state
        .event(NewEvent {
            project_id: Some(access.project_id.0),
            user_id: Some(access.user.id),
            object_id: Some(schedule_id),
            object_type: "schedule",
            description: format!("Schedule {} deleted", label(&schedule.name, schedule_id)),
        })
        .await;
    Ok(StatusCode::NO_CONTENT)
}

/// A schedule's name for events: its name, or its id when it has none.
fn label(name: &str, id: i64) -> String {
    if name.is_empty() {
        format!("ID {id}")
    } else {
        name.to_string()
    }
}

/// Checks a create or update body: its shape, that the template is the project's, and that
/// the task overrides suit the template as `POST /tasks` would check them.
async fn checked(
    state: &AppState,
    project_id: ProjectId,
    body: &ScheduleRequest,
) -> ApiResult<ScheduleFields> {
    same_project(body.project_id, project_id)?;
    let fields = body.check()?;
    let template = state
        .store
        .template(project_id, TemplateId(fields.template_id))
        .await
        .map_err(|e| match e {
            StoreError::NotFound => {
                ApiError::bad_request("template_id: no such template in this project")
            }
            other => other.into(),
        })?;
    let params = fields.task_params.clone().unwrap_or_default();
    let task = params
        .fields_for(&template.settings)
        .map_err(|e| ApiError::BadRequest(format!("task_params: {}", e.0)))?;
    if task.secret.is_some() {
        return Err(ApiError::bad_request(
            "task_params.environment: a schedule cannot keep answers to secret survey \
             variables (they are never stored in the clear)",
        ));
    }
    Ok(fields)
}
