//! Configuration loader for `ralf server`. It layers built-in defaults, a TOML config file,
//! Semaphore's environment variables, `RALF_*` environment variables and command-line flags
//! (later layers win), and turns the result into [`ralf_server::Settings`]. Every error names
//! the setting and where its value came from, and never shows a secret value.
//!
//! The layers are merged with [`figment`]. Each layer is a small provider that remembers
//! where each value came from (for example "environment variable SEMAPHORE_PORT"), so once
//! figment has picked the winning value for a setting, its tag tells us which layer, and
//! which variable or flag, to blame in an error message.
//!
//! Rules that hold for every layer:
//! - An environment variable that is set but empty counts as unset.
//! - A relative path is taken relative to the working directory, even in the config file.
//! - The Semaphore database variables (`SEMAPHORE_DB_*`) together form one `db` value, which
//!   beats `db` from the config file and loses to `RALF_DB` and `--db`. They are checked only
//!   when they win, so a Semaphore setup with `SEMAPHORE_DB_DIALECT=bolt` runs once `RALF_DB`
//!   is set.

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use figment::providers::{Format as _, Toml};
use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider};
use ralf_server::{AdminBootstrap, DatabaseSettings, Settings};

/// Command-line flags of `ralf server`; `None` means the flag was not given.
#[derive(Default, Clone)]
pub struct ServerFlags {
    /// `--config PATH`: the TOML config file.
    pub config: Option<PathBuf>,
    /// `--data-dir PATH`: where the default SQLite database lives.
    pub data_dir: Option<PathBuf>,
    /// `--db URL`: `sqlite:PATH`, `sqlite:///ABS/PATH` or `postgres://...`.
    pub db: Option<String>,
    /// `--listen ADDR:PORT`: overrides both `interface` and `port`.
    pub listen: Option<String>,
    pub admin_login: Option<String>,
    pub admin_password: Option<String>,
    pub admin_name: Option<String>,
    pub admin_email: Option<String>,
    /// `--allow-unsandboxed-tasks`: run tasks without a sandbox where bubblewrap cannot run.
    pub allow_unsandboxed_tasks: bool,
}

impl fmt::Debug for ServerFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerFlags")
            .field("config", &self.config)
            .field("data_dir", &self.data_dir)
            .field("db", &self.db.as_deref().map(redact_url))
            .field("listen", &self.listen)
            .field("admin_login", &self.admin_login)
            .field(
                "admin_password",
                &self.admin_password.as_ref().map(|_| REDACTED),
            )
            .field("admin_name", &self.admin_name)
            .field("admin_email", &self.admin_email)
            .field("allow_unsandboxed_tasks", &self.allow_unsandboxed_tasks)
            .finish()
    }
}

/// Why the configuration could not be loaded. The message names the setting and its source.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A setting has a value ralf cannot use. `value` is already rendered for the message
    /// (strings quoted) and is `None` for secrets.
    #[error("invalid {setting}{} from {origin}: {problem}", show_value(.value))]
    Invalid {
        setting: String,
        value: Option<String>,
        origin: String,
        problem: String,
    },
    #[error("config file {} (named by {named_by}) does not exist", .path.display())]
    ConfigFileMissing { path: PathBuf, named_by: String },
    #[error("cannot read config file {} (named by {named_by}): {error}", .path.display())]
    ConfigFileUnreadable {
        path: PathBuf,
        named_by: String,
        error: io::Error,
    },
    /// The config file is not valid TOML. `line` is where the parser stopped.
    #[error(
        "invalid config file {}{}: {message}",
        .path.display(),
        .line.map(|line| format!(" at line {line}")).unwrap_or_default()
    )]
    ConfigFileSyntax {
        path: PathBuf,
        line: Option<usize>,
        message: String,
    },
    #[error(
        "unknown setting {key:?} in config file {}; known settings are: {}",
        .path.display(),
        FILE_KEYS.join(", ")
    )]
    UnknownSetting { key: String, path: PathBuf },
    #[error("cannot read file {} named by environment variable {variable}: {error}", .path.display())]
    SecretFileUnreadable {
        variable: String,
        path: PathBuf,
        error: io::Error,
    },
    #[error("environment variables {first} and {second} are both set; set only one of them")]
    Conflict { first: String, second: String },
}

fn show_value(value: &Option<String>) -> String {
    value.as_ref().map(|v| format!(" {v}")).unwrap_or_default()
}

