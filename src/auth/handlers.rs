//! Login, logout and the first-admin setup page.

use actix_web::http::StatusCode;
use actix_web::http::header::{LOCATION, RETRY_AFTER};
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::guard::anonymous_form_page;
use super::{Staff, safe_next, sessions, throttle};
use crate::db::DbError;
use crate::error::{AppError, AppResult};
use crate::state::AppState;
use crate::users::password::{Password, needs_rehash};
use crate::users::{self, NewStaff, Role, User};
use crate::views::Layout;

#[derive(Template)]
#[template(path = "admin/login.html")]
struct LoginPage {
    layout: Layout,
    csrf_token: String,
    next: String,
    email: String,
    message: Option<String>,
    info: Option<String>,
}

#[derive(Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
    info: Option<String>,
}

fn login_page(
    state: &AppState,
    req: &HttpRequest,
    status: StatusCode,
    next: String,
    email: String,
    message: Option<String>,
    info: Option<String>,
) -> AppResult<HttpResponse> {
    anonymous_form_page(state, req, status, "Log in", |layout, csrf_token| {
        LoginPage {
            layout,
            csrf_token,
            next,
            email,
            message,
            info,
        }
        .render()
    })
}

pub async fn login_form(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: web::Query<LoginQuery>,
    staff: Option<Staff>,
) -> AppResult<HttpResponse> {
    let next = safe_next(query.next.as_deref());
    if staff.is_some() {
        return Ok(HttpResponse::SeeOther()
            .insert_header((LOCATION, next))
            .finish());
    }
    let info = match query.info.as_deref() {
        Some("logged-out") => Some("You are logged out.".to_string()),
        Some("password-changed") => {
            Some("Your password was changed. Please log in again.".to_string())
        }
        _ => None,
    };
    login_page(
        &state,
        &req,
        StatusCode::OK,
        next,
        String::new(),
        None,
        info,
    )
}

#[derive(Deserialize)]
pub struct LoginForm {
    email: String,
    password: String,
    next: Option<String>,
}

const INVALID_LOGIN: &str = "Invalid email or password.";

/// Verifies on the password workers (`PasswordWorkers`); an unknown or disabled account is
/// checked against a dummy hash on the same path, so the answer takes as long.
pub async fn check_password(
    state: &AppState,
    user: Option<&User>,
    password: &str,
) -> AppResult<bool> {
    let stored = user
        .filter(|u| !u.disabled)
        .map(|u| u.password_hash.clone());
    state
        .passwords
        .verify(password.to_string(), stored)
        .await
        .map_err(AppError::Internal)
}

pub fn client_network(state: &AppState, req: &HttpRequest) -> (Option<String>, String) {
    let ip = crate::http::client_ip(req, &state.config.trusted_proxies);
    (
        ip.map(|ip| ip.to_string()),
        ip.map(crate::http::ip_network).unwrap_or_default(),
    )
}

