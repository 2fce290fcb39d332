//! The pages behind links in emails (moderate, confirm, unsubscribe, password reset) and the
//! admin's mail page. A GET only shows a page with a button; the POST acts. A forged link is
//! 404, an expired or used one 410.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use chrono::Duration;
use serde::Deserialize;

use super::emails::{PasswordReset, Site, TestEmail};
use super::outbox;
use super::tokens::{self, Link, LinkError};
use crate::actions::{Action, Actor, Via};
use crate::admin::AdminLayout;
use crate::auth::guard::anonymous_form_page;
use crate::auth::handlers::hash_off_thread;
use crate::auth::{Admin, sessions};
use crate::db::DbError;
use crate::error::{AppError, AppResult};
use crate::http::forms::FormFields;
use crate::http::response::{html_response, render, see_other};
use crate::moderation::queries::{self as mq, QueueRow};
use crate::moderation::{Moved, Refused};
use crate::state::AppState;
use crate::users::{self, password::Password};
use crate::views::Layout;

struct LinkForm {
    action: String,
    button: String,
    reply_box: bool,
}

#[derive(Template)]
#[template(path = "notify/link.html")]
struct LinkPage {
    layout: Layout,
    heading: String,
    text: String,
    comment: Option<QueueRow>,
    form: Option<LinkForm>,
}

fn link_page(
    state: &AppState,
    status: StatusCode,
    heading: &str,
    text: &str,
    comment: Option<QueueRow>,
    form: Option<LinkForm>,
) -> AppResult<HttpResponse> {
    let mut layout = Layout::new(state, heading);
    layout.noindex = true;
    let html = LinkPage {
        layout,
        heading: heading.into(),
        text: text.into(),
        comment,
        form,
    }
    .render()
    .map_err(|e| AppError::Internal(e.into()))?;
    Ok(html_response(status, html, true))
}

fn link_error(e: LinkError) -> AppError {
    match e {
        LinkError::Forged => AppError::NotFound,
        LinkError::Expired => AppError::Gone("This link has expired. Nothing was changed."),
        LinkError::Used => AppError::Gone("This link was already used. Nothing was changed."),
    }
}

