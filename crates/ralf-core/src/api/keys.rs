//! Access keys ("key store") on the wire, and their secret material. The material is only ever
//! written by clients: it is stored encrypted (see [`crate::secret`]) in Semaphore's serialized
//! form and never answered.

use serde::{Deserialize, Serialize};

use super::UnknownKind;
use crate::secret::{SecretCipher, SecretError};
use crate::validate::{self, Checked, invalid};

/// The type of an access key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum KeyKind {
    None,
    Ssh,
    LoginPassword,
    /// An environment secret: a value.
    String,
}

impl KeyKind {
    /// The types a client may create (environment secrets are the fourth).
    pub const CREATABLE: [KeyKind; 3] = [KeyKind::None, KeyKind::Ssh, KeyKind::LoginPassword];

    pub const fn as_str(self) -> &'static str {
        match self {
            KeyKind::None => "none",
            KeyKind::Ssh => "ssh",
            KeyKind::LoginPassword => "login_password",
            KeyKind::String => "string",
        }
    }

    pub fn parse(s: &str) -> Option<KeyKind> {
        [
            KeyKind::None,
            KeyKind::Ssh,
            KeyKind::LoginPassword,
            KeyKind::String,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

impl std::fmt::Display for KeyKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl TryFrom<String> for KeyKind {
    type Error = UnknownKind;

    fn try_from(value: String) -> Result<Self, UnknownKind> {
        KeyKind::parse(&value).ok_or(UnknownKind {
            what: "key type",
            value,
        })
    }
}

/// An access key as answered: never with its secret.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[cfg_attr(feature = "sqlx", derive(sqlx::FromRow))]
pub struct AccessKey {
    pub id: i64,
    pub name: String,
    /// `none`, `ssh` or `login_password`.
    #[serde(rename = "type")]
    #[cfg_attr(feature = "sqlx", sqlx(rename = "type", try_from = "String"))]
    pub kind: KeyKind,
    pub project_id: i64,
}

/// `POST /api/project/{id}/keys`, `PUT /api/project/{id}/keys/{key_id}`.
#[derive(Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AccessKeyRequest {
    pub id: Option<i64>,
    #[serde(default)]
    pub name: String,
    /// `none`, `ssh` or `login_password`.
    #[serde(default, rename = "type")]
    pub kind: String,
    pub project_id: Option<i64>,
    /// On update: replace the stored secret with the one sent (needed to change the type).
    #[serde(default)]
    pub override_secret: bool,
    pub login_password: Option<LoginPassword>,
    pub ssh: Option<SshKey>,
}

impl std::fmt::Debug for AccessKeyRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessKeyRequest")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("project_id", &self.project_id)
            .field("override_secret", &self.override_secret)
            .finish_non_exhaustive()
    }
}

/// The secret of a `login_password` key.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LoginPassword {
    #[serde(default)]
    pub login: String,
    #[serde(default)]
    pub password: String,
}

/// The secret of an `ssh` key.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SshKey {
    #[serde(default)]
    pub login: String,
    #[serde(default)]
    pub passphrase: String,
    #[serde(default)]
    pub private_key: String,
}

impl std::fmt::Debug for LoginPassword {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginPassword")
            .field("login", &self.login)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for SshKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SshKey")
            .field("login", &self.login)
            .finish_non_exhaustive()
    }
}

/// The decrypted material of a key, as the executor uses it.
#[derive(Clone, PartialEq, Eq)]
pub enum KeyMaterial {
    None,
    Ssh(SshKey),
    LoginPassword(LoginPassword),
    /// An environment secret (type `string`): the value itself.
    String(String),
}

impl std::fmt::Debug for KeyMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            KeyMaterial::None => "KeyMaterial::None",
            KeyMaterial::Ssh(_) => "KeyMaterial::Ssh(..)",
            KeyMaterial::LoginPassword(_) => "KeyMaterial::LoginPassword(..)",
            KeyMaterial::String(_) => "KeyMaterial::String(..)",
        })
    }
}

/// A stored secret that cannot be read back.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyMaterialError {
    #[error(transparent)]
    Decrypt(#[from] SecretError),
    #[error("the stored secret of a {0} key is malformed")]
    Malformed(KeyKind),
}

impl KeyMaterial {
    /// The key type this material belongs to.
    pub fn kind(&self) -> KeyKind {
        match self {
            KeyMaterial::None => KeyKind::None,
            KeyMaterial::Ssh(_) => KeyKind::Ssh,
            KeyMaterial::LoginPassword(_) => KeyKind::LoginPassword,
            KeyMaterial::String(_) => KeyKind::String,
        }
    }

    /// The plaintext Semaphore stores (before encryption): the JSON of the sub-object for ssh
    /// and login/password keys, the value for strings, nothing for `none`.
    pub fn to_plaintext(&self) -> Option<String> {
        match self {
            KeyMaterial::None => None,
            KeyMaterial::Ssh(ssh) => Some(to_json(ssh)),
            KeyMaterial::LoginPassword(lp) => Some(to_json(lp)),
            KeyMaterial::String(s) => Some(s.clone()),
        }
    }

    /// Reads the plaintext of a key of type `kind` back.
    pub fn from_plaintext(
        kind: KeyKind,
        plaintext: Option<&str>,
    ) -> Result<Self, KeyMaterialError> {
        let malformed = |_| KeyMaterialError::Malformed(kind);
        match kind {
            KeyKind::None => Ok(KeyMaterial::None),
            KeyKind::String => Ok(KeyMaterial::String(
                plaintext.unwrap_or_default().to_string(),
            )),
            KeyKind::Ssh => serde_json::from_str(plaintext.unwrap_or("{}"))
                .map(KeyMaterial::Ssh)
                .map_err(malformed),
            KeyKind::LoginPassword => serde_json::from_str(plaintext.unwrap_or("{}"))
                .map(KeyMaterial::LoginPassword)
                .map_err(malformed),
        }
    }

