//! The structure the employee half builds on (issue #10): transactions
//! without traps, writes that read outside the lock and check what they
//! read, one event path, a mail outbox for every kind, organization-scoped
//! calls, and the SCIM corrections. On SQLite and, when asked, PostgreSQL.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use onramp::mail::outbox::{MailCompletion, OutboxSettings, OutboxWorker};
use onramp::mail::{MailError, MemoryMailer};
use onramp::store::invitations::InvitationStatus;
use onramp::store::outbox::{OutboxRecord, OutboxStatus};
use onramp::store::{StoreError, Timestamp, Transaction};
use serde_json::json;
use uuid::Uuid;

use crate::helpers::{TestDb, backends, spawn_app, spawn_app_on};
use crate::scim_crud::{entra_user, scim};

/// A new organization named after its slug, owning `domains`.
fn organization(slug: &str, domains: &[&str]) -> onramp::store::Organization {
    onramp::store::Organization {
        id: Uuid::now_v7(),
        name: slug.to_uppercase(),
        slug: slug.into(),
        domains: domains.iter().map(|d| d.to_string()).collect(),
        created_at: Timestamp::now(),
        settings: Default::default(),
    }
}

#[tokio::test]
async fn a_second_transaction_in_one_task_fails_at_once_instead_of_waiting_forever() {
    for backend in backends() {
        let db = TestDb::new(backend).await;
        let store = db.store().await;
        let outer = store.begin().await.unwrap();
        // Holding the writer (on SQLite) by reading in it.
        outer.count_orgs().await.unwrap();
        let inner = tokio::time::timeout(Duration::from_secs(2), store.begin())
            .await
            .expect("refused at once, not after a wait");
        assert!(
            matches!(inner, Err(StoreError::NestedTransaction)),
            "{backend:?}"
        );
        // A write on the store itself from the same task is refused too.
        let org = organization("x", &[]);
        let write = tokio::time::timeout(Duration::from_secs(2), store.insert_org(&org))
            .await
            .expect("refused at once");
        assert!(matches!(write, Err(StoreError::NestedTransaction)));
        // Another task is not this one: it waits its turn and proceeds.
        let other = tokio::spawn({
            let store = store.clone();
            let org = org.clone();
            async move { store.insert_org(&org).await }
        });
        outer.commit().await.unwrap();
        other.await.unwrap().unwrap();
        // Once the transaction is over, this task may open another.
        let again = store.begin().await.unwrap();
        assert_eq!(again.count_orgs().await.unwrap(), 1, "{backend:?}");
        drop(again);
        let after_drop = store.begin().await;
        assert!(after_drop.is_ok(), "a dropped transaction is over too");
    }
}

#[tokio::test]
async fn writes_in_a_transaction_are_reported_by_a_later_read_or_by_commit() {
    for backend in backends() {
        let db = TestDb::new(backend).await;
        let store = db.store().await;
        let org = organization("a", &["a.example"]);
        store.insert_org(&org).await.unwrap();
        // A write and a read of it in one transaction: the read sees it.
        let tx = store.begin().await.unwrap();
        let mut b = org.clone();
        b.id = Uuid::now_v7();
        b.slug = "b".into();
        b.domains = vec![];
        tx.insert_org(&b).await.unwrap();
        assert_eq!(tx.count_orgs().await.unwrap(), 2, "{backend:?}");
        drop(tx);
        assert_eq!(store.count_orgs().await.unwrap(), 1, "rolled back");
    }
}

#[tokio::test]
async fn a_patch_that_lost_its_race_is_retried_and_one_that_named_a_version_is_412() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let (s, _) = scim(&app, "Acme").await;
        let (_, u) = s.post("/Users", entra_user("race@acme.example")).await;
        let path = format!("/Users/{}", u["id"].as_str().unwrap());
        // Another writer changed it since the client read version 1.
        s.patch(
            &path,
            json!([{"op": "replace", "path": "title", "value": "A"}]),
        )
        .await;
        let (st, _, _) = s
            .send_with(
                reqwest::Method::PATCH,
                &path,
                json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                       "Operations": [{"op": "replace", "path": "title", "value": "B"}]}),
                &[("if-match", "W/\"1\"")],
            )
            .await;
        assert_eq!(st, 412, "{backend:?}");
        let (_, now) = s.get(&path).await;
        assert_eq!(now["title"], "A");
        assert_eq!(now["meta"]["version"], "W/\"2\"");
    }
}

