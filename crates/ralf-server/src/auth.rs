//! Who is calling: a session cookie (`semaphore`, from `POST /api/auth/login`) or a bearer
//! token (`POST /api/user/tokens`). Handlers ask for [`CurrentUser`] or [`Admin`] and get one
//! only when the caller is authenticated (and an admin). Remote runners authenticate with their
//! own token in `X-Runner-Token` instead; handlers of the runner protocol ask for [`RunnerAuth`].

use axum::extract::FromRequestParts;
use axum::http::HeaderMap;
use axum::http::header::{AUTHORIZATION, COOKIE};
use axum::http::request::Parts;
use ralf_core::api::runners::Runner;
use ralf_core::api::users::User;
use ralf_core::{ProjectId, Timestamp};
use ralf_store::projects::Membership;

use crate::error::ApiError;
use crate::state::AppState;

/// The name of the session cookie, as Semaphore calls it.
pub const SESSION_COOKIE: &str = "semaphore";

/// The header a remote runner sends its token in, as Semaphore's runners do.
pub const RUNNER_TOKEN_HEADER: &str = "x-runner-token";

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct CurrentUser(pub User);

/// An authenticated caller with the global admin flag.
#[derive(Debug, Clone)]
pub struct Admin(pub User);

impl FromRequestParts<AppState> for CurrentUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if let Some(user) = parts.extensions.get::<CurrentUser>() {
            return Ok(user.clone());
        }
        let user = authenticate(parts, state)
            .await?
            .ok_or(ApiError::Unauthorized)?;
        let user = CurrentUser(user);
        parts.extensions.insert(user.clone());
        Ok(user)
    }
}

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let CurrentUser(user) = CurrentUser::from_request_parts(parts, state).await?;
        if user.admin {
            Ok(Admin(user))
        } else {
            Err(ApiError::Forbidden(
                "only administrators may do that".into(),
            ))
        }
    }
}

/// The caller (as [`CurrentUser`] finds them) and their standing in project `project_id`
/// (`None`: no such project). A bearer token, which is how scripts and API clients call, is
/// checked in the same query as the standing.
pub(crate) async fn user_in_project(
    parts: &mut Parts,
    state: &AppState,
    project_id: ProjectId,
) -> Result<(User, Option<Membership>), ApiError> {
    if parts.extensions.get::<CurrentUser>().is_none()
        && let Some(token) = bearer_token(&parts.headers)
    {
        let digest = ralf_core::token::digest(&token);
        let (user, membership) = state
            .store
            .api_token_user_in_project(&digest, project_id)
            .await?
            .ok_or(ApiError::Unauthorized)?;
        parts.extensions.insert(CurrentUser(user.clone()));
        return Ok((user, membership));
    }
    let CurrentUser(user) = CurrentUser::from_request_parts(parts, state).await?;
    let membership = state.store.membership(project_id, user.id).await?;
    Ok((user, membership))
}

async fn authenticate(parts: &Parts, state: &AppState) -> Result<Option<User>, ApiError> {
    if let Some(token) = bearer_token(&parts.headers) {
        let digest = ralf_core::token::digest(&token);
        return Ok(state.store.api_token_user(&digest).await?);
    }
    if let Some(secret) = session_cookie(&parts.headers) {
        let digest = ralf_core::token::digest(&secret);
        return Ok(state
            .store
            .session_user(&digest, state.settings.session_lifetime)
            .await?);
    }
    Ok(None)
}

/// The token of an `Authorization: Bearer <token>` header; the scheme is case-insensitive and
/// the token is compared lower-cased, as Semaphore does.
pub(crate) fn bearer_token(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_lowercase())
        .filter(|t| !t.is_empty())
}

/// The value of the `semaphore` cookie.
pub fn session_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.to_string())
        .filter(|v| !v.is_empty())
}

/// How stale a runner's `touched` may get before a request of it writes it again.
const TOUCH_EVERY_SECS: i64 = 2;

/// A remote runner that sent the token of an active runner in `X-Runner-Token`. An unknown or
/// missing token is a 401, the token of an inactive runner a 403. An accepted request notes
/// the time in the runner's `touched` (at most every [`TOUCH_EVERY_SECS`]), and the runner
/// handed over says so.
#[derive(Debug, Clone)]
pub struct RunnerAuth(pub Runner);

impl FromRequestParts<AppState> for RunnerAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let mut runner = token_runner(&parts.headers, state).await?;
        if !runner.active {
            return Err(ApiError::Forbidden("the runner is not active".into()));
        }
        // Every output batch of a runner's task comes through here: the row is written at most
        // once every few seconds, which is all the lease (30 s) needs.
        let now = Timestamp::now();
        let stale = runner
            .touched
            .is_none_or(|t| (now.0 - t.0) >= chrono::Duration::seconds(TOUCH_EVERY_SECS));
        if stale {
            state.store.touch_runner(runner.id, now).await?;
            runner.touched = Some(now);
        }
        Ok(RunnerAuth(runner))
    }
}

/// The runner whose token is in `X-Runner-Token`, active or not; 401 when there is none.
pub async fn token_runner(headers: &HeaderMap, state: &AppState) -> Result<Runner, ApiError> {
    let token = headers
        .get(RUNNER_TOKEN_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or(ApiError::Unauthorized)?;
    state
        .store
        .runner_by_token(token)
        .await?
        .ok_or(ApiError::Unauthorized)
}
