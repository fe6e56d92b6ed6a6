//! A project's members and their roles. Owners manage members; every member may list them.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use ralf_core::api::events::NewEvent;
use ralf_core::api::projects::{ProjectUser, ProjectUserRequest, ProjectUserRoleRequest};
use ralf_core::api::{ListQuery, Order};
use ralf_core::{ProjectId, Role};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::access::{ManageUsers, ProjectAccess, Read};
use crate::error::{ApiError, ApiResult, OrNotFound};
use crate::extract::{Ids, JsonBody, Params};
use crate::state::AppState;

/// The member named by `{user_id}` in the path.
#[derive(serde::Deserialize)]
struct MemberPath {
    user_id: i64,
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, add))
        .routes(routes!(get, set_role, remove))
}

#[utoipa::path(get, path = "/api/project/{project_id}/users", tag = "project", params(("project_id" = i64, Path), ListQuery),
    responses((status = 200, body = [ProjectUser])))]
async fn list(
    access: ProjectAccess<Read>,
    State(state): State<AppState>,
    Params(q): Params<ListQuery>,
) -> ApiResult<Json<Vec<ProjectUser>>> {
    let members = state
        .store
        .project_users(
            access.project_id,
            q.sort.as_deref(),
            q.order == Some(Order::Desc),
        )
        .await?;
    Ok(Json(members))
}

/// Adds a user to the project with a role.
#[utoipa::path(post, path = "/api/project/{project_id}/users", tag = "project", params(("project_id" = i64, Path)),
    request_body = ProjectUserRequest, responses((status = 204), (status = 400), (status = 403), (status = 409)))]
async fn add(
    access: ProjectAccess<ManageUsers>,
    State(state): State<AppState>,
    JsonBody(body): JsonBody<ProjectUserRequest>,
) -> ApiResult<StatusCode> {
    let user = state.store.user(body.user_id).await.map_err(|e| match e {
        ralf_store::StoreError::NotFound => {
            ApiError::bad_request(format!("user {} does not exist", body.user_id))
        }
        other => other.into(),
    })?;
    state
        .store
        .add_project_user(access.project_id, user.id, body.role)
        .await?;
    state
        .event(NewEvent {
            project_id: Some(access.project_id.0),
            user_id: Some(access.user.id),
            object_id: Some(user.id),
            object_type: "user",
            description: format!(
                "User {} added to the project as {}",
                user.username, body.role
            ),
        })
        .await;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/project/{project_id}/users/{user_id}", tag = "project",
    params(("project_id" = i64, Path), ("user_id" = i64, Path)),
    responses((status = 200, body = ProjectUser), (status = 404)))]
async fn get(
    access: ProjectAccess<Read>,
    State(state): State<AppState>,
    Ids(MemberPath { user_id }): Ids<MemberPath>,
) -> ApiResult<Json<ProjectUser>> {
    Ok(Json(
        state
            .store
            .project_user(access.project_id, user_id)
            .await
            .or_not_found("project member")?,
    ))
}

/// Changes a member's role. A project keeps at least one owner.
#[utoipa::path(put, path = "/api/project/{project_id}/users/{user_id}", tag = "project",
    params(("project_id" = i64, Path), ("user_id" = i64, Path)), request_body = ProjectUserRoleRequest,
    responses((status = 204), (status = 400), (status = 403), (status = 404)))]
async fn set_role(
    access: ProjectAccess<ManageUsers>,
    State(state): State<AppState>,
    Ids(MemberPath { user_id }): Ids<MemberPath>,
    JsonBody(body): JsonBody<ProjectUserRoleRequest>,
) -> ApiResult<StatusCode> {
    let member = state
        .store
        .project_user(access.project_id, user_id)
        .await
        .or_not_found("project member")?;
    if member.role == Role::Owner && body.role != Role::Owner {
        keep_an_owner(&state, access.project_id).await?;
    }
    state
        .store
        .set_project_user_role(access.project_id, user_id, body.role)
        .await
        .or_not_found("project member")?;
    Ok(StatusCode::NO_CONTENT)
}

/// Removes a member. A project keeps at least one owner.
#[utoipa::path(delete, path = "/api/project/{project_id}/users/{user_id}", tag = "project",
    params(("project_id" = i64, Path), ("user_id" = i64, Path)),
    responses((status = 204), (status = 400), (status = 403), (status = 404)))]
async fn remove(
    access: ProjectAccess<ManageUsers>,
    State(state): State<AppState>,
    Ids(MemberPath { user_id }): Ids<MemberPath>,
) -> ApiResult<StatusCode> {
    let member = state
        .store
        .project_user(access.project_id, user_id)
        .await
        .or_not_found("project member")?;
    if member.role == Role::Owner {
        keep_an_owner(&state, access.project_id).await?;
    }
    state
        .store
        .remove_project_user(access.project_id, user_id)
        .await
        .or_not_found("project member")?;
    state
        .event(NewEvent {
            project_id: Some(access.project_id.0),
            user_id: Some(access.user.id),
            object_id: Some(user_id),
            object_type: "user",
            description: format!("User {} removed from the project", member.username),
        })
        .await;
    Ok(StatusCode::NO_CONTENT)
}

async fn keep_an_owner(state: &AppState, project_id: ProjectId) -> ApiResult<()> {
    if state.store.owner_count(project_id).await? <= 1 {
        return Err(ApiError::bad_request(
            "a project must keep at least one owner",
        ));
    }
    Ok(())
}
