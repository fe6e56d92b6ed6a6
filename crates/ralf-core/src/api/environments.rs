//! Environments ("variable groups") on the wire: extra variables, environment variables, and
//! secrets. Secret values and the vault password are only ever written by clients; answers name
//! the secrets (`{id, name, type}`) and carry `password: null`.

use serde::{Deserialize, Serialize};

use super::UnknownKind;
use crate::validate::{self, Checked, invalid};

/// The kinds of environment secret: an environment variable or an extra variable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SecretKind {
    Env,
    Var,
}

impl SecretKind {
    pub const fn as_str(self) -> &'static str {
        match self {
            SecretKind::Env => "env",
            SecretKind::Var => "var",
        }
    }

    pub fn parse(s: &str) -> Option<SecretKind> {
        [SecretKind::Env, SecretKind::Var]
            .into_iter()
            .find(|k| k.as_str() == s)
    }
}

impl std::fmt::Display for SecretKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl TryFrom<String> for SecretKind {
    type Error = UnknownKind;

    fn try_from(value: String) -> Result<Self, UnknownKind> {
        SecretKind::parse(&value).ok_or(UnknownKind {
            what: "secret type",
            value,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Environment {
    pub id: i64,
    pub name: String,
    pub project_id: i64,
    /// The vault password is never answered: always `null`.
    pub password: Option<String>,
    /// Extra variables: a JSON object in a string.
    pub json: String,
    /// Environment variables: a JSON object of strings, numbers and booleans, in a string.
    pub env: String,
    pub secrets: Vec<EnvironmentSecret>,
}

/// A secret of an environment, without its value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EnvironmentSecret {
    pub id: i64,
    pub name: String,
    #[serde(rename = "type")]
    pub kind: SecretKind,
}

/// `POST /api/project/{id}/environment`, `PUT /api/project/{id}/environment/{environment_id}`.
#[derive(Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EnvironmentRequest {
    pub id: Option<i64>,
    #[serde(default)]
    pub name: String,
    pub project_id: Option<i64>,
    /// The vault password. On update `null` (or absent) keeps the stored one, `""` removes it.
    pub password: Option<String>,
    pub json: Option<String>,
    pub env: Option<String>,
    #[serde(default)]
    pub secrets: Vec<EnvironmentSecretRequest>,
}

impl std::fmt::Debug for EnvironmentRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnvironmentRequest")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("project_id", &self.project_id)
            .field("json", &self.json)
            .field("env", &self.env)
            .field("secrets", &self.secrets)
            .finish_non_exhaustive()
    }
}

/// A change to one secret of an environment.
#[derive(Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EnvironmentSecretRequest {
    /// The secret to update or delete.
    pub id: Option<i64>,
    #[serde(default)]
    pub name: String,
    /// The value; on update an empty value keeps the stored one.
    #[serde(default)]
    pub secret: String,
    /// `env` or `var`.
    #[serde(default, rename = "type")]
    pub kind: String,
    /// `create`, `update` or `delete`; without one the entry is left alone (on create, it is
    /// created).
    pub operation: Option<String>,
}

impl std::fmt::Debug for EnvironmentSecretRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnvironmentSecretRequest")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("operation", &self.operation)
            .finish_non_exhaustive()
    }
}

/// A checked secret operation, the value still in plaintext.
#[derive(Clone, PartialEq, Eq)]
pub enum SecretChange {
    Create {
        name: String,
        kind: SecretKind,
        value: String,
    },
    /// `None` fields stay as stored.
    Update {
        id: i64,
        name: Option<String>,
        kind: Option<SecretKind>,
        value: Option<String>,
    },
    Delete {
        id: i64,
    },
}

impl std::fmt::Debug for SecretChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SecretChange::Create { name, kind, .. } => write!(f, "Create({kind} {name:?})"),
            SecretChange::Update { id, name, .. } => write!(f, "Update({id}, {name:?})"),
            SecretChange::Delete { id } => write!(f, "Delete({id})"),
        }
    }
}

/// `env`: a JSON object (empty means `{}`) whose values are strings, numbers or booleans.
pub fn check_env(value: Option<&str>) -> Checked<String> {
    let env = validate::json_object("env", value.unwrap_or_default())?;
    let parsed: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&env).unwrap_or_default();
    for (name, value) in &parsed {
        if !(value.is_string() || value.is_number() || value.is_boolean()) {
            return invalid(format!(
                "env: the value of {name:?} must be a string, a number or a boolean"
            ));
        }
    }
    Ok(env)
}

/// `json` (extra variables): a JSON object; empty means `{}`.
pub fn check_extra_vars(value: Option<&str>) -> Checked<String> {
    validate::json_object("json", value.unwrap_or_default())
}

fn check_secret_type(field: &str, kind: &str) -> Checked<SecretKind> {
    match SecretKind::parse(kind) {
        Some(kind) => Ok(kind),
        None => invalid(format!("{field} must be env or var, not {kind:?}")),
    }
}

/// `kind` is the secret's type when the request names one.
fn check_secret_name(field: &str, kind: Option<SecretKind>, name: &str) -> Checked<String> {
    let name = validate::name(field, name)?;
    let mut chars = name.chars();
    let env_name = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if kind == Some(SecretKind::Env) && !env_name {
        return invalid(format!(
            "{field} {name:?} is not a valid environment variable name (letters, digits and _)"
        ));
    }
    Ok(name)
}

