//! Integrations: inbound webhooks that start a template. The project routes keep them, their
//! matchers, extract values and aliases (members read them; managers of resources change
//! them, as in Semaphore); `POST|GET /api/integrations/{alias}` receives a delivery, with no
//! session: it checks each reached integration's authentication, its matchers, and starts its
//! task (stored as `waiting`, as `POST /tasks` does) before answering, never waiting for the
//! task to run.
//!
//! The answer: 204 when the delivery was taken (whether it started tasks or matched nothing;
//! the started tasks' ids are in `X-Semaphore-Task-ID` headers), 401 when every integration
//! it reached refused its signature or token, 404 for an alias that does not exist. A
//! delivery id seen within [`REPLAY_WINDOW`] starts nothing again.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use ralf_core::api::events::NewEvent;
use ralf_core::api::integrations::{
    Delivery, ExtractValueFields, Integration, IntegrationAlias, IntegrationExtractValue,
    IntegrationExtractValueRequest, IntegrationFields, IntegrationMatcher,
    IntegrationMatcherRequest, IntegrationRequest, MatcherFields,
};
use ralf_core::api::keys::KeyMaterial;
use ralf_core::api::tasks::TaskRequest;
use ralf_core::validate::Checked;
use ralf_core::{ProjectId, TaskId, TaskStatus, TemplateId, Timestamp, signature};
use ralf_store::StoreError;
use ralf_store::integrations::{AliasTarget, IntegrationPart, Started};
use ralf_store::tasks::NewTask;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::views::same_project;
use crate::access::{ManageResources, ProjectAccess, Read};
use crate::client::Client;
use crate::dispatch::live::LiveEvent;
use crate::error::{ApiError, ApiResult, OrNotFound};
use crate::extract::{Ids, JsonBody, same_id};
use crate::state::AppState;

/// How long a delivery id is remembered: a delivery sent again within this time (a sender's
/// retry, a replayed request) starts nothing.
pub const REPLAY_WINDOW: chrono::Duration = chrono::Duration::hours(24);

#[derive(serde::Deserialize)]
struct IntegrationPath {
    integration_id: i64,
}

#[derive(serde::Deserialize)]
struct MatcherPath {
    integration_id: i64,
    matcher_id: i64,
}

#[derive(serde::Deserialize)]
struct ValuePath {
    integration_id: i64,
    extractvalue_id: i64,
}

#[derive(serde::Deserialize)]
struct ProjectAliasPath {
    alias_id: i64,
}

#[derive(serde::Deserialize)]
struct IntegrationAliasPath {
    integration_id: i64,
    alias_id: i64,
}

#[derive(serde::Deserialize)]
struct InboundPath {
    integration_alias: String,
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(project_aliases, create_project_alias))
        .routes(routes!(delete_project_alias))
        .routes(routes!(get, update, delete))
        .routes(routes!(matchers, create_matcher))
        .routes(routes!(update_matcher, delete_matcher))
        .routes(routes!(values, create_value))
        .routes(routes!(update_value, delete_value))
        .routes(routes!(aliases, create_alias))
        .routes(routes!(delete_alias))
        .routes(routes!(receive_post, receive_get))
}

/// The project's integrations, oldest first.
#[utoipa::path(get, path = "/api/project/{project_id}/integrations", tag = "integration",
    params(("project_id" = i64, Path)), responses((status = 200, body = [Integration])))]
async fn list(
    access: ProjectAccess<Read>,
    State(state): State<AppState>,
) -> ApiResult<Json<Vec<Integration>>> {
    Ok(Json(state.store.integrations(access.project_id).await?))
}

/// Creates an integration of a template. Its secret (for `github`, `bitbucket`, `token`,
/// `hmac`, `basic`) is a `login_password` key of the project, named by `auth_secret_id`.
#[utoipa::path(post, path = "/api/project/{project_id}/integrations", tag = "integration",
    params(("project_id" = i64, Path)), request_body = IntegrationRequest,
    responses((status = 201, body = Integration), (status = 400), (status = 403)))]
