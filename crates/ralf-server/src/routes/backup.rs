//! Project backup and restore in Semaphore's format (see `ralf_core::api::backup`).
//!
//! A backup is what any member can already read through the resources' own `GET`s (secrets are
//! left out of both), so, as in Semaphore, any member may take one. A restore creates a new
//! project, so it follows the rule of `POST /api/projects`. Every object of a restore goes
//! through the checks of its create endpoint, its references are resolved by name, and the
//! store creates everything in one transaction: a refused backup leaves no project behind.
//!
//! The work is done in [`crate::backup`]; these are its routes.

use axum::Json;
use axum::extract::State;
use ralf_core::api::backup::ProjectBackup;
use ralf_core::api::events::NewEvent;
use ralf_core::api::projects::Project;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::access::{ProjectAccess, Read};
use crate::auth::CurrentUser;
use crate::backup::{Checked, Contents, assemble};
use crate::error::{ApiError, ApiResult, OrNotFound};
use crate::extract::JsonBody;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(backup))
        .routes(routes!(restore))
}

/// The project and everything in it as Semaphore's backup JSON: objects refer to each other by
/// name, and no secret is included (keys carry their type, environment secrets their name and
/// type, vault passwords are `null`).
#[utoipa::path(get, path = "/api/project/{project_id}/backup", tag = "projects",
    params(("project_id" = i64, Path)),
    responses((status = 200, body = ProjectBackup), (status = 404)))]
async fn backup(
    access: ProjectAccess<Read>,
    State(state): State<AppState>,
) -> ApiResult<Json<ProjectBackup>> {
    let store = &state.store;
    let id = access.project_id;
    let project = store.project(id).await.or_not_found("project")?;
    let contents = Contents::read(store, id.0).await?;
    Ok(Json(assemble(project, &contents)?))
}

/// Creates a new project from a backup, with the caller as its owner, and answers it (200, as
/// Semaphore's spec says). Admins may restore, and everyone when non-admins may create
/// projects. Keys come back without their secrets and environment secrets with empty values:
/// enter them again. Schedules come back as they were (a template's older `cron` as a
/// schedule); integrations with their matchers, extract values and aliases (an alias another
/// project has is replaced by a new one; an integration's key comes back without its secret).
#[utoipa::path(post, path = "/api/projects/restore", tag = "projects", request_body = ProjectBackup,
    responses((status = 200, body = Project), (status = 400), (status = 403)))]
async fn restore(
    CurrentUser(user): CurrentUser,
    State(state): State<AppState>,
    JsonBody(backup): JsonBody<ProjectBackup>,
) -> ApiResult<Json<Project>> {
    if !user.admin && !state.settings.non_admin_can_create_project {
        return Err(ApiError::Forbidden(
            "only administrators may create projects".into(),
        ));
    }
    let checked = Checked::new(&state, &backup)?;
    let project = state
        .store
        .restore_project(&checked.restore(&state.cipher)?, user.id)
        .await?;
    state.schedules.changed();
    state
        .event(NewEvent {
            project_id: Some(project.id),
            user_id: Some(user.id),
            object_id: Some(project.id),
            object_type: "project",
            description: format!("Project {} restored from a backup", project.name),
        })
        .await;
    Ok(Json(project))
}
