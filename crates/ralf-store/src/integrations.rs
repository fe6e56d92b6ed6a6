//! Integrations (inbound webhooks), their matchers, extract values and aliases, and the
//! start of a delivery's task together with the record of its delivery id, in one
//! transaction: of two servers (or two requests) that receive the same delivery, exactly one
//! inserts the record and the task.

use const_format::concatcp;
use ralf_core::api::integrations::{
    ExtractValueFields, Integration, IntegrationAlias, IntegrationExtractValue, IntegrationFields,
    IntegrationMatcher, MatcherFields,
};
use ralf_core::api::refs::ObjectRef;
use ralf_core::api::tasks::{Task, TaskRequest};
use ralf_core::{ProjectId, Timestamp};

use crate::driver::{Reference, Tx as _};
use crate::in_project::InProject;
use crate::tasks::{NewTask, task_references};
use crate::{Result, Store, StoreError, audited, found, with_db};

/// Inserts an integration; binds project, template, name, auth method, secret key, header,
/// searchable, task params. Shared with the restore of a backup.
pub(crate) const INSERT_INTEGRATION: &str =
    "INSERT INTO integrations (project_id, template_id, name, auth_method,
                        auth_secret_id, auth_header, searchable, task_params)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id";
const INTEGRATION_COLUMNS: &str = "id, project_id, template_id, name, auth_method,
    auth_secret_id, auth_header, searchable, task_params";

const INTEGRATIONS: InProject = InProject {
    list: concatcp!(
        "SELECT ",
        INTEGRATION_COLUMNS,
        " FROM integrations WHERE project_id = $1"
    ),
    get: concatcp!(
        "SELECT ",
        INTEGRATION_COLUMNS,
        " FROM integrations WHERE project_id = $1 AND id = $2"
    ),
    delete: "DELETE FROM integrations WHERE project_id = $1 AND id = $2",
};

#[derive(sqlx::FromRow)]
struct IntegrationRow {
    id: i64,
    project_id: i64,
    template_id: i64,
    name: String,
    auth_method: String,
    auth_secret_id: Option<i64>,
    auth_header: String,
    searchable: bool,
    task_params: Option<String>,
}

impl IntegrationRow {
    fn into_integration(self) -> Result<Integration> {
        let task_params = match self.task_params.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(text) => Some(serde_json::from_str::<TaskRequest>(text).map_err(|e| {
                StoreError::Corrupt(format!(
                    "integration {} has unreadable task_params: {e}",
                    self.id
                ))
            })?),
        };
        Ok(Integration {
            id: self.id,
            name: self.name,
            project_id: self.project_id,
            template_id: self.template_id,
            auth_method: self.auth_method,
            auth_secret_id: self.auth_secret_id,
            auth_header: self.auth_header,
            searchable: self.searchable,
            task_params,
        })
    }
}

/// Where one kind of [`IntegrationPart`] is stored: its table and its six text columns, in
/// the order of [`IntegrationPart::columns`] (after `id` and `integration_id`). Its statements
/// are made from these constants.
pub struct PartTable {
    table: &'static str,
    columns: [&'static str; 6],
}

impl PartTable {
    /// `$1` the project, `$2` the integration: its parts, oldest first (add `AND id = $3` for
    /// one).
    fn select(&self, one: bool) -> String {
        format!(
            "SELECT id, integration_id, {} FROM {} WHERE integration_id = $2
               AND integration_id IN (SELECT id FROM integrations WHERE project_id = $1){}",
            self.columns.join(", "),
            self.table,
            if one { " AND id = $3" } else { " ORDER BY id" }
        )
    }

    /// `$1` the integration, `$2`..`$7` the columns; returns the row. Shared with the restore
    /// of a backup.
    pub(crate) fn insert(&self) -> String {
        let columns = self.columns.join(", ");
        format!(
            "INSERT INTO {} (integration_id, {columns}) VALUES ($1, $2, $3, $4, $5, $6, $7)
             RETURNING id, integration_id, {columns}",
            self.table
        )
    }

