//! The public reading pages: the index, a post with its comments, static pages, tag and author
//! listings.

use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::http::header::HeaderValue;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::queries::{self, PublicAuthor};
use super::{Post, PostKind, Tag};
use crate::comments::domain::{HONEYPOT_FIELD, RawCommentForm, issue_form_token};
use crate::comments::thread::{self, ThreadItem};
use crate::comments::{cookies, queries as comment_queries};
use crate::error::{AppError, AppResult};
use crate::http::forms::FieldErrors;
use crate::http::response::{html_response, moved_permanently};
use crate::render::{SafeHtml, identicon_svg};
use crate::site::DiscussionSettings;
use crate::state::AppState;
use crate::thread_cache::{RenderedThread, ThreadCache, ThreadKey};
use crate::views::{ArticleMeta, Layout, comment_date, iso_date, post_date};

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
    page: i64,
    prev_href: Option<String>,
    next_href: Option<String>,
}

#[derive(Deserialize)]
pub struct PageQuery {
    page: Option<String>,
}

fn page_number(text: Option<&str>) -> AppResult<i64> {
    match text {
        None => Ok(1),
        Some(t) => t
            .parse::<i64>()
            .ok()
            .filter(|n| (1..=1_000_000).contains(n))
            .ok_or(AppError::NotFound),
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
    page: i64,
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
                queries::list_visible(conn, now, tag_id, author_id, page, POSTS_PER_PAGE)?;
            let ids: Vec<i32> = rows.iter().map(|(p, _)| p.id).collect();
            let tags = queries::tags_for_posts(conn, &ids)?;
            Ok((rows, tags, more))
        })
        .await?;
    if rows.is_empty() && page > 1 {
        return Err(AppError::NotFound);
    }
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
    let (heading, intro, mut layout) = match &listing {
        Listing::All => (None, None, Layout::new(state, "")),
        Listing::Tag(tag) => {
            let mut layout = Layout::new(state, &format!("Posts tagged “{}”", tag.name));
            layout.feeds.push((
                format!("{} – posts tagged {}", state.config.site_title, tag.name),
                format!("/tags/{}/feed.xml", tag.slug),
            ));
            (Some(format!("Posts tagged “{}”", tag.name)), None, layout)
        }
        Listing::Author(author) => (
            Some(format!("Posts by {}", author.display_name)),
            Some(author.bio.clone()).filter(|b| !b.trim().is_empty()),
            Layout::new(state, &author.display_name),
        ),
    };
    layout.canonical = Some(state.absolute(&if page > 1 {
        format!("{base_path}?page={page}")
    } else {
        base_path.to_string()
    }));
    let page_href = |n: i64| {
        if n == 1 {
            base_path.to_string()
        } else {
            format!("{base_path}?page={n}")
        }
    };
    let html = IndexPage {
        layout,
        heading,
        intro,
        posts,
        page,
        prev_href: (page > 1).then(|| page_href(page - 1)),
        next_href: more.then(|| page_href(page + 1)),
    }
    .render()
    .map_err(|e| AppError::Internal(e.into()))?;
    Ok(html_response(StatusCode::OK, html, false))
}

pub async fn index(
    state: web::Data<AppState>,
    query: web::Query<PageQuery>,
) -> AppResult<HttpResponse> {
    let page = page_number(query.page.as_deref())?;
    listing(&state, Listing::All, page, "/").await
}

pub async fn tag_index(
    state: web::Data<AppState>,
    path: web::Path<String>,
    query: web::Query<PageQuery>,
) -> AppResult<HttpResponse> {
    let page = page_number(query.page.as_deref())?;
    let slug = path.into_inner();
    let lookup = slug.clone();
    let tag = state
        .db
        .read(move |conn| queries::find_tag(conn, &lookup))
        .await?
        .ok_or(AppError::NotFound)?;
    listing(&state, Listing::Tag(tag), page, &format!("/tags/{slug}")).await
}

