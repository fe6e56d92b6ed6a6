//! Views: the tabs a project's templates are grouped in. Members read them; managers of
//! resources create, change, reorder and delete them. Deleting a view keeps its templates.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use ralf_core::ProjectId;
use ralf_core::api::events::NewEvent;
use ralf_core::api::views::{View, ViewPositions, ViewRequest};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::access::{ManageResources, ProjectAccess, Read};
use crate::error::{ApiError, ApiResult, OrNotFound};
use crate::extract::{Ids, JsonBody, same_id};
use crate::state::AppState;

/// The view named by `{view_id}` in the path.
#[derive(serde::Deserialize)]
struct ViewPath {
    view_id: i64,
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(positions))
        .routes(routes!(get, update, delete))
}

/// The project's views, by position.
#[utoipa::path(get, path = "/api/project/{project_id}/views", tag = "project",
    params(("project_id" = i64, Path)), responses((status = 200, body = [View])))]
async fn list(
    access: ProjectAccess<Read>,
    State(state): State<AppState>,
) -> ApiResult<Json<Vec<View>>> {
    Ok(Json(state.store.views(access.project_id).await?))
}

/// Creates a view; without a `position` it goes last.
#[utoipa::path(post, path = "/api/project/{project_id}/views", tag = "project",
    params(("project_id" = i64, Path)), request_body = ViewRequest,
    responses((status = 201, body = View), (status = 400), (status = 403)))]
async fn create(
    access: ProjectAccess<ManageResources>,
    State(state): State<AppState>,
    JsonBody(body): JsonBody<ViewRequest>,
) -> ApiResult<(StatusCode, Json<View>)> {
    same_project(body.project_id, access.project_id)?;
    let fields = body.fields()?;
    let view = state.store.create_view(access.project_id, &fields).await?;
    state
        .event(NewEvent {
            project_id: Some(access.project_id.0),
            user_id: Some(access.user.id),
            object_id: Some(view.id),
            object_type: "view",
            description: format!("View {} created", view.title),
        })
        .await;
    Ok((StatusCode::CREATED, Json(view)))
}

#[utoipa::path(get, path = "/api/project/{project_id}/views/{view_id}", tag = "project",
    params(("project_id" = i64, Path), ("view_id" = i64, Path)),
    responses((status = 200, body = View), (status = 404)))]
async fn get(
    access: ProjectAccess<Read>,
    State(state): State<AppState>,
    Ids(ViewPath { view_id }): Ids<ViewPath>,
) -> ApiResult<Json<View>> {
    Ok(Json(
        state
            .store
            .view(access.project_id, view_id)
            .await
            .or_not_found("view")?,
    ))
}

/// Changes a view; without a `position` it stays where it is.
#[utoipa::path(put, path = "/api/project/{project_id}/views/{view_id}", tag = "project",
    params(("project_id" = i64, Path), ("view_id" = i64, Path)), request_body = ViewRequest,
    responses((status = 204), (status = 400), (status = 403), (status = 404)))]
async fn update(
    access: ProjectAccess<ManageResources>,
    State(state): State<AppState>,
    Ids(ViewPath { view_id }): Ids<ViewPath>,
    JsonBody(body): JsonBody<ViewRequest>,
) -> ApiResult<StatusCode> {
    same_id(body.id, view_id, "View")?;
    same_project(body.project_id, access.project_id)?;
    let fields = body.fields()?;
    state
        .store
        .update_view(access.project_id, view_id, &fields)
        .await
        .or_not_found("view")?;
    state
        .event(NewEvent {
            project_id: Some(access.project_id.0),
            user_id: Some(access.user.id),
            object_id: Some(view_id),
            object_type: "view",
            description: format!("View {} updated", fields.title),
        })
        .await;
    Ok(StatusCode::NO_CONTENT)
}

/// Deletes a view. Its templates stay in the project, in no view.
#[utoipa::path(delete, path = "/api/project/{project_id}/views/{view_id}", tag = "project",
    params(("project_id" = i64, Path), ("view_id" = i64, Path)),
    responses((status = 204), (status = 403), (status = 404)))]
async fn delete(
    access: ProjectAccess<ManageResources>,
    State(state): State<AppState>,
    Ids(ViewPath { view_id }): Ids<ViewPath>,
) -> ApiResult<StatusCode> {
    let view = state
        .store
        .view(access.project_id, view_id)
        .await
        .or_not_found("view")?;
    state
        .store
        .delete_view(access.project_id, view_id)
        .await
        .or_not_found("view")?;
    state
        .event(NewEvent {
            project_id: Some(access.project_id.0),
            user_id: Some(access.user.id),
            object_id: Some(view_id),
            object_type: "view",
            description: format!("View {} deleted", view.title),
        })
        .await;
    Ok(StatusCode::NO_CONTENT)
}

/// Reorders views: `{"<view id>": position, …}` as Semaphore's UI sends it, or
/// `[{"id": …, "position": …}, …]`. All or nothing: an id that is not one of the project's views
/// is a 400.
#[utoipa::path(post, path = "/api/project/{project_id}/views/positions", tag = "project",
    params(("project_id" = i64, Path)), request_body = ViewPositions,
    responses((status = 204), (status = 400), (status = 403)))]
async fn positions(
    access: ProjectAccess<ManageResources>,
    State(state): State<AppState>,
    JsonBody(body): JsonBody<ViewPositions>,
) -> ApiResult<StatusCode> {
    let pairs = body.pairs()?;
    state
        .store
        .set_view_positions(access.project_id, &pairs)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A body's `project_id`, when given, must be the path's: objects do not move between projects.
pub(crate) fn same_project(body_project: Option<i64>, project_id: ProjectId) -> ApiResult<()> {
    match body_project {
        Some(id) if id != 0 && id != project_id.0 => Err(ApiError::bad_request(
            "project_id in body and URL must be the same",
        )),
        _ => Ok(()),
    }
}
