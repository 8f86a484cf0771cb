//! Where a registration stands, and what may come next: a pure state
//! machine over the progress saved per invitation (PRODUCT.md, "The
//! registration paths"). Every transition checks that it is the step's
//! turn, so a form sent out of order — or twice, from two tabs — changes
//! nothing.
//!
//! - **new**: the account form, then done.
//! - **migrate / separate**: prove ownership of the account on the work
//!   email; choose (migrate needs an acknowledgement when the account has
//!   personal orders); migrate → confirm → done; separate → a personal email
//!   for the old account, verified by code → the new business account's
//!   details → the work email verified by code → done.
//! - **blocked**: prove ownership; then download the order history, or
//!   deregister: a personal email for the account, verified by code →
//!   confirm → the account leaves its organization, and the invitation
//!   starts over on the new path.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::decide::Path;

/// What the person chose after proving ownership.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Choice {
    Migrate,
    Separate,
    /// Blocked: take the account out of its organization.
    Deregister,
}

/// The new business account's details (separate).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Details {
    pub name: String,
    /// E.164.
    pub phone: Option<String>,
    /// An argon2 PHC string, when the organization allows passwords.
    pub password_hash: Option<String>,
}

/// How far a registration got, saved per invitation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    pub path: Path,
    /// The account already on the work email (migrate, separate, blocked).
    #[serde(default)]
    pub account_id: Option<Uuid>,
    #[serde(default)]
    pub owner_proved: bool,
    #[serde(default)]
    pub choice: Option<Choice>,
    /// "Business only" chosen for an account with personal orders, knowingly.
    #[serde(default)]
    pub acknowledged_personal: bool,
    /// Where the old account's login moves (separate, deregister).
    #[serde(default)]
    pub personal_email: Option<String>,
    #[serde(default)]
    pub personal_verified: bool,
    #[serde(default)]
    pub details: Option<Details>,
    #[serde(default)]
    pub work_verified: bool,
}

/// The page a registration is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    NewAccount,
    AlreadyMember,
    ProveOwnership,
    Choose,
    ConfirmMigrate,
    PersonalEmail,
    VerifyPersonal,
    Details,
    VerifyWork,
    BlockedOptions,
    ConfirmDeregister,
}

/// A transition refused: it is not this step's turn, or what was sent is
/// not acceptable. The text says what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("this step is already done or not yet due; reload the page to see where you are")]
    OutOfTurn,
    #[error("{0}")]
    Invalid(String),
}

impl Progress {
    pub fn new(path: Path, account_id: Option<Uuid>) -> Progress {
        Progress {
            path,
            account_id,
            owner_proved: false,
            choice: None,
            acknowledged_personal: false,
            personal_email: None,
            personal_verified: false,
            details: None,
            work_verified: false,
        }
    }

    /// The page to show.
    pub fn step(&self) -> Step {
        match self.path {
            Path::New => Step::NewAccount,
            Path::AlreadyMember => Step::AlreadyMember,
            _ if !self.owner_proved => Step::ProveOwnership,
            Path::Blocked => match self.choice {
                Some(Choice::Deregister) => self.move_steps().unwrap_or(Step::ConfirmDeregister),
                _ => Step::BlockedOptions,
            },
            Path::Migrate | Path::Separate => match self.choice {
                None | Some(Choice::Deregister) => Step::Choose,
                Some(Choice::Migrate) => Step::ConfirmMigrate,
                Some(Choice::Separate) => {
                    self.move_steps()
                        .unwrap_or(match (&self.details, self.work_verified) {
                            (None, _) => Step::Details,
                            (Some(_), false) => Step::VerifyWork,
                            // Verified: the commit is what remains.
                            (Some(_), true) => Step::VerifyWork,
                        })
                }
            },
        }
    }

    /// The personal email steps, while one remains.
    fn move_steps(&self) -> Option<Step> {
        match (&self.personal_email, self.personal_verified) {
            (None, _) => Some(Step::PersonalEmail),
            (Some(_), false) => Some(Step::VerifyPersonal),
            (Some(_), true) => None,
        }
    }

    fn expect(&self, step: Step) -> Result<(), Refusal> {
        if self.step() == step {
            Ok(())
        } else {
            Err(Refusal::OutOfTurn)
        }
    }

