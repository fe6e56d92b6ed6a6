//! Logging in and out with a password; the session lives in the `semaphore` cookie.

use std::net::SocketAddr;

use axum::Json;
use axum::extract::{ConnectInfo, State};
use axum::http::header::{SET_COOKIE, USER_AGENT};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{AppendHeaders, IntoResponse};
use ralf_core::api::users::{Login, LoginMetadata};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::SESSION_COOKIE;
use crate::error::{ApiError, ApiResult};
use crate::extract::JsonBody;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(login_metadata, login))
        .routes(routes!(logout))
}

/// How users can log in.
#[utoipa::path(get, path = "/api/auth/login", tag = "authentication",
    responses((status = 200, body = LoginMetadata)))]
async fn login_metadata() -> Json<LoginMetadata> {
    Json(LoginMetadata {
        oidc_providers: Vec::new(),
        login_with_password: true,
    })
}

/// Logs in with a username (or e-mail) and password; sets the `semaphore` cookie.
#[utoipa::path(post, path = "/api/auth/login", tag = "authentication", request_body = Login,
    responses((status = 204, description = "logged in; the session cookie is set"),
              (status = 401, description = "wrong login or password"),
              (status = 429, description = "too many failed attempts; wait and try again")))]
async fn login(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<Login>,
) -> ApiResult<impl IntoResponse> {
    let ip = Some(peer.ip());
    let login = body.auth.trim().to_string();
    if let Err(wait) = state.login_throttle.check(&login, ip) {
        return Err(ApiError::TooManyRequests(format!(
            "too many failed logins; try again in {} seconds",
            wait.as_secs().max(1)
        )));
    }
    let found = state.store.user_for_login(&login).await?;
    let password = body.password;
    let user = tokio::task::spawn_blocking(move || {
        found.filter(|(user, hash)| !user.external && ralf_core::password::verify(&password, hash))
    })
    .await
    .map_err(|e| ApiError::Internal(e.into()))?;
    let Some((user, _)) = user else {
        state.login_throttle.failed(&login, ip);
        tracing::info!(login = %login, ip = %peer.ip(), "failed login");
        return Err(ApiError::Unauthorized);
    };
    state.login_throttle.succeeded(&login, ip);

    let secret = ralf_core::token::generate();
    let agent = headers
        .get(USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    state
        .store
        .create_session(
            user.id,
            &ralf_core::token::digest(&secret),
            &peer.ip().to_string(),
            agent,
        )
        .await?;
    let cookie =
        format!("{SESSION_COOKIE}={secret}; Path=/; HttpOnly; SameSite=Lax; Max-Age=604800");
    Ok((
        StatusCode::NO_CONTENT,
        AppendHeaders([(SET_COOKIE, cookie)]),
    ))
}

/// Ends the session of the `semaphore` cookie.
#[utoipa::path(post, path = "/api/auth/logout", tag = "authentication",
    responses((status = 204, description = "logged out; the cookie is cleared")))]
async fn logout(State(state): State<AppState>, headers: HeaderMap) -> ApiResult<impl IntoResponse> {
    if let Some(secret) = crate::auth::session_cookie(&headers) {
        state
            .store
            .expire_session(&ralf_core::token::digest(&secret))
            .await?;
    }
    let cookie = format!("{SESSION_COOKIE}=; Path=/; HttpOnly; Max-Age=0");
    Ok((
        StatusCode::NO_CONTENT,
        AppendHeaders([(SET_COOKIE, cookie)]),
    ))
}
