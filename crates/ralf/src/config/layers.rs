//! The layers of configuration, lowest first: built-in defaults, the config file, Semaphore's
//! environment variables (their list is in `semaphore`), `RALF_*` environment variables and
//! command-line flags; and the closed lists of what the config file and the `RALF_*` variables
//! may set. Each layer is a figment provider that remembers where each of its values came from
//! ("environment variable RALF_PORT", "flag --listen"), so an error can name it.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use figment::providers::{Format as _, Toml};
use figment::value::{Dict, Map, Value};
use figment::{Metadata, Profile, Provider};

use super::{ConfigError, ServerFlags};

// ---------------------------------------------------------------------------------------------
// The closed list of settings and variables.

pub(super) const DEFAULT_DATA_DIR: &str = "./data";
pub(super) const SQLITE_FILE_NAME: &str = "ralf.db";
pub(super) const DEFAULT_INTERFACE: &str = "127.0.0.1";
pub(super) const DEFAULT_PORT: u16 = 3000;
pub(super) const DEFAULT_MAX_PARALLEL_TASKS: u32 = 10;
pub(super) const DEFAULT_ADMIN_LOGIN: &str = "admin";

/// Keys a config file may set.
pub(super) const FILE_KEYS: &[&str] = &[
    "data_dir",
    "db",
    "interface",
    "port",
    "access_key_encryption",
    "web_host",
    "max_parallel_tasks",
    "non_admin_can_create_project",
    "use_remote_runner",
    "allow_unsandboxed_tasks",
    "task_uid",
    "task_gid",
    "trusted_proxies",
    "session_lifetime",
    "http_idle_timeout",
    "advisor_url",
    "advisor_model",
    "advisor_api_key",
    "advisor_timeout",
    "email_alert",
    "email_host",
    "email_port",
    "email_sender",
    "email_username",
    "email_password",
    "email_secure",
    "email_tls",
    "slack_alert",
    "slack_url",
    "microsoft_teams_alert",
    "microsoft_teams_url",
    "telegram_alert",
    "telegram_token",
    "telegram_chat",
    "telegram_api_url",
    "rocketchat_alert",
    "rocketchat_url",
    "gotify_alert",
    "gotify_url",
    "gotify_token",
    "dingtalk_alert",
    "dingtalk_url",
    "ntfy_url",
    "ntfy_token",
    "alert_webhook_url",
    "notify_retry_after",
    "metrics_listen",
    "metrics_token",
    "log_format",
    "log_level",
];

/// File keys whose value is a list.
const LIST_KEYS: &[&str] = &["trusted_proxies"];

/// Environment variables that name the config file, in order of precedence.
pub(super) const CONFIG_FILE_VARS: &[&str] = &["RALF_CONFIG", "SEMAPHORE_CONFIG_PATH"];

/// An environment variable and the (dotted) setting key it feeds.
pub(super) struct EnvVar {
    pub(super) name: &'static str,
    key: &'static str,
    /// Secrets are never shown in messages and may be read from the file named by `<NAME>_FILE`.
    pub(super) secret: bool,
}

pub(super) const fn var(name: &'static str, key: &'static str) -> EnvVar {
    EnvVar {
        name,
        key,
        secret: false,
    }
}

pub(super) const fn secret(name: &'static str, key: &'static str) -> EnvVar {
    EnvVar {
        name,
        key,
        secret: true,
    }
}

