//! The paths for a work email that already has an account: proving
//! ownership (the account's password, or a code mailed to the work email),
//! choosing migrate or separate, the codes that verify a personal email and
//! the work email, and the one transaction that ends each path — or, when
//! the email is a business account elsewhere, the order history and
//! deregistration. Every step checks it is its turn ([`Progress`]) and saves
//! the next progress only if nobody moved it on meanwhile.

use ring::rand::{SecureRandom, SystemRandom};
use subtle::ConstantTimeEq;
use uuid::Uuid;

use super::decide::Path;
use super::service::{Current, NewSession, RegistrationError, RegistrationService, checked_name};
use super::steps::{
    self, CODE_ATTEMPTS, CODE_SEND_WINDOW, CODE_SENDS, CODE_TTL, Choice, Details,
    PASSWORD_FAILURES, PASSWORD_LOCK, PASSWORD_WINDOW, Progress, Step,
};
use crate::accounts::{AccountFacts, NewMember, audit};
use crate::mail::templates::{CodeMail, NoticeMail, render_code, render_notice};
use crate::store::accounts::AccountKind;
use crate::store::history::{CodePurpose, CodeRecord};
use crate::store::outbox::{OutboxRecord, OutboxStatus};
use crate::store::{Organization, StoreError, Timestamp, Transaction};

/// The outbox kind of one-time codes.
pub const CODE_KIND: &str = "code";
/// The outbox kind of notices of what a registration changed.
pub const NOTICE_KIND: &str = "notice";

fn invalid(why: impl Into<String>) -> RegistrationError {
    RegistrationError::Invalid(why.into())
}

/// Six random digits, uniformly.
fn new_code() -> Result<String, RegistrationError> {
    // The largest multiple of 10^6 below 2^32: values above it would
    // favour small codes.
    const LIMIT: u32 = 4_294_000_000;
    let rng = SystemRandom::new();
    loop {
        let mut b = [0u8; 4];
        rng.fill(&mut b)
            .map_err(|_| StoreError::other(std::io::Error::other("randomness unavailable")))?;
        let v = u32::from_le_bytes(b);
        if v < LIMIT {
            return Ok(format!("{:06}", v % 1_000_000));
        }
    }
}

impl RegistrationService {
    fn code_mac(&self, invitation: Uuid, purpose: CodePurpose, code: &str) -> Vec<u8> {
        self.key
            .mac(format!("{invitation}:{}:{code}", purpose.as_str()).as_bytes())
    }

    /// The account on the work email, as the path found it; `AccountChanged`
    /// if it is gone or is another account now (or `AlreadyAccepted` when
    /// another window finished the path meanwhile).
    async fn existing(&self, c: &Current) -> Result<AccountFacts, RegistrationError> {
        let facts = self.accounts.facts_by_email(&c.inv.email).await?;
        match (facts, c.progress.account_id) {
            (Some(f), Some(id)) if f.id == id => Ok(f),
            _ => Err(self.why_stale(c).await),
        }
    }

    /// Saves `next` together with `writes` and an audit event, in one
    /// transaction.
    async fn advance_with(
        &self,
        c: &Current,
        next: &Progress,
        action: &str,
        detail: serde_json::Value,
        writes: impl AsyncFnOnce(&dyn Transaction) -> Result<(), StoreError>,
    ) -> Result<(), RegistrationError> {
        let new = serde_json::to_string(next).map_err(StoreError::other)?;
        let tx = self.store.begin().await?;
        let done = async {
            writes(&*tx).await?;
            tx.update_progress(c.inv.id, &c.reg.progress, &new, Timestamp::now())
                .await?;
            audit(
                &*tx,
                Some(c.inv.org_id),
                c.progress.account_id,
                &c.inv.email,
                action,
                detail,
            )
            .await?;
            tx.commit().await
        };
        match done.await {
            Err(StoreError::Stale) => Err(RegistrationError::OutOfTurn),
            other => Ok(other?),
        }
    }

