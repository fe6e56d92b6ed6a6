//! The service catalog under `/api/project/{project_id}/catalog` (ralf's own; see
//! docs/catalog.md): its settings, its services as they stand, plans, rollouts, and the
//! decisions people make about them. Members read; task runners start, cancel, approve and
//! reject; who may update the project changes the settings. The work is `crate::catalog`'s.

use axum::Json;
use axum::body::Bytes;
use axum::extract::Path;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use ralf_catalog::api::{
    CatalogSettings, InvalidCatalogBody, MAX_PARALLELISM, PlanView, RolloutRequest, RolloutSummary,
    RolloutView, ServiceView,
};
use ralf_catalog::{Priority, Selection};
use ralf_core::api::ErrorBody;
use ralf_core::api::schedules::{next_cron_time, parse_cron};
use ralf_core::signature::{token_matches, verify_hmac_sha256};
use ralf_core::validate;
use ralf_core::{ProjectId, Timestamp};
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use ralf_store::catalog::NextRuns;

use crate::access::{ProjectAccess, Read, RunTasks, UpdateProject};
use crate::catalog;
use crate::error::{ApiError, ApiResult, OrNotFound};
use crate::extract::{Ids, JsonBody, OptionalJsonBody, Params};
use crate::state::AppState;

/// The most rollouts one list answers.
const MAX_ROLLOUTS: i64 = 100;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_settings, put_settings))
        .routes(routes!(services))
        .routes(routes!(graph))
        .routes(routes!(plan))
        .routes(routes!(list_rollouts, start_rollout))
        .routes(routes!(check))
        .routes(routes!(get_rollout))
        .routes(routes!(cancel_rollout))
        .routes(routes!(approve))
        .routes(routes!(reject))
        .routes(routes!(webhook))
}

/// The shortest webhook secret the settings take.
const MIN_WEBHOOK_SECRET: usize = 16;

/// The headers that may carry the webhook's secret itself (instead of a signature).
const SECRET_HEADERS: [&str; 2] = ["x-webhook-secret", "x-gitlab-token"];
/// GitHub's signature header: `sha256=` and the HMAC-SHA256 of the body in hexadecimal.
const SIGNATURE_HEADER: &str = "x-hub-signature-256";

/// The rollout named by `{rollout_id}` in the path.
#[derive(Deserialize)]
struct RolloutPath {
    rollout_id: i64,
}

/// The service named by `{name}` in the path.
#[derive(Deserialize)]
struct ServicePath {
    name: String,
}

/// What a plan takes, as `POST .../catalog/rollouts` does (at most one of them).
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct PlanQuery {
    /// Service names, separated by commas: these, with the dependencies they need.
    names: Option<String>,
    /// `P0` to `P4`: the services of this priority not yet deployed.
    priority: Option<String>,
    /// The next N services a rollout of all would run.
    next: Option<usize>,
}

impl PlanQuery {
    fn request(&self) -> Result<RolloutRequest, ApiError> {
        let priority = match self.priority.as_deref() {
            None => None,
            Some(text) => Some(Priority::parse(text).ok_or_else(|| {
                ApiError::bad_request(format!(
                    "priority: must be one of P0, P1, P2, P3, P4, not {text:?}"
                ))
            })?),
        };
        Ok(RolloutRequest {
            names: self.names.as_deref().map(|names| {
                names
                    .split(',')
                    .map(str::trim)
                    .filter(|n| !n.is_empty())
                    .map(String::from)
                    .collect()
            }),
            priority,
            next: self.next,
        })
    }
}

/// How many rollouts to list.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// At most this many, newest first (default and most: 100).
    limit: Option<i64>,
}

/// The project's catalog settings (the defaults, with no repository, when it has none).
#[utoipa::path(get, path = "/api/project/{project_id}/catalog/settings", tag = "catalog",
    params(("project_id" = i64, Path)),
    responses((status = 200, body = CatalogSettings), (status = 404, body = ErrorBody)))]
