//! The caller's own account: `/api/user` and its API tokens.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use ralf_core::api::users::{ApiToken, ApiTokenRequest, User};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::CurrentUser;
use crate::error::{ApiResult, OrNotFound};
use crate::extract::Ids;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(me))
        .routes(routes!(list_tokens, create_token))
        .routes(routes!(expire_token))
}

/// The logged-in user.
#[utoipa::path(get, path = "/api/user", tag = "user", responses((status = 200, body = User)))]
async fn me(CurrentUser(user): CurrentUser) -> Json<User> {
    Json(user)
}

/// The caller's API tokens. Each is listed by its id, a digest of the token: the token itself
/// is shown only once, when it is created.
#[utoipa::path(get, path = "/api/user/tokens", tag = "user", responses((status = 200, body = [ApiToken])))]
async fn list_tokens(
    CurrentUser(user): CurrentUser,
    State(state): State<AppState>,
) -> ApiResult<Json<Vec<ApiToken>>> {
    Ok(Json(state.store.api_tokens(user.id).await?))
}

/// Creates an API token for `Authorization: Bearer <id>`. The answer's `id` is the token.
#[utoipa::path(post, path = "/api/user/tokens", tag = "user", request_body(content = Option<ApiTokenRequest>),
    responses((status = 201, body = ApiToken)))]
async fn create_token(
    CurrentUser(user): CurrentUser,
    State(state): State<AppState>,
    body: axum::body::Bytes,
) -> ApiResult<(StatusCode, Json<ApiToken>)> {
    // The body is optional (Semaphore's clients send none); when present it may name the token.
    let request: ApiTokenRequest = if body.iter().all(u8::is_ascii_whitespace) {
        ApiTokenRequest::default()
    } else {
        let request = serde_json::from_slice(&body).map_err(|e| {
            crate::error::ApiError::bad_request(format!("invalid request body: {e}"))
        })?;
        ralf_core::validate::no_nul_in_json(&body)?;
        request
    };
    ralf_core::validate::short_text("name", &request.name)?;
    let token = ralf_core::token::generate();
    let mut stored = state
        .store
        .create_api_token(
            user.id,
            &ralf_core::token::digest(&token),
            request.name.trim(),
        )
        .await?;
    stored.id = token;
    Ok((StatusCode::CREATED, Json(stored)))
}

/// Expires one of the caller's tokens (by the token, or by its listed id).
#[utoipa::path(delete, path = "/api/user/tokens/{api_token_id}", tag = "user",
    params(("api_token_id" = String, Path)), responses((status = 204), (status = 404)))]
async fn expire_token(
    CurrentUser(user): CurrentUser,
    State(state): State<AppState>,
    Ids(token_id): Ids<String>,
) -> ApiResult<StatusCode> {
    let token_id = token_id.to_lowercase();
    let by_digest = state.store.expire_api_token(user.id, &token_id).await;
    match by_digest {
        Err(ralf_store::StoreError::NotFound) => state
            .store
            .expire_api_token(user.id, &ralf_core::token::digest(&token_id))
            .await
            .or_not_found("API token")?,
        other => other?,
    }
    Ok(StatusCode::NO_CONTENT)
}
