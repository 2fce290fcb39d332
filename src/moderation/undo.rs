//! What a moderator is told after an action ("Comment by Rita approved.", "12 comments marked
//! as spam.") and what Undo puts back. The notice is stored through `staff::store_notice` with
//! the moves written out here, so Undo needs nothing from the browser but the notice's id.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::Step;
use crate::actions::{Action, Actor};
use crate::comments::CommentStatus;
use crate::db::ids::{CommentId, UserId};
use crate::db::schema::{comments, posts};
use crate::db::{DbConn, DbError};
use crate::staff::{NewNotice, store_notice};
use crate::state::MailContext;

/// The moves an Undo reverses, as the notice keeps them: `id:now:from:before;…` (`-` for none).
pub fn encode(steps: &[Step]) -> String {
    steps
        .iter()
        .filter_map(|s| {
            let to = s.to?;
            Some(format!(
                "{}:{}:{}:{}",
                s.id,
                to.as_str(),
                s.from.as_str(),
                s.before.map_or("-", CommentStatus::as_str)
            ))
        })
        .collect::<Vec<_>>()
        .join(";")
}

pub fn decode(text: &str) -> Vec<Step> {
    text.split(';')
        .filter_map(|part| {
            let mut fields = part.split(':');
            let id = fields.next()?.parse::<i32>().ok()?;
            let to = CommentStatus::parse(fields.next()?)?;
            let from = CommentStatus::parse(fields.next()?)?;
            let before = match fields.next()? {
                "-" => None,
                other => Some(CommentStatus::parse(other)?),
            };
            Some(Step {
                id: CommentId(id),
                from,
                before,
                to: Some(to),
            })
        })
        .collect()
}

/// "approved", "marked as spam": what an action did, after "Comment by Rita".
pub fn past_tense(action: Action) -> &'static str {
    match action {
        Action::Approve => "approved",
        Action::Unapprove => "unapproved (pending again)",
        Action::Spam => "marked as spam",
        Action::NotSpam => "marked as not spam",
        Action::Trash => "moved to the trash",
        Action::Restore => "restored",
        Action::Delete => "deleted permanently",
    }
}

/// Where "View" goes: the comment on its post when readers can see it, else its queue tab.
pub fn view_href(slug: &str, id: CommentId, status: Option<CommentStatus>) -> String {
    match status {
        Some(CommentStatus::Approved) => format!("/posts/{slug}#comment-{id}"),
        Some(s) => format!("/admin/comments?status={}#c{id}", s.as_str()),
        None => "/admin/comments?status=all".into(),
    }
}

/// The comment's author and post, for a notice about one comment.
pub fn describe(
    conn: &mut DbConn,
    id: CommentId,
) -> Result<Option<(String, String, String)>, DbError> {
    Ok(comments::table
        .inner_join(posts::table)
        .filter(comments::id.eq(id))
        .select((comments::author_name, posts::title, posts::slug))
        .first(conn)
        .optional()?)
}

/// Names a comment for a sentence: "Comment by Rita", or "Comment #12" once its author is gone.
fn comment_by(name: &str, id: CommentId) -> String {
    if name.trim().is_empty() {
        format!("Comment #{id}")
    } else {
        format!("Comment by {name}")
    }
}

/// What the notice says after `action` was asked for `asked` comments: `moved` of them moved,
/// `unchanged` already were where it leads, the rest could not make the move.
pub fn message(
    action: Action,
    asked: usize,
    moved: usize,
    unchanged: usize,
    single: Option<(&str, CommentId)>,
) -> String {
    let skipped = asked.saturating_sub(moved + unchanged);
    let mut text = match single {
        Some((name, id)) if asked == 1 && unchanged == 1 => format!(
            "{} was already {}; nothing changed.",
            comment_by(name, id),
            past_tense(action)
        ),
        Some((name, id)) if asked == 1 && moved == 1 => {
            format!("{} {}.", comment_by(name, id), past_tense(action))
        }
        _ => {
            let noun = if moved == 1 { "comment" } else { "comments" };
            let mut text = format!("{moved} {noun} {}.", past_tense(action));
            if unchanged > 0 {
                text.push_str(&format!(" {unchanged} already were."));
            }
            text
        }
    };
    if skipped > 0 {
        let noun = if skipped == 1 { "comment" } else { "comments" };
        text.push_str(&format!(
            " {skipped} {noun} could not make that move and stayed where they were."
        ));
    }
    text
}

