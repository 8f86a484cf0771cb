//! SCIM bearer-token authentication.

use serde_json::Value;

use crate::helpers::{backends, spawn_app};

const SPC: &str = "/scim/v2/ServiceProviderConfig";

async fn assert_unauthorized(res: reqwest::Response) {
    assert_eq!(res.status(), 401);
    assert_eq!(res.headers()["content-type"], "application/scim+json");
    let challenge = res.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(challenge.starts_with("Bearer"), "{challenge}");
    let body: Value = res.json().await.unwrap();
    assert_eq!(
        body["schemas"][0],
        "urn:ietf:params:scim:api:messages:2.0:Error"
    );
    assert_eq!(body["status"], "401");
    assert!(body["detail"].as_str().is_some_and(|d| !d.is_empty()));
}

#[tokio::test]
async fn a_valid_token_reaches_the_service_provider_config() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let (_, token) = app.org_with_token("Acme").await;
        let res = app
            .client
            .get(app.url(SPC))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{backend:?}");
        assert_eq!(res.headers()["content-type"], "application/scim+json");
        let body: Value = res.json().await.unwrap();
        assert_eq!(
            body["schemas"][0],
            "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"
        );
    }
}

#[tokio::test]
async fn missing_malformed_wrong_and_revoked_tokens_get_401_in_scim_format() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let (org, token) = app.org_with_token("Acme").await;

        assert_unauthorized(app.client.get(app.url(SPC)).send().await.unwrap()).await;
        for header in [
            "Basic dXNlcjpwYXNz",
            "Bearer",
            "Bearer a b",
            "token",
            "Bearer \u{7f}",
        ] {
            let res = app
                .client
                .get(app.url(SPC))
                .header("authorization", header)
                .send()
                .await;
            if let Ok(res) = res {
                assert_unauthorized(res).await;
            }
        }
        let mut forged = token.clone();
        forged.replace_range(10..11, if &token[10..11] == "A" { "B" } else { "A" });
        assert_unauthorized(
            app.client
                .get(app.url(SPC))
                .bearer_auth(&forged)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_unauthorized(
            app.client
                .get(app.url(SPC))
                .bearer_auth("scim_nonsense")
                .send()
                .await
                .unwrap(),
        )
        .await;

        let tokens = app.tenancy.list_scim_tokens(org).await.unwrap();
        app.tenancy
            .revoke_scim_token(org, tokens[0].id)
            .await
            .unwrap();
        assert_unauthorized(
            app.client
                .get(app.url(SPC))
                .bearer_auth(&token)
                .send()
                .await
                .unwrap(),
        )
        .await;
    }
}

#[tokio::test]
async fn each_token_speaks_for_its_own_organization_only() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let (a, token_a) = app.org_with_token("Org A").await;
        let (b, token_b) = app.org_with_token("Org B").await;
        let pa = app
            .tenancy
            .authenticate_scim(&token_a)
            .await
            .unwrap()
            .unwrap();
        let pb = app
            .tenancy
            .authenticate_scim(&token_b)
            .await
            .unwrap()
            .unwrap();
        assert_eq!((pa.org_id, pb.org_id), (a, b));
        // Revoking B's token leaves A's working.
        let tb = app.tenancy.list_scim_tokens(b).await.unwrap();
        app.tenancy.revoke_scim_token(b, tb[0].id).await.unwrap();
        let ok = app
            .client
            .get(app.url(SPC))
            .bearer_auth(&token_a)
            .send()
            .await
            .unwrap();
        assert_eq!(ok.status(), 200);
        let gone = app
            .client
            .get(app.url(SPC))
            .bearer_auth(&token_b)
            .send()
            .await
            .unwrap();
        assert_eq!(gone.status(), 401);
    }
}

#[tokio::test]
async fn token_use_is_recorded_without_a_write_per_request() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let (org, token) = app.org_with_token("Acme").await;
        assert!(
            app.tenancy.list_scim_tokens(org).await.unwrap()[0]
                .last_used_at
                .is_none()
        );
        app.client
            .get(app.url(SPC))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        let first = app.tenancy.list_scim_tokens(org).await.unwrap()[0].last_used_at;
        assert!(first.is_some());
        app.client
            .get(app.url(SPC))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        let second = app.tenancy.list_scim_tokens(org).await.unwrap()[0].last_used_at;
        assert_eq!(first, second, "a second use within a minute does not write");
    }
}

#[tokio::test]
async fn me_is_not_implemented_in_scim_format() {
    let app = spawn_app(crate::helpers::Backend::Sqlite).await;
    let (_, token) = app.org_with_token("Acme").await;
    let res = app
        .client
        .get(app.url("/scim/v2/Me"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 501);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["status"], "501");
}

#[tokio::test]
async fn a_token_revoked_by_another_process_stops_working_within_the_cache_time() {
    for backend in backends() {
        let db = crate::helpers::TestDb::new(backend).await;
        let app = crate::helpers::spawn_app_on(db, |c| c.http.tenancy_cache_ms = 300).await;
        let (org, token) = app.org_with_token("Acme").await;
        let status = || async {
            app.client
                .get(app.url(SPC))
                .bearer_auth(&token)
                .send()
                .await
                .unwrap()
                .status()
        };
        assert_eq!(status().await, 200, "{backend:?}");
        // The CLI or another instance: its own service, sharing only the database.
        let elsewhere = onramp::tenancy::TenancyService::new(app.store.clone());
        let id = elsewhere.list_scim_tokens(org).await.unwrap()[0].id;
        elsewhere.revoke_scim_token(org, id).await.unwrap();
        crate::helpers::poll("the cached entry expired", || async {
            status().await == 401
        })
        .await;
    }
}
