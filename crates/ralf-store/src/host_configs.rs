//! Host configs: a project's mapping of hosts and git URL prefixes to ssh keys.

use const_format::concatcp;
use ralf_core::ProjectId;
use ralf_core::api::host_configs::{HostConfig, HostConfigFields};

use crate::in_project::InProject;
use crate::{Result, Store, found, with_db};

const COLUMNS: &str = "id, project_id, type, host, ssh_key_id";

const HOST_CONFIGS: InProject = InProject {
    list: concatcp!(
        "SELECT ",
        COLUMNS,
        " FROM host_configs WHERE project_id = $1"
    ),
    get: concatcp!(
        "SELECT ",
        COLUMNS,
        " FROM host_configs WHERE project_id = $1 AND id = $2"
    ),
    delete: "DELETE FROM host_configs WHERE project_id = $1 AND id = $2",
};

const INSERT_HOST_CONFIG: &str = concatcp!(
    "INSERT INTO host_configs (project_id, type, host, ssh_key_id) VALUES ($1, $2, $3, $4)
     RETURNING ",
    COLUMNS
);

impl Store {
    pub async fn host_configs(&self, project_id: ProjectId) -> Result<Vec<HostConfig>> {
        self.list_in_project(&HOST_CONFIGS, project_id, "ORDER BY id")
            .await
    }

    pub async fn host_config(&self, project_id: ProjectId, id: i64) -> Result<HostConfig> {
        self.get_in_project(&HOST_CONFIGS, project_id, id).await
    }

    pub async fn create_host_config(
        &self,
        project_id: ProjectId,
        fields: &HostConfigFields,
    ) -> Result<HostConfig> {
        Ok(with_db!(self, write, |pool| {
            sqlx::query_as::<_, HostConfig>(INSERT_HOST_CONFIG)
                .bind(project_id)
                .bind(&fields.kind)
                .bind(&fields.host)
                .bind(fields.ssh_key_id)
                .fetch_one(pool)
                .await
        })?)
    }

    pub async fn update_host_config(
        &self,
        project_id: ProjectId,
        id: i64,
        fields: &HostConfigFields,
    ) -> Result<()> {
        let done = with_db!(self, write, |pool| sqlx::query(
            "UPDATE host_configs SET type = $1, host = $2, ssh_key_id = $3
                     WHERE project_id = $4 AND id = $5",
        )
        .bind(&fields.kind)
        .bind(&fields.host)
        .bind(fields.ssh_key_id)
        .bind(project_id)
        .bind(id)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
        found(done)
    }

    pub async fn delete_host_config(&self, project_id: ProjectId, id: i64) -> Result<()> {
        self.delete_in_project(&HOST_CONFIGS, project_id, id).await
    }
}
