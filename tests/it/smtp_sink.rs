//! A small, real SMTP server for tests, on 127.0.0.1 and a free port: EHLO/HELO,
//! AUTH PLAIN, MAIL FROM, RCPT TO, DATA (with dot-unstuffing), RSET, NOOP,
//! QUIT. It keeps every message it accepts and can be told to refuse the next
//! ones (`reply_to_mail_from`) or to go away and come back on the same port
//! (`stop` / `start`). Also: a parser for the messages onramp sends.
//!
//! It never relays anything anywhere, and is no model of a complete server.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::oneshot;
use tokio::task::{JoinHandle, JoinSet};

/// One accepted message.
#[derive(Debug, Clone)]
pub struct Received {
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
    /// The user name given with AUTH PLAIN on that connection, if any.
    pub auth_user: Option<String>,
    /// The message as sent, dot-unstuffed, CRLF line ends.
    pub data: Vec<u8>,
}

#[derive(Default)]
struct Shared {
    received: Mutex<Vec<Received>>,
    /// Replies to give to the next MAIL FROM commands instead of 250.
    mail_from_faults: Mutex<VecDeque<u16>>,
}

struct Running {
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

pub struct SmtpSink {
    addr: SocketAddr,
    shared: Arc<Shared>,
    running: Option<Running>,
}

impl SmtpSink {
    pub async fn start_new() -> SmtpSink {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind sink");
        let addr = listener.local_addr().expect("sink address");
        let mut sink = SmtpSink {
            addr,
            shared: Arc::default(),
            running: None,
        };
        sink.serve(listener);
        sink
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Closes the listener and every open connection: new connections are refused.
    pub async fn stop(&mut self) {
        if let Some(running) = self.running.take() {
            let _ = running.stop.send(());
            let _ = running.task.await;
        }
    }

    /// Listens again on the same port, after `stop`.
    pub async fn start(&mut self) {
        assert!(self.running.is_none(), "the sink is already running");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        let listener = loop {
            let socket = TcpSocket::new_v4().expect("socket");
            socket.set_reuseaddr(true).expect("SO_REUSEADDR");
            match socket.bind(self.addr).and_then(|()| socket.listen(128)) {
                Ok(listener) => break listener,
                Err(_) if tokio::time::Instant::now() < deadline => {
                    // The old socket may linger for a moment; poll until free.
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(e) => panic!("cannot bind the sink again on {}: {e}", self.addr),
            }
        };
        self.serve(listener);
    }

    /// Answers the next `times` MAIL FROM commands with `code` (e.g. 451, 550).
    pub fn reply_to_mail_from(&self, code: u16, times: usize) {
        let mut faults = self.shared.mail_from_faults.lock().unwrap();
        faults.extend(std::iter::repeat_n(code, times));
    }

    pub fn received(&self) -> Vec<Received> {
        self.shared.received.lock().unwrap().clone()
    }

    /// Polls until `n` messages have arrived; panics after `timeout`.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Received> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let received = self.received();
            if received.len() >= n {
                return received;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "expected {n} messages, got {} after {timeout:?}",
                received.len()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    fn serve(&mut self, listener: TcpListener) {
        let (stop, mut stopped) = oneshot::channel();
        let shared = self.shared.clone();
        let task = tokio::spawn(async move {
            let mut connections = JoinSet::new();
            loop {
                tokio::select! {
                    _ = &mut stopped => break,
                    accepted = listener.accept() => {
                        if let Ok((stream, _)) = accepted {
                            connections.spawn(session(stream, shared.clone()));
                        }
                    }
                }
                while connections.try_join_next().is_some() {}
            }
            drop(listener);
            connections.shutdown().await;
        });
        self.running = Some(Running { stop, task });
    }
}

/// One SMTP conversation.
async fn session(stream: TcpStream, shared: Arc<Shared>) {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read);
    let mut reply = async |text: &str| write.write_all(text.as_bytes()).await.is_ok();
    if !reply("220 sink.test ESMTP ready\r\n").await {
        return;
    }
    let mut mail_from: Option<String> = None;
    let mut rcpt_to = Vec::new();
    let mut auth_user = None;
    let mut line = Vec::new();
    loop {
        line.clear();
        match lines.read_until(b'\n', &mut line).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let command = String::from_utf8_lossy(&line).trim_end().to_string();
        let verb = command
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_ascii_uppercase();
        let answer = match verb.as_str() {
            "EHLO" => "250-sink.test\r\n250-8BITMIME\r\n250 AUTH PLAIN\r\n".to_string(),
            "HELO" => "250 sink.test\r\n".to_string(),
            "AUTH" => match decode_auth_plain(&command) {
                Some(user) => {
                    auth_user = Some(user);
                    "235 2.7.0 authenticated\r\n".to_string()
                }
                None => "535 5.7.8 bad credentials\r\n".to_string(),
            },
            "MAIL" => {
                let fault = shared.mail_from_faults.lock().unwrap().pop_front();
                match fault {
                    Some(code) => format!("{code} refused by test fault\r\n"),
                    None => {
                        mail_from = Some(angle_address(&command));
                        rcpt_to.clear();
                        "250 2.1.0 ok\r\n".to_string()
                    }
                }
            }
            "RCPT" if mail_from.is_some() => {
                rcpt_to.push(angle_address(&command));
                "250 2.1.5 ok\r\n".to_string()
            }
            "DATA" if mail_from.is_some() && !rcpt_to.is_empty() => {
                if !reply("354 end data with <CR><LF>.<CR><LF>\r\n").await {
                    return;
                }
                let Some(data) = read_data(&mut lines).await else {
                    return;
                };
                shared.received.lock().unwrap().push(Received {
                    mail_from: mail_from.take().unwrap_or_default(),
                    rcpt_to: std::mem::take(&mut rcpt_to),
                    auth_user: auth_user.clone(),
                    data,
                });
                "250 2.0.0 queued\r\n".to_string()
            }
            "RCPT" | "DATA" => "503 5.5.1 bad sequence of commands\r\n".to_string(),
            "RSET" => {
                mail_from = None;
                rcpt_to.clear();
                "250 2.0.0 ok\r\n".to_string()
            }
            "NOOP" => "250 2.0.0 ok\r\n".to_string(),
            "QUIT" => {
                let _ = reply("221 2.0.0 bye\r\n").await;
                return;
            }
            _ => "502 5.5.2 command not implemented\r\n".to_string(),
        };
        if !reply(&answer).await {
            return;
        }
    }
}

/// Reads DATA lines up to the lone dot, undoing dot-stuffing (RFC 5321 §4.5.2).
async fn read_data<R: AsyncBufReadExt + Unpin>(lines: &mut R) -> Option<Vec<u8>> {
    let mut data = Vec::new();
    let mut line = Vec::new();
    loop {
        line.clear();
        if lines.read_until(b'\n', &mut line).await.ok()? == 0 {
            return None;
        }
        if line == b".\r\n" || line == b".\n" {
            return Some(data);
        }
        let unstuffed = line.strip_prefix(b".").unwrap_or(&line);
        data.extend_from_slice(unstuffed);
    }
}

/// `MAIL FROM:<a@b> BODY=8BITMIME` gives `a@b`.
fn angle_address(command: &str) -> String {
    let start = command.find('<').map_or(0, |i| i + 1);
    let end = command[start..]
        .find('>')
        .map_or(command.len(), |i| start + i);
    command[start..end].to_string()
}

/// `AUTH PLAIN <base64 of \0user\0password>` gives the user.
fn decode_auth_plain(command: &str) -> Option<String> {
    let mut words = command.split_whitespace().skip(1);
    if !words.next()?.eq_ignore_ascii_case("PLAIN") {
        return None;
    }
    let decoded = STANDARD.decode(words.next()?).ok()?;
    let mut fields = decoded.split(|b| *b == 0);
    let _authz = fields.next()?;
    let user = String::from_utf8(fields.next()?.to_vec()).ok()?;
    fields.next()?;
    Some(user)
}

/// A message split into its (unfolded) headers and decoded text and HTML parts.
#[derive(Debug)]
pub struct ParsedMail {
    pub headers: Vec<(String, String)>,
    pub text: Option<String>,
    pub html: Option<String>,
}

impl ParsedMail {
    /// The first header with this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Parses a message: a `multipart/alternative` one gives its text/plain and
/// text/html parts; a single-part one gives its body as the matching part.
pub fn parse(raw: &[u8]) -> ParsedMail {
    let raw = String::from_utf8(raw.to_vec()).expect("the message is UTF-8 (in fact ASCII)");
    let (headers, body) = split_head(&raw);
    let mut mail = ParsedMail {
        headers,
        text: None,
        html: None,
    };
    let content_type = mail
        .header("Content-Type")
        .unwrap_or("text/plain")
        .to_string();
    if let Some(boundary) = boundary(&content_type) {
        let delimiter = format!("--{boundary}");
        for part in body.split(&delimiter).skip(1) {
            if part.starts_with("--") {
                break;
            }
            let part = part.strip_prefix("\r\n").unwrap_or(part);
            let (headers, content) = split_head(part);
            let content = content.strip_suffix("\r\n").unwrap_or(content);
            store_part(&mut mail, &headers, content);
        }
    } else {
        let headers = mail.headers.clone();
        store_part(&mut mail, &headers, body);
    }
    mail
}

fn store_part(mail: &mut ParsedMail, headers: &[(String, String)], content: &str) {
    let get = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.to_ascii_lowercase())
            .unwrap_or_default()
    };
    let decoded = match get("Content-Transfer-Encoding").as_str() {
        "quoted-printable" => decode_quoted_printable(content),
        "base64" => {
            let compact: String = content.split_whitespace().collect();
            String::from_utf8(STANDARD.decode(compact).expect("valid base64")).expect("UTF-8")
        }
        _ => content.to_string(),
    };
    let content_type = get("Content-Type");
    if content_type.starts_with("text/html") {
        mail.html = Some(decoded);
    } else if content_type.starts_with("text/plain") || content_type.is_empty() {
        mail.text = Some(decoded);
    }
}

/// Splits at the first empty line and unfolds the header lines.
fn split_head(raw: &str) -> (Vec<(String, String)>, &str) {
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((raw, ""));
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in head.split("\r\n") {
        if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = headers.last_mut() {
                value.push(' ');
                value.push_str(line.trim());
            }
        } else if let Some((name, value)) = line.split_once(':') {
            headers.push((name.trim().to_string(), value.trim().to_string()));
        }
    }
    (headers, body)
}

fn boundary(content_type: &str) -> Option<String> {
    let lower = content_type.to_ascii_lowercase();
    if !lower.starts_with("multipart/") {
        return None;
    }
    let at = lower.find("boundary=")? + "boundary=".len();
    let value = &content_type[at..];
    Some(match value.strip_prefix('"') {
        Some(quoted) => quoted.split('"').next()?.to_string(),
        None => value.split(';').next()?.trim().to_string(),
    })
}

/// RFC 2045 §6.7: `=XX` is a byte, `=` at a line end is a soft line break.
pub fn decode_quoted_printable(encoded: &str) -> String {
    let bytes = encoded.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'=' if bytes[i + 1..].starts_with(b"\r\n") => i += 3,
            b'=' if bytes[i + 1..].starts_with(b"\n") => i += 2,
            b'=' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).expect("ASCII");
                out.push(u8::from_str_radix(hex, 16).expect("=XX hex escape"));
                i += 3;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).expect("UTF-8 after decoding")
}

/// The first `http(s)://…/join/<token>` link in a text, up to a space, quote or `<`.
pub fn join_link(text: &str) -> Option<String> {
    let at = text.find("/join/")?;
    let start = text[..at].rfind("http")?;
    let link: String = text[start..]
        .chars()
        .take_while(|c| !c.is_whitespace() && !matches!(c, '"' | '<' | '>' | '\''))
        .collect();
    Some(link)
}

#[test]
fn quoted_printable_mail_decodes_soft_breaks_and_escapes() {
    assert_eq!(
        decode_quoted_printable("a=3Db=\r\nc caf=C3=A9"),
        "a=bc café"
    );
}
