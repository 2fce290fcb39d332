//! What feeds and the sitemap read. Only public columns are selected: a feed cannot print an
//! email address it never loads.

use std::collections::{HashMap, HashSet};

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::comments::CommentStatus;
use crate::db::ids::{CommentId, PostId};
use crate::db::schema::{comments, post_tags, posts, tags, users};
use crate::db::{DbConn, DbError};
use crate::posts::{PostKind, PostStatus};

/// An approved comment as a feed shows it.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = comments)]
pub struct FeedComment {
    pub id: CommentId,
    pub author_name: String,
    pub author_url: Option<String>,
    pub body_html: String,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

/// The post a feed comment belongs to.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = posts)]
pub struct CommentedPost {
    pub id: i32,
    pub slug: String,
    pub title: String,
}

/// The newest approved comments on visible posts (of one post, or of all), newest first.
///
/// For all posts, the newest approved comments are read in `comments_queue` order in batches,
/// and each batch's posts are checked for visibility, until the feed is full. Asked as one join,
/// SQLite (3.4x and later) first gathers every visible post into a Bloom filter: a scan of the
/// whole posts table on each request of a large site.
pub fn latest_comments(
    conn: &mut DbConn,
    now: NaiveDateTime,
    post_id: Option<PostId>,
    limit: i64,
) -> Result<Vec<(FeedComment, CommentedPost)>, DbError> {
    let ids = match post_id {
        Some(post_id) => comments::table
            .filter(comments::post_id.eq(post_id))
            .filter(comments::status.eq(CommentStatus::Approved))
            .filter(comments::deleted_at.is_null())
            .select(comments::id)
            .order(comments::id.desc())
            .limit(limit)
            .load::<CommentId>(conn)?,
        None => newest_on_visible_posts(conn, now, limit)?,
    };
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    Ok(comments::table
        .inner_join(posts::table)
        .filter(comments::id.eq_any(&ids))
        .filter(posts::kind.eq(PostKind::Post))
        .filter(posts::status.eq(PostStatus::Published))
        .filter(posts::published_at.le(now))
        .select((FeedComment::as_select(), CommentedPost::as_select()))
        .order(comments::id.desc())
        .load(conn)?)
}

/// Up to `limit` ids of the newest approved comments whose posts are visible, newest first.
fn newest_on_visible_posts(
    conn: &mut DbConn,
    now: NaiveDateTime,
    limit: i64,
) -> Result<Vec<CommentId>, DbError> {
    let batch = (limit * 4).max(16);
    let mut found = Vec::new();
    let mut visible: HashMap<PostId, bool> = HashMap::new();
    let mut before: Option<CommentId> = None;
    loop {
        let mut query = comments::table
            .filter(comments::status.eq(CommentStatus::Approved))
            .filter(comments::deleted_at.is_null())
            .select((comments::id, comments::post_id))
            .order(comments::id.desc())
            .limit(batch)
            .into_boxed();
        if let Some(before) = before {
            query = query.filter(comments::id.lt(before));
        }
        let rows: Vec<(CommentId, PostId)> = query.load(conn)?;
        let unknown: Vec<PostId> = rows
            .iter()
            .map(|(_, post)| *post)
            .filter(|post| !visible.contains_key(post))
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        if !unknown.is_empty() {
            let shown: HashSet<PostId> = posts::table
                .filter(posts::id.eq_any(&unknown))
                .filter(posts::kind.eq(PostKind::Post))
                .filter(posts::status.eq(PostStatus::Published))
                .filter(posts::published_at.le(now))
                .select(posts::id)
                .load::<PostId>(conn)?
                .into_iter()
                .collect();
            for post in unknown {
                visible.insert(post, shown.contains(&post));
            }
        }
        for (id, post) in &rows {
            if visible.get(post).copied().unwrap_or(false) {
                found.push(*id);
                if found.len() as i64 == limit {
                    return Ok(found);
                }
            }
        }
        match rows.last() {
            Some((last, _)) if rows.len() as i64 == batch => before = Some(*last),
            _ => return Ok(found),
        }
    }
}

/// When the site began: the first post's creation. An empty feed says it was last updated
/// then, a time that stays put, so its validators do too.
pub fn site_started(conn: &mut DbConn) -> Result<Option<NaiveDateTime>, DbError> {
    Ok(posts::table
        .select(diesel::dsl::min(posts::created_at))
        .first(conn)?)
}

/// A visible post or page in the sitemap.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = posts)]
pub struct SitemapPost {
    pub slug: String,
    pub kind: PostKind,
    pub published_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

/// Every visible post and page, newest first, at most `limit`.
pub fn sitemap_posts(
    conn: &mut DbConn,
    now: NaiveDateTime,
    limit: i64,
) -> Result<Vec<SitemapPost>, DbError> {
    Ok(posts::table
        .filter(posts::status.eq(PostStatus::Published))
        .filter(posts::published_at.le(now))
        .select(SitemapPost::as_select())
        .order((posts::published_at.desc(), posts::id.desc()))
        .limit(limit)
        .load(conn)?)
}

/// Visible posts and pages, oldest first (so a sitemap file keeps its addresses as posts are
/// added), the `n`th file of `per_file`.
pub fn sitemap_posts_file(
    conn: &mut DbConn,
    now: NaiveDateTime,
    n: i64,
    per_file: i64,
) -> Result<Vec<SitemapPost>, DbError> {
    Ok(posts::table
        .filter(posts::status.eq(PostStatus::Published))
        .filter(posts::published_at.le(now))
        .select(SitemapPost::as_select())
        .order((posts::published_at.asc(), posts::id.asc()))
        .offset((n - 1) * per_file)
        .limit(per_file)
        .load(conn)?)
}

/// How many posts and pages are visible.
pub fn visible_count(conn: &mut DbConn, now: NaiveDateTime) -> Result<i64, DbError> {
    Ok(posts::table
        .filter(posts::status.eq(PostStatus::Published))
        .filter(posts::published_at.le(now))
        .count()
        .get_result(conn)?)
}

/// The newest change to a visible post (not a page): the newest date among the tag and author
/// entries of the sitemap, since every post has an author. Read from the index on `updated_at`
/// (migration 000020), walking back from the newest change to the first visible post.
pub fn newest_post_change(
    conn: &mut DbConn,
    now: NaiveDateTime,
) -> Result<Option<NaiveDateTime>, DbError> {
    Ok(posts::table
        .filter(posts::kind.eq(PostKind::Post))
        .filter(posts::status.eq(PostStatus::Published))
        .filter(posts::published_at.le(now))
        .select(diesel::dsl::max(posts::updated_at))
        .first(conn)?)
}

/// Tags with at least one visible post: (slug, newest change among their posts).
pub fn sitemap_tags(
    conn: &mut DbConn,
    now: NaiveDateTime,
) -> Result<Vec<(String, Option<NaiveDateTime>)>, DbError> {
    Ok(tags::table
        .inner_join(post_tags::table.inner_join(posts::table))
        .filter(posts::kind.eq(PostKind::Post))
        .filter(posts::status.eq(PostStatus::Published))
        .filter(posts::published_at.le(now))
        .group_by(tags::slug)
        .select((tags::slug, diesel::dsl::max(posts::updated_at)))
        .order(tags::slug.asc())
        .load(conn)?)
}

/// Authors with at least one visible post: (slug, newest change among their posts).
pub fn sitemap_authors(
    conn: &mut DbConn,
    now: NaiveDateTime,
) -> Result<Vec<(String, Option<NaiveDateTime>)>, DbError> {
    Ok(users::table
        .inner_join(posts::table)
        .filter(posts::kind.eq(PostKind::Post))
        .filter(posts::status.eq(PostStatus::Published))
        .filter(posts::published_at.le(now))
        .group_by(users::slug)
        .select((users::slug, diesel::dsl::max(posts::updated_at)))
        .order(users::slug.asc())
        .load(conn)?)
}
