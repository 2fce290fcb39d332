//! The admin's posts screens (admins only): the list, the editor, preview, trash and restore.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use crate::auth::{Admin, Staff};
use crate::comments::page::render_preview;
use crate::db::ids::{PostId, UserId};
use crate::error::{AppError, AppResult};
use crate::http::forms::{FieldErrors, FormFields};
use crate::http::response::{render, see_other};
use crate::posts::editor::{self, Moved, PostForm, SaveError};
use crate::posts::handlers::TagView;
use crate::posts::queries::{self, PublicAuthor};
use crate::posts::{Post, PostStatus};
use crate::staff::{AdminLayout, web_actor};
use crate::state::AppState;
use crate::views::comment_date;

const POSTS_PER_PAGE: i64 = 50;

/// The list's tabs: `None` is everything but the trash.
const TABS: [(&str, Option<PostStatus>); 5] = [
    ("all", None),
    ("draft", Some(PostStatus::Draft)),
    ("scheduled", Some(PostStatus::Scheduled)),
    ("published", Some(PostStatus::Published)),
    ("trash", Some(PostStatus::Trash)),
];

/// One row of the posts table as printed.
pub struct PostRow {
    pub id: PostId,
    pub title: String,
    pub kind: &'static str,
    pub status: &'static str,
    pub author_name: String,
    pub date: String,
    pub approved: i32,
    pub pending: i64,
    /// Where readers see it, when they can.
    pub view_href: Option<String>,
    pub trashed: bool,
}

pub struct TabView {
    pub name: &'static str,
    pub count: i64,
    pub current: bool,
}

#[derive(Template)]
#[template(path = "admin/posts.html")]
struct PostsPage {
    layout: AdminLayout,
    tabs: Vec<TabView>,
    rows: Vec<PostRow>,
    notice: Option<&'static str>,
    page: i64,
    prev_href: Option<String>,
    next_href: Option<String>,
}

#[derive(Deserialize)]
pub struct ListQuery {
    status: Option<String>,
    page: Option<String>,
    done: Option<String>,
}

/// What a page shows after a change succeeded; a fixed set, so no text from the URL is echoed.
fn notice_for(done: Option<&str>) -> Option<&'static str> {
    match done? {
        "created" => Some("Post created."),
        "saved" => Some("Post saved."),
        "trashed" => Some("Post moved to the trash. Readers no longer see it."),
        "restored" => Some("Post restored."),
        "unchanged" => Some("Nothing needed to change."),
        _ => None,
    }
}

/// `GET /admin/posts?status=all|draft|scheduled|published|trash&page=N`
pub async fn list(
    state: web::Data<AppState>,
    Admin(staff): Admin,
    query: web::Query<ListQuery>,
) -> AppResult<HttpResponse> {
    let (tab, filter) = match query.status.as_deref() {
        None | Some("") => TABS[0],
        Some(name) => TABS
            .into_iter()
            .find(|(n, _)| *n == name)
            .ok_or(AppError::NotFound)?,
    };
    let page = match query.page.as_deref() {
        None => 1,
        Some(text) => text
            .parse::<i64>()
            .ok()
            .filter(|n| (1..=100_000).contains(n))
            .ok_or(AppError::NotFound)?,
    };
    let (rows, more, counts, pending) = state
        .db
        .read(move |conn| {
            let (rows, more) = queries::list_for_admin(conn, filter, page, POSTS_PER_PAGE)?;
            let counts = queries::count_by_status(conn)?;
            let ids: Vec<PostId> = rows.iter().map(|(p, _)| p.id).collect();
            let pending = crate::comments::queries::pending_comment_counts(conn, &ids)?;
            Ok((rows, more, counts, pending))
        })
        .await?;
    let tz = state.config.timezone;
    let now = state.clock.now();
    let rows = rows
        .into_iter()
        .map(|(post, author_name)| {
            let (status, kind) = (post.status, post.kind);
            let live = status == PostStatus::Published && post.published_at <= now;
            PostRow {
                id: post.id,
                kind: kind.as_str(),
                status: status.as_str(),
                author_name,
                date: comment_date(post.published_at, tz),
                approved: post.approved_comment_count,
                pending: pending.get(&post.id).copied().unwrap_or(0),
                view_href: live.then(|| kind.path(&post.slug)),
                trashed: status == PostStatus::Trash,
                title: post.title,
            }
        })
        .collect();
    let count = |status: Option<PostStatus>| match status {
        Some(s) => counts.get(s.as_str()).copied().unwrap_or(0),
        None => counts
            .iter()
            .filter(|(s, _)| s.as_str() != PostStatus::Trash.as_str())
            .map(|(_, n)| n)
            .sum(),
    };
    let tabs = TABS
        .into_iter()
        .map(|(name, status)| TabView {
            name,
            count: count(status),
            current: name == tab,
        })
        .collect();
    let href = |n: i64| format!("/admin/posts?status={tab}&page={n}");
    render(
        PostsPage {
            layout: AdminLayout::new(&state, &staff, "Posts", "posts").await?,
            tabs,
            rows,
            notice: notice_for(query.done.as_deref()),
            page,
            prev_href: (page > 1).then(|| href(page - 1)),
            next_href: more.then(|| href(page + 1)),
        },
        StatusCode::OK,
    )
}

