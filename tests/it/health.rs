//! Health, readiness, metrics, limits and unknown routes.

use serde_json::Value;

use crate::helpers::{Backend, backends, spawn_app};

#[tokio::test]
async fn healthz_and_readyz_answer_while_the_database_is_up() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let h = app.client.get(app.url("/healthz")).send().await.unwrap();
        assert_eq!(h.status(), 200);
        assert!(h.headers().contains_key("x-request-id"));
        let r = app.client.get(app.url("/readyz")).send().await.unwrap();
        assert_eq!(r.status(), 200);
    }
}

#[tokio::test]
async fn readyz_fails_when_the_database_is_gone() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        app.store.close().await;
        let r = app.client.get(app.url("/readyz")).send().await.unwrap();
        assert_eq!(r.status(), 503, "{backend:?}");
        assert_eq!(r.headers()["content-type"], "application/problem+json");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["status"], 503);
        assert_eq!(body["title"], "Not ready");
        // Liveness is unaffected.
        let h = app.client.get(app.url("/healthz")).send().await.unwrap();
        assert_eq!(h.status(), 200);
    }
}

#[tokio::test]
async fn a_request_id_sent_by_the_client_is_echoed_and_a_bad_one_replaced() {
    let app = spawn_app(Backend::Sqlite).await;
    let r = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-request-id"], "abc-123");
    let r = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "a b\"c")
        .send()
        .await
        .unwrap();
    assert_ne!(r.headers()["x-request-id"], "a b\"c");
}

#[tokio::test]
async fn metrics_count_requests_by_route_template_and_show_the_pool() {
    let app = spawn_app(Backend::Sqlite).await;
    app.client.get(app.url("/healthz")).send().await.unwrap();
    app.client
        .get(app.url("/scim/v2/Users/123"))
        .send()
        .await
        .unwrap();
    let text = app.get_text("/metrics").await;
    assert!(
        text.contains(r#"onramp_http_requests_total{method="GET",route="/healthz",status="200"}"#),
        "{text}"
    );
    assert!(
        text.contains("onramp_http_request_duration_seconds_bucket"),
        "{text}"
    );
    assert!(text.contains("onramp_db_pool_max_connections 4"), "{text}");
    assert!(text.contains("onramp_mail_outbox_queued 0"), "{text}");
    assert!(
        !text.contains("/scim/v2/Users/123"),
        "raw paths must not become labels"
    );
}

#[tokio::test]
async fn metrics_show_the_mail_waiting_in_the_outbox() {
    let db = crate::helpers::TestDb::new(Backend::Sqlite).await;
    let app = crate::helpers::spawn_app_on(db, |c| c.mail.outbox.enabled = false).await;
    let (_, token) = app.org_with_token("Acme").await;
    let res = app
        .client
        .post(app.url("/scim/v2/Users"))
        .bearer_auth(&token)
        .json(&serde_json::json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": "queued@acme.example",
            "emails": [{"type": "work", "value": "queued@acme.example"}]
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let text = app.get_text("/metrics").await;
    assert!(text.contains("onramp_mail_outbox_queued 1"), "{text}");
}

#[tokio::test]
async fn unknown_routes_get_404_problems_and_scim_ones_scim_errors() {
    let app = spawn_app(Backend::Sqlite).await;
    let r = app.client.get(app.url("/nope")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["status"], 404);
    assert_eq!(body["title"], "Not Found");
    let (_, token) = app.org_with_token("Acme").await;
    let r = app
        .client
        .get(app.url("/scim/v2/Nope"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(r.headers()["content-type"], "application/scim+json");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["status"], "404");
}

#[tokio::test]
async fn an_oversized_body_gets_413() {
    let app = spawn_app(Backend::Sqlite).await;
    let (_, token) = app.org_with_token("Acme").await;
    let big = format!("{{\"x\":\"{}\"}}", "a".repeat(1024 * 1024 + 10));
    let r = app
        .client
        .post(app.url("/scim/v2/Users"))
        .bearer_auth(&token)
        .header("content-type", "application/scim+json")
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["status"], "413");
}
