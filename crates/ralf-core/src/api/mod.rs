//! The JSON shapes of the Semaphore-compatible API, one module a resource: `Foo` is what the
//! server answers, `FooRequest` what it accepts. Field names follow Semaphore 2.16's spec; absent
//! ids are `null`, never `0`.

pub mod backup;
pub mod environments;
pub mod events;
pub mod host_configs;
pub mod integrations;
pub mod inventories;
pub mod keys;
pub mod live;
pub mod projects;
pub mod refs;
pub mod repositories;
pub mod runners;
pub mod schedules;
pub mod tasks;
pub mod templates;
pub mod users;
pub mod views;

use serde::{Deserialize, Serialize};

/// A stored or sent string that names no variant of one of the API's kinds (an inventory type,
/// a key type, a secret type).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} {value:?}")]
pub struct UnknownKind {
    pub what: &'static str,
    pub value: String,
}

/// The body of every error answer: `{"error": "..."}`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: String,
}

/// `GET /api/info`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Info {
    pub version: String,
    pub ansible: String,
    pub web_host: String,
    pub use_remote_runner: bool,
    pub git_client: String,
    pub schedule_timezone: String,
    pub auth_methods: serde_json::Value,
    pub features: serde_json::Value,
}

/// One entry of `GET /api/apps`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct App {
    pub id: String,
    pub title: String,
    pub active: bool,
    pub priority: i64,
    pub icon: String,
    pub color: String,
    pub dark_color: String,
    pub path: String,
    pub args: Vec<String>,
}

/// Sort direction of list calls (`?order=asc|desc`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Order {
    #[default]
    Asc,
    Desc,
}

/// `?sort=<field>&order=asc|desc`, accepted by every list call.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Field to sort by; each list names the fields it accepts.
    pub sort: Option<String>,
    /// `asc` (default) or `desc`.
    #[param(value_type = Option<String>)]
    pub order: Option<Order>,
}
