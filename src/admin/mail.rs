//! The admin's mail page: the outbox, how long mail has waited, a retry button and a test
//! email.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use crate::auth::Admin;
use crate::error::{AppError, AppResult};
use crate::http::response::{render, see_other};
use crate::notify::emails::{Site, TestEmail};
use crate::notify::{self, outbox};
use crate::staff::AdminLayout;
use crate::state::AppState;

pub struct OutboxView {
    pub id: i32,
    pub kind: String,
    pub to: String,
    pub subject: String,
    pub status: String,
    pub attempts: i32,
    pub next_attempt: String,
    pub last_error: Option<String>,
}

#[derive(Template)]
#[template(path = "admin/mail.html")]
struct MailPage {
    layout: AdminLayout,
    transport: String,
    failed: i64,
    /// Restored mail waiting for an admin to release it.
    held: i64,
    /// Messages not sent yet (waiting or being sent), and how long the oldest has waited.
    queued: i64,
    oldest_waited: String,
    notice: Option<String>,
    rows: Vec<OutboxView>,
}

/// "45 seconds", "1 minute", "3 hours", "2 days": how long mail has waited, in the largest unit.
fn waited_for(secs: i64) -> String {
    let (n, unit) = match secs.max(0) {
        s if s < 60 => (s, "second"),
        s if s < 3600 => (s / 60, "minute"),
        s if s < 86_400 => (s / 3600, "hour"),
        s => (s / 86_400, "day"),
    };
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

#[derive(Deserialize)]
pub struct MailQuery {
    done: Option<String>,
}

pub async fn mail_page(
    state: web::Data<AppState>,
    admin: Admin,
    query: web::Query<MailQuery>,
) -> AppResult<HttpResponse> {
    let (rows, summary, held) = state
        .db
        .read(|conn| {
            Ok((
                outbox::recent(conn, 100)?,
                outbox::queue_summary(conn)?,
                outbox::count_held(conn)?,
            ))
        })
        .await?;
    let tz = state.config.timezone;
    let rows = rows
        .into_iter()
        .map(|r| OutboxView {
            next_attempt: if r.status == "queued" {
                crate::views::comment_date(r.next_attempt_at, tz)
            } else {
                String::new()
            },
            id: r.id,
            kind: r.kind,
            to: r.to_address,
            subject: r.subject,
            status: r.status,
            attempts: r.attempts,
            last_error: r.last_error,
        })
        .collect();
    let notice = match query.done.as_deref() {
        Some("test") => Some("A test email is on its way to you.".to_string()),
        Some("retry") => Some("The message is queued again.".to_string()),
        Some("release") => Some("The held messages are queued to be sent.".to_string()),
        _ => None,
    };
    render(
        MailPage {
            layout: AdminLayout::new(&state, &admin.0, "Mail", "mail").await?,
            transport: state.mail_transport.clone(),
            failed: summary.failed,
            held,
            queued: summary.queued,
            oldest_waited: waited_for(summary.oldest_queued_secs(state.clock.now())),
            notice,
            rows,
        },
        StatusCode::OK,
    )
}

pub async fn retry(
    state: web::Data<AppState>,
    _admin: Admin,
    path: web::Path<i32>,
) -> AppResult<HttpResponse> {
    let id = path.into_inner();
    let now = state.clock.now();
    if !state
        .db
        .write(move |conn| outbox::retry_now(conn, id, now))
        .await?
    {
        return Err(AppError::Conflict(
            "Only a failed or waiting message can be retried.".into(),
        ));
    }
    state.mail_wakeup.notify_one();
    Ok(see_other("/admin/mail?done=retry"))
}

/// `POST /admin/mail/release`: sends every held message (mail restored from an archive).
pub async fn release(state: web::Data<AppState>, _admin: Admin) -> AppResult<HttpResponse> {
    let now = state.clock.now();
    state
        .db
        .write(move |conn| outbox::release_held(conn, now))
        .await?;
    state.mail_wakeup.notify_one();
    Ok(see_other("/admin/mail?done=release"))
}

pub async fn send_test(state: web::Data<AppState>, admin: Admin) -> AppResult<HttpResponse> {
    let user = admin.0.user;
    let now = state.clock.now();
    let mail = state.mail.clone();
    let transport = state.mail_transport.clone();
    state
        .db
        .write(move |conn| {
            let email = TestEmail {
                site: Site {
                    title: mail.site_title.clone(),
                    url: mail.url("/"),
                },
                name: user.display_name.clone(),
                transport,
            };
            notify::enqueue(
                conn,
                &mail,
                &email,
                &user.display_name,
                &user.email,
                None,
                now,
            )
        })
        .await?;
    state.mail_wakeup.notify_one();
    Ok(see_other("/admin/mail?done=test"))
}
