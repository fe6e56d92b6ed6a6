//! How this machine runs tasks: where their files go, how long a stop may take, which `PATH`.

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
    /// Directories of ralf's own besides `work_dir` (the server's data directory) that no
    /// repository URL may point into; `work_dir` is always refused.
    pub private_dirs: Vec<PathBuf>,
}

impl ExecConfig {
    /// Settings with a 5-second stop grace, the server's `PATH`, [`DEFAULT_PASS_ENV`] and no
    /// private directory but `work_dir`.
    pub fn new(work_dir: impl Into<PathBuf>) -> ExecConfig {
        ExecConfig {
            work_dir: work_dir.into(),
            stop_grace: Duration::from_secs(5),
            path_env: None,
            pass_env: DEFAULT_PASS_ENV.iter().map(|s| s.to_string()).collect(),
            private_dirs: Vec::new(),
        }
    }
}
