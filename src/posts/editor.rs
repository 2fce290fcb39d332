//! The admin's post editor: the form as typed, its checks, and saving, trashing and restoring
//! a post, each in one transaction with its line in the moderation log.
//!
//! Checks that need the database (the author, a free address, the date against the clock)
//! run inside the write transaction that saves, so two tabs cannot race past them, and a
//! refused form changes nothing.

use chrono::{NaiveDateTime, TimeZone};
use chrono_tz::Tz;

use super::{NewPost, Post, PostKind, PostStatus, Tag, queries};
use crate::actions::Actor;
use crate::db::ids::{PostId, UserId};
use crate::db::{DbConn, DbError};
use crate::http::forms::{FieldErrors, FormFields};
use crate::render;

/// What a form field is wrong about, by field name.
const MAX_TITLE_CHARS: usize = 300;
const MAX_EXCERPT_CHARS: usize = 1000;
const MAX_TAG_CHARS: usize = 100;
/// An excerpt made from the body is cut at about this length.
pub const EXCERPT_CHARS: usize = 280;
/// What a `datetime-local` input sends (seconds only when the browser shows them).
const LOCAL_FORMATS: [&str; 2] = ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"];

/// The editor's fields as typed, so a refused form comes back exactly as it was sent.
#[derive(Debug, Clone, Default)]
pub struct PostForm {
    pub title: String,
    pub slug: String,
    pub body: String,
    pub excerpt: String,
    pub tags: String,
    pub author: String,
    pub kind: String,
    pub status: String,
    pub publish_at: String,
    pub comments_open: bool,
}

impl PostForm {
    /// An empty editor: a draft post by `author_id`, comments open.
    pub fn blank(author_id: UserId) -> PostForm {
        PostForm {
            author: author_id.to_string(),
            kind: PostKind::Post.as_str().into(),
            status: PostStatus::Draft.as_str().into(),
            comments_open: true,
            ..PostForm::default()
        }
    }

