//! What lectern keeps about one email address, and what can be done with it: list it, export it
//! all, delete one comment, or erase the address from every table. Each function runs inside
//! the caller's transaction; an address is always the lower-cased form comments store
//! (`CommenterEmail`), matched against stored values without regard to case.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::Serialize;

use crate::actions::Actor;
use crate::comments::CommentStatus;
use crate::crypto::Signer;
use crate::db::ids::{CommentId, PostId};
use crate::db::schema::{
    blocks as block_rows, comments, login_failures, moderation_log, notify_addresses, outbox,
    posts, users,
};
use crate::db::{DbConn, DbError};
use crate::moderation::blocks;

diesel::define_sql_function!(fn lower(x: diesel::sql_types::Text) -> diesel::sql_types::Text);

/// What an erased address is replaced with where text mentioned it (mail, the log).
fn erased_mark(address_key: &str) -> String {
    format!(
        "[erased address {}]",
        &address_key[..address_key.len().min(12)]
    )
}

/// A comment of the address, with its post, as its owner sees it and the export lists it.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = comments)]
pub struct HeldComment {
    pub id: CommentId,
    pub post_id: PostId,
    pub parent_id: Option<CommentId>,
    pub author_name: String,
    pub author_email: String,
    pub author_url: Option<String>,
    pub body: String,
    pub body_html: String,
    pub status: CommentStatus,
    pub held_reason: Option<String>,
    pub ip: Option<String>,
    pub user_agent: String,
    pub notify: bool,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    /// The text its author's last edit replaced, kept for moderators.
    pub previous_body: Option<String>,
    #[diesel(select_expression = posts::title)]
    pub post_title: String,
    #[diesel(select_expression = posts::slug)]
    pub post_slug: String,
}

/// The address's comments that its owner sees: every status but spam (a spam comment is often
/// not theirs at all), newest first. Placeholders left by deletions hold no address.
pub fn comments_of(conn: &mut DbConn, email: &str) -> Result<Vec<HeldComment>, DbError> {
    Ok(comments::table
        .inner_join(posts::table)
        .filter(lower(comments::author_email).eq(email))
        .filter(comments::deleted_at.is_null())
        .filter(comments::status.ne(CommentStatus::Spam))
        .select(HeldComment::as_select())
        .order(comments::id.desc())
        .load(conn)?)
}

/// How many of the address's comments are in each status, spam included.
pub fn status_counts(conn: &mut DbConn, email: &str) -> Result<Vec<(String, i64)>, DbError> {
    let mut rows: Vec<(String, i64)> = comments::table
        .filter(lower(comments::author_email).eq(email))
        .filter(comments::deleted_at.is_null())
        .group_by(comments::status)
        .select((comments::status, diesel::dsl::count_star()))
        .load(conn)?;
    rows.sort();
    Ok(rows)
}

/// Whether the site holds anything for the address: a comment, or a notification address.
pub fn is_known(conn: &mut DbConn, email: &str) -> Result<bool, DbError> {
    let comment: Option<CommentId> = comments::table
        .filter(lower(comments::author_email).eq(email))
        .filter(comments::deleted_at.is_null())
        .select(comments::id)
        .first(conn)
        .optional()?;
    // Both lookups always run, so a known address takes as long to answer as an unknown one.
    let subscription = subscription_of(conn, email)?;
    Ok(comment.is_some() || subscription.is_some())
}

/// Whether a staff account uses the address: such an address is not erased from here (the
/// account would keep it), an admin changes or removes the account first.
pub fn is_staff_address(conn: &mut DbConn, email: &str) -> Result<bool, DbError> {
    let found: Option<crate::db::ids::UserId> = users::table
        .filter(lower(users::email).eq(email))
        .select(users::id)
        .first(conn)
        .optional()?;
    Ok(found.is_some())
}

/// The address's notification record: (asked at, confirmed at, unsubscribed at, created at).
type SubscriptionRow = (
    Option<NaiveDateTime>,
    Option<NaiveDateTime>,
    Option<NaiveDateTime>,
    NaiveDateTime,
);

fn subscription_of(conn: &mut DbConn, email: &str) -> Result<Option<SubscriptionRow>, DbError> {
    Ok(notify_addresses::table
        .filter(lower(notify_addresses::email).eq(email))
        .select((
            notify_addresses::confirmation_sent_at,
            notify_addresses::confirmed_at,
            notify_addresses::unsubscribed_at,
            notify_addresses::created_at,
        ))
        .first(conn)
        .optional()?)
}

