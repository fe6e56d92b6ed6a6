//! Remote runners: administrators manage the global ones (`/api/runners`), a project's
//! resource managers its own (`/api/project/{project_id}/runners`, which members may read), and
//! runners register themselves with a one-time token (`/api/internal/runners`).
//!
//! A runner's token is answered once, when it is made (by a create, or by a registration), and
//! is never in another answer, a log line or an event.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use ralf_core::Timestamp;
use ralf_core::api::events::NewEvent;
use ralf_core::api::runners::{
    RegisteredRunner, Runner, RunnerActive, RunnerRegistration, RunnerRegistrationToken,
    RunnerRequest, RunnerTag, RunnerWithToken,
};
use ralf_store::StoreError;
use ralf_store::runners::RunnerOwner;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::access::{ManageResources, ProjectAccess, Read};
use crate::auth::{Admin, RunnerAuth, token_runner};
use crate::error::{ApiError, ApiResult, OrNotFound};
use crate::extract::{Ids, JsonBody, same_id};
use crate::routes::views::same_project;
use crate::state::AppState;

/// The runner named by `{runner_id}` in the path.
#[derive(serde::Deserialize)]
struct RunnerPath {
    runner_id: i64,
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_global, create_global))
        .routes(routes!(get_global, update_global, delete_global))
        .routes(routes!(active_global))
        .routes(routes!(registration_token_global))
        .routes(routes!(cache_global))
        .routes(routes!(tags_global))
        .routes(routes!(list_project, create_project))
        .routes(routes!(get_project, update_project, delete_project))
        .routes(routes!(active_project))
        .routes(routes!(registration_token_project))
        .routes(routes!(cache_project))
        .routes(routes!(tags_project))
        .routes(routes!(register, unregister))
        .routes(routes!(me))
}

/// Who acts, for the activity log.
struct Actor {
    owner: RunnerOwner,
    user_id: i64,
}

impl Actor {
    fn global(admin: &Admin) -> Actor {
        Actor {
            owner: RunnerOwner::Global,
            user_id: admin.0.id,
        }
    }

    fn project<N>(access: &ProjectAccess<N>) -> Actor {
        Actor {
            owner: RunnerOwner::Project(access.project_id.0),
            user_id: access.user.id,
        }
    }

    fn project_id(&self) -> Option<i64> {
        match self.owner {
            RunnerOwner::Global => None,
            RunnerOwner::Project(id) => Some(id),
        }
    }

    async fn event(&self, state: &AppState, runner: &Runner, what: &str) {
        state
            .event(NewEvent {
                project_id: self.project_id(),
                user_id: Some(self.user_id),
                object_id: Some(runner.id),
                object_type: "runner",
                description: format!("Runner {} {what}", label(runner)),
            })
            .await;
    }
}

/// A runner as the activity log names it: by name, or by id when it has none.
fn label(runner: &Runner) -> String {
    if runner.name.is_empty() {
        format!("#{}", runner.id)
    } else {
        runner.name.clone()
    }
}

// ----- shared by global and project runners -----

async fn create(
    state: &AppState,
    actor: Actor,
    body: RunnerRequest,
) -> ApiResult<(StatusCode, Json<RunnerWithToken>)> {
    let fields = body.fields()?;
    let registered = body.registered.unwrap_or(true);
    let (runner, token) = state
        .store
        .create_runner(actor.owner, &fields, registered)
        .await?;
    actor.event(state, &runner, "created").await;
    Ok((
        StatusCode::CREATED,
        Json(RunnerWithToken {
            runner,
            token: token.unwrap_or_default(),
        }),
    ))
}

async fn get_one(state: &AppState, owner: RunnerOwner, id: i64) -> ApiResult<Runner> {
    state.store.runner(owner, id).await.or_not_found("runner")
}

