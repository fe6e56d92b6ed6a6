//! `ralf admin ...`: administration straight on the database, for when no one can log in yet.

use std::io::BufRead;
use std::process::ExitCode;

use anyhow::{Context, bail};
use ralf_store::DatabaseSettings;
use ralf_store::migrate::{MigrateError, MigrateOptions, TableReport};
use ralf_store::users::NewUser;

use crate::cli::{MigrateArgs, RotateKeyArgs, UserAddArgs};
use crate::{config, data_dir};

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

/// `ralf admin migrate`: copies every table of `--from` into `--to` (both brought to the current
/// schema first), checks the copy table by table and prints the check; a failed check leaves the
/// target as it was and exits 1.
pub async fn migrate(args: &MigrateArgs) -> anyhow::Result<ExitCode> {
    let parse = |side: &str, text: &str| {
        config::parse_database(text).map_err(|problem| anyhow::anyhow!("--{side}: {problem}"))
    };
    let (from, to) = (parse("from", &args.from)?, parse("to", &args.to)?);
    if let DatabaseSettings::Sqlite { path } = &from
        && !path.is_file()
    {
        bail!(
            "--from: the SQLite database {} does not exist",
            path.display()
        );
    }
    if same_database(&from, &to) {
        bail!(
            "--from and --to name the same database ({})",
            from.redacted()
        );
    }
    let source = open("source", &from).await?;
    let target = match open("target", &to).await {
        Ok(target) => target,
        Err(e) => {
            source.close().await;
            return Err(e);
        }
    };
    eprintln!("copying {} to {}", from.redacted(), to.redacted());
    let options = MigrateOptions { force: args.force };
    let result = source.migrate_into(&target, &options).await;
    source.close().await;
    target.close().await;
    match result {
        Ok(reports) => {
            print_reports(&reports);
            let rows: u64 = reports.iter().map(|r| r.target_rows).sum();
            println!(
                "copied {} tables, {rows} rows, into {}; every table matches the source",
                reports.len(),
                to.redacted()
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(MigrateError::Mismatch(reports)) => {
            print_reports(&reports);
            let error = MigrateError::Mismatch(reports);
            bail!("{error}")
        }
        Err(error @ MigrateError::NotEmpty(_)) => {
            bail!("{error}; it was left as it is (--force empties it first)")
        }
        Err(error) => bail!("copying {} to {}: {error}", from.redacted(), to.redacted()),
    }
}

/// `ralf admin rotate-key`: re-seals every stored secret (keys, vault passwords, environment
/// secrets and passwords, the secret answers of waiting tasks) under a new random key, in one
/// transaction, with every server stopped. A key from the data directory's key file is replaced
/// in the file; a configured key cannot be changed here, so the new one is written to a file
/// beside it for the administrator to configure.
pub async fn rotate_key(args: &RotateKeyArgs) -> anyhow::Result<ExitCode> {
    let settings = config::load_from_process_env(&args.database.flags())?;
    let key_file = data_dir::key_file(&settings.data_dir);
    let configured = settings.access_key_encryption.is_some();
    let old_key = match &settings.access_key_encryption {
        Some(key) => Some(key.clone()),
        None => data_dir::read_key(&key_file)?,
    };
    let old = ralf_core::secret::SecretCipher::new(old_key.as_deref())
        .map_err(|e| anyhow::anyhow!("the current access key: {e}"))?;
    let _lock = match &settings.database {
        DatabaseSettings::Sqlite { path } => Some(ralf_server::lock_sqlite(path)?),
        DatabaseSettings::Postgres { .. } => None,
    };
    let store = ralf_store::Store::connect(&settings.database)
        .await
        .with_context(|| format!("opening the database {}", settings.database.redacted()))?;
    let result = rotate(&store, &settings, &old, &key_file, configured).await;
    store.close().await;
    result
}

async fn rotate(
    store: &ralf_store::Store,
    settings: &ralf_server::Settings,
    old: &ralf_core::secret::SecretCipher,
    key_file: &std::path::Path,
    configured: bool,
) -> anyhow::Result<ExitCode> {
    let lease = ralf_server::cluster::LEASES.node;
    let since = ralf_core::Timestamp(chrono::Utc::now() - lease);
    let running = store.live_nodes(since).await?;
    if running > 0 {
        bail!(
            "{running} server(s) ran on this database in the last {} s: stop every server \
             first (a running server keeps the old key)",
            lease.as_secs()
        );
    }
    let check = store.key_check().await?;
    if let Some(check) = &check
        && !old.opens_key_check(check)
    {
        bail!(
            "the current access key ({}) is not the one this database's secrets are sealed with",
            if configured {
                "configured".to_string()
            } else {
                format!("from {}", key_file.display())
            }
        );
    }
    let new_key = ralf_core::secret::generate_key();
    let new = ralf_core::secret::SecretCipher::new(Some(&new_key))?;
    let mut new_file = key_file.as_os_str().to_owned();
    new_file.push(".new");
    let new_file = std::path::PathBuf::from(new_file);
    // The new key is on disk before any secret is sealed with it.
    data_dir::write_key(&new_file, &new_key, false)
        .with_context(|| format!("writing {}", new_file.display()))?;
    let keyless = check.is_none();
    let report = store
        .reseal_secrets(check.as_deref(), &new.key_check(), |stored| {
            let plain = if keyless {
                old.decrypt_or_keyless(stored)
            } else {
                old.decrypt(stored)
            };
            plain
                .map(|plain| new.encrypt(&plain))
                .map_err(|e| e.to_string())
        })
        .await;
    let report = match report {
        Ok(report) => report,
        Err(e) => {
            let _ = std::fs::remove_file(&new_file);
            bail!("nothing was changed: {e}");
        }
    };
    println!(
        "re-sealed under a new access key, in {}: {} keys and environment secrets, {} environment \
         passwords, {} secret answers of waiting tasks",
        settings.database.redacted(),
        report.access_keys,
        report.environments,
        report.task_secrets
    );
    if configured {
        println!(
            "the access key is configured (access_key_encryption), so it was not changed there: \
             the new key is in {} (readable by you only); configure it on every server, for \
             example RALF_ACCESS_KEY_ENCRYPTION_FILE={}, before starting them: the old key no \
             longer opens the secrets",
            new_file.display(),
            new_file.display()
        );
    } else {
        std::fs::rename(&new_file, key_file).with_context(|| {
            format!(
                "the secrets are sealed under the key in {}, but it could not replace {}: \
                 move it there yourself before starting a server",
                new_file.display(),
                key_file.display()
            )
        })?;
        println!(
            "the new key is in {}, where servers on this data directory read it; a server on \
             another data directory needs a copy of it (the old key no longer opens the secrets)",
            key_file.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

async fn open(side: &str, settings: &DatabaseSettings) -> anyhow::Result<ralf_store::Store> {
    ralf_store::Store::connect(settings)
        .await
        .with_context(|| format!("opening the {side} database {}", settings.redacted()))
}

/// The same SQLite file (by its canonical path; the target may not exist yet) or the same URL.
fn same_database(a: &DatabaseSettings, b: &DatabaseSettings) -> bool {
    let canonical = |path: &std::path::Path| {
        path.canonicalize().unwrap_or_else(|_| {
            let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
            let dir = dir.unwrap_or(std::path::Path::new("."));
            let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
            dir.join(path.file_name().unwrap_or_default())
        })
    };
    match (a, b) {
        (DatabaseSettings::Sqlite { path: a }, DatabaseSettings::Sqlite { path: b }) => {
            canonical(a) == canonical(b)
        }
        (DatabaseSettings::Postgres { url: a }, DatabaseSettings::Postgres { url: b }) => {
            a.trim() == b.trim()
        }
        _ => false,
    }
}

/// `table rows checksum ok`, one line per table; a differing side shows `source/target`.
fn print_reports(reports: &[TableReport]) {
    let width = reports
        .iter()
        .map(|r| r.table.len())
        .max()
        .unwrap_or(5)
        .max(5);
    println!("{:width$}  {:>9}  {:16}  ok", "table", "rows", "checksum");
    for r in reports {
        let short = |sum: &str| sum.chars().take(16).collect::<String>();
        let rows = if r.source_rows == r.target_rows {
            r.source_rows.to_string()
        } else {
            format!("{}/{}", r.source_rows, r.target_rows)
        };
        let checksum = if r.source_checksum == r.target_checksum {
            short(&r.source_checksum)
        } else {
            format!(
                "{}/{}",
                short(&r.source_checksum),
                short(&r.target_checksum)
            )
        };
        let ok = if r.ok() { "ok" } else { "DIFFERS" };
        println!("{:width$}  {rows:>9}  {checksum:16}  {ok}", r.table);
    }
}
