//! A project's access keys. Environment secrets share the `access_keys` table (rows with an
//! `owner`); the key methods here never see them, except [`Store::key_secret`].
//!
//! Secrets arrive already encrypted: the store never sees key material in the clear.

use const_format::concatcp;
use ralf_core::ProjectId;
use ralf_core::api::keys::{AccessKey, KeyKind};
use ralf_core::api::refs::ObjectRefs;

use crate::in_project::InProject;
use crate::refs::RefQueries;
use crate::{Result, Store, found, order_by, with_db};

const KEY_COLUMNS: &str = "id, name, type, project_id";

/// The project's keys; environment secrets (rows with an `owner`) are not among them.
const KEYS: InProject = InProject {
    list: concatcp!(
        "SELECT ",
        KEY_COLUMNS,
        " FROM access_keys WHERE project_id = $1 AND owner = ''"
    ),
    get: concatcp!(
        "SELECT ",
        KEY_COLUMNS,
        " FROM access_keys WHERE project_id = $1 AND id = $2 AND owner = ''"
    ),
    delete: "DELETE FROM access_keys WHERE project_id = $1 AND id = $2 AND owner = ''",
};

const INSERT_KEY: &str = concatcp!(
    "INSERT INTO access_keys (project_id, name, type, secret, owner)
     VALUES ($1, $2, $3, $4, '') RETURNING ",
    KEY_COLUMNS
);

/// A key about to be created.
pub struct NewKey<'a> {
    pub name: &'a str,
    pub kind: KeyKind,
    /// The encrypted material; `None` for keys of type `none`.
    pub secret: Option<&'a str>,
}

/// A change to a key: its name, and perhaps new material (with its type).
pub struct KeyUpdate<'a> {
    pub name: &'a str,
    /// `Some((type, encrypted material))` replaces the stored secret; `None` keeps it.
    pub replace_secret: Option<(KeyKind, Option<&'a str>)>,
}

/// A key's type and its stored (encrypted) secret, for whoever must use the material.
#[derive(Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct StoredSecret {
    #[sqlx(rename = "type", try_from = "String")]
    pub kind: KeyKind,
    pub secret: Option<String>,
}

impl std::fmt::Debug for StoredSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredSecret")
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// The project's keys (environment secrets left out), sorted by `name` (default) or `type`.
    pub async fn keys(
        &self,
        project_id: ProjectId,
        sort: Option<&str>,
        descending: bool,
    ) -> Result<Vec<AccessKey>> {
        let order = order_by(
            &[("name", "LOWER(name)"), ("type", "type")],
            sort,
            descending,
        )?;
        self.list_in_project(&KEYS, project_id, &order).await
    }

    pub async fn key(&self, project_id: ProjectId, id: i64) -> Result<AccessKey> {
        self.get_in_project(&KEYS, project_id, id).await
    }

    pub async fn create_key(&self, project_id: ProjectId, key: &NewKey<'_>) -> Result<AccessKey> {
        Ok(with_db!(self, write, |pool| {
            sqlx::query_as::<_, AccessKey>(INSERT_KEY)
                .bind(project_id)
                .bind(key.name)
                .bind(key.kind.as_str())
                .bind(key.secret)
                .fetch_one(pool)
                .await
        })?)
    }

    pub async fn update_key(
        &self,
        project_id: ProjectId,
        id: i64,
        update: &KeyUpdate<'_>,
    ) -> Result<()> {
        let done = match update.replace_secret {
            None => with_db!(self, write, |pool| sqlx::query(
                "UPDATE access_keys SET name = $1
                         WHERE id = $2 AND project_id = $3 AND owner = ''",
            )
            .bind(update.name)
            .bind(id)
            .bind(project_id)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?,
            Some((kind, secret)) => with_db!(self, write, |pool| sqlx::query(
                "UPDATE access_keys SET name = $1, type = $2, secret = $3
                         WHERE id = $4 AND project_id = $5 AND owner = ''",
            )
            .bind(update.name)
            .bind(kind.as_str())
            .bind(secret)
            .bind(id)
            .bind(project_id)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?,
        };
        found(done)
    }

    /// Deletes a key; `InUse` while a repository, inventory or template vault refers to it.
    pub async fn delete_key(&self, project_id: ProjectId, id: i64) -> Result<()> {
        self.delete_in_project(&KEYS, project_id, id).await
    }

    /// The templates (through their vaults), repositories and inventories using a key.
    pub async fn key_refs(&self, project_id: ProjectId, id: i64) -> Result<ObjectRefs> {
        let queries = RefQueries {
            templates: Some(
                "SELECT DISTINCT t.id, t.name FROM templates t
                 JOIN template_vaults v ON v.template_id = t.id
                 WHERE t.project_id = $1 AND v.vault_key_id = $2 ORDER BY t.name, t.id",
            ),
            repositories: Some(
                "SELECT id, name FROM repositories WHERE project_id = $1 AND ssh_key_id = $2
                 ORDER BY name, id",
            ),
            inventories: Some(
                "SELECT id, name FROM inventories
                 WHERE project_id = $1 AND (ssh_key_id = $2 OR become_key_id = $2)
                 ORDER BY name, id",
            ),
        };
        self.object_refs(queries, project_id, id).await
    }

    /// The type and the encrypted secret of any key of the project, environment secrets
    /// included; decrypt with `ralf_core::api::keys::KeyMaterial::open`.
    pub async fn key_secret(&self, project_id: ProjectId, id: i64) -> Result<StoredSecret> {
        Ok(with_db!(self, read, |pool| sqlx::query_as::<
            _,
            StoredSecret,
        >(
            "SELECT type, secret FROM access_keys WHERE id = $1 AND project_id = $2",
        )
        .bind(id)
        .bind(project_id)
        .fetch_one(pool)
        .await)?)
    }
}