    /// The editor filled from a stored post.
    pub fn from_post(post: &Post, tags: &[Tag], tz: Tz, now: NaiveDateTime) -> PostForm {
        let status = match post.status() {
            // A trashed post is shown with the status it will get back.
            PostStatus::Trash => post.status_before_trash.unwrap_or(PostStatus::Draft),
            other => other,
        };
        // A draft's stored date is only a placeholder (its creation time) unless someone set a
        // future one; shown, it would backdate the post when it is finally published.
        let show_date = status != PostStatus::Draft || post.published_at > now;
        PostForm {
            title: post.title.clone(),
            slug: post.slug.clone(),
            body: post.body_markdown.clone(),
            // An excerpt that was made from the text is shown empty, so that it follows the
            // text when that is edited instead of freezing as if typed.
            excerpt: if post.excerpt == render::excerpt(&post.body_markdown, EXCERPT_CHARS) {
                String::new()
            } else {
                post.excerpt.clone()
            },
            tags: tags
                .iter()
                .map(|t| t.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            author: post.author_id.to_string(),
            kind: post.kind.to_string(),
            status: status.to_string(),
            publish_at: if show_date {
                local_input(post.published_at, tz)
            } else {
                String::new()
            },
            comments_open: post.comments_open,
        }
    }

    pub fn from_fields(form: &FormFields) -> PostForm {
        let text = |name: &str| crate::text::normalize_newlines(form.get(name).unwrap_or(""));
        // An unticked checkbox is simply absent from the form; a script may also say "0".
        let ticked = |name: &str| {
            form.get(name)
                .is_some_and(|v| !matches!(v.trim(), "" | "0" | "false" | "off"))
        };
        PostForm {
            title: text("title"),
            slug: text("slug"),
            body: text("body"),
            excerpt: text("excerpt"),
            tags: text("tags"),
            author: text("author"),
            kind: text("kind"),
            status: text("status"),
            publish_at: text("publish_at"),
            comments_open: ticked("comments_open"),
        }
    }

    /// Every check that needs no database, or every field's problem.
    pub fn parse(&self, tz: Tz) -> Result<ValidPost, FieldErrors> {
        let mut errors = FieldErrors::new();
        let title = self.title.trim().to_string();
        if title.is_empty() {
            errors.push(("title", "Enter a title.".into()));
        } else if title.chars().count() > MAX_TITLE_CHARS || title.chars().any(char::is_control) {
            errors.push((
                "title",
                format!("The title must be at most {MAX_TITLE_CHARS} characters on one line."),
            ));
        }
        let slug = self.slug.trim();
        let slug = if slug.is_empty() {
            match crate::text::slugify(&title) {
                s if s.is_empty() && !title.is_empty() => {
                    errors.push((
                        "slug",
                        "An address cannot be made from this title; enter one.".into(),
                    ));
                    SlugChoice::FromTitle(String::new())
                }
                s => SlugChoice::FromTitle(s),
            }
        } else if crate::text::is_slug(slug) {
            SlugChoice::Given(slug.to_string())
        } else {
            errors.push((
                "slug",
                "Use lower-case letters, digits and single hyphens (at most 80), such as my-first-post."
                    .into(),
            ));
            SlugChoice::Given(slug.to_string())
        };
        let excerpt = self.excerpt.trim();
        if excerpt.chars().count() > MAX_EXCERPT_CHARS {
            errors.push((
                "excerpt",
                format!("The excerpt must be at most {MAX_EXCERPT_CHARS} characters."),
            ));
        }
        let tags = parse_tags(&self.tags).map_err(|e| errors.push(("tags", e)));
        let author_id = self
            .author
            .trim()
            .parse::<i32>()
            .map(UserId)
            .map_err(|_| errors.push(("author", "Choose an author.".into())));
        let kind = PostKind::parse(self.kind.trim())
            .ok_or_else(|| errors.push(("kind", "Choose post or page.".into())));
        let status = match PostStatus::parse(self.status.trim()) {
            Some(PostStatus::Trash) | None => {
                errors.push(("status", "Choose draft, published or scheduled.".into()));
                Err(())
            }
            Some(status) => Ok(status),
        };
        let publish_at =
            parse_local(&self.publish_at, tz).map_err(|e| errors.push(("publish_at", e)));
        match (tags, author_id, kind, status, publish_at) {
            (Ok(tags), Ok(author_id), Ok(kind), Ok(status), Ok(publish_at))
                if errors.is_empty() =>
            {
                Ok(ValidPost {
                    title,
                    slug,
                    body: self.body.clone(),
                    excerpt: Some(excerpt.to_string()).filter(|e| !e.is_empty()),
                    tags,
                    author_id,
                    kind,
                    status,
                    publish_at,
                    comments_open: self.comments_open,
                })
            }
            _ => Err(errors),
        }
    }
}

/// The address a post asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SlugChoice {
    /// Typed by the admin: it must be free.
    Given(String),
    /// Made from the title: `-2`, `-3`, … are added until it is free.
    FromTitle(String),
}

impl SlugChoice {
    pub fn as_str(&self) -> &str {
        match self {
            SlugChoice::Given(s) | SlugChoice::FromTitle(s) => s,
        }
    }
}

/// A form that passed every check that needs no database.
#[derive(Debug, Clone)]
pub struct ValidPost {
    pub title: String,
    pub slug: SlugChoice,
    pub body: String,
    pub excerpt: Option<String>,
    pub tags: Vec<String>,
    pub author_id: UserId,
    pub kind: PostKind,
    /// The status asked for; a published post with a future date becomes scheduled.
    pub status: PostStatus,
    /// In UTC.
    pub publish_at: Option<NaiveDateTime>,
    pub comments_open: bool,
}

impl ValidPost {
    /// The excerpt as stored: the one typed, or one made from the body.
    pub fn excerpt_or_derived(&self) -> String {
        self.excerpt
            .clone()
            .unwrap_or_else(|| render::excerpt(&self.body, EXCERPT_CHARS))
    }

