//! The sandbox of a task's own programs (the app — bash, python3, ansible-playbook, terraform,
//! tofu — and everything they start): a bubblewrap (`bwrap`) command line around each of them.
//!
//! Inside, a task's processes have their own mount, PID, IPC and UTS namespaces, die with ralf
//! (`--die-with-parent`; the PID namespace ends with its first process) and cannot reach
//! ralf's terminal (`--new-session`). They see the system read-only, a fresh `/proc` and
//! `/dev`, an empty private `/tmp`, and of ralf only their own task's directories (writable:
//! the checkout, the task's secret files, its Terraform plan, a private `HOME`) and, read-only,
//! the objects of their repository's cache that the checkout's `.git` borrows. Hidden under
//! empty file systems: the work directory (other tasks, the cached repositories, kept Terraform
//! state), the server user's home, `/tmp`, and whatever the server adds ([`SandboxSettings::hide`]:
//! its data directory, its config file). The `PATH` directories that lie in a hidden place are
//! bound back read-only (with the Python installation a virtual environment on `PATH` was made
//! from, and the root of a version manager whose `shims` are on `PATH`), so the programs ralf
//! found are there.
//!
//! The task runs as an unprivileged user: when ralf runs as root, bubblewrap (privileged, no
//! user namespace) sets the sandbox up and `setpriv` drops to [`SandboxSettings::uid`]/`gid`
//! before the program starts, the task's directories handed over to that user; otherwise a
//! user namespace maps ralf's user to that uid inside. The network is the host's (playbooks
//! reach their hosts).
//!
//! Why bubblewrap and not namespaces set up by ralf itself: the workspace forbids `unsafe`, and
//! entering namespaces between `fork` and `exec` needs it (`pre_exec`); bubblewrap is a small,
//! audited tool that does exactly this for Flatpak, and a task's command line shows what it
//! binds.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{LazyLock, Mutex};

use crate::config::{ExecConfig, SandboxSettings};
use crate::process::which;

/// Where bubblewrap and `setpriv` are looked for (never on the task's `PATH`).
const SYSTEM_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// How this machine runs the tasks' programs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Isolation {
    /// In a sandbox.
    Sandboxed(Tools),
    /// Without one, because the settings allow it; `why` says why there is none.
    Unsandboxed { why: String },
    /// Not at all: there is no sandbox and the settings do not allow running without one.
    Refused { why: String },
}

/// The programs that make the sandbox.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tools {
    bwrap: PathBuf,
    /// When ralf runs as root: drops to the task's user inside the sandbox.
    setpriv: Option<PathBuf>,
}

impl Isolation {
    /// Decides, checking once per process (and bubblewrap path) that bubblewrap can create the
    /// namespaces a task needs.
    pub fn of(config: &ExecConfig) -> Isolation {
        static PROBES: LazyLock<Mutex<HashMap<PathBuf, Result<Tools, String>>>> =
            LazyLock::new(Default::default);
        let settings = &config.sandbox;
        let probed = PROBES
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(settings.bwrap.clone())
            .or_insert_with(|| probe(settings))
            .clone();
        match probed {
            Ok(tools) => Isolation::Sandboxed(tools),
            Err(why) if settings.allow_unsandboxed => Isolation::Unsandboxed { why },
            Err(why) => Isolation::Refused { why },
        }
    }

    /// One sentence for the log at start: which mode tasks run in.
    pub fn describe(&self, config: &ExecConfig) -> String {
        let s = &config.sandbox;
        match self {
            Isolation::Sandboxed(tools) if tools.setpriv.is_some() => format!(
                "tasks run sandboxed (bubblewrap {}) as uid {} gid {}",
                tools.bwrap.display(),
                s.uid,
                s.gid
            ),
            Isolation::Sandboxed(tools) => format!(
                "tasks run sandboxed (bubblewrap {}) in a user namespace, as uid {} gid {} inside",
                tools.bwrap.display(),
                s.uid,
                s.gid
            ),
            Isolation::Unsandboxed { why } => format!(
                "tasks run WITHOUT a sandbox, as this server's user (allow_unsandboxed_tasks is \
                 set): {why}"
            ),
            Isolation::Refused { why } => format!(
                "tasks cannot run: {why}; install bubblewrap and allow user namespaces, or set \
                 allow_unsandboxed_tasks to run tasks without a sandbox"
            ),
        }
    }
}

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Finds bubblewrap (and `setpriv` as root) and runs `true` in a sandbox like a task's.
fn probe(settings: &SandboxSettings) -> Result<Tools, String> {
    let system = OsStr::new(SYSTEM_PATH);
    let bwrap = which(&settings.bwrap.to_string_lossy(), system).ok_or_else(|| {
        format!(
            "bubblewrap ({}) is not installed (Debian/Ubuntu: apt-get install bubblewrap)",
            settings.bwrap.display()
        )
    })?;
    let setpriv = if is_root() {
        Some(which("setpriv", system).ok_or(
            "setpriv is not installed (util-linux), and ralf runs as root: it is needed to run \
             tasks as an unprivileged user",
        )?)
    } else {
        None
    };
    let tools = Tools { bwrap, setpriv };
    let truth = which("true", system).unwrap_or_else(|| "/bin/true".into());
    let mut args = namespace_args(&tools, settings);
    args.extend(
        [
            "--ro-bind",
            "/",
            "/",
            "--proc",
            "/proc",
            "--dev",
            "/dev",
            "--",
        ]
        .map(Into::into),
    );
    args.extend(user_args(&tools, settings));
    args.push(truth.into());
    let out = std::process::Command::new(&tools.bwrap)
        .args(&args)
        .env_clear()
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| format!("cannot start {}: {e}", tools.bwrap.display()))?;
    if out.status.success() {
        Ok(tools)
    } else {
        let said = String::from_utf8_lossy(&out.stderr).trim().to_string();
        Err(format!(
            "bubblewrap cannot create a sandbox here ({}{}{})",
            crate::process::Status::from_exit(out.status).describe(),
            if said.is_empty() { "" } else { ": " },
            said
        ))
    }
}

