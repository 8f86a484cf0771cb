//! Registration use cases: what happens when a person comes back from
//! their organization's sign-in — for an invitation (the identity is
//! matched to the invited directory user, the path decided, the progress
//! saved per invitation and bound to the browser) or for a later sign-in
//! (the identity finds the account, never the email alone) — and the
//! **new** path's one transaction. The other paths are in `paths.rs`.
//! Sessions are server-side and revocable. Knows no actix.

use std::sync::Arc;

use serde::Serialize;
use subtle::ConstantTimeEq;
use uuid::Uuid;

use super::decide::{Path, decide};
use super::steps::{Progress, Refusal, Step};
use crate::accounts::{AccountStore, NewMember, audit};
use crate::invitations::InvitationService;
use crate::oidc::{Arrival, Mismatch, check_match};
use crate::scim::mapping::display_name;
use crate::secrets::password::{PasswordError, Passwords};
use crate::secrets::sealed::SealingKey;
use crate::secrets::token;
use crate::store::accounts::{AccountRecord, MembershipStatus};
use crate::store::invitations::InvitationRecord;
use crate::store::sso::{RegistrationRecord, SessionRecord};
use crate::store::{DynStore, Organization, StoreError, Timestamp, Transaction};

/// The kind prefix of session tokens.
const SESSION_KIND: &str = "ses";
/// The kind prefix of the cookie binding a registration to its browser.
pub const BROWSER_KIND: &str = "reg";
/// How long saved progress lasts (and never past the invitation's expiry).
pub const PROGRESS_TTL: time::Duration = time::Duration::days(1);
/// The shortest password an account may have (NIST SP 800-63B).
const MIN_PASSWORD_CHARS: usize = 8;

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
    /// What was sent cannot be taken; the step's page says why.
    #[error("{0}")]
    Invalid(String),
    /// The form is not this step's, or the progress moved on meanwhile.
    #[error("this step is already done or not yet due")]
    OutOfTurn,
    /// The account on the work email changed while the person was on the
    /// way (moved, joined, deleted): they start over.
    #[error("the account on your work email changed meanwhile")]
    AccountChanged,
    /// The registration goes on in the browser that signed in last.
    #[error("this registration continues in another browser")]
    OtherBrowser,
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

impl From<Refusal> for RegistrationError {
    fn from(r: Refusal) -> Self {
        match r {
            Refusal::OutOfTurn => RegistrationError::OutOfTurn,
            Refusal::Invalid(why) => RegistrationError::Invalid(why),
        }
    }
}

/// What the page of the current step shows.
#[derive(Debug, Clone, Serialize)]
pub struct StepView {
    pub step: Step,
    pub path: Path,
    pub org_name: String,
    pub email: String,
    /// The name the directory has, offered as the default.
    pub name: String,
    pub passwords_allowed: bool,
    pub contact: Option<String>,
    /// The existing account (migrate, separate, blocked).
    pub existing: Option<ExistingView>,
    pub personal_email: Option<String>,
    /// The blocking account's organization, once ownership is proved.
    pub blocking_org: Option<String>,
    /// A code proving ownership was mailed and is still good.
    pub owner_code_sent: bool,
    /// Separate: the work email is verified (only the commit remains).
    pub work_verified: bool,
}

/// What the steps say of the account already on the work email.
#[derive(Debug, Clone, Serialize)]
pub struct ExistingView {
    pub orders: u64,
    pub personal_orders: u64,
    pub payment_methods: u64,
    pub addresses: u64,
    pub has_password: bool,
    /// Migrate or separate, as onramp recommends.
    pub recommended: &'static str,
}

/// A new session: the cookie value, and what the session is.
pub struct NewSession {
    pub secret: String,
    pub record: SessionRecord,
}

