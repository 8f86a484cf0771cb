//! Invitation use cases for administrators (list, resend, revoke), each
//! scoped to one organization, and the writes other features compose into
//! their own transactions (`*_in`, taking `&dyn Transaction`).

use std::sync::Arc;

use serde::Serialize;
use tokio::sync::Notify;
use uuid::Uuid;

use super::MAIL_KIND;
use crate::mail::message_id_domain;
use crate::mail::templates::{InvitationMail, render_invitation};
use crate::secrets::token;
use crate::store::invitations::{InvitationRecord, InvitationStatus};
use crate::store::outbox::{OutboxRecord, OutboxStatus};
use crate::store::{DynStore, Organization, StoreError, Timestamp, Transaction};
use crate::tenancy::OrgCache;

/// The kind prefix of invitation link tokens.
pub(super) const TOKEN_KIND: &str = "inv";

#[derive(Debug, thiserror::Error)]
pub enum InvitationError {
    #[error("no invitation with id {0} in this organization")]
    NotFound(Uuid),
    #[error("{0}")]
    NotAllowed(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// An invitation as admins see it, with the derived `expired` status.
#[derive(Debug, Clone, Serialize)]
pub struct InvitationView {
    #[serde(flatten)]
    pub record: InvitationRecord,
    /// pending, sent, accepted, expired, revoked or failed.
    pub effective_status: &'static str,
}

impl InvitationView {
    pub fn of(record: InvitationRecord, now: Timestamp) -> Self {
        let effective_status = if record.status.is_live() && record.expires_at <= now {
            "expired"
        } else {
            record.status.as_str()
        };
        InvitationView {
            record,
            effective_status,
        }
    }
}

#[derive(Clone)]
pub struct InvitationService {
    pub(super) store: DynStore,
    public_url: String,
    from: String,
    /// Wakes this process's outbox worker when new mail was committed.
    wake: Option<Arc<Notify>>,
    pub(super) orgs: OrgCache,
}

impl InvitationService {
    pub fn new(store: DynStore, public_url: &str, from: &str) -> Self {
        InvitationService {
            store,
            public_url: public_url.trim_end_matches('/').to_string(),
            from: from.to_string(),
            wake: None,
            orgs: OrgCache::default(),
        }
    }

    /// The same service, reading organizations through `orgs`.
    pub fn with_org_cache(mut self, orgs: OrgCache) -> Self {
        self.orgs = orgs;
        self
    }

    /// The same service, waking `worker` after queuing mail.
    pub fn waking(mut self, worker: Arc<Notify>) -> Self {
        self.wake = Some(worker);
        self
    }

    /// The `From` of onramp's mail (its domain names Message-IDs).
    pub fn mail_from(&self) -> &str {
        &self.from
    }

    /// Wakes this process's outbox worker (after committing mail).
    pub fn wake_worker(&self) {
        if let Some(w) = &self.wake {
            w.notify_one();
        }
    }

    pub async fn list(
        &self,
        org_id: Uuid,
        status: Option<&str>,
    ) -> Result<Vec<InvitationView>, InvitationError> {
        let now = Timestamp::now();
        let stored = match status {
            None | Some("expired") => None,
            Some(s) => Some(InvitationStatus::parse(s).ok_or_else(|| {
                InvitationError::NotAllowed(format!(
                    "unknown status {s}; use pending, sent, accepted, expired, revoked or failed"
                ))
            })?),
        };
        let rows = self.store.list_invitations(org_id, stored, 10_000).await?;
        Ok(rows
            .into_iter()
            .map(|r| InvitationView::of(r, now))
            .filter(|v| status.is_none_or(|s| v.effective_status == s))
            .collect())
    }

    pub async fn get(&self, org_id: Uuid, id: Uuid) -> Result<InvitationView, InvitationError> {
        let inv = self
            .store
            .invitation_by_id(org_id, id)
            .await?
            .ok_or(InvitationError::NotFound(id))?;
        Ok(InvitationView::of(inv, Timestamp::now()))
    }

    /// Issues a fresh link for the organization's invitation and voids the
    /// old ones (and their unsent mail). Not for accepted invitations or
    /// people no longer active.
    pub async fn resend(&self, org_id: Uuid, id: Uuid) -> Result<InvitationView, InvitationError> {
        let tx = self.store.begin().await?;
        let view = self.resend_in(&*tx, org_id, id).await?;
        tx.commit().await?;
        self.wake_worker();
        Ok(view)
    }

    /// [`resend`](Self::resend) inside the caller's transaction.
    pub async fn resend_in(
        &self,
        tx: &dyn Transaction,
        org_id: Uuid,
        id: Uuid,
    ) -> Result<InvitationView, InvitationError> {
        let mut inv = tx
            .invitation_by_id(org_id, id)
            .await?
            .ok_or(InvitationError::NotFound(id))?;
        if inv.status == InvitationStatus::Accepted {
            return Err(InvitationError::NotAllowed(
                "the invitation was already accepted".into(),
            ));
        }
        let user = tx.user_by_id(inv.org_id, inv.user_id).await?;
        if !user.as_ref().is_some_and(|u| u.active) {
            return Err(InvitationError::NotAllowed(
                "the person is no longer active in the directory".into(),
            ));
        }
        if !inv.status.is_live() {
            let others = tx.invitations_of_user(inv.org_id, inv.user_id).await?;
            if others.iter().any(|o| o.id != inv.id && o.status.is_live()) {
                return Err(InvitationError::NotAllowed(
                    "another invitation for this person is live: resend that one".into(),
                ));
            }
        }
        let org = tx
            .org_by_id(inv.org_id)
            .await?
            .ok_or(InvitationError::NotFound(inv.org_id))?;
        tx.cancel_mail(MAIL_KIND, inv.id).await?;
        tx.drop_invitation_links(inv.id).await?;
        let now = Timestamp::now();
        let issued = token::issue_ordered(TOKEN_KIND);
        inv.token_hash = Some(issued.hash);
        inv.status = InvitationStatus::Pending;
        inv.reason = None;
        inv.sends += 1;
        inv.updated_at = now;
        inv.expires_at = expiry(&org, now);
        tx.update_invitation(&inv).await?;
        tx.enqueue_mail(&self.invitation_mail(&org, &inv, &issued.secret, now)?)
            .await?;
        Ok(InvitationView::of(inv, now))
    }

    /// Voids the organization's live invitation and cancels its unsent mail.
    pub async fn revoke(&self, org_id: Uuid, id: Uuid) -> Result<InvitationView, InvitationError> {
        let tx = self.store.begin().await?;
        let view = self.revoke_in(&*tx, org_id, id).await?;
        tx.commit().await?;
        Ok(view)
    }

    /// [`revoke`](Self::revoke) inside the caller's transaction.
    pub async fn revoke_in(
        &self,
        tx: &dyn Transaction,
        org_id: Uuid,
        id: Uuid,
    ) -> Result<InvitationView, InvitationError> {
        let mut inv = tx
            .invitation_by_id(org_id, id)
            .await?
            .ok_or(InvitationError::NotFound(id))?;
        if !inv.status.is_live() {
            return Err(InvitationError::NotAllowed(format!(
                "the invitation is {}, not pending or sent",
                inv.status.as_str()
            )));
        }
        // The outbox row before the invitation row: the lock order the
        // outbox worker follows too.
        tx.cancel_mail(MAIL_KIND, inv.id).await?;
        tx.drop_invitation_links(inv.id).await?;
        inv.status = InvitationStatus::Revoked;
        inv.reason = Some("revoked by an administrator".into());
        inv.updated_at = Timestamp::now();
        tx.update_invitation(&inv).await?;
        Ok(InvitationView::of(inv, Timestamp::now()))
    }

    /// Accepts the organization's live invitation inside the caller's
    /// transaction (the registration that completes it), its unsent mail
    /// cancelled; its links then say it was used. An invitation accepted, revoked or
    /// expired meanwhile fails the transaction with `Stale`.
    pub async fn accept_in(
        &self,
        tx: &dyn Transaction,
        org_id: Uuid,
        id: Uuid,
    ) -> Result<(), StoreError> {
        tx.cancel_mail(MAIL_KIND, id).await?;
        tx.accept_invitation(org_id, id, Timestamp::now()).await
    }

    /// The invitation's mail, rendered and ready to queue.
    pub(super) fn invitation_mail(
        &self,
        org: &Organization,
        inv: &InvitationRecord,
        secret: &str,
        now: Timestamp,
    ) -> Result<OutboxRecord, StoreError> {
        let mail = InvitationMail {
            org_name: org.name.clone(),
            inviter: org.settings.inviter.clone(),
            recipient_name: inv.recipient_name.clone(),
            link: format!("{}/join/{secret}", self.public_url),
            expires_at: inv.expires_at,
            contact: org.settings.contact.clone(),
        };
        let rendered = render_invitation(&mail).map_err(StoreError::other)?;
        // One Message-ID per link sent (`sends` counts them): a retried
        // send is the same message.
        let message_id = format!(
            "inv-{}-{}@{}",
            inv.id,
            inv.sends,
            message_id_domain(&self.from)
        );
        Ok(OutboxRecord {
            id: Uuid::now_v7(),
            org_id: org.id,
            kind: MAIL_KIND.to_string(),
            ref_id: Some(inv.id),
            message_id,
            to_address: inv.email.clone(),
            to_name: inv.recipient_name.clone(),
            subject: Some(rendered.subject),
            body_text: Some(rendered.text),
            body_html: Some(rendered.html),
            status: OutboxStatus::Queued,
            attempts: 0,
            next_attempt_at: now,
            last_error: None,
            created_at: now,
            sent_at: None,
        })
    }
}

/// When an invitation issued at `now` expires.
pub(super) fn expiry(org: &Organization, now: Timestamp) -> Timestamp {
    now.plus(time::Duration::days(i64::from(
        org.settings.invitation_ttl_days.max(1),
    )))
}
