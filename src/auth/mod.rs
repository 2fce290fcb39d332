//! Staff authentication: sessions kept in the database, CSRF tokens, login throttling, the
//! first-admin setup link. Only this module knows sessions and argon2 (through `users::password`).

pub mod guard;
pub mod handlers;
pub mod kept;
pub mod notice;
pub mod reset;
pub mod sessions;
pub mod throttle;

use std::future::{Ready, ready};

use actix_web::{FromRequest, HttpMessage, HttpRequest, dev::Payload};

pub use notice::Notice;

use crate::error::AppError;
use crate::users::{Role, User};

/// A signed-in moderator or admin, put in the request by the admin guard.
#[derive(Debug, Clone)]
pub struct Staff {
    pub user: User,
    pub session_hash: String,
    pub csrf_token: String,
    /// What the session's last action did, not yet shown (read with the session).
    pub notice: Option<Notice>,
}

impl Staff {
    pub fn is_admin(&self) -> bool {
        self.user.role() == Role::Admin
    }
}

impl FromRequest for Staff {
    type Error = AppError;
    type Future = Ready<Result<Staff, AppError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(match req.extensions().get::<Staff>() {
            Some(staff) => Ok(staff.clone()),
            None => Err(AppError::LoginRequired(login_redirect_target(req))),
        })
    }
}

/// A signed-in admin; a moderator gets 403.
#[derive(Debug, Clone)]
pub struct Admin(pub Staff);

impl FromRequest for Admin {
    type Error = AppError;
    type Future = Ready<Result<Admin, AppError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(match req.extensions().get::<Staff>() {
            Some(staff) if staff.is_admin() => Ok(Admin(staff.clone())),
            Some(_) => Err(AppError::Forbidden("Only administrators can do this.")),
            None => Err(AppError::LoginRequired(login_redirect_target(req))),
        })
    }
}

/// Where to come back to after logging in: this page, if it is a page one can GET.
fn login_redirect_target(req: &HttpRequest) -> String {
    if req.method() == actix_web::http::Method::GET {
        let path = req
            .uri()
            .path_and_query()
            .map_or("/admin", |pq| pq.as_str());
        format!("/admin/login?next={}", urlencode(path))
    } else {
        "/admin/login".to_string()
    }
}

pub fn urlencode(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// A `next` or `back` parameter that stays inside the admin or on a post or page (staff act on
/// comments from the public thread too; no open redirects) and can be sent
/// as a `Location` header: only visible ASCII, as a browser sends a path (percent-encoded). A
/// CR, LF, DEL or any other byte the header would refuse falls back to `/admin`; callers decide
/// it before acting, so the answer can never fail after the action ran.
pub fn safe_next(next: Option<&str>) -> String {
    safe_next_or(next, "/admin")
}

/// `safe_next` with another default page (the queue, for queue actions).
pub fn safe_next_or(next: Option<&str>, default: &str) -> String {
    match next {
        Some(n)
            if (n.starts_with("/admin")
                || n.starts_with("/posts/")
                || n.starts_with("/pages/"))
                && !n.starts_with("//")
                && !n.contains('\\')
                && n.bytes().all(|b| b.is_ascii_graphic()) =>
        {
            n.to_string()
        }
        _ => default.to_string(),
    }
}
