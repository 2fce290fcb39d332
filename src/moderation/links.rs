//! The moderation links in the held-comment email: one action on one comment by one moderator,
//! with an optional reply, through the shared link flow of `notify::links` (GET shows a page
//! with a button, POST acts; used or expired 410, forged 404). The page after the action says
//! what happened to which comment, links to it and to the queue, offers Reply when the
//! moderator has a session, and carries its own signed, single-use Undo valid for an hour
//! (the moderator may have no session): the same route with an undo link.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use chrono::Duration;

use super::queries;
use super::{Moved, Refused, undo};
use crate::actions::{Action, Actor, Via};
use crate::comments::CommentStatus;
use crate::comments::queries::QueueRow;
use crate::db::DbError;
use crate::db::ids::{CommentId, UserId};
use crate::error::{AppError, AppResult};
use crate::http::forms::FormFields;
use crate::http::response::render;
use crate::notify::links::{LinkComment, link_error, open_link};
use crate::notify::tokens::{self, Link, LinkError};
use crate::staff::UNDO_VALID_MINUTES;
use crate::state::AppState;
use crate::users;

/// The button of a link page.
struct LinkButton {
    action: String,
    button: String,
    reply_box: bool,
    danger: bool,
}

/// Reply there and then, for a moderator who has a session in this browser.
struct ReplyForm {
    comment_id: CommentId,
    author_name: String,
    csrf_token: String,
    back: String,
}

#[derive(Template)]
#[template(path = "admin/link.html")]
struct LinkPage {
    site_title: String,
    heading: String,
    text: String,
    /// The text reports a finished action (shown as a notice).
    done: bool,
    comment: Option<LinkComment>,
    form: Option<LinkButton>,
    undo_action: Option<String>,
    reply: Option<ReplyForm>,
    links: Vec<(String, String)>,
}

impl LinkPage {
    fn new(state: &AppState, heading: &str, text: String) -> LinkPage {
        LinkPage {
            site_title: state.config.site_title.clone(),
            heading: heading.into(),
            text,
            done: false,
            comment: None,
            form: None,
            undo_action: None,
            reply: None,
            links: Vec::new(),
        }
    }
}

/// The comment as the link page shows it.
fn preview(row: QueueRow) -> LinkComment {
    LinkComment {
        author_name: row.author_name,
        author_email: row.author_email,
        author_url: row.author_url,
        post_title: row.post_title,
        post_slug: row.post_slug,
        status: row.status,
        held_reason: row
            .held_reason
            .map(|r| super::handlers::reworded_reason(&r)),
        body: row.body,
    }
}

fn is_destructive(action: Action) -> bool {
    matches!(action, Action::Spam | Action::Trash | Action::Delete)
}

