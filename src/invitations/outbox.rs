//! The outbox worker: claims due messages with a lease, sends them, and
//! records the outcome together with the invitation's status.
//!
//! Guarantees (README, "Mail delivery"): a queued message is sent until it
//! succeeds or fails permanently — an SMTP outage or a restart only delays
//! it. Two workers never hold one message at once. A crash after the SMTP
//! server accepted a message but before it was marked sent re-sends it once
//! the lease expires, with the same Message-ID, so receivers can de-duplicate.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::{Notify, watch};
use uuid::Uuid;

use crate::mail::{Envelope, MailError, Mailer, Rendered};
use crate::store::invitations::{InvitationStatus, OutboxRecord};
use crate::store::{DynStore, StoreError, Timestamp};

/// How the worker paces itself.
#[derive(Debug, Clone)]
pub struct OutboxSettings {
    /// How long a claimed message is reserved for this worker.
    pub lease: Duration,
    /// Idle polling interval (new mail in this process wakes the worker sooner).
    pub poll: Duration,
    /// Messages claimed per round.
    pub batch: i64,
    /// Messages sent at once.
    pub concurrency: usize,
    /// Attempts before a transient failure counts as permanent.
    pub max_attempts: i32,
    /// First retry delay; doubles per attempt, with jitter, up to `max_backoff`.
    pub base_backoff: Duration,
    pub max_backoff: Duration,
    /// While this process is committing new mail in a burst (a directory
    /// pushing thousands of users), delivery waits for a pause — at most
    /// this long — so that it does not take CPU from the burst. Zero: never.
    pub max_defer: Duration,
}

/// A pause this long in new mail ends a burst.
const QUIET: Duration = Duration::from_millis(50);

impl Default for OutboxSettings {
    fn default() -> Self {
        OutboxSettings {
            lease: Duration::from_secs(60),
            poll: Duration::from_millis(500),
            batch: 64,
            concurrency: 16,
            max_attempts: 12,
            base_backoff: Duration::from_secs(2),
            max_backoff: Duration::from_secs(15 * 60),
            max_defer: Duration::from_secs(5),
        }
    }
}

pub struct OutboxWorker {
    store: DynStore,
    mailer: Arc<dyn Mailer>,
    settings: OutboxSettings,
    owner: Uuid,
    wake: Arc<Notify>,
}

impl OutboxWorker {
    pub fn new(store: DynStore, mailer: Arc<dyn Mailer>, settings: OutboxSettings) -> Self {
        OutboxWorker {
            store,
            mailer,
            settings,
            owner: Uuid::new_v4(),
            wake: Arc::new(Notify::new()),
        }
    }

    /// Wakes the worker (after new mail was queued in this process).
    pub fn waker(&self) -> Arc<Notify> {
        self.wake.clone()
    }

