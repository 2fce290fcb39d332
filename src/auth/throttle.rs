//! Login throttling: too many failures for one account or from one network lock further
//! attempts, even with the right password, until the oldest counted failure ages out.
//!
//! Every attempt is reserved as a failure before its password is checked, in the same write
//! transaction as the lock check, so however many attempts arrive at once, at most
//! `MAX_FAILURES` per window are ever checked; a successful login then clears the account's rows.

use chrono::{Duration, NaiveDateTime};
use diesel::prelude::*;

use crate::db::schema::login_failures;
use crate::db::{DbConn, DbError};

pub const MAX_FAILURES: usize = 10;
pub const WINDOW_MINUTES: i64 = 15;

/// Seconds until another attempt is allowed, if the account or the network is locked.
pub fn locked_for(
    conn: &mut DbConn,
    email: &str,
    ip_network: &str,
    now: NaiveDateTime,
) -> Result<Option<u64>, DbError> {
    let window = Duration::minutes(WINDOW_MINUTES);
    let since = now - window;
    let by_email: Vec<NaiveDateTime> = login_failures::table
        .filter(login_failures::email.eq(email))
        .filter(login_failures::created_at.gt(since))
        .select(login_failures::created_at)
        .order(login_failures::created_at.desc())
        .limit(MAX_FAILURES as i64)
        .load(conn)?;
    let by_network: Vec<NaiveDateTime> = login_failures::table
        .filter(login_failures::ip_network.eq(ip_network))
        .filter(login_failures::created_at.gt(since))
        .select(login_failures::created_at)
        .order(login_failures::created_at.desc())
        .limit(MAX_FAILURES as i64)
        .load(conn)?;
    let wait = [by_email, by_network]
        .iter()
        .filter(|times| times.len() >= MAX_FAILURES)
        .filter_map(|times| times.last())
        .map(|oldest| *oldest + window - now)
        .max();
    Ok(wait
        .filter(|w| *w > Duration::zero())
        .map(|w| ((w.num_milliseconds() + 999) / 1000).max(1) as u64))
}

/// What a login attempt may do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reservation {
    /// The attempt is counted as a failure until the password proves right.
    Reserved,
    /// Locked: seconds until another attempt is allowed.
    Locked { retry_after_secs: u64 },
}

/// Checks the lock and, if the attempt may go on, records it as a failure, in one transaction
/// (run it inside `Db::write`). SQLite has one writer at a time; on PostgreSQL an advisory lock
/// makes concurrent reservations take turns, so no two can both see nine failures and proceed.
pub fn reserve_attempt(
    conn: &mut DbConn,
    email: &str,
    ip_network: &str,
    now: NaiveDateTime,
) -> Result<Reservation, DbError> {
    if let DbConn::Postgresql(pg) = conn {
        diesel::sql_query("SELECT pg_advisory_xact_lock(7310011)").execute(pg)?;
    }
    if let Some(retry_after_secs) = locked_for(conn, email, ip_network, now)? {
        return Ok(Reservation::Locked { retry_after_secs });
    }
    record_failure(conn, email, ip_network, now)?;
    Ok(Reservation::Reserved)
}

fn record_failure(
    conn: &mut DbConn,
    email: &str,
    ip_network: &str,
    now: NaiveDateTime,
) -> Result<(), DbError> {
    diesel::insert_into(login_failures::table)
        .values((
            login_failures::email.eq(email),
            login_failures::ip_network.eq(ip_network),
            login_failures::created_at.eq(now),
        ))
        .execute(conn)?;
    // Old rows serve no purpose; trimming here keeps the table small without a job.
    diesel::delete(
        login_failures::table.filter(login_failures::created_at.lt(now - Duration::days(1))),
    )
    .execute(conn)?;
    Ok(())
}

pub fn clear_for_account(conn: &mut DbConn, email: &str) -> Result<(), DbError> {
    diesel::delete(login_failures::table.filter(login_failures::email.eq(email))).execute(conn)?;
    Ok(())
}