async fn get_settings(
    access: ProjectAccess<Read>,
    State(state): State<AppState>,
) -> ApiResult<Json<CatalogSettings>> {
    Ok(Json(
        catalog::settings(&state.store, access.project_id.0).await?,
    ))
}

/// Replaces the project's catalog settings; members left out take their defaults.
#[utoipa::path(put, path = "/api/project/{project_id}/catalog/settings", tag = "catalog",
    params(("project_id" = i64, Path)), request_body = CatalogSettings,
    responses((status = 204), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
async fn put_settings(
    access: ProjectAccess<UpdateProject>,
    State(state): State<AppState>,
    JsonBody(mut settings): JsonBody<CatalogSettings>,
) -> ApiResult<StatusCode> {
    let next_runs = checked_settings(&mut settings)?;
    let webhook_secret = match settings.webhook_secret.take() {
        None => None,
        Some(secret) if secret.is_empty() => Some(None),
        Some(secret) if secret.chars().count() < MIN_WEBHOOK_SECRET => {
            return Err(ApiError::bad_request(format!(
                "webhook_secret: must be at least {MIN_WEBHOOK_SECRET} characters (or \"\" to \
                 remove it)"
            )));
        }
        Some(secret) => Some(Some(state.cipher.encrypt(&secret))),
    };
    state
        .store
        .save_catalog_settings(access.project_id, &settings, next_runs)
        .await?;
    if let Some(encrypted) = webhook_secret {
        state
            .store
            .set_catalog_webhook_secret(access.project_id, encrypted.as_deref())
            .await?;
    }
    state.schedules.changed();
    Ok(StatusCode::NO_CONTENT)
}

/// Checks settings as `PUT .../catalog/settings` takes them (a backup's too), trimming them in
/// place; returns when their schedules fire next. The webhook secret is not looked at.
pub(crate) fn checked_settings(settings: &mut CatalogSettings) -> ApiResult<NextRuns> {
    settings.path = settings.path.trim().to_owned();
    if !settings.path.is_empty() {
        validate::inside_repository("path", &settings.path)?;
    }
    validate::short_text("path", &settings.path)?;
    settings.branch = settings
        .branch
        .take()
        .map(|b| b.trim().to_owned())
        .filter(|b| !b.is_empty());
    if let Some(branch) = &settings.branch {
        validate::short_text("branch", branch)?;
        if branch.starts_with('-') || branch.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(ApiError::bad_request(format!(
                "branch: {branch:?} is not a branch name"
            )));
        }
    }
    if !(1..=MAX_PARALLELISM).contains(&settings.parallelism) {
        return Err(ApiError::bad_request(format!(
            "parallelism: must be between 1 and {MAX_PARALLELISM}"
        )));
    }
    let deploy = cron_setting("schedule", &mut settings.schedule)?;
    let check = cron_setting("check_schedule", &mut settings.check_schedule)?;
    Ok(NextRuns { deploy, check })
}

/// A cron setting trimmed (empty: none), checked, and the next time it names.
fn cron_setting(field: &str, pattern: &mut Option<String>) -> Result<Option<Timestamp>, ApiError> {
    *pattern = pattern
        .take()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty());
    match pattern {
        Some(pattern) => {
            parse_cron(pattern).map_err(|e| ApiError::bad_request(format!("{field}: {e}")))?;
            Ok(next_cron_time(pattern, Timestamp::now()))
        }
        None => Ok(None),
    }
}

/// The catalog's services as they stand, read from the repository's branch now: what each file
/// declares, and what ralf recorded of its last rollout (or the unfinished rollout is doing).
/// Dependencies come first, then the higher priority, then the name.
#[utoipa::path(get, path = "/api/project/{project_id}/catalog/services", tag = "catalog",
    params(("project_id" = i64, Path)),
    responses((status = 200, body = [ServiceView]),
        (status = 400, description = "The catalog is invalid: every error with its file, line and column", body = InvalidCatalogBody),
        (status = 409, description = "The project has no catalog, or its repository cannot be read", body = ErrorBody)))]
