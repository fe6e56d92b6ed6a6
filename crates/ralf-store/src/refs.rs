//! Who uses an object: the queries behind `GET …/{id}/refs` and the messages of refused deletes.

use ralf_core::ProjectId;
use ralf_core::api::refs::{ObjectRef, ObjectRefs};

use crate::{Result, Store, with_db};

/// The queries that find the users of one object, by kind; each selects `id, name` with the
/// project id bound as `$1` and the object's id as `$2`.
#[derive(Default)]
pub(crate) struct RefQueries {
    pub templates: Option<&'static str>,
    pub repositories: Option<&'static str>,
    pub inventories: Option<&'static str>,
}

impl Store {
    pub(crate) async fn object_refs(
        &self,
        queries: RefQueries,
        project_id: ProjectId,
        id: i64,
    ) -> Result<ObjectRefs> {
        Ok(ObjectRefs {
            templates: self.refs_by(queries.templates, project_id, id).await?,
            repositories: self.refs_by(queries.repositories, project_id, id).await?,
            inventories: self.refs_by(queries.inventories, project_id, id).await?,
        })
    }

    async fn refs_by(
        &self,
        sql: Option<&'static str>,
        project_id: ProjectId,
        id: i64,
    ) -> Result<Vec<ObjectRef>> {
        let Some(sql) = sql else {
            return Ok(Vec::new());
        };
        Ok(with_db!(self, read, |pool| {
            sqlx::query_as::<_, ObjectRef>(sql)
                .bind(project_id)
                .bind(id)
                .fetch_all(pool)
                .await
        })?)
    }
}
