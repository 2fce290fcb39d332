//! The moderation screens: dashboard, queue, single and bulk actions, edit, reply, and the log.

use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::queries::{self, LogRow, QueueFilter, Tab};
use super::{Moved, Refused};
use crate::actions::{Action, Actor};
use crate::auth::{Staff, safe_next_or};
use crate::comments::CommentStatus;
use crate::comments::domain::{CommentBody, CommenterEmail, CommenterName, Website};
use crate::comments::queries::QueueRow;
use crate::db::DbError;
use crate::db::ids::{CommentId, PostId};
use crate::error::{AppError, AppResult};
use crate::http::forms::{FieldErrors, FormFields};
use crate::http::response::{render, see_other};
use crate::staff::{AdminLayout, web_actor as actor};
use crate::state::AppState;
use crate::views::comment_date;

const QUEUE_PAGE_SIZE: i64 = 20;

/// One queue row as printed.
pub struct QueueItem {
    pub id: CommentId,
    pub status: String,
    pub author_name: String,
    pub author_email: String,
    pub author_url: Option<String>,
    pub body: String,
    pub held_reason: Option<String>,
    /// The text its author's last edit replaced.
    pub previous_body: Option<String>,
    pub ip: Option<String>,
    pub user_agent: String,
    pub date: String,
    pub post_id: PostId,
    pub post_title: String,
    pub post_slug: String,
    pub parent: Option<(CommentId, String)>,
    pub approved_before: i64,
    pub spam_before: i64,
    pub staff: bool,
    pub actions: Vec<Action>,
}

#[derive(Template)]
#[template(path = "admin/comments.html")]
struct QueuePage {
    layout: AdminLayout,
    tab: Tab,
    tabs: Vec<(Tab, i64, String)>,
    items: Vec<QueueItem>,
    back: String,
    search: String,
    post_filter: Option<PostId>,
    posts: Vec<(PostId, String)>,
    next_href: Option<String>,
    first_href: Option<String>,
    bulk_actions: Vec<Action>,
}

#[derive(Deserialize)]
pub struct QueueQuery {
    status: Option<String>,
    post: Option<String>,
    q: Option<String>,
    page: Option<String>,
    before: Option<String>,
}

fn queue_href(tab: Tab, post: Option<PostId>, q: &str, before: Option<CommentId>) -> String {
    let mut href = format!("/admin/comments?status={}", tab.as_str());
    if let Some(post) = post {
        href.push_str(&format!("&post={post}"));
    }
    if !q.is_empty() {
        href.push_str(&format!("&q={}", crate::auth::urlencode(q)));
    }
    if let Some(before) = before {
        href.push_str(&format!("&before={before}"));
    }
    href
}

fn items_from(
    rows: Vec<QueueRow>,
    parents: &HashMap<CommentId, String>,
    history: &HashMap<String, (i64, i64)>,
    tz: chrono_tz::Tz,
) -> Vec<QueueItem> {
    rows.into_iter()
        .map(|row| {
            let status = CommentStatus::parse(&row.status).unwrap_or(CommentStatus::Pending);
            let (approved_before, spam_before) =
                history.get(&row.author_email).copied().unwrap_or_default();
            QueueItem {
                id: row.id,
                actions: Action::available_from(status),
                status: row.status,
                author_name: row.author_name,
                author_email: row.author_email,
                author_url: row.author_url,
                body: row.body,
                held_reason: row.held_reason,
                previous_body: row.previous_body,
                ip: row.ip,
                user_agent: row.user_agent,
                date: comment_date(row.created_at, tz),
                post_id: row.post_id,
                post_title: row.post_title,
                post_slug: row.post_slug,
                parent: row
                    .parent_id
                    .map(|p| (p, parents.get(&p).cloned().unwrap_or_default())),
                approved_before,
                spam_before,
                staff: row.user_id.is_some(),
            }
        })
        .collect()
}

