//! The mail transports end to end: the folder writes `.eml` files a parser can
//! read back; SMTP talks to a real server over TCP (the sink in
//! `smtp_sink.rs`), and its failures come back classified for the outbox.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use onramp::config::{Config, MailTransport, SmtpConfig, SmtpTls};
use onramp::mail::{
    Envelope, FolderMailer, InvitationMail, MailError, Mailer, Rendered, SmtpMailer, from_config,
    render_invitation,
};
use onramp::store::Timestamp;
use secrecy::SecretString;

use crate::smtp_sink::{ParsedMail, SmtpSink, join_link, parse};

const FROM: &str = "onramp <onramp@onramp.test>";
const WAIT: Duration = Duration::from_secs(10);

fn envelope(n: u32) -> Envelope {
    Envelope {
        message_id: format!("inv-0190c5e2-7b1d-7c3e-9f00-5a1b2c3d4e5f-{n}@onramp.test"),
        to_address: "bjensen@example.com".into(),
        to_name: Some("Barbara Jensen".into()),
    }
}

/// A token long enough that quoted-printable must break the line inside it.
fn long_link() -> String {
    format!(
        "https://onramp.example/join/{}",
        "Zx9_kQ-3".repeat(16) // 128 characters
    )
}

fn invitation(link: &str) -> Rendered {
    render_invitation(&InvitationMail {
        org_name: "Acme Corp".into(),
        inviter: Some("Ada Admin <ada@acme.example>".into()),
        recipient_name: Some("Barbara Jensen".into()),
        link: link.into(),
        expires_at: Timestamp::now().plus(time::Duration::days(14)),
        contact: None,
    })
    .expect("renders")
}

fn smtp_config(port: u16) -> SmtpConfig {
    SmtpConfig {
        host: "127.0.0.1".into(),
        port,
        username: String::new(),
        password: SecretString::from(""),
        tls: SmtpTls::None,
    }
}

fn smtp_mailer(port: u16) -> SmtpMailer {
    SmtpMailer::new(&smtp_config(port), FROM).expect("smtp mailer")
}

fn eml_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .expect("read mail dir")
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    assert!(
        files
            .iter()
            .all(|p| p.extension().is_some_and(|e| e == "eml")),
        "only .eml files, no leftovers: {files:?}"
    );
    files
}

/// The checks every message onramp sends must pass.
fn assert_invitation(mail: &ParsedMail, envelope: &Envelope, link: &str) {
    assert_eq!(mail.header("From"), Some(FROM));
    assert_eq!(
        mail.header("To"),
        Some("\"Barbara Jensen\" <bjensen@example.com>")
    );
    assert_eq!(
        mail.header("Subject"),
        Some("Your invitation to join Acme Corp")
    );
    assert_eq!(
        mail.header("Message-ID"),
        Some(format!("<{}>", envelope.message_id).as_str())
    );
    assert_eq!(mail.header("MIME-Version"), Some("1.0"));
    assert!(mail.header("Date").is_some());
    assert!(
        mail.header("Content-Type")
            .is_some_and(|c| c.starts_with("multipart/alternative;")),
        "{:?}",
        mail.header("Content-Type")
    );
    let text = mail.text.as_deref().expect("a text/plain part");
    let html = mail.html.as_deref().expect("a text/html part");
    assert_eq!(join_link(text).as_deref(), Some(link), "text link");
    assert_eq!(join_link(html).as_deref(), Some(link), "html link");
    assert!(text.contains("Ada Admin (ada@acme.example)"));
    assert!(html.contains("Ada Admin (ada@acme.example)"));
}

#[tokio::test]
async fn the_folder_mailer_writes_one_parseable_eml_per_message() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mail_dir = dir.path().join("not/yet/there");
    let mailer = FolderMailer::new(&mail_dir, FROM).expect("folder mailer");
    let link = long_link();
    for n in 1..=3 {
        mailer
            .send(&envelope(n), &invitation(&link))
            .await
            .expect("written");
    }
    let files = eml_files(&mail_dir);
    assert_eq!(files.len(), 3);
    for n in 1..=3 {
        let path = mailer.path_for(&envelope(n).message_id);
        assert!(files.contains(&path), "{path:?}");
        let mail = parse(&std::fs::read(&path).expect("read .eml"));
        assert_invitation(&mail, &envelope(n), &link);
    }
}