async fn create(
    access: ProjectAccess<ManageResources>,
    State(state): State<AppState>,
    JsonBody(body): JsonBody<IntegrationRequest>,
) -> ApiResult<(StatusCode, Json<Integration>)> {
    let fields = checked(&state, access.project_id, &body).await?;
    let integration = state
        .store
        .create_integration(access.project_id, &fields)
        .await?;
    event(
        &state,
        &access,
        integration.id,
        "integration",
        format!("Integration {} created", integration.name),
    )
    .await;
    Ok((StatusCode::CREATED, Json(integration)))
}

#[utoipa::path(get, path = "/api/project/{project_id}/integrations/{integration_id}", tag = "integration",
    params(("project_id" = i64, Path), ("integration_id" = i64, Path)),
    responses((status = 200, body = Integration), (status = 404)))]
async fn get(
    access: ProjectAccess<Read>,
    State(state): State<AppState>,
    Ids(IntegrationPath { integration_id }): Ids<IntegrationPath>,
) -> ApiResult<Json<Integration>> {
    Ok(Json(
        integration_of(&state, access.project_id, integration_id).await?,
    ))
}

#[utoipa::path(put, path = "/api/project/{project_id}/integrations/{integration_id}", tag = "integration",
    params(("project_id" = i64, Path), ("integration_id" = i64, Path)), request_body = IntegrationRequest,
    responses((status = 204), (status = 400), (status = 403), (status = 404)))]
async fn update(
    access: ProjectAccess<ManageResources>,
    State(state): State<AppState>,
    Ids(IntegrationPath { integration_id }): Ids<IntegrationPath>,
    JsonBody(body): JsonBody<IntegrationRequest>,
) -> ApiResult<StatusCode> {
    same_id(body.id, integration_id, "Integration")?;
    integration_of(&state, access.project_id, integration_id).await?;
    let fields = checked(&state, access.project_id, &body).await?;
    state
        .store
        .update_integration(access.project_id, integration_id, &fields)
        .await
        .or_not_found("integration")?;
    event(
        &state,
        &access,
        integration_id,
        "integration",
        format!("Integration {} updated", fields.name),
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}

/// Deletes an integration with its matchers, extract values and aliases; its tasks stay.
#[utoipa::path(delete, path = "/api/project/{project_id}/integrations/{integration_id}", tag = "integration",
    params(("project_id" = i64, Path), ("integration_id" = i64, Path)),
    responses((status = 204), (status = 403), (status = 404)))]
async fn delete(
    access: ProjectAccess<ManageResources>,
    State(state): State<AppState>,
    Ids(IntegrationPath { integration_id }): Ids<IntegrationPath>,
) -> ApiResult<StatusCode> {
    let integration = integration_of(&state, access.project_id, integration_id).await?;
    state
        .store
        .delete_integration(access.project_id, integration_id)
        .await
        .or_not_found("integration")?;
    event(
        &state,
        &access,
        integration_id,
        "integration",
        format!("Integration {} deleted", integration.name),
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/project/{project_id}/integrations/{integration_id}/matchers", tag = "integration",
    params(("project_id" = i64, Path), ("integration_id" = i64, Path)),
    responses((status = 200, body = [IntegrationMatcher]), (status = 404)))]
async fn matchers(
    access: ProjectAccess<Read>,
    State(state): State<AppState>,
    Ids(IntegrationPath { integration_id }): Ids<IntegrationPath>,
) -> ApiResult<Json<Vec<IntegrationMatcher>>> {
    list_parts(&state, &access, integration_id).await
}

/// Adds a matcher; answers 200 with it, as Semaphore does.
#[utoipa::path(post, path = "/api/project/{project_id}/integrations/{integration_id}/matchers", tag = "integration",
    params(("project_id" = i64, Path), ("integration_id" = i64, Path)), request_body = IntegrationMatcherRequest,
    responses((status = 200, body = IntegrationMatcher), (status = 400), (status = 403), (status = 404)))]
async fn create_matcher(
    access: ProjectAccess<ManageResources>,
    State(state): State<AppState>,
    Ids(IntegrationPath { integration_id }): Ids<IntegrationPath>,
    JsonBody(body): JsonBody<IntegrationMatcherRequest>,
) -> ApiResult<Json<IntegrationMatcher>> {
    Ok(Json(
        create_part(&state, &access, integration_id, &body).await?,
    ))
}