    /// Ownership of the existing account proved (password or mailed code).
    pub fn owner_proved(mut self) -> Result<Progress, Refusal> {
        self.expect(Step::ProveOwnership)?;
        self.owner_proved = true;
        Ok(self)
    }

    /// Migrate or separate chosen (again, from any later step of either:
    /// what the other choice gathered is dropped). Migrating an account
    /// with personal orders needs `acknowledged`.
    pub fn choose(
        mut self,
        choice: Choice,
        acknowledged: bool,
        has_personal_orders: bool,
    ) -> Result<Progress, Refusal> {
        let choosing = matches!(self.path, Path::Migrate | Path::Separate)
            && self.owner_proved
            && !self.work_verified;
        if !choosing || choice == Choice::Deregister {
            return Err(Refusal::OutOfTurn);
        }
        if choice == Choice::Migrate && has_personal_orders && !acknowledged {
            return Err(Refusal::Invalid(
                "this account has orders for personal use: to make it business only, confirm that you understand they will be visible to your organization".into(),
            ));
        }
        self.choice = Some(choice);
        self.acknowledged_personal = choice == Choice::Migrate && acknowledged;
        self.personal_email = None;
        self.personal_verified = false;
        self.details = None;
        Ok(self)
    }

    /// Blocked: start taking the account out of its organization.
    pub fn start_deregister(mut self) -> Result<Progress, Refusal> {
        self.expect(Step::BlockedOptions)?;
        self.choice = Some(Choice::Deregister);
        Ok(self)
    }

    /// The personal email for the old account (already validated), to be
    /// verified by code. Allowed again while unverified (a typo).
    pub fn personal_email(mut self, email: String) -> Result<Progress, Refusal> {
        match self.step() {
            Step::PersonalEmail | Step::VerifyPersonal => {
                self.personal_email = Some(email);
                self.personal_verified = false;
                Ok(self)
            }
            _ => Err(Refusal::OutOfTurn),
        }
    }

    pub fn personal_verified(mut self) -> Result<Progress, Refusal> {
        self.expect(Step::VerifyPersonal)?;
        self.personal_verified = true;
        Ok(self)
    }

    /// The new business account's details (separate); allowed again until
    /// the work email is verified.
    pub fn details(mut self, details: Details) -> Result<Progress, Refusal> {
        match self.step() {
            Step::Details | Step::VerifyWork if !self.work_verified => {
                self.details = Some(details);
                Ok(self)
            }
            _ => Err(Refusal::OutOfTurn),
        }
    }

    pub fn work_verified(mut self) -> Result<Progress, Refusal> {
        self.expect(Step::VerifyWork)?;
        self.work_verified = true;
        Ok(self)
    }

    /// The commit that finishes the path is due.
    pub fn ready_to_migrate(&self) -> Result<(), Refusal> {
        self.expect(Step::ConfirmMigrate)
    }

    pub fn ready_to_separate(&self) -> Result<(), Refusal> {
        if self.step() == Step::VerifyWork && self.work_verified {
            Ok(())
        } else {
            Err(Refusal::OutOfTurn)
        }
    }

    pub fn ready_to_deregister(&self) -> Result<(), Refusal> {
        self.expect(Step::ConfirmDeregister)
    }
}

/// The most a one-time code may be tried.
pub const CODE_ATTEMPTS: i32 = 5;
/// How long a one-time code lasts.
pub const CODE_TTL: time::Duration = time::Duration::minutes(10);
/// Codes one registration may have sent for one purpose per window.
pub const CODE_SENDS: i32 = 5;
pub const CODE_SEND_WINDOW: time::Duration = time::Duration::hours(1);
/// Wrong passwords in a window that lock the password check for a while
/// (the mailed code still works: a lockout never locks the owner out).
pub const PASSWORD_FAILURES: i32 = 5;
pub const PASSWORD_WINDOW: time::Duration = time::Duration::minutes(15);
pub const PASSWORD_LOCK: time::Duration = time::Duration::minutes(15);

/// A one-time code as typed: six digits, spaces and dashes ignored.
pub fn typed_code(raw: &str) -> Option<String> {
    let digits: String = raw
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .collect();
    (digits.len() == 6 && digits.chars().all(|c| c.is_ascii_digit())).then_some(digits)
}