    /// The status and publication time to store, judged against `now`. `existing` keeps an
    /// unchanged date exact (the form shows whole minutes) and a live post's date when the
    /// field was left empty.
    pub fn schedule(
        &self,
        existing: Option<&Post>,
        now: NaiveDateTime,
        tz: Tz,
    ) -> Result<(PostStatus, NaiveDateTime), String> {
        let typed = self.publish_at.map(|at| match existing {
            Some(post) if parse_local(&local_input(post.published_at, tz), tz) == Ok(Some(at)) => {
                post.published_at
            }
            _ => at,
        });
        let was_live = existing.is_some_and(|p| p.status() == PostStatus::Published);
        match self.status {
            PostStatus::Scheduled => match typed {
                Some(at) if at > now => Ok((PostStatus::Scheduled, at)),
                _ => Err("A scheduled post needs a publish date in the future.".into()),
            },
            PostStatus::Published => {
                let at = typed
                    .or(existing.filter(|_| was_live).map(|p| p.published_at))
                    .unwrap_or(now);
                if at > now {
                    Ok((PostStatus::Scheduled, at))
                } else {
                    Ok((PostStatus::Published, at))
                }
            }
            _ => Ok((PostStatus::Draft, typed.unwrap_or(now))),
        }
    }
}

/// Comma-separated tag names: trimmed, blanks dropped, each with letters or digits to make
/// its address from.
fn parse_tags(text: &str) -> Result<Vec<String>, String> {
    let mut tags: Vec<String> = Vec::new();
    for name in text.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        if name.chars().count() > MAX_TAG_CHARS || name.chars().any(char::is_control) {
            return Err(format!("A tag must be at most {MAX_TAG_CHARS} characters."));
        }
        if crate::text::slugify(name).is_empty() {
            return Err(format!(
                "The tag “{name}” needs a Latin letter or a digit to make its address from."
            ));
        }
        if !tags
            .iter()
            .any(|t| crate::text::slugify(t) == crate::text::slugify(name))
        {
            tags.push(name.to_string());
        }
    }
    Ok(tags)
}

/// A `datetime-local` value in the site's time zone, as UTC; empty is `None`.
pub fn parse_local(text: &str, tz: Tz) -> Result<Option<NaiveDateTime>, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    let local = LOCAL_FORMATS
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(text, f).ok())
        .ok_or_else(|| format!("“{text}” is not a date and time such as 2026-01-06T10:47."))?;
    tz.from_local_datetime(&local)
        .earliest()
        .map(|at| Some(at.naive_utc()))
        .ok_or_else(|| format!("{text} does not exist in {tz} (the clocks skip it)."))
}

/// A UTC time as a `datetime-local` value in the site's time zone.
pub fn local_input(at: NaiveDateTime, tz: Tz) -> String {
    at.and_utc()
        .with_timezone(&tz)
        .format("%Y-%m-%dT%H:%M")
        .to_string()
}

/// Why a save did not happen; the transaction rolls back.
#[derive(Debug)]
pub enum SaveError {
    Invalid(FieldErrors),
    NotFound,
    /// A trashed post is restored before it is edited, so a save cannot quietly un-trash it.
    Trashed,
    Db(DbError),
}

impl From<DbError> for SaveError {
    fn from(e: DbError) -> Self {
        SaveError::Db(e)
    }
}

impl From<diesel::result::Error> for SaveError {
    fn from(e: diesel::result::Error) -> Self {
        SaveError::Db(e.into())
    }
}

#[derive(Debug)]
pub struct Saved {
    pub post: Post,
    pub created: bool,
}

/// How a post is named in the moderation log.
fn log_name(post: &Post) -> String {
    format!("“{}” ({} #{})", post.title, post.kind, post.id)
}

