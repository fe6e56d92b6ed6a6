//! Repositories on the wire: where a project's playbooks come from.

use serde::{Deserialize, Serialize};

use crate::validate::{self, Checked, invalid};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[cfg_attr(feature = "sqlx", derive(sqlx::FromRow))]
pub struct Repository {
    pub id: i64,
    pub name: String,
    pub project_id: i64,
    pub git_url: String,
    pub git_branch: String,
    /// The key used to clone; `null` for none.
    pub ssh_key_id: Option<i64>,
}

/// `POST /api/project/{id}/repositories`, `PUT /api/project/{id}/repositories/{repository_id}`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RepositoryRequest {
    pub id: Option<i64>,
    #[serde(default)]
    pub name: String,
    pub project_id: Option<i64>,
    #[serde(default)]
    pub git_url: String,
    #[serde(default)]
    pub git_branch: String,
    pub ssh_key_id: Option<i64>,
}

impl RepositoryRequest {
    /// The key id sent, with `0` (what Go clients send for "none") read as absent.
    pub fn ssh_key(&self) -> Option<i64> {
        self.ssh_key_id.filter(|&id| id != 0)
    }
}

/// A clone URL as Semaphore stores it: any non-empty text, trimmed. Forms git cannot clone
/// (`git@host`, a relative path) are stored too; the task's clone then fails and says why in
/// its log. Refused, as unsafe: a leading `-` (git would read it as an option) and control
/// characters.
pub fn git_url(value: &str) -> Checked<String> {
    let url = value.trim();
    if url.is_empty() {
        return invalid("git_url must not be empty");
    }
    validate::long_text("git_url", url)?;
    if url.starts_with('-') {
        return invalid("git_url must not start with '-'");
    }
    if url.chars().any(char::is_control) {
        return invalid("git_url must not contain control characters");
    }
    Ok(url.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stores_what_semaphore_stores() {
        for ok in [
            "https://github.com/semaphoreui/semaphore.git",
            "ssh://git@host:2222/repo.git",
            "git@github.com:owner/repo.git",
            "git@host:x",
            "git@host",
            "file:///srv/repo",
            "/srv/git/repo",
            "relative/path",
            "https://exa mple.com",
        ] {
            assert!(git_url(ok).is_ok(), "{ok}");
        }
        assert_eq!(git_url(" /srv/r ").unwrap(), "/srv/r");
    }

    #[test]
    fn refuses_only_what_is_unsafe() {
        assert_eq!(git_url("").unwrap_err().0, "git_url must not be empty");
        assert!(
            git_url("--upload-pack=touch x")
                .unwrap_err()
                .0
                .contains("'-'")
        );
        assert!(git_url("https://h/\nx").is_err());
    }
}
