//! Registration use cases: what happens when a person comes back from
//! their organization's sign-in — for an invitation (the identity is
//! matched to the invited directory user, the path decided, the progress
//! saved per invitation) or for a later sign-in (the identity finds the
//! account, never the email alone) — and the **new** path's one
//! transaction. Sessions are server-side and revocable. Knows no actix.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::decide::{Path, decide};
use crate::accounts::{AccountStore, NewMember, audit};
use crate::invitations::InvitationService;
use crate::oidc::{Arrival, Mismatch, check_match};
use crate::scim::mapping::display_name;
use crate::secrets::password::{PasswordError, Passwords};
use crate::secrets::token;
use crate::store::accounts::{AccountRecord, MembershipStatus};
use crate::store::invitations::InvitationRecord;
use crate::store::sso::{RegistrationRecord, SessionRecord};
use crate::store::{DynStore, Organization, StoreError, Timestamp};

/// The kind prefix of session tokens.
const SESSION_KIND: &str = "ses";
/// The shortest password an account may have (NIST SP 800-63B).
const MIN_PASSWORD_CHARS: usize = 8;
/// How long saved progress lasts (and never past the invitation's expiry).
const PROGRESS_TTL: time::Duration = time::Duration::days(1);

#[derive(Debug, thiserror::Error)]
pub enum RegistrationError {
    #[error("the invitation is no longer valid")]
    NoInvitation,
    #[error("the sign-in is not the invited person: {0}")]
    Mismatch(#[from] Mismatch),
    #[error("this sign-in is already linked to another account")]
    IdentityTaken,
    #[error("an account with this email was created meanwhile")]
    AccountTaken,
    #[error("the invitation was accepted meanwhile")]
    AlreadyAccepted,
    #[error("sign in with your organization first")]
    NotSignedIn,
    #[error("no account of this organization uses this sign-in")]
    NotRegistered,
    #[error("your access was suspended by your organization")]
    Suspended,
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<PasswordError> for RegistrationError {
    fn from(e: PasswordError) -> Self {
        match e {
            PasswordError::Length => RegistrationError::Invalid(e.to_string()),
            PasswordError::Hashing => {
                StoreError::other(std::io::Error::other("password hashing failed")).into()
            }
        }
    }
}

/// How far a registration got, saved per invitation.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Progress {
    pub path: Path,
}

/// What the page of the current step shows.
#[derive(Debug, Clone, Serialize)]
pub struct StepView {
    pub path: Path,
    pub org_name: String,
    pub email: String,
    /// The name the directory has, offered as the default.
    pub name: String,
    pub passwords_allowed: bool,
    pub contact: Option<String>,
}

/// A new session: the cookie value, and what the session is.
pub struct NewSession {
    pub secret: String,
    pub record: SessionRecord,
}

/// Who is signed in.
#[derive(Debug, Clone, Serialize)]
pub struct SignedIn {
    pub account: AccountRecord,
    pub org_id: Uuid,
    pub org_name: String,
    pub session: SessionView,
}

#[derive(Debug, Clone, Serialize)]
pub struct SessionView {
    pub issuer: String,
    pub created_at: String,
    pub expires_at: String,
    #[serde(skip)]
    pub id_token: Option<String>,
}

#[derive(Clone)]
pub struct RegistrationService {
    store: DynStore,
    accounts: Arc<dyn AccountStore>,
    invitations: InvitationService,
    passwords: Passwords,
    session_ttl: time::Duration,
}

impl RegistrationService {
    pub fn new(
        store: DynStore,
        accounts: Arc<dyn AccountStore>,
        invitations: InvitationService,
        passwords: Passwords,
        session_ttl: time::Duration,
    ) -> Self {
        RegistrationService {
            store,
            accounts,
            invitations,
            passwords,
            session_ttl,
        }
    }

    /// How long a session lasts.
    pub fn session_ttl(&self) -> time::Duration {
        self.session_ttl
    }

