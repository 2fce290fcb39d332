//! The post page: a post or page with its comment thread and the comment form. It composes
//! posts and comments, so it lives here, above both (`posts` never imports `comments`).

use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::http::header::HeaderValue;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::domain::{HONEYPOT_FIELD, issue_form_token};
use super::views::{CommentFormView, FormState, Personal, StaffView, error_links, render_thread};
use super::{PublicComment, cookies, queries as comment_queries};
use crate::db::ids::CommentId;
use crate::error::{AppError, AppResult};
use crate::http::forms::FieldErrors;
use crate::http::page_cache::{Keep, TokenMaker, token_marker};
use crate::http::response::{html_response, moved_permanently};
use crate::posts::handlers::{TagView, accepts_comments};
use crate::posts::queries::{self, PublicAuthor};
use crate::posts::{Post, PostKind, Tag};
use crate::render::{SafeHtml, identicon_svg};
use crate::site::DiscussionSettings;
use crate::state::AppState;
use crate::thread_cache::{RenderedThread, ThreadCache, ThreadKey};
use crate::views::{ArticleMeta, Layout, iso_date, post_date};

#[derive(Template)]
#[template(path = "posts/show.html")]
struct PostPage {
    layout: Layout,
    post: PostView,
    /// An admin reading the page: "Edit post" links to the editor.
    edit_href: Option<String>,
    thread: Arc<RenderedThread>,
    comment_heading: String,
    form: Option<CommentFormView>,
    comments_closed: bool,
    /// An admin's preview of unsaved changes: a banner, and no comment form.
    preview: bool,
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

/// The count heading. `shows_own` says the visitor sees their own waiting comment, so the
/// page never says "No comments yet" above it.
pub fn comment_heading(count: i32, title: &str, shows_own: bool) -> String {
    match count {
        0 if shows_own => format!("Comments on “{title}”"),
        0 => "No comments yet".into(),
        1 => format!("One thought on “{title}”"),
        n => format!("{n} thoughts on “{title}”"),
    }
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
    let visitor = Visitor::of(state, req).await?;
    let site_version = state.identity().version;
    let own_ids = cookies::pending_ids(req, &state.signer, state.clock.unix());
    let cache = visitor.shared().then(|| state.thread_cache.clone());
    let now = state.clock.now();
    let (post, data) = state
        .db
        .read(move |conn| {
            let data = load_page_data(
                conn,
                &post,
                &own_ids,
                cpage,
                now,
                cache.as_deref(),
                site_version,
            )?;
            Ok((post, data))
        })
        .await?;
    let made = post_page(
        state, req, post, author, form_state, data, None, &visitor, false,
    )
    .await?;
    Ok(html_response(status, made.html, made.private))
}

/// Who is reading: a reader, or a moderator or admin signed in (whose pages show staff
/// controls, so they are private and never kept in the shared thread cache).
pub struct Visitor {
    pub staff: Option<StaffView>,
}

impl Visitor {
    pub async fn of(state: &AppState, req: &HttpRequest) -> AppResult<Visitor> {
        let staff = crate::auth::guard::current_staff(state, req)
            .await?
            .map(|staff| StaffView {
                is_admin: staff.is_admin(),
                name: staff.user.display_name,
                csrf_token: staff.csrf_token,
            });
        Ok(Visitor { staff })
    }

    /// Whether the page is the same for every reader (and its thread may be kept).
    pub fn shared(&self) -> bool {
        self.staff.is_none()
    }
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
            let data = load_page_data(conn, &post, &[], 1, now, None, 0)?;
            Ok((post, data))
        })
        .await?;
    let visitor = Visitor { staff: None };
    let made = post_page(
        state,
        req,
        post,
        author,
        fresh,
        data,
        Some(tags),
        &visitor,
        false,
    )
    .await?;
    let mut response = html_response(StatusCode::OK, made.html, true);
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
        thread: Vec<PublicComment>,
        own: Vec<PublicComment>,
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
    /// The visitor's own comments still inside the edit window.
    editable: Vec<CommentId>,
}

