//! `ralf server`: resolve the configuration, make sure there is an admin, serve until signalled.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;
use ralf_server::settings::{LogFormat, LogSettings};
use ralf_server::{AdminBootstrap, DatabaseSettings, Settings};

use crate::config::{self, ServerFlags};
use crate::data_dir;

pub async fn run(flags: &ServerFlags) -> anyhow::Result<ExitCode> {
    let signals = ralf_server::ShutdownSignals::listen()?;
    let mut settings = config::load_from_process_env(flags)?;
    init_logging(&settings.log);
    for warning in config::unknown_variables(std::env::vars_os().map(|(name, _)| name)) {
        tracing::warn!("{warning}");
    }
    raise_open_files_limit();
    data_dir::prepare(&settings.data_dir)?;
    data_dir::use_access_key(&mut settings.access_key_encryption, &settings.data_dir)?;
    settings.initial_admin_password_file = Some(initial_admin_password_file(&settings)?);
    if settings.admin.is_none() {
        settings.admin = first_admin_if_none(&settings).await?;
    }
    let server = ralf_server::start(settings).await?;
    server.run_until_signalled(signals).await?;
    Ok(ExitCode::SUCCESS)
}

/// Logs to standard error in the configured format. The level comes from the settings (the
/// server's `log_level`, which `RALF_LOG` sets too), else from `RALF_LOG` (the runner), else
/// ralf's default.
pub(crate) fn init_logging(log: &LogSettings) {
    let level = log.level.clone().or_else(|| {
        std::env::var("RALF_LOG")
            .ok()
            .filter(|l| !l.trim().is_empty())
    });
    let filter = level
        .and_then(|level| tracing_subscriber::EnvFilter::try_new(level).ok())
        .unwrap_or_else(|| tracing_subscriber::EnvFilter::new(LogSettings::DEFAULT_LEVEL));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match log.format {
        // Colours only on a terminal: a log file gets no escape codes.
        LogFormat::Human => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
        // The fields of the spans a message is in (`task.id`, `request.id`) are on its line.
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(true)
            .init(),
    }
}

/// With no admin configured and no user in the database, ralf creates `admin` with a random
/// password and writes that password to a file only its owner can read, beside the database
/// (never to the log).
async fn first_admin_if_none(settings: &Settings) -> anyhow::Result<Option<AdminBootstrap>> {
    let store = ralf_store::Store::connect(&settings.database)
        .await
        .with_context(|| format!("opening the database {}", settings.database.redacted()))?;
    let users = store.count_users().await?;
    store.close().await;
    if users > 0 {
        return Ok(None);
    }
    let file = initial_admin_password_file(settings)?;
    let password = ralf_core::token::generate()[..24].to_string();
    write_private(&file, &password).with_context(|| format!("writing {}", file.display()))?;
    tracing::warn!(
        file = %file.display(),
        "no admin was configured and the database has no users: created user \"admin\"; its password is in the file"
    );
    Ok(Some(AdminBootstrap {
        login: "admin".into(),
        password,
        name: "Admin".into(),
        email: "admin@localhost".into(),
    }))
}

/// Where the generated password of the first admin is written: beside an SQLite database, in
/// the working directory with PostgreSQL. The server removes the file once that admin has
/// changed the password.
fn initial_admin_password_file(settings: &Settings) -> anyhow::Result<std::path::PathBuf> {
    let dir = match &settings.database {
        DatabaseSettings::Sqlite { path } => {
            path.parent().map(|p| p.to_path_buf()).unwrap_or_default()
        }
        DatabaseSettings::Postgres { .. } => std::env::current_dir()?,
    };
    Ok(dir.join("initial-admin-password"))
}

/// Raises the soft limit of open files to the hard limit: every client connection is a file,
/// and the usual soft limit (1024) is small for a server. A failure is logged, not fatal.
fn raise_open_files_limit() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) if soft < hard => match setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
            Ok(()) => tracing::debug!(from = soft, to = hard, "raised the open files limit"),
            Err(e) => tracing::warn!(soft, hard, error = %e, "cannot raise the open files limit"),
        },
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "cannot read the open files limit"),
    }
}

fn write_private(path: &std::path::Path, content: &str) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut f = options.open(path)?;
    writeln!(f, "{content}")
}