/// Whether the address has a notification record (asked for, confirmed or stopped emails).
pub fn has_subscription(conn: &mut DbConn, email: &str) -> Result<bool, DbError> {
    Ok(subscription_of(conn, email)?.is_some())
}

/// What a subscription means, in words.
fn subscription_state(row: &SubscriptionRow) -> &'static str {
    match row {
        (_, _, Some(_), _) => "unsubscribed: no notification emails are sent to this address",
        (_, Some(_), None, _) => {
            "confirmed: notification emails are sent for comments that asked for them"
        }
        (Some(_), None, None, _) => "asked to confirm; not confirmed, so nothing else is sent",
        _ => "recorded, not confirmed",
    }
}

fn iso(at: NaiveDateTime) -> String {
    crate::views::iso_date(at)
}

#[derive(Debug, Serialize)]
pub struct Export {
    pub site: String,
    pub generated_at: String,
    pub email: String,
    pub comments: Vec<ExportedComment>,
    pub spam: SpamNote,
    pub subscription: Option<ExportedSubscription>,
    pub blocks: Vec<ExportedBlock>,
    pub moderation_decisions: Vec<ExportedDecision>,
    pub cookies: Vec<super::CookieInfo>,
    pub retention: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct ExportedComment {
    pub id: CommentId,
    pub post_title: String,
    pub post_url: String,
    pub parent_id: Option<CommentId>,
    pub status: &'static str,
    pub created_at: String,
    pub updated_at: String,
    pub author_name: String,
    pub author_email: String,
    pub author_url: Option<String>,
    pub text: String,
    /// The text the author's last edit replaced.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_text: Option<String>,
    pub held_reason: Option<String>,
    /// `None` once dropped (after the retention period).
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub notify_me: bool,
}

#[derive(Debug, Serialize)]
pub struct SpamNote {
    pub count: i64,
    pub note: String,
}

#[derive(Debug, Serialize)]
pub struct ExportedSubscription {
    pub state: &'static str,
    pub recorded_at: String,
    pub confirmation_sent_at: Option<String>,
    pub confirmed_at: Option<String>,
    pub unsubscribed_at: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct ExportedBlock {
    pub what: &'static str,
    pub until: Option<String>,
}

/// A moderation decision about one of the address's comments, without who made it.
#[derive(Debug, Serialize)]
pub struct ExportedDecision {
    pub comment_id: Option<CommentId>,
    pub action: String,
    pub detail: String,
    pub via: String,
    pub at: String,
}

/// Everything the site keeps about `email`, as its owner may download it.
pub fn export(
    conn: &mut DbConn,
    email: &str,
    site: (&str, &str),
    secure_cookies: bool,
    now: NaiveDateTime,
) -> Result<Export, DbError> {
    let (site_title, base_url) = site;
    let held = comments_of(conn, email)?;
    let spam = status_counts(conn, email)?
        .into_iter()
        .find(|(status, _)| status == CommentStatus::Spam.as_str())
        .map_or(0, |(_, n)| n);
    let settings = crate::site::DiscussionSettings::load(conn)?;
    let ids: Vec<CommentId> = held.iter().map(|c| c.id).collect();
    let decisions: Vec<(Option<CommentId>, String, String, String, NaiveDateTime)> =
        moderation_log::table
            .filter(moderation_log::comment_id.eq_any(&ids))
            .select((
                moderation_log::comment_id,
                moderation_log::action,
                moderation_log::detail,
                moderation_log::via,
                moderation_log::created_at,
            ))
            .order(moderation_log::id)
            .load(conn)?;
    let blocked_until: Vec<Option<NaiveDateTime>> = block_rows::table
        .filter(block_rows::kind.eq(blocks::BlockKind::Email.as_str()))
        .filter(lower(block_rows::value).eq(email))
        .filter(
            block_rows::expires_at
                .is_null()
                .or(block_rows::expires_at.gt(now)),
        )
        .select(block_rows::expires_at)
        .load(conn)?;
    let subscription = subscription_of(conn, email)?.map(|row| ExportedSubscription {
        state: subscription_state(&row),
        confirmation_sent_at: row.0.map(iso),
        confirmed_at: row.1.map(iso),
        unsubscribed_at: row.2.map(iso),
        recorded_at: iso(row.3),
    });
    Ok(Export {
        site: site_title.to_string(),
        generated_at: iso(now),
        email: email.to_string(),
        comments: held
            .into_iter()
            .map(|c| ExportedComment {
                id: c.id,
                post_url: format!("{base_url}/posts/{}", c.post_slug),
                post_title: c.post_title,
                parent_id: c.parent_id,
                status: c.status.as_str(),
                created_at: iso(c.created_at),
                updated_at: iso(c.updated_at),
                author_name: c.author_name,
                author_email: c.author_email,
                author_url: c.author_url,
                text: c.body,
                previous_text: c.previous_body,
                held_reason: c.held_reason,
                ip: c.ip,
                user_agent: Some(c.user_agent).filter(|ua| !ua.is_empty()),
                notify_me: c.notify,
            })
            .collect(),
        spam: SpamNote {
            count: spam,
            note: format!(
                "Comments from this address that were marked as spam are counted here but not \
                 listed (many are not written by the address's owner). They are deleted {} days \
                 after being marked, and an erasure removes them at once.",
                settings.retention_days
            ),
        },
        subscription,
        blocks: blocked_until
            .into_iter()
            .map(|until| ExportedBlock {
                what: "new comments from this address go to spam",
                until: until.map(iso),
            })
            .collect(),
        moderation_decisions: decisions
            .into_iter()
            .map(|(comment_id, action, detail, via, at)| ExportedDecision {
                comment_id,
                action,
                detail,
                via,
                at: iso(at),
            })
            .collect(),
        cookies: super::cookies(secure_cookies),
        retention: crate::moderation::retention::policy(&settings),
    })
}

/// Deletes one of the address's comments (not spam, not already deleted) for its owner and
/// logs it without the address; false when there is no such comment.
pub fn delete_own_comment(
    conn: &mut DbConn,
    email: &str,
    comment_id: CommentId,
    actor: &Actor,
    now: NaiveDateTime,
) -> Result<bool, DbError> {
    let owned: Option<CommentId> = comments::table
        .find(comment_id)
        .filter(lower(comments::author_email).eq(email))
        .filter(comments::deleted_at.is_null())
        .filter(comments::status.ne(CommentStatus::Spam))
        .select(comments::id)
        .first(conn)
        .optional()?;
    if owned.is_none() {
        return Ok(false);
    }
    let Some(from) = crate::moderation::delete_for_author(conn, comment_id, now)? else {
        return Ok(false);
    };
    crate::audit::log(
        conn,
        Some(comment_id),
        "author-delete",
        &format!("{} → deleted by its author", from.as_str()),
        actor,
        now,
    )?;
    Ok(true)
}

/// How an erasure treats the address's comments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EraseMode {
    /// Text kept; name "Anonymous"; email, website, IP and user agent removed; a new avatar.
    Anonymise,
    /// Every comment deleted (a placeholder stays where replies hang from one).
    Delete,
}

impl EraseMode {
    /// `anonymise` (also the default when the field is missing) or `delete`.
    pub fn parse(text: Option<&str>) -> Option<EraseMode> {
        match text.map(str::trim) {
            None | Some("") | Some("anonymise") | Some("anonymize") => Some(EraseMode::Anonymise),
            Some("delete") => Some(EraseMode::Delete),
            Some(_) => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            EraseMode::Anonymise => "anonymise",
            EraseMode::Delete => "delete",
        }
    }
}

/// What an erasure did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Erased {
    pub comments: usize,
    /// Deleted comments that stay as "This comment was removed." because replies hang from them.
    pub placeholders: usize,
    pub subscriptions: usize,
    pub blocks_kept_as_key: usize,
    pub emails_cancelled: usize,
    pub emails_cleaned: usize,
    pub log_entries_cleaned: usize,
}

