//! User administration: admins list, create, change and delete users; everyone may read
//! themselves and change their own password.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use ralf_core::api::ListQuery;
use ralf_core::api::Order;
use ralf_core::api::events::NewEvent;
use ralf_core::api::users::{PasswordRequest, User, UserPutRequest, UserRequest};
use ralf_core::validate;
use ralf_store::users::{NewUser, UserUpdate};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{Admin, CurrentUser};
use crate::error::{ApiError, ApiResult, OrNotFound};
use crate::extract::{Ids, JsonBody, Params, same_id};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(get, update, delete))
        .routes(routes!(set_password))
}

/// Every user (admins only).
#[utoipa::path(get, path = "/api/users", tag = "user", params(ListQuery),
    responses((status = 200, body = [User]), (status = 403)))]
async fn list(
    _admin: Admin,
    State(state): State<AppState>,
    Params(q): Params<ListQuery>,
) -> ApiResult<Json<Vec<User>>> {
    let users = state
        .store
        .users(q.sort.as_deref(), q.order == Some(Order::Desc))
        .await?;
    Ok(Json(users))
}

/// Creates a user (admins only).
#[utoipa::path(post, path = "/api/users", tag = "user", request_body = UserRequest,
    responses((status = 201, body = User), (status = 400), (status = 403), (status = 409)))]
async fn create(
    Admin(admin): Admin,
    State(state): State<AppState>,
    JsonBody(body): JsonBody<UserRequest>,
) -> ApiResult<(StatusCode, Json<User>)> {
    let fields = checked_fields(&body.username, &body.name, &body.email)?;
    // Without a password (external users, or one to be set later) nobody can log in as the
    // user with a password: an empty hash matches no password.
    let password_hash = match (&body.password, body.external) {
        (Some(p), false) if !p.is_empty() => hash_password(p).await?,
        _ => String::new(),
    };
    let user = state
        .store
        .create_user(&NewUser {
            username: &fields.0,
            name: &fields.1,
            email: &fields.2,
            password_hash: &password_hash,
            admin: body.admin,
            external: body.external,
            alert: body.alert,
        })
        .await?;
    state
        .event(NewEvent {
            user_id: Some(admin.id),
            object_id: Some(user.id),
            object_type: "user",
            description: format!("User {} created", user.username),
            ..Default::default()
        })
        .await;
    Ok((StatusCode::CREATED, Json(user)))
}

/// One user: admins may read anyone, others only themselves.
#[utoipa::path(get, path = "/api/users/{user_id}", tag = "user", params(("user_id" = i64, Path)),
    responses((status = 200, body = User), (status = 403), (status = 404)))]
async fn get(
    CurrentUser(me): CurrentUser,
    State(state): State<AppState>,
    Ids(id): Ids<i64>,
) -> ApiResult<Json<User>> {
    allowed_for(&me, id)?;
    Ok(Json(state.store.user(id).await.or_not_found("user")?))
}

/// Changes a user. Admins may change anyone and grant admin; others only their own name,
/// username and e-mail.
#[utoipa::path(put, path = "/api/users/{user_id}", tag = "user", params(("user_id" = i64, Path)),
    request_body = UserPutRequest, responses((status = 204), (status = 400), (status = 403), (status = 404)))]
async fn update(
    CurrentUser(me): CurrentUser,
    State(state): State<AppState>,
    Ids(id): Ids<i64>,
    JsonBody(body): JsonBody<UserPutRequest>,
) -> ApiResult<StatusCode> {
    allowed_for(&me, id)?;
    same_id(body.id, id, "User")?;
    let current = state.store.user(id).await.or_not_found("user")?;
    if !me.admin && body.admin != current.admin {
        return Err(ApiError::Forbidden(
            "only administrators may grant or revoke admin".into(),
        ));
    }
    if me.id == id && current.admin && !body.admin {
        return Err(ApiError::bad_request(
            "you cannot revoke your own admin flag",
        ));
    }
    let (username, name, email) = checked_fields(&body.username, &body.name, &body.email)?;
    let update = UserUpdate {
        username: &username,
        name: &name,
        email: &email,
        admin: body.admin,
        alert: body.alert,
    };
    state
        .store
        .update_user(id, &update)
        .await
        .or_not_found("user")?;
    Ok(StatusCode::NO_CONTENT)
}

