//! The platform's accounts: what registration needs to know about the
//! account that already uses a work email, and to create and join one —
//! behind [`AccountStore`], so that a marketplace can plug in its own
//! account service. [`StoredAccounts`] is onramp's own, on the store; orders,
//! payment methods and addresses come with the paths that move them.
//!
//! Also the membership's reaction to the directory: a person the directory
//! deactivates or deletes has their membership suspended and their sessions
//! ended at once; reactivation restores the membership.

pub mod import;

use std::sync::Arc;

use async_trait::async_trait;
use serde::Serialize;
use uuid::Uuid;

use crate::scim::events::{Change, DirectoryEvent, Reaction, Subscriber};
use crate::store::accounts::{
    AccountKind, AccountRecord, AuditEvent, Membership, MembershipStatus,
};
use crate::store::history::{HistoryCounts, OrderRecord};
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
    /// Whether it has a password (the other proof of ownership is a mailed code).
    pub has_password: bool,
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
    /// How much the account holds.
    async fn counts(&self, id: Uuid) -> Result<HistoryCounts, StoreError>;
    /// Up to `limit` of the account's orders after the order id `after`, by id.
    async fn orders(
        &self,
        id: Uuid,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<OrderRecord>, StoreError>;
    /// Migrate: the personal account with login `email` becomes a business
    /// account and joins the organization as the directory user. An
    /// account changed meanwhile fails the transaction (`Stale`, or a
    /// `Conflict` on `memberships_account_id_key`).
    async fn join_organization(
        &self,
        tx: &dyn Transaction,
        id: Uuid,
        email: &str,
        org_id: Uuid,
        user_id: Uuid,
    ) -> Result<(), StoreError>;
    /// Moves the account's login from `from` to `to`; everything it holds
    /// stays with it. A taken `to` is a `Conflict` on
    /// `accounts_email_lower_key`; a login no longer `from`, `Stale`.
    async fn move_login(
        &self,
        tx: &dyn Transaction,
        id: Uuid,
        from: &str,
        to: &str,
    ) -> Result<(), StoreError>;
    /// Deregistration: the business account with login `email` leaves the
    /// organization it belongs to (if any) and becomes a personal account.
    async fn deregister(
        &self,
        tx: &dyn Transaction,
        id: Uuid,
        email: &str,
        org_id: Option<Uuid>,
    ) -> Result<(), StoreError>;
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
        let personal_orders = self.store.has_personal_orders(a.id).await?;
        Ok(Some(AccountFacts {
            id: a.id,
            email: a.email,
            name: a.name,
            kind: a.kind,
            organization: membership.map(|m| m.org_id),
            personal_orders,
            has_password: a.password_hash.is_some(),
        }))
    }

    async fn counts(&self, id: Uuid) -> Result<HistoryCounts, StoreError> {
        self.store.history_counts(id).await
    }

    async fn orders(
        &self,
        id: Uuid,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<OrderRecord>, StoreError> {
        self.store.orders(id, after, limit).await
    }

    async fn join_organization(
        &self,
        tx: &dyn Transaction,
        id: Uuid,
        email: &str,
        org_id: Uuid,
        user_id: Uuid,
    ) -> Result<(), StoreError> {
        let now = Timestamp::now();
        tx.change_account_kind(id, email, AccountKind::Personal, AccountKind::Business, now)
            .await?;
        tx.insert_membership(&Membership {
            account_id: id,
            org_id,
            user_id: Some(user_id),
            status: MembershipStatus::Active,
            joined_at: now,
        })
        .await
    }

    async fn move_login(
        &self,
        tx: &dyn Transaction,
        id: Uuid,
        from: &str,
        to: &str,
    ) -> Result<(), StoreError> {
        tx.move_login(id, from, to, Timestamp::now()).await
    }

    async fn deregister(
        &self,
        tx: &dyn Transaction,
        id: Uuid,
        email: &str,
        org_id: Option<Uuid>,
    ) -> Result<(), StoreError> {
        if let Some(org) = org_id {
            tx.leave_organization(id, org).await?;
        }
        tx.change_account_kind(
            id,
            email,
            AccountKind::Business,
            AccountKind::Personal,
            Timestamp::now(),
        )
        .await
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

/// An account as `onramp accounts show` prints it.
#[derive(Debug, Serialize)]
pub struct AccountView {
    pub id: Uuid,
    pub email: String,
    pub name: String,
    pub kind: AccountKind,
    pub phone: Option<String>,
    /// The organization it is a member of.
    pub organization: Option<Uuid>,
    pub orders: Vec<crate::store::history::OrderRecord>,
    pub payment_methods: Vec<crate::store::history::PaymentMethodRecord>,
    pub addresses: Vec<crate::store::history::AddressRecord>,
}

/// The account whose login is `email`, with everything it holds.
pub async fn show(store: &DynStore, email: &str) -> Result<Option<AccountView>, StoreError> {
    let Some(a) = store.account_by_email(email).await? else {
        return Ok(None);
    };
    let mut orders = Vec::new();
    loop {
        let page = store
            .orders(
                a.id,
                orders.last().map(|o: &OrderRecord| o.id.as_str()),
                10_000,
            )
            .await?;
        let done = page.len() < 10_000;
        orders.extend(page);
        if done {
            break;
        }
    }
    Ok(Some(AccountView {
        organization: store.membership(a.id).await?.map(|m| m.org_id),
        payment_methods: store.payment_methods(a.id).await?,
        addresses: store.addresses(a.id).await?,
        orders,
        id: a.id,
        email: a.email,
        name: a.name,
        kind: a.kind,
        phone: a.phone,
    }))
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
        // Sessions first: their delete only reads the membership, so on
        // PostgreSQL both writes share one statement.
        if self.status == MembershipStatus::Suspended {
            tx.delete_sessions_of_user(self.org_id, self.user_id)
                .await?;
        }
        tx.set_membership_status(self.org_id, self.user_id, self.status)
            .await
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
