//! The commenter's own pages: `/my-comments` asks for a link by email, and the link's page
//! (`/my-comments/{token}`) lists the address's comments with one button per action. As for
//! every link in an email, GET only shows and POST acts; an expired link is 410, a forged one
//! (or a link made for another purpose) 404. The link lasts a day and may be used again within
//! it; it carries the address sealed, never readable.

use actix_web::http::StatusCode;
use actix_web::http::header::{CACHE_CONTROL, CONTENT_DISPOSITION, HeaderValue, REFERRER_POLICY};
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use chrono::Duration;
use serde::Deserialize;

use super::data::{self, EraseMode};
use super::limits;
use crate::actions::{Actor, Via};
use crate::auth::guard::{anonymous_csrf_is_valid, anonymous_form_page};
use crate::comments::CommentStatus;
use crate::comments::domain::CommenterEmail;
use crate::db::DbError;
use crate::db::ids::CommentId;
use crate::error::{AppError, AppResult};
use crate::http::forms::FormFields;
use crate::http::response::{html_response, see_other};
use crate::notify::emails::{Email, MyComments};
use crate::notify::links::link_error;
use crate::notify::{self, tokens};
use crate::render::SafeHtml;
use crate::site::DiscussionSettings;
use crate::state::AppState;
use crate::views::{Layout, comment_date};

/// How long a "manage my comments" link works.
pub const LINK_HOURS: i64 = 24;

#[derive(Template)]
#[template(path = "privacy/request.html")]
struct RequestPage {
    layout: Layout,
    csrf_token: String,
    email: String,
    error: Option<String>,
    sent: bool,
    link_hours: i64,
}

fn request_page(
    state: &AppState,
    req: &HttpRequest,
    status: StatusCode,
    email: String,
    error: Option<String>,
    sent: bool,
) -> AppResult<HttpResponse> {
    anonymous_form_page(
        state,
        req,
        status,
        "Manage my comments",
        |layout, csrf_token| {
            RequestPage {
                layout,
                csrf_token,
                email,
                error,
                sent,
                link_hours: LINK_HOURS,
            }
            .render()
        },
    )
}

/// `GET /my-comments`
pub async fn request_form(state: web::Data<AppState>, req: HttpRequest) -> AppResult<HttpResponse> {
    request_page(&state, &req, StatusCode::OK, String::new(), None, false)
}

