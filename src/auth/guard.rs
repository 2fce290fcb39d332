//! The admin guard, wrapped around `/admin` and the token routes: it resolves the session, and
//! refuses any POST whose `csrf_token` is missing or foreign before a handler runs, so a new
//! route cannot forget the check.

use actix_web::body::{EitherBody, MessageBody};
use actix_web::cookie::{Cookie, SameSite};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::http::header::{CACHE_CONTROL, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{Error, HttpMessage, HttpRequest, ResponseError, web};
use futures_util::StreamExt;

use super::{Staff, kept, sessions};
use crate::crypto::{constant_time_eq, random_token};
use crate::error::AppError;
use crate::state::AppState;

/// Admin forms may be large (a long post); above this the answer is 413.
pub const MAX_ADMIN_FORM_BYTES: usize = 4 * 1024 * 1024;

pub use crate::http::middleware::{MAX_IMPORT_UPLOAD_BYTES, STREAMED_UPLOADS};

/// The refusal of a streamed upload whose token is missing or foreign.
const UPLOAD_REFUSED: &str = "This form's security token is missing or has expired, so nothing was changed. Please go back, reload the page and try again.";

/// The check a streamed upload's handler makes before it reads anything else: the form's first
/// field is `csrf_token` and matches the session's (the guard cannot read a stream it must
/// leave to the handler).
pub async fn check_upload_token(
    form: &mut actix_multipart::Multipart,
    staff: &Staff,
) -> Result<(), AppError> {
    let Some(Ok(mut first)) = form.next().await else {
        return Err(AppError::Forbidden(UPLOAD_REFUSED));
    };
    if first.name() != Some("csrf_token") {
        return Err(AppError::Forbidden(UPLOAD_REFUSED));
    }
    let token = match first.bytes(1024).await {
        Ok(Ok(bytes)) => String::from_utf8_lossy(&bytes).into_owned(),
        _ => return Err(AppError::Forbidden(UPLOAD_REFUSED)),
    };
    // The stream yields the next field only once this one is gone.
    drop(first);
    if constant_time_eq(&token, &staff.csrf_token) {
        Ok(())
    } else {
        Err(AppError::Forbidden(UPLOAD_REFUSED))
    }
}

/// Whether this request is one of the streamed uploads: the multipart upload is streamed to
/// disk by the handler rather than held here, and the handler checks the `csrf_token` field,
/// which the form sends first, before it keeps a byte.
pub fn is_streamed_upload(req: &ServiceRequest) -> bool {
    req.method() == Method::POST
        && STREAMED_UPLOADS.contains(&req.path())
        && req
            .headers()
            .get(actix_web::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.to_ascii_lowercase().starts_with("multipart/form-data"))
}

/// The staff member signed in on this request, if any, with the notice their session has not
/// seen yet. On SQLite a session read since the last commit is taken from `kept::Sessions`
/// instead of the database.
pub async fn current_staff(state: &AppState, req: &HttpRequest) -> Result<Option<Staff>, AppError> {
    let Some(id) = sessions::session_id_from(req, state.secure_cookies) else {
        return Ok(None);
    };
    let id_hash = crate::crypto::token_hash(&id);
    let now = state.clock.now();
    let kept = req.app_data::<web::Data<kept::Sessions>>();
    // Counted before the read: a commit during it keeps nothing.
    let commits = match (kept, req.app_data::<web::Data<crate::db::Freshness>>()) {
        (Some(_), Some(freshness)) => freshness.commits(),
        _ => None,
    };
    let stored = match kept.and_then(|k| k.get(&id_hash, commits)) {
        Some(stored) => stored,
        None => {
            let Some(stored) = state
                .db
                .read(move |conn| sessions::read(conn, &id_hash, now))
                .await?
            else {
                return Ok(None);
            };
            let stored = std::sync::Arc::new(stored);
            if let Some(kept) = kept {
                kept.put(commits, stored.clone());
            }
            stored
        }
    };
    match stored.judge(now) {
        sessions::Lookup::Live { staff, touch } => {
            let every = chrono::Duration::seconds(sessions::TOUCH_EVERY_SECS);
            if touch && kept.is_none_or(|k| k.claim_touch(&staff.session_hash, now, every)) {
                let hash = staff.session_hash.clone();
                state
                    .db
                    .write(move |conn| sessions::touch(conn, &hash, now))
                    .await?;
            }
            Ok(Some(*staff))
        }
        sessions::Lookup::Dead { id_hash } => {
            state
                .db
                .write(move |conn| sessions::end(conn, &id_hash))
                .await?;
            Ok(None)
        }
    }
}

/// The cookie behind the CSRF token of forms shown to visitors who are not signed in.
pub fn anon_cookie_name(secure: bool) -> &'static str {
    if secure {
        "__Host-lectern_csrf"
    } else {
        "lectern_csrf"
    }
}

