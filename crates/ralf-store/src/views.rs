//! Views: a project's template tabs, in the order of their `position`.

use const_format::concatcp;
use ralf_core::ProjectId;
use ralf_core::api::views::{View, ViewFields, ViewPosition};

use crate::in_project::InProject;
use crate::{Result, Store, StoreError, found, with_db};

const VIEW_COLUMNS: &str =
    "id, project_id, title, position, hidden, type, sort_column, sort_reverse";

const VIEWS: InProject = InProject {
    list: concatcp!("SELECT ", VIEW_COLUMNS, " FROM views WHERE project_id = $1"),
    get: concatcp!(
        "SELECT ",
        VIEW_COLUMNS,
        " FROM views WHERE project_id = $1 AND id = $2"
    ),
    delete: "DELETE FROM views WHERE project_id = $1 AND id = $2",
};

/// A new view of project `$1`; without a position (`$3`) it goes after the last one.
const INSERT_VIEW: &str = concatcp!(
    "INSERT INTO views (project_id, title, position, hidden, type, sort_column, sort_reverse)
     VALUES ($1, $2,
             COALESCE($3, (SELECT COALESCE(MAX(position), 0) + 1 FROM views WHERE project_id = $1)),
             $4, $5, $6, $7)
     RETURNING ",
    VIEW_COLUMNS
);

impl Store {
    /// The project's views, by position.
    pub async fn views(&self, project_id: ProjectId) -> Result<Vec<View>> {
        self.list_in_project(&VIEWS, project_id, "ORDER BY position, id")
            .await
    }

    pub async fn view(&self, project_id: ProjectId, id: i64) -> Result<View> {
        self.get_in_project(&VIEWS, project_id, id).await
    }

    /// Creates a view; without a position it goes after the last one.
    pub async fn create_view(&self, project_id: ProjectId, fields: &ViewFields) -> Result<View> {
        Ok(with_db!(self, write, |pool| sqlx::query_as::<_, View>(
            INSERT_VIEW
        )
        .bind(project_id)
        .bind(&fields.title)
        .bind(fields.position)
        .bind(fields.hidden)
        .bind(&fields.kind)
        .bind(fields.sort_column.as_deref())
        .bind(fields.sort_reverse)
        .fetch_one(pool)
        .await)?)
    }

    /// Changes a view; without a position it stays where it is.
    pub async fn update_view(
        &self,
        project_id: ProjectId,
        id: i64,
        fields: &ViewFields,
    ) -> Result<()> {
        let done = with_db!(self, write, |pool| sqlx::query(
            "UPDATE views SET title = $1, position = COALESCE($2, position), hidden = $3,
                            type = $4, sort_column = $5, sort_reverse = $6
                     WHERE project_id = $7 AND id = $8",
        )
        .bind(&fields.title)
        .bind(fields.position)
        .bind(fields.hidden)
        .bind(&fields.kind)
        .bind(fields.sort_column.as_deref())
        .bind(fields.sort_reverse)
        .bind(project_id)
        .bind(id)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
        found(done)
    }

    /// Deletes a view; its templates stay, in no view.
    pub async fn delete_view(&self, project_id: ProjectId, id: i64) -> Result<()> {
        self.delete_in_project(&VIEWS, project_id, id).await
    }

    /// Moves several views at once, all or none: a view id that is not the project's refuses
    /// the whole change.
    pub async fn set_view_positions(
        &self,
        project_id: ProjectId,
        positions: &[ViewPosition],
    ) -> Result<()> {
        with_db!(self, write, |pool| {
            let mut tx = pool.begin().await?;
            for p in positions {
                let done =
                    sqlx::query("UPDATE views SET position = $1 WHERE project_id = $2 AND id = $3")
                        .bind(p.position)
                        .bind(project_id)
                        .bind(p.id)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                if done == 0 {
                    return Err(StoreError::Invalid(format!(
                        "view {}: no such view in this project",
                        p.id
                    )));
                }
            }
            tx.commit().await?;
            Ok(())
        })
    }
}