async fn services(
    access: ProjectAccess<Read>,
    State(state): State<AppState>,
) -> ApiResult<Json<Vec<ServiceView>>> {
    Ok(Json(catalog::services(&state, access.project_id.0).await?))
}

/// How the graph comes out.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct GraphQuery {
    /// `dot` (the default) or `svg`.
    format: Option<String>,
}

/// The catalog's dependency graph in Graphviz DOT, or drawn as SVG with `?format=svg`: a box
/// per service with its priority and state (as `services` gives it), an arrow from each
/// dependency to what needs it.
#[utoipa::path(get, path = "/api/project/{project_id}/catalog/graph", tag = "catalog",
    params(("project_id" = i64, Path), GraphQuery),
    responses((status = 200, description = "The graph in DOT, or SVG", content(
            (String = "text/vnd.graphviz"), (String = "image/svg+xml"))),
        (status = 400, description = "The catalog is invalid: every error with its file, line and column; or an unknown format", body = InvalidCatalogBody),
        (status = 409, description = "The project has no catalog, or its repository cannot be read", body = ErrorBody)))]
async fn graph(
    access: ProjectAccess<Read>,
    State(state): State<AppState>,
    Params(query): Params<GraphQuery>,
) -> ApiResult<([(header::HeaderName, &'static str); 1], String)> {
    let svg = match query.format.as_deref().map(str::trim) {
        None | Some("") | Some("dot") => false,
        Some("svg") => true,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "format: must be dot or svg, not {other:?}"
            )));
        }
    };
    let graph = catalog::graph(&state, access.project_id.0, svg).await?;
    let content_type = if svg {
        "image/svg+xml; charset=utf-8"
    } else {
        "text/vnd.graphviz; charset=utf-8"
    };
    Ok(([(header::CONTENT_TYPE, content_type)], graph))
}

/// What a rollout would deploy now, in order, each service with why it is in and what it
/// waits for, and every other service with why not. Nothing starts.
#[utoipa::path(get, path = "/api/project/{project_id}/catalog/plan", tag = "catalog",
    params(("project_id" = i64, Path), PlanQuery),
    responses((status = 200, body = PlanView),
        (status = 400, description = "An invalid catalog (with `errors`) or query", body = InvalidCatalogBody),
        (status = 409, description = "The project has no catalog, or its repository cannot be read", body = ErrorBody)))]
async fn plan(
    access: ProjectAccess<Read>,
    State(state): State<AppState>,
    Params(query): Params<PlanQuery>,
) -> ApiResult<Json<PlanView>> {
    let selection = query.request()?.selection().map_err(ApiError::BadRequest)?;
    Ok(Json(
        catalog::plan(&state, access.project_id.0, selection).await?,
    ))
}

/// The project's rollouts, newest first.
#[utoipa::path(get, path = "/api/project/{project_id}/catalog/rollouts", tag = "catalog",
    params(("project_id" = i64, Path), ListQuery),
    responses((status = 200, body = [RolloutSummary])))]
async fn list_rollouts(
    access: ProjectAccess<Read>,
    State(state): State<AppState>,
    Params(query): Params<ListQuery>,
) -> ApiResult<Json<Vec<RolloutSummary>>> {
    let limit = query.limit.unwrap_or(MAX_ROLLOUTS).clamp(1, MAX_ROLLOUTS);
    Ok(Json(
        catalog::rollouts(&state.store, access.project_id.0, limit).await?,
    ))
}

/// Starts a rollout of the catalog at its branch's tip: every enabled service not yet
/// deployed, or the services named (with the dependencies they need), or one priority's, or
/// the next N. The body may be left out.
#[utoipa::path(post, path = "/api/project/{project_id}/catalog/rollouts", tag = "catalog",
    params(("project_id" = i64, Path)), request_body = RolloutRequest,
    responses((status = 201, body = RolloutView),
        (status = 400, description = "An invalid catalog (with `errors`; nothing starts), an unknown service, or nothing to roll out", body = InvalidCatalogBody),
        (status = 403, body = ErrorBody),
        (status = 409, description = "A rollout of the project is not finished, the project has no catalog, or its repository cannot be read", body = ErrorBody)))]