    /// The organization's live invitation, or `NoInvitation`.
    async fn live_invitation(
        &self,
        org_id: Uuid,
        id: Uuid,
    ) -> Result<InvitationRecord, RegistrationError> {
        let inv = self
            .store
            .invitation_by_id(org_id, id)
            .await?
            .ok_or(RegistrationError::NoInvitation)?;
        if !inv.status.is_live() || inv.expires_at <= Timestamp::now() {
            return Err(RegistrationError::NoInvitation);
        }
        Ok(inv)
    }

    async fn org(&self, id: Uuid) -> Result<Organization, RegistrationError> {
        self.store
            .org_by_id(id)
            .await?
            .ok_or(RegistrationError::NoInvitation)
    }

    /// A person came back from the organization's sign-in for an
    /// invitation: checks they are the invited person, decides the path,
    /// and saves where they are.
    pub async fn arrive(&self, arrival: &Arrival) -> Result<Path, RegistrationError> {
        let invitation = arrival
            .invitation_id
            .ok_or(RegistrationError::NoInvitation)?;
        let inv = self.live_invitation(arrival.org_id, invitation).await?;
        let user = self.store.user_by_id(inv.org_id, inv.user_id).await?;
        if !user.as_ref().is_some_and(|u| u.active) {
            return Err(RegistrationError::NoInvitation);
        }
        let id = &arrival.identity;
        check_match(
            &arrival.match_rule,
            arrival.trust_email,
            &id.claims,
            &inv.email,
            user.as_ref(),
        )?;
        if self
            .store
            .identity_account(&id.issuer, &id.subject)
            .await?
            .is_some()
        {
            return Err(RegistrationError::IdentityTaken);
        }
        let existing = self.accounts.facts_by_email(&inv.email).await?;
        let path = decide(inv.org_id, existing.as_ref());
        let now = Timestamp::now();
        let progress = serde_json::to_string(&Progress { path })
            .map_err(|e| RegistrationError::Store(StoreError::other(e)))?;
        self.store
            .put_registration(&RegistrationRecord {
                invitation_id: inv.id,
                org_id: inv.org_id,
                issuer: id.issuer.clone(),
                subject: id.subject.clone(),
                sid: id.sid.clone(),
                id_token: Some(id.id_token.clone()),
                email: inv.email.clone(),
                progress,
                created_at: now,
                updated_at: now,
                expires_at: inv.expires_at.min(now.plus(PROGRESS_TTL)),
            })
            .await?;
        Ok(path)
    }

    /// The saved registration of the invitation, and what its step shows.
    pub async fn step(
        &self,
        org_id: Uuid,
        invitation_id: Uuid,
    ) -> Result<Option<StepView>, RegistrationError> {
        let inv = self.live_invitation(org_id, invitation_id).await?;
        let Some(reg) = self.saved(&inv).await? else {
            return Ok(None);
        };
        let org = self.org(org_id).await?;
        let progress: Progress = serde_json::from_str(&reg.progress)
            .map_err(|e| RegistrationError::Store(StoreError::other(e)))?;
        let user = self.store.user_by_id(org_id, inv.user_id).await?;
        let name = user
            .as_ref()
            .and_then(|u| display_name(&u.resource))
            .or(inv.recipient_name.clone())
            .unwrap_or_default();
        Ok(Some(StepView {
            path: progress.path,
            org_name: org.name,
            email: inv.email,
            name,
            passwords_allowed: org.settings.passwords_allowed,
            contact: org.settings.contact.or(org.settings.inviter),
        }))
    }

    async fn saved(
        &self,
        inv: &InvitationRecord,
    ) -> Result<Option<RegistrationRecord>, RegistrationError> {
        Ok(self
            .store
            .registration(inv.id)
            .await?
            .filter(|r| r.org_id == inv.org_id && r.expires_at > Timestamp::now()))
    }

