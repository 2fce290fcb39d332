//! Post queries. "Visible" means published with a publication time that has come; scheduled
//! posts become published when they are due (see `scheduler`), so the listing reads one status
//! in the order of the `posts_listing` index instead of sorting every post.

use std::collections::HashMap;

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::{NewPost, Post, PostKind, PostStatus, Tag};
use crate::db::ids::{PostId, UserId};
use crate::db::schema::{post_slugs, post_tags, posts, tags, users};
use crate::db::{DbConn, DbError};

/// The author fields a public page shows: never the email address.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = users)]
pub struct PublicAuthor {
    pub id: UserId,
    pub display_name: String,
    pub slug: String,
    pub bio: String,
    /// The stored avatar seed (migration 000017); `None` draws it from the secret.
    pub avatar_seed: Option<i32>,
}

pub fn find_by_slug(conn: &mut DbConn, slug: &str) -> Result<Option<Post>, DbError> {
    Ok(posts::table
        .filter(posts::slug.eq(slug))
        .select(Post::as_select())
        .first(conn)
        .optional()?)
}

/// A visible post of `kind` and its author.
pub fn find_visible(
    conn: &mut DbConn,
    kind: PostKind,
    slug: &str,
    now: NaiveDateTime,
) -> Result<Option<(Post, PublicAuthor)>, DbError> {
    Ok(posts::table
        .inner_join(users::table)
        .filter(posts::slug.eq(slug))
        .filter(posts::kind.eq(kind))
        .filter(posts::status.eq(PostStatus::Published))
        .filter(posts::published_at.le(now))
        .select((Post::as_select(), PublicAuthor::as_select()))
        .first(conn)
        .optional()?)
}

/// Where a page of a listing starts: a page number (the first pages, by OFFSET), or next to a
/// post (keyset: as fast on the ten-thousandth page as on the first).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Position {
    Page(i64),
    /// The posts older than this (publication time, id).
    Before(NaiveDateTime, PostId),
    /// The posts newer than this.
    After(NaiveDateTime, PostId),
}

/// From this many tagged posts on, a tag's page walks the listing index instead of sorting the
/// tag's posts: at one post in a thousand tagged, a page of ten is found within some ten thousand
/// index entries, the cost of sorting a thousand rows.
const SORT_TAGGED_BELOW: i64 = 1000;

/// One page of visible posts, newest first, and whether more follow in the page's direction
/// (older posts; for `After`, newer ones).
pub fn list_visible(
    conn: &mut DbConn,
    now: NaiveDateTime,
    tag_id: Option<i32>,
    author_id: Option<UserId>,
    position: Position,
    per_page: i64,
) -> Result<(Vec<(Post, PublicAuthor)>, bool), DbError> {
    let mut query = posts::table
        .inner_join(users::table)
        .filter(posts::kind.eq(PostKind::Post))
        .filter(posts::status.eq(PostStatus::Published))
        .select((Post::as_select(), PublicAuthor::as_select()))
        .into_boxed();
    query = match position {
        Position::Page(_) | Position::Before(..) => {
            query.order((posts::published_at.desc(), posts::id.desc()))
        }
        Position::After(..) => query.order((posts::published_at.asc(), posts::id.asc())),
    };
    // Each bound on the publication time is one range of `posts_listing`: the index can apply a
    // single upper bound, so "visible now" and "older than the cursor" become one (the earlier),
    // and the tie on the cursor's time is settled by id inside that range. Written as
    // `time < at OR (time = at AND id < id)`, the cursor was only a filter, and a deep page read
    // every newer post first.
    match position {
        Position::Page(_) => query = query.filter(posts::published_at.le(now)),
        Position::Before(at, id) => {
            query = query.filter(
                posts::published_at
                    .le(at.min(now))
                    .and(posts::published_at.lt(at).or(posts::id.lt(id))),
            );
        }
        Position::After(at, id) => {
            query = query.filter(
                posts::published_at
                    .ge(at)
                    .and(posts::published_at.le(now))
                    .and(posts::published_at.gt(at).or(posts::id.gt(id))),
            );
        }
    }
    if let Some(tag_id) = tag_id {
        let tagged = post_tags::table
            .filter(post_tags::tag_id.eq(tag_id))
            .count()
            .get_result::<i64>(conn)?;
        query = if tagged < SORT_TAGGED_BELOW {
            // A small tag: its posts, sorted (the rows the index gives for the tag, no more).
            query.filter(
                posts::id.eq_any(
                    post_tags::table
                        .filter(post_tags::tag_id.eq(tag_id))
                        .select(post_tags::post_id),
                ),
            )
        } else {
            // A common tag: walk the listing in order and keep the tagged posts, which finds a
            // page within a few hundred posts instead of sorting thousands.
            query.filter(diesel::dsl::exists(
                post_tags::table
                    .filter(post_tags::tag_id.eq(tag_id))
                    .filter(post_tags::post_id.eq(posts::id)),
            ))
        };
    }
    if let Some(author_id) = author_id {
        query = query.filter(posts::author_id.eq(author_id));
    }
    if let Position::Page(page) = position {
        query = query.offset((page - 1).max(0) * per_page);
    }
    let mut rows = query
        .limit(per_page + 1)
        .load::<(Post, PublicAuthor)>(conn)?;
    let more = rows.len() as i64 > per_page;
    rows.truncate(per_page as usize);
    if let Position::After(..) = position {
        rows.reverse();
    }
    Ok((rows, more))
}