/// The CSRF token for a form shown to someone not signed in (login, setup, password reset):
/// a signature of a random cookie, so a forger would need both. Returns the cookie to set
/// when the visitor has none yet.
pub fn anonymous_csrf(state: &AppState, req: &HttpRequest) -> (String, Option<Cookie<'static>>) {
    let name = anon_cookie_name(state.secure_cookies);
    if let Some(cookie) = req.cookie(name).filter(|c| c.value().len() >= 16) {
        return (state.signer.sign("anon-csrf", cookie.value()), None);
    }
    let nonce = random_token(16);
    let token = state.signer.sign("anon-csrf", &nonce);
    let cookie = Cookie::build(name, nonce)
        .path("/")
        .http_only(true)
        .secure(state.secure_cookies)
        .same_site(SameSite::Lax)
        .finish();
    (token, Some(cookie))
}

/// A page with a form for someone not signed in (login, setup, password reset): never indexed,
/// never cached, and with the CSRF cookie set when the visitor has none yet.
pub fn anonymous_form_page(
    state: &AppState,
    req: &HttpRequest,
    status: actix_web::http::StatusCode,
    title: &str,
    render: impl FnOnce(crate::views::Layout, String) -> askama::Result<String>,
) -> Result<actix_web::HttpResponse, AppError> {
    let (csrf_token, cookie) = anonymous_csrf(state, req);
    let mut layout = crate::views::Layout::new(state, title);
    layout.noindex = true;
    let html = render(layout, csrf_token).map_err(|e| AppError::Internal(e.into()))?;
    let mut response = crate::http::response::html_response(status, html, true);
    if let Some(cookie) = cookie {
        response
            .add_cookie(&cookie)
            .map_err(|e| AppError::Internal(e.into()))?;
    }
    Ok(response)
}

fn expected_anonymous_csrf(state: &AppState, req: &HttpRequest) -> Option<String> {
    req.cookie(anon_cookie_name(state.secure_cookies))
        .filter(|c| c.value().len() >= 16)
        .map(|c| state.signer.sign("anon-csrf", c.value()))
}

/// Whether `given` is the CSRF token of a form shown to this visitor by `anonymous_form_page`,
/// for public forms outside `/admin` (which the guard checks by itself).
pub fn anonymous_csrf_is_valid(state: &AppState, req: &HttpRequest, given: Option<&str>) -> bool {
    match (given, expected_anonymous_csrf(state, req)) {
        (Some(given), Some(expected)) => constant_time_eq(given, &expected),
        _ => false,
    }
}

/// The first `csrf_token` value in a urlencoded form body.
fn csrf_field(body: &[u8]) -> Option<String> {
    crate::http::forms::decode_form(body)
        .ok()?
        .into_iter()
        .find(|(k, _)| k == "csrf_token")
        .map(|(_, v)| v)
}

pub async fn admin_guard(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, Error> {
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return Ok(next.call(req).await?.map_into_left_body());
    };
    let staff = match current_staff(&state, req.request()).await {
        Ok(staff) => staff,
        Err(e) => return Ok(refuse(req, e)),
    };
    if let Some(staff) = &staff {
        req.extensions_mut().insert(staff.clone());
    }
    if is_streamed_upload(&req) {
        if crate::http::middleware::declares_more_than(req.headers(), MAX_IMPORT_UPLOAD_BYTES) {
            return Ok(refuse(req, AppError::PayloadTooLarge));
        }
    } else if req.method() == Method::POST {
        if crate::http::middleware::declares_more_than(req.headers(), MAX_ADMIN_FORM_BYTES) {
            return Ok(refuse(req, AppError::PayloadTooLarge));
        }
        let mut body = Vec::new();
        let mut payload = req.take_payload();
        while let Some(chunk) = payload.next().await {
            let Ok(chunk) = chunk else {
                return Ok(refuse(
                    req,
                    AppError::BadRequest("The request body could not be read.".into()),
                ));
            };
            if body.len() + chunk.len() > MAX_ADMIN_FORM_BYTES {
                return Ok(refuse(req, AppError::PayloadTooLarge));
            }
            body.extend_from_slice(&chunk);
        }
        let expected = match &staff {
            Some(staff) => Some(staff.csrf_token.clone()),
            None => expected_anonymous_csrf(&state, req.request()),
        };
        let valid = match (csrf_field(&body), expected) {
            (Some(given), Some(expected)) => constant_time_eq(&given, &expected),
            _ => false,
        };
        if !valid {
            tracing::warn!(path = %crate::http::middleware::loggable_path(req.path()), "refused a POST without a valid CSRF token");
            return Ok(refuse(
                req,
                AppError::Forbidden(
                    "This form's security token is missing or has expired, so nothing was changed. Please go back, reload the page and try again.",
                ),
            ));
        }
        // PostgreSQL cannot store NUL in text, and no admin form has a use for it.
        if crate::http::forms::decode_form(&body).is_ok_and(|pairs| {
            pairs
                .iter()
                .any(|(k, v)| k.contains('\0') || v.contains('\0'))
        }) {
            return Ok(refuse(
                req,
                AppError::Unprocessable(
                    "The form contained a NUL character, which cannot be stored. Nothing was changed.".into(),
                ),
            ));
        }
        req.set_payload(actix_web::dev::Payload::from(body));
    }
    let mut res = next.call(req).await?;
    // Pages behind a login are never stored by a browser or proxy.
    res.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(res.map_into_left_body())
}

fn refuse<B>(req: ServiceRequest, error: AppError) -> ServiceResponse<EitherBody<B>> {
    let (req, _) = req.into_parts();
    ServiceResponse::new(req, error.error_response()).map_into_right_body()
}
