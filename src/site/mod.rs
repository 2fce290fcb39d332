//! Site-wide state kept in the database: discussion settings and the generated secret key.

pub mod identity;
pub mod welcome;

use std::collections::HashMap;

use diesel::prelude::*;

use crate::db::schema::settings;
use crate::db::{DbConn, DbError};

/// Which comments come first on a page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CommentOrder {
    OldestFirst,
    NewestFirst,
}

/// The discussion settings an admin controls; each has WordPress's default unless noted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscussionSettings {
    /// "Comment must be manually approved".
    pub require_approval: bool,
    /// "Comment author must have a previously approved comment" inverted: trust them.
    pub trust_returning_commenters: bool,
    /// Hold a comment with this many links or more.
    pub link_limit: u32,
    pub moderation_keywords: Vec<String>,
    pub disallowed_keywords: Vec<String>,
    /// Close comments on posts older than this many days.
    pub close_after_days: Option<u32>,
    pub thread_depth: u32,
    /// Comments per page when paging is on.
    pub comments_per_page: Option<u32>,
    pub comment_order: CommentOrder,
    /// Flood limits: at most one comment per this many seconds, and this many per hour.
    pub flood_interval_secs: u32,
    pub flood_per_hour: u32,
    /// Spam and trash older than this are purged; IP addresses older than this are dropped.
    pub retention_days: u32,
    /// For how many minutes after posting a commenter's own browser may edit or delete the
    /// comment; 0 turns this off.
    pub edit_window_minutes: u32,
}

impl Default for DiscussionSettings {
    fn default() -> Self {
        DiscussionSettings {
            require_approval: false,
            trust_returning_commenters: true,
            link_limit: 2,
            moderation_keywords: Vec::new(),
            disallowed_keywords: Vec::new(),
            close_after_days: None,
            thread_depth: 5,
            comments_per_page: None,
            comment_order: CommentOrder::OldestFirst,
            flood_interval_secs: 15,
            flood_per_hour: 10,
            retention_days: 30,
            edit_window_minutes: 15,
        }
    }
}

fn keyword_list(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .map(str::to_string)
        .collect()
}

impl DiscussionSettings {
    /// Settings from stored rows; a missing or unreadable row keeps its default.
    fn from_rows(rows: &HashMap<String, String>) -> DiscussionSettings {
        let d = DiscussionSettings::default();
        let flag = |key: &str, default: bool| rows.get(key).map(|v| v == "true").unwrap_or(default);
        let number = |key: &str, default: u32| {
            rows.get(key)
                .and_then(|v| v.parse().ok())
                .unwrap_or(default)
        };
        let optional = |key: &str, default: Option<u32>| match rows.get(key) {
            Some(v) if v.is_empty() => None,
            Some(v) => v.parse().ok().or(default),
            None => default,
        };
        DiscussionSettings {
            require_approval: flag("require_approval", d.require_approval),
            trust_returning_commenters: flag(
                "trust_returning_commenters",
                d.trust_returning_commenters,
            ),
            link_limit: number("link_limit", d.link_limit),
            moderation_keywords: rows
                .get("moderation_keywords")
                .map(|v| keyword_list(v))
                .unwrap_or(d.moderation_keywords),
            disallowed_keywords: rows
                .get("disallowed_keywords")
                .map(|v| keyword_list(v))
                .unwrap_or(d.disallowed_keywords),
            close_after_days: optional("close_after_days", d.close_after_days),
            thread_depth: number("thread_depth", d.thread_depth).clamp(1, 10),
            comments_per_page: optional("comments_per_page", d.comments_per_page),
            comment_order: match rows.get("comment_order").map(String::as_str) {
                Some("newest") => CommentOrder::NewestFirst,
                _ => CommentOrder::OldestFirst,
            },
            flood_interval_secs: number("flood_interval_secs", d.flood_interval_secs),
            flood_per_hour: number("flood_per_hour", d.flood_per_hour),
            retention_days: number("retention_days", d.retention_days).max(1),
            edit_window_minutes: number("edit_window_minutes", d.edit_window_minutes).min(1440),
        }
    }

