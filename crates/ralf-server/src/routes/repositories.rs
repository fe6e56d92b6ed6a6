//! A project's repositories: where playbooks are cloned from, with the key to clone them.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use ralf_core::api::events::NewEvent;
use ralf_core::api::refs::ObjectRefs;
use ralf_core::api::repositories::{self, Repository, RepositoryRequest};
use ralf_core::api::{ListQuery, Order};
use ralf_core::{ProjectId, validate};
use ralf_store::StoreError;
use ralf_store::repositories::RepositoryFields;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::keys::{in_use, refuse_if_used, require_key, same_project};
use crate::access::{ManageResources, ProjectAccess, Read};
use crate::error::{ApiError, ApiResult, OrNotFound};
use crate::extract::{Ids, JsonBody, Params, same_id};
use crate::state::AppState;

/// The repository named by `{repository_id}` in the path.
#[derive(serde::Deserialize)]
struct RepositoryPath {
    repository_id: i64,
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(get, update, delete))
        .routes(routes!(refs))
}

/// The project's repositories; sort by `name`, `git_url` or `ssh_key`.
#[utoipa::path(get, path = "/api/project/{project_id}/repositories", tag = "repository",
    params(("project_id" = i64, Path), ListQuery),
    responses((status = 200, body = [Repository]), (status = 400)))]
async fn list(
    access: ProjectAccess<Read>,
    State(state): State<AppState>,
    Params(q): Params<ListQuery>,
) -> ApiResult<Json<Vec<Repository>>> {
    let repositories = state
        .store
        .repositories(
            access.project_id,
            q.sort.as_deref(),
            q.order == Some(Order::Desc),
        )
        .await?;
    Ok(Json(repositories))
}

#[utoipa::path(post, path = "/api/project/{project_id}/repositories", tag = "repository",
    params(("project_id" = i64, Path)), request_body = RepositoryRequest,
    responses((status = 201, body = Repository), (status = 400), (status = 403)))]
async fn create(
    access: ProjectAccess<ManageResources>,
    State(state): State<AppState>,
    JsonBody(body): JsonBody<RepositoryRequest>,
) -> ApiResult<(StatusCode, Json<Repository>)> {
    same_project(body.project_id, access.project_id)?;
    let checked = Checked::new(&state, access.project_id, &body).await?;
    let repository = state
        .store
        .create_repository(access.project_id, &checked.fields(&body))
        .await?;
    repository_event(
        &state,
        &access,
        repository.id,
        format!("Repository {} created", repository.name),
    )
    .await;
    Ok((StatusCode::CREATED, Json(repository)))
}

#[utoipa::path(get, path = "/api/project/{project_id}/repositories/{repository_id}", tag = "repository",
    params(("project_id" = i64, Path), ("repository_id" = i64, Path)),
    responses((status = 200, body = Repository), (status = 404)))]
async fn get(
    access: ProjectAccess<Read>,
    State(state): State<AppState>,
    Ids(RepositoryPath { repository_id }): Ids<RepositoryPath>,
) -> ApiResult<Json<Repository>> {
    Ok(Json(
        state
            .store
            .repository(access.project_id, repository_id)
            .await
            .or_not_found("repository")?,
    ))
}

#[utoipa::path(put, path = "/api/project/{project_id}/repositories/{repository_id}", tag = "repository",
    params(("project_id" = i64, Path), ("repository_id" = i64, Path)), request_body = RepositoryRequest,
    responses((status = 204), (status = 400), (status = 403), (status = 404)))]
async fn update(
    access: ProjectAccess<ManageResources>,
    State(state): State<AppState>,
    Ids(RepositoryPath { repository_id }): Ids<RepositoryPath>,
    JsonBody(body): JsonBody<RepositoryRequest>,
) -> ApiResult<StatusCode> {
    same_id(body.id, repository_id, "Repository")?;
    same_project(body.project_id, access.project_id)?;
    state
        .store
        .repository(access.project_id, repository_id)
        .await
        .or_not_found("repository")?;
    let checked = Checked::new(&state, access.project_id, &body).await?;
    state
        .store
        .update_repository(access.project_id, repository_id, &checked.fields(&body))
        .await
        .or_not_found("repository")?;
    repository_event(
        &state,
        &access,
        repository_id,
        format!("Repository {} updated", checked.name),
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}

/// Deletes a repository; 409 while a template or an inventory uses it.
#[utoipa::path(delete, path = "/api/project/{project_id}/repositories/{repository_id}", tag = "repository",
    params(("project_id" = i64, Path), ("repository_id" = i64, Path)),
    responses((status = 204), (status = 403), (status = 404), (status = 409)))]
