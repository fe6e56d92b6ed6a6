//! A project's environments and their secrets. Secrets are `access_keys` rows of type `string`
//! with `environment_id` set and `owner` = `env` or `var`; the vault password sits in
//! `environments.password`. Both arrive already encrypted.

use std::collections::HashMap;

use const_format::concatcp;
use ralf_core::ProjectId;
use ralf_core::api::environments::{Environment, EnvironmentSecret, SecretKind};
use ralf_core::api::refs::ObjectRefs;

use crate::driver::{Dialect as _, INSERT_ENVIRONMENT_SECRET, Tx as _};
use crate::in_project::InProject;
use crate::{Result, Store, StoreError, order_by, with_db};

const ENVIRONMENT_COLUMNS: &str = "id, name, project_id, json, env";

/// The project's environments; deleting one is a transaction of its own (its secrets go first).
const ENVIRONMENTS: InProject = InProject {
    list: concatcp!(
        "SELECT ",
        ENVIRONMENT_COLUMNS,
        " FROM environments WHERE project_id = $1"
    ),
    get: concatcp!(
        "SELECT ",
        ENVIRONMENT_COLUMNS,
        " FROM environments WHERE project_id = $1 AND id = $2"
    ),
    delete: "DELETE FROM environments WHERE project_id = $1 AND id = $2",
};

/// What happens to the stored vault password.
#[derive(Clone, Copy)]
pub enum PasswordChange<'a> {
    Keep,
    Clear,
    /// The encrypted new password.
    Set(&'a str),
}

/// The editable fields of an environment.
pub struct EnvironmentFields<'a> {
    pub name: &'a str,
    pub json: &'a str,
    pub env: &'a str,
    pub password: PasswordChange<'a>,
}

/// A change to one secret, its value already encrypted.
pub enum SealedSecretChange {
    Create {
        name: String,
        kind: SecretKind,
        secret: String,
    },
    /// `None` fields stay as stored.
    Update {
        id: i64,
        name: Option<String>,
        kind: Option<SecretKind>,
        secret: Option<String>,
    },
    Delete {
        id: i64,
    },
}

/// A secret of an environment with its encrypted value, for whoever must use it.
#[derive(Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SealedEnvironmentSecret {
    pub id: i64,
    pub name: String,
    #[sqlx(rename = "owner", try_from = "String")]
    pub kind: SecretKind,
    pub secret: Option<String>,
}

impl std::fmt::Debug for SealedEnvironmentSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealedEnvironmentSecret")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

#[derive(sqlx::FromRow)]
struct EnvironmentRow {
    id: i64,
    name: String,
    project_id: i64,
    json: String,
    env: String,
}

#[derive(sqlx::FromRow)]
struct SecretRow {
    id: i64,
    name: String,
    #[sqlx(try_from = "String")]
    owner: SecretKind,
    environment_id: i64,
}

impl EnvironmentRow {
    fn into_environment(self, secrets: Vec<EnvironmentSecret>) -> Environment {
        Environment {
            id: self.id,
            name: self.name,
            project_id: self.project_id,
            password: None,
            json: self.json,
            env: self.env,
            secrets,
        }
    }
}

/// The secrets of project `$1`'s environments, names only.
const SECRETS_OF_PROJECT: &str = "SELECT id, name, owner, environment_id FROM access_keys
     WHERE project_id = $1 AND owner <> '' AND environment_id IS NOT NULL ORDER BY id";

/// The secrets of environment `$2` of project `$1`, names only.
const SECRETS_OF_ENVIRONMENT: &str = "SELECT id, name, owner, environment_id FROM access_keys
     WHERE project_id = $1 AND owner <> '' AND environment_id = $2 ORDER BY id";

impl Store {
    /// The project's environments with their secrets (names only), sorted by `name`.
    pub async fn environments(
        &self,
        project_id: ProjectId,
        sort: Option<&str>,
        descending: bool,
    ) -> Result<Vec<Environment>> {
        let order = order_by(&[("name", "LOWER(name)")], sort, descending)?;
        let rows: Vec<EnvironmentRow> = self
            .list_in_project(&ENVIRONMENTS, project_id, &order)
            .await?;
        let secrets = with_db!(self, read, |pool| {
            sqlx::query_as::<_, SecretRow>(SECRETS_OF_PROJECT)
                .bind(project_id)
                .fetch_all(pool)
                .await
        })?;
        let mut by_environment: HashMap<i64, Vec<EnvironmentSecret>> = HashMap::new();
        for s in secrets {
            by_environment
                .entry(s.environment_id)
                .or_default()
                .push(EnvironmentSecret {
                    id: s.id,
                    name: s.name,
                    kind: s.owner,
                });
        }
        Ok(rows
            .into_iter()
            .map(|row| {
                let secrets = by_environment.remove(&row.id).unwrap_or_default();
                row.into_environment(secrets)
            })
            .collect())
    }

    pub async fn environment(&self, project_id: ProjectId, id: i64) -> Result<Environment> {
        let row: EnvironmentRow = self.get_in_project(&ENVIRONMENTS, project_id, id).await?;
        let secrets = with_db!(self, read, |pool| {
            sqlx::query_as::<_, SecretRow>(SECRETS_OF_ENVIRONMENT)
                .bind(project_id)
                .bind(id)
                .fetch_all(pool)
                .await
        })?;
        let secrets = secrets
            .into_iter()
            .map(|s| EnvironmentSecret {
                id: s.id,
                name: s.name,
                kind: s.owner,
            })
            .collect();
        Ok(row.into_environment(secrets))
    }

