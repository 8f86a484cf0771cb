//! Invitations issued by provisioning: one per person, in the same
//! transaction as the SCIM change, mailed by the outbox worker; resend,
//! revoke, deprovisioning and reactivation.

use std::time::Duration;

use onramp::invitations::InvitationService;
use onramp::secrets::token;
use onramp::store::invitations::{InvitationRecord, InvitationStatus};
use onramp::store::outbox::OutboxStatus;
use onramp::store::{DynStore, OrgSettings};
use serde_json::json;
use uuid::Uuid;

use crate::helpers::{Backend, TestApp, TestDb, backends, spawn_app, spawn_app_on};
use crate::scim_crud::{Scim, entra_user, scim};

async fn invitations(store: &DynStore, org: Uuid) -> Vec<InvitationRecord> {
    store.list_invitations(org, None, 100).await.unwrap()
}

/// Polls until `check` holds (the worker runs in the background).
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..200 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("timed out waiting for: {what}");
}

fn mail_files(app: &TestApp) -> Vec<String> {
    let mut files: Vec<String> = std::fs::read_dir(app.mail_dir.path())
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.path().display().to_string())
                .filter(|p| p.ends_with(".eml"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

/// The `/join/<token>` token in a message (quoted-printable soft breaks undone).
fn join_token(raw: &str) -> String {
    let joined = raw.replace("=\r\n", "").replace("=\n", "");
    let start = joined.find("/join/").expect("a join link") + "/join/".len();
    joined[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
        .collect()
}

async fn no_worker_app(backend: Backend) -> TestApp {
    spawn_app_on(TestDb::new(backend).await, |c| {
        c.mail.outbox.enabled = false
    })
    .await
}

#[tokio::test]
async fn a_provisioned_user_gets_exactly_one_invitation_mailed_with_a_working_token() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let (s, org) = scim(&app, "Acme").await;
        let (st, user) = s.post("/Users", entra_user("ann@acme.example")).await;
        assert_eq!(st, 201);
        // A retried create is refused and issues nothing more.
        assert_eq!(
            s.post("/Users", entra_user("ann@acme.example")).await.0,
            409
        );
        // Nor do updates of an invited user.
        let uid = user["id"].as_str().unwrap();
        s.patch(
            &format!("/Users/{uid}"),
            json!([{"op": "replace", "path": "title", "value": "Lead"}]),
        )
        .await;
        let invs = invitations(&app.store, org).await;
        assert_eq!(invs.len(), 1, "{backend:?}");
        assert_eq!(invs[0].email, "ann@acme.example");
        assert_eq!(invs[0].recipient_name.as_deref(), Some("Barbara Jensen"));
        let id = invs[0].id;
        eventually("the invitation is sent", || async {
            app.store
                .invitation_by_id(org, id)
                .await
                .unwrap()
                .unwrap()
                .status
                == InvitationStatus::Sent
        })
        .await;
        let files = mail_files(&app);
        assert_eq!(files.len(), 1, "{files:?}");
        let raw = std::fs::read_to_string(&files[0]).unwrap();
        assert!(raw.contains(&format!("Message-ID: <inv-{id}-1@")), "{raw}");
        let token = join_token(&raw);
        assert!(token::well_formed("inv", &token), "{token}");
        let by_token = app
            .store
            .invitation_by_token_hash(&token::ordered_key("inv", &token).unwrap())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(by_token.id, id);
        // The outbox keeps no copy of the message once it is sent.
        let outbox = app.store.mail_for("invitation", id).await.unwrap();
        assert_eq!(outbox[0].status, OutboxStatus::Sent);
        assert!(outbox[0].body_text.is_none() && outbox[0].body_html.is_none());
    }
}

#[tokio::test]
async fn a_user_without_a_usable_email_gets_no_invitation_and_the_reason_is_recorded() {
    for backend in backends() {
        let app = no_worker_app(backend).await;
        let (s, org) = scim(&app, "Acme").await;
        let (_, user) = s.post("/Users", json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "jdoe"})).await;
        let invs = invitations(&app.store, org).await;
        assert_eq!(invs.len(), 1);
        assert_eq!(invs[0].status, InvitationStatus::Failed);
        assert!(
            invs[0]
                .reason
                .as_deref()
                .unwrap()
                .contains("no usable work email")
        );
        assert!(
            app.store
                .mail_for("invitation", invs[0].id)
                .await
                .unwrap()
                .is_empty()
        );
        // Once the directory sends an email, the person is invited.
        let uid = user["id"].as_str().unwrap();
        let (st, _) = s.patch(&format!("/Users/{uid}"), json!([{"op": "add", "path": "emails[type eq \"work\"].value", "value": "jdoe@acme.example"}])).await;
        assert_eq!(st, 200);
        let invs = invitations(&app.store, org).await;
        assert_eq!(invs.len(), 2, "{backend:?}");
        assert_eq!(invs[0].status, InvitationStatus::Pending);
        assert_eq!(invs[0].email, "jdoe@acme.example");
    }
}

