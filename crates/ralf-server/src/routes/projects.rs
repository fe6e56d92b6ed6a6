//! Projects: list the visible ones, create, read, change, delete; the caller's role in one.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use ralf_core::api::events::NewEvent;
use ralf_core::api::projects::{Project, ProjectRequest, ProjectRole};
use ralf_core::validate;
use ralf_store::projects::ProjectFields;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::access::{ProjectAccess, Read, UpdateProject};
use crate::auth::CurrentUser;
use crate::error::{ApiError, ApiResult, OrNotFound};
use crate::extract::{JsonBody, same_id};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(get, update, delete))
        .routes(routes!(role))
}

/// The projects the caller is a member of (every project for an admin).
#[utoipa::path(get, path = "/api/projects", tag = "projects", responses((status = 200, body = [Project])))]
async fn list(
    CurrentUser(user): CurrentUser,
    State(state): State<AppState>,
) -> ApiResult<Json<Vec<Project>>> {
    Ok(Json(
        state.store.projects_visible_to(user.id, user.admin).await?,
    ))
}

/// Creates a project with the caller as its owner.
#[utoipa::path(post, path = "/api/projects", tag = "projects", request_body = ProjectRequest,
    responses((status = 201, body = Project), (status = 400), (status = 403)))]
async fn create(
    CurrentUser(user): CurrentUser,
    State(state): State<AppState>,
    JsonBody(body): JsonBody<ProjectRequest>,
) -> ApiResult<(StatusCode, Json<Project>)> {
    if !user.admin && !state.settings.non_admin_can_create_project {
        return Err(ApiError::Forbidden(
            "only administrators may create projects".into(),
        ));
    }
    let name = validate::name("name", &body.name)?;
    let fields = checked_fields(&name, &body)?;
    let project = state.store.create_project(&fields, user.id).await?;
    state
        .event(NewEvent {
            project_id: Some(project.id),
            user_id: Some(user.id),
            object_id: Some(project.id),
            object_type: "project",
            description: format!("Project {} created", project.name),
        })
        .await;
    Ok((StatusCode::CREATED, Json(project)))
}

#[utoipa::path(get, path = "/api/project/{project_id}", tag = "projects", params(("project_id" = i64, Path)),
    responses((status = 200, body = Project), (status = 404)))]
async fn get(
    access: ProjectAccess<Read>,
    State(state): State<AppState>,
) -> ApiResult<Json<Project>> {
    Ok(Json(
        state
            .store
            .project(access.project_id)
            .await
            .or_not_found("project")?,
    ))
}

#[utoipa::path(put, path = "/api/project/{project_id}", tag = "projects", params(("project_id" = i64, Path)),
    request_body = ProjectRequest, responses((status = 204), (status = 400), (status = 403), (status = 404)))]
async fn update(
    access: ProjectAccess<UpdateProject>,
    State(state): State<AppState>,
    JsonBody(body): JsonBody<ProjectRequest>,
) -> ApiResult<StatusCode> {
    same_id(body.id, access.project_id.0, "Project")?;
    let name = validate::name("name", &body.name)?;
    state
        .store
        .update_project(access.project_id, &checked_fields(&name, &body)?)
        .await
        .or_not_found("project")?;
    state
        .event(NewEvent {
            project_id: Some(access.project_id.0),
            user_id: Some(access.user.id),
            object_id: Some(access.project_id.0),
            object_type: "project",
            description: format!("Project {name} updated"),
        })
        .await;
    Ok(StatusCode::NO_CONTENT)
}

/// Deletes the project and everything in it (owners only).
#[utoipa::path(delete, path = "/api/project/{project_id}", tag = "projects", params(("project_id" = i64, Path)),
    responses((status = 204), (status = 403), (status = 404)))]
async fn delete(
    access: ProjectAccess<UpdateProject>,
    State(state): State<AppState>,
) -> ApiResult<StatusCode> {
    let project = state
        .store
        .project(access.project_id)
        .await
        .or_not_found("project")?;
    state
        .store
        .delete_project(access.project_id)
        .await
        .or_not_found("project")?;
    state
        .event(NewEvent {
            user_id: Some(access.user.id),
            object_id: Some(project.id),
            object_type: "project",
            description: format!("Project {} deleted", project.name),
            ..Default::default()
        })
        .await;
    Ok(StatusCode::NO_CONTENT)
}

/// The caller's role in the project and its permission bits.
#[utoipa::path(get, path = "/api/project/{project_id}/role", tag = "projects", params(("project_id" = i64, Path)),
    responses((status = 200, body = ProjectRole), (status = 404)))]
async fn role(access: ProjectAccess<Read>) -> Json<ProjectRole> {
    Json(ProjectRole {
        role: access.role,
        permissions: access.role.permissions(),
    })
}

pub(crate) fn checked_fields<'a>(
    name: &'a str,
    body: &'a ProjectRequest,
) -> ApiResult<ProjectFields<'a>> {
    if body.max_parallel_tasks < 0 {
        return Err(ApiError::bad_request(
            "max_parallel_tasks must not be negative",
        ));
    }
    if let Some(chat) = &body.alert_chat {
        validate::short_text("alert_chat", chat)?;
    }
    validate::short_text("type", &body.kind)?;
    Ok(ProjectFields {
        name,
        alert: body.alert,
        alert_chat: body.alert_chat.as_deref(),
        max_parallel_tasks: body.max_parallel_tasks,
        kind: &body.kind,
    })
}
