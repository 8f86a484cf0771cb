//! Which registration path a person is on: a pure function of what the
//! account store holds for the invited work email (PRODUCT.md, "The
//! registration paths").
//!
//! - no account uses the email → **new**;
//! - a business account (a member of another organization, or a standalone
//!   business account) → **blocked**;
//! - a business account that is already a member of this organization →
//!   **already a member** (the person signs in);
//! - a personal account with any order for personal use → **separate**
//!   recommended;
//! - a personal account used only for business (no personal order, or no
//!   order at all) → **migrate** recommended.
//!
//! Where migrate or separate is recommended, the person may still choose
//! the other.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::accounts::AccountFacts;
use crate::store::accounts::AccountKind;

/// A registration path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Path {
    New,
    Migrate,
    Separate,
    Blocked,
    AlreadyMember,
}

impl Path {
    pub fn as_str(self) -> &'static str {
        match self {
            Path::New => "new",
            Path::Migrate => "migrate",
            Path::Separate => "separate",
            Path::Blocked => "blocked",
            Path::AlreadyMember => "already_member",
        }
    }
}

/// The path for the invited email of organization `org_id`, given the
/// account that uses it, if any.
pub fn decide(org_id: Uuid, existing: Option<&AccountFacts>) -> Path {
    let Some(account) = existing else {
        return Path::New;
    };
    match (account.kind, account.organization) {
        (AccountKind::Business, Some(org)) if org == org_id => Path::AlreadyMember,
        (AccountKind::Business, _) => Path::Blocked,
        // A personal account that somehow belongs to this organization is
        // its member already; to another, it is held by that organization.
        (AccountKind::Personal, Some(org)) if org == org_id => Path::AlreadyMember,
        (AccountKind::Personal, Some(_)) => Path::Blocked,
        (AccountKind::Personal, None) if account.personal_orders => Path::Separate,
        (AccountKind::Personal, None) => Path::Migrate,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account(kind: AccountKind, org: Option<Uuid>, personal_orders: bool) -> AccountFacts {
        AccountFacts {
            id: Uuid::now_v7(),
            email: "pat@acme.example".into(),
            name: "Pat".into(),
            kind,
            organization: org,
            personal_orders,
            has_password: true,
        }
    }

    #[test]
    fn no_account_is_the_new_path() {
        assert_eq!(decide(Uuid::now_v7(), None), Path::New);
    }

    #[test]
    fn a_personal_account_with_a_personal_order_is_recommended_to_separate() {
        let a = account(AccountKind::Personal, None, true);
        assert_eq!(decide(Uuid::now_v7(), Some(&a)), Path::Separate);
    }

    #[test]
    fn a_personal_account_used_only_for_business_is_recommended_to_migrate() {
        let a = account(AccountKind::Personal, None, false);
        assert_eq!(decide(Uuid::now_v7(), Some(&a)), Path::Migrate);
    }

    #[test]
    fn a_business_account_of_another_organization_is_blocked() {
        let a = account(AccountKind::Business, Some(Uuid::now_v7()), false);
        assert_eq!(decide(Uuid::now_v7(), Some(&a)), Path::Blocked);
    }

    #[test]
    fn a_standalone_business_account_is_blocked() {
        let a = account(AccountKind::Business, None, true);
        assert_eq!(decide(Uuid::now_v7(), Some(&a)), Path::Blocked);
    }

    #[test]
    fn a_member_of_this_organization_is_already_a_member() {
        let org = Uuid::now_v7();
        let a = account(AccountKind::Business, Some(org), false);
        assert_eq!(decide(org, Some(&a)), Path::AlreadyMember);
        let p = account(AccountKind::Personal, Some(org), false);
        assert_eq!(decide(org, Some(&p)), Path::AlreadyMember);
    }

    #[test]
    fn a_personal_account_held_by_another_organization_is_blocked() {
        let a = account(AccountKind::Personal, Some(Uuid::now_v7()), false);
        assert_eq!(decide(Uuid::now_v7(), Some(&a)), Path::Blocked);
    }
}
