//! The outbox table: messages are added inside the transaction of the change that causes
//! them, claimed by a worker with a lease (safe with several servers on one database), and
//! marked sent, deferred or failed.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::schema::outbox;
use crate::db::{DbConn, DbError};

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = outbox)]
pub struct OutboxRow {
    pub id: i32,
    pub message_id: String,
    pub kind: String,
    pub to_name: String,
    pub to_address: String,
    pub subject: String,
    pub body_text: String,
    pub body_html: String,
    pub list_unsubscribe: Option<String>,
    pub status: String,
    pub attempts: i32,
    pub next_attempt_at: NaiveDateTime,
    pub locked_until: Option<NaiveDateTime>,
    pub first_deferred_at: Option<NaiveDateTime>,
    pub last_error: Option<String>,
    pub created_at: NaiveDateTime,
    pub sent_at: Option<NaiveDateTime>,
    pub lease_token: Option<String>,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = outbox)]
// None is written as NULL (each column's default), so the INSERT's SQL is the same every time
// and its prepared statement, with the triggers SQLite compiles into it, is kept and reused.
#[diesel(treat_none_as_default_value = false)]
pub struct NewOutboxRow<'a> {
    pub message_id: &'a str,
    pub kind: &'a str,
    pub to_name: &'a str,
    pub to_address: &'a str,
    pub subject: &'a str,
    pub body_text: &'a str,
    pub body_html: &'a str,
    pub list_unsubscribe: Option<&'a str>,
    pub status: &'a str,
    pub next_attempt_at: NaiveDateTime,
    pub created_at: NaiveDateTime,
}

pub fn insert(conn: &mut DbConn, row: &NewOutboxRow<'_>) -> Result<i32, DbError> {
    Ok(diesel::insert_into(outbox::table)
        .values(row)
        .returning(outbox::id)
        .get_result(conn)?)
}

/// Takes the message due first for this worker, leased until `lease_until` under the fencing
/// `token`. The UPDATE repeats the "claimable" condition, so when two servers race for a row
/// only one UPDATE matches it. One row at a time: a lease covers one message's delivery, not
/// a batch whose tail could outlive it.
pub fn claim(
    conn: &mut DbConn,
    now: NaiveDateTime,
    lease_until: NaiveDateTime,
    token: &str,
) -> Result<Option<OutboxRow>, DbError> {
    let claimable = outbox::status
        .eq("queued")
        .and(outbox::next_attempt_at.le(now))
        .or(outbox::status
            .eq("sending")
            .and(outbox::locked_until.lt(now)));
    let Some(candidate) = outbox::table
        .filter(claimable)
        .select(outbox::id)
        .order((outbox::next_attempt_at.asc(), outbox::id.asc()))
        .first::<i32>(conn)
        .optional()?
    else {
        return Ok(None);
    };
    Ok(diesel::update(
        outbox::table
            .filter(outbox::id.eq(candidate))
            .filter(claimable),
    )
    .set((
        outbox::status.eq("sending"),
        outbox::locked_until.eq(Some(lease_until)),
        outbox::lease_token.eq(Some(token)),
        outbox::attempts.eq(outbox::attempts + 1),
    ))
    .returning(outbox::all_columns)
    .get_result(conn)
    .optional()?)
}

/// The row `id` while the worker holding `token` still owns it. Every write of a worker
/// goes through this fence: one whose lease ran out and was taken by another worker changes
/// nothing.
macro_rules! leased {
    ($id:expr, $token:expr) => {
        outbox::table
            .filter(outbox::id.eq($id))
            .filter(outbox::status.eq("sending"))
            .filter(outbox::lease_token.eq($token))
    };
}

/// Extends the lease; false when it was lost (taken over, or settled by someone else).
pub fn renew(
    conn: &mut DbConn,
    id: i32,
    token: &str,
    lease_until: NaiveDateTime,
) -> Result<bool, DbError> {
    let changed = diesel::update(leased!(id, token))
        .set(outbox::locked_until.eq(Some(lease_until)))
        .execute(conn)?;
    Ok(changed > 0)
}

