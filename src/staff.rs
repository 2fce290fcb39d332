//! What every staff page shares, whichever feature it belongs to: the admin layout (with the
//! count of comments awaiting moderation) and who made a change, for the moderation log. It
//! sits above comments (for the count) and below moderation and admin, which both draw pages
//! with it.

use actix_web::HttpRequest;

use crate::actions::{Actor, Via};
use crate::auth::Staff;
use crate::comments::CommentStatus;
use crate::comments::queries::status_total;
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
        Ok(AdminLayout::with_pending(
            state, staff, title, section, pending,
        ))
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
        }
    }
}

/// Who made a change from the admin, for the moderation log.
pub fn web_actor(state: &AppState, req: &HttpRequest, staff: &Staff) -> Actor {
    Actor {
        user_id: Some(staff.user.id.0),
        via: Via::Web,
        ip: crate::http::client_ip(req, &state.config.trusted_proxies).map(|ip| ip.to_string()),
    }
}
