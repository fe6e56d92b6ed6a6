//! A project's access keys ("key store"). Key material is encrypted before it reaches the store
//! and is never answered; a PUT keeps the stored secret unless `override_secret` is set.
//!
//! Also the helpers the other project resources share: checks of the ids a body refers to, and
//! the 409 of a refused delete.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use ralf_core::api::events::NewEvent;
use ralf_core::api::keys::{
    AccessKey, AccessKeyRequest, KeyMaterial, KeyMaterialError, check_key_type,
};
use ralf_core::api::refs::ObjectRefs;
use ralf_core::api::{ListQuery, Order};
use ralf_core::{ProjectId, validate};
use ralf_store::StoreError;
use ralf_store::keys::{KeyUpdate, NewKey};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::access::{ManageResources, ProjectAccess, Read};
use crate::error::{ApiError, ApiResult, OrNotFound};
use crate::extract::{Ids, JsonBody, Params, same_id};
use crate::state::AppState;

/// The key named by `{key_id}` in the path.
#[derive(serde::Deserialize)]
struct KeyPath {
    key_id: i64,
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(get, update, delete))
        .routes(routes!(refs))
}

/// The project's keys, without their secrets; sort by `name` or `type`.
#[utoipa::path(get, path = "/api/project/{project_id}/keys", tag = "key-store",
    params(("project_id" = i64, Path), ListQuery),
    responses((status = 200, body = [AccessKey]), (status = 400)))]
async fn list(
    access: ProjectAccess<Read>,
    State(state): State<AppState>,
    Params(q): Params<ListQuery>,
) -> ApiResult<Json<Vec<AccessKey>>> {
    let keys = state
        .store
        .keys(
            access.project_id,
            q.sort.as_deref(),
            q.order == Some(Order::Desc),
        )
        .await?;
    Ok(Json(keys))
}

/// Creates a key; its secret (`ssh` or `login_password`) is stored encrypted.
#[utoipa::path(post, path = "/api/project/{project_id}/keys", tag = "key-store",
    params(("project_id" = i64, Path)), request_body = AccessKeyRequest,
    responses((status = 201, body = AccessKey), (status = 400), (status = 403)))]
async fn create(
    access: ProjectAccess<ManageResources>,
    State(state): State<AppState>,
    JsonBody(body): JsonBody<AccessKeyRequest>,
) -> ApiResult<(StatusCode, Json<AccessKey>)> {
    same_project(body.project_id, access.project_id)?;
    let name = validate::name("name", &body.name)?;
    let material = body.material()?;
    let secret = material.seal(&state.cipher);
    let key = state
        .store
        .create_key(
            access.project_id,
            &NewKey {
                name: &name,
                kind: material.kind(),
                secret: secret.as_deref(),
            },
        )
        .await?;
    key_event(
        &state,
        &access,
        key.id,
        format!("Access Key {name} created"),
    )
    .await;
    Ok((StatusCode::CREATED, Json(key)))
}

#[utoipa::path(get, path = "/api/project/{project_id}/keys/{key_id}", tag = "key-store",
    params(("project_id" = i64, Path), ("key_id" = i64, Path)),
    responses((status = 200, body = AccessKey), (status = 404)))]
async fn get(
    access: ProjectAccess<Read>,
    State(state): State<AppState>,
    Ids(KeyPath { key_id }): Ids<KeyPath>,
) -> ApiResult<Json<AccessKey>> {
    Ok(Json(
        state
            .store
            .key(access.project_id, key_id)
            .await
            .or_not_found("key")?,
    ))
}

/// Renames a key; with `override_secret: true` also replaces its secret (and may change its type).
#[utoipa::path(put, path = "/api/project/{project_id}/keys/{key_id}", tag = "key-store",
    params(("project_id" = i64, Path), ("key_id" = i64, Path)), request_body = AccessKeyRequest,
    responses((status = 204), (status = 400), (status = 403), (status = 404)))]
async fn update(
    access: ProjectAccess<ManageResources>,
    State(state): State<AppState>,
    Ids(KeyPath { key_id }): Ids<KeyPath>,
    JsonBody(body): JsonBody<AccessKeyRequest>,
) -> ApiResult<StatusCode> {
    same_id(body.id, key_id, "Key")?;
    same_project(body.project_id, access.project_id)?;
    let stored = state
        .store
        .key(access.project_id, key_id)
        .await
        .or_not_found("key")?;
    let name = validate::name("name", &body.name)?;
    let sealed;
    let kept;
    let replace_secret = if body.override_secret {
        let mut request = body.clone();
        if request.kind.is_empty() {
            request.kind = stored.kind.to_string();
        }
        let material = request.material()?;
        sealed = material.seal(&state.cipher);
        Some((material.kind(), sealed.as_deref()))
    } else if !body.kind.is_empty() && body.kind != stored.kind.as_str() {
        // Semaphore stores the new type over the old secret; a task using the key then says
        // the secret does not fit.
        let kind = check_key_type(&body.kind)?;
        kept = state.store.key_secret(access.project_id, key_id).await?;
        Some((kind, kept.secret.as_deref()))
    } else {
        None
    };
    state
        .store
        .update_key(
            access.project_id,
            key_id,
            &KeyUpdate {
                name: &name,
                replace_secret,
            },
        )
        .await
        .or_not_found("key")?;
    key_event(
        &state,
        &access,
        key_id,
        format!("Access Key {name} updated"),
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}

/// Deletes a key; 409 while a repository, inventory or template uses it.
#[utoipa::path(delete, path = "/api/project/{project_id}/keys/{key_id}", tag = "key-store",
    params(("project_id" = i64, Path), ("key_id" = i64, Path)),
    responses((status = 204), (status = 403), (status = 404), (status = 409)))]
