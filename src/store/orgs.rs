//! Organizations: the tenants. Every other aggregate belongs to one.

use async_trait::async_trait;
use serde::Serialize;
use uuid::Uuid;

use super::{StoreResult, Timestamp};

/// A tenant: a company whose directory provisions into onramp.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Organization {
    pub id: Uuid,
    pub name: String,
    /// Unique, URL-safe short name.
    pub slug: String,
    /// Lower-case email domains this organization owns; empty means any.
    pub domains: Vec<String>,
    pub created_at: Timestamp,
    pub settings: OrgSettings,
}

/// What an organization's admin sets about invitations and sign-in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OrgSettings {
    /// Provisioning issues invitations by itself.
    pub auto_invite: bool,
    /// Days an invitation link stays valid.
    pub invitation_ttl_days: u32,
    /// Who invites, as the mail names them; `None`: "your organization's administrator".
    pub inviter: Option<String>,
    /// Whom invited people should contact with questions.
    pub contact: Option<String>,
    /// Members may set a password beside single sign-on.
    pub passwords_allowed: bool,
}

impl Default for OrgSettings {
    fn default() -> Self {
        OrgSettings {
            auto_invite: true,
            invitation_ttl_days: 14,
            inviter: None,
            contact: None,
            passwords_allowed: false,
        }
    }
}

#[async_trait]
pub trait OrgRepo {
    /// Inserts the organization and its domains. A taken slug or domain is a
    /// `Conflict` (`organizations_slug_key`, `organization_domains_domain_key`).
    async fn insert_org(&self, org: &Organization) -> StoreResult<()>;
    async fn org_by_id(&self, id: Uuid) -> StoreResult<Option<Organization>>;
    /// The organization that owns an email domain (lower-cased), if any.
    async fn org_by_domain(&self, domain: &str) -> StoreResult<Option<Organization>>;
    async fn list_orgs(&self) -> StoreResult<Vec<Organization>>;
    async fn count_orgs(&self) -> StoreResult<u64>;
    /// Replaces the organization's settings; false when there is no such organization.
    async fn update_org_settings(&self, id: Uuid, settings: &OrgSettings) -> StoreResult<bool>;
}
