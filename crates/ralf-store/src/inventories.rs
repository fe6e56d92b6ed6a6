//! A project's inventories.

use const_format::concatcp;
use ralf_core::ProjectId;
use ralf_core::api::inventories::{Inventory, InventoryKind};
use ralf_core::api::refs::ObjectRefs;

use crate::in_project::InProject;
use crate::refs::RefQueries;
use crate::{Result, Store, found, order_by, with_db};

const INVENTORY_COLUMNS: &str =
    "id, name, project_id, inventory, ssh_key_id, become_key_id, repository_id, type";

const INVENTORIES: InProject = InProject {
    list: concatcp!(
        "SELECT ",
        INVENTORY_COLUMNS,
        " FROM inventories WHERE project_id = $1"
    ),
    get: concatcp!(
        "SELECT ",
        INVENTORY_COLUMNS,
        " FROM inventories WHERE project_id = $1 AND id = $2"
    ),
    delete: "DELETE FROM inventories WHERE project_id = $1 AND id = $2",
};

const INSERT_INVENTORY: &str = concatcp!(
    "INSERT INTO inventories
        (project_id, name, type, inventory, ssh_key_id, become_key_id, repository_id)
     VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING ",
    INVENTORY_COLUMNS
);

/// The editable fields of an inventory.
pub struct InventoryFields<'a> {
    pub name: &'a str,
    pub kind: InventoryKind,
    pub inventory: &'a str,
    pub ssh_key_id: Option<i64>,
    pub become_key_id: Option<i64>,
    pub repository_id: Option<i64>,
}

impl Store {
    /// The project's inventories, sorted by `name` (default) or `type`.
    pub async fn inventories(
        &self,
        project_id: ProjectId,
        sort: Option<&str>,
        descending: bool,
    ) -> Result<Vec<Inventory>> {
        let order = order_by(
            &[("name", "LOWER(name)"), ("type", "type")],
            sort,
            descending,
        )?;
        self.list_in_project(&INVENTORIES, project_id, &order).await
    }

    pub async fn inventory(&self, project_id: ProjectId, id: i64) -> Result<Inventory> {
        self.get_in_project(&INVENTORIES, project_id, id).await
    }

    pub async fn create_inventory(
        &self,
        project_id: ProjectId,
        fields: &InventoryFields<'_>,
    ) -> Result<Inventory> {
        Ok(with_db!(self, write, |pool| {
            sqlx::query_as::<_, Inventory>(INSERT_INVENTORY)
                .bind(project_id)
                .bind(fields.name)
                .bind(fields.kind.as_str())
                .bind(fields.inventory)
                .bind(fields.ssh_key_id)
                .bind(fields.become_key_id)
                .bind(fields.repository_id)
                .fetch_one(pool)
                .await
        })?)
    }

    pub async fn update_inventory(
        &self,
        project_id: ProjectId,
        id: i64,
        fields: &InventoryFields<'_>,
    ) -> Result<()> {
        let done = with_db!(self, write, |pool| sqlx::query(
            "UPDATE inventories SET name = $1, type = $2, inventory = $3, ssh_key_id = $4,
                        become_key_id = $5, repository_id = $6
                     WHERE id = $7 AND project_id = $8",
        )
        .bind(fields.name)
        .bind(fields.kind.as_str())
        .bind(fields.inventory)
        .bind(fields.ssh_key_id)
        .bind(fields.become_key_id)
        .bind(fields.repository_id)
        .bind(id)
        .bind(project_id)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
        found(done)
    }

    /// Deletes an inventory; `InUse` while a template refers to it.
    pub async fn delete_inventory(&self, project_id: ProjectId, id: i64) -> Result<()> {
        self.delete_in_project(&INVENTORIES, project_id, id).await
    }

    /// The templates using an inventory.
    pub async fn inventory_refs(&self, project_id: ProjectId, id: i64) -> Result<ObjectRefs> {
        let queries = RefQueries {
            templates: Some(
                "SELECT id, name FROM templates WHERE project_id = $1 AND inventory_id = $2
                 ORDER BY name, id",
            ),
            ..Default::default()
        };
        self.object_refs(queries, project_id, id).await
    }
}