    /// Proof of ownership by the existing account's password. Wrong
    /// passwords are counted per account: five in 15 minutes pause the
    /// password check for 15 minutes (never longer, and the mailed code
    /// still works, so nobody can lock the owner out).
    pub async fn prove_password(
        &self,
        org_id: Uuid,
        invitation_id: Uuid,
        browser: Option<&str>,
        password: String,
    ) -> Result<(), RegistrationError> {
        let c = self.signed_in_for(org_id, invitation_id, browser).await?;
        let next = c.progress.clone().owner_proved()?;
        let facts = self.existing(&c).await?;
        let now = Timestamp::now();
        let locked = |until: Timestamp| {
            invalid(format!(
                "Too many wrong passwords. Try again after {}, or email yourself a code instead.",
                crate::mail::templates::format_expiry(until)
            ))
        };
        if let Some(until) = self
            .store
            .password_failures(facts.id)
            .await?
            .and_then(|f| f.locked_until)
            .filter(|u| *u > now)
        {
            return Err(locked(until));
        }
        let hash = self
            .accounts
            .account(facts.id)
            .await?
            .and_then(|a| a.password_hash)
            .ok_or_else(|| {
                invalid("This account has no password: email yourself a code instead.")
            })?;
        let right = match self.passwords.verify(org_id, password, hash).await {
            Ok(right) => right,
            Err(crate::secrets::password::PasswordError::Length) => false,
            Err(e) => return Err(e.into()),
        };
        if !right {
            let f = self
                .store
                .record_password_failure(
                    facts.id,
                    now,
                    PASSWORD_WINDOW,
                    PASSWORD_FAILURES,
                    PASSWORD_LOCK,
                )
                .await?;
            let tx = self.store.begin().await?;
            audit(
                &*tx,
                Some(c.inv.org_id),
                Some(facts.id),
                &c.inv.email,
                "registration.password_failed",
                serde_json::json!({"failures": f.failures, "locked": f.locked_until.is_some_and(|u| u > now)}),
            )
            .await?;
            tx.commit().await?;
            if let Some(until) = f.locked_until.filter(|u| *u > now) {
                return Err(locked(until));
            }
            let left = (PASSWORD_FAILURES - f.failures).max(0);
            return Err(invalid(format!(
                "That password is not right. {left} more tries before a 15-minute pause."
            )));
        }
        self.advance_with(
            &c,
            &next,
            "registration.ownership_proved",
            serde_json::json!({"method": "password"}),
            async |tx: &dyn Transaction| tx.clear_password_failures(facts.id).await,
        )
        .await
    }

    /// Where a code for `purpose` goes at this point of the path, if one
    /// is due.
    fn code_target(c: &Current, purpose: CodePurpose) -> Result<String, RegistrationError> {
        let p = &c.progress;
        let due = match purpose {
            CodePurpose::Owner => p.step() == Step::ProveOwnership,
            CodePurpose::PersonalEmail => p.step() == Step::VerifyPersonal,
            CodePurpose::WorkEmail => p.step() == Step::VerifyWork && !p.work_verified,
        };
        if !due {
            return Err(RegistrationError::OutOfTurn);
        }
        Ok(match purpose {
            CodePurpose::PersonalEmail => p
                .personal_email
                .clone()
                .ok_or(RegistrationError::OutOfTurn)?,
            CodePurpose::Owner | CodePurpose::WorkEmail => c.inv.email.clone(),
        })
    }

    /// Mails a fresh one-time code for `purpose` (the earlier one stops
    /// working): at most [`CODE_SENDS`] an hour.
    pub async fn send_code(
        &self,
        org_id: Uuid,
        invitation_id: Uuid,
        browser: Option<&str>,
        purpose: CodePurpose,
    ) -> Result<(), RegistrationError> {
        let c = self.signed_in_for(org_id, invitation_id, browser).await?;
        self.send_code_for(&c, purpose).await
    }

