//! Every staff member's own profile: the name and bio shown on their author page, and their
//! password. `POST /admin/profile` carries `op=profile` or `op=password` (without `op`, a form
//! with `new_password` is a password change, so scripts can post the DESIGN.md fields alone).

use actix_web::http::StatusCode;
use actix_web::http::header::{HeaderValue, LOCATION, RETRY_AFTER};
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use diesel::prelude::*;
use serde::Deserialize;

use crate::auth::handlers::hash_off_thread;
use crate::auth::handlers::{check_password, client_network};
use crate::auth::{Staff, sessions, throttle};
use crate::db::DbError;
use crate::db::schema::users as users_table;
use crate::error::{AppError, AppResult};
use crate::http::forms::{FieldErrors, FormFields};
use crate::http::response::{render, see_other};
use crate::staff::{AdminLayout, web_actor};
use crate::state::AppState;
use crate::users::{self, password::Password};

pub const MAX_BIO_CHARS: usize = 2_000;

/// A bio: plain text (printed escaped), line breaks allowed, at most 2,000 characters.
fn parse_bio(text: &str) -> Result<String, String> {
    let bio = crate::text::normalize_newlines(text).trim().to_string();
    if bio.chars().count() > MAX_BIO_CHARS {
        return Err(format!(
            "the bio must be at most {MAX_BIO_CHARS} characters (it has {})",
            bio.chars().count()
        ));
    }
    if bio
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err("the bio must not contain control characters".into());
    }
    Ok(bio)
}

#[derive(Template)]
#[template(path = "admin/profile.html")]
struct ProfilePage {
    layout: AdminLayout,
    display_name: String,
    bio: String,
    slug: String,
    notice: Option<&'static str>,
    errors: FieldErrors,
    max_bio: usize,
}

impl ProfilePage {
    fn has_profile_errors(&self) -> bool {
        self.errors.get("display_name").is_some() || self.errors.get("bio").is_some()
    }

    fn has_password_errors(&self) -> bool {
        ["current_password", "new_password", "new_password_confirm"]
            .iter()
            .any(|f| self.errors.get(f).is_some())
    }
}

/// The page; `typed` is the name and bio as submitted on a refused profile form, else the
/// stored ones are shown.
async fn profile_page(
    state: &AppState,
    staff: &Staff,
    status: StatusCode,
    notice: Option<&'static str>,
    typed: Option<(String, String)>,
    errors: FieldErrors,
) -> AppResult<HttpResponse> {
    let (display_name, bio) =
        typed.unwrap_or_else(|| (staff.user.display_name.clone(), staff.user.bio.clone()));
    render(
        ProfilePage {
            layout: AdminLayout::new(state, staff, "Your profile", "profile").await?,
            display_name,
            bio,
            slug: staff.user.slug.clone(),
            notice,
            errors,
            max_bio: MAX_BIO_CHARS,
        },
        status,
    )
}

#[derive(Deserialize)]
pub struct ProfileQuery {
    saved: Option<String>,
}

/// `GET /admin/profile`
pub async fn form(
    state: web::Data<AppState>,
    staff: Staff,
    query: web::Query<ProfileQuery>,
) -> AppResult<HttpResponse> {
    let notice = query.saved.is_some().then_some("Profile saved.");
    profile_page(
        &state,
        &staff,
        StatusCode::OK,
        notice,
        None,
        FieldErrors::new(),
    )
    .await
}

/// `POST /admin/profile`
pub async fn save(
    state: web::Data<AppState>,
    req: HttpRequest,
    staff: Staff,
    body: web::Bytes,
) -> AppResult<HttpResponse> {
    let form = FormFields::parse(&body)?;
    let password_change = match form.get("op") {
        Some("password") => true,
        Some("profile") => false,
        Some(_) => return Err(AppError::BadRequest("Unknown form.".into())),
        None => form.get("new_password").is_some(),
    };
    if password_change {
        change_password(&state, &req, &staff, &form).await
    } else {
        update_profile(&state, &req, &staff, &form).await
    }
}