/// A phone number in E.164 (`+` and 7 to 15 digits; spaces, dashes, dots
/// and parentheses ignored); empty is none.
pub fn phone(raw: &str) -> Result<Option<String>, Refusal> {
    let kept: String = raw
        .chars()
        .filter(|c| !c.is_whitespace() && !"-.()".contains(*c))
        .collect();
    if kept.is_empty() {
        return Ok(None);
    }
    let digits = kept.strip_prefix('+').unwrap_or("");
    let ok = (7..=15).contains(&digits.len())
        && digits.chars().all(|c| c.is_ascii_digit())
        && !digits.starts_with('0');
    if ok {
        Ok(Some(kept))
    } else {
        Err(Refusal::Invalid(
            "enter the phone number in international form, e.g. +15551234567, or leave it empty"
                .into(),
        ))
    }
}

/// A personal email for the old account: a plain address, not the work
/// email, and in none of the organization's domains. (That no account
/// uses it is the store's to say.)
pub fn personal_email(
    raw: &str,
    work_email: &str,
    org_domains: &[String],
) -> Result<String, Refusal> {
    let email = raw.trim();
    if !crate::scim::mapping::is_email(email) || email.len() > 254 {
        return Err(Refusal::Invalid(
            "enter an email address like name@example.com".into(),
        ));
    }
    if email.eq_ignore_ascii_case(work_email) {
        return Err(Refusal::Invalid(
            "enter a personal email, not your work email".into(),
        ));
    }
    let domain = email
        .rsplit_once('@')
        .map(|(_, d)| d.to_ascii_lowercase())
        .unwrap_or_default();
    if org_domains.iter().any(|d| d.eq_ignore_ascii_case(&domain)) {
        return Err(Refusal::Invalid(format!(
            "{domain} is your organization's domain: enter a personal email outside it"
        )));
    }
    Ok(email.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proved(path: Path) -> Progress {
        Progress::new(path, Some(Uuid::nil()))
            .owner_proved()
            .unwrap()
    }

    #[test]
    fn the_new_path_and_members_have_one_step() {
        assert_eq!(Progress::new(Path::New, None).step(), Step::NewAccount);
        assert_eq!(
            Progress::new(Path::AlreadyMember, None).step(),
            Step::AlreadyMember
        );
        assert_eq!(
            Progress::new(Path::New, None).owner_proved(),
            Err(Refusal::OutOfTurn)
        );
    }

    #[test]
    fn nothing_but_proof_comes_before_ownership_is_proved() {
        for path in [Path::Migrate, Path::Separate, Path::Blocked] {
            let p = Progress::new(path, Some(Uuid::nil()));
            assert_eq!(p.step(), Step::ProveOwnership);
            assert_eq!(
                p.clone().choose(Choice::Migrate, true, false),
                Err(Refusal::OutOfTurn)
            );
            assert_eq!(p.clone().start_deregister(), Err(Refusal::OutOfTurn));
            assert_eq!(
                p.clone().personal_email("p@home.example".into()),
                Err(Refusal::OutOfTurn)
            );
            assert_eq!(p.ready_to_migrate(), Err(Refusal::OutOfTurn));
        }
    }

    #[test]
    fn migrate_is_proof_choice_confirmation() {
        let p = proved(Path::Migrate);
        assert_eq!(p.step(), Step::Choose);
        let p = p.choose(Choice::Migrate, false, false).unwrap();
        assert_eq!(p.step(), Step::ConfirmMigrate);
        assert!(p.ready_to_migrate().is_ok());
        assert!(p.ready_to_separate().is_err());
    }

    #[test]
    fn business_only_with_personal_orders_needs_the_acknowledgement() {
        let p = proved(Path::Separate);
        assert!(matches!(
            p.clone().choose(Choice::Migrate, false, true),
            Err(Refusal::Invalid(_))
        ));
        let p = p.choose(Choice::Migrate, true, true).unwrap();
        assert!(p.acknowledged_personal);
        assert_eq!(p.step(), Step::ConfirmMigrate);
    }

    #[test]
    fn separate_walks_personal_email_code_details_work_code() {
        let p = proved(Path::Separate)
            .choose(Choice::Separate, false, true)
            .unwrap();
        assert_eq!(p.step(), Step::PersonalEmail);
        let p = p.personal_email("p@home.example".into()).unwrap();
        assert_eq!(p.step(), Step::VerifyPersonal);
        // A typo can be fixed before the code is entered.
        let p = p.personal_email("pat@home.example".into()).unwrap();
        assert_eq!(
            p.clone()
                .details(Details {
                    name: "x".into(),
                    phone: None,
                    password_hash: None
                })
                .err(),
            Some(Refusal::OutOfTurn)
        );
        let p = p.personal_verified().unwrap();
        assert_eq!(p.step(), Step::Details);
        assert_eq!(
            p.clone().personal_email("x@y.example".into()),
            Err(Refusal::OutOfTurn)
        );
        let d = Details {
            name: "Pat".into(),
            phone: None,
            password_hash: None,
        };
        let p = p.details(d.clone()).unwrap();
        assert_eq!(p.step(), Step::VerifyWork);
        assert!(p.ready_to_separate().is_err());
        let p = p.work_verified().unwrap();
        assert!(p.ready_to_separate().is_ok());
        assert_eq!(p.clone().details(d), Err(Refusal::OutOfTurn));
        assert_eq!(
            p.choose(Choice::Migrate, true, true),
            Err(Refusal::OutOfTurn),
            "no change of mind once everything is verified"
        );
    }

    #[test]
    fn changing_the_choice_drops_what_the_other_gathered() {
        let p = proved(Path::Separate)
            .choose(Choice::Separate, false, false)
            .unwrap()
            .personal_email("p@home.example".into())
            .unwrap()
            .personal_verified()
            .unwrap();
        let p = p.choose(Choice::Migrate, true, true).unwrap();
        assert_eq!(p.personal_email, None);
        assert!(!p.personal_verified);
        assert_eq!(p.step(), Step::ConfirmMigrate);
    }

    #[test]
    fn blocked_offers_export_and_deregistration_after_proof() {
        let p = proved(Path::Blocked);
        assert_eq!(p.step(), Step::BlockedOptions);
        assert_eq!(
            p.clone().choose(Choice::Separate, false, false),
            Err(Refusal::OutOfTurn)
        );
        let p = p.start_deregister().unwrap();
        assert_eq!(p.step(), Step::PersonalEmail);
        let p = p
            .personal_email("p@home.example".into())
            .unwrap()
            .personal_verified()
            .unwrap();
        assert_eq!(p.step(), Step::ConfirmDeregister);
        assert!(p.ready_to_deregister().is_ok());
    }

    #[test]
    fn progress_reads_back_from_what_earlier_versions_saved() {
        let p: Progress = serde_json::from_str(r#"{"path":"new"}"#).unwrap();
        assert_eq!(p, Progress::new(Path::New, None));
    }

    #[test]
    fn codes_are_six_digits() {
        assert_eq!(typed_code(" 123 456 ").as_deref(), Some("123456"));
        assert_eq!(typed_code("123-456").as_deref(), Some("123456"));
        assert_eq!(typed_code("12345"), None);
        assert_eq!(typed_code("12345a"), None);
        assert_eq!(typed_code("１２３４５６"), None, "only ASCII digits");
    }

    #[test]
    fn phones_are_e164_or_nothing() {
        assert_eq!(phone("").unwrap(), None);
        assert_eq!(
            phone(" +1 (555) 123-4567 ").unwrap().as_deref(),
            Some("+15551234567")
        );
        assert!(phone("5551234567").is_err());
        assert!(phone("+0123456789").is_err());
        assert!(phone("+1234").is_err());
        assert!(phone("+1234567890123456").is_err());
    }

    #[test]
    fn personal_emails_are_outside_the_organization() {
        let domains = vec!["acme.example".to_string()];
        assert_eq!(
            personal_email(" pat@home.example ", "pat@acme.example", &domains).unwrap(),
            "pat@home.example"
        );
        assert!(personal_email("Pat@ACME.example", "pat@acme.example", &domains).is_err());
        assert!(personal_email("other@Acme.Example", "pat@acme.example", &domains).is_err());
        assert!(personal_email("not an email", "pat@acme.example", &domains).is_err());
    }
}
