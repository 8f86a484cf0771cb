//! Whether a directory change calls for an invitation: the one place that
//! rule is written. Pure: it looks at the organization's settings, the user
//! after the change, what happened to it, and the invitations the user
//! already has.

use super::super::scim::events::{Change, DirectoryEvent};
use super::super::scim::mapping::{Unusable, work_email};
use crate::store::Organization;
use crate::store::invitations::{InvitationRecord, InvitationStatus};

/// What invitations a change calls for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Nothing,
    /// Void the user's live invitations (their links stop working).
    Void(&'static str),
    /// Issue an invitation to this address, first voiding the live ones
    /// with the reason given, if any.
    Issue {
        email: String,
        void_first: Option<&'static str>,
    },
    /// Record that the user cannot be invited, and why (voiding live ones
    /// with the reason given, if any).
    Unusable {
        reason: String,
        void_first: Option<&'static str>,
    },
}

pub const DEPROVISIONED: &str = "deprovisioned by the directory";
pub const EMAIL_CHANGED: &str = "the work email changed in the directory";

/// The rule. `existing` is the user's invitations, newest first.
pub fn decide(org: &Organization, change: &Change<'_>, existing: &[InvitationRecord]) -> Action {
    if change.has(DirectoryEvent::UserDeleted) || change.has(DirectoryEvent::UserDeactivated) {
        return Action::Void(DEPROVISIONED);
    }
    let Some(user) = change.after.filter(|u| u.active) else {
        return Action::Nothing;
    };
    if !org.settings.auto_invite
        || existing
            .iter()
            .any(|i| i.status == InvitationStatus::Accepted)
    {
        return Action::Nothing;
    }
    let address = work_email(&user.resource, &org.domains);
    let live = existing.iter().find(|i| i.status.is_live());
    if let Some(live) = live {
        // A live link keeps working, unless it was sent to an address that
        // is no longer the person's work email.
        if !change.has(DirectoryEvent::UserEmailChanged) {
            return Action::Nothing;
        }
        return match address {
            Ok(email) if email.eq_ignore_ascii_case(&live.email) => Action::Nothing,
            Ok(email) => Action::Issue {
                email,
                void_first: Some(EMAIL_CHANGED),
            },
            Err(unusable) => Action::Unusable {
                reason: unusable.reason(),
                void_first: Some(EMAIL_CHANGED),
            },
        };
    }
    // Creation and reactivation always invite; an ordinary update invites
    // only someone never invited, or whose invitation could not be made.
    let (created, activated) = (
        change.has(DirectoryEvent::UserCreated),
        change.has(DirectoryEvent::UserActivated),
    );
    if !created
        && !activated
        && existing
            .iter()
            .any(|i| i.status != InvitationStatus::Failed)
    {
        return Action::Nothing;
    }
    match address {
        Ok(email) => Action::Issue {
            email,
            void_first: None,
        },
        Err(unusable) => unusable_unless_recorded(unusable, existing),
    }
}