#[derive(Template)]
#[template(path = "admin/posts_edit.html")]
struct EditPage {
    layout: AdminLayout,
    /// `None` for a new post.
    id: Option<PostId>,
    form: PostForm,
    errors: FieldErrors,
    authors: Vec<(UserId, String)>,
    timezone: String,
    notice: Option<&'static str>,
    trashed: bool,
    view_href: Option<String>,
    /// The newest pictures of the media library, `(thumbnail, alt, snippet)`, to insert.
    recent_media: Vec<(String, String, String)>,
}

impl EditPage {
    fn action(&self) -> String {
        match self.id {
            Some(id) => format!("/admin/posts/{id}/edit"),
            None => "/admin/posts/new".into(),
        }
    }

    fn preview_action(&self) -> String {
        match self.id {
            Some(id) => format!("/admin/posts/{id}/preview"),
            None => "/admin/posts/new/preview".into(),
        }
    }
}

/// Renders the editor. `existing` is the stored post being edited, if any.
async fn editor_page(
    state: &AppState,
    staff: &Staff,
    existing: Option<&Post>,
    form: PostForm,
    errors: FieldErrors,
    notice: Option<&'static str>,
    status: StatusCode,
) -> AppResult<HttpResponse> {
    let current_author = existing.map(|p| p.author_id);
    let authors = state
        .db
        .read(move |conn| {
            let mut authors = queries::enabled_authors(conn)?;
            // A disabled author stays selectable on the posts they already have.
            if let Some(id) = current_author.filter(|id| !authors.iter().any(|(a, _)| a == id))
                && let Some(user) = crate::users::find_by_id(conn, id)?
            {
                authors.push((user.id, format!("{} (disabled)", user.display_name)));
            }
            Ok(authors)
        })
        .await?;
    let recent_media = state
        .db
        .read(|conn| {
            let recent = crate::media::store::recent(conn, 8)?;
            let ids: Vec<i32> = recent.iter().map(|m| m.id).collect();
            let variants = crate::media::store::variants_of(conn, &ids)?;
            Ok(recent
                .into_iter()
                .map(|m| {
                    let thumbnail = variants
                        .iter()
                        .rfind(|v| v.media_id == m.id)
                        .map(|v| {
                            crate::media::url(
                                &m.sha256,
                                u32::try_from(v.width).unwrap_or(0),
                                v.format,
                            )
                        })
                        .unwrap_or_else(|| m.url());
                    let snippet = crate::media::snippet(&m.alt, &m.url());
                    (thumbnail, m.alt, snippet)
                })
                .collect::<Vec<_>>())
        })
        .await?;
    let now = state.clock.now();
    let title = match existing {
        Some(_) => "Edit post",
        None => "New post",
    };
    render(
        EditPage {
            layout: AdminLayout::new(state, staff, title, "posts").await?,
            id: existing.map(|p| p.id),
            form,
            errors,
            authors,
            timezone: state.config.timezone.name().to_string(),
            notice,
            trashed: existing.is_some_and(|p| p.status() == PostStatus::Trash),
            view_href: existing.filter(|p| p.is_visible(now)).map(Post::path),
            recent_media,
        },
        status,
    )
}

async fn load_post(state: &AppState, id: PostId) -> AppResult<Post> {
    state
        .db
        .read(move |conn| queries::find_by_id(conn, id))
        .await?
        .ok_or(AppError::NotFound)
}