    /// Abandons the registration of the invitation: nothing of it is left.
    pub async fn start_over(
        &self,
        org_id: Uuid,
        invitation_id: Uuid,
    ) -> Result<(), RegistrationError> {
        let inv = self.live_invitation(org_id, invitation_id).await?;
        self.store.delete_registration(inv.id).await?;
        Ok(())
    }

    /// The **new** path's last step, in one transaction: the account (a
    /// business account for the work email), its membership of the
    /// organization, the SSO identity bound to it, the invitation accepted,
    /// an audit event, and a session.
    pub async fn complete_new(
        &self,
        org_id: Uuid,
        invitation_id: Uuid,
        name: &str,
        password: Option<String>,
    ) -> Result<NewSession, RegistrationError> {
        let inv = self.live_invitation(org_id, invitation_id).await?;
        let reg = self
            .saved(&inv)
            .await?
            .ok_or(RegistrationError::NotSignedIn)?;
        let progress: Progress = serde_json::from_str(&reg.progress)
            .map_err(|e| RegistrationError::Store(StoreError::other(e)))?;
        if progress.path != Path::New {
            return Err(RegistrationError::Invalid(
                "this invitation is not on the new-account path".into(),
            ));
        }
        let name = checked_name(name)?;
        let org = self.org(org_id).await?;
        let password_hash = match password.filter(|p| !p.is_empty()) {
            Some(_) if !org.settings.passwords_allowed => {
                return Err(RegistrationError::Invalid(format!(
                    "{} signs in with single sign-on only: no password is set",
                    org.name
                )));
            }
            Some(p) if p.chars().count() < MIN_PASSWORD_CHARS => {
                return Err(RegistrationError::Invalid(format!(
                    "a password must have at least {MIN_PASSWORD_CHARS} characters"
                )));
            }
            Some(p) => Some(self.passwords.hash(org_id, p).await?),
            None => None,
        };
        let (secret, session) = self.new_session(org_id, &reg);
        let tx = self.store.begin().await?;
        let done = async {
            let account = self
                .accounts
                .create_member(
                    &*tx,
                    &NewMember {
                        email: inv.email.clone(),
                        name: name.clone(),
                        password_hash,
                        phone: None,
                        org_id,
                        user_id: inv.user_id,
                    },
                )
                .await?;
            tx.bind_identity(&reg.issuer, &reg.subject, account, org_id, Timestamp::now())
                .await?;
            self.invitations.accept_in(&*tx, org_id, inv.id).await?;
            audit(
                &*tx,
                Some(org_id),
                Some(account),
                &inv.email,
                "registration.completed",
                serde_json::json!({"path": "new", "issuer": reg.issuer, "invitation": inv.id}),
            )
            .await?;
            tx.delete_registration(inv.id).await?;
            let session = SessionRecord {
                account_id: account,
                ..session
            };
            tx.insert_session(&session).await?;
            tx.commit().await?;
            Ok::<_, StoreError>(session)
        };
        match done.await {
            Ok(record) => Ok(NewSession { secret, record }),
            Err(StoreError::Conflict { constraint }) if constraint.starts_with("accounts_") => {
                Err(RegistrationError::AccountTaken)
            }
            Err(StoreError::Conflict { constraint })
                if constraint.starts_with("sso_identities") =>
            {
                Err(RegistrationError::IdentityTaken)
            }
            Err(StoreError::Conflict { constraint }) if constraint.starts_with("memberships") => {
                Err(RegistrationError::AlreadyAccepted)
            }
            Err(StoreError::Stale) => Err(RegistrationError::AlreadyAccepted),
            Err(e) => Err(e.into()),
        }
    }

    fn new_session(&self, org_id: Uuid, reg: &RegistrationRecord) -> (String, SessionRecord) {
        let issued = token::issue(SESSION_KIND);
        let now = Timestamp::now();
        (
            issued.secret,
            SessionRecord {
                id_hash: issued.hash,
                account_id: Uuid::nil(),
                org_id,
                issuer: reg.issuer.clone(),
                subject: reg.subject.clone(),
                sid: reg.sid.clone(),
                id_token: reg.id_token.clone(),
                created_at: now,
                expires_at: now.plus(self.session_ttl),
            },
        )
    }

