//! What a person sees after following an invitation link: the link is
//! exchanged for a short server-side session (so the token leaves the URL at
//! once), and "can't find the email?" re-sends a link only where a pending
//! or expired invitation exists — answering the same either way.

use uuid::Uuid;

use super::service::{InvitationError, InvitationService};
use crate::mail::templates::FALLBACK_PERSON;
use crate::store::Timestamp;
use crate::store::invitations::InvitationStatus;
use crate::tenancy::token;

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
        if !token::well_formed("inv", presented) {
            return Ok(LinkState::Unknown);
        }
        // Links are stored under a time-ordered key; links issued before
        // that under the plain hash.
        let ordered = match token::ordered_key("inv", presented) {
            Some(key) => self.store().invitation_by_token_hash(&key).await?,
            None => None,
        };
        let found = match ordered {
            Some(inv) => Some(inv),
            None => {
                self.store()
                    .invitation_by_token_hash(&token::hash(presented))
                    .await?
            }
        };
        let Some(inv) = found else {
            return Ok(LinkState::Unknown);
        };
        let view = self.view(inv.id).await?;
        let now = Timestamp::now();
        Ok(match inv.status {
            InvitationStatus::Accepted => LinkState::Used(view),
            InvitationStatus::Revoked | InvitationStatus::Failed => LinkState::Revoked(view),
            _ if inv.expires_at <= now => LinkState::Expired(view),
            _ => {
                let issued = token::issue("js");
                let until = std::cmp::min(inv.expires_at, now.plus(SESSION));
                self.store()
                    .insert_join_session(&issued.hash, inv.id, now, until)
                    .await?;
                LinkState::Valid {
                    session: issued.secret,
                }
            }
        })
    }

    /// The invitation behind a join session, while both are valid.
    pub async fn session_view(&self, secret: &str) -> Result<Option<JoinView>, InvitationError> {
        if !token::well_formed("js", secret) {
            return Ok(None);
        }
        let now = Timestamp::now();
        let Some(id) = self.store().join_session(&token::hash(secret), now).await? else {
            return Ok(None);
        };
        let inv = self
            .store()
            .invitation_by_id(id)
            .await?
            .ok_or(InvitationError::NotFound(id))?;
        if !inv.status.is_live() || inv.expires_at <= now {
            return Ok(None);
        }
        Ok(Some(self.view(id).await?))
    }

    /// Re-sends a fresh link to `email` if, and only if, a pending or expired
    /// (never accepted) invitation is addressed to it. Says nothing either way.
    pub async fn resend_by_email(&self, email: &str) -> Result<(), InvitationError> {
        let email = email.trim();
        if !super::email::is_email(email) {
            return Ok(());
        }
        let candidates = self.store().invitations_by_email(email).await?;
        if let Some(inv) = candidates.iter().find(|i| i.status.is_live()) {
            match self.resend(inv.id).await {
                Ok(_) | Err(InvitationError::NotAllowed(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    async fn view(&self, id: Uuid) -> Result<JoinView, InvitationError> {
        let inv = self
            .store()
            .invitation_by_id(id)
            .await?
            .ok_or(InvitationError::NotFound(id))?;
        let org = self
            .store()
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
            email: inv.email,
            recipient_name: inv.recipient_name,
            expires_at: crate::mail::templates::format_expiry(inv.expires_at),
        })
    }
}
