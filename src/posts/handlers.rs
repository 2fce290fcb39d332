//! The public listings (the index, tag and author pages) and whether a post takes comments.
//! The post page itself, which shows a post with its comment thread, is `comments::page`.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::queries::{self, Position, PublicAuthor};
use super::{Post, PostKind, Tag};
use crate::db::ids::PostId;
use crate::error::{AppError, AppResult};
use crate::http::response::html_response;
use crate::site::DiscussionSettings;
use crate::state::AppState;
use crate::views::{Layout, iso_date, post_date};

const POSTS_PER_PAGE: i64 = 10;

pub struct TagView {
    pub name: String,
    pub slug: String,
}

impl From<&Tag> for TagView {
    fn from(tag: &Tag) -> Self {
        TagView {
            name: tag.name.clone(),
            slug: tag.slug.clone(),
        }
    }
}

pub struct PostSummary {
    pub title: String,
    pub slug: String,
    pub date: String,
    pub iso_date: String,
    pub excerpt: String,
    pub author_name: String,
    pub author_slug: String,
    pub comment_count: i32,
    pub tags: Vec<TagView>,
}

#[derive(Template)]
#[template(path = "posts/index.html")]
struct IndexPage {
    layout: Layout,
    heading: Option<String>,
    intro: Option<String>,
    posts: Vec<PostSummary>,
    /// The page number; none on a page reached by a cursor.
    page: Option<i64>,
    prev_href: Option<String>,
    next_href: Option<String>,
}

#[derive(Deserialize)]
pub struct PageQuery {
    page: Option<String>,
    before: Option<String>,
    after: Option<String>,
}

/// Page numbers reach this far (OFFSET stays cheap); the links beyond them are cursors.
const NUMBERED_PAGES: i64 = 100;

fn page_number(text: Option<&str>) -> AppResult<i64> {
    match text {
        None => Ok(1),
        Some(t) => t
            .parse::<i64>()
            .ok()
            .filter(|n| (1..=NUMBERED_PAGES).contains(n))
            .ok_or(AppError::NotFound),
    }
}

/// A post's place in a listing, as a cursor: `{nanoseconds since 1970}.{id}`.
fn cursor(post: &Post) -> String {
    let nanos = post
        .published_at
        .and_utc()
        .timestamp_nanos_opt()
        .unwrap_or_default();
    format!("{nanos}.{}", post.id.0)
}

fn parse_cursor(text: &str) -> Option<(chrono::NaiveDateTime, PostId)> {
    let (nanos, id) = text.split_once('.')?;
    let at = chrono::DateTime::from_timestamp_nanos(nanos.parse().ok()?).naive_utc();
    Some((at, PostId(id.parse().ok()?)))
}

/// Where the listing asked for starts: `?before=` and `?after=` (cursors) or `?page=N`.
fn position(query: &PageQuery) -> AppResult<Position> {
    match (&query.before, &query.after, &query.page) {
        (Some(before), None, None) => parse_cursor(before)
            .map(|(at, id)| Position::Before(at, id))
            .ok_or(AppError::NotFound),
        (None, Some(after), None) => parse_cursor(after)
            .map(|(at, id)| Position::After(at, id))
            .ok_or(AppError::NotFound),
        (None, None, page) => Ok(Position::Page(page_number(page.as_deref())?)),
        _ => Err(AppError::NotFound),
    }
}

/// What a listing is filtered by.
enum Listing {
    All,
    Tag(Tag),
    Author(PublicAuthor),
}

