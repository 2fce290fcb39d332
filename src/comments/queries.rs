//! Comment queries for the public side: the thread, and the checks a new comment goes through.

use std::collections::{HashMap, HashSet};

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::{CommentStatus, NewComment, PublicComment};
use crate::db::ids::{CommentId, PostId, UserId};
use crate::db::schema::{blocks, comment_counts, comments, posts};
use crate::db::{DbConn, DbError};

/// A post's approved comments, oldest first, plus any removed comments that approved replies
/// still hang from (shown as placeholders so the replies keep their place).
pub fn load_thread(conn: &mut DbConn, post_id: PostId) -> Result<Vec<PublicComment>, DbError> {
    let mut thread: Vec<PublicComment> = comments::table
        .filter(comments::post_id.eq(post_id))
        .filter(comments::status.eq(CommentStatus::Approved))
        .order((comments::created_at.asc(), comments::id.asc()))
        .select(PublicComment::as_select())
        .load(conn)?;
    let mut known: HashSet<CommentId> = thread.iter().map(|c| c.id).collect();
    loop {
        let missing: Vec<CommentId> = thread
            .iter()
            .filter_map(|c| c.parent_id)
            .filter(|id| !known.contains(id))
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        if missing.is_empty() {
            break;
        }
        let parents: Vec<PublicComment> = comments::table
            .filter(comments::id.eq_any(&missing))
            .select(PublicComment::as_select())
            .load(conn)?;
        for id in &missing {
            known.insert(*id);
        }
        thread.extend(parents);
    }
    thread.sort_by_key(|c| (c.created_at, c.id));
    Ok(thread)
}

/// The visitor's own waiting comments on this post, named by their signed cookie: pending,
/// or spam for a bot signal (shown to its author exactly like a held comment).
pub fn own_pending(
    conn: &mut DbConn,
    post_id: PostId,
    ids: &[CommentId],
) -> Result<Vec<PublicComment>, DbError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    Ok(comments::table
        .filter(comments::post_id.eq(post_id))
        .filter(comments::id.eq_any(ids))
        .filter(comments::deleted_at.is_null())
        .filter(
            comments::status
                .eq(CommentStatus::Pending)
                .or(comments::status
                    .eq(CommentStatus::Spam)
                    .and(comments::held_reason.eq_any(super::classify::BOT_SIGNAL_REASONS))),
        )
        .select(PublicComment::as_select())
        .load(conn)?)
}

/// Which of the visitor's own comments on this post (named by their signed cookie) were
/// posted after `since`, so that they may still edit or delete them.
pub fn own_editable(
    conn: &mut DbConn,
    post_id: PostId,
    ids: &[CommentId],
    since: NaiveDateTime,
) -> Result<Vec<CommentId>, DbError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    Ok(comments::table
        .filter(comments::post_id.eq(post_id))
        .filter(comments::id.eq_any(ids))
        .filter(comments::deleted_at.is_null())
        .filter(comments::created_at.gt(since))
        .filter(comments::status.ne(CommentStatus::Trash))
        .select(comments::id)
        .load(conn)?)
}

/// The depth (1 = top level) of an approved comment on `post_id`, or `None` when `parent_id`
/// names no approved comment on that post.
pub fn approved_parent_depth(
    conn: &mut DbConn,
    post_id: PostId,
    parent_id: CommentId,
    max_depth: u32,
) -> Result<Option<(CommentId, u32)>, DbError> {
    let parent: Option<(CommentId, Option<CommentId>)> = comments::table
        .filter(comments::id.eq(parent_id))
        .filter(comments::post_id.eq(post_id))
        .filter(comments::status.eq(CommentStatus::Approved))
        .select((comments::id, comments::parent_id))
        .first(conn)
        .optional()?;
    let Some((id, mut up)) = parent else {
        return Ok(None);
    };
    let mut depth = 1;
    while let Some(ancestor) = up {
        if depth > max_depth + 1 {
            break;
        }
        depth += 1;
        up = comments::table
            .find(ancestor)
            .select(comments::parent_id)
            .first::<Option<CommentId>>(conn)
            .optional()?
            .flatten();
    }
    Ok(Some((id, depth)))
}

