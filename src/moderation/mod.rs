//! Moderation: the moves a comment can make between statuses, each written to the one
//! moderation log in the same transaction.

pub mod blocks;
pub mod dashboard;
pub mod handlers;
pub mod kept;
pub mod links;
pub mod queries;
pub mod retention;
pub mod undo;

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::actions::{Action, Actor};
use crate::audit::log;
use crate::comments::CommentStatus;
use crate::comments::queries::{adjust_approved_count, adjust_status_count};
use crate::db::ids::{CommentId, PostId};
use crate::db::schema::comments;
use crate::db::{DbConn, DbError};
use crate::render::CommentFormat;

/// The moves between statuses, a moderation rule (`Action` itself lives in `crate::actions`, so
/// the signed links in emails can name it without knowing moderation).
impl Action {
    /// The actions a comment in `status` offers (same-status moves are pointless).
    pub fn available_from(status: CommentStatus) -> Vec<Action> {
        Action::ALL
            .into_iter()
            .filter(|a| matches!(a.target(status, None), Some(to) if to != Some(status)))
            .collect()
    }

    /// Where a comment in `from` goes; `None` when the move is not allowed, `Some(None)` for
    /// permanent deletion.
    fn target(
        self,
        from: CommentStatus,
        before: Option<CommentStatus>,
    ) -> Option<Option<CommentStatus>> {
        use CommentStatus::*;
        let back = before
            .filter(|b| !matches!(b, Spam | Trash))
            .unwrap_or(Pending);
        match (self, from) {
            (Action::Approve, _) => Some(Some(Approved)),
            (Action::Unapprove, Approved | Pending) => Some(Some(Pending)),
            (Action::Spam, _) => Some(Some(Spam)),
            (Action::NotSpam, Spam) => Some(Some(back)),
            (Action::Trash, _) => Some(Some(Trash)),
            (Action::Restore, Trash) => Some(Some(back)),
            (Action::Delete, Spam | Trash) => Some(None),
            _ => None,
        }
    }
}

/// One comment's move: where it was (and what it remembered), and where it went (`None`:
/// deleted). Undo puts `from` and `before` back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    pub id: CommentId,
    pub from: CommentStatus,
    pub before: Option<CommentStatus>,
    pub to: Option<CommentStatus>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Moved {
    /// The comment made this move.
    To(Step),
    /// It already had the status the action leads to.
    Unchanged,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    NotFound,
    NotAllowed { from: CommentStatus },
}

/// Moves one comment, keeping the maintained counts true and logging the move. Runs inside
/// the caller's write transaction.
pub fn apply(
    conn: &mut DbConn,
    mail: &crate::state::MailContext,
    comment_id: CommentId,
    action: Action,
    actor: &Actor,
    now: NaiveDateTime,
) -> Result<Result<Moved, Refused>, DbError> {
    let found: Option<(PostId, String, Option<String>)> = comments::table
        .find(comment_id)
        .filter(comments::deleted_at.is_null())
        .select((comments::post_id, comments::status, comments::status_before))
        .first(conn)
        .optional()?;
    let Some((post_id, status, before)) = found else {
        return Ok(Err(Refused::NotFound));
    };
    let from = CommentStatus::parse(&status).unwrap_or(CommentStatus::Pending);
    let before = before.as_deref().and_then(CommentStatus::parse);
    let Some(to) = action.target(from, before) else {
        return Ok(Err(Refused::NotAllowed { from }));
    };
    if to == Some(from) {
        return Ok(Ok(Moved::Unchanged));
    }
    if from == CommentStatus::Approved {
        adjust_approved_count(conn, post_id, -1)?;
    }
    adjust_status_count(conn, from.as_str(), -1)?;
    match to {
        Some(to) => {
            // Remember where a comment came from when it goes to spam or trash, so "not spam"
            // and "restore" can put it back.
            let remembered = if matches!(to, CommentStatus::Spam | CommentStatus::Trash) {
                Some(from.as_str())
            } else {
                None
            };
            diesel::update(comments::table.find(comment_id))
                .set((
                    comments::status.eq(to.as_str()),
                    comments::status_before.eq(remembered),
                    comments::updated_at.eq(now),
                ))
                .execute(conn)?;
            if to == CommentStatus::Approved {
                adjust_approved_count(conn, post_id, 1)?;
                crate::comments::notifications::comment_published(
                    conn, mail, comment_id, true, now,
                )?;
            }
            adjust_status_count(conn, to.as_str(), 1)?;
        }
        None => delete_permanently(conn, comment_id, now)?,
    }
    log(
        conn,
        Some(comment_id),
        action.as_str(),
        &format!(
            "{} → {}",
            from.as_str(),
            to.map_or("deleted", CommentStatus::as_str)
        ),
        actor,
        now,
    )?;
    Ok(Ok(Moved::To(Step {
        id: comment_id,
        from,
        before,
        to,
    })))
}

