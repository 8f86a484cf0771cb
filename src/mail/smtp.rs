//! [`SmtpMailer`]: sends over SMTP with lettre, through a pool of connections,
//! with TLS per `mail.smtp.tls` and optional authentication, and sorts lettre's
//! failures into transient and permanent ones for the outbox.
//!
//! It never logs or returns the SMTP password, and never retries on its own.

use std::net::IpAddr;
use std::sync::OnceLock;
use std::time::Duration;

use async_trait::async_trait;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::TlsParameters;
use lettre::transport::smtp::{AsyncSmtpTransportBuilder, PoolConfig};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use secrecy::{ExposeSecret, SecretString};

use super::{Envelope, MailError, MailSetupError, Mailer, Rendered, message};
use crate::config::{SmtpConfig, SmtpTls};

/// How long one SMTP connection attempt or command may take.
pub const TIMEOUT: Duration = Duration::from_secs(10);
/// Most connections kept open to the server at once.
pub const POOL_SIZE: u32 = 8;

/// Sends through an SMTP server. The connection pool is created on the first
/// send, on the Tokio runtime that sends, so building one needs no runtime.
pub struct SmtpMailer {
    builder: AsyncSmtpTransportBuilder,
    transport: OnceLock<AsyncSmtpTransport<Tokio1Executor>>,
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
        let tls = |host: &str| {
            TlsParameters::new(host.to_string()).map_err(|e| {
                MailSetupError::config(
                    "mail.smtp.host",
                    format!("`{host}` cannot be used for a TLS connection: {e}"),
                )
            })
        };
        let builder = match config.tls {
            SmtpTls::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host),
            SmtpTls::Starttls => {
                tls(host)?;
                AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(host)
                    .map_err(|e| MailSetupError::config("mail.smtp.host", e.to_string()))?
            }
            SmtpTls::Tls => {
                tls(host)?;
                AsyncSmtpTransport::<Tokio1Executor>::relay(host)
                    .map_err(|e| MailSetupError::config("mail.smtp.host", e.to_string()))?
            }
        };
        let mut builder = builder
            .port(config.port)
            .timeout(Some(TIMEOUT))
            .pool_config(PoolConfig::new().max_size(POOL_SIZE));
        let username = config.username.trim();
        if !username.is_empty() {
            builder = builder.credentials(Credentials::new(
                username.to_string(),
                config.password.expose_secret().to_string(),
            ));
        } else if !config.password.expose_secret().is_empty() {
            tracing::warn!(
                "mail.smtp.password is set but mail.smtp.username is empty; sending without authentication"
            );
        }
        Ok(SmtpMailer {
            builder,
            transport: OnceLock::new(),
            from,
            server: format!("{host}:{}", config.port),
            password: config.password.clone(),
        })
    }

    fn transport(&self) -> &AsyncSmtpTransport<Tokio1Executor> {
        self.transport.get_or_init(|| self.builder.clone().build())
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

#[async_trait]
impl Mailer for SmtpMailer {
    async fn send(&self, envelope: &Envelope, content: &Rendered) -> Result<(), MailError> {
        let message = message::build(&self.from, envelope, content)?;
        match self.transport().send(message).await {
            Ok(_) => Ok(()),
            Err(err) => {
                let error = self.classify(&err);
                tracing::debug!(server = %self.server, transient = error.is_transient(), "SMTP send failed");
                Err(error)
            }
        }
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

impl Drop for SmtpMailer {
    fn drop(&mut self) {
        // lettre's pool spawns its clean-up on drop, which panics outside a
        // Tokio runtime; there, the process is ending anyway, so let it go.
        if tokio::runtime::Handle::try_current().is_err()
            && let Some(transport) = self.transport.take()
        {
            std::mem::forget(transport);
        }
    }
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