    /// Runs until `shutdown` turns true, finishing the round in flight.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let mut burst_started = None;
        loop {
            if *shutdown.borrow() {
                return;
            }
            self.wait_out_burst(&mut burst_started, &mut shutdown).await;
            let handled = match self.run_once().await {
                Ok(n) => n,
                Err(e) => {
                    crate::telemetry::log_internal(&e);
                    0
                }
            };
            if handled == 0 {
                burst_started = None;
                tokio::select! {
                    _ = self.wake.notified() => {}
                    _ = tokio::time::sleep(self.settings.poll) => {}
                    _ = shutdown.changed() => {}
                }
            }
        }
    }

    /// Waits while new mail keeps being committed in this process (wakes
    /// closer than [`QUIET`] apart), until a pause or until `max_defer`
    /// after the burst began; after that, delivery runs beside the burst.
    async fn wait_out_burst(
        &self,
        burst_started: &mut Option<tokio::time::Instant>,
        shutdown: &mut watch::Receiver<bool>,
    ) {
        if self.settings.max_defer.is_zero() {
            return;
        }
        // No mail committed since the last look: no burst to wait out.
        let woken = tokio::select! {
            biased;
            _ = self.wake.notified() => true,
            _ = std::future::ready(()) => false,
        };
        if !woken {
            return;
        }
        let deadline =
            *burst_started.get_or_insert_with(tokio::time::Instant::now) + self.settings.max_defer;
        loop {
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(QUIET) => {
                    *burst_started = None;
                    return;
                }
                _ = tokio::time::sleep_until(deadline) => return,
                _ = shutdown.changed() => return,
            }
        }
    }

    /// One round: claim due messages and deliver them. Returns how many were handled.
    pub async fn run_once(&self) -> Result<usize, StoreError> {
        let now = Timestamp::now();
        let lease_until = now
            .plus(time::Duration::try_from(self.settings.lease).unwrap_or(time::Duration::MINUTE));
        // In a transaction, so that on SQLite the claim queues with this
        // process's other writers instead of in SQLite's busy handler.
        let tx = self.store.begin().await?;
        let claimed = tx
            .claim_mail(self.owner, now, lease_until, self.settings.batch)
            .await?;
        tx.commit().await?;
        let n = claimed.len();
        let results: Vec<Result<Option<Uuid>, StoreError>> = futures_util::stream::iter(claimed)
            .map(|mail| self.deliver(mail))
            .buffer_unordered(self.settings.concurrency.max(1))
            .collect()
            .await;
        let sent = results
            .into_iter()
            .collect::<Result<Vec<Option<Uuid>>, _>>()?;
        // One transaction records the whole round's deliveries.
        let sent: Vec<Uuid> = sent.into_iter().flatten().collect();
        if !sent.is_empty() {
            let tx = self.store.begin().await?;
            tx.mark_mails_sent(&sent, self.owner, Timestamp::now())
                .await?;
            tx.commit().await?;
        }
        Ok(n)
    }

    /// Sends one message; returns its id when it was delivered (to be marked
    /// with the round), having already recorded retries and failures.
    async fn deliver(&self, mail: OutboxRecord) -> Result<Option<Uuid>, StoreError> {
        let envelope = Envelope {
            message_id: mail.message_id.clone(),
            to_address: mail.to_address.clone(),
            to_name: mail.to_name.clone(),
        };
        let content = Rendered {
            subject: mail.subject.clone().unwrap_or_default(),
            text: mail.body_text.clone().unwrap_or_default(),
            html: mail.body_html.clone().unwrap_or_default(),
        };
        match self.mailer.send(&envelope, &content).await {
            Ok(()) => Ok(Some(mail.id)),
            Err(MailError::Transient(reason)) if mail.attempts < self.settings.max_attempts => {
                let delay = backoff(&self.settings, mail.attempts);
                tracing::warn!(message_id = %mail.message_id, attempt = mail.attempts, error = %reason, retry_in_ms = delay.as_millis() as u64, "mail delivery will be retried");
                let next = Timestamp::now()
                    .plus(time::Duration::try_from(delay).unwrap_or(time::Duration::MINUTE));
                let tx = self.store.begin().await?;
                tx.retry_mail(mail.id, self.owner, next, &reason).await?;
                tx.commit().await.map(|_| None)
            }
            Err(MailError::Transient(reason)) => {
                let reason = format!("gave up after {} attempts: {reason}", mail.attempts);
                self.failed(&mail, &reason).await.map(|_| None)
            }
            Err(MailError::Permanent(reason)) => self.failed(&mail, &reason).await.map(|_| None),
        }
    }

    async fn failed(&self, mail: &OutboxRecord, reason: &str) -> Result<(), StoreError> {
        tracing::warn!(message_id = %mail.message_id, error = %reason, "mail delivery failed for good");
        let tx = self.store.begin().await?;
        if tx.fail_mail(mail.id, self.owner, reason).await?
            && let Some(inv_id) = mail.invitation_id
            && let Some(mut inv) = tx.invitation_by_id(inv_id).await?
            && inv.status.is_live()
        {
            inv.status = InvitationStatus::Failed;
            inv.reason = Some(format!(
                "the invitation mail could not be delivered: {reason}"
            ));
            inv.updated_at = Timestamp::now();
            tx.update_invitation(&inv).await?;
        }
        tx.commit().await
    }
}

/// Exponential backoff with full jitter: a random delay in
/// [base·2^(n-1) / 2, base·2^(n-1)], capped.
fn backoff(settings: &OutboxSettings, attempts: i32) -> Duration {
    let exp = attempts.clamp(1, 30) as u32 - 1;
    let ceiling = settings
        .base_backoff
        .saturating_mul(2u32.saturating_pow(exp))
        .min(settings.max_backoff);
    let half = ceiling / 2;
    half + ceiling.saturating_sub(half).mul_f64(rand::random::<f64>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() {
        let s = OutboxSettings::default();
        for attempt in 1..20 {
            let d = backoff(&s, attempt);
            let ceiling =
                (s.base_backoff * 2u32.pow((attempt - 1).min(20) as u32)).min(s.max_backoff);
            assert!(d <= ceiling && d >= ceiling / 2, "attempt {attempt}: {d:?}");
        }
        assert!(backoff(&s, 30) <= s.max_backoff);
    }
}
