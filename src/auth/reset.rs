//! Password reset by email: ask for a link, follow it, choose a new password. The link is
//! signed, lasts an hour and dies once the password changes.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use chrono::Duration;
use serde::Deserialize;

use super::guard::anonymous_form_page;
use super::handlers::hash_off_thread;
use super::sessions;
use crate::db::DbError;
use crate::error::{AppError, AppResult};
use crate::http::response::see_other;
use crate::notify;
use crate::notify::emails::{PasswordReset, Site};
use crate::notify::links::link_error;
use crate::notify::tokens::{self, Link, LinkError};
use crate::state::AppState;
use crate::users::{self, password::Password};
use crate::views::Layout;

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
                    user_id = user.id.0,
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
            notify::enqueue(
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
    tracing::info!(
        user_id = user_id.0,
        "password reset through an emailed link"
    );
    let mut response = see_other("/admin/login?info=password-changed");
    response
        .add_cookie(&sessions::removal_cookie(state.secure_cookies))
        .map_err(|e| AppError::Internal(e.into()))?;
    Ok(response)
}
