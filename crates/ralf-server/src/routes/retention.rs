//! Retention policies (a ralf extension): how many finished tasks, or how many days of them, a
//! project keeps, and a template's own policy that replaces the project's. Members read them;
//! those who may change the project set them. The daily sweep (`crate::retention`) applies
//! them.

use axum::Json;
use axum::extract::State;
use ralf_core::api::events::NewEvent;
use ralf_store::retention::RetentionPolicy;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::access::{ProjectAccess, Read, UpdateProject};
use crate::error::{ApiError, ApiResult, OrNotFound};
use crate::extract::{Ids, JsonBody};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_project, set_project))
        .routes(routes!(get_template, set_template))
}

/// What is kept; `null` (or absent) is no limit of that kind, both `null` keeps everything.
/// A finished task goes when either limit excludes it; a task that has not finished stays.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
pub struct Retention {
    /// The newest N finished tasks of each template are kept (at least 1).
    #[serde(default)]
    pub keep_tasks: Option<i64>,
    /// The finished tasks created in the last N days are kept (at least 1).
    #[serde(default)]
    pub keep_days: Option<i64>,
}

impl Retention {
    fn policy(&self) -> ApiResult<RetentionPolicy> {
        let limits = [
            ("keep_tasks", self.keep_tasks, MAX_KEEP_TASKS),
            ("keep_days", self.keep_days, MAX_KEEP_DAYS),
        ];
        for (field, value, max) in limits {
            if value.is_some_and(|n| !(1..=max).contains(&n)) {
                return Err(ApiError::bad_request(format!(
                    "{field} must be from 1 to {max}, or null for no limit"
                )));
            }
        }
        Ok(RetentionPolicy {
            keep_tasks: self.keep_tasks,
            keep_days: self.keep_days,
        })
    }

    fn of(policy: Option<RetentionPolicy>) -> Json<Retention> {
        let policy = policy.unwrap_or_default();
        Json(Retention {
            keep_tasks: policy.keep_tasks,
            keep_days: policy.keep_days,
        })
    }
}

/// The largest limits: beyond them a limit keeps everything anyway.
const MAX_KEEP_TASKS: i64 = 1_000_000_000;
const MAX_KEEP_DAYS: i64 = 365 * 1000;

#[derive(Deserialize)]
struct TemplatePath {
    template_id: i64,
}

/// The project's policy, for its templates without one of their own.
#[utoipa::path(get, path = "/api/project/{project_id}/retention", tag = "project",
    params(("project_id" = i64, Path)), responses((status = 200, body = Retention)))]
async fn get_project(
    access: ProjectAccess<Read>,
    State(state): State<AppState>,
) -> ApiResult<Json<Retention>> {
    Ok(Retention::of(
        state.store.retention(access.project_id, None).await?,
    ))
}

/// Sets the project's policy.
#[utoipa::path(put, path = "/api/project/{project_id}/retention", tag = "project",
    params(("project_id" = i64, Path)), request_body = Retention,
    responses((status = 200, body = Retention), (status = 400), (status = 403)))]
async fn set_project(
    access: ProjectAccess<UpdateProject>,
    State(state): State<AppState>,
    JsonBody(body): JsonBody<Retention>,
) -> ApiResult<Json<Retention>> {
    let policy = body.policy()?;
    state
        .store
        .set_retention(access.project_id, None, &policy)
        .await?;
    record(&state, &access, None, &policy).await;
    Ok(Retention::of(Some(policy)))
}

/// The template's own policy (`null`s: it follows the project's).
#[utoipa::path(get, path = "/api/project/{project_id}/templates/{template_id}/retention",
    tag = "project", params(("project_id" = i64, Path), ("template_id" = i64, Path)),
    responses((status = 200, body = Retention), (status = 404)))]
async fn get_template(
    access: ProjectAccess<Read>,
    State(state): State<AppState>,
    Ids(TemplatePath { template_id }): Ids<TemplatePath>,
) -> ApiResult<Json<Retention>> {
    state
        .store
        .template(access.project_id, ralf_core::TemplateId(template_id))
        .await
        .or_not_found("template")?;
    let policy = state
        .store
        .retention(access.project_id, Some(template_id))
        .await?;
    Ok(Retention::of(policy))
}

/// Sets the template's own policy; both `null` makes it follow the project's again.
#[utoipa::path(put, path = "/api/project/{project_id}/templates/{template_id}/retention",
    tag = "project", params(("project_id" = i64, Path), ("template_id" = i64, Path)),
    request_body = Retention,
    responses((status = 200, body = Retention), (status = 400), (status = 403), (status = 404)))]
async fn set_template(
    access: ProjectAccess<UpdateProject>,
    State(state): State<AppState>,
    Ids(TemplatePath { template_id }): Ids<TemplatePath>,
    JsonBody(body): JsonBody<Retention>,
) -> ApiResult<Json<Retention>> {
    let policy = body.policy()?;
    state
        .store
        .set_retention(access.project_id, Some(template_id), &policy)
        .await
        .or_not_found("template")?;
    record(&state, &access, Some(template_id), &policy).await;
    Ok(Retention::of(Some(policy)))
}

async fn record(
    state: &AppState,
    access: &ProjectAccess<UpdateProject>,
    template_id: Option<i64>,
    policy: &RetentionPolicy,
) {
    let limit = |n: Option<i64>, unit: &str| match n {
        Some(n) => format!("{n} {unit}"),
        None => format!("any number of {unit}"),
    };
    state
        .event(NewEvent {
            project_id: Some(access.project_id.0),
            user_id: Some(access.user.id),
            object_id: template_id,
            object_type: if template_id.is_some() {
                "template"
            } else {
                "project"
            },
            description: format!(
                "Retention set: keep {}, {}",
                limit(policy.keep_tasks, "tasks"),
                limit(policy.keep_days, "days")
            ),
        })
        .await;
}
