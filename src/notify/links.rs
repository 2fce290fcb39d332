//! The pages behind links in emails, one flow for all of them: a GET checks the link and shows
//! a page with a button, the POST checks it again and acts. A forged link is 404, an expired or
//! used one 410. The confirm and unsubscribe links (a commenter's address) live here; the
//! moderation links (`moderation/links.rs`) and password reset (`auth/reset.rs`) use the same
//! pages.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;

use super::tokens::{self, Link, LinkError};
use super::{AddressEvent, record_address};
use crate::db::DbError;
use crate::error::{AppError, AppResult};
use crate::http::response::html_response;
use crate::state::AppState;
use crate::views::Layout;

/// The button a link page offers; the POST to `action` does what the link says.
pub struct LinkForm {
    pub action: String,
    pub button: String,
    /// An optional reply, published with the action (moderation links).
    pub reply_box: bool,
}

/// What a link page shows of the comment the link acts on.
pub struct LinkComment {
    pub author_name: String,
    pub author_email: String,
    pub author_url: Option<String>,
    pub post_title: String,
    pub post_slug: String,
    pub status: String,
    pub held_reason: Option<String>,
    pub body: String,
}

#[derive(Template)]
#[template(path = "notify/link.html")]
struct LinkPage {
    layout: Layout,
    heading: String,
    text: String,
    comment: Option<LinkComment>,
    form: Option<LinkForm>,
}

/// The page behind a link in an email: a heading, a text, perhaps the comment it acts on and a
/// button. Never stored by caches, never indexed.
pub fn link_page(
    state: &AppState,
    status: StatusCode,
    heading: &str,
    text: &str,
    comment: Option<LinkComment>,
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

/// A forged link is 404; an expired or used one 410, and nothing changes.
pub fn link_error(e: LinkError) -> AppError {
    match e {
        LinkError::Forged => AppError::NotFound,
        LinkError::Expired => AppError::Gone("This link has expired. Nothing was changed."),
        LinkError::Used => AppError::Gone("This link was already used. Nothing was changed."),
    }
}

/// Checks a link's signature, time and single use.
pub async fn open_link(state: &AppState, token: &str) -> AppResult<(Link, chrono::NaiveDateTime)> {
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
                AddressLink::Confirm => record_address(conn, &email, AddressEvent::Confirmed, now)?,
                AddressLink::Unsubscribe => {
                    record_address(conn, &email, AddressEvent::Unsubscribed, now)?
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
