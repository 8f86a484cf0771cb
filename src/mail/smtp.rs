//! [`SmtpMailer`]: sends over SMTP with lettre's SMTP client, through a pool
//! of connections of its own, with TLS per `mail.smtp.tls` and optional
//! authentication, and sorts failures into transient and permanent ones for
//! the outbox.
//!
//! Why its own pool: lettre's transport opens sockets without `TCP_NODELAY`
//! and writes a message's body and its final `.` line separately, so every
//! message waited for the server's delayed ACK (up to 40 ms on Linux) — a
//! ceiling of about 25 messages a second per connection. The connections
//! here are plain-text or STARTTLS sockets opened with `TCP_NODELAY` (implicit
//! TLS goes through lettre's own connect).
//!
//! It never logs or returns the SMTP password, and never retries a message on
//! its own — except once on a fresh connection when a pooled one turns out to
//! have been closed by the server while idle.

use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use secrecy::{ExposeSecret, SecretString};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;

use super::{Envelope, MailError, MailSetupError, Mailer, Rendered, message};
use crate::config::{SmtpConfig, SmtpTls};

/// How long connecting, or sending one message, may take.
pub const TIMEOUT: Duration = Duration::from_secs(10);
/// Most connections open to the server at once.
pub const POOL_SIZE: usize = 16;
/// An idle connection older than this is closed rather than reused (servers
/// drop idle clients after a while; RFC 5321 §4.5.3.2 suggests 5 minutes).
const IDLE_MAX: Duration = Duration::from_secs(30);

/// Sends through an SMTP server over a pool of connections opened on demand.
pub struct SmtpMailer {
    host: String,
    port: u16,
    tls: SmtpTls,
    tls_parameters: Option<TlsParameters>,
    credentials: Option<Credentials>,
    hello: ClientId,
    idle: Mutex<Vec<(AsyncSmtpConnection, Instant)>>,
    permits: Semaphore,
    from: Mailbox,
    /// `host:port`, for error messages.
    server: String,
    password: SecretString,
}

impl std::fmt::Debug for SmtpMailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpMailer")
            .field("server", &self.server)
            .field("from", &self.from.to_string())
            .finish_non_exhaustive()
    }
}

impl SmtpMailer {
    /// Checks the settings; a bad one is reported by its key.
    pub fn new(config: &SmtpConfig, from: &str) -> Result<Self, MailSetupError> {
        let from = message::parse_from(from)?;
        let host = config.host.trim();
        check_host(host)?;
        if config.port == 0 {
            return Err(MailSetupError::config(
                "mail.smtp.port",
                "must be between 1 and 65535",
            ));
        }
        let tls_parameters = match config.tls {
            SmtpTls::None => None,
            SmtpTls::Starttls | SmtpTls::Tls => {
                Some(TlsParameters::new(host.to_string()).map_err(|e| {
                    MailSetupError::config(
                        "mail.smtp.host",
                        format!("`{host}` cannot be used for a TLS connection: {e}"),
                    )
                })?)
            }
        };
        let username = config.username.trim();
        let credentials = if !username.is_empty() {
            Some(Credentials::new(
                username.to_string(),
                config.password.expose_secret().to_string(),
            ))
        } else {
            if !config.password.expose_secret().is_empty() {
                tracing::warn!(
                    "mail.smtp.password is set but mail.smtp.username is empty; sending without authentication"
                );
            }
            None
        };
        Ok(SmtpMailer {
            host: host.to_string(),
            port: config.port,
            tls: config.tls,
            tls_parameters,
            credentials,
            hello: ClientId::default(),
            idle: Mutex::new(Vec::new()),
            permits: Semaphore::new(POOL_SIZE),
            from,
            server: format!("{host}:{}", config.port),
            password: config.password.clone(),
        })
    }

    fn unreachable(&self, why: impl std::fmt::Display) -> MailError {
        MailError::Transient(format!(
            "cannot reach the SMTP server {}: {why}",
            self.server
        ))
    }

