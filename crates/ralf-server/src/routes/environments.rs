//! A project's environments (`/environment`, singular as in Semaphore): extra variables,
//! environment variables and secrets. Secret values and the vault password are encrypted before
//! they reach the store and never answered (`password` is always `null`).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use ralf_core::api::environments::{
    self, Environment, EnvironmentRequest, SecretChange, secret_changes,
};
use ralf_core::api::events::NewEvent;
use ralf_core::api::refs::ObjectRefs;
use ralf_core::api::{ListQuery, Order};
use ralf_core::secret::SecretCipher;
use ralf_core::validate;
use ralf_store::StoreError;
use ralf_store::environments::{EnvironmentFields, PasswordChange, SealedSecretChange};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::keys::{in_use, refuse_if_used, same_project};
use crate::access::{ManageResources, ProjectAccess, Read};
use crate::error::{ApiResult, OrNotFound};
use crate::extract::{Ids, JsonBody, Params, same_id};
use crate::state::AppState;

/// The environment named by `{environment_id}` in the path.
#[derive(serde::Deserialize)]
struct EnvironmentPath {
    environment_id: i64,
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(get, update, delete))
        .routes(routes!(refs))
}

/// The project's environments, their secrets named but not shown; sort by `name`.
#[utoipa::path(get, path = "/api/project/{project_id}/environment", tag = "variable-group",
    params(("project_id" = i64, Path), ListQuery),
    responses((status = 200, body = [Environment]), (status = 400)))]
async fn list(
    access: ProjectAccess<Read>,
    State(state): State<AppState>,
    Params(q): Params<ListQuery>,
) -> ApiResult<Json<Vec<Environment>>> {
    let environments = state
        .store
        .environments(
            access.project_id,
            q.sort.as_deref(),
            q.order == Some(Order::Desc),
        )
        .await?;
    Ok(Json(environments))
}

/// Creates an environment with its secrets (entries of `secrets` are created).
#[utoipa::path(post, path = "/api/project/{project_id}/environment", tag = "variable-group",
    params(("project_id" = i64, Path)), request_body = EnvironmentRequest,
    responses((status = 201, body = Environment), (status = 400), (status = 403)))]
async fn create(
    access: ProjectAccess<ManageResources>,
    State(state): State<AppState>,
    JsonBody(body): JsonBody<EnvironmentRequest>,
) -> ApiResult<(StatusCode, Json<Environment>)> {
    same_project(body.project_id, access.project_id)?;
    let checked = Checked::new(&body)?;
    let changes = sealed_changes(&state.cipher, secret_changes(&body.secrets, true)?);
    let password = body
        .password
        .as_deref()
        .filter(|p| !p.is_empty())
        .map(|p| state.cipher.encrypt(p));
    let fields = checked.fields(match &password {
        Some(p) => PasswordChange::Set(p),
        None => PasswordChange::Keep,
    });
    let environment = state
        .store
        .create_environment(access.project_id, &fields, &changes)
        .await?;
    environment_event(
        &state,
        &access,
        environment.id,
        format!("Environment {} created", environment.name),
    )
    .await;
    Ok((StatusCode::CREATED, Json(environment)))
}

#[utoipa::path(get, path = "/api/project/{project_id}/environment/{environment_id}", tag = "variable-group",
    params(("project_id" = i64, Path), ("environment_id" = i64, Path)),
    responses((status = 200, body = Environment), (status = 404)))]
async fn get(
    access: ProjectAccess<Read>,
    State(state): State<AppState>,
    Ids(EnvironmentPath { environment_id }): Ids<EnvironmentPath>,
) -> ApiResult<Json<Environment>> {
    Ok(Json(
        state
            .store
            .environment(access.project_id, environment_id)
            .await
            .or_not_found("environment")?,
    ))
}

/// Changes an environment and applies the `secrets` operations (`create`, `update`, `delete`);
/// entries without an operation, and secrets not mentioned, stay as they are. `password`:
/// `null` keeps the stored vault password, `""` removes it.
#[utoipa::path(put, path = "/api/project/{project_id}/environment/{environment_id}", tag = "variable-group",
    params(("project_id" = i64, Path), ("environment_id" = i64, Path)), request_body = EnvironmentRequest,
    responses((status = 204), (status = 400), (status = 403), (status = 404)))]