    async fn send_code_for(
        &self,
        c: &Current,
        purpose: CodePurpose,
    ) -> Result<(), RegistrationError> {
        let to = Self::code_target(c, purpose)?;
        let now = Timestamp::now();
        let (sends, window_start) = match self.store.code(c.inv.id, purpose).await? {
            Some(old) if old.window_start.plus(CODE_SEND_WINDOW) > now => {
                if old.sends >= CODE_SENDS {
                    return Err(invalid(
                        "Too many codes were sent. Wait an hour, or use the newest code you received.",
                    ));
                }
                (old.sends + 1, old.window_start)
            }
            _ => (1, now),
        };
        let code = new_code()?;
        let org = self.org(c.inv.org_id).await?;
        let what = match purpose {
            CodePurpose::Owner => "prove that you own your account",
            CodePurpose::PersonalEmail => "verify your personal email",
            CodePurpose::WorkEmail => "verify your work email",
        };
        let rendered = render_code(&CodeMail {
            org_name: org.name.clone(),
            purpose: what.into(),
            code: code.clone(),
            minutes: CODE_TTL.whole_minutes(),
            contact: org
                .settings
                .contact
                .clone()
                .or(org.settings.inviter.clone()),
        })
        .map_err(StoreError::other)?;
        let record = CodeRecord {
            invitation_id: c.inv.id,
            purpose,
            email: to.clone(),
            code_mac: self.code_mac(c.inv.id, purpose, &code),
            attempts: 0,
            sends,
            window_start,
            created_at: now,
            expires_at: now.plus(CODE_TTL),
        };
        let mail = self.mail(&org, c.inv.id, CODE_KIND, &to, rendered);
        let tx = self.store.begin().await?;
        tx.put_code(&record).await?;
        tx.enqueue_mail(&mail).await?;
        audit(
            &*tx,
            Some(c.inv.org_id),
            c.progress.account_id,
            &c.inv.email,
            "registration.code_sent",
            serde_json::json!({"purpose": purpose.as_str()}),
        )
        .await?;
        tx.commit().await?;
        self.invitations.wake_worker();
        Ok(())
    }

    /// A typed code for `purpose`: single use, [`CODE_ATTEMPTS`] tries, for
    /// [`CODE_TTL`]. The work email's code ends the separate path.
    pub async fn enter_code(
        &self,
        org_id: Uuid,
        invitation_id: Uuid,
        browser: Option<&str>,
        purpose: CodePurpose,
        typed: &str,
    ) -> Result<Option<NewSession>, RegistrationError> {
        let c = self.signed_in_for(org_id, invitation_id, browser).await?;
        let to = Self::code_target(&c, purpose)?;
        let next = match purpose {
            CodePurpose::Owner => c.progress.clone().owner_proved()?,
            CodePurpose::PersonalEmail => c.progress.clone().personal_verified()?,
            CodePurpose::WorkEmail => c.progress.clone().work_verified()?,
        };
        let typed =
            steps::typed_code(typed).ok_or_else(|| invalid("Type the six digits of the code."))?;
        let ask_again = "Ask for a new code.";
        let Some(record) = self
            .store
            .code(c.inv.id, purpose)
            .await?
            .filter(|r| r.email.eq_ignore_ascii_case(&to))
        else {
            // Used meanwhile in another window (the step is done), or
            // never sent.
            let now = self.signed_in_for(org_id, invitation_id, browser).await?;
            let done = match purpose {
                CodePurpose::Owner => now.progress.owner_proved().is_err(),
                CodePurpose::PersonalEmail => now.progress.personal_verified().is_err(),
                CodePurpose::WorkEmail => now.progress.work_verified().is_err(),
            };
            return Err(if done {
                RegistrationError::OutOfTurn
            } else {
                invalid(format!("No code is waiting for {to}. {ask_again}"))
            });
        };
        if record.expires_at <= Timestamp::now() {
            return Err(invalid(format!("The code expired. {ask_again}")));
        }
        if !self
            .store
            .spend_code_attempt(c.inv.id, purpose, CODE_ATTEMPTS)
            .await?
        {
            // No attempt left, or the code was used meanwhile (the same
            // step finished in another window).
            return Err(match self.store.code(c.inv.id, purpose).await? {
                None => RegistrationError::OutOfTurn,
                Some(_) => invalid(format!("Too many wrong codes. {ask_again}")),
            });
        }
        let mac = self.code_mac(c.inv.id, purpose, &typed);
        if !bool::from(mac.ct_eq(&record.code_mac)) {
            let tx = self.store.begin().await?;
            audit(
                &*tx,
                Some(c.inv.org_id),
                c.progress.account_id,
                &c.inv.email,
                "registration.code_failed",
                serde_json::json!({"purpose": purpose.as_str(), "attempt": record.attempts + 1}),
            )
            .await?;
            tx.commit().await?;
            let left = (CODE_ATTEMPTS - record.attempts - 1).max(0);
            return Err(invalid(if left == 0 {
                format!("That code is not right. {ask_again}")
            } else {
                format!("That code is not right. {left} more tries.")
            }));
        }
        self.advance_with(
            &c,
            &next,
            "registration.code_verified",
            serde_json::json!({"purpose": purpose.as_str()}),
            async |tx: &dyn Transaction| tx.delete_codes(c.inv.id).await,
        )
        .await?;
        if purpose == CodePurpose::WorkEmail {
            let c = self.signed_in_for(org_id, invitation_id, browser).await?;
            return Ok(Some(self.separate(&c).await?));
        }
        Ok(None)
    }

