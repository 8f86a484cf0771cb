//! Passwords sent by a directory (RFC 7643 §4.1.1 `password`): hashed with
//! argon2 off the async threads; the cleartext is never stored or returned.

use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, SaltString, rand_core::OsRng};

use super::protocol::ScimError;

/// Longest password accepted, so hashing cost stays bounded.
const MAX_LEN: usize = 1024;

pub async fn hash(password: String) -> Result<String, ScimError> {
    if password.is_empty() || password.len() > MAX_LEN {
        return Err(ScimError::invalid_value(format!(
            "password must have 1 to {MAX_LEN} bytes"
        )));
    }
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
    })
    .await
    .map_err(|_| ScimError::internal())?
    .map_err(|_| ScimError::invalid_value("the password cannot be hashed"))
}
