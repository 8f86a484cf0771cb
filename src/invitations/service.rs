//! Invitation use cases and the provisioning hook.

use std::sync::Arc;

use async_trait::async_trait;
use serde::Serialize;
use serde_json::Value;
use tokio::sync::Notify;
use uuid::Uuid;

use super::email::{Unusable, work_email};
use crate::mail::message_id_domain;
use crate::mail::templates::{InvitationMail, render_invitation};
use crate::scim::{PreparedWrites, UserChange, UserChangeHook};
use crate::store::invitations::{InvitationRecord, InvitationStatus, OutboxRecord, OutboxStatus};
use crate::store::scim::ChangeKind;
use crate::store::{DynStore, Organization, Repos, StoreError, Timestamp};
use crate::tenancy::{OrgCache, token};

/// The kind prefix of invitation tokens.
const TOKEN_KIND: &str = "inv";

#[derive(Debug, thiserror::Error)]
pub enum InvitationError {
    #[error("no invitation with id {0}")]
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
    store: DynStore,
    public_url: String,
    from: String,
    /// Wakes this process's outbox worker when new mail was committed.
    wake: Option<Arc<Notify>>,
    orgs: OrgCache,
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

    pub(super) fn store(&self) -> &DynStore {
        &self.store
    }

    fn wake_worker(&self) {
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

    pub async fn get(&self, id: Uuid) -> Result<InvitationView, InvitationError> {
        let inv = self
            .store
            .invitation_by_id(id)
            .await?
            .ok_or(InvitationError::NotFound(id))?;
        Ok(InvitationView::of(inv, Timestamp::now()))
    }

    /// Issues a fresh link for the invitation and voids the old one (and its
    /// unsent mail). Not for accepted invitations or users no longer active.
    pub async fn resend(&self, id: Uuid) -> Result<InvitationView, InvitationError> {
        let tx = self.store.begin().await?;
        let mut inv = tx
            .invitation_by_id(id)
            .await?
            .ok_or(InvitationError::NotFound(id))?;
        if inv.status == InvitationStatus::Accepted {
            return Err(InvitationError::NotAllowed(
                "the invitation was already accepted".into(),
            ));
        }
        let user = tx.user_for_update(inv.org_id, inv.user_id).await?;
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
        tx.cancel_mail_for_invitation(inv.id).await?;
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
        tx.commit().await?;
        self.wake_worker();
        Ok(InvitationView::of(inv, now))
    }

    /// Voids a live invitation and cancels its unsent mail.
    pub async fn revoke(&self, id: Uuid) -> Result<InvitationView, InvitationError> {
        let tx = self.store.begin().await?;
        let mut inv = tx
            .invitation_by_id(id)
            .await?
            .ok_or(InvitationError::NotFound(id))?;
        if !inv.status.is_live() {
            return Err(InvitationError::NotAllowed(format!(
                "the invitation is {}, not pending or sent",
                inv.status.as_str()
            )));
        }
        void(&*tx, &mut inv, "revoked by an administrator").await?;
        tx.commit().await?;
        Ok(InvitationView::of(inv, Timestamp::now()))
    }

    /// Issues an invitation to the user unless one is live or was accepted;
    /// records why not when the user has no usable email.
    async fn issue_if_needed(
        &self,
        tx: &dyn Repos,
        change: &UserChange<'_>,
        resource: &Value,
    ) -> Result<(), StoreError> {
        let Some(org) = self.orgs.get(tx, change.org_id).await? else {
            return Ok(());
        };
        if !org.settings.auto_invite {
            return Ok(());
        }
        let existing = tx
            .invitations_of_user(change.org_id, change.user_id)
            .await?;
        if existing
            .iter()
            .any(|i| i.status == InvitationStatus::Accepted || i.status.is_live())
        {
            return Ok(());
        }
        // An ordinary update invites only someone never invited (or whose
        // invitation could not be made); creation and reactivation always do.
        if change.kind == ChangeKind::Updated
            && existing
                .iter()
                .any(|i| i.status != InvitationStatus::Failed)
        {
            return Ok(());
        }
        match self.new_invitation(&org, change, resource, &existing)? {
            Some(new) => new.write(tx).await,
            None => Ok(()),
        }
    }

    /// The invitation for `change`'s user and its mail, ready to be written;
    /// or the record of why the user cannot be invited (unless `existing`
    /// already says so). Reads nothing and writes nothing.
    fn new_invitation(
        &self,
        org: &Organization,
        change: &UserChange<'_>,
        resource: &Value,
        existing: &[InvitationRecord],
    ) -> Result<Option<NewInvitation>, StoreError> {
        let now = Timestamp::now();
        let name = display_name(resource);
        let email = match work_email(resource, &org.domains) {
            Ok(email) => email,
            Err(unusable) => {
                return Ok(unusable_record(change, existing, unusable, name, now)
                    .map(|inv| NewInvitation { inv, mail: None }));
            }
        };
        let issued = token::issue_ordered(TOKEN_KIND);
        let inv = InvitationRecord {
            id: Uuid::now_v7(),
            org_id: change.org_id,
            user_id: change.user_id,
            email,
            recipient_name: name,
            token_hash: Some(issued.hash),
            status: InvitationStatus::Pending,
            reason: None,
            sends: 1,
            created_at: now,
            updated_at: now,
            expires_at: expiry(org, now),
            sent_at: None,
            accepted_at: None,
        };
        let mail = self.invitation_mail(org, &inv, &issued.secret, now)?;
        Ok(Some(NewInvitation {
            inv,
            mail: Some(mail),
        }))
    }

    /// The invitation's mail, rendered and ready to queue.
    fn invitation_mail(
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
        Ok(OutboxRecord {
            id: Uuid::now_v7(),
            org_id: org.id,
            invitation_id: Some(inv.id),
            message_id: format!(
                "inv-{}-{}@{}",
                inv.id,
                inv.sends,
                message_id_domain(&self.from)
            ),
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

/// An invitation and its mail (none when it records why the person could
/// not be invited), made before the transaction that writes them.
struct NewInvitation {
    inv: InvitationRecord,
    mail: Option<OutboxRecord>,
}

impl NewInvitation {
    async fn write(&self, tx: &dyn Repos) -> Result<(), StoreError> {
        tx.insert_invitation(&self.inv).await?;
        match &self.mail {
            Some(mail) => tx.enqueue_mail(mail).await,
            None => Ok(()),
        }
    }
}

/// What a created user's transaction writes for invitations: one, or
/// nothing (the org does not invite automatically).
struct CreatedUserInvitation(Option<NewInvitation>);

#[async_trait]
impl PreparedWrites for CreatedUserInvitation {
    async fn write(&self, tx: &dyn crate::store::Transaction) -> Result<(), StoreError> {
        match &self.0 {
            Some(new) => new.write(tx).await,
            None => Ok(()),
        }
    }
}

#[async_trait]
impl UserChangeHook for InvitationService {
    /// A created user has no invitations yet, so theirs can be made — its
    /// token drawn, its mail rendered — before the transaction opens.
    async fn prepare(
        &self,
        change: &UserChange<'_>,
    ) -> Result<Option<Box<dyn PreparedWrites>>, StoreError> {
        let user = match (change.kind, change.user) {
            (ChangeKind::Created, Some(user)) => user,
            _ => return Ok(None),
        };
        let org = self.orgs.get(&*self.store, change.org_id).await?;
        let new = match org {
            Some(org) if user.active && org.settings.auto_invite => {
                self.new_invitation(&org, change, &user.resource, &[])?
            }
            _ => None,
        };
        Ok(Some(Box::new(CreatedUserInvitation(new))))
    }

    async fn user_changed(
        &self,
        tx: &dyn crate::store::Transaction,
        change: &UserChange<'_>,
    ) -> Result<(), StoreError> {
        match (change.kind, change.user) {
            (ChangeKind::Created | ChangeKind::Activated | ChangeKind::Updated, Some(user))
                if user.active =>
            {
                self.issue_if_needed(tx, change, &user.resource).await
            }
            (ChangeKind::Deactivated | ChangeKind::Deleted, _) => {
                for mut inv in tx
                    .invitations_of_user(change.org_id, change.user_id)
                    .await?
                {
                    if inv.status.is_live() {
                        void(tx, &mut inv, "deprovisioned by the directory").await?;
                    }
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    fn committed(&self) {
        self.wake_worker();
    }
}

/// Revokes a live invitation: its link stops working (the hash stays, so the
/// link's page can say it was revoked) and its unsent mail is cancelled.
///
/// Lock order: the outbox row before the invitation row, as the outbox
/// worker does, so the two never deadlock.
async fn void(tx: &dyn Repos, inv: &mut InvitationRecord, reason: &str) -> Result<(), StoreError> {
    tx.cancel_mail_for_invitation(inv.id).await?;
    inv.status = InvitationStatus::Revoked;
    inv.reason = Some(reason.to_string());
    inv.updated_at = Timestamp::now();
    tx.update_invitation(inv).await
}

/// The record of why a user could not be invited (a failed invitation
/// without mail); `None` when the latest one already says the same.
fn unusable_record(
    change: &UserChange<'_>,
    existing: &[InvitationRecord],
    unusable: Unusable,
    name: Option<String>,
    now: Timestamp,
) -> Option<InvitationRecord> {
    let reason = unusable.reason();
    if existing.first().is_some_and(|i| {
        i.status == InvitationStatus::Failed && i.reason.as_deref() == Some(&reason)
    }) {
        return None;
    }
    Some(InvitationRecord {
        id: Uuid::now_v7(),
        org_id: change.org_id,
        user_id: change.user_id,
        email: String::new(),
        recipient_name: name,
        token_hash: None,
        status: InvitationStatus::Failed,
        reason: Some(reason),
        sends: 0,
        created_at: now,
        updated_at: now,
        expires_at: now,
        sent_at: None,
        accepted_at: None,
    })
}

fn expiry(org: &Organization, now: Timestamp) -> Timestamp {
    now.plus(time::Duration::days(i64::from(
        org.settings.invitation_ttl_days.max(1),
    )))
}

/// `displayName`, else `name.formatted`, else given + family name.
fn display_name(resource: &Value) -> Option<String> {
    let text = |v: Option<&Value>| {
        v.and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    text(resource.get("displayName"))
        .or_else(|| text(resource.pointer("/name/formatted")))
        .or_else(|| {
            let given = text(resource.pointer("/name/givenName"));
            let family = text(resource.pointer("/name/familyName"));
            match (given, family) {
                (Some(g), Some(f)) => Some(format!("{g} {f}")),
                (g, f) => g.or(f),
            }
        })
}