/// Creates (`id` `None`) or updates a post from a checked form, in the caller's transaction.
pub fn save(
    conn: &mut DbConn,
    id: Option<PostId>,
    valid: &ValidPost,
    actor: &Actor,
    now: NaiveDateTime,
    tz: Tz,
) -> Result<Saved, SaveError> {
    let existing = match id {
        Some(id) => Some(queries::find_by_id(conn, id)?.ok_or(SaveError::NotFound)?),
        None => None,
    };
    if existing
        .as_ref()
        .is_some_and(|p| p.status() == PostStatus::Trash)
    {
        return Err(SaveError::Trashed);
    }
    let mut errors = FieldErrors::new();
    match crate::users::find_by_id(conn, valid.author_id)? {
        // A disabled author may stay on the posts they already have.
        Some(user)
            if !user.disabled || existing.as_ref().is_some_and(|p| p.author_id == user.id) => {}
        _ => errors.push(("author", "Choose an enabled user as the author.".into())),
    }
    let slug = match &valid.slug {
        SlugChoice::Given(slug) => {
            if queries::slug_taken(conn, slug, id)? {
                errors.push((
                    "slug",
                    format!("The address “{slug}” is already used by another post or page."),
                ));
            }
            slug.clone()
        }
        SlugChoice::FromTitle(base) => unused_slug(conn, base, id)?,
    };
    let scheduled = valid
        .schedule(existing.as_ref(), now, tz)
        .map_err(|e| errors.push(("publish_at", e)));
    let (status, published_at) = match scheduled {
        Ok(found) if errors.is_empty() => found,
        _ => return Err(SaveError::Invalid(errors)),
    };

    let body_html = crate::media::render_post(conn, &valid.body)?;
    let excerpt = valid.excerpt_or_derived();
    let new_post = NewPost {
        slug: &slug,
        title: &valid.title,
        body_markdown: &valid.body,
        body_html: body_html.as_str(),
        excerpt: &excerpt,
        author_id: valid.author_id,
        kind: valid.kind,
        status,
        published_at,
        comments_open: valid.comments_open,
        updated_at: now,
    };
    let written = match &existing {
        Some(post) => queries::update(conn, post.id, &new_post),
        None => queries::insert(conn, &new_post),
    };
    let post = match written {
        Ok(post) => post,
        // Another request took the address since the check above (PostgreSQL).
        Err(e) if e.is_unique_violation() => {
            return Err(SaveError::Invalid(FieldErrors::from(vec![(
                "slug",
                format!("The address “{slug}” is already used by another post or page."),
            )])));
        }
        Err(e) => return Err(e.into()),
    };
    // The post owns its address now, even if it once redirected elsewhere.
    queries::release_slug(conn, &post.slug)?;
    let mut changes = Vec::new();
    if let Some(before) = &existing {
        if before.slug != post.slug {
            // Readers (and search engines) may know the old address only if it was public.
            if before.status() == PostStatus::Published {
                queries::remember_old_slug(conn, &before.slug, post.id)?;
            }
            changes.push(format!("address {} → {}", before.path(), post.path()));
        }
        if before.status != post.status {
            changes.push(format!("{} → {}", before.status, post.status));
        }
    }
    queries::set_tags(conn, post.id, &valid.tags)?;
    let (action, detail) = match &existing {
        None => (
            "post-create",
            format!("{} as {}", log_name(&post), post.status),
        ),
        Some(_) if changes.is_empty() => ("post-update", log_name(&post)),
        Some(_) => (
            "post-update",
            format!("{}: {}", log_name(&post), changes.join(", ")),
        ),
    };
    crate::audit::log(conn, None, action, &detail, actor, now)?;
    Ok(Saved {
        created: existing.is_none(),
        post,
    })
}

/// `base`, or `base-2`, `base-3`, … : the first that no other post uses or redirects from.
fn unused_slug(conn: &mut DbConn, base: &str, own: Option<PostId>) -> Result<String, SaveError> {
    let base = base.trim_matches('-');
    for n in 1..=1000 {
        let candidate = if n == 1 {
            base.to_string()
        } else {
            // Keep within the 80 characters of a slug.
            let suffix = format!("-{n}");
            let head: String = base.chars().take(80 - suffix.len()).collect();
            format!("{}{suffix}", head.trim_end_matches('-'))
        };
        if !queries::slug_taken(conn, &candidate, own)?
            && !queries::slug_redirects_elsewhere(conn, &candidate, own)?
        {
            return Ok(candidate);
        }
    }
    Err(SaveError::Invalid(FieldErrors::from(vec![(
        "slug",
        "No free address could be made from this title; enter one.".into(),
    )])))
}

/// What trash and restore did.
#[derive(Debug, PartialEq, Eq)]
pub enum Moved {
    Done,
    /// Already where the action leads.
    Unchanged,
    /// Restore of a post that is not in the trash.
    NotAllowed,
    NotFound,
}