/// Puts a comment back where `step` took it from, if it is still where `step` left it: Undo.
/// Logged as its own entry ("undo", "spam → pending"). Returns whether it moved.
pub fn put_back(
    conn: &mut DbConn,
    mail: &crate::state::MailContext,
    step: &Step,
    actor: &Actor,
    now: NaiveDateTime,
) -> Result<bool, DbError> {
    let Some(now_status) = step.to else {
        return Ok(false);
    };
    let found: Option<(PostId, String)> = comments::table
        .find(step.id)
        .filter(comments::deleted_at.is_null())
        .select((comments::post_id, comments::status))
        .first(conn)
        .optional()?;
    let Some((post_id, status)) = found else {
        return Ok(false);
    };
    if CommentStatus::parse(&status) != Some(now_status) {
        // Someone moved it since: their move stands.
        return Ok(false);
    }
    if now_status == CommentStatus::Approved {
        adjust_approved_count(conn, post_id, -1)?;
    }
    adjust_status_count(conn, now_status.as_str(), -1)?;
    diesel::update(comments::table.find(step.id))
        .set((
            comments::status.eq(step.from.as_str()),
            comments::status_before.eq(step.before.map(CommentStatus::as_str)),
            comments::updated_at.eq(now),
        ))
        .execute(conn)?;
    adjust_status_count(conn, step.from.as_str(), 1)?;
    if step.from == CommentStatus::Approved {
        adjust_approved_count(conn, post_id, 1)?;
        crate::comments::notifications::comment_published(conn, mail, step.id, true, now)?;
    }
    log(
        conn,
        Some(step.id),
        "undo",
        &format!("{} → {}", now_status.as_str(), step.from.as_str()),
        actor,
        now,
    )?;
    Ok(true)
}

/// Deletes a comment at its author's request ("manage my comments", an erasure), whatever its
/// status: the counts are kept true and the comment goes as "Delete permanently" takes it
/// (a placeholder stays while replies hang from it). Returns the status it had, or `None`
/// when there is no such comment. The caller logs it.
pub fn delete_for_author(
    conn: &mut DbConn,
    comment_id: CommentId,
    now: NaiveDateTime,
) -> Result<Option<CommentStatus>, DbError> {
    let found: Option<(PostId, String)> = comments::table
        .find(comment_id)
        .filter(comments::deleted_at.is_null())
        .select((comments::post_id, comments::status))
        .first(conn)
        .optional()?;
    let Some((post_id, status)) = found else {
        return Ok(None);
    };
    let from = CommentStatus::parse(&status).unwrap_or(CommentStatus::Pending);
    if from == CommentStatus::Approved {
        adjust_approved_count(conn, post_id, -1)?;
    }
    adjust_status_count(conn, from.as_str(), -1)?;
    delete_permanently(conn, comment_id, now)?;
    Ok(Some(from))
}

/// Deletes a comment. One that replies still hang from stays as an empty tombstone, so the
/// public thread can show "This comment was removed." in its place.
fn delete_permanently(
    conn: &mut DbConn,
    comment_id: CommentId,
    now: NaiveDateTime,
) -> Result<(), DbError> {
    let has_replies: Option<CommentId> = comments::table
        .filter(comments::parent_id.eq(comment_id))
        .select(comments::id)
        .first(conn)
        .optional()?;
    if has_replies.is_some() {
        diesel::update(comments::table.find(comment_id))
            .set((
                comments::status.eq(CommentStatus::Trash),
                comments::author_name.eq(""),
                comments::author_email.eq(""),
                comments::author_url.eq(None::<String>),
                comments::body.eq(""),
                comments::body_html.eq(""),
                comments::previous_body.eq(None::<String>),
                comments::held_reason.eq(None::<String>),
                comments::ip.eq(None::<String>),
                comments::ip_network.eq(None::<String>),
                comments::user_agent.eq(""),
                comments::notify.eq(false),
                comments::deleted_at.eq(Some(now)),
                comments::updated_at.eq(now),
            ))
            .execute(conn)?;
    } else {
        diesel::delete(comments::table.find(comment_id)).execute(conn)?;
    }
    // The texts an author's edits replaced go with the comment.
    diesel::update(
        crate::db::schema::moderation_log::table
            .filter(crate::db::schema::moderation_log::comment_id.eq(comment_id))
            .filter(crate::db::schema::moderation_log::action.eq("author-edit")),
    )
    .set(
        crate::db::schema::moderation_log::detail
            .eq("edited by its author (the text was deleted with the comment)"),
    )
    .execute(conn)?;
    Ok(())
}

