//! Password hashing (argon2id, OWASP's parameters: 19 MiB, two passes) with
//! its cost bounded: a password is at most [`MAX_LEN`] bytes, at most
//! `concurrency` hashes run at once (each holds 19 MiB and a core for ~20 ms)
//! and the rest queue, and each organization (or other key) has one turn at
//! a time and at most `per_tenant_rate` turns a second — so one tenant's
//! burst of passwords waits behind itself, not in front of everyone else's,
//! and takes a bounded share of the machine.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use argon2::Argon2;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier, SaltString};
use tokio::sync::Semaphore;
use uuid::Uuid;

/// Longest password accepted, in bytes.
pub const MAX_LEN: usize = 256;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PasswordError {
    #[error("a password must have 1 to {MAX_LEN} bytes")]
    Length,
    #[error("the password could not be hashed")]
    Hashing,
}

/// Hashes and verifies passwords within the bounds above. Cheap to clone.
#[derive(Clone)]
pub struct Passwords {
    slots: Arc<Semaphore>,
    /// One queue ticket per organization (or account) key.
    tenants: Arc<Mutex<HashMap<Uuid, Arc<Semaphore>>>>,
    /// The shortest time one key's turn lasts (1 / its rate).
    turn: std::time::Duration,
}

impl Passwords {
    /// `concurrency` hashes at once (0: one per core), each key at most
    /// `per_tenant_rate` a second (0: no bound but one at a time).
    pub fn bounded(concurrency: usize, per_tenant_rate: u32) -> Self {
        let mut p = Self::new(concurrency);
        if per_tenant_rate > 0 {
            p.turn = std::time::Duration::from_secs(1) / per_tenant_rate;
        }
        p
    }

    /// `concurrency` hashes at once; 0 means one per core.
    pub fn new(concurrency: usize) -> Self {
        let n = if concurrency == 0 {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        } else {
            concurrency
        };
        Passwords {
            slots: Arc::new(Semaphore::new(n)),
            tenants: Arc::new(Mutex::new(HashMap::new())),
            turn: std::time::Duration::ZERO,
        }
    }

    fn ticket(&self, tenant: Uuid) -> Arc<Semaphore> {
        let mut map = self.tenants.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() > 10_000 {
            // Forget idle tenants (those whose ticket nobody holds).
            map.retain(|_, s| Arc::strong_count(s) > 1);
        }
        map.entry(tenant)
            .or_insert_with(|| Arc::new(Semaphore::new(1)))
            .clone()
    }

    /// Runs `work` on a blocking thread when `tenant` has its turn and a
    /// slot is free.
    async fn in_turn<T: Send + 'static>(
        &self,
        tenant: Uuid,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, PasswordError> {
        let ticket = self.ticket(tenant);
        let _turn = ticket
            .acquire_owned()
            .await
            .map_err(|_| PasswordError::Hashing)?;
        let started = tokio::time::Instant::now();
        let slot = self
            .slots
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| PasswordError::Hashing)?;
        let done = tokio::task::spawn_blocking(work)
            .await
            .map_err(|_| PasswordError::Hashing);
        drop(slot);
        // The key keeps its turn until its rate allows the next hash.
        tokio::time::sleep_until(started + self.turn).await;
        done
    }

    /// The argon2 PHC string of `password`, hashed in `tenant`'s turn.
    pub async fn hash(&self, tenant: Uuid, password: String) -> Result<String, PasswordError> {
        if password.is_empty() || password.len() > MAX_LEN {
            return Err(PasswordError::Length);
        }
        self.in_turn(tenant, move || {
            let salt = SaltString::generate(&mut OsRng);
            Argon2::default()
                .hash_password(password.as_bytes(), &salt)
                .map(|h| h.to_string())
        })
        .await?
        .map_err(|_| PasswordError::Hashing)
    }

    /// Whether `password` matches the PHC string `hash`. A malformed hash
    /// never matches.
    pub async fn verify(
        &self,
        tenant: Uuid,
        password: String,
        hash: String,
    ) -> Result<bool, PasswordError> {
        if password.is_empty() || password.len() > MAX_LEN {
            return Ok(false);
        }
        self.in_turn(tenant, move || {
            PasswordHash::new(&hash)
                .map(|parsed| {
                    Argon2::default()
                        .verify_password(password.as_bytes(), &parsed)
                        .is_ok()
                })
                .unwrap_or(false)
        })
        .await
    }
}

/// Whether `s` is an argon2 PHC string this module can verify.
pub fn is_phc(s: &str) -> bool {
    PasswordHash::new(s).is_ok_and(|h| h.algorithm.as_str().starts_with("argon2"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_hash_verifies_its_password_and_no_other() {
        let p = Passwords::new(1);
        let t = Uuid::now_v7();
        let h = p.hash(t, "correct horse".into()).await.unwrap();
        assert!(is_phc(&h));
        assert!(
            p.verify(t, "correct horse".into(), h.clone())
                .await
                .unwrap()
        );
        assert!(!p.verify(t, "wrong".into(), h).await.unwrap());
        assert!(!p.verify(t, "x".into(), "not a hash".into()).await.unwrap());
    }

    #[tokio::test]
    async fn empty_and_overlong_passwords_are_refused_before_hashing() {
        let p = Passwords::new(1);
        let t = Uuid::now_v7();
        assert_eq!(p.hash(t, String::new()).await, Err(PasswordError::Length));
        assert_eq!(
            p.hash(t, "x".repeat(MAX_LEN + 1)).await,
            Err(PasswordError::Length)
        );
        assert!(p.hash(t, "x".repeat(MAX_LEN)).await.is_ok());
    }

    #[tokio::test]
    async fn one_key_hashes_at_most_at_its_rate() {
        let p = Passwords::bounded(2, 20);
        let t = Uuid::now_v7();
        let started = std::time::Instant::now();
        for i in 0..3 {
            p.hash(t, format!("pw-{i}")).await.unwrap();
        }
        assert!(
            started.elapsed() >= std::time::Duration::from_millis(150),
            "three turns of 50 ms at least"
        );
    }

    #[tokio::test]
    async fn one_tenant_holds_at_most_one_slot_while_others_get_theirs() {
        let p = Passwords::new(2);
        let busy = Uuid::now_v7();
        let other = Uuid::now_v7();
        // The busy tenant's turn is taken; its next hash waits for it.
        let ticket = p.ticket(busy);
        let held = ticket.clone().acquire_owned().await.unwrap();
        let waiting = tokio::spawn({
            let p = p.clone();
            async move { p.hash(busy, "pw-1".into()).await }
        });
        // Another tenant's hash is not held up by it.
        assert!(p.hash(other, "pw-2".into()).await.is_ok());
        assert!(!waiting.is_finished());
        drop(held);
        assert!(waiting.await.unwrap().is_ok());
    }
}
