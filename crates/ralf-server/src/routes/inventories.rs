//! A project's inventories (`/inventory`, singular as in Semaphore).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use ralf_core::api::events::NewEvent;
use ralf_core::api::inventories::{self, Inventory, InventoryKind, InventoryRequest};
use ralf_core::api::refs::ObjectRefs;
use ralf_core::api::{ListQuery, Order};
use ralf_core::{ProjectId, validate};
use ralf_store::StoreError;
use ralf_store::inventories::InventoryFields;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::keys::{in_use, refuse_if_used, require_key, same_project};
use super::repositories::require_repository;
use crate::access::{ManageResources, ProjectAccess, Read};
use crate::error::{ApiResult, OrNotFound};
use crate::extract::{Ids, JsonBody, Params, same_id};
use crate::state::AppState;

/// The inventory named by `{inventory_id}` in the path.
#[derive(serde::Deserialize)]
struct InventoryPath {
    inventory_id: i64,
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(get, update, delete))
        .routes(routes!(refs))
}

/// The project's inventories; sort by `name` or `type`.
#[utoipa::path(get, path = "/api/project/{project_id}/inventory", tag = "inventory",
    params(("project_id" = i64, Path), ListQuery),
    responses((status = 200, body = [Inventory]), (status = 400)))]
async fn list(
    access: ProjectAccess<Read>,
    State(state): State<AppState>,
    Params(q): Params<ListQuery>,
) -> ApiResult<Json<Vec<Inventory>>> {
    let inventories = state
        .store
        .inventories(
            access.project_id,
            q.sort.as_deref(),
            q.order == Some(Order::Desc),
        )
        .await?;
    Ok(Json(inventories))
}

#[utoipa::path(post, path = "/api/project/{project_id}/inventory", tag = "inventory",
    params(("project_id" = i64, Path)), request_body = InventoryRequest,
    responses((status = 201, body = Inventory), (status = 400), (status = 403)))]
async fn create(
    access: ProjectAccess<ManageResources>,
    State(state): State<AppState>,
    JsonBody(body): JsonBody<InventoryRequest>,
) -> ApiResult<(StatusCode, Json<Inventory>)> {
    let body = body.normalized();
    same_project(body.project_id, access.project_id)?;
    let (name, kind) = check(&state, access.project_id, &body).await?;
    let inventory = state
        .store
        .create_inventory(access.project_id, &fields(&name, kind, &body))
        .await?;
    inventory_event(
        &state,
        &access,
        inventory.id,
        format!("Inventory {name} created"),
    )
    .await;
    Ok((StatusCode::CREATED, Json(inventory)))
}

#[utoipa::path(get, path = "/api/project/{project_id}/inventory/{inventory_id}", tag = "inventory",
    params(("project_id" = i64, Path), ("inventory_id" = i64, Path)),
    responses((status = 200, body = Inventory), (status = 404)))]
async fn get(
    access: ProjectAccess<Read>,
    State(state): State<AppState>,
    Ids(InventoryPath { inventory_id }): Ids<InventoryPath>,
) -> ApiResult<Json<Inventory>> {
    Ok(Json(
        state
            .store
            .inventory(access.project_id, inventory_id)
            .await
            .or_not_found("inventory")?,
    ))
}

#[utoipa::path(put, path = "/api/project/{project_id}/inventory/{inventory_id}", tag = "inventory",
    params(("project_id" = i64, Path), ("inventory_id" = i64, Path)), request_body = InventoryRequest,
    responses((status = 204), (status = 400), (status = 403), (status = 404)))]