    /// Migrate or separate, after proving ownership.
    pub async fn choose(
        &self,
        org_id: Uuid,
        invitation_id: Uuid,
        browser: Option<&str>,
        choice: Choice,
        acknowledged: bool,
    ) -> Result<(), RegistrationError> {
        let c = self.signed_in_for(org_id, invitation_id, browser).await?;
        let facts = self.existing(&c).await?;
        let next = c
            .progress
            .clone()
            .choose(choice, acknowledged, facts.personal_orders)?;
        self.advance_with(
            &c,
            &next,
            "registration.chose",
            serde_json::json!({"choice": choice, "acknowledged_personal_orders": next.acknowledged_personal}),
            async |_: &dyn Transaction| Ok(()),
        )
        .await
    }

    /// Blocked: begins taking the account out of its organization.
    pub async fn start_deregister(
        &self,
        org_id: Uuid,
        invitation_id: Uuid,
        browser: Option<&str>,
    ) -> Result<(), RegistrationError> {
        let c = self.signed_in_for(org_id, invitation_id, browser).await?;
        let next = c.progress.clone().start_deregister()?;
        self.advance_with(
            &c,
            &next,
            "registration.chose",
            serde_json::json!({"choice": Choice::Deregister}),
            async |_: &dyn Transaction| Ok(()),
        )
        .await
    }

    /// The personal email the old account's login moves to; a code is
    /// mailed to it. Refused when an account uses it or it is in one of the
    /// organization's domains.
    pub async fn set_personal_email(
        &self,
        org_id: Uuid,
        invitation_id: Uuid,
        browser: Option<&str>,
        raw: &str,
    ) -> Result<(), RegistrationError> {
        let c = self.signed_in_for(org_id, invitation_id, browser).await?;
        let org = self.org(org_id).await?;
        let email = steps::personal_email(raw, &c.inv.email, &org.domains)?;
        if self.accounts.facts_by_email(&email).await?.is_some() {
            return Err(invalid(
                "An account on the platform already uses this email. Enter another personal email.",
            ));
        }
        let next = c.progress.clone().personal_email(email)?;
        self.advance_with(
            &c,
            &next,
            "registration.personal_email_set",
            serde_json::json!({}),
            async |_: &dyn Transaction| Ok(()),
        )
        .await?;
        let c = self.signed_in_for(org_id, invitation_id, browser).await?;
        self.send_code_for(&c, CodePurpose::PersonalEmail).await
    }

    /// Separate: the new business account's name, password (where the
    /// organization allows one) and phone (optional); a code is mailed to
    /// the work email.
    pub async fn set_details(
        &self,
        org_id: Uuid,
        invitation_id: Uuid,
        browser: Option<&str>,
        name: &str,
        password: Option<String>,
        phone: &str,
    ) -> Result<(), RegistrationError> {
        let c = self.signed_in_for(org_id, invitation_id, browser).await?;
        let name = checked_name(name)?;
        let phone = steps::phone(phone)?;
        let org = self.org(org_id).await?;
        // Checked before hashing: a form out of turn costs no hash.
        c.progress.clone().details(Details {
            name: name.clone(),
            phone: phone.clone(),
            password_hash: None,
        })?;
        let password_hash = self.new_password(&org, password).await?;
        let next = c.progress.clone().details(Details {
            name,
            phone,
            password_hash,
        })?;
        self.advance_with(
            &c,
            &next,
            "registration.details_set",
            serde_json::json!({}),
            async |_: &dyn Transaction| Ok(()),
        )
        .await?;
        let c = self.signed_in_for(org_id, invitation_id, browser).await?;
        self.send_code_for(&c, CodePurpose::WorkEmail).await
    }

