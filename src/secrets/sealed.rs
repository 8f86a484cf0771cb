//! Secrets onramp must be able to read back (an SSO client secret), kept
//! sealed at rest: ChaCha20-Poly1305 (ring) under the instance key, with a
//! fresh random nonce each time and the owner's id as associated data, so
//! a sealed value moved to another organization's row does not open.
//!
//! The key is 32 bytes: from configuration (`sso.secret_key`, base64), or
//! else read from `sso.key_file` — generated there, readable by the owner
//! only, on first use, so a fresh install works with no setup. Losing the
//! key means setting the client secrets again; it is never logged.

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};

#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("the secret key is not 32 bytes of base64: {0}")]
    BadKey(String),
    #[error("cannot read or create the key file {path}: {reason}")]
    KeyFile { path: String, reason: String },
    #[error("the sealed value does not open with this instance's key (was the key replaced?)")]
    Open,
    #[error("randomness unavailable")]
    Random,
}

/// The instance key: it seals secrets, and (a key derived from it) MACs
/// one-time codes.
pub struct SealingKey {
    aead: LessSafeKey,
    mac: hmac::Key,
}

impl std::fmt::Debug for SealingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealingKey([redacted])")
    }
}

impl SealingKey {
    /// The key given (base64), or the one in `key_file` (created if absent).
    pub fn load(configured: &str, key_file: &Path) -> Result<SealingKey, SealError> {
        let bytes = if !configured.trim().is_empty() {
            STANDARD
                .decode(configured.trim())
                .map_err(|e| SealError::BadKey(e.to_string()))?
        } else {
            read_or_create(key_file)?
        };
        Self::from_bytes(&bytes)
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<SealingKey, SealError> {
        if bytes.len() != 32 {
            return Err(SealError::BadKey(format!("{} bytes", bytes.len())));
        }
        let key = UnboundKey::new(&CHACHA20_POLY1305, bytes)
            .map_err(|_| SealError::BadKey("rejected".into()))?;
        let derived = hmac::sign(
            &hmac::Key::new(hmac::HMAC_SHA256, bytes),
            b"onramp one-time code MAC key",
        );
        Ok(SealingKey {
            aead: LessSafeKey::new(key),
            mac: hmac::Key::new(hmac::HMAC_SHA256, derived.as_ref()),
        })
    }

    /// HMAC-SHA256 of `data` under the instance's MAC key: what a one-time
    /// code is stored as (a 6-digit code's plain hash would fall to a
    /// million guesses; its MAC needs the key too).
    pub fn mac(&self, data: &[u8]) -> Vec<u8> {
        hmac::sign(&self.mac, data).as_ref().to_vec()
    }

    /// `nonce || ciphertext || tag` of `plain`, bound to `owner`.
    pub fn seal(&self, owner: &[u8], plain: &[u8]) -> Result<Vec<u8>, SealError> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| SealError::Random)?;
        let mut body = plain.to_vec();
        self.aead
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(owner),
                &mut body,
            )
            .map_err(|_| SealError::Random)?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&body);
        Ok(out)
    }

    /// What [`seal`](Self::seal) sealed for `owner`.
    pub fn open(&self, owner: &[u8], sealed: &[u8]) -> Result<Vec<u8>, SealError> {
        if sealed.len() < NONCE_LEN {
            return Err(SealError::Open);
        }
        let (nonce, body) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| SealError::Open)?;
        let mut body = body.to_vec();
        let plain = self
            .aead
            .open_in_place(nonce, Aad::from(owner), &mut body)
            .map_err(|_| SealError::Open)?;
        Ok(plain.to_vec())
    }
}

fn read_or_create(path: &Path) -> Result<Vec<u8>, SealError> {
    let failed = |e: std::io::Error| SealError::KeyFile {
        path: path.display().to_string(),
        reason: e.to_string(),
    };
    match std::fs::read_to_string(path) {
        Ok(text) => STANDARD
            .decode(text.trim())
            .map_err(|e| SealError::BadKey(format!("{}: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut key = [0u8; 32];
            SystemRandom::new()
                .fill(&mut key)
                .map_err(|_| SealError::Random)?;
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(failed)?;
            }
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            match options.open(path) {
                Ok(mut file) => {
                    use std::io::Write;
                    file.write_all(STANDARD.encode(key).as_bytes())
                        .and_then(|_| file.sync_all())
                        .map_err(failed)?;
                    Ok(key.to_vec())
                }
                // Another process made it first: use theirs.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => read_or_create(path),
                Err(e) => Err(failed(e)),
            }
        }
        Err(e) => Err(failed(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_secret_opens_for_its_owner_only() {
        let key = SealingKey::from_bytes(&[7; 32]).unwrap();
        let sealed = key.seal(b"org-a", b"s3cret").unwrap();
        assert_ne!(&sealed[NONCE_LEN..], b"s3cret");
        assert_eq!(key.open(b"org-a", &sealed).unwrap(), b"s3cret");
        assert!(key.open(b"org-b", &sealed).is_err(), "bound to its owner");
        let other = SealingKey::from_bytes(&[8; 32]).unwrap();
        assert!(other.open(b"org-a", &sealed).is_err(), "and to the key");
        assert_ne!(
            key.seal(b"org-a", b"s3cret").unwrap(),
            sealed,
            "fresh nonce"
        );
    }

    #[test]
    fn macs_depend_on_the_key_and_the_data() {
        let key = SealingKey::from_bytes(&[7; 32]).unwrap();
        assert_eq!(key.mac(b"123456").len(), 32);
        assert_eq!(key.mac(b"123456"), key.mac(b"123456"));
        assert_ne!(key.mac(b"123456"), key.mac(b"123457"));
        let other = SealingKey::from_bytes(&[8; 32]).unwrap();
        assert_ne!(key.mac(b"123456"), other.mac(b"123456"));
    }

    #[test]
    fn a_missing_key_file_is_created_private_and_then_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data/secret.key");
        let a = SealingKey::load("", &path).unwrap();
        let sealed = a.seal(b"o", b"x").unwrap();
        let b = SealingKey::load("", &path).unwrap();
        assert_eq!(b.open(b"o", &sealed).unwrap(), b"x");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(SealingKey::load("bm90IDMyIGJ5dGVz", &path).is_err());
    }
}
