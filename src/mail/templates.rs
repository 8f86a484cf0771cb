//! Renders onramp's mail (subject, text and HTML) from the minijinja
//! templates in `templates/mail/` — the invitation, and a registration's
//! one-time codes and notices — built into the binary so it runs from any
//! directory.
//!
//! Values are escaped for HTML in `.html` templates; the text part is plain
//! text. This module never sends anything and never loads assets from other
//! hosts.

use std::fmt::Write as _;
use std::sync::LazyLock;

use lettre::message::Mailbox;
use minijinja::value::Value;
use minijinja::{AutoEscape, Environment, Output, State, UndefinedBehavior};
use time::macros::format_description;

use super::{MailSetupError, Rendered, message::one_line};
use crate::store::Timestamp;

/// Whom to contact when neither a contact nor an inviter is known.
pub const FALLBACK_PERSON: &str = "your organization's administrator";

const TEMPLATES: &[(&str, &str)] = &[
    (
        "invitation/subject.txt",
        include_str!("../../templates/mail/invitation/subject.txt"),
    ),
    (
        "invitation/body.txt",
        include_str!("../../templates/mail/invitation/body.txt"),
    ),
    (
        "invitation/body.html",
        include_str!("../../templates/mail/invitation/body.html"),
    ),
    (
        "registration/code.txt",
        include_str!("../../templates/mail/registration/code.txt"),
    ),
    (
        "registration/code.html",
        include_str!("../../templates/mail/registration/code.html"),
    ),
    (
        "registration/notice.txt",
        include_str!("../../templates/mail/registration/notice.txt"),
    ),
    (
        "registration/notice.html",
        include_str!("../../templates/mail/registration/notice.html"),
    ),
];

/// What an invitation email says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvitationMail {
    pub org_name: String,
    /// `Ada Admin <ada@acme.example>`, or a name; `None` says the
    /// organization's administrator.
    pub inviter: Option<String>,
    pub recipient_name: Option<String>,
    /// `<public_url>/join/<token>`.
    pub link: String,
    pub expires_at: Timestamp,
    /// Whom to contact; `None` names the inviter, else the administrator.
    pub contact: Option<String>,
}

struct Context {
    org_name: String,
    inviter: String,
    recipient_name: Option<String>,
    link: String,
    expires_at: String,
    contact: String,
}

impl Context {
    fn to_value(&self) -> Value {
        Value::from_iter([
            ("org_name", Value::from(self.org_name.as_str())),
            ("inviter", Value::from(self.inviter.as_str())),
            ("recipient_name", Value::from(self.recipient_name.clone())),
            ("link", Value::from(self.link.as_str())),
            ("expires_at", Value::from(self.expires_at.as_str())),
            ("contact", Value::from(self.contact.as_str())),
        ])
    }
}

/// Renders the invitation; an error means a template or a link is broken.
pub fn render_invitation(mail: &InvitationMail) -> Result<Rendered, MailSetupError> {
    let link = mail.link.trim();
    if !(link.starts_with("https://") || link.starts_with("http://"))
        || link.contains(char::is_whitespace)
    {
        return Err(MailSetupError::Template {
            name: "invitation".into(),
            reason: format!("the link `{link}` is not an absolute http(s) URL"),
        });
    }
    let person = |p: &Option<String>| p.as_deref().map(display_person).filter(|p| !p.is_empty());
    let inviter = person(&mail.inviter);
    let context = Context {
        org_name: one_line(&mail.org_name),
        contact: person(&mail.contact)
            .or_else(|| inviter.clone())
            .unwrap_or_else(|| FALLBACK_PERSON.to_string()),
        inviter: inviter.unwrap_or_else(|| FALLBACK_PERSON.to_string()),
        recipient_name: mail
            .recipient_name
            .as_deref()
            .map(one_line)
            .filter(|n| !n.is_empty()),
        link: link.to_string(),
        expires_at: format_expiry(mail.expires_at),
    };
    Ok(Rendered {
        subject: one_line(&render("invitation/subject.txt", context.to_value())?),
        text: render("invitation/body.txt", context.to_value())?,
        html: render("invitation/body.html", context.to_value())?,
    })
}

/// A one-time code mailed during a registration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeMail {
    pub org_name: String,
    /// What typing it does, e.g. "prove that you own your account".
    pub purpose: String,
    /// Six digits.
    pub code: String,
    pub minutes: i64,
    pub contact: Option<String>,
}

