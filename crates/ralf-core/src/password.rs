//! Password hashing: argon2id for new hashes; bcrypt hashes imported from Semaphore still verify.
//! Both are slow on purpose: call them from a blocking thread.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, SaltString};
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
        Ok(parsed) => verify_argon2(password, &parsed).unwrap_or(false),
        Err(_) => false,
    }
}

/// Checks an argon2 hash in a memory area kept by the calling thread: argon2 needs m_cost KiB
/// (19 MiB by default) per check, and allocating that afresh every time leaves the memory
/// allocator holding many such areas after a burst of logins. A thread that checks passwords
/// holds one, reused. `None` when the hash is not a usable argon2 hash.
fn verify_argon2(password: &str, parsed: &PasswordHash<'_>) -> Option<bool> {
    use argon2::{Algorithm, Block, Params, Version};
    thread_local! {
        static MEMORY: std::cell::RefCell<Vec<Block>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    let algorithm = Algorithm::try_from(parsed.algorithm).ok()?;
    let version = match parsed.version {
        Some(v) => Version::try_from(v).ok()?,
        None => Version::default(),
    };
    let params = Params::try_from(parsed).ok()?;
    let expected = parsed.hash?;
    let mut salt = [0u8; 64];
    let salt = parsed.salt?.decode_b64(&mut salt).ok()?;
    let mut out = vec![0u8; expected.len()];
    let argon2 = Argon2::new(algorithm, version, params.clone());
    MEMORY.with_borrow_mut(|memory| {
        // Every block is written before it is read, so old contents do no harm.
        memory.resize(params.block_count(), Block::default());
        argon2
            .hash_password_into_with_memory(password.as_bytes(), salt, &mut out, &mut memory[..])
            .ok()
    })?;
    let out = argon2::password_hash::Output::new(&out).ok()?;
    // Output's equality is constant-time.
    Some(out == expected)
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
