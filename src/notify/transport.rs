//! Where mail goes: an SMTP server (plain, STARTTLS, implicit TLS, with or without auth), or,
//! when none is set, `.eml` files under the mail folder so that nothing is ever dropped.
//!
//! The SMTP conversation is driven here step by step rather than through lettre's
//! `AsyncSmtpTransport`, whose timeout covers only the TCP connect: a server that accepts the
//! connection and then never answers would hold the worker forever. Here every step (connect
//! with greeting and EHLO, STARTTLS, AUTH, MAIL, each RCPT, DATA, the message with its final
//! reply, QUIT) has its own deadline, and each message gets a fresh connection, so a step cut
//! off half-way never leaves a confused connection behind for the next message.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

use lettre::Message;
use lettre::address::Envelope;
use lettre::transport::smtp::Error as SmtpError;
use lettre::transport::smtp::authentication::{Credentials, DEFAULT_MECHANISMS};
use lettre::transport::smtp::client::{AsyncSmtpConnection, TlsParameters};
use lettre::transport::smtp::commands::{Data, Mail, Quit, Rcpt};
use lettre::transport::smtp::extension::{ClientId, Extension, MailBodyParameter, MailParameter};
use url::Url;

pub enum Transport {
    Smtp(SmtpClient),
    Files { dir: PathBuf },
}

/// How the connection is protected, as `LECTERN_SMTP_URL` asks.
#[derive(Clone)]
enum Tls {
    None,
    /// `smtp://…?tls=opportunistic`: STARTTLS when the server offers it.
    Opportunistic(TlsParameters),
    /// `smtp://…?tls=required`: STARTTLS or no mail.
    Required(TlsParameters),
    /// `smtps://`: TLS from the first byte.
    Wrapper(TlsParameters),
}

pub struct SmtpClient {
    host: String,
    port: u16,
    tls: Tls,
    credentials: Option<Credentials>,
    hello: ClientId,
    /// The deadline of each SMTP step (`LECTERN_SMTP_TIMEOUT_SECS`).
    step_timeout: Duration,
    /// For log lines: scheme, host and port, never the credentials.
    server: String,
}

/// How a delivery attempt ended, in the terms the retry policy needs.
#[derive(Debug)]
pub enum SendError {
    /// No connection, a timeout, or a broken conversation: retry without limit.
    Unreachable(String),
    /// A 4xx reply: retry for up to two days.
    Deferred(String),
    /// A 5xx reply, or a message the server can never take: fail at once.
    Rejected(String),
    /// The worker withdrew the message before it was handed over (its lease was lost or is
    /// about to run out, or the server is stopping): nothing was delivered.
    Withdrawn,
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SendError::Unreachable(e) | SendError::Deferred(e) | SendError::Rejected(e) => {
                f.write_str(e)
            }
            SendError::Withdrawn => f.write_str("withdrawn before it was handed over"),
        }
    }
}

const OPEN: u8 = 0;
const COMMITTED: u8 = 1;
const WITHDRAWN: u8 = 2;

/// The point of no return of one delivery, shared by the worker and the transport. Until the
/// transport commits (just before the message body goes out), the worker may withdraw the
/// message and drop the attempt knowing that nothing was delivered; once committed, the worker
/// waits for the outcome (bounded by the step deadline) and records it.
pub struct Handover {
    state: AtomicU8,
    /// Until when this worker's lease is certainly its own, as far as it knows.
    lease_until: Mutex<Instant>,
    /// How much of the lease must remain to start handing over: the time the body and the
    /// final reply may take.
    needed: Duration,
}

impl Handover {
    pub fn new(lease_until: Instant, needed: Duration) -> Handover {
        Handover {
            state: AtomicU8::new(OPEN),
            lease_until: Mutex::new(lease_until),
            needed,
        }
    }

    /// After the lease was renewed.
    pub fn extend(&self, lease_until: Instant) {
        if let Ok(mut until) = self.lease_until.lock() {
            *until = (*until).max(lease_until);
        }
    }