    /// `$1`..`$6` the columns, `$7` the integration, `$8` the part.
    fn update(&self) -> String {
        let set: Vec<String> = (self.columns.iter().enumerate())
            .map(|(i, column)| format!("{column} = ${}", i + 1))
            .collect();
        format!(
            "UPDATE {} SET {} WHERE integration_id = $7 AND id = $8",
            self.table,
            set.join(", ")
        )
    }

    /// `$1` the integration, `$2` the part.
    fn delete(&self) -> String {
        format!(
            "DELETE FROM {} WHERE integration_id = $1 AND id = $2",
            self.table
        )
    }
}

/// A part of an integration, kept under it in a table of its own with six text columns: its
/// matchers and its extract values. One set of store methods lists, reads, adds, changes and
/// deletes either kind.
pub trait IntegrationPart: Sized + Send + Unpin + 'static {
    /// The checked fields a part is added or changed with.
    type Fields: Sync;
    /// Its table's statements.
    const TABLE: PartTable;
    /// The fields, in the order of the table's six text columns.
    fn columns(fields: &Self::Fields) -> [&str; 6];
    /// The part read from a row: its id, its integration's id and the six columns.
    fn from_row(row: PartRow) -> Self;
}

/// A part's row: its id, its integration's id and its six text columns.
pub type PartRow = (i64, i64, String, String, String, String, String, String);

impl IntegrationPart for IntegrationMatcher {
    type Fields = MatcherFields;
    const TABLE: PartTable = PartTable {
        table: "integration_matchers",
        columns: [
            "name",
            "match_type",
            "method",
            "body_data_type",
            "match_key",
            "match_value",
        ],
    };
    fn columns(f: &MatcherFields) -> [&str; 6] {
        [
            &f.name,
            &f.match_type,
            &f.method,
            &f.body_data_type,
            &f.key,
            &f.value,
        ]
    }
    fn from_row(r: PartRow) -> Self {
        IntegrationMatcher {
            id: r.0,
            integration_id: r.1,
            name: r.2,
            match_type: r.3,
            method: r.4,
            body_data_type: r.5,
            key: r.6,
            value: r.7,
        }
    }
}

impl IntegrationPart for IntegrationExtractValue {
    type Fields = ExtractValueFields;
    const TABLE: PartTable = PartTable {
        table: "integration_extract_values",
        columns: [
            "name",
            "value_source",
            "body_data_type",
            "value_key",
            "variable",
            "variable_type",
        ],
    };
    fn columns(f: &ExtractValueFields) -> [&str; 6] {
        [
            &f.name,
            &f.value_source,
            &f.body_data_type,
            &f.key,
            &f.variable,
            &f.variable_type,
        ]
    }
    fn from_row(r: PartRow) -> Self {
        IntegrationExtractValue {
            id: r.0,
            integration_id: r.1,
            name: r.2,
            value_source: r.3,
            body_data_type: r.4,
            key: r.5,
            variable: r.6,
            variable_type: r.7,
        }
    }
}

/// An alias row; the URL is the server's to make.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AliasRow {
    pub id: i64,
    pub alias: String,
    pub project_id: i64,
    pub integration_id: Option<i64>,
}

impl AliasRow {
    /// The alias as the API shows it, with the URL under `web_host` (`""`: a path only).
    pub fn shown(self, web_host: &str) -> IntegrationAlias {
        IntegrationAlias {
            url: format!(
                "{}/api/integrations/{}",
                web_host.trim_end_matches('/'),
                self.alias
            ),
            id: self.id,
            alias: self.alias,
            project_id: self.project_id,
            integration_id: self.integration_id,
        }
    }
}

/// What an alias reaches.
#[derive(Debug)]
pub enum AliasTarget {
    /// An integration's own alias: that integration.
    Integration(Box<Integration>),
    /// A project's alias: its searchable integrations.
    Project(Vec<Integration>),
}

