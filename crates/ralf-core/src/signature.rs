//! Checks of what inbound webhooks send to prove they know a shared secret: an HMAC-SHA256 of
//! the request's body (GitHub's `X-Hub-Signature-256: sha256=<hex>`, and the many senders that
//! copy it), or the secret itself in a header. Every comparison takes the same time whatever
//! the inputs share, so a caller learns nothing from how long a refusal takes.

use sha2::{Digest, Sha256};

/// SHA-256's block size in bytes, which HMAC pads the key to.
const BLOCK: usize = 64;

/// The HMAC-SHA256 (RFC 2104) of `body` under `secret`, in lowercase hexadecimal.
pub fn hmac_sha256_hex(secret: &[u8], body: &[u8]) -> String {
    hmac_sha256(secret, body)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Whether `signature_hex` (hexadecimal, either case, with or without a `sha256=` prefix) is
/// the HMAC-SHA256 of `body` under `secret`. Constant-time in the signature's content.
pub fn verify_hmac_sha256(secret: &[u8], body: &[u8], signature_hex: &str) -> bool {
    let given = signature_hex.trim();
    let given = given.strip_prefix("sha256=").unwrap_or(given);
    let Some(given) = decode_hex(given) else {
        return false;
    };
    constant_time_eq(&hmac_sha256(secret, body), &given)
}

/// Whether `given` is `expected`, compared in constant time (in the contents; the length of
/// `expected` may show). An empty `expected` matches nothing.
pub fn token_matches(expected: &str, given: &str) -> bool {
    !expected.is_empty() && constant_time_eq(expected.as_bytes(), given.as_bytes())
}

fn hmac_sha256(secret: &[u8], body: &[u8]) -> [u8; 32] {
    let mut key = [0u8; BLOCK];
    if secret.len() > BLOCK {
        key[..32].copy_from_slice(&Sha256::digest(secret));
    } else {
        key[..secret.len()].copy_from_slice(secret);
    }
    let pad = |byte: u8| key.map(|k| k ^ byte);
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(body)
        .finalize();
    Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .into()
}

/// Equal lengths and contents, every byte looked at.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    let digit = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    text.as_bytes()
        .chunks(2)
        .map(|pair| Some(digit(pair[0])? << 4 | digit(pair[1])?))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_rfc_4231() {
        // Test case 2.
        assert_eq!(
            hmac_sha256_hex(b"Jefe", b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // Test case 6: a key longer than a block.
        assert_eq!(
            hmac_sha256_hex(
                &[0xaa; 131],
                b"Test Using Larger Than Block-Size Key - Hash Key First"
            ),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    #[test]
    fn matches_githubs_documented_example() {
        // docs.github.com, "Validating webhook deliveries".
        assert!(verify_hmac_sha256(
            b"It's a Secret to Everybody",
            b"Hello, World!",
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
        ));
    }

    #[test]
    fn a_signature_is_checked_with_or_without_its_prefix_in_either_case() {
        let signature = hmac_sha256_hex(b"s3cret", b"{}");
        assert!(verify_hmac_sha256(b"s3cret", b"{}", &signature));
        assert!(verify_hmac_sha256(
            b"s3cret",
            b"{}",
            &format!("sha256={signature}")
        ));
        assert!(verify_hmac_sha256(
            b"s3cret",
            b"{}",
            &signature.to_uppercase()
        ));
        assert!(!verify_hmac_sha256(b"s3cret", b"{ }", &signature));
        assert!(!verify_hmac_sha256(b"other", b"{}", &signature));
        assert!(!verify_hmac_sha256(b"s3cret", b"{}", &signature[..62]));
        assert!(!verify_hmac_sha256(b"s3cret", b"{}", "sha1=abcd"));
        assert!(!verify_hmac_sha256(b"s3cret", b"{}", ""));
    }

    #[test]
    fn tokens_match_only_when_equal_and_not_empty() {
        assert!(token_matches("abc", "abc"));
        assert!(!token_matches("abc", "abd"));
        assert!(!token_matches("abc", "ab"));
        assert!(!token_matches("", ""));
    }
}