/// Loads what the page of `post` needs. The thread's comments are read only when `cache` (none
/// for a preview) has no rendering of this version of it.
fn load_page_data(
    conn: &mut crate::db::DbConn,
    post: &Post,
    own_ids: &[CommentId],
    cpage: u32,
    now: chrono::NaiveDateTime,
    cache: Option<&ThreadCache>,
    site_version: i64,
) -> Result<PageData, crate::db::DbError> {
    let settings = DiscussionSettings::load(conn)?;
    let tags = queries::tags_for_post(conn, post.id)?;
    let own = comment_queries::own_pending(conn, post.id, own_ids)?;
    let editable = match settings.edit_window_minutes {
        0 => Vec::new(),
        minutes => {
            let since = now - chrono::Duration::minutes(i64::from(minutes));
            comment_queries::own_editable(conn, post.id, own_ids, since)?
        }
    };
    let open = accepts_comments(post, &settings, now);
    let keep_as = cache
        .filter(|_| own.is_empty() && editable.is_empty())
        .map(|_| ThreadKey::new(post.thread_of(), &settings, cpage, open).for_site(site_version));
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
        editable,
    })
}

/// A rendered post page.
struct MadePage {
    html: String,
    /// It shows the visitor their own data.
    private: bool,
    /// How anonymous readers may be served it again without the database; `None`: never.
    keep: Option<Keep>,
}