    fn lease_left(&self) -> Duration {
        self.lease_until
            .lock()
            .map(|until| until.saturating_duration_since(Instant::now()))
            .unwrap_or_default()
    }

    /// The transport asks to hand the message over: true once, if it was not withdrawn and
    /// enough of the lease remains that no other worker can take the message meanwhile.
    pub fn commit(&self) -> bool {
        if self.lease_left() < self.needed {
            let _ =
                self.state
                    .compare_exchange(OPEN, WITHDRAWN, Ordering::SeqCst, Ordering::SeqCst);
            return false;
        }
        self.state
            .compare_exchange(OPEN, COMMITTED, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
    }

    /// The worker takes the message back: true if nothing was (or will be) handed over.
    pub fn withdraw(&self) -> bool {
        match self
            .state
            .compare_exchange(OPEN, WITHDRAWN, Ordering::SeqCst, Ordering::SeqCst)
        {
            Ok(_) => true,
            Err(state) => state == WITHDRAWN,
        }
    }

    pub fn is_withdrawn(&self) -> bool {
        self.state.load(Ordering::SeqCst) == WITHDRAWN
    }
}

impl Transport {
    /// Builds the transport from `LECTERN_SMTP_URL` (or files in `mail_dir`). A malformed URL is
    /// an error naming the setting; an unreachable server is not (mail waits in the outbox).
    pub fn from_settings(
        smtp_url: Option<&Url>,
        mail_dir: &Path,
        step_timeout: Duration,
    ) -> Result<Transport, String> {
        match smtp_url {
            Some(url) => Ok(Transport::Smtp(SmtpClient::from_url(url, step_timeout)?)),
            None => {
                std::fs::create_dir_all(mail_dir).map_err(|e| {
                    format!(
                        "LECTERN_MAIL_DIR: cannot create {}: {e}",
                        mail_dir.display()
                    )
                })?;
                Ok(Transport::Files {
                    dir: mail_dir.to_path_buf(),
                })
            }
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Transport::Smtp(client) => format!("SMTP server {}", client.server),
            Transport::Files { dir } => format!(
                "files under {}/ (LECTERN_SMTP_URL is not set)",
                dir.display()
            ),
        }
    }

    /// Checks that the SMTP server answers (greeting, EHLO, STARTTLS and AUTH if set, QUIT),
    /// each step within its deadline; only for a log line.
    pub async fn check(&self) -> Result<(), String> {
        match self {
            Transport::Smtp(client) => {
                let mut conn = client.connect().await.map_err(|e| e.to_string())?;
                client.quit(&mut conn).await;
                Ok(())
            }
            Transport::Files { .. } => Ok(()),
        }
    }

