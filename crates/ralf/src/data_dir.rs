//! The data directory: created readable by its owner only (0700), or made so at start, and the
//! access key kept in it (`access-key`, 0600) when none is configured: generated on the first
//! start, read on the next ones. A configured key always wins.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::Context;
use ralf_core::secret::{SecretCipher, generate_key};

/// The generated key's file in the data directory.
pub const KEY_FILE: &str = "access-key";

/// Creates the data directory (0700) or takes group and other access away from it.
pub fn prepare(dir: &Path) -> anyhow::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create the data directory {}", dir.display()))?;
    let mode = std::fs::metadata(dir)
        .with_context(|| format!("data directory {}", dir.display()))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("cannot make {} private", dir.display()))?;
        tracing::info!(dir = %dir.display(), was = format!("{:o}", mode & 0o777),
            "made the data directory accessible to its owner only (0700)");
    }
    Ok(())
}

/// The key's file in `data_dir`.
pub fn key_file(data_dir: &Path) -> PathBuf {
    data_dir.join(KEY_FILE)
}

/// Sets `access_key` to the key in the data directory's key file unless a key is configured,
/// generating the file first if there is none.
pub fn use_access_key(access_key: &mut Option<String>, data_dir: &Path) -> anyhow::Result<()> {
    let file = key_file(data_dir);
    if access_key.is_some() {
        if file.exists() {
            tracing::info!(file = %file.display(),
                "access_key_encryption is configured: the key file in the data directory is not used");
        }
        return Ok(());
    }
    let key = match read_key(&file)? {
        Some(key) => {
            tracing::info!(file = %file.display(),
                "no access_key_encryption is configured: secrets are sealed with the key in the file");
            key
        }
        None => {
            let key = generate_key();
            match write_key(&file, &key, true) {
                Ok(()) => {
                    tracing::info!(file = %file.display(),
                        "no access_key_encryption is configured: generated a key for the secrets \
                         into the file (keep it with the database's backups)");
                    key
                }
                // Another process generated it meanwhile.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    read_key(&file)?.with_context(|| format!("{} vanished", file.display()))?
                }
                Err(e) => return Err(e).with_context(|| format!("writing {}", file.display())),
            }
        }
    };
    *access_key = Some(key);
    Ok(())
}

/// The key in `file` (made private if it was not), or `None` when there is no such file.
pub fn read_key(file: &Path) -> anyhow::Result<Option<String>> {
    let text = match std::fs::read_to_string(file) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("reading {}", file.display())),
    };
    let mode = std::fs::metadata(file)?.permissions().mode();
    if mode & 0o077 != 0 {
        std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("cannot make {} private", file.display()))?;
        tracing::info!(file = %file.display(), "made the key file readable by its owner only (0600)");
    }
    let key = text.trim().to_string();
    SecretCipher::new(Some(&key)).map_err(|_| {
        anyhow::anyhow!(
            "{} does not hold an access key (base64 of 32 bytes)",
            file.display()
        )
    })?;
    Ok(Some(key))
}

/// Writes `key` to `file`, readable by its owner only; `new_only`: fail if the file exists.
pub fn write_key(file: &Path, key: &str, new_only: bool) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).mode(0o600);
    if new_only {
        options.create_new(true);
    } else {
        options.create(true).truncate(true);
    }
    let mut f = options.open(file)?;
    f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    writeln!(f, "{key}")?;
    f.sync_all()
}