/// What became of a delivery to one integration.
#[derive(Debug)]
pub enum Started {
    Task(Box<Task>),
    /// The delivery id was seen within the replay window: nothing started.
    Replay,
}

fn params_json(params: Option<&TaskRequest>) -> Result<Option<String>> {
    params
        .map(|p| {
            serde_json::to_string(p).map_err(|e| StoreError::Invalid(format!("task_params: {e}")))
        })
        .transpose()
}

fn integration_references(fields: &IntegrationFields) -> [Reference; 3] {
    [
        Reference {
            id: Some(fields.template_id),
            count: "SELECT COUNT(*) FROM templates WHERE id = $1 AND project_id = $2",
            missing: "template_id: no such template in this project",
        },
        Reference {
            id: fields.auth_secret_id,
            count: "SELECT COUNT(*) FROM access_keys
                    WHERE id = $1 AND project_id = $2 AND owner = ''",
            missing: "auth_secret_id: no such key in this project",
        },
        Reference {
            id: fields
                .task_params
                .as_ref()
                .and_then(|p| p.inventory_id)
                .filter(|&id| id != 0),
            count: "SELECT COUNT(*) FROM inventories WHERE id = $1 AND project_id = $2",
            missing: "task_params.inventory_id: no such inventory in this project",
        },
    ]
}

impl Store {
    /// The project's integrations, oldest first.
    pub async fn integrations(&self, project_id: ProjectId) -> Result<Vec<Integration>> {
        let rows: Vec<IntegrationRow> = self
            .list_in_project(&INTEGRATIONS, project_id, "ORDER BY id")
            .await?;
        rows.into_iter()
            .map(IntegrationRow::into_integration)
            .collect()
    }

    pub async fn integration(&self, project_id: ProjectId, id: i64) -> Result<Integration> {
        self.get_in_project::<IntegrationRow>(&INTEGRATIONS, project_id, id)
            .await?
            .into_integration()
    }

    /// Creates an integration; its template and key must be the project's, else
    /// [`StoreError::Invalid`].
    pub async fn create_integration(
        &self,
        project_id: ProjectId,
        fields: &IntegrationFields,
    ) -> Result<Integration> {
        let params = params_json(fields.task_params.as_ref())?;
        let id = with_db!(self, write, |pool| {
            let mut tx = pool.begin().await?;
            tx.check_in_project(project_id, &integration_references(fields))
                .await?;
            let id: i64 = sqlx::query_scalar(INSERT_INTEGRATION)
                .bind(project_id)
                .bind(fields.template_id)
                .bind(&fields.name)
                .bind(&fields.auth_method)
                .bind(fields.auth_secret_id)
                .bind(&fields.auth_header)
                .bind(fields.searchable)
                .bind(params.as_deref())
                .fetch_one(&mut *tx)
                .await?;
            tx.commit().await?;
            id
        });
        self.integration(project_id, id).await
    }

    pub async fn update_integration(
        &self,
        project_id: ProjectId,
        id: i64,
        fields: &IntegrationFields,
    ) -> Result<()> {
        let params = params_json(fields.task_params.as_ref())?;
        let done = with_db!(self, write, |pool| {
            let mut tx = pool.begin().await?;
            tx.check_in_project(project_id, &integration_references(fields))
                .await?;
            let done = sqlx::query(
                "UPDATE integrations SET template_id = $1, name = $2, auth_method = $3,
                        auth_secret_id = $4, auth_header = $5, searchable = $6, task_params = $7
                     WHERE project_id = $8 AND id = $9",
            )
            .bind(fields.template_id)
            .bind(&fields.name)
            .bind(&fields.auth_method)
            .bind(fields.auth_secret_id)
            .bind(&fields.auth_header)
            .bind(fields.searchable)
            .bind(params.as_deref())
            .bind(project_id)
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            tx.commit().await?;
            done
        });
        found(done)
    }

