//! The server's settings, already resolved from defaults, file, environment and flags by the
//! binary's configuration loader; this crate never reads the environment itself.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

pub use ipnet::IpNet;

pub use ralf_store::DatabaseSettings;

/// The first admin, created at startup when no user with that login exists yet.
#[derive(Clone, PartialEq, Eq)]
pub struct AdminBootstrap {
    pub login: String,
    pub password: String,
    pub name: String,
    pub email: String,
}

impl std::fmt::Debug for AdminBootstrap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminBootstrap")
            .field("login", &self.login)
            .field("password", &"**********")
            .field("name", &self.name)
            .field("email", &self.email)
            .finish()
    }
}

#[derive(Clone)]
pub struct Settings {
    pub listen: SocketAddr,
    pub database: DatabaseSettings,
    /// Base64 of 32 bytes (Semaphore's `access_key_encryption`); `None` stores secrets
    /// base64-encoded only, as Semaphore does, and the server warns at startup.
    pub access_key_encryption: Option<String>,
    /// Public URL of the web UI (Semaphore's `web_host`), reported by `/api/info`.
    pub web_host: String,
    /// Global cap on running tasks (Semaphore's `max_parallel_tasks`, default 10; 0 = no cap).
    pub max_parallel_tasks: u32,
    /// Whether users without the admin flag may create projects.
    pub non_admin_can_create_project: bool,
    /// Every task goes to a remote runner; this server runs none itself (Semaphore's
    /// `use_remote_runner`, reported by `/api/info`; default `false`). Tasks whose template
    /// requires runner tags go to runners anyway.
    pub use_remote_runner: bool,
    pub admin: Option<AdminBootstrap>,
    /// Where ralf keeps its files (0700): the SQLite database unless another is configured,
    /// the generated access key, and `work`. Prepared by the binary before [`crate::start`].
    pub data_dir: PathBuf,
    /// Where tasks run: cached clones of repositories and each task's private checkout
    /// (`<data_dir>/work` by default).
    pub work_dir: PathBuf,
    /// The `PATH` tasks run with, on which their programs (`git`, `bash`, `python3`,
    /// `ansible-playbook`, `terraform`, `tofu`) are found; `None` (the default): the server's
    /// own `PATH`.
    pub exec_path: Option<std::ffi::OsString>,
    /// The tasks' sandbox: required unless `allow_unsandboxed`; the uid/gid tasks run as; what
    /// of the server they must not see.
    pub sandbox: ralf_exec::SandboxSettings,
    /// Reverse proxies (addresses or networks) whose `X-Forwarded-For` and
    /// `X-Forwarded-Proto` are believed; from anyone else those headers are ignored.
    pub trusted_proxies: Vec<IpNet>,
    /// How long a login session lasts at most, however often it is used (default 7 days).
    pub session_lifetime: Duration,
    /// How long a connection may take to send a request's headers, and may stay idle between
    /// requests, before it is closed (default 30 s). WebSockets and responses being sent are
    /// not affected.
    pub http_idle_timeout: Duration,
    /// The file holding the generated password of the first admin, if ralf generated one;
    /// it is removed once that admin has changed the password.
    pub initial_admin_password_file: Option<PathBuf>,
    /// The catalog's advisor (docs/catalog.md), when one is configured.
    pub advisor: Option<AdvisorSettings>,
    /// Where the news of tasks' ends goes (docs/notifications.md).
    pub notify: crate::notify::NotifySettings,
    /// Where `/metrics` is served: on an address of its own, or on the public listener
    /// behind a token, or not at all.
    pub metrics: MetricsSettings,
    /// The log's format and level; read by the binary, which sets up logging.
    pub log: LogSettings,
}

/// How the server logs (docs/operations.md, "Logs").
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LogSettings {
    pub format: LogFormat,
    /// Which messages, as `tracing`'s directives (`info,ralf_server::dispatch=debug`);
    /// `None`: ralf's default.
    pub level: Option<String>,
}

impl LogSettings {
    /// The default directives: ralf's own messages from `info`, its libraries' from `warn`.
    pub const DEFAULT_LEVEL: &str = "info,sqlx=warn,tower_http=warn";
}

/// One line of text per message for people, or one JSON object per line for log collectors.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LogFormat {
    #[default]
    Human,
    Json,
}

