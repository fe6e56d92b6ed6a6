//! Host configs on the wire: which ssh key of the project reaches a host (`host`) or the git
//! URLs under a prefix (`url`). Stored, listed and kept in backups.

use serde::{Deserialize, Serialize};

use crate::validate::{self, Checked, invalid};

/// The kinds of host config.
pub const HOST_CONFIG_TYPES: [&str; 2] = ["host", "url"];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[cfg_attr(feature = "sqlx", derive(sqlx::FromRow))]
pub struct HostConfig {
    pub id: i64,
    pub project_id: i64,
    /// `host` (an ssh host name) or `url` (a git URL or its prefix).
    #[serde(rename = "type")]
    #[cfg_attr(feature = "sqlx", sqlx(rename = "type"))]
    pub kind: String,
    pub host: String,
    /// The ssh key used to reach the host; `null` once the key is deleted.
    pub ssh_key_id: Option<i64>,
}

/// `POST /api/project/{id}/host_configs`, `PUT …/host_configs/{host_config_id}`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub struct HostConfigRequest {
    pub id: Option<i64>,
    pub project_id: Option<i64>,
    /// `host` (default) or `url`.
    #[serde(default, rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub host: String,
    pub ssh_key_id: Option<i64>,
}

/// A host config's fields, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostConfigFields {
    pub kind: String,
    pub host: String,
    pub ssh_key_id: Option<i64>,
}

impl HostConfigRequest {
    pub fn fields(&self) -> Checked<HostConfigFields> {
        let kind = match self.kind.trim() {
            "" => "host",
            other => other,
        };
        if !HOST_CONFIG_TYPES.contains(&kind) {
            return invalid(format!("type must be host or url, not {kind:?}"));
        }
        let host = self.host.trim().to_string();
        validate::long_text("host", &host)?;
        Ok(HostConfigFields {
            kind: kind.to_string(),
            host,
            ssh_key_id: self.ssh_key_id.filter(|&id| id != 0),
        })
    }
}
