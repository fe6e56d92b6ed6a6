//! Projects and their members.

use const_format::concatcp;
use ralf_core::api::projects::{Project, ProjectUser};
use ralf_core::{ProjectId, Role};

use crate::driver::Tx as _;
use crate::{Result, Store, StoreError, audited, found, order_by, with_db};

const PROJECT_COLUMNS: &str = "id, name, created, alert, alert_chat, max_parallel_tasks, type";

/// A new project (`$1` to `$6`: name, created, alert, alert_chat, max_parallel_tasks, type).
pub(crate) const INSERT_PROJECT: &str = concatcp!(
    "INSERT INTO projects (name, created, alert, alert_chat, max_parallel_tasks, type)
     VALUES ($1, $2, $3, $4, $5, $6) RETURNING ",
    PROJECT_COLUMNS
);

const PROJECT: &str = concatcp!("SELECT ", PROJECT_COLUMNS, " FROM projects WHERE id = $1");

/// Every project (`$1` is ignored).
const EVERY_PROJECT: &str = concatcp!(
    "SELECT ",
    PROJECT_COLUMNS,
    " FROM projects WHERE $1 = $1 ORDER BY name, id"
);

/// The projects user `$1` is a member of.
const PROJECTS_OF_MEMBER: &str = concatcp!(
    "SELECT ",
    PROJECT_COLUMNS,
    " FROM projects
     WHERE id IN (SELECT project_id FROM project_users WHERE user_id = $1)
     ORDER BY name, id"
);

/// The editable fields of a project.
pub struct ProjectFields<'a> {
    pub name: &'a str,
    pub alert: bool,
    pub alert_chat: Option<&'a str>,
    pub max_parallel_tasks: i64,
    pub kind: &'a str,
}

/// A caller's standing in a project, as an access check reads it ([`Store::membership`]).
#[derive(Debug, Clone, Copy)]
pub struct Membership {
    /// The caller's role; `None` for a non-member.
    pub role: Option<Role>,
    /// The project's task list version at the time of the check.
    pub task_list_version: i64,
}

#[derive(sqlx::FromRow)]
struct MemberRow {
    id: i64,
    username: String,
    name: String,
    email: String,
    role: String,
}

impl MemberRow {
    fn into_member(self) -> Result<ProjectUser> {
        let role = Role::parse(&self.role).ok_or_else(|| {
            StoreError::Corrupt(format!("stored role {:?} is unknown", self.role))
        })?;
        Ok(ProjectUser {
            id: self.id,
            username: self.username,
            name: self.name,
            email: self.email,
            role,
        })
    }
}

impl Store {
    /// Creates a project with `owner` as its first member (role owner).
    pub async fn create_project(&self, fields: &ProjectFields<'_>, owner: i64) -> Result<Project> {
        with_db!(self, write, |pool| {
            let mut tx = pool.begin().await?;
            let project = tx.insert_project(fields, owner).await?;
            tx.commit().await?;
            Ok(project)
        })
    }

    pub async fn project(&self, id: ProjectId) -> Result<Project> {
        Ok(with_db!(self, read, |pool| sqlx::query_as::<_, Project>(
            PROJECT
        )
        .bind(id)
        .fetch_one(pool)
        .await)?)
    }

    /// The projects `user_id` is a member of, or every project for an admin.
    pub async fn projects_visible_to(&self, user_id: i64, admin: bool) -> Result<Vec<Project>> {
        let sql = if admin {
            EVERY_PROJECT
        } else {
            PROJECTS_OF_MEMBER
        };
        Ok(with_db!(self, read, |pool| sqlx::query_as::<_, Project>(
            sql
        )
        .bind(user_id)
        .fetch_all(pool)
        .await)?)
    }

    pub async fn update_project(&self, id: ProjectId, fields: &ProjectFields<'_>) -> Result<()> {
        let done = with_db!(self, write, |pool| {
            sqlx::query(
            "UPDATE projects SET name = $1, alert = $2, alert_chat = $3, max_parallel_tasks = $4, type = $5
             WHERE id = $6",
        )
        .bind(fields.name)
        .bind(fields.alert)
        .bind(fields.alert_chat)
        .bind(fields.max_parallel_tasks)
        .bind(fields.kind)
        .bind(id)
        .execute(pool)
        .await
        .map(|r| r.rows_affected())
        })?;
        found(done)
    }