/// One post's tags, by name. A plain equality, so the statement is prepared once per connection
/// (an `IN` list is built anew each time).
pub fn tags_for_post(conn: &mut DbConn, post_id: PostId) -> Result<Vec<Tag>, DbError> {
    Ok(post_tags::table
        .inner_join(tags::table)
        .filter(post_tags::post_id.eq(post_id))
        .select(Tag::as_select())
        .order(tags::name.asc())
        .load(conn)?)
}

pub fn tags_for_posts(
    conn: &mut DbConn,
    post_ids: &[PostId],
) -> Result<HashMap<PostId, Vec<Tag>>, DbError> {
    let rows: Vec<(PostId, Tag)> = post_tags::table
        .inner_join(tags::table)
        .filter(post_tags::post_id.eq_any(post_ids))
        .select((post_tags::post_id, Tag::as_select()))
        .order(tags::name.asc())
        .load(conn)?;
    let mut map: HashMap<PostId, Vec<Tag>> = HashMap::new();
    for (post_id, tag) in rows {
        map.entry(post_id).or_default().push(tag);
    }
    Ok(map)
}

pub fn find_tag(conn: &mut DbConn, slug: &str) -> Result<Option<Tag>, DbError> {
    Ok(tags::table
        .filter(tags::slug.eq(slug))
        .select(Tag::as_select())
        .first(conn)
        .optional()?)
}

/// Replaces a post's tags with `names` (made into slugs; empty slugs are skipped).
pub fn set_tags(conn: &mut DbConn, post_id: PostId, names: &[String]) -> Result<(), DbError> {
    diesel::delete(post_tags::table.filter(post_tags::post_id.eq(post_id))).execute(conn)?;
    let mut seen = Vec::new();
    for name in names {
        let slug = crate::text::slugify(name);
        if slug.is_empty() || seen.contains(&slug) {
            continue;
        }
        let tag_id = match find_tag(conn, &slug)? {
            Some(tag) => tag.id,
            None => diesel::insert_into(tags::table)
                .values((tags::name.eq(name.trim()), tags::slug.eq(&slug)))
                .returning(tags::id)
                .get_result(conn)?,
        };
        diesel::insert_into(post_tags::table)
            .values((post_tags::post_id.eq(post_id), post_tags::tag_id.eq(tag_id)))
            .execute(conn)?;
        seen.push(slug);
    }
    super::search::reindex(conn, post_id)
}

/// Stores a new post (and its search row, in the same transaction).
pub fn insert(conn: &mut DbConn, new_post: &NewPost<'_>) -> Result<Post, DbError> {
    let post: Post = diesel::insert_into(posts::table)
        .values((new_post, posts::created_at.eq(new_post.updated_at)))
        .returning(posts::all_columns)
        .get_result(conn)?;
    super::search::reindex(conn, post.id)?;
    Ok(post)
}

/// Changes a post (and its search row, in the same transaction).
pub fn update(conn: &mut DbConn, post_id: PostId, changes: &NewPost<'_>) -> Result<Post, DbError> {
    let post: Post = diesel::update(posts::table.find(post_id))
        .set(changes)
        .returning(posts::all_columns)
        .get_result(conn)?;
    super::search::reindex(conn, post.id)?;
    Ok(post)
}

pub fn count_posts(conn: &mut DbConn) -> Result<i64, DbError> {
    Ok(posts::table.count().get_result(conn)?)
}

pub fn find_by_id(conn: &mut DbConn, id: PostId) -> Result<Option<Post>, DbError> {
    Ok(posts::table
        .find(id)
        .select(Post::as_select())
        .first(conn)
        .optional()?)
}

/// The visible post that readers looking for a `kind` at `slug` should be sent to: the post
/// that used that slug before it was changed, or a post whose kind changed (a post that
/// became a page). `None` when there is nothing to redirect to.
pub fn find_moved(
    conn: &mut DbConn,
    kind: PostKind,
    slug: &str,
    now: NaiveDateTime,
) -> Result<Option<Post>, DbError> {
    let renamed = posts::table
        .filter(
            posts::id.eq_any(
                post_slugs::table
                    .filter(post_slugs::old_slug.eq(slug))
                    .select(post_slugs::post_id),
            ),
        )
        .filter(posts::slug.ne(slug));
    let other_kind = posts::table
        .filter(posts::slug.eq(slug))
        .filter(posts::kind.ne(kind));
    let visible = |post: &Post| post.is_visible(now);
    if let Some(post) = renamed
        .select(Post::as_select())
        .first(conn)
        .optional()?
        .filter(visible)
    {
        return Ok(Some(post));
    }
    Ok(other_kind
        .select(Post::as_select())
        .first(conn)
        .optional()?
        .filter(visible))
}

