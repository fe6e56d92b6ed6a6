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

const URL_FORMS: &str =
    "https://, http://, ssh://, git://, file://, user@host:path or an absolute path";

/// A clone URL git understands: `https://`, `http://`, `ssh://`, `git://` or `file://` URLs,
/// scp-like `user@host:path`, or an absolute path on the server. Returned trimmed.
pub fn git_url(value: &str) -> Checked<String> {
    let url = value.trim();
    if url.is_empty() {
        return invalid("git_url must not be empty");
    }
    validate::long_text("git_url", url)?;
    if url.chars().any(char::is_whitespace) {
        return invalid("git_url must not contain spaces");
    }
    let looks_right = if let Some((scheme, rest)) = url.split_once("://") {
        match scheme {
            "https" | "http" | "ssh" | "git" => {
                let host = rest.split('/').next().unwrap_or_default();
                let host = host.rsplit('@').next().unwrap_or_default();
                !host.is_empty() && !host.starts_with(':')
            }
            "file" => rest.len() > 1 && rest.starts_with('/'),
            _ => false,
        }
    } else if url.starts_with('/') {
        true
    } else if let Some((user_host, path)) = url.split_once(':') {
        match user_host.split_once('@') {
            Some((user, host)) => {
                !user.is_empty() && !host.is_empty() && !user_host.contains('/') && !path.is_empty()
            }
            None => false,
        }
    } else {
        false
    };
    if looks_right {
        Ok(url.to_string())
    } else {
        invalid(format!("git_url {url:?} is not a git URL; use {URL_FORMS}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_what_git_clones() {
        for ok in [
            "https://github.com/semaphoreui/semaphore.git",
            "http://git.local/repo",
            "ssh://git@host:2222/repo.git",
            "git://host/repo",
            "git@github.com:owner/repo.git",
            "file:///srv/repo",
            "/srv/git/repo",
            "  https://example.com/x  ",
        ] {
            assert!(git_url(ok).is_ok(), "{ok}");
        }
        assert_eq!(git_url(" /srv/r ").unwrap(), "/srv/r");
    }

    #[test]
    fn refuses_the_rest_with_a_reason() {
        assert_eq!(git_url("").unwrap_err().0, "git_url must not be empty");
        assert!(
            git_url("https://exa mple.com")
                .unwrap_err()
                .0
                .contains("spaces")
        );
        for bad in [
            "github.com/owner/repo",
            "ftp://host/repo",
            "https://",
            "relative/path",
            "git@:repo",
            "@host:repo",
            "git@host:",
            "file://",
        ] {
            let e = git_url(bad).unwrap_err().0;
            assert!(e.contains("is not a git URL"), "{bad}: {e}");
        }
    }
}