impl EnvironmentSecretRequest {
    /// The operation this entry asks for, checked; `None` when it asks for nothing. `index` is
    /// the entry's place in `secrets`, for messages; `creating` is true on `POST`, where an entry
    /// without an operation is created.
    pub fn change(&self, index: usize, creating: bool) -> Checked<Option<SecretChange>> {
        let field = |f: &str| format!("secrets[{index}].{f}");
        let operation = match self.operation.as_deref() {
            None | Some("") if creating => "create",
            None | Some("") => return Ok(None),
            Some(op) => op,
        };
        let id = || match self.id {
            Some(id) if !creating => Ok(id),
            Some(_) => invalid(format!(
                "{}: a new environment has no secrets to {operation}",
                field("operation")
            )),
            None => invalid(format!("{} is needed to {operation} a secret", field("id"))),
        };
        validate::long_text(&field("secret"), &self.secret)?;
        match operation {
            "create" => {
                let kind = check_secret_type(&field("type"), &self.kind)?;
                let name = check_secret_name(&field("name"), Some(kind), &self.name)?;
                Ok(Some(SecretChange::Create {
                    name,
                    kind,
                    value: self.secret.clone(),
                }))
            }
            "update" => {
                let id = id()?;
                let kind = if self.kind.is_empty() {
                    None
                } else {
                    Some(check_secret_type(&field("type"), &self.kind)?)
                };
                let name = if self.name.trim().is_empty() {
                    None
                } else {
                    Some(check_secret_name(&field("name"), kind, &self.name)?)
                };
                let value = (!self.secret.is_empty()).then(|| self.secret.clone());
                Ok(Some(SecretChange::Update {
                    id,
                    name,
                    kind,
                    value,
                }))
            }
            "delete" => Ok(Some(SecretChange::Delete { id: id()? })),
            other => invalid(format!(
                "{} must be create, update or delete, not {other:?}",
                field("operation")
            )),
        }
    }
}

/// Every operation of a request's `secrets`, checked.
pub fn secret_changes(
    secrets: &[EnvironmentSecretRequest],
    creating: bool,
) -> Checked<Vec<SecretChange>> {
    let mut changes = Vec::new();
    for (index, secret) in secrets.iter().enumerate() {
        if let Some(change) = secret.change(index, creating)? {
            changes.push(change);
        }
    }
    Ok(changes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(
        op: Option<&str>,
        id: Option<i64>,
        name: &str,
        kind: &str,
    ) -> EnvironmentSecretRequest {
        EnvironmentSecretRequest {
            id,
            name: name.into(),
            secret: "s3cr3t".into(),
            kind: kind.into(),
            operation: op.map(str::to_string),
        }
    }

    #[test]
    fn env_values_are_scalars() {
        assert_eq!(check_env(None).unwrap(), "{}");
        assert!(check_env(Some(r#"{"A":"x","B":1,"C":true}"#)).is_ok());
        let e = check_env(Some(r#"{"A":{"b":1}}"#)).unwrap_err().0;
        assert_eq!(
            e,
            "env: the value of \"A\" must be a string, a number or a boolean"
        );
        assert!(check_env(Some("[]")).unwrap_err().0.contains("JSON object"));
        assert!(
            check_extra_vars(Some("{"))
                .unwrap_err()
                .0
                .starts_with("json is not valid JSON")
        );
    }

    #[test]
    fn secret_operations_are_checked() {
        let create = secret(None, None, "TOKEN", "env").change(0, true).unwrap();
        assert!(matches!(create, Some(SecretChange::Create { .. })));
        assert_eq!(
            secret(None, Some(3), "T", "env").change(0, false).unwrap(),
            None
        );
        assert_eq!(
            secret(Some("delete"), Some(3), "", "")
                .change(0, false)
                .unwrap(),
            Some(SecretChange::Delete { id: 3 })
        );
        let e = secret(Some("update"), None, "T", "env")
            .change(2, false)
            .unwrap_err()
            .0;
        assert_eq!(e, "secrets[2].id is needed to update a secret");
        let e = secret(Some("create"), None, "T", "file")
            .change(0, true)
            .unwrap_err()
            .0;
        assert!(e.starts_with("secrets[0].type must be env or var"), "{e}");
        let e = secret(Some("create"), None, "MY VAR", "env")
            .change(0, true)
            .unwrap_err()
            .0;
        assert!(e.contains("not a valid environment variable name"), "{e}");
        assert!(
            secret(Some("create"), None, "my var", "var")
                .change(0, true)
                .is_ok()
        );
        let e = secret(Some("rotate"), Some(1), "T", "env")
            .change(0, false)
            .unwrap_err()
            .0;
        assert!(e.contains("must be create, update or delete"), "{e}");
        let e = secret(Some("delete"), Some(1), "T", "env")
            .change(0, true)
            .unwrap_err()
            .0;
        assert!(e.contains("a new environment has no secrets"), "{e}");
    }

    #[test]
    fn debug_output_hides_secrets() {
        let r = EnvironmentRequest {
            password: Some("VAULTPASS".into()),
            secrets: vec![secret(Some("create"), None, "T", "env")],
            ..Default::default()
        };
        let shown = format!("{r:?}");
        assert!(
            !shown.contains("VAULTPASS") && !shown.contains("s3cr3t"),
            "{shown}"
        );
        let change = r.secrets[0].change(0, true).unwrap();
        assert!(!format!("{change:?}").contains("s3cr3t"));
    }
}
