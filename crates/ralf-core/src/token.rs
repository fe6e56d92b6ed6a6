//! Bearer tokens and session cookies: random values shown once, stored only as digests.

use rand::RngCore;
use sha2::{Digest, Sha256};

/// A new random token: 32 bytes as 64 lower-case hex characters (Semaphore lower-cases the
/// whole `Authorization` header, so tokens must survive that).
pub fn generate() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    hex(&bytes)
}

/// The digest under which a token or session secret is stored and looked up.
pub fn digest(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_lowercase_and_distinct() {
        let a = generate();
        assert_eq!(a.len(), 64);
        assert_eq!(a, a.to_lowercase());
        assert_ne!(a, generate());
        assert_eq!(digest(&a), digest(&a));
        assert_ne!(digest(&a), a);
    }
}