fn namespace_args(tools: &Tools, settings: &SandboxSettings) -> Vec<OsString> {
    let mut args: Vec<OsString> = [
        "--die-with-parent",
        "--new-session",
        "--unshare-pid",
        "--unshare-ipc",
        "--unshare-uts",
    ]
    .map(Into::into)
    .to_vec();
    if tools.setpriv.is_none() {
        args.extend(["--unshare-user", "--uid"].map(OsString::from));
        args.push(settings.uid.to_string().into());
        args.push("--gid".into());
        args.push(settings.gid.to_string().into());
    }
    args
}

/// `setpriv ... --` when ralf runs as root: the program runs as the task's user.
fn user_args(tools: &Tools, settings: &SandboxSettings) -> Vec<OsString> {
    match &tools.setpriv {
        None => Vec::new(),
        Some(setpriv) => vec![
            setpriv.into(),
            format!("--reuid={}", settings.uid).into(),
            format!("--regid={}", settings.gid).into(),
            "--clear-groups".into(),
            "--no-new-privs".into(),
            "--".into(),
        ],
    }
}

/// What one task's programs see of ralf.
#[derive(Clone, Debug)]
pub(crate) struct View {
    /// The task's directory (`work_dir/tasks/<id>`); only its subdirectories are bound in.
    pub task_root: PathBuf,
    /// The objects of the repository's cache, which the checkout's `.git` borrows.
    pub cache_objects: PathBuf,
}

impl View {
    /// The task's private `HOME`.
    pub(crate) fn home(&self) -> PathBuf {
        self.task_root.join("home")
    }

    /// The sandbox's `/etc/passwd` (`tasks/<id>/passwd`, written once): the system's, with the
    /// task's private `HOME` as the home of the task's uid and of the server's user name (which
    /// tasks keep in `USER`: it stays Ansible's default remote user), so tools that look their
    /// home up (Ansible's `~user` on a local connection, ssh) find a writable one. `None` when
    /// it cannot be written (the system's stays).
    fn passwd(&self, settings: &SandboxSettings) -> Option<PathBuf> {
        let file = self.task_root.join("passwd");
        if file.is_file() {
            return Some(file);
        }
        let system = std::fs::read_to_string("/etc/passwd").ok()?;
        let home = self.home();
        let home = home.to_str()?;
        let user = std::env::var("USER")
            .or_else(|_| std::env::var("LOGNAME"))
            .ok();
        let uid = settings.uid.to_string();
        let mut has_uid = false;
        let mut text = String::with_capacity(system.len() + 128);
        for line in system.lines() {
            let mut fields: Vec<&str> = line.split(':').collect();
            if fields.len() == 7 && (fields[2] == uid || Some(fields[0]) == user.as_deref()) {
                has_uid |= fields[2] == uid;
                fields[5] = home;
                text.push_str(&fields.join(":"));
            } else {
                text.push_str(line);
            }
            text.push('\n');
        }
        if !has_uid {
            text.push_str(&format!(
                "ralf-task:x:{uid}:{}:ralf task:{home}:/bin/sh\n",
                settings.gid
            ));
        }
        std::fs::write(&file, text).ok()?;
        Some(file)
    }

    /// The task's directories bound writable (those that exist).
    fn writable(&self) -> impl Iterator<Item = PathBuf> + '_ {
        ["repo", ".ralf", "plan", "home", "report"]
            .into_iter()
            .map(|d| self.task_root.join(d))
            .filter(|d| d.is_dir())
    }
}

