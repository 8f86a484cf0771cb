//! Outgoing mail: the durable [`outbox`] and its worker, the [`Mailer`]
//! trait the worker sends through, its transports ([`FolderMailer`] writes
//! `.eml` files, [`SmtpMailer`] talks SMTP through lettre, [`MemoryMailer`]
//! records sends for tests), the message builder and the templates.
//!
//! This module formats messages and hands them over, once per call. It never
//! decides whether or when to send and never retries: the outbox does, from
//! the class of [`MailError`]. It never logs the message body or the SMTP
//! password, and never puts the password in an error.

pub mod folder;
pub mod memory;
mod message;
pub mod outbox;
pub mod smtp;
pub mod templates;

use std::sync::Arc;

use async_trait::async_trait;

use crate::config::{MailConfig, MailTransport};

pub use folder::FolderMailer;
pub use memory::{MemoryMailer, SentMail};
pub use smtp::SmtpMailer;
pub use templates::{InvitationMail, render_invitation};

/// Who a message goes to and the id that makes a re-send of it recognisable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// Without angle brackets, e.g. `inv-<uuid>-3@onramp.example`; the same
    /// id for the same invitation send, so a retried send is the same message.
    pub message_id: String,
    pub to_address: String,
    pub to_name: Option<String>,
}

/// A message's content: one subject line, a plain-text part and an HTML part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// Why a send failed. The text is the reason shown to admins; it never holds a
/// secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MailError {
    /// Worth retrying later: the server was unreachable or slow, or answered 4xx.
    #[error("{0}")]
    Transient(String),
    /// Retrying will not help: the server answered 5xx, or the address is invalid.
    #[error("{0}")]
    Permanent(String),
}

impl MailError {
    pub fn is_transient(&self) -> bool {
        matches!(self, MailError::Transient(_))
    }

    /// The reason, without its class.
    pub fn reason(&self) -> &str {
        match self {
            MailError::Transient(r) | MailError::Permanent(r) => r,
        }
    }
}

/// A mail setting or template that cannot work; found at start-up, not per send.
#[derive(Debug, thiserror::Error)]
pub enum MailSetupError {
    /// The message names the configuration key, e.g. `mail.smtp.host: …`.
    #[error("{key}: {reason}")]
    Config { key: &'static str, reason: String },
    #[error("mail template {name}: {reason}")]
    Template { name: String, reason: String },
}

impl MailSetupError {
    pub(crate) fn config(key: &'static str, reason: impl Into<String>) -> Self {
        MailSetupError::Config {
            key,
            reason: reason.into(),
        }
    }
}

/// Hands one message to a transport.
#[async_trait]
pub trait Mailer: Send + Sync {
    /// Sends (or writes) one message. Sending the same `message_id` again is
    /// allowed and means the same message.
    async fn send(&self, envelope: &Envelope, content: &Rendered) -> Result<(), MailError>;

    /// The transport's name for logs and metrics: `folder`, `smtp`, `memory`.
    fn name(&self) -> &'static str;
}

/// The mailer `mail.transport` asks for. Settings are checked here, so a bad
/// one stops the server at start with the key named.
pub fn from_config(config: &MailConfig) -> Result<Arc<dyn Mailer>, MailSetupError> {
    Ok(match config.transport {
        MailTransport::Folder => Arc::new(FolderMailer::new(&config.dir, &config.from)?),
        MailTransport::Smtp => Arc::new(SmtpMailer::new(&config.smtp, &config.from)?),
    })
}

/// The domain of `mail.from`, for Message-IDs: `onramp <onramp@example.com>`
/// gives `example.com`; anything unusable gives `onramp.invalid`.
pub fn message_id_domain(from: &str) -> String {
    let address = match (from.rfind('<'), from.rfind('>')) {
        (Some(open), Some(close)) if open < close => &from[open + 1..close],
        _ => from,
    };
    let domain = address
        .trim()
        .rsplit_once('@')
        .map(|(_, d)| d.trim().trim_end_matches('.'))
        .unwrap_or("");
    let valid = !domain.is_empty()
        && domain.len() <= 253
        && domain.split('.').all(|label| {
            !label.is_empty()
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
    if valid {
        domain.to_ascii_lowercase()
    } else {
        "onramp.invalid".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use rstest::rstest;

    #[rstest]
    #[case("onramp <onramp@example.com>", "example.com")]
    #[case("onramp@Mail.Example.COM", "mail.example.com")]
    #[case("\"Acme, Inc.\" <noreply@acme.example>", "acme.example")]
    #[case("onramp <onramp@localhost>", "localhost")]
    #[case("no address here", "onramp.invalid")]
    #[case("onramp <onramp@bad domain>", "onramp.invalid")]
    #[case("onramp <onramp@>", "onramp.invalid")]
    fn message_id_domain_is_the_domain_of_the_from_address(
        #[case] from: &str,
        #[case] domain: &str,
    ) {
        assert_eq!(message_id_domain(from), domain);
    }

    #[test]
    fn from_config_picks_the_folder_transport_by_default() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = Config::defaults().mail;
        config.dir = dir.path().join("mail");
        let mailer = from_config(&config).expect("folder mailer");
        assert_eq!(mailer.name(), "folder");
        assert!(config.dir.is_dir(), "the mail folder is created");
    }

    #[test]
    fn from_config_picks_smtp_when_asked() {
        let mut config = Config::defaults().mail;
        config.transport = MailTransport::Smtp;
        config.smtp.host = "smtp.example.com".into();
        let mailer = from_config(&config).expect("smtp mailer");
        assert_eq!(mailer.name(), "smtp");
    }

    #[rstest]
    #[case("", crate::config::SmtpTls::None)]
    #[case("smtp example com", crate::config::SmtpTls::None)]
    #[case("smtp/example", crate::config::SmtpTls::Starttls)]
    #[case("-bad-.example", crate::config::SmtpTls::Tls)]
    fn a_bad_smtp_host_is_reported_by_name(
        #[case] host: &str,
        #[case] tls: crate::config::SmtpTls,
    ) {
        let mut config = Config::defaults().mail;
        config.transport = MailTransport::Smtp;
        config.smtp.host = host.into();
        config.smtp.tls = tls;
        let err = from_config(&config).err().expect("refused");
        assert!(err.to_string().starts_with("mail.smtp.host: "), "{err}");
    }

    #[test]
    fn a_bad_from_address_is_reported_by_name() {
        let mut config = Config::defaults().mail;
        config.from = "onramp <not an address>".into();
        let err = from_config(&config).err().expect("refused");
        assert!(err.to_string().starts_with("mail.from: "), "{err}");
    }

    #[test]
    fn a_mail_error_displays_only_its_reason() {
        let e = MailError::Permanent("550 no such user".into());
        assert_eq!(e.to_string(), "550 no such user");
        assert!(!e.is_transient());
        assert!(MailError::Transient("x".into()).is_transient());
    }
}
