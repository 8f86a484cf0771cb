//! Builds the RFC 5322 message for an [`Envelope`] and its [`Rendered`]
//! content with lettre: `multipart/alternative` (text, then HTML) with Date,
//! From, To, Subject, Message-ID and MIME-Version.
//!
//! It never invents a Message-ID (the caller's id is what makes a re-send the
//! same message) and never lets a line break from data into a header.

use lettre::Message;
use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};

use super::{Envelope, MailError, MailSetupError, Rendered};

/// Parses `mail.from`, e.g. `onramp <onramp@example.com>`.
pub(crate) fn parse_from(from: &str) -> Result<Mailbox, MailSetupError> {
    from.trim().parse::<Mailbox>().map_err(|e| {
        MailSetupError::config(
            "mail.from",
            format!("`{from}` is not a mailbox such as `onramp <onramp@example.com>`: {e}"),
        )
    })
}

/// The recipient as a mailbox; an address lettre cannot use is permanent.
pub(crate) fn recipient(envelope: &Envelope) -> Result<Mailbox, MailError> {
    let address = envelope.to_address.trim().parse().map_err(|e| {
        MailError::Permanent(format!(
            "invalid recipient address `{}`: {e}",
            one_line(&envelope.to_address)
        ))
    })?;
    let name = envelope
        .to_name
        .as_deref()
        .map(one_line)
        .filter(|n| !n.is_empty());
    Ok(Mailbox::new(name, address))
}

/// Checks the shape RFC 5322 §3.6.4 wants between the angle brackets.
pub(crate) fn check_message_id(id: &str) -> Result<(), MailError> {
    let ok = match id.split_once('@') {
        Some((left, right)) => {
            !left.is_empty()
                && !right.is_empty()
                && !right.contains('@')
                && id
                    .chars()
                    .all(|c| c.is_ascii_graphic() && !matches!(c, '<' | '>' | '"' | '\\'))
        }
        None => false,
    };
    if ok {
        Ok(())
    } else {
        Err(MailError::Permanent(format!(
            "invalid Message-ID `{}`: expected `left@right` without brackets or spaces",
            one_line(id)
        )))
    }
}

pub(crate) fn build(
    from: &Mailbox,
    envelope: &Envelope,
    content: &Rendered,
) -> Result<Message, MailError> {
    check_message_id(&envelope.message_id)?;
    let to = recipient(envelope)?;
    Message::builder()
        .from(from.clone())
        .to(to)
        .subject(one_line(&content.subject))
        .message_id(Some(format!("<{}>", envelope.message_id)))
        .date_now()
        // RFC 3834: tells auto-responders not to answer.
        .raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str("Auto-Submitted"),
            "auto-generated".to_string(),
        ))
        .multipart(MultiPart::alternative_plain_html(
            content.text.clone(),
            content.html.clone(),
        ))
        .map_err(|e| MailError::Permanent(format!("cannot build the message: {e}")))
}

/// Collapses all whitespace (line breaks included) to single spaces and drops
/// other control characters.
pub(crate) fn one_line(s: &str) -> String {
    s.split_whitespace()
        .map(|w| w.chars().filter(|c| !c.is_control()).collect::<String>())
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envelope(id: &str, to: &str) -> Envelope {
        Envelope {
            message_id: id.into(),
            to_address: to.into(),
            to_name: Some("Barbara\r\nBcc: evil@example.com Jensen".into()),
        }
    }

    fn content() -> Rendered {
        Rendered {
            subject: "Hello\r\nBcc: evil@example.com".into(),
            text: "text part".into(),
            html: "<p>html part</p>".into(),
        }
    }

    fn formatted(id: &str) -> String {
        let from = parse_from("onramp <onramp@example.com>").expect("from");
        let msg = build(&from, &envelope(id, "bjensen@example.com"), &content()).expect("builds");
        String::from_utf8(msg.formatted()).expect("utf-8")
    }

    #[test]
    fn the_message_has_every_required_header_and_both_parts() {
        let raw = formatted("inv-1-1@example.com");
        let (head, body) = raw.split_once("\r\n\r\n").expect("header/body split");
        for h in [
            "From: onramp <onramp@example.com>\r\n",
            "Message-ID: <inv-1-1@example.com>\r\n",
            "MIME-Version: 1.0\r\n",
            "Date: ",
            "Content-Type: multipart/alternative;",
        ] {
            assert!(head.contains(h), "missing {h:?} in\n{head}");
        }
        assert!(body.contains("Content-Type: text/plain; charset=utf-8"));
        assert!(body.contains("Content-Type: text/html; charset=utf-8"));
        assert!(
            body.find("text part") < body.find("html part"),
            "text first"
        );
    }

    #[test]
    fn line_breaks_in_names_and_subjects_never_become_headers() {
        let raw = formatted("inv-1-1@example.com");
        let (head, _) = raw.split_once("\r\n\r\n").expect("split");
        assert!(!head.contains("\r\nBcc:"), "{head}");
        assert!(
            head.contains("Subject: Hello Bcc: evil@example.com\r\n"),
            "{head}"
        );
    }

    #[test]
    fn an_invalid_recipient_address_is_a_permanent_failure() {
        let from = parse_from("onramp@example.com").expect("from");
        let err = build(&from, &envelope("a@b", "not an address"), &content()).unwrap_err();
        assert!(matches!(err, MailError::Permanent(_)), "{err:?}");
        assert!(err.to_string().contains("not an address"));
    }

    #[test]
    fn a_malformed_message_id_is_a_permanent_failure() {
        for id in ["", "no-at-sign", "<a@b>", "a b@c", "@b", "a@"] {
            assert!(
                matches!(check_message_id(id), Err(MailError::Permanent(_))),
                "{id:?}"
            );
        }
        assert!(check_message_id("inv-0190c5e2-3@onramp.example").is_ok());
    }
}