async fn update(
    state: &AppState,
    actor: Actor,
    id: i64,
    body: RunnerRequest,
) -> ApiResult<StatusCode> {
    same_id(body.id, id, "Runner")?;
    let fields = body.fields()?;
    state
        .store
        .update_runner(actor.owner, id, &fields)
        .await
        .or_not_found("runner")?;
    let runner = get_one(state, actor.owner, id).await?;
    actor.event(state, &runner, "updated").await;
    Ok(StatusCode::NO_CONTENT)
}

async fn delete(state: &AppState, actor: Actor, id: i64) -> ApiResult<StatusCode> {
    let runner = get_one(state, actor.owner, id).await?;
    state
        .store
        .delete_runner(actor.owner, id)
        .await
        .or_not_found("runner")?;
    actor.event(state, &runner, "deleted").await;
    Ok(StatusCode::NO_CONTENT)
}

async fn set_active(
    state: &AppState,
    actor: Actor,
    id: i64,
    body: RunnerActive,
) -> ApiResult<StatusCode> {
    state
        .store
        .set_runner_active(actor.owner, id, body.active)
        .await
        .or_not_found("runner")?;
    let runner = get_one(state, actor.owner, id).await?;
    let what = if body.active {
        "activated"
    } else {
        "deactivated"
    };
    actor.event(state, &runner, what).await;
    Ok(StatusCode::NO_CONTENT)
}

async fn registration_token(
    state: &AppState,
    actor: Actor,
    id: i64,
) -> ApiResult<Json<RunnerRegistrationToken>> {
    let token = state
        .store
        .new_runner_registration_token(actor.owner, id, Timestamp::now())
        .await
        .or_not_found("runner")?;
    let runner = get_one(state, actor.owner, id).await?;
    actor
        .event(state, &runner, "was given a registration token")
        .await;
    Ok(Json(token))
}

async fn clear_cache(state: &AppState, actor: Actor, id: i64) -> ApiResult<StatusCode> {
    state
        .store
        .request_runner_cleaning(actor.owner, id, Timestamp::now())
        .await
        .or_not_found("runner")?;
    let runner = get_one(state, actor.owner, id).await?;
    actor
        .event(state, &runner, "was asked to clear its cache")
        .await;
    Ok(StatusCode::NO_CONTENT)
}

// ----- global runners (administrators) -----

/// Every global runner.
#[utoipa::path(get, path = "/api/runners", tag = "runner",
    responses((status = 200, body = [Runner]), (status = 403)))]
async fn list_global(_admin: Admin, State(state): State<AppState>) -> ApiResult<Json<Vec<Runner>>> {
    Ok(Json(state.store.runners(RunnerOwner::Global).await?))
}

/// Creates a global runner. Unless `registered` is `false`, the answer carries the runner's
/// token, shown this once.
#[utoipa::path(post, path = "/api/runners", tag = "runner", request_body = RunnerRequest,
    responses((status = 201, body = RunnerWithToken), (status = 400), (status = 403)))]
async fn create_global(
    admin: Admin,
    State(state): State<AppState>,
    JsonBody(body): JsonBody<RunnerRequest>,
) -> ApiResult<(StatusCode, Json<RunnerWithToken>)> {
    create(&state, Actor::global(&admin), body).await
}

#[utoipa::path(get, path = "/api/runners/{runner_id}", tag = "runner",
    params(("runner_id" = i64, Path)),
    responses((status = 200, body = Runner), (status = 403), (status = 404)))]
async fn get_global(
    _admin: Admin,
    State(state): State<AppState>,
    Ids(RunnerPath { runner_id }): Ids<RunnerPath>,
) -> ApiResult<Json<Runner>> {
    Ok(Json(get_one(&state, RunnerOwner::Global, runner_id).await?))
}

/// Changes a global runner; an absent `active` keeps its state.
#[utoipa::path(put, path = "/api/runners/{runner_id}", tag = "runner",
    params(("runner_id" = i64, Path)), request_body = RunnerRequest,
    responses((status = 204), (status = 400), (status = 403), (status = 404)))]
