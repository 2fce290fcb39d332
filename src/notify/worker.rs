//! Delivers the outbox: woken at once when mail is added, otherwise sleeping until the next
//! message is due. Connection failures and timeouts are retried without limit, 4xx replies for
//! two days, with exponential back-off capped at an hour; a 5xx reply fails the message.
//!
//! Each message is delivered once: the worker claims one row at a time under a lease with a
//! fencing token, renews the lease while the message is being sent, hands the message over
//! only while the lease is certainly its own, and writes the outcome only if it still holds
//! the lease. A message an SMTP server accepted is recorded as sent before anything else is
//! claimed (retrying while the database does not answer) and remembered meanwhile, so this
//! process never hands it over again.
//!
//! The window that remains: if the process dies between the SMTP server's final reply and
//! the database write that records it (or the database stays unreachable until the lease ends
//! and another server takes the row), the message is sent again. Nothing short of a
//! transaction spanning the SMTP server and the database closes it; the write is the first
//! thing done after the reply, so the window is one database round trip.

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration as StdDuration, Instant};

use chrono::{Duration, NaiveDateTime};
use lettre::Message;
use lettre::message::header::{ContentType, Header, HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart, SinglePart};
use tokio::sync::{Notify, watch};

use super::outbox::{self, OutboxRow};
use super::transport::{Handover, SendError, Transport};
use crate::db::{Db, DbError};
use crate::state::{Clock, MailFaults};

const MAX_BACKOFF_SECS: i64 = 3600;
const DEFERRAL_LIMIT_DAYS: i64 = 2;
/// Even with nothing due, look again this often (another server may have added mail).
const IDLE_POLL: StdDuration = StdDuration::from_secs(30);
/// A lease lasts this many SMTP step deadlines and is renewed every deadline, so several
/// renewals in a row may fail before it is at risk.
const LEASE_STEPS: u32 = 6;
/// How many accepted Message-IDs this process remembers.
const REMEMBERED_SENT: usize = 1024;
/// Back-off of the retried "sent" write while the database does not answer.
const RECORD_RETRY_FIRST: StdDuration = StdDuration::from_millis(100);
const RECORD_RETRY_MAX: StdDuration = StdDuration::from_secs(5);

pub struct Worker {
    pub db: Db,
    pub transport: Arc<Transport>,
    pub from: Mailbox,
    pub clock: Clock,
    pub retry_secs: u64,
    /// The deadline of one SMTP step; the lease and its renewals are measured in it.
    pub step_timeout: StdDuration,
    pub wakeup: Arc<Notify>,
    /// Turns true when the server stops: an unsent message is released, a message being
    /// handed over is finished, and the worker returns.
    pub shutdown: watch::Receiver<bool>,
    pub faults: Arc<MailFaults>,
    pub metrics: Arc<crate::telemetry::Metrics>,
}

/// Message-IDs an SMTP server accepted, most recent last.
#[derive(Default)]
struct Accepted {
    order: VecDeque<String>,
    ids: HashSet<String>,
}

impl Accepted {
    fn remember(&mut self, message_id: &str) {
        if self.ids.insert(message_id.to_string()) {
            self.order.push_back(message_id.to_string());
            if self.order.len() > REMEMBERED_SENT
                && let Some(old) = self.order.pop_front()
            {
                self.ids.remove(&old);
            }
        }
    }
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

/// Resolves when the server stops (or the application that would stop it is gone).
async fn stop_requested(mut shutdown: watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}

/// How one claimed message ended for this worker.
enum Settled {
    Done,
    /// The server is stopping.
    Stopped,
}

impl Worker {
    pub async fn run(self) {
        tracing::info!(transport = %self.transport.describe(), "mail worker started");
        let accepted = Mutex::new(Accepted::default());
        loop {
            if self.stopping() {
                return;
            }
            let pause = match self.deliver_due(&accepted).await {
                Ok(Settled::Stopped) => return,
                Ok(Settled::Done) => self.time_to_next().await,
                Err(e) => {
                    tracing::error!(error = %e, "mail worker: database error; retrying shortly");
                    StdDuration::from_secs(5)
                }
            };
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = self.wakeup.notified() => {}
                () = stop_requested(self.shutdown.clone()) => return,
            }
        }
    }