    /// A new connection: greeted, encrypted as configured, authenticated.
    async fn connect(&self) -> Result<AsyncSmtpConnection, MailError> {
        let lettre_err = |e: lettre::transport::smtp::Error| self.classify(&e);
        let mut conn = match (self.tls, &self.tls_parameters) {
            (SmtpTls::Tls, Some(params)) => AsyncSmtpConnection::connect_tokio1(
                (self.host.as_str(), self.port),
                Some(TIMEOUT),
                &self.hello,
                Some(params.clone()),
                None,
            )
            .await
            .map_err(lettre_err)?,
            _ => {
                let tcp = TcpStream::connect((self.host.as_str(), self.port))
                    .await
                    .map_err(|e| self.unreachable(e))?;
                tcp.set_nodelay(true).map_err(|e| self.unreachable(e))?;
                let mut conn =
                    AsyncSmtpConnection::connect_with_transport(Box::new(tcp), &self.hello)
                        .await
                        .map_err(lettre_err)?;
                if let (SmtpTls::Starttls, Some(params)) = (self.tls, &self.tls_parameters) {
                    if !conn.can_starttls() {
                        return Err(self.unreachable(
                            "the server does not offer STARTTLS (mail.smtp.tls is starttls)",
                        ));
                    }
                    conn.starttls(params.clone(), &self.hello)
                        .await
                        .map_err(lettre_err)?;
                }
                conn
            }
        };
        if let Some(credentials) = &self.credentials {
            conn.auth(&[Mechanism::Plain, Mechanism::Login], credentials)
                .await
                .map_err(lettre_err)?;
        }
        Ok(conn)
    }

    fn take_idle(&self) -> Option<AsyncSmtpConnection> {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        while let Some((conn, since)) = idle.pop() {
            if since.elapsed() < IDLE_MAX && !conn.has_broken() {
                return Some(conn);
            }
        }
        None
    }

    fn put_idle(&self, conn: AsyncSmtpConnection) {
        if !conn.has_broken() {
            let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
            idle.push((conn, Instant::now()));
        }
    }

    /// One message on one connection, within [`TIMEOUT`]; the connection is
    /// kept for the next message when it is still sound.
    async fn send_on(
        &self,
        mut conn: AsyncSmtpConnection,
        envelope: &lettre::address::Envelope,
        bytes: &[u8],
    ) -> Result<(), Attempt> {
        match tokio::time::timeout(TIMEOUT, conn.send(envelope, bytes)).await {
            Ok(Ok(_)) => {
                self.put_idle(conn);
                Ok(())
            }
            // The server answered: its answer stands.
            Ok(Err(e)) if e.status().is_some() => Err(Attempt::Answered(self.classify(&e))),
            Ok(Err(e)) => Err(Attempt::Lost(self.classify(&e))),
            Err(_) => Err(Attempt::Lost(MailError::Transient(format!(
                "timed out talking to the SMTP server {}",
                self.server
            )))),
        }
    }

    /// Sorts a lettre failure for the outbox, in words an admin can act on.
    fn classify(&self, err: &lettre::transport::smtp::Error) -> MailError {
        let server = &self.server;
        let code = err.status().map(u16::from);
        let error = if code.is_some_and(is_auth_refusal) {
            // Our credentials, not the message: retry until an admin fixes
            // mail.smtp.username/password, rather than failing every invitation.
            MailError::Transient(format!(
                "the SMTP server {server} refused onramp's credentials (check mail.smtp.username and mail.smtp.password): {err}"
            ))
        } else if err.is_permanent() {
            MailError::Permanent(format!(
                "the SMTP server {server} rejected the message: {err}"
            ))
        } else if err.is_transient() {
            MailError::Transient(format!(
                "the SMTP server {server} deferred the message: {err}"
            ))
        } else if err.is_timeout() {
            MailError::Transient(format!("timed out talking to the SMTP server {server}"))
        } else {
            MailError::Transient(format!("cannot reach the SMTP server {server}: {err}"))
        };
        self.redact(error)
    }

    /// Belt and braces: no reason ever carries the password.
    fn redact(&self, error: MailError) -> MailError {
        let secret = self.password.expose_secret();
        if secret.is_empty() || !error.reason().contains(secret) {
            return error;
        }
        match error {
            MailError::Transient(r) => MailError::Transient(r.replace(secret, "[redacted]")),
            MailError::Permanent(r) => MailError::Permanent(r.replace(secret, "[redacted]")),
        }
    }
}

