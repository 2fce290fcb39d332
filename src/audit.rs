//! The moderation log: one row for every change a person or a background task made (to a
//! comment, a post, a user, the settings), written in the same transaction as the change.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::actions::Actor;
use crate::db::ids::CommentId;
use crate::db::schema::moderation_log;
use crate::db::{DbConn, DbError};

/// One row of the moderation log.
pub fn log(
    conn: &mut DbConn,
    comment_id: Option<CommentId>,
    action: &str,
    detail: &str,
    actor: &Actor,
    now: NaiveDateTime,
) -> Result<(), DbError> {
    diesel::insert_into(moderation_log::table)
        .values((
            moderation_log::comment_id.eq(comment_id),
            moderation_log::user_id.eq(actor.user_id),
            moderation_log::action.eq(action),
            moderation_log::via.eq(actor.via.as_str()),
            moderation_log::detail.eq(detail),
            moderation_log::ip.eq(actor.ip.as_deref()),
            moderation_log::created_at.eq(now),
        ))
        .execute(conn)?;
    Ok(())
}
