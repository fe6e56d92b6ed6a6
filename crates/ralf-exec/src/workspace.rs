//! A task's private directory `work_dir/tasks/<id>/` (mode 0700):
//!
//! - `repo/`: the checkout;
//! - `.ralf/`: secret files (keys, passwords, inventory, extra vars), each mode 0600, and the
//!   small helper scripts (0700) that hand them to git and ssh; removed when the task's run
//!   ends, whatever the outcome;
//! - `plan/`: a saved Terraform plan waiting for its confirmation;
//! - `home/`: the task's `HOME` in its sandbox;
//! - `report/`: where a catalog step's task may leave its report (`$RALF_STEP_REPORT`), read
//!   back when the task ends;
//! - `pgid`: the process group of the command running now and its start time (outside the
//!   sandbox's view, so the task cannot change it).
//!
//! The whole directory is removed when the task ends, except while a plan waits. A server or
//! runner that starts removes every task directory an earlier run left (a waiting plan does not
//! outlive its process), after killing the process group each one names
//! ([`remove_leftovers`]).

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
        make_private_dir(&root.join("home"))?;
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

    pub(crate) fn group_file(&self) -> PathBuf {
        self.root.join("pgid")
    }

    /// Makes `.ralf/` again after [`TaskDir::remove_secrets`] (kept when it is there), for
    /// credentials needed once more.
    pub(crate) fn make_secrets_dir(&self) -> io::Result<()> {
        match make_private_dir(&self.secrets) {
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
            other => other,
        }
    }

    /// The file a catalog step's task may write its report to (`$RALF_STEP_REPORT`).
    pub(crate) fn step_report_file(&self) -> PathBuf {
        self.root.join("report").join("step-report.json")
    }

    /// Makes the directory of [`TaskDir::step_report_file`] (kept when it is there: a plan
    /// applied after its confirmation).
    pub(crate) fn make_report_dir(&self) -> io::Result<()> {
        match make_private_dir(&self.root.join("report")) {
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
            other => other,
        }
    }

    /// The report the task left, if it left one: at most `max` bytes and one more (so a
    /// larger one shows it is too large), decoded lossily. What is not a regular file (a
    /// symbolic link to a file of the server's, say) is refused, not followed.
    pub(crate) fn read_step_report(&self, max: usize) -> Option<Result<Vec<u8>, String>> {
        use std::io::Read;
        let path = self.step_report_file();
        let file = match OpenOptions::new()
            .read(true)
            .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK)
            .open(&path)
        {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return None,
            Err(e) => return Some(Err(format!("cannot open it: {e}"))),
        };
        let read = || -> io::Result<Vec<u8>> {
            if !file.metadata()?.is_file() {
                return Err(io::Error::other("it is not a regular file"));
            }
            let mut bytes = Vec::new();
            file.take(max as u64 + 1).read_to_end(&mut bytes)?;
            Ok(bytes)
        };
        Some(read().map_err(|e| format!("cannot read it: {e}")))
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

/// What [`remove_leftovers`] found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Leftovers {
    /// Process groups still running, now killed.
    pub killed: usize,
    /// Task directories removed (with their secret files).
    pub removed: usize,
}

/// Ends what an earlier server or runner on this work directory left behind when it died: kills
/// the process group each task directory names (only if that process is still the one that was
/// recorded: same pid, same start time) and removes every task directory. Call it at start,
/// before any task runs; one work directory serves one server or runner.
pub fn remove_leftovers(config: &ExecConfig) -> io::Result<Leftovers> {
    let mut found = Leftovers::default();
    let tasks = config.work_dir.join("tasks");
    let entries = match std::fs::read_dir(&tasks) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(found),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let dir = entry?.path();
        if let Ok(text) = std::fs::read_to_string(dir.join("pgid"))
            && let Some((pid, start)) = text.trim().split_once(' ')
            && let (Ok(pid), Ok(start)) = (pid.parse::<u32>(), start.parse::<u64>())
            && pid > 1
            && crate::process::start_time(pid) == Some(start)
        {
            let group = nix::unistd::Pid::from_raw(pid as i32);
            if nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL).is_ok() {
                found.killed += 1;
            }
        }
        let removed = if dir.is_dir() {
            std::fs::remove_dir_all(&dir)
        } else {
            std::fs::remove_file(&dir)
        };
        match removed {
            Ok(()) => found.removed += 1,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(found)
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
    // A symbolic link where a file or directory is written goes first: the checkout is the
    // repository's (and the state the task's), and ralf may run as root.
    fn unlink_symlink(path: &Path) -> io::Result<()> {
        match std::fs::symlink_metadata(path) {
            Ok(m) if m.file_type().is_symlink() => std::fs::remove_file(path),
            _ => Ok(()),
        }
    }
    fn copy_dir(from: &Path, to: &Path) -> io::Result<()> {
        unlink_symlink(to)?;
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
        unlink_symlink(&tmp)?;
        std::fs::copy(from, &tmp)?;
        std::fs::rename(&tmp, to)
    }
    // Never through a symbolic link: the task made these files and could point one anywhere.
    let is = |p: &Path, dir: bool| {
        std::fs::symlink_metadata(p).is_ok_and(|m| if dir { m.is_dir() } else { m.is_file() })
    };
    make_private_dir_all(to)?;
    for name in ["terraform.tfstate", "terraform.tfstate.backup"] {
        let src = from.join(name);
        if is(&src, false) {
            copy_file(&src, &to.join(name))?;
        }
    }
    let workspaces = from.join("terraform.tfstate.d");
    if is(&workspaces, true) {
        copy_dir(&workspaces, &to.join("terraform.tfstate.d"))?;
    }
    Ok(())
}