async fn start_rollout(
    access: ProjectAccess<RunTasks>,
    State(state): State<AppState>,
    OptionalJsonBody(request): OptionalJsonBody<RolloutRequest>,
) -> ApiResult<(StatusCode, Json<RolloutView>)> {
    let selection = request.selection().map_err(ApiError::BadRequest)?;
    let rollout =
        catalog::start_rollout(&state, access.project_id.0, selection, Some(access.user.id))
            .await?;
    Ok((StatusCode::CREATED, Json(rollout)))
}

/// Checks the health of what is deployed: a rollout that runs the smoke of every deployed (or
/// degraded) service that has one, and nothing else. A failing smoke leaves its service
/// `degraded`, a passing one `deployed`.
#[utoipa::path(post, path = "/api/project/{project_id}/catalog/check", tag = "catalog",
    params(("project_id" = i64, Path)),
    responses((status = 201, body = RolloutView),
        (status = 400, description = "An invalid catalog (with `errors`; nothing starts), or nothing to check", body = InvalidCatalogBody),
        (status = 403, body = ErrorBody),
        (status = 409, description = "A rollout of the project is not finished, the project has no catalog, or its repository cannot be read", body = ErrorBody)))]
async fn check(
    access: ProjectAccess<RunTasks>,
    State(state): State<AppState>,
) -> ApiResult<(StatusCode, Json<RolloutView>)> {
    let rollout = catalog::start_rollout(
        &state,
        access.project_id.0,
        Selection::Check,
        Some(access.user.id),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(rollout)))
}

/// One rollout: how it stands, and each service's state, steps, tasks and status objects.
#[utoipa::path(get, path = "/api/project/{project_id}/catalog/rollouts/{rollout_id}", tag = "catalog",
    params(("project_id" = i64, Path), ("rollout_id" = i64, Path)),
    responses((status = 200, body = RolloutView), (status = 404, body = ErrorBody)))]
async fn get_rollout(
    access: ProjectAccess<Read>,
    State(state): State<AppState>,
    Ids(RolloutPath { rollout_id }): Ids<RolloutPath>,
) -> ApiResult<Json<RolloutView>> {
    Ok(Json(
        catalog::rollout(&state, access.project_id.0, rollout_id)
            .await
            .or_not_found("rollout")?,
    ))
}

/// Cancels a rollout: no further service starts; the steps under way finish.
#[utoipa::path(post, path = "/api/project/{project_id}/catalog/rollouts/{rollout_id}/cancel", tag = "catalog",
    params(("project_id" = i64, Path), ("rollout_id" = i64, Path)),
    responses((status = 200, body = RolloutView), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "The rollout is finished", body = ErrorBody)))]
async fn cancel_rollout(
    access: ProjectAccess<RunTasks>,
    State(state): State<AppState>,
    Ids(RolloutPath { rollout_id }): Ids<RolloutPath>,
) -> ApiResult<Json<RolloutView>> {
    Ok(Json(
        catalog::cancel(&state, access.project_id.0, rollout_id, actor(&access))
            .await
            .or_not_found("rollout")?,
    ))
}

/// Confirms the apply of a service the unfinished rollout waits on.
#[utoipa::path(post, path = "/api/project/{project_id}/catalog/services/{name}/approve", tag = "catalog",
    params(("project_id" = i64, Path), ("name" = String, Path)),
    responses((status = 200, body = RolloutView), (status = 403, body = ErrorBody),
        (status = 409, description = "No rollout waits for this service's approval", body = ErrorBody)))]
async fn approve(
    access: ProjectAccess<RunTasks>,
    State(state): State<AppState>,
    Ids(ServicePath { name }): Ids<ServicePath>,
) -> ApiResult<Json<RolloutView>> {
    decide(access, state, name, true).await
}

