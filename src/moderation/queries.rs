//! The moderation queue's queries: keyset-paginated listing, tab counts from the maintained
//! counts table, and each author's history.

use std::collections::HashMap;

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::comments::CommentStatus;
use crate::comments::queries::QueueRow;
use crate::db::ids::{CommentId, PostId};

use crate::db::schema::{comment_counts, comments, moderation_log, posts, users};
use crate::db::{DbConn, DbError};

diesel::define_sql_function!(fn lower(x: diesel::sql_types::Text) -> diesel::sql_types::Text);
diesel::define_sql_function!(fn coalesce(x: diesel::sql_types::Nullable<diesel::sql_types::Text>, y: diesel::sql_types::Text) -> diesel::sql_types::Text);

/// Which comments a queue page lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Tab {
    Pending,
    Approved,
    Spam,
    Trash,
    /// Pending and approved, as in WordPress.
    All,
}

impl Tab {
    pub const ALL: [Tab; 5] = [Tab::Pending, Tab::Approved, Tab::Spam, Tab::Trash, Tab::All];

    pub fn parse(text: &str) -> Option<Tab> {
        Tab::ALL.into_iter().find(|t| t.as_str() == text)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Tab::Pending => "pending",
            Tab::Approved => "approved",
            Tab::Spam => "spam",
            Tab::Trash => "trash",
            Tab::All => "all",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Tab::Pending => "Pending",
            Tab::Approved => "Approved",
            Tab::Spam => "Spam",
            Tab::Trash => "Trash",
            Tab::All => "All",
        }
    }

    fn statuses(self) -> Vec<CommentStatus> {
        match self {
            Tab::All => vec![CommentStatus::Pending, CommentStatus::Approved],
            Tab::Pending => vec![CommentStatus::Pending],
            Tab::Approved => vec![CommentStatus::Approved],
            Tab::Spam => vec![CommentStatus::Spam],
            Tab::Trash => vec![CommentStatus::Trash],
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct QueueFilter {
    pub post_id: Option<PostId>,
    pub search: Option<String>,
}

/// A LIKE pattern matching `text` anywhere, with its wildcards escaped.
fn contains_pattern(text: &str) -> String {
    let escaped = text
        .to_lowercase()
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    format!("%{escaped}%")
}

/// Newest first. `before` is the keyset cursor (the last id of the previous page), which stays
/// fast however deep one goes; `page` is accepted for plain links and uses an offset.
///
/// A tab of several statuses (All) reads each status on its own and merges by id: one range of
/// the `(status, id)` index per status, read newest first and stopped after a page. A single
/// `status IN (…) ORDER BY id` makes SQLite sort every matching row first when it has no
/// statistics (a million pending comments: a third of a second), or scan the whole table for a
/// few matches when most comments are spam.
pub fn list(
    conn: &mut DbConn,
    tab: Tab,
    filter: &QueueFilter,
    before: Option<CommentId>,
    page: i64,
    per_page: i64,
) -> Result<(Vec<QueueRow>, bool), DbError> {
    let skip = if before.is_none() && page > 1 {
        (page - 1) * per_page
    } else {
        0
    };
    let wanted = skip + per_page + 1;
    let mut rows: Vec<QueueRow> = Vec::new();
    for status in tab.statuses() {
        let mut query = comments::table
            .inner_join(posts::table)
            .filter(comments::status.eq(status))
            .filter(comments::deleted_at.is_null())
            .select(QueueRow::as_select())
            .order(comments::id.desc())
            .into_boxed();
        if let Some(post_id) = filter.post_id {
            query = query.filter(comments::post_id.eq(post_id));
        }
        if let Some(search) = filter.search.as_deref().filter(|s| !s.trim().is_empty()) {
            let pattern = contains_pattern(search.trim());
            query = query.filter(
                lower(comments::author_name)
                    .like(pattern.clone())
                    .escape('\\')
                    .or(lower(comments::author_email)
                        .like(pattern.clone())
                        .escape('\\'))
                    .or(lower(coalesce(comments::author_url, ""))
                        .like(pattern.clone())
                        .escape('\\'))
                    .or(lower(comments::body).like(pattern).escape('\\')),
            );
        }
        if let Some(before) = before {
            query = query.filter(comments::id.lt(before));
        }
        rows.extend(query.limit(wanted).load::<QueueRow>(conn)?);
    }
    rows.sort_by_key(|row| std::cmp::Reverse(row.id));
    let mut rows: Vec<QueueRow> = rows.into_iter().skip(skip as usize).collect();
    let more = rows.len() as i64 > per_page;
    rows.truncate(per_page as usize);
    Ok((rows, more))
}

/// Tab counts from the maintained table (no counting of the comments themselves).
pub fn tab_counts(conn: &mut DbConn) -> Result<HashMap<Tab, i64>, DbError> {
    let rows: Vec<(String, i32)> = comment_counts::table
        .select((comment_counts::status, comment_counts::total))
        .load(conn)?;
    let by_status: HashMap<String, i64> =
        rows.into_iter().map(|(s, n)| (s, i64::from(n))).collect();
    let get = |s: &str| by_status.get(s).copied().unwrap_or(0);
    Ok(HashMap::from([
        (Tab::Pending, get("pending")),
        (Tab::Approved, get("approved")),
        (Tab::Spam, get("spam")),
        (Tab::Trash, get("trash")),
        (Tab::All, get("pending") + get("approved")),
    ]))
}

/// Approved and spam counts per email, for "this author's history".
pub fn author_history(
    conn: &mut DbConn,
    emails: &[String],
) -> Result<HashMap<String, (i64, i64)>, DbError> {
    // Counted in the (email, status) index alone (migration 000019).
    let rows: Vec<(String, String, i64)> = comments::table
        .filter(comments::author_email.eq_any(emails))
        .filter(comments::status.eq_any([
            CommentStatus::Approved.as_str(),
            CommentStatus::Spam.as_str(),
        ]))
        .group_by((comments::author_email, comments::status))
        .select((
            comments::author_email,
            comments::status,
            diesel::dsl::count_star(),
        ))
        .load(conn)?;
    let mut history: HashMap<String, (i64, i64)> = HashMap::new();
    for (email, status, n) in rows {
        let entry = history.entry(email).or_default();
        if status == "approved" {
            entry.0 = n;
        } else {
            entry.1 = n;
        }
    }
    Ok(history)
}

/// Author names of the comments these rows reply to.
pub fn parent_names(
    conn: &mut DbConn,
    ids: &[CommentId],
) -> Result<HashMap<CommentId, String>, DbError> {
    let rows: Vec<(CommentId, String)> = comments::table
        .filter(comments::id.eq_any(ids))
        .select((comments::id, comments::author_name))
        .load(conn)?;
    Ok(rows.into_iter().collect())
}

/// A comment with everything the edit form and the reply need.
pub fn find(conn: &mut DbConn, id: CommentId) -> Result<Option<QueueRow>, DbError> {
    Ok(comments::table
        .inner_join(posts::table)
        .filter(comments::id.eq(id))
        .filter(comments::deleted_at.is_null())
        .select(QueueRow::as_select())
        .first(conn)
        .optional()?)
}

#[derive(Debug, Clone, Queryable)]
pub struct LogRow {
    pub id: i32,
    pub comment_id: Option<CommentId>,
    pub action: String,
    pub via: String,
    pub detail: String,
    pub ip: Option<String>,
    pub created_at: NaiveDateTime,
    pub user_name: Option<String>,
}

/// The moderation log, newest first, keyset-paginated.
pub fn audit_log(
    conn: &mut DbConn,
    before: Option<i32>,
    per_page: i64,
) -> Result<(Vec<LogRow>, bool), DbError> {
    let mut query = moderation_log::table
        .left_join(users::table)
        .select((
            moderation_log::id,
            moderation_log::comment_id,
            moderation_log::action,
            moderation_log::via,
            moderation_log::detail,
            moderation_log::ip,
            moderation_log::created_at,
            users::display_name.nullable(),
        ))
        .order(moderation_log::id.desc())
        .into_boxed();
    if let Some(before) = before {
        query = query.filter(moderation_log::id.lt(before));
    }
    let mut rows: Vec<LogRow> = query.limit(per_page + 1).load(conn)?;
    let more = rows.len() as i64 > per_page;
    rows.truncate(per_page as usize);
    Ok((rows, more))
}

/// Posts for the queue's filter menu: id and title, newest first.
pub fn post_choices(conn: &mut DbConn) -> Result<Vec<(PostId, String)>, DbError> {
    Ok(posts::table
        .filter(posts::status.ne("trash"))
        .select((posts::id, posts::title))
        .order(posts::published_at.desc())
        .limit(200)
        .load(conn)?)
}

/// The last move a person or task made to a comment, from the log.
#[derive(Debug, Clone)]
pub struct LastMove {
    pub action: String,
    pub via: String,
    pub user_name: Option<String>,
    pub created_at: NaiveDateTime,
}

/// comment, action, via, who, when
type MoveRow = (
    Option<CommentId>,
    String,
    String,
    Option<String>,
    NaiveDateTime,
);

/// The last status move of each of these comments (edits and replies are not moves). One
/// indexed look-up per page of the queue.
pub fn last_moves(
    conn: &mut DbConn,
    ids: &[CommentId],
) -> Result<HashMap<CommentId, LastMove>, DbError> {
    let rows: Vec<MoveRow> = moderation_log::table
        .left_join(users::table)
        .filter(moderation_log::comment_id.eq_any(ids.iter().map(|id| Some(*id))))
        .filter(moderation_log::action.eq_any([
            "approve",
            "unapprove",
            "spam",
            "not-spam",
            "trash",
            "restore",
            "undo",
        ]))
        .order(moderation_log::id.asc())
        .select((
            moderation_log::comment_id,
            moderation_log::action,
            moderation_log::via,
            users::display_name.nullable(),
            moderation_log::created_at,
        ))
        .load(conn)?;
    let mut moves = HashMap::new();
    for (id, action, via, user_name, created_at) in rows {
        if let Some(id) = id {
            moves.insert(
                id,
                LastMove {
                    action,
                    via,
                    user_name,
                    created_at,
                },
            );
        }
    }
    Ok(moves)
}
