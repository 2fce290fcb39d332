//! `lectern post publish FILE.md…`: Markdown files with front matter, created or updated by slug.

use std::path::Path;

use chrono::{NaiveDate, NaiveDateTime, TimeZone};
use serde::Deserialize;

use super::{NewPost, PostKind, PostStatus, queries};
use crate::db::ids::UserId;
use crate::db::{Db, DbConn, DbError};
use crate::render;
use crate::users;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FrontMatter {
    title: String,
    slug: Option<String>,
    author: Option<String>,
    date: Option<serde_yaml_ng::Value>,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    draft: bool,
    comments: Option<bool>,
    excerpt: Option<String>,
    kind: Option<String>,
}

/// A file that parsed and passed every check, ready to store.
#[derive(Debug)]
pub struct PostFile {
    pub title: String,
    pub slug: String,
    pub author_email: Option<String>,
    pub date: Option<NaiveDateTime>,
    pub tags: Vec<String>,
    pub draft: bool,
    pub comments_open: Option<bool>,
    pub excerpt: Option<String>,
    pub kind: PostKind,
    pub body: String,
}

/// Splits `---` front matter from the Markdown body and checks every field.
pub fn parse_post_file(text: &str, tz: chrono_tz::Tz) -> Result<PostFile, String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let text = crate::text::normalize_newlines(text);
    let rest = text
        .strip_prefix("---\n")
        .ok_or("the file must start with front matter between --- lines")?;
    let (front, body) = match rest.find("\n---\n") {
        Some(end) => (&rest[..end], &rest[end + 5..]),
        None => match rest.strip_suffix("\n---") {
            Some(front) => (front, ""),
            None => return Err("the front matter has no closing --- line".into()),
        },
    };
    let fm: FrontMatter =
        serde_yaml_ng::from_str(front).map_err(|e| format!("front matter: {e}"))?;

    let title = fm.title.trim().to_string();
    if title.is_empty() || title.chars().count() > 300 {
        return Err("title: must be 1 to 300 characters".into());
    }
    let slug = match fm.slug {
        Some(slug) if crate::text::is_slug(&slug) => slug,
        Some(slug) => {
            return Err(format!(
                "slug: {slug:?} must be lower-case letters, digits and hyphens"
            ));
        }
        None => match crate::text::slugify(&title) {
            s if s.is_empty() => return Err("slug: cannot be made from the title; set one".into()),
            s => s,
        },
    };
    let date = fm.date.map(|v| parse_date(&v, tz)).transpose()?;
    let kind = match fm.kind.as_deref() {
        None | Some("post") => PostKind::Post,
        Some("page") => PostKind::Page,
        Some(other) => return Err(format!("kind: {other:?} must be post or page")),
    };
    Ok(PostFile {
        title,
        slug,
        author_email: fm.author.map(|a| a.trim().to_lowercase()),
        date,
        tags: fm.tags,
        draft: fm.draft,
        comments_open: fm.comments,
        excerpt: fm.excerpt,
        kind,
        body: body.to_string(),
    })
}

/// RFC 3339, or a YYYY-MM-DD date (midnight in the site's time zone); stored in UTC.
fn parse_date(value: &serde_yaml_ng::Value, tz: chrono_tz::Tz) -> Result<NaiveDateTime, String> {
    let text = match value {
        serde_yaml_ng::Value::String(s) => s.trim().to_string(),
        other => return Err(format!("date: {other:?} is not a date")),
    };
    if let Ok(dt) = chrono::DateTime::parse_from_rfc3339(&text) {
        return Ok(dt.naive_utc());
    }
    if let Ok(day) = NaiveDate::parse_from_str(&text, "%Y-%m-%d") {
        let local = day.and_hms_opt(0, 0, 0).unwrap_or_default();
        return tz
            .from_local_datetime(&local)
            .earliest()
            .map(|dt| dt.naive_utc())
            .ok_or_else(|| format!("date: {text} does not exist in {tz}"));
    }
    Err(format!(
        "date: {text:?} must be RFC 3339 (2026-01-06T10:47:00Z) or YYYY-MM-DD"
    ))
}