#[utoipa::path(put, path = "/api/project/{project_id}/integrations/{integration_id}/matchers/{matcher_id}", tag = "integration",
    params(("project_id" = i64, Path), ("integration_id" = i64, Path), ("matcher_id" = i64, Path)),
    request_body = IntegrationMatcherRequest,
    responses((status = 204), (status = 400), (status = 403), (status = 404)))]
async fn update_matcher(
    access: ProjectAccess<ManageResources>,
    State(state): State<AppState>,
    Ids(MatcherPath {
        integration_id,
        matcher_id,
    }): Ids<MatcherPath>,
    JsonBody(body): JsonBody<IntegrationMatcherRequest>,
) -> ApiResult<StatusCode> {
    update_part::<IntegrationMatcher, _>(&state, &access, integration_id, matcher_id, &body).await
}

#[utoipa::path(delete, path = "/api/project/{project_id}/integrations/{integration_id}/matchers/{matcher_id}", tag = "integration",
    params(("project_id" = i64, Path), ("integration_id" = i64, Path), ("matcher_id" = i64, Path)),
    responses((status = 204), (status = 403), (status = 404)))]
async fn delete_matcher(
    access: ProjectAccess<ManageResources>,
    State(state): State<AppState>,
    Ids(MatcherPath {
        integration_id,
        matcher_id,
    }): Ids<MatcherPath>,
) -> ApiResult<StatusCode> {
    delete_part::<IntegrationMatcher, _>(&state, &access, integration_id, matcher_id).await
}

#[utoipa::path(get, path = "/api/project/{project_id}/integrations/{integration_id}/values", tag = "integration",
    params(("project_id" = i64, Path), ("integration_id" = i64, Path)),
    responses((status = 200, body = [IntegrationExtractValue]), (status = 404)))]
async fn values(
    access: ProjectAccess<Read>,
    State(state): State<AppState>,
    Ids(IntegrationPath { integration_id }): Ids<IntegrationPath>,
) -> ApiResult<Json<Vec<IntegrationExtractValue>>> {
    list_parts(&state, &access, integration_id).await
}

#[utoipa::path(post, path = "/api/project/{project_id}/integrations/{integration_id}/values", tag = "integration",
    params(("project_id" = i64, Path), ("integration_id" = i64, Path)), request_body = IntegrationExtractValueRequest,
    responses((status = 201, body = IntegrationExtractValue), (status = 400), (status = 403), (status = 404)))]
async fn create_value(
    access: ProjectAccess<ManageResources>,
    State(state): State<AppState>,
    Ids(IntegrationPath { integration_id }): Ids<IntegrationPath>,
    JsonBody(body): JsonBody<IntegrationExtractValueRequest>,
) -> ApiResult<(StatusCode, Json<IntegrationExtractValue>)> {
    let value = create_part(&state, &access, integration_id, &body).await?;
    Ok((StatusCode::CREATED, Json(value)))
}

#[utoipa::path(put, path = "/api/project/{project_id}/integrations/{integration_id}/values/{extractvalue_id}", tag = "integration",
    params(("project_id" = i64, Path), ("integration_id" = i64, Path), ("extractvalue_id" = i64, Path)),
    request_body = IntegrationExtractValueRequest,
    responses((status = 204), (status = 400), (status = 403), (status = 404)))]
async fn update_value(
    access: ProjectAccess<ManageResources>,
    State(state): State<AppState>,
    Ids(ValuePath {
        integration_id,
        extractvalue_id,
    }): Ids<ValuePath>,
    JsonBody(body): JsonBody<IntegrationExtractValueRequest>,
) -> ApiResult<StatusCode> {
    update_part::<IntegrationExtractValue, _>(
        &state,
        &access,
        integration_id,
        extractvalue_id,
        &body,
    )
    .await
}

#[utoipa::path(delete, path = "/api/project/{project_id}/integrations/{integration_id}/values/{extractvalue_id}", tag = "integration",
    params(("project_id" = i64, Path), ("integration_id" = i64, Path), ("extractvalue_id" = i64, Path)),
    responses((status = 204), (status = 403), (status = 404)))]
async fn delete_value(
    access: ProjectAccess<ManageResources>,
    State(state): State<AppState>,
    Ids(ValuePath {
        integration_id,
        extractvalue_id,
    }): Ids<ValuePath>,
) -> ApiResult<StatusCode> {
    delete_part::<IntegrationExtractValue, _>(&state, &access, integration_id, extractvalue_id)
        .await
}