/// Gives a message back unsent (the server is stopping, or the lease is running out), due at
/// once, so the next worker need not wait for the lease to end.
pub fn release(
    conn: &mut DbConn,
    id: i32,
    token: &str,
    now: NaiveDateTime,
) -> Result<bool, DbError> {
    let changed = diesel::update(leased!(id, token))
        .set((
            outbox::status.eq("queued"),
            outbox::next_attempt_at.eq(now),
            outbox::locked_until.eq(None::<NaiveDateTime>),
            outbox::lease_token.eq(None::<String>),
        ))
        .execute(conn)?;
    Ok(changed > 0)
}

/// Records that an SMTP server accepted the message. Returns whether this worker still held
/// the lease. When it did not (the database was unreachable for longer than the lease), the
/// row is marked sent all the same unless it already is: the server took the message, and
/// saying so also ends the lease of any worker that took the row over, so that worker will
/// not hand it over again.
pub fn mark_sent(
    conn: &mut DbConn,
    id: i32,
    token: &str,
    now: NaiveDateTime,
) -> Result<bool, DbError> {
    let sent = || {
        (
            outbox::status.eq("sent"),
            outbox::sent_at.eq(Some(now)),
            outbox::locked_until.eq(None::<NaiveDateTime>),
            outbox::lease_token.eq(None::<String>),
            outbox::last_error.eq(None::<String>),
        )
    };
    if diesel::update(leased!(id, token))
        .set(sent())
        .execute(conn)?
        > 0
    {
        return Ok(true);
    }
    diesel::update(
        outbox::table
            .filter(outbox::id.eq(id))
            .filter(outbox::status.ne("sent")),
    )
    .set(sent())
    .execute(conn)?;
    Ok(false)
}

/// Puts the message back in the queue for `retry_at`; false when the lease was lost.
pub fn defer(
    conn: &mut DbConn,
    id: i32,
    token: &str,
    error: &str,
    retry_at: NaiveDateTime,
    first_deferred_at: Option<NaiveDateTime>,
) -> Result<bool, DbError> {
    let changed = diesel::update(leased!(id, token))
        .set((
            outbox::status.eq("queued"),
            outbox::next_attempt_at.eq(retry_at),
            outbox::locked_until.eq(None::<NaiveDateTime>),
            outbox::lease_token.eq(None::<String>),
            outbox::first_deferred_at.eq(first_deferred_at),
            outbox::last_error.eq(Some(error)),
        ))
        .execute(conn)?;
    Ok(changed > 0)
}

/// Fails the message (visible at `/admin/mail`); false when the lease was lost.
pub fn fail(conn: &mut DbConn, id: i32, token: &str, error: &str) -> Result<bool, DbError> {
    let changed = diesel::update(leased!(id, token))
        .set((
            outbox::status.eq("failed"),
            outbox::locked_until.eq(None::<NaiveDateTime>),
            outbox::lease_token.eq(None::<String>),
            outbox::last_error.eq(Some(error)),
        ))
        .execute(conn)?;
    Ok(changed > 0)
}

/// A failed (or waiting) message goes back to the front of the queue.
pub fn retry_now(conn: &mut DbConn, id: i32, now: NaiveDateTime) -> Result<bool, DbError> {
    let changed = diesel::update(
        outbox::table
            .find(id)
            .filter(outbox::status.eq_any(["failed", "queued", "held"])),
    )
    .set((
        outbox::status.eq("queued"),
        outbox::next_attempt_at.eq(now),
        outbox::first_deferred_at.eq(None::<NaiveDateTime>),
    ))
    .execute(conn)?;
    Ok(changed > 0)
}