    /// Deletes a project with everything in it (keys, templates, tasks and their output).
    pub async fn delete_project(&self, id: ProjectId) -> Result<()> {
        let done = with_db!(self, write, |pool| sqlx::query(
            "DELETE FROM projects WHERE id = $1"
        )
        .bind(id)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
        found(done)
    }

    // ----- members -----

    /// What an access check reads of a project, in one query: the caller's role and the
    /// project's task list version (the list routes check their kept pages against it, see
    /// [`Store::project_task_page_json`]). `None` when there is no such project.
    pub async fn membership(
        &self,
        project_id: ProjectId,
        user_id: i64,
    ) -> Result<Option<Membership>> {
        let row: Option<(Option<String>, i64)> = with_db!(self, read, |pool| sqlx::query_as(
            "SELECT pu.role, p.task_list_version FROM projects p
             LEFT JOIN project_users pu ON pu.project_id = p.id AND pu.user_id = $2
             WHERE p.id = $1",
        )
        .bind(project_id)
        .bind(user_id)
        .fetch_optional(pool)
        .await)?;
        Ok(row.map(|(role, task_list_version)| Membership {
            role: role.as_deref().and_then(Role::parse),
            task_list_version,
        }))
    }

    /// The role of `user_id` in the project, if a member.
    pub async fn member_role(&self, project_id: ProjectId, user_id: i64) -> Result<Option<Role>> {
        let role: Option<String> = with_db!(self, read, |pool| sqlx::query_scalar(
            "SELECT role FROM project_users WHERE project_id = $1 AND user_id = $2",
        )
        .bind(project_id)
        .bind(user_id)
        .fetch_optional(pool)
        .await)?;
        Ok(role.as_deref().and_then(Role::parse))
    }

    pub async fn project_users(
        &self,
        project_id: ProjectId,
        sort: Option<&str>,
        descending: bool,
    ) -> Result<Vec<ProjectUser>> {
        let order = order_by(
            &[
                ("name", "u.name"),
                ("username", "u.username"),
                ("email", "u.email"),
                ("role", "pu.role"),
            ],
            sort,
            descending,
        )?
        .replace(", id ", ", u.id ");
        let sql = format!(
            "SELECT u.id, u.username, u.name, u.email, pu.role FROM project_users pu
             JOIN users u ON u.id = pu.user_id WHERE pu.project_id = $1 {order}"
        );
        let rows = with_db!(self, read, |pool| sqlx::query_as::<_, MemberRow>(audited(
            &sql
        ))
        .bind(project_id)
        .fetch_all(pool)
        .await)?;
        rows.into_iter().map(MemberRow::into_member).collect()
    }

    pub async fn project_user(&self, project_id: ProjectId, user_id: i64) -> Result<ProjectUser> {
        let row = with_db!(self, read, |pool| sqlx::query_as::<_, MemberRow>(
            "SELECT u.id, u.username, u.name, u.email, pu.role FROM project_users pu
             JOIN users u ON u.id = pu.user_id WHERE pu.project_id = $1 AND pu.user_id = $2",
        )
        .bind(project_id)
        .bind(user_id)
        .fetch_one(pool)
        .await)?;
        row.into_member()
    }

    pub async fn add_project_user(
        &self,
        project_id: ProjectId,
        user_id: i64,
        role: Role,
    ) -> Result<()> {
        with_db!(self, write, |pool| sqlx::query(
            "INSERT INTO project_users (project_id, user_id, role) VALUES ($1, $2, $3)",
        )
        .bind(project_id)
        .bind(user_id)
        .bind(role.as_str())
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))
        .map_err(|e| {
            StoreError::from(e).conflict_as("the user is a member of the project already")
        })?;
        Ok(())
    }

    pub async fn set_project_user_role(
        &self,
        project_id: ProjectId,
        user_id: i64,
        role: Role,
    ) -> Result<()> {
        let done = with_db!(self, write, |pool| sqlx::query(
            "UPDATE project_users SET role = $1 WHERE project_id = $2 AND user_id = $3",
        )
        .bind(role.as_str())
        .bind(project_id)
        .bind(user_id)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
        found(done)
    }

    pub async fn remove_project_user(&self, project_id: ProjectId, user_id: i64) -> Result<()> {
        let done = with_db!(self, write, |pool| sqlx::query(
            "DELETE FROM project_users WHERE project_id = $1 AND user_id = $2",
        )
        .bind(project_id)
        .bind(user_id)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
        found(done)
    }

    /// How many owners the project has (a project must keep at least one).
    pub async fn owner_count(&self, project_id: ProjectId) -> Result<i64> {
        Ok(with_db!(self, read, |pool| sqlx::query_scalar::<_, i64>(
            "SELECT COUNT(*) FROM project_users WHERE project_id = $1 AND role = 'owner'",
        )
        .bind(project_id)
        .fetch_one(pool)
        .await)?)
    }
}