#[derive(Debug)]
pub struct Published {
    pub slug: String,
    pub created: bool,
    pub status: PostStatus,
}

/// Stores one parsed file: inserts, or updates the post with the same slug.
pub fn store(conn: &mut DbConn, file: &PostFile) -> Result<Published, StoreError> {
    let now = crate::db::now();
    let existing = queries::find_by_slug(conn, &file.slug)?;
    let author_id = match &file.author_email {
        Some(email) => {
            users::find_by_email(conn, email)?
                .ok_or_else(|| {
                    StoreError::Invalid(format!("author: no user has the email {email}"))
                })?
                .id
        }
        None => match &existing {
            Some(post) => post.author_id,
            None => only_user(conn)?,
        },
    };
    let published_at = file
        .date
        .or(existing.as_ref().map(|p| p.published_at))
        .unwrap_or(now);
    let status = if file.draft {
        PostStatus::Draft
    } else if published_at > now {
        PostStatus::Scheduled
    } else {
        PostStatus::Published
    };
    let body_html = crate::media::render_post(conn, &file.body)?;
    let excerpt = match &file.excerpt {
        Some(e) => e.trim().to_string(),
        None => render::excerpt(&file.body, 280),
    };
    let comments_open = file
        .comments_open
        .or(existing.as_ref().map(|p| p.comments_open))
        .unwrap_or(true);
    let new_post = NewPost {
        slug: &file.slug,
        title: &file.title,
        body_markdown: &file.body,
        body_html: body_html.as_str(),
        excerpt: &excerpt,
        author_id,
        kind: file.kind,
        status,
        published_at,
        comments_open,
        updated_at: now,
    };
    let post = match &existing {
        Some(post) => queries::update(conn, post.id, &new_post)?,
        None => queries::insert(conn, &new_post)?,
    };
    queries::set_tags(conn, post.id, &file.tags)?;
    Ok(Published {
        slug: post.slug,
        created: existing.is_none(),
        status,
    })
}

fn only_user(conn: &mut DbConn) -> Result<UserId, StoreError> {
    use crate::db::schema::users;
    use diesel::prelude::*;
    let ids: Vec<UserId> = users::table
        .select(users::id)
        .limit(2)
        .load(conn)
        .map_err(DbError::from)?;
    match ids.as_slice() {
        [id] => Ok(*id),
        [] => Err(StoreError::Invalid(
            "author: no users exist yet; add one with `lectern user add` first".into(),
        )),
        _ => Err(StoreError::Invalid(
            "author: required when the site has several users (a user's email)".into(),
        )),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Db(#[from] DbError),
}

/// Reads and checks every file first, then stores them all in one transaction: one bad file
/// changes nothing.
pub fn publish_files(
    db: &Db,
    paths: &[impl AsRef<Path>],
    tz: chrono_tz::Tz,
) -> anyhow::Result<Vec<Published>> {
    let mut files = Vec::new();
    for path in paths {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        let file =
            parse_post_file(&text, tz).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        files.push((path.display().to_string(), file));
    }
    db.write_blocking(|conn| {
        files
            .iter()
            .map(|(name, file)| store(conn, file).map_err(|e| anyhow::anyhow!("{name}: {e}")))
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn front_matter_is_parsed_and_checked() {
        let file = parse_post_file(
            "---\ntitle: Hello, World\ntags: [rust, blogs]\ndate: 2024-01-05\n---\nBody *here*\n",
            chrono_tz::UTC,
        )
        .unwrap();
        assert_eq!(file.slug, "hello-world");
        assert_eq!(file.tags, vec!["rust", "blogs"]);
        assert_eq!(file.date.unwrap().to_string(), "2024-01-05 00:00:00");
        assert_eq!(file.body, "Body *here*\n");

        assert!(parse_post_file("no front matter", chrono_tz::UTC).is_err());
        assert!(parse_post_file("---\ntitle: x\nwat: 1\n---\n", chrono_tz::UTC).is_err());
        assert!(parse_post_file("---\ntitle: x\ndate: tomorrow\n---\n", chrono_tz::UTC).is_err());
        assert!(parse_post_file("---\ntitle: x\nslug: Not A Slug\n---\n", chrono_tz::UTC).is_err());
    }
}
