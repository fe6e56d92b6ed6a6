//! The API's routes, one module a resource, merged here. Each handler carries its OpenAPI
//! description, so `/api/openapi.json` is generated from the same code that serves.

mod auth;
mod backup;
pub(crate) mod catalog;
pub(crate) mod environments;
mod events;
mod host_configs;
mod inventories;
mod keys;
mod members;
pub(crate) mod projects;
mod repositories;
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
        .merge(catalog::router())
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
    .layer(tower_http::trace::TraceLayer::new_for_http())
    .with_state(state)
}

async fn no_such_route() -> ApiError {
    ApiError::NotFound("no such API route".into())
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
