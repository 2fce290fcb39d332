//! Server-side sessions: a random 256-bit id in an HttpOnly cookie, only its hash in the
//! database; idle and absolute timeouts; a fresh id at every login.

use actix_web::HttpRequest;
use actix_web::cookie::{Cookie, SameSite, time::Duration as CookieDuration};
use chrono::{Duration, NaiveDateTime};
use diesel::prelude::*;

use super::Staff;
use crate::crypto::{random_token, token_hash};
use crate::db::schema::{sessions, users};
use crate::db::{DbConn, DbError};
use crate::users::User;

pub const IDLE_TIMEOUT_MINUTES: i64 = 30;
pub const ABSOLUTE_TIMEOUT_HOURS: i64 = 12;
/// A session's last-seen time is written at most this often, not on every request.
const TOUCH_EVERY_SECS: i64 = 60;

pub fn cookie_name(secure: bool) -> &'static str {
    if secure {
        "__Host-lectern_session"
    } else {
        "lectern_session"
    }
}

pub fn session_cookie(id: String, secure: bool) -> Cookie<'static> {
    Cookie::build(cookie_name(secure), id)
        .path("/")
        .http_only(true)
        .secure(secure)
        .same_site(SameSite::Lax)
        .max_age(CookieDuration::hours(ABSOLUTE_TIMEOUT_HOURS))
        .finish()
}

pub fn removal_cookie(secure: bool) -> Cookie<'static> {
    let mut cookie = session_cookie(String::new(), secure);
    cookie.make_removal();
    cookie
}

pub fn session_id_from(req: &HttpRequest, secure: bool) -> Option<String> {
    req.cookie(cookie_name(secure))
        .map(|c| c.value().to_string())
        .filter(|v| !v.is_empty())
}

/// Starts a session; returns the id for the cookie (never stored).
pub fn create(
    conn: &mut DbConn,
    user_id: i32,
    ip: Option<&str>,
    user_agent: &str,
    now: NaiveDateTime,
) -> Result<String, DbError> {
    let id = random_token(32);
    diesel::insert_into(sessions::table)
        .values((
            sessions::id_hash.eq(token_hash(&id)),
            sessions::user_id.eq(user_id),
            sessions::csrf_token.eq(random_token(32)),
            sessions::created_at.eq(now),
            sessions::last_seen_at.eq(now),
            sessions::ip.eq(ip),
            sessions::user_agent.eq(user_agent),
        ))
        .execute(conn)?;
    Ok(id)
}

/// The staff member behind a session id, if the session is live and the user enabled. A live
/// session's last-seen time moves forward; an expired one is deleted.
pub fn resolve(conn: &mut DbConn, id: &str, now: NaiveDateTime) -> Result<Option<Staff>, DbError> {
    let hash = token_hash(id);
    let found: Option<(String, NaiveDateTime, NaiveDateTime, User)> = sessions::table
        .inner_join(users::table)
        .filter(sessions::id_hash.eq(&hash))
        .select((
            sessions::csrf_token,
            sessions::created_at,
            sessions::last_seen_at,
            User::as_select(),
        ))
        .first(conn)
        .optional()?;
    let Some((csrf_token, created_at, last_seen_at, user)) = found else {
        return Ok(None);
    };
    let expired = now - last_seen_at > Duration::minutes(IDLE_TIMEOUT_MINUTES)
        || now - created_at > Duration::hours(ABSOLUTE_TIMEOUT_HOURS);
    if expired || user.disabled {
        diesel::delete(sessions::table.find(&hash)).execute(conn)?;
        return Ok(None);
    }
    if now - last_seen_at > Duration::seconds(TOUCH_EVERY_SECS) {
        diesel::update(sessions::table.find(&hash))
            .set(sessions::last_seen_at.eq(now))
            .execute(conn)?;
    }
    Ok(Some(Staff {
        user,
        session_hash: hash,
        csrf_token,
    }))
}

pub fn end(conn: &mut DbConn, id_hash: &str) -> Result<(), DbError> {
    diesel::delete(sessions::table.find(id_hash)).execute(conn)?;
    Ok(())
}

pub fn end_by_id(conn: &mut DbConn, id: &str) -> Result<(), DbError> {
    end(conn, &token_hash(id))
}
