//! The access key at start: refuses a key that is not the one the database's secrets are sealed
//! with (the key check in `options` says), and seals under the key the secrets of a database
//! that had none (plain base64, Semaphore's keyless form), all in one transaction.

use anyhow::bail;
use ralf_core::secret::SecretCipher;
use ralf_store::{Store, StoreError};

/// Checks `cipher` against the database's key check, writing the check (and re-sealing every
/// secret under the key) when there is none yet.
pub async fn adopt(store: &Store, cipher: &SecretCipher) -> anyhow::Result<()> {
    let wrong_key = || {
        anyhow::anyhow!(
            "the access key is not the one this database's secrets are sealed with: configure \
             the database's key (access_key_encryption, or the access-key file of the data \
             directory that first served it; after `ralf admin rotate-key`, the new key)"
        )
    };
    let check = store.key_check().await?;
    if !cipher.is_encrypting() {
        if check.is_some() {
            bail!("this database's secrets are sealed under an access key, but none is configured");
        }
        tracing::warn!(
            "no access_key_encryption is set: secrets are stored base64-encoded only; \
             set RALF_ACCESS_KEY_ENCRYPTION (or SEMAPHORE_ACCESS_KEY_ENCRYPTION) to base64 of 32 random bytes"
        );
        return Ok(());
    }
    if let Some(check) = check {
        return if cipher.opens_key_check(&check) {
            Ok(())
        } else {
            Err(wrong_key())
        };
    }
    let mut keyless = 0u64;
    let sealed = store
        .reseal_secrets(None, &cipher.key_check(), |stored| {
            let plain = match cipher.decrypt(stored) {
                Ok(plain) => plain,
                Err(_) => {
                    keyless += 1;
                    cipher.decrypt_or_keyless(stored).map_err(|_| {
                        "the secret is sealed under another key than the configured one".to_string()
                    })?
                }
            };
            Ok(cipher.encrypt(&plain))
        })
        .await;
    match sealed {
        Ok(report) => {
            if keyless > 0 {
                tracing::info!(
                    secrets = keyless,
                    "sealed under the access key the secrets that were stored base64-encoded only"
                );
            }
            tracing::debug!(?report, "wrote the access key check");
            Ok(())
        }
        // Another server wrote the check first: its key must be ours.
        Err(StoreError::Conflict(_)) => match store.key_check().await? {
            Some(check) if cipher.opens_key_check(&check) => Ok(()),
            _ => Err(wrong_key()),
        },
        Err(StoreError::Invalid(problem)) => Err(anyhow::anyhow!("{problem}")).map_err(|e| {
            e.context(
                "a stored secret opens neither under the access key nor as plain base64; \
                 configure the key the database's secrets were sealed with",
            )
        }),
        Err(e) => Err(e.into()),
    }
}