/// Renders a code mail. The subject does not hold the code.
pub fn render_code(mail: &CodeMail) -> Result<Rendered, MailSetupError> {
    let org_name = one_line(&mail.org_name);
    let ctx = Value::from_iter([
        ("org_name", Value::from(org_name.as_str())),
        ("purpose", Value::from(one_line(&mail.purpose))),
        ("code", Value::from(mail.code.as_str())),
        ("minutes", Value::from(mail.minutes)),
        ("contact", Value::from(contact(&mail.contact))),
    ]);
    Ok(Rendered {
        subject: format!("Your {org_name} verification code"),
        text: render("registration/code.txt", ctx.clone())?,
        html: render("registration/code.html", ctx)?,
    })
}

/// A notice of what a registration changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoticeMail {
    pub org_name: String,
    pub subject: String,
    /// Paragraphs.
    pub lines: Vec<String>,
    pub contact: Option<String>,
}

pub fn render_notice(mail: &NoticeMail) -> Result<Rendered, MailSetupError> {
    let subject = one_line(&mail.subject);
    let ctx = Value::from_iter([
        ("org_name", Value::from(one_line(&mail.org_name))),
        ("subject", Value::from(subject.as_str())),
        (
            "lines",
            Value::from(mail.lines.iter().map(|l| one_line(l)).collect::<Vec<_>>()),
        ),
        ("contact", Value::from(contact(&mail.contact))),
    ]);
    Ok(Rendered {
        subject,
        text: render("registration/notice.txt", ctx.clone())?,
        html: render("registration/notice.html", ctx)?,
    })
}

fn contact(c: &Option<String>) -> String {
    c.as_deref()
        .map(display_person)
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| FALLBACK_PERSON.to_string())
}

/// `14 March 2025 at 09:30 UTC`.
pub fn format_expiry(at: Timestamp) -> String {
    at.as_offset()
        .format(format_description!(
            "[day padding:none] [month repr:long] [year] at [hour]:[minute] UTC"
        ))
        .unwrap_or_else(|_| at.rfc3339())
}

/// `Ada Admin <ada@acme.example>` reads as `Ada Admin (ada@acme.example)`;
/// anything else is kept, on one line.
fn display_person(raw: &str) -> String {
    match raw.trim().parse::<Mailbox>() {
        Ok(Mailbox {
            name: Some(name),
            email,
        }) if !name.trim().is_empty() => format!("{} ({email})", one_line(&name)),
        Ok(Mailbox { email, .. }) => email.to_string(),
        Err(_) => one_line(raw),
    }
}

static ENV: LazyLock<Result<Environment<'static>, String>> = LazyLock::new(|| {
    // `empty()`: no filters, tests or globals are needed, and no serde.
    let mut env = Environment::empty();
    env.set_auto_escape_callback(|name| {
        if name.ends_with(".html") {
            AutoEscape::Html
        } else {
            AutoEscape::None
        }
    });
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_trim_blocks(true);
    env.set_lstrip_blocks(true);
    env.set_keep_trailing_newline(true);
    env.set_formatter(html_formatter);
    for (name, source) in TEMPLATES {
        env.add_template(name, source)
            .map_err(|e| format!("{name}: {e}"))?;
    }
    Ok(env)
});

fn render(name: &str, context: Value) -> Result<String, MailSetupError> {
    let failed = |reason: String| MailSetupError::Template {
        name: name.to_string(),
        reason,
    };
    let env = ENV.as_ref().map_err(|e| failed(e.clone()))?;
    env.get_template(name)
        .and_then(|t| t.render(context))
        .map_err(|e| failed(e.to_string()))
}

