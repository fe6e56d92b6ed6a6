//! Signatures of inbound webhooks: HMAC-SHA256 of a body with a shared secret (GitHub's
//! `X-Hub-Signature-256`, Gitea's and most others'), and shared tokens, each compared in
//! constant time so that how long a refusal takes says nothing about the secret.

use sha2::{Digest, Sha256};

/// SHA-256's block size in bytes, which HMAC pads its key to.
const BLOCK: usize = 64;

/// HMAC-SHA256 of `body` with `secret` (RFC 2104), as lower-case hex: what GitHub sends after
/// `sha256=` in `X-Hub-Signature-256`.
pub fn hmac_sha256_hex(secret: &[u8], body: &[u8]) -> String {
    to_hex(&hmac_sha256(secret, body))
}

/// Whether `signature_hex` (with or without a `sha256=` prefix, hex of either case) is the
/// HMAC-SHA256 of `body` with `secret`. The comparison takes the same time wherever the
/// first difference is.
pub fn verify_hmac_sha256(secret: &[u8], body: &[u8], signature_hex: &str) -> bool {
    let given = signature_hex.trim();
    let given = given.strip_prefix("sha256=").unwrap_or(given);
    let Some(given) = from_hex(given) else {
        return false;
    };
    constant_time_eq(&hmac_sha256(secret, body), &given)
}

/// Whether the token a sender gave is the expected one, compared in constant time. An empty
/// expected token matches nothing.
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

/// Equal lengths and equal bytes, looking at every byte whatever the first difference. The
/// lengths are not secret (a signature's is fixed; a token's is the sender's to know).
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let difference = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(difference) == 0
}

fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 0xf)] as char);
    }
    out
}

fn from_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    let digit = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    text.as_bytes()
        .chunks(2)
        .map(|pair| Some((digit(pair[0])? << 4) | digit(pair[1])?))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_published_test_vectors() {
        // RFC 4231, test case 2.
        assert_eq!(
            hmac_sha256_hex(b"Jefe", b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // RFC 4231, test case 6: a key longer than the block.
        assert_eq!(
            hmac_sha256_hex(
                &[0xaa; 131],
                b"Test Using Larger Than Block-Size Key - Hash Key First"
            ),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
        // GitHub's documented example.
        assert_eq!(
            hmac_sha256_hex(b"It's a Secret to Everybody", b"Hello, World!"),
            "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
        );
    }

    #[test]
    fn verifies_with_or_without_the_prefix() {
        let sig = hmac_sha256_hex(b"s3cret", b"{\"ref\":\"main\"}");
        assert!(verify_hmac_sha256(b"s3cret", b"{\"ref\":\"main\"}", &sig));
        assert!(verify_hmac_sha256(
            b"s3cret",
            b"{\"ref\":\"main\"}",
            &format!("sha256={}", sig.to_uppercase())
        ));
        assert!(!verify_hmac_sha256(b"other", b"{\"ref\":\"main\"}", &sig));
        assert!(!verify_hmac_sha256(b"s3cret", b"{\"ref\":\"dev\"}", &sig));
        assert!(!verify_hmac_sha256(b"s3cret", b"x", ""));
        assert!(!verify_hmac_sha256(b"s3cret", b"x", "sha256=zz"));
        assert!(!verify_hmac_sha256(b"s3cret", b"x", &sig[..10]));
    }

    #[test]
    fn tokens_compare_whole() {
        assert!(token_matches("abc", "abc"));
        assert!(!token_matches("abc", "abd"));
        assert!(!token_matches("abc", "ab"));
        assert!(!token_matches("", ""));
    }
}