/// The parent of an approved comment (used to attach over-deep replies one level up).
pub fn parent_of(conn: &mut DbConn, comment_id: CommentId) -> Result<Option<CommentId>, DbError> {
    Ok(comments::table
        .find(comment_id)
        .select(comments::parent_id)
        .first::<Option<CommentId>>(conn)
        .optional()?
        .flatten())
}

pub fn is_duplicate(
    conn: &mut DbConn,
    post_id: PostId,
    email: &str,
    body: &str,
    since: NaiveDateTime,
) -> Result<bool, DbError> {
    let found: Option<CommentId> = comments::table
        .filter(comments::author_email.eq(email))
        .filter(comments::created_at.gt(since))
        .filter(comments::post_id.eq(post_id))
        .filter(comments::body.eq(body))
        .select(comments::id)
        .first(conn)
        .optional()?;
    Ok(found.is_some())
}

/// Times of the stored comments since `since` from this network or this email, newest first.
pub fn recent_comment_times(
    conn: &mut DbConn,
    ip_network: Option<&str>,
    email: &str,
    since: NaiveDateTime,
) -> Result<(Vec<NaiveDateTime>, Vec<NaiveDateTime>), DbError> {
    let by_network = match ip_network {
        Some(network) => comments::table
            .filter(comments::ip_network.eq(network))
            .filter(comments::created_at.gt(since))
            .select(comments::created_at)
            .order(comments::created_at.desc())
            .load(conn)?,
        None => Vec::new(),
    };
    let by_email = comments::table
        .filter(comments::author_email.eq(email))
        .filter(comments::created_at.gt(since))
        .select(comments::created_at)
        .order(comments::created_at.desc())
        .load(conn)?;
    Ok((by_network, by_email))
}

/// An earlier approved comment with the same email and name.
pub fn is_returning_commenter(conn: &mut DbConn, email: &str, name: &str) -> Result<bool, DbError> {
    let found: Option<CommentId> = comments::table
        .filter(comments::author_email.eq(email))
        .filter(comments::author_name.eq(name))
        .filter(comments::status.eq(CommentStatus::Approved))
        .select(comments::id)
        .first(conn)
        .optional()?;
    Ok(found.is_some())
}

/// A moderator's block that is in force for this email or this IP network (IPv4 address or
/// IPv6 /64, as `ip_network` is stored).
pub fn is_blocked(
    conn: &mut DbConn,
    email: &str,
    address_key: &str,
    ip_network: Option<&str>,
    now: NaiveDateTime,
) -> Result<bool, DbError> {
    // An erased address's block survives as its keyed hash (`email_hash`).
    let by_email = blocks::kind
        .eq("email")
        .and(blocks::value.eq(email))
        .or(blocks::kind
            .eq("email_hash")
            .and(blocks::value.eq(address_key)));
    let query = blocks::table
        .filter(blocks::expires_at.is_null().or(blocks::expires_at.gt(now)))
        .select(blocks::id)
        .into_boxed();
    let query = match ip_network {
        Some(network) => {
            query.filter(by_email.or(blocks::kind.eq("ip").and(blocks::value.eq(network))))
        }
        None => query.filter(by_email),
    };
    Ok(query.first::<i32>(conn).optional()?.is_some())
}

pub fn insert(conn: &mut DbConn, new_comment: &NewComment<'_>) -> Result<CommentId, DbError> {
    let id = diesel::insert_into(comments::table)
        .values(new_comment)
        .returning(comments::id)
        .get_result(conn)?;
    if new_comment.status == CommentStatus::Approved {
        adjust_approved_count(conn, new_comment.post_id, 1)?;
    }
    adjust_status_count(conn, new_comment.status.as_str(), 1)?;
    Ok(id)
}

