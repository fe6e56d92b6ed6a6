//! Logging in and out with a password; the session lives in the `semaphore` cookie.

use axum::Json;
use axum::extract::State;
use axum::http::header::{SET_COOKIE, USER_AGENT};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{AppendHeaders, IntoResponse};
use ralf_core::api::users::{Login, LoginMetadata};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::SESSION_COOKIE;
use crate::client::Client;
use crate::error::{ApiError, ApiResult};
use crate::extract::JsonBody;
use crate::login_throttle::{Account, MAX_LOGIN_BYTES};
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
              (status = 400, description = "the login name is longer than 256 bytes"),
              (status = 401, description = "wrong login or password"),
              (status = 429, description = "too many failed attempts; wait and try again")))]
async fn login(
    State(state): State<AppState>,
    client: Client,
    headers: HeaderMap,
    JsonBody(body): JsonBody<Login>,
) -> ApiResult<impl IntoResponse> {
    let login = body.auth.trim();
    // Checked before anything stores or logs the name, so a huge one costs nothing.
    if login.len() > MAX_LOGIN_BYTES {
        return Err(ApiError::bad_request(format!(
            "auth must be at most {MAX_LOGIN_BYTES} bytes"
        )));
    }
    let found = state.store.user_for_login(login).await?;
    let account = match &found {
        Some((user, _)) => Account::User(user.id),
        None => Account::unknown(login),
    };
    if let Err(wait) = state.login_throttle.check(&account, client.ip) {
        return Err(ApiError::TooManyRequests(format!(
            "too many failed logins; try again in {} seconds",
            wait.as_secs().max(1)
        )));
    }
    let password = body.password;
    // Unknown logins are checked against a dummy hash: they take as long as wrong passwords.
    let user = state
        .password_checks
        .run(move || {
            let stored = found
                .as_ref()
                .filter(|(user, _)| !user.external)
                .map(|(_, hash)| hash.as_str());
            let right = ralf_core::password::verify_login(&password, stored);
            found.filter(|_| right)
        })
        .await
        .map_err(ApiError::Internal)?;
    let Some((user, _)) = user else {
        state.login_throttle.failed(account, client.ip);
        // Debug formatting escapes newlines and control characters: the name cannot forge lines.
        tracing::info!(login = ?login, ip = %client.ip, "failed login");
        return Err(ApiError::Unauthorized);
    };
    state.login_throttle.succeeded(account, client.ip);

    let secret = ralf_core::token::generate();
    let agent = headers
        .get(USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let agent = truncated(agent, MAX_LOGIN_BYTES);
    state
        .store
        .create_session(
            user.id,
            &ralf_core::token::digest(&secret),
            &client.ip.to_string(),
            agent,
        )
        .await?;
    let lifetime = state.settings.session_lifetime.as_secs();
    let secure = if client.https { "; Secure" } else { "" };
    let cookie = format!(
        "{SESSION_COOKIE}={secret}; Path=/; HttpOnly; SameSite=Lax; Max-Age={lifetime}{secure}"
    );
    Ok((
        StatusCode::NO_CONTENT,
        AppendHeaders([(SET_COOKIE, cookie)]),
    ))
}

/// At most `max` bytes of `text`, cut at a character boundary.
fn truncated(text: &str, max: usize) -> &str {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
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
    let cookie = format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0");
    Ok((
        StatusCode::NO_CONTENT,
        AppendHeaders([(SET_COOKIE, cookie)]),
    ))
}
