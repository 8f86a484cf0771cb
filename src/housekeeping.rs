//! Periodic clean-up of what expires: join sessions, sign-in states,
//! sessions, saved registrations, remembered logout tokens and one-time
//! codes. Bounded: each round deletes at most
//! a batch per kind, so it never holds the database long.

use std::time::Duration;

use tokio::sync::watch;

use crate::store::{DynStore, Timestamp};

/// Rows deleted per kind and round at most.
const BATCH: i64 = 1000;

/// Runs until `shutdown` turns true, every `every`.
pub async fn run(store: DynStore, every: Duration, mut shutdown: watch::Receiver<bool>) {
    loop {
        if *shutdown.borrow() {
            return;
        }
        if let Err(e) = purge(&store).await {
            crate::telemetry::log_internal(&e);
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = shutdown.changed() => {}
        }
    }
}

/// One round; returns how many rows went.
pub async fn purge(store: &DynStore) -> Result<u64, crate::store::StoreError> {
    let now = Timestamp::now();
    Ok(store.purge_join_sessions(now, BATCH).await?
        + store.purge_expired_sso(now, BATCH).await?
        + store.purge_codes(now, BATCH).await?)
}