    /// Sends one message; for files, returns the file's name for the log. The message is
    /// handed over only if `handover` lets it commit.
    pub async fn send(
        &self,
        message: Message,
        handover: &Handover,
    ) -> Result<Option<String>, SendError> {
        match self {
            Transport::Smtp(client) => client.send(&message, handover).await.map(|()| None),
            Transport::Files { dir } => {
                if !handover.commit() {
                    return Err(SendError::Withdrawn);
                }
                write_eml(dir, message.formatted())
                    .await
                    .map(Some)
                    .map_err(|e| {
                        SendError::Unreachable(format!("writing the .eml file failed: {e}"))
                    })
            }
        }
    }
}

/// Writes the message under a new random name.
async fn write_eml(dir: &Path, bytes: Vec<u8>) -> std::io::Result<String> {
    let name = format!("{}.eml", crate::crypto::random_token(16));
    let (dir, written) = (dir.to_path_buf(), name.clone());
    tokio::task::spawn_blocking(move || write_then_rename(&dir, &written, &bytes))
        .await
        .map_err(std::io::Error::other)??;
    Ok(name)
}

/// Writes under a temporary name and renames into place, so a full disk leaves no empty or
/// truncated `.eml` file behind (the temporary file is removed again).
fn write_then_rename(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let temporary = dir.join(format!(".{name}.tmp"));
    let result = (|| {
        let mut file = std::fs::File::create(&temporary)?;
        file.write_all(bytes)?;
        // The bytes must be on disk before the name says the file is complete.
        file.sync_all()?;
        drop(file);
        std::fs::rename(&temporary, dir.join(name))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    result
}

/// One SMTP step's outcome: the step's own error, or its deadline passed.
async fn step<T>(
    what: &str,
    limit: Duration,
    future: impl Future<Output = Result<T, SmtpError>>,
) -> Result<T, SendError> {
    match tokio::time::timeout(limit, future).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(classify(what, e)),
        Err(_) => Err(SendError::Unreachable(format!(
            "{what}: no answer within {} s",
            limit.as_secs_f32()
        ))),
    }
}

impl SmtpClient {
    /// The settings of `smtp[s]://[user:password@]host[:port][/hello-name][?tls=…]`, read as
    /// lettre's `from_url` reads them.
    fn from_url(url: &Url, step_timeout: Duration) -> Result<SmtpClient, String> {
        let host = url
            .host_str()
            .ok_or("LECTERN_SMTP_URL: no host")?
            .to_string();
        let tls_query = url
            .query_pairs()
            .find(|(k, _)| k == "tls")
            .map(|(_, v)| v.to_string());
        let parameters =
            || TlsParameters::new(host.clone()).map_err(|e| format!("LECTERN_SMTP_URL: {e}"));
        let (tls, default_port) = match (url.scheme(), tls_query.as_deref()) {
            ("smtp", None) => (Tls::None, 25),
            ("smtp", Some("required")) => (Tls::Required(parameters()?), 587),
            ("smtp", Some("opportunistic")) => (Tls::Opportunistic(parameters()?), 587),
            ("smtps", _) => (Tls::Wrapper(parameters()?), 465),
            (scheme, tls) => {
                return Err(format!(
                    "LECTERN_SMTP_URL: unknown scheme {scheme:?} or tls={tls:?} (use smtp://, \
                     smtps://, ?tls=required or ?tls=opportunistic)"
                ));
            }
        };
        let port = url.port().unwrap_or(default_port);
        let hello = match url.path().trim_matches('/') {
            "" => ClientId::default(),
            name => ClientId::Domain(name.to_string()),
        };
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8()
                .map(|s| s.into_owned())
                .map_err(|e| format!("LECTERN_SMTP_URL: {e}"))
        };
        let credentials = match url.password() {
            Some(password) => Some(Credentials::new(decode(url.username())?, decode(password)?)),
            None => None,
        };
        Ok(SmtpClient {
            server: format!("{}://{host}:{port}", url.scheme()),
            host,
            port,
            tls,
            credentials,
            hello,
            step_timeout,
        })
    }

    /// Connects, reads the greeting, says EHLO, then STARTTLS and AUTH as configured.
    async fn connect(&self) -> Result<AsyncSmtpConnection, SendError> {
        let limit = self.step_timeout;
        let wrapper = match &self.tls {
            Tls::Wrapper(parameters) => Some(parameters.clone()),
            _ => None,
        };
        // The connect, the greeting and EHLO are one call in lettre: each of them may take
        // up to the deadline.
        let mut conn = step(
            "connecting",
            limit * 3,
            AsyncSmtpConnection::connect_tokio1(
                (self.host.as_str(), self.port),
                Some(limit),
                &self.hello,
                wrapper,
                None,
            ),
        )
        .await?;
        let starttls = match &self.tls {
            Tls::Required(parameters) => Some(parameters.clone()),
            Tls::Opportunistic(parameters) if conn.can_starttls() => Some(parameters.clone()),
            _ => None,
        };
        if let Some(parameters) = starttls {
            // STARTTLS, the TLS handshake and the second EHLO.
            step(
                "STARTTLS",
                limit * 3,
                conn.starttls(parameters, &self.hello),
            )
            .await?;
        }
        if let Some(credentials) = &self.credentials {
            step(
                "AUTH",
                limit * 2,
                conn.auth(DEFAULT_MECHANISMS, credentials),
            )
            .await?;
        }
        Ok(conn)
    }

    /// Says goodbye politely, but never waits longer than one deadline for it: the message's
    /// fate is already known.
    async fn quit(&self, conn: &mut AsyncSmtpConnection) {
        let _ = tokio::time::timeout(self.step_timeout, conn.command(Quit)).await;
    }

    async fn send(&self, message: &Message, handover: &Handover) -> Result<(), SendError> {
        let limit = self.step_timeout;
        let envelope: &Envelope = message.envelope();
        let email = message.formatted();
        let mut conn = self.connect().await?;

        let mut options = Vec::new();
        let addresses_ascii = envelope.from().is_none_or(|a| a.to_string().is_ascii())
            && envelope.to().iter().all(|a| a.to_string().is_ascii());
        if !addresses_ascii {
            if !conn.server_info().supports_feature(Extension::SmtpUtfEight) {
                return Err(SendError::Rejected(
                    "the server cannot take a non-ASCII address (no SMTPUTF8)".into(),
                ));
            }
            options.push(MailParameter::SmtpUtfEight);
        }
        if !email.is_ascii() {
            if !conn.server_info().supports_feature(Extension::EightBitMime) {
                return Err(SendError::Rejected(
                    "the server cannot take 8-bit text (no 8BITMIME)".into(),
                ));
            }
            options.push(MailParameter::Body(MailBodyParameter::EightBitMime));
        }

        if handover.is_withdrawn() {
            return Err(SendError::Withdrawn);
        }
        step(
            "MAIL FROM",
            limit,
            conn.command(Mail::new(envelope.from().cloned(), options)),
        )
        .await?;
        for to in envelope.to() {
            step(
                "RCPT TO",
                limit,
                conn.command(Rcpt::new(to.clone(), Vec::new())),
            )
            .await?;
        }
        step("DATA", limit, conn.command(Data)).await?;
        // The point of no return: once the body's final dot is written the server may take
        // the message, whatever happens to this connection afterwards.
        if !handover.commit() {
            return Err(SendError::Withdrawn);
        }
        // A final reply that never comes leaves it unknown whether the server kept the
        // message; it is retried (at worst delivered twice), as RFC 5321 expects of a client.
        step("the final reply", limit, conn.message(&email)).await?;
        self.quit(&mut conn).await;
        Ok(())
    }
}

fn classify(what: &str, e: SmtpError) -> SendError {
    let text = format!("{what}: {e}");
    if e.is_permanent() {
        SendError::Rejected(text)
    } else if e.is_transient() {
        SendError::Deferred(text)
    } else {
        SendError::Unreachable(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_written_eml_file_is_complete_and_no_temporary_file_remains() {
        let dir = tempfile_dir();
        let name = write_eml(&dir, b"Subject: hi\r\n\r\nbody\r\n".to_vec())
            .await
            .unwrap();
        assert!(name.ends_with(".eml"));
        let names: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, vec![name.clone()]);
        assert_eq!(
            std::fs::read(dir.join(&name)).unwrap(),
            b"Subject: hi\r\n\r\nbody\r\n"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_write_that_fails_for_a_full_disk_leaves_no_eml_file() {
        // /dev/full fails every write with ENOSPC, as a full disk does: the file being written
        // is made a link to it.
        let full = Path::new("/dev/full");
        if !full.exists() {
            eprintln!("SKIPPED: /dev/full is missing");
            return;
        }
        let dir = tempfile_dir();
        std::os::unix::fs::symlink(full, dir.join(".full.eml.tmp")).unwrap();
        let result = write_then_rename(&dir, "full.eml", b"Subject: hi\r\n\r\nbody\r\n");
        assert!(result.is_err(), "writing to a full disk fails");
        let names: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(names.is_empty(), "no file is left behind: {names:?}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn tempfile_dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "lectern-eml-{}",
            crate::crypto::random_token(8).replace(['-', '_'], "x")
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
