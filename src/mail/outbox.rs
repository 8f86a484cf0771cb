//! The outbox worker: claims due messages of every kind with a lease, sends
//! them, and records the outcome; what a delivery or a failure changes for
//! the feature that queued the message (an invitation becomes `sent`; a
//! one-time code needs nothing) is that feature's [`MailCompletion`], run in
//! the same transaction.
//!
//! Guarantees (README, "Mail delivery"): a queued message is sent until it
//! succeeds or fails permanently — an SMTP outage or a restart only delays
//! it. Two workers never hold one message at once. A crash after the SMTP
//! server accepted a message but before it was marked sent re-sends it once
//! the lease expires, with the same Message-ID, so receivers can de-duplicate.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures_util::StreamExt;
use tokio::sync::{Notify, watch};
use uuid::Uuid;

use crate::mail::{Envelope, MailError, Mailer, Rendered};
use crate::store::outbox::OutboxRecord;
use crate::store::{DynStore, StoreError, Timestamp, Transaction};

/// What the delivery of a kind of mail changes, for the feature that
/// queued it; called in the transaction that records the outcome.
#[async_trait]
pub trait MailCompletion: Send + Sync {
    /// Messages of this kind (by their `ref_id`s) were delivered.
    async fn delivered(
        &self,
        tx: &dyn Transaction,
        refs: &[Uuid],
        at: Timestamp,
    ) -> Result<(), StoreError>;
    /// A message of this kind failed for good.
    async fn failed(
        &self,
        tx: &dyn Transaction,
        org_id: Uuid,
        ref_id: Uuid,
        reason: &str,
    ) -> Result<(), StoreError>;
}

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
    completions: HashMap<String, Arc<dyn MailCompletion>>,
}

impl OutboxWorker {
    pub fn new(store: DynStore, mailer: Arc<dyn Mailer>, settings: OutboxSettings) -> Self {
        OutboxWorker {
            store,
            mailer,
            settings,
            owner: Uuid::new_v4(),
            wake: Arc::new(Notify::new()),
            completions: HashMap::new(),
        }
    }

    /// The same worker, running `completion` for mail of `kind`.
    pub fn completing(mut self, kind: &str, completion: Arc<dyn MailCompletion>) -> Self {
        self.completions.insert(kind.to_string(), completion);
        self
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
        let outcomes: Vec<Outcome> = futures_util::stream::iter(claimed)
            .map(|mail| self.deliver(mail))
            .buffer_unordered(self.settings.concurrency.max(1))
            .collect()
            .await;
        if !outcomes.is_empty() {
            self.record(outcomes).await?;
        }
        Ok(n)
    }

    /// Sends one message and says how it went; records nothing.
    async fn deliver(&self, mail: OutboxRecord) -> Outcome {
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
            Ok(()) => Outcome::Sent(mail.id),
            Err(MailError::Transient(reason)) if mail.attempts < self.settings.max_attempts => {
                let delay = backoff(&self.settings, mail.attempts);
                tracing::warn!(message_id = %mail.message_id, attempt = mail.attempts, error = %reason, retry_in_ms = delay.as_millis() as u64, "mail delivery will be retried");
                let next = Timestamp::now()
                    .plus(time::Duration::try_from(delay).unwrap_or(time::Duration::MINUTE));
                Outcome::Retry {
                    id: mail.id,
                    next,
                    reason,
                }
            }
            Err(MailError::Transient(reason)) => {
                let reason = format!("gave up after {} attempts: {reason}", mail.attempts);
                Outcome::Failed {
                    mail: Box::new(mail),
                    reason,
                }
            }
            Err(MailError::Permanent(reason)) => Outcome::Failed {
                mail: Box::new(mail),
                reason,
            },
        }
    }

    /// Records a round's outcomes in one transaction: deliveries (and what
    /// they change for their kind), retries, failures for good.
    async fn record(&self, outcomes: Vec<Outcome>) -> Result<(), StoreError> {
        let at = Timestamp::now();
        let mut sent = Vec::new();
        let tx = self.store.begin().await?;
        for outcome in outcomes {
            match outcome {
                Outcome::Sent(id) => sent.push(id),
                Outcome::Retry { id, next, reason } => {
                    tx.retry_mail(id, self.owner, next, &reason).await?;
                }
                Outcome::Failed { mail, reason } => {
                    tracing::warn!(message_id = %mail.message_id, error = %reason, "mail delivery failed for good");
                    if tx.fail_mail(mail.id, self.owner, &reason).await?
                        && let Some(ref_id) = mail.ref_id
                        && let Some(c) = self.completions.get(&mail.kind)
                    {
                        c.failed(&*tx, mail.org_id, ref_id, &reason).await?;
                    }
                }
            }
        }
        if !sent.is_empty() {
            let delivered = tx.mark_mails_sent(&sent, self.owner, at).await?;
            let mut by_kind: HashMap<&str, Vec<Uuid>> = HashMap::new();
            for d in &delivered {
                if let Some(id) = d.ref_id {
                    by_kind.entry(d.kind.as_str()).or_default().push(id);
                }
            }
            for (kind, refs) in by_kind {
                if let Some(c) = self.completions.get(kind) {
                    c.delivered(&*tx, &refs, at).await?;
                }
            }
        }
        tx.commit().await
    }
}

/// How sending one message went.
enum Outcome {
    Sent(Uuid),
    Retry {
        id: Uuid,
        next: Timestamp,
        reason: String,
    },
    Failed {
        mail: Box<OutboxRecord>,
        reason: String,
    },
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
