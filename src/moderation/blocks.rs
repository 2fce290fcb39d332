//! Blocks: a moderator stops an email address or an IP network from commenting for a while.
//! New comments from a blocked email or network are stored as spam with the reason "blocked"
//! (the check is `comments::queries::is_blocked`, inside the submission's transaction), so the
//! sender sees nothing different and cannot probe the block.
//!
//! `GET|POST /admin/blocks` lists, adds and removes blocks; the queue's "Block email" and
//! "Block IP" buttons post here from inside its bulk form. Every change is logged.

use std::net::IpAddr;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use chrono::NaiveDateTime;
use diesel::prelude::*;
use ipnet::IpNet;
use serde::Deserialize;

use crate::actions::Actor;
use crate::auth::{Staff, safe_next_or};
use crate::comments::domain::CommenterEmail;
use crate::db::ids::CommentId;
use crate::db::schema::{blocks, comments, users};
use crate::db::{DbConn, DbError};
use crate::error::{AppError, AppResult};
use crate::http::forms::{FieldErrors, FormFields};
use crate::http::response::{render, see_other};
use crate::staff::{AdminLayout, web_actor};
use crate::state::AppState;
use crate::views::comment_date;

const PAGE_SIZE: i64 = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockKind {
    Email,
    Ip,
}

impl BlockKind {
    pub fn as_str(self) -> &'static str {
        match self {
            BlockKind::Email => "email",
            BlockKind::Ip => "ip",
        }
    }

    pub fn parse(text: &str) -> Option<BlockKind> {
        match text {
            "email" => Some(BlockKind::Email),
            "ip" => Some(BlockKind::Ip),
            _ => None,
        }
    }
}

/// What a block matches, in the form comments store it: a lower-cased email address, or an
/// `ip_network` (an IPv4 address, or an IPv6 /64 such as `2001:db8:1:2::/64`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockTarget {
    kind: BlockKind,
    value: String,
}

impl BlockTarget {
    /// Parses what a moderator typed. An IPv6 address becomes its /64, because that is what
    /// one customer usually holds and what the flood limit counts by.
    pub fn parse(kind: BlockKind, text: &str) -> Result<BlockTarget, String> {
        let text = text.trim();
        let value = match kind {
            BlockKind::Email => CommenterEmail::parse(text)?.as_str().to_string(),
            BlockKind::Ip => parse_network(text)?,
        };
        Ok(BlockTarget { kind, value })
    }

    pub fn kind(&self) -> BlockKind {
        self.kind
    }

    pub fn value(&self) -> &str {
        &self.value
    }
}

fn parse_network(text: &str) -> Result<String, String> {
    let refused = || {
        Err(format!(
            "“{text}” is not an IPv4 address or an IPv6 address or /64 network."
        ))
    };
    if text.contains('/') {
        let Ok(net) = text.parse::<IpNet>() else {
            return refused();
        };
        // Only the shapes a comment's `ip_network` takes can ever match.
        return match net {
            IpNet::V4(v4) if v4.prefix_len() == 32 => Ok(v4.addr().to_string()),
            IpNet::V6(v6) if v6.prefix_len() == 64 => {
                Ok(crate::http::ip_network(IpAddr::V6(v6.addr())))
            }
            _ => Err("Block a single IPv4 address or an IPv6 /64 network.".into()),
        };
    }
    match text.parse::<IpAddr>() {
        Ok(ip) => Ok(crate::http::ip_network(ip)),
        Err(_) => refused(),
    }
}

/// How long a block lasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockDuration {
    Days(u32),
    Forever,
}

impl BlockDuration {
    pub const CHOICES: [BlockDuration; 4] = [
        BlockDuration::Days(1),
        BlockDuration::Days(7),
        BlockDuration::Days(30),
        BlockDuration::Forever,
    ];

    /// The form value: `1`, `7`, `30` (days) or `forever`.
    pub fn parse(text: &str) -> Option<BlockDuration> {
        BlockDuration::CHOICES
            .into_iter()
            .find(|d| d.form_value() == text.trim())
    }

    pub fn form_value(self) -> String {
        match self {
            BlockDuration::Days(n) => n.to_string(),
            BlockDuration::Forever => "forever".into(),
        }
    }

    pub fn label(self) -> String {
        match self {
            BlockDuration::Days(1) => "1 day".into(),
            BlockDuration::Days(n) => format!("{n} days"),
            BlockDuration::Forever => "forever".into(),
        }
    }

    pub fn expires_at(self, now: NaiveDateTime) -> Option<NaiveDateTime> {
        match self {
            BlockDuration::Days(n) => Some(now + chrono::Duration::days(i64::from(n))),
            BlockDuration::Forever => None,
        }
    }
}

