//! The platform's accounts as stored: login email (unique, case-
//! insensitively), name, password hash, kind, phone; an account's membership
//! of an organization; and the audit log of what happened to them.

use async_trait::async_trait;
use serde::Serialize;
use uuid::Uuid;

use super::{StoreResult, Timestamp};

/// Personal (a consumer's) or business.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AccountKind {
    Personal,
    Business,
}

impl AccountKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AccountKind::Personal => "personal",
            AccountKind::Business => "business",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "personal" => Some(AccountKind::Personal),
            "business" => Some(AccountKind::Business),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AccountRecord {
    pub id: Uuid,
    pub email: String,
    pub name: String,
    #[serde(skip)]
    pub password_hash: Option<String>,
    pub kind: AccountKind,
    pub phone: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// Whether a membership counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MembershipStatus {
    Active,
    /// The directory has the person inactive: no sign-in, no sessions.
    Suspended,
}

impl MembershipStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            MembershipStatus::Active => "active",
            MembershipStatus::Suspended => "suspended",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "active" => Some(MembershipStatus::Active),
            "suspended" => Some(MembershipStatus::Suspended),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Membership {
    pub account_id: Uuid,
    pub org_id: Uuid,
    /// The directory (SCIM) user the account is, when it joined through one.
    pub user_id: Option<Uuid>,
    pub status: MembershipStatus,
    pub joined_at: Timestamp,
}

/// One entry of the audit log.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditEvent {
    pub id: Uuid,
    pub org_id: Option<Uuid>,
    pub account_id: Option<Uuid>,
    /// Who: an email, "directory", "system".
    pub actor: String,
    /// What, e.g. `registration.completed`.
    pub action: String,
    /// Details (never a password or a code).
    pub detail: serde_json::Value,
    pub at: Timestamp,
}

#[async_trait]
pub trait AccountRepo {
    /// A taken email is a `Conflict` on `accounts_email_lower_key`.
    async fn insert_account(&self, a: &AccountRecord) -> StoreResult<()>;
    async fn account_by_id(&self, id: Uuid) -> StoreResult<Option<AccountRecord>>;
    /// The account whose login email is `email`, case-insensitively.
    async fn account_by_email(&self, email: &str) -> StoreResult<Option<AccountRecord>>;
    /// Makes the account a member of the organization as the directory
    /// user; a user already a member is a `Conflict` on
    /// `memberships_org_id_user_id_key`.
    async fn insert_membership(&self, m: &Membership) -> StoreResult<()>;
    async fn membership(&self, account_id: Uuid) -> StoreResult<Option<Membership>>;
    /// Sets the status of the directory user's membership in the organization.
    async fn set_membership_status(
        &self,
        org_id: Uuid,
        user_id: Uuid,
        status: MembershipStatus,
    ) -> StoreResult<()>;
    async fn insert_audit_event(&self, e: &AuditEvent) -> StoreResult<()>;
    /// The organization's audit events, newest first.
    async fn audit_events(&self, org_id: Uuid, limit: i64) -> StoreResult<Vec<AuditEvent>>;
}