    /// Encrypts the material for the `secret` column (`None` for keys without a secret).
    pub fn seal(&self, cipher: &SecretCipher) -> Option<String> {
        self.to_plaintext().map(|plain| cipher.encrypt(&plain))
    }

    /// Decrypts the `secret` column of a key of type `kind`.
    pub fn open(
        cipher: &SecretCipher,
        kind: KeyKind,
        stored: Option<&str>,
    ) -> Result<Self, KeyMaterialError> {
        let plain = stored.map(|s| cipher.decrypt(s)).transpose()?;
        KeyMaterial::from_plaintext(kind, plain.as_deref())
    }
}

fn to_json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("a struct of strings serializes")
}

/// A key type a client may send.
pub fn check_key_type(kind: &str) -> Checked<KeyKind> {
    match KeyKind::parse(kind).filter(|k| KeyKind::CREATABLE.contains(k)) {
        Some(kind) => Ok(kind),
        None => {
            let names: Vec<&str> = KeyKind::CREATABLE.iter().map(|k| k.as_str()).collect();
            invalid(format!(
                "type must be one of {}, not {kind:?}",
                names.join(", ")
            ))
        }
    }
}

impl AccessKeyRequest {
    /// The secret material the request carries for its type, checked.
    pub fn material(&self) -> Checked<KeyMaterial> {
        match check_key_type(&self.kind)? {
            KeyKind::Ssh => {
                let ssh = self.ssh.clone().unwrap_or_default();
                if ssh.private_key.trim().is_empty() {
                    return invalid("an ssh key needs ssh.private_key");
                }
                validate::short_text("ssh.login", &ssh.login)?;
                validate::long_text("ssh.passphrase", &ssh.passphrase)?;
                validate::long_text("ssh.private_key", &ssh.private_key)?;
                Ok(KeyMaterial::Ssh(ssh))
            }
            KeyKind::LoginPassword => {
                let lp = self.login_password.clone().unwrap_or_default();
                if lp.password.is_empty() {
                    return invalid("a login_password key needs login_password.password");
                }
                validate::short_text("login_password.login", &lp.login)?;
                validate::long_text("login_password.password", &lp.password)?;
                Ok(KeyMaterial::LoginPassword(lp))
            }
            KeyKind::None | KeyKind::String => Ok(KeyMaterial::None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "hgmC7G6Gj5dKpbj4l5Y+e2DyQ3t7kp0ZpkvXkmMvmQ4=";

    fn request(kind: &str) -> AccessKeyRequest {
        AccessKeyRequest {
            name: "k".into(),
            kind: kind.into(),
            ..Default::default()
        }
    }

    #[test]
    fn serialized_as_semaphore_does() {
        let ssh = KeyMaterial::Ssh(SshKey {
            login: "root".into(),
            passphrase: "".into(),
            private_key: "PRIVATE".into(),
        });
        assert_eq!(
            ssh.to_plaintext().unwrap(),
            r#"{"login":"root","passphrase":"","private_key":"PRIVATE"}"#
        );
        let lp = KeyMaterial::LoginPassword(LoginPassword {
            login: "u".into(),
            password: "p".into(),
        });
        assert_eq!(
            lp.to_plaintext().unwrap(),
            r#"{"login":"u","password":"p"}"#
        );
        assert_eq!(KeyMaterial::None.to_plaintext(), None);
    }

    #[test]
    fn sealed_material_opens_again() {
        let cipher = SecretCipher::new(Some(KEY)).unwrap();
        let lp = KeyMaterial::LoginPassword(LoginPassword {
            login: "deploy".into(),
            password: "hunter2".into(),
        });
        let stored = lp.seal(&cipher).unwrap();
        assert!(!stored.contains("hunter2"));
        assert_eq!(
            KeyMaterial::open(&cipher, KeyKind::LoginPassword, Some(&stored)).unwrap(),
            lp
        );
        assert_eq!(
            KeyMaterial::open(&cipher, KeyKind::None, None).unwrap(),
            KeyMaterial::None
        );
        let s = KeyMaterial::String("v".into());
        assert_eq!(
            KeyMaterial::open(&cipher, KeyKind::String, s.seal(&cipher).as_deref()).unwrap(),
            s
        );
    }

    #[test]
    fn requests_are_checked_by_type() {
        assert_eq!(request("none").material().unwrap(), KeyMaterial::None);
        assert!(
            request("rsa")
                .material()
                .unwrap_err()
                .0
                .starts_with("type must be one of none, ssh, login_password")
        );
        assert!(
            request("ssh")
                .material()
                .unwrap_err()
                .0
                .contains("private_key")
        );
        assert!(
            request("login_password")
                .material()
                .unwrap_err()
                .0
                .contains("password")
        );
        let mut ok = request("ssh");
        ok.ssh = Some(SshKey {
            private_key: "-----BEGIN".into(),
            ..Default::default()
        });
        assert_eq!(ok.material().unwrap().kind(), KeyKind::Ssh);
    }

    #[test]
    fn debug_output_hides_secrets() {
        let mut r = request("ssh");
        r.ssh = Some(SshKey {
            private_key: "TOPSECRET".into(),
            passphrase: "TOPSECRET".into(),
            login: "root".into(),
        });
        r.login_password = Some(LoginPassword {
            login: "x".into(),
            password: "TOPSECRET".into(),
        });
        assert!(!format!("{r:?}").contains("TOPSECRET"));
        assert!(!format!("{:?}", r.ssh).contains("TOPSECRET"));
        assert!(!format!("{:?}", r.material()).contains("TOPSECRET"));
    }
}