    fn stopping(&self) -> bool {
        *self.shutdown.borrow()
    }

    fn lease(&self) -> StdDuration {
        self.step_timeout * LEASE_STEPS
    }

    fn lease_until(&self) -> NaiveDateTime {
        self.clock.now()
            + Duration::from_std(self.lease()).unwrap_or_else(|_| Duration::seconds(120))
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

    /// Sends everything that is due now, one message at a time.
    async fn deliver_due(&self, accepted: &Mutex<Accepted>) -> Result<Settled, DbError> {
        loop {
            if self.stopping() {
                return Ok(Settled::Stopped);
            }
            let token = crate::crypto::random_token(16);
            let now = self.clock.now();
            let lease_until = self.lease_until();
            // Measured before the claim is written, so the local view of the lease never
            // outlasts the one in the database.
            let leased_at = Instant::now();
            let claimed = {
                let token = token.clone();
                self.db
                    .write(move |conn| outbox::claim(conn, now, lease_until, &token))
                    .await?
            };
            let Some(row) = claimed else {
                return Ok(Settled::Done);
            };
            if let Settled::Stopped = self.deliver(row, &token, leased_at, accepted).await? {
                return Ok(Settled::Stopped);
            }
        }
    }

    async fn deliver(
        &self,
        row: OutboxRow,
        token: &str,
        leased_at: Instant,
        accepted: &Mutex<Accepted>,
    ) -> Result<Settled, DbError> {
        let (id, kind, attempts) = (row.id, row.kind.clone(), row.attempts);
        let already_accepted = accepted
            .lock()
            .map(|a| a.ids.contains(&row.message_id))
            .unwrap_or(false);
        if already_accepted {
            tracing::warn!(outbox_id = id, kind = %kind, "email already accepted by the SMTP server; recording it as sent");
            self.record_sent(id, token).await;
            return Ok(Settled::Done);
        }
        let message = match build_message(&row, &self.from) {
            Ok(message) => message,
            Err(error) => {
                tracing::error!(outbox_id = id, kind = %kind, %error, "email cannot be built; marked failed");
                let token = token.to_string();
                self.db
                    .write(move |conn| outbox::fail(conn, id, &token, &error))
                    .await?;
                return Ok(Settled::Done);
            }
        };

        // Handing over needs time for the body and the final reply.
        let handover = Handover::new(leased_at + self.lease(), self.step_timeout * 2);
        let send = self.transport.send(message, &handover);
        let keep_lease = self.keep_lease(id, token, &handover);
        let stop = stop_requested(self.shutdown.clone());
        tokio::pin!(send, keep_lease, stop);
        let (mut lease_lost, mut stopping) = (false, false);
        let outcome = loop {
            tokio::select! {
                outcome = &mut send => break outcome,
                () = &mut keep_lease, if !lease_lost => {
                    lease_lost = true;
                    if handover.withdraw() {
                        tracing::warn!(outbox_id = id, kind = %kind, "email's lease was lost while sending; left to the worker that holds it");
                        return Ok(Settled::Done);
                    }
                }
                () = &mut stop, if !stopping => {
                    stopping = true;
                    if handover.withdraw() {
                        let (now, token) = (self.clock.now(), token.to_string());
                        self.db
                            .write(move |conn| outbox::release(conn, id, &token, now))
                            .await?;
                        tracing::info!(outbox_id = id, kind = %kind, "stopping: email released unsent, due at once");
                        return Ok(Settled::Stopped);
                    }
                    // Already handed over: wait for the final reply (one deadline) and record it.
                }
            }
        };
        let settled = if stopping {
            Settled::Stopped
        } else {
            Settled::Done
        };

        let now = self.clock.now();
        let token = token.to_string();
        let kept = match outcome {
            Ok(file) => {
                self.metrics.mail_sent();
                if let Ok(mut accepted) = accepted.lock() {
                    accepted.remember(&row.message_id);
                }
                match file {
                    Some(file) => {
                        tracing::info!(outbox_id = id, kind = %kind, file = %file, "email written")
                    }
                    None => tracing::info!(outbox_id = id, kind = %kind, "email sent"),
                }
                self.record_sent(id, &token).await;
                return Ok(settled);
            }
            Err(SendError::Withdrawn) => {
                tracing::warn!(outbox_id = id, kind = %kind, "email's lease is running out; released unsent");
                self.db
                    .write(move |conn| outbox::release(conn, id, &token, now))
                    .await?
            }
            Err(SendError::Rejected(error)) => {
                self.metrics.smtp_error("rejected");
                tracing::error!(outbox_id = id, kind = %kind, %error, "email rejected; marked failed");
                self.db
                    .write(move |conn| outbox::fail(conn, id, &token, &error))
                    .await?
            }
            Err(SendError::Deferred(error)) => {
                self.metrics.smtp_error("deferred");
                let first = row.first_deferred_at.unwrap_or(now);
                if now - first > Duration::days(DEFERRAL_LIMIT_DAYS) {
                    tracing::error!(outbox_id = id, kind = %kind, %error, "email deferred for two days; marked failed");
                    self.db
                        .write(move |conn| outbox::fail(conn, id, &token, &error))
                        .await?
                } else {
                    let retry_at = now + backoff(self.retry_secs, attempts);
                    tracing::warn!(outbox_id = id, kind = %kind, %error, %retry_at, "email deferred by the server");
                    self.db
                        .write(move |conn| {
                            outbox::defer(conn, id, &token, &error, retry_at, Some(first))
                        })
                        .await?
                }
            }
            Err(SendError::Unreachable(error)) => {
                self.metrics.smtp_error("unreachable");
                // Not a reply from a server: retried without limit, and it does not start the
                // two-day clock of 4xx deferrals.
                let retry_at: NaiveDateTime = now + backoff(self.retry_secs, attempts);
                tracing::warn!(outbox_id = id, kind = %kind, %error, %retry_at, "mail server unreachable; will retry");
                let first = row.first_deferred_at;
                self.db
                    .write(move |conn| outbox::defer(conn, id, &token, &error, retry_at, first))
                    .await?
            }
        };
        if !kept {
            tracing::warn!(outbox_id = id, kind = %kind, "email's lease was lost; its outcome is left to the worker that holds it");
        }
        Ok(settled)
    }

    /// Renews the lease every step deadline; returns only when the lease was lost.
    async fn keep_lease(&self, id: i32, token: &str, handover: &Handover) {
        loop {
            tokio::time::sleep(self.step_timeout).await;
            let renewed_at = Instant::now();
            let lease_until = self.lease_until();
            let token = token.to_string();
            match self
                .db
                .write(move |conn| outbox::renew(conn, id, &token, lease_until))
                .await
            {
                Ok(true) => handover.extend(renewed_at + self.lease()),
                Ok(false) => return,
                // The lease still runs; the hand-over checks how much of it is left.
                Err(e) => {
                    tracing::warn!(outbox_id = id, error = %e, "email's lease could not be renewed")
                }
            }
        }
    }

    /// Records an accepted message as sent, retrying with back-off until the database
    /// answers: nothing else is claimed meanwhile, and the message is never handed over again.
    async fn record_sent(&self, id: i32, token: &str) {
        let mut pause = RECORD_RETRY_FIRST;
        loop {
            let now = self.clock.now();
            let result = if MailFaults::take(&self.faults.fail_mark_sent) {
                Err(DbError::Task(
                    "injected fault: the database did not answer".into(),
                ))
            } else {
                let token = token.to_string();
                self.db
                    .write(move |conn| outbox::mark_sent(conn, id, &token, now))
                    .await
            };
            match result {
                Ok(true) => return,
                Ok(false) => {
                    tracing::warn!(
                        outbox_id = id,
                        "email sent after its lease was lost; recorded as sent"
                    );
                    return;
                }
                Err(e) => {
                    tracing::error!(outbox_id = id, error = %e, retry_in_ms = pause.as_millis() as u64, "email sent but not yet recorded: the database does not answer; retrying");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(RECORD_RETRY_MAX);
                }
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
