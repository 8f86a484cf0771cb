//! The real `onramp` binary, run in a temporary directory.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_onramp");

fn onramp(dir: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .output()
        .expect("runs")
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).expect("utf-8")
}

#[test]
fn org_and_token_commands_work_end_to_end_on_the_default_sqlite_file() {
    let dir = tempfile::tempdir().unwrap();
    let org: Value = serde_json::from_str(&ok(&onramp(
        dir.path(),
        &[
            "org",
            "create",
            "--name",
            "Acme Corp",
            "--domain",
            "Acme.Example",
        ],
    )))
    .unwrap();
    assert_eq!(org["name"], "Acme Corp");
    assert_eq!(org["slug"], "acme-corp");
    assert_eq!(org["domains"][0], "acme.example");
    let id = org["id"].as_str().unwrap().to_string();
    assert!(
        dir.path().join("data/onramp.db").exists(),
        "the default database is created"
    );

    let token = ok(&onramp(
        dir.path(),
        &["scim-token", "create", "--org", &id, "--label", "entra"],
    ));
    let token = token.trim();
    assert!(token.starts_with("scim_") && token.len() > 40, "{token}");

    let list: Value = serde_json::from_str(&ok(&onramp(
        dir.path(),
        &["scim-token", "list", "--org", &id],
    )))
    .unwrap();
    assert_eq!(list[0]["label"], "entra");
    assert!(
        !list.to_string().contains(token),
        "the secret is never listed"
    );
    let token_id = list[0]["id"].as_str().unwrap().to_string();

    let orgs: Value = serde_json::from_str(&ok(&onramp(dir.path(), &["org", "list"]))).unwrap();
    assert_eq!(orgs.as_array().unwrap().len(), 1);

    // Another organization cannot revoke it.
    let other: Value = serde_json::from_str(&ok(&onramp(
        dir.path(),
        &["org", "create", "--name", "Other Corp"],
    )))
    .unwrap();
    let other_id = other["id"].as_str().unwrap().to_string();
    let foreign = onramp(
        dir.path(),
        &["scim-token", "revoke", &token_id, "--org", &other_id],
    );
    assert!(!foreign.status.success(), "another organization's token");
    ok(&onramp(
        dir.path(),
        &["scim-token", "revoke", &token_id, "--org", &id],
    ));
    let again = onramp(
        dir.path(),
        &["scim-token", "revoke", &token_id, "--org", &id],
    );
    assert!(!again.status.success());
    let bad_org = onramp(
        dir.path(),
        &[
            "scim-token",
            "create",
            "--org",
            "00000000-0000-0000-0000-000000000000",
        ],
    );
    assert!(!bad_org.status.success());
    assert!(String::from_utf8_lossy(&bad_org.stderr).contains("no organization"));
}

#[test]
fn config_print_shows_the_effective_config_with_secrets_redacted() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .args(["config", "print"])
        .current_dir(dir.path())
        .env("ONRAMP_MAIL__SMTP__PASSWORD", "s3cret-pw")
        .env("ONRAMP_HTTP__BIND", "0.0.0.0:9999")
        .output()
        .unwrap();
    let text = ok(&out);
    assert!(text.contains("bind = \"0.0.0.0:9999\""), "{text}");
    assert!(!text.contains("s3cret-pw"));
    assert!(text.contains("[redacted]"));
}

#[test]
fn an_unknown_key_stops_the_binary_with_the_key_named() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("bad.toml"), "[database]\nurll = \"x\"\n").unwrap();
    let out = onramp(dir.path(), &["--config", "bad.toml", "migrate"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("urll"));
}

#[test]
fn migrate_creates_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let out = onramp(dir.path(), &["migrate"]);
    ok(&out);
    assert!(dir.path().join("data/onramp.db").exists());
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn the_served_binary_answers_scim_with_a_token_made_by_the_cli_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let org: Value = serde_json::from_str(&ok(&onramp(
        dir.path(),
        &["org", "create", "--name", "Acme"],
    )))
    .unwrap();
    let token = ok(&onramp(
        dir.path(),
        &["scim-token", "create", "--org", org["id"].as_str().unwrap()],
    ));
    let port = free_port();
    let mut server = Server(
        Command::new(BIN)
            .current_dir(dir.path())
            .env("ONRAMP_HTTP__BIND", format!("127.0.0.1:{port}"))
            .env("ONRAMP_LOG__FORMAT", "json")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let client = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    let mut up = false;
    for _ in 0..200 {
        if client.get(format!("{base}/healthz")).send().await.is_ok() {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(up, "the server came up");
    let res = client
        .get(format!("{base}/scim/v2/ServiceProviderConfig"))
        .bearer_auth(token.trim())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);

    let pid = server.0.id().to_string();
    let killed = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(killed.success());
    let status = tokio::task::spawn_blocking(move || {
        let status = server.0.wait().unwrap();
        let mut stderr = String::new();
        use std::io::Read;
        server
            .0
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut stderr)
            .unwrap();
        (status, stderr)
    })
    .await
    .unwrap();
    assert!(status.0.success(), "exits cleanly on SIGTERM: {}", status.1);
    assert!(
        status.1.contains("\"request_id\""),
        "JSON logs carry request ids: {}",
        status.1
    );
}

