//! Server-side sessions: a random 256-bit id in an HttpOnly cookie, only its hash in the
//! database; idle and absolute timeouts; a fresh id at every login.

use actix_web::HttpRequest;
use actix_web::cookie::{Cookie, SameSite, time::Duration as CookieDuration};
use chrono::{Duration, NaiveDateTime};
use diesel::prelude::*;

use super::Staff;
use crate::crypto::{random_token, token_hash};
use crate::db::ids::UserId;
use crate::db::schema::{sessions, users};
use crate::db::{DbConn, DbError};
use crate::users::User;

pub const IDLE_TIMEOUT_MINUTES: i64 = 30;
pub const ABSOLUTE_TIMEOUT_HOURS: i64 = 12;
/// A session's last-seen time is written at most this often, not on every request.
pub const TOUCH_EVERY_SECS: i64 = 60;

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
    user_id: UserId,
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

/// What a session id stands for at a moment, decided without writing anything.
pub enum Lookup {
    /// Live; `touch` when its last-seen time is old enough to be moved forward.
    Live { staff: Box<Staff>, touch: bool },
    /// Past a timeout, or its user is disabled: to be deleted.
    Dead { id_hash: String },
}

/// A session as stored, with its user and the notice it has not seen: what a request is judged
/// on, and what `kept::Sessions` keeps while nothing is committed.
#[derive(Debug, Clone)]
pub struct Stored {
    pub staff: Staff,
    created_at: NaiveDateTime,
    last_seen_at: NaiveDateTime,
}

/// Reads the session whose id hashes to `id_hash` (`crypto::token_hash`), in one trip to the
/// database: a read only, so that admin pages do not each queue for SQLite's single writer.
pub fn read(
    conn: &mut DbConn,
    id_hash: &str,
    now: NaiveDateTime,
) -> Result<Option<Stored>, DbError> {
    let found: Option<(String, NaiveDateTime, NaiveDateTime, User)> = sessions::table
        .inner_join(users::table)
        .filter(sessions::id_hash.eq(id_hash))
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
    Ok(Some(Stored {
        staff: Staff {
            user,
            session_hash: id_hash.to_string(),
            csrf_token,
            notice: super::notice::unseen(conn, id_hash, now)?,
        },
        created_at,
        last_seen_at,
    }))
}

impl Stored {
    /// What this session stands for at `now`: the timeouts and a disabled user end it. The
    /// guard does the rare write (touch or end) afterwards.
    pub fn judge(&self, now: NaiveDateTime) -> Lookup {
        let expired = now - self.last_seen_at > Duration::minutes(IDLE_TIMEOUT_MINUTES)
            || now - self.created_at > Duration::hours(ABSOLUTE_TIMEOUT_HOURS);
        if expired || self.staff.user.disabled {
            return Lookup::Dead {
                id_hash: self.staff.session_hash.clone(),
            };
        }
        Lookup::Live {
            touch: now - self.last_seen_at > Duration::seconds(TOUCH_EVERY_SECS),
            staff: Box::new(self.staff.clone()),
        }
    }
}

/// Moves a live session's last-seen time forward.
pub fn touch(conn: &mut DbConn, id_hash: &str, now: NaiveDateTime) -> Result<(), DbError> {
    diesel::update(sessions::table.find(id_hash))
        .set(sessions::last_seen_at.eq(now))
        .execute(conn)?;
    Ok(())
}

pub fn end(conn: &mut DbConn, id_hash: &str) -> Result<(), DbError> {
    diesel::delete(sessions::table.find(id_hash)).execute(conn)?;
    Ok(())
}

pub fn end_by_id(conn: &mut DbConn, id: &str) -> Result<(), DbError> {
    end(conn, &token_hash(id))
}

/// Deletes sessions past either timeout, which `Stored::judge` would refuse anyway: a session nobody
/// comes back to would otherwise keep its address and browser forever.
pub fn delete_expired(conn: &mut DbConn, now: NaiveDateTime) -> Result<usize, DbError> {
    Ok(diesel::delete(
        sessions::table.filter(
            sessions::last_seen_at
                .lt(now - Duration::minutes(IDLE_TIMEOUT_MINUTES))
                .or(sessions::created_at.lt(now - Duration::hours(ABSOLUTE_TIMEOUT_HOURS))),
        ),
    )
    .execute(conn)?)
}
