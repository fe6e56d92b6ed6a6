//! Helpers shared by the integration tests: real git repositories in temp dirs, a sink that
//! keeps every line, jobs and configs.
#![allow(dead_code)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ralf_exec::{App, CheckoutInfo, ExecConfig, Job, OutputLine, OutputSink, RepositorySource};
use tempfile::TempDir;

/// Runs git in `dir` and returns its stdout; panics when it fails.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(["-c", "user.name=Test", "-c", "user.email=test@example.com"])
        .args([
            "-c",
            "init.defaultBranch=main",
            "-c",
            "commit.gpgsign=false",
        ])
        .args(args)
        .current_dir(dir)
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A git repository in a temp dir, on branch `main`.
pub struct Repo {
    pub dir: TempDir,
}

impl Repo {
    pub fn new() -> Repo {
        let dir = tempfile::tempdir().unwrap();
        git(dir.path(), &["init", "--quiet"]);
        Repo { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn url(&self) -> String {
        format!("file://{}", self.path().display())
    }

    pub fn write(&self, path: &str, content: &str) -> &Repo {
        let full = self.path().join(path);
        std::fs::create_dir_all(full.parent().unwrap()).unwrap();
        std::fs::write(&full, content).unwrap();
        if path.ends_with(".sh") {
            std::fs::set_permissions(&full, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        self
    }

    /// Commits everything; returns the commit's hash.
    pub fn commit(&self, message: &str) -> String {
        git(self.path(), &["add", "-A"]);
        git(self.path(), &["commit", "--quiet", "-m", message]);
        git(self.path(), &["rev-parse", "HEAD"])
    }

    pub fn git(&self, args: &[&str]) -> String {
        git(self.path(), args)
    }

    pub fn source(&self) -> RepositorySource {
        RepositorySource {
            url: self.url(),
            branch: "main".into(),
            commit: None,
            auth: None,
            cache_key: "repo-1".into(),
        }
    }

    pub fn job(&self, task_id: i64, app: App, playbook: &str) -> Job {
        Job::new(task_id, app, self.source(), playbook)
    }
}

/// A repository with one script committed on `main`.
pub fn repo_with(path: &str, content: &str) -> Repo {
    let repo = Repo::new();
    repo.write(path, content);
    repo.commit("add script");
    repo
}

/// Keeps every line (and checkout) it is given.
#[derive(Clone, Default)]
pub struct Lines {
    lines: Arc<Mutex<Vec<OutputLine>>>,
    checkouts: Arc<Mutex<Vec<CheckoutInfo>>>,
}

impl OutputSink for Lines {
    fn line(&self, line: OutputLine) {
        self.lines.lock().unwrap().push(line);
    }
    fn checked_out(&self, info: &CheckoutInfo) {
        self.checkouts.lock().unwrap().push(info.clone());
    }
}

impl Lines {
    pub fn lines(&self) -> Vec<OutputLine> {
        self.lines.lock().unwrap().clone()
    }

    pub fn texts(&self) -> Vec<String> {
        self.lines().into_iter().map(|l| l.text).collect()
    }

    pub fn all(&self) -> String {
        self.texts().join("\n")
    }

    pub fn has(&self, text: &str) -> bool {
        self.texts().iter().any(|l| l == text)
    }

    pub fn checkouts(&self) -> Vec<CheckoutInfo> {
        self.checkouts.lock().unwrap().clone()
    }

    /// Waits until a line containing `needle` came, up to `limit`.
    pub async fn wait_for(&self, needle: &str, limit: Duration) -> String {
        wait_until(limit, || {
            let found = self.texts().into_iter().find(|l| l.contains(needle));
            found.ok_or_else(|| format!("no line containing {needle:?}; got:\n{}", self.all()))
        })
        .await
    }
}

/// Checks `check` every 20 ms until it answers `Ok`, and returns that; panics with the last
/// `Err` (what it sees instead) after `limit`.
pub async fn wait_until<T>(limit: Duration, mut check: impl FnMut() -> Result<T, String>) -> T {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match check() {
            Ok(value) => return value,
            Err(seen) => assert!(
                tokio::time::Instant::now() < deadline,
                "waited {limit:?} in vain: {seen}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until `path` exists, up to `limit`.
pub async fn wait_for_path(path: &Path, limit: Duration) {
    wait_until(limit, || match path.exists() {
        true => Ok(()),
        false => Err(format!("{} does not exist", path.display())),
    })
    .await
}

/// A work dir and its config (stop grace 1 s).
pub fn config() -> (TempDir, ExecConfig) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = ExecConfig::new(dir.path());
    config.stop_grace = Duration::from_secs(1);
    (dir, config)
}

/// True while a process with this pid exists (zombies count as gone).
pub fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            let state = stat.rsplit(')').next().unwrap_or("").trim_start();
            !state.starts_with('Z') && !state.starts_with('X')
        }
        Err(_) => false,
    }
}

/// The pids of live processes of this machine named `name` whose command line contains
/// `needle` (a task's processes cannot tell their pids outside their sandbox).
pub fn host_pids(name: &str, needle: &str) -> Vec<i32> {
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if comm.trim() == name && cmdline.contains(needle) && alive(pid) {
            pids.push(pid);
        }
    }
    pids
}

/// The process group of a live process.
pub fn group_of(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit(')')
        .next()?
        .split_whitespace()
        .nth(2)?
        .parse()
        .ok()
}

/// The pids of live processes whose process group is `pgid`.
pub fn group_members(pgid: i32) -> Vec<i32> {
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // pid (comm) state ppid pgrp ...
        let after = stat.rsplit(')').next().unwrap_or("");
        let fields: Vec<&str> = after.split_whitespace().collect();
        if fields.len() > 2
            && fields[2].parse::<i32>().ok() == Some(pgid)
            && !fields[0].starts_with('Z')
        {
            pids.push(pid);
        }
    }
    pids
}

/// The repository's Python environment (ansible-core, terraform): `$RALF_VENV` or
/// `<repo>/.venv`. Fails the test with a clear message when it is missing.
pub fn venv() -> PathBuf {
    let venv = std::env::var_os("RALF_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv"));
    assert!(
        venv.join("bin/python").is_file(),
        "the Python environment {} is missing: run scripts/python-env.sh (scripts/test does)",
        venv.display()
    );
    venv
}

/// `dir` put in front of the server's PATH.
pub fn path_with(dir: &Path) -> std::ffi::OsString {
    let mut paths = vec![dir.to_path_buf()];
    paths.extend(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    ));
    std::env::join_paths(paths).unwrap()
}

/// Lists what is left under `work_dir/tasks`.
pub fn task_dirs(work_dir: &Path) -> Vec<String> {
    match std::fs::read_dir(work_dir.join("tasks")) {
        Ok(rd) => rd
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => Vec::new(),
    }
}
