//! `ralf admin vacuum`, `backup` and `restore`: the database's upkeep. A backup is an SQLite
//! file whatever the backend: SQLite's own consistent copy (`VACUUM INTO`) or, from
//! PostgreSQL, the checked whole-database copy of `ralf admin migrate` read in one snapshot;
//! both run while servers run. A restore copies a backup into the configured database, either
//! backend, with every server stopped.

use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, bail};
use ralf_store::DatabaseSettings;
use ralf_store::migrate::{MigrateError, MigrateOptions};

use crate::cli::{BackupArgs, RestoreArgs, VacuumArgs};
use crate::config;

/// Applies the retention policies, then reclaims the space; prints what it did.
pub async fn vacuum(args: &VacuumArgs) -> anyhow::Result<ExitCode> {
    let settings = config::load_from_process_env(&args.database.flags())?;
    // SQLite's VACUUM rewrites the file and would stall a running server's writes.
    let _lock = match &settings.database {
        DatabaseSettings::Sqlite { path } => Some(ralf_server::lock_sqlite(path)?),
        DatabaseSettings::Postgres { .. } => None,
    };
    let store = open(&settings.database).await?;
    let result = async {
        let started = Instant::now();
        let report = store
            .sweep_retention(ralf_core::Timestamp::now(), ralf_server::retention::BATCH)
            .await
            .context("applying the retention policies")?;
        let swept = started.elapsed();
        let (before, after) = store.vacuum(args.full).await.context("vacuuming")?;
        println!(
            "retention: deleted {} finished tasks in {:.1} s; vacuum: {} before, {} after ({:.1} s)",
            report.tasks_deleted,
            swept.as_secs_f64(),
            size(before),
            size(after),
            (started.elapsed() - swept).as_secs_f64()
        );
        anyhow::Ok(ExitCode::SUCCESS)
    }
    .await;
    store.close().await;
    result
}

/// Writes the whole database to a new SQLite file.
pub async fn backup(args: &BackupArgs) -> anyhow::Result<ExitCode> {
    let settings = config::load_from_process_env(&args.database.flags())?;
    if args.to.exists() {
        bail!("--to: {} exists; name a new file", args.to.display());
    }
    if let Some(dir) = args.to.parent().filter(|d| !d.as_os_str().is_empty())
        && !dir.is_dir()
    {
        bail!("--to: the directory {} does not exist", dir.display());
    }
    let store = open(&settings.database).await?;
    let started = Instant::now();
    let result = match &settings.database {
        DatabaseSettings::Sqlite { .. } => store
            .vacuum_into(&args.to)
            .await
            .with_context(|| format!("writing {}", args.to.display())),
        DatabaseSettings::Postgres { .. } => export(&store, &args.to).await,
    };
    store.close().await;
    if let Err(e) = result {
        let _ = std::fs::remove_file(&args.to);
        return Err(e);
    }
    make_private(&args.to)?;
    let bytes = std::fs::metadata(&args.to).map(|m| m.len()).unwrap_or(0);
    println!(
        "backed up {} to {} ({}, {:.1} s); keep the access key (the data directory's \
         access-key file or access_key_encryption) apart from it: the backup's secrets open \
         only with that key",
        settings.database.redacted(),
        args.to.display(),
        size(bytes),
        started.elapsed().as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}

/// A PostgreSQL database copied, in one snapshot and checked table by table, into a new
/// SQLite file.
async fn export(store: &ralf_store::Store, to: &Path) -> anyhow::Result<()> {
    let target = open(&DatabaseSettings::Sqlite {
        path: to.to_path_buf(),
    })
    .await?;
    let copied = store
        .migrate_into(&target, &MigrateOptions::default())
        .await;
    target.close().await;
    for suffix in ["-wal", "-shm"] {
        let mut side = to.as_os_str().to_owned();
        side.push(suffix);
        let _ = std::fs::remove_file(side);
    }
    copied
        .map(|_| ())
        .map_err(|e| anyhow::anyhow!("exporting to {}: {e}", to.display()))
}

/// Copies a backup into the configured database, which must be empty unless `--force`.
pub async fn restore(args: &RestoreArgs) -> anyhow::Result<ExitCode> {
    let settings = config::load_from_process_env(&args.database.flags())?;
    if !args.from.is_file() {
        bail!("--from: the backup {} does not exist", args.from.display());
    }
    let _lock = match &settings.database {
        DatabaseSettings::Sqlite { path } => Some(ralf_server::lock_sqlite(path)?),
        DatabaseSettings::Postgres { .. } => None,
    };
    // The backup is read from a copy: opening a database brings its schema up to date, and
    // the backup itself stays as it was written.
    let scratch = tempfile::Builder::new()
        .prefix(".ralf-restore-")
        .tempdir_in(
            args.from
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
                .unwrap_or(Path::new(".")),
        )
        .context("making a scratch directory beside the backup")?;
    let copy = scratch.path().join("backup.db");
    std::fs::copy(&args.from, &copy).with_context(|| format!("reading {}", args.from.display()))?;
    let source = open(&DatabaseSettings::Sqlite { path: copy }).await?;
    let target = match open(&settings.database).await {
        Ok(target) => target,
        Err(e) => {
            source.close().await;
            return Err(e);
        }
    };
    let result = restore_into(&source, &target, args).await;
    source.close().await;
    target.close().await;
    match result {
        Ok(rows) => {
            println!(
                "restored {} ({rows} rows) into {}; every table matches the backup",
                args.from.display(),
                settings.database.redacted()
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => Err(e),
    }
}

async fn restore_into(
    source: &ralf_store::Store,
    target: &ralf_store::Store,
    args: &RestoreArgs,
) -> anyhow::Result<u64> {
    let lease = ralf_server::cluster::LEASES.node;
    let since = ralf_core::Timestamp(chrono::Utc::now() - lease);
    let running = target.live_nodes(since).await?;
    if running > 0 {
        bail!(
            "{running} server(s) ran on this database in the last {} s: stop every server first",
            lease.as_secs()
        );
    }
    let options = MigrateOptions { force: args.force };
    match source.migrate_into(target, &options).await {
        Ok(reports) => {
            target.forget_nodes().await?;
            Ok(reports.iter().map(|r| r.target_rows).sum())
        }
        Err(error @ MigrateError::NotEmpty(_)) => {
            bail!("{error}; it was left as it is (--force replaces what it holds)")
        }
        Err(error) => bail!("restoring {}: {error}", args.from.display()),
    }
}

async fn open(settings: &DatabaseSettings) -> anyhow::Result<ralf_store::Store> {
    ralf_store::Store::connect(settings)
        .await
        .with_context(|| format!("opening the database {}", settings.redacted()))
}

fn make_private(path: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .with_context(|| format!("making {} readable by its owner only", path.display()))
}

/// Bytes for people: `12.3 MiB`.
fn size(bytes: u64) -> String {
    let mut value = bytes as f64;
    for unit in ["B", "KiB", "MiB", "GiB"] {
        if value < 1024.0 {
            return format!("{value:.1} {unit}");
        }
        value /= 1024.0;
    }
    format!("{value:.1} TiB")
}
