//! Resolution: the merged layers → [`Settings`]. Each setting's winning value is found with
//! its origin and coerced (see `value`); what no layer set takes its default; the tasks'
//! sandbox is told what of the server to hide.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use figment::Figment;
use figment::value::Value;
use ralf_server::settings::AdvisorSettings;
use ralf_server::{AdminBootstrap, DatabaseSettings, Settings};

use super::ConfigError;
use super::layers::{
    DEFAULT_ADMIN_LOGIN, DEFAULT_DATA_DIR, DEFAULT_INTERFACE, DEFAULT_MAX_PARALLEL_TASKS,
    DEFAULT_PORT, SQLITE_FILE_NAME,
};
use ralf_core::redact::redact_url;

use super::url::parse_db_url;
use super::value::Found;

pub(super) struct Resolver {
    pub(super) figment: Figment,
    /// The config file, which tasks must not see.
    pub(super) config_file: Option<PathBuf>,
}

impl Resolver {
    /// The winning value for the dotted `key`, if any layer set it.
    pub(super) fn find(&self, key: &str, setting: &'static str) -> Option<Found> {
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

    pub(super) fn settings(&self) -> Result<Settings, ConfigError> {
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
            advisor: self.advisor()?,
            notify: self.notify()?,
            metrics: self.metrics()?,
            log: self.log()?,
        })
    }

    /// Where `/metrics` is served: its own address, and/or a token on the public listener.
    fn metrics(&self) -> Result<ralf_server::settings::MetricsSettings, ConfigError> {
        let listen = match self.find("metrics_listen", "metrics_listen") {
            Some(found) => {
                let text = found.text()?.trim();
                let parsed = super::layers::split_listen(text).and_then(|(ip, port)| {
                    Some(SocketAddr::new(parse_interface(ip)?, port.parse().ok()?))
                });
                match (text, parsed) {
                    ("", _) => None,
                    (_, Some(at)) => Some(at),
                    (_, None) => {
                        return Err(
                            found.invalid("expected ADDR:PORT, e.g. 127.0.0.1:9090 or [::1]:9090")
                        );
                    }
                }
            }
            None => None,
        };
        let token = match self.find("metrics_token", "metrics_token") {
            Some(found) => Some(found.secret_text()?.trim().to_string()).filter(|t| !t.is_empty()),
            None => None,
        };
        Ok(ralf_server::settings::MetricsSettings { listen, token })
    }

    /// The log's format and which messages it shows.
    fn log(&self) -> Result<ralf_server::settings::LogSettings, ConfigError> {
        use ralf_server::settings::LogFormat;
        let format = match self.find("log_format", "log_format") {
            Some(found) => match found.text()?.trim() {
                "human" | "" => LogFormat::Human,
                "json" => LogFormat::Json,
                _ => return Err(found.invalid("expected human or json")),
            },
            None => LogFormat::Human,
        };
        let level = match self.find("log_level", "log_level") {
            Some(found) => {
                let text = found.text()?.trim().to_string();
                if let Err(e) = tracing_subscriber::EnvFilter::try_new(&text) {
                    return Err(found.invalid(format!(
                        "{e}; expected a level (error, warn, info, debug, trace) or a list such \
                         as info,ralf_server::dispatch=debug"
                    )));
                }
                Some(text).filter(|t| !t.is_empty())
            }
            None => None,
        };
        Ok(ralf_server::settings::LogSettings { format, level })
    }

    /// The catalog's advisor: configured by its URL; a model is then required.
    fn advisor(&self) -> Result<Option<AdvisorSettings>, ConfigError> {
        let Some(found_url) = self.find("advisor_url", "advisor_url") else {
            return Ok(None);
        };
        let url = found_url.text()?.trim().trim_end_matches('/').to_string();
        if url.is_empty() {
            return Ok(None);
        }
        let model = match self.find("advisor_model", "advisor_model") {
            Some(found) => found.non_empty_text()?.trim().to_string(),
            None => return Err(found_url.invalid("an advisor needs advisor_model too")),
        };
        let api_key = match self.find("advisor_api_key", "advisor_api_key") {
            Some(found) => Some(found.secret_text()?.trim().to_string()).filter(|k| !k.is_empty()),
            None => None,
        };
        let timeout = match self.find("advisor_timeout", "advisor_timeout") {
            Some(found) => found.duration()?,
            None => ralf_server::settings::DEFAULT_ADVISOR_TIMEOUT,
        };
        Ok(Some(AdvisorSettings {
            url,
            model,
            api_key,
            timeout,
        }))
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

/// An IP address, IPv6 with or without brackets.
fn parse_interface(text: &str) -> Option<IpAddr> {
    let text = text.trim();
    let text = text
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .unwrap_or(text);
    text.parse().ok()
}
