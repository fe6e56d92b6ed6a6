//! Host configs: which ssh key of the project reaches a host or the git URLs under a prefix.
//! Members read them; managers of resources create, change and delete them.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use ralf_core::api::host_configs::{HostConfig, HostConfigRequest};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::keys::{require_key, same_project};
use crate::access::{ManageResources, ProjectAccess, Read};
use crate::error::{ApiResult, OrNotFound};
use crate::extract::{Ids, JsonBody, same_id};
use crate::state::AppState;

/// The host config named by `{host_config_id}` in the path.
#[derive(serde::Deserialize)]
struct HostConfigPath {
    host_config_id: i64,
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(get, update, delete))
}

#[utoipa::path(get, path = "/api/project/{project_id}/host_configs", tag = "project",
    params(("project_id" = i64, Path)), responses((status = 200, body = [HostConfig])))]
async fn list(
    access: ProjectAccess<Read>,
    State(state): State<AppState>,
) -> ApiResult<Json<Vec<HostConfig>>> {
    Ok(Json(state.store.host_configs(access.project_id).await?))
}

#[utoipa::path(post, path = "/api/project/{project_id}/host_configs", tag = "project",
    params(("project_id" = i64, Path)), request_body = HostConfigRequest,
    responses((status = 201, body = HostConfig), (status = 400), (status = 403)))]
async fn create(
    access: ProjectAccess<ManageResources>,
    State(state): State<AppState>,
    JsonBody(body): JsonBody<HostConfigRequest>,
) -> ApiResult<(StatusCode, Json<HostConfig>)> {
    same_project(body.project_id, access.project_id)?;
    let fields = body.fields()?;
    require_key(&state, access.project_id, "ssh_key_id", fields.ssh_key_id).await?;
    let created = state
        .store
        .create_host_config(access.project_id, &fields)
        .await?;
    Ok((StatusCode::CREATED, Json(created)))
}

#[utoipa::path(get, path = "/api/project/{project_id}/host_configs/{host_config_id}", tag = "project",
    params(("project_id" = i64, Path), ("host_config_id" = i64, Path)),
    responses((status = 200, body = HostConfig), (status = 404)))]
async fn get(
    access: ProjectAccess<Read>,
    State(state): State<AppState>,
    Ids(HostConfigPath { host_config_id }): Ids<HostConfigPath>,
) -> ApiResult<Json<HostConfig>> {
    Ok(Json(
        state
            .store
            .host_config(access.project_id, host_config_id)
            .await
            .or_not_found("host config")?,
    ))
}

#[utoipa::path(put, path = "/api/project/{project_id}/host_configs/{host_config_id}", tag = "project",
    params(("project_id" = i64, Path), ("host_config_id" = i64, Path)), request_body = HostConfigRequest,
    responses((status = 204), (status = 400), (status = 403), (status = 404)))]
async fn update(
    access: ProjectAccess<ManageResources>,
    State(state): State<AppState>,
    Ids(HostConfigPath { host_config_id }): Ids<HostConfigPath>,
    JsonBody(body): JsonBody<HostConfigRequest>,
) -> ApiResult<StatusCode> {
    same_id(body.id, host_config_id, "Host config")?;
    same_project(body.project_id, access.project_id)?;
    let fields = body.fields()?;
    require_key(&state, access.project_id, "ssh_key_id", fields.ssh_key_id).await?;
    state
        .store
        .update_host_config(access.project_id, host_config_id, &fields)
        .await
        .or_not_found("host config")?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(delete, path = "/api/project/{project_id}/host_configs/{host_config_id}", tag = "project",
    params(("project_id" = i64, Path), ("host_config_id" = i64, Path)),
    responses((status = 204), (status = 403), (status = 404)))]
async fn delete(
    access: ProjectAccess<ManageResources>,
    State(state): State<AppState>,
    Ids(HostConfigPath { host_config_id }): Ids<HostConfigPath>,
) -> ApiResult<StatusCode> {
    state
        .store
        .delete_host_config(access.project_id, host_config_id)
        .await
        .or_not_found("host config")?;
    Ok(StatusCode::NO_CONTENT)
}
