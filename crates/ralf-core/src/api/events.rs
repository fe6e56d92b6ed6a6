//! The activity log on the wire.

use serde::{Deserialize, Serialize};

use crate::Timestamp;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[cfg_attr(feature = "sqlx", derive(sqlx::FromRow))]
pub struct Event {
    pub id: i64,
    pub project_id: Option<i64>,
    pub user_id: Option<i64>,
    pub object_id: Option<i64>,
    pub object_type: String,
    pub description: String,
    pub created: Timestamp,
    pub project_name: Option<String>,
    pub username: Option<String>,
}

/// An event about to be recorded.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct NewEvent {
    pub project_id: Option<i64>,
    pub user_id: Option<i64>,
    pub object_id: Option<i64>,
    pub object_type: &'static str,
    pub description: String,
}