    /// Deletes an integration with its matchers, extract values and aliases; its tasks stay.
    pub async fn delete_integration(&self, project_id: ProjectId, id: i64) -> Result<()> {
        self.delete_in_project(&INTEGRATIONS, project_id, id).await
    }

    /// The project's integrations that start template `template_id`.
    pub async fn template_integrations(
        &self,
        project_id: ProjectId,
        template_id: i64,
    ) -> Result<Vec<ObjectRef>> {
        Ok(with_db!(self, read, |pool| {
            sqlx::query_as::<_, ObjectRef>(
                "SELECT id, name FROM integrations WHERE project_id = $1 AND template_id = $2
                 ORDER BY name, id",
            )
            .bind(project_id)
            .bind(template_id)
            .fetch_all(pool)
            .await
        })?)
    }

    /// The parts of kind `P` of an integration of the project (none when it is not the
    /// project's).
    pub async fn integration_parts<P: IntegrationPart>(
        &self,
        project_id: ProjectId,
        integration_id: i64,
    ) -> Result<Vec<P>> {
        let rows = with_db!(self, read, |pool| sqlx::query_as::<_, PartRow>(audited(
            &P::TABLE.select(false)
        ))
        .bind(project_id)
        .bind(integration_id)
        .fetch_all(pool)
        .await)?;
        Ok(rows.into_iter().map(P::from_row).collect())
    }

    /// Part `id` of kind `P` of an integration of the project.
    pub async fn integration_part<P: IntegrationPart>(
        &self,
        project_id: ProjectId,
        integration_id: i64,
        id: i64,
    ) -> Result<P> {
        let row = with_db!(self, read, |pool| sqlx::query_as::<_, PartRow>(audited(
            &P::TABLE.select(true)
        ))
        .bind(project_id)
        .bind(integration_id)
        .bind(id)
        .fetch_one(pool)
        .await)?;
        Ok(P::from_row(row))
    }

    /// Adds a part to an integration the caller found in the project.
    pub async fn create_integration_part<P: IntegrationPart>(
        &self,
        integration_id: i64,
        fields: &P::Fields,
    ) -> Result<P> {
        let [c1, c2, c3, c4, c5, c6] = P::columns(fields);
        let row = with_db!(self, write, |pool| sqlx::query_as::<_, PartRow>(audited(
            &P::TABLE.insert()
        ))
        .bind(integration_id)
        .bind(c1)
        .bind(c2)
        .bind(c3)
        .bind(c4)
        .bind(c5)
        .bind(c6)
        .fetch_one(pool)
        .await)?;
        Ok(P::from_row(row))
    }