    /// A later sign-in: the identity finds the account (never the email
    /// alone); a suspended membership, or another organization's, is refused.
    pub async fn sign_in(&self, arrival: &Arrival) -> Result<NewSession, RegistrationError> {
        let id = &arrival.identity;
        let (account, _) = self
            .store
            .identity_account(&id.issuer, &id.subject)
            .await?
            .ok_or(RegistrationError::NotRegistered)?;
        let membership = self
            .store
            .membership(account)
            .await?
            .filter(|m| m.org_id == arrival.org_id)
            .ok_or(RegistrationError::NotRegistered)?;
        if membership.status != MembershipStatus::Active {
            return Err(RegistrationError::Suspended);
        }
        let issued = token::issue(SESSION_KIND);
        let now = Timestamp::now();
        let record = SessionRecord {
            id_hash: issued.hash,
            account_id: account,
            org_id: arrival.org_id,
            issuer: id.issuer.clone(),
            subject: id.subject.clone(),
            sid: id.sid.clone(),
            id_token: Some(id.id_token.clone()),
            created_at: now,
            expires_at: now.plus(self.session_ttl),
        };
        let tx = self.store.begin().await?;
        tx.insert_session(&record).await?;
        audit(
            &*tx,
            Some(arrival.org_id),
            Some(account),
            id.claim_str("email").unwrap_or(&id.subject),
            "session.signed_in",
            serde_json::json!({"issuer": id.issuer}),
        )
        .await?;
        tx.commit().await?;
        Ok(NewSession {
            secret: issued.secret,
            record,
        })
    }

    /// Who a session cookie belongs to, while the session and the
    /// membership last.
    pub async fn signed_in(&self, secret: &str) -> Result<Option<SignedIn>, RegistrationError> {
        if !token::well_formed(SESSION_KIND, secret) {
            return Ok(None);
        }
        let Some(s) = self
            .store
            .session(&token::hash(secret), Timestamp::now())
            .await?
        else {
            return Ok(None);
        };
        let Some(account) = self.accounts.account(s.account_id).await? else {
            return Ok(None);
        };
        let active = self
            .store
            .membership(account.id)
            .await?
            .is_some_and(|m| m.status == MembershipStatus::Active && m.org_id == s.org_id);
        if !active {
            return Ok(None);
        }
        let org = self.org(s.org_id).await?;
        Ok(Some(SignedIn {
            account,
            org_id: org.id,
            org_name: org.name,
            session: SessionView {
                issuer: s.issuer,
                created_at: crate::mail::templates::format_expiry(s.created_at),
                expires_at: crate::mail::templates::format_expiry(s.expires_at),
                id_token: s.id_token,
            },
        }))
    }

    /// Ends a session (the cookie's).
    pub async fn sign_out(&self, secret: &str) -> Result<(), RegistrationError> {
        if token::well_formed(SESSION_KIND, secret) {
            self.store.delete_session(&token::hash(secret)).await?;
        }
        Ok(())
    }
}

/// A display name: 1 to 200 characters, no control characters.
fn checked_name(raw: &str) -> Result<String, RegistrationError> {
    let name = raw.trim();
    if name.is_empty() || name.chars().count() > 200 || name.chars().any(char::is_control) {
        return Err(RegistrationError::Invalid(
            "your name must have 1 to 200 characters".into(),
        ));
    }
    Ok(name.to_string())
}

#[cfg(test)]
mod tests {
    use super::checked_name;

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(checked_name("  Pat Doe ").unwrap(), "Pat Doe");
        assert!(checked_name("   ").is_err());
        assert!(checked_name(&"x".repeat(201)).is_err());
        assert!(checked_name("Pat\nDoe").is_err());
    }
}