pub async fn moderate_page(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> AppResult<HttpResponse> {
    let token = path.into_inner();
    let (link, _) = open_link(&state, &token).await?;
    match link {
        Link::Moderate {
            comment_id, action, ..
        } => {
            let comment = state
                .db
                .read(move |conn| queries::find(conn, comment_id))
                .await?;
            let Some(comment) = comment else {
                return Err(AppError::Gone("This comment no longer exists."));
            };
            let mut page = LinkPage::new(
                &state,
                &format!("{} this comment?", action.label()),
                "Nothing has changed yet. Press the button to confirm.".into(),
            );
            page.comment = Some(preview(comment));
            page.form = Some(LinkButton {
                action: format!("/moderate/{token}"),
                button: action.label().to_string(),
                reply_box: action == Action::Approve,
                danger: is_destructive(action),
            });
            render(page, StatusCode::OK)
        }
        Link::UndoModeration { notice, .. } => {
            let message = state
                .db
                .read(move |conn| crate::staff::notice_message(conn, notice))
                .await?
                .ok_or(AppError::Gone("There is nothing left to undo."))?;
            let mut page = LinkPage::new(
                &state,
                "Undo this?",
                format!("{message} Nothing has changed yet. Press the button to put it back."),
            );
            page.form = Some(LinkButton {
                action: format!("/moderate/{token}"),
                button: "Undo".into(),
                reply_box: false,
                danger: false,
            });
            render(page, StatusCode::OK)
        }
        _ => Err(AppError::NotFound),
    }
}

pub async fn moderate(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
) -> AppResult<HttpResponse> {
    let token = path.into_inner();
    let (link, expires) = open_link(&state, &token).await?;
    match link {
        Link::Moderate {
            comment_id,
            action,
            user_id,
        } => {
            act(
                &state, &req, token, expires, comment_id, action, user_id, &body,
            )
            .await
        }
        Link::UndoModeration { notice, user_id } => {
            undo_link(&state, &req, token, expires, notice, user_id).await
        }
        _ => Err(AppError::NotFound),
    }
}

fn email_actor(state: &AppState, req: &HttpRequest, user_id: UserId) -> Actor {
    Actor {
        user_id: Some(user_id.0),
        via: Via::Email,
        ip: crate::http::client_ip(req, &state.config.trusted_proxies).map(|ip| ip.to_string()),
    }
}

#[allow(clippy::too_many_arguments)]
async fn act(
    state: &AppState,
    req: &HttpRequest,
    token: String,
    expires: chrono::NaiveDateTime,
    comment_id: CommentId,
    action: Action,
    user_id: UserId,
    body: &[u8],
) -> AppResult<HttpResponse> {
    let form = FormFields::parse(body)?;
    let reply = crate::text::normalize_newlines(form.get("body").unwrap_or(""));
    let reply = if reply.trim().is_empty() {
        None
    } else {
        Some(
            crate::comments::domain::CommentBody::parse(&reply).map_err(|e| {
                AppError::Unprocessable(format!(
                    "The reply was not posted, and nothing changed: {e}"
                ))
            })?,
        )
    };
    let now = state.clock.now();
    let actor = email_actor(state, req, user_id);
    let mail = state.mail.clone();
    let seed_signer = state.signer.clone();
    enum Done {
        Acted { moved: Moved, notice: i32 },
        Refused(Refused),
        Used,
        NoModerator,
    }
    let done = state
        .db
        .write_retrying(move |conn| -> Result<Done, DbError> {
            // Checked again in the transaction: two clicks cannot both act.
            if tokens::is_used(conn, &token)? {
                return Ok(Done::Used);
            }
            let Some(moderator) = users::find_by_id(conn, user_id)?.filter(|u| !u.disabled) else {
                return Ok(Done::NoModerator);
            };
            let moved =
                match crate::moderation::apply(conn, &mail, comment_id, action, &actor, now)? {
                    Ok(moved) => moved,
                    Err(refused) => return Ok(Done::Refused(refused)),
                };
            if let Some(reply) = &reply {
                let seed = seed_signer.keyed_u32("avatar", &moderator.email) as i32;
                if let Err(refused) = crate::moderation::reply_as_staff(
                    conn, &mail, comment_id, &moderator, reply, seed, &actor, now,
                )? {
                    return Ok(Done::Refused(refused));
                }
            }
            let (steps, unchanged) = match &moved {
                Moved::To(step) => (vec![*step], 0),
                Moved::Unchanged => (Vec::new(), 1),
            };
            let notice = undo::record(
                conn,
                user_id,
                None,
                action,
                &[comment_id],
                &steps,
                unchanged,
                now,
            )?;
            tokens::mark_used(conn, &token, expires, now)?;
            Ok(Done::Acted { moved, notice })
        })
        .await?;
    state.mail_wakeup.notify_one();
    let (moved, notice) = match done {
        Done::Acted { moved, notice } => (moved, notice),
        Done::Used => return Err(link_error(LinkError::Used)),
        Done::NoModerator => {
            return Err(AppError::Forbidden(
                "The account this link was made for is disabled.",
            ));
        }
        Done::Refused(Refused::NotFound) => {
            return Err(AppError::Gone("This comment no longer exists."));
        }
        Done::Refused(Refused::NotAllowed { from }) => {
            return Err(AppError::Conflict(format!(
                "The comment is {} now, so “{}” is not possible. Nothing was changed.",
                from.as_str(),
                action.label()
            )));
        }
    };
    let row = state
        .db
        .read(move |conn| queries::find(conn, comment_id))
        .await?;
    let (name, title, slug, status) = match &row {
        Some(r) => (
            r.author_name.clone(),
            r.post_title.clone(),
            r.post_slug.clone(),
            CommentStatus::parse(&r.status),
        ),
        None => (String::new(), String::new(), String::new(), None),
    };
    let whose = if name.trim().is_empty() {
        format!("Comment #{comment_id}")
    } else {
        format!("Comment by {name}")
    };
    let on = if title.is_empty() {
        String::new()
    } else {
        format!(" on “{title}”")
    };
    let text = match moved {
        Moved::Unchanged => format!(
            "{whose}{on} was already {}; nothing needed to change. This link cannot be used again.",
            undo::past_tense(action)
        ),
        Moved::To(_) => format!(
            "{whose}{on} {}. This link cannot be used again.",
            undo::past_tense(action)
        ),
    };
    let mut page = LinkPage::new(state, "Done", text);
    page.done = true;
    if matches!(moved, Moved::To(step) if step.to.is_some()) {
        let undo_token = tokens::issue(
            &state.signer,
            &Link::UndoModeration { notice, user_id },
            now + Duration::minutes(UNDO_VALID_MINUTES),
        );
        page.undo_action = Some(format!("/moderate/{undo_token}"));
    }
    if !slug.is_empty() {
        page.links.push((
            if status == Some(CommentStatus::Approved) {
                "View the comment".into()
            } else {
                "View it in the queue".into()
            },
            undo::view_href(&slug, comment_id, status),
        ));
    }
    page.links.push((
        "Open the queue".into(),
        "/admin/comments?status=pending".into(),
    ));
    // A moderator logged in in this browser can answer at once.
    if matches!(
        status,
        Some(CommentStatus::Approved | CommentStatus::Pending)
    ) && let Some(staff) = crate::auth::guard::current_staff(state, req).await?
    {
        page.reply = Some(ReplyForm {
            comment_id,
            author_name: name,
            csrf_token: staff.csrf_token,
            back: format!("/admin/comments?status=approved#c{comment_id}"),
        });
    }
    render(page, StatusCode::OK)
}

async fn undo_link(
    state: &AppState,
    req: &HttpRequest,
    token: String,
    expires: chrono::NaiveDateTime,
    notice: i32,
    user_id: UserId,
) -> AppResult<HttpResponse> {
    let now = state.clock.now();
    let actor = email_actor(state, req, user_id);
    let mail = state.mail.clone();
    enum Done {
        Undone(String),
        Nothing,
        Used,
        NoModerator,
    }
    let done = state
        .db
        .write_retrying(move |conn| -> Result<Done, DbError> {
            if tokens::is_used(conn, &token)? {
                return Ok(Done::Used);
            }
            if users::find_by_id(conn, user_id)?
                .filter(|u| !u.disabled)
                .is_none()
            {
                return Ok(Done::NoModerator);
            }
            let Some(text) = crate::staff::claim_undo(conn, notice, user_id, now)? else {
                return Ok(Done::Nothing);
            };
            let (back, left) = undo::undo(conn, &mail, &text, &actor, now)?;
            let message = undo::undone_message(conn, &back, left)?;
            tokens::mark_used(conn, &token, expires, now)?;
            Ok(Done::Undone(message))
        })
        .await?;
    state.mail_wakeup.notify_one();
    match done {
        Done::Undone(message) => {
            let mut page = LinkPage::new(state, "Undone", message);
            page.done = true;
            page.links.push((
                "Open the queue".into(),
                "/admin/comments?status=pending".into(),
            ));
            render(page, StatusCode::OK)
        }
        Done::Nothing => Err(AppError::Gone(
            "This action was already undone, or is too old to undo. Nothing was changed.",
        )),
        Done::Used => Err(link_error(LinkError::Used)),
        Done::NoModerator => Err(AppError::Forbidden(
            "The account this link was made for is disabled.",
        )),
    }
}
