//! Secret tokens: 256 random bits, URL-safe, shown once and stored as SHA-256.
//! A token is found by the hash of what was presented, so no comparison of
//! secrets ever happens byte by byte in a way that leaks timing.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// A freshly generated token: the secret (shown once) and what is stored.
pub struct IssuedToken {
    pub secret: String,
    pub hash: Vec<u8>,
    pub prefix: String,
}

/// Makes a token `<kind>_<43 base64url chars>` carrying 256 random bits.
pub fn issue(kind: &str) -> IssuedToken {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let secret = format!("{kind}_{}", URL_SAFE_NO_PAD.encode(bytes));
    let prefix = secret.chars().take(kind.len() + 7).collect();
    IssuedToken {
        hash: hash(&secret),
        prefix,
        secret,
    }
}

/// SHA-256 of the presented token. Tokens carry 256 random bits, so a fast
/// hash is enough: there is nothing to brute-force.
pub fn hash(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}

/// Whether `secret` has the shape of a token of `kind` (cheap pre-check that
/// spares the database junk headers).
pub fn well_formed(kind: &str, secret: &str) -> bool {
    secret
        .strip_prefix(kind)
        .and_then(|s| s.strip_prefix('_'))
        .is_some_and(|body| {
            body.len() == 43
                && body
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_tokens_are_unique_well_formed_and_hash_to_what_is_stored() {
        let a = issue("scim");
        let b = issue("scim");
        assert_ne!(a.secret, b.secret);
        assert!(well_formed("scim", &a.secret));
        assert_eq!(hash(&a.secret), a.hash);
        assert!(a.secret.starts_with(&a.prefix));
        assert_eq!(a.hash.len(), 32);
    }

    #[test]
    fn malformed_tokens_are_recognised_without_a_lookup() {
        assert!(!well_formed("scim", "scim_short"));
        assert!(!well_formed(
            "scim",
            "other_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
        ));
        assert!(!well_formed(
            "scim",
            "scim_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA!A"
        ));
        assert!(well_formed(
            "scim",
            "scim_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
        ));
    }
}
