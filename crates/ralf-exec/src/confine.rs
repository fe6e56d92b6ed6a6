//! What a task names stays where it belongs: the paths of a job (working directory, playbook,
//! script, Terraform directory, inventory file) inside the task's checkout, and a repository's
//! URL out of ralf's own directories.
//!
//! A path is first checked as text (`ralf_core::validate`, the same check the API makes: not
//! absolute, no `..` above the root), then resolved in the checkout: the real path of what it
//! names, symbolic links followed, must still lie inside the checkout's real path. A path that
//! names nothing is left to the app's own "not found" message.
//!
//! A repository's URL that names a local path (`/srv/repo`, `file:///srv/repo`) is resolved the
//! same way (as far as it exists, symbolic links and `..` included) and must not lie inside the
//! work directory (the cached clones and the other tasks' checkouts) or any of
//! the paths the sandbox hides ([`SandboxSettings::hide`](crate::SandboxSettings::hide): the
//! server's data directory, its config file).

use std::path::{Component, Path, PathBuf};

use ralf_core::validate;

use crate::config::ExecConfig;
use crate::process::Abort;

/// The checkout's directory `path` (relative to the checkout's root; empty: the root itself),
/// which must exist inside the checkout. `field` names it in messages.
pub(crate) fn directory(
    checkout: &Path,
    path: Option<&str>,
    field: &str,
) -> Result<PathBuf, Abort> {
    let path = path.map(str::trim).unwrap_or_default();
    if path.is_empty() {
        return Ok(checkout.to_path_buf());
    }
    validate::inside_repository(field, path).map_err(|e| Abort::Failed(e.0))?;
    let dir = checkout.join(path);
    if !dir.is_dir() {
        return Err(Abort::Failed(format!(
            "{field} '{path}' not found in the repository"
        )));
    }
    resolved_inside(checkout, &dir, field, path)?;
    Ok(dir)
}

/// Checks that `path`, relative to the working directory `base` (itself `base_text` relative to
/// the checkout's root), stays inside the checkout, as text and, when it names something, through
/// its real path.
pub(crate) fn path(
    checkout: &Path,
    base: &Path,
    base_text: &str,
    path: &str,
    field: &str,
) -> Result<(), Abort> {
    validate::inside_repository_from(field, base_text, path).map_err(|e| Abort::Failed(e.0))?;
    let full = base.join(path);
    if full.exists() {
        resolved_inside(checkout, &full, field, path)?;
    }
    Ok(())
}

/// Fails when the real path of `full` (which exists) is not inside the checkout's.
fn resolved_inside(checkout: &Path, full: &Path, field: &str, shown: &str) -> Result<(), Abort> {
    let io = |e: std::io::Error| Abort::Failed(format!("cannot resolve {field} '{shown}': {e}"));
    let root = checkout.canonicalize().map_err(io)?;
    let real = full.canonicalize().map_err(io)?;
    if real.starts_with(&root) {
        Ok(())
    } else {
        Err(Abort::Failed(format!(
            "{field} '{shown}' leads outside the repository (through a symbolic link): refused"
        )))
    }
}

/// Refuses a repository URL that names a local path inside the work directory `work_dir` or one
/// of `private_dirs` (see the module's documentation). The message says why, without the
/// directories' paths. Used by the server's API when a repository is saved and by the executor
/// before each fetch.
pub fn check_repository_url(
    url: &str,
    work_dir: &Path,
    private_dirs: &[PathBuf],
) -> Result<(), String> {
    let url = url.trim();
    let Some(path) = local_path(url) else {
        return Ok(());
    };
    // The path as the file system resolves it, and as text first (`..` before links), each
    // also percent-decoded.
    let mut texts = vec![path.to_string()];
    texts.extend(percent_decoded(path));
    let candidates: Vec<PathBuf> = texts
        .iter()
        .flat_map(|t| [real_path(Path::new(t)), real_path(&lexical(Path::new(t)))])
        .collect();
    let private: Vec<PathBuf> = std::iter::once(work_dir)
        .chain(private_dirs.iter().map(PathBuf::as_path))
        // An empty path would contain every path.
        .filter(|dir| !dir.as_os_str().is_empty())
        .map(real_path)
        .collect();
    if candidates
        .iter()
        .any(|c| private.iter().any(|dir| c.starts_with(dir)))
    {
        return Err(
            "git_url points into ralf's own data or work directory (cached clones, other \
             tasks' checkouts, the database): refused"
                .into(),
        );
    }
    Ok(())
}

impl ExecConfig {
    /// [`check_repository_url`] with this machine's directories.
    pub fn check_repository_url(&self, url: &str) -> Result<(), String> {
        check_repository_url(url, &self.work_dir, &self.sandbox.hide)
    }
}

