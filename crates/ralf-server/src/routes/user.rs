//! The caller's own account: `/api/user`, its options and its API tokens.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use ralf_core::api::users::{ApiToken, ApiTokenRequest, CurrentUserInfo, UserOption};
use ralf_store::users::StoredApiToken;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::CurrentUser;
use crate::error::{ApiError, ApiResult, OrNotFound};
use crate::extract::{Ids, JsonBody, OptionalJsonBody};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(me))
        .routes(routes!(options, set_option))
        .routes(routes!(list_tokens, create_token))
        .routes(routes!(expire_token))
}

/// The logged-in user, and whether they may create projects.
#[utoipa::path(get, path = "/api/user", tag = "user", responses((status = 200, body = CurrentUserInfo)))]
async fn me(
    CurrentUser(user): CurrentUser,
    State(state): State<AppState>,
) -> Json<CurrentUserInfo> {
    let can_create_project = user.admin || state.settings.non_admin_can_create_project;
    Json(CurrentUserInfo {
        user,
        can_create_project,
    })
}

/// The longest option key; keys are words of letters, digits, `.`, `_` and `-`.
const MAX_OPTION_KEY: usize = 100;

/// The caller's options as a key/value map (`{}` when there are none).
#[utoipa::path(get, path = "/api/user/options", tag = "user",
    responses((status = 200, body = std::collections::BTreeMap<String, String>)))]
async fn options(
    CurrentUser(user): CurrentUser,
    State(state): State<AppState>,
) -> ApiResult<Json<std::collections::BTreeMap<String, String>>> {
    let options = state.store.user_options(user.id).await?;
    Ok(Json(options.into_iter().collect()))
}

/// Stores one option of the caller (its own options only) and answers it.
#[utoipa::path(post, path = "/api/user/options", tag = "user", request_body = UserOption,
    responses((status = 200, body = UserOption), (status = 400, body = ralf_core::api::ErrorBody)))]
async fn set_option(
    CurrentUser(user): CurrentUser,
    State(state): State<AppState>,
    JsonBody(option): JsonBody<UserOption>,
) -> ApiResult<Json<UserOption>> {
    let key = option.key.trim();
    let word = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    if key.is_empty() || key.len() > MAX_OPTION_KEY || !key.chars().all(word) {
        return Err(ApiError::bad_request(format!(
            "key must be 1 to {MAX_OPTION_KEY} letters, digits, '.', '_' or '-'"
        )));
    }
    ralf_core::validate::long_text("value", &option.value)?;
    state
        .store
        .set_user_option(user.id, key, &option.value)
        .await?;
    Ok(Json(UserOption {
        key: key.to_string(),
        value: option.value,
    }))
}

/// The caller's API tokens, each listed by the id its client got when creating it: the token
/// itself, as in Semaphore. The store keeps only a digest (for lookups) and the token encrypted
/// with the access key (for this list), so a copy of the database holds no usable token.
/// Tokens made without an access key are listed by their digest.
#[utoipa::path(get, path = "/api/user/tokens", tag = "user", responses((status = 200, body = [ApiToken])))]
async fn list_tokens(
    CurrentUser(user): CurrentUser,
    State(state): State<AppState>,
) -> ApiResult<Json<Vec<ApiToken>>> {
    let stored = state.store.api_tokens(user.id).await?;
    let tokens = stored
        .into_iter()
        .map(
            |StoredApiToken {
                 mut token,
                 sealed_id,
             }| {
                if let Some(id) = sealed_id.and_then(|sealed| state.cipher.decrypt(&sealed).ok()) {
                    token.id = id;
                }
                token
            },
        )
        .collect();
    Ok(Json(tokens))
}

/// Creates an API token for `Authorization: Bearer <id>`. The answer's `id` is the token.
#[utoipa::path(post, path = "/api/user/tokens", tag = "user", request_body(content = Option<ApiTokenRequest>),
    responses((status = 201, body = ApiToken)))]
async fn create_token(
    CurrentUser(user): CurrentUser,
    State(state): State<AppState>,
    // The body is optional (Semaphore's clients send none); when present it may name the token.
    OptionalJsonBody(request): OptionalJsonBody<ApiTokenRequest>,
) -> ApiResult<(StatusCode, Json<ApiToken>)> {
    ralf_core::validate::short_text("name", &request.name)?;
    let token = ralf_core::token::generate();
    // Without an access key the sealed form would be plain base64: then only the digest is kept.
    let sealed = state
        .cipher
        .is_encrypting()
        .then(|| state.cipher.encrypt(&token));
    let stored = state
        .store
        .create_api_token(
            user.id,
            &ralf_core::token::digest(&token),
            sealed.as_deref(),
            request.name.trim(),
        )
        .await?;
    let mut answer = stored.token;
    answer.id = token;
    Ok((StatusCode::CREATED, Json(answer)))
}

/// Expires one of the caller's tokens, named by the token (its listed id) or, for tokens
/// listed by digest, by that digest.
#[utoipa::path(delete, path = "/api/user/tokens/{api_token_id}", tag = "user",
    params(("api_token_id" = String, Path)), responses((status = 204), (status = 404)))]
async fn expire_token(
    CurrentUser(user): CurrentUser,
    State(state): State<AppState>,
    Ids(token_id): Ids<String>,
) -> ApiResult<StatusCode> {
    let token_id = token_id.to_lowercase();
    let by_token = state
        .store
        .expire_api_token(user.id, &ralf_core::token::digest(&token_id))
        .await;
    match by_token {
        Err(ralf_store::StoreError::NotFound) => state
            .store
            .expire_api_token(user.id, &token_id)
            .await
            .or_not_found("API token")?,
        other => other?,
    }
    Ok(StatusCode::NO_CONTENT)
}
