//! SCIM bearer tokens: only their SHA-256 hash is stored.

use async_trait::async_trait;
use serde::Serialize;
use uuid::Uuid;

use super::{StoreResult, Timestamp};

/// A stored SCIM token. The token itself is never stored, only its hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScimTokenRecord {
    pub id: Uuid,
    pub org_id: Uuid,
    pub label: String,
    #[serde(skip)]
    pub hash: Vec<u8>,
    /// The first characters of the token, to recognise it in a list.
    pub prefix: String,
    pub created_at: Timestamp,
    pub last_used_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
}

#[async_trait]
pub trait ScimTokenRepo {
    async fn insert_scim_token(&self, token: &ScimTokenRecord) -> StoreResult<()>;
    async fn scim_token_by_hash(&self, hash: &[u8]) -> StoreResult<Option<ScimTokenRecord>>;
    async fn list_scim_tokens(&self, org_id: Uuid) -> StoreResult<Vec<ScimTokenRecord>>;
    /// Marks the organization's token revoked; false when it has no such
    /// live token.
    async fn revoke_scim_token(&self, org_id: Uuid, id: Uuid, at: Timestamp) -> StoreResult<bool>;
    /// Records a use of the token.
    async fn touch_scim_token(&self, id: Uuid, at: Timestamp) -> StoreResult<()>;
}
