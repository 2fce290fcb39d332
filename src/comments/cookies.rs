//! The two cookies a commenter gets: which pending comments are theirs (signed, so nobody can
//! claim someone else's), and, only when they ask, their name, email and website for next time.

use actix_web::HttpRequest;
use actix_web::cookie::{Cookie, SameSite, time::Duration};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

use crate::crypto::Signer;
use crate::db::ids::CommentId;

pub const PENDING_COOKIE: &str = "lectern_pending";
pub const COMMENTER_COOKIE: &str = "lectern_commenter";
const MAX_PENDING: usize = 20;
const PENDING_DAYS: i64 = 30;

/// Comment ids from a valid, unexpired pending cookie; anything else is no ids.
pub fn pending_ids(req: &HttpRequest, signer: &Signer, now_unix: i64) -> Vec<CommentId> {
    let Some(cookie) = req.cookie(PENDING_COOKIE) else {
        return Vec::new();
    };
    let value = cookie.value();
    let Some((message, signature)) = value.rsplit_once('.') else {
        return Vec::new();
    };
    let Some((ids, expires)) = message.rsplit_once('.') else {
        return Vec::new();
    };
    let fresh = expires.parse::<i64>().is_ok_and(|e| e > now_unix);
    if !fresh || !signer.verify("pending-cookie", message, signature) {
        return Vec::new();
    }
    ids.split('-')
        .filter_map(|id| id.parse().ok().map(CommentId))
        .collect()
}

/// A new pending cookie naming `ids` (the newest last, at most twenty).
pub fn pending_cookie(
    ids: &[CommentId],
    signer: &Signer,
    now_unix: i64,
    secure: bool,
) -> Cookie<'static> {
    let keep = &ids[ids.len().saturating_sub(MAX_PENDING)..];
    let list = keep
        .iter()
        .map(CommentId::to_string)
        .collect::<Vec<_>>()
        .join("-");
    let message = format!("{list}.{}", now_unix + PENDING_DAYS * 86_400);
    let value = format!("{message}.{}", signer.sign("pending-cookie", &message));
    private_cookie(PENDING_COOKIE, value, Duration::days(PENDING_DAYS), secure)
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct RememberedCommenter {
    pub name: String,
    pub email: String,
    pub website: String,
}

pub fn remembered(req: &HttpRequest) -> Option<RememberedCommenter> {
    let cookie = req.cookie(COMMENTER_COOKIE)?;
    let bytes = URL_SAFE_NO_PAD.decode(cookie.value()).ok()?;
    serde_json::from_slice(&bytes).ok()
}

pub fn remember_cookie(who: &RememberedCommenter, secure: bool) -> Cookie<'static> {
    let json = serde_json::to_vec(who).unwrap_or_default();
    private_cookie(
        COMMENTER_COOKIE,
        URL_SAFE_NO_PAD.encode(json),
        Duration::days(365),
        secure,
    )
}

pub fn forget_cookie(secure: bool) -> Cookie<'static> {
    let mut cookie = private_cookie(COMMENTER_COOKIE, String::new(), Duration::ZERO, secure);
    cookie.make_removal();
    cookie
}

fn private_cookie(
    name: &'static str,
    value: String,
    max_age: Duration,
    secure: bool,
) -> Cookie<'static> {
    Cookie::build(name, value)
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(secure)
        .max_age(max_age)
        .finish()
}