#[derive(Debug, Clone, Queryable)]
pub struct BlockRow {
    pub id: i32,
    pub kind: String,
    pub value: String,
    pub expires_at: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
    pub created_by: Option<String>,
}

/// Blocks in force at `now`, newest first, keyset-paginated by id.
pub fn list_active(
    conn: &mut DbConn,
    now: NaiveDateTime,
    before: Option<i32>,
    per_page: i64,
) -> Result<(Vec<BlockRow>, bool), DbError> {
    let mut query = blocks::table
        .left_join(users::table)
        .filter(blocks::expires_at.is_null().or(blocks::expires_at.gt(now)))
        .select((
            blocks::id,
            blocks::kind,
            blocks::value,
            blocks::expires_at,
            blocks::created_at,
            users::display_name.nullable(),
        ))
        .order(blocks::id.desc())
        .into_boxed();
    if let Some(before) = before {
        query = query.filter(blocks::id.lt(before));
    }
    let mut rows: Vec<BlockRow> = query.limit(per_page + 1).load(conn)?;
    let more = rows.len() as i64 > per_page;
    rows.truncate(per_page as usize);
    Ok((rows, more))
}

/// Blocks `target` until `expires_at` (None: forever) and logs it. A target that is already
/// blocked keeps one row whose expiry becomes the latest decision, shorter or longer.
pub fn block(
    conn: &mut DbConn,
    target: &BlockTarget,
    duration: BlockDuration,
    from_comment: Option<CommentId>,
    actor: &Actor,
    now: NaiveDateTime,
) -> Result<(), DbError> {
    let expires_at = duration.expires_at(now);
    let same_target = blocks::table
        .filter(blocks::kind.eq(target.kind.as_str()))
        .filter(blocks::value.eq(&target.value));
    let replaced = diesel::update(same_target)
        .set((
            blocks::expires_at.eq(expires_at),
            blocks::created_by.eq(actor.user_id),
            blocks::created_at.eq(now),
        ))
        .execute(conn)?;
    if replaced == 0 {
        diesel::insert_into(blocks::table)
            .values((
                blocks::kind.eq(target.kind.as_str()),
                blocks::value.eq(&target.value),
                blocks::expires_at.eq(expires_at),
                blocks::created_by.eq(actor.user_id),
                blocks::created_at.eq(now),
            ))
            .execute(conn)?;
    }
    let until = match duration {
        BlockDuration::Forever => "forever".to_string(),
        other => format!("for {}", other.label()),
    };
    crate::audit::log(
        conn,
        from_comment,
        "block",
        &format!("{} {} {until}", target.kind.as_str(), target.value),
        actor,
        now,
    )
}

/// Removes a block and logs it; false when there was no such block.
pub fn unblock(
    conn: &mut DbConn,
    id: i32,
    actor: &Actor,
    now: NaiveDateTime,
) -> Result<bool, DbError> {
    let found: Option<(String, String)> = blocks::table
        .find(id)
        .select((blocks::kind, blocks::value))
        .first(conn)
        .optional()?;
    let Some((kind, value)) = found else {
        return Ok(false);
    };
    diesel::delete(blocks::table.find(id)).execute(conn)?;
    crate::audit::log(
        conn,
        None,
        "unblock",
        &format!("{kind} {value}"),
        actor,
        now,
    )?;
    Ok(true)
}

/// When an address is erased, a block on it survives as the address's keyed hash
/// (`Signer::address_key`), which still matches its new comments; returns how many.
pub fn keep_only_key(conn: &mut DbConn, email: &str, address_key: &str) -> Result<usize, DbError> {
    Ok(diesel::update(
        blocks::table
            .filter(blocks::kind.eq(BlockKind::Email.as_str()))
            .filter(blocks::value.eq(email.to_lowercase())),
    )
    .set((
        blocks::kind.eq(ERASED_EMAIL_KIND),
        blocks::value.eq(address_key),
    ))
    .execute(conn)?)
}

/// The kind of a block on an erased address: its value is the address's keyed hash.
pub const ERASED_EMAIL_KIND: &str = "email_hash";

/// Deletes blocks that have run out (they match nothing, and an IP network should not be kept
/// longer than it is used); returns how many.
pub fn delete_expired(conn: &mut DbConn, now: NaiveDateTime) -> Result<usize, DbError> {
    Ok(diesel::delete(blocks::table.filter(blocks::expires_at.le(now))).execute(conn)?)
}