#[tokio::test]
async fn a_changed_work_email_voids_the_old_link_and_invites_the_new_address() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let (s, org) = scim(&app, "Acme").await;
        let (_, u) = s.post("/Users", entra_user("old@acme.example")).await;
        let path = format!("/Users/{}", u["id"].as_str().unwrap());
        let (st, _) = s
            .patch(
                &path,
                json!([{"op": "replace", "path": "emails[type eq \"work\"].value", "value": "new@acme.example"}]),
            )
            .await;
        assert_eq!(st, 200);
        let invs = app.store.list_invitations(org, None, 10).await.unwrap();
        assert_eq!(invs.len(), 2, "{backend:?}");
        assert_eq!(invs[0].email, "new@acme.example");
        assert!(invs[0].status.is_live());
        assert_eq!(invs[1].email, "old@acme.example");
        assert_eq!(invs[1].status, InvitationStatus::Revoked);
        let events = app.store.changes_since(org, 0, 10).await.unwrap();
        let kinds: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
        assert_eq!(
            kinds,
            ["created", "updated", "email_changed"],
            "{backend:?}"
        );
    }
}

#[tokio::test]
async fn group_changes_are_recorded_as_events_too() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let (s, org) = scim(&app, "Acme").await;
        let (_, u) = s.post("/Users", entra_user("m@acme.example")).await;
        let (_, g) = s
            .post(
                "/Groups",
                json!({"displayName": "G", "members": [{"value": u["id"]}]}),
            )
            .await;
        let path = format!("/Groups/{}", g["id"].as_str().unwrap());
        s.patch(
            &path,
            json!([{"op": "replace", "path": "displayName", "value": "H"}]),
        )
        .await;
        assert_eq!(s.delete(&path).await, 204);
        let events = app.store.changes_since(org, 0, 20).await.unwrap();
        let groups: Vec<&str> = events
            .iter()
            .filter(|e| e.resource_type == "Group")
            .map(|e| e.kind.as_str())
            .collect();
        assert_eq!(
            groups,
            ["created", "members_changed", "updated", "deleted"],
            "{backend:?}"
        );
    }
}

/// Records what a made-up kind of mail's completion is told.
#[derive(Default)]
struct Notices {
    delivered: std::sync::Mutex<Vec<Uuid>>,
    failed: std::sync::Mutex<Vec<(Uuid, String)>>,
}

#[async_trait]
impl MailCompletion for Notices {
    async fn delivered(
        &self,
        _tx: &dyn Transaction,
        refs: &[Uuid],
        _at: Timestamp,
    ) -> Result<(), StoreError> {
        self.delivered.lock().unwrap().extend_from_slice(refs);
        Ok(())
    }

    async fn failed(
        &self,
        _tx: &dyn Transaction,
        _org_id: Uuid,
        ref_id: Uuid,
        reason: &str,
    ) -> Result<(), StoreError> {
        self.failed
            .lock()
            .unwrap()
            .push((ref_id, reason.to_string()));
        Ok(())
    }
}

fn notice(org_id: Uuid, to: &str) -> OutboxRecord {
    let now = Timestamp::now();
    OutboxRecord {
        id: Uuid::now_v7(),
        org_id,
        kind: "notice".into(),
        ref_id: Some(Uuid::now_v7()),
        message_id: format!("notice-{}@onramp.test", Uuid::now_v7()),
        to_address: to.into(),
        to_name: None,
        subject: Some("A notice".into()),
        body_text: Some("Hello".into()),
        body_html: Some("<p>Hello</p>".into()),
        status: OutboxStatus::Queued,
        attempts: 0,
        next_attempt_at: now,
        last_error: None,
        created_at: now,
        sent_at: None,
    }
}

