//! Where mail goes: an SMTP server (plain, STARTTLS, implicit TLS, with or without auth), or,
//! when none is set, `.eml` files under the mail folder so that nothing is ever dropped.

use std::path::PathBuf;
use std::time::Duration;

use lettre::transport::smtp::Error as SmtpError;
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use url::Url;

/// lettre's default of 60 s holds a worker far too long on a dead server.
const SMTP_TIMEOUT: Duration = Duration::from_secs(15);

pub enum Transport {
    Smtp {
        transport: AsyncSmtpTransport<Tokio1Executor>,
        /// For log lines: host and port, never the credentials.
        server: String,
    },
    Files {
        transport: AsyncFileTransport<Tokio1Executor>,
        dir: PathBuf,
    },
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
}

impl Transport {
    /// Builds the transport from `LECTERN_SMTP_URL` (or files in `mail_dir`). A malformed URL is
    /// an error naming the setting; an unreachable server is not (mail waits in the outbox).
    pub fn from_settings(
        smtp_url: Option<&Url>,
        mail_dir: &std::path::Path,
    ) -> Result<Transport, String> {
        match smtp_url {
            Some(url) => {
                let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url.as_str())
                    .map_err(|e| format!("LECTERN_SMTP_URL: {e}"))?
                    .timeout(Some(SMTP_TIMEOUT))
                    .build();
                let server = format!(
                    "{}://{}:{}",
                    url.scheme(),
                    url.host_str().unwrap_or("?"),
                    url.port_or_known_default()
                        .map_or_else(|| "default".into(), |p| p.to_string())
                );
                Ok(Transport::Smtp { transport, server })
            }
            None => {
                std::fs::create_dir_all(mail_dir).map_err(|e| {
                    format!(
                        "LECTERN_MAIL_DIR: cannot create {}: {e}",
                        mail_dir.display()
                    )
                })?;
                Ok(Transport::Files {
                    transport: AsyncFileTransport::<Tokio1Executor>::new(mail_dir),
                    dir: mail_dir.to_path_buf(),
                })
            }
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Transport::Smtp { server, .. } => format!("SMTP server {server}"),
            Transport::Files { dir, .. } => format!(
                "files under {}/ (LECTERN_SMTP_URL is not set)",
                dir.display()
            ),
        }
    }

    /// Checks that the SMTP server answers; only for the start-up log line.
    pub async fn check(&self) -> Result<(), String> {
        match self {
            Transport::Smtp { transport, .. } => match transport.test_connection().await {
                Ok(true) => Ok(()),
                Ok(false) => Err("the server did not accept a connection".into()),
                Err(e) => Err(e.to_string()),
            },
            Transport::Files { .. } => Ok(()),
        }
    }

    /// Sends one message; for files, returns the file's name for the log.
    pub async fn send(&self, message: Message) -> Result<Option<String>, SendError> {
        match self {
            Transport::Smtp { transport, .. } => transport
                .send(message)
                .await
                .map(|_| None)
                .map_err(classify),
            Transport::Files { transport, .. } => transport
                .send(message)
                .await
                .map(|id| Some(format!("{id}.eml")))
                .map_err(|e| SendError::Unreachable(format!("writing the .eml file failed: {e}"))),
        }
    }
}

fn classify(e: SmtpError) -> SendError {
    let text = e.to_string();
    if e.is_permanent() {
        SendError::Rejected(text)
    } else if e.is_transient() {
        SendError::Deferred(text)
    } else {
        SendError::Unreachable(text)
    }
}
