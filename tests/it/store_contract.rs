//! The store contract: the same behaviour on every backend.

use onramp::store::invitations::{InvitationRecord, InvitationStatus};
use onramp::store::scim::ChangeKind;
use onramp::store::{OrgSettings, Organization, ScimTokenRecord, StoreError, Timestamp};
use uuid::Uuid;

use crate::helpers::{TestDb, backends};

fn org(name: &str, slug: &str, domains: &[&str]) -> Organization {
    Organization {
        id: Uuid::now_v7(),
        name: name.into(),
        slug: slug.into(),
        domains: domains.iter().map(|d| d.to_string()).collect(),
        created_at: Timestamp::now(),
        settings: OrgSettings::default(),
    }
}

fn token(org_id: Uuid, hash: u8) -> ScimTokenRecord {
    ScimTokenRecord {
        id: Uuid::now_v7(),
        org_id,
        label: "entra".into(),
        hash: vec![hash; 32],
        prefix: "scim_abc".into(),
        created_at: Timestamp::now(),
        last_used_at: None,
        revoked_at: None,
    }
}

#[tokio::test]
async fn organizations_round_trip_with_their_domains() {
    for backend in backends() {
        let db = TestDb::new(backend).await;
        let store = db.store().await;
        let a = org("Acme", "acme", &["acme.example", "acme.test"]);
        store.insert_org(&a).await.unwrap();
        assert_eq!(
            store.org_by_id(a.id).await.unwrap(),
            Some(a.clone()),
            "{backend:?}"
        );
        assert_eq!(store.org_by_id(Uuid::now_v7()).await.unwrap(), None);
        assert_eq!(store.count_orgs().await.unwrap(), 1);
        assert_eq!(store.list_orgs().await.unwrap(), vec![a]);
    }
}

#[tokio::test]
async fn a_taken_slug_or_domain_is_a_named_conflict() {
    for backend in backends() {
        let db = TestDb::new(backend).await;
        let store = db.store().await;
        store
            .insert_org(&org("Acme", "acme", &["acme.example"]))
            .await
            .unwrap();
        match store.insert_org(&org("Acme 2", "acme", &[])).await {
            Err(StoreError::Conflict { constraint }) => {
                assert_eq!(constraint, "organizations_slug_key")
            }
            other => panic!("{backend:?}: {other:?}"),
        }
        // In a transaction the conflict may surface at commit.
        let tx = store.begin().await.unwrap();
        let outcome = match tx
            .insert_org(&org("Other", "other", &["acme.example"]))
            .await
        {
            Ok(()) => tx.commit().await,
            Err(e) => Err(e),
        };
        match outcome {
            Err(StoreError::Conflict { constraint }) => {
                assert_eq!(constraint, "organization_domains_domain_key")
            }
            other => panic!("{backend:?}: {other:?}"),
        }
        // The failed transaction left nothing behind.
        assert_eq!(store.count_orgs().await.unwrap(), 1, "{backend:?}");
    }
}

#[tokio::test]
async fn a_transaction_commits_all_or_nothing() {
    for backend in backends() {
        let db = TestDb::new(backend).await;
        let store = db.store().await;
        let tx = store.begin().await.unwrap();
        tx.insert_org(&org("A", "a", &[])).await.unwrap();
        tx.insert_org(&org("B", "b", &[])).await.unwrap();
        drop(tx);
        assert_eq!(
            store.count_orgs().await.unwrap(),
            0,
            "{backend:?}: dropped tx rolls back"
        );
        let tx = store.begin().await.unwrap();
        tx.insert_org(&org("A", "a", &[])).await.unwrap();
        tx.insert_org(&org("B", "b", &[])).await.unwrap();
        tx.commit().await.unwrap();
        assert_eq!(store.count_orgs().await.unwrap(), 2);
    }
}