/// Whether a post other than `except` has `slug` as its address.
pub fn slug_taken(conn: &mut DbConn, slug: &str, except: Option<PostId>) -> Result<bool, DbError> {
    let mut query = posts::table
        .filter(posts::slug.eq(slug))
        .select(posts::id)
        .into_boxed();
    if let Some(id) = except {
        query = query.filter(posts::id.ne(id));
    }
    Ok(query.first::<i32>(conn).optional()?.is_some())
}

/// Whether `slug` is the old address of a post other than `except` (still redirecting).
pub fn slug_redirects_elsewhere(
    conn: &mut DbConn,
    slug: &str,
    except: Option<PostId>,
) -> Result<bool, DbError> {
    let mut query = post_slugs::table
        .filter(post_slugs::old_slug.eq(slug))
        .select(post_slugs::post_id)
        .into_boxed();
    if let Some(id) = except {
        query = query.filter(post_slugs::post_id.ne(id));
    }
    Ok(query.first::<i32>(conn).optional()?.is_some())
}

/// Keeps `old_slug` redirecting to `post_id`.
pub fn remember_old_slug(
    conn: &mut DbConn,
    old_slug: &str,
    post_id: PostId,
) -> Result<(), DbError> {
    // Delete, then insert: `on_conflict` does not compile through the MultiConnection.
    release_slug(conn, old_slug)?;
    diesel::insert_into(post_slugs::table)
        .values((
            post_slugs::old_slug.eq(old_slug),
            post_slugs::post_id.eq(post_id),
        ))
        .execute(conn)?;
    Ok(())
}

/// Ends any redirect from `slug`: a post that takes the address owns it from now on.
pub fn release_slug(conn: &mut DbConn, slug: &str) -> Result<(), DbError> {
    diesel::delete(post_slugs::table.filter(post_slugs::old_slug.eq(slug))).execute(conn)?;
    Ok(())
}

/// A post as the admin's list shows it: no bodies.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = posts)]
pub struct AdminPostRow {
    pub id: PostId,
    pub slug: String,
    pub title: String,
    pub kind: PostKind,
    pub status: PostStatus,
    pub published_at: NaiveDateTime,
    pub approved_comment_count: i32,
    pub updated_at: NaiveDateTime,
}

/// One page of posts and pages for the admin, most recently changed first; `status` `None`
/// means everything but the trash.
pub fn list_for_admin(
    conn: &mut DbConn,
    status: Option<PostStatus>,
    page: i64,
    per_page: i64,
) -> Result<(Vec<(AdminPostRow, String)>, bool), DbError> {
    let mut query = posts::table
        .inner_join(users::table)
        .select((AdminPostRow::as_select(), users::display_name))
        .order((posts::updated_at.desc(), posts::id.desc()))
        .into_boxed();
    query = match status {
        Some(status) => query.filter(posts::status.eq(status)),
        None => query.filter(posts::status.ne(PostStatus::Trash)),
    };
    let mut rows = query
        .limit(per_page + 1)
        .offset((page - 1).max(0) * per_page)
        .load::<(AdminPostRow, String)>(conn)?;
    let more = rows.len() as i64 > per_page;
    rows.truncate(per_page as usize);
    Ok((rows, more))
}

/// How many posts (and pages) have each status.
pub fn count_by_status(conn: &mut DbConn) -> Result<HashMap<String, i64>, DbError> {
    let rows: Vec<(String, i64)> = posts::table
        .group_by(posts::status)
        .select((posts::status, diesel::dsl::count_star()))
        .load(conn)?;
    Ok(rows.into_iter().collect())
}

/// Enabled users an admin can name as a post's author: (id, display name), by name.
pub fn enabled_authors(conn: &mut DbConn) -> Result<Vec<(UserId, String)>, DbError> {
    Ok(users::table
        .filter(users::disabled.eq(false))
        .select((users::id, users::display_name))
        .order((users::display_name.asc(), users::id.asc()))
        .load(conn)?)
}

/// (title, slug) of every page readers can see, by title (for the site menu's form).
pub fn visible_pages(
    conn: &mut DbConn,
    now: NaiveDateTime,
) -> Result<Vec<(String, String)>, DbError> {
    Ok(posts::table
        .filter(posts::kind.eq(PostKind::Page))
        .filter(posts::status.eq(PostStatus::Published))
        .filter(posts::published_at.le(now))
        .select((posts::title, posts::slug))
        .order(posts::title.asc())
        .limit(200)
        .load(conn)?)
}
