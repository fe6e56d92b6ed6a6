//! Templates: list (with each one's newest task), create, read, change, delete, and what refers
//! to one. Members read; managers of resources write. Every id a template names must be an
//! object of the same project.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use ralf_core::api::events::NewEvent;
use ralf_core::api::templates::{
    NewVault, Template, TemplateListItem, TemplateRefs, TemplateRequest, TemplateSettings,
};
use ralf_core::api::{ListQuery, Order};
use ralf_core::{ProjectId, TemplateId};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::views::same_project;
use crate::access::{ManageResources, ProjectAccess, Read};
use crate::error::{ApiError, ApiResult, OrNotFound};
use crate::extract::{Ids, JsonBody, Params, same_id};
use crate::state::AppState;

/// The template named by `{template_id}` in the path.
#[derive(serde::Deserialize)]
struct TemplatePath {
    template_id: i64,
}

/// The view named by `{view_id}` in the path.
#[derive(serde::Deserialize)]
struct ViewPath {
    view_id: i64,
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(get, update, delete))
        .routes(routes!(refs))
        .routes(routes!(view_templates))
}

/// The project's templates, each with its number of tasks and its newest task. Sort by
/// `name` (default), `playbook`, `inventory`, `environment`, `repository` or `ssh_key`.
#[utoipa::path(get, path = "/api/project/{project_id}/templates", tag = "template",
    params(("project_id" = i64, Path), ListQuery),
    responses((status = 200, body = [TemplateListItem]), (status = 400)))]
async fn list(
    access: ProjectAccess<Read>,
    State(state): State<AppState>,
    Params(q): Params<ListQuery>,
) -> ApiResult<Json<Vec<TemplateListItem>>> {
    Ok(Json(list_items(&state, access.project_id, None, &q).await?))
}

/// The templates of one view (a view of type `all` shows every template of the project).
#[utoipa::path(get, path = "/api/project/{project_id}/views/{view_id}/templates", tag = "template",
    params(("project_id" = i64, Path), ("view_id" = i64, Path), ListQuery),
    responses((status = 200, body = [TemplateListItem]), (status = 400), (status = 404)))]
async fn view_templates(
    access: ProjectAccess<Read>,
    State(state): State<AppState>,
    Ids(ViewPath { view_id }): Ids<ViewPath>,
    Params(q): Params<ListQuery>,
) -> ApiResult<Json<Vec<TemplateListItem>>> {
    let view = state
        .store
        .view(access.project_id, view_id)
        .await
        .or_not_found("view")?;
    let filter = (view.kind != "all").then_some(view_id);
    Ok(Json(
        list_items(&state, access.project_id, filter, &q).await?,
    ))
}

async fn list_items(
    state: &AppState,
    project_id: ProjectId,
    view_id: Option<i64>,
    q: &ListQuery,
) -> ApiResult<Vec<TemplateListItem>> {
    let templates = state
        .store
        .templates(
            project_id,
            view_id,
            q.sort.as_deref(),
            q.order == Some(Order::Desc),
        )
        .await?;
    let mut summaries = state.store.template_task_summaries(project_id).await?;
    Ok(templates
        .into_iter()
        .map(|template| {
            let summary = summaries.remove(&template.id).unwrap_or_default();
            TemplateListItem {
                template,
                tasks: summary.tasks,
                last_task: summary.last_task,
            }
        })
        .collect())
}

/// Creates a template.
#[utoipa::path(post, path = "/api/project/{project_id}/templates", tag = "template",
    params(("project_id" = i64, Path)), request_body = TemplateRequest,
    responses((status = 201, body = Template), (status = 400), (status = 403)))]
async fn create(
    access: ProjectAccess<ManageResources>,
    State(state): State<AppState>,
    JsonBody(body): JsonBody<TemplateRequest>,
) -> ApiResult<(StatusCode, Json<Template>)> {
    let (settings, vaults) = checked(&state, access.project_id, None, &body).await?;
    let template = state
        .store
        .create_template(access.project_id, &settings, &vaults)
        .await?;
    state
        .event(NewEvent {
            project_id: Some(access.project_id.0),
            user_id: Some(access.user.id),
            object_id: Some(template.id),
            object_type: "template",
            description: format!("Template {} created", template.settings.name),
        })
        .await;
    Ok((StatusCode::CREATED, Json(template)))
}

#[utoipa::path(get, path = "/api/project/{project_id}/templates/{template_id}", tag = "template",
    params(("project_id" = i64, Path), ("template_id" = i64, Path)),
    responses((status = 200, body = Template), (status = 404)))]
