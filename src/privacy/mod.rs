//! Commenters own their data. `/my-comments` mails a link (the same answer whether or not the
//! address is known) to a page where its owner sees their comments, downloads everything kept
//! about the address, deletes a comment or erases it all; `/admin/privacy` gives admins the
//! same export and erasure; `/privacy` says what is kept, for how long and which cookies
//! exist, from the settings themselves.
//!
//! The rules (what an export holds, what an erasure touches) live in `data.rs`; the pages are
//! thin callers of them.

pub mod admin;
pub mod data;
pub mod handlers;
pub mod limits;
pub mod own_comment;
pub mod policy;

use crate::auth::{guard, sessions};
use crate::comments::cookies::{COMMENTER_COOKIE, PENDING_COOKIE};

/// One cookie the site may set, as the privacy page and the export explain it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CookieInfo {
    pub name: String,
    pub who: &'static str,
    pub purpose: &'static str,
    pub lifetime: String,
}

/// Every cookie lectern sets, with the names it uses on this site (`__Host-` over https).
pub fn cookies(secure: bool) -> Vec<CookieInfo> {
    vec![
        CookieInfo {
            name: PENDING_COOKIE.to_string(),
            who: "anyone who posts a comment (unless it is published at once and comments cannot be edited)",
            purpose: "Lists the numbers of the comments you posted from this browser, signed so nobody can claim another's, so that you alone see the ones that wait for moderation, marked “awaiting moderation”, and can edit or delete a comment for a short while after posting it. It holds no name or address.",
            lifetime: "30 days".into(),
        },
        CookieInfo {
            name: COMMENTER_COOKIE.to_string(),
            who: "only if you tick “Save my name, email, and website in this browser”",
            purpose: "Keeps your name, email address and website in your browser to fill in the comment form next time. It is never stored on the server; posting without the box ticked removes it.",
            lifetime: "1 year".into(),
        },
        CookieInfo {
            name: guard::anon_cookie_name(secure).to_string(),
            who: "visitors of the staff login, password reset and “manage my comments” forms",
            purpose: "A random value that proves a form was sent from this site, against forged requests.",
            lifetime: "until the browser is closed".into(),
        },
        CookieInfo {
            name: sessions::cookie_name(secure).to_string(),
            who: "staff, after logging in",
            purpose: "Keeps a moderator or admin logged in.",
            lifetime: format!(
                "{} minutes without activity, {} hours at most",
                sessions::IDLE_TIMEOUT_MINUTES,
                sessions::ABSOLUTE_TIMEOUT_HOURS
            ),
        },
    ]
}
