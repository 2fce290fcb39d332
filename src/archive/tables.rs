//! One record type per archived table: the row as stored, every column, read with diesel and
//! written back with the same ids. The README's table of record types is this file.
//!
//! Not archived: sessions, login failures, password reset and "my comments" requests, admin
//! notices and import runs (short-lived or per-server); the search index and the dashboard's
//! counts (rebuilt from posts and comments on restore); sent mail.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::{Deserialize, Serialize};

use crate::db::schema::{
    blocks, comments, import_items, media, media_chunks, media_variants, moderation_log,
    notify_addresses, old_addresses, outbox, post_slugs, post_tags, posts, settings, tags,
    used_tokens, users,
};

/// A `settings` row: discussion settings, site identity, privacy texts. The secret key only
/// with `--include-secrets`; set-up links and the last backup time never.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Queryable, Selectable, Insertable)]
#[diesel(table_name = settings)]
pub struct Setting {
    pub name: String,
    pub value: String,
}

/// A staff account. `password_hash` is empty unless the archive was made with
/// `--include-secrets`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Queryable, Selectable, Insertable)]
#[diesel(table_name = users)]
pub struct User {
    pub id: i32,
    pub email: String,
    pub display_name: String,
    pub slug: String,
    pub bio: String,
    pub role: String,
    #[serde(default)]
    pub password_hash: String,
    pub disabled: bool,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub avatar_seed: Option<i32>,
}

/// A post or a page (`kind`), with its Markdown source and the HTML rendered from it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Queryable, Selectable, Insertable)]
#[diesel(table_name = posts)]
pub struct Post {
    pub id: i32,
    pub slug: String,
    pub title: String,
    pub body_markdown: String,
    pub body_html: String,
    pub excerpt: String,
    pub author_id: i32,
    pub kind: String,
    pub status: String,
    pub status_before_trash: Option<String>,
    pub published_at: NaiveDateTime,
    pub comments_open: bool,
    pub approved_comment_count: i32,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub thread_version: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Queryable, Selectable, Insertable)]
#[diesel(table_name = tags)]
pub struct Tag {
    pub id: i32,
    pub name: String,
    pub slug: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Queryable, Selectable, Insertable)]
#[diesel(table_name = post_tags)]
pub struct PostTag {
    pub post_id: i32,
    pub tag_id: i32,
}

/// An old slug of a post, answering 301 to its current address.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Queryable, Selectable, Insertable)]
#[diesel(table_name = post_slugs)]
pub struct Redirect {
    pub old_slug: String,
    pub post_id: i32,
}

/// An address of an imported site (WordPress `/?p=ID`, …) answering 301.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Queryable, Selectable, Insertable)]
#[diesel(table_name = old_addresses)]
pub struct OldAddress {
    pub address: String,
    pub post_id: Option<i32>,
    pub target: String,
}

/// A comment with every field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Queryable, Selectable, Insertable)]
#[diesel(table_name = comments)]
pub struct Comment {
    pub id: i32,
    pub post_id: i32,
    pub parent_id: Option<i32>,
    pub user_id: Option<i32>,
    pub author_name: String,
    pub author_email: String,
    pub author_url: Option<String>,
    pub body: String,
    pub body_html: String,
    pub status: String,
    pub status_before: Option<String>,
    pub held_reason: Option<String>,
    pub ip: Option<String>,
    pub ip_network: Option<String>,
    pub user_agent: String,
    pub avatar_seed: i32,
    pub notify: bool,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub deleted_at: Option<NaiveDateTime>,
    pub published_notified_at: Option<NaiveDateTime>,
    pub format: String,
    pub edited_at: Option<NaiveDateTime>,
    pub previous_body: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Queryable, Selectable, Insertable)]
#[diesel(table_name = blocks)]
pub struct Block {
    pub id: i32,
    pub kind: String,
    pub value: String,
    pub expires_at: Option<NaiveDateTime>,
    pub created_by: Option<i32>,
    pub created_at: NaiveDateTime,
}

/// A commenter's notification address: opt-in sent, confirmed, unsubscribed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Queryable, Selectable, Insertable)]
#[diesel(table_name = notify_addresses)]
pub struct Subscription {
    pub email: String,
    pub confirmation_sent_at: Option<NaiveDateTime>,
    pub confirmed_at: Option<NaiveDateTime>,
    pub unsubscribed_at: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
}

/// An outbox message not sent yet (queued, being sent, failed or held). Restored as `held`
/// (failed ones stay failed) until an admin releases it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Queryable, Selectable, Insertable)]
#[diesel(table_name = outbox)]
pub struct Mail {
    pub id: i32,
    pub message_id: String,
    pub kind: String,
    pub to_name: String,
    pub to_address: String,
    pub subject: String,
    pub body_text: String,
    pub body_html: String,
    pub list_unsubscribe: Option<String>,
    pub status: String,
    pub attempts: i32,
    pub next_attempt_at: NaiveDateTime,
    pub locked_until: Option<NaiveDateTime>,
    pub first_deferred_at: Option<NaiveDateTime>,
    pub last_error: Option<String>,
    pub created_at: NaiveDateTime,
    pub sent_at: Option<NaiveDateTime>,
    pub lease_token: Option<String>,
}

/// A line of the moderation log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Queryable, Selectable, Insertable)]
#[diesel(table_name = moderation_log)]
pub struct LogEntry {
    pub id: i32,
    pub comment_id: Option<i32>,
    pub user_id: Option<i32>,
    pub action: String,
    pub via: String,
    pub detail: String,
    pub ip: Option<String>,
    pub created_at: NaiveDateTime,
}

/// A single-use link that was used (its hash), so it stays used after a restore.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Queryable, Selectable, Insertable)]
#[diesel(table_name = used_tokens)]
pub struct UsedToken {
    pub token_hash: String,
    pub used_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
}

/// What an earlier import made of a source item, so importing it again changes nothing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Queryable, Selectable, Insertable)]
#[diesel(table_name = import_items)]
pub struct ImportItem {
    pub source: String,
    pub kind: String,
    pub source_id: String,
    pub target_id: i32,
}

/// A picture of the media library (format version 2): the original's hash names it in every URL.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Queryable, Selectable, Insertable)]
#[diesel(table_name = media)]
pub struct Media {
    pub id: i32,
    pub sha256: String,
    pub upload_sha256: String,
    pub format: String,
    pub file_name: String,
    pub alt: String,
    pub width: i32,
    pub height: i32,
    pub byte_size: i64,
    pub uploaded_by: Option<i32>,
    pub created_at: NaiveDateTime,
}

/// The original or a narrower copy of a picture.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Queryable, Selectable, Insertable)]
#[diesel(table_name = media_variants)]
pub struct MediaVariant {
    pub id: i32,
    pub media_id: i32,
    pub width: i32,
    pub height: i32,
    pub format: String,
    pub byte_size: i64,
}

/// One piece (at most 256 KiB) of a variant's bytes, base64 in the archive.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Queryable, Selectable, Insertable)]
#[diesel(table_name = media_chunks)]
pub struct MediaChunk {
    pub variant_id: i32,
    pub seq: i32,
    #[serde(with = "base64_bytes")]
    pub data: Vec<u8>,
}

mod base64_bytes {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        STANDARD
            .decode(text.as_bytes())
            .map_err(serde::de::Error::custom)
    }
}