/// Moves a post to the trash, remembering its status for restore. Readers get 404 at once.
pub fn trash(
    conn: &mut DbConn,
    id: PostId,
    actor: &Actor,
    now: NaiveDateTime,
) -> Result<Moved, DbError> {
    use crate::db::schema::posts;
    use diesel::prelude::*;
    let Some(post) = queries::find_by_id(conn, id)? else {
        return Ok(Moved::NotFound);
    };
    if post.status() == PostStatus::Trash {
        return Ok(Moved::Unchanged);
    }
    diesel::update(posts::table.find(id))
        .set((
            posts::status.eq(PostStatus::Trash),
            posts::status_before_trash.eq(Some(post.status)),
        ))
        .execute(conn)?;
    let detail = format!("{} (was {})", log_name(&post), post.status);
    crate::audit::log(conn, None, "post-trash", &detail, actor, now)?;
    Ok(Moved::Done)
}

/// Puts a trashed post back to the status it had (a scheduled one whose time has passed is
/// published by the scheduler when it wakes).
pub fn restore(
    conn: &mut DbConn,
    id: PostId,
    actor: &Actor,
    now: NaiveDateTime,
) -> Result<Moved, DbError> {
    use crate::db::schema::posts;
    use diesel::prelude::*;
    let Some(post) = queries::find_by_id(conn, id)? else {
        return Ok(Moved::NotFound);
    };
    if post.status() != PostStatus::Trash {
        return Ok(Moved::NotAllowed);
    }
    let back = post
        .status_before_trash
        .filter(|s| *s != PostStatus::Trash)
        .unwrap_or(PostStatus::Draft);
    diesel::update(posts::table.find(id))
        .set((
            posts::status.eq(back),
            posts::status_before_trash.eq(None::<PostStatus>),
        ))
        .execute(conn)?;
    let detail = format!("{} → {}", log_name(&post), back.as_str());
    crate::audit::log(conn, None, "post-restore", &detail, actor, now)?;
    Ok(Moved::Done)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S").unwrap()
    }

    fn form(status: &str, publish_at: &str) -> PostForm {
        PostForm {
            title: "Hello, World".into(),
            status: status.into(),
            publish_at: publish_at.into(),
            ..PostForm::blank(UserId(1))
        }
    }

    #[test]
    fn local_times_are_read_in_the_site_time_zone() {
        let berlin = chrono_tz::Europe::Berlin;
        assert_eq!(
            parse_local("2026-01-06T10:47", berlin),
            Ok(Some(at("2026-01-06 09:47:00")))
        );
        assert_eq!(parse_local(" ", berlin), Ok(None));
        assert!(parse_local("tomorrow", berlin).is_err());
        // 02:30 on the last Sunday of March does not exist in Berlin.
        assert!(parse_local("2026-03-29T02:30", berlin).is_err());
        assert_eq!(
            local_input(at("2026-01-06 09:47:31"), berlin),
            "2026-01-06T10:47"
        );
    }

    #[test]
    fn the_slug_comes_from_the_title_when_empty_and_must_be_a_slug_when_typed() {
        let valid = form("draft", "").parse(chrono_tz::UTC).unwrap();
        assert_eq!(valid.slug, SlugChoice::FromTitle("hello-world".into()));
        let mut typed = form("draft", "");
        typed.slug = "Not A Slug".into();
        let errors = typed.parse(chrono_tz::UTC).unwrap_err();
        assert_eq!(errors.iter().next().map(|(field, _)| *field), Some("slug"));
    }

    #[test]
    fn tags_are_split_on_commas_and_deduplicated_by_address() {
        assert_eq!(
            parse_tags(" Rust, rust ,, Web dev ").unwrap(),
            vec!["Rust".to_string(), "Web dev".to_string()]
        );
        assert!(parse_tags("日本").is_err());
    }

    #[test]
    fn a_future_date_schedules_and_a_scheduled_post_needs_one() {
        let now = at("2026-01-06 10:00:00");
        let future = form("published", "2026-01-07T10:00")
            .parse(chrono_tz::UTC)
            .unwrap();
        assert_eq!(
            future.schedule(None, now, chrono_tz::UTC),
            Ok((PostStatus::Scheduled, at("2026-01-07 10:00:00")))
        );
        let past = form("scheduled", "2026-01-05T10:00")
            .parse(chrono_tz::UTC)
            .unwrap();
        assert!(past.schedule(None, now, chrono_tz::UTC).is_err());
        let now_ = form("published", "").parse(chrono_tz::UTC).unwrap();
        assert_eq!(
            now_.schedule(None, now, chrono_tz::UTC),
            Ok((PostStatus::Published, now))
        );
    }
}
