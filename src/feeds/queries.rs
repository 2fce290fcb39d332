//! What feeds and the sitemap read. Only public columns are selected: a feed cannot print an
//! email address it never loads.

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
pub fn latest_comments(
    conn: &mut DbConn,
    now: NaiveDateTime,
    post_id: Option<PostId>,
    limit: i64,
) -> Result<Vec<(FeedComment, CommentedPost)>, DbError> {
    let mut query = comments::table
        .inner_join(posts::table)
        .filter(comments::status.eq(CommentStatus::Approved))
        .filter(comments::deleted_at.is_null())
        .filter(posts::kind.eq(PostKind::Post))
        .filter(posts::status.eq(PostStatus::Published))
        .filter(posts::published_at.le(now))
        .select((FeedComment::as_select(), CommentedPost::as_select()))
        // Ids follow arrival order and are indexed with the status (`comments_queue`).
        .order(comments::id.desc())
        .limit(limit)
        .into_boxed();
    if let Some(post_id) = post_id {
        query = query.filter(comments::post_id.eq(post_id));
    }
    Ok(query.load(conn)?)
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