    /// Migrate's one transaction: the account becomes business and joins
    /// the organization with every order it has; its identity is bound, the
    /// invitation accepted, a confirmation mailed.
    pub async fn complete_migrate(
        &self,
        org_id: Uuid,
        invitation_id: Uuid,
        browser: Option<&str>,
        business_only: bool,
        shared_account: bool,
    ) -> Result<NewSession, RegistrationError> {
        let c = self.signed_in_for(org_id, invitation_id, browser).await?;
        c.progress.ready_to_migrate()?;
        if !(business_only && shared_account) {
            return Err(invalid(
                "Tick both boxes to confirm: business shopping only, and the organization's shared account.",
            ));
        }
        let facts = self.existing(&c).await?;
        if facts.kind != AccountKind::Personal || facts.organization.is_some() {
            return Err(self.why_stale(&c).await);
        }
        if facts.personal_orders && !c.progress.acknowledged_personal {
            return Err(invalid(
                "This account now has orders for personal use. Choose again: separate, or business only with the acknowledgement.",
            ));
        }
        let org = self.org(org_id).await?;
        let counts = self.accounts.counts(facts.id).await?;
        let notice = self.mail(
            &org,
            c.inv.id,
            NOTICE_KIND,
            &c.inv.email,
            render_notice(&NoticeMail {
                org_name: org.name.clone(),
                subject: format!("Your account joined {}", org.name),
                lines: vec![
                    format!(
                        "Your account {} is now a business account of {}, and you sign in with {}'s single sign-on.",
                        c.inv.email, org.name, org.name
                    ),
                    format!(
                        "It kept all its {} orders, {} payment methods and {} addresses; {}'s administrators can see them.",
                        counts.orders, counts.payment_methods, counts.addresses, org.name
                    ),
                ],
                contact: org.settings.contact.clone().or(org.settings.inviter.clone()),
            })
            .map_err(StoreError::other)?,
        );
        let (email, user_id) = (c.inv.email.clone(), c.inv.user_id);
        self.finish(&c, "migrate", async |tx: &dyn Transaction| {
            self.accounts
                .join_organization(tx, facts.id, &email, org_id, user_id)
                .await?;
            tx.enqueue_mail(&notice).await?;
            Ok((
                facts.id,
                serde_json::json!({"orders": counts.orders, "payment_methods": counts.payment_methods}),
            ))
        })
        .await
    }

    /// Separate's one transaction: the old account's login moves to the
    /// verified personal email with everything it holds (nothing is
    /// copied, so it costs the same for one order or 100,000); a new
    /// business account takes the work email and joins the organization;
    /// both addresses are told what moved where.
    async fn separate(&self, c: &Current) -> Result<NewSession, RegistrationError> {
        c.progress.ready_to_separate()?;
        let (Some(personal), Some(details)) = (&c.progress.personal_email, &c.progress.details)
        else {
            return Err(RegistrationError::OutOfTurn);
        };
        let facts = self.existing(c).await?;
        let org = self.org(c.inv.org_id).await?;
        let contact = org
            .settings
            .contact
            .clone()
            .or(org.settings.inviter.clone());
        let moved = format!(
            "Your existing account, with all its orders, payment methods and addresses, now signs in with {personal} instead of {}.",
            c.inv.email
        );
        let created = format!(
            "A new business account of {} now uses {}; you sign in to it with {}'s single sign-on.",
            org.name, c.inv.email, org.name
        );
        let mut mails = Vec::new();
        for (to, subject) in [
            (
                personal.as_str(),
                "Your account now signs in with this email",
            ),
            (
                c.inv.email.as_str(),
                "Your work email now has a business account",
            ),
        ] {
            let rendered = render_notice(&NoticeMail {
                org_name: org.name.clone(),
                subject: subject.into(),
                lines: vec![moved.clone(), created.clone()],
                contact: contact.clone(),
            })
            .map_err(StoreError::other)?;
            mails.push(self.mail(&org, c.inv.id, NOTICE_KIND, to, rendered));
        }
        let new = NewMember {
            email: c.inv.email.clone(),
            name: details.name.clone(),
            password_hash: details.password_hash.clone(),
            phone: details.phone.clone(),
            org_id: c.inv.org_id,
            user_id: c.inv.user_id,
        };
        let (old, from) = (facts.id, c.inv.email.clone());
        self.finish(c, "separate", async |tx: &dyn Transaction| {
            self.accounts.move_login(tx, old, &from, personal).await?;
            let account = self.accounts.create_member(tx, &new).await?;
            for m in &mails {
                tx.enqueue_mail(m).await?;
            }
            Ok((account, serde_json::json!({"moved_account": old})))
        })
        .await
    }

    /// Retries separate's transaction once everything is verified (after a
    /// failure the person was told about).
    pub async fn complete_separate(
        &self,
        org_id: Uuid,
        invitation_id: Uuid,
        browser: Option<&str>,
    ) -> Result<NewSession, RegistrationError> {
        let c = self.signed_in_for(org_id, invitation_id, browser).await?;
        self.separate(&c).await
    }

