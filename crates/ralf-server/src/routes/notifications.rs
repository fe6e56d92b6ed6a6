//! `POST /api/project/{project_id}/notifications/test`: sends a test message to every delivery
//! the project's alerts make (docs/notifications.md), now, and says which failed.

use axum::extract::State;
use axum::http::StatusCode;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::access::{ProjectAccess, RunTasks};
use crate::error::{ApiError, ApiResult};
use crate::notify::{TestOutcome, send_test};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(test))
}

/// Sends a test notification to all channels the project's alerts reach: 204 when every one
/// took it, 409 when the project's alerts are off or no channel reaches anyone, 502 naming the
/// channels that failed. Anyone who may run the project's tasks (and so cause its alerts) may
/// test them.
#[utoipa::path(post, path = "/api/project/{project_id}/notifications/test", tag = "projects",
    params(("project_id" = i64, Path)),
    responses((status = 204), (status = 403), (status = 404),
        (status = 409, description = "Alerts not enabled for the project"),
        (status = 502, description = "A channel did not take the message")))]
async fn test(
    access: ProjectAccess<RunTasks>,
    State(state): State<AppState>,
) -> ApiResult<StatusCode> {
    match send_test(&state, access.project_id).await? {
        TestOutcome::Sent => Ok(StatusCode::NO_CONTENT),
        TestOutcome::AlertsOff => Err(ApiError::Conflict(
            "alerts are not enabled for this project".into(),
        )),
        TestOutcome::NoChannel => Err(ApiError::Conflict(
            "no notification channel reaches anyone: configure one on the server \
             (docs/notifications.md), and for e-mail subscribe users with their alert flag"
                .into(),
        )),
        TestOutcome::Failed(failures) => Err(ApiError::BadGateway(format!(
            "the test notification failed: {}",
            failures.join("; ")
        ))),
    }
}
