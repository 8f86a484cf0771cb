//! Invitations as stored. A link's token is never stored, only its hash;
//! join sessions (a browser that opened a link) likewise.

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

/// Further links of one invitation kept at most (issued by the public
/// "can't find the email?" form; the oldest goes first).
pub const MAX_EXTRA_LINKS: i64 = 5;
/// Join sessions of one invitation kept at most (one per browser that
/// opened the link; the oldest goes first).
pub const MAX_JOIN_SESSIONS: i64 = 5;

#[async_trait]
pub trait InvitationRepo {
    /// A second live invitation for the same user is a `Conflict` on
    /// `invitations_org_id_user_id_key`.
    async fn insert_invitation(&self, inv: &InvitationRecord) -> StoreResult<()>;
    /// Writes every mutable field of `inv` (status, token, reason, sends, times).
    async fn update_invitation(&self, inv: &InvitationRecord) -> StoreResult<()>;
    /// The organization's invitation with this id.
    async fn invitation_by_id(
        &self,
        org_id: Uuid,
        id: Uuid,
    ) -> StoreResult<Option<InvitationRecord>>;
    /// The invitation a link's token hash (its own, or a further link's) belongs to.
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
    /// Revokes every live invitation of the user with `reason`, cancels
    /// their unsent mail and drops their further links, without reading
    /// them first.
    async fn void_live_invitations(
        &self,
        org_id: Uuid,
        user_id: Uuid,
        reason: &str,
        at: Timestamp,
    ) -> StoreResult<()>;
    /// Adds a further link to the invitation, keeping the newest
    /// [`MAX_EXTRA_LINKS`].
    async fn add_invitation_link(
        &self,
        invitation_id: Uuid,
        token_hash: &[u8],
        at: Timestamp,
    ) -> StoreResult<()>;
    /// Marks the organization's live, unexpired invitation accepted at
    /// `at` (its links then say so); an invitation no longer live makes
    /// the transaction fail with `Stale`.
    async fn accept_invitation(&self, org_id: Uuid, id: Uuid, at: Timestamp) -> StoreResult<()>;
    /// Drops the invitation's further links.
    async fn drop_invitation_links(&self, invitation_id: Uuid) -> StoreResult<()>;
    /// Moves these pending invitations to `sent` (their mail was delivered).
    async fn mark_invitations_sent(&self, ids: &[Uuid], at: Timestamp) -> StoreResult<()>;
    /// Records a join session (by the hash of its id) for an invitation,
    /// keeping the newest [`MAX_JOIN_SESSIONS`] of it.
    async fn insert_join_session(
        &self,
        id_hash: &[u8],
        invitation_id: Uuid,
        created_at: Timestamp,
        expires_at: Timestamp,
    ) -> StoreResult<()>;
    /// The organization and invitation of an unexpired join session.
    async fn join_session(
        &self,
        id_hash: &[u8],
        now: Timestamp,
    ) -> StoreResult<Option<(Uuid, Uuid)>>;
    /// Deletes up to `limit` join sessions that expired before `now`;
    /// returns how many.
    async fn purge_join_sessions(&self, now: Timestamp, limit: i64) -> StoreResult<u64>;
}