pub(super) const RALF_VARS: &[EnvVar] = &[
    var("RALF_DATA_DIR", "data_dir"),
    var("RALF_DB", "db"),
    var("RALF_INTERFACE", "interface"),
    var("RALF_PORT", "port"),
    secret("RALF_ACCESS_KEY_ENCRYPTION", "access_key_encryption"),
    var("RALF_WEB_HOST", "web_host"),
    var("RALF_MAX_PARALLEL_TASKS", "max_parallel_tasks"),
    var(
        "RALF_NON_ADMIN_CAN_CREATE_PROJECT",
        "non_admin_can_create_project",
    ),
    var("RALF_USE_REMOTE_RUNNER", "use_remote_runner"),
    var("RALF_ALLOW_UNSANDBOXED_TASKS", "allow_unsandboxed_tasks"),
    var("RALF_TASK_UID", "task_uid"),
    var("RALF_TASK_GID", "task_gid"),
    var("RALF_TRUSTED_PROXIES", "trusted_proxies"),
    var("RALF_SESSION_LIFETIME", "session_lifetime"),
    var("RALF_HTTP_IDLE_TIMEOUT", "http_idle_timeout"),
    var("RALF_ADVISOR_URL", "advisor_url"),
    var("RALF_ADVISOR_MODEL", "advisor_model"),
    secret("RALF_ADVISOR_API_KEY", "advisor_api_key"),
    var("RALF_ADVISOR_TIMEOUT", "advisor_timeout"),
    var("RALF_EMAIL_ALERT", "email_alert"),
    var("RALF_EMAIL_HOST", "email_host"),
    var("RALF_EMAIL_PORT", "email_port"),
    var("RALF_EMAIL_SENDER", "email_sender"),
    var("RALF_EMAIL_USERNAME", "email_username"),
    secret("RALF_EMAIL_PASSWORD", "email_password"),
    var("RALF_EMAIL_SECURE", "email_secure"),
    var("RALF_EMAIL_TLS", "email_tls"),
    var("RALF_SLACK_ALERT", "slack_alert"),
    secret("RALF_SLACK_URL", "slack_url"),
    var("RALF_MICROSOFT_TEAMS_ALERT", "microsoft_teams_alert"),
    secret("RALF_MICROSOFT_TEAMS_URL", "microsoft_teams_url"),
    var("RALF_TELEGRAM_ALERT", "telegram_alert"),
    secret("RALF_TELEGRAM_TOKEN", "telegram_token"),
    var("RALF_TELEGRAM_CHAT", "telegram_chat"),
    var("RALF_TELEGRAM_API_URL", "telegram_api_url"),
    var("RALF_ROCKETCHAT_ALERT", "rocketchat_alert"),
    secret("RALF_ROCKETCHAT_URL", "rocketchat_url"),
    var("RALF_GOTIFY_ALERT", "gotify_alert"),
    var("RALF_GOTIFY_URL", "gotify_url"),
    secret("RALF_GOTIFY_TOKEN", "gotify_token"),
    var("RALF_DINGTALK_ALERT", "dingtalk_alert"),
    secret("RALF_DINGTALK_URL", "dingtalk_url"),
    var("RALF_NTFY_URL", "ntfy_url"),
    secret("RALF_NTFY_TOKEN", "ntfy_token"),
    secret("RALF_ALERT_WEBHOOK_URL", "alert_webhook_url"),
    var("RALF_NOTIFY_RETRY_AFTER", "notify_retry_after"),
    var("RALF_METRICS_LISTEN", "metrics_listen"),
    secret("RALF_METRICS_TOKEN", "metrics_token"),
    var("RALF_LOG_FORMAT", "log_format"),
    var("RALF_LOG", "log_level"),
    var("RALF_ADMIN_LOGIN", "admin.login"),
    secret("RALF_ADMIN_PASSWORD", "admin.password"),
    var("RALF_ADMIN_NAME", "admin.name"),
    var("RALF_ADMIN_EMAIL", "admin.email"),
];

// ---------------------------------------------------------------------------------------------
// Layers.

/// One configuration layer: values under dotted keys, and a description of where each value
/// came from. As a figment provider, it hands those descriptions to figment as the
/// metadata's interpolater, so `Metadata::interpolate(key)` answers "where did this come from".
pub(super) struct Layer {
    name: &'static str,
    /// Origin of values that have no entry in `origins` (e.g. "config file /etc/ralf.toml").
    origin: String,
    file: Option<PathBuf>,
    values: Dict,
    origins: BTreeMap<String, String>,
}

impl Layer {
    fn new(name: &'static str, origin: impl Into<String>) -> Self {
        Layer {
            name,
            origin: origin.into(),
            file: None,
            values: Dict::new(),
            origins: BTreeMap::new(),
        }
    }

    fn set(&mut self, key: &str, value: impl Into<Value>, origin: impl Into<String>) {
        insert_dotted(&mut self.values, key, value.into());
        self.origins.insert(key.to_string(), origin.into());
    }
}

fn insert_dotted(dict: &mut Dict, key: &str, value: Value) {
    match key.split_once('.') {
        None => {
            dict.insert(key.to_string(), value);
        }
        Some((head, rest)) => {
            let entry = dict
                .entry(head.to_string())
                .or_insert_with(|| Value::from(Dict::new()));
            if !matches!(entry, Value::Dict(..)) {
                *entry = Value::from(Dict::new());
            }
            if let Value::Dict(_, inner) = entry {
                insert_dotted(inner, rest, value);
            }
        }
    }
}