    /// Creates an environment with its secrets (only `Create` changes make sense here).
    pub async fn create_environment(
        &self,
        project_id: ProjectId,
        fields: &EnvironmentFields<'_>,
        secrets: &[SealedSecretChange],
    ) -> Result<Environment> {
        let id = with_db!(self, write, |pool| {
            let mut tx = pool.begin().await?;
            let id = tx.insert_environment(project_id, fields, secrets).await?;
            tx.commit().await?;
            id
        });
        self.environment(project_id, id).await
    }

    /// Changes an environment and applies the secret changes, all or nothing. A change naming a
    /// secret that is not this environment's is `Invalid`.
    pub async fn update_environment(
        &self,
        project_id: ProjectId,
        id: i64,
        fields: &EnvironmentFields<'_>,
        secrets: &[SealedSecretChange],
    ) -> Result<()> {
        // `$1` to `$3` the fields, `$4` the environment, `$5` the project, `$6` the password.
        let (sql, password) = match fields.password {
            PasswordChange::Keep => (
                "UPDATE environments SET name = $1, json = $2, env = $3
                 WHERE id = $4 AND project_id = $5",
                None,
            ),
            PasswordChange::Clear => (
                "UPDATE environments SET name = $1, json = $2, env = $3, password = NULL
                 WHERE id = $4 AND project_id = $5",
                None,
            ),
            PasswordChange::Set(p) => (
                "UPDATE environments SET name = $1, json = $2, env = $3, password = $6
                 WHERE id = $4 AND project_id = $5",
                Some(p),
            ),
        };
        with_db!(self, write, |pool| {
            let mut tx = pool.begin().await?;
            let mut update = sqlx::query(sql)
                .bind(fields.name)
                .bind(fields.json)
                .bind(fields.env)
                .bind(id)
                .bind(project_id);
            if let Some(p) = password {
                update = update.bind(p);
            }
            if update.execute(&mut *tx).await?.rows_affected() == 0 {
                return Err(StoreError::NotFound);
            }
            for change in secrets {
                let done = match change {
                        SealedSecretChange::Create { name, kind, secret } => sqlx::query(
                            INSERT_ENVIRONMENT_SECRET
                        )
                        .bind(project_id)
                        .bind(name)
                        .bind(secret)
                        .bind(id)
                        .bind(kind.as_str())
                        .execute(&mut *tx)
                        .await?
                        .rows_affected(),
                        SealedSecretChange::Update {
                            id: secret_id,
                            name,
                            kind,
                            secret,
                        } => sqlx::query(
                            "UPDATE access_keys SET name = COALESCE($1, name),
                                owner = COALESCE($2, owner), secret = COALESCE($3, secret)
                             WHERE id = $4 AND environment_id = $5 AND project_id = $6 AND owner <> ''",
                        )
                        .bind(name.as_deref())
                        .bind(kind.map(SecretKind::as_str))
                        .bind(secret.as_deref())
                        .bind(secret_id)
                        .bind(id)
                        .bind(project_id)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected(),
                        SealedSecretChange::Delete { id: secret_id } => sqlx::query(
                            "DELETE FROM access_keys
                             WHERE id = $1 AND environment_id = $2 AND project_id = $3 AND owner <> ''",
                        )
                        .bind(secret_id)
                        .bind(id)
                        .bind(project_id)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected(),
                    };
                if done == 0 {
                    let secret_id = match change {
                        SealedSecretChange::Update { id, .. }
                        | SealedSecretChange::Delete { id } => *id,
                        SealedSecretChange::Create { .. } => 0,
                    };
                    return Err(StoreError::Invalid(format!(
                        "secrets: this environment has no secret with id {secret_id}"
                    )));
                }
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// Deletes an environment with its secrets; `InUse` while a template refers to it.
    pub async fn delete_environment(&self, project_id: ProjectId, id: i64) -> Result<()> {
        with_db!(self, write, |pool| {
            let mut tx = pool.begin().await?;
            sqlx::query(
                "DELETE FROM access_keys
                     WHERE environment_id = $1 AND project_id = $2 AND owner <> ''",
            )
            .bind(id)
            .bind(project_id)
            .execute(&mut *tx)
            .await?;
            let done = sqlx::query(ENVIRONMENTS.delete)
                .bind(project_id)
                .bind(id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if done == 0 {
                return Err(StoreError::NotFound);
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// The templates using an environment, as theirs or as one of their `environment_ids`.
    pub async fn environment_refs(&self, project_id: ProjectId, id: i64) -> Result<ObjectRefs> {
        let templates = with_db!(self, read, |pool| {
            let mut conn = pool.acquire().await?;
            conn.templates_using_environment(project_id, id).await?
        });
        Ok(ObjectRefs {
            templates,
            ..Default::default()
        })
    }

    /// The encrypted vault password of an environment, if it has one.
    pub async fn environment_password(
        &self,
        project_id: ProjectId,
        id: i64,
    ) -> Result<Option<String>> {
        Ok(with_db!(self, read, |pool| sqlx::query_scalar::<
            _,
            Option<String>,
        >(
            "SELECT password FROM environments WHERE id = $1 AND project_id = $2",
        )
        .bind(id)
        .bind(project_id)
        .fetch_one(pool)
        .await)?)
    }

    /// The secrets of an environment with their encrypted values.
    pub async fn environment_secret_values(
        &self,
        project_id: ProjectId,
        id: i64,
    ) -> Result<Vec<SealedEnvironmentSecret>> {
        Ok(with_db!(self, read, |pool| sqlx::query_as::<
            _,
            SealedEnvironmentSecret,
        >(
            "SELECT id, name, owner, secret FROM access_keys
                     WHERE project_id = $1 AND environment_id = $2 AND owner <> '' ORDER BY id",
        )
        .bind(project_id)
        .bind(id)
        .fetch_all(pool)
        .await)?)
    }
}
