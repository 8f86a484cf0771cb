//! What a person does with an invitation: the link is exchanged for a short
//! server-side session (so the token leaves the URL at once), and "can't
//! find the email?" sends a link only where a live invitation exists —
//! answering the same either way, and never taking away a link the person
//! may already hold.

use uuid::Uuid;

use super::service::{InvitationError, InvitationService, TOKEN_KIND};
use crate::mail::templates::FALLBACK_PERSON;
use crate::secrets::token;
use crate::store::Timestamp;
use crate::store::invitations::{InvitationRecord, InvitationStatus};

/// How long a join session lasts (the SSO step, #5, happens within it).
const SESSION: time::Duration = time::Duration::hours(1);

/// The invitation as the welcome page shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct JoinView {
    pub org_name: String,
    pub inviter: String,
    pub contact: Option<String>,
    pub email: String,
    pub recipient_name: Option<String>,
    pub expires_at: String,
}

/// What a link leads to.
#[derive(Debug)]
pub enum LinkState {
    /// Valid: here is the session secret to put in a cookie.
    Valid {
        session: String,
    },
    Expired(JoinView),
    Used(JoinView),
    Revoked(JoinView),
    Unknown,
}

impl InvitationService {
    pub async fn open_link(&self, presented: &str) -> Result<LinkState, InvitationError> {
        let Some(inv) = self.by_link(presented).await? else {
            return Ok(LinkState::Unknown);
        };
        let view = self.view(&inv).await?;
        let now = Timestamp::now();
        Ok(match inv.status {
            InvitationStatus::Accepted => LinkState::Used(view),
            InvitationStatus::Revoked | InvitationStatus::Failed => LinkState::Revoked(view),
            _ if inv.expires_at <= now => LinkState::Expired(view),
            _ => {
                let issued = token::issue("js");
                let until = std::cmp::min(inv.expires_at, now.plus(SESSION));
                self.store
                    .insert_join_session(&issued.hash, inv.id, now, until)
                    .await?;
                LinkState::Valid {
                    session: issued.secret,
                }
            }
        })
    }

    /// The organization and invitation of a join session, while it lasts.
    pub async fn session_invitation(
        &self,
        secret: &str,
    ) -> Result<Option<(Uuid, Uuid)>, InvitationError> {
        if !token::well_formed("js", secret) {
            return Ok(None);
        }
        Ok(self
            .store
            .join_session(&token::hash(secret), Timestamp::now())
            .await?)
    }

    /// The invitation behind a join session, while both are valid.
    pub async fn session_view(&self, secret: &str) -> Result<Option<JoinView>, InvitationError> {
        if !token::well_formed("js", secret) {
            return Ok(None);
        }
        let now = Timestamp::now();
        let Some((org_id, id)) = self.store.join_session(&token::hash(secret), now).await? else {
            return Ok(None);
        };
        let Some(inv) = self.store.invitation_by_id(org_id, id).await? else {
            return Ok(None);
        };
        if !inv.status.is_live() || inv.expires_at <= now {
            return Ok(None);
        }
        Ok(Some(self.view(&inv).await?))
    }

    /// The invitation a presented link belongs to. Links are stored under a
    /// time-ordered key; links issued before that under the plain hash.
    async fn by_link(&self, presented: &str) -> Result<Option<InvitationRecord>, InvitationError> {
        if !token::well_formed(TOKEN_KIND, presented) {
            return Ok(None);
        }
        if let Some(key) = token::ordered_key(TOKEN_KIND, presented)
            && let Some(inv) = self.store.invitation_by_token_hash(&key).await?
        {
            return Ok(Some(inv));
        }
        Ok(self
            .store
            .invitation_by_token_hash(&token::hash(presented))
            .await?)
    }

    /// Sends a link to `email` if, and only if, a live (pending or sent,
    /// never accepted) invitation is addressed to it; says nothing either
    /// way. A link the person may already hold keeps working: a further
    /// link is added (at most five are kept), or, when the invitation has
    /// expired, it is renewed.
    pub async fn resend_by_email(&self, email: &str) -> Result<(), InvitationError> {
        let email = email.trim();
        if !crate::scim::mapping::is_email(email) {
            return Ok(());
        }
        let candidates = self.store.invitations_by_email(email).await?;
        let Some(inv) = candidates.into_iter().find(|i| i.status.is_live()) else {
            return Ok(());
        };
        let tx = self.store.begin().await?;
        let now = Timestamp::now();
        if inv.expires_at <= now {
            match self.resend_in(&*tx, inv.org_id, inv.id).await {
                Ok(_) => {}
                Err(InvitationError::NotAllowed(_)) => return Ok(()),
                Err(e) => return Err(e),
            }
        } else {
            let Some(mut inv) = tx.invitation_by_id(inv.org_id, inv.id).await? else {
                return Ok(());
            };
            let active = tx
                .user_by_id(inv.org_id, inv.user_id)
                .await?
                .is_some_and(|u| u.active);
            let Some(org) = tx.org_by_id(inv.org_id).await? else {
                return Ok(());
            };
            if !inv.status.is_live() || !active {
                return Ok(());
            }
            let issued = token::issue_ordered(TOKEN_KIND);
            tx.add_invitation_link(inv.id, &issued.hash, now).await?;
            inv.sends += 1;
            inv.updated_at = now;
            tx.update_invitation(&inv).await?;
            tx.enqueue_mail(&self.invitation_mail(&org, &inv, &issued.secret, now)?)
                .await?;
        }
        tx.commit().await?;
        self.wake_worker();
        Ok(())
    }

    async fn view(&self, inv: &InvitationRecord) -> Result<JoinView, InvitationError> {
        let org = self
            .store
            .org_by_id(inv.org_id)
            .await?
            .ok_or(InvitationError::NotFound(inv.org_id))?;
        Ok(JoinView {
            org_name: org.name,
            inviter: org
                .settings
                .inviter
                .unwrap_or_else(|| FALLBACK_PERSON.to_string()),
            contact: org.settings.contact,
            email: inv.email.clone(),
            recipient_name: inv.recipient_name.clone(),
            expires_at: crate::mail::templates::format_expiry(inv.expires_at),
        })
    }
}