#[tokio::test]
async fn sending_the_same_message_id_twice_leaves_one_file_with_the_last_content() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mailer = FolderMailer::new(dir.path(), FROM).expect("folder mailer");
    let first = invitation("https://onramp.example/join/first");
    let second = invitation("https://onramp.example/join/second");
    mailer.send(&envelope(1), &first).await.expect("written");
    mailer.send(&envelope(1), &second).await.expect("rewritten");
    let files = eml_files(dir.path());
    assert_eq!(files.len(), 1, "{files:?}");
    let mail = parse(&std::fs::read(&files[0]).expect("read"));
    assert_eq!(
        join_link(mail.text.as_deref().expect("text")).as_deref(),
        Some("https://onramp.example/join/second")
    );
}

#[tokio::test]
async fn the_folder_mailer_refuses_an_invalid_address_permanently_and_writes_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mailer = FolderMailer::new(dir.path(), FROM).expect("folder mailer");
    let bad = Envelope {
        to_address: "bjensen at example.com".into(),
        ..envelope(1)
    };
    let err = mailer
        .send(&bad, &invitation(&long_link()))
        .await
        .unwrap_err();
    assert!(matches!(err, MailError::Permanent(_)), "{err:?}");
    assert!(eml_files(dir.path()).is_empty());
}

#[tokio::test]
async fn smtp_delivers_over_tcp_with_headers_both_parts_and_an_intact_long_link() {
    let sink = SmtpSink::start_new().await;
    let mailer = smtp_mailer(sink.port());
    let link = long_link();
    mailer
        .send(&envelope(1), &invitation(&link))
        .await
        .expect("sent");
    let received = sink.wait_for(1, WAIT).await;
    assert_eq!(received[0].mail_from, "onramp@onramp.test");
    assert_eq!(received[0].rcpt_to, vec!["bjensen@example.com".to_string()]);
    assert_eq!(received[0].auth_user, None, "no username, no AUTH");
    let raw = String::from_utf8_lossy(&received[0].data);
    assert!(
        raw.contains("quoted-printable"),
        "the long link forces quoted-printable"
    );
    assert!(!raw.contains(&link), "so the raw message has it broken up");
    assert_invitation(&parse(&received[0].data), &envelope(1), &link);
}

/// The sink answers `code` to the first MAIL FROM; returns the mailer's error,
/// the sink and the mailer for what comes next.
async fn fault_at_mail_from(code: u16) -> (MailError, SmtpSink, SmtpMailer) {
    let sink = SmtpSink::start_new().await;
    sink.reply_to_mail_from(code, 1);
    let mailer = smtp_mailer(sink.port());
    let err = mailer
        .send(&envelope(1), &invitation(&long_link()))
        .await
        .unwrap_err();
    (err, sink, mailer)
}

#[tokio::test]
async fn smtp_451_at_mail_from_is_a_transient_failure() {
    let (err, sink, mailer) = fault_at_mail_from(451).await;
    assert!(matches!(err, MailError::Transient(_)), "{err:?}");
    assert!(err.to_string().contains("451"), "{err}");
    mailer
        .send(&envelope(1), &invitation(&long_link()))
        .await
        .expect("the retry goes through");
    assert_eq!(sink.wait_for(1, WAIT).await.len(), 1);
}

#[tokio::test]
async fn smtp_550_at_mail_from_is_a_permanent_failure() {
    let (err, sink, _) = fault_at_mail_from(550).await;
    assert!(matches!(err, MailError::Permanent(_)), "{err:?}");
    assert!(err.to_string().contains("550"), "{err}");
    assert!(sink.received().is_empty());
}