pub async fn author_index(
    state: web::Data<AppState>,
    path: web::Path<String>,
    query: web::Query<PageQuery>,
) -> AppResult<HttpResponse> {
    let page = page_number(query.page.as_deref())?;
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
    };
    listing(
        &state,
        Listing::Author(author),
        page,
        &format!("/authors/{slug}"),
    )
    .await
}

/// One comment as the thread prints it.
pub struct CommentView {
    pub id: i32,
    pub author_name: String,
    pub author_url: Option<String>,
    pub date: String,
    pub iso_date: String,
    pub body_html: SafeHtml,
    pub avatar: SafeHtml,
    pub badge: Option<&'static str>,
    pub depth: u32,
    pub removed: bool,
    pub awaiting: bool,
    pub can_reply: bool,
    pub opens_children: bool,
    pub closes: u32,
}

/// The comment form's state: empty, prefilled from the remember cookie, or sent back with errors.
pub struct CommentFormView {
    pub action: String,
    pub name: String,
    pub email: String,
    pub website: String,
    pub body: String,
    pub parent_id: Option<i32>,
    pub reply_to: Option<String>,
    pub notify: bool,
    pub remember: bool,
    pub errors: FieldErrors,
    pub notice: Option<String>,
    pub form_token: String,
    pub honeypot_field: &'static str,
    pub cancel_href: String,
}

#[derive(Template)]
#[template(path = "posts/show.html")]
struct PostPage {
    layout: Layout,
    post: PostView,
    thread: Arc<RenderedThread>,
    comment_heading: String,
    form: Option<CommentFormView>,
    comments_closed: bool,
    /// An admin's preview of unsaved changes: a banner, and no comment form.
    preview: bool,
}

/// One page of the thread; its HTML is kept in the thread cache, so it depends on nothing but
/// the comments and the `ThreadKey`.
#[derive(Template)]
#[template(path = "posts/thread.html")]
struct ThreadFragment<'a> {
    comments: Vec<CommentView>,
    path: &'a str,
    replies_open: bool,
    cpage: u32,
    cpages: u32,
}

struct PostView {
    title: String,
    is_page: bool,
    date: String,
    iso_date: String,
    body_html: SafeHtml,
    author_name: String,
    author_slug: String,
    author_bio: String,
    author_avatar: SafeHtml,
    tags: Vec<TagView>,
}

#[derive(Deserialize)]
pub struct PostQuery {
    cpage: Option<String>,
    replytocom: Option<String>,
}

/// What the comment form should show when the page is rendered.
pub enum FormState {
    Fresh {
        reply_to: Option<i32>,
    },
    Rejected {
        raw: Box<RawCommentForm>,
        errors: FieldErrors,
        notice: Option<String>,
    },
}

pub fn comment_heading(count: i32, title: &str) -> String {
    match count {
        0 => "No comments yet".into(),
        1 => format!("One thought on “{title}”"),
        n => format!("{n} thoughts on “{title}”"),
    }
}

