//! Graceful shutdown: a request in flight when shutdown begins still gets
//! its answer; new connections are refused afterwards.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{Backend, poll, spawn_app};

#[tokio::test]
async fn an_in_flight_request_finishes_after_shutdown_begins() {
    let mut app = spawn_app(Backend::Sqlite).await;
    let (org, token) = app.org_with_token("Acme").await;
    let addr = app.address.trim_start_matches("http://").to_string();
    let body = br#"{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"late@acme.example"}"#;
    let (first, rest) = body.split_at(20);

    let mut stream = TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST /scim/v2/Users HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/scim+json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(first).await.unwrap();
    stream.flush().await.unwrap();
    // The request is in the server once its token has been used (the
    // first use is recorded); then shutdown begins.
    poll("the request reached the server", || async {
        app.tenancy.list_scim_tokens(org).await.unwrap()[0]
            .last_used_at
            .is_some()
    })
    .await;
    let server = app.begin_shutdown().expect("running");
    poll("the server stopped accepting", || async {
        TcpStream::connect(&addr).await.is_err()
    })
    .await;
    stream.write_all(rest).await.unwrap();
    let mut response = String::new();
    tokio::time::timeout(
        Duration::from_secs(10),
        stream.read_to_string(&mut response),
    )
    .await
    .expect("answered in time")
    .unwrap();
    assert!(response.starts_with("HTTP/1.1 201"), "{response}");
    server.await.unwrap().unwrap();
    assert!(
        TcpStream::connect(&addr).await.is_err(),
        "no longer accepting"
    );
}