pub async fn queue(
    state: web::Data<AppState>,
    req: HttpRequest,
    staff: Staff,
    query: web::Query<QueueQuery>,
) -> AppResult<HttpResponse> {
    let query = query.into_inner();
    let tab = match query.status.as_deref() {
        None | Some("") => Tab::Pending,
        Some(t) => {
            Tab::parse(t).ok_or_else(|| AppError::BadRequest(format!("Unknown status {t:?}.")))?
        }
    };
    let post_filter = match query.post.as_deref() {
        None | Some("") => None,
        Some(p) => Some(
            p.parse::<i32>()
                .map(PostId)
                .map_err(|_| AppError::BadRequest("post must be a post id".into()))?,
        ),
    };
    let page = match query.page.as_deref() {
        None | Some("") => 1,
        Some(p) => p
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= 1)
            .ok_or_else(|| AppError::BadRequest("page must be 1 or more".into()))?,
    };
    let before = query
        .before
        .as_deref()
        .and_then(|b| b.parse::<i32>().ok())
        .map(CommentId);
    let search = query.q.unwrap_or_default().trim().to_string();
    let filter = QueueFilter {
        post_id: post_filter,
        search: Some(search.clone()),
    };
    let (rows, more, parents, history, counts, posts) = state
        .db
        .read(move |conn| {
            let (rows, more) = queries::list(conn, tab, &filter, before, page, QUEUE_PAGE_SIZE)?;
            let parent_ids: Vec<CommentId> = rows.iter().filter_map(|r| r.parent_id).collect();
            let emails: Vec<String> = rows.iter().map(|r| r.author_email.clone()).collect();
            let parents = queries::parent_names(conn, &parent_ids)?;
            let history = queries::author_history(conn, &emails)?;
            let counts = queries::tab_counts(conn)?;
            let posts = queries::post_choices(conn)?;
            Ok((rows, more, parents, history, counts, posts))
        })
        .await?;
    let last_id = rows.last().map(|r| r.id);
    let items = items_from(rows, &parents, &history, state.config.timezone);
    let back = req
        .uri()
        .path_and_query()
        .map_or("/admin/comments".into(), |pq| pq.to_string());
    let pending = counts.get(&Tab::Pending).copied().unwrap_or(0);
    let tabs = Tab::ALL
        .into_iter()
        .map(|t| {
            (
                t,
                counts.get(&t).copied().unwrap_or(0),
                queue_href(t, post_filter, &search, None),
            )
        })
        .collect();
    let bulk_actions = match tab {
        Tab::Spam => vec![Action::NotSpam, Action::Delete],
        Tab::Trash => vec![Action::Restore, Action::Delete],
        _ => vec![
            Action::Approve,
            Action::Unapprove,
            Action::Spam,
            Action::Trash,
        ],
    };
    let page_view = QueuePage {
        layout: AdminLayout::with_pending(&state, &staff, "Comments", "comments", pending),
        tab,
        tabs,
        items,
        next_href: if more {
            Some(queue_href(tab, post_filter, &search, last_id))
        } else {
            None
        },
        first_href: (before.is_some() || page > 1)
            .then(|| queue_href(tab, post_filter, &search, None)),
        back,
        search,
        post_filter,
        posts,
        bulk_actions,
    };
    render(page_view, StatusCode::OK)
}

/// Runs `action` on every id in one transaction; answers where to go back to, or 409/404.
async fn act_on(
    state: &AppState,
    actor: Actor,
    ids: Vec<CommentId>,
    action: Action,
) -> AppResult<()> {
    let now = state.clock.now();
    let single = ids.len() == 1;
    let mail = state.mail.clone();
    let outcome = state
        .db
        .write_retrying(move |conn| -> Result<Result<(), Refused>, DbError> {
            for &id in &ids {
                match super::apply(conn, &mail, id, action, &actor, now)? {
                    Ok(Moved::To(_) | Moved::Unchanged) => {}
                    // In a bulk action, a comment that cannot make the move is skipped.
                    Err(refused) if single => return Ok(Err(refused)),
                    Err(_) => {}
                }
            }
            Ok(Ok(()))
        })
        .await?;
    state.mail_wakeup.notify_one();
    match outcome {
        Ok(()) => Ok(()),
        Err(Refused::NotFound) => Err(AppError::NotFound),
        Err(Refused::NotAllowed { from }) => Err(AppError::Conflict(format!(
            "A comment that is {} cannot be moved with “{}”. Nothing was changed.",
            from.as_str(),
            action.label()
        ))),
    }
}

/// Where a queue action goes back to, decided before it acts.
fn back_to(form: &FormFields) -> String {
    safe_next_or(form.get("back"), "/admin/comments")
}

pub async fn act(
    state: web::Data<AppState>,
    req: HttpRequest,
    staff: Staff,
    path: web::Path<(CommentId, String)>,
    body: web::Bytes,
) -> AppResult<HttpResponse> {
    let (id, action) = path.into_inner();
    let action = Action::parse(&action).ok_or(AppError::NotFound)?;
    let form = FormFields::parse(&body)?;
    let back = back_to(&form);
    act_on(&state, actor(&state, &req, &staff), vec![id], action).await?;
    Ok(see_other(&back))
}

