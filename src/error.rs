//! One error type for handlers. Each variant is a status code; the page that explains it is
//! rendered by `http::error_pages` with the site's layout, and an internal error's cause chain is
//! logged once, never shown.

use actix_web::http::StatusCode;
use actix_web::http::header::{HeaderValue, RETRY_AFTER};
use actix_web::{HttpResponse, ResponseError};

use crate::db::DbError;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("not found")]
    NotFound,
    #[error("{0}")]
    Forbidden(&'static str),
    #[error("{0}")]
    Gone(&'static str),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    BadRequest(String),
    /// Input that was understood but refused; the message says what to change.
    #[error("{0}")]
    Unprocessable(String),
    #[error("the submitted form is too large")]
    PayloadTooLarge,
    /// The body did not arrive within `LECTERN_BODY_TIMEOUT_SECS`.
    #[error("the request body did not arrive in time")]
    RequestTimeout,
    #[error("too many requests")]
    TooManyRequests { retry_after_secs: u64 },
    /// Not signed in: 303 to the login page, which comes back here afterwards.
    #[error("login required")]
    LoginRequired(String),
    #[error("service unavailable")]
    Unavailable,
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<DbError> for AppError {
    fn from(e: DbError) -> Self {
        // A unique constraint that a request ran into (two people taking the same slug or
        // address at once) is a conflict for that person, not a server failure.
        if e.is_unique_violation() {
            return AppError::Conflict(
                "That conflicts with something that already exists (it may have just been created). Nothing was changed.".into(),
            );
        }
        // The database is down or saturated: the start and end of an outage are logged by the
        // pool, so each refused request is not.
        if e.is_unavailable() {
            return AppError::Unavailable;
        }
        AppError::Internal(anyhow::Error::new(e))
    }
}

impl crate::db::Retryable for AppError {
    fn is_retryable(&self) -> bool {
        match self {
            AppError::Internal(e) => e.is_retryable(),
            _ => false,
        }
    }
}

impl From<diesel::result::Error> for AppError {
    fn from(e: diesel::result::Error) -> Self {
        match e {
            diesel::result::Error::NotFound => AppError::NotFound,
            other => AppError::from(DbError::from(other)),
        }
    }
}

/// What the error page says; attached to the response for the error-page renderer.
#[derive(Debug, Clone)]
pub struct ErrorMessage {
    pub title: &'static str,
    pub detail: String,
}

/// Seconds a client is asked to wait before trying again while the database does not answer.
const RETRY_UNAVAILABLE_SECS: u64 = 5;

/// Whether an internal error is in fact the database being unreachable (it reached the handler
/// through `anyhow`, outside `From<DbError>`).
fn is_unavailable(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        cause
            .downcast_ref::<DbError>()
            .is_some_and(DbError::is_unavailable)
    })
}

impl AppError {
    fn page(&self) -> ErrorMessage {
        let (title, detail) = match self {
            AppError::NotFound => ("Page not found", "There is nothing at this address.".into()),
            AppError::Forbidden(why) => ("Forbidden", (*why).into()),
            AppError::Gone(why) => ("This link is no longer valid", (*why).into()),
            AppError::Conflict(why) => ("Conflict", why.clone()),
            AppError::BadRequest(why) => ("Bad request", why.clone()),
            AppError::Unprocessable(why) => ("Please check what you entered", why.clone()),
            AppError::PayloadTooLarge => (
                "Too large",
                "What you sent is larger than this site accepts. Nothing was saved.".into(),
            ),
            AppError::RequestTimeout => (
                "Too slow",
                "What you sent took too long to arrive, so it was not read and nothing was \
                 saved. Please try again."
                    .into(),
            ),
            AppError::TooManyRequests { retry_after_secs } => (
                "Slow down",
                format!(
                    "You are posting too quickly. Please wait {retry_after_secs} seconds and try again."
                ),
            ),
            AppError::LoginRequired(_) => ("Login required", "Please log in.".into()),
            AppError::Unavailable => (
                "Temporarily unavailable",
                "The site cannot answer right now. Please try again shortly.".into(),
            ),
            AppError::Internal(_) => (
                "Something went wrong",
                "The error has been logged. Please try again later.".into(),
            ),
        };
        ErrorMessage { title, detail }
    }
}

impl ResponseError for AppError {
    fn status_code(&self) -> StatusCode {
        match self {
            AppError::Internal(e) if is_unavailable(e) => StatusCode::SERVICE_UNAVAILABLE,
            AppError::NotFound => StatusCode::NOT_FOUND,
            AppError::Forbidden(_) => StatusCode::FORBIDDEN,
            AppError::Gone(_) => StatusCode::GONE,
            AppError::Conflict(_) => StatusCode::CONFLICT,
            AppError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AppError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            AppError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            AppError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            AppError::LoginRequired(_) => StatusCode::SEE_OTHER,
            AppError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let AppError::Internal(e) = self {
            if is_unavailable(e) {
                return AppError::Unavailable.error_response();
            }
            // One line with the chain of causes; never a backtrace.
            tracing::error!(error = format!("{e:#}"), "request failed");
        }
        if let AppError::LoginRequired(location) = self {
            return HttpResponse::SeeOther()
                .insert_header((actix_web::http::header::LOCATION, location.as_str()))
                .insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"))
                .finish();
        }
        let mut response = HttpResponse::build(self.status_code());
        if let AppError::TooManyRequests { retry_after_secs } = self {
            response.insert_header((RETRY_AFTER, HeaderValue::from(*retry_after_secs)));
        }
        if let AppError::Unavailable = self {
            response.insert_header((RETRY_AFTER, HeaderValue::from(RETRY_UNAVAILABLE_SECS)));
        }
        // The rest of the body may still be on its way: the connection cannot be reused.
        if matches!(self, AppError::RequestTimeout | AppError::PayloadTooLarge) {
            response.force_close();
        }
        let mut response = response.finish();
        response.extensions_mut().insert(self.page());
        response
    }
}

pub type AppResult<T> = Result<T, AppError>;