#[tokio::test]
async fn every_kind_of_mail_is_retried_delivered_once_and_completed_by_its_own_feature() {
    for backend in backends() {
        // Only this test's worker delivers: the app's own would take the
        // message to its own mailer.
        let db = TestDb::new(backend).await;
        let app = spawn_app_on(db, |c| c.mail.outbox.enabled = false).await;
        let (_, org) = scim(&app, "Acme").await;
        let mailer = Arc::new(MemoryMailer::new());
        let notices = Arc::new(Notices::default());
        let worker = OutboxWorker::new(
            app.store.clone(),
            mailer.clone(),
            OutboxSettings {
                base_backoff: Duration::from_millis(1),
                max_attempts: 3,
                ..OutboxSettings::default()
            },
        )
        .completing("notice", notices.clone());
        let ok = notice(org, "ok@acme.example");
        let bounce = notice(org, "bounce@acme.example");
        app.store.enqueue_mail(&ok).await.unwrap();
        // The first attempt fails and is retried; then it goes out once.
        mailer.fail_next_transiently(1);
        let mut rounds = 0;
        while mailer.sent_to("ok@acme.example").is_empty() && rounds < 100 {
            worker.run_once().await.unwrap();
            tokio::time::sleep(Duration::from_millis(5)).await;
            rounds += 1;
        }
        assert_eq!(mailer.sent_to("ok@acme.example").len(), 1, "{backend:?}");
        assert_eq!(*notices.delivered.lock().unwrap(), vec![ok.ref_id.unwrap()]);
        let stored = app
            .store
            .mail_for("notice", ok.ref_id.unwrap())
            .await
            .unwrap();
        assert_eq!(stored[0].status, OutboxStatus::Sent);
        assert!(stored[0].body_text.is_none(), "content wiped once sent");
        for _ in 0..3 {
            worker.run_once().await.unwrap();
        }
        assert_eq!(mailer.sent_to("ok@acme.example").len(), 1, "never twice");
        // A permanent failure fails the message and tells its feature.
        app.store.enqueue_mail(&bounce).await.unwrap();
        mailer.fail_next(1, MailError::Permanent("550 no such user".into()));
        worker.run_once().await.unwrap();
        let stored = app
            .store
            .mail_for("notice", bounce.ref_id.unwrap())
            .await
            .unwrap();
        assert_eq!(stored[0].status, OutboxStatus::Failed, "{backend:?}");
        assert_eq!(
            notices.failed.lock().unwrap()[0],
            (bounce.ref_id.unwrap(), "550 no such user".to_string())
        );
    }
}

#[tokio::test]
async fn invitation_calls_refuse_another_organizations_id() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let (s, org) = scim(&app, "Acme").await;
        let (_, other) = scim(&app, "Other").await;
        s.post("/Users", entra_user("own@acme.example")).await;
        let id = app.store.list_invitations(org, None, 1).await.unwrap()[0].id;
        let invitations = onramp::invitations::InvitationService::new(
            app.store.clone(),
            &app.address,
            "onramp <onramp@localhost>",
        );
        use onramp::invitations::InvitationError::NotFound;
        assert!(matches!(invitations.get(other, id).await, Err(NotFound(_))));
        assert!(matches!(
            invitations.resend(other, id).await,
            Err(NotFound(_))
        ));
        assert!(matches!(
            invitations.revoke(other, id).await,
            Err(NotFound(_))
        ));
        assert!(
            app.store
                .invitation_by_id(other, id)
                .await
                .unwrap()
                .is_none(),
            "{backend:?}"
        );
        // Nothing changed; the owner can.
        assert!(
            invitations
                .get(org, id)
                .await
                .unwrap()
                .record
                .status
                .is_live()
        );
        assert!(invitations.revoke(org, id).await.is_ok());
    }
}

#[tokio::test]
async fn scim_token_revocation_refuses_another_organizations_token() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let (a, _) = app.org_with_token("A").await;
        let (b, _) = app.org_with_token("B").await;
        let token = app.tenancy.list_scim_tokens(a).await.unwrap()[0].id;
        assert!(
            app.tenancy.revoke_scim_token(b, token).await.is_err(),
            "{backend:?}"
        );
        assert!(
            app.tenancy.list_scim_tokens(a).await.unwrap()[0]
                .revoked_at
                .is_none()
        );
        app.tenancy.revoke_scim_token(a, token).await.unwrap();
    }
}

#[tokio::test]
async fn a_root_search_treats_an_attribute_one_type_lacks_as_absent_for_it() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let (s, _) = scim(&app, "Acme").await;
        s.post("/Users", entra_user("root@acme.example")).await;
        s.post("/Groups", json!({"displayName": "root@acme.example"}))
            .await;
        let search = |filter: &str| json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"], "filter": filter});
        let (st, found) = s
            .post("/.search", search("userName eq \"root@acme.example\""))
            .await;
        assert_eq!(st, 200, "{backend:?}: {found}");
        assert_eq!(found["totalResults"], 1, "the user, not the group");
        let (_, found) = s
            .post(
                "/.search",
                search("not (userName eq \"root@acme.example\")"),
            )
            .await;
        assert_eq!(found["totalResults"], 1, "the group: it has no userName");
        let (_, found) = s
            .post(
                "/.search",
                search("displayName eq \"root@acme.example\" or userName pr"),
            )
            .await;
        assert_eq!(found["totalResults"], 2);
        let (st, _) = s.post("/.search", search("nosuch eq \"x\"")).await;
        assert_eq!(st, 400, "an attribute no type has is still an error");
    }
}