/// Checks a link's signature, time and single use.
async fn open_link(state: &AppState, token: &str) -> AppResult<(Link, chrono::NaiveDateTime)> {
    let (link, expires) =
        tokens::verify(&state.signer, token, state.clock.now()).map_err(link_error)?;
    let owned = token.to_string();
    if state
        .db
        .read(move |conn| tokens::is_used(conn, &owned))
        .await?
    {
        return Err(link_error(LinkError::Used));
    }
    Ok((link, expires))
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
        .read(move |conn| mq::find(conn, comment_id))
        .await?;
    let Some(comment) = comment else {
        return Err(AppError::Gone("This comment no longer exists."));
    };
    link_page(
        &state,
        StatusCode::OK,
        &format!("{} this comment?", action.label()),
        "Nothing has changed yet. Press the button to confirm.",
        Some(comment),
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
        user_id: Some(user_id),
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

/// The two links that act on a commenter's address: same flow, different words and effect.
#[derive(Clone, Copy)]
enum AddressLink {
    Confirm,
    Unsubscribe,
}

impl AddressLink {
    /// The address, if `link` is this kind of link.
    fn email(self, link: Link) -> Option<String> {
        match (self, link) {
            (AddressLink::Confirm, Link::Confirm { email })
            | (AddressLink::Unsubscribe, Link::Unsubscribe { email }) => Some(email),
            _ => None,
        }
    }

    fn route(self) -> &'static str {
        match self {
            AddressLink::Confirm => "/confirm/",
            AddressLink::Unsubscribe => "/unsubscribe/",
        }
    }

    /// (heading, text, button) before, and (heading, text) after.
    fn words(
        self,
    ) -> (
        (&'static str, &'static str, &'static str),
        (&'static str, &'static str),
    ) {
        match self {
            AddressLink::Confirm => (
                (
                    "Email me about replies?",
                    "Press the button to confirm that this address wants an email when your comments are approved or answered. You can stop them at any time with the link in each email.",
                    "Yes, email me",
                ),
                (
                    "Confirmed",
                    "Thank you: we will email you about replies to your comments.",
                ),
            ),
            AddressLink::Unsubscribe => (
                (
                    "Stop these emails?",
                    "Press the button and this address gets no more emails about comments on this site.",
                    "Unsubscribe",
                ),
                (
                    "Unsubscribed",
                    "This address will get no more emails about comments on this site.",
                ),
            ),
        }
    }
}

async fn address_page(
    state: &AppState,
    token: String,
    kind: AddressLink,
) -> AppResult<HttpResponse> {
    let (link, _) = open_link(state, &token).await?;
    kind.email(link).ok_or(AppError::NotFound)?;
    let ((heading, text, button), _) = kind.words();
    let form = LinkForm {
        action: format!("{}{token}", kind.route()),
        button: button.into(),
        reply_box: false,
    };
    link_page(state, StatusCode::OK, heading, text, None, Some(form))
}

async fn address_act(
    state: &AppState,
    token: String,
    kind: AddressLink,
) -> AppResult<HttpResponse> {
    let (link, expires) = open_link(state, &token).await?;
    let email = kind.email(link).ok_or(AppError::NotFound)?;
    let now = state.clock.now();
    state
        .db
        .write(move |conn| -> Result<(), DbError> {
            match kind {
                AddressLink::Confirm => {
                    super::record_address(conn, &email, super::AddressEvent::Confirmed, now)?
                }
                AddressLink::Unsubscribe => {
                    super::record_address(conn, &email, super::AddressEvent::Unsubscribed, now)?
                }
            }
            tokens::mark_used(conn, &token, expires, now)
        })
        .await?;
    let (_, (heading, text)) = kind.words();
    link_page(state, StatusCode::OK, heading, text, None, None)
}

pub async fn confirm_page(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> AppResult<HttpResponse> {
    address_page(&state, path.into_inner(), AddressLink::Confirm).await
}

pub async fn confirm(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> AppResult<HttpResponse> {
    address_act(&state, path.into_inner(), AddressLink::Confirm).await
}

pub async fn unsubscribe_page(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> AppResult<HttpResponse> {
    address_page(&state, path.into_inner(), AddressLink::Unsubscribe).await
}

/// The page's button and RFC 8058 one-click unsubscribe both land here.
pub async fn unsubscribe(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> AppResult<HttpResponse> {
    address_act(&state, path.into_inner(), AddressLink::Unsubscribe).await
}

#[derive(Template)]
#[template(path = "admin/password_reset.html")]
struct ResetPage {
    layout: Layout,
    csrf_token: String,
    token: Option<String>,
    message: Option<String>,
    errors: Vec<String>,
    show_form: bool,
}

fn reset_page(
    state: &AppState,
    req: &HttpRequest,
    status: StatusCode,
    token: Option<String>,
    message: Option<String>,
    errors: Vec<String>,
    show_form: bool,
) -> AppResult<HttpResponse> {
    anonymous_form_page(
        state,
        req,
        status,
        "Password reset",
        |layout, csrf_token| {
            ResetPage {
                layout,
                csrf_token,
                token,
                message,
                errors,
                show_form,
            }
            .render()
        },
    )
}

/// Part of the current password hash: a reset link dies once the password changes.
fn password_stamp(hash: &str) -> String {
    crate::crypto::token_hash(hash)[..16].to_string()
}

pub async fn reset_request_page(
    state: web::Data<AppState>,
    req: HttpRequest,
) -> AppResult<HttpResponse> {
    reset_page(&state, &req, StatusCode::OK, None, None, Vec::new(), true)
}

#[derive(Deserialize)]
pub struct ResetRequest {
    email: String,
}

/// Answers the same whether or not the address has an account.
pub async fn reset_request(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<ResetRequest>,
) -> AppResult<HttpResponse> {
    let email = form.email.trim().to_lowercase();
    let now = state.clock.now();
    let mail = state.mail.clone();
    let signer = state.signer.clone();
    state
        .db
        .write(move |conn| -> Result<(), DbError> {
            let Some(user) = users::find_by_email(conn, &email)?.filter(|u| !u.disabled) else {
                return Ok(());
            };
            if !users::note_reset_request(conn, user.id, now)? {
                // Answered like any other request, so the page tells a stranger nothing.
                tracing::warn!(
                    user_id = user.id,
                    "password reset not sent: too many this hour"
                );
                return Ok(());
            }
            let link = Link::PasswordReset {
                user_id: user.id,
                stamp: password_stamp(&user.password_hash),
            };
            let reset_url = mail.url(&format!(
                "/admin/password-reset/{}",
                tokens::issue(&signer, &link, now + Duration::hours(1))
            ));
            let email = PasswordReset {
                site: Site {
                    title: mail.site_title.clone(),
                    url: mail.url("/"),
                },
                name: user.display_name.clone(),
                reset_url,
            };
            super::enqueue(
                conn,
                &mail,
                &email,
                &user.display_name,
                &user.email,
                None,
                now,
            )
        })
        .await?;
    state.mail_wakeup.notify_one();
    reset_page(
        &state,
        &req,
        StatusCode::OK,
        None,
        Some("If an account uses that address, we have sent it a link to choose a new password. The link works for one hour.".into()),
        Vec::new(),
        false,
    )
}

/// The user a reset token is for, if it is genuine, in time and not yet used.
async fn reset_target(state: &AppState, token: &str) -> AppResult<users::User> {
    let (link, _) = tokens::verify(&state.signer, token, state.clock.now()).map_err(link_error)?;
    let Link::PasswordReset { user_id, stamp } = link else {
        return Err(AppError::NotFound);
    };
    let user = state
        .db
        .read(move |conn| users::find_by_id(conn, user_id))
        .await?;
    match user {
        Some(user) if !user.disabled && password_stamp(&user.password_hash) == stamp => Ok(user),
        _ => Err(link_error(LinkError::Used)),
    }
}

pub async fn reset_form(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
) -> AppResult<HttpResponse> {
    let token = path.into_inner();
    reset_target(&state, &token).await?;
    reset_page(
        &state,
        &req,
        StatusCode::OK,
        Some(token),
        None,
        Vec::new(),
        true,
    )
}

#[derive(Deserialize)]
pub struct NewPassword {
    password: String,
    password_confirm: String,
}

pub async fn reset(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    form: web::Form<NewPassword>,
) -> AppResult<HttpResponse> {
    let token = path.into_inner();
    let user = reset_target(&state, &token).await?;
    let mut errors = Vec::new();
    let password = Password::parse(&form.password)
        .map_err(|e| errors.push(format!("Password: {e}")))
        .ok();
    if form.password != form.password_confirm {
        errors.push("The two passwords differ.".into());
    }
    let (Some(password), true) = (password, errors.is_empty()) else {
        return reset_page(
            &state,
            &req,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some(token),
            None,
            errors,
            true,
        );
    };
    let hash = hash_off_thread(&state, password).await?;
    let old_stamp = password_stamp(&user.password_hash);
    let user_id = user.id;
    let changed = state
        .db
        .write(move |conn| -> Result<bool, DbError> {
            // The stamp is checked again here, so a link can change the password only once.
            let current = users::find_by_id(conn, user_id)?;
            if current.is_none_or(|u| password_stamp(&u.password_hash) != old_stamp) {
                return Ok(false);
            }
            users::set_password_hash(conn, user_id, &hash)?;
            users::end_sessions(conn, user_id)?;
            Ok(true)
        })
        .await?;
    if !changed {
        return Err(link_error(LinkError::Used));
    }
    tracing::info!(user_id, "password reset through an emailed link");
    let mut response = see_other("/admin/login?info=password-changed");
    response
        .add_cookie(&sessions::removal_cookie(state.secure_cookies))
        .map_err(|e| AppError::Internal(e.into()))?;
    Ok(response)
}

pub struct OutboxView {
    pub id: i32,
    pub kind: String,
    pub to: String,
    pub subject: String,
    pub status: String,
    pub attempts: i32,
    pub next_attempt: String,
    pub last_error: Option<String>,
}

#[derive(Template)]
#[template(path = "admin/mail.html")]
struct MailPage {
    layout: AdminLayout,
    transport: String,
    failed: i64,
    /// Messages not sent yet (waiting or being sent), and how long the oldest has waited.
    queued: i64,
    oldest_waited: String,
    notice: Option<String>,
    rows: Vec<OutboxView>,
}

/// "45 seconds", "1 minute", "3 hours", "2 days": how long mail has waited, in the largest unit.
fn waited_for(secs: i64) -> String {
    let (n, unit) = match secs.max(0) {
        s if s < 60 => (s, "second"),
        s if s < 3600 => (s / 60, "minute"),
        s if s < 86_400 => (s / 3600, "hour"),
        s => (s / 86_400, "day"),
    };
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

#[derive(Deserialize)]
pub struct MailQuery {
    done: Option<String>,
}

pub async fn mail_page(
    state: web::Data<AppState>,
    admin: Admin,
    query: web::Query<MailQuery>,
) -> AppResult<HttpResponse> {
    let (rows, summary) = state
        .db
        .read(|conn| Ok((outbox::recent(conn, 100)?, outbox::queue_summary(conn)?)))
        .await?;
    let tz = state.config.timezone;
    let rows = rows
        .into_iter()
        .map(|r| OutboxView {
            next_attempt: if r.status == "queued" {
                crate::views::comment_date(r.next_attempt_at, tz)
            } else {
                String::new()
            },
            id: r.id,
            kind: r.kind,
            to: r.to_address,
            subject: r.subject,
            status: r.status,
            attempts: r.attempts,
            last_error: r.last_error,
        })
        .collect();
    let notice = match query.done.as_deref() {
        Some("test") => Some("A test email is on its way to you.".to_string()),
        Some("retry") => Some("The message is queued again.".to_string()),
        _ => None,
    };
    render(
        MailPage {
            layout: AdminLayout::new(&state, &admin.0, "Mail", "mail").await?,
            transport: state.mail_transport.clone(),
            failed: summary.failed,
            queued: summary.queued,
            oldest_waited: waited_for(summary.oldest_queued_secs(state.clock.now())),
            notice,
            rows,
        },
        StatusCode::OK,
    )
}

pub async fn retry(
    state: web::Data<AppState>,
    _admin: Admin,
    path: web::Path<i32>,
) -> AppResult<HttpResponse> {
    let id = path.into_inner();
    let now = state.clock.now();
    if !state
        .db
        .write(move |conn| outbox::retry_now(conn, id, now))
        .await?
    {
        return Err(AppError::Conflict(
            "Only a failed or waiting message can be retried.".into(),
        ));
    }
    state.mail_wakeup.notify_one();
    Ok(see_other("/admin/mail?done=retry"))
}

pub async fn send_test(state: web::Data<AppState>, admin: Admin) -> AppResult<HttpResponse> {
    let user = admin.0.user;
    let now = state.clock.now();
    let mail = state.mail.clone();
    let transport = state.mail_transport.clone();
    state
        .db
        .write(move |conn| {
            let email = TestEmail {
                site: Site {
                    title: mail.site_title.clone(),
                    url: mail.url("/"),
                },
                name: user.display_name.clone(),
                transport,
            };
            super::enqueue(
                conn,
                &mail,
                &email,
                &user.display_name,
                &user.email,
                None,
                now,
            )
        })
        .await?;
    state.mail_wakeup.notify_one();
    Ok(see_other("/admin/mail?done=test"))
}
