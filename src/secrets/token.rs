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
/// Makes a token `<kind>_<43 base64url chars>` whose first six bytes are
/// the time it was issued (milliseconds since 1970, big-endian) and whose
/// other 26 bytes (208 bits) are random, stored under [`ordered_key`]. Keys
/// of tokens issued one after the other arrive in order, so the unique
/// index on them grows at its end: a random hash lands on a random page of
/// the index, and every commit rewrites as many pages as it inserted keys.
/// The link then tells when it was issued, which its mail says anyway.
pub fn issue_ordered(kind: &str) -> IssuedToken {
    let mut bytes = [0u8; 32];
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    bytes[..6].copy_from_slice(&millis.to_be_bytes()[2..]);
    rand::rng().fill_bytes(&mut bytes[6..]);
    let secret = format!("{kind}_{}", URL_SAFE_NO_PAD.encode(bytes));
    let prefix = secret.chars().take(kind.len() + 7).collect();
    IssuedToken {
        hash: ordered_key(kind, &secret).unwrap_or_else(|| hash(&secret)),
        prefix,
        secret,
    }
}

/// The key a token of [`issue_ordered`] is stored under: its six time
/// bytes, then the SHA-256 of the whole token. `None` for a malformed token.
pub fn ordered_key(kind: &str, secret: &str) -> Option<Vec<u8>> {
    if !well_formed(kind, secret) {
        return None;
    }
    let body = URL_SAFE_NO_PAD.decode(&secret[kind.len() + 1..]).ok()?;
    let mut key = body.get(..6)?.to_vec();
    key.extend_from_slice(&hash(secret));
    Some(key)
}

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
    fn ordered_tokens_carry_their_issue_time_first_and_208_random_bits() {
        let a = issue_ordered("inv");
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = issue_ordered("inv");
        assert!(well_formed("inv", &a.secret) && well_formed("inv", &b.secret));
        assert_eq!(ordered_key("inv", &a.secret), Some(a.hash.clone()));
        assert_eq!(a.hash.len(), 6 + 32);
        assert_eq!(&a.hash[6..], hash(&a.secret).as_slice());
        assert!(
            a.hash < b.hash,
            "keys of later tokens sort after earlier ones"
        );
        let c = issue_ordered("inv");
        assert_eq!(b.hash[..4], c.hash[..4]);
        assert_ne!(b.secret[10..], c.secret[10..], "the random part differs");
        assert_eq!(ordered_key("inv", "inv_short"), None);
        assert_eq!(ordered_key("scim", &a.secret), None);
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