/// A sandbox ready to wrap a task's commands.
pub(crate) struct Sandbox {
    pub tools: Tools,
    pub view: View,
}

impl Sandbox {
    /// The bubblewrap command line that runs `program args` in `cwd` inside the sandbox, with
    /// `path` as the task's `PATH`.
    pub(crate) fn wrap(
        &self,
        config: &ExecConfig,
        path: &OsStr,
        cwd: &Path,
        program: &Path,
        args: &[OsString],
    ) -> (PathBuf, Vec<OsString>) {
        let settings = &config.sandbox;
        let mut out = namespace_args(&self.tools, settings);
        let mut push = |items: &[&OsStr]| out.extend(items.iter().map(|s| s.to_os_string()));
        push(&["--ro-bind".as_ref(), "/".as_ref(), "/".as_ref()]);
        push(&["--dev".as_ref(), "/dev".as_ref()]);
        // Python's multiprocessing (ansible) needs a writable /dev/shm.
        push(&[
            "--perms".as_ref(),
            "1777".as_ref(),
            "--tmpfs".as_ref(),
            "/dev/shm".as_ref(),
        ]);
        push(&["--proc".as_ref(), "/proc".as_ref()]);
        let hidden = hidden_paths(config);
        // Every mount into a hidden place gets its parents made first, traversable by the
        // task's user (bubblewrap would make them 0700, root's).
        let mut made: Vec<PathBuf> = Vec::new();
        let mut mount =
            |out: &mut Vec<OsString>, how: &[&str], source: Option<&Path>, dest: &Path| {
                let top = hidden
                    .iter()
                    .filter(|h| dest.starts_with(h) && dest != h.as_path())
                    .max_by_key(|h| h.components().count());
                if let Some(top) = top {
                    let mut parents: Vec<&Path> = dest
                        .ancestors()
                        .skip(1)
                        .take_while(|a| *a != top.as_path())
                        .collect();
                    parents.reverse();
                    for parent in parents {
                        if !made.iter().any(|m| m == parent) {
                            made.push(parent.to_path_buf());
                            out.extend(["--perms", "0755", "--dir"].map(OsString::from));
                            out.push(parent.into());
                        }
                    }
                }
                out.extend(how.iter().map(OsString::from));
                if let Some(source) = source {
                    out.push(source.into());
                }
                out.push(dest.into());
            };
        for place in &hidden {
            if place == Path::new("/tmp") {
                mount(&mut out, &["--perms", "1777", "--tmpfs"], None, place);
            } else if place.is_dir() {
                mount(&mut out, &["--tmpfs"], None, place);
            } else {
                mount(
                    &mut out,
                    &["--ro-bind"],
                    Some(Path::new("/dev/null")),
                    place,
                );
            }
        }
        for dir in path_binds(path, &hidden) {
            mount(&mut out, &["--ro-bind"], Some(&dir), &dir);
        }
        if self.view.cache_objects.is_dir() {
            let objects = &self.view.cache_objects;
            mount(&mut out, &["--ro-bind"], Some(objects), objects);
        }
        for dir in self.view.writable() {
            mount(&mut out, &["--bind"], Some(&dir), &dir);
        }
        for dir in settings.shared.iter().filter(|d| d.is_dir()) {
            mount(&mut out, &["--bind"], Some(dir), dir);
        }
        if let Some(passwd) = self.view.passwd(settings) {
            out.extend(["--ro-bind".into(), passwd.into(), "/etc/passwd".into()]);
        }
        out.extend(["--chdir".into(), cwd.into(), "--".into()]);
        out.extend(user_args(&self.tools, settings));
        out.push(program.into());
        out.extend(args.iter().cloned());
        (self.tools.bwrap.clone(), out)
    }

    /// The uid and gid the task's files must belong to: when ralf runs as root, the task's
    /// (inside a user namespace, ralf's own files are already the task's).
    pub(crate) fn owner(&self, config: &ExecConfig) -> Option<(u32, u32)> {
        self.tools
            .setpriv
            .as_ref()
            .map(|_| (config.sandbox.uid, config.sandbox.gid))
    }

    /// When ralf runs as root: gives the task's directories to the task's user (no process of
    /// the task runs meanwhile, so nothing in them moves under the walk).
    pub(crate) fn hand_over(&self, config: &ExecConfig) -> std::io::Result<()> {
        if let Some((uid, gid)) = self.owner(config) {
            for dir in self.view.writable() {
                give_to(&dir, uid, gid)?;
            }
        }
        Ok(())
    }
}