/// Removes `email` from every table, in the caller's transaction: its comments (anonymised or
/// deleted, spam included), its notification address, unsent mail to or about it (cancelled)
/// and the address in sent mail and the moderation log (replaced), failed staff logins with
/// it; a block on it survives as its keyed hash. Logged once, naming the address only by its
/// keyed hash.
pub fn erase(
    conn: &mut DbConn,
    signer: &Signer,
    email: &str,
    mode: EraseMode,
    actor: &Actor,
    now: NaiveDateTime,
) -> Result<Erased, DbError> {
    let key = signer.address_key(email);
    let mark = erased_mark(&key);
    let mut erased = Erased::default();

    // Newest first: a reply of the same author goes before the comment it answers, which can
    // then be deleted outright instead of leaving a placeholder.
    let ids: Vec<CommentId> = comments::table
        .filter(lower(comments::author_email).eq(email))
        .filter(comments::deleted_at.is_null())
        .select(comments::id)
        .order(comments::id.desc())
        .load(conn)?;
    for id in &ids {
        match mode {
            EraseMode::Anonymise => {
                let reason: Option<String> = comments::table
                    .find(id)
                    .select(comments::held_reason)
                    .first(conn)?;
                let mut seed = [0u8; 4];
                crate::crypto::fill_random(&mut seed);
                diesel::update(comments::table.find(id))
                    .set((
                        comments::author_name.eq("Anonymous"),
                        comments::author_email.eq(""),
                        comments::author_url.eq(None::<String>),
                        comments::ip.eq(None::<String>),
                        comments::ip_network.eq(None::<String>),
                        comments::user_agent.eq(""),
                        comments::notify.eq(false),
                        comments::avatar_seed.eq(i32::from_be_bytes(seed)),
                        comments::held_reason.eq(reason.map(|r| redact(&r, email, &mark))),
                    ))
                    .execute(conn)?;
            }
            EraseMode::Delete => {
                if crate::moderation::delete_for_author(conn, *id, now)?.is_some() {
                    let kept: Option<CommentId> = comments::table
                        .find(id)
                        .select(comments::id)
                        .first(conn)
                        .optional()?;
                    erased.placeholders += usize::from(kept.is_some());
                }
            }
        }
        erased.comments += 1;
    }

    erased.subscriptions =
        diesel::delete(notify_addresses::table.filter(lower(notify_addresses::email).eq(email)))
            .execute(conn)?;
    erased.blocks_kept_as_key = blocks::keep_only_key(conn, email, &key)?;
    diesel::delete(login_failures::table.filter(lower(login_failures::email).eq(email)))
        .execute(conn)?;
    let (cancelled, cleaned) = purge_mail(conn, email, &mark)?;
    erased.emails_cancelled = cancelled;
    erased.emails_cleaned = cleaned;
    erased.log_entries_cleaned = purge_log(conn, email, &mark)?;

    let done = match mode {
        EraseMode::Anonymise => format!("anonymised {} comments", erased.comments),
        EraseMode::Delete => format!(
            "deleted {} comments ({} kept as placeholders for their replies)",
            erased.comments, erased.placeholders
        ),
    };
    crate::audit::log(
        conn,
        None,
        "erase",
        &format!(
            "erased the address with key {key}: {done}; {} notification subscriptions removed; \
             {} unsent emails cancelled, {} sent emails and {} log entries cleaned; {} blocks kept \
             as the key",
            erased.subscriptions,
            erased.emails_cancelled,
            erased.emails_cleaned,
            erased.log_entries_cleaned,
            erased.blocks_kept_as_key
        ),
        actor,
        now,
    )?;
    Ok(erased)
}

