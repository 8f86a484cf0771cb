//! The store contract: the same behaviour on every backend.

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
        let tx = store.begin().await.unwrap();
        match tx
            .insert_org(&org("Other", "other", &["acme.example"]))
            .await
        {
            Err(StoreError::Conflict { constraint }) => {
                assert_eq!(constraint, "organization_domains_domain_key")
            }
            other => panic!("{backend:?}: {other:?}"),
        }
        drop(tx);
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
        assert!(store.revoke_scim_token(ta.id, at).await.unwrap());
        assert!(
            !store.revoke_scim_token(ta.id, at).await.unwrap(),
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