impl Provider for Layer {
    fn metadata(&self) -> Metadata {
        let origins = self.origins.clone();
        let fallback = self.origin.clone();
        let metadata = Metadata::named(self.name).interpolater(move |_profile, keys| {
            origins
                .get(&keys.join("."))
                .cloned()
                .unwrap_or_else(|| fallback.clone())
        });
        match &self.file {
            Some(path) => metadata.source(path.as_path()),
            None => metadata,
        }
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        Ok(Profile::Default.collect(self.values.clone()))
    }
}

pub(super) fn defaults_layer() -> Layer {
    let mut layer = Layer::new("defaults", "built-in default");
    layer
        .values
        .insert("data_dir".into(), DEFAULT_DATA_DIR.into());
    layer
        .values
        .insert("interface".into(), DEFAULT_INTERFACE.into());
    layer.values.insert("port".into(), DEFAULT_PORT.into());
    layer.values.insert("web_host".into(), "".into());
    layer.values.insert(
        "max_parallel_tasks".into(),
        DEFAULT_MAX_PARALLEL_TASKS.into(),
    );
    layer
        .values
        .insert("non_admin_can_create_project".into(), false.into());
    layer
        .values
        .insert("use_remote_runner".into(), false.into());
    layer
}

/// Reads environment variables through the lookup function; empty values count as unset.
pub(super) struct Env<'a>(pub(super) &'a dyn Fn(&str) -> Option<String>);

impl Env<'_> {
    pub(super) fn get(&self, name: &str) -> Option<String> {
        (self.0)(name).filter(|value| !value.is_empty())
    }

    /// The value of `var`, or for a secret also the content of the file named by `<NAME>_FILE`,
    /// with a description of where it came from.
    fn read(&self, var: &EnvVar) -> Result<Option<(String, String)>, ConfigError> {
        let direct = self.get(var.name);
        if !var.secret {
            return Ok(direct.map(|value| (value, format!("environment variable {}", var.name))));
        }
        let file_var = format!("{}_FILE", var.name);
        match (direct, self.get(&file_var)) {
            (Some(_), Some(_)) => Err(ConfigError::Conflict {
                first: var.name.to_string(),
                second: file_var,
            }),
            (Some(value), None) => Ok(Some((value, format!("environment variable {}", var.name)))),
            (None, Some(path)) => {
                let path = PathBuf::from(path);
                let content = std::fs::read_to_string(&path).map_err(|error| {
                    ConfigError::SecretFileUnreadable {
                        variable: file_var.clone(),
                        path: path.clone(),
                        error,
                    }
                })?;
                let value = content.trim_end_matches(['\n', '\r']).to_string();
                let origin = format!(
                    "file {} (named by environment variable {file_var})",
                    path.display()
                );
                Ok(Some((value, origin)))
            }
            (None, None) => Ok(None),
        }
    }
}

pub(super) fn env_layer(
    name: &'static str,
    vars: &[EnvVar],
    env: &Env,
) -> Result<Layer, ConfigError> {
    let mut layer = Layer::new(name, name);
    // Variables that are aliases of each other (SEMAPHORE_DB, SEMAPHORE_DB_NAME) must agree.
    let mut seen: BTreeMap<&str, (&str, String)> = BTreeMap::new();
    for var in vars {
        let Some((value, origin)) = env.read(var)? else {
            continue;
        };
        if let Some((other, other_value)) = seen.get(var.key) {
            if *other_value != value {
                return Err(ConfigError::Conflict {
                    first: other.to_string(),
                    second: var.name.to_string(),
                });
            }
            continue;
        }
        seen.insert(var.key, (var.name, value.clone()));
        layer.set(var.key, value, origin);
    }
    Ok(layer)
}

/// Where the config file is, and what named it; `None` when nothing names one.
pub(super) fn config_file_path(flags: &ServerFlags, env: &Env) -> Option<(PathBuf, String)> {
    if let Some(path) = &flags.config {
        return Some((path.clone(), "flag --config".into()));
    }
    let (var, value) = CONFIG_FILE_VARS
        .iter()
        .find_map(|var| env.get(var).map(|value| (*var, value)))?;
    let path = PathBuf::from(value);
    let named_by = format!("environment variable {var}");
    // Semaphore's Docker image sets SEMAPHORE_CONFIG_PATH to a directory (/etc/semaphore)
    // holding config.json; there, ralf reads ralf.toml if the directory has one.
    if var == "SEMAPHORE_CONFIG_PATH" && path.is_dir() {
        let candidate = path.join("ralf.toml");
        return candidate.is_file().then_some((candidate, named_by));
    }
    Some((path, named_by))
}

