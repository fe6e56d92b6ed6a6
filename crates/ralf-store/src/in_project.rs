//! Objects that belong to one project: the get, list and delete every such resource shares,
//! each confined to the project, so the id of another project's object is simply not found.

use ralf_core::ProjectId;
use sqlx::FromRow;
use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;

use crate::{Result, Store, audited, found, with_db};

/// The statements of one kind of project object; `$1` is the project, `$2` the object.
pub(crate) struct InProject {
    /// Every object of the project, without an `ORDER BY` (the caller adds its own).
    pub list: &'static str,
    /// One object of the project.
    pub get: &'static str,
    /// Deletes one object of the project.
    pub delete: &'static str,
}

/// A row type either driver can read.
pub(crate) trait Readable:
    for<'r> FromRow<'r, SqliteRow> + for<'r> FromRow<'r, PgRow> + Send + Unpin
{
}

impl<T> Readable for T where
    T: for<'r> FromRow<'r, SqliteRow> + for<'r> FromRow<'r, PgRow> + Send + Unpin
{
}

impl Store {
    /// One object of the project; [`StoreError::NotFound`](crate::StoreError::NotFound) when
    /// the project has no such object.
    pub(crate) async fn get_in_project<T: Readable>(
        &self,
        of: &InProject,
        project_id: ProjectId,
        id: i64,
    ) -> Result<T> {
        Ok(with_db!(self, read, |pool| {
            sqlx::query_as(of.get)
                .bind(project_id)
                .bind(id)
                .fetch_one(pool)
                .await
        })?)
    }

    /// Every object of the project, in `order` (an `ORDER BY` clause from
    /// [`order_by`](crate::order_by) or a constant).
    pub(crate) async fn list_in_project<T: Readable>(
        &self,
        of: &InProject,
        project_id: ProjectId,
        order: &str,
    ) -> Result<Vec<T>> {
        let sql = format!("{} {order}", of.list);
        Ok(with_db!(self, read, |pool| {
            sqlx::query_as(audited(&sql))
                .bind(project_id)
                .fetch_all(pool)
                .await
        })?)
    }

    /// Deletes one object of the project; [`StoreError::NotFound`](crate::StoreError::NotFound)
    /// when the project has no such object.
    pub(crate) async fn delete_in_project(
        &self,
        of: &InProject,
        project_id: ProjectId,
        id: i64,
    ) -> Result<()> {
        let done = with_db!(self, write, |pool| {
            sqlx::query(of.delete)
                .bind(project_id)
                .bind(id)
                .execute(pool)
                .await
                .map(|r| r.rows_affected())
        })?;
        found(done)
    }
}