/// What the routes need of an integration part (a matcher or an extract value) besides what
/// the store does with it: its request, and the words errors and events name it with.
trait Part: IntegrationPart + serde::Serialize {
    type Request: Sync;
    /// The part as messages name it: `matcher`, `extract value`.
    const NOUN: &'static str;
    /// The object type of its events.
    const EVENT_TYPE: &'static str;
    fn check(request: &Self::Request) -> Checked<Self::Fields>;
    fn request_id(request: &Self::Request) -> Option<i64>;
    fn id(&self) -> i64;
    fn name(&self) -> &str;
    fn fields_name(fields: &Self::Fields) -> &str;
}

impl Part for IntegrationMatcher {
    type Request = IntegrationMatcherRequest;
    const NOUN: &'static str = "matcher";
    const EVENT_TYPE: &'static str = "integrationmatcher";
    fn check(request: &IntegrationMatcherRequest) -> Checked<MatcherFields> {
        request.check()
    }
    fn request_id(request: &IntegrationMatcherRequest) -> Option<i64> {
        request.id
    }
    fn id(&self) -> i64 {
        self.id
    }
    fn name(&self) -> &str {
        &self.name
    }
    fn fields_name(fields: &MatcherFields) -> &str {
        &fields.name
    }
}

impl Part for IntegrationExtractValue {
    type Request = IntegrationExtractValueRequest;
    const NOUN: &'static str = "extract value";
    const EVENT_TYPE: &'static str = "integrationextractvalue";
    fn check(request: &IntegrationExtractValueRequest) -> Checked<ExtractValueFields> {
        request.check()
    }
    fn request_id(request: &IntegrationExtractValueRequest) -> Option<i64> {
        request.id
    }
    fn id(&self) -> i64 {
        self.id
    }
    fn name(&self) -> &str {
        &self.name
    }
    fn fields_name(fields: &ExtractValueFields) -> &str {
        &fields.name
    }
}

/// The parts of kind `P` of an integration of the project.
async fn list_parts<P: Part, N>(
    state: &AppState,
    access: &ProjectAccess<N>,
    integration_id: i64,
) -> ApiResult<Json<Vec<P>>> {
    integration_of(state, access.project_id, integration_id).await?;
    Ok(Json(
        state
            .store
            .integration_parts(access.project_id, integration_id)
            .await?,
    ))
}

async fn create_part<P: Part, N>(
    state: &AppState,
    access: &ProjectAccess<N>,
    integration_id: i64,
    body: &P::Request,
) -> ApiResult<P> {
    integration_of(state, access.project_id, integration_id).await?;
    let fields = P::check(body)?;
    let part: P = state
        .store
        .create_integration_part(integration_id, &fields)
        .await?;
    part_event::<P, N>(state, access, part.id(), part.name(), "created").await;
    Ok(part)
}

async fn update_part<P: Part, N>(
    state: &AppState,
    access: &ProjectAccess<N>,
    integration_id: i64,
    id: i64,
    body: &P::Request,
) -> ApiResult<StatusCode> {
    same_id(P::request_id(body), id, &capitalized(P::NOUN))?;
    state
        .store
        .integration_part::<P>(access.project_id, integration_id, id)
        .await
        .or_not_found(P::NOUN)?;
    let fields = P::check(body)?;
    state
        .store
        .update_integration_part::<P>(integration_id, id, &fields)
        .await
        .or_not_found(P::NOUN)?;
    part_event::<P, N>(state, access, id, P::fields_name(&fields), "updated").await;
    Ok(StatusCode::NO_CONTENT)
}

async fn delete_part<P: Part, N>(
    state: &AppState,
    access: &ProjectAccess<N>,
    integration_id: i64,
    id: i64,
) -> ApiResult<StatusCode> {
    let part = state
        .store
        .integration_part::<P>(access.project_id, integration_id, id)
        .await
        .or_not_found(P::NOUN)?;
    state
        .store
        .delete_integration_part::<P>(integration_id, id)
        .await
        .or_not_found(P::NOUN)?;
    part_event::<P, N>(state, access, id, part.name(), "deleted").await;
    Ok(StatusCode::NO_CONTENT)
}

