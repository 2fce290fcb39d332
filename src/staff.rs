//! What every staff page shares, whichever feature it belongs to: the admin layout (with the
//! count of comments awaiting moderation), the notice a page shows after an action (a flash kept
//! in the database, so it survives the redirect and any server of a cluster shows it), the admin
//! stylesheet and script, and who made a change, for the moderation log. It sits above comments
//! (for the count) and below moderation and admin, which both draw pages with it.

use actix_web::HttpRequest;
use chrono::{Duration, NaiveDateTime};
use diesel::prelude::*;

use crate::actions::{Actor, Via};
pub use crate::auth::Notice;
use crate::auth::Staff;
use crate::comments::CommentStatus;
use crate::comments::queries::status_total;
use crate::db::schema::admin_notices;
use crate::db::{DbConn, DbError};
use crate::error::AppResult;
use crate::state::AppState;

/// What `admin/base.html` needs.
pub struct AdminLayout {
    pub site_title: String,
    pub head_title: String,
    pub title: String,
    pub user_name: String,
    pub is_admin: bool,
    pub csrf_token: String,
    pub pending: i64,
    pub section: &'static str,
    /// What the last action did, shown once at the top of the next page.
    pub notice: Option<Notice>,
}

impl AdminLayout {
    pub async fn new(
        state: &AppState,
        staff: &Staff,
        title: &str,
        section: &'static str,
    ) -> AppResult<AdminLayout> {
        let pending = state
            .db
            .read(|conn| status_total(conn, CommentStatus::Pending))
            .await?;
        let mut layout = AdminLayout::with_pending(state, staff, title, section, pending);
        layout.notice = take_notice(state, staff).await?;
        Ok(layout)
    }

    /// For pages that already read the tab counts, with the notice read by `take_notice`.
    pub async fn with_pending_and_notice(
        state: &AppState,
        staff: &Staff,
        title: &str,
        section: &'static str,
        pending: i64,
    ) -> AppResult<AdminLayout> {
        let mut layout = AdminLayout::with_pending(state, staff, title, section, pending);
        layout.notice = take_notice(state, staff).await?;
        Ok(layout)
    }

    /// For pages that already read the tab counts: no second trip to the database.
    pub fn with_pending(
        state: &AppState,
        staff: &Staff,
        title: &str,
        section: &'static str,
        pending: i64,
    ) -> AdminLayout {
        AdminLayout {
            site_title: state.config.site_title.clone(),
            head_title: format!("{title} ‹ {} — lectern", state.config.site_title),
            title: title.to_string(),
            user_name: staff.user.display_name.clone(),
            is_admin: staff.is_admin(),
            csrf_token: staff.csrf_token.clone(),
            pending,
            section,
            notice: None,
        }
    }
}

/// A notice to show after an action.
pub struct NewNotice<'a> {
    pub user_id: crate::db::ids::UserId,
    /// The session that sees it on its next page; `None` after an email-link action.
    pub session_hash: Option<&'a str>,
    pub message: &'a str,
    /// What Undo puts back, in moderation's own words; empty when there is nothing to undo.
    pub undo: &'a str,
    pub view_href: Option<&'a str>,
}

/// How long an Undo works.
pub const UNDO_VALID_MINUTES: i64 = 60;

/// Stores a notice in the caller's transaction and returns its id. Notices older than a day are
/// dropped on the way (each one is a few hundred bytes, and Undo ends after an hour).
pub fn store_notice(
    conn: &mut DbConn,
    notice: &NewNotice<'_>,
    now: NaiveDateTime,
) -> Result<i32, DbError> {
    diesel::delete(
        admin_notices::table.filter(admin_notices::created_at.lt(now - Duration::days(1))),
    )
    .execute(conn)?;
    Ok(diesel::insert_into(admin_notices::table)
        .values((
            admin_notices::user_id.eq(notice.user_id.0),
            admin_notices::session_hash.eq(notice.session_hash),
            admin_notices::message.eq(notice.message),
            admin_notices::undo.eq(notice.undo),
            admin_notices::view_href.eq(notice.view_href),
            admin_notices::created_at.eq(now),
        ))
        .returning(admin_notices::id)
        .get_result(conn)?)
}

/// Marks a notice shown, so the page after next does not repeat it.
async fn seen(state: &AppState, notice: Option<Notice>) -> AppResult<Option<Notice>> {
    let Some(notice) = notice else {
        return Ok(None);
    };
    let id = notice.id;
    let now = state.clock.now();
    state
        .db
        .write(move |conn| -> Result<usize, DbError> {
            Ok(diesel::update(admin_notices::table.find(id))
                .set(admin_notices::shown_at.eq(Some(now)))
                .execute(conn)?)
        })
        .await?;
    Ok(Some(notice))
}

/// The notice this session should see now, if any (read with the session by the admin guard),
/// marked as seen.
pub async fn take_notice(state: &AppState, staff: &Staff) -> AppResult<Option<Notice>> {
    seen(state, staff.notice.clone()).await
}

/// What Undo of notice `id` puts back, if the notice is `user_id`'s, still within the hour and
/// not undone yet. Claims it in the caller's transaction: a second Undo finds nothing.
pub fn claim_undo(
    conn: &mut DbConn,
    id: i32,
    user_id: crate::db::ids::UserId,
    now: NaiveDateTime,
) -> Result<Option<String>, DbError> {
    let found: Option<String> = admin_notices::table
        .find(id)
        .filter(admin_notices::user_id.eq(user_id.0))
        .filter(admin_notices::undone_at.is_null())
        .filter(admin_notices::created_at.ge(now - Duration::minutes(UNDO_VALID_MINUTES)))
        .select(admin_notices::undo)
        .first(conn)
        .optional()?;
    let Some(undo) = found.filter(|u| !u.is_empty()) else {
        return Ok(None);
    };
    let claimed = diesel::update(
        admin_notices::table
            .find(id)
            .filter(admin_notices::undone_at.is_null()),
    )
    .set(admin_notices::undone_at.eq(Some(now)))
    .execute(conn)?;
    Ok((claimed == 1).then_some(undo))
}

/// The notice's message, for the page that asks "Undo this?" (no session needed).
pub fn notice_message(conn: &mut DbConn, id: i32) -> Result<Option<String>, DbError> {
    Ok(admin_notices::table
        .find(id)
        .select(admin_notices::message)
        .first(conn)
        .optional()?)
}

/// Who made a change from the admin, for the moderation log.
pub fn web_actor(state: &AppState, req: &HttpRequest, staff: &Staff) -> Actor {
    Actor {
        user_id: Some(staff.user.id.0),
        via: Via::Web,
        ip: crate::http::client_ip(req, &state.config.trusted_proxies).map(|ip| ip.to_string()),
    }
}
