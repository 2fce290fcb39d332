//! How often "manage my comments" links may be asked for: per address (silently, like password
//! resets, so the answer tells nothing) and per client network (429, which depends on the
//! asker alone). Every request is counted, known address or not, so both cost the same.

use chrono::{Duration, NaiveDateTime};
use diesel::prelude::*;

use crate::db::schema::my_comments_requests as requests;
use crate::db::{DbConn, DbError};

/// Links an address may be sent in an hour.
pub const PER_ADDRESS_PER_HOUR: i64 = 3;
/// Requests one network may make in an hour.
pub const PER_NETWORK_PER_HOUR: i64 = 10;

/// Seconds until `network` may ask again, if it has used up its hour.
pub fn network_wait(
    conn: &mut DbConn,
    network: &str,
    now: NaiveDateTime,
) -> Result<Option<u64>, DbError> {
    let window = Duration::hours(1);
    let recent: Vec<NaiveDateTime> = requests::table
        .filter(requests::ip_network.eq(network))
        .filter(requests::created_at.gt(now - window))
        .select(requests::created_at)
        .order(requests::created_at.desc())
        .limit(PER_NETWORK_PER_HOUR)
        .load(conn)?;
    if (recent.len() as i64) < PER_NETWORK_PER_HOUR {
        return Ok(None);
    }
    let wait = recent
        .last()
        .map_or(window, |oldest| *oldest + window - now);
    Ok(Some(((wait.num_milliseconds() + 999) / 1000).max(1) as u64))
}

/// Counts a request for the address with `address_key` from `network`, and says whether a link
/// may be sent to it (fewer than `PER_ADDRESS_PER_HOUR` in the last hour before this one).
pub fn note_request(
    conn: &mut DbConn,
    address_key: &str,
    network: &str,
    now: NaiveDateTime,
) -> Result<bool, DbError> {
    let recent: i64 = requests::table
        .filter(requests::address_key.eq(address_key))
        .filter(requests::created_at.gt(now - Duration::hours(1)))
        .count()
        .get_result(conn)?;
    diesel::insert_into(requests::table)
        .values((
            requests::address_key.eq(address_key),
            requests::ip_network.eq(network),
            requests::created_at.eq(now),
        ))
        .execute(conn)?;
    // Older rows serve no purpose (and hold a network): trimmed here, without a job.
    diesel::delete(requests::table.filter(requests::created_at.lt(now - Duration::days(1))))
        .execute(conn)?;
    Ok(recent < PER_ADDRESS_PER_HOUR)
}