/// How many earlier erasures of `email` the log records (it names them by keyed hash only).
pub fn earlier_erasures(conn: &mut DbConn, signer: &Signer, email: &str) -> Result<i64, DbError> {
    let key = signer.address_key(email);
    Ok(moderation_log::table
        .filter(moderation_log::action.eq("erase"))
        .filter(moderation_log::detail.like(format!("%{key}%")))
        .count()
        .get_result(conn)?)
}

/// How many emails in the outbox are addressed to `email`.
pub fn emails_to(conn: &mut DbConn, email: &str) -> Result<i64, DbError> {
    Ok(outbox::table
        .filter(lower(outbox::to_address).eq(email))
        .count()
        .get_result(conn)?)
}

/// The forms in which `email` appears in stored text: as typed, and HTML-escaped in the HTML
/// part of emails (an address may hold `&` or `'`).
fn written_forms(email: &str) -> Vec<String> {
    let mut forms = vec![email.to_string()];
    for (amp, apos) in [("&#38;", "&#39;"), ("&amp;", "&#x27;"), ("&amp;", "&apos;")] {
        let escaped = email.replace('&', amp).replace('\'', apos);
        if !forms.contains(&escaped) {
            forms.push(escaped);
        }
    }
    forms
}

/// `text` with every form of `email` (any case) replaced by `mark`.
fn redact(text: &str, email: &str, mark: &str) -> String {
    let mut out = text.to_string();
    for form in written_forms(email) {
        let Ok(pattern) = regex::RegexBuilder::new(&regex::escape(&form))
            .case_insensitive(true)
            .build()
        else {
            continue;
        };
        out = pattern.replace_all(&out, mark).into_owned();
    }
    out
}