/// The email or network of a stored comment, for the queue's block buttons.
fn target_of_comment(
    conn: &mut DbConn,
    comment_id: CommentId,
    kind: BlockKind,
) -> Result<Option<Option<BlockTarget>>, DbError> {
    let found: Option<(String, Option<String>)> = comments::table
        .find(comment_id)
        .filter(comments::deleted_at.is_null())
        .select((comments::author_email, comments::ip_network))
        .first(conn)
        .optional()?;
    Ok(found.map(|(email, network)| {
        let value = match kind {
            BlockKind::Email => Some(email).filter(|e| !e.is_empty()),
            BlockKind::Ip => network,
        };
        value.map(|value| BlockTarget { kind, value })
    }))
}

/// One block as the page prints it.
pub struct BlockItem {
    pub id: i32,
    pub kind: String,
    pub value: String,
    pub until: String,
    pub by: String,
    pub since: String,
}

/// The add form as typed, kept on a 422.
#[derive(Default)]
pub struct AddForm {
    pub kind: String,
    pub value: String,
    pub duration: String,
}

#[derive(Template)]
#[template(path = "admin/blocks.html")]
struct BlocksPage {
    layout: AdminLayout,
    items: Vec<BlockItem>,
    next_href: Option<String>,
    notice: Option<&'static str>,
    add: AddForm,
    errors: FieldErrors,
    durations: Vec<(String, String)>,
}

/// What the page shows after a change; a fixed set, so no text from the URL is echoed.
fn notice_for(done: Option<&str>) -> Option<&'static str> {
    match done? {
        "added" => Some("Blocked. New comments from it go to spam."),
        "removed" => Some("Block removed."),
        _ => None,
    }
}

async fn blocks_page(
    state: &AppState,
    staff: &Staff,
    status: StatusCode,
    before: Option<i32>,
    notice: Option<&'static str>,
    add: AddForm,
    errors: FieldErrors,
) -> AppResult<HttpResponse> {
    let now = state.clock.now();
    let (rows, more) = state
        .db
        .read(move |conn| list_active(conn, now, before, PAGE_SIZE))
        .await?;
    let next_href = more
        .then(|| {
            rows.last()
                .map(|r| format!("/admin/blocks?before={}", r.id))
        })
        .flatten();
    let tz = state.config.timezone;
    let items = rows
        .into_iter()
        .map(|row| BlockItem {
            id: row.id,
            kind: match row.kind.as_str() {
                "ip" => "IP",
                ERASED_EMAIL_KIND => "Erased email (keyed hash)",
                _ => "Email",
            }
            .into(),
            value: row.value,
            until: row
                .expires_at
                .map_or_else(|| "forever".into(), |at| comment_date(at, tz)),
            by: row.created_by.unwrap_or_else(|| "a former user".into()),
            since: comment_date(row.created_at, tz),
        })
        .collect();
    let durations = BlockDuration::CHOICES
        .into_iter()
        .map(|d| (d.form_value(), d.label()))
        .collect();
    render(
        BlocksPage {
            layout: AdminLayout::new(state, staff, "Blocks", "blocks").await?,
            items,
            next_href,
            notice,
            add,
            errors,
            durations,
        },
        status,
    )
}

#[derive(Deserialize)]
pub struct BlocksQuery {
    done: Option<String>,
    before: Option<String>,
}

/// `GET /admin/blocks`: the blocks in force, and a form to add one.
pub async fn list(
    state: web::Data<AppState>,
    staff: Staff,
    query: web::Query<BlocksQuery>,
) -> AppResult<HttpResponse> {
    let before = query.before.as_deref().and_then(|b| b.parse::<i32>().ok());
    let add = AddForm {
        duration: "7".into(),
        ..AddForm::default()
    };
    blocks_page(
        &state,
        &staff,
        StatusCode::OK,
        before,
        notice_for(query.done.as_deref()),
        add,
        FieldErrors::new(),
    )
    .await
}

