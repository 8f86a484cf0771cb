//! The mail outbox over real SMTP (lettre to the test SMTP server): outages
//! delay mail without losing or duplicating it, permanent rejections fail the
//! invitation with the reason, two workers share one queue, and a crash after
//! sending re-sends once with the same Message-ID.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use onramp::config::{Config, MailTransport, SmtpConfig, SmtpTls};
use onramp::mail::outbox::{OutboxSettings, OutboxWorker};
use onramp::mail::smtp::SmtpMailer;
use onramp::mail::{Envelope, Mailer, Rendered};
use onramp::store::Timestamp;
use onramp::store::invitations::InvitationStatus;
use onramp::store::outbox::OutboxStatus;
use uuid::Uuid;

use crate::helpers::{Backend, TestDb, backends, spawn_app_on};
use crate::scim_crud::{Scim, entra_user};
use crate::smtp_sink::{SmtpSink, parse};

fn smtp_to(c: &mut Config, port: u16) {
    c.mail.transport = MailTransport::Smtp;
    c.mail.smtp.host = "127.0.0.1".into();
    c.mail.smtp.port = port;
    c.mail.smtp.tls = SmtpTls::None;
    c.mail.outbox.retry_base_ms = 20;
    c.mail.outbox.max_attempts = 1000;
}

fn message_ids(sink: &SmtpSink) -> Vec<String> {
    sink.received()
        .iter()
        .map(|r| {
            parse(&r.data)
                .header("Message-ID")
                .unwrap_or_default()
                .to_string()
        })
        .collect()
}

async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..400 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("timed out waiting for: {what}");
}

#[tokio::test]
async fn mail_queued_during_an_smtp_outage_is_delivered_exactly_once_when_it_returns() {
    for backend in backends() {
        let mut sink = SmtpSink::start_new().await;
        let port = sink.port();
        sink.stop().await;
        let app = spawn_app_on(TestDb::new(backend).await, |c| smtp_to(c, port)).await;
        let (org, token) = app.org_with_token("Acme").await;
        let s = Scim { app: &app, token };
        for i in 0..3 {
            assert_eq!(
                s.post("/Users", entra_user(&format!("o{i}@acme.example")))
                    .await
                    .0,
                201
            );
        }
        // Attempts fail while the server is down, and are retried.
        eventually("retries while SMTP is down", || async {
            let invs = app.store.list_invitations(org, None, 10).await.unwrap();
            let mut retried = 0;
            for inv in &invs {
                let mail = app.store.mail_for("invitation", inv.id).await.unwrap();
                retried += mail
                    .iter()
                    .filter(|m| m.attempts >= 2 && m.status == OutboxStatus::Queued)
                    .count();
            }
            retried == 3
        })
        .await;
        sink.start().await;
        let got = sink.wait_for(3, Duration::from_secs(15)).await;
        assert_eq!(got.len(), 3, "{backend:?}");
        eventually("all invitations marked sent", || async {
            app.store
                .list_invitations(org, None, 10)
                .await
                .unwrap()
                .iter()
                .all(|i| i.status == InvitationStatus::Sent)
        })
        .await;
        // Every message is marked sent: none can be sent again.
        eventually("nothing left queued", || async {
            app.store.queued_mail_count().await.unwrap() == 0
        })
        .await;
        let ids = message_ids(&sink);
        assert_eq!(ids.len(), 3, "no duplicates: {ids:?}");
        assert_eq!(ids.iter().collect::<HashSet<_>>().len(), 3);
    }
}

#[tokio::test]
async fn a_permanent_rejection_fails_the_invitation_with_the_reason() {
    let sink = SmtpSink::start_new().await;
    sink.reply_to_mail_from(550, 1);
    let port = sink.port();
    let app = spawn_app_on(TestDb::new(Backend::Sqlite).await, |c| smtp_to(c, port)).await;
    let (org, token) = app.org_with_token("Acme").await;
    let s = Scim { app: &app, token };
    s.post("/Users", entra_user("bounce@acme.example")).await;
    eventually("the invitation fails", || async {
        app.store.list_invitations(org, None, 10).await.unwrap()[0].status
            == InvitationStatus::Failed
    })
    .await;
    let inv = app
        .store
        .list_invitations(org, None, 10)
        .await
        .unwrap()
        .remove(0);
    let reason = inv.reason.unwrap();
    assert!(reason.contains("could not be delivered"), "{reason}");
    assert_eq!(
        inv.status,
        InvitationStatus::Failed,
        "a failed invitation's link no longer works (its page says so)"
    );
    let mail = app.store.mail_for("invitation", inv.id).await.unwrap();
    assert_eq!(mail[0].status, OutboxStatus::Failed);
    assert_eq!(mail[0].attempts, 1, "permanent failures are not retried");
    assert!(sink.received().is_empty());
}