/// Loads the settings, reading environment variables through `env`.
pub fn load(
    flags: &ServerFlags,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Settings, ConfigError> {
    let env = Env(env);
    let mut figment = Figment::new().merge(defaults_layer());
    if let Some(file) = config_file_layer(flags, &env)? {
        figment = figment.merge(file);
    }
    let config_file = config_file_path(flags, &env).map(|(path, _)| path);
    let figment = figment
        .merge(env_layer(
            "Semaphore environment variables",
            SEMAPHORE_VARS,
            &env,
        )?)
        .merge(env_layer("RALF environment variables", RALF_VARS, &env)?)
        .merge(flags_layer(flags)?);
    Resolver {
        figment,
        config_file,
    }
    .settings()
}

/// Loads the settings from the process environment.
pub fn load_from_process_env(flags: &ServerFlags) -> Result<Settings, ConfigError> {
    load(flags, &|name| std::env::var(name).ok())
}

// ---------------------------------------------------------------------------------------------
// The closed list of settings and variables.

const REDACTED: &str = "**********";
const DEFAULT_DATA_DIR: &str = "./data";
const SQLITE_FILE_NAME: &str = "ralf.db";
const DEFAULT_INTERFACE: &str = "127.0.0.1";
const DEFAULT_PORT: u16 = 3000;
const DEFAULT_MAX_PARALLEL_TASKS: u32 = 10;
const DEFAULT_ADMIN_LOGIN: &str = "admin";

/// Keys a config file may set.
const FILE_KEYS: &[&str] = &[
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
];

/// File keys whose value is a list.
const LIST_KEYS: &[&str] = &["trusted_proxies"];

/// Environment variables that name the config file, in order of precedence.
const CONFIG_FILE_VARS: &[&str] = &["RALF_CONFIG", "SEMAPHORE_CONFIG_PATH"];

/// An environment variable and the (dotted) setting key it feeds.
struct EnvVar {
    name: &'static str,
    key: &'static str,
    /// Secrets are never shown in messages and may be read from the file named by `<NAME>_FILE`.
    secret: bool,
}

const fn var(name: &'static str, key: &'static str) -> EnvVar {
    EnvVar {
        name,
        key,
        secret: false,
    }
}

const fn secret(name: &'static str, key: &'static str) -> EnvVar {
    EnvVar {
        name,
        key,
        secret: true,
    }
}

/// Semaphore's names. The `db.*` keys are combined into a database URL; see `semaphore_db`.
const SEMAPHORE_VARS: &[EnvVar] = &[
    var("SEMAPHORE_DB_DIALECT", "db.dialect"),
    var("SEMAPHORE_DB_HOST", "db.host"),
    var("SEMAPHORE_DB_PORT", "db.port"),
    var("SEMAPHORE_DB_USER", "db.user"),
    secret("SEMAPHORE_DB_PASS", "db.pass"),
    var("SEMAPHORE_DB", "db.name"),
    var("SEMAPHORE_DB_NAME", "db.name"),
    var("SEMAPHORE_DB_OPTIONS", "db.options"),
    var("SEMAPHORE_INTERFACE", "interface"),
    var("SEMAPHORE_PORT", "port"),
    secret("SEMAPHORE_ACCESS_KEY_ENCRYPTION", "access_key_encryption"),
    var("SEMAPHORE_WEB_ROOT", "web_host"),
    var("SEMAPHORE_MAX_PARALLEL_TASKS", "max_parallel_tasks"),
    var(
        "SEMAPHORE_NON_ADMIN_CAN_CREATE_PROJECT",
        "non_admin_can_create_project",
    ),
    var("SEMAPHORE_USE_REMOTE_RUNNER", "use_remote_runner"),
    var("SEMAPHORE_ADMIN", "admin.login"),
    secret("SEMAPHORE_ADMIN_PASSWORD", "admin.password"),
    var("SEMAPHORE_ADMIN_NAME", "admin.name"),
    var("SEMAPHORE_ADMIN_EMAIL", "admin.email"),
];

const RALF_VARS: &[EnvVar] = &[
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
struct Layer {
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

fn defaults_layer() -> Layer {
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
struct Env<'a>(&'a dyn Fn(&str) -> Option<String>);

impl Env<'_> {
    fn get(&self, name: &str) -> Option<String> {
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

fn env_layer(name: &'static str, vars: &[EnvVar], env: &Env) -> Result<Layer, ConfigError> {
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
fn config_file_path(flags: &ServerFlags, env: &Env) -> Option<(PathBuf, String)> {
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

fn config_file_layer(flags: &ServerFlags, env: &Env) -> Result<Option<Layer>, ConfigError> {
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

fn flags_layer(flags: &ServerFlags) -> Result<Layer, ConfigError> {
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
fn split_listen(listen: &str) -> Option<(&str, &str)> {
    let (addr, port) = listen.rsplit_once(':')?;
    let bare_ipv6 = addr.contains(':') && !(addr.starts_with('[') && addr.ends_with(']'));
    (!addr.is_empty() && !bare_ipv6).then_some((addr, port))
}

// ---------------------------------------------------------------------------------------------
// Resolution: the merged figment → Settings.

/// The winning value of one setting, with where it came from.
struct Found {
    /// Name of the setting in messages.
    setting: &'static str,
    value: Value,
    origin: String,
}

impl Found {
    /// An error showing the (non-secret) value.
    fn invalid(&self, problem: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            setting: self.setting.into(),
            value: Some(render(&self.value)),
            origin: self.origin.clone(),
            problem: problem.into(),
        }
    }

    /// An error that does not show the value.
    fn invalid_secret(&self, problem: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            setting: self.setting.into(),
            value: None,
            origin: self.origin.clone(),
            problem: problem.into(),
        }
    }

    fn text(&self) -> Result<&str, ConfigError> {
        self.value
            .as_str()
            .ok_or_else(|| self.invalid("expected a string"))
    }

    fn non_empty_text(&self) -> Result<&str, ConfigError> {
        match self.text()?.trim() {
            "" => Err(self.invalid("must not be empty")),
            text => Ok(text),
        }
    }

    fn secret_text(&self) -> Result<&str, ConfigError> {
        self.value
            .as_str()
            .ok_or_else(|| self.invalid_secret("expected a string"))
    }

    fn port(&self) -> Result<u16, ConfigError> {
        const EXPECTED: &str = "expected a number from 1 to 65535";
        let number = match &self.value {
            Value::String(_, text) => {
                // Semaphore writes the port as ":3000".
                let text = text.trim();
                text.strip_prefix(':').unwrap_or(text).parse::<u16>().ok()
            }
            value => non_negative_integer(value).and_then(|n| u16::try_from(n).ok()),
        };
        number
            .filter(|&n| n != 0)
            .ok_or_else(|| self.invalid(EXPECTED))
    }

    fn u32(&self) -> Result<u32, ConfigError> {
        let number = match &self.value {
            Value::String(_, text) => text.trim().parse::<u32>().ok(),
            value => non_negative_integer(value).and_then(|n| u32::try_from(n).ok()),
        };
        number.ok_or_else(|| self.invalid(format!("expected an integer from 0 to {}", u32::MAX)))
    }

    /// Seconds, or a number with a unit: `45s`, `30m`, `12h`, `7d`.
    fn duration(&self) -> Result<std::time::Duration, ConfigError> {
        const EXPECTED: &str =
            "expected a positive duration in seconds, or with a unit: 45s, 30m, 12h, 7d";
        let seconds = match &self.value {
            Value::String(_, text) => {
                let text = text.trim();
                let (number, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
                    Some(at) => text.split_at(at),
                    None => (text, "s"),
                };
                let factor = match unit.trim() {
                    "s" => 1,
                    "m" => 60,
                    "h" => 3600,
                    "d" => 24 * 3600,
                    _ => return Err(self.invalid(EXPECTED)),
                };
                number
                    .parse::<u64>()
                    .ok()
                    .and_then(|n| n.checked_mul(factor))
            }
            value => non_negative_integer(value).and_then(|n| u64::try_from(n).ok()),
        };
        seconds
            .filter(|&n| n > 0)
            .map(std::time::Duration::from_secs)
            .ok_or_else(|| self.invalid(EXPECTED))
    }

    fn bool(&self) -> Result<bool, ConfigError> {
        const EXPECTED: &str = "expected one of 1, true, yes, 0, false, no";
        match &self.value {
            Value::Bool(_, value) => Ok(*value),
            Value::String(_, text) => match text.trim().to_ascii_lowercase().as_str() {
                "1" | "true" | "yes" => Ok(true),
                "0" | "false" | "no" => Ok(false),
                _ => Err(self.invalid(EXPECTED)),
            },
            _ => Err(self.invalid(EXPECTED)),
        }
    }
}

/// A whole, non-negative number (TOML integers arrive as signed numbers).
fn non_negative_integer(value: &Value) -> Option<u128> {
    value.to_num().and_then(|n| n.to_u128_lossy())
}

/// A value as shown in messages: strings quoted, tables and arrays described.
fn render(value: &Value) -> String {
    match value {
        Value::String(_, text) => format!("{text:?}"),
        Value::Char(_, c) => format!("{c:?}"),
        Value::Bool(_, b) => b.to_string(),
        Value::Num(..) => value
            .to_i128()
            .map(|n| n.to_string())
            .or_else(|| value.to_u128().map(|n| n.to_string()))
            .or_else(|| value.to_f64().map(|n| n.to_string()))
            .unwrap_or_else(|| "(a number)".into()),
        Value::Empty(..) => "(empty)".into(),
        Value::Dict(..) => "(a table)".into(),
        Value::Array(..) => "(an array)".into(),
    }
}

struct Resolver {
    figment: Figment,
    /// The config file, which tasks must not see.
    config_file: Option<PathBuf>,
}

impl Resolver {
    /// The winning value for the dotted `key`, if any layer set it.
    fn find(&self, key: &str, setting: &'static str) -> Option<Found> {
        let value = self.figment.find_value(key).ok()?;
        let tag = value.tag();
        let keys: Vec<&str> = key.split('.').collect();
        let origin = match self.figment.get_metadata(tag) {
            Some(metadata) => metadata.interpolate(&tag.profile().unwrap_or_default(), &keys),
            None => "an unknown source".into(),
        };
        Some(Found {
            setting,
            value,
            origin,
        })
    }

    fn settings(&self) -> Result<Settings, ConfigError> {
        let data_dir = self.data_dir()?;
        let database = self.database(&data_dir)?;
        let mut sandbox = self.sandbox(&data_dir)?;
        if let DatabaseSettings::Sqlite { path } = &database
            && let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        {
            sandbox
                .hide
                .push(std::path::absolute(dir).unwrap_or_else(|_| dir.into()));
        }
        Ok(Settings {
            listen: self.listen()?,
            database,
            access_key_encryption: self.access_key_encryption()?,
            web_host: match self.find("web_host", "web_host") {
                Some(found) => found.text()?.trim().to_string(),
                None => String::new(),
            },
            max_parallel_tasks: match self.find("max_parallel_tasks", "max_parallel_tasks") {
                Some(found) => found.u32()?,
                None => DEFAULT_MAX_PARALLEL_TASKS,
            },
            non_admin_can_create_project: match self.find(
                "non_admin_can_create_project",
                "non_admin_can_create_project",
            ) {
                Some(found) => found.bool()?,
                None => false,
            },
            use_remote_runner: match self.find("use_remote_runner", "use_remote_runner") {
                Some(found) => found.bool()?,
                None => false,
            },
            admin: self.admin()?,
            work_dir: data_dir.join("work"),
            data_dir,
            exec_path: None,
            sandbox,
            trusted_proxies: self.trusted_proxies()?,
            session_lifetime: match self.find("session_lifetime", "session_lifetime") {
                Some(found) => found.duration()?,
                None => ralf_server::settings::DEFAULT_SESSION_LIFETIME,
            },
            http_idle_timeout: match self.find("http_idle_timeout", "http_idle_timeout") {
                Some(found) => found.duration()?,
                None => ralf_server::settings::DEFAULT_HTTP_IDLE_TIMEOUT,
            },
            initial_admin_password_file: None,
        })
    }

    /// The tasks' sandbox: whether it may be missing, the uid and gid tasks run as, and what
    /// of the server they must not see (the data directory, the config file; the SQLite
    /// database's directory is added by the caller).
    fn sandbox(&self, data_dir: &Path) -> Result<ralf_exec::SandboxSettings, ConfigError> {
        let mut sandbox = ralf_exec::SandboxSettings::default();
        if let Some(found) = self.find("allow_unsandboxed_tasks", "allow_unsandboxed_tasks") {
            sandbox.allow_unsandboxed = found.bool()?;
        }
        if let Some(found) = self.find("task_uid", "task_uid") {
            sandbox.uid = found.u32()?;
        }
        if let Some(found) = self.find("task_gid", "task_gid") {
            sandbox.gid = found.u32()?;
        }
        sandbox
            .hide
            .push(std::path::absolute(data_dir).unwrap_or_else(|_| data_dir.into()));
        if let Some(file) = &self.config_file {
            sandbox
                .hide
                .push(std::path::absolute(file).unwrap_or_else(|_| file.clone()));
        }
        Ok(sandbox)
    }

    /// A list of addresses and networks: a TOML array of strings, or one string with the
    /// entries separated by commas or spaces (as an environment variable gives it).
    fn trusted_proxies(&self) -> Result<Vec<ralf_server::settings::IpNet>, ConfigError> {
        let Some(found) = self.find("trusted_proxies", "trusted_proxies") else {
            return Ok(Vec::new());
        };
        let expected = "expected IP addresses or networks such as 10.0.0.1 or 10.0.0.0/8";
        let entries: Vec<String> = match &found.value {
            Value::String(_, text) => text
                .split([',', ' '])
                .filter(|entry| !entry.trim().is_empty())
                .map(|entry| entry.trim().to_string())
                .collect(),
            Value::Array(_, items) => items
                .iter()
                .map(|item| item.as_str().map(|t| t.trim().to_string()))
                .collect::<Option<_>>()
                .ok_or_else(|| found.invalid(expected))?,
            _ => return Err(found.invalid(expected)),
        };
        entries
            .iter()
            .map(|entry| {
                entry
                    .parse::<ralf_server::settings::IpNet>()
                    .or_else(|_| entry.parse::<IpAddr>().map(Into::into))
                    .map_err(|_| {
                        found.invalid(format!(
                            "{entry:?} is not an address or network; {expected}"
                        ))
                    })
            })
            .collect()
    }

    fn data_dir(&self) -> Result<PathBuf, ConfigError> {
        match self.find("data_dir", "data_dir") {
            Some(found) => Ok(PathBuf::from(found.non_empty_text()?)),
            None => Ok(PathBuf::from(DEFAULT_DATA_DIR)),
        }
    }

    fn listen(&self) -> Result<SocketAddr, ConfigError> {
        let ip = match self.find("interface", "interface") {
            Some(found) => parse_interface(found.text()?).ok_or_else(|| {
                found.invalid("expected an IP address such as 127.0.0.1 or 0.0.0.0")
            })?,
            None => DEFAULT_INTERFACE
                .parse()
                .expect("default interface is an IP address"),
        };
        let port = match self.find("port", "port") {
            Some(found) => found.port()?,
            None => DEFAULT_PORT,
        };
        Ok(SocketAddr::new(ip, port))
    }

    fn database(&self, data_dir: &Path) -> Result<DatabaseSettings, ConfigError> {
        let default = || DatabaseSettings::Sqlite {
            path: data_dir.join(SQLITE_FILE_NAME),
        };
        let Some(found) = self.find("db", "db") else {
            return Ok(default());
        };
        match &found.value {
            Value::String(_, url) => parse_db_url(url).map_err(|problem| ConfigError::Invalid {
                setting: "db".into(),
                value: Some(format!("{:?}", redact_url(url))),
                origin: found.origin.clone(),
                problem: problem.into(),
            }),
            // Only the Semaphore environment layer sets `db` as a table (see SEMAPHORE_VARS).
            Value::Dict(..) => Ok(self.semaphore_db()?.unwrap_or_else(default)),
            _ => Err(found.invalid("expected a database URL string")),
        }
    }

    /// The database named by Semaphore's `SEMAPHORE_DB_*` variables; `None` means SQLite in the
    /// data directory.
    fn semaphore_db(&self) -> Result<Option<DatabaseSettings>, ConfigError> {
        let Some(dialect) = self.find("db.dialect", "database dialect") else {
            // Some other SEMAPHORE_DB_* variable is set: name it in the error.
            let problem = "SEMAPHORE_DB_DIALECT is not set; set it to sqlite or postgres";
            let given = ["host", "port", "user", "pass", "name", "options"]
                .iter()
                .find_map(|field| self.find(&format!("db.{field}"), "database settings"));
            return Err(match given {
                Some(given) => given.invalid_secret(problem),
                None => ConfigError::Invalid {
                    setting: "database settings".into(),
                    value: None,
                    origin: "Semaphore environment variables".into(),
                    problem: problem.into(),
                },
            });
        };
        match dialect.text()?.trim().to_ascii_lowercase().as_str() {
            "sqlite" | "sqlite3" => match self.find("db.host", "SQLite database path") {
                // As in Semaphore, the "host" of an SQLite database is its file path.
                Some(host) => Ok(Some(DatabaseSettings::Sqlite {
                    path: PathBuf::from(host.non_empty_text()?),
                })),
                None => Ok(None),
            },
            "postgres" | "postgresql" => Ok(Some(DatabaseSettings::Postgres {
                url: self.semaphore_postgres_url(&dialect)?,
            })),
            "bolt" | "boltdb" => Err(dialect.invalid("bolt is not supported, use sqlite")),
            "mysql" | "mariadb" => {
                Err(dialect.invalid("mysql is not supported, use postgres or sqlite"))
            }
            _ => Err(dialect.invalid("expected sqlite or postgres")),
        }
    }

    fn semaphore_postgres_url(&self, dialect: &Found) -> Result<String, ConfigError> {
        let host = self
            .find("db.host", "database host")
            .ok_or_else(|| dialect.invalid("postgres needs SEMAPHORE_DB_HOST"))?;
        let host_text = host.non_empty_text()?;
        let (host_name, host_port) = split_db_host(host_text)
            .ok_or_else(|| host.invalid("expected a host name or HOST:PORT"))?;
        let host_port = match host_port {
            Some(port) => Some(
                Found {
                    setting: "database port",
                    value: port.into(),
                    origin: host.origin.clone(),
                }
                .port()?,
            ),
            None => None,
        };
        let port = match self.find("db.port", "database port") {
            Some(found) => {
                let port = found.port()?;
                if host_port.is_some_and(|p| p != port) {
                    return Err(found.invalid(format!(
                        "SEMAPHORE_DB_HOST already names port {}",
                        host_port.unwrap_or_default()
                    )));
                }
                Some(port)
            }
            None => host_port,
        };

        let mut url = String::from("postgres://");
        let user = self.find("db.user", "database user");
        let pass = self.find("db.pass", "database password");
        if user.is_some() || pass.is_some() {
            if let Some(user) = &user {
                url.push_str(&percent_encode(user.text()?));
            }
            if let Some(pass) = &pass {
                url.push(':');
                url.push_str(&percent_encode(pass.secret_text()?));
            }
            url.push('@');
        }
        url.push_str(&host_name);
        if let Some(port) = port {
            url.push_str(&format!(":{port}"));
        }
        if let Some(name) = self.find("db.name", "database name") {
            url.push('/');
            url.push_str(&percent_encode(name.non_empty_text()?));
        }
        if let Some(options) = self.find("db.options", "database options") {
            let query = options_query(options.text()?).ok_or_else(|| {
                options.invalid_secret(r#"expected a JSON object such as {"sslmode":"disable"}"#)
            })?;
            if !query.is_empty() {
                url.push('?');
                url.push_str(&query);
            }
        }
        Ok(url)
    }

    fn access_key_encryption(&self) -> Result<Option<String>, ConfigError> {
        let Some(found) = self.find("access_key_encryption", "access_key_encryption") else {
            return Ok(None);
        };
        let key = found.secret_text()?.trim();
        let hint = "generate one with `head -c32 /dev/urandom | base64`";
        match base64::engine::general_purpose::STANDARD.decode(key) {
            Ok(bytes) if bytes.len() == 32 => Ok(Some(key.to_string())),
            Ok(bytes) => Err(found.invalid_secret(format!(
                "expected base64 of exactly 32 bytes, got {} bytes; {hint}",
                bytes.len()
            ))),
            Err(_) => Err(found.invalid_secret(format!(
                "expected base64 of exactly 32 bytes, but it is not valid base64; {hint}"
            ))),
        }
    }

    fn admin(&self) -> Result<Option<AdminBootstrap>, ConfigError> {
        let Some(password) = self.find("admin.password", "admin password") else {
            return Ok(None);
        };
        let password = match password.secret_text()? {
            "" => return Err(password.invalid_secret("must not be empty")),
            text => text.to_string(),
        };
        let login = match self.find("admin.login", "admin login") {
            Some(found) => found.non_empty_text()?.to_string(),
            None => DEFAULT_ADMIN_LOGIN.to_string(),
        };
        let name = match self.find("admin.name", "admin name") {
            Some(found) => found.non_empty_text()?.to_string(),
            None => login.clone(),
        };
        let email = match self.find("admin.email", "admin email") {
            Some(found) => found.non_empty_text()?.to_string(),
            None => format!("{login}@localhost"),
        };
        Ok(Some(AdminBootstrap {
            login,
            password,
            name,
            email,
        }))
    }
}

// ---------------------------------------------------------------------------------------------
// Value parsers.

/// An IP address, IPv6 with or without brackets.
fn parse_interface(text: &str) -> Option<IpAddr> {
    let text = text.trim();
    let text = text
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .unwrap_or(text);
    text.parse().ok()
}

/// `sqlite:PATH`, `sqlite://PATH`, `sqlite:///ABS/PATH`, `postgres://...`, `postgresql://...`.
fn parse_db_url(url: &str) -> Result<DatabaseSettings, &'static str> {
    const EXPECTED: &str = "expected sqlite:PATH, sqlite:///ABSOLUTE/PATH or postgres://...";
    let url = url.trim();
    let (scheme, rest) = url.split_once(':').ok_or(EXPECTED)?;
    match scheme.to_ascii_lowercase().as_str() {
        "sqlite" => {
            // sqlite:///abs → /abs, sqlite://rel → rel, sqlite:path → path
            let path = rest.strip_prefix("//").unwrap_or(rest);
            if path.is_empty() {
                Err("the SQLite URL names no file; expected sqlite:PATH or sqlite:///ABSOLUTE/PATH")
            } else if path == ":memory:" || path.starts_with(":memory:?") {
                Err("an in-memory SQLite database cannot hold the server's data; name a file")
            } else if path.contains('?') {
                Err("SQLite URL options (after '?') are not supported")
            } else {
                Ok(DatabaseSettings::Sqlite {
                    path: PathBuf::from(path),
                })
            }
        }
        "postgres" | "postgresql" => {
            let authority = rest.strip_prefix("//").ok_or(EXPECTED)?;
            if authority.is_empty() || url.chars().any(char::is_whitespace) {
                Err("expected postgres://USER:PASSWORD@HOST:PORT/DATABASE")
            } else {
                Ok(DatabaseSettings::Postgres {
                    url: url.to_string(),
                })
            }
        }
        _ => Err(EXPECTED),
    }
}

/// A database named on the command line: a URL as [`parse_db_url`] takes it, or a plain path of
/// an SQLite file.
pub fn parse_database(text: &str) -> Result<DatabaseSettings, String> {
    let scheme = text
        .trim()
        .split_once(':')
        .map(|(s, _)| s.to_ascii_lowercase());
    match scheme.as_deref() {
        Some("sqlite" | "postgres" | "postgresql") => {
            parse_db_url(text).map_err(|problem| format!("{:?}: {problem}", redact_url(text)))
        }
        _ if text.trim().is_empty() => Err("the database is empty; name a file or a URL".into()),
        Some(_) if text.contains("://") => Err(format!(
            "{:?}: expected sqlite:///ABSOLUTE/PATH, a file path or postgres://...",
            redact_url(text)
        )),
        _ => Ok(DatabaseSettings::Sqlite {
            path: PathBuf::from(text),
        }),
    }
}

/// `host`, `host:5432`, `[::1]:5432`, `::1` → (host for the URL, port if given).
fn split_db_host(host: &str) -> Option<(String, Option<String>)> {
    if host.contains(['/', '@', '?', '#']) || host.chars().any(char::is_whitespace) {
        return None;
    }
    if host.starts_with('[') {
        let end = host.find(']')?;
        let (name, rest) = host.split_at(end + 1);
        return match rest {
            "" => Some((name.to_string(), None)),
            _ => Some((name.to_string(), Some(rest.strip_prefix(':')?.to_string()))),
        };
    }
    match host.matches(':').count() {
        0 => Some((host.to_string(), None)),
        1 => {
            let (name, port) = host.split_once(':')?;
            (!name.is_empty()).then(|| (name.to_string(), Some(port.to_string())))
        }
        // A bare IPv6 address.
        _ => Some((format!("[{host}]"), None)),
    }
}

/// `{"sslmode":"disable"}` → `sslmode=disable`; `None` if it is not a flat JSON object.
fn options_query(json: &str) -> Option<String> {
    let object: serde_json::Map<String, serde_json::Value> = serde_json::from_str(json).ok()?;
    let mut pairs = Vec::new();
    for (key, value) in &object {
        let value = match value {
            serde_json::Value::String(text) => text.clone(),
            serde_json::Value::Number(number) => number.to_string(),
            serde_json::Value::Bool(flag) => flag.to_string(),
            _ => return None,
        };
        pairs.push(format!(
            "{}={}",
            percent_encode(key),
            percent_encode(&value)
        ));
    }
    Some(pairs.join("&"))
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn percent_encode(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            encoded.push(byte as char);
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

/// `scheme://user:password@host/...` → `scheme://user:**********@host/...`.
fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let Some((userinfo, host)) = rest.rsplit_once('@') else {
        return url.to_string();
    };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:{REDACTED}@{host}"),
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::io::Write as _;

    const KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="; // 32 bytes

    fn load_with(flags: &ServerFlags, vars: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        load(flags, &move |name| vars.get(name).cloned())
    }

    fn ok(flags: &ServerFlags, vars: &[(&str, &str)]) -> Settings {
        load_with(flags, vars).unwrap_or_else(|e| panic!("load failed: {e}"))
    }

    fn err(flags: &ServerFlags, vars: &[(&str, &str)]) -> String {
        match load_with(flags, vars) {
            Ok(settings) => panic!("expected an error, got {settings:?}"),
            Err(e) => e.to_string(),
        }
    }

    fn no_flags() -> ServerFlags {
        ServerFlags::default()
    }

    fn config_file(content: &str) -> tempfile::NamedTempFile {
        let mut file = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
        file.write_all(content.as_bytes()).unwrap();
        file
    }

    fn with_config(file: &tempfile::NamedTempFile) -> ServerFlags {
        ServerFlags {
            config: Some(file.path().to_path_buf()),
            ..Default::default()
        }
    }

    fn secret_file(content: &str) -> tempfile::NamedTempFile {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(content.as_bytes()).unwrap();
        file
    }

    fn path_str(file: &tempfile::NamedTempFile) -> &str {
        file.path().to_str().unwrap()
    }

    #[test]
    fn defaults() {
        let settings = ok(&no_flags(), &[]);
        assert_eq!(settings.listen, "127.0.0.1:3000".parse().unwrap());
        assert_eq!(
            settings.database,
            DatabaseSettings::Sqlite {
                path: PathBuf::from("./data/ralf.db")
            }
        );
        assert_eq!(settings.access_key_encryption, None);
        assert_eq!(settings.web_host, "");
        assert_eq!(settings.max_parallel_tasks, 10);
        assert!(!settings.non_admin_can_create_project);
        assert!(!settings.use_remote_runner);
        assert!(settings.admin.is_none());
    }

    #[test]
    fn each_layer_beats_the_one_below() {
        let file = config_file("port = 4001\n");
        let flags = with_config(&file);
        let semaphore = ("SEMAPHORE_PORT", "4002");
        let ralf = ("RALF_PORT", "4003");
        let port = |flags: &ServerFlags, vars: &[(&str, &str)]| ok(flags, vars).listen.port();

        assert_eq!(port(&no_flags(), &[]), 3000, "default");
        assert_eq!(port(&flags, &[]), 4001, "file beats default");
        assert_eq!(port(&flags, &[semaphore]), 4002, "SEMAPHORE_* beats file");
        assert_eq!(
            port(&flags, &[semaphore, ralf]),
            4003,
            "RALF_* beats SEMAPHORE_*"
        );
        let listen = ServerFlags {
            listen: Some("127.0.0.1:4004".into()),
            ..flags.clone()
        };
        assert_eq!(port(&listen, &[semaphore, ralf]), 4004, "flag beats RALF_*");
    }

    #[test]
    fn layers_merge_per_setting() {
        let file = config_file("web_host = \"https://ci.example\"\nmax_parallel_tasks = 3\n");
        let settings = ok(&with_config(&file), &[("RALF_INTERFACE", "0.0.0.0")]);
        assert_eq!(settings.web_host, "https://ci.example");
        assert_eq!(settings.max_parallel_tasks, 3);
        assert_eq!(settings.listen, "0.0.0.0:3000".parse().unwrap());
    }

    #[test]
    fn file_settings() {
        let file = config_file(&format!(
            "data_dir = \"/var/lib/ralf\"\ninterface = \"::1\"\nport = \"8080\"\n\
             access_key_encryption = \"{KEY}\"\nnon_admin_can_create_project = true\n"
        ));
        let settings = ok(&with_config(&file), &[]);
        assert_eq!(settings.listen, "[::1]:8080".parse().unwrap());
        assert_eq!(
            settings.database,
            DatabaseSettings::Sqlite {
                path: PathBuf::from("/var/lib/ralf/ralf.db")
            }
        );
        assert_eq!(settings.access_key_encryption.as_deref(), Some(KEY));
        assert!(settings.non_admin_can_create_project);
    }

    #[test]
    fn config_file_from_environment() {
        let file = config_file("port = 4100\n");
        assert_eq!(
            ok(&no_flags(), &[("RALF_CONFIG", path_str(&file))])
                .listen
                .port(),
            4100
        );
        let vars = [("SEMAPHORE_CONFIG_PATH", path_str(&file))];
        assert_eq!(ok(&no_flags(), &vars).listen.port(), 4100);
        // RALF_CONFIG beats SEMAPHORE_CONFIG_PATH, and --config beats both.
        let other = config_file("port = 4200\n");
        let vars = [
            ("RALF_CONFIG", path_str(&other)),
            ("SEMAPHORE_CONFIG_PATH", "/nowhere"),
        ];
        assert_eq!(ok(&no_flags(), &vars).listen.port(), 4200);
        assert_eq!(ok(&with_config(&file), &vars).listen.port(), 4100);
    }

    #[test]
    fn semaphore_config_directory() {
        let dir = tempfile::tempdir().unwrap();
        let vars = [("SEMAPHORE_CONFIG_PATH", dir.path().to_str().unwrap())];
        // A directory without ralf.toml (Semaphore's image default) is skipped...
        assert_eq!(ok(&no_flags(), &vars).listen.port(), 3000);
        // ...and its ralf.toml is read.
        std::fs::write(dir.path().join("ralf.toml"), "port = 4300\n").unwrap();
        assert_eq!(ok(&no_flags(), &vars).listen.port(), 4300);
    }

    #[test]
    fn missing_named_config_file() {
        let flags = ServerFlags {
            config: Some("/nonexistent/ralf.toml".into()),
            ..no_flags()
        };
        assert_eq!(
            err(&flags, &[]),
            "config file /nonexistent/ralf.toml (named by flag --config) does not exist"
        );
        assert_eq!(
            err(&no_flags(), &[("RALF_CONFIG", "/nonexistent/ralf.toml")]),
            "config file /nonexistent/ralf.toml (named by environment variable RALF_CONFIG) \
             does not exist"
        );
    }

    #[test]
    fn config_file_errors() {
        let file = config_file("port = 3000\nprot = 3001\n");
        let message = err(&with_config(&file), &[]);
        assert!(
            message.starts_with("unknown setting \"prot\" in config file"),
            "{message}"
        );

        let file = config_file(&format!("access_key_encryption = \"{KEY}\nport = 1\n"));
        let message = err(&with_config(&file), &[]);
        assert!(message.starts_with("invalid config file"), "{message}");
        assert!(message.contains(" at line 1: "), "{message}");
        assert!(!message.contains(KEY), "{message}");

        let file = config_file("[db]\nhost = \"x\"\n");
        let message = err(&with_config(&file), &[]);
        assert!(
            message.starts_with("invalid db from config file"),
            "{message}"
        );
    }

    #[test]
    fn semaphore_postgres_variables_build_a_url() {
        let vars = [
            ("SEMAPHORE_DB_DIALECT", "postgres"),
            ("SEMAPHORE_DB_HOST", "db.internal"),
            ("SEMAPHORE_DB_PORT", "5433"),
            ("SEMAPHORE_DB_USER", "sema phore"),
            ("SEMAPHORE_DB_PASS", "p@ss:w/rd%"),
            ("SEMAPHORE_DB", "semaphore"),
            ("SEMAPHORE_DB_OPTIONS", r#"{"sslmode":"disable"}"#),
        ];
        assert_eq!(
            ok(&no_flags(), &vars).database,
            DatabaseSettings::Postgres {
                url: "postgres://sema%20phore:p%40ss%3Aw%2Frd%25@db.internal:5433/semaphore\
                      ?sslmode=disable"
                    .into()
            }
        );
    }

    #[test]
    fn semaphore_postgres_host_with_port_and_name_alias() {
        let vars = [
            ("SEMAPHORE_DB_DIALECT", "postgres"),
            ("SEMAPHORE_DB_HOST", "db:5432"),
            ("SEMAPHORE_DB_NAME", "sem"),
        ];
        assert_eq!(
            ok(&no_flags(), &vars).database,
            DatabaseSettings::Postgres {
                url: "postgres://db:5432/sem".into()
            }
        );
        let vars = [
            ("SEMAPHORE_DB_DIALECT", "postgres"),
            ("SEMAPHORE_DB_HOST", "db:5432"),
            ("SEMAPHORE_DB_PORT", "5433"),
        ];
        assert_eq!(
            err(&no_flags(), &vars),
            "invalid database port \"5433\" from environment variable SEMAPHORE_DB_PORT: \
             SEMAPHORE_DB_HOST already names port 5432"
        );
        let vars = [
            ("SEMAPHORE_DB_DIALECT", "postgres"),
            ("SEMAPHORE_DB_HOST", "db"),
            ("SEMAPHORE_DB", "a"),
            ("SEMAPHORE_DB_NAME", "b"),
        ];
        assert_eq!(
            err(&no_flags(), &vars),
            "environment variables SEMAPHORE_DB and SEMAPHORE_DB_NAME are both set; \
             set only one of them"
        );
    }

    #[test]
    fn semaphore_sqlite_host_is_the_path() {
        let vars = [
            ("SEMAPHORE_DB_DIALECT", "sqlite"),
            ("SEMAPHORE_DB_HOST", "/srv/sem.db"),
        ];
        assert_eq!(
            ok(&no_flags(), &vars).database,
            DatabaseSettings::Sqlite {
                path: PathBuf::from("/srv/sem.db")
            }
        );
        let flags = ServerFlags {
            data_dir: Some("/srv/ralf".into()),
            ..no_flags()
        };
        assert_eq!(
            ok(&flags, &[("SEMAPHORE_DB_DIALECT", "sqlite")]).database,
            DatabaseSettings::Sqlite {
                path: PathBuf::from("/srv/ralf/ralf.db")
            }
        );
    }

    #[test]
    fn ralf_db_and_flag_beat_semaphore_variables() {
        let vars = [
            ("SEMAPHORE_DB_DIALECT", "bolt"),
            ("RALF_DB", "sqlite:///srv/a.db"),
        ];
        assert_eq!(
            ok(&no_flags(), &vars).database,
            DatabaseSettings::Sqlite {
                path: PathBuf::from("/srv/a.db")
            }
        );
        let flags = ServerFlags {
            db: Some("postgresql://u@h/d".into()),
            ..no_flags()
        };
        assert_eq!(
            ok(&flags, &vars).database,
            DatabaseSettings::Postgres {
                url: "postgresql://u@h/d".into()
            }
        );
    }

    #[test]
    fn semaphore_variables_beat_file_db() {
        let file = config_file("db = \"sqlite:file.db\"\n");
        let vars = [
            ("SEMAPHORE_DB_DIALECT", "postgres"),
            ("SEMAPHORE_DB_HOST", "h"),
        ];
        assert_eq!(
            ok(&with_config(&file), &vars).database,
            DatabaseSettings::Postgres {
                url: "postgres://h".into()
            }
        );
        assert_eq!(
            ok(&with_config(&file), &[]).database,
            DatabaseSettings::Sqlite {
                path: PathBuf::from("file.db")
            }
        );
    }

    #[test]
    fn db_url_forms() {
        let sqlite = |path: &str| DatabaseSettings::Sqlite {
            path: PathBuf::from(path),
        };
        assert_eq!(
            parse_db_url("sqlite:///abs/path.db"),
            Ok(sqlite("/abs/path.db"))
        );
        assert_eq!(parse_db_url("sqlite://rel.db"), Ok(sqlite("rel.db")));
        assert_eq!(parse_db_url("sqlite:dir/x.db"), Ok(sqlite("dir/x.db")));
        assert!(parse_db_url("sqlite:").is_err());
        assert!(parse_db_url("sqlite::memory:").is_err());
        assert!(parse_db_url("postgres://").is_err());
        assert!(parse_db_url("mysql://h/d").is_err());
        assert!(parse_db_url("/srv/x.db").is_err());
    }

    #[test]
    fn bad_db_url_names_setting_and_source_without_password() {
        assert_eq!(
            err(&no_flags(), &[("RALF_DB", "mysql://u:hunter2@h/d")]),
            "invalid db \"mysql://u:**********@h/d\" from environment variable RALF_DB: \
             expected sqlite:PATH, sqlite:///ABSOLUTE/PATH or postgres://..."
        );
        let flags = ServerFlags {
            db: Some("ralf.db".into()),
            ..no_flags()
        };
        assert!(err(&flags, &[]).starts_with("invalid db \"ralf.db\" from flag --db: "));
    }

    #[test]
    fn unsupported_dialects() {
        assert_eq!(
            err(&no_flags(), &[("SEMAPHORE_DB_DIALECT", "bolt")]),
            "invalid database dialect \"bolt\" from environment variable SEMAPHORE_DB_DIALECT: \
             bolt is not supported, use sqlite"
        );
        assert_eq!(
            err(
                &no_flags(),
                &[
                    ("SEMAPHORE_DB_DIALECT", "mysql"),
                    ("SEMAPHORE_DB_HOST", "h")
                ]
            ),
            "invalid database dialect \"mysql\" from environment variable SEMAPHORE_DB_DIALECT: \
             mysql is not supported, use postgres or sqlite"
        );
        assert_eq!(
            err(&no_flags(), &[("SEMAPHORE_DB_HOST", "h")]),
            "invalid database settings from environment variable SEMAPHORE_DB_HOST: \
             SEMAPHORE_DB_DIALECT is not set; set it to sqlite or postgres"
        );
    }

    #[test]
    fn semaphore_port_forms() {
        assert_eq!(
            ok(&no_flags(), &[("SEMAPHORE_PORT", ":3001")])
                .listen
                .port(),
            3001
        );
        assert_eq!(
            ok(&no_flags(), &[("SEMAPHORE_PORT", "3002")]).listen.port(),
            3002
        );
    }

    #[test]
    fn port_errors_name_their_source() {
        assert_eq!(
            err(&no_flags(), &[("SEMAPHORE_PORT", "abc")]),
            "invalid port \"abc\" from environment variable SEMAPHORE_PORT: \
             expected a number from 1 to 65535"
        );
        let file = config_file("port = 70000\n");
        assert_eq!(
            err(&with_config(&file), &[]),
            format!(
                "invalid port 70000 from config file {}: expected a number from 1 to 65535",
                file.path().display()
            )
        );
        let flags = ServerFlags {
            listen: Some("127.0.0.1:http".into()),
            ..no_flags()
        };
        assert_eq!(
            err(&flags, &[]),
            "invalid port \"http\" from flag --listen: expected a number from 1 to 65535"
        );
        let flags = ServerFlags {
            listen: Some("3000".into()),
            ..no_flags()
        };
        assert!(err(&flags, &[]).starts_with("invalid listen address \"3000\" from flag --listen"));
    }

    #[test]
    fn other_settings_errors_name_their_source() {
        assert_eq!(
            err(&no_flags(), &[("RALF_INTERFACE", "example.com")]),
            "invalid interface \"example.com\" from environment variable RALF_INTERFACE: \
             expected an IP address such as 127.0.0.1 or 0.0.0.0"
        );
        assert_eq!(
            err(&no_flags(), &[("SEMAPHORE_MAX_PARALLEL_TASKS", "-1")]),
            "invalid max_parallel_tasks \"-1\" from environment variable \
             SEMAPHORE_MAX_PARALLEL_TASKS: expected an integer from 0 to 4294967295"
        );
        assert_eq!(
            err(
                &no_flags(),
                &[("RALF_NON_ADMIN_CAN_CREATE_PROJECT", "maybe")]
            ),
            "invalid non_admin_can_create_project \"maybe\" from environment variable \
             RALF_NON_ADMIN_CAN_CREATE_PROJECT: expected one of 1, true, yes, 0, false, no"
        );
        let file = config_file("web_host = 1\n");
        assert!(err(&with_config(&file), &[]).starts_with("invalid web_host 1 from config file"));
    }

    #[test]
    fn booleans_and_numbers_from_environment() {
        let vars = [
            ("SEMAPHORE_NON_ADMIN_CAN_CREATE_PROJECT", "yes"),
            ("SEMAPHORE_MAX_PARALLEL_TASKS", "0"),
            ("SEMAPHORE_WEB_ROOT", "https://sem.example"),
        ];
        let settings = ok(&no_flags(), &vars);
        assert!(settings.non_admin_can_create_project);
        assert_eq!(settings.max_parallel_tasks, 0);
        assert_eq!(settings.web_host, "https://sem.example");
        let vars = [
            ("SEMAPHORE_NON_ADMIN_CAN_CREATE_PROJECT", "1"),
            ("RALF_NON_ADMIN_CAN_CREATE_PROJECT", "False"),
        ];
        assert!(!ok(&no_flags(), &vars).non_admin_can_create_project);
    }

    #[test]
    fn use_remote_runner_from_each_layer() {
        let remote = |flags: &ServerFlags, vars: &[(&str, &str)]| ok(flags, vars).use_remote_runner;
        let file = config_file("use_remote_runner = true\n");
        let flags = with_config(&file);
        assert!(!remote(&no_flags(), &[]), "default");
        assert!(remote(&flags, &[]), "file beats default");
        let semaphore = ("SEMAPHORE_USE_REMOTE_RUNNER", "false");
        assert!(!remote(&flags, &[semaphore]), "SEMAPHORE_* beats file");
        let ralf = ("RALF_USE_REMOTE_RUNNER", "yes");
        assert!(
            remote(&flags, &[semaphore, ralf]),
            "RALF_* beats SEMAPHORE_*"
        );
        assert!(
            err(&no_flags(), &[("RALF_USE_REMOTE_RUNNER", "sometimes")])
                .starts_with("invalid use_remote_runner \"sometimes\" from environment variable")
        );
    }

    #[test]
    fn trusted_proxies_from_the_file_or_the_environment() {
        let proxies = |flags: &ServerFlags, vars: &[(&str, &str)]| {
            ok(flags, vars)
                .trusted_proxies
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
        };
        assert!(proxies(&no_flags(), &[]).is_empty(), "none by default");
        let file = config_file("trusted_proxies = [\"10.0.0.0/8\", \"192.0.2.1\"]\n");
        let flags = with_config(&file);
        assert_eq!(proxies(&flags, &[]), ["10.0.0.0/8", "192.0.2.1/32"]);
        let env = ("RALF_TRUSTED_PROXIES", "::1, 172.16.0.0/12");
        assert_eq!(proxies(&flags, &[env]), ["::1/128", "172.16.0.0/12"]);
        assert!(
            err(
                &no_flags(),
                &[("RALF_TRUSTED_PROXIES", "10.0.0.0/8, proxy")]
            )
            .contains("\"proxy\" is not an address or network")
        );
    }

    #[test]
    fn durations_take_units() {
        let lifetime =
            |value: &str| ok(&no_flags(), &[("RALF_SESSION_LIFETIME", value)]).session_lifetime;
        assert_eq!(
            ok(&no_flags(), &[]).session_lifetime,
            std::time::Duration::from_secs(7 * 24 * 3600)
        );
        assert_eq!(lifetime("90").as_secs(), 90);
        assert_eq!(lifetime("12h").as_secs(), 12 * 3600);
        assert_eq!(lifetime("2d").as_secs(), 2 * 24 * 3600);
        let file = config_file("http_idle_timeout = 5\n");
        assert_eq!(ok(&with_config(&file), &[]).http_idle_timeout.as_secs(), 5);
        assert!(
            err(&no_flags(), &[("RALF_HTTP_IDLE_TIMEOUT", "soon")])
                .starts_with("invalid http_idle_timeout \"soon\"")
        );
        assert!(err(&no_flags(), &[("RALF_SESSION_LIFETIME", "0")]).contains("positive"));
    }

    #[test]
    fn empty_variables_count_as_unset() {
        let vars = [("RALF_PORT", ""), ("SEMAPHORE_PORT", "3005")];
        assert_eq!(ok(&no_flags(), &vars).listen.port(), 3005);
    }

    #[test]
    fn bad_access_key_is_never_shown() {
        let message = err(
            &no_flags(),
            &[("SEMAPHORE_ACCESS_KEY_ENCRYPTION", "c2hvcnQ=")],
        );
        assert_eq!(
            message,
            "invalid access_key_encryption from environment variable \
             SEMAPHORE_ACCESS_KEY_ENCRYPTION: expected base64 of exactly 32 bytes, got 5 bytes; \
             generate one with `head -c32 /dev/urandom | base64`"
        );
        let message = err(
            &no_flags(),
            &[("RALF_ACCESS_KEY_ENCRYPTION", "not*base64!")],
        );
        assert!(
            message.starts_with(
                "invalid access_key_encryption from environment variable \
                 RALF_ACCESS_KEY_ENCRYPTION: expected base64 of exactly 32 bytes"
            ),
            "{message}"
        );
        assert!(!message.contains("not*base64!"));
        let file = config_file("access_key_encryption = \"c2VjcmV0LXZhbHVl\"\n");
        let message = err(&with_config(&file), &[]);
        assert!(message.contains("from config file"), "{message}");
        assert!(!message.contains("c2VjcmV0LXZhbHVl"), "{message}");
    }

    #[test]
    fn file_variants_of_secrets() {
        let key = secret_file(&format!("{KEY}\n"));
        let db_pass = secret_file("pa ss\n");
        let admin_pass = secret_file("admin-secret\r\n");
        let vars = [
            ("SEMAPHORE_ACCESS_KEY_ENCRYPTION_FILE", path_str(&key)),
            ("SEMAPHORE_DB_DIALECT", "postgres"),
            ("SEMAPHORE_DB_HOST", "h"),
            ("SEMAPHORE_DB_USER", "u"),
            ("SEMAPHORE_DB_PASS_FILE", path_str(&db_pass)),
            ("SEMAPHORE_ADMIN_PASSWORD_FILE", path_str(&admin_pass)),
        ];
        let settings = ok(&no_flags(), &vars);
        assert_eq!(settings.access_key_encryption.as_deref(), Some(KEY));
        assert_eq!(
            settings.database,
            DatabaseSettings::Postgres {
                url: "postgres://u:pa%20ss@h".into()
            }
        );
        assert_eq!(settings.admin.unwrap().password, "admin-secret");

        let ralf_admin = secret_file("ralf-secret");
        let vars = [
            ("RALF_ACCESS_KEY_ENCRYPTION_FILE", path_str(&key)),
            ("RALF_ADMIN_PASSWORD_FILE", path_str(&ralf_admin)),
            ("SEMAPHORE_ADMIN_PASSWORD", "loses"),
        ];
        let settings = ok(&no_flags(), &vars);
        assert_eq!(settings.access_key_encryption.as_deref(), Some(KEY));
        assert_eq!(settings.admin.unwrap().password, "ralf-secret");
    }

    #[test]
    fn file_variant_errors() {
        assert_eq!(
            err(
                &no_flags(),
                &[("RALF_ADMIN_PASSWORD_FILE", "/nonexistent/secret")]
            ),
            "cannot read file /nonexistent/secret named by environment variable \
             RALF_ADMIN_PASSWORD_FILE: No such file or directory (os error 2)"
        );
        let vars = [
            ("SEMAPHORE_DB_PASS", "x"),
            ("SEMAPHORE_DB_PASS_FILE", "/run/secrets/db"),
        ];
        assert_eq!(
            err(&no_flags(), &vars),
            "environment variables SEMAPHORE_DB_PASS and SEMAPHORE_DB_PASS_FILE are both set; \
             set only one of them"
        );
        let bad_key = secret_file("c2hvcnQ=\n");
        let message = err(
            &no_flags(),
            &[("SEMAPHORE_ACCESS_KEY_ENCRYPTION_FILE", path_str(&bad_key))],
        );
        assert!(
            message.starts_with(&format!(
                "invalid access_key_encryption from file {} (named by environment variable \
                 SEMAPHORE_ACCESS_KEY_ENCRYPTION_FILE): ",
                bad_key.path().display()
            )),
            "{message}"
        );
    }

    #[test]
    fn admin_bootstrap() {
        assert!(
            ok(&no_flags(), &[("SEMAPHORE_ADMIN", "root")])
                .admin
                .is_none()
        );

        let admin = ok(&no_flags(), &[("SEMAPHORE_ADMIN_PASSWORD", "pw")])
            .admin
            .unwrap();
        assert_eq!(
            (
                admin.login.as_str(),
                admin.name.as_str(),
                admin.email.as_str()
            ),
            ("admin", "admin", "admin@localhost")
        );

        let vars = [
            ("SEMAPHORE_ADMIN", "root"),
            ("SEMAPHORE_ADMIN_PASSWORD", "pw"),
            ("SEMAPHORE_ADMIN_NAME", "Root"),
            ("RALF_ADMIN_EMAIL", "root@example.com"),
        ];
        let admin = ok(&no_flags(), &vars).admin.unwrap();
        assert_eq!(
            (
                admin.login.as_str(),
                admin.name.as_str(),
                admin.email.as_str()
            ),
            ("root", "Root", "root@example.com")
        );

        let flags = ServerFlags {
            admin_login: Some("ops".into()),
            admin_password: Some("flag-pw".into()),
            ..no_flags()
        };
        let admin = ok(&flags, &vars).admin.unwrap();
        assert_eq!(admin.login, "ops");
        assert_eq!(admin.password, "flag-pw");
        assert_eq!(admin.name, "Root");

        let flags = ServerFlags {
            admin_password: Some(String::new()),
            ..no_flags()
        };
        assert_eq!(
            err(&flags, &[]),
            "invalid admin password from flag --admin-password: must not be empty"
        );
    }

    #[test]
    fn debug_output_hides_secrets() {
        let vars = [
            ("RALF_ACCESS_KEY_ENCRYPTION", KEY),
            ("RALF_ADMIN_PASSWORD", "admin-secret"),
            ("RALF_DB", "postgres://u:db-secret@h/d"),
        ];
        let flags = ServerFlags {
            admin_password: Some("flag-secret".into()),
            db: Some("postgres://u:flag-db-secret@h/d".into()),
            ..no_flags()
        };
        let debug = format!("{:?} {flags:?}", ok(&no_flags(), &vars));
        for secret in [
            KEY,
            "admin-secret",
            "db-secret",
            "flag-secret",
            "flag-db-secret",
        ] {
            assert!(!debug.contains(secret), "{debug}");
        }
    }

    #[test]
    fn listen_flag_forms() {
        let listen = |addr: &str| {
            let flags = ServerFlags {
                listen: Some(addr.into()),
                ..no_flags()
            };
            ok(
                &flags,
                &[("RALF_INTERFACE", "10.0.0.1"), ("RALF_PORT", "1")],
            )
            .listen
        };
        assert_eq!(listen("0.0.0.0:8080"), "0.0.0.0:8080".parse().unwrap());
        assert_eq!(listen("[::]:8080"), "[::]:8080".parse().unwrap());
    }
}
