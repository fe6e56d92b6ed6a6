//! Projects and their members on the wire.

use serde::{Deserialize, Serialize};

use crate::{Role, Timestamp};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[cfg_attr(feature = "sqlx", derive(sqlx::FromRow))]
pub struct Project {
    pub id: i64,
    pub name: String,
    pub created: Timestamp,
    pub alert: bool,
    pub alert_chat: Option<String>,
    pub max_parallel_tasks: i64,
    #[serde(rename = "type")]
    #[cfg_attr(feature = "sqlx", sqlx(rename = "type"))]
    pub kind: String,
}

/// `POST /api/projects`, `PUT /api/project/{id}`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ProjectRequest {
    pub id: Option<i64>,
    pub name: String,
    #[serde(default)]
    pub alert: bool,
    pub alert_chat: Option<String>,
    #[serde(default)]
    pub max_parallel_tasks: i64,
    #[serde(default, rename = "type")]
    pub kind: String,
    /// Accepted for compatibility; ralf creates no demo resources.
    #[serde(default)]
    pub demo: bool,
}

/// A member of a project, as listed by `GET /api/project/{id}/users`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ProjectUser {
    pub id: i64,
    pub username: String,
    pub name: String,
    pub email: String,
    pub role: Role,
}

/// `POST /api/project/{id}/users`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ProjectUserRequest {
    pub user_id: i64,
    pub role: Role,
}

/// `PUT /api/project/{id}/users/{user_id}`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ProjectUserRoleRequest {
    pub role: Role,
}

/// `GET /api/project/{id}/role`: the caller's role and its permission bits.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ProjectRole {
    pub role: Role,
    pub permissions: u32,
}
