//! The moderation screens: dashboard, queue, single and bulk actions, edit, reply, and the log.

use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::queries::{self, LogRow, QueueFilter, Tab};
use super::{Moved, Refused, dashboard, kept, undo};
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
    /// "Approved by Ada, Dec 1": who made the move that put it where it is, shown instead of
    /// the reason it was held.
    pub moderated: Option<String>,
}

#[derive(Template)]
#[template(path = "admin/comments.html")]
struct QueuePage<'a> {
    layout: AdminLayout,
    tab: Tab,
    tabs: &'a [(Tab, i64, String)],
    items: &'a [QueueItem],
    back: String,
    search: String,
    post_filter: Option<PostId>,
    posts: &'a [(PostId, String)],
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

/// A held reason as it reads at the limit's boundary: "3 links (hold at 3 or more)". Older
/// comments kept "(limit N)", which read as if N links were allowed.
pub fn reworded_reason(reason: &str) -> String {
    if let Some(head) = reason.strip_suffix(')')
        && let Some((links, limit)) = head.split_once(" (limit ")
        && limit.parse::<u32>().is_ok()
    {
        return format!("{links} (hold at {limit} or more)");
    }
    reason.to_string()
}

/// What the queue shows of each row besides the row itself.
pub struct RowContext {
    pub parents: HashMap<CommentId, String>,
    pub history: HashMap<String, (i64, i64)>,
    pub moves: HashMap<CommentId, queries::LastMove>,
}

impl RowContext {
    pub fn load(conn: &mut crate::db::DbConn, rows: &[QueueRow]) -> Result<RowContext, DbError> {
        let parent_ids: Vec<CommentId> = rows.iter().filter_map(|r| r.parent_id).collect();
        let emails: Vec<String> = rows.iter().map(|r| r.author_email.clone()).collect();
        let ids: Vec<CommentId> = rows.iter().map(|r| r.id).collect();
        Ok(RowContext {
            parents: queries::parent_names(conn, &parent_ids)?,
            history: queries::author_history(conn, &emails)?,
            moves: queries::last_moves(conn, &ids)?,
        })
    }
}

/// "Approved by Ada, Dec 1" for a comment a person moved to where it is now.
fn moderated_line(
    status: CommentStatus,
    last: Option<&queries::LastMove>,
    tz: chrono_tz::Tz,
) -> Option<String> {
    let last = last?;
    let verb = match status {
        CommentStatus::Approved => "Approved",
        CommentStatus::Spam => "Marked spam",
        CommentStatus::Trash => "Moved to the trash",
        CommentStatus::Pending => return None,
    };
    let who = match (&last.user_name, last.via.as_str()) {
        (Some(name), "email") => format!("{name} (from an email)"),
        (Some(name), _) => name.clone(),
        (None, "cli") => "the command line".into(),
        (None, _) => "lectern".into(),
    };
    let day = last
        .created_at
        .and_utc()
        .with_timezone(&tz)
        .format("%b %-d")
        .to_string();
    Some(format!("{verb} by {who}, {day}"))
}