#[tokio::test]
async fn two_instances_on_one_database_send_each_message_once() {
    for backend in backends() {
        let sink = SmtpSink::start_new().await;
        let port = sink.port();
        let a = spawn_app_on(TestDb::new(backend).await, |c| smtp_to(c, port)).await;
        let b = spawn_app_on(a.db.shared(), |c| smtp_to(c, port)).await;
        let (_, token) = a.org_with_token("Acme").await;
        let sa = Scim {
            app: &a,
            token: token.clone(),
        };
        let sb = Scim { app: &b, token };
        for i in 0..30 {
            let s = if i % 2 == 0 { &sa } else { &sb };
            assert_eq!(
                s.post("/Users", entra_user(&format!("w{i}@acme.example")))
                    .await
                    .0,
                201
            );
        }
        let got = sink.wait_for(30, Duration::from_secs(20)).await;
        assert_eq!(got.len(), 30, "{backend:?}");
        // Every message is marked sent: none can be sent again.
        eventually("nothing left queued", || async {
            a.store.queued_mail_count().await.unwrap() == 0
        })
        .await;
        let ids = message_ids(&sink);
        assert_eq!(ids.len(), 30, "{backend:?}: no message twice");
        assert_eq!(ids.iter().collect::<HashSet<_>>().len(), 30);
        assert_eq!(a.store.queued_mail_count().await.unwrap(), 0);
    }
}

#[tokio::test]
async fn a_crash_between_sending_and_marking_re_sends_once_with_the_same_message_id() {
    for backend in backends() {
        let sink = SmtpSink::start_new().await;
        let port = sink.port();
        let app = spawn_app_on(TestDb::new(backend).await, |c| {
            smtp_to(c, port);
            c.mail.outbox.enabled = false;
        })
        .await;
        let (org, token) = app.org_with_token("Acme").await;
        let s = Scim { app: &app, token };
        s.post("/Users", entra_user("crash@acme.example")).await;
        let smtp = SmtpConfig {
            host: "127.0.0.1".into(),
            port,
            username: String::new(),
            password: String::new().into(),
            tls: SmtpTls::None,
        };
        let mailer: Arc<dyn Mailer> =
            Arc::new(SmtpMailer::new(&smtp, "onramp <onramp@acme.example>").unwrap());

        // A worker claims the message with a short lease, sends it, and dies
        // before it can mark it sent.
        let now = Timestamp::now();
        let claimed = app
            .store
            .claim_mail(
                Uuid::new_v4(),
                now,
                now.plus(time::Duration::milliseconds(300)),
                10,
            )
            .await
            .unwrap();
        assert_eq!(claimed.len(), 1);
        let m = &claimed[0];
        let envelope = Envelope {
            message_id: m.message_id.clone(),
            to_address: m.to_address.clone(),
            to_name: m.to_name.clone(),
        };
        let content = Rendered {
            subject: m.subject.clone().unwrap_or_default(),
            text: m.body_text.clone().unwrap_or_default(),
            html: m.body_html.clone().unwrap_or_default(),
        };
        mailer.send(&envelope, &content).await.unwrap();

        // Another worker: nothing to do while the lease holds, one re-send after.
        let settings = OutboxSettings {
            lease: Duration::from_millis(300),
            ..OutboxSettings::default()
        };
        let worker = OutboxWorker::new(app.store.clone(), mailer.clone(), settings).completing(
            onramp::invitations::MAIL_KIND,
            std::sync::Arc::new(onramp::invitations::InvitationMailCompletion),
        );
        assert_eq!(
            worker.run_once().await.unwrap(),
            0,
            "{backend:?}: the lease holds"
        );
        // Once the lease expires, exactly one message is claimed again.
        let mut resent = 0;
        for _ in 0..400 {
            resent = worker.run_once().await.unwrap();
            if resent > 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(resent, 1);
        for _ in 0..3 {
            assert_eq!(worker.run_once().await.unwrap(), 0);
        }
        let ids = message_ids(&sink);
        assert_eq!(ids.len(), 2, "{backend:?}: exactly one re-send");
        assert_eq!(ids[0], ids[1], "with the same Message-ID");
        let inv = app
            .store
            .list_invitations(org, None, 10)
            .await
            .unwrap()
            .remove(0);
        assert_eq!(inv.status, InvitationStatus::Sent);
    }
}
