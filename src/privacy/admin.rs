//! `/admin/privacy` (admins only): look up an address, export what is kept about it, erase it
//! (the same two ways a commenter can, after a confirmation step, logged), and edit the
//! privacy page's own text. Addresses travel in POST bodies only, never in a URL that a log or
//! a browser history would keep.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::data::{self, EraseMode};
use super::handlers::{erase_address, json_download};
use crate::auth::{Admin, Staff};
use crate::comments::domain::CommenterEmail;
use crate::db::DbError;
use crate::error::{AppError, AppResult};
use crate::http::forms::FormFields;
use crate::http::response::{render, see_other};
use crate::site::PrivacyText;
use crate::staff::{AdminLayout, web_actor};
use crate::state::AppState;

/// What a lookup found.
pub struct Found {
    pub email: String,
    /// (status, count), spam included.
    pub counts: Vec<(String, i64)>,
    pub total: i64,
    pub subscribed: bool,
    pub emails: i64,
    pub earlier_erasures: i64,
    pub staff: bool,
}

/// The confirmation step of an erasure.
pub struct Confirm {
    pub email: String,
    pub mode: &'static str,
    pub what: &'static str,
    pub total: i64,
}

#[derive(Template)]
#[template(path = "admin/privacy.html")]
struct PrivacyAdminPage {
    layout: AdminLayout,
    notice: Option<&'static str>,
    email: String,
    email_error: Option<String>,
    found: Option<Found>,
    confirm: Option<Confirm>,
    above: String,
    below: String,
    text_error: Option<String>,
}

impl PrivacyAdminPage {
    async fn new(state: &AppState, staff: &Staff) -> AppResult<PrivacyAdminPage> {
        let text = state.db.read(PrivacyText::load).await?;
        Ok(PrivacyAdminPage {
            layout: AdminLayout::new(state, staff, "Privacy", "privacy").await?,
            notice: None,
            email: String::new(),
            email_error: None,
            found: None,
            confirm: None,
            above: text.above,
            below: text.below,
            text_error: None,
        })
    }
}

#[derive(Deserialize)]
pub struct PrivacyQuery {
    done: Option<String>,
}

fn notice_for(done: Option<&str>) -> Option<&'static str> {
    match done? {
        "erased" => Some("The address was erased. The moderation log records it by keyed hash."),
        "text" => Some("The privacy page's text was saved."),
        _ => None,
    }
}

/// `GET /admin/privacy`
pub async fn page(
    state: web::Data<AppState>,
    Admin(staff): Admin,
    query: web::Query<PrivacyQuery>,
) -> AppResult<HttpResponse> {
    let mut page = PrivacyAdminPage::new(&state, &staff).await?;
    page.notice = notice_for(query.done.as_deref());
    render(page, StatusCode::OK)
}

/// `POST /admin/privacy`, one form per `op`: `lookup` (`email`), `export` (`email`), `erase`
/// (`email`, `mode`; with `confirm=yes` it acts, without it shows the confirmation), and
/// `text` (`above`, `below`: the privacy page's Markdown).
pub async fn act(
    state: web::Data<AppState>,
    req: HttpRequest,
    Admin(staff): Admin,
    body: web::Bytes,
) -> AppResult<HttpResponse> {
    let form = FormFields::parse(&body)?;
    let op = form.get("op").unwrap_or("lookup");
    if op == "text" {
        return save_text(&state, &req, &staff, &form).await;
    }
    let typed = form.get("email").unwrap_or("").to_string();
    let email = match CommenterEmail::parse(&typed) {
        Ok(email) => email.as_str().to_string(),
        Err(problem) => {
            let mut page = PrivacyAdminPage::new(&state, &staff).await?;
            page.email = typed;
            page.email_error = Some(problem);
            return render(page, StatusCode::UNPROCESSABLE_ENTITY);
        }
    };
    match op {
        "lookup" => {
            let found = look_up(&state, email).await?;
            let mut page = PrivacyAdminPage::new(&state, &staff).await?;
            page.email = found.email.clone();
            page.found = Some(found);
            render(page, StatusCode::OK)
        }
        "export" => {
            let actor = web_actor(&state, &req, &staff);
            let now = state.clock.now();
            let key = state.signer.address_key(&email);
            state
                .db
                .write(move |conn| {
                    crate::audit::log(
                        conn,
                        None,
                        "privacy-export",
                        &format!("exported the data of the address with key {key}"),
                        &actor,
                        now,
                    )
                })
                .await?;
            json_download(&state, email).await
        }
        "erase" => {
            let mode = EraseMode::parse(form.get("mode")).ok_or_else(|| {
                AppError::Unprocessable(
                    "Choose how to erase: anonymise or delete. Nothing was changed.".into(),
                )
            })?;
            if form.get("confirm") != Some("yes") {
                let found = look_up(&state, email).await?;
                let mut page = PrivacyAdminPage::new(&state, &staff).await?;
                page.email = found.email.clone();
                page.confirm = Some(Confirm {
                    email: found.email,
                    mode: mode.as_str(),
                    what: match mode {
                        EraseMode::Anonymise => {
                            "Its comments keep their text but show as “Anonymous”; their email address, website, IP address and browser details are removed."
                        }
                        EraseMode::Delete => {
                            "Its comments are deleted; where others replied, “This comment was removed.” keeps their place."
                        }
                    },
                    total: found.total,
                });
                return render(page, StatusCode::OK);
            }
            erase_address(&state, email, mode, web_actor(&state, &req, &staff)).await?;
            Ok(see_other("/admin/privacy?done=erased"))
        }
        other => Err(AppError::BadRequest(format!(
            "Unknown operation {other:?}."
        ))),
    }
}

async fn look_up(state: &AppState, email: String) -> AppResult<Found> {
    let signer = state.signer.clone();
    Ok(state
        .db
        .read(move |conn| -> Result<Found, DbError> {
            let counts = data::status_counts(conn, &email)?;
            let total = counts.iter().map(|(_, n)| n).sum();
            Ok(Found {
                subscribed: data::has_subscription(conn, &email)?,
                emails: data::emails_to(conn, &email)?,
                earlier_erasures: data::earlier_erasures(conn, &signer, &email)?,
                staff: data::is_staff_address(conn, &email)?,
                counts,
                total,
                email,
            })
        })
        .await?)
}

async fn save_text(
    state: &AppState,
    req: &HttpRequest,
    staff: &Staff,
    form: &FormFields,
) -> AppResult<HttpResponse> {
    let text = PrivacyText {
        above: crate::text::normalize_newlines(form.get("above").unwrap_or("")),
        below: crate::text::normalize_newlines(form.get("below").unwrap_or("")),
    };
    let too_long = [&text.above, &text.below]
        .iter()
        .any(|t| t.chars().count() > PrivacyText::MAX_CHARS);
    if too_long {
        let mut page = PrivacyAdminPage::new(state, staff).await?;
        page.text_error = Some(format!(
            "Each text may hold at most {} characters. Nothing was saved.",
            PrivacyText::MAX_CHARS
        ));
        page.above = text.above;
        page.below = text.below;
        return render(page, StatusCode::UNPROCESSABLE_ENTITY);
    }
    let actor = web_actor(state, req, staff);
    let now = state.clock.now();
    state
        .db
        .write(move |conn| -> Result<(), DbError> {
            text.save(conn)?;
            crate::audit::log(
                conn,
                None,
                "privacy-page",
                "changed the privacy page's own text",
                &actor,
                now,
            )
        })
        .await?;
    Ok(see_other("/admin/privacy?done=text"))
}