/// The post page. `preview_tags` marks an admin's preview of unsaved changes, with the tags
/// from the form. `keepable`: the request carries no cookie, so the page is the one every
/// anonymous reader gets, and it is rendered to be kept (its form token is the marker that
/// `page_cache` replaces per response).
#[allow(clippy::too_many_arguments)]
async fn post_page(
    state: &AppState,
    req: &HttpRequest,
    post: Post,
    author: PublicAuthor,
    form_state: FormState,
    data: PageData,
    preview_tags: Option<Vec<TagView>>,
    visitor: &Visitor,
    keepable: bool,
) -> AppResult<MadePage> {
    let preview = preview_tags.is_some();
    let PageData {
        settings,
        open,
        thread: source,
        cpage,
        tags: stored_tags,
        editable,
    } = data;
    let tags: Vec<TagView> = match preview_tags {
        Some(tags) => tags,
        None => stored_tags.iter().map(TagView::from).collect(),
    };
    let tz = state.config.timezone;
    let is_page = post.kind == PostKind::Page;
    let replies_open = open && !preview;

    let (thread, shows_own_pending) = match source {
        ThreadSource::Cached(rendered) => {
            state.metrics.thread_cache_hit();
            (rendered, false)
        }
        ThreadSource::Rows {
            thread: rows,
            own,
            keep_as,
        } => {
            // A page only its own visitor may see (or a preview) is never kept: no miss.
            if keep_as.is_some() {
                state.metrics.thread_cache_miss();
            }
            let personal = !own.is_empty() || !editable.is_empty();
            let controls = Personal {
                editable: editable.iter().copied().collect(),
                staff: visitor.staff.as_ref().filter(|_| !preview),
            };
            let rendered = Arc::new(render_thread(
                state,
                &post,
                &settings,
                rows,
                own,
                cpage,
                replies_open,
                &controls,
            )?);
            if let Some(key) = keep_as {
                state.thread_cache.insert(key, rendered.clone());
            }
            (rendered, personal)
        }
    };
    let shows_own_data = shows_own_pending
        || !visitor.shared()
        || cookies::remembered(req).is_some()
        || !matches!(form_state, FormState::Fresh { .. });

    let keepable = keepable && !shows_own_data && !preview;
    let path = post.path();
    let form = replies_open.then(|| {
        let token = if keepable {
            token_marker().to_string()
        } else {
            issue_form_token(&state.signer, post.id, state.clock.unix())
        };
        let action = format!("/posts/{}/comments#respond", post.slug);
        let staff = visitor.staff.clone();
        let cancel_href = format!("{path}#respond");
        let reply_name = |id: CommentId| thread.name_of_repliable(id).map(str::to_string);
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
                    summary: Vec::new(),
                    focus: "",
                    preview: None,
                    staff,
                }
            }
            FormState::Rejected {
                raw,
                errors,
                notice,
            } => {
                let parent_id = raw.parent_id.trim().parse::<i32>().ok().map(CommentId);
                let (summary, focus) = error_links(&errors);
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
                    summary,
                    focus,
                    preview: None,
                    staff,
                }
            }
            FormState::Preview { raw, preview } => {
                let parent_id = raw.parent_id.trim().parse::<i32>().ok().map(CommentId);
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
                    errors: FieldErrors::new(),
                    notice: None,
                    form_token: token,
                    honeypot_field: HONEYPOT_FIELD,
                    cancel_href,
                    summary: Vec::new(),
                    focus: "",
                    preview: Some(preview),
                    staff,
                }
            }
        }
    });

    let mut layout = Layout::new(state, &post.title);
    layout.canonical = Some(state.absolute(&path));
    if !post.excerpt.trim().is_empty() {
        layout.description = Some(post.excerpt.clone());
    }
    layout.og_type = "article";
    layout.og_title = Some(post.title.clone());
    layout.og_image = crate::render::first_image_src(&post.body_html).and_then(|src| {
        if src.starts_with('/') && !src.starts_with("//") {
            Some(state.absolute(&src))
        } else {
            Some(src).filter(|s| s.starts_with("https://") || s.starts_with("http://"))
        }
    });
    layout.noindex = preview;
    if !is_page {
        layout.article = Some(ArticleMeta {
            published_time: iso_date(post.published_at),
            modified_time: iso_date(post.updated_at.max(post.published_at)),
            author_url: state.absolute(&format!("/authors/{}", author.slug)),
            tags: tags.iter().map(|t| t.name.clone()).collect(),
        });
        layout.feeds.push((
            format!("{} – comments on “{}”", state.identity().title, post.title),
            format!("/posts/{}/feed.xml", post.slug),
        ));
    }

    let keep = keepable.then(|| {
        let token: Option<TokenMaker> = form.is_some().then(|| {
            let (signer, clock, post_id) = (state.signer.clone(), state.clock.clone(), post.id);
            Arc::new(move || issue_form_token(&signer, post_id, clock.unix())) as TokenMaker
        });
        Keep {
            // The page changes by itself when its comments close.
            valid_until: open
                .then_some(settings.close_after_days)
                .flatten()
                .map(|days| post.published_at + chrono::Duration::days(i64::from(days))),
            token,
        }
    });
    let edit_href = visitor
        .staff
        .as_ref()
        .filter(|s| s.is_admin && !preview)
        .map(|_| format!("/admin/posts/{}/edit", post.id));
    let page = PostPage {
        layout,
        edit_href,
        comment_heading: comment_heading(
            post.approved_comment_count,
            &post.title,
            thread.has_comments,
        ),
        thread,
        form,
        comments_closed: !open && !preview,
        preview,
        post: PostView {
            date: post_date(post.published_at, tz),
            iso_date: iso_date(post.published_at),
            body_html: SafeHtml::from_stored(post.body_html),
            author_avatar: identicon_svg(
                crate::users::author_avatar_seed(&state.signer, &author.slug, author.avatar_seed),
                64,
            ),
            author_name: author.display_name,
            author_slug: author.slug,
            author_bio: author.bio,
            tags,
            title: post.title,
            is_page,
        },
    };
    let html = page.render().map_err(|e| AppError::Internal(e.into()))?;
    Ok(MadePage {
        html,
        private: shows_own_data,
        keep,
    })
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
        .and_then(|r| r.parse::<i32>().ok())
        .map(CommentId);
    let own_ids = cookies::pending_ids(&req, &state.signer, state.clock.unix());
    let visitor = Visitor::of(&state, &req).await?;
    let site_version = state.identity().version;
    let cache = visitor.shared().then(|| state.thread_cache.clone());
    let found = state
        .db
        .read(
            move |conn| match queries::find_visible(conn, kind, &slug, now)? {
                Some((post, author)) => {
                    let data = load_page_data(
                        conn,
                        &post,
                        &own_ids,
                        cpage,
                        now,
                        cache.as_deref(),
                        site_version,
                    )?;
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
    let keepable = !req.headers().contains_key(actix_web::http::header::COOKIE);
    let made = post_page(
        &state, &req, post, author, form, data, None, &visitor, keepable,
    )
    .await?;
    let mut response = html_response(StatusCode::OK, made.html, made.private);
    if let Some(keep) = made.keep {
        response.extensions_mut().insert(keep);
    }
    Ok(response)
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
