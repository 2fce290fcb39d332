//! Delivers the outbox: woken at once when mail is added, otherwise sleeping until the next
//! message is due. Connection failures and timeouts are retried without limit, 4xx replies for
//! two days, with exponential back-off capped at an hour; a 5xx reply fails the message.

use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::{Duration, NaiveDateTime};
use lettre::Message;
use lettre::message::header::{ContentType, Header, HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart, SinglePart};
use tokio::sync::Notify;

use super::outbox::{self, OutboxRow};
use super::transport::{SendError, Transport};
use crate::db::{Db, DbError};
use crate::state::Clock;

const BATCH: i64 = 10;
const MAX_BACKOFF_SECS: i64 = 3600;
const DEFERRAL_LIMIT_DAYS: i64 = 2;
/// Even with nothing due, look again this often (another server may have added mail).
const IDLE_POLL: StdDuration = StdDuration::from_secs(30);

pub struct Worker {
    pub db: Db,
    pub transport: Arc<Transport>,
    pub from: Mailbox,
    pub clock: Clock,
    pub retry_secs: u64,
    pub wakeup: Arc<Notify>,
}

#[derive(Clone)]
struct ListUnsubscribe(String);

impl Header for ListUnsubscribe {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("List-Unsubscribe")
    }
    fn parse(s: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(ListUnsubscribe(s.to_string()))
    }
    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), format!("<{}>", self.0))
    }
}

/// RFC 8058: mail clients may unsubscribe with one POST, without opening a page.
#[derive(Clone)]
struct ListUnsubscribePost;

impl Header for ListUnsubscribePost {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("List-Unsubscribe-Post")
    }
    fn parse(_: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(ListUnsubscribePost)
    }
    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), "List-Unsubscribe=One-Click".to_string())
    }
}

/// The message for a row. Names and subjects are encoded by lettre, so no text from a user
/// can start a header or add a recipient.
pub fn build_message(row: &OutboxRow, from: &Mailbox) -> Result<Message, String> {
    let address = row
        .to_address
        .parse()
        .map_err(|e| format!("the recipient address is not usable: {e}"))?;
    let name = Some(row.to_name.clone()).filter(|n| !n.trim().is_empty());
    let mut builder = Message::builder()
        .message_id(Some(row.message_id.clone()))
        .from(from.clone())
        .to(Mailbox::new(name, address))
        .subject(row.subject.clone());
    if let Some(url) = &row.list_unsubscribe {
        builder = builder
            .header(ListUnsubscribe(url.clone()))
            .header(ListUnsubscribePost);
    }
    builder
        .multipart(
            MultiPart::alternative()
                .singlepart(
                    SinglePart::builder()
                        .header(ContentType::TEXT_PLAIN)
                        .body(row.body_text.clone()),
                )
                .singlepart(
                    SinglePart::builder()
                        .header(ContentType::TEXT_HTML)
                        .body(row.body_html.clone()),
                ),
        )
        .map_err(|e| format!("the message could not be built: {e}"))
}

fn backoff(retry_secs: u64, attempts: i32) -> Duration {
    let exponent = attempts.clamp(1, 20) as u32 - 1;
    let secs = (retry_secs as i64).saturating_mul(1_i64 << exponent.min(20));
    Duration::seconds(secs.min(MAX_BACKOFF_SECS))
}

impl Worker {
    pub async fn run(self) {
        tracing::info!(transport = %self.transport.describe(), "mail worker started");
        loop {
            let pause = match self.deliver_due().await {
                Ok(()) => self.time_to_next().await,
                Err(e) => {
                    tracing::error!(error = %e, "mail worker: database error; retrying shortly");
                    StdDuration::from_secs(5)
                }
            };
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = self.wakeup.notified() => {}
            }
        }
    }

    async fn time_to_next(&self) -> StdDuration {
        match self.db.read(outbox::next_due).await {
            Ok(Some(due)) => (due - self.clock.now())
                .to_std()
                .unwrap_or(StdDuration::ZERO)
                .min(IDLE_POLL),
            Ok(None) => IDLE_POLL,
            Err(_) => StdDuration::from_secs(5),
        }
    }

    /// Sends everything that is due now.
    pub async fn deliver_due(&self) -> Result<(), DbError> {
        loop {
            let now = self.clock.now();
            let batch = self
                .db
                .write(move |conn| outbox::claim(conn, now, BATCH))
                .await?;
            if batch.is_empty() {
                return Ok(());
            }
            for row in batch {
                self.deliver(row).await?;
            }
        }
    }

    async fn deliver(&self, row: OutboxRow) -> Result<(), DbError> {
        let outcome = match build_message(&row, &self.from) {
            Ok(message) => self.transport.send(message).await,
            Err(e) => Err(SendError::Rejected(e)),
        };
        let now = self.clock.now();
        let (id, kind, attempts) = (row.id, row.kind.clone(), row.attempts);
        match outcome {
            Ok(file) => {
                match file {
                    Some(file) => {
                        tracing::info!(outbox_id = id, kind = %kind, file = %file, "email written")
                    }
                    None => tracing::info!(outbox_id = id, kind = %kind, "email sent"),
                }
                self.db
                    .write(move |conn| outbox::mark_sent(conn, id, now))
                    .await
            }
            Err(SendError::Rejected(error)) => {
                tracing::error!(outbox_id = id, kind = %kind, %error, "email rejected; marked failed");
                self.db
                    .write(move |conn| outbox::fail(conn, id, &error))
                    .await
            }
            Err(SendError::Deferred(error)) => {
                let first = row.first_deferred_at.unwrap_or(now);
                if now - first > Duration::days(DEFERRAL_LIMIT_DAYS) {
                    tracing::error!(outbox_id = id, kind = %kind, %error, "email deferred for two days; marked failed");
                    return self
                        .db
                        .write(move |conn| outbox::fail(conn, id, &error))
                        .await;
                }
                let retry_at = now + backoff(self.retry_secs, attempts);
                tracing::warn!(outbox_id = id, kind = %kind, %error, %retry_at, "email deferred by the server");
                self.db
                    .write(move |conn| outbox::defer(conn, id, &error, retry_at, Some(first)))
                    .await
            }
            Err(SendError::Unreachable(error)) => {
                // Not a reply from a server: retried without limit, and it does not start the
                // two-day clock of 4xx deferrals.
                let retry_at: NaiveDateTime = now + backoff(self.retry_secs, attempts);
                tracing::warn!(outbox_id = id, kind = %kind, %error, %retry_at, "mail server unreachable; will retry");
                let first = row.first_deferred_at;
                self.db
                    .write(move |conn| outbox::defer(conn, id, &error, retry_at, first))
                    .await
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn back_off_doubles_and_is_capped_at_an_hour() {
        assert_eq!(backoff(60, 1), Duration::seconds(60));
        assert_eq!(backoff(60, 2), Duration::seconds(120));
        assert_eq!(backoff(60, 4), Duration::seconds(480));
        assert_eq!(backoff(60, 30), Duration::seconds(3600));
    }
}
