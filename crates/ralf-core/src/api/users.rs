//! Users, sessions and API tokens on the wire.

use serde::{Deserialize, Serialize};

use crate::Timestamp;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[cfg_attr(feature = "sqlx", derive(sqlx::FromRow))]
pub struct User {
    pub id: i64,
    pub username: String,
    pub name: String,
    pub email: String,
    pub created: Timestamp,
    pub admin: bool,
    pub external: bool,
    pub alert: bool,
}

/// `GET /api/user`: the caller, and what Semaphore's web frontend needs to know about them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CurrentUserInfo {
    #[serde(flatten)]
    pub user: User,
    /// Admins may create projects; everyone may when the server allows it.
    pub can_create_project: bool,
}

/// One option of the caller (`/api/user/options`): a key and a text value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct UserOption {
    #[serde(default)]
    pub key: String,
    #[serde(default)]
    pub value: String,
}

/// `POST /api/users`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct UserRequest {
    pub username: String,
    pub name: String,
    pub email: String,
    pub password: Option<String>,
    #[serde(default)]
    pub alert: bool,
    #[serde(default)]
    pub admin: bool,
    #[serde(default)]
    pub external: bool,
}

/// `PUT /api/users/{id}`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct UserPutRequest {
    pub id: Option<i64>,
    pub username: String,
    pub name: String,
    pub email: String,
    #[serde(default)]
    pub alert: bool,
    #[serde(default)]
    pub admin: bool,
}

/// `POST /api/users/{id}/password`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PasswordRequest {
    pub password: String,
}

/// `POST /api/auth/login`: `auth` is a username or an e-mail address.
#[derive(Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Login {
    pub auth: String,
    pub password: String,
}

impl std::fmt::Debug for Login {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Login")
            .field("auth", &self.auth)
            .finish_non_exhaustive()
    }
}

/// `GET /api/auth/login`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LoginMetadata {
    pub oidc_providers: Vec<serde_json::Value>,
    pub login_with_password: bool,
}

/// An API token; `id` is the token itself (Semaphore shows it, so clients can copy it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[cfg_attr(feature = "sqlx", derive(sqlx::FromRow))]
pub struct ApiToken {
    pub id: String,
    pub created: Timestamp,
    pub expired: bool,
    pub user_id: i64,
    pub name: String,
}

/// `POST /api/user/tokens` (the body is optional).
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ApiTokenRequest {
    #[serde(default)]
    pub name: String,
}