/// `POST /my-comments` (`email`): the same answer, after the same work, whether or not the
/// address is known; only a known address is sent the link, through the outbox.
pub async fn request_link(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> AppResult<HttpResponse> {
    let form = FormFields::parse(&body)?;
    if !anonymous_csrf_is_valid(&state, &req, form.get("csrf_token")) {
        return Err(AppError::Forbidden(
            "This form's security token is missing or has expired, so nothing was sent. Please go back, reload the page and try again.",
        ));
    }
    let typed = form.get("email").unwrap_or("").to_string();
    let email = match CommenterEmail::parse(&typed) {
        Ok(email) => email.as_str().to_string(),
        Err(problem) => {
            return request_page(
                &state,
                &req,
                StatusCode::UNPROCESSABLE_ENTITY,
                typed,
                Some(problem),
                false,
            );
        }
    };
    let network = crate::http::client_ip(&req, &state.config.trusted_proxies)
        .map_or_else(|| "unknown".to_string(), crate::http::ip_network);
    let now = state.clock.now();
    let address_key = state.signer.address_key(&email);
    let mail = state.mail.clone();
    let signer = state.signer.clone();
    let refused = state
        .db
        .write(move |conn| -> Result<Option<u64>, DbError> {
            if let Some(wait) = limits::network_wait(conn, &network, now)? {
                return Ok(Some(wait));
            }
            let allowed = limits::note_request(conn, &address_key, &network, now)?;
            let known = data::is_known(conn, &email)?;
            let link = tokens::my_comments_link(&signer, &email);
            let message = MyComments {
                site: mail.site(),
                manage_url: mail.link(&link, now + Duration::hours(LINK_HOURS), "/my-comments/"),
                privacy_url: mail.url("/privacy"),
            };
            if known && allowed {
                notify::enqueue(conn, &mail, &message, "", &email, None, now)?;
            } else {
                // The same work as the enqueue, bar its one insert, so the time taken tells
                // nothing either.
                message.render().map_err(|e| DbError::Task(e.to_string()))?;
            }
            Ok(None)
        })
        .await?;
    if let Some(retry_after_secs) = refused {
        return Err(AppError::TooManyRequests { retry_after_secs });
    }
    state.mail_wakeup.notify_one();
    request_page(&state, &req, StatusCode::OK, String::new(), None, true)
}

/// The address a "manage my comments" token is for: 410 when it has run out, 404 when it is
/// forged or made for something else (a moderation or unsubscribe link).
fn address_of(state: &AppState, token: &str) -> AppResult<String> {
    let (link, _) = tokens::verify(&state.signer, token, state.clock.now()).map_err(link_error)?;
    tokens::my_comments_address(&state.signer, &link).ok_or(AppError::NotFound)
}

/// One comment as the list shows it.
pub struct ListedComment {
    pub id: CommentId,
    pub post_title: String,
    pub href: String,
    pub date: String,
    pub state: &'static str,
    pub body_html: SafeHtml,
}

#[derive(Template)]
#[template(path = "privacy/manage.html")]
struct ManagePage {
    layout: Layout,
    token: String,
    email: String,
    comments: Vec<ListedComment>,
    spam: i64,
    retention_days: u32,
    notice: Option<&'static str>,
}

#[derive(Deserialize)]
pub struct DoneQuery {
    done: Option<String>,
}

/// What the list says after an action; a fixed set, so nothing from the URL is echoed.
fn notice_for(done: Option<&str>) -> Option<&'static str> {
    match done? {
        "deleted" => Some("The comment was deleted."),
        "anonymised" => Some(
            "Done. Your comments now show as “Anonymous” with a new picture; your email address, website, IP addresses and browser details are gone, and so is every email subscription.",
        ),
        "erased" => Some(
            "Done. Your comments are deleted (where others replied, “This comment was removed.” keeps their place), and so is every email subscription.",
        ),
        _ => None,
    }
}

/// A page of this flow: never stored, never indexed, and its address (which holds the token)
/// is not sent on as a referrer.
fn private_page(status: StatusCode, html: String) -> HttpResponse {
    let mut response = html_response(status, html, true);
    response
        .headers_mut()
        .insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    response
}

/// `GET /my-comments/{token}`: the address's comments, with the buttons that act on them.
pub async fn manage_page(
    state: web::Data<AppState>,
    path: web::Path<String>,
    query: web::Query<DoneQuery>,
) -> AppResult<HttpResponse> {
    let token = path.into_inner();
    let email = address_of(&state, &token)?;
    let lookup = email.clone();
    let (held, counts, settings) = state
        .db
        .read(move |conn| {
            Ok((
                data::comments_of(conn, &lookup)?,
                data::status_counts(conn, &lookup)?,
                DiscussionSettings::load(conn)?,
            ))
        })
        .await?;
    let spam = counts
        .iter()
        .find(|(status, _)| status == CommentStatus::Spam.as_str())
        .map_or(0, |(_, n)| *n);
    let tz = state.config.timezone;
    let comments = held
        .into_iter()
        .map(|c| ListedComment {
            id: c.id,
            href: match c.status {
                CommentStatus::Approved => format!("/posts/{}#comment-{}", c.post_slug, c.id),
                _ => format!("/posts/{}", c.post_slug),
            },
            post_title: c.post_title,
            date: comment_date(c.created_at, tz),
            state: match c.status {
                CommentStatus::Approved => "published",
                CommentStatus::Pending => "awaiting moderation",
                CommentStatus::Trash => "removed by a moderator (in the trash)",
                CommentStatus::Spam => "spam",
            },
            body_html: SafeHtml::from_stored(c.body_html),
        })
        .collect();
    let mut layout = Layout::new(&state, "Your comments");
    layout.noindex = true;
    let html = ManagePage {
        layout,
        token,
        email,
        comments,
        spam,
        retention_days: settings.retention_days,
        notice: notice_for(query.done.as_deref()),
    }
    .render()
    .map_err(|e| AppError::Internal(e.into()))?;
    Ok(private_page(StatusCode::OK, html))
}

