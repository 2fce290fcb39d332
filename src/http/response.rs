//! Responses every route builds: HTML pages with their cache policy, rendered templates and
//! redirects.

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use actix_web::http::header::{CACHE_CONTROL, HeaderValue, LOCATION};
use askama::Template;

use crate::error::{AppError, AppResult};

/// An HTML response; a page that shows the visitor their own data is never stored by caches.
pub fn html_response(status: StatusCode, html: String, private: bool) -> HttpResponse {
    let cache = if private {
        "private, no-store"
    } else {
        "no-cache"
    };
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .insert_header((CACHE_CONTROL, HeaderValue::from_static(cache)))
        .body(html)
}

/// 301 to a post's current address, keeping the query (`?cpage=N`).
pub fn moved_permanently(path: &str, query: &str) -> HttpResponse {
    let location = if query.is_empty() {
        path.to_string()
    } else {
        format!("{path}?{query}")
    };
    HttpResponse::MovedPermanently()
        .insert_header((actix_web::http::header::LOCATION, location))
        // Bounded, because an admin may give the old address to another post later.
        .insert_header((
            CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=86400"),
        ))
        .finish()
}

/// A rendered template as a private page (admin and account pages show the visitor's own data).
pub fn render(template: impl Template, status: StatusCode) -> AppResult<HttpResponse> {
    let html = template
        .render()
        .map_err(|e| AppError::Internal(e.into()))?;
    Ok(html_response(status, html, true))
}

/// 303 after a POST: the browser follows with a GET.
pub fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((LOCATION, location))
        .finish()
}
