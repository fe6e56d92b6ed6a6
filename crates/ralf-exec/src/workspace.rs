//! A task's private directory `work_dir/tasks/<id>/` (mode 0700):
//!
//! - `repo/`: the checkout;
//! - `.ralf/`: secret files (keys, passwords, inventory, extra vars), each mode 0600, and the
//!   small helper scripts (0700) that hand them to git and ssh; removed when the task's run
//!   ends, whatever the outcome;
//! - `plan/`: a saved Terraform plan waiting for its confirmation.
//!
//! The whole directory is removed when the task ends, except while a plan waits.

use std::fs::{DirBuilder, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::config::ExecConfig;

/// `work_dir/tasks/<id>`.
pub(crate) fn task_root(config: &ExecConfig, task_id: i64) -> PathBuf {
    config.work_dir.join("tasks").join(task_id.to_string())
}

/// The task's directory; removes itself when dropped unless [`TaskDir::disarm`]ed.
pub(crate) struct TaskDir {
    pub root: PathBuf,
    pub secrets: PathBuf,
    armed: bool,
}

impl TaskDir {
    /// A fresh, empty directory for the task (a stale one from an earlier run is replaced).
    pub(crate) async fn create(config: &ExecConfig, task_id: i64) -> io::Result<TaskDir> {
        let root = task_root(config, task_id);
        if tokio::fs::symlink_metadata(&root).await.is_ok() {
            tokio::fs::remove_dir_all(&root).await?;
        }
        make_private_dir_all(root.parent().expect("tasks/<id> has a parent"))?;
        make_private_dir(&root)?;
        let secrets = root.join(".ralf");
        make_private_dir(&secrets)?;
        Ok(TaskDir {
            root,
            secrets,
            armed: true,
        })
    }

    /// An existing task directory (for applying its saved plan).
    pub(crate) fn existing(config: &ExecConfig, task_id: i64) -> TaskDir {
        let root = task_root(config, task_id);
        TaskDir {
            secrets: root.join(".ralf"),
            root,
            armed: true,
        }
    }

    pub(crate) fn checkout(&self) -> PathBuf {
        self.root.join("repo")
    }

    pub(crate) fn plan_dir(&self) -> PathBuf {
        self.root.join("plan")
    }

    /// Writes a secret file, mode 0600, in `.ralf/`.
    pub(crate) fn secret_file(&self, name: &str, content: &[u8]) -> io::Result<PathBuf> {
        self.write(name, content, 0o600)
    }

    /// Writes a helper script, mode 0700, in `.ralf/`.
    pub(crate) fn script(&self, name: &str, content: &str) -> io::Result<PathBuf> {
        self.write(name, content.as_bytes(), 0o700)
    }

    fn write(&self, name: &str, content: &[u8], mode: u32) -> io::Result<PathBuf> {
        let path = self.secrets.join(name);
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&path)?;
        f.write_all(content)?;
        f.sync_all()?;
        Ok(path)
    }

    /// Removes the secret files (the checkout stays).
    pub(crate) async fn remove_secrets(&self) {
        let _ = tokio::fs::remove_dir_all(&self.secrets).await;
    }

    /// Removes everything.
    pub(crate) async fn remove(mut self) {
        let _ = tokio::fs::remove_dir_all(&self.root).await;
        self.armed = false;
    }

    /// Keeps the directory (a plan waits in it).
    pub(crate) fn disarm(mut self) {
        self.armed = false;
    }
}

impl Drop for TaskDir {
    fn drop(&mut self) {
        // Only when the task's future was dropped half-way: remove the secrets at least.
        if self.armed {
            let _ = std::fs::remove_dir_all(&self.secrets);
            let _ = std::fs::remove_dir_all(&self.root);
        }
    }
}

pub(crate) fn make_private_dir(path: &Path) -> io::Result<()> {
    DirBuilder::new().mode(0o700).create(path)
}

/// Creates `path` and its missing parents, each mode 0700 (repositories, checkouts and state
/// are nobody else's business on this machine).
pub(crate) fn make_private_dir_all(path: &Path) -> io::Result<()> {
    DirBuilder::new().recursive(true).mode(0o700).create(path)
}

/// `key` as one file name: ASCII letters, digits and `-` kept, every other byte `_xx` (hex), so
/// distinct keys give distinct names and none is `..` or contains `/`.
pub(crate) fn safe_name(key: &str) -> String {
    let mut name = String::with_capacity(key.len() + 4);
    for b in key.bytes() {
        if b.is_ascii_alphanumeric() || b == b'-' {
            name.push(b as char);
        } else {
            name.push_str(&format!("_{b:02x}"));
        }
    }
    if name.is_empty() {
        name.push('_');
    }
    name
}

/// Copies Terraform's local state files (`terraform.tfstate`, its backup and the workspaces'
/// `terraform.tfstate.d/`) from one directory to another, replacing what is there.
pub(crate) fn copy_tf_state(from: &Path, to: &Path) -> io::Result<()> {
    fn copy_dir(from: &Path, to: &Path) -> io::Result<()> {
        make_private_dir_all(to)?;
        for entry in std::fs::read_dir(from)? {
            let entry = entry?;
            let target = to.join(entry.file_name());
            let kind = entry.file_type()?;
            if kind.is_dir() {
                copy_dir(&entry.path(), &target)?;
            } else if kind.is_file() {
                copy_file(&entry.path(), &target)?;
            }
        }
        Ok(())
    }
    fn copy_file(from: &Path, to: &Path) -> io::Result<()> {
        // Through a temporary name, so a reader never sees half a state file.
        let tmp = to.with_extension("ralf-tmp");
        std::fs::copy(from, &tmp)?;
        std::fs::rename(&tmp, to)
    }
    make_private_dir_all(to)?;
    for name in ["terraform.tfstate", "terraform.tfstate.backup"] {
        let src = from.join(name);
        if src.is_file() {
            copy_file(&src, &to.join(name))?;
        }
    }
    let workspaces = from.join("terraform.tfstate.d");
    if workspaces.is_dir() {
        copy_dir(&workspaces, &to.join("terraform.tfstate.d"))?;
    }
    Ok(())
}
