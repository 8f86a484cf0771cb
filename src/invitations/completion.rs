//! What delivering an invitation mail changes: a pending invitation becomes
//! `sent`; one whose mail failed for good becomes `failed`, saying why.

use async_trait::async_trait;
use uuid::Uuid;

use crate::mail::outbox::MailCompletion;
use crate::store::invitations::InvitationStatus;
use crate::store::{StoreError, Timestamp, Transaction};

pub struct InvitationMailCompletion;

#[async_trait]
impl MailCompletion for InvitationMailCompletion {
    async fn delivered(
        &self,
        tx: &dyn Transaction,
        refs: &[Uuid],
        at: Timestamp,
    ) -> Result<(), StoreError> {
        tx.mark_invitations_sent(refs, at).await
    }

    async fn failed(
        &self,
        tx: &dyn Transaction,
        org_id: Uuid,
        ref_id: Uuid,
        reason: &str,
    ) -> Result<(), StoreError> {
        let Some(mut inv) = tx.invitation_by_id(org_id, ref_id).await? else {
            return Ok(());
        };
        if inv.status.is_live() {
            inv.status = InvitationStatus::Failed;
            inv.reason = Some(format!(
                "the invitation mail could not be delivered: {reason}"
            ));
            inv.updated_at = Timestamp::now();
            tx.update_invitation(&inv).await?;
        }
        Ok(())
    }
}
