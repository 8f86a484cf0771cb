//! The mail outbox as stored: every message onramp sends is a row written in
//! the same transaction as what called for it, with a `kind` (what feature
//! it belongs to: an invitation, a one-time code, a notice) and a reference
//! (that feature's id for it). Rows hold a message's content only until it
//! is sent, fails or is cancelled.

use async_trait::async_trait;
use serde::Serialize;
use uuid::Uuid;

use super::{StoreResult, Timestamp};

/// The state of a queued message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OutboxStatus {
    Queued,
    Sent,
    Failed,
    Cancelled,
}

impl OutboxStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            OutboxStatus::Queued => "queued",
            OutboxStatus::Sent => "sent",
            OutboxStatus::Failed => "failed",
            OutboxStatus::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "queued" => OutboxStatus::Queued,
            "sent" => OutboxStatus::Sent,
            "failed" => OutboxStatus::Failed,
            "cancelled" => OutboxStatus::Cancelled,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxRecord {
    pub id: Uuid,
    pub org_id: Uuid,
    /// What the message is: `invitation`, `code`, `notice`, … (the feature
    /// that queued it decides what its delivery or failure changes).
    pub kind: String,
    /// The queuing feature's id for it (an invitation's id, say).
    pub ref_id: Option<Uuid>,
    pub message_id: String,
    pub to_address: String,
    pub to_name: Option<String>,
    pub subject: Option<String>,
    pub body_text: Option<String>,
    pub body_html: Option<String>,
    pub status: OutboxStatus,
    pub attempts: i32,
    pub next_attempt_at: Timestamp,
    pub last_error: Option<String>,
    pub created_at: Timestamp,
    pub sent_at: Option<Timestamp>,
}

/// A message just marked sent: what it was for.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Delivered {
    pub kind: String,
    pub ref_id: Option<Uuid>,
}

#[async_trait]
pub trait OutboxRepo {
    async fn enqueue_mail(&self, mail: &OutboxRecord) -> StoreResult<()>;
    /// Leases up to `limit` queued rows that are due and not leased by a live
    /// worker; each claim counts as an attempt. Safe with many workers on one
    /// database: a row is leased by one worker at a time.
    async fn claim_mail(
        &self,
        owner: Uuid,
        now: Timestamp,
        lease_until: Timestamp,
        limit: i64,
    ) -> StoreResult<Vec<OutboxRecord>>;
    /// Marks leased rows sent and wipes their content; returns what each
    /// row marked here was for (rows whose lease was lost are left out).
    async fn mark_mails_sent(
        &self,
        ids: &[Uuid],
        owner: Uuid,
        at: Timestamp,
    ) -> StoreResult<Vec<Delivered>>;
    /// Puts a leased row back for a later attempt.
    async fn retry_mail(
        &self,
        id: Uuid,
        owner: Uuid,
        next_attempt_at: Timestamp,
        error: &str,
    ) -> StoreResult<bool>;
    /// Marks a leased row failed for good and wipes its content.
    async fn fail_mail(&self, id: Uuid, owner: Uuid, error: &str) -> StoreResult<bool>;
    /// Cancels the queued mail of `kind` for `ref_id` (content wiped).
    async fn cancel_mail(&self, kind: &str, ref_id: Uuid) -> StoreResult<()>;
    /// The mail of `kind` for `ref_id`, oldest first.
    async fn mail_for(&self, kind: &str, ref_id: Uuid) -> StoreResult<Vec<OutboxRecord>>;
    /// Queued rows, for metrics and tests.
    async fn queued_mail_count(&self) -> StoreResult<u64>;
}