#[tokio::test]
async fn endpoint_names_in_any_case_and_with_a_trailing_slash_are_served() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let (s, _) = scim(&app, "Acme").await;
        let (st, u) = s.post("/users/", entra_user("case@acme.example")).await;
        assert_eq!(st, 201, "{backend:?}: {u}");
        let id = u["id"].as_str().unwrap();
        for path in [
            format!("/Users/{id}/"),
            format!("/USERS/{id}"),
            "/users?filter=userName%20eq%20%22case@acme.example%22".to_string(),
            "/serviceproviderconfig".to_string(),
            "/Schemas/".to_string(),
        ] {
            let (st, body) = s.get(&path).await;
            assert_eq!(st, 200, "{backend:?} {path}: {body}");
        }
        let (st, found) = s
            .post(
                "/Users/.SEARCH",
                json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
                       "filter": "userName eq \"case@acme.example\""}),
            )
            .await;
        assert_eq!(st, 200);
        assert_eq!(found["totalResults"], 1);
    }
}

#[tokio::test]
async fn a_request_waiting_for_its_commit_gives_back_its_place_at_the_gate() {
    for backend in backends() {
        let db = TestDb::new(backend).await;
        let store = db.store().await;
        let org = organization("a", &[]);
        // Another task's transaction writes the same organization and reads,
        // so it holds SQLite's writer, or PostgreSQL's lock on the slug.
        let (hold, release) = tokio::sync::oneshot::channel::<()>();
        let (held, is_held) = tokio::sync::oneshot::channel::<()>();
        let blocker = tokio::spawn({
            let (store, org) = (store.clone(), org.clone());
            async move {
                let tx = store.begin().await.unwrap();
                tx.insert_org(&org).await.unwrap();
                tx.count_orgs().await.unwrap();
                held.send(()).unwrap();
                let _ = release.await;
                drop(tx);
            }
        });
        is_held.await.unwrap();
        // A request of an organization whose gate has one place, writing.
        let gate = Arc::new(tokio::sync::Semaphore::new(1));
        let request = tokio::spawn({
            let (store, org, gate) = (store.clone(), org.clone(), gate.clone());
            onramp::work::within(async move {
                let permit = gate.clone().try_acquire_owned().unwrap();
                assert!(onramp::work::hold(gate, permit).is_none());
                let written = store.insert_org(&org).await;
                (written, onramp::work::holds_place())
            })
        });
        // While its write waits, the place is free for the next request.
        let freed = tokio::time::timeout(Duration::from_secs(10), async {
            while gate.available_permits() == 0 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await;
        assert!(
            freed.is_ok(),
            "{backend:?}: the place is given back while waiting"
        );
        assert!(!request.is_finished());
        hold.send(()).unwrap();
        blocker.await.unwrap();
        let (written, holds) = request.await.unwrap();
        written.unwrap();
        assert!(holds, "{backend:?}: taken again once committed");
        assert_eq!(
            gate.available_permits(),
            1,
            "{backend:?}: given back at the end"
        );
        assert_eq!(store.count_orgs().await.unwrap(), 1);
    }
}

#[tokio::test]
async fn an_organization_with_one_place_can_patch_one_user_many_times_at_once() {
    // Each PATCH waits for the user's lock and for its commit: with one
    // place at the gate, both waits must give it back, or the request
    // holding the lock could never take its place again.
    for backend in backends() {
        let db = TestDb::new(backend).await;
        let app = spawn_app_on(db, |c| {
            c.http.tenant_concurrency = 1;
            c.http.tenant_queue_ms = 30_000;
        })
        .await;
        let (s, _) = scim(&app, "Acme").await;
        let (_, u) = s.post("/Users", entra_user("one@acme.example")).await;
        let path = format!("/Users/{}", u["id"].as_str().unwrap());
        let patches = (0..24).map(|i| {
            let (s, path) = (&s, path.clone());
            async move {
                s.patch(
                    &path,
                    json!([{"op": "replace", "path": "title", "value": format!("T{i}")}]),
                )
                .await
                .0
            }
        });
        let statuses = tokio::time::timeout(
            Duration::from_secs(60),
            futures_util::future::join_all(patches),
        )
        .await
        .expect("no request waits for ever");
        assert!(
            statuses.iter().all(|s| *s == 200),
            "{backend:?} {statuses:?}"
        );
        let (_, now) = s.get(&path).await;
        assert_eq!(now["meta"]["version"], "W/\"25\"", "{backend:?}");
    }
}
