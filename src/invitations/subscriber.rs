//! Invitations react to directory changes: the rule decides, the reaction
//! writes in the change's transaction. Everything that costs — drawing the
//! link's token, rendering the mail — happens while planning, before that
//! transaction opens.

use async_trait::async_trait;
use uuid::Uuid;

use super::InvitationService;
use super::rule::{Action, decide};
use super::service::{TOKEN_KIND, expiry};
use crate::scim::events::{Change, DirectoryEvent, Reaction, Subscriber};
use crate::scim::mapping::display_name;
use crate::secrets::token;
use crate::store::invitations::{InvitationRecord, InvitationStatus};
use crate::store::outbox::OutboxRecord;
use crate::store::{Repos, StoreError, Timestamp, Transaction};

/// What an invitation reaction writes.
struct InvitationWrites {
    org_id: Uuid,
    user_id: Uuid,
    void: Option<&'static str>,
    invitation: Option<InvitationRecord>,
    mail: Option<OutboxRecord>,
    service: InvitationService,
}

#[async_trait]
impl Reaction for InvitationWrites {
    async fn write(&self, tx: &dyn Transaction) -> Result<(), StoreError> {
        if let Some(reason) = self.void {
            tx.void_live_invitations(self.org_id, self.user_id, reason, Timestamp::now())
                .await?;
        }
        if let Some(inv) = &self.invitation {
            tx.insert_invitation(inv).await?;
        }
        if let Some(mail) = &self.mail {
            tx.enqueue_mail(mail).await?;
        }
        Ok(())
    }

    fn committed(&self) {
        if self.mail.is_some() {
            self.service.wake_worker();
        }
    }
}

#[async_trait]
impl Subscriber for InvitationService {
    async fn plan(
        &self,
        store: &dyn Repos,
        change: &Change<'_>,
    ) -> Result<Option<Box<dyn Reaction>>, StoreError> {
        if change.events.iter().all(|e| {
            matches!(
                e,
                DirectoryEvent::GroupCreated
                    | DirectoryEvent::GroupUpdated
                    | DirectoryEvent::GroupDeleted
                    | DirectoryEvent::MembershipChanged
            )
        }) {
            return Ok(None);
        }
        let Some(org) = self.orgs.get(store, change.org_id).await? else {
            return Ok(None);
        };
        // A user just created has no invitations yet: nothing to read.
        let existing = if change.has(DirectoryEvent::UserCreated) {
            Vec::new()
        } else {
            store
                .invitations_of_user(change.org_id, change.resource_id)
                .await?
        };
        let now = Timestamp::now();
        let mut writes = InvitationWrites {
            org_id: change.org_id,
            user_id: change.resource_id,
            void: None,
            invitation: None,
            mail: None,
            service: self.clone(),
        };
        let name = change.after.and_then(|u| display_name(&u.resource));
        let record = |email: String, status: InvitationStatus| InvitationRecord {
            id: Uuid::now_v7(),
            org_id: change.org_id,
            user_id: change.resource_id,
            email,
            recipient_name: name.clone(),
            token_hash: None,
            status,
            reason: None,
            sends: 0,
            created_at: now,
            updated_at: now,
            expires_at: now,
            sent_at: None,
            accepted_at: None,
        };
        match decide(&org, change, &existing) {
            Action::Nothing => return Ok(None),
            Action::Void(reason) => writes.void = Some(reason),
            Action::Issue { email, void_first } => {
                writes.void = void_first;
                let issued = token::issue_ordered(TOKEN_KIND);
                let mut inv = record(email, InvitationStatus::Pending);
                inv.token_hash = Some(issued.hash);
                inv.sends = 1;
                inv.expires_at = expiry(&org, now);
                writes.mail = Some(self.invitation_mail(&org, &inv, &issued.secret, now)?);
                writes.invitation = Some(inv);
            }
            Action::Unusable { reason, void_first } => {
                writes.void = void_first;
                let mut inv = record(String::new(), InvitationStatus::Failed);
                inv.reason = Some(reason);
                writes.invitation = Some(inv);
            }
        }
        Ok(Some(Box::new(writes)))
    }
}
