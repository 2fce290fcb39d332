//! The notice a session sees on its next page ("Comment by Rita approved." with Undo): a flash
//! kept in the database, so it survives the redirect and any server of a cluster shows it. It is
//! read here, with the session itself, so that an admin page costs one trip to the database
//! for both; `staff` writes notices and marks them shown.

use chrono::{Duration, NaiveDateTime};
use diesel::prelude::*;

use crate::db::schema::admin_notices;
use crate::db::{DbConn, DbError};

/// How long a notice waits to be shown: long enough for the redirect, short enough that an old
/// one never surprises anyone.
const SHOWN_WITHIN_SECS: i64 = 120;

/// A notice as a page shows it.
#[derive(Debug, Clone)]
pub struct Notice {
    pub id: i32,
    pub message: String,
    /// Whether the page offers Undo (the form posts `notice` = `id` to `/admin/undo`).
    pub undo: bool,
    pub view_href: Option<String>,
}

/// id, message, undo, view, undone
type NoticeRow = (i32, String, String, Option<String>, Option<NaiveDateTime>);

/// The newest notice the session `session_hash` has not seen yet (a read only: most pages
/// have none).
pub fn unseen(
    conn: &mut DbConn,
    session_hash: &str,
    now: NaiveDateTime,
) -> Result<Option<Notice>, DbError> {
    let row: Option<NoticeRow> = admin_notices::table
        .filter(admin_notices::session_hash.eq(session_hash))
        .filter(admin_notices::shown_at.is_null())
        .filter(admin_notices::created_at.ge(now - Duration::seconds(SHOWN_WITHIN_SECS)))
        .order(admin_notices::id.desc())
        .select((
            admin_notices::id,
            admin_notices::message,
            admin_notices::undo,
            admin_notices::view_href,
            admin_notices::undone_at,
        ))
        .first(conn)
        .optional()?;
    Ok(row.map(|(id, message, undo, view_href, undone_at)| Notice {
        id,
        message,
        undo: !undo.is_empty() && undone_at.is_none(),
        view_href,
    }))
}
