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
//!
//! From raw layers to settings, one module each: `layers` (the config file's keys, `RALF_*`
//! variables, flags and defaults, each layer with its origins), `semaphore` (Semaphore's
//! variables, and the database their `SEMAPHORE_DB_*` part names), `notify` (the notification
//! channels), `value` (one winning value
//! and its coercion to text, port, number, duration or boolean), `resolve` (the merged layers
//! → [`ralf_server::Settings`]), `url` (database URLs: parsing, building, redacting), `unknown`
//! (`RALF_*` variables and file keys ralf does not know, and the nearest known name).

mod layers;
mod notify;
mod resolve;
mod semaphore;
mod unknown;
mod url;
mod value;

use std::fmt;
use std::io;
use std::path::PathBuf;

use figment::Figment;
use ralf_server::Settings;

use layers::{
    Env, FILE_KEYS, RALF_VARS, config_file_layer, config_file_path, defaults_layer, env_layer,
    flags_layer,
};
use ralf_core::redact::redact_url;
use resolve::Resolver;
use semaphore::SEMAPHORE_VARS;
pub use unknown::unknown_variables;
use url::REDACTED;
pub use url::parse_database;

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
    /// `--log-format human|json`.
    pub log_format: Option<String>,
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
            .field("log_format", &self.log_format)
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
        "unknown setting {key:?} in config file {}{}; known settings are: {}",
        .path.display(),
        unknown::nearest_file_key(key).map(|k| format!(" (did you mean {k}?)")).unwrap_or_default(),
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

#[cfg(test)]
mod tests {
    use super::*;
    use ralf_server::DatabaseSettings;
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
            ("RALF_ADVISOR_URL", "http://127.0.0.1:11434/v1"),
            ("RALF_ADVISOR_MODEL", "llama3"),
            ("RALF_ADVISOR_API_KEY", "advisor-secret"),
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
            "advisor-secret",
        ] {
            assert!(!debug.contains(secret), "{debug}");
        }
    }

    #[test]
    fn the_advisor_is_configured_by_its_url_and_model() {
        assert!(ok(&no_flags(), &[]).advisor.is_none());
        let file = config_file(
            "advisor_url = \"http://127.0.0.1:11434/v1/\"\nadvisor_model = \"llama3\"\n",
        );
        let advisor = ok(&with_config(&file), &[("RALF_ADVISOR_TIMEOUT", "3s")])
            .advisor
            .expect("an advisor");
        assert_eq!(advisor.url, "http://127.0.0.1:11434/v1");
        assert_eq!(advisor.model, "llama3");
        assert_eq!(advisor.api_key, None);
        assert_eq!(advisor.timeout, std::time::Duration::from_secs(3));
        let defaults = ok(
            &no_flags(),
            &[
                ("RALF_ADVISOR_URL", "http://h/v1"),
                ("RALF_ADVISOR_MODEL", "m"),
                ("RALF_ADVISOR_API_KEY", "k"),
            ],
        )
        .advisor
        .expect("an advisor");
        assert_eq!(defaults.api_key.as_deref(), Some("k"));
        assert_eq!(
            defaults.timeout,
            ralf_server::settings::DEFAULT_ADVISOR_TIMEOUT
        );
        let e = err(&no_flags(), &[("RALF_ADVISOR_URL", "http://h/v1")]);
        assert!(e.contains("advisor_model"), "{e}");
    }

    #[test]
    fn semaphores_alert_variables_configure_the_channels() {
        use ralf_server::notify::channels::EmailTls;
        let notify = ok(&no_flags(), &[]).notify;
        assert!(notify.email.is_none() && notify.chat_channels().is_empty());
        let notify = ok(
            &no_flags(),
            &[
                ("SEMAPHORE_EMAIL_ALERT", "true"),
                ("SEMAPHORE_EMAIL_HOST", "smtp.example.com"),
                ("SEMAPHORE_EMAIL_PORT", "587"),
                ("SEMAPHORE_EMAIL_SENDER", "ralf@example.com"),
                ("SEMAPHORE_EMAIL_USERNAME", "ralf"),
                ("SEMAPHORE_EMAIL_PASSWORD", "mail-secret"),
                ("SEMAPHORE_EMAIL_SECURE", "true"),
                ("SEMAPHORE_SLACK_ALERT", "true"),
                (
                    "SEMAPHORE_SLACK_URL",
                    "https://hooks.slack.com/services/T/B/slack-secret",
                ),
                ("SEMAPHORE_TELEGRAM_ALERT", "true"),
                ("SEMAPHORE_TELEGRAM_TOKEN", "telegram-secret"),
                ("SEMAPHORE_TELEGRAM_CHAT", "-100123"),
                ("SEMAPHORE_GOTIFY_URL", "https://gotify.example.com/"),
                ("SEMAPHORE_GOTIFY_TOKEN", "gotify-secret"),
                // A channel switched off keeps quiet although its URL is set.
                ("SEMAPHORE_DINGTALK_ALERT", "false"),
                (
                    "SEMAPHORE_DINGTALK_URL",
                    "https://oapi.dingtalk.com/robot/send?x=y",
                ),
                ("RALF_NTFY_URL", "https://ntfy.sh/deploys"),
                ("RALF_ALERT_WEBHOOK_URL", "https://hooks.example.com/ralf"),
            ],
        )
        .notify;
        let email = notify.email.as_ref().expect("e-mail");
        assert_eq!(
            (email.host.as_str(), email.port, email.tls),
            ("smtp.example.com", 587, EmailTls::StartTls)
        );
        assert_eq!(email.password.as_deref(), Some("mail-secret"));
        let names: Vec<&str> = notify.chat_channels().iter().map(|c| c.name()).collect();
        assert_eq!(names, ["slack", "telegram", "gotify", "ntfy", "webhook"]);
        let telegram = notify.telegram.as_ref().unwrap();
        assert_eq!(telegram.chat.as_deref(), Some("-100123"));
        assert_eq!(telegram.api_url, "https://api.telegram.org");
        assert_eq!(
            notify.gotify.as_ref().unwrap().url,
            "https://gotify.example.com"
        );
        let debug = format!("{notify:?}");
        for secret in [
            "mail-secret",
            "slack-secret",
            "telegram-secret",
            "gotify-secret",
        ] {
            assert!(!debug.contains(secret), "{debug}");
        }

        let e = err(&no_flags(), &[("SEMAPHORE_SLACK_ALERT", "true")]);
        assert!(e.contains("slack needs slack_url"), "{e}");
        let e = err(&no_flags(), &[("RALF_EMAIL_HOST", "smtp.example.com")]);
        assert!(e.contains("email_sender"), "{e}");
        let tls = |value: &str| {
            ok(
                &no_flags(),
                &[
                    ("RALF_EMAIL_HOST", "h"),
                    ("RALF_EMAIL_SENDER", "s@example.com"),
                    ("RALF_EMAIL_TLS", value),
                ],
            )
            .notify
            .email
            .unwrap()
            .tls
        };
        assert_eq!(tls("true"), EmailTls::Tls);
        assert_eq!(tls("none"), EmailTls::None);
        assert_eq!(tls("auto"), EmailTls::Auto);
        assert!(
            err(
                &no_flags(),
                &[
                    ("RALF_EMAIL_HOST", "h"),
                    ("RALF_EMAIL_SENDER", "s"),
                    ("RALF_EMAIL_TLS", "maybe")
                ]
            )
            .contains("expected auto")
        );
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