fn user_agent(req: &HttpRequest) -> String {
    req.headers()
        .get(actix_web::http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .chars()
        .take(300)
        .collect()
}

pub async fn login(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<LoginForm>,
) -> AppResult<HttpResponse> {
    let form = form.into_inner();
    let next = safe_next(form.next.as_deref());
    let email = form.email.trim().to_lowercase();
    let now = state.clock.now();
    let (ip, network) = client_network(&state, &req);
    let logged_network = network.clone();

    // The attempt is reserved (counted as a failure) before the password is checked, in the
    // transaction that checks the lock: parallel guesses cannot all slip past a read lock check.
    let lookup_email = email.clone();
    let (reservation, user) = state
        .db
        .write(move |conn| -> Result<_, DbError> {
            let reservation = throttle::reserve_attempt(conn, &lookup_email, &network, now)?;
            let user = match reservation {
                throttle::Reservation::Reserved => users::find_by_email(conn, &lookup_email)?,
                throttle::Reservation::Locked { .. } => None,
            };
            Ok((reservation, user))
        })
        .await?;
    if let throttle::Reservation::Locked { retry_after_secs } = reservation {
        state.metrics.login_throttled();
        tracing::info!(network = %logged_network, "login throttled");
        let mut response = login_page(
            &state,
            &req,
            StatusCode::TOO_MANY_REQUESTS,
            next,
            email,
            Some(format!(
                "Too many failed attempts. Please wait {} minutes and try again.",
                retry_after_secs.div_ceil(60)
            )),
            None,
        )?;
        response
            .headers_mut()
            .insert(RETRY_AFTER, retry_after_secs.into());
        return Ok(response);
    }

    if form.password.len() > crate::users::password::MAX_PASSWORD_BYTES
        || !check_password(&state, user.as_ref(), &form.password).await?
    {
        // The reservation stays: it is this attempt's recorded failure. The line names the
        // account (by id, when the address is a staff member's) and the client's network,
        // never what was typed.
        state.metrics.login_failed();
        match &user {
            Some(user) => {
                tracing::info!(user_id = user.id.0, network = %logged_network, "failed login")
            }
            None => tracing::info!(network = %logged_network, "failed login: no such account"),
        }
        return login_page(
            &state,
            &req,
            StatusCode::UNAUTHORIZED,
            next,
            email,
            Some(INVALID_LOGIN.into()),
            None,
        );
    }
    let Some(user) = user else {
        return Err(AppError::Internal(anyhow::anyhow!(
            "a password matched no user"
        )));
    };

    let rehash = match Password::parse(&form.password) {
        Ok(password) if needs_rehash(&user.password_hash) => {
            state.passwords.hash(password).await.ok()
        }
        _ => None,
    };
    // A new session id at every login: an id planted before login is never the one after.
    let old_session = sessions::session_id_from(&req, state.secure_cookies);
    let agent = user_agent(&req);
    let user_id = user.id;
    let session_id = state
        .db
        .write(move |conn| -> Result<String, DbError> {
            if let Some(old) = old_session {
                sessions::end_by_id(conn, &old)?;
            }
            // Clears this attempt's reservation along with the account's earlier failures.
            throttle::clear_for_account(conn, &email)?;
            if let Some(hash) = rehash {
                users::set_password_hash(conn, user_id, &hash)?;
            }
            sessions::create(conn, user_id, ip.as_deref(), &agent, now)
        })
        .await?;
    tracing::info!(user_id = user_id.0, "logged in");
    Ok(HttpResponse::SeeOther()
        .insert_header((LOCATION, next))
        .cookie(sessions::session_cookie(session_id, state.secure_cookies))
        .finish())
}

pub async fn logout(state: web::Data<AppState>, staff: Option<Staff>) -> AppResult<HttpResponse> {
    if let Some(staff) = staff {
        state
            .db
            .write(move |conn| sessions::end(conn, &staff.session_hash))
            .await?;
    }
    Ok(HttpResponse::SeeOther()
        .insert_header((LOCATION, "/admin/login?info=logged-out"))
        .cookie(sessions::removal_cookie(state.secure_cookies))
        .finish())
}

#[derive(Template)]
#[template(path = "admin/setup.html")]
struct SetupPage {
    layout: Layout,
    csrf_token: String,
    token: String,
    name: String,
    email: String,
    errors: Vec<String>,
}

/// A random value kept while no enabled admin exists; the setup link's token is derived from it.
pub const SETUP_NONCE_SETTING: &str = "setup_nonce";
/// Where versions before the nonce kept the hash of a random token.
const LEGACY_SETUP_SETTING: &str = "setup_token_hash";

/// While no enabled admin exists, the single-use setup token. It is the site key's signature of
/// a stored random nonce, so every server on a shared database prints the same working link,
/// and a restart keeps the link printed before it; creating the admin deletes the nonce.
pub fn issue_setup_token(
    conn: &mut crate::db::DbConn,
    signer: &crate::crypto::Signer,
) -> Result<Option<String>, DbError> {
    crate::db::startup_lock(conn)?;
    crate::site::delete(conn, LEGACY_SETUP_SETTING)?;
    if users::count_enabled_admins(conn)? > 0 {
        crate::site::delete(conn, SETUP_NONCE_SETTING)?;
        return Ok(None);
    }
    let nonce = match crate::site::get(conn, SETUP_NONCE_SETTING)? {
        Some(nonce) => nonce,
        None => {
            let nonce = crate::crypto::random_token(24);
            crate::site::put(conn, SETUP_NONCE_SETTING, &nonce)?;
            nonce
        }
    };
    Ok(Some(signer.sign("setup-link", &nonce)))
}

/// Whether `token` is the setup link's token for the stored nonce.
fn is_setup_token(signer: &crate::crypto::Signer, nonce: Option<&str>, token: &str) -> bool {
    nonce.is_some_and(|nonce| signer.verify("setup-link", nonce, token))
}

/// Checks a setup token: 410 once an admin exists (or it was used), 404 when forged.
async fn check_setup_token(state: &AppState, token: &str) -> AppResult<()> {
    let (admins, stored) = state
        .db
        .read(|conn| {
            Ok((
                users::count_enabled_admins(conn)?,
                crate::site::get(conn, SETUP_NONCE_SETTING)?,
            ))
        })
        .await?;
    if admins > 0 || stored.is_none() {
        return Err(AppError::Gone(
            "The site already has an administrator, so the setup link no longer works. Log in instead.",
        ));
    }
    if is_setup_token(&state.signer, stored.as_deref(), token) {
        Ok(())
    } else {
        Err(AppError::NotFound)
    }
}

#[derive(Deserialize)]
pub struct SetupQuery {
    token: Option<String>,
}

fn setup_page(
    state: &AppState,
    req: &HttpRequest,
    status: StatusCode,
    token: String,
    name: String,
    email: String,
    errors: Vec<String>,
) -> AppResult<HttpResponse> {
    anonymous_form_page(state, req, status, "Set up", |layout, csrf_token| {
        SetupPage {
            layout,
            csrf_token,
            token,
            name,
            email,
            errors,
        }
        .render()
    })
}

pub async fn setup_form(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: web::Query<SetupQuery>,
) -> AppResult<HttpResponse> {
    let token = query.into_inner().token.unwrap_or_default();
    check_setup_token(&state, &token).await?;
    setup_page(
        &state,
        &req,
        StatusCode::OK,
        token,
        String::new(),
        String::new(),
        Vec::new(),
    )
}

#[derive(Deserialize)]
pub struct SetupForm {
    token: String,
    name: String,
    email: String,
    password: String,
    password_confirm: String,
}

pub async fn setup(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<SetupForm>,
) -> AppResult<HttpResponse> {
    let form = form.into_inner();
    check_setup_token(&state, &form.token).await?;
    let mut errors = Vec::new();
    let name = users::parse_display_name(&form.name)
        .map_err(|e| errors.push(format!("Name: {e}")))
        .ok();
    let email = users::parse_staff_email(&form.email)
        .map_err(|e| errors.push(format!("Email: {e}")))
        .ok();
    let password = Password::parse(&form.password)
        .map_err(|e| errors.push(format!("Password: {e}")))
        .ok();
    if form.password != form.password_confirm {
        errors.push("The two passwords differ.".into());
    }
    let (Some(name), Some(email), Some(password), true) =
        (name, email, password, errors.is_empty())
    else {
        return setup_page(
            &state,
            &req,
            StatusCode::UNPROCESSABLE_ENTITY,
            form.token,
            form.name,
            form.email,
            errors,
        );
    };
    let hash = hash_off_thread(&state, password).await?;
    let now = state.clock.now();
    let (ip, _) = client_network(&state, &req);
    let agent = user_agent(&req);
    let token = form.token.clone();
    let signer = state.signer.clone();
    let outcome = state
        .db
        .write(
            move |conn| -> Result<Result<String, &'static str>, DbError> {
                // Checked again inside the transaction: two tabs cannot both create an admin.
                let stored = crate::site::get(conn, SETUP_NONCE_SETTING)?;
                if users::count_enabled_admins(conn)? > 0
                    || !is_setup_token(&signer, stored.as_deref(), &token)
                {
                    return Ok(Err("used"));
                }
                let staff = NewStaff {
                    email: &email,
                    display_name: &name,
                    role: Role::Admin,
                    password_hash: &hash,
                };
                let Some(user) = users::create(conn, &staff, now)? else {
                    return Ok(Err("email"));
                };
                crate::site::delete(conn, SETUP_NONCE_SETTING)?;
                crate::site::welcome::adopt_welcome_post(conn, user.id)?;
                Ok(Ok(sessions::create(
                    conn,
                    user.id,
                    ip.as_deref(),
                    &agent,
                    now,
                )?))
            },
        )
        .await?;
    match outcome {
        Ok(session_id) => {
            tracing::info!("first administrator created through the setup link");
            Ok(HttpResponse::SeeOther()
                .insert_header((LOCATION, "/admin"))
                .cookie(sessions::session_cookie(session_id, state.secure_cookies))
                .finish())
        }
        Err("email") => setup_page(
            &state,
            &req,
            StatusCode::UNPROCESSABLE_ENTITY,
            form.token,
            form.name,
            form.email,
            vec!["A user with this email already exists.".into()],
        ),
        Err(_) => Err(AppError::Gone("This setup link was already used.")),
    }
}

/// Hashes on the password workers, in their reused memory.
pub async fn hash_off_thread(state: &AppState, password: Password) -> AppResult<String> {
    state
        .passwords
        .hash(password)
        .await
        .map_err(AppError::Internal)
}