    pub async fn update_integration_part<P: IntegrationPart>(
        &self,
        integration_id: i64,
        id: i64,
        fields: &P::Fields,
    ) -> Result<()> {
        let [c1, c2, c3, c4, c5, c6] = P::columns(fields);
        let done = with_db!(self, write, |pool| sqlx::query(audited(&P::TABLE.update()))
            .bind(c1)
            .bind(c2)
            .bind(c3)
            .bind(c4)
            .bind(c5)
            .bind(c6)
            .bind(integration_id)
            .bind(id)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        found(done)
    }

    pub async fn delete_integration_part<P: IntegrationPart>(
        &self,
        integration_id: i64,
        id: i64,
    ) -> Result<()> {
        let done = with_db!(self, write, |pool| sqlx::query(audited(&P::TABLE.delete()))
            .bind(integration_id)
            .bind(id)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        found(done)
    }

    /// The project's own aliases (`integration_id` `None`) or those of one of its
    /// integrations.
    pub async fn integration_aliases(
        &self,
        project_id: ProjectId,
        integration_id: Option<i64>,
    ) -> Result<Vec<AliasRow>> {
        Ok(with_db!(self, read, |pool| sqlx::query_as::<_, AliasRow>(
            "SELECT id, alias, project_id, integration_id FROM integration_aliases
                 WHERE project_id = $1
                   AND (($2 IS NULL AND integration_id IS NULL) OR integration_id = $2)
                 ORDER BY id",
        )
        .bind(project_id)
        .bind(integration_id)
        .fetch_all(pool)
        .await)?)
    }

    /// Adds an alias (made by the caller: random, unguessable) to the project or to one of
    /// its integrations (which the caller found in the project).
    pub async fn create_integration_alias(
        &self,
        project_id: ProjectId,
        integration_id: Option<i64>,
        alias: &str,
    ) -> Result<AliasRow> {
        Ok(with_db!(self, write, |pool| {
            sqlx::query_as::<_, AliasRow>(
                "INSERT INTO integration_aliases (alias, project_id, integration_id)
                 VALUES ($1, $2, $3) RETURNING id, alias, project_id, integration_id",
            )
            .bind(alias)
            .bind(project_id)
            .bind(integration_id)
            .fetch_one(pool)
            .await
        })?)
    }

    pub async fn delete_integration_alias(
        &self,
        project_id: ProjectId,
        integration_id: Option<i64>,
        id: i64,
    ) -> Result<()> {
        let done = with_db!(self, write, |pool| sqlx::query(
            "DELETE FROM integration_aliases
                 WHERE project_id = $1 AND id = $3
                   AND (($2 IS NULL AND integration_id IS NULL) OR integration_id = $2)",
        )
        .bind(project_id)
        .bind(integration_id)
        .bind(id)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
        found(done)
    }

    /// What `alias` reaches; [`StoreError::NotFound`] when no alias has that text.
    pub async fn integrations_of_alias(&self, alias: &str) -> Result<AliasTarget> {
        let row = with_db!(self, read, |pool| sqlx::query_as::<_, AliasRow>(
            "SELECT id, alias, project_id, integration_id FROM integration_aliases
                 WHERE alias = $1",
        )
        .bind(alias)
        .fetch_one(pool)
        .await)?;
        let project_id = ProjectId(row.project_id);
        match row.integration_id {
            Some(id) => Ok(AliasTarget::Integration(Box::new(
                self.integration(project_id, id).await?,
            ))),
            None => {
                let rows = with_db!(self, read, |pool| sqlx::query_as::<_, IntegrationRow>(
                    concatcp!(INTEGRATIONS.list, " AND searchable ORDER BY id")
                )
                .bind(project_id)
                .fetch_all(pool)
                .await)?;
                Ok(AliasTarget::Project(
                    rows.into_iter()
                        .map(IntegrationRow::into_integration)
                        .collect::<Result<_>>()?,
                ))
            }
        }
    }

    /// Starts the task of one delivery to integration `integration_id`. With a delivery id,
    /// the id is recorded in the same transaction, and a delivery id recorded after
    /// `window_start` means a replay: nothing is inserted ([`Started::Replay`]). Records older
    /// than the window are removed here too.
    pub async fn start_delivery(
        &self,
        integration_id: i64,
        delivery_id: Option<&str>,
        window_start: Timestamp,
        task: &NewTask<'_>,
    ) -> Result<Started> {
        let params = serde_json::to_string(task.params)
            .map_err(|e| StoreError::Invalid(format!("params: {e}")))?;
        let row = with_db!(self, write, |pool| {
            let mut tx = pool.begin().await?;
            if let Some(delivery_id) = delivery_id {
                sqlx::query("DELETE FROM integration_deliveries WHERE received < $1")
                    .bind(window_start)
                    .execute(&mut *tx)
                    .await?;
                let recorded = sqlx::query(
                    "INSERT INTO integration_deliveries (integration_id, delivery_id, received)
                         VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                )
                .bind(integration_id)
                .bind(delivery_id)
                .bind(Timestamp::now())
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if recorded == 0 {
                    return Ok(Started::Replay);
                }
            }
            tx.check_in_project(task.project_id, &task_references(task))
                .await?;
            let id = tx.insert_task(task, &params).await?;
            let row = tx.task_row(id).await?;
            tx.commit().await?;
            row
        });
        Ok(Started::Task(Box::new(row.into_task()?)))
    }
}