/// Releases every held message (restored from an archive, migration 000017) to be sent now;
/// returns how many.
pub fn release_held(conn: &mut DbConn, now: NaiveDateTime) -> Result<usize, DbError> {
    Ok(
        diesel::update(outbox::table.filter(outbox::status.eq("held")))
            .set((
                outbox::status.eq("queued"),
                outbox::next_attempt_at.eq(now),
                outbox::first_deferred_at.eq(None::<NaiveDateTime>),
            ))
            .execute(conn)?,
    )
}

/// How many messages are held until an admin releases them.
pub fn count_held(conn: &mut DbConn) -> Result<i64, DbError> {
    Ok(outbox::table
        .filter(outbox::status.eq("held"))
        .count()
        .get_result(conn)?)
}

/// When the next queued message is due, for the worker's sleep.
pub fn next_due(conn: &mut DbConn) -> Result<Option<NaiveDateTime>, DbError> {
    let queued: Option<NaiveDateTime> = outbox::table
        .filter(outbox::status.eq("queued"))
        .select(diesel::dsl::min(outbox::next_attempt_at))
        .first(conn)?;
    let leased: Option<NaiveDateTime> = outbox::table
        .filter(outbox::status.eq("sending"))
        .select(diesel::dsl::min(outbox::locked_until))
        .first::<Option<NaiveDateTime>>(conn)?;
    Ok(match (queued, leased) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    })
}

pub fn count_failed(conn: &mut DbConn) -> Result<i64, DbError> {
    Ok(outbox::table
        .filter(outbox::status.eq("failed"))
        .count()
        .get_result(conn)?)
}

pub fn recent(conn: &mut DbConn, limit: i64) -> Result<Vec<OutboxRow>, DbError> {
    Ok(outbox::table
        .select(OutboxRow::as_select())
        .order(outbox::id.desc())
        .limit(limit)
        .load(conn)?)
}

/// Deletes up to `limit` messages sent before `cutoff`; returns how many. Failed and waiting
/// messages stay until they are sent.
pub fn delete_sent_before(
    conn: &mut DbConn,
    cutoff: NaiveDateTime,
    limit: i64,
) -> Result<usize, DbError> {
    let ids: Vec<i32> = outbox::table
        .filter(outbox::status.eq("sent"))
        .filter(outbox::sent_at.lt(cutoff))
        .select(outbox::id)
        .order(outbox::id)
        .limit(limit)
        .load(conn)?;
    if ids.is_empty() {
        return Ok(0);
    }
    Ok(diesel::delete(outbox::table.filter(outbox::id.eq_any(&ids))).execute(conn)?)
}

/// What `/healthz` and the admin's mail page say about the outbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueSummary {
    pub failed: i64,
    /// Messages not sent yet: waiting for their next attempt, or being sent right now.
    pub queued: i64,
    /// Of those, the messages being sent right now.
    pub sending: i64,
    /// When the oldest of them was written.
    pub oldest_queued_at: Option<NaiveDateTime>,
}

impl QueueSummary {
    /// How long the oldest unsent message has waited at `now`; 0 when nothing waits.
    pub fn oldest_queued_secs(&self, now: NaiveDateTime) -> i64 {
        self.oldest_queued_at
            .map_or(0, |at| (now - at).num_seconds().max(0))
    }
}

pub fn queue_summary(conn: &mut DbConn) -> Result<QueueSummary, DbError> {
    let failed = count_failed(conn)?;
    // A row being sent counts as queued: with a dead server it stays in that state for the
    // whole SMTP deadline, and it is still mail that has not left.
    let (queued, oldest_queued_at): (i64, Option<NaiveDateTime>) = outbox::table
        .filter(outbox::status.eq_any(["queued", "sending"]))
        .select((
            diesel::dsl::count_star(),
            diesel::dsl::min(outbox::created_at),
        ))
        .first(conn)?;
    let sending = outbox::table
        .filter(outbox::status.eq("sending"))
        .count()
        .get_result(conn)?;
    Ok(QueueSummary {
        failed,
        queued,
        sending,
        oldest_queued_at,
    })
}
