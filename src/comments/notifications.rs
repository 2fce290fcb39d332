//! The comment rules that send mail: a held comment goes to the moderators, a published one to
//! the post's author, to its commenter (or a confirmation request) and to the commenter it
//! replies to. Each runs inside the write transaction that changed the comment and puts its
//! messages in the outbox through `notify::enqueue`.

use chrono::{Duration, NaiveDateTime};
use diesel::prelude::*;

use super::CommentStatus;
use super::queries::{QueueRow, status_total};
use crate::actions::Action;
use crate::db::ids::{CommentId, UserId};
use crate::db::schema::{comments, posts, users};
use crate::db::{DbConn, DbError};
use crate::notify::emails::{Approved, Confirm, Moderate, NewComment, Reply};
use crate::notify::tokens::Link;
use crate::notify::{self, AddressEvent, AddressState, address_state};
use crate::state::MailContext;
use crate::users::User;

/// The comment fields the emails need: the queue's row, and whether its author asked to be
/// told, and who wrote the post.
#[derive(Debug)]
struct CommentFacts {
    comment: QueueRow,
    notify: bool,
    post_author_id: UserId,
}

/// Deleted comments too: the caller decides from the status.
fn facts(conn: &mut DbConn, comment_id: CommentId) -> Result<Option<CommentFacts>, DbError> {
    let row: Option<(QueueRow, bool, UserId)> = comments::table
        .inner_join(posts::table)
        .filter(comments::id.eq(comment_id))
        .select((QueueRow::as_select(), comments::notify, posts::author_id))
        .first(conn)
        .optional()?;
    Ok(row.map(|(comment, notify, post_author_id)| CommentFacts {
        comment,
        notify,
        post_author_id,
    }))
}

fn comment_url(ctx: &MailContext, f: &CommentFacts) -> String {
    ctx.url(&format!(
        "/posts/{}#comment-{}",
        f.comment.post_slug, f.comment.id
    ))
}

/// A comment was held for moderation: every enabled moderator and admin gets one email with
/// links that act as them.
pub fn comment_held(
    conn: &mut DbConn,
    ctx: &MailContext,
    comment_id: CommentId,
    now: NaiveDateTime,
) -> Result<(), DbError> {
    let Some(f) = facts(conn, comment_id)? else {
        return Ok(());
    };
    if f.comment.status != CommentStatus::Pending.as_str() {
        return Ok(());
    }
    let staff: Vec<User> = users::table
        .filter(users::disabled.eq(false))
        .select(User::as_select())
        .order(users::id)
        .load(conn)?;
    let pending_count = status_total(conn, CommentStatus::Pending)?;
    let expires = now + Duration::days(7);
    for moderator in staff {
        if Some(moderator.id) == f.comment.user_id {
            continue;
        }
        let link = |action: Action| {
            ctx.link(
                &Link::Moderate {
                    comment_id,
                    action,
                    user_id: moderator.id,
                },
                expires,
                "/moderate/",
            )
        };
        let email = Moderate {
            site: ctx.site(),
            post_title: f.comment.post_title.clone(),
            post_url: ctx.url(&format!("/posts/{}", f.comment.post_slug)),
            author_name: f.comment.author_name.clone(),
            author_email: f.comment.author_email.clone(),
            author_url: f.comment.author_url.clone(),
            ip: f.comment.ip.clone(),
            comment_text: f.comment.body.clone(),
            reason: f
                .comment
                .held_reason
                .clone()
                .unwrap_or_else(|| "held for moderation".into()),
            pending_count,
            approve_url: link(Action::Approve),
            spam_url: link(Action::Spam),
            trash_url: link(Action::Trash),
            queue_url: ctx.url("/admin/comments?status=pending"),
        };
        notify::enqueue(
            conn,
            ctx,
            &email,
            &moderator.display_name,
            &moderator.email,
            None,
            now,
        )?;
    }
    Ok(())
}