/// A registration signed in for: the browser cookie that carries it on.
pub struct Arrived {
    pub path: Path,
    pub browser_secret: String,
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

/// A registration as its steps find it: the live invitation, what is
/// saved, and the progress.
pub(super) struct Current {
    pub inv: InvitationRecord,
    pub reg: RegistrationRecord,
    pub progress: Progress,
}

#[derive(Clone)]
pub struct RegistrationService {
    pub(super) store: DynStore,
    pub(super) accounts: Arc<dyn AccountStore>,
    pub(super) invitations: InvitationService,
    pub(super) passwords: Passwords,
    pub(super) key: Arc<SealingKey>,
    session_ttl: time::Duration,
}

impl RegistrationService {
    pub fn new(
        store: DynStore,
        accounts: Arc<dyn AccountStore>,
        invitations: InvitationService,
        passwords: Passwords,
        key: Arc<SealingKey>,
        session_ttl: time::Duration,
    ) -> Self {
        RegistrationService {
            store,
            accounts,
            invitations,
            passwords,
            key,
            session_ttl,
        }
    }

    /// The account service.
    pub fn accounts(&self) -> Arc<dyn AccountStore> {
        self.accounts.clone()
    }

    /// How long a session lasts.
    pub fn session_ttl(&self) -> time::Duration {
        self.session_ttl
    }