    pub fn to_rows(&self) -> Vec<(&'static str, String)> {
        let opt = |v: Option<u32>| v.map(|n| n.to_string()).unwrap_or_default();
        vec![
            ("require_approval", self.require_approval.to_string()),
            (
                "trust_returning_commenters",
                self.trust_returning_commenters.to_string(),
            ),
            ("link_limit", self.link_limit.to_string()),
            ("moderation_keywords", self.moderation_keywords.join("\n")),
            ("disallowed_keywords", self.disallowed_keywords.join("\n")),
            ("close_after_days", opt(self.close_after_days)),
            ("thread_depth", self.thread_depth.to_string()),
            ("comments_per_page", opt(self.comments_per_page)),
            (
                "comment_order",
                match self.comment_order {
                    CommentOrder::OldestFirst => "oldest",
                    CommentOrder::NewestFirst => "newest",
                }
                .to_string(),
            ),
            ("flood_interval_secs", self.flood_interval_secs.to_string()),
            ("flood_per_hour", self.flood_per_hour.to_string()),
            ("retention_days", self.retention_days.to_string()),
            ("edit_window_minutes", self.edit_window_minutes.to_string()),
        ]
    }

    pub fn load(conn: &mut DbConn) -> Result<DiscussionSettings, DbError> {
        let rows: Vec<(String, String)> = settings::table
            .select((settings::name, settings::value))
            .load(conn)?;
        Ok(DiscussionSettings::from_rows(&rows.into_iter().collect()))
    }

    pub fn save(&self, conn: &mut DbConn) -> Result<(), DbError> {
        for (name, value) in self.to_rows() {
            put(conn, name, &value)?;
        }
        Ok(())
    }
}

/// The admin's own words on the privacy page (Markdown), printed above and below the part
/// lectern writes from its settings. Edited at `/admin/privacy`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PrivacyText {
    pub above: String,
    pub below: String,
}

impl PrivacyText {
    pub const MAX_CHARS: usize = 20_000;

    pub fn load(conn: &mut DbConn) -> Result<PrivacyText, DbError> {
        Ok(PrivacyText {
            above: get(conn, "privacy_above")?.unwrap_or_default(),
            below: get(conn, "privacy_below")?.unwrap_or_default(),
        })
    }

    pub fn save(&self, conn: &mut DbConn) -> Result<(), DbError> {
        put(conn, "privacy_above", &self.above)?;
        put(conn, "privacy_below", &self.below)
    }
}

pub fn get(conn: &mut DbConn, name: &str) -> Result<Option<String>, DbError> {
    Ok(settings::table
        .find(name)
        .select(settings::value)
        .first(conn)
        .optional()?)
}

/// Inserts or replaces one setting (no ON CONFLICT: MultiConnection cannot express it).
pub fn put(conn: &mut DbConn, name: &str, value: &str) -> Result<(), DbError> {
    let updated = diesel::update(settings::table.find(name))
        .set(settings::value.eq(value))
        .execute(conn)?;
    if updated == 0 {
        diesel::insert_into(settings::table)
            .values((settings::name.eq(name), settings::value.eq(value)))
            .execute(conn)?;
    }
    Ok(())
}

pub fn delete(conn: &mut DbConn, name: &str) -> Result<(), DbError> {
    diesel::delete(settings::table.find(name)).execute(conn)?;
    Ok(())
}

/// The secret that signs form tokens, cookies and email links: `LECTERN_SECRET_KEY` when set,
/// otherwise generated on first start and kept in the database so that restarts and other app
/// servers on the same database agree.
pub fn secret_key(conn: &mut DbConn, configured: Option<&[u8]>) -> Result<Vec<u8>, DbError> {
    if let Some(key) = configured {
        return Ok(key.to_vec());
    }
    crate::db::startup_lock(conn)?;
    if let Some(stored) = get(conn, "secret_key")? {
        return Ok(stored.into_bytes());
    }
    let generated = crate::crypto::random_token(32);
    put(conn, "secret_key", &generated)?;
    Ok(generated.into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_survive_a_round_trip_through_rows() {
        let settings = DiscussionSettings {
            require_approval: true,
            moderation_keywords: vec!["casino".into(), "/v[i1]agra/".into()],
            close_after_days: Some(14),
            comments_per_page: Some(20),
            comment_order: CommentOrder::NewestFirst,
            ..DiscussionSettings::default()
        };
        let rows = settings
            .to_rows()
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        assert_eq!(DiscussionSettings::from_rows(&rows), settings);
        assert_eq!(
            DiscussionSettings::from_rows(&HashMap::new()),
            DiscussionSettings::default()
        );
    }
}
