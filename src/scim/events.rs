//! Directory events: what a SCIM change did, recorded in the change log in
//! the change's own transaction, and handed to the features that react to
//! it (invitations today; sessions, roles and profiles as they come).
//!
//! A [`Subscriber`] keeps its rule in one place. It is asked to
//! [`plan`](Subscriber::plan) before the change's transaction opens, reading
//! what it needs from the store while no lock is held, and returns the
//! writes it will make; those are made inside the transaction, so they
//! commit or roll back with the change. What it read may be stale by then:
//! its writes must be ones that stay right (set-based, or guarded by the
//! constraints and version checks that fail the transaction, which the
//! service then retries).

use std::sync::Arc;

use async_trait::async_trait;
use uuid::Uuid;

use crate::store::scim::{ChangeKind, UserRecord};
use crate::store::{Repos, StoreError, Transaction};

/// One thing that happened to a user or a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DirectoryEvent {
    UserCreated,
    /// Changed, staying active or inactive.
    UserUpdated,
    UserActivated,
    UserDeactivated,
    UserDeleted,
    /// The address invitations go to changed (with another event).
    UserEmailChanged,
    GroupCreated,
    GroupUpdated,
    GroupDeleted,
    /// Members were added or removed (with another group event).
    MembershipChanged,
}

impl DirectoryEvent {
    /// The kind it is recorded as in the change log.
    pub fn change_kind(self) -> ChangeKind {
        match self {
            DirectoryEvent::UserCreated | DirectoryEvent::GroupCreated => ChangeKind::Created,
            DirectoryEvent::UserUpdated | DirectoryEvent::GroupUpdated => ChangeKind::Updated,
            DirectoryEvent::UserActivated => ChangeKind::Activated,
            DirectoryEvent::UserDeactivated => ChangeKind::Deactivated,
            DirectoryEvent::UserDeleted | DirectoryEvent::GroupDeleted => ChangeKind::Deleted,
            DirectoryEvent::UserEmailChanged => ChangeKind::EmailChanged,
            DirectoryEvent::MembershipChanged => ChangeKind::MembersChanged,
        }
    }

    /// +1 for a creation, -1 for a deletion: the resource count's change.
    pub fn count_delta(self) -> i64 {
        match self {
            DirectoryEvent::UserCreated | DirectoryEvent::GroupCreated => 1,
            DirectoryEvent::UserDeleted | DirectoryEvent::GroupDeleted => -1,
            _ => 0,
        }
    }
}

/// The change-log kinds of `events`, in order.
pub fn kinds(events: &[DirectoryEvent]) -> Vec<ChangeKind> {
    events.iter().map(|e| e.change_kind()).collect()
}

/// What `events` change the resource count by.
pub fn count_delta(events: &[DirectoryEvent]) -> i64 {
    events.iter().map(|e| e.count_delta()).sum()
}

/// A change to one resource, as subscribers see it.
#[derive(Debug)]
pub struct Change<'a> {
    pub org_id: Uuid,
    /// The user or group changed.
    pub resource_id: Uuid,
    pub events: &'a [DirectoryEvent],
    /// A user before the change (`None` when created, and for groups).
    pub before: Option<&'a UserRecord>,
    /// A user after the change (`None` when deleted, and for groups).
    pub after: Option<&'a UserRecord>,
    /// Members (users or groups) added to and removed from a group; when
    /// the whole membership was replaced first, `cleared` says so (and
    /// `removed` does not list who went).
    pub members_added: &'a [Uuid],
    pub members_removed: &'a [Uuid],
    pub members_cleared: bool,
}

impl Change<'_> {
    pub fn has(&self, event: DirectoryEvent) -> bool {
        self.events.contains(&event)
    }
}

/// A feature that reacts to directory changes.
#[async_trait]
pub trait Subscriber: Send + Sync {
    /// Reads what the reaction needs (on `store`, before the change's
    /// transaction: no lock is held) and returns the writes it will make
    /// inside it, or `None`.
    async fn plan(
        &self,
        store: &dyn Repos,
        change: &Change<'_>,
    ) -> Result<Option<Box<dyn Reaction>>, StoreError>;
}

/// Writes a subscriber planned, made in the change's transaction.
#[async_trait]
pub trait Reaction: Send + Sync {
    async fn write(&self, tx: &dyn Transaction) -> Result<(), StoreError>;
    /// Called after the change committed (to wake a worker, say).
    fn committed(&self) {}
}

/// Every subscriber's reaction to one change.
#[derive(Default)]
pub(super) struct Reactions(Vec<Box<dyn Reaction>>);

impl Reactions {
    pub(super) async fn plan(
        subscribers: &[Arc<dyn Subscriber>],
        store: &dyn Repos,
        change: &Change<'_>,
    ) -> Result<Reactions, StoreError> {
        let mut out = Vec::new();
        for s in subscribers {
            if let Some(r) = s.plan(store, change).await? {
                out.push(r);
            }
        }
        Ok(Reactions(out))
    }

    pub(super) async fn write(&self, tx: &dyn Transaction) -> Result<(), StoreError> {
        for r in &self.0 {
            r.write(tx).await?;
        }
        Ok(())
    }

    pub(super) fn committed(&self) {
        for r in &self.0 {
            r.committed();
        }
    }
}

/// The events of a user change, from the user before and after it.
/// `work_email` says which address invitations go to.
pub fn user_events(
    before: Option<&UserRecord>,
    after: Option<&UserRecord>,
    work_email: impl Fn(&UserRecord) -> Option<String>,
) -> Vec<DirectoryEvent> {
    match (before, after) {
        (None, Some(_)) => vec![DirectoryEvent::UserCreated],
        (Some(_), None) => vec![DirectoryEvent::UserDeleted],
        (Some(b), Some(a)) => {
            let mut events = vec![match (b.active, a.active) {
                (false, true) => DirectoryEvent::UserActivated,
                (true, false) => DirectoryEvent::UserDeactivated,
                _ => DirectoryEvent::UserUpdated,
            }];
            if work_email(b) != work_email(a) {
                events.push(DirectoryEvent::UserEmailChanged);
            }
            events
        }
        (None, None) => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Timestamp;
    use serde_json::json;

    fn user(active: bool, email: &str) -> UserRecord {
        UserRecord {
            id: Uuid::nil(),
            org_id: Uuid::nil(),
            user_name: "u".into(),
            external_id: None,
            display_name: None,
            active,
            resource: json!({"emails": [{"value": email}]}),
            password_hash: None,
            version: 1,
            created_at: Timestamp::now(),
            updated_at: Timestamp::now(),
        }
    }

    fn email(u: &UserRecord) -> Option<String> {
        u.resource["emails"][0]["value"].as_str().map(str::to_owned)
    }

    #[test]
    fn a_user_change_names_what_happened_to_it() {
        use DirectoryEvent::*;
        let a = user(true, "a@x");
        assert_eq!(user_events(None, Some(&a), email), vec![UserCreated]);
        assert_eq!(user_events(Some(&a), None, email), vec![UserDeleted]);
        assert_eq!(user_events(Some(&a), Some(&a), email), vec![UserUpdated]);
        let off = user(false, "a@x");
        assert_eq!(
            user_events(Some(&a), Some(&off), email),
            vec![UserDeactivated]
        );
        assert_eq!(
            user_events(Some(&off), Some(&a), email),
            vec![UserActivated]
        );
        let moved = user(false, "b@x");
        assert_eq!(
            user_events(Some(&a), Some(&moved), email),
            vec![UserDeactivated, UserEmailChanged]
        );
    }
}