/// HTML-escapes strings as minijinja does, except that `/` stays `/`, so
/// links read as links in the source of the message.
fn html_formatter(out: &mut Output, state: &State, value: &Value) -> Result<(), minijinja::Error> {
    match (state.auto_escape(), value.as_str()) {
        (AutoEscape::Html, Some(s)) if !value.is_safe() => {
            for c in s.chars() {
                match c {
                    '&' => out.write_str("&amp;")?,
                    '<' => out.write_str("&lt;")?,
                    '>' => out.write_str("&gt;")?,
                    '"' => out.write_str("&quot;")?,
                    '\'' => out.write_str("&#39;")?,
                    c => out.write_char(c)?,
                }
            }
            Ok(())
        }
        _ => minijinja::escape_formatter(out, state, value),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mail() -> InvitationMail {
        InvitationMail {
            org_name: "Acme Corp".into(),
            inviter: Some("Ada Admin <ada@acme.example>".into()),
            recipient_name: Some("Barbara Jensen".into()),
            link: "https://onramp.example/join/tok_abc123".into(),
            expires_at: Timestamp::from_offset(time::macros::datetime!(2025-03-14 09:30 UTC)),
            contact: Some("it-help@acme.example".into()),
        }
    }

    #[test]
    fn both_parts_say_who_invited_whom_to_what_until_when() {
        let r = render_invitation(&mail()).expect("renders");
        assert_eq!(r.subject, "Your invitation to join Acme Corp");
        for part in [&r.text, &r.html] {
            for needle in [
                "Acme Corp",
                "Ada Admin (ada@acme.example)",
                "Barbara Jensen",
                "https://onramp.example/join/tok_abc123",
                "14 March 2025 at 09:30 UTC",
                "Contact it-help@acme.example.",
                "Not expecting this invitation?",
            ] {
                assert!(part.contains(needle), "missing {needle:?} in\n{part}");
            }
        }
    }

    #[test]
    fn without_an_inviter_the_mail_names_the_administrator() {
        let r = render_invitation(&InvitationMail {
            inviter: None,
            contact: None,
            ..mail()
        })
        .expect("renders");
        for part in [&r.text, &r.html] {
            let admin = if part == &r.html {
                "your organization&#39;s administrator"
            } else {
                FALLBACK_PERSON
            };
            assert!(part.contains(&format!("by {admin}.")), "{part}");
            assert!(part.contains(&format!("Contact {admin}.")), "{part}");
        }
    }

    #[test]
    fn without_a_contact_the_mail_says_to_contact_the_inviter() {
        let r = render_invitation(&InvitationMail {
            inviter: Some("Ada Admin".into()),
            contact: None,
            ..mail()
        })
        .expect("renders");
        assert!(r.text.contains("Contact Ada Admin."), "{}", r.text);
        assert!(r.html.contains("Contact Ada Admin."), "{}", r.html);
    }

    #[test]
    fn without_a_recipient_name_the_greeting_is_plain() {
        let r = render_invitation(&InvitationMail {
            recipient_name: None,
            ..mail()
        })
        .expect("renders");
        assert!(
            r.text.starts_with("Hello,\n\nYou have been invited"),
            "{}",
            r.text
        );
        assert!(r.html.contains(">Hello,</p>"));
    }

    #[test]
    fn html_escapes_markup_in_the_org_name() {
        let r = render_invitation(&InvitationMail {
            org_name: "<script>alert(1)</script> & Co".into(),
            ..mail()
        })
        .expect("renders");
        assert!(!r.html.contains("<script>"), "{}", r.html);
        assert!(
            r.html
                .contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp; Co")
        );
        assert!(
            r.text.contains("<script>alert(1)</script> & Co"),
            "text stays text"
        );
    }

    #[test]
    fn the_link_keeps_its_slashes_and_escapes_its_ampersands_in_html() {
        let r = render_invitation(&InvitationMail {
            link: "https://onramp.example/join/t?a=1&b=2".into(),
            ..mail()
        })
        .expect("renders");
        assert!(
            r.html
                .contains("href=\"https://onramp.example/join/t?a=1&amp;b=2\"")
        );
        assert!(r.text.contains("\nhttps://onramp.example/join/t?a=1&b=2\n"));
    }

    #[test]
    fn the_text_part_has_no_html() {
        let r = render_invitation(&mail()).expect("renders");
        for tag in ["<p", "</", "<a ", "<br", "&lt;", "&amp;", "&#"] {
            assert!(!r.text.contains(tag), "{tag:?} in\n{}", r.text);
        }
    }

    #[test]
    fn the_html_part_loads_nothing_from_other_hosts() {
        let r = render_invitation(&mail()).expect("renders");
        for needle in ["<img", "<link", "<script", "src=", "url("] {
            assert!(!r.html.contains(needle), "{needle:?}");
        }
        assert!(r.html.starts_with("<!DOCTYPE html>\n<html lang=\"en\">"));
        let hrefs: Vec<&str> = r.html.split("href=\"").skip(1).collect();
        assert_eq!(hrefs.len(), 2, "only the invitation link");
        assert!(
            hrefs
                .iter()
                .all(|h| h.starts_with("https://onramp.example/join/"))
        );
    }

    #[test]
    fn a_line_break_in_the_org_name_never_reaches_the_subject() {
        let r = render_invitation(&InvitationMail {
            org_name: "Acme\r\nBcc: x@example.com".into(),
            ..mail()
        })
        .expect("renders");
        assert_eq!(r.subject, "Your invitation to join Acme Bcc: x@example.com");
    }

    #[test]
    fn a_link_that_is_not_http_is_refused() {
        let err = render_invitation(&InvitationMail {
            link: "javascript:alert(1)".into(),
            ..mail()
        })
        .unwrap_err();
        assert!(
            err.to_string().contains("not an absolute http(s) URL"),
            "{err}"
        );
    }
}