async fn listing(
    state: &AppState,
    listing: Listing,
    position: Position,
    base_path: &str,
) -> AppResult<HttpResponse> {
    let now = state.clock.now();
    let (tag_id, author_id) = match &listing {
        Listing::All => (None, None),
        Listing::Tag(tag) => (Some(tag.id), None),
        Listing::Author(author) => (None, Some(author.id)),
    };
    let (rows, tags, more) = state
        .db
        .read(move |conn| {
            let (rows, more) =
                queries::list_visible(conn, now, tag_id, author_id, position, POSTS_PER_PAGE)?;
            let ids: Vec<PostId> = rows.iter().map(|(p, _)| p.id).collect();
            let tags = queries::tags_for_posts(conn, &ids)?;
            Ok((rows, tags, more))
        })
        .await?;
    if rows.is_empty() && position != Position::Page(1) {
        return Err(AppError::NotFound);
    }
    // Links to the neighbouring pages: numbers near the start, cursors beyond them.
    let page_href = |n: i64| {
        if n == 1 {
            base_path.to_string()
        } else {
            format!("{base_path}?page={n}")
        }
    };
    let older_href = rows
        .last()
        .map(|(post, _)| format!("{base_path}?before={}", cursor(post)));
    let newer_href = rows
        .first()
        .map(|(post, _)| format!("{base_path}?after={}", cursor(post)));
    let (page, prev_href, next_href) = match position {
        Position::Page(n) => (
            Some(n),
            (n > 1).then(|| page_href(n - 1)),
            more.then_some(older_href).flatten(),
        ),
        // Came from newer posts; older ones follow if the query found more.
        Position::Before(..) => (None, newer_href, more.then_some(older_href).flatten()),
        // `more` counts newer posts here; an older page always exists (where we came from).
        Position::After(..) => (None, more.then_some(newer_href).flatten(), older_href),
    };
    let tz = state.config.timezone;
    let posts = rows
        .into_iter()
        .map(|(post, author)| PostSummary {
            date: post_date(post.published_at, tz),
            iso_date: iso_date(post.published_at),
            tags: tags
                .get(&post.id)
                .map(|t| t.iter().map(TagView::from).collect())
                .unwrap_or_default(),
            title: post.title,
            slug: post.slug,
            excerpt: post.excerpt,
            author_name: author.display_name,
            author_slug: author.slug,
            comment_count: post.approved_comment_count,
        })
        .collect();
    let identity = state.identity();
    let (heading, intro, mut layout) = match &listing {
        // The home page is headed by the site's title, with its tagline below.
        Listing::All => (
            Some(identity.title.clone()),
            Some(identity.tagline.clone()).filter(|t| !t.trim().is_empty()),
            Layout::new(state, ""),
        ),
        Listing::Tag(tag) => {
            let mut layout = Layout::new(state, &format!("Posts tagged “{}”", tag.name));
            layout.description = Some(format!(
                "Posts tagged “{}” on {}.",
                tag.name, identity.title
            ));
            layout.feeds.push((
                format!("{} – posts tagged {}", identity.title, tag.name),
                format!("/tags/{}/feed.xml", tag.slug),
            ));
            (Some(format!("Posts tagged “{}”", tag.name)), None, layout)
        }
        Listing::Author(author) => {
            let mut layout = Layout::new(state, &author.display_name);
            layout.description = Some(if author.bio.trim().is_empty() {
                format!("Posts by {} on {}.", author.display_name, identity.title)
            } else {
                author.bio.clone()
            });
            (
                Some(format!("Posts by {}", author.display_name)),
                Some(author.bio.clone()).filter(|b| !b.trim().is_empty()),
                layout,
            )
        }
    };
    layout.canonical = Some(state.absolute(&match position {
        Position::Page(n) => page_href(n),
        Position::Before(at, id) | Position::After(at, id) => {
            let nanos = at.and_utc().timestamp_nanos_opt().unwrap_or_default();
            let key = if matches!(position, Position::Before(..)) {
                "before"
            } else {
                "after"
            };
            format!("{base_path}?{key}={nanos}.{}", id.0)
        }
    }));
    let html = IndexPage {
        layout,
        heading,
        intro,
        posts,
        page,
        prev_href,
        next_href,
    }
    .render()
    .map_err(|e| AppError::Internal(e.into()))?;
    let mut response = html_response(StatusCode::OK, html, false);
    // The same for every reader: kept for anonymous ones until the database changes.
    response
        .extensions_mut()
        .insert(crate::http::page_cache::Keep::default());
    Ok(response)
}

pub async fn index(
    state: web::Data<AppState>,
    query: web::Query<PageQuery>,
) -> AppResult<HttpResponse> {
    let position = position(&query)?;
    listing(&state, Listing::All, position, "/").await
}

pub async fn tag_index(
    state: web::Data<AppState>,
    path: web::Path<String>,
    query: web::Query<PageQuery>,
) -> AppResult<HttpResponse> {
    let position = position(&query)?;
    let slug = path.into_inner();
    let lookup = slug.clone();
    let tag = state
        .db
        .read(move |conn| queries::find_tag(conn, &lookup))
        .await?
        .ok_or(AppError::NotFound)?;
    listing(
        &state,
        Listing::Tag(tag),
        position,
        &format!("/tags/{slug}"),
    )
    .await
}

pub async fn author_index(
    state: web::Data<AppState>,
    path: web::Path<String>,
    query: web::Query<PageQuery>,
) -> AppResult<HttpResponse> {
    let position = position(&query)?;
    let slug = path.into_inner();
    let lookup = slug.clone();
    let user = state
        .db
        .read(move |conn| crate::users::find_by_slug(conn, &lookup))
        .await?
        .ok_or(AppError::NotFound)?;
    let author = PublicAuthor {
        id: user.id,
        display_name: user.display_name,
        slug: user.slug,
        bio: user.bio,
        avatar_seed: user.avatar_seed,
    };
    listing(
        &state,
        Listing::Author(author),
        position,
        &format!("/authors/{slug}"),
    )
    .await
}

/// Whether the post takes comments now: open, and not past the "close after N days" setting.
pub fn comments_open(
    post: &Post,
    settings: &DiscussionSettings,
    now: chrono::NaiveDateTime,
) -> bool {
    post.comments_open
        && settings
            .close_after_days
            .is_none_or(|days| post.published_at + chrono::Duration::days(i64::from(days)) > now)
}

/// Whether readers may comment on `post` now. Pages show the comments they have (a post that
/// became a page keeps its thread) but take no new ones.
pub fn accepts_comments(
    post: &Post,
    settings: &DiscussionSettings,
    now: chrono::NaiveDateTime,
) -> bool {
    post.kind() == PostKind::Post && comments_open(post, settings, now)
}
