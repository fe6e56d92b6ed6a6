//! Secrets at rest in Semaphore's `access_key_encryption` format: AES-256-GCM under a 32-byte
//! key, a random 12-byte nonce prepended to the ciphertext, the whole base64-encoded. Without a
//! key, Semaphore stores the plaintext base64-encoded; ralf reads that form too (a database
//! written so is re-sealed under a key when a server first starts on it). Also the key check
//! that tells whether a key is the one a database's secrets were sealed with, and new keys.

use aes_gcm::aead::{Aead, KeyInit, OsRng};
use aes_gcm::{AeadCore, Aes256Gcm, Key, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;

const NONCE_LEN: usize = 12;

/// What the key check seals: a database's check opens to this under its key only.
const KEY_CHECK_PLAINTEXT: &str = "ralf access key check";

/// A new random key in the configured form: base64 of 32 bytes.
pub fn generate_key() -> String {
    B64.encode(Aes256Gcm::generate_key(&mut OsRng))
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SecretError {
    #[error("the access key encryption key must be base64 of 32 bytes")]
    BadKey,
    #[error("cannot decrypt a stored secret, perhaps the encryption key was changed")]
    Decrypt,
}

/// Encrypts and decrypts stored secrets. Cheap to clone.
#[derive(Clone)]
pub struct SecretCipher {
    cipher: Option<Aes256Gcm>,
}

impl std::fmt::Debug for SecretCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretCipher")
            .field("encrypting", &self.cipher.is_some())
            .finish()
    }
}

impl SecretCipher {
    /// A cipher for Semaphore's `access_key_encryption` value (base64 of 32 bytes), or the
    /// plain base64 store when no key is configured.
    pub fn new(access_key_encryption: Option<&str>) -> Result<Self, SecretError> {
        let cipher = match access_key_encryption {
            None => None,
            Some(encoded) => {
                let key = B64
                    .decode(encoded.trim())
                    .map_err(|_| SecretError::BadKey)?;
                if key.len() != 32 {
                    return Err(SecretError::BadKey);
                }
                Some(Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&key)))
            }
        };
        Ok(SecretCipher { cipher })
    }

    pub fn is_encrypting(&self) -> bool {
        self.cipher.is_some()
    }

    pub fn encrypt(&self, plaintext: &str) -> String {
        match &self.cipher {
            None => B64.encode(plaintext),
            Some(cipher) => {
                let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
                let sealed = cipher
                    .encrypt(&nonce, plaintext.as_bytes())
                    .expect("AES-GCM encryption of an in-memory buffer cannot fail");
                let mut out = nonce.to_vec();
                out.extend_from_slice(&sealed);
                B64.encode(out)
            }
        }
    }

    /// A fresh key check for this key (random each time, like every sealed value).
    pub fn key_check(&self) -> String {
        self.encrypt(KEY_CHECK_PLAINTEXT)
    }

    /// Whether `check` was made by [`SecretCipher::key_check`] under this key.
    pub fn opens_key_check(&self, check: &str) -> bool {
        self.decrypt(check)
            .is_ok_and(|text| text == KEY_CHECK_PLAINTEXT)
    }

    /// A stored secret in this key's form or, failing that, in the keyless form (plain
    /// base64, as a database that never had a key holds it).
    pub fn decrypt_or_keyless(&self, stored: &str) -> Result<String, SecretError> {
        self.decrypt(stored).or_else(|error| {
            if self.cipher.is_some() {
                SecretCipher { cipher: None }.decrypt(stored)
            } else {
                Err(error)
            }
        })
    }

    pub fn decrypt(&self, stored: &str) -> Result<String, SecretError> {
        let bytes = B64
            .decode(stored.trim())
            .map_err(|_| SecretError::Decrypt)?;
        let plain = match &self.cipher {
            None => bytes,
            Some(cipher) => {
                if bytes.len() < NONCE_LEN {
                    return Err(SecretError::Decrypt);
                }
                let (nonce, sealed) = bytes.split_at(NONCE_LEN);
                cipher
                    .decrypt(Nonce::from_slice(nonce), sealed)
                    .map_err(|_| SecretError::Decrypt)?
            }
        };
        String::from_utf8(plain).map_err(|_| SecretError::Decrypt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "hgmC7G6Gj5dKpbj4l5Y+e2DyQ3t7kp0ZpkvXkmMvmQ4=";

    #[test]
    fn round_trips_and_never_stores_plaintext() {
        let c = SecretCipher::new(Some(KEY)).unwrap();
        let stored = c.encrypt("hunter2-private-key");
        assert!(!stored.contains("hunter2"));
        assert_ne!(
            stored,
            c.encrypt("hunter2-private-key"),
            "nonce must be random"
        );
        assert_eq!(c.decrypt(&stored).unwrap(), "hunter2-private-key");
    }

    #[test]
    fn reads_semaphore_format_nonce_then_ciphertext() {
        // Built by hand the way Semaphore does: base64(nonce || gcm.Seal(plaintext)).
        let key = B64.decode(KEY).unwrap();
        let cipher = Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&key));
        let nonce = [7u8; NONCE_LEN];
        let mut blob = nonce.to_vec();
        blob.extend(
            cipher
                .encrypt(
                    Nonce::from_slice(&nonce),
                    b"{\"login\":\"a\",\"password\":\"b\"}".as_ref(),
                )
                .unwrap(),
        );
        let c = SecretCipher::new(Some(KEY)).unwrap();
        assert_eq!(
            c.decrypt(&B64.encode(blob)).unwrap(),
            "{\"login\":\"a\",\"password\":\"b\"}"
        );
    }

    #[test]
    fn without_a_key_secrets_are_base64_as_in_semaphore() {
        let c = SecretCipher::new(None).unwrap();
        assert_eq!(c.encrypt("abc"), "YWJj");
        assert_eq!(c.decrypt("YWJj").unwrap(), "abc");
    }

    #[test]
    fn key_checks_open_under_their_key_only() {
        let key = generate_key();
        assert_ne!(key, generate_key());
        let c = SecretCipher::new(Some(&key)).unwrap();
        let other = SecretCipher::new(Some(KEY)).unwrap();
        assert!(c.opens_key_check(&c.key_check()));
        assert!(!other.opens_key_check(&c.key_check()));
        assert!(!c.opens_key_check(&c.encrypt("something else")));
        let keyless = SecretCipher::new(None).unwrap().encrypt("old secret");
        assert_eq!(c.decrypt_or_keyless(&keyless).unwrap(), "old secret");
        assert_eq!(c.decrypt_or_keyless(&c.encrypt("new")).unwrap(), "new");
    }

    #[test]
    fn wrong_key_or_bad_key_is_an_error() {
        assert_eq!(
            SecretCipher::new(Some("c2hvcnQ=")).unwrap_err(),
            SecretError::BadKey
        );
        let stored = SecretCipher::new(Some(KEY)).unwrap().encrypt("x");
        let other =
            SecretCipher::new(Some("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")).unwrap();
        assert_eq!(other.decrypt(&stored).unwrap_err(), SecretError::Decrypt);
    }
}
