//! The activity log: all events the caller may see, the newest ones, one project's.

use axum::Json;
use axum::extract::State;
use ralf_core::api::events::Event;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::access::{ProjectAccess, Read};
use crate::auth::CurrentUser;
use crate::error::ApiResult;
use crate::state::AppState;

/// How many events a list returns at most (Semaphore: 200 for `last`).
const LAST: i64 = 200;
const ALL: i64 = 1000;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(all))
        .routes(routes!(last))
        .routes(routes!(project))
        .routes(routes!(project_last))
}

#[utoipa::path(get, path = "/api/events", tag = "events", responses((status = 200, body = [Event])))]
async fn all(
    CurrentUser(user): CurrentUser,
    State(state): State<AppState>,
) -> ApiResult<Json<Vec<Event>>> {
    Ok(Json(
        state
            .store
            .events_visible_to(user.id, user.admin, ALL)
            .await?,
    ))
}

#[utoipa::path(get, path = "/api/events/last", tag = "events", responses((status = 200, body = [Event])))]
async fn last(
    CurrentUser(user): CurrentUser,
    State(state): State<AppState>,
) -> ApiResult<Json<Vec<Event>>> {
    Ok(Json(
        state
            .store
            .events_visible_to(user.id, user.admin, LAST)
            .await?,
    ))
}

#[utoipa::path(get, path = "/api/project/{project_id}/events", tag = "events", params(("project_id" = i64, Path)),
    responses((status = 200, body = [Event])))]
async fn project(
    access: ProjectAccess<Read>,
    State(state): State<AppState>,
) -> ApiResult<Json<Vec<Event>>> {
    Ok(Json(
        state.store.project_events(access.project_id, ALL).await?,
    ))
}

#[utoipa::path(get, path = "/api/project/{project_id}/events/last", tag = "events", params(("project_id" = i64, Path)),
    responses((status = 200, body = [Event])))]
async fn project_last(
    access: ProjectAccess<Read>,
    State(state): State<AppState>,
) -> ApiResult<Json<Vec<Event>>> {
    Ok(Json(
        state.store.project_events(access.project_id, LAST).await?,
    ))
}
