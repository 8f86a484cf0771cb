//! Graceful shutdown: a request in flight when shutdown begins still gets
//! its answer; new connections are refused afterwards.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{Backend, spawn_app};

#[tokio::test]
async fn an_in_flight_request_finishes_after_shutdown_begins() {
    let mut app = spawn_app(Backend::Sqlite).await;
    let (_, token) = app.org_with_token("Acme").await;
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
    // Let the server start reading the body, then begin shutdown.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let server = app.begin_shutdown().expect("running");
    tokio::time::sleep(Duration::from_millis(200)).await;
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