/// A comment was published (approved at once, or by a moderator). In that transaction:
/// the post's author hears of it, the commenter (if they asked and confirmed) hears that it is
/// approved, and the commenter it replies to (likewise) hears of the reply. Each happens once
/// per comment, however often it is unapproved and approved again.
pub fn comment_published(
    conn: &mut DbConn,
    ctx: &MailContext,
    comment_id: CommentId,
    approved_by_moderator: bool,
    now: NaiveDateTime,
) -> Result<(), DbError> {
    let first_time = diesel::update(
        comments::table
            .find(comment_id)
            .filter(comments::published_notified_at.is_null()),
    )
    .set(comments::published_notified_at.eq(Some(now)))
    .execute(conn)?
        > 0;
    if !first_time {
        return Ok(());
    }
    let Some(f) = facts(conn, comment_id)? else {
        return Ok(());
    };

    // The post's author, unless they wrote the comment.
    let author: Option<User> = users::table
        .find(f.post_author_id)
        .filter(users::disabled.eq(false))
        .select(User::as_select())
        .first(conn)
        .optional()?;
    if let Some(author) = author
        && f.comment.user_id != Some(author.id)
        && !author.email.eq_ignore_ascii_case(&f.comment.author_email)
    {
        let email = NewComment {
            site: ctx.site(),
            post_title: f.comment.post_title.clone(),
            comment_url: comment_url(ctx, &f),
            author_name: f.comment.author_name.clone(),
            author_url: f.comment.author_url.clone(),
            comment_text: f.comment.body.clone(),
            queue_url: ctx.url("/admin/comments?status=approved"),
        };
        notify::enqueue(
            conn,
            ctx,
            &email,
            &author.display_name,
            &author.email,
            None,
            now,
        )?;
    }

    // The commenter, if they asked to be told.
    if f.notify && f.comment.user_id.is_none() {
        match address_state(conn, &f.comment.author_email)? {
            AddressState::Confirmed if approved_by_moderator => {
                let unsubscribe = ctx.unsubscribe_url(&f.comment.author_email, now);
                let email = Approved {
                    site: ctx.site(),
                    name: f.comment.author_name.clone(),
                    post_title: f.comment.post_title.clone(),
                    comment_url: comment_url(ctx, &f),
                    comment_text: f.comment.body.clone(),
                    unsubscribe_url: unsubscribe.clone(),
                    my_comments_url: ctx.my_comments_url(),
                };
                notify::enqueue(
                    conn,
                    ctx,
                    &email,
                    &f.comment.author_name,
                    &f.comment.author_email,
                    Some(&unsubscribe),
                    now,
                )?;
            }
            AddressState::Unconfirmed {
                confirmation_sent: false,
            } => {
                send_confirmation(conn, ctx, &f, now)?;
            }
            _ => {}
        }
    }

    // The comment this one replies to, if its author asked and confirmed.
    if let Some(parent_id) = f.comment.parent_id
        && let Some(parent) = facts(conn, parent_id)?
        && parent.notify
        && parent.comment.user_id.is_none()
        && parent.comment.status == CommentStatus::Approved.as_str()
        && !parent
            .comment
            .author_email
            .eq_ignore_ascii_case(&f.comment.author_email)
        && address_state(conn, &parent.comment.author_email)? == AddressState::Confirmed
    {
        let unsubscribe = ctx.unsubscribe_url(&parent.comment.author_email, now);
        let email = Reply {
            site: ctx.site(),
            name: parent.comment.author_name.clone(),
            post_title: f.comment.post_title.clone(),
            reply_author: f.comment.author_name.clone(),
            reply_text: f.comment.body.clone(),
            reply_url: comment_url(ctx, &f),
            unsubscribe_url: unsubscribe.clone(),
            my_comments_url: ctx.my_comments_url(),
        };
        notify::enqueue(
            conn,
            ctx,
            &email,
            &parent.comment.author_name,
            &parent.comment.author_email,
            Some(&unsubscribe),
            now,
        )?;
    }
    Ok(())
}

/// The double opt-in message, sent once per address and only for an approved comment, so the
/// comment form cannot be used to mail strangers.
fn send_confirmation(
    conn: &mut DbConn,
    ctx: &MailContext,
    f: &CommentFacts,
    now: NaiveDateTime,
) -> Result<(), DbError> {
    notify::record_address(
        conn,
        &f.comment.author_email,
        AddressEvent::ConfirmationSent,
        now,
    )?;
    let unsubscribe = ctx.unsubscribe_url(&f.comment.author_email, now);
    let email = Confirm {
        site: ctx.site(),
        name: f.comment.author_name.clone(),
        post_title: f.comment.post_title.clone(),
        confirm_url: ctx.link(
            &Link::Confirm {
                email: f.comment.author_email.clone(),
            },
            now + Duration::days(30),
            "/confirm/",
        ),
        unsubscribe_url: unsubscribe.clone(),
        my_comments_url: ctx.my_comments_url(),
    };
    notify::enqueue(
        conn,
        ctx,
        &email,
        &f.comment.author_name,
        &f.comment.author_email,
        Some(&unsubscribe),
        now,
    )
}