/// Whether the post takes comments now: open, and not past the "close after N days" setting.
fn comments_open(post: &Post, settings: &DiscussionSettings, now: chrono::NaiveDateTime) -> bool {
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

/// Renders a post or page with its thread and form. Shared by GET and by a rejected comment
/// (which answers 422 with the same page and the input kept).
pub async fn render_post_page(
    state: &AppState,
    req: &HttpRequest,
    post: Post,
    author: PublicAuthor,
    form_state: FormState,
    cpage: u32,
    status: StatusCode,
) -> AppResult<HttpResponse> {
    let own_ids = cookies::pending_ids(req, &state.signer, state.clock.unix());
    let cache = state.thread_cache.clone();
    let now = state.clock.now();
    let (post, data) = state
        .db
        .read(move |conn| {
            let data = load_page_data(conn, &post, &own_ids, cpage, now, Some(&cache))?;
            Ok((post, data))
        })
        .await?;
    let (html, private) = post_page(state, req, post, author, form_state, data, None).await?;
    Ok(html_response(status, html, private))
}

/// The page exactly as readers would see `post` (not yet saved) with `tags`, for an admin's
/// preview: marked noindex, and without a comment form, since nothing may be posted to a
/// version that does not exist.
pub async fn render_preview(
    state: &AppState,
    req: &HttpRequest,
    post: Post,
    author: PublicAuthor,
    tags: Vec<TagView>,
) -> AppResult<HttpResponse> {
    let fresh = FormState::Fresh { reply_to: None };
    let now = state.clock.now();
    let (post, data) = state
        .db
        .read(move |conn| {
            let data = load_page_data(conn, &post, &[], 1, now, None)?;
            Ok((post, data))
        })
        .await?;
    let (html, _) = post_page(state, req, post, author, fresh, data, Some(tags)).await?;
    let mut response = html_response(StatusCode::OK, html, true);
    response.headers_mut().insert(
        actix_web::http::header::HeaderName::from_static("x-robots-tag"),
        HeaderValue::from_static("noindex, nofollow"),
    );
    Ok(response)
}

/// Where a page's thread comes from: the cache, or rows to render (and, when they are the
/// same for every reader, to keep).
enum ThreadSource {
    Cached(Arc<RenderedThread>),
    Rows {
        thread: Vec<crate::comments::PublicComment>,
        own: Vec<crate::comments::PublicComment>,
        /// Where to keep the rendering; `None` for a preview or a visitor's own pending
        /// comments.
        keep_as: Option<ThreadKey>,
    },
}

/// What a post page reads besides the post: loaded in the same blocking call as the post, so a
/// page costs one trip to the database thread pool.
pub struct PageData {
    settings: DiscussionSettings,
    /// `accepts_comments` at the moment the thread was looked up: the page and the kept thread
    /// agree on it, even at the instant comments close.
    open: bool,
    thread: ThreadSource,
    cpage: u32,
    tags: Vec<Tag>,
}

/// Loads what the page of `post` needs. The thread's comments are read only when `cache` (none
/// for a preview) has no rendering of this version of it.
fn load_page_data(
    conn: &mut crate::db::DbConn,
    post: &Post,
    own_ids: &[i32],
    cpage: u32,
    now: chrono::NaiveDateTime,
    cache: Option<&ThreadCache>,
) -> Result<PageData, crate::db::DbError> {
    let settings = DiscussionSettings::load(conn)?;
    let tags = queries::tags_for_post(conn, post.id)?;
    let own = comment_queries::own_pending(conn, post.id, own_ids)?;
    let open = accepts_comments(post, &settings, now);
    let keep_as = cache
        .filter(|_| own.is_empty())
        .map(|_| ThreadKey::new(post.thread_of(), &settings, cpage, open));
    let cached = cache
        .zip(keep_as.as_ref())
        .and_then(|(cache, key)| cache.get(key));
    let thread = match cached {
        Some(rendered) => ThreadSource::Cached(rendered),
        None => ThreadSource::Rows {
            thread: comment_queries::load_thread(conn, post.id)?,
            own,
            keep_as,
        },
    };
    Ok(PageData {
        settings,
        open,
        thread,
        cpage,
        tags,
    })
}

/// One page of the thread as HTML.
fn render_thread(
    state: &AppState,
    post: &Post,
    settings: &DiscussionSettings,
    rows: Vec<crate::comments::PublicComment>,
    own: Vec<crate::comments::PublicComment>,
    cpage: u32,
    replies_open: bool,
) -> AppResult<RenderedThread> {
    let page = thread::build(
        rows,
        own,
        settings.thread_depth,
        settings.comment_order,
        settings.comments_per_page,
        cpage,
    );
    let repliable = page
        .items
        .iter()
        .filter(|i| i.can_reply)
        .map(|i| (i.comment.id, i.comment.author_name.clone()))
        .collect();
    let tz = state.config.timezone;
    let comments: Vec<CommentView> = page
        .items
        .into_iter()
        .map(|item| comment_view(item, post.author_id, tz))
        .collect();
    let has_comments = !comments.is_empty();
    let path = post.path();
    let html = ThreadFragment {
        comments,
        path: &path,
        replies_open,
        cpage: page.page,
        cpages: page.pages,
    }
    .render()
    .map_err(|e| AppError::Internal(e.into()))?;
    Ok(RenderedThread {
        html: SafeHtml::from_stored(html),
        has_comments,
        repliable,
    })
}

/// The post page's HTML, and whether it shows the visitor their own data. `preview_tags` marks
/// an admin's preview of unsaved changes, with the tags from the form.
async fn post_page(
    state: &AppState,
    req: &HttpRequest,
    post: Post,
    author: PublicAuthor,
    form_state: FormState,
    data: PageData,
    preview_tags: Option<Vec<TagView>>,
) -> AppResult<(String, bool)> {
    let preview = preview_tags.is_some();
    let PageData {
        settings,
        open,
        thread: source,
        cpage,
        tags: stored_tags,
    } = data;
    let tags: Vec<TagView> = match preview_tags {
        Some(tags) => tags,
        None => stored_tags.iter().map(TagView::from).collect(),
    };
    let tz = state.config.timezone;
    let is_page = post.kind == PostKind::Page;
    let replies_open = open && !preview;

    let (thread, shows_own_pending) = match source {
        ThreadSource::Cached(rendered) => (rendered, false),
        ThreadSource::Rows {
            thread: rows,
            own,
            keep_as,
        } => {
            let personal = !own.is_empty();
            let rendered = Arc::new(render_thread(
                state,
                &post,
                &settings,
                rows,
                own,
                cpage,
                replies_open,
            )?);
            if let Some(key) = keep_as {
                state.thread_cache.insert(key, rendered.clone());
            }
            (rendered, personal)
        }
    };
    let shows_own_data = shows_own_pending
        || cookies::remembered(req).is_some()
        || matches!(form_state, FormState::Rejected { .. });

    let path = post.path();
    let form = replies_open.then(|| {
        let token = issue_form_token(&state.signer, post.id, state.clock.unix());
        let action = format!("/posts/{}/comments", post.slug);
        let cancel_href = format!("{path}#respond");
        let reply_name = |id: i32| thread.name_of_repliable(id).map(str::to_string);
        match form_state {
            FormState::Fresh { reply_to } => {
                let remembered = cookies::remembered(req);
                let remember = remembered.is_some();
                let remembered = remembered.unwrap_or_default();
                let reply_to = reply_to.filter(|id| reply_name(*id).is_some());
                CommentFormView {
                    action,
                    name: remembered.name,
                    email: remembered.email,
                    website: remembered.website,
                    body: String::new(),
                    reply_to: reply_to.and_then(reply_name),
                    parent_id: reply_to,
                    notify: false,
                    remember,
                    errors: FieldErrors::new(),
                    notice: None,
                    form_token: token,
                    honeypot_field: HONEYPOT_FIELD,
                    cancel_href,
                }
            }
            FormState::Rejected {
                raw,
                errors,
                notice,
            } => {
                let parent_id = raw.parent_id.trim().parse::<i32>().ok();
                CommentFormView {
                    action,
                    reply_to: parent_id.and_then(reply_name),
                    parent_id,
                    name: raw.name.clone(),
                    email: raw.email.clone(),
                    website: raw.website.clone(),
                    body: raw.body.clone(),
                    notify: raw.notify,
                    remember: raw.remember,
                    errors,
                    notice,
                    form_token: token,
                    honeypot_field: HONEYPOT_FIELD,
                    cancel_href,
                }
            }
        }
    });

    let mut layout = Layout::new(state, &post.title);
    layout.canonical = Some(state.absolute(&path));
    layout.description = Some(post.excerpt.clone()).filter(|e| !e.is_empty());
    layout.og_type = "article";
    layout.og_title = Some(post.title.clone());
    layout.noindex = preview;
    if !is_page {
        layout.article = Some(ArticleMeta {
            published_time: iso_date(post.published_at),
            modified_time: iso_date(post.updated_at.max(post.published_at)),
            author_url: state.absolute(&format!("/authors/{}", author.slug)),
            tags: tags.iter().map(|t| t.name.clone()).collect(),
        });
        layout.feeds.push((
            format!("{} – comments on “{}”", state.config.site_title, post.title),
            format!("/posts/{}/feed.xml", post.slug),
        ));
    }

    let page = PostPage {
        layout,
        comment_heading: comment_heading(post.approved_comment_count, &post.title),
        thread,
        form,
        comments_closed: !open && !preview,
        preview,
        post: PostView {
            date: post_date(post.published_at, tz),
            iso_date: iso_date(post.published_at),
            body_html: SafeHtml::from_stored(post.body_html),
            author_avatar: identicon_svg(state.signer.keyed_u32("author-avatar", &author.slug), 64),
            author_name: author.display_name,
            author_slug: author.slug,
            author_bio: author.bio,
            tags,
            title: post.title,
            is_page,
        },
    };
    let html = page.render().map_err(|e| AppError::Internal(e.into()))?;
    Ok((html, shows_own_data))
}

fn comment_view(item: ThreadItem, post_author_id: i32, tz: chrono_tz::Tz) -> CommentView {
    let c = item.comment;
    let badge = match c.user_id {
        Some(id) if id == post_author_id => Some("Author"),
        Some(_) => Some("Staff"),
        None => None,
    };
    CommentView {
        id: c.id,
        date: comment_date(c.created_at, tz),
        iso_date: iso_date(c.created_at),
        body_html: SafeHtml::from_stored(c.body_html),
        avatar: identicon_svg(c.avatar_seed as u32, 48),
        author_name: c.author_name,
        author_url: c.author_url,
        badge,
        depth: item.depth,
        removed: item.removed,
        awaiting: item.awaiting,
        can_reply: item.can_reply,
        opens_children: item.opens_children,
        closes: item.closes,
    }
}

fn parse_cpage(text: Option<&str>) -> AppResult<u32> {
    match text {
        None => Ok(1),
        Some(t) => t
            .parse::<u32>()
            .ok()
            .filter(|n| *n >= 1)
            .ok_or(AppError::NotFound),
    }
}

async fn show(
    state: web::Data<AppState>,
    req: HttpRequest,
    kind: PostKind,
    slug: String,
    query: PostQuery,
) -> AppResult<HttpResponse> {
    let now = state.clock.now();
    let cpage = parse_cpage(query.cpage.as_deref())?;
    let reply_to = query
        .replytocom
        .as_deref()
        .and_then(|r| r.parse::<i32>().ok());
    let own_ids = cookies::pending_ids(&req, &state.signer, state.clock.unix());
    let cache = state.thread_cache.clone();
    let found = state
        .db
        .read(
            move |conn| match queries::find_visible(conn, kind, &slug, now)? {
                Some((post, author)) => {
                    let data = load_page_data(conn, &post, &own_ids, cpage, now, Some(&cache))?;
                    Ok(Ok((post, author, data)))
                }
                None => Ok(Err(queries::find_moved(conn, kind, &slug, now)?)),
            },
        )
        .await?;
    let (post, author, data) = match found {
        Ok(found) => found,
        Err(Some(moved)) => return Ok(moved_permanently(&moved.path(), req.query_string())),
        Err(None) => return Err(AppError::NotFound),
    };
    let form = FormState::Fresh { reply_to };
    let (html, private) = post_page(&state, &req, post, author, form, data, None).await?;
    Ok(html_response(StatusCode::OK, html, private))
}

pub async fn show_post(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    query: web::Query<PostQuery>,
) -> AppResult<HttpResponse> {
    show(
        state,
        req,
        PostKind::Post,
        path.into_inner(),
        query.into_inner(),
    )
    .await
}

pub async fn show_page(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    query: web::Query<PostQuery>,
) -> AppResult<HttpResponse> {
    show(
        state,
        req,
        PostKind::Page,
        path.into_inner(),
        query.into_inner(),
    )
    .await
}