/// Inserts a comment without touching the maintained counts, for imports that insert many in
/// one transaction: the caller must call [`add_to_counts`] with the totals in that same
/// transaction.
pub fn insert_uncounted(
    conn: &mut DbConn,
    new_comment: &NewComment<'_>,
) -> Result<CommentId, DbError> {
    Ok(diesel::insert_into(comments::table)
        .values(new_comment)
        .returning(comments::id)
        .get_result(conn)?)
}

/// Adds what [`insert_uncounted`] left out: comments per status, approved comments per post.
pub fn add_to_counts(
    conn: &mut DbConn,
    by_status: &[(CommentStatus, i32)],
    approved_by_post: &[(PostId, i32)],
) -> Result<(), DbError> {
    for (status, n) in by_status {
        if *n != 0 {
            adjust_status_count(conn, status.as_str(), *n)?;
        }
    }
    for (post_id, n) in approved_by_post {
        if *n != 0 {
            adjust_approved_count(conn, *post_id, *n)?;
        }
    }
    Ok(())
}

/// Keeps `comment_counts` true; every insert, move and delete calls it.
pub fn adjust_status_count(conn: &mut DbConn, status: &str, delta: i32) -> Result<(), DbError> {
    diesel::update(comment_counts::table.find(status))
        .set(comment_counts::total.eq(comment_counts::total + delta))
        .execute(conn)?;
    Ok(())
}

/// Keeps `posts.approved_comment_count` true; every status change through approved calls it.
pub fn adjust_approved_count(
    conn: &mut DbConn,
    post_id: PostId,
    delta: i32,
) -> Result<(), DbError> {
    diesel::update(posts::table.find(post_id))
        .set(posts::approved_comment_count.eq(posts::approved_comment_count + delta))
        .execute(conn)?;
    Ok(())
}

/// How many comments have `status`, from the maintained counts (no counting of the comments
/// themselves).
pub fn status_total(conn: &mut DbConn, status: CommentStatus) -> Result<i64, DbError> {
    let total: Option<i32> = comment_counts::table
        .find(status.as_str())
        .select(comment_counts::total)
        .first(conn)
        .optional()?;
    Ok(total.map_or(0, i64::from))
}

/// A comment with the post it is on, as the moderation queue lists it, the moderation links
/// show it and the comment emails tell of it. Every query that shows a comment with its post
/// selects `QueueRow::as_select()` from `comments` joined with `posts`.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = comments)]
pub struct QueueRow {
    pub id: CommentId,
    pub post_id: PostId,
    pub parent_id: Option<CommentId>,
    pub user_id: Option<UserId>,
    pub author_name: String,
    pub author_email: String,
    pub author_url: Option<String>,
    pub body: String,
    pub status: String,
    pub held_reason: Option<String>,
    pub ip: Option<String>,
    pub user_agent: String,
    pub created_at: NaiveDateTime,
    /// The text its author's last edit replaced.
    pub previous_body: Option<String>,
    #[diesel(select_expression = posts::title)]
    pub post_title: String,
    #[diesel(select_expression = posts::slug)]
    pub post_slug: String,
}

/// Pending comments per post, for the listed posts only, in one grouped query.
pub fn pending_comment_counts(
    conn: &mut DbConn,
    post_ids: &[PostId],
) -> Result<HashMap<PostId, i64>, DbError> {
    if post_ids.is_empty() {
        return Ok(HashMap::new());
    }
    let rows: Vec<(PostId, i64)> = comments::table
        .filter(comments::post_id.eq_any(post_ids))
        .filter(comments::status.eq(CommentStatus::Pending.as_str()))
        .group_by(comments::post_id)
        .select((comments::post_id, diesel::dsl::count_star()))
        .load(conn)?;
    Ok(rows.into_iter().collect())
}
