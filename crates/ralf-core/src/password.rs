//! Password hashing: argon2id for new hashes; bcrypt hashes imported from Semaphore still verify.
//! Both are slow on purpose: call them from a blocking thread.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use rand::rngs::OsRng;

/// The PHC string of an argon2id hash of `password`.
pub fn hash(password: &str) -> String {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .expect("argon2 with default parameters accepts any password")
        .to_string()
}

/// Whether `password` matches `stored` (argon2 PHC string, or a `$2a$`/`$2b$`/`$2y$` bcrypt hash).
/// An empty or malformed stored hash matches nothing.
pub fn verify(password: &str, stored: &str) -> bool {
    if stored.starts_with("$2") {
        return bcrypt::verify(password, stored).unwrap_or(false);
    }
    match PasswordHash::new(stored) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// Checks a login's password: against `stored` when the login names an account with a
/// password, else against a fixed hash of the same algorithm and cost, so that unknown logins
/// take as long to refuse as wrong passwords (the answer's timing does not tell which accounts
/// exist).
pub fn verify_login(password: &str, stored: Option<&str>) -> bool {
    static DUMMY: std::sync::LazyLock<String> =
        std::sync::LazyLock::new(|| hash("no account has this password"));
    match stored.filter(|s| !s.is_empty()) {
        Some(stored) => verify(password, stored),
        None => {
            let _ = verify(password, &DUMMY);
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argon2_hashes_verify() {
        let h = hash("correct horse");
        assert!(h.starts_with("$argon2id$"));
        assert!(verify("correct horse", &h));
        assert!(!verify("wrong", &h));
    }

    #[test]
    fn semaphore_bcrypt_hashes_verify() {
        let h = bcrypt::hash("changeme", 4).unwrap();
        assert!(verify("changeme", &h));
        assert!(!verify("changeme!", &h));
    }

    #[test]
    fn empty_hash_matches_nothing() {
        assert!(!verify("", ""));
        assert!(!verify("x", "not-a-hash"));
    }
}
