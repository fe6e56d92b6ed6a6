//! The API's routes, one module a resource, merged here. Each handler carries its OpenAPI
//! description, so `/api/openapi.json` is generated from the same code that serves.

mod auth;
mod backup;
pub(crate) mod catalog;
mod docs;
pub(crate) mod environments;
mod events;
mod health;
mod host_configs;
mod integrations;
mod inventories;
mod keys;
mod members;
mod notifications;
pub(crate) mod projects;
mod repositories;
mod retention;
mod runner_jobs;
mod runners;
mod schedules;
mod system;
mod tasks;
mod templates;
mod user;
pub(crate) mod users;
mod views;
mod ws;

use axum::body::Body;
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use axum::http::{HeaderValue, Request, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

use crate::error::ApiError;
use crate::state::AppState;

#[derive(OpenApi)]
#[openapi(
    info(title = "ralf API", description = "ralf's API: Semaphore UI's REST API (2.16) plus ralf's extensions."),
    modifiers(&SecuritySchemes),
    security(("bearer" = []), ("cookie" = []))
)]
struct ApiDoc;

struct SecuritySchemes;

impl utoipa::Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{
            ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme,
        };
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        components.add_security_scheme(
            "cookie",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new(
                crate::auth::SESSION_COOKIE,
            ))),
        );
    }
}

/// Every route of the API, and the OpenAPI document describing them.
pub fn api() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(system::router())
        .merge(health::router())
        .merge(auth::router())
        .merge(user::router())
        .merge(users::router())
        .merge(projects::router())
        .merge(backup::router())
        .merge(members::router())
        .merge(keys::router())
        .merge(host_configs::router())
        .merge(repositories::router())
        .merge(inventories::router())
        .merge(environments::router())
        .merge(events::router())
        .merge(views::router())
        .merge(templates::router())
        .merge(tasks::router())
        .merge(runners::router())
        .merge(runner_jobs::router())
        .merge(schedules::router())
        .merge(integrations::router())
        .merge(retention::router())
        .merge(catalog::router())
        .merge(notifications::router())
        .merge(ws::router())
        .split_for_parts()
}

/// The whole HTTP application: the API under `/api`, its OpenAPI document, and the
/// compatibility rules every response follows.
pub fn app(state: AppState) -> Router {
    let (api, openapi) = api();
    let openapi = std::sync::Arc::new(openapi);
    api.route(
        "/api/openapi.json",
        axum::routing::get(move || {
            let doc = openapi.clone();
            async move { Json(doc.as_ref().clone()) }
        }),
    )
    .route("/", axum::routing::get(crate::ui::page))
    .route("/ui/{name}", axum::routing::get(crate::ui::asset))
    .merge(docs::router())
    .route(
        "/metrics",
        axum::routing::get(crate::metrics::public_metrics),
    )
    .route_layer(middleware::from_fn(crate::metrics::track_http))
    .fallback(no_such_route)
    .method_not_allowed_fallback(method_not_allowed)
    .layer(middleware::from_fn_with_state(
        state.clone(),
        crate::csrf::guard,
    ))
    .layer(middleware::from_fn(api_conventions))
    .layer(tower_http::catch_panic::CatchPanicLayer::custom(
        panic_response,
    ))
    .layer(tower_http::trace::TraceLayer::new_for_http().make_span_with(request_span))
    .with_state(state)
}

/// The span each request's messages are logged in: its id (the client's `X-Request-Id` when
/// it sent a usable one, else a new one), method and path.
fn request_span(request: &Request<Body>) -> tracing::Span {
    let id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 64 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_owned)
        .unwrap_or_else(|| format!("{:016x}", rand::random::<u64>()));
    tracing::info_span!(
        "request",
        request.id = %id,
        method = %request.method(),
        path = %request.uri().path(),
    )
}

/// Under `/api`, a JSON 404; any other page asked for with GET is the web UI's, whose client
/// reads the path (`/project/1/templates`) and shows that page.
async fn no_such_route(
    method: axum::http::Method,
    uri: axum::http::Uri,
    headers: axum::http::HeaderMap,
) -> Response {
    let api = uri.path() == "/api" || uri.path().starts_with("/api/");
    if !api && (method == axum::http::Method::GET || method == axum::http::Method::HEAD) {
        return crate::ui::page(headers).await;
    }
    ApiError::NotFound("no such API route".into()).into_response()
}

async fn method_not_allowed() -> Response {
    let body = Json(ralf_core::api::ErrorBody {
        error: "method not allowed on this route".into(),
    });
    (StatusCode::METHOD_NOT_ALLOWED, body).into_response()
}

fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!("a request handler panicked");
    ApiError::Internal(anyhow::anyhow!("handler panicked")).into_response()
}

/// Semaphore's clients expect `Content-Type: application/json` on every `/api` answer, empty
/// ones included (`ping` and `raw_output` are text and say so themselves).
async fn api_conventions(request: Request<Body>, next: Next) -> Response {
    let mut response = next.run(request).await;
    // A WebSocket upgrade (101) has no body to describe.
    if response.status() != StatusCode::SWITCHING_PROTOCOLS
        && !response.headers().contains_key(CONTENT_TYPE)
    {
        response
            .headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if response.status() == StatusCode::NO_CONTENT {
            response.headers_mut().remove(CONTENT_LENGTH);
        }
    }
    response
}