/// Where Prometheus reads `/metrics` (docs/operations.md, "Metrics").
#[derive(Clone, Default, PartialEq, Eq)]
pub struct MetricsSettings {
    /// An address of its own, without authentication (for a network only Prometheus
    /// reaches); `None`: no second listener.
    pub listen: Option<SocketAddr>,
    /// A bearer token that opens `/metrics` on the public listener; `None`: the public
    /// listener does not serve metrics.
    pub token: Option<String>,
}

impl std::fmt::Debug for MetricsSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsSettings")
            .field("listen", &self.listen)
            .field("token", &self.token.as_ref().map(|_| "**********"))
            .finish()
    }
}

/// An OpenAI-compatible chat endpoint the catalog asks for advice; never authoritative.
#[derive(Clone, PartialEq, Eq)]
pub struct AdvisorSettings {
    /// The base URL before `/chat/completions` (e.g. `http://127.0.0.1:11434/v1`).
    pub url: String,
    pub model: String,
    /// Sent as a bearer token; never logged or shown.
    pub api_key: Option<String>,
    /// How long one question may take before ralf goes on without its answer.
    pub timeout: Duration,
}

/// The default of [`AdvisorSettings::timeout`].
pub const DEFAULT_ADVISOR_TIMEOUT: Duration = Duration::from_secs(10);

impl std::fmt::Debug for AdvisorSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdvisorSettings")
            .field("url", &self.url)
            .field("model", &self.model)
            .field("api_key", &self.api_key.as_ref().map(|_| "**********"))
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// The default of [`Settings::session_lifetime`].
pub const DEFAULT_SESSION_LIFETIME: Duration = Duration::from_secs(7 * 24 * 3600);
/// The default of [`Settings::http_idle_timeout`].
pub const DEFAULT_HTTP_IDLE_TIMEOUT: Duration = Duration::from_secs(30);

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("listen", &self.listen)
            .field("database", &self.database.redacted())
            .field(
                "access_key_encryption",
                &self.access_key_encryption.as_ref().map(|_| "**********"),
            )
            .field("web_host", &self.web_host)
            .field("max_parallel_tasks", &self.max_parallel_tasks)
            .field(
                "non_admin_can_create_project",
                &self.non_admin_can_create_project,
            )
            .field("use_remote_runner", &self.use_remote_runner)
            .field("admin", &self.admin)
            .field("data_dir", &self.data_dir)
            .field("work_dir", &self.work_dir)
            .field("exec_path", &self.exec_path)
            .field("sandbox", &self.sandbox)
            .field("trusted_proxies", &self.trusted_proxies)
            .field("session_lifetime", &self.session_lifetime)
            .field("http_idle_timeout", &self.http_idle_timeout)
            .field(
                "initial_admin_password_file",
                &self.initial_admin_password_file,
            )
            .field("advisor", &self.advisor)
            .field("notify", &self.notify)
            .field("metrics", &self.metrics)
            .field("log", &self.log)
            .finish()
    }
}

impl Settings {
    /// Refuses a `git_url` that points into ralf's work or data directory.
    pub fn check_repository_url(&self, url: &str) -> Result<(), String> {
        ralf_exec::check_repository_url(url, &self.work_dir, &self.sandbox.hide)
    }

    /// Settings for tests and embedding: SQLite in `path`, tasks in `work` beside it, port 0 on
    /// loopback, no admin.
    pub fn for_sqlite(path: PathBuf) -> Self {
        let data_dir = path
            .parent()
            .map(|p| p.to_path_buf())
            .unwrap_or_else(|| ".".into());
        // The database's directory, when the path has one ("ralf.db" alone has none).
        let hide = path
            .parent()
            .filter(|dir| !dir.as_os_str().is_empty())
            .map(|dir| dir.to_path_buf())
            .into_iter()
            .collect();
        Settings {
            work_dir: data_dir.join("work"),
            data_dir,
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            database: DatabaseSettings::Sqlite { path },
            access_key_encryption: None,
            web_host: String::new(),
            max_parallel_tasks: 10,
            non_admin_can_create_project: false,
            use_remote_runner: false,
            admin: None,
            exec_path: None,
            sandbox: ralf_exec::SandboxSettings {
                hide,
                ..Default::default()
            },
            trusted_proxies: Vec::new(),
            session_lifetime: DEFAULT_SESSION_LIFETIME,
            http_idle_timeout: DEFAULT_HTTP_IDLE_TIMEOUT,
            initial_admin_password_file: None,
            advisor: None,
            notify: Default::default(),
            metrics: Default::default(),
            log: Default::default(),
        }
    }
}
