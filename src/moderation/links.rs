//! The moderation links in the held-comment email: one action on one comment by one moderator,
//! with an optional reply, through the shared link-page flow of `notify::links`.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};

use super::queries;
use super::{Moved, Refused};
use crate::actions::{Action, Actor, Via};
use crate::comments::queries::QueueRow;
use crate::db::DbError;
use crate::error::{AppError, AppResult};
use crate::http::forms::FormFields;
use crate::notify::links::{LinkComment, LinkForm, link_error, link_page, open_link};
use crate::notify::tokens::{self, Link, LinkError};
use crate::state::AppState;
use crate::users;

/// The comment as the link page shows it.
fn preview(row: QueueRow) -> LinkComment {
    LinkComment {
        author_name: row.author_name,
        author_email: row.author_email,
        author_url: row.author_url,
        post_title: row.post_title,
        post_slug: row.post_slug,
        status: row.status,
        held_reason: row.held_reason,
        body: row.body,
    }
}

pub async fn moderate_page(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> AppResult<HttpResponse> {
    let token = path.into_inner();
    let (link, _) = open_link(&state, &token).await?;
    let Link::Moderate {
        comment_id, action, ..
    } = link
    else {
        return Err(AppError::NotFound);
    };
    let comment = state
        .db
        .read(move |conn| queries::find(conn, comment_id))
        .await?;
    let Some(comment) = comment else {
        return Err(AppError::Gone("This comment no longer exists."));
    };
    link_page(
        &state,
        StatusCode::OK,
        &format!("{} this comment?", action.label()),
        "Nothing has changed yet. Press the button to confirm.",
        Some(preview(comment)),
        Some(LinkForm {
            action: format!("/moderate/{token}"),
            button: action.label().to_string(),
            reply_box: action == Action::Approve,
        }),
    )
}

pub async fn moderate(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
) -> AppResult<HttpResponse> {
    let token = path.into_inner();
    let (link, expires) = open_link(&state, &token).await?;
    let Link::Moderate {
        comment_id,
        action,
        user_id,
    } = link
    else {
        return Err(AppError::NotFound);
    };
    let form = FormFields::parse(&body)?;
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
    let actor = Actor {
        user_id: Some(user_id.0),
        via: Via::Email,
        ip: crate::http::client_ip(&req, &state.config.trusted_proxies).map(|ip| ip.to_string()),
    };
    let mail = state.mail.clone();
    let seed_signer = state.signer.clone();
    enum Done {
        Acted(Moved),
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
            tokens::mark_used(conn, &token, expires, now)?;
            Ok(Done::Acted(moved))
        })
        .await?;
    state.mail_wakeup.notify_one();
    match done {
        Done::Acted(moved) => {
            let text = match moved {
                Moved::Unchanged => format!(
                    "The comment already was where “{}” puts it; nothing needed to change. This link cannot be used again.",
                    action.label()
                ),
                Moved::To(_) => {
                    format!("Done: {}. This link cannot be used again.", action.label())
                }
            };
            link_page(&state, StatusCode::OK, "Done", &text, None, None)
        }
        Done::Used => Err(link_error(LinkError::Used)),
        Done::NoModerator => Err(AppError::Forbidden(
            "The account this link was made for is disabled.",
        )),
        Done::Refused(Refused::NotFound) => Err(AppError::Gone("This comment no longer exists.")),
        Done::Refused(Refused::NotAllowed { from }) => Err(AppError::Conflict(format!(
            "The comment is {} now, so “{}” is not possible. Nothing was changed.",
            from.as_str(),
            action.label()
        ))),
    }
}
