//! [`MemoryMailer`]: records what would have been sent, for fast tests of the
//! code that sends (the outbox, invitations). It can be told to fail the next
//! sends, transiently or permanently.
//!
//! It never touches the network or the disk; production never uses it.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::Notify;

use super::{Envelope, MailError, Mailer, Rendered, message};

/// One recorded send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentMail {
    pub envelope: Envelope,
    pub content: Rendered,
}

#[derive(Debug, Default)]
struct State {
    sent: Vec<SentMail>,
    failures: VecDeque<MailError>,
    attempts: usize,
}

/// Keeps every successful send in memory, in order.
#[derive(Debug, Default)]
pub struct MemoryMailer {
    state: Mutex<State>,
    changed: Notify,
}

impl MemoryMailer {
    pub fn new() -> Self {
        Self::default()
    }

    /// Fails the next `n` sends with a transient error (as an SMTP 451 would).
    pub fn fail_next_transiently(&self, n: usize) {
        self.fail_next(n, MailError::Transient("451 try again later (test)".into()));
    }

    /// Fails the next `n` sends with a permanent error (as an SMTP 550 would).
    pub fn fail_next_permanently(&self, n: usize) {
        self.fail_next(
            n,
            MailError::Permanent("550 mailbox unavailable (test)".into()),
        );
    }

    /// Fails the next `n` sends with `error`, after any failures already queued.
    pub fn fail_next(&self, n: usize, error: MailError) {
        let mut state = self.lock();
        state.failures.extend(std::iter::repeat_n(error, n));
    }

    /// Successful sends so far, oldest first.
    pub fn sent(&self) -> Vec<SentMail> {
        self.lock().sent.clone()
    }

    /// Successful sends to `address` (compared case-insensitively).
    pub fn sent_to(&self, address: &str) -> Vec<SentMail> {
        self.lock()
            .sent
            .iter()
            .filter(|m| m.envelope.to_address.eq_ignore_ascii_case(address))
            .cloned()
            .collect()
    }

    /// Every call to `send`, failed or not.
    pub fn attempts(&self) -> usize {
        self.lock().attempts
    }

    /// Forgets the sends recorded so far (queued failures stay).
    pub fn clear(&self) {
        self.lock().sent.clear();
    }

    /// Waits until at least `n` sends have succeeded; false on timeout.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> bool {
        let waiting = async {
            loop {
                let changed = self.changed.notified();
                tokio::pin!(changed);
                changed.as_mut().enable();
                if self.lock().sent.len() >= n {
                    return;
                }
                changed.await;
            }
        };
        tokio::time::timeout(timeout, waiting).await.is_ok()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic elsewhere while holding the lock leaves the data usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait]
impl Mailer for MemoryMailer {
    async fn send(&self, envelope: &Envelope, content: &Rendered) -> Result<(), MailError> {
        let outcome = {
            let mut state = self.lock();
            state.attempts += 1;
            match state.failures.pop_front() {
                Some(error) => Err(error),
                None => message::check_message_id(&envelope.message_id)
                    .and_then(|()| message::recipient(envelope))
                    .map(|_| {
                        state.sent.push(SentMail {
                            envelope: envelope.clone(),
                            content: content.clone(),
                        });
                    }),
            }
        };
        self.changed.notify_waiters();
        outcome
    }

    fn name(&self) -> &'static str {
        "memory"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envelope(to: &str) -> Envelope {
        Envelope {
            message_id: "inv-1-1@onramp.example".into(),
            to_address: to.into(),
            to_name: None,
        }
    }

    fn content() -> Rendered {
        Rendered {
            subject: "s".into(),
            text: "t".into(),
            html: "<p>h</p>".into(),
        }
    }

    #[tokio::test]
    async fn sends_are_recorded_in_order() {
        let m = MemoryMailer::new();
        m.send(&envelope("a@example.com"), &content())
            .await
            .expect("sent");
        m.send(&envelope("b@example.com"), &content())
            .await
            .expect("sent");
        let sent = m.sent();
        assert_eq!(sent.len(), 2);
        assert_eq!(sent[0].envelope.to_address, "a@example.com");
        assert_eq!(m.sent_to("B@example.com").len(), 1);
        assert_eq!(m.name(), "memory");
    }

    #[tokio::test]
    async fn queued_failures_come_before_successes() {
        let m = MemoryMailer::new();
        m.fail_next_transiently(2);
        m.fail_next_permanently(1);
        let e = envelope("a@example.com");
        assert!(matches!(
            m.send(&e, &content()).await,
            Err(MailError::Transient(_))
        ));
        assert!(matches!(
            m.send(&e, &content()).await,
            Err(MailError::Transient(_))
        ));
        assert!(matches!(
            m.send(&e, &content()).await,
            Err(MailError::Permanent(_))
        ));
        m.send(&e, &content()).await.expect("then it sends");
        assert_eq!(m.attempts(), 4);
        assert_eq!(m.sent().len(), 1);
    }

    #[tokio::test]
    async fn an_invalid_address_fails_permanently_as_a_real_transport_would() {
        let m = MemoryMailer::new();
        let err = m.send(&envelope("nobody"), &content()).await.unwrap_err();
        assert!(matches!(err, MailError::Permanent(_)), "{err:?}");
        assert!(m.sent().is_empty());
    }

    #[tokio::test]
    async fn wait_for_returns_once_enough_sends_arrive() {
        let m = std::sync::Arc::new(MemoryMailer::new());
        let sender = m.clone();
        tokio::spawn(async move {
            for _ in 0..3 {
                tokio::task::yield_now().await;
                sender
                    .send(&envelope("a@example.com"), &content())
                    .await
                    .expect("sent");
            }
        });
        assert!(m.wait_for(3, Duration::from_secs(5)).await);
        assert!(!m.wait_for(4, Duration::from_millis(20)).await);
    }
}
