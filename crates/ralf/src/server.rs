//! `ralf server`: resolve the configuration, make sure there is an admin, serve until signalled.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;
use ralf_server::{AdminBootstrap, DatabaseSettings, Settings};

use crate::config::{self, ServerFlags};
use crate::data_dir;

pub async fn run(flags: &ServerFlags) -> anyhow::Result<ExitCode> {
    init_logging();
    let mut settings = config::load_from_process_env(flags)?;
    data_dir::prepare(&settings.data_dir)?;
    data_dir::use_access_key(&mut settings.access_key_encryption, &settings.data_dir)?;
    if settings.admin.is_none() {
        settings.admin = first_admin_if_none(&settings).await?;
    }
    let server = ralf_server::start(settings).await?;
    server.run_until_signalled().await?;
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("RALF_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn,tower_http=warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
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
    let dir = match &settings.database {
        DatabaseSettings::Sqlite { path } => {
            path.parent().map(|p| p.to_path_buf()).unwrap_or_default()
        }
        DatabaseSettings::Postgres { .. } => std::env::current_dir()?,
    };
    let file = dir.join("initial-admin-password");
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

fn write_private(path: &std::path::Path, content: &str) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut f = options.open(path)?;
    writeln!(f, "{content}")
}
