//! `/api/health/live` and `/api/health/ready`: probes that need no login and say nothing
//! secret.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::health::DISPATCHER_SILENCE;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(live))
        .routes(routes!(ready))
}

/// What a probe found: `ok`, or the problem of each part that has one.
#[derive(Debug, Serialize, ToSchema)]
pub struct HealthReport {
    /// `ok` when every check passed, else `unavailable`.
    pub status: &'static str,
    /// `ok`, or why the database does not answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database: Option<String>,
    /// `ok`, or why the dispatcher is not taken for running.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dispatcher: Option<String>,
}

/// The process answers (a liveness probe: it does not look at the database).
#[utoipa::path(get, path = "/api/health/live", tag = "system", security(),
    responses((status = 200, description = "the process answers", body = HealthReport)))]
async fn live() -> Json<HealthReport> {
    Json(HealthReport {
        status: "ok",
        database: None,
        dispatcher: None,
    })
}

/// The database answers and the dispatcher runs (a readiness probe).
#[utoipa::path(get, path = "/api/health/ready", tag = "system", security(),
    responses(
        (status = 200, description = "ready to serve and run tasks", body = HealthReport),
        (status = 503, description = "the database or the dispatcher is not working", body = HealthReport),
    ))]
async fn ready(State(state): State<AppState>) -> (StatusCode, Json<HealthReport>) {
    let database = match tokio::time::timeout(DISPATCHER_SILENCE, state.store.ping()).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness: the database does not answer");
            Err("the database does not answer".to_string())
        }
        Err(_) => Err("the database did not answer in time".to_string()),
    };
    let dispatcher = match state.health.dispatcher_silent_for() {
        None => Err("the dispatcher has not looked at the queue yet".to_string()),
        Some(silence) if silence > DISPATCHER_SILENCE => Err(format!(
            "the dispatcher has not looked at the queue for {} s",
            silence.as_secs()
        )),
        Some(_) => Ok(()),
    };
    let ok = database.is_ok() && dispatcher.is_ok();
    let show = |part: Result<(), String>| Some(part.err().unwrap_or_else(|| "ok".into()));
    let report = HealthReport {
        status: if ok { "ok" } else { "unavailable" },
        database: show(database),
        dispatcher: show(dispatcher),
    };
    let code = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(report))
}
