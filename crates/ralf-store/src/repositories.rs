//! A project's repositories.

use const_format::concatcp;
use ralf_core::ProjectId;
use ralf_core::api::refs::ObjectRefs;
use ralf_core::api::repositories::Repository;

use crate::in_project::InProject;
use crate::refs::RefQueries;
use crate::{Result, Store, found, order_by, with_db};

const REPOSITORY_COLUMNS: &str = "id, name, project_id, git_url, git_branch, ssh_key_id";

const REPOSITORIES: InProject = InProject {
    list: concatcp!(
        "SELECT ",
        REPOSITORY_COLUMNS,
        " FROM repositories WHERE project_id = $1"
    ),
    get: concatcp!(
        "SELECT ",
        REPOSITORY_COLUMNS,
        " FROM repositories WHERE project_id = $1 AND id = $2"
    ),
    delete: "DELETE FROM repositories WHERE project_id = $1 AND id = $2",
};

const INSERT_REPOSITORY: &str = concatcp!(
    "INSERT INTO repositories (project_id, name, git_url, git_branch, ssh_key_id)
     VALUES ($1, $2, $3, $4, $5) RETURNING ",
    REPOSITORY_COLUMNS
);

/// The editable fields of a repository.
pub struct RepositoryFields<'a> {
    pub name: &'a str,
    pub git_url: &'a str,
    pub git_branch: &'a str,
    pub ssh_key_id: Option<i64>,
}

impl Store {
    /// The project's repositories, sorted by `name` (default), `git_url` or `ssh_key` (its name).
    pub async fn repositories(
        &self,
        project_id: ProjectId,
        sort: Option<&str>,
        descending: bool,
    ) -> Result<Vec<Repository>> {
        let order = order_by(
            &[
                ("name", "LOWER(name)"),
                ("git_url", "git_url"),
                (
                    "ssh_key",
                    "COALESCE((SELECT LOWER(k.name) FROM access_keys k WHERE k.id = repositories.ssh_key_id), '')",
                ),
            ],
            sort,
            descending,
        )?;
        self.list_in_project(&REPOSITORIES, project_id, &order)
            .await
    }

    pub async fn repository(&self, project_id: ProjectId, id: i64) -> Result<Repository> {
        self.get_in_project(&REPOSITORIES, project_id, id).await
    }

    pub async fn create_repository(
        &self,
        project_id: ProjectId,
        fields: &RepositoryFields<'_>,
    ) -> Result<Repository> {
        Ok(with_db!(self, write, |pool| {
            sqlx::query_as::<_, Repository>(INSERT_REPOSITORY)
                .bind(project_id)
                .bind(fields.name)
                .bind(fields.git_url)
                .bind(fields.git_branch)
                .bind(fields.ssh_key_id)
                .fetch_one(pool)
                .await
        })?)
    }

    pub async fn update_repository(
        &self,
        project_id: ProjectId,
        id: i64,
        fields: &RepositoryFields<'_>,
    ) -> Result<()> {
        let done = with_db!(self, write, |pool| sqlx::query(
            "UPDATE repositories SET name = $1, git_url = $2, git_branch = $3, ssh_key_id = $4
                     WHERE id = $5 AND project_id = $6",
        )
        .bind(fields.name)
        .bind(fields.git_url)
        .bind(fields.git_branch)
        .bind(fields.ssh_key_id)
        .bind(id)
        .bind(project_id)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
        found(done)
    }

    /// Deletes a repository; `InUse` while a template or an inventory refers to it.
    pub async fn delete_repository(&self, project_id: ProjectId, id: i64) -> Result<()> {
        self.delete_in_project(&REPOSITORIES, project_id, id).await
    }

    /// The templates and inventories using a repository.
    pub async fn repository_refs(&self, project_id: ProjectId, id: i64) -> Result<ObjectRefs> {
        let queries = RefQueries {
            templates: Some(
                "SELECT id, name FROM templates WHERE project_id = $1 AND repository_id = $2
                 ORDER BY name, id",
            ),
            inventories: Some(
                "SELECT id, name FROM inventories WHERE project_id = $1 AND repository_id = $2
                 ORDER BY name, id",
            ),
            ..Default::default()
        };
        self.object_refs(queries, project_id, id).await
    }
}