async fn get(
    access: ProjectAccess<Read>,
    State(state): State<AppState>,
    Ids(TemplatePath { template_id }): Ids<TemplatePath>,
) -> ApiResult<Json<Template>> {
    Ok(Json(
        state
            .store
            .template(access.project_id, TemplateId(template_id))
            .await
            .or_not_found("template")?,
    ))
}

/// Replaces a template's settings; its vaults are replaced by those of the body.
#[utoipa::path(put, path = "/api/project/{project_id}/templates/{template_id}", tag = "template",
    params(("project_id" = i64, Path), ("template_id" = i64, Path)), request_body = TemplateRequest,
    responses((status = 204), (status = 400), (status = 403), (status = 404)))]
async fn update(
    access: ProjectAccess<ManageResources>,
    State(state): State<AppState>,
    Ids(TemplatePath { template_id }): Ids<TemplatePath>,
    JsonBody(body): JsonBody<TemplateRequest>,
) -> ApiResult<StatusCode> {
    same_id(body.id, template_id, "Template")?;
    state
        .store
        .template(access.project_id, TemplateId(template_id))
        .await
        .or_not_found("template")?;
    let (settings, vaults) = checked(&state, access.project_id, Some(template_id), &body).await?;
    state
        .store
        .update_template(
            access.project_id,
            TemplateId(template_id),
            &settings,
            &vaults,
        )
        .await
        .or_not_found("template")?;
    state
        .event(NewEvent {
            project_id: Some(access.project_id.0),
            user_id: Some(access.user.id),
            object_id: Some(template_id),
            object_type: "template",
            description: format!("Template {} updated", settings.name),
        })
        .await;
    Ok(StatusCode::NO_CONTENT)
}

/// Deletes a template with its tasks and their output. A template that is another's build
/// template cannot be deleted (409).
#[utoipa::path(delete, path = "/api/project/{project_id}/templates/{template_id}", tag = "template",
    params(("project_id" = i64, Path), ("template_id" = i64, Path)),
    responses((status = 204), (status = 403), (status = 404), (status = 409)))]
async fn delete(
    access: ProjectAccess<ManageResources>,
    State(state): State<AppState>,
    Ids(TemplatePath { template_id }): Ids<TemplatePath>,
) -> ApiResult<StatusCode> {
    let template = state
        .store
        .template(access.project_id, TemplateId(template_id))
        .await
        .or_not_found("template")?;
    state
        .store
        .delete_template(access.project_id, TemplateId(template_id))
        .await
        .or_not_found("template")?;
    state
        .event(NewEvent {
            project_id: Some(access.project_id.0),
            user_id: Some(access.user.id),
            object_id: Some(template_id),
            object_type: "template",
            description: format!("Template {} deleted", template.settings.name),
        })
        .await;
    Ok(StatusCode::NO_CONTENT)
}

/// What refers to the template: the deploy templates it is the build template of.
#[utoipa::path(get, path = "/api/project/{project_id}/templates/{template_id}/refs", tag = "template",
    params(("project_id" = i64, Path), ("template_id" = i64, Path)),
    responses((status = 200, body = TemplateRefs), (status = 404)))]
async fn refs(
    access: ProjectAccess<Read>,
    State(state): State<AppState>,
    Ids(TemplatePath { template_id }): Ids<TemplatePath>,
) -> ApiResult<Json<TemplateRefs>> {
    state
        .store
        .template(access.project_id, TemplateId(template_id))
        .await
        .or_not_found("template")?;
    let templates = state
        .store
        .templates_built_by(access.project_id, TemplateId(template_id))
        .await?;
    let integrations = state
        .store
        .template_integrations(access.project_id, template_id)
        .await?;
    Ok(Json(TemplateRefs {
        templates,
        integrations,
        ..Default::default()
    }))
}

/// Checks a create or update body: its shape, then that every id it names is an object of the
/// project. `template_id` is the template being updated.
async fn checked(
    state: &AppState,
    project_id: ProjectId,
    template_id: Option<i64>,
    body: &TemplateRequest,
) -> ApiResult<(TemplateSettings, Vec<NewVault>)> {
    same_project(body.project_id, project_id)?;
    let (settings, vaults) = body.check()?;
    if template_id.is_some() && settings.build_template_id == template_id {
        return Err(ApiError::bad_request(
            "build_template_id must not be the template itself",
        ));
    }
    state
        .store
        .check_template_references(project_id, template_id.map(TemplateId), &settings, &vaults)
        .await?;
    Ok((settings, vaults))
}