    /// Blocked, last step, one transaction: the business account leaves its
    /// organization (if any), becomes a personal account and signs in with
    /// the verified personal email from now on, every order kept; the work
    /// email is free, and the invitation starts over (on the new path).
    /// Returns the personal email.
    pub async fn complete_deregister(
        &self,
        org_id: Uuid,
        invitation_id: Uuid,
        browser: Option<&str>,
        confirmed: bool,
    ) -> Result<String, RegistrationError> {
        let c = self.signed_in_for(org_id, invitation_id, browser).await?;
        c.progress.ready_to_deregister()?;
        if !confirmed {
            return Err(invalid("Tick the box to confirm the deregistration."));
        }
        let personal = c
            .progress
            .personal_email
            .clone()
            .ok_or(RegistrationError::OutOfTurn)?;
        let facts = self.existing(&c).await?;
        if facts.kind != AccountKind::Business {
            return Err(self.why_stale(&c).await);
        }
        let org = self.org(org_id).await?;
        let lines = vec![
            format!(
                "Your business account {} was deregistered: it left its organization and is now a personal account that signs in with {personal}, with all its orders.",
                c.inv.email
            ),
            format!(
                "{} is free now: open your invitation link again to join {}.",
                c.inv.email, org.name
            ),
        ];
        let contact = org
            .settings
            .contact
            .clone()
            .or(org.settings.inviter.clone());
        let mut mails = Vec::new();
        for to in [personal.as_str(), c.inv.email.as_str()] {
            let rendered = render_notice(&NoticeMail {
                org_name: org.name.clone(),
                subject: "Your business account was deregistered".into(),
                lines: lines.clone(),
                contact: contact.clone(),
            })
            .map_err(StoreError::other)?;
            mails.push(self.mail(&org, c.inv.id, NOTICE_KIND, to, rendered));
        }
        let tx = self.store.begin().await?;
        let done = async {
            self.accounts
                .deregister(&*tx, facts.id, &c.inv.email, facts.organization)
                .await?;
            self.accounts
                .move_login(&*tx, facts.id, &c.inv.email, &personal)
                .await?;
            for m in &mails {
                tx.enqueue_mail(m).await?;
            }
            audit(
                &*tx,
                Some(org_id),
                Some(facts.id),
                &c.inv.email,
                "account.deregistered",
                serde_json::json!({"left_organization": facts.organization, "invitation": c.inv.id}),
            )
            .await?;
            tx.delete_codes(c.inv.id).await?;
            tx.delete_registration(c.inv.id).await?;
            tx.commit().await
        };
        let result = match done.await {
            Ok(()) => Ok(personal),
            Err(StoreError::Conflict { constraint }) if constraint.starts_with("accounts_") => {
                Err(invalid(
                    "An account took that personal email meanwhile. Start over and choose another one.",
                ))
            }
            Err(StoreError::Stale) => Err(RegistrationError::AccountChanged),
            Err(e) => Err(e.into()),
        };
        self.invitations.wake_worker();
        result
    }

    /// The account whose order history the person may download: the one on
    /// the work email, once they proved they own it.
    pub async fn history_account(
        &self,
        org_id: Uuid,
        invitation_id: Uuid,
        browser: Option<&str>,
    ) -> Result<Uuid, RegistrationError> {
        let c = self.signed_in_for(org_id, invitation_id, browser).await?;
        if !c.progress.owner_proved || c.progress.path == Path::New {
            return Err(RegistrationError::OutOfTurn);
        }
        Ok(self.existing(&c).await?.id)
    }

    /// A registration mail, ready to queue.
    fn mail(
        &self,
        org: &Organization,
        invitation: Uuid,
        kind: &str,
        to: &str,
        rendered: crate::mail::Rendered,
    ) -> OutboxRecord {
        let now = Timestamp::now();
        let id = Uuid::now_v7();
        OutboxRecord {
            id,
            org_id: org.id,
            kind: kind.to_string(),
            ref_id: Some(invitation),
            message_id: format!(
                "{kind}-{id}@{}",
                crate::mail::message_id_domain(self.invitations.mail_from())
            ),
            to_address: to.to_string(),
            to_name: None,
            subject: Some(rendered.subject),
            body_text: Some(rendered.text),
            body_html: Some(rendered.html),
            status: OutboxStatus::Queued,
            attempts: 0,
            next_attempt_at: now,
            last_error: None,
            created_at: now,
            sent_at: None,
        }
    }
}
