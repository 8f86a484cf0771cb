//! Single sign-on as stored: each organization's OpenID Connect connection,
//! sign-ins under way, the identities bound to accounts, signed-in sessions,
//! back-channel logout tokens already seen, and registrations in progress.
//! Secrets (the client secret, state and session tokens) are stored sealed
//! or hashed, never as they are.

use async_trait::async_trait;
use uuid::Uuid;

use super::{StoreResult, Timestamp};

/// An organization's OpenID Connect connection as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SsoConnectionRecord {
    pub org_id: Uuid,
    pub issuer: String,
    pub client_id: String,
    /// The client secret, sealed with the instance key (bound to the org).
    pub client_secret_sealed: Vec<u8>,
    pub scopes: String,
    pub match_rule: String,
    pub trust_email: bool,
    pub updated_at: Timestamp,
}

/// A sign-in under way.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct LoginState {
    pub state_hash: Vec<u8>,
    /// The hash of the cookie that binds it to the browser that began it.
    pub browser_hash: Vec<u8>,
    pub org_id: Uuid,
    /// The invitation being accepted; `None` for a plain sign-in.
    pub invitation_id: Option<Uuid>,
    pub nonce: String,
    pub pkce_verifier: String,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}

/// A signed-in browser.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SessionRecord {
    pub id_hash: Vec<u8>,
    pub account_id: Uuid,
    pub org_id: Uuid,
    pub issuer: String,
    pub subject: String,
    pub sid: Option<String>,
    pub id_token: Option<String>,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}

/// A registration in progress for one invitation.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct RegistrationRecord {
    pub invitation_id: Uuid,
    pub org_id: Uuid,
    pub issuer: String,
    pub subject: String,
    pub sid: Option<String>,
    pub id_token: Option<String>,
    /// The invited work email.
    pub email: String,
    /// The path and its steps, as the registration service writes them (JSON).
    pub progress: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub expires_at: Timestamp,
    /// The SHA-256 of the cookie of the browser that signed in for it.
    pub browser_hash: Option<Vec<u8>>,
}

#[async_trait]
pub trait SsoRepo {
    /// Sets (inserts or replaces) the organization's connection.
    async fn put_sso_connection(&self, c: &SsoConnectionRecord) -> StoreResult<()>;
    async fn sso_connection(&self, org_id: Uuid) -> StoreResult<Option<SsoConnectionRecord>>;
    /// The connections with this issuer and client id (a back-channel logout
    /// names only those).
    async fn sso_connections_of(
        &self,
        issuer: &str,
        client_id: &str,
    ) -> StoreResult<Vec<SsoConnectionRecord>>;

    async fn insert_login_state(&self, s: &LoginState) -> StoreResult<()>;
    /// Removes and returns the sign-in with this state: a state works once.
    async fn take_login_state(&self, state_hash: &[u8]) -> StoreResult<Option<LoginState>>;

    /// The account an identity is bound to, and the organization it was bound for.
    async fn identity_account(
        &self,
        issuer: &str,
        subject: &str,
    ) -> StoreResult<Option<(Uuid, Uuid)>>;
    /// Binds an identity to an account; one already bound is a `Conflict`
    /// on `sso_identities_issuer_subject_key`.
    async fn bind_identity(
        &self,
        issuer: &str,
        subject: &str,
        account_id: Uuid,
        org_id: Uuid,
        at: Timestamp,
    ) -> StoreResult<()>;

    async fn insert_session(&self, s: &SessionRecord) -> StoreResult<()>;
    /// The unexpired session with this hash.
    async fn session(&self, id_hash: &[u8], now: Timestamp) -> StoreResult<Option<SessionRecord>>;
    async fn delete_session(&self, id_hash: &[u8]) -> StoreResult<()>;
    /// Ends every session of the account.
    async fn delete_sessions_of_account(&self, account_id: Uuid) -> StoreResult<()>;
    /// Ends the sessions of the directory user's account in the organization.
    async fn delete_sessions_of_user(&self, org_id: Uuid, user_id: Uuid) -> StoreResult<()>;
    /// Ends the organization's sessions a back-channel logout names (by
    /// subject, by provider session id, or both; neither ends none);
    /// returns how many ended.
    async fn delete_sessions_by_logout(
        &self,
        org_id: Uuid,
        issuer: &str,
        subject: Option<&str>,
        sid: Option<&str>,
    ) -> StoreResult<u64>;
    /// Records a logout token's id; false when it was seen before.
    async fn first_sight_of_logout_token(
        &self,
        jti_hash: &[u8],
        expires_at: Timestamp,
    ) -> StoreResult<bool>;

    async fn put_registration(&self, r: &RegistrationRecord) -> StoreResult<()>;
    /// Replaces the registration's progress if it is still `old`; else the
    /// transaction fails with `Stale` (another tab moved it on).
    async fn update_progress(
        &self,
        invitation_id: Uuid,
        old: &str,
        new: &str,
        at: Timestamp,
    ) -> StoreResult<()>;
    async fn registration(&self, invitation_id: Uuid) -> StoreResult<Option<RegistrationRecord>>;
    async fn delete_registration(&self, invitation_id: Uuid) -> StoreResult<()>;

    /// Deletes up to `limit` expired sign-ins, sessions, seen logout tokens
    /// and registrations each; returns how many rows went.
    async fn purge_expired_sso(&self, now: Timestamp, limit: i64) -> StoreResult<u64>;
}
