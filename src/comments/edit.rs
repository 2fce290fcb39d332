//! A commenter's own edit, within the edit window: the new text passes the same checks as a
//! new comment (blocks, keywords, links, manual approval), which may send an approved comment
//! back to pending with the reason. The text it replaced is kept for moderators, on the
//! comment and in the moderation log, and the thread version moves (the triggers of migration
//! 000006 see the new `body_html`).

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::classify::{BOT_SIGNAL_REASONS, KeywordHits, Submission, Verdict, classify};
use super::domain::{CommentBody, FormTokenCheck};
use super::queries::{adjust_approved_count, adjust_status_count};
use super::{CommentStatus, queries};
use crate::actions::Actor;
use crate::db::ids::{CommentId, PostId};
use crate::db::schema::comments;
use crate::db::{DbConn, DbError};
use crate::render::CommentFormat;
use crate::site::DiscussionSettings;

/// How much of a replaced text the moderation log keeps in one entry.
const LOGGED_TEXT_CHARS: usize = 2000;

/// A comment as its author's edit page needs it.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = comments)]
pub struct OwnComment {
    pub id: CommentId,
    pub post_id: PostId,
    pub author_name: String,
    pub author_email: String,
    pub author_url: Option<String>,
    pub body: String,
    pub status: CommentStatus,
    pub held_reason: Option<String>,
    pub ip: Option<String>,
    pub ip_network: Option<String>,
    pub user_agent: String,
    pub avatar_seed: i32,
    pub created_at: NaiveDateTime,
}

impl OwnComment {
    /// Whether its author sees it: approved, waiting, or spam for a bot signal (shown to its
    /// author exactly like a held comment).
    pub fn shown_to_author(&self) -> bool {
        match self.status {
            CommentStatus::Approved | CommentStatus::Pending => true,
            CommentStatus::Spam => self
                .held_reason
                .as_deref()
                .is_some_and(|r| BOT_SIGNAL_REASONS.contains(&r)),
            CommentStatus::Trash => false,
        }
    }

    /// When the edit window closes, or `None` when editing is off.
    pub fn editable_until(&self, settings: &DiscussionSettings) -> Option<NaiveDateTime> {
        match settings.edit_window_minutes {
            0 => None,
            minutes => Some(self.created_at + chrono::Duration::minutes(i64::from(minutes))),
        }
    }
}

/// Why a commenter may not change a comment now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotEditable {
    /// No such comment, or not one this browser posted (the same answer: 404).
    Unknown,
    /// Editing is off, or the window has passed.
    Closed,
}

/// The comment `id` if this browser (its signed cookie names `own_ids`) may change it at `now`.
pub fn find_editable(
    conn: &mut DbConn,
    id: CommentId,
    own_ids: &[CommentId],
    settings: &DiscussionSettings,
    now: NaiveDateTime,
) -> Result<Result<OwnComment, NotEditable>, DbError> {
    if !own_ids.contains(&id) {
        return Ok(Err(NotEditable::Unknown));
    }
    let found = comments::table
        .find(id)
        .filter(comments::deleted_at.is_null())
        .select(OwnComment::as_select())
        .first(conn)
        .optional()?;
    let Some(comment) = found.filter(OwnComment::shown_to_author) else {
        return Ok(Err(NotEditable::Unknown));
    };
    match comment.editable_until(settings) {
        Some(until) if now < until => Ok(Ok(comment)),
        _ => Ok(Err(NotEditable::Closed)),
    }
}

/// What an edit did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edited {
    pub post_id: PostId,
    pub from: CommentStatus,
    pub to: CommentStatus,
    pub reason: Option<String>,
}

/// The status an edited comment gets: an approved comment stays approved only if the new text
/// would have been approved; a waiting one keeps waiting; spam stays spam.
fn status_after_edit(current: CommentStatus, verdict: &Verdict) -> (CommentStatus, Option<String>) {
    match (current, verdict.status) {
        (_, CommentStatus::Spam) | (CommentStatus::Spam, _) => {
            (CommentStatus::Spam, verdict.reason.clone())
        }
        (CommentStatus::Approved, CommentStatus::Approved) => (CommentStatus::Approved, None),
        (CommentStatus::Approved, _) => (
            CommentStatus::Pending,
            verdict
                .reason
                .as_ref()
                .map(|r| format!("edited by its author: {r}")),
        ),
        (_, _) => (CommentStatus::Pending, verdict.reason.clone()),
    }
}