async fn update_global(
    admin: Admin,
    State(state): State<AppState>,
    Ids(RunnerPath { runner_id }): Ids<RunnerPath>,
    JsonBody(body): JsonBody<RunnerRequest>,
) -> ApiResult<StatusCode> {
    update(&state, Actor::global(&admin), runner_id, body).await
}

#[utoipa::path(delete, path = "/api/runners/{runner_id}", tag = "runner",
    params(("runner_id" = i64, Path)),
    responses((status = 204), (status = 403), (status = 404)))]
async fn delete_global(
    admin: Admin,
    State(state): State<AppState>,
    Ids(RunnerPath { runner_id }): Ids<RunnerPath>,
) -> ApiResult<StatusCode> {
    delete(&state, Actor::global(&admin), runner_id).await
}

/// Turns a global runner on or off; an unregistered runner stays off.
#[utoipa::path(post, path = "/api/runners/{runner_id}/active", tag = "runner",
    params(("runner_id" = i64, Path)), request_body = RunnerActive,
    responses((status = 204), (status = 400), (status = 403), (status = 404)))]
async fn active_global(
    admin: Admin,
    State(state): State<AppState>,
    Ids(RunnerPath { runner_id }): Ids<RunnerPath>,
    JsonBody(body): JsonBody<RunnerActive>,
) -> ApiResult<StatusCode> {
    set_active(&state, Actor::global(&admin), runner_id, body).await
}

/// A new one-time registration token for an unregistered global runner (good for an hour,
/// replacing any earlier one); 400 when the runner is registered.
#[utoipa::path(post, path = "/api/runners/{runner_id}/registration-token", tag = "runner",
    params(("runner_id" = i64, Path)),
    responses((status = 200, body = RunnerRegistrationToken), (status = 400), (status = 403),
        (status = 404)))]
async fn registration_token_global(
    admin: Admin,
    State(state): State<AppState>,
    Ids(RunnerPath { runner_id }): Ids<RunnerPath>,
) -> ApiResult<Json<RunnerRegistrationToken>> {
    registration_token(&state, Actor::global(&admin), runner_id).await
}

/// Asks a global runner to clear its cache (sets `cleaning_requested`).
#[utoipa::path(delete, path = "/api/runners/{runner_id}/cache", tag = "runner",
    params(("runner_id" = i64, Path)),
    responses((status = 204), (status = 403), (status = 404)))]
async fn cache_global(
    admin: Admin,
    State(state): State<AppState>,
    Ids(RunnerPath { runner_id }): Ids<RunnerPath>,
) -> ApiResult<StatusCode> {
    clear_cache(&state, Actor::global(&admin), runner_id).await
}

/// The global runners' tags, with how many runners carry each.
#[utoipa::path(get, path = "/api/runner_tags", tag = "runner",
    responses((status = 200, body = [RunnerTag]), (status = 403)))]
async fn tags_global(
    _admin: Admin,
    State(state): State<AppState>,
) -> ApiResult<Json<Vec<RunnerTag>>> {
    Ok(Json(state.store.runner_tags(RunnerOwner::Global).await?))
}

// ----- project runners -----

/// The project's runners, then the global runners that have tags.
#[utoipa::path(get, path = "/api/project/{project_id}/runners", tag = "runner",
    params(("project_id" = i64, Path)), responses((status = 200, body = [Runner])))]
async fn list_project(
    access: ProjectAccess<Read>,
    State(state): State<AppState>,
) -> ApiResult<Json<Vec<Runner>>> {
    Ok(Json(
        state.store.runners_for_project(access.project_id).await?,
    ))
}

/// Creates a project runner. Unless `registered` is `false`, the answer carries the runner's
/// token, shown this once.
#[utoipa::path(post, path = "/api/project/{project_id}/runners", tag = "runner",
    params(("project_id" = i64, Path)), request_body = RunnerRequest,
    responses((status = 201, body = RunnerWithToken), (status = 400), (status = 403)))]