/// The event of a part `done` ("created", "updated", "deleted").
async fn part_event<P: Part, N>(
    state: &AppState,
    access: &ProjectAccess<N>,
    id: i64,
    name: &str,
    done: &str,
) {
    let description = format!("Integration {} {} {done}", P::NOUN, label(name, id));
    event(state, access, id, P::EVENT_TYPE, description).await;
}

fn capitalized(noun: &str) -> String {
    let mut chars = noun.chars();
    chars
        .next()
        .map(|first| first.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// The project's own aliases: deliveries to them reach its searchable integrations.
#[utoipa::path(get, path = "/api/project/{project_id}/integrations/aliases", tag = "integration",
    params(("project_id" = i64, Path)), responses((status = 200, body = [IntegrationAlias])))]
async fn project_aliases(
    access: ProjectAccess<Read>,
    State(state): State<AppState>,
) -> ApiResult<Json<Vec<IntegrationAlias>>> {
    alias_list(&state, access.project_id, None).await
}

/// Makes a new random alias of the project; answers 200 with it, as Semaphore does.
#[utoipa::path(post, path = "/api/project/{project_id}/integrations/aliases", tag = "integration",
    params(("project_id" = i64, Path)),
    responses((status = 200, body = IntegrationAlias), (status = 403)))]
async fn create_project_alias(
    access: ProjectAccess<ManageResources>,
    State(state): State<AppState>,
) -> ApiResult<Json<IntegrationAlias>> {
    new_alias(&state, &access, None).await
}

#[utoipa::path(delete, path = "/api/project/{project_id}/integrations/aliases/{alias_id}", tag = "integration",
    params(("project_id" = i64, Path), ("alias_id" = i64, Path)),
    responses((status = 204), (status = 403), (status = 404)))]
async fn delete_project_alias(
    access: ProjectAccess<ManageResources>,
    State(state): State<AppState>,
    Ids(ProjectAliasPath { alias_id }): Ids<ProjectAliasPath>,
) -> ApiResult<StatusCode> {
    state
        .store
        .delete_integration_alias(access.project_id, None, alias_id)
        .await
        .or_not_found("alias")?;
    Ok(StatusCode::NO_CONTENT)
}

/// An integration's own aliases.
#[utoipa::path(get, path = "/api/project/{project_id}/integrations/{integration_id}/aliases", tag = "integration",
    params(("project_id" = i64, Path), ("integration_id" = i64, Path)),
    responses((status = 200, body = [IntegrationAlias]), (status = 404)))]
async fn aliases(
    access: ProjectAccess<Read>,
    State(state): State<AppState>,
    Ids(IntegrationPath { integration_id }): Ids<IntegrationPath>,
) -> ApiResult<Json<Vec<IntegrationAlias>>> {
    integration_of(&state, access.project_id, integration_id).await?;
    alias_list(&state, access.project_id, Some(integration_id)).await
}

#[utoipa::path(post, path = "/api/project/{project_id}/integrations/{integration_id}/aliases", tag = "integration",
    params(("project_id" = i64, Path), ("integration_id" = i64, Path)),
    responses((status = 200, body = IntegrationAlias), (status = 403), (status = 404)))]
async fn create_alias(
    access: ProjectAccess<ManageResources>,
    State(state): State<AppState>,
    Ids(IntegrationPath { integration_id }): Ids<IntegrationPath>,
) -> ApiResult<Json<IntegrationAlias>> {
    integration_of(&state, access.project_id, integration_id).await?;
    new_alias(&state, &access, Some(integration_id)).await
}

#[utoipa::path(delete, path = "/api/project/{project_id}/integrations/{integration_id}/aliases/{alias_id}", tag = "integration",
    params(("project_id" = i64, Path), ("integration_id" = i64, Path), ("alias_id" = i64, Path)),
    responses((status = 204), (status = 403), (status = 404)))]
async fn delete_alias(
    access: ProjectAccess<ManageResources>,
    State(state): State<AppState>,
    Ids(IntegrationAliasPath {
        integration_id,
        alias_id,
    }): Ids<IntegrationAliasPath>,
) -> ApiResult<StatusCode> {
    state
        .store
        .delete_integration_alias(access.project_id, Some(integration_id), alias_id)
        .await
        .or_not_found("alias")?;
    Ok(StatusCode::NO_CONTENT)
}