pub(super) fn config_file_layer(
    flags: &ServerFlags,
    env: &Env,
) -> Result<Option<Layer>, ConfigError> {
    let Some((path, named_by)) = config_file_path(flags, env) else {
        return Ok(None);
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(error) if error.kind() == io::ErrorKind::NotFound => {
            return Err(ConfigError::ConfigFileMissing { path, named_by });
        }
        Err(error) => {
            return Err(ConfigError::ConfigFileUnreadable {
                path,
                named_by,
                error,
            });
        }
    };
    let values: Dict = Toml::from_str(&text).map_err(|error| ConfigError::ConfigFileSyntax {
        line: error.span().map(|span| line_of(&text, span.start)),
        message: toml_error_message(&path, &error),
        path: path.clone(),
    })?;
    let origin = format!("config file {}", path.display());
    for (key, value) in &values {
        if !FILE_KEYS.contains(&key.as_str()) {
            return Err(ConfigError::UnknownSetting {
                key: key.clone(),
                path,
            });
        }
        let list = LIST_KEYS.contains(&key.as_str()) && matches!(value, Value::Array(..));
        if !list && matches!(value, Value::Dict(..) | Value::Array(..)) {
            return Err(ConfigError::Invalid {
                setting: key.clone(),
                value: None,
                origin,
                problem: "expected a single value, not a table or an array".into(),
            });
        }
    }
    let mut layer = Layer::new("config file", origin);
    layer.file = Some(path);
    layer.values = values;
    Ok(Some(layer))
}

/// The 1-based line of byte `offset` in `text`.
fn line_of(text: &str, offset: usize) -> usize {
    let before = &text.as_bytes()[..offset.min(text.len())];
    before.iter().filter(|&&byte| byte == b'\n').count() + 1
}

/// The TOML parser's message, without the quoted source line it would add to its `Display`
/// (the file may hold secrets).
fn toml_error_message(path: &Path, error: &<Toml as figment::providers::Format>::Error) -> String {
    let mut message = error.message().trim().replace('\n', "; ");
    let extension = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or_default();
    if ["json", "yaml", "yml"].contains(&extension.to_ascii_lowercase().as_str()) {
        message
            .push_str(" (ralf reads TOML config files; Semaphore's JSON/YAML files are not read)");
    }
    message
}

pub(super) fn flags_layer(flags: &ServerFlags) -> Result<Layer, ConfigError> {
    let mut layer = Layer::new("flags", "command-line flags");
    if let Some(dir) = &flags.data_dir {
        let dir = dir.to_str().ok_or_else(|| ConfigError::Invalid {
            setting: "data_dir".into(),
            value: None,
            origin: "flag --data-dir".into(),
            problem: "the path is not valid UTF-8".into(),
        })?;
        layer.set("data_dir", dir, "flag --data-dir");
    }
    if let Some(db) = &flags.db {
        layer.set("db", db.as_str(), "flag --db");
    }
    if let Some(listen) = &flags.listen {
        let (interface, port) = split_listen(listen).ok_or_else(|| ConfigError::Invalid {
            setting: "listen address".into(),
            value: Some(format!("{listen:?}")),
            origin: "flag --listen".into(),
            problem: "expected ADDR:PORT, e.g. 127.0.0.1:3000 or [::1]:3000".into(),
        })?;
        layer.set("interface", interface, "flag --listen");
        layer.set("port", port, "flag --listen");
    }
    let admin = [
        ("admin.login", &flags.admin_login, "flag --admin-login"),
        (
            "admin.password",
            &flags.admin_password,
            "flag --admin-password",
        ),
        ("admin.name", &flags.admin_name, "flag --admin-name"),
        ("admin.email", &flags.admin_email, "flag --admin-email"),
    ];
    for (key, value, origin) in admin {
        if let Some(value) = value {
            layer.set(key, value.as_str(), origin);
        }
    }
    if let Some(format) = &flags.log_format {
        layer.set("log_format", format.as_str(), "flag --log-format");
    }
    if flags.allow_unsandboxed_tasks {
        layer.set(
            "allow_unsandboxed_tasks",
            true,
            "flag --allow-unsandboxed-tasks",
        );
    }
    Ok(layer)
}

/// `127.0.0.1:3000` → ("127.0.0.1", "3000"); `[::1]:3000` → ("[::1]", "3000").
pub(super) fn split_listen(listen: &str) -> Option<(&str, &str)> {
    let (addr, port) = listen.rsplit_once(':')?;
    let bare_ipv6 = addr.contains(':') && !(addr.starts_with('[') && addr.ends_with(']'));
    (!addr.is_empty() && !bare_ipv6).then_some((addr, port))
}