/// `GET /admin/posts/new`
pub async fn new_form(state: web::Data<AppState>, Admin(staff): Admin) -> AppResult<HttpResponse> {
    let form = PostForm::blank(staff.user.id);
    editor_page(
        &state,
        &staff,
        None,
        form,
        FieldErrors::new(),
        None,
        StatusCode::OK,
    )
    .await
}

#[derive(Deserialize)]
pub struct EditQuery {
    done: Option<String>,
}

/// `GET /admin/posts/{id}/edit`
pub async fn edit_form(
    state: web::Data<AppState>,
    Admin(staff): Admin,
    path: web::Path<PostId>,
    query: web::Query<EditQuery>,
) -> AppResult<HttpResponse> {
    let id = path.into_inner();
    let post = load_post(&state, id).await?;
    let tags = state
        .db
        .read(move |conn| queries::tags_for_post(conn, id))
        .await?;
    let form = PostForm::from_post(&post, &tags, state.config.timezone, state.clock.now());
    editor_page(
        &state,
        &staff,
        Some(&post),
        form,
        FieldErrors::new(),
        notice_for(query.done.as_deref()),
        StatusCode::OK,
    )
    .await
}

/// `POST /admin/posts/new`
pub async fn create(
    state: web::Data<AppState>,
    req: HttpRequest,
    Admin(staff): Admin,
    body: web::Bytes,
) -> AppResult<HttpResponse> {
    save(&state, &req, &staff, None, &body).await
}

/// `POST /admin/posts/{id}/edit`
pub async fn update(
    state: web::Data<AppState>,
    req: HttpRequest,
    Admin(staff): Admin,
    path: web::Path<PostId>,
    body: web::Bytes,
) -> AppResult<HttpResponse> {
    save(&state, &req, &staff, Some(path.into_inner()), &body).await
}

/// The editor form as sent; a form without an author (a script's) is by whoever sends it.
fn submitted(body: &[u8], staff: &Staff) -> AppResult<PostForm> {
    let mut form = PostForm::from_fields(&FormFields::parse(body)?);
    if form.author.trim().is_empty() {
        form.author = staff.user.id.to_string();
    }
    Ok(form)
}