/// A moderator's reply: published at once under `parent_id` (one level up when the parent is
/// at the deepest level), and a pending parent is approved by replying to it.
#[allow(clippy::too_many_arguments)]
pub fn reply_as_staff(
    conn: &mut DbConn,
    mail: &crate::state::MailContext,
    parent_id: CommentId,
    staff: &crate::users::User,
    body: &crate::comments::domain::CommentBody,
    avatar_seed: i32,
    actor: &Actor,
    now: NaiveDateTime,
) -> Result<Result<CommentId, Refused>, DbError> {
    use crate::comments::{NewComment, queries};
    let found: Option<(PostId, String)> = comments::table
        .find(parent_id)
        .filter(comments::deleted_at.is_null())
        .select((comments::post_id, comments::status))
        .first(conn)
        .optional()?;
    let Some((post_id, status)) = found else {
        return Ok(Err(Refused::NotFound));
    };
    let from = CommentStatus::parse(&status).unwrap_or(CommentStatus::Pending);
    match from {
        CommentStatus::Approved => {}
        CommentStatus::Pending => {
            if let Err(refused) = apply(conn, mail, parent_id, Action::Approve, actor, now)? {
                return Ok(Err(refused));
            }
        }
        CommentStatus::Spam | CommentStatus::Trash => return Ok(Err(Refused::NotAllowed { from })),
    }
    let settings = crate::site::DiscussionSettings::load(conn)?;
    let attach_to =
        match queries::approved_parent_depth(conn, post_id, parent_id, settings.thread_depth)? {
            Some((id, depth)) if depth >= settings.thread_depth => {
                queries::parent_of(conn, id)?.or(Some(id))
            }
            _ => Some(parent_id),
        };
    let body_html = CommentFormat::Markdown.render(body.as_str());
    let id = queries::insert(
        conn,
        &NewComment {
            post_id,
            parent_id: attach_to,
            user_id: Some(staff.id),
            author_name: &staff.display_name,
            author_email: &staff.email,
            author_url: None,
            body: body.as_str(),
            body_html: body_html.as_str(),
            format: CommentFormat::Markdown,
            status: CommentStatus::Approved,
            held_reason: None,
            ip: actor.ip.as_deref(),
            ip_network: None,
            user_agent: "",
            avatar_seed,
            notify: false,
            created_at: now,
            updated_at: now,
        },
    )?;
    log(
        conn,
        Some(id),
        "reply",
        &format!("reply to #{parent_id}"),
        actor,
        now,
    )?;
    crate::comments::notifications::comment_published(conn, mail, id, false, now)?;
    Ok(Ok(id))
}

#[cfg(test)]
mod tests {
    use super::*;
    use CommentStatus::*;

    #[test]
    fn moves_follow_the_rules() {
        assert_eq!(Action::Delete.target(Approved, None), None);
        assert_eq!(Action::Delete.target(Spam, None), Some(None));
        assert_eq!(
            Action::NotSpam.target(Spam, Some(Approved)),
            Some(Some(Approved))
        );
        assert_eq!(Action::NotSpam.target(Spam, None), Some(Some(Pending)));
        assert_eq!(
            Action::Restore.target(Trash, Some(Spam)),
            Some(Some(Pending))
        );
        assert_eq!(Action::Restore.target(Approved, None), None);
        assert_eq!(
            Action::available_from(Pending),
            vec![Action::Approve, Action::Spam, Action::Trash]
        );
        assert_eq!(
            Action::available_from(Trash),
            vec![
                Action::Approve,
                Action::Spam,
                Action::Restore,
                Action::Delete
            ]
        );
    }
}
