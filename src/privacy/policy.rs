//! `GET /privacy`: what the site keeps, for how long and which cookies it sets, written from the
//! settings in force (so it cannot drift from what the site does), with the admin's own
//! Markdown above and below.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;

use super::CookieInfo;
use crate::error::{AppError, AppResult};
use crate::http::response::html_response;
use crate::render::{SafeHtml, render_post};
use crate::site::{DiscussionSettings, PrivacyText};
use crate::state::AppState;
use crate::views::Layout;

#[derive(Template)]
#[template(path = "privacy/policy.html")]
struct PolicyPage {
    layout: Layout,
    above: Option<SafeHtml>,
    below: Option<SafeHtml>,
    retention: Vec<String>,
    ip_days: u32,
    trusts_returning: bool,
    cookies: Vec<CookieInfo>,
}

fn markdown(text: &str) -> Option<SafeHtml> {
    Some(text).filter(|t| !t.trim().is_empty()).map(render_post)
}

pub async fn show(state: web::Data<AppState>) -> AppResult<HttpResponse> {
    let (settings, text) = state
        .db
        .read(|conn| Ok((DiscussionSettings::load(conn)?, PrivacyText::load(conn)?)))
        .await?;
    let mut layout = Layout::new(&state, "Privacy");
    layout.canonical = Some(state.absolute("/privacy"));
    layout.description =
        Some("What this site keeps about you, for how long, and which cookies it sets.".into());
    let html = PolicyPage {
        layout,
        above: markdown(&text.above),
        below: markdown(&text.below),
        retention: crate::moderation::retention::policy(&settings),
        ip_days: settings
            .retention_days
            .min(crate::moderation::retention::MAX_IP_DAYS),
        trusts_returning: settings.trust_returning_commenters,
        cookies: super::cookies(state.secure_cookies),
    }
    .render()
    .map_err(|e| AppError::Internal(e.into()))?;
    Ok(html_response(StatusCode::OK, html, false))
}