fn invitation(org_id: Uuid) -> InvitationRecord {
    let now = Timestamp::now();
    InvitationRecord {
        id: Uuid::now_v7(),
        org_id,
        user_id: Uuid::now_v7(),
        email: "ada@acme.example".into(),
        recipient_name: None,
        token_hash: Some(Uuid::new_v4().as_bytes().to_vec()),
        status: InvitationStatus::Pending,
        reason: None,
        sends: 1,
        created_at: now,
        updated_at: now,
        expires_at: now,
        sent_at: None,
        accepted_at: None,
    }
}

/// SQLite sends writes whose results nobody waits for with the transaction's
/// next trip, often its COMMIT: a failure there must undo the whole
/// transaction, and must not leave the write lock held against the next
/// writer — of this process or of another one.
#[tokio::test]
async fn a_write_failing_at_commit_undoes_the_transaction_and_frees_the_lock() {
    for backend in backends() {
        let db = TestDb::new(backend).await;
        let store = db.store().await;
        let a = org("A", "a", &[]);
        store.insert_org(&a).await.unwrap();
        let inv = invitation(a.id);
        let tx = store.begin().await.unwrap();
        tx.record_change(
            a.id,
            "User",
            inv.user_id,
            &[ChangeKind::Created],
            Timestamp::now(),
            1,
        )
        .await
        .unwrap();
        tx.insert_invitation(&inv).await.unwrap();
        // The same id again: PostgreSQL refuses it now, SQLite at COMMIT.
        let outcome = match tx.insert_invitation(&inv).await {
            Ok(()) => tx.commit().await,
            Err(e) => Err(e),
        };
        assert!(
            matches!(outcome, Err(StoreError::Conflict { .. })),
            "{backend:?}: {outcome:?}"
        );
        assert_eq!(store.resource_count(a.id, "User").await.unwrap(), 0);
        assert!(
            store
                .invitation_by_id(a.id, inv.id)
                .await
                .unwrap()
                .is_none()
        );

        // Another process (its own connections) can write at once, and so
        // can this one.
        let other = db.store().await;
        let tx = other.begin().await.unwrap();
        tx.insert_invitation(&inv).await.unwrap();
        tx.commit().await.unwrap();
        let tx = store.begin().await.unwrap();
        tx.record_change(
            a.id,
            "User",
            inv.user_id,
            &[ChangeKind::Created],
            Timestamp::now(),
            1,
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
        assert_eq!(store.resource_count(a.id, "User").await.unwrap(), 1);
        assert!(
            store
                .invitation_by_id(a.id, inv.id)
                .await
                .unwrap()
                .is_some()
        );
    }
}

/// Transactions that only write are committed in groups on SQLite: one
/// that fails (here on a taken token hash) fails alone, the others commit.
#[tokio::test]
async fn concurrent_transactions_commit_independently_when_one_fails() {
    for backend in backends() {
        let db = TestDb::new(backend).await;
        let store = db.store().await;
        let a = org("A", "a", &[]);
        store.insert_org(&a).await.unwrap();
        let mut invs: Vec<InvitationRecord> = (0..32).map(|_| invitation(a.id)).collect();
        invs[6].token_hash = invs[5].token_hash.clone();
        // Each in a task of its own, as requests are: one task has one
        // transaction open at a time.
        let outcomes = futures_util::future::join_all(invs.iter().cloned().map(|inv| {
            let store = store.clone();
            tokio::spawn(async move {
                let tx = store.begin().await?;
                tx.insert_invitation(&inv).await?;
                tx.record_change(
                    a.id,
                    "User",
                    inv.user_id,
                    &[ChangeKind::Created],
                    Timestamp::now(),
                    1,
                )
                .await?;
                tx.commit().await
            })
        }))
        .await
        .into_iter()
        .map(|joined| joined.expect("the task ran"))
        .collect::<Vec<_>>();
        let failed: Vec<usize> = (0..32).filter(|&i| outcomes[i].is_err()).collect();
        assert!(
            failed == vec![5] || failed == vec![6],
            "{backend:?}: {failed:?} {outcomes:?}"
        );
        assert!(matches!(
            outcomes[failed[0]],
            Err(StoreError::Conflict { .. })
        ));
        assert_eq!(store.resource_count(a.id, "User").await.unwrap(), 31);
        for (i, inv) in invs.iter().enumerate() {
            let stored = store.invitation_by_id(a.id, inv.id).await.unwrap();
            assert_eq!(
                stored.is_some(),
                i != failed[0],
                "{backend:?}: invitation {i}"
            );
        }
    }
}

/// A transaction dropped after it has written (a request that failed half
/// way) is rolled back at once, not when this process next writes.
#[tokio::test]
async fn a_dropped_transaction_does_not_hold_the_lock_against_another_process() {
    for backend in backends() {
        let db = TestDb::new(backend).await;
        let store = db.store().await;
        let tx = store.begin().await.unwrap();
        tx.insert_org(&org("A", "a", &[])).await.unwrap();
        drop(tx);
        let other = db.store().await;
        let tx = other.begin().await.unwrap();
        tx.insert_org(&org("B", "b", &[])).await.unwrap();
        tx.commit().await.unwrap();
        assert_eq!(store.count_orgs().await.unwrap(), 1, "{backend:?}");
    }
}

#[tokio::test]
async fn tokens_are_found_by_hash_listed_by_org_and_revoked_once() {
    for backend in backends() {
        let db = TestDb::new(backend).await;
        let store = db.store().await;
        let a = org("Acme", "acme", &[]);
        let b = org("Beta", "beta", &[]);
        store.insert_org(&a).await.unwrap();
        store.insert_org(&b).await.unwrap();
        let ta = token(a.id, 1);
        let tb = token(b.id, 2);
        store.insert_scim_token(&ta).await.unwrap();
        store.insert_scim_token(&tb).await.unwrap();
        assert_eq!(
            store.scim_token_by_hash(&[1; 32]).await.unwrap(),
            Some(ta.clone()),
            "{backend:?}"
        );
        assert_eq!(store.scim_token_by_hash(&[3; 32]).await.unwrap(), None);
        assert_eq!(
            store.list_scim_tokens(a.id).await.unwrap(),
            vec![ta.clone()]
        );
        let at = Timestamp::now();
        assert!(store.revoke_scim_token(a.id, ta.id, at).await.unwrap());
        assert!(
            !store.revoke_scim_token(a.id, ta.id, at).await.unwrap(),
            "revoking twice is a no-op"
        );
        let revoked = store.scim_token_by_hash(&[1; 32]).await.unwrap().unwrap();
        assert_eq!(revoked.revoked_at, Some(at));
        store.touch_scim_token(tb.id, at).await.unwrap();
        assert_eq!(
            store
                .scim_token_by_hash(&[2; 32])
                .await
                .unwrap()
                .unwrap()
                .last_used_at,
            Some(at)
        );
        match store.insert_scim_token(&token(Uuid::now_v7(), 9)).await {
            Err(StoreError::Conflict { .. }) => {}
            other => panic!("{backend:?}: a token of no organization must be refused: {other:?}"),
        }
    }
}

#[tokio::test]
async fn timestamps_keep_microseconds_on_every_backend() {
    for backend in backends() {
        let db = TestDb::new(backend).await;
        let store = db.store().await;
        let mut o = org("Acme", "acme", &[]);
        o.created_at = Timestamp::from_micros(1_700_000_000_123_456);
        store.insert_org(&o).await.unwrap();
        assert_eq!(
            store.org_by_id(o.id).await.unwrap().unwrap().created_at,
            o.created_at
        );
    }
}

#[tokio::test]
async fn migrations_are_idempotent() {
    for backend in backends() {
        let db = TestDb::new(backend).await;
        let store = db.store().await;
        store.migrate().await.unwrap();
        store.ping().await.unwrap();
    }
}