/// Checks the form and saves it: 303 to the editor, or 422 with the input kept and nothing
/// saved.
async fn save(
    state: &AppState,
    req: &HttpRequest,
    staff: &Staff,
    id: Option<PostId>,
    body: &[u8],
) -> AppResult<HttpResponse> {
    let existing = match id {
        Some(id) => Some(load_post(state, id).await?),
        None => None,
    };
    let form = submitted(body, staff)?;
    let tz = state.config.timezone;
    let valid = match form.parse(tz) {
        Ok(valid) => valid,
        Err(errors) => {
            return editor_page(
                state,
                staff,
                existing.as_ref(),
                form,
                errors,
                None,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await;
        }
    };
    let actor = web_actor(state, req, staff);
    let now = state.clock.now();
    let saved = state
        .db
        .write(move |conn| editor::save(conn, id, &valid, &actor, now, tz))
        .await;
    match saved {
        Ok(saved) => {
            if saved.post.status() == PostStatus::Scheduled {
                // The scheduler sleeps until the next due post it knew of; this may be sooner.
                state.publish_wakeup.notify_one();
            }
            let done = if saved.created { "created" } else { "saved" };
            Ok(see_other(&format!(
                "/admin/posts/{}/edit?done={done}",
                saved.post.id
            )))
        }
        Err(SaveError::Invalid(errors)) => {
            editor_page(
                state,
                staff,
                existing.as_ref(),
                form,
                errors,
                None,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        Err(SaveError::NotFound) => Err(AppError::NotFound),
        Err(SaveError::Trashed) => Err(AppError::Conflict(
            "This post is in the trash. Restore it before editing it.".into(),
        )),
        Err(SaveError::Db(e)) => Err(e.into()),
    }
}

/// `POST /admin/posts/{id}/preview` (`{id}` may be `new`): the page exactly as readers would
/// see the form's content, saving nothing.
pub async fn preview(
    state: web::Data<AppState>,
    req: HttpRequest,
    Admin(staff): Admin,
    path: web::Path<String>,
    body: web::Bytes,
) -> AppResult<HttpResponse> {
    let id = match path.as_str() {
        "new" => None,
        other => Some(PostId(
            other.parse::<i32>().map_err(|_| AppError::NotFound)?,
        )),
    };
    let existing = match id {
        Some(id) => Some(load_post(&state, id).await?),
        None => None,
    };
    let form = submitted(&body, &staff)?;
    let tz = state.config.timezone;
    let now = state.clock.now();
    let checked = form.parse(tz).and_then(|valid| {
        let (_, published_at) = valid
            .schedule(existing.as_ref(), now, tz)
            .map_err(|e| FieldErrors::from(vec![("publish_at", e)]))?;
        Ok((valid, published_at))
    });
    let (valid, published_at) = match checked {
        Ok(checked) => checked,
        Err(errors) => {
            return editor_page(
                &state,
                &staff,
                existing.as_ref(),
                form,
                errors,
                None,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await;
        }
    };
    let author_id = valid.author_id;
    let author = state
        .db
        .read(move |conn| crate::users::find_by_id(conn, author_id))
        .await?;
    let Some(author) = author else {
        let errors = FieldErrors::from(vec![(
            "author",
            "Choose an enabled user as the author.".to_string(),
        )]);
        return editor_page(
            &state,
            &staff,
            existing.as_ref(),
            form,
            errors,
            None,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    };
    // A made-up address is not checked for clashes: nothing is saved.
    let slug = valid.slug.as_str().to_string();
    let tags = valid
        .tags
        .iter()
        .map(|name| TagView {
            name: name.clone(),
            slug: crate::text::slugify(name),
        })
        .collect();
    let markdown = valid.body.clone();
    let body_html = state
        .db
        .read(move |conn| crate::media::render_post(conn, &markdown))
        .await?;
    let post = Post {
        // An unsaved post has no id; 0 matches no comments.
        id: existing.as_ref().map_or(PostId(0), |p| p.id),
        slug,
        title: valid.title.clone(),
        excerpt: valid.excerpt_or_derived(),
        body_markdown: valid.body.clone(),
        body_html: body_html.into_string(),
        author_id: author.id,
        kind: valid.kind,
        status: PostStatus::Published,
        status_before_trash: None,
        published_at,
        comments_open: valid.comments_open,
        approved_comment_count: existing.as_ref().map_or(0, |p| p.approved_comment_count),
        created_at: existing.as_ref().map_or(now, |p| p.created_at),
        updated_at: now,
        thread_version: existing.as_ref().map_or(0, |p| p.thread_version),
    };
    let author = PublicAuthor {
        id: author.id,
        display_name: author.display_name,
        slug: author.slug,
        bio: author.bio,
        avatar_seed: author.avatar_seed,
    };
    render_preview(&state, &req, post, author, tags).await
}

/// `POST /admin/posts/{id}/trash`
pub async fn trash(
    state: web::Data<AppState>,
    req: HttpRequest,
    Admin(staff): Admin,
    path: web::Path<PostId>,
) -> AppResult<HttpResponse> {
    let id = path.into_inner();
    let actor = web_actor(&state, &req, &staff);
    let now = state.clock.now();
    let moved = state
        .db
        .write(move |conn| editor::trash(conn, id, &actor, now))
        .await?;
    match moved {
        Moved::Done => Ok(see_other("/admin/posts?done=trashed")),
        Moved::Unchanged => Ok(see_other("/admin/posts?status=trash&done=unchanged")),
        Moved::NotAllowed => Err(AppError::Conflict("This post cannot be trashed.".into())),
        Moved::NotFound => Err(AppError::NotFound),
    }
}

/// `POST /admin/posts/{id}/restore`: back to the status it had before the trash.
pub async fn restore(
    state: web::Data<AppState>,
    req: HttpRequest,
    Admin(staff): Admin,
    path: web::Path<PostId>,
) -> AppResult<HttpResponse> {
    let id = path.into_inner();
    let actor = web_actor(&state, &req, &staff);
    let now = state.clock.now();
    let moved = state
        .db
        .write(move |conn| editor::restore(conn, id, &actor, now))
        .await?;
    match moved {
        Moved::Done => {
            // A restored scheduled post may be due already, or sooner than the next one.
            state.publish_wakeup.notify_one();
            Ok(see_other(&format!("/admin/posts/{id}/edit?done=restored")))
        }
        Moved::Unchanged => Ok(see_other(&format!("/admin/posts/{id}/edit?done=unchanged"))),
        Moved::NotAllowed => Err(AppError::Conflict(
            "Only a post in the trash can be restored.".into(),
        )),
        Moved::NotFound => Err(AppError::NotFound),
    }
}