async fn create_project(
    access: ProjectAccess<ManageResources>,
    State(state): State<AppState>,
    JsonBody(body): JsonBody<RunnerRequest>,
) -> ApiResult<(StatusCode, Json<RunnerWithToken>)> {
    same_project(body.project_id, access.project_id)?;
    create(&state, Actor::project(&access), body).await
}

#[utoipa::path(get, path = "/api/project/{project_id}/runners/{runner_id}", tag = "runner",
    params(("project_id" = i64, Path), ("runner_id" = i64, Path)),
    responses((status = 200, body = Runner), (status = 404)))]
async fn get_project(
    access: ProjectAccess<Read>,
    State(state): State<AppState>,
    Ids(RunnerPath { runner_id }): Ids<RunnerPath>,
) -> ApiResult<Json<Runner>> {
    let owner = RunnerOwner::Project(access.project_id.0);
    Ok(Json(get_one(&state, owner, runner_id).await?))
}

/// Changes a project runner; an absent `active` keeps its state.
#[utoipa::path(put, path = "/api/project/{project_id}/runners/{runner_id}", tag = "runner",
    params(("project_id" = i64, Path), ("runner_id" = i64, Path)), request_body = RunnerRequest,
    responses((status = 204), (status = 400), (status = 403), (status = 404)))]
async fn update_project(
    access: ProjectAccess<ManageResources>,
    State(state): State<AppState>,
    Ids(RunnerPath { runner_id }): Ids<RunnerPath>,
    JsonBody(body): JsonBody<RunnerRequest>,
) -> ApiResult<StatusCode> {
    same_project(body.project_id, access.project_id)?;
    update(&state, Actor::project(&access), runner_id, body).await
}

#[utoipa::path(delete, path = "/api/project/{project_id}/runners/{runner_id}", tag = "runner",
    params(("project_id" = i64, Path), ("runner_id" = i64, Path)),
    responses((status = 204), (status = 403), (status = 404)))]
async fn delete_project(
    access: ProjectAccess<ManageResources>,
    State(state): State<AppState>,
    Ids(RunnerPath { runner_id }): Ids<RunnerPath>,
) -> ApiResult<StatusCode> {
    delete(&state, Actor::project(&access), runner_id).await
}

/// Turns a project runner on or off; an unregistered runner stays off.
#[utoipa::path(post, path = "/api/project/{project_id}/runners/{runner_id}/active", tag = "runner",
    params(("project_id" = i64, Path), ("runner_id" = i64, Path)), request_body = RunnerActive,
    responses((status = 204), (status = 400), (status = 403), (status = 404)))]
async fn active_project(
    access: ProjectAccess<ManageResources>,
    State(state): State<AppState>,
    Ids(RunnerPath { runner_id }): Ids<RunnerPath>,
    JsonBody(body): JsonBody<RunnerActive>,
) -> ApiResult<StatusCode> {
    set_active(&state, Actor::project(&access), runner_id, body).await
}

/// A new one-time registration token for an unregistered project runner (good for an hour,
/// replacing any earlier one); 400 when the runner is registered.
#[utoipa::path(post, path = "/api/project/{project_id}/runners/{runner_id}/registration-token",
    tag = "runner", params(("project_id" = i64, Path), ("runner_id" = i64, Path)),
    responses((status = 200, body = RunnerRegistrationToken), (status = 400), (status = 403),
        (status = 404)))]
async fn registration_token_project(
    access: ProjectAccess<ManageResources>,
    State(state): State<AppState>,
    Ids(RunnerPath { runner_id }): Ids<RunnerPath>,
) -> ApiResult<Json<RunnerRegistrationToken>> {
    registration_token(&state, Actor::project(&access), runner_id).await
}