/// Changes the owner of `path` and everything under it that is not `uid`:`gid` yet, never
/// following a symbolic link.
pub(crate) fn give_to(path: &Path, uid: u32, gid: u32) -> std::io::Result<()> {
    let meta = std::fs::symlink_metadata(path)?;
    if meta.uid() != uid || meta.gid() != gid {
        std::os::unix::fs::lchown(path, Some(uid), Some(gid))?;
    }
    if meta.is_dir() {
        for entry in std::fs::read_dir(path)? {
            give_to(&entry?.path(), uid, gid)?;
        }
    }
    Ok(())
}

/// What the sandbox hides, outermost first: `/tmp`, the server user's home, the work directory
/// and the configured paths (those that exist).
fn hidden_paths(config: &ExecConfig) -> Vec<PathBuf> {
    let mut hidden: Vec<PathBuf> = vec!["/tmp".into()];
    if let Some(home) = std::env::var_os("HOME").map(PathBuf::from)
        && home.is_absolute()
    {
        hidden.push(home);
    }
    hidden.push(config.work_dir.clone());
    hidden.extend(config.sandbox.hide.iter().cloned());
    let mut hidden: Vec<PathBuf> = hidden
        .into_iter()
        .filter_map(|p| std::path::absolute(p).ok())
        .filter(|p| p.parent().is_some() && p.symlink_metadata().is_ok())
        .collect();
    hidden.sort_by_key(|p| p.components().count());
    hidden.dedup();
    hidden
}

/// The `PATH` directories in hidden places; for a virtual environment on `PATH`, the
/// environment and the Python it was made from; for a version manager's `shims`, its root.
fn path_binds(path: &OsStr, hidden: &[PathBuf]) -> Vec<PathBuf> {
    let is_hidden = |p: &Path| hidden.iter().any(|h| p.starts_with(h));
    let mut binds: Vec<PathBuf> = Vec::new();
    let mut add = |p: PathBuf| {
        if p.is_dir() && is_hidden(&p) && !binds.iter().any(|b| p.starts_with(b)) {
            binds.retain(|b| !b.starts_with(&p));
            binds.push(p);
        }
    };
    for dir in std::env::split_paths(path).filter(|d| d.is_absolute()) {
        if let Some(venv) = dir.parent()
            && let Ok(cfg) = std::fs::read_to_string(venv.join("pyvenv.cfg"))
        {
            add(venv.to_path_buf());
            let home = cfg.lines().find_map(|l| {
                let (key, value) = l.split_once('=')?;
                (key.trim() == "home").then(|| PathBuf::from(value.trim()))
            });
            if let Some(prefix) = home.as_deref().and_then(Path::parent) {
                add(prefix.to_path_buf());
            }
        }
        // A version manager's shims (pyenv, rbenv, nodenv) run the manager from its root.
        if dir.file_name() == Some(OsStr::new("shims"))
            && let Some(root) = dir.parent()
            && root.join("libexec").is_dir()
        {
            add(root.to_path_buf());
        }
        add(dir);
    }
    binds
}

/// The outside pid of the first process inside the sandbox that `bwrap` (pid `outer`) started:
/// it leads the session of the task's programs, so its group is theirs.
pub(crate) fn inner_group(outer: u32) -> Option<i32> {
    let children = std::fs::read_to_string(format!("/proc/{outer}/task/{outer}/children")).ok()?;
    children.split_whitespace().next()?.parse().ok()
}

/// An exit code of bubblewrap above 128 is the signal that ended the program inside (as shells
/// report it).
pub(crate) fn signal_of(code: i32) -> Option<i32> {
    (129..=128 + 64).contains(&code).then(|| code - 128)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_directories_in_hidden_places_are_bound_back() {
        let root = tempfile::tempdir().unwrap();
        let home = root.path().join("home");
        let venv = root.path().join("venv");
        let python = home.join(".pyenv/versions/3.11/bin");
        std::fs::create_dir_all(&python).unwrap();
        std::fs::create_dir_all(venv.join("bin")).unwrap();
        std::fs::create_dir_all(home.join("tools/bin")).unwrap();
        std::fs::write(
            venv.join("pyvenv.cfg"),
            format!("home = {}\nversion = 3.11\n", python.display()),
        )
        .unwrap();
        let path =
            std::env::join_paths([venv.join("bin"), home.join("tools/bin"), "/usr/bin".into()])
                .unwrap();
        let binds = path_binds(&path, &[root.path().to_path_buf()]);
        assert_eq!(
            binds,
            vec![
                venv.clone(),
                home.join(".pyenv/versions/3.11"),
                home.join("tools/bin")
            ]
        );
    }

    #[test]
    fn exit_codes_above_128_are_signals() {
        assert_eq!(signal_of(143), Some(15));
        assert_eq!(signal_of(128), None);
        assert_eq!(signal_of(3), None);
    }
}
