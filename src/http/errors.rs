//! HTML error pages. Handlers return `AppError`; this renders the page for it, and for the
//! framework's own errors (unknown routes, wrong methods), inside the site's layout. A page says
//! what happened and never why internally.

use actix_web::body::{BoxBody, EitherBody};
use actix_web::dev::ServiceResponse;
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::ErrorHandlerResponse;
use actix_web::{HttpResponse, web};
use askama::Template;

use crate::error::ErrorMessage;
use crate::state::AppState;
use crate::views::Layout;

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    layout: Layout,
    status: u16,
    title: &'a str,
    detail: &'a str,
}

fn message_for<B>(res: &ServiceResponse<B>) -> Option<ErrorMessage> {
    if let Some(message) = res.response().extensions().get::<ErrorMessage>() {
        return Some(message.clone());
    }
    // A response with a body of its own (a form shown again with its errors) keeps it.
    if res.response().headers().contains_key(header::CONTENT_TYPE) {
        return None;
    }
    let (title, detail) = match res.status().as_u16() {
        404 => ("Page not found", "There is nothing at this address."),
        405 => (
            "Method not allowed",
            "This address does not accept that kind of request.",
        ),
        413 => (
            "Too large",
            "What you sent is larger than this site accepts. Nothing was saved.",
        ),
        400..=499 => ("Bad request", "The request could not be understood."),
        _ => (
            "Something went wrong",
            "The error has been logged. Please try again later.",
        ),
    };
    Some(ErrorMessage {
        title,
        detail: detail.into(),
    })
}

/// `ErrorHandlers` default handler: replaces an error response's body with the site's page.
pub fn render_error_page<B>(res: ServiceResponse<B>) -> actix_web::Result<ErrorHandlerResponse<B>> {
    let Some(message) = message_for(&res) else {
        return Ok(ErrorHandlerResponse::Response(res.map_into_left_body()));
    };
    let status = res.status();
    let layout = match res.request().app_data::<web::Data<AppState>>() {
        Some(state) => Layout::new(state, message.title),
        None => Layout::bare(message.title),
    };
    let page = ErrorPage {
        layout,
        status: status.as_u16(),
        title: message.title,
        detail: &message.detail,
    };
    let html = page.render().unwrap_or_else(|e| {
        tracing::error!(error = %e, "rendering the error page failed");
        String::from("<!doctype html><title>Error</title><p>Something went wrong.</p>")
    });
    let (req, old) = res.into_parts();
    let mut new = HttpResponse::build(status);
    for (name, value) in old.headers() {
        if name != header::CONTENT_LENGTH && name != header::CONTENT_TYPE {
            new.append_header((name.clone(), value.clone()));
        }
    }
    new.insert_header((
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    ));
    new.insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")));
    let res: ServiceResponse<EitherBody<B, BoxBody>> =
        ServiceResponse::new(req, new.body(html)).map_into_right_body();
    Ok(ErrorHandlerResponse::Response(res))
}