/// Runs the binary off the async runtime (the test provider lives on it).
async fn onramp_async(dir: &Path, args: &[&str]) -> Output {
    let dir = dir.to_path_buf();
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        onramp(&dir, &args)
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sso_set_show_and_check_keep_the_secret_sealed_and_say_which_step_failed() {
    let idp = crate::idp::TestIdp::start().await;
    let dir = tempfile::tempdir().unwrap();
    let org: Value = serde_json::from_str(&ok(&onramp_async(
        dir.path(),
        &[
            "org",
            "create",
            "--name",
            "Acme",
            "--domain",
            "acme.example",
        ],
    )
    .await))
    .unwrap();
    let id = org["id"].as_str().unwrap().to_string();
    let secret = "very-secret-client-secret-4711";
    let secret_file = dir.path().join("client-secret");
    std::fs::write(&secret_file, format!("{secret}\n")).unwrap();
    let secret_path = secret_file.to_str().unwrap();

    let set = onramp_async(
        dir.path(),
        &[
            "sso",
            "set",
            "--org",
            &id,
            "--issuer",
            &idp.issuer(),
            "--client-id",
            "onramp",
            "--client-secret-file",
            secret_path,
            "--match",
            "claim:oid=externalId",
        ],
    )
    .await;
    let printed: Value = serde_json::from_str(&ok(&set)).unwrap();
    let stderr = String::from_utf8_lossy(&set.stderr);
    assert_eq!(printed["client_secret"], "[redacted]");
    assert_eq!(printed["match"], "claim:oid=externalId");
    assert_eq!(printed["scopes"], "openid email profile");
    assert_eq!(
        printed["redirect_uri"],
        "http://127.0.0.1:8080/sso/callback"
    );
    assert_eq!(
        printed["backchannel_logout_uri"],
        "http://127.0.0.1:8080/sso/backchannel-logout"
    );
    assert!(stderr.contains("/sso/callback"), "{stderr}");
    assert!(!stderr.contains(secret) && !printed.to_string().contains(secret));

    let show = ok(&onramp_async(dir.path(), &["sso", "show", "--org", &id]).await);
    assert!(
        show.contains("[redacted]") && !show.contains(secret),
        "{show}"
    );
    // Sealed at rest, under a key generated into the data folder.
    let db = std::fs::read(dir.path().join("data/onramp.db")).unwrap();
    assert!(
        !db.windows(secret.len()).any(|w| w == secret.as_bytes()),
        "the client secret is not stored in the clear"
    );
    let key = dir.path().join("data/secret.key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "the key file is private: {mode:o}");
    }

    let check = onramp_async(dir.path(), &["sso", "check", "--org", &id]).await;
    let report: Value = serde_json::from_str(&ok(&check)).unwrap();
    assert_eq!(report["issuer"], idp.issuer());
    assert!(
        report["jwks_uri"]
            .as_str()
            .unwrap()
            .starts_with(&idp.issuer())
    );
    assert!(!report["keys"].as_array().unwrap().is_empty(), "{report}");

    // Refused settings, each with its reason.
    for (args, why) in [
        (vec!["--issuer", "http://idp.example.com"], "https"),
        (
            vec![
                "--issuer",
                "https://login.microsoftonline.com/common/v2.0",
                "--trust-email",
            ],
            "multi-tenant",
        ),
        (
            vec!["--issuer", "https://idp.example.com", "--match", "phone"],
            "match",
        ),
    ] {
        let mut all = vec![
            "sso",
            "set",
            "--org",
            &id,
            "--client-id",
            "x",
            "--client-secret-file",
            secret_path,
        ];
        all.extend(args.iter().copied());
        let out = onramp_async(dir.path(), &all).await;
        assert!(!out.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(why), "{args:?}: {err}");
    }
    let missing = onramp_async(
        dir.path(),
        &[
            "sso",
            "set",
            "--org",
            &id,
            "--issuer",
            "https://idp.example.com",
            "--client-id",
            "x",
            "--client-secret-file",
            "/no/such/file",
        ],
    )
    .await;
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains("cannot read the client secret file")
    );

    // A provider that is not there: check fails and names the step.
    let dead = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    ok(&onramp_async(
        dir.path(),
        &[
            "sso",
            "set",
            "--org",
            &id,
            "--issuer",
            &format!("http://127.0.0.1:{dead}"),
            "--client-id",
            "x",
            "--client-secret-file",
            secret_path,
        ],
    )
    .await);
    let failed = onramp_async(dir.path(), &["sso", "check", "--org", &id]).await;
    assert!(!failed.status.success());
    let err = String::from_utf8_lossy(&failed.stderr);
    assert!(err.contains("discovery failed"), "{err}");

    let other: Value = serde_json::from_str(&ok(&onramp_async(
        dir.path(),
        &["org", "create", "--name", "NoSso"],
    )
    .await))
    .unwrap();
    let none = onramp_async(
        dir.path(),
        &["sso", "show", "--org", other["id"].as_str().unwrap()],
    )
    .await;
    assert!(!none.status.success());
    assert!(String::from_utf8_lossy(&none.stderr).contains("no SSO connection"));
}

