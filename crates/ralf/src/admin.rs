//! `ralf admin ...`: administration straight on the database, for when no one can log in yet.

use std::io::BufRead;
use std::process::ExitCode;

use anyhow::{Context, bail};
use ralf_store::users::NewUser;

use crate::cli::UserAddArgs;
use crate::config;

/// `ralf admin user add`: creates a user; the password comes from stdin or a prompt without echo.
pub async fn add_user(args: &UserAddArgs) -> anyhow::Result<ExitCode> {
    let settings = config::load_from_process_env(&args.database.flags())?;
    let password = if args.password_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("reading the password from stdin")?;
        line.trim_end_matches(['\r', '\n']).to_string()
    } else {
        let first = rpassword::prompt_password("Password: ").context("reading the password")?;
        let again =
            rpassword::prompt_password("Password (again): ").context("reading the password")?;
        if first != again {
            bail!("the passwords do not match");
        }
        first
    };
    if password.is_empty() {
        bail!("the password must not be empty");
    }
    let login =
        ralf_core::validate::name("login", &args.login).map_err(|e| anyhow::anyhow!(e.0))?;
    let name = args.name.clone().unwrap_or_else(|| login.clone());
    let email = args
        .email
        .clone()
        .unwrap_or_else(|| format!("{login}@localhost"));
    let hash = tokio::task::spawn_blocking(move || ralf_core::password::hash(&password)).await?;

    let store = ralf_store::Store::connect(&settings.database)
        .await
        .with_context(|| format!("opening the database {}", settings.database.redacted()))?;
    let created = store
        .create_user(&NewUser {
            username: &login,
            name: &name,
            email: &email,
            password_hash: &hash,
            admin: args.admin,
            external: false,
            alert: false,
        })
        .await;
    store.close().await;
    let user = created.map_err(|e| anyhow::anyhow!("cannot create user {login:?}: {e}"))?;
    println!(
        "created user {} (id {}){}",
        user.username,
        user.id,
        if user.admin { ", admin" } else { "" }
    );
    Ok(ExitCode::SUCCESS)
}