/// Rejects the apply of a service the unfinished rollout waits on: the service is failed and
/// what depends on it is held.
#[utoipa::path(post, path = "/api/project/{project_id}/catalog/services/{name}/reject", tag = "catalog",
    params(("project_id" = i64, Path), ("name" = String, Path)),
    responses((status = 200, body = RolloutView), (status = 403, body = ErrorBody),
        (status = 409, description = "No rollout waits for this service's approval", body = ErrorBody)))]
async fn reject(
    access: ProjectAccess<RunTasks>,
    State(state): State<AppState>,
    Ids(ServicePath { name }): Ids<ServicePath>,
) -> ApiResult<Json<RolloutView>> {
    decide(access, state, name, false).await
}

async fn decide(
    access: ProjectAccess<RunTasks>,
    state: AppState,
    name: String,
    approved: bool,
) -> ApiResult<Json<RolloutView>> {
    Ok(Json(
        catalog::decide(&state, access.project_id.0, &name, approved, actor(&access)).await?,
    ))
}

fn actor(access: &ProjectAccess<RunTasks>) -> catalog::Actor<'_> {
    catalog::Actor {
        user_id: Some(access.user.id),
        name: &access.user.username,
    }
}

/// The webhook's answer: it was accepted, and what it starts goes on without the caller.
#[derive(Debug, Serialize, utoipa::ToSchema)]
struct WebhookAccepted {
    message: String,
}

/// The inbound webhook that deploys the next pending service (the seeds'
/// `deploy-next-service`), for callers without a session or token (a git host, a chat bot):
/// authenticated by the project's webhook secret (set in the catalog's settings), given as
/// GitHub's `X-Hub-Signature-256` (the HMAC-SHA256 of the body) or in `X-Webhook-Secret` or
/// `X-Gitlab-Token`. The body is not read otherwise. Answers at once; the rollout (if anything
/// is pending) starts right after, as ralf, and its outcome is in the rollouts and the log.
#[utoipa::path(post, path = "/api/project/{project_id}/catalog/webhook", tag = "catalog",
    params(("project_id" = i64, Path)),
    request_body(content = String, description = "Anything (a git host's event, say); only its signature is checked", content_type = "application/json"),
    security(()),
    responses((status = 202, body = WebhookAccepted),
        (status = 401, description = "No webhook secret set, or the signature or secret does not match; nothing starts", body = ErrorBody)))]
async fn webhook(
    State(state): State<AppState>,
    Path(project_id): Path<i64>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<WebhookAccepted>)> {
    let stored = state
        .store
        .catalog_webhook_secret(ProjectId(project_id))
        .await?;
    let secret = match stored.map(|s| state.cipher.decrypt_or_keyless(&s)) {
        Some(Ok(secret)) => secret,
        Some(Err(e)) => {
            tracing::error!(project.id = project_id, error = %e,
                "catalog webhook: the stored secret cannot be decrypted");
            return Err(ApiError::Unauthorized);
        }
        None => return Err(ApiError::Unauthorized),
    };
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let signed = header(SIGNATURE_HEADER)
        .is_some_and(|signature| verify_hmac_sha256(secret.as_bytes(), &body, signature));
    let told = SECRET_HEADERS
        .iter()
        .filter_map(|name| header(name))
        .any(|given| token_matches(&secret, given));
    if !(signed || told) {
        tracing::warn!(
            project.id = project_id,
            "catalog webhook: refused a call without a matching signature or secret"
        );
        return Err(ApiError::Unauthorized);
    }
    tokio::spawn(async move {
        let started =
            catalog::start_rollout(&state, project_id, Selection::Next { count: 1 }, None).await;
        match started {
            Ok(rollout) => tracing::info!(
                project.id = project_id,
                rollout.id = rollout.id,
                "catalog webhook: a rollout of the next pending service starts"
            ),
            Err(why) => tracing::warn!(project.id = project_id, %why,
                "catalog webhook: nothing started"),
        }
    });
    Ok((
        StatusCode::ACCEPTED,
        Json(WebhookAccepted {
            message: "accepted: the next pending service is deployed, if there is one".into(),
        }),
    ))
}