/// The local path a clone URL names: an absolute path, or the path of a `file://` URL.
fn local_path(url: &str) -> Option<&str> {
    if url.starts_with('/') {
        Some(url)
    } else {
        url.strip_prefix("file://")
    }
}

/// `%xx` sequences decoded, when there are any.
fn percent_decoded(text: &str) -> Option<String> {
    if !text.contains('%') {
        return None;
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    Some(String::from_utf8_lossy(&out).into_owned())
}

/// The real path of `path` as far as it exists (symbolic links and `..` resolved as the file
/// system does), the rest appended as text.
fn real_path(path: &Path) -> PathBuf {
    let mut real = PathBuf::from("/");
    for component in absolute(path).components() {
        match component {
            Component::ParentDir => {
                // `real` is a real path as far as it exists, so its parent is the real parent.
                real.pop();
            }
            Component::Normal(name) => {
                real.push(name);
                if let Ok(found) = real.canonicalize() {
                    real = found;
                }
            }
            Component::RootDir | Component::Prefix(_) | Component::CurDir => {}
        }
    }
    real
}

/// `path` with `.` and `..` applied as text (as some programs do before they open a path).
fn lexical(path: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for component in absolute(path).components() {
        match component {
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(name) => out.push(name),
            Component::RootDir | Component::Prefix(_) | Component::CurDir => {}
        }
    }
    out
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_into_private_directories_are_refused() {
        let top = tempfile::tempdir().unwrap();
        let top = top.path().canonicalize().unwrap();
        let (data, work, other) = (top.join("data"), top.join("data/work"), top.join("repos/r"));
        std::fs::create_dir_all(work.join("repos/repository-1.git")).unwrap();
        std::fs::create_dir_all(&other).unwrap();
        std::os::unix::fs::symlink(&data, top.join("repos/link")).unwrap();
        let private = [data.clone()];
        let check = |url: &str| check_repository_url(url, &work, &private);
        for refused in [
            format!("{}/repos/repository-1.git", work.display()),
            format!("file://{}/repos/repository-1.git", work.display()),
            format!("{}/repos/../data/work/repos/x", top.display()),
            format!("{}/repos/link/work", top.display()),
            format!("file://{}/repos/link", top.display()),
            format!("file://{}/%64ata/work", top.display()),
            format!("{}/not-yet/../data", top.display()),
            // `..` after a link: the file system goes up from the link's target, a lexical
            // reader from the link.
            format!("{}/repos/link/../data/work", top.display()),
        ] {
            assert!(check(&refused).is_err(), "{refused}");
        }
        for allowed in [
            other.display().to_string(),
            format!("file://{}", other.display()),
            format!("{}/data-other", top.display()),
            "https://example.com/data/work".into(),
            "git@host:/data/work".into(),
            "ssh://host/data".into(),
        ] {
            assert!(check(&allowed).is_ok(), "{allowed}");
        }
    }

    #[test]
    fn paths_leave_the_checkout_neither_as_text_nor_through_links() {
        let dir = tempfile::tempdir().unwrap();
        let checkout = dir.path().join("repo");
        std::fs::create_dir_all(checkout.join("deploy")).unwrap();
        std::fs::write(checkout.join("site.yml"), "").unwrap();
        std::fs::write(dir.path().join("secret"), "").unwrap();
        std::os::unix::fs::symlink("../secret", checkout.join("evil.yml")).unwrap();
        std::os::unix::fs::symlink("site.yml", checkout.join("alias.yml")).unwrap();
        std::os::unix::fs::symlink("..", checkout.join("up")).unwrap();
        let wd = checkout.join("deploy");
        let check = |p: &str| path(&checkout, &wd, "deploy", p, "playbook");
        assert!(check("../site.yml").is_ok());
        assert!(check("../alias.yml").is_ok());
        assert!(check("../missing.yml").is_ok(), "left to the app's message");
        let failure = |p: &str| match check(p) {
            Err(Abort::Failed(why)) => why,
            _ => panic!("{p} passed"),
        };
        assert!(failure("../evil.yml").contains("leads outside the repository"));
        assert!(failure("../up/secret").contains("leads outside the repository"));
        assert!(failure("../../secret").contains("must stay inside the repository"));
        assert!(failure("/etc/passwd").contains("not an absolute path"));
        assert!(directory(&checkout, Some("deploy"), "working_directory").is_ok());
        assert!(directory(&checkout, Some("up"), "working_directory").is_err());
        assert!(directory(&checkout, None, "working_directory").is_ok());
    }
}