/// Deletes a user (admins only; not yourself).
#[utoipa::path(delete, path = "/api/users/{user_id}", tag = "user", params(("user_id" = i64, Path)),
    responses((status = 204), (status = 400), (status = 403), (status = 404)))]
async fn delete(
    Admin(admin): Admin,
    State(state): State<AppState>,
    Ids(id): Ids<i64>,
) -> ApiResult<StatusCode> {
    if admin.id == id {
        return Err(ApiError::bad_request("you cannot delete yourself"));
    }
    let user = state.store.user(id).await.or_not_found("user")?;
    state.store.delete_user(id).await.or_not_found("user")?;
    state
        .event(NewEvent {
            user_id: Some(admin.id),
            object_id: Some(id),
            object_type: "user",
            description: format!("User {} deleted", user.username),
            ..Default::default()
        })
        .await;
    Ok(StatusCode::NO_CONTENT)
}

/// Sets a user's password: admins for anyone, others for themselves. The user's other login
/// sessions end (the caller's own stays); API tokens stay.
#[utoipa::path(post, path = "/api/users/{user_id}/password", tag = "user", params(("user_id" = i64, Path)),
    request_body = PasswordRequest, responses((status = 204), (status = 400), (status = 403), (status = 404)))]
async fn set_password(
    CurrentUser(me): CurrentUser,
    State(state): State<AppState>,
    Ids(id): Ids<i64>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<PasswordRequest>,
) -> ApiResult<StatusCode> {
    allowed_for(&me, id)?;
    let user = state.store.user(id).await.or_not_found("user")?;
    if user.external {
        return Err(ApiError::bad_request(
            "external users have no password here",
        ));
    }
    if body.password.is_empty() {
        return Err(ApiError::bad_request("password must not be empty"));
    }
    let generated = generated_password_of(&state, &me, &user).await;
    let hash = hash_password(&body.password).await?;
    state
        .store
        .set_password(id, &hash)
        .await
        .or_not_found("user")?;
    let own_session = (me.id == id)
        .then(|| crate::auth::session_cookie(&headers))
        .flatten()
        .map(|secret| ralf_core::token::digest(&secret));
    let ended = state
        .store
        .expire_sessions_of(id, own_session.as_deref())
        .await?;
    tracing::info!(
        user.id = id,
        sessions = ended,
        "password changed; other sessions ended"
    );
    if let Some(file) = generated {
        match std::fs::remove_file(&file) {
            Ok(()) => tracing::info!(
                file = %file.display(),
                "the first admin changed the generated password: removed the file that held it"
            ),
            Err(e) => tracing::warn!(
                file = %file.display(), error = %e,
                "the first admin changed the generated password, but its file could not be removed"
            ),
        }
    }
    Ok(StatusCode::NO_CONTENT)
}

/// The file with the password ralf generated for the first admin, when `user` is that admin
/// changing their own password (their current password is the one in the file).
async fn generated_password_of(
    state: &AppState,
    me: &User,
    user: &User,
) -> Option<std::path::PathBuf> {
    let file = state.settings.initial_admin_password_file.clone()?;
    if me.id != user.id {
        return None;
    }
    let generated = std::fs::read_to_string(&file).ok()?;
    let (_, stored) = state
        .store
        .user_for_login(&user.username)
        .await
        .ok()
        .flatten()?;
    let generated = generated.trim().to_string();
    let is_theirs =
        tokio::task::spawn_blocking(move || ralf_core::password::verify(&generated, &stored))
            .await
            .unwrap_or(false);
    is_theirs.then_some(file)
}

fn allowed_for(me: &User, id: i64) -> ApiResult<()> {
    if me.admin || me.id == id {
        Ok(())
    } else {
        Err(ApiError::forbidden())
    }
}

fn checked_fields(username: &str, name: &str, email: &str) -> ApiResult<(String, String, String)> {
    let username = validate::name("username", username)?;
    let name = validate::name("name", name)?;
    let email = validate::name("email", email)?;
    if !email.contains('@') {
        return Err(ApiError::bad_request("email must be an e-mail address"));
    }
    Ok((username, name, email))
}

/// Hashes off the async threads: argon2 is slow on purpose.
pub async fn hash_password(password: &str) -> ApiResult<String> {
    validate::short_text("password", password)?;
    let password = password.to_string();
    tokio::task::spawn_blocking(move || ralf_core::password::hash(&password))
        .await
        .map_err(|e| ApiError::Internal(e.into()))
}