pub async fn bulk(
    state: web::Data<AppState>,
    req: HttpRequest,
    staff: Staff,
    body: web::Bytes,
) -> AppResult<HttpResponse> {
    let form = FormFields::parse(&body)?;
    let back = back_to(&form);
    let action = form
        .get("action")
        .and_then(Action::parse)
        .ok_or_else(|| AppError::BadRequest("Choose a bulk action.".into()))?;
    let ids = form
        .all("ids")
        .map(|id| {
            id.parse::<i32>()
                .map(CommentId)
                .map_err(|_| AppError::BadRequest("ids must be comment ids".into()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if ids.len() > 1_000 {
        return Err(AppError::BadRequest(
            "At most 1,000 comments at a time.".into(),
        ));
    }
    if !ids.is_empty() {
        act_on(&state, actor(&state, &req, &staff), ids, action).await?;
    }
    Ok(see_other(&back))
}

pub async fn reply(
    state: web::Data<AppState>,
    req: HttpRequest,
    staff: Staff,
    path: web::Path<CommentId>,
    body: web::Bytes,
) -> AppResult<HttpResponse> {
    let parent_id = path.into_inner();
    let form = FormFields::parse(&body)?;
    let back = back_to(&form);
    let text = crate::text::normalize_newlines(form.get("body").unwrap_or(""));
    let body = CommentBody::parse(&text)
        .map_err(|e| AppError::Unprocessable(format!("Your reply was not posted: {e}")))?;
    let actor = actor(&state, &req, &staff);
    let now = state.clock.now();
    let seed = state.signer.keyed_u32("avatar", &staff.user.email) as i32;
    let user = staff.user.clone();
    let mail = state.mail.clone();
    let outcome = state
        .db
        .write_retrying(move |conn| {
            super::reply_as_staff(conn, &mail, parent_id, &user, &body, seed, &actor, now)
        })
        .await?;
    state.mail_wakeup.notify_one();
    match outcome {
        Ok(_) => Ok(see_other(&back)),
        Err(Refused::NotFound) => Err(AppError::NotFound),
        Err(Refused::NotAllowed { from }) => Err(AppError::Conflict(format!(
            "This comment is marked {}; restore it before replying. Your reply was not posted.",
            from.as_str()
        ))),
    }
}

#[derive(Template)]
#[template(path = "admin/comment_edit.html")]
struct EditPage {
    layout: AdminLayout,
    id: CommentId,
    post_title: String,
    post_slug: String,
    name: String,
    email: String,
    website: String,
    body: String,
    errors: FieldErrors,
    back: String,
}

pub async fn edit_form(
    state: web::Data<AppState>,
    req: HttpRequest,
    staff: Staff,
    path: web::Path<CommentId>,
) -> AppResult<HttpResponse> {
    let id = path.into_inner();
    let row = state
        .db
        .read(move |conn| queries::find(conn, id))
        .await?
        .ok_or(AppError::NotFound)?;
    let back = req
        .headers()
        .get(actix_web::http::header::REFERER)
        .and_then(|r| r.to_str().ok())
        .and_then(|r| r.find("/admin").map(|i| r[i..].to_string()))
        .unwrap_or_else(|| "/admin/comments".into());
    render(
        EditPage {
            layout: AdminLayout::new(&state, &staff, "Edit comment", "comments").await?,
            id,
            post_title: row.post_title,
            post_slug: row.post_slug,
            name: row.author_name,
            email: row.author_email,
            website: row.author_url.unwrap_or_default(),
            body: row.body,
            errors: FieldErrors::new(),
            back: safe_next_or(Some(&back), "/admin/comments"),
        },
        StatusCode::OK,
    )
}

pub async fn edit(
    state: web::Data<AppState>,
    req: HttpRequest,
    staff: Staff,
    path: web::Path<CommentId>,
    body: web::Bytes,
) -> AppResult<HttpResponse> {
    let id = path.into_inner();
    let form = FormFields::parse(&body)?;
    let field = |name: &str| crate::text::normalize_newlines(form.get(name).unwrap_or(""));
    let (name, email, website, text) = (
        field("name"),
        field("email"),
        field("website"),
        field("body"),
    );
    let mut errors = FieldErrors::new();
    let parsed_name = CommenterName::parse(&name)
        .map_err(|e| errors.push(("name", e)))
        .ok();
    let parsed_email = CommenterEmail::parse(&email)
        .map_err(|e| errors.push(("email", e)))
        .ok();
    let parsed_site = Website::parse(&website)
        .map_err(|e| errors.push(("website", e)))
        .ok();
    let parsed_body = CommentBody::parse(&text)
        .map_err(|e| errors.push(("body", e)))
        .ok();
    let back = back_to(&form);
    let (Some(n), Some(e), Some(w), Some(b), true) = (
        parsed_name,
        parsed_email,
        parsed_site,
        parsed_body,
        errors.is_empty(),
    ) else {
        let row = state
            .db
            .read(move |conn| queries::find(conn, id))
            .await?
            .ok_or(AppError::NotFound)?;
        return render(
            EditPage {
                layout: AdminLayout::new(&state, &staff, "Edit comment", "comments").await?,
                id,
                post_title: row.post_title,
                post_slug: row.post_slug,
                name,
                email,
                website,
                body: text,
                errors,
                back,
            },
            StatusCode::UNPROCESSABLE_ENTITY,
        );
    };
    let actor = actor(&state, &req, &staff);
    let now = state.clock.now();
    let updated = state
        .db
        .write(move |conn| -> Result<bool, DbError> {
            use crate::db::schema::comments;
            use diesel::prelude::*;
            // Re-rendered in the format it was written in.
            let format: crate::render::CommentFormat = comments::table
                .find(id)
                .select(comments::format)
                .first(conn)?;
            let html = format.render(b.as_str());
            let changed = diesel::update(
                comments::table
                    .find(id)
                    .filter(comments::deleted_at.is_null()),
            )
            .set((
                comments::author_name.eq(n.as_str()),
                comments::author_email.eq(e.as_str()),
                comments::author_url.eq(w.as_ref().map(|w| w.as_str())),
                comments::body.eq(b.as_str()),
                comments::body_html.eq(html.as_str()),
                comments::updated_at.eq(now),
            ))
            .execute(conn)?;
            if changed > 0 {
                crate::audit::log(conn, Some(id), "edit", "", &actor, now)?;
            }
            Ok(changed > 0)
        })
        .await?;
    if !updated {
        return Err(AppError::NotFound);
    }
    Ok(see_other(&back))
}

#[derive(Template)]
#[template(path = "admin/dashboard.html")]
struct DashboardPage {
    layout: AdminLayout,
    counts: Vec<(Tab, i64, String)>,
    latest: Vec<QueueItem>,
    back: String,
}

pub async fn dashboard(state: web::Data<AppState>, staff: Staff) -> AppResult<HttpResponse> {
    let (rows, parents, history, counts) = state
        .db
        .read(|conn| {
            let (rows, _) = queries::list(conn, Tab::All, &QueueFilter::default(), None, 1, 5)?;
            let parent_ids: Vec<CommentId> = rows.iter().filter_map(|r| r.parent_id).collect();
            let emails: Vec<String> = rows.iter().map(|r| r.author_email.clone()).collect();
            Ok((
                queries::parent_names(conn, &parent_ids)?,
                queries::author_history(conn, &emails)?,
                queries::tab_counts(conn)?,
            ))
            .map(|(p, h, c)| (rows, p, h, c))
        })
        .await?;
    let pending = counts.get(&Tab::Pending).copied().unwrap_or(0);
    let counts = Tab::ALL
        .into_iter()
        .filter(|t| *t != Tab::All)
        .map(|t| {
            (
                t,
                counts.get(&t).copied().unwrap_or(0),
                queue_href(t, None, "", None),
            )
        })
        .collect();
    render(
        DashboardPage {
            layout: AdminLayout::with_pending(&state, &staff, "Dashboard", "dashboard", pending),
            counts,
            latest: items_from(rows, &parents, &history, state.config.timezone),
            back: "/admin".into(),
        },
        StatusCode::OK,
    )
}

#[derive(Template)]
#[template(path = "admin/audit.html")]
struct AuditPage {
    layout: AdminLayout,
    rows: Vec<(LogRow, String)>,
    next_href: Option<String>,
}

#[derive(Deserialize)]
pub struct AuditQuery {
    before: Option<String>,
}

pub async fn audit(
    state: web::Data<AppState>,
    staff: Staff,
    query: web::Query<AuditQuery>,
) -> AppResult<HttpResponse> {
    let before = query.before.as_deref().and_then(|b| b.parse::<i32>().ok());
    let (rows, more) = state
        .db
        .read(move |conn| queries::audit_log(conn, before, 50))
        .await?;
    let next_href = more
        .then(|| rows.last().map(|r| format!("/admin/audit?before={}", r.id)))
        .flatten();
    let tz = state.config.timezone;
    let rows = rows
        .into_iter()
        .map(|r| {
            let when = comment_date(r.created_at, tz);
            (r, when)
        })
        .collect();
    render(
        AuditPage {
            layout: AdminLayout::new(&state, &staff, "Moderation log", "audit").await?,
            rows,
            next_href,
        },
        StatusCode::OK,
    )
}