/// Writes the notice for a finished action (in the action's transaction); returns its id.
/// `steps` are the moves made; `unchanged` the comments that already were where it leads.
#[allow(clippy::too_many_arguments)]
pub fn record(
    conn: &mut DbConn,
    user_id: UserId,
    session_hash: Option<&str>,
    action: Action,
    ids: &[CommentId],
    steps: &[Step],
    unchanged: usize,
    now: NaiveDateTime,
) -> Result<i32, DbError> {
    let asked = ids.len();
    let (single, view) = match ids.first() {
        Some(&id) if asked == 1 => match describe(conn, id)? {
            Some((name, _, slug)) => {
                let status = steps
                    .first()
                    .map_or_else(|| action_target(action), |s| s.to);
                (Some((name, id)), Some(view_href(&slug, id, status)))
            }
            None => (Some((String::new(), id)), None),
        },
        _ => (
            None,
            steps
                .first()
                .and_then(|s| s.to)
                .map(|to| format!("/admin/comments?status={}", to.as_str())),
        ),
    };
    let text = message(
        action,
        asked,
        steps.len(),
        unchanged,
        single.as_ref().map(|(n, id)| (n.as_str(), *id)),
    );
    store_notice(
        conn,
        &NewNotice {
            user_id,
            session_hash,
            message: &text,
            undo: &encode(steps),
            view_href: view.as_deref(),
        },
        now,
    )
}

/// Where an action leads when it changed nothing (the comment already was there).
fn action_target(action: Action) -> Option<CommentStatus> {
    match action {
        Action::Approve => Some(CommentStatus::Approved),
        Action::Unapprove => Some(CommentStatus::Pending),
        Action::Spam => Some(CommentStatus::Spam),
        Action::Trash => Some(CommentStatus::Trash),
        Action::NotSpam | Action::Restore | Action::Delete => None,
    }
}

/// Undoes the moves a notice kept: each comment goes back to the status it had, unless someone
/// moved it since. Returns (put back, left alone).
pub fn undo(
    conn: &mut DbConn,
    mail: &MailContext,
    text: &str,
    actor: &Actor,
    now: NaiveDateTime,
) -> Result<(Vec<Step>, usize), DbError> {
    let mut back = Vec::new();
    let mut left = 0;
    for step in decode(text) {
        if super::put_back(conn, mail, &step, actor, now)? {
            back.push(step);
        } else {
            left += 1;
        }
    }
    Ok((back, left))
}

/// What the notice after an Undo says.
pub fn undone_message(conn: &mut DbConn, back: &[Step], left: usize) -> Result<String, DbError> {
    let mut text = match back {
        [] => "Nothing was undone.".to_string(),
        [step] => {
            let name = describe(conn, step.id)?
                .map(|(n, _, _)| n)
                .unwrap_or_default();
            format!(
                "Undone: {} is {} again.",
                comment_by(&name, step.id).replacen("Comment", "the comment", 1),
                step.from.as_str()
            )
        }
        steps => format!("Undone: {} comments are back where they were.", steps.len()),
    };
    if left > 0 {
        let noun = if left == 1 {
            "comment was"
        } else {
            "comments were"
        };
        text.push_str(&format!(
            " {left} {noun} moved by someone since and stayed as they are."
        ));
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use CommentStatus::*;

    #[test]
    fn the_moves_survive_their_round_trip_through_the_notice() {
        let steps = vec![
            Step {
                id: CommentId(3),
                from: Pending,
                before: None,
                to: Some(Approved),
            },
            Step {
                id: CommentId(9),
                from: Trash,
                before: Some(Approved),
                to: Some(Spam),
            },
        ];
        assert_eq!(decode(&encode(&steps)), steps);
        let deleted = Step {
            id: CommentId(4),
            from: Spam,
            before: None,
            to: None,
        };
        assert_eq!(encode(&[deleted]), "");
        assert!(decode("1:x:pending:-;garbage").is_empty());
    }

    #[test]
    fn notices_name_what_happened() {
        assert_eq!(
            message(Action::Approve, 1, 1, 0, Some(("Rita", CommentId(3)))),
            "Comment by Rita approved."
        );
        assert_eq!(
            message(Action::Approve, 1, 0, 1, Some(("Rita", CommentId(3)))),
            "Comment by Rita was already approved; nothing changed."
        );
        assert_eq!(
            message(Action::Spam, 12, 12, 0, None),
            "12 comments marked as spam."
        );
        assert_eq!(
            message(Action::Delete, 3, 2, 0, None),
            "2 comments deleted permanently. 1 comment could not make that move and stayed where they were."
        );
    }
}
