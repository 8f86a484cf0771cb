//! Invitations and the mail outbox as stored. The invitation token is never
//! stored, only its hash; outbox rows hold a message's content only until it
//! is sent, fails or is cancelled.

use async_trait::async_trait;
use serde::Serialize;
use uuid::Uuid;

use super::{StoreResult, Timestamp};

/// The stored states of an invitation ("expired" is derived from `expires_at`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum InvitationStatus {
    Pending,
    Sent,
    Accepted,
    Revoked,
    Failed,
}

impl InvitationStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            InvitationStatus::Pending => "pending",
            InvitationStatus::Sent => "sent",
            InvitationStatus::Accepted => "accepted",
            InvitationStatus::Revoked => "revoked",
            InvitationStatus::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => InvitationStatus::Pending,
            "sent" => InvitationStatus::Sent,
            "accepted" => InvitationStatus::Accepted,
            "revoked" => InvitationStatus::Revoked,
            "failed" => InvitationStatus::Failed,
            _ => return None,
        })
    }

    /// Pending or sent: the link works (until it expires).
    pub fn is_live(self) -> bool {
        matches!(self, InvitationStatus::Pending | InvitationStatus::Sent)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InvitationRecord {
    pub id: Uuid,
    pub org_id: Uuid,
    pub user_id: Uuid,
    pub email: String,
    pub recipient_name: Option<String>,
    #[serde(skip)]
    pub token_hash: Option<Vec<u8>>,
    pub status: InvitationStatus,
    pub reason: Option<String>,
    pub sends: i32,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub expires_at: Timestamp,
    pub sent_at: Option<Timestamp>,
    pub accepted_at: Option<Timestamp>,
}

#[async_trait]
pub trait InvitationRepo {
    /// A second live invitation for the same user is a `Conflict` on
    /// `invitations_org_id_user_id_key`.
    async fn insert_invitation(&self, inv: &InvitationRecord) -> StoreResult<()>;
    /// Writes every mutable field of `inv` (status, token, reason, sends, times).
    async fn update_invitation(&self, inv: &InvitationRecord) -> StoreResult<()>;
    async fn invitation_by_id(&self, id: Uuid) -> StoreResult<Option<InvitationRecord>>;
    async fn invitation_by_token_hash(&self, hash: &[u8]) -> StoreResult<Option<InvitationRecord>>;
    /// The user's invitations, newest first.
    async fn invitations_of_user(
        &self,
        org_id: Uuid,
        user_id: Uuid,
    ) -> StoreResult<Vec<InvitationRecord>>;
    /// Newest first; `status` filters on the stored status.
    async fn list_invitations(
        &self,
        org_id: Uuid,
        status: Option<InvitationStatus>,
        limit: i64,
    ) -> StoreResult<Vec<InvitationRecord>>;
    /// Invitations to this email (any organization), newest first.
    async fn invitations_by_email(&self, email: &str) -> StoreResult<Vec<InvitationRecord>>;
    /// Records a join session (by the hash of its id) for an invitation.
    async fn insert_join_session(
        &self,
        id_hash: &[u8],
        invitation_id: Uuid,
        created_at: Timestamp,
        expires_at: Timestamp,
    ) -> StoreResult<()>;
    /// The invitation of an unexpired join session.
    async fn join_session(&self, id_hash: &[u8], now: Timestamp) -> StoreResult<Option<Uuid>>;
}

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
    pub invitation_id: Option<Uuid>,
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
    /// Marks a leased row sent and wipes its content; false if the lease was lost.
    async fn mark_mail_sent(&self, id: Uuid, owner: Uuid, at: Timestamp) -> StoreResult<bool>;
    /// Marks many leased rows sent in one statement and moves their pending
    /// invitations to `sent` (mail rows first, then invitations: the lock
    /// order every writer follows). Returns how many mail rows were marked.
    async fn mark_mails_sent(&self, ids: &[Uuid], owner: Uuid, at: Timestamp) -> StoreResult<u64>;
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
    /// Cancels the invitation's queued mail (content wiped); returns how many.
    async fn cancel_mail_for_invitation(&self, invitation_id: Uuid) -> StoreResult<u64>;
    async fn mail_for_invitation(&self, invitation_id: Uuid) -> StoreResult<Vec<OutboxRecord>>;
    /// Queued rows, for metrics and tests.
    async fn queued_mail_count(&self) -> StoreResult<u64>;
}
