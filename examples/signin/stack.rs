//! The server under test for the sign-in benchmark: `examples/bench`'s
//! [`Server`] with an organization that owns [`DOMAIN`], a SCIM token, and
//! an SSO connection to the given issuer, all made by the binary's own CLI
//! before it serves.

use std::path::Path;

use anyhow::{Context, Result};

use crate::server::{Backend, Server};

/// The email domain the organization owns (home-realm discovery at `/login`).
pub const DOMAIN: &str = "acme.example";
/// The organization's client at the provider.
pub const CLIENT_ID: &str = "onramp-signin-bench";
pub const CLIENT_SECRET: &str = "signin bench secret";

/// Creates the database and the organization, connects it to `issuer`,
/// starts the server and waits until `/healthz` answers.
pub async fn start(bin: &Path, backend: Backend, pg_url: &str, issuer: &str) -> Result<Server> {
    Server::start_with(bin, backend, pg_url, &[], |server| {
        let org = server.cli(
            bin,
            &["org", "create", "--name", "Acme Corp", "--domain", DOMAIN],
        )?;
        let org: serde_json::Value = serde_json::from_str(&org).context("org create output")?;
        let org = org["id"].as_str().context("org create printed no id")?;
        let token = server
            .cli(bin, &["scim-token", "create", "--org", org])?
            .trim()
            .to_string();
        let secret_file = server.dir().join("client-secret");
        std::fs::write(&secret_file, CLIENT_SECRET)?;
        let secret_file = secret_file.display().to_string();
        let sso = [
            "sso",
            "set",
            "--org",
            org,
            "--issuer",
            issuer,
            "--client-id",
            CLIENT_ID,
            "--client-secret-file",
            &secret_file,
        ];
        server.cli(bin, &sso)?;
        Ok(token)
    })
    .await
}