async fn update(
    access: ProjectAccess<ManageResources>,
    State(state): State<AppState>,
    Ids(InventoryPath { inventory_id }): Ids<InventoryPath>,
    JsonBody(body): JsonBody<InventoryRequest>,
) -> ApiResult<StatusCode> {
    let body = body.normalized();
    same_id(body.id, inventory_id, "Inventory")?;
    same_project(body.project_id, access.project_id)?;
    state
        .store
        .inventory(access.project_id, inventory_id)
        .await
        .or_not_found("inventory")?;
    let (name, kind) = check(&state, access.project_id, &body).await?;
    state
        .store
        .update_inventory(access.project_id, inventory_id, &fields(&name, kind, &body))
        .await
        .or_not_found("inventory")?;
    inventory_event(
        &state,
        &access,
        inventory_id,
        format!("Inventory {name} updated"),
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}

/// Deletes an inventory; 409 while a template uses it.
#[utoipa::path(delete, path = "/api/project/{project_id}/inventory/{inventory_id}", tag = "inventory",
    params(("project_id" = i64, Path), ("inventory_id" = i64, Path)),
    responses((status = 204), (status = 403), (status = 404), (status = 409)))]
async fn delete(
    access: ProjectAccess<ManageResources>,
    State(state): State<AppState>,
    Ids(InventoryPath { inventory_id }): Ids<InventoryPath>,
) -> ApiResult<StatusCode> {
    let project_id = access.project_id;
    let inventory = state
        .store
        .inventory(project_id, inventory_id)
        .await
        .or_not_found("inventory")?;
    let refs = state.store.inventory_refs(project_id, inventory_id).await?;
    refuse_if_used(refs, "inventory", &inventory.name)?;
    match state.store.delete_inventory(project_id, inventory_id).await {
        Ok(()) => {}
        Err(StoreError::InUse(_)) => {
            let refs = state.store.inventory_refs(project_id, inventory_id).await?;
            return Err(in_use(&refs, "inventory", &inventory.name));
        }
        Err(e) => return Err(e).or_not_found("inventory"),
    }
    inventory_event(
        &state,
        &access,
        inventory_id,
        format!("Inventory {} deleted", inventory.name),
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}

/// The templates that use the inventory.
#[utoipa::path(get, path = "/api/project/{project_id}/inventory/{inventory_id}/refs", tag = "inventory",
    params(("project_id" = i64, Path), ("inventory_id" = i64, Path)),
    responses((status = 200, body = ObjectRefs), (status = 404)))]
async fn refs(
    access: ProjectAccess<Read>,
    State(state): State<AppState>,
    Ids(InventoryPath { inventory_id }): Ids<InventoryPath>,
) -> ApiResult<Json<ObjectRefs>> {
    state
        .store
        .inventory(access.project_id, inventory_id)
        .await
        .or_not_found("inventory")?;
    Ok(Json(
        state
            .store
            .inventory_refs(access.project_id, inventory_id)
            .await?,
    ))
}

/// Checks a request; returns the trimmed name and the type.
async fn check(
    state: &AppState,
    project_id: ProjectId,
    body: &InventoryRequest,
) -> ApiResult<(String, InventoryKind)> {
    let name = validate::name("name", &body.name)?;
    let kind = inventories::check_inventory(&body.kind, &body.inventory)?;
    require_key(state, project_id, "ssh_key_id", body.ssh_key_id).await?;
    require_key(state, project_id, "become_key_id", body.become_key_id).await?;
    require_repository(state, project_id, "repository_id", body.repository_id).await?;
    Ok((name, kind))
}

fn fields<'a>(
    name: &'a str,
    kind: InventoryKind,
    body: &'a InventoryRequest,
) -> InventoryFields<'a> {
    InventoryFields {
        name,
        kind,
        inventory: &body.inventory,
        ssh_key_id: body.ssh_key_id,
        become_key_id: body.become_key_id,
        repository_id: body.repository_id,
    }
}

async fn inventory_event<N>(
    state: &AppState,
    access: &ProjectAccess<N>,
    inventory_id: i64,
    description: String,
) {
    state
        .event(NewEvent {
            project_id: Some(access.project_id.0),
            user_id: Some(access.user.id),
            object_id: Some(inventory_id),
            object_type: "inventory",
            description,
        })
        .await;
}