fn items_from(rows: Vec<QueueRow>, ctx: &RowContext, tz: chrono_tz::Tz) -> Vec<QueueItem> {
    let parents = &ctx.parents;
    rows.into_iter()
        .map(|row| {
            let status = CommentStatus::parse(&row.status).unwrap_or(CommentStatus::Pending);
            let (approved_before, spam_before) = ctx
                .history
                .get(&row.author_email)
                .copied()
                .unwrap_or_default();
            let moderated = moderated_line(status, ctx.moves.get(&row.id), tz);
            QueueItem {
                moderated,
                id: row.id,
                actions: Action::available_from(status),
                status: row.status,
                author_name: row.author_name,
                author_email: row.author_email,
                author_url: row.author_url,
                body: row.body,
                held_reason: row.held_reason.map(|r| reworded_reason(&r)),
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
    readings: web::Data<KeptQueue>,
    freshness: web::Data<crate::db::Freshness>,
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
    let now = state.clock.now();
    let key = kept::KeptKey::new(freshness.commits(), now, state.config.timezone);
    let asked = QueueAsk {
        tab,
        post: post_filter,
        search: search.clone(),
        before,
        page,
    };
    let reading = readings
        .get_or_read(key, asked, || {
            read_queue(&state, tab, post_filter, &search, before, page)
        })
        .await?;
    let back = req
        .uri()
        .path_and_query()
        .map_or("/admin/comments".into(), |pq| pq.to_string());
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
        layout: AdminLayout::with_pending_and_notice(
            &state,
            &staff,
            "Comments",
            "comments",
            reading.pending,
        )
        .await?,
        tab,
        tabs: &reading.tabs,
        items: &reading.items,
        next_href: reading.next_href.clone(),
        first_href: (before.is_some() || page > 1)
            .then(|| queue_href(tab, post_filter, &search, None)),
        back,
        search,
        post_filter,
        posts: &reading.posts,
        bulk_actions,
    };
    render(page_view, StatusCode::OK)
}

/// What a queue page shows, as asked: the key of its kept reading.
#[derive(PartialEq)]
pub struct QueueAsk {
    tab: Tab,
    post: Option<PostId>,
    search: String,
    before: Option<CommentId>,
    page: i64,
}

/// A queue page's reading of the database: its rows, the tabs' counts and the posts to filter
/// by.
pub struct QueueReading {
    pending: i64,
    tabs: Vec<(Tab, i64, String)>,
    items: Vec<QueueItem>,
    next_href: Option<String>,
    posts: Vec<(PostId, String)>,
}

/// The queue's readings, kept while nothing is committed (see `kept::Kept`): a few, for the
/// tabs and pages moderators move between.
pub type KeptQueue = kept::Kept<QueueAsk, QueueReading>;

/// How many queue readings are kept.
pub const KEPT_QUEUE_READINGS: usize = 8;

async fn read_queue(
    state: &AppState,
    tab: Tab,
    post_filter: Option<PostId>,
    search: &str,
    before: Option<CommentId>,
    page: i64,
) -> AppResult<QueueReading> {
    let filter = QueueFilter {
        post_id: post_filter,
        search: Some(search.to_string()),
    };
    let (rows, more, context, counts, posts) = state
        .db
        .read(move |conn| {
            let (rows, more) = queries::list(conn, tab, &filter, before, page, QUEUE_PAGE_SIZE)?;
            let context = RowContext::load(conn, &rows)?;
            let counts = queries::tab_counts(conn)?;
            let posts = queries::post_choices(conn)?;
            Ok((rows, more, context, counts, posts))
        })
        .await?;
    let last_id = rows.last().map(|r| r.id);
    let tabs = Tab::ALL
        .into_iter()
        .map(|t| {
            (
                t,
                counts.get(&t).copied().unwrap_or(0),
                queue_href(t, post_filter, search, None),
            )
        })
        .collect();
    Ok(QueueReading {
        pending: counts.get(&Tab::Pending).copied().unwrap_or(0),
        tabs,
        items: items_from(rows, &context, state.config.timezone),
        next_href: more.then(|| queue_href(tab, post_filter, search, last_id)),
        posts,
    })
}

/// Runs `action` on every id in one transaction and leaves a notice (with Undo) for the
/// session's next page; answers 409/404 when a single comment cannot make the move.
async fn act_on(
    state: &AppState,
    staff: &Staff,
    actor: Actor,
    ids: Vec<CommentId>,
    action: Action,
) -> AppResult<()> {
    let now = state.clock.now();
    let single = ids.len() == 1;
    let mail = state.mail.clone();
    let user_id = staff.user.id;
    let session = staff.session_hash.clone();
    let outcome = state
        .db
        .write_retrying(move |conn| -> Result<Result<(), Refused>, DbError> {
            let mut steps = Vec::new();
            let mut unchanged = 0;
            for &id in &ids {
                match super::apply(conn, &mail, id, action, &actor, now)? {
                    Ok(Moved::To(step)) => steps.push(step),
                    Ok(Moved::Unchanged) => unchanged += 1,
                    // In a bulk action, a comment that cannot make the move is skipped.
                    Err(refused) if single => return Ok(Err(refused)),
                    Err(_) => {}
                }
            }
            undo::record(
                conn,
                user_id,
                Some(&session),
                action,
                &ids,
                &steps,
                unchanged,
                now,
            )?;
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

/// `POST /admin/undo` (`notice`): puts each comment of that notice's action back to the status
/// it had, once, within the hour, for the moderator who acted; answers 303 back to the page.
pub async fn undo_action(
    state: web::Data<AppState>,
    req: HttpRequest,
    staff: Staff,
    body: web::Bytes,
) -> AppResult<HttpResponse> {
    let form = FormFields::parse(&body)?;
    let notice = form
        .get("notice")
        .and_then(|n| n.parse::<i32>().ok())
        .ok_or_else(|| AppError::BadRequest("notice must be a notice id".into()))?;
    let back = form
        .get("back")
        .map(str::to_string)
        .or_else(|| referer_path(&req))
        .map_or_else(
            || "/admin/comments".to_string(),
            |b| safe_next_or(Some(&b), "/admin/comments"),
        );
    let actor = actor(&state, &req, &staff);
    let now = state.clock.now();
    let mail = state.mail.clone();
    let user_id = staff.user.id;
    let session = staff.session_hash.clone();
    let done = state
        .db
        .write_retrying(move |conn| -> Result<bool, DbError> {
            let Some(text) = crate::staff::claim_undo(conn, notice, user_id, now)? else {
                return Ok(false);
            };
            let (back, left) = undo::undo(conn, &mail, &text, &actor, now)?;
            let message = undo::undone_message(conn, &back, left)?;
            crate::staff::store_notice(
                conn,
                &crate::staff::NewNotice {
                    user_id,
                    session_hash: Some(&session),
                    message: &message,
                    undo: "",
                    view_href: None,
                },
                now,
            )?;
            Ok(true)
        })
        .await?;
    state.mail_wakeup.notify_one();
    if !done {
        return Err(AppError::Conflict(
            "This action can no longer be undone: it was undone already, it is more than an hour old, or it was not yours. Nothing was changed.".into(),
        ));
    }
    Ok(see_other(&back))
}

/// The admin path of the page a form was sent from.
fn referer_path(req: &HttpRequest) -> Option<String> {
    req.headers()
        .get(actix_web::http::header::REFERER)
        .and_then(|r| r.to_str().ok())
        .and_then(|r| r.find("/admin").map(|i| r[i..].to_string()))
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
    act_on(
        &state,
        &staff,
        actor(&state, &req, &staff),
        vec![id],
        action,
    )
    .await?;
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
        act_on(&state, &staff, actor(&state, &req, &staff), ids, action).await?;
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
struct DashboardPage<'a> {
    layout: AdminLayout,
    counts: &'a [(Tab, i64, String)],
    items: &'a [QueueItem],
    back: String,
    bulk_actions: Vec<Action>,
    days: &'a dashboard::DayChart,
    stack: [CommentStatus; 4],
    reasons: &'a dashboard::HChart,
    top_posts: &'a dashboard::HChart,
    outbox: &'a dashboard::OutboxNumbers,
    oldest_waited: String,
}

/// What the dashboard shows of the database, ready to print.
pub struct DashboardReading {
    pending: i64,
    counts: Vec<(Tab, i64, String)>,
    items: Vec<QueueItem>,
    days: dashboard::DayChart,
    reasons: dashboard::HChart,
    top_posts: dashboard::HChart,
    outbox: dashboard::OutboxNumbers,
}

/// The dashboard's reading, kept while nothing is committed (see `kept::Kept`).
pub type KeptDashboard = kept::Kept<(), DashboardReading>;

pub async fn dashboard(
    state: web::Data<AppState>,
    staff: Staff,
    readings: web::Data<KeptDashboard>,
    freshness: web::Data<crate::db::Freshness>,
) -> AppResult<HttpResponse> {
    let now = state.clock.now();
    let tz = state.config.timezone;
    let key = kept::KeptKey::new(freshness.commits(), now, tz);
    let reading = readings
        .get_or_read(key, (), || read_dashboard(&state, now, tz))
        .await?;
    render(
        DashboardPage {
            layout: AdminLayout::with_pending_and_notice(
                &state,
                &staff,
                "Dashboard",
                "dashboard",
                reading.pending,
            )
            .await?,
            counts: &reading.counts,
            items: &reading.items,
            back: "/admin".into(),
            bulk_actions: vec![
                Action::Approve,
                Action::Unapprove,
                Action::Spam,
                Action::Trash,
            ],
            days: &reading.days,
            stack: dashboard::STACK,
            reasons: &reading.reasons,
            top_posts: &reading.top_posts,
            outbox: &reading.outbox,
            oldest_waited: dashboard::waited(reading.outbox.oldest_queued_secs(now)),
        },
        StatusCode::OK,
    )
}

async fn read_dashboard(
    state: &AppState,
    now: chrono::NaiveDateTime,
    tz: chrono_tz::Tz,
) -> AppResult<DashboardReading> {
    let (rows, context, counts, numbers) = state
        .db
        .read(move |conn| {
            let (rows, _) = queries::list(conn, Tab::All, &QueueFilter::default(), None, 1, 5)?;
            let context = RowContext::load(conn, &rows)?;
            let counts = queries::tab_counts(conn)?;
            let numbers = dashboard::load(conn, now, tz)?;
            Ok((rows, context, counts, numbers))
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
    let reasons = dashboard::hbars(
        numbers
            .reasons
            .iter()
            .map(|(r, n)| (dashboard::reason_label(r), None, i64::from(*n)))
            .collect(),
    );
    let top_posts = dashboard::hbars(
        numbers
            .top_posts
            .iter()
            .map(|(title, slug, n)| (title.clone(), Some(format!("/posts/{slug}")), i64::from(*n)))
            .collect(),
    );
    Ok(DashboardReading {
        pending,
        counts,
        items: items_from(rows, &context, tz),
        days: dashboard::day_chart(&numbers.hours, now, tz),
        reasons,
        top_posts,
        outbox: numbers.outbox,
    })
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