async fn delete(
    access: ProjectAccess<ManageResources>,
    State(state): State<AppState>,
    Ids(RepositoryPath { repository_id }): Ids<RepositoryPath>,
) -> ApiResult<StatusCode> {
    let project_id = access.project_id;
    let repository = state
        .store
        .repository(project_id, repository_id)
        .await
        .or_not_found("repository")?;
    let refs = state
        .store
        .repository_refs(project_id, repository_id)
        .await?;
    refuse_if_used(refs, "repository", &repository.name)?;
    match state
        .store
        .delete_repository(project_id, repository_id)
        .await
    {
        Ok(()) => {}
        Err(StoreError::InUse(_)) => {
            let refs = state
                .store
                .repository_refs(project_id, repository_id)
                .await?;
            return Err(in_use(&refs, "repository", &repository.name));
        }
        Err(e) => return Err(e).or_not_found("repository"),
    }
    repository_event(
        &state,
        &access,
        repository_id,
        format!("Repository {} deleted", repository.name),
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}

/// The templates and inventories that use the repository.
#[utoipa::path(get, path = "/api/project/{project_id}/repositories/{repository_id}/refs", tag = "repository",
    params(("project_id" = i64, Path), ("repository_id" = i64, Path)),
    responses((status = 200, body = ObjectRefs), (status = 404)))]
async fn refs(
    access: ProjectAccess<Read>,
    State(state): State<AppState>,
    Ids(RepositoryPath { repository_id }): Ids<RepositoryPath>,
) -> ApiResult<Json<ObjectRefs>> {
    state
        .store
        .repository(access.project_id, repository_id)
        .await
        .or_not_found("repository")?;
    Ok(Json(
        state
            .store
            .repository_refs(access.project_id, repository_id)
            .await?,
    ))
}

/// A repository id a body refers to (`field`) must name a repository of the project.
pub(super) async fn require_repository(
    state: &AppState,
    project_id: ProjectId,
    field: &str,
    repository_id: Option<i64>,
) -> ApiResult<()> {
    let Some(repository_id) = repository_id else {
        return Ok(());
    };
    match state.store.repository(project_id, repository_id).await {
        Ok(_) => Ok(()),
        Err(StoreError::NotFound) => Err(ApiError::bad_request(format!(
            "{field}: no such repository in this project"
        ))),
        Err(e) => Err(e.into()),
    }
}

/// The checked values of a request.
struct Checked {
    name: String,
    git_url: String,
}

impl Checked {
    async fn new(
        state: &AppState,
        project_id: ProjectId,
        body: &RepositoryRequest,
    ) -> ApiResult<Self> {
        let name = validate::name("name", &body.name)?;
        let git_url = repositories::git_url(&body.git_url)?;
        state
            .settings
            .check_repository_url(&git_url)
            .map_err(ApiError::bad_request)?;
        validate::short_text("git_branch", &body.git_branch)?;
        require_key(state, project_id, "ssh_key_id", body.ssh_key()).await?;
        Ok(Checked { name, git_url })
    }

    fn fields<'a>(&'a self, body: &'a RepositoryRequest) -> RepositoryFields<'a> {
        RepositoryFields {
            name: &self.name,
            git_url: &self.git_url,
            git_branch: body.git_branch.trim(),
            ssh_key_id: body.ssh_key(),
        }
    }
}

async fn repository_event<N>(
    state: &AppState,
    access: &ProjectAccess<N>,
    repository_id: i64,
    description: String,
) {
    state
        .event(NewEvent {
            project_id: Some(access.project_id.0),
            user_id: Some(access.user.id),
            object_id: Some(repository_id),
            object_type: "repository",
            description,
        })
        .await;
}
