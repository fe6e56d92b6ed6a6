//! Semaphore's environment variables: which of them ralf reads and the setting each one feeds,
//! and the one database their `SEMAPHORE_DB_*` part names together (SQLite by its path,
//! PostgreSQL as a URL built from host, port, user, password, name and options).

use std::path::PathBuf;

use ralf_server::DatabaseSettings;

use super::ConfigError;
use super::layers::{EnvVar, secret, var};
use super::resolve::Resolver;
use super::url::{options_query, percent_encode, split_db_host};
use super::value::Found;

/// Semaphore's names. The `db.*` keys are combined into a database URL; see `semaphore_db`.
pub(super) const SEMAPHORE_VARS: &[EnvVar] = &[
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
    var("SEMAPHORE_EMAIL_ALERT", "email_alert"),
    var("SEMAPHORE_EMAIL_HOST", "email_host"),
    var("SEMAPHORE_EMAIL_PORT", "email_port"),
    var("SEMAPHORE_EMAIL_SENDER", "email_sender"),
    var("SEMAPHORE_EMAIL_USERNAME", "email_username"),
    secret("SEMAPHORE_EMAIL_PASSWORD", "email_password"),
    var("SEMAPHORE_EMAIL_SECURE", "email_secure"),
    var("SEMAPHORE_EMAIL_TLS", "email_tls"),
    var("SEMAPHORE_SLACK_ALERT", "slack_alert"),
    secret("SEMAPHORE_SLACK_URL", "slack_url"),
    var("SEMAPHORE_MICROSOFT_TEAMS_ALERT", "microsoft_teams_alert"),
    secret("SEMAPHORE_MICROSOFT_TEAMS_URL", "microsoft_teams_url"),
    var("SEMAPHORE_TELEGRAM_ALERT", "telegram_alert"),
    secret("SEMAPHORE_TELEGRAM_TOKEN", "telegram_token"),
    var("SEMAPHORE_TELEGRAM_CHAT", "telegram_chat"),
    var("SEMAPHORE_ROCKETCHAT_ALERT", "rocketchat_alert"),
    secret("SEMAPHORE_ROCKETCHAT_URL", "rocketchat_url"),
    var("SEMAPHORE_GOTIFY_ALERT", "gotify_alert"),
    var("SEMAPHORE_GOTIFY_URL", "gotify_url"),
    secret("SEMAPHORE_GOTIFY_TOKEN", "gotify_token"),
    var("SEMAPHORE_DINGTALK_ALERT", "dingtalk_alert"),
    secret("SEMAPHORE_DINGTALK_URL", "dingtalk_url"),
];

impl Resolver {
    /// The database named by Semaphore's `SEMAPHORE_DB_*` variables; `None` means SQLite in the
    /// data directory.
    pub(super) fn semaphore_db(&self) -> Result<Option<DatabaseSettings>, ConfigError> {
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
}