/// Replaces the text of `comment` with `body`, in the caller's write transaction. `keywords`
/// were matched against the new text (and the comment's other fields) before it began.
#[allow(clippy::too_many_arguments)]
pub fn edit_own(
    conn: &mut DbConn,
    settings: &DiscussionSettings,
    mail: &crate::state::MailContext,
    comment: &OwnComment,
    body: &CommentBody,
    address_key: &str,
    keywords: &KeywordHits,
    actor: &Actor,
    now: NaiveDateTime,
) -> Result<Edited, DbError> {
    let blocked = queries::is_blocked(
        conn,
        &comment.author_email,
        address_key,
        comment.ip_network.as_deref(),
        now,
    )?;
    let returning =
        queries::is_returning_commenter(conn, &comment.author_email, &comment.author_name)?;
    let verdict = classify(
        settings,
        &Submission {
            staff: false,
            blocked,
            honeypot_filled: false,
            form_token: FormTokenCheck::Valid,
            name: &comment.author_name,
            email: &comment.author_email,
            website: comment.author_url.as_deref(),
            body: body.as_str(),
            ip: comment.ip.as_deref().unwrap_or(""),
            user_agent: &comment.user_agent,
            returning_commenter: returning,
            keywords,
        },
    );
    let from = comment.status;
    let (to, reason) = status_after_edit(from, &verdict);
    // A waiting comment keeps the reason it was held for unless the new text gives another.
    let reason = reason.or_else(|| {
        (to != CommentStatus::Approved)
            .then(|| comment.held_reason.clone())
            .flatten()
    });
    let body_html = CommentFormat::Markdown.render(body.as_str());
    diesel::update(comments::table.find(comment.id))
        .set((
            comments::body.eq(body.as_str()),
            comments::body_html.eq(body_html.as_str()),
            comments::format.eq(CommentFormat::Markdown),
            comments::previous_body.eq(Some(&comment.body)),
            comments::edited_at.eq(Some(now)),
            comments::status.eq(to),
            comments::held_reason.eq(reason.as_deref()),
            comments::updated_at.eq(now),
        ))
        .execute(conn)?;
    if from != to {
        if from == CommentStatus::Approved {
            adjust_approved_count(conn, comment.post_id, -1)?;
        }
        adjust_status_count(conn, from.as_str(), -1)?;
        adjust_status_count(conn, to.as_str(), 1)?;
    }
    let previous: String = comment.body.chars().take(LOGGED_TEXT_CHARS).collect();
    let ellipsis = if comment.body.chars().count() > LOGGED_TEXT_CHARS {
        "…"
    } else {
        ""
    };
    let moved = if from == to {
        String::new()
    } else {
        format!(
            " ({} → {}{})",
            from.as_str(),
            to.as_str(),
            reason
                .as_deref()
                .map(|r| format!(": {r}"))
                .unwrap_or_default()
        )
    };
    crate::audit::log(
        conn,
        Some(comment.id),
        "author-edit",
        &format!("edited by its author{moved}; previous text: {previous}{ellipsis}"),
        actor,
        now,
    )?;
    if from == CommentStatus::Approved && to == CommentStatus::Pending {
        super::notifications::comment_held(conn, mail, comment.id, now)?;
    }
    Ok(Edited {
        post_id: comment.post_id,
        from,
        to,
        reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdict(status: CommentStatus, reason: Option<&str>) -> Verdict {
        Verdict {
            status,
            reason: reason.map(str::to_string),
            rule: None,
        }
    }

    #[test]
    fn an_edit_that_would_be_held_sends_an_approved_comment_back_with_the_reason() {
        assert_eq!(
            status_after_edit(
                CommentStatus::Approved,
                &verdict(CommentStatus::Pending, Some("2 links (limit 2)"))
            ),
            (
                CommentStatus::Pending,
                Some("edited by its author: 2 links (limit 2)".into())
            )
        );
        assert_eq!(
            status_after_edit(
                CommentStatus::Approved,
                &verdict(CommentStatus::Approved, None)
            ),
            (CommentStatus::Approved, None)
        );
        assert_eq!(
            status_after_edit(
                CommentStatus::Pending,
                &verdict(CommentStatus::Approved, None)
            ),
            (CommentStatus::Pending, None)
        );
        assert_eq!(
            status_after_edit(
                CommentStatus::Approved,
                &verdict(CommentStatus::Spam, Some("disallowed keyword: x"))
            ),
            (CommentStatus::Spam, Some("disallowed keyword: x".into()))
        );
    }
}