/// How a send on one connection ended, when it did not succeed.
enum Attempt {
    /// The server replied with an error: final for this message.
    Answered(MailError),
    /// The connection failed (closed, reset, timed out).
    Lost(MailError),
}

#[async_trait]
impl Mailer for SmtpMailer {
    async fn send(&self, envelope: &Envelope, content: &Rendered) -> Result<(), MailError> {
        let message = message::build(&self.from, envelope, content)?;
        let smtp_envelope = message.envelope().clone();
        let bytes = message.formatted();
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| self.unreachable("the mailer is shutting down"))?;
        let result = match self.take_idle() {
            Some(conn) => match self.send_on(conn, &smtp_envelope, &bytes).await {
                // Closed by the server while idle: once more on a fresh connection.
                Err(Attempt::Lost(_)) => None,
                done => Some(done),
            },
            None => None,
        };
        let result = match result {
            Some(done) => done,
            None => {
                let conn = self.connect().await?;
                self.send_on(conn, &smtp_envelope, &bytes).await
            }
        };
        result.map_err(|attempt| {
            let (Attempt::Answered(error) | Attempt::Lost(error)) = attempt;
            tracing::debug!(server = %self.server, transient = error.is_transient(), "SMTP send failed");
            error
        })
    }

    fn name(&self) -> &'static str {
        "smtp"
    }
}

/// 530 authentication required, 534 mechanism too weak, 535 credentials
/// invalid, 538 encryption required (RFC 4954 §6): replies about onramp's
/// own SMTP settings.
fn is_auth_refusal(code: u16) -> bool {
    matches!(code, 530 | 534 | 535 | 538)
}

/// A DNS name or an IP address, nothing else.
fn check_host(host: &str) -> Result<(), MailSetupError> {
    let bad = |why: &str| MailSetupError::config("mail.smtp.host", format!("`{host}` {why}"));
    if host.is_empty() {
        return Err(MailSetupError::config(
            "mail.smtp.host",
            "must be set when mail.transport is smtp",
        ));
    }
    if host.parse::<IpAddr>().is_ok() {
        return Ok(());
    }
    let name = host.strip_suffix('.').unwrap_or(host);
    let valid = name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
    if valid {
        Ok(())
    } else {
        Err(bad("is not a host name or an IP address"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn smtp(host: &str, tls: SmtpTls) -> SmtpConfig {
        let mut c = Config::defaults().mail.smtp;
        c.host = host.into();
        c.tls = tls;
        c
    }

    #[test]
    fn host_names_and_ip_addresses_are_accepted_for_every_tls_mode() {
        for tls in [SmtpTls::None, SmtpTls::Starttls, SmtpTls::Tls] {
            for host in ["localhost", "smtp.example.com", "127.0.0.1", "::1"] {
                SmtpMailer::new(&smtp(host, tls), "onramp@example.com")
                    .unwrap_or_else(|e| panic!("{host} {tls:?}: {e}"));
            }
        }
    }

    #[test]
    fn port_zero_is_reported_by_name() {
        let mut c = smtp("localhost", SmtpTls::None);
        c.port = 0;
        let err = SmtpMailer::new(&c, "onramp@example.com").unwrap_err();
        assert!(err.to_string().starts_with("mail.smtp.port: "), "{err}");
    }

    #[test]
    fn debug_never_shows_the_password() {
        let mut c = smtp("localhost", SmtpTls::None);
        c.username = "onramp".into();
        c.password = SecretString::from("hunter2-very-secret");
        let mailer = SmtpMailer::new(&c, "onramp@example.com").expect("builds");
        assert!(!format!("{mailer:?}").contains("hunter2"));
    }

    #[test]
    fn a_reason_that_echoes_the_password_is_redacted() {
        let mut c = smtp("localhost", SmtpTls::None);
        c.username = "onramp".into();
        c.password = SecretString::from("hunter2-very-secret");
        let mailer = SmtpMailer::new(&c, "onramp@example.com").expect("builds");
        let e = mailer.redact(MailError::Permanent("535 bad hunter2-very-secret".into()));
        assert_eq!(e, MailError::Permanent("535 bad [redacted]".into()));
    }
}