#[test]
fn accounts_import_is_per_line_safe_to_repeat_and_show_prints_what_an_account_holds() {
    let dir = tempfile::tempdir().unwrap();
    let seed = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/accounts.jsonl");
    let first = onramp(dir.path(), &["accounts", "import", seed]);
    let report: Value = serde_json::from_str(&ok(&first)).unwrap();
    assert_eq!(report["accounts"], 3, "{report}");
    assert_eq!(report["orders"], 6);
    assert_eq!(report["failed"], 0);
    let stderr = String::from_utf8_lossy(&first.stderr);
    assert!(
        stderr.contains("3 accounts and 6 orders imported"),
        "{stderr}"
    );
    let shown = ok(&onramp(
        dir.path(),
        &["accounts", "show", "SAM@example.com"],
    ));
    let sam: Value = serde_json::from_str(&shown).unwrap();
    assert_eq!(sam["email"], "sam@example.com");
    assert_eq!(sam["kind"], "personal");
    assert_eq!(sam["organization"], Value::Null);
    assert_eq!(sam["orders"].as_array().unwrap().len(), 3);
    for list in ["orders", "payment_methods", "addresses"] {
        assert!(
            sam[list]
                .as_array()
                .unwrap()
                .iter()
                .all(|i| i["id"].is_string()),
            "{list} items have ids: {sam}"
        );
    }
    assert!(
        !shown.contains("password"),
        "no password or hash is printed"
    );
    // Again: the same accounts, nothing doubled.
    let again: Value =
        serde_json::from_str(&ok(&onramp(dir.path(), &["accounts", "import", seed]))).unwrap();
    assert_eq!(again, report);
    let shown_again = ok(&onramp(
        dir.path(),
        &["accounts", "show", "sam@example.com"],
    ));
    assert_eq!(shown_again, shown, "running twice changes nothing");

    // Bad lines are reported by number; the others are imported.
    let org: Value = serde_json::from_str(&ok(&onramp(
        dir.path(),
        &["org", "create", "--name", "Acme"],
    )))
    .unwrap();
    let org_id = org["id"].as_str().unwrap();
    let file = dir.path().join("mixed.jsonl");
    std::fs::write(
        &file,
        format!(
            "{{\"email\": \"ok1@example.net\", \"name\": \"One\", \"kind\": \"personal\"}}\n\
             {{not json\n\
             \n\
             {{\"email\": \"bad@example.net\", \"name\": \"Bad\", \"kind\": \"personal\", \"orders\": [{{\"id\": \"X\", \"date\": \"2025-01-01\", \"total\": \"1.00\", \"currency\": \"dollars\", \"purpose\": \"personal\"}}]}}\n\
             {{\"email\": \"member@example.net\", \"name\": \"Member\", \"kind\": \"business\", \"organization\": \"{org_id}\"}}\n"
        ),
    )
    .unwrap();
    let mixed = onramp(dir.path(), &["accounts", "import", file.to_str().unwrap()]);
    assert!(
        !mixed.status.success(),
        "refused lines make the exit code 1"
    );
    let err = String::from_utf8_lossy(&mixed.stderr);
    assert!(err.contains("line 2: not a valid account"), "{err}");
    assert!(err.contains("line 4: order `X`: `currency`"), "{err}");
    assert!(!err.contains("line 3"), "blank lines are skipped: {err}");
    let report: Value = serde_json::from_str(&String::from_utf8_lossy(&mixed.stdout)).unwrap();
    assert_eq!(
        (report["accounts"].as_u64(), report["failed"].as_u64()),
        (Some(2), Some(2))
    );
    let member: Value = serde_json::from_str(&ok(&onramp(
        dir.path(),
        &["accounts", "show", "member@example.net"],
    )))
    .unwrap();
    assert_eq!(member["organization"], org_id);
    assert_eq!(member["kind"], "business");
    let missing = onramp(dir.path(), &["accounts", "show", "bad@example.net"]);
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no account uses"));
}