#[tokio::test]
async fn smtp_535_is_our_credentials_so_it_is_retried_not_failed() {
    let (err, sink, mailer) = fault_at_mail_from(535).await;
    assert!(matches!(err, MailError::Transient(_)), "{err:?}");
    assert!(err.to_string().contains("mail.smtp.password"), "{err}");
    mailer
        .send(&envelope(1), &invitation(&long_link()))
        .await
        .expect("fixed credentials: the retry goes through");
    assert_eq!(sink.wait_for(1, WAIT).await.len(), 1);
}

#[tokio::test]
async fn a_stopped_server_is_a_transient_failure_and_the_pool_recovers_when_it_returns() {
    let mut sink = SmtpSink::start_new().await;
    let mailer = smtp_mailer(sink.port());
    let rendered = invitation(&long_link());
    mailer.send(&envelope(1), &rendered).await.expect("sent");
    sink.wait_for(1, WAIT).await;

    sink.stop().await;
    let err = mailer.send(&envelope(2), &rendered).await.unwrap_err();
    assert!(matches!(err, MailError::Transient(_)), "{err:?}");
    assert!(err.to_string().contains("127.0.0.1"), "{err}");

    sink.start().await;
    mailer
        .send(&envelope(2), &rendered)
        .await
        .expect("sent after recovery");
    let received = sink.wait_for(2, WAIT).await;
    assert!(String::from_utf8_lossy(&received[1].data).contains(&envelope(2).message_id));
}

#[tokio::test]
async fn concurrent_sends_share_the_pool_and_all_arrive() {
    let sink = SmtpSink::start_new().await;
    let mailer = Arc::new(smtp_mailer(sink.port()));
    let rendered = Arc::new(invitation(&long_link()));
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..20 {
        let (mailer, rendered) = (mailer.clone(), rendered.clone());
        tasks.spawn(async move { mailer.send(&envelope(n), &rendered).await });
    }
    while let Some(result) = tasks.join_next().await {
        result.expect("task").expect("sent");
    }
    let received = sink.wait_for(20, WAIT).await;
    assert_eq!(received.len(), 20);
}

#[tokio::test]
async fn smtp_authenticates_when_a_username_is_set() {
    let sink = SmtpSink::start_new().await;
    let config = SmtpConfig {
        username: "onramp-relay".into(),
        password: SecretString::from("s3cret-relay-password"),
        ..smtp_config(sink.port())
    };
    let mailer = SmtpMailer::new(&config, FROM).expect("smtp mailer");
    assert!(!format!("{mailer:?}").contains("s3cret"));
    mailer
        .send(&envelope(1), &invitation(&long_link()))
        .await
        .expect("sent");
    let received = sink.wait_for(1, WAIT).await;
    assert_eq!(received[0].auth_user.as_deref(), Some("onramp-relay"));
}

#[tokio::test]
async fn from_config_builds_the_smtp_transport_that_reaches_the_server() {
    let sink = SmtpSink::start_new().await;
    let mut config = Config::defaults().mail;
    config.transport = MailTransport::Smtp;
    config.from = FROM.into();
    config.smtp = smtp_config(sink.port());
    let mailer = from_config(&config).expect("smtp mailer");
    assert_eq!(mailer.name(), "smtp");
    let link = long_link();
    mailer
        .send(&envelope(7), &invitation(&link))
        .await
        .expect("sent");
    let received = sink.wait_for(1, WAIT).await;
    assert_invitation(&parse(&received[0].data), &envelope(7), &link);
}

#[tokio::test]
async fn from_config_builds_the_folder_transport_by_default() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = Config::defaults().mail;
    config.dir = dir.path().join("mail");
    config.from = FROM.into();
    let mailer = from_config(&config).expect("folder mailer");
    assert_eq!(mailer.name(), "folder");
    mailer
        .send(&envelope(1), &invitation(&long_link()))
        .await
        .expect("written");
    assert_eq!(eml_files(&config.dir).len(), 1);
}