/// `POST /my-comments/{token}/download`: everything kept about the address, as JSON.
pub async fn download(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> AppResult<HttpResponse> {
    let email = address_of(&state, &path.into_inner())?;
    json_download(&state, email).await
}

/// The export of `email` as a JSON file download (the admin's export answers the same).
pub async fn json_download(state: &AppState, email: String) -> AppResult<HttpResponse> {
    let now = state.clock.now();
    let site = (state.config.site_title.clone(), state.mail.url(""));
    let secure = state.secure_cookies;
    let export = state
        .db
        .read(move |conn| data::export(conn, &email, (&site.0, &site.1), secure, now))
        .await?;
    let json = serde_json::to_vec_pretty(&export).map_err(|e| AppError::Internal(e.into()))?;
    Ok(HttpResponse::Ok()
        .content_type("application/json; charset=utf-8")
        .insert_header((CACHE_CONTROL, HeaderValue::from_static("private, no-store")))
        .insert_header((
            CONTENT_DISPOSITION,
            HeaderValue::from_static("attachment; filename=\"my-comments-data.json\""),
        ))
        .body(json))
}

/// Who acts through a commenter's link, for the log: nobody on the staff, and no IP address
/// kept for it.
fn commenter() -> Actor {
    Actor {
        user_id: None,
        via: Via::Email,
        ip: None,
    }
}

/// `POST /my-comments/{token}/comments/{id}/delete`
pub async fn delete_comment(
    state: web::Data<AppState>,
    path: web::Path<(String, i32)>,
) -> AppResult<HttpResponse> {
    let (token, id) = path.into_inner();
    let email = address_of(&state, &token)?;
    let now = state.clock.now();
    let deleted = state
        .db
        .write_retrying(move |conn| {
            data::delete_own_comment(conn, &email, CommentId(id), &commenter(), now)
        })
        .await?;
    if !deleted {
        return Err(AppError::NotFound);
    }
    Ok(see_other(&format!("/my-comments/{token}?done=deleted")))
}

/// `POST /my-comments/{token}/erase` (`mode` = `anonymise`, the default, or `delete`).
pub async fn erase(
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Bytes,
) -> AppResult<HttpResponse> {
    let token = path.into_inner();
    let email = address_of(&state, &token)?;
    let form = FormFields::parse(&body)?;
    let mode = EraseMode::parse(form.get("mode")).ok_or_else(|| {
        AppError::Unprocessable(
            "Choose how to erase: anonymise (keep the text) or delete. Nothing was changed.".into(),
        )
    })?;
    erase_address(&state, email, mode, commenter()).await?;
    let done = match mode {
        EraseMode::Anonymise => "anonymised",
        EraseMode::Delete => "erased",
    };
    Ok(see_other(&format!("/my-comments/{token}?done={done}")))
}

/// Erases `email` for `actor`: refused (409) for a staff account's address, which the account
/// itself would keep.
pub async fn erase_address(
    state: &AppState,
    email: String,
    mode: EraseMode,
    actor: Actor,
) -> AppResult<data::Erased> {
    let now = state.clock.now();
    let signer = state.signer.clone();
    let erased = state
        .db
        .write_retrying(move |conn| -> Result<Option<data::Erased>, DbError> {
            if data::is_staff_address(conn, &email)? {
                return Ok(None);
            }
            data::erase(conn, &signer, &email, mode, &actor, now).map(Some)
        })
        .await?;
    erased.ok_or_else(|| {
        AppError::Conflict(
            "This address belongs to a staff account, so it cannot be erased here: an admin must change or remove the account first. Nothing was changed.".into(),
        )
    })
}
