//! How this machine runs tasks: where their files go, how long a stop may take, which `PATH`,
//! and how the sandbox is set up.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

/// Names of the server's environment variables that a task's processes inherit (when set).
/// Every other variable of the server (its database URL, its secret key, ...) is withheld:
/// a task's processes start from an empty environment plus these, `PATH`, the app's own
/// variables and the job's `env`.
pub const DEFAULT_PASS_ENV: &[&str] = &[
    "HOME",
    "USER",
    "LOGNAME",
    "LANG",
    "LANGUAGE",
    "LC_ALL",
    "LC_CTYPE",
    "TZ",
    "TMPDIR",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "ANSIBLE_PYTHON_INTERPRETER",
];

/// The executor's settings, shared by all tasks of one server or runner.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExecConfig {
    /// Holds `repos/` (one cached bare clone per repository) and `tasks/<id>/` (each task's
    /// checkout and 0600 secret files, removed when the task ends).
    pub work_dir: PathBuf,
    /// How long a process group has between SIGTERM and SIGKILL on a stop or a timeout.
    pub stop_grace: Duration,
    /// The `PATH` that finds `git`, `bash`, `python3`, `ansible-playbook`, `terraform`, `tofu`
    /// and that the task's processes get; `None`: the server's own `PATH`.
    pub path_env: Option<OsString>,
    /// Names of the server's environment variables passed to the task's processes.
    pub pass_env: Vec<String>,
    /// The sandbox of the task's own programs (see `sandbox`).
    pub sandbox: SandboxSettings,
}

/// The uid and gid a task runs as when ralf runs as root: `nobody` and `nogroup` on Debian.
pub const DEFAULT_TASK_UID: u32 = 65534;
/// See [`DEFAULT_TASK_UID`].
pub const DEFAULT_TASK_GID: u32 = 65534;

/// How tasks are sandboxed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SandboxSettings {
    /// Run tasks without a sandbox when bubblewrap is missing or cannot create namespaces
    /// (off by default: such a machine refuses to run tasks).
    pub allow_unsandboxed: bool,
    /// The uid a task runs as: a real, unprivileged uid when ralf runs as root; the uid it
    /// appears as inside its user namespace otherwise.
    pub uid: u32,
    /// The gid a task runs as (like `uid`).
    pub gid: u32,
    /// Paths of the server that tasks must not see, besides the work directory, `/tmp` and
    /// the server user's home, which are always hidden: its data directory, its config file.
    pub hide: Vec<PathBuf>,
    /// Directories every task may read and write, bound at their own paths (none by default;
    /// not a server setting: for embedding, and for tests that watch tasks run side by side).
    pub shared: Vec<PathBuf>,
    /// bubblewrap: a name looked up in the system's directories (`/usr/bin`, ...; never the
    /// task's `PATH`) or an absolute path.
    pub bwrap: PathBuf,
}

impl Default for SandboxSettings {
    fn default() -> SandboxSettings {
        SandboxSettings {
            allow_unsandboxed: false,
            uid: DEFAULT_TASK_UID,
            gid: DEFAULT_TASK_GID,
            hide: Vec::new(),
            shared: Vec::new(),
            bwrap: "bwrap".into(),
        }
    }
}

impl ExecConfig {
    /// Settings with a 5-second stop grace, the server's `PATH`, [`DEFAULT_PASS_ENV`] and the
    /// default sandbox (required; tasks run as uid and gid 65534).
    pub fn new(work_dir: impl Into<PathBuf>) -> ExecConfig {
        ExecConfig {
            work_dir: work_dir.into(),
            stop_grace: Duration::from_secs(5),
            path_env: None,
            pass_env: DEFAULT_PASS_ENV.iter().map(|s| s.to_string()).collect(),
            sandbox: SandboxSettings::default(),
        }
    }
}