async fn delete(
    access: ProjectAccess<ManageResources>,
    State(state): State<AppState>,
    Ids(KeyPath { key_id }): Ids<KeyPath>,
) -> ApiResult<StatusCode> {
    let project_id = access.project_id;
    let key = state
        .store
        .key(project_id, key_id)
        .await
        .or_not_found("key")?;
    refuse_if_used(
        state.store.key_refs(project_id, key_id).await?,
        "key",
        &key.name,
    )?;
    match state.store.delete_key(project_id, key_id).await {
        Ok(()) => {}
        Err(StoreError::InUse(_)) => {
            let refs = state.store.key_refs(project_id, key_id).await?;
            return Err(in_use(&refs, "key", &key.name));
        }
        Err(e) => return Err(e).or_not_found("key"),
    }
    key_event(
        &state,
        &access,
        key_id,
        format!("Access Key {} deleted", key.name),
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}

/// The templates, repositories and inventories that use the key.
#[utoipa::path(get, path = "/api/project/{project_id}/keys/{key_id}/refs", tag = "key-store",
    params(("project_id" = i64, Path), ("key_id" = i64, Path)),
    responses((status = 200, body = ObjectRefs), (status = 404)))]
async fn refs(
    access: ProjectAccess<Read>,
    State(state): State<AppState>,
    Ids(KeyPath { key_id }): Ids<KeyPath>,
) -> ApiResult<Json<ObjectRefs>> {
    state
        .store
        .key(access.project_id, key_id)
        .await
        .or_not_found("key")?;
    Ok(Json(state.store.key_refs(access.project_id, key_id).await?))
}

async fn key_event<N>(
    state: &AppState,
    access: &ProjectAccess<N>,
    key_id: i64,
    description: String,
) {
    state
        .event(NewEvent {
            project_id: Some(access.project_id.0),
            user_id: Some(access.user.id),
            object_id: Some(key_id),
            object_type: "key",
            description,
        })
        .await;
}

/// The decrypted material of a key (or an environment secret) of the project, for the code
/// that must use it (the executor). Never put it in a response.
#[allow(dead_code)] // the executor is its first user
pub(crate) async fn key_material(
    state: &AppState,
    project_id: ProjectId,
    key_id: i64,
) -> ApiResult<KeyMaterial> {
    let stored = state
        .store
        .key_secret(project_id, key_id)
        .await
        .or_not_found("key")?;
    KeyMaterial::open(&state.cipher, stored.kind, stored.secret.as_deref())
        .map_err(|e: KeyMaterialError| ApiError::Internal(anyhow::anyhow!("key {key_id}: {e}")))
}

// ----- shared by the project resources -----

/// A body's `project_id`, when sent, must be the path's.
pub(super) fn same_project(body: Option<i64>, project_id: ProjectId) -> ApiResult<()> {
    match body {
        Some(id) if id != project_id.0 => Err(ApiError::bad_request(
            "Project ID in body and URL must be the same",
        )),
        _ => Ok(()),
    }
}

/// A key id a body refers to (`field`) must name a key of the project: 400 otherwise.
pub(super) async fn require_key(
    state: &AppState,
    project_id: ProjectId,
    field: &str,
    key_id: Option<i64>,
) -> ApiResult<()> {
    let Some(key_id) = key_id else {
        return Ok(());
    };
    match state.store.key(project_id, key_id).await {
        Ok(_) => Ok(()),
        Err(StoreError::NotFound) => Err(ApiError::bad_request(format!(
            "{field}: no such key in this project"
        ))),
        Err(e) => Err(e.into()),
    }
}

/// Refuses to delete an object that is still used.
pub(super) fn refuse_if_used(refs: ObjectRefs, what: &str, name: &str) -> ApiResult<()> {
    if refs.is_empty() {
        Ok(())
    } else {
        Err(in_use(&refs, what, name))
    }
}

/// The 409 of a delete the database refused, naming the users when they are known.
pub(super) fn in_use(refs: &ObjectRefs, what: &str, name: &str) -> ApiError {
    if refs.is_empty() {
        ApiError::Conflict(format!(
            "the {what} {name:?} is used by another object; remove it from there first"
        ))
    } else {
        ApiError::Conflict(refs.in_use_message(what, name))
    }
}