async fn update_profile(
    state: &AppState,
    req: &HttpRequest,
    staff: &Staff,
    form: &FormFields,
) -> AppResult<HttpResponse> {
    let typed_name = form.get("display_name").unwrap_or("").to_string();
    let typed_bio = crate::text::normalize_newlines(form.get("bio").unwrap_or(""));
    let mut errors = FieldErrors::new();
    let name = users::parse_display_name(&typed_name)
        .map_err(|e| errors.push(("display_name", format!("Name: {e}."))))
        .ok();
    let bio = parse_bio(&typed_bio)
        .map_err(|e| errors.push(("bio", format!("Bio: {e}."))))
        .ok();
    let (Some(name), Some(bio), true) = (name, bio, errors.is_empty()) else {
        return profile_page(
            state,
            staff,
            StatusCode::UNPROCESSABLE_ENTITY,
            None,
            Some((typed_name, typed_bio)),
            errors,
        )
        .await;
    };
    let actor = web_actor(state, req, staff);
    let user_id = staff.user.id;
    let now = state.clock.now();
    state
        .db
        .write(move |conn| -> Result<(), DbError> {
            // The slug stays: links to the author page keep working after a rename.
            diesel::update(users_table::table.find(user_id))
                .set((
                    users_table::display_name.eq(&name),
                    users_table::bio.eq(&bio),
                    users_table::updated_at.eq(now),
                ))
                .execute(conn)?;
            let detail = format!("{name} (user #{user_id})");
            crate::audit::log(conn, None, "user-profile", &detail, &actor, now)
        })
        .await?;
    Ok(see_other("/admin/profile?saved=1"))
}

async fn change_password(
    state: &AppState,
    req: &HttpRequest,
    staff: &Staff,
    form: &FormFields,
) -> AppResult<HttpResponse> {
    let current = form.get("current_password").unwrap_or("");
    let new_text = form.get("new_password").unwrap_or("");
    let mut errors = FieldErrors::new();
    let new_password = Password::parse(new_text)
        .map_err(|e| errors.push(("new_password", format!("New password: {e}."))))
        .ok();
    if new_password.is_some() && form.get("new_password_confirm") != Some(new_text) {
        errors.push((
            "new_password_confirm",
            "The two new passwords differ.".into(),
        ));
    }
    if current.is_empty() {
        errors.push(("current_password", "Enter your current password.".into()));
    }
    // The cheap checks come first, so a typo costs no argon2 run and no failed attempt.
    let (Some(new_password), true) = (new_password, errors.is_empty()) else {
        return refused(state, staff, StatusCode::UNPROCESSABLE_ENTITY, errors).await;
    };

    // Wrong current passwords count with failed logins: a borrowed session must not become a
    // way to guess the password without the login form's limit.
    let email = staff.user.email.clone();
    let (_, network) = client_network(state, req);
    let now = state.clock.now();
    // Reserved as a failure before the check, like a login attempt (see `throttle`).
    let lookup_email = email.clone();
    let reservation = state
        .db
        .write(move |conn| throttle::reserve_attempt(conn, &lookup_email, &network, now))
        .await?;
    if let throttle::Reservation::Locked {
        retry_after_secs: retry,
    } = reservation
    {
        let message = format!(
            "Too many failed attempts. Please wait {} minutes and try again.",
            retry.div_ceil(60)
        );
        let mut response = refused(
            state,
            staff,
            StatusCode::TOO_MANY_REQUESTS,
            FieldErrors::from(vec![("current_password", message)]),
        )
        .await?;
        response
            .headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from(retry));
        return Ok(response);
    }
    if !check_password(state, Some(&staff.user), current).await? {
        return refused(
            state,
            staff,
            StatusCode::UNPROCESSABLE_ENTITY,
            FieldErrors::from(vec![(
                "current_password",
                "That is not your current password. Nothing was changed.".into(),
            )]),
        )
        .await;
    }

    let hash = hash_off_thread(state, new_password).await?;
    let actor = web_actor(state, req, staff);
    let user_id = staff.user.id;
    let name = staff.user.display_name.clone();
    state
        .db
        .write(move |conn| -> Result<(), DbError> {
            users::set_password_hash(conn, user_id, &hash)?;
            // Every session ends, this one included: whoever else held one is out.
            users::end_sessions(conn, user_id)?;
            throttle::clear_for_account(conn, &email)?;
            let detail = format!("{name} (user #{user_id})");
            crate::audit::log(conn, None, "user-password", &detail, &actor, now)
        })
        .await?;
    Ok(HttpResponse::SeeOther()
        .insert_header((LOCATION, "/admin/login?info=password-changed"))
        .cookie(sessions::removal_cookie(state.secure_cookies))
        .finish())
}

/// The page again after a refused password change; the stored name and bio are shown.
async fn refused(
    state: &AppState,
    staff: &Staff,
    status: StatusCode,
    errors: FieldErrors,
) -> AppResult<HttpResponse> {
    profile_page(state, staff, status, None, None, errors).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bio_is_plain_text_of_at_most_2000_characters() {
        assert_eq!(parse_bio(" Writes.\r\nReads. ").unwrap(), "Writes.\nReads.");
        assert!(parse_bio(&"é".repeat(2_000)).is_ok());
        assert!(parse_bio(&"é".repeat(2_001)).is_err());
        assert!(parse_bio("bell\u{7}").is_err());
    }
}