/// Asks a project runner to clear its cache (sets `cleaning_requested`).
#[utoipa::path(delete, path = "/api/project/{project_id}/runners/{runner_id}/cache", tag = "runner",
    params(("project_id" = i64, Path), ("runner_id" = i64, Path)),
    responses((status = 204), (status = 403), (status = 404)))]
async fn cache_project(
    access: ProjectAccess<ManageResources>,
    State(state): State<AppState>,
    Ids(RunnerPath { runner_id }): Ids<RunnerPath>,
) -> ApiResult<StatusCode> {
    clear_cache(&state, Actor::project(&access), runner_id).await
}

/// The tags the project's tasks may ask for: those of its runners and of the global runners,
/// with how many runners carry each.
#[utoipa::path(get, path = "/api/project/{project_id}/runner_tags", tag = "runner",
    params(("project_id" = i64, Path)), responses((status = 200, body = [RunnerTag])))]
async fn tags_project(
    access: ProjectAccess<Read>,
    State(state): State<AppState>,
) -> ApiResult<Json<Vec<RunnerTag>>> {
    Ok(Json(
        state
            .store
            .runner_tags(RunnerOwner::Project(access.project_id.0))
            .await?,
    ))
}

// ----- the runners' side -----

/// A runner registers with its one-time registration token and gets its `X-Runner-Token`,
/// shown this once. `webhook` and `max_parallel_tasks`, when sent, replace the runner's;
/// `public_key` is accepted and ignored. An unknown, used or expired token is a 400.
#[utoipa::path(post, path = "/api/internal/runners", tag = "runner", security(()),
    request_body = RunnerRegistration,
    responses((status = 201, body = RegisteredRunner), (status = 400)))]
async fn register(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<RunnerRegistration>,
) -> ApiResult<(StatusCode, Json<RegisteredRunner>)> {
    let fields = body.fields()?;
    let token = body.registration_token.trim();
    if token.is_empty() {
        return Err(ApiError::bad_request("registration_token is required"));
    }
    let (runner, token) =
        state
            .store
            .register_runner(token, &fields)
            .await
            .map_err(|e| match e {
                StoreError::NotFound => ApiError::bad_request("invalid registration token"),
                other => other.into(),
            })?;
    state
        .event(NewEvent {
            project_id: runner.project_id,
            user_id: None,
            object_id: Some(runner.id),
            object_type: "runner",
            description: format!("Runner {} registered", label(&runner)),
        })
        .await;
    Ok((
        StatusCode::CREATED,
        Json(RegisteredRunner {
            id: runner.id,
            token,
        }),
    ))
}

/// The runner of `X-Runner-Token` gives up its credential (an inactive runner may too); it
/// needs a new registration token to come back.
#[utoipa::path(delete, path = "/api/internal/runners", tag = "runner", security(()),
    params(("X-Runner-Token" = String, Header)),
    responses((status = 204), (status = 401)))]
async fn unregister(State(state): State<AppState>, headers: HeaderMap) -> ApiResult<StatusCode> {
    let runner = token_runner(&headers, &state).await?;
    state
        .store
        .unregister_runner(runner.id)
        .await
        .or_not_found("runner")?;
    state
        .event(NewEvent {
            project_id: runner.project_id,
            user_id: None,
            object_id: Some(runner.id),
            object_type: "runner",
            description: format!("Runner {} unregistered", label(&runner)),
        })
        .await;
    Ok(StatusCode::NO_CONTENT)
}

/// The calling runner's own record: a check of its credential. 401 for an unknown token,
/// 403 for an inactive runner.
#[utoipa::path(get, path = "/api/internal/runners/me", tag = "runner", security(()),
    params(("X-Runner-Token" = String, Header)),
    responses((status = 200, body = Runner), (status = 401), (status = 403)))]
async fn me(RunnerAuth(runner): RunnerAuth) -> Json<Runner> {
    Json(runner)
}