/// The record of why the user cannot be invited, unless the latest
/// invitation already says the same.
fn unusable_unless_recorded(unusable: Unusable, existing: &[InvitationRecord]) -> Action {
    let reason = unusable.reason();
    let recorded = existing.first().is_some_and(|i| {
        i.status == InvitationStatus::Failed && i.reason.as_deref() == Some(&reason)
    });
    if recorded {
        Action::Nothing
    } else {
        Action::Unusable {
            reason,
            void_first: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::scim::UserRecord;
    use crate::store::{OrgSettings, Timestamp};
    use DirectoryEvent::*;
    use serde_json::json;
    use uuid::Uuid;

    fn org(domains: &[&str], auto: bool) -> Organization {
        Organization {
            id: Uuid::nil(),
            name: "Acme".into(),
            slug: "acme".into(),
            domains: domains.iter().map(|d| d.to_string()).collect(),
            created_at: Timestamp::now(),
            settings: OrgSettings {
                auto_invite: auto,
                ..OrgSettings::default()
            },
        }
    }

    fn user(active: bool, email: Option<&str>) -> UserRecord {
        let emails = email.map_or(json!([]), |e| json!([{"type": "work", "value": e}]));
        UserRecord {
            id: Uuid::nil(),
            org_id: Uuid::nil(),
            user_name: "pat".into(),
            external_id: None,
            display_name: None,
            active,
            resource: json!({"userName": "pat", "emails": emails}),
            password_hash: None,
            version: 1,
            created_at: Timestamp::now(),
            updated_at: Timestamp::now(),
        }
    }

    fn inv(status: InvitationStatus, email: &str) -> InvitationRecord {
        InvitationRecord {
            id: Uuid::now_v7(),
            org_id: Uuid::nil(),
            user_id: Uuid::nil(),
            email: email.into(),
            recipient_name: None,
            token_hash: None,
            status,
            reason: None,
            sends: 1,
            created_at: Timestamp::now(),
            updated_at: Timestamp::now(),
            expires_at: Timestamp::now(),
            sent_at: None,
            accepted_at: None,
        }
    }

    fn decide_for(
        org: &Organization,
        events: &[DirectoryEvent],
        after: Option<&UserRecord>,
        existing: &[InvitationRecord],
    ) -> Action {
        let change = Change {
            org_id: Uuid::nil(),
            resource_id: Uuid::nil(),
            events,
            before: None,
            after,
            members_added: &[],
            members_removed: &[],
            members_cleared: false,
        };
        decide(org, &change, existing)
    }

    fn issue(email: &str) -> Action {
        Action::Issue {
            email: email.into(),
            void_first: None,
        }
    }

    #[test]
    fn a_created_active_user_with_a_work_email_is_invited() {
        let u = user(true, Some("pat@acme.example"));
        assert_eq!(
            decide_for(&org(&[], true), &[UserCreated], Some(&u), &[]),
            issue("pat@acme.example")
        );
    }

    #[test]
    fn nobody_is_invited_when_the_organization_does_not_invite_automatically() {
        let u = user(true, Some("pat@acme.example"));
        assert_eq!(
            decide_for(&org(&[], false), &[UserCreated], Some(&u), &[]),
            Action::Nothing
        );
    }

    #[test]
    fn an_inactive_user_is_not_invited() {
        let u = user(false, Some("pat@acme.example"));
        assert_eq!(
            decide_for(&org(&[], true), &[UserCreated], Some(&u), &[]),
            Action::Nothing
        );
    }

    #[test]
    fn deprovisioning_voids_live_invitations() {
        let u = user(false, Some("pat@acme.example"));
        assert_eq!(
            decide_for(&org(&[], true), &[UserDeactivated], Some(&u), &[]),
            Action::Void(DEPROVISIONED)
        );
        assert_eq!(
            decide_for(&org(&[], true), &[UserDeleted], None, &[]),
            Action::Void(DEPROVISIONED)
        );
    }

    #[test]
    fn an_address_outside_the_organizations_domains_is_recorded_once() {
        let u = user(true, Some("pat@gmail.example"));
        let o = org(&["acme.example"], true);
        let first = decide_for(&o, &[UserCreated], Some(&u), &[]);
        let Action::Unusable { reason, void_first } = first else {
            panic!("{first:?}");
        };
        assert!(reason.contains("gmail.example"), "{reason}");
        assert_eq!(void_first, None);
        let mut recorded = inv(InvitationStatus::Failed, "");
        recorded.reason = Some(reason);
        assert_eq!(
            decide_for(&o, &[UserUpdated], Some(&u), &[recorded]),
            Action::Nothing
        );
    }

    #[test]
    fn an_update_invites_only_someone_never_invited_or_whose_invitation_failed() {
        let u = user(true, Some("pat@acme.example"));
        let o = org(&[], true);
        assert_eq!(
            decide_for(&o, &[UserUpdated], Some(&u), &[]),
            issue("pat@acme.example")
        );
        assert_eq!(
            decide_for(
                &o,
                &[UserUpdated],
                Some(&u),
                &[inv(InvitationStatus::Failed, "")]
            ),
            issue("pat@acme.example")
        );
        assert_eq!(
            decide_for(
                &o,
                &[UserUpdated],
                Some(&u),
                &[inv(InvitationStatus::Revoked, "pat@acme.example")]
            ),
            Action::Nothing
        );
    }

    #[test]
    fn reactivation_invites_again_unless_an_invitation_was_accepted() {
        let u = user(true, Some("pat@acme.example"));
        let o = org(&[], true);
        let revoked = inv(InvitationStatus::Revoked, "pat@acme.example");
        assert_eq!(
            decide_for(&o, &[UserActivated], Some(&u), &[revoked]),
            issue("pat@acme.example")
        );
        let accepted = inv(InvitationStatus::Accepted, "pat@acme.example");
        assert_eq!(
            decide_for(&o, &[UserActivated], Some(&u), &[accepted]),
            Action::Nothing
        );
    }

    #[test]
    fn a_live_invitation_is_left_alone_unless_its_address_changed() {
        let o = org(&[], true);
        let live = inv(InvitationStatus::Sent, "pat@acme.example");
        let same = user(true, Some("PAT@acme.example"));
        assert_eq!(
            decide_for(
                &o,
                &[UserUpdated, UserEmailChanged],
                Some(&same),
                std::slice::from_ref(&live)
            ),
            Action::Nothing
        );
        let moved = user(true, Some("pat.doe@acme.example"));
        assert_eq!(
            decide_for(
                &o,
                &[UserUpdated],
                Some(&moved),
                std::slice::from_ref(&live)
            ),
            Action::Nothing
        );
        assert_eq!(
            decide_for(
                &o,
                &[UserUpdated, UserEmailChanged],
                Some(&moved),
                std::slice::from_ref(&live)
            ),
            Action::Issue {
                email: "pat.doe@acme.example".into(),
                void_first: Some(EMAIL_CHANGED)
            }
        );
        let gone = user(true, None);
        let Action::Unusable { void_first, .. } =
            decide_for(&o, &[UserUpdated, UserEmailChanged], Some(&gone), &[live])
        else {
            panic!("the live link to the old address is voided");
        };
        assert_eq!(void_first, Some(EMAIL_CHANGED));
    }
}