/// Receives a webhook delivery (no session: the alias, and each integration's signature or
/// token, are what let it in).
#[utoipa::path(post, path = "/api/integrations/{integration_alias}", tag = "integration",
    params(("integration_alias" = String, Path)), request_body(content = String, description = "the sender's payload, any type"),
    security(()),
    responses((status = 204, description = "taken; the started tasks' ids in X-Semaphore-Task-ID"),
              (status = 401), (status = 404)))]
async fn receive_post(
    state: State<AppState>,
    client: Client,
    path: Ids<InboundPath>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    receive(state, client, path, headers, body).await
}

/// Receives a webhook delivery sent with GET (no body).
#[utoipa::path(get, path = "/api/integrations/{integration_alias}", tag = "integration",
    params(("integration_alias" = String, Path)), security(()),
    responses((status = 204), (status = 401), (status = 404)))]
async fn receive_get(
    state: State<AppState>,
    client: Client,
    path: Ids<InboundPath>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    receive(state, client, path, headers, Bytes::new()).await
}

async fn receive(
    State(state): State<AppState>,
    client: Client,
    Ids(InboundPath { integration_alias }): Ids<InboundPath>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let target = match state.store.integrations_of_alias(&integration_alias).await {
        Ok(target) => target,
        Err(StoreError::NotFound) => {
            return Err(ApiError::NotFound("no such integration alias".into()));
        }
        Err(e) => return Err(e.into()),
    };
    let delivery = Delivery::new(
        headers.iter().filter_map(|(name, value)| {
            Some((name.as_str().to_string(), value.to_str().ok()?.to_string()))
        }),
        &body,
    );
    let (integrations, need_matchers) = match target {
        AliasTarget::Integration(one) => (vec![*one], false),
        AliasTarget::Project(all) => (all, true),
    };
    let mut refused = 0;
    let mut started = Vec::new();
    for integration in &integrations {
        if !authentic(&state, integration, &delivery).await? {
            refused += 1;
            tracing::warn!(integration.id = integration.id, project.id = integration.project_id,
                client = %client.ip, auth_method = %integration.auth_method,
                "integration: a delivery's signature or token is not valid; it started nothing");
            state
                .event(NewEvent {
                    project_id: Some(integration.project_id),
                    user_id: None,
                    object_id: Some(integration.id),
                    object_type: "integration",
                    description: format!(
                        "Integration {} refused a delivery from {}: its signature or token is not valid",
                        integration.name, client.ip
                    ),
                })
                .await;
            continue;
        }
        let project_id = ProjectId(integration.project_id);
        let matchers = state
            .store
            .integration_parts::<IntegrationMatcher>(project_id, integration.id)
            .await?;
        // A project's alias reaches every searchable integration: one without matchers would
        // fire on every delivery to the project, so it needs at least one.
        if (need_matchers && matchers.is_empty()) || !matchers.iter().all(|m| delivery.matches(m)) {
            tracing::debug!(
                integration.id = integration.id,
                "integration: a delivery did not match"
            );
            continue;
        }
        if let Some(task_id) = start(&state, integration, &delivery).await? {
            started.push(task_id);
        }
    }
    if refused > 0 && refused == integrations.len() {
        return Err(ApiError::Unauthorized);
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    for task_id in started {
        response.headers_mut().append(
            "x-semaphore-task-id",
            HeaderValue::from_str(&task_id.to_string()).expect("digits"),
        );
    }
    Ok(response)
}

/// Whether the delivery proves it comes from the integration's sender.
async fn authentic(
    state: &AppState,
    integration: &Integration,
    delivery: &Delivery<'_>,
) -> ApiResult<bool> {
    let method = integration.auth_method.as_str();
    if matches!(method, "" | "none") {
        return Ok(true);
    }
    let Some(secret) = auth_secret(state, integration).await? else {
        tracing::warn!(
            integration.id = integration.id,
            "integration: its auth_method needs a login_password key as auth_secret_id"
        );
        return Ok(false);
    };
    let header = |name: &str| delivery.header(name).unwrap_or_default();
    let body = delivery.body();
    Ok(match method {
        "github" => signature::verify_hmac_sha256(
            secret.password.as_bytes(),
            body,
            header("x-hub-signature-256"),
        ),
        "bitbucket" => signature::verify_hmac_sha256(
            secret.password.as_bytes(),
            body,
            header("x-hub-signature"),
        ),
        "hmac" => signature::verify_hmac_sha256(
            secret.password.as_bytes(),
            body,
            header(&integration.auth_header),
        ),
        "token" => signature::token_matches(&secret.password, header(&integration.auth_header)),
        "basic" => {
            let given = header("authorization");
            let decoded = given
                .strip_prefix("Basic ")
                .or_else(|| given.strip_prefix("basic "))
                .and_then(|b| {
                    base64::engine::general_purpose::STANDARD
                        .decode(b.trim())
                        .ok()
                })
                .and_then(|b| String::from_utf8(b).ok())
                .unwrap_or_default();
            let (login, password) = decoded.split_once(':').unwrap_or(("", ""));
            // Both compared, whatever the first says, so the time taken tells nothing.
            let login_ok = signature::token_matches(&secret.login, login) | secret.login.is_empty();
            let password_ok = signature::token_matches(&secret.password, password);
            login_ok && password_ok
        }
        _ => false,
    })
}

/// The login and password of the integration's key, decrypted; `None` when it has none.
async fn auth_secret(
    state: &AppState,
    integration: &Integration,
) -> ApiResult<Option<ralf_core::api::keys::LoginPassword>> {
    let Some(key_id) = integration.auth_secret_id else {
        return Ok(None);
    };
    let stored = match state
        .store
        .key_secret(ProjectId(integration.project_id), key_id)
        .await
    {
        Ok(stored) => stored,
        Err(StoreError::NotFound) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    match KeyMaterial::open(&state.cipher, stored.kind, stored.secret.as_deref()) {
        Ok(KeyMaterial::LoginPassword(lp)) if !lp.password.is_empty() => Ok(Some(lp)),
        Ok(_) => Ok(None),
        Err(e) => Err(ApiError::Internal(anyhow::anyhow!(
            "the secret of key {key_id} cannot be read: {e}"
        ))),
    }
}

/// Starts the integration's task for the delivery; `None` when it starts none (a replay, or
/// values the template refuses: both logged).
async fn start(
    state: &AppState,
    integration: &Integration,
    delivery: &Delivery<'_>,
) -> ApiResult<Option<i64>> {
    let project_id = ProjectId(integration.project_id);
    let values = state
        .store
        .integration_parts::<IntegrationExtractValue>(project_id, integration.id)
        .await?;
    let template = state
        .store
        .template(project_id, TemplateId(integration.template_id))
        .await
        .or_not_found("template")?;
    let refuse = |reason: String| {
        tracing::warn!(integration.id = integration.id, %reason,
            "integration: a delivery matched but its task cannot start");
        reason
    };
    let request = match delivery.task_request(integration.task_params.as_ref(), &values) {
        Ok(request) => TaskRequest {
            template_id: Some(template.id),
            template_name: None,
            secret: None,
            ..request
        },
        Err(reason) => {
            refused_event(state, integration, refuse(reason)).await;
            return Ok(None);
        }
    };
    let fields = match request.fields_for(&template.settings) {
        Ok(fields) => fields,
        Err(e) => {
            refused_event(state, integration, refuse(e.0)).await;
            return Ok(None);
        }
    };
    let secret = fields.secret.as_deref().map(|s| state.cipher.encrypt(s));
    let new = NewTask {
        project_id,
        template_id: TemplateId(template.id),
        user_id: None,
        playbook: &fields.playbook,
        environment: &fields.environment,
        arguments: fields.arguments.as_deref(),
        git_branch: fields.git_branch.as_deref(),
        commit_hash: fields.commit_hash.as_deref(),
        message: &fields.message,
        inventory_id: request.inventory_id.filter(|&id| id != 0),
        build_task_id: request.build_task_id.filter(|&id| id != 0),
        version: None,
        params: &fields.params,
        integration_id: Some(integration.id),
        schedule_id: None,
        secret: secret.as_deref(),
    };
    let window_start = Timestamp(Timestamp::now().0 - REPLAY_WINDOW);
    let task = match state
        .store
        .start_delivery(integration.id, delivery.delivery_id(), window_start, &new)
        .await
    {
        Ok(Started::Task(task)) => task,
        Ok(Started::Replay) => {
            tracing::info!(
                integration.id = integration.id,
                delivery = delivery.delivery_id().unwrap_or_default(),
                "integration: a delivery seen before was sent again; it started nothing"
            );
            return Ok(None);
        }
        Err(StoreError::Invalid(reason)) => {
            refused_event(state, integration, refuse(reason)).await;
            return Ok(None);
        }
        Err(e) => return Err(e.into()),
    };
    let line = format!(
        "Task {} added to queue by integration {}",
        task.id, integration.name
    );
    if let Err(e) = state
        .store
        .append_task_output(TaskId(task.id), &[(Timestamp::now(), line)])
        .await
    {
        tracing::warn!(error = %e, task_id = task.id, "could not write the first line");
    }
    state.live.publish(LiveEvent::Status {
        task_id: task.id,
        project_id: task.project_id,
        template_id: task.template_id,
        status: TaskStatus::Waiting,
    });
    state.task_queue.changed();
    tracing::info!(
        integration.id = integration.id,
        task_id = task.id,
        "integration: queued a task"
    );
    state
        .event(NewEvent {
            project_id: Some(task.project_id),
            user_id: None,
            object_id: Some(task.id),
            object_type: "task",
            description: format!(
                "Task ID {} queued for running by integration {}",
                task.id, integration.name
            ),
        })
        .await;
    Ok(Some(task.id))
}

async fn refused_event(state: &AppState, integration: &Integration, reason: String) {
    state
        .event(NewEvent {
            project_id: Some(integration.project_id),
            user_id: None,
            object_id: Some(integration.id),
            object_type: "integration",
            description: format!("Integration {} started no task: {reason}", integration.name),
        })
        .await;
}

async fn integration_of(
    state: &AppState,
    project_id: ProjectId,
    integration_id: i64,
) -> ApiResult<Integration> {
    state
        .store
        .integration(project_id, integration_id)
        .await
        .or_not_found("integration")
}

async fn alias_list(
    state: &AppState,
    project_id: ProjectId,
    integration_id: Option<i64>,
) -> ApiResult<Json<Vec<IntegrationAlias>>> {
    let rows = state
        .store
        .integration_aliases(project_id, integration_id)
        .await?;
    Ok(Json(
        rows.into_iter()
            .map(|r| r.shown(&state.settings.web_host))
            .collect(),
    ))
}

async fn new_alias(
    state: &AppState,
    access: &ProjectAccess<ManageResources>,
    integration_id: Option<i64>,
) -> ApiResult<Json<IntegrationAlias>> {
    // 128 random bits: the alias is what lets a delivery in when the integration has no
    // signature or token, so it must not be guessable.
    let alias = ralf_core::token::generate()[..32].to_string();
    let row = state
        .store
        .create_integration_alias(access.project_id, integration_id, &alias)
        .await?;
    Ok(Json(row.shown(&state.settings.web_host)))
}

/// Checks a create or update body: its shape, and that the template is the project's (the
/// key and an inventory the overrides name are the store's check). The overrides are checked
/// against the template when a delivery starts the task, with the extracted values in: a
/// required survey variable may be one an extract value fills.
async fn checked(
    state: &AppState,
    project_id: ProjectId,
    body: &IntegrationRequest,
) -> ApiResult<IntegrationFields> {
    same_project(body.project_id, project_id)?;
    let fields = body.check()?;
    state
        .store
        .template(project_id, TemplateId(fields.template_id))
        .await
        .map_err(|e| match e {
            StoreError::NotFound => {
                ApiError::bad_request("template_id: no such template in this project")
            }
            other => other.into(),
        })?;
    Ok(fields)
}

async fn event<N>(
    state: &AppState,
    access: &ProjectAccess<N>,
    object_id: i64,
    object_type: &'static str,
    description: String,
) {
    state
        .event(NewEvent {
            project_id: Some(access.project_id.0),
            user_id: Some(access.user.id),
            object_id: Some(object_id),
            object_type,
            description,
        })
        .await;
}

fn label(name: &str, id: i64) -> String {
    if name.is_empty() {
        format!("ID {id}")
    } else {
        name.to_string()
    }
}
