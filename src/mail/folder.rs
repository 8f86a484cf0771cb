//! [`FolderMailer`]: the default transport, one RFC 5322 `.eml` file per
//! message in `mail.dir`, so a fresh install works with no mail server.
//!
//! Files are written atomically (a hidden temporary file, then a rename), and
//! named after the Message-ID, so re-sending a message overwrites its file
//! rather than adding another. They are readable by their owner only: they
//! hold live invitation links. Temporary files a crash left behind are
//! removed when the transport starts (the outbox sends their messages
//! again). It never writes outside `mail.dir`.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use lettre::message::Mailbox;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use super::{Envelope, MailError, MailSetupError, Mailer, Rendered, message};

/// Writes each message to `<dir>/<sanitized Message-ID>.eml`.
#[derive(Debug, Clone)]
pub struct FolderMailer {
    dir: PathBuf,
    from: Mailbox,
}

impl FolderMailer {
    /// Creates `dir` if it is missing; `from` is `mail.from`.
    pub fn new(dir: impl AsRef<Path>, from: &str) -> Result<Self, MailSetupError> {
        let dir = dir.as_ref().to_path_buf();
        let from = message::parse_from(from)?;
        std::fs::create_dir_all(&dir).map_err(|e| {
            MailSetupError::config(
                "mail.dir",
                format!("cannot create the mail folder {}: {e}", dir.display()),
            )
        })?;
        let removed = remove_leftovers(&dir).map_err(|e| {
            MailSetupError::config(
                "mail.dir",
                format!("cannot clean the mail folder {}: {e}", dir.display()),
            )
        })?;
        if removed > 0 {
            tracing::info!(removed, dir = %dir.display(), "removed unfinished mail files left by an earlier run");
        }
        Ok(FolderMailer { dir, from })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where the message with this Message-ID is (or will be) written.
    pub fn path_for(&self, message_id: &str) -> PathBuf {
        self.dir.join(file_name(message_id))
    }

    async fn write_atomically(&self, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
        tokio::fs::create_dir_all(&self.dir).await?;
        let tmp = self.dir.join(format!(
            ".{}.{}.tmp",
            path.file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("message"),
            uuid::Uuid::new_v4().simple()
        ));
        let written = async {
            let mut options = tokio::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            options.mode(0o600);
            let mut file = options.open(&tmp).await?;
            file.write_all(bytes).await?;
            file.sync_all().await?;
            drop(file);
            tokio::fs::rename(&tmp, path).await
        }
        .await;
        if written.is_err() {
            let _ = tokio::fs::remove_file(&tmp).await;
        }
        written
    }
}

#[async_trait]
impl Mailer for FolderMailer {
    async fn send(&self, envelope: &Envelope, content: &Rendered) -> Result<(), MailError> {
        let bytes = message::build(&self.from, envelope, content)?.formatted();
        let path = self.path_for(&envelope.message_id);
        self.write_atomically(&path, &bytes).await.map_err(|e| {
            MailError::Transient(format!(
                "cannot write to the mail folder {}: {e}",
                self.dir.display()
            ))
        })?;
        tracing::debug!(path = %path.display(), "mail written to the mail folder");
        Ok(())
    }

    fn name(&self) -> &'static str {
        "folder"
    }
}

/// Removes the hidden temporary files (`.<name>.<uuid>.tmp`) of writes that
/// never finished; returns how many.
fn remove_leftovers(dir: &Path) -> std::io::Result<usize> {
    let mut removed = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') && name.ends_with(".tmp") && entry.file_type()?.is_file() {
            std::fs::remove_file(entry.path())?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// `<id>.eml` with every character outside `[A-Za-z0-9._@+-]` replaced by `_`.
/// Where that changed the id (or it was too long), a hash of the original is
/// appended, so two different ids never share a file.
fn file_name(message_id: &str) -> String {
    const MAX: usize = 150;
    let mut safe: String = message_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '@' | '+' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if safe.starts_with('.') || safe.is_empty() {
        safe.insert(0, '_');
    }
    if safe != message_id || safe.len() > MAX {
        safe.truncate(MAX);
        let digest = Sha256::digest(message_id.as_bytes());
        let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
        safe = format!("{safe}-{hex}");
    }
    format!("{safe}.eml")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn leftover_temporary_files_are_removed_at_start_and_messages_are_private() {
        let dir = tempfile::tempdir().unwrap();
        let leftover = dir.path().join(".inv-1@x.eml.0123.tmp");
        std::fs::write(&leftover, "a live link").unwrap();
        let kept = dir.path().join("inv-0@x.eml");
        std::fs::write(&kept, "sent").unwrap();
        let mailer = FolderMailer::new(dir.path(), "onramp <o@example.com>").unwrap();
        assert!(!leftover.exists(), "an unfinished write is removed");
        assert!(kept.exists(), "finished messages stay");
        let envelope = Envelope {
            message_id: "inv-2@example.com".into(),
            to_address: "pat@example.com".into(),
            to_name: None,
        };
        let content = Rendered {
            subject: "s".into(),
            text: "t".into(),
            html: "<p>h</p>".into(),
        };
        mailer.send(&envelope, &content).await.unwrap();
        let written = mailer.path_for("inv-2@example.com");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&written).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "readable by the owner only");
        }
    }

    #[test]
    fn a_plain_message_id_is_the_file_name() {
        assert_eq!(
            file_name("inv-0190c5e2-3@onramp.example"),
            "inv-0190c5e2-3@onramp.example.eml"
        );
    }

    #[test]
    fn unsafe_characters_never_reach_the_file_system() {
        for id in [
            "../../etc/passwd@x",
            "a/b@c",
            "..@x",
            "a\\b@c",
            "a\0b@c",
            "",
        ] {
            let name = file_name(id);
            assert!(!name.contains('/') && !name.contains('\\') && !name.contains('\0'));
            assert!(!name.starts_with('.'), "{name}");
            assert!(name.ends_with(".eml"));
        }
    }

    #[test]
    fn ids_that_sanitize_alike_still_get_different_files() {
        assert_ne!(file_name("a/b@c"), file_name("a_b@c"));
        assert_ne!(file_name("a/b@c"), file_name("a:b@c"));
        let long_a = format!("{}a@x", "x".repeat(200));
        let long_b = format!("{}b@x", "x".repeat(200));
        assert_ne!(file_name(&long_a), file_name(&long_b));
        assert!(file_name(&long_a).len() < 180);
    }
}
