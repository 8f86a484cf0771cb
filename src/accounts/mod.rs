//! The platform's accounts: what registration needs to know about the
//! account that already uses a work email, and to create and join one —
//! behind [`AccountStore`], so that a marketplace can plug in its own
//! account service. [`StoredAccounts`] is onramp's own, on the store; orders,
//! payment methods and addresses come with the paths that move them.
//!
//! Also the membership's reaction to the directory: a person the directory
//! deactivates or deletes has their membership suspended and their sessions
//! ended at once; reactivation restores the membership.

use std::sync::Arc;

use async_trait::async_trait;
use serde::Serialize;
use uuid::Uuid;

use crate::scim::events::{Change, DirectoryEvent, Reaction, Subscriber};
use crate::store::accounts::{
    AccountKind, AccountRecord, AuditEvent, Membership, MembershipStatus,
};
use crate::store::{DynStore, Repos, StoreError, Timestamp, Transaction};

/// What the registration decision needs to know about an existing account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AccountFacts {
    pub id: Uuid,
    pub email: String,
    pub name: String,
    pub kind: AccountKind,
    /// The organization it is a member of, if any.
    pub organization: Option<Uuid>,
    /// Whether any of its orders was for personal use.
    pub personal_orders: bool,
    pub orders: u64,
}

/// A business account to create for a person joining an organization.
#[derive(Debug, Clone)]
pub struct NewMember {
    pub email: String,
    pub name: String,
    pub password_hash: Option<String>,
    pub phone: Option<String>,
    pub org_id: Uuid,
    /// The directory user the person is.
    pub user_id: Uuid,
}

/// The account service registration talks to. Writes happen in the
/// caller's transaction, so they commit or roll back with the rest of a
/// registration path.
#[async_trait]
pub trait AccountStore: Send + Sync {
    /// The account whose login is `email` (case-insensitively), if any.
    async fn facts_by_email(&self, email: &str) -> Result<Option<AccountFacts>, StoreError>;
    /// The account with this id.
    async fn account(&self, id: Uuid) -> Result<Option<AccountRecord>, StoreError>;
    /// Creates a business account that is a member of the organization;
    /// returns its id. A taken email is a `Conflict` on
    /// `accounts_email_lower_key`.
    async fn create_member(
        &self,
        tx: &dyn Transaction,
        new: &NewMember,
    ) -> Result<Uuid, StoreError>;
}

/// onramp's own accounts, on the store.
pub struct StoredAccounts {
    store: DynStore,
}

impl StoredAccounts {
    pub fn shared(store: DynStore) -> Arc<dyn AccountStore> {
        Arc::new(StoredAccounts { store })
    }
}

#[async_trait]
impl AccountStore for StoredAccounts {
    async fn facts_by_email(&self, email: &str) -> Result<Option<AccountFacts>, StoreError> {
        let Some(a) = self.store.account_by_email(email).await? else {
            return Ok(None);
        };
        let membership = self.store.membership(a.id).await?;
        Ok(Some(AccountFacts {
            id: a.id,
            email: a.email,
            name: a.name,
            kind: a.kind,
            organization: membership.map(|m| m.org_id),
            personal_orders: false,
            orders: 0,
        }))
    }

    async fn account(&self, id: Uuid) -> Result<Option<AccountRecord>, StoreError> {
        self.store.account_by_id(id).await
    }

    async fn create_member(
        &self,
        tx: &dyn Transaction,
        new: &NewMember,
    ) -> Result<Uuid, StoreError> {
        let now = Timestamp::now();
        let id = Uuid::now_v7();
        tx.insert_account(&AccountRecord {
            id,
            email: new.email.clone(),
            name: new.name.clone(),
            password_hash: new.password_hash.clone(),
            kind: AccountKind::Business,
            phone: new.phone.clone(),
            created_at: now,
            updated_at: now,
        })
        .await?;
        tx.insert_membership(&Membership {
            account_id: id,
            org_id: new.org_id,
            user_id: Some(new.user_id),
            status: MembershipStatus::Active,
            joined_at: now,
        })
        .await?;
        Ok(id)
    }
}

/// Writes an audit event in `tx`.
pub async fn audit(
    tx: &dyn Transaction,
    org_id: Option<Uuid>,
    account_id: Option<Uuid>,
    actor: &str,
    action: &str,
    detail: serde_json::Value,
) -> Result<(), StoreError> {
    tx.insert_audit_event(&AuditEvent {
        id: Uuid::now_v7(),
        org_id,
        account_id,
        actor: actor.to_string(),
        action: action.to_string(),
        detail,
        at: Timestamp::now(),
    })
    .await
}

/// Memberships follow the directory: see the module docs.
pub struct MembershipSubscriber;

struct MembershipWrites {
    org_id: Uuid,
    user_id: Uuid,
    status: MembershipStatus,
}

#[async_trait]
impl Reaction for MembershipWrites {
    async fn write(&self, tx: &dyn Transaction) -> Result<(), StoreError> {
        tx.set_membership_status(self.org_id, self.user_id, self.status)
            .await?;
        if self.status == MembershipStatus::Suspended {
            tx.delete_sessions_of_user(self.org_id, self.user_id)
                .await?;
        }
        Ok(())
    }
}

#[async_trait]
impl Subscriber for MembershipSubscriber {
    async fn plan(
        &self,
        _store: &dyn Repos,
        change: &Change<'_>,
    ) -> Result<Option<Box<dyn Reaction>>, StoreError> {
        let status = if change.has(DirectoryEvent::UserDeactivated)
            || change.has(DirectoryEvent::UserDeleted)
        {
            MembershipStatus::Suspended
        } else if change.has(DirectoryEvent::UserActivated) {
            MembershipStatus::Active
        } else {
            return Ok(None);
        };
        // Set-based: right whether or not the person has registered yet.
        Ok(Some(Box::new(MembershipWrites {
            org_id: change.org_id,
            user_id: change.resource_id,
            status,
        })))
    }
}