async fn update(
    access: ProjectAccess<ManageResources>,
    State(state): State<AppState>,
    Ids(EnvironmentPath { environment_id }): Ids<EnvironmentPath>,
    JsonBody(body): JsonBody<EnvironmentRequest>,
) -> ApiResult<StatusCode> {
    same_id(body.id, environment_id, "Environment")?;
    same_project(body.project_id, access.project_id)?;
    state
        .store
        .environment(access.project_id, environment_id)
        .await
        .or_not_found("environment")?;
    let checked = Checked::new(&body)?;
    let changes = sealed_changes(&state.cipher, secret_changes(&body.secrets, false)?);
    let password = match body.password.as_deref() {
        None => None,
        Some("") => Some(None),
        Some(p) => Some(Some(state.cipher.encrypt(p))),
    };
    let fields = checked.fields(match &password {
        None => PasswordChange::Keep,
        Some(None) => PasswordChange::Clear,
        Some(Some(p)) => PasswordChange::Set(p),
    });
    state
        .store
        .update_environment(access.project_id, environment_id, &fields, &changes)
        .await
        .or_not_found("environment")?;
    environment_event(
        &state,
        &access,
        environment_id,
        format!("Environment {} updated", checked.name),
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}

/// Deletes an environment with its secrets; 409 while a template uses it.
#[utoipa::path(delete, path = "/api/project/{project_id}/environment/{environment_id}", tag = "variable-group",
    params(("project_id" = i64, Path), ("environment_id" = i64, Path)),
    responses((status = 204), (status = 403), (status = 404), (status = 409)))]
async fn delete(
    access: ProjectAccess<ManageResources>,
    State(state): State<AppState>,
    Ids(EnvironmentPath { environment_id }): Ids<EnvironmentPath>,
) -> ApiResult<StatusCode> {
    let project_id = access.project_id;
    let environment = state
        .store
        .environment(project_id, environment_id)
        .await
        .or_not_found("environment")?;
    let refs = state
        .store
        .environment_refs(project_id, environment_id)
        .await?;
    refuse_if_used(refs, "environment", &environment.name)?;
    match state
        .store
        .delete_environment(project_id, environment_id)
        .await
    {
        Ok(()) => {}
        Err(StoreError::InUse(_)) => {
            let refs = state
                .store
                .environment_refs(project_id, environment_id)
                .await?;
            return Err(in_use(&refs, "environment", &environment.name));
        }
        Err(e) => return Err(e).or_not_found("environment"),
    }
    environment_event(
        &state,
        &access,
        environment_id,
        format!("Environment {} deleted", environment.name),
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}

/// The templates that use the environment.
#[utoipa::path(get, path = "/api/project/{project_id}/environment/{environment_id}/refs", tag = "variable-group",
    params(("project_id" = i64, Path), ("environment_id" = i64, Path)),
    responses((status = 200, body = ObjectRefs), (status = 404)))]
async fn refs(
    access: ProjectAccess<Read>,
    State(state): State<AppState>,
    Ids(EnvironmentPath { environment_id }): Ids<EnvironmentPath>,
) -> ApiResult<Json<ObjectRefs>> {
    state
        .store
        .environment(access.project_id, environment_id)
        .await
        .or_not_found("environment")?;
    Ok(Json(
        state
            .store
            .environment_refs(access.project_id, environment_id)
            .await?,
    ))
}

/// The checked plain fields of a request.
struct Checked {
    name: String,
    json: String,
    env: String,
}

impl Checked {
    fn new(body: &EnvironmentRequest) -> ApiResult<Self> {
        Ok(Checked {
            name: validate::name("name", &body.name)?,
            json: environments::check_extra_vars(body.json.as_deref())?,
            env: environments::check_env(body.env.as_deref())?,
        })
    }

    fn fields<'a>(&'a self, password: PasswordChange<'a>) -> EnvironmentFields<'a> {
        EnvironmentFields {
            name: &self.name,
            json: &self.json,
            env: &self.env,
            password,
        }
    }
}

/// Encrypts the values of secret changes for the store.
pub(crate) fn sealed_changes(
    cipher: &SecretCipher,
    changes: Vec<SecretChange>,
) -> Vec<SealedSecretChange> {
    changes
        .into_iter()
        .map(|change| match change {
            SecretChange::Create { name, kind, value } => SealedSecretChange::Create {
                name,
                kind,
                secret: cipher.encrypt(&value),
            },
            SecretChange::Update {
                id,
                name,
                kind,
                value,
            } => SealedSecretChange::Update {
                id,
                name,
                kind,
                secret: value.map(|v| cipher.encrypt(&v)),
            },
            SecretChange::Delete { id } => SealedSecretChange::Delete { id },
        })
        .collect()
}

async fn environment_event<N>(
    state: &AppState,
    access: &ProjectAccess<N>,
    environment_id: i64,
    description: String,
) {
    state
        .event(NewEvent {
            project_id: Some(access.project_id.0),
            user_id: Some(access.user.id),
            object_id: Some(environment_id),
            object_type: "environment",
            description,
        })
        .await;
}