#[tokio::test]
async fn an_email_outside_the_organizations_domains_is_not_invited() {
    let app = no_worker_app(Backend::Sqlite).await;
    let org = app
        .tenancy
        .create_org(onramp::tenancy::NewOrg {
            name: "Acme".into(),
            domains: vec!["acme.example".into()],
        })
        .await
        .unwrap();
    let token = app
        .tenancy
        .create_scim_token(org.id, None)
        .await
        .unwrap()
        .token;
    let s = Scim { app: &app, token };
    s.post("/Users", entra_user("x@elsewhere.example")).await;
    let invs = invitations(&app.store, org.id).await;
    assert_eq!(invs[0].status, InvitationStatus::Failed);
    assert!(
        invs[0]
            .reason
            .as_deref()
            .unwrap()
            .contains("elsewhere.example")
    );
}

#[tokio::test]
async fn deactivation_revokes_and_cancels_unsent_mail_and_reactivation_invites_again() {
    for backend in backends() {
        let app = no_worker_app(backend).await;
        let (s, org) = scim(&app, "Acme").await;
        let (_, user) = s.post("/Users", entra_user("bo@acme.example")).await;
        let uid = user["id"].as_str().unwrap();
        let first = invitations(&app.store, org).await[0].clone();
        s.patch(
            &format!("/Users/{uid}"),
            json!([{"op": "Replace", "path": "active", "value": "False"}]),
        )
        .await;
        let revoked = app
            .store
            .invitation_by_id(org, first.id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(revoked.status, InvitationStatus::Revoked, "{backend:?}");
        assert!(
            revoked.token_hash.is_some(),
            "kept so the link's page can say it was revoked"
        );
        let mail = app.store.mail_for("invitation", first.id).await.unwrap();
        assert_eq!(mail[0].status, OutboxStatus::Cancelled);
        assert!(mail[0].body_text.is_none());
        s.patch(
            &format!("/Users/{uid}"),
            json!([{"op": "Replace", "path": "active", "value": "True"}]),
        )
        .await;
        let invs = invitations(&app.store, org).await;
        assert_eq!(invs.len(), 2);
        assert_eq!(invs[0].status, InvitationStatus::Pending);
        assert_ne!(invs[0].id, first.id);
        // DELETE revokes too.
        assert_eq!(s.delete(&format!("/Users/{uid}")).await, 204);
        assert_eq!(
            invitations(&app.store, org).await[0].status,
            InvitationStatus::Revoked
        );
    }
}

#[tokio::test]
async fn resend_voids_the_old_link_and_queues_a_new_message_and_revoke_voids_it() {
    for backend in backends() {
        let app = no_worker_app(backend).await;
        let (s, org) = scim(&app, "Acme").await;
        s.post("/Users", entra_user("cy@acme.example")).await;
        let service = InvitationService::new(
            app.store.clone(),
            "http://127.0.0.1:8080",
            "onramp <onramp@acme.example>",
        );
        let first = invitations(&app.store, org).await[0].clone();
        let old_hash = first.token_hash.clone().unwrap();
        let resent = service.resend(org, first.id).await.unwrap();
        assert_eq!(resent.record.sends, 2);
        assert!(
            app.store
                .invitation_by_token_hash(&old_hash)
                .await
                .unwrap()
                .is_none(),
            "the old link is void"
        );
        let mail = app.store.mail_for("invitation", first.id).await.unwrap();
        assert_eq!(mail.len(), 2);
        assert_eq!(
            mail[0].status,
            OutboxStatus::Cancelled,
            "the unsent first message is cancelled"
        );
        assert_eq!(mail[1].status, OutboxStatus::Queued);
        assert!(
            mail[1]
                .message_id
                .starts_with(&format!("inv-{}-2@", first.id))
        );
        let revoked = service.revoke(org, first.id).await.unwrap();
        assert_eq!(revoked.effective_status, "revoked");
        assert!(service.revoke(org, first.id).await.is_err(), "{backend:?}");
        assert_eq!(
            app.store.mail_for("invitation", first.id).await.unwrap()[1].status,
            OutboxStatus::Cancelled
        );
    }
}

#[tokio::test]
async fn an_invitation_past_its_lifetime_shows_as_expired_and_auto_invite_can_be_off() {
    let app = no_worker_app(Backend::Sqlite).await;
    let (s, org) = scim(&app, "Acme").await;
    s.post("/Users", entra_user("di@acme.example")).await;
    let mut inv = invitations(&app.store, org).await[0].clone();
    inv.expires_at = onramp::store::Timestamp::from_micros(inv.created_at.micros() - 1);
    app.store.update_invitation(&inv).await.unwrap();
    let service = InvitationService::new(
        app.store.clone(),
        "http://127.0.0.1:8080",
        "onramp <onramp@acme.example>",
    );
    let expired = service.list(org, Some("expired")).await.unwrap();
    assert_eq!(expired.len(), 1);
    assert!(service.list(org, Some("pending")).await.unwrap().is_empty());
    app.tenancy
        .update_settings(org, |s: &mut OrgSettings| s.auto_invite = false)
        .await
        .unwrap();
    s.post("/Users", entra_user("quiet@acme.example")).await;
    assert_eq!(
        invitations(&app.store, org).await.len(),
        1,
        "auto_invite off: nobody new is invited"
    );
}