/// `POST /admin/blocks`, three forms in one route:
/// - the queue's buttons: `block` = `email:{comment id}` or `ip:{comment id}`, with
///   `block_duration_{comment id}` (or `duration`) and `back`;
/// - the add form: `kind` (email | ip), `value`, `duration` (1 | 7 | 30 | forever);
/// - a remove button: `op=remove`, `id`.
pub async fn change(
    state: web::Data<AppState>,
    req: HttpRequest,
    staff: Staff,
    body: web::Bytes,
) -> AppResult<HttpResponse> {
    let form = FormFields::parse(&body)?;
    let actor = web_actor(&state, &req, &staff);
    let now = state.clock.now();
    if let Some(spec) = form.get("block") {
        return block_from_queue(&state, &form, spec, actor, now).await;
    }
    match form.get("op").unwrap_or("add") {
        "remove" => {
            let id = form
                .get("id")
                .and_then(|id| id.parse::<i32>().ok())
                .ok_or_else(|| AppError::BadRequest("id must be a block id".into()))?;
            let removed = state
                .db
                .write(move |conn| unblock(conn, id, &actor, now))
                .await?;
            if !removed {
                return Err(AppError::NotFound);
            }
            Ok(see_other("/admin/blocks?done=removed"))
        }
        "add" => {
            let typed = AddForm {
                kind: form.get("kind").unwrap_or("").to_string(),
                value: form.get("value").unwrap_or("").to_string(),
                duration: form.get("duration").unwrap_or("").to_string(),
            };
            let mut errors = FieldErrors::new();
            let target = match BlockKind::parse(&typed.kind) {
                Some(kind) => BlockTarget::parse(kind, &typed.value)
                    .map_err(|e| errors.push(("value", e)))
                    .ok(),
                None => {
                    errors.push(("kind", "Choose what to block: email or IP.".into()));
                    None
                }
            };
            let duration = BlockDuration::parse(&typed.duration);
            if duration.is_none() {
                errors.push((
                    "duration",
                    "Choose how long: 1, 7 or 30 days, or forever.".into(),
                ));
            }
            let (Some(target), Some(duration), true) = (target, duration, errors.is_empty()) else {
                return blocks_page(
                    &state,
                    &staff,
                    StatusCode::UNPROCESSABLE_ENTITY,
                    None,
                    None,
                    typed,
                    errors,
                )
                .await;
            };
            state
                .db
                .write(move |conn| block(conn, &target, duration, None, &actor, now))
                .await?;
            Ok(see_other("/admin/blocks?done=added"))
        }
        other => Err(AppError::BadRequest(format!(
            "Unknown operation {other:?}."
        ))),
    }
}

/// A block button in a queue row: blocks that comment's email or network, then goes back to
/// the queue page it came from, as every queue action does.
async fn block_from_queue(
    state: &AppState,
    form: &FormFields,
    spec: &str,
    actor: Actor,
    now: NaiveDateTime,
) -> AppResult<HttpResponse> {
    let back = safe_next_or(form.get("back"), "/admin/comments");
    let (kind, comment_id) = spec
        .split_once(':')
        .and_then(|(kind, id)| Some((BlockKind::parse(kind)?, CommentId(id.parse::<i32>().ok()?))))
        .ok_or_else(|| AppError::BadRequest("block must be email:ID or ip:ID".into()))?;
    let duration = form
        .get(&format!("block_duration_{comment_id}"))
        .or(form.get("duration"))
        .and_then(BlockDuration::parse)
        .ok_or_else(|| {
            AppError::Unprocessable(
                "Choose how long to block: 1, 7 or 30 days, or forever. Nothing was changed."
                    .into(),
            )
        })?;
    let outcome = state
        .db
        .write(move |conn| -> Result<Option<bool>, DbError> {
            match target_of_comment(conn, comment_id, kind)? {
                None => Ok(None),
                Some(None) => Ok(Some(false)),
                Some(Some(target)) => {
                    block(conn, &target, duration, Some(comment_id), &actor, now)?;
                    Ok(Some(true))
                }
            }
        })
        .await?;
    match outcome {
        None => Err(AppError::NotFound),
        Some(false) => Err(AppError::Conflict(
            "This comment's IP address is no longer kept (addresses are dropped after 30 days), \
             so it cannot be blocked. Nothing was changed."
                .into(),
        )),
        Some(true) => Ok(see_other(&back)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_take_the_shape_comments_store() {
        let ip = |text: &str| BlockTarget::parse(BlockKind::Ip, text).map(|t| t.value);
        assert_eq!(ip("192.0.2.7").as_deref(), Ok("192.0.2.7"));
        assert_eq!(ip("192.0.2.7/32").as_deref(), Ok("192.0.2.7"));
        assert_eq!(ip("2001:db8:1:2::99").as_deref(), Ok("2001:db8:1:2::/64"));
        assert_eq!(
            ip("2001:db8:1:2:ff::/64").as_deref(),
            Ok("2001:db8:1:2::/64")
        );
        assert!(ip("192.0.2.0/24").is_err());
        assert!(ip("example.com").is_err());
        let email = BlockTarget::parse(BlockKind::Email, " Ada@Example.COM ").map(|t| t.value);
        assert_eq!(email.as_deref(), Ok("ada@example.com"));
        assert!(BlockTarget::parse(BlockKind::Email, "nope").is_err());
        assert_eq!(BlockDuration::parse("7"), Some(BlockDuration::Days(7)));
        assert_eq!(
            BlockDuration::parse("forever"),
            Some(BlockDuration::Forever)
        );
        assert_eq!(BlockDuration::parse("2"), None);
    }
}