/// A LIKE pattern that finds `text` anywhere in a lower-cased column.
fn contains_pattern(text: &str) -> String {
    let escaped = text
        .to_lowercase()
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    format!("%{escaped}%")
}

/// Unsent mail to or about `email` is cancelled (deleted), sent mail to it is deleted, and
/// sent mail about it (moderators' notices) keeps its text with the address replaced.
/// Returns (cancelled, cleaned).
fn purge_mail(conn: &mut DbConn, email: &str, mark: &str) -> Result<(usize, usize), DbError> {
    let mut query = outbox::table
        .filter(lower(outbox::to_address).eq(email))
        .select((outbox::id, outbox::status, outbox::to_address))
        .into_boxed();
    for form in written_forms(email) {
        let pattern = contains_pattern(&form);
        query = query
            .or_filter(lower(outbox::subject).like(pattern.clone()).escape('\\'))
            .or_filter(lower(outbox::body_text).like(pattern.clone()).escape('\\'))
            .or_filter(lower(outbox::body_html).like(pattern.clone()).escape('\\'))
            .or_filter(lower(outbox::to_name).like(pattern).escape('\\'));
    }
    let rows: Vec<(i32, String, String)> = query.load(conn)?;
    let (mut cancelled, mut cleaned) = (0, 0);
    for (id, status, to) in rows {
        if status != "sent" || to.to_lowercase() == email {
            // A message being handed over right now may still leave; its row is gone, and the
            // worker's later write about it changes nothing.
            diesel::delete(outbox::table.find(id)).execute(conn)?;
            if status == "sent" {
                cleaned += 1;
            } else {
                cancelled += 1;
            }
            continue;
        }
        let (to_name, subject, text, html): (String, String, String, String) = outbox::table
            .find(id)
            .select((
                outbox::to_name,
                outbox::subject,
                outbox::body_text,
                outbox::body_html,
            ))
            .first(conn)?;
        diesel::update(outbox::table.find(id))
            .set((
                outbox::to_name.eq(redact(&to_name, email, mark)),
                outbox::subject.eq(redact(&subject, email, mark)),
                outbox::body_text.eq(redact(&text, email, mark)),
                outbox::body_html.eq(redact(&html, email, mark)),
            ))
            .execute(conn)?;
        cleaned += 1;
    }
    Ok((cancelled, cleaned))
}

/// The address in the moderation log's details (a block on it, say) is replaced; returns how
/// many entries changed.
fn purge_log(conn: &mut DbConn, email: &str, mark: &str) -> Result<usize, DbError> {
    let mut query = moderation_log::table
        .select((moderation_log::id, moderation_log::detail))
        .into_boxed();
    for form in written_forms(email) {
        query = query.or_filter(
            lower(moderation_log::detail)
                .like(contains_pattern(&form))
                .escape('\\'),
        );
    }
    let rows: Vec<(i32, String)> = query.load(conn)?;
    for (id, detail) in &rows {
        diesel::update(moderation_log::table.find(id))
            .set(moderation_log::detail.eq(redact(detail, email, mark)))
            .execute(conn)?;
    }
    Ok(rows.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_is_replaced_in_any_case_and_escaped_form() {
        let text = "Email: O'Neil&Co@Example.com <o&#39;neil&#38;co@example.com>";
        let out = redact(text, "o'neil&co@example.com", "[x]");
        assert_eq!(out, "Email: [x] <[x]>");
        assert_eq!(
            contains_pattern("a_b%c@example.com"),
            "%a\\_b\\%c@example.com%"
        );
        assert_eq!(EraseMode::parse(None), Some(EraseMode::Anonymise));
        assert_eq!(EraseMode::parse(Some("delete")), Some(EraseMode::Delete));
        assert_eq!(EraseMode::parse(Some("burn")), None);
    }
}