    /// The organization's live invitation, or `NoInvitation`.
    pub(super) async fn live_invitation(
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

    pub(super) async fn org(&self, id: Uuid) -> Result<Organization, RegistrationError> {
        self.store
            .org_by_id(id)
            .await?
            .ok_or(RegistrationError::NoInvitation)
    }

    /// A person came back from the organization's sign-in for an
    /// invitation: checks they are the invited person, decides the path,
    /// and saves where they are, bound to this browser. Signing in again
    /// as the same identity resumes where they left off (from any browser:
    /// the sign-in is the proof).
    pub async fn arrive(&self, arrival: &Arrival) -> Result<Arrived, RegistrationError> {
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
        let account_id = existing.as_ref().map(|a| a.id);
        let now = Timestamp::now();
        let saved = self.saved(&inv).await?;
        let progress = match saved.as_ref().map(|r| (r, progress_of(r))) {
            Some((r, Ok(p)))
                if r.issuer == id.issuer
                    && r.subject == id.subject
                    && p.path == path
                    && p.account_id == account_id =>
            {
                p
            }
            _ => Progress::new(path, account_id),
        };
        let browser = token::issue(BROWSER_KIND);
        self.store
            .put_registration(&RegistrationRecord {
                invitation_id: inv.id,
                org_id: inv.org_id,
                issuer: id.issuer.clone(),
                subject: id.subject.clone(),
                sid: id.sid.clone(),
                id_token: Some(id.id_token.clone()),
                email: inv.email.clone(),
                progress: to_json(&progress)?,
                created_at: saved.as_ref().map_or(now, |r| r.created_at),
                updated_at: now,
                expires_at: inv.expires_at.min(now.plus(PROGRESS_TTL)),
                browser_hash: Some(browser.hash),
            })
            .await?;
        Ok(Arrived {
            path,
            browser_secret: browser.secret,
        })
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

    /// The registration of the invitation: `None` when nobody signed in
    /// for it yet (the welcome page is next), `OtherBrowser` when another
    /// browser did.
    pub(super) async fn current(
        &self,
        org_id: Uuid,
        invitation_id: Uuid,
        browser: Option<&str>,
    ) -> Result<Option<Current>, RegistrationError> {
        let inv = self.live_invitation(org_id, invitation_id).await?;
        let Some(reg) = self.saved(&inv).await? else {
            return Ok(None);
        };
        let bound = match (browser, &reg.browser_hash) {
            (Some(b), Some(h)) if token::well_formed(BROWSER_KIND, b) => {
                bool::from(token::hash(b).ct_eq(h))
            }
            _ => false,
        };
        if !bound {
            return Err(RegistrationError::OtherBrowser);
        }
        let progress = progress_of(&reg)?;
        Ok(Some(Current { inv, reg, progress }))
    }

    /// [`current`](Self::current), or `NotSignedIn`.
    pub(super) async fn signed_in_for(
        &self,
        org_id: Uuid,
        invitation_id: Uuid,
        browser: Option<&str>,
    ) -> Result<Current, RegistrationError> {
        self.current(org_id, invitation_id, browser)
            .await?
            .ok_or(RegistrationError::NotSignedIn)
    }

    /// The saved registration of the invitation, and what its step shows.
    pub async fn step(
        &self,
        org_id: Uuid,
        invitation_id: Uuid,
        browser: Option<&str>,
    ) -> Result<Option<StepView>, RegistrationError> {
        let Some(c) = self.current(org_id, invitation_id, browser).await? else {
            return Ok(None);
        };
        let org = self.org(org_id).await?;
        let user = self.store.user_by_id(org_id, c.inv.user_id).await?;
        let name = user
            .as_ref()
            .and_then(|u| display_name(&u.resource))
            .or(c.inv.recipient_name.clone())
            .unwrap_or_default();
        let p = &c.progress;
        let (existing, blocking_org) = match p.account_id {
            Some(id) => {
                let facts = self.accounts.facts_by_email(&c.inv.email).await?;
                let counts = self.accounts.counts(id).await?;
                let blocking_org = match facts.as_ref().and_then(|f| f.organization) {
                    Some(o) if p.owner_proved && p.path == Path::Blocked => {
                        self.store.org_by_id(o).await?.map(|o| o.name)
                    }
                    _ => None,
                };
                let view = ExistingView {
                    orders: counts.orders,
                    personal_orders: counts.personal_orders,
                    payment_methods: counts.payment_methods,
                    addresses: counts.addresses,
                    has_password: facts.as_ref().is_some_and(|f| f.has_password),
                    recommended: if counts.personal_orders > 0 {
                        "separate"
                    } else {
                        "migrate"
                    },
                };
                (Some(view), blocking_org)
            }
            None => (None, None),
        };
        let owner_code_sent = p.step() == Step::ProveOwnership
            && self
                .store
                .code(c.inv.id, crate::store::history::CodePurpose::Owner)
                .await?
                .is_some_and(|code| code.expires_at > Timestamp::now());
        Ok(Some(StepView {
            owner_code_sent,
            work_verified: p.work_verified,
            step: p.step(),
            path: p.path,
            org_name: org.name,
            email: c.inv.email.clone(),
            name: p.details.as_ref().map_or(name, |d| d.name.clone()),
            passwords_allowed: org.settings.passwords_allowed,
            contact: org.settings.contact.or(org.settings.inviter),
            existing,
            personal_email: p.personal_email.clone(),
            blocking_org,
        }))
    }

    /// Abandons the registration of the invitation: nothing of it is left.
    pub async fn start_over(
        &self,
        org_id: Uuid,
        invitation_id: Uuid,
    ) -> Result<(), RegistrationError> {
        let inv = self.live_invitation(org_id, invitation_id).await?;
        let tx = self.store.begin().await?;
        tx.delete_codes(inv.id).await?;
        tx.delete_registration(inv.id).await?;
        tx.commit().await?;
        Ok(())
    }

    /// A password for a new account: where the organization allows
    /// passwords, 8 to 256 characters, hashed; none otherwise.
    pub(super) async fn new_password(
        &self,
        org: &Organization,
        password: Option<String>,
    ) -> Result<Option<String>, RegistrationError> {
        match password.filter(|p| !p.is_empty()) {
            None => Ok(None),
            Some(_) if !org.settings.passwords_allowed => Err(RegistrationError::Invalid(format!(
                "{} signs in with single sign-on only: no password is set",
                org.name
            ))),
            Some(p) if p.chars().count() < MIN_PASSWORD_CHARS => Err(RegistrationError::Invalid(
                format!("a password must have at least {MIN_PASSWORD_CHARS} characters"),
            )),
            Some(p) => Ok(Some(self.passwords.hash(org.id, p).await?)),
        }
    }

    /// The **new** path's last step, in one transaction: the account (a
    /// business account for the work email), its membership of the
    /// organization, the SSO identity bound to it, the invitation accepted,
    /// an audit event, and a session.
    pub async fn complete_new(
        &self,
        org_id: Uuid,
        invitation_id: Uuid,
        browser: Option<&str>,
        name: &str,
        password: Option<String>,
    ) -> Result<NewSession, RegistrationError> {
        let c = self.signed_in_for(org_id, invitation_id, browser).await?;
        if c.progress.step() != Step::NewAccount {
            return Err(RegistrationError::OutOfTurn);
        }
        let name = checked_name(name)?;
        let org = self.org(org_id).await?;
        let password_hash = self.new_password(&org, password).await?;
        let inv = &c.inv;
        self.finish(&c, "new", async |tx: &dyn Transaction| {
            let account = self
                .accounts
                .create_member(
                    tx,
                    &NewMember {
                        email: inv.email.clone(),
                        name,
                        password_hash,
                        phone: None,
                        org_id,
                        user_id: inv.user_id,
                    },
                )
                .await?;
            Ok((account, serde_json::json!({})))
        })
        .await
    }

    /// Ends a path in one transaction: `work` (the path's own writes; it
    /// names the account that joins and what the audit event adds), then
    /// the identity bound, the invitation accepted, the audit event, the
    /// progress and codes gone, and a session. Anything failing leaves
    /// everything as it was; a conflict or a lost race comes back as what
    /// it means for the person.
    pub(super) async fn finish(
        &self,
        c: &Current,
        path: &'static str,
        work: impl AsyncFnOnce(&dyn Transaction) -> Result<(Uuid, serde_json::Value), StoreError>,
    ) -> Result<NewSession, RegistrationError> {
        let (secret, session) = self.new_session(c.inv.org_id, &c.reg);
        let org_id = c.inv.org_id;
        let reg = &c.reg;
        let done = async {
            let tx = self.store.begin().await?;
            let (account, detail) = work(&*tx).await?;
            tx.bind_identity(&reg.issuer, &reg.subject, account, org_id, Timestamp::now())
                .await?;
            self.invitations.accept_in(&*tx, org_id, c.inv.id).await?;
            let mut detail = detail;
            if let Some(d) = detail.as_object_mut() {
                d.insert("path".into(), path.into());
                d.insert("issuer".into(), reg.issuer.clone().into());
                d.insert("invitation".into(), c.inv.id.to_string().into());
            }
            audit(
                &*tx,
                Some(org_id),
                Some(account),
                &c.inv.email,
                "registration.completed",
                detail,
            )
            .await?;
            tx.delete_codes(c.inv.id).await?;
            tx.delete_registration(c.inv.id).await?;
            let session = SessionRecord {
                account_id: account,
                ..session
            };
            tx.insert_session(&session).await?;
            tx.commit().await?;
            Ok::<_, StoreError>(session)
        };
        let result = match done.await {
            Ok(record) => Ok(NewSession { secret, record }),
            // Another tab or instance finished this invitation first, or
            // the email or identity was taken meanwhile.
            Err(StoreError::Conflict { constraint }) => Err(match self.why_stale(c).await {
                RegistrationError::AccountChanged if constraint.starts_with("accounts_") => {
                    RegistrationError::AccountTaken
                }
                RegistrationError::AccountChanged if constraint.starts_with("sso_identities") => {
                    RegistrationError::IdentityTaken
                }
                other => other,
            }),
            Err(StoreError::Stale) => Err(self.why_stale(c).await),
            Err(e) => Err(e.into()),
        };
        self.invitations.wake_worker();
        result
    }

    /// What a lost race at the end of a path means: the invitation was
    /// accepted (or withdrawn) meanwhile, or the account changed.
    pub(super) async fn why_stale(&self, c: &Current) -> RegistrationError {
        match self.live_invitation(c.inv.org_id, c.inv.id).await {
            Err(RegistrationError::NoInvitation) => RegistrationError::AlreadyAccepted,
            Err(e) => e,
            Ok(_) => RegistrationError::AccountChanged,
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

fn to_json(p: &Progress) -> Result<String, RegistrationError> {
    serde_json::to_string(p).map_err(|e| StoreError::other(e).into())
}

pub(super) fn progress_of(r: &RegistrationRecord) -> Result<Progress, RegistrationError> {
    serde_json::from_str(&r.progress).map_err(|e| StoreError::other(e).into())
}

/// A display name: 1 to 200 characters, no control characters.
pub(super) fn checked_name(raw: &str) -> Result<String, RegistrationError> {
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
