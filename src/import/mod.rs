//! Moving in: imports of a WordPress export (WXR 1.0–1.2), a Disqus export and an Isso database.
//!
//! Every importer reads its file as a stream (quick-xml events, or Isso's rows), writes in
//! batches, each its own transaction, and remembers each source item's identity in
//! `import_items`, so a second run (or a run after one that was stopped half-way) adds only
//! what is missing. Imported comments keep their source's status: they are not classified, do
//! not count toward flood or duplicate limits and never send email. A file is read once to
//! check it before anything is written, so a malformed file changes nothing (a WordPress export
//! of 64 MiB or more is checked by the writing pass's own parse instead: see
//! `wordpress::CHECKED_BEFORE_WRITING`).

pub mod bulk;
pub mod content;
pub mod disqus;
pub mod handlers;
pub mod isso;
pub mod progress;
pub mod redirects;
pub mod store;
pub mod uploads;
pub mod wordpress;
pub mod xml;

use std::collections::BTreeMap;
use std::fmt;
use std::io::Read;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::crypto::Signer;
use crate::db::{Db, DbError};

pub use progress::Progress;

/// What a file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    WordPress,
    Disqus,
    Isso,
}

impl Kind {
    pub fn command(self) -> &'static str {
        match self {
            Kind::WordPress => "wordpress",
            Kind::Disqus => "disqus",
            Kind::Isso => "isso",
        }
    }

    fn described(self) -> &'static str {
        match self {
            Kind::WordPress => "a WordPress export",
            Kind::Disqus => "a Disqus export",
            Kind::Isso => "an Isso database",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The file cannot be read, or is malformed (the message names the line and column).
    #[error("{0}")]
    Unreadable(String),
    /// The file is another kind of export than the command asked for.
    #[error("{0}")]
    WrongKind(String),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<diesel::result::Error> for ImportError {
    fn from(e: diesel::result::Error) -> ImportError {
        ImportError::Db(DbError::from(e))
    }
}

/// How an import runs.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Check everything and report, writing nothing.
    pub dry_run: bool,
    /// `--map OLD_PREFIX=NEW_PREFIX` (Disqus, Isso): thread paths starting with OLD_PREFIX are
    /// looked up with NEW_PREFIX instead.
    pub maps: Vec<(String, String)>,
    /// `--uploads DIR` (WordPress): a local copy of `wp-content/uploads` to take pictures from.
    pub uploads: Option<std::path::PathBuf>,
}

impl Options {
    /// Parses one `OLD=NEW` argument.
    pub fn parse_map(text: &str) -> Result<(String, String), String> {
        match text.split_once('=') {
            Some((old, new)) if !old.is_empty() => Ok((old.to_string(), new.to_string())),
            _ => Err(format!("{text:?} must be OLD_PREFIX=NEW_PREFIX")),
        }
    }
}

/// What an import needs from the site.
pub struct Env {
    pub db: Db,
    /// Keys the avatar seed of each imported comment, as the form does.
    pub signer: Signer,
    pub now: chrono::NaiveDateTime,
}

/// Counts of one kind of item.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Tally {
    pub imported: u64,
    /// Brought in by an earlier run, left as they are.
    pub already: u64,
}

/// Notes past this many are counted, not listed.
const MAX_NOTES: usize = 500;

/// What an import did (or, in a dry run, would do).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Report {
    /// "WordPress export of https://example.com (WXR 1.2)".
    pub source: String,
    pub dry_run: bool,
    pub posts: Tally,
    pub pages: Tally,
    pub comments: Tally,
    pub users_created: u64,
    pub users_matched: u64,
    /// Items skipped by design, by reason.
    pub skipped: BTreeMap<String, u64>,
    /// Comments longer than the comment form allows (stored whole).
    pub over_limits: u64,
    /// Old addresses that now answer 301.
    pub redirects: u64,
    pub notes: Vec<String>,
    pub notes_left_out: u64,
    /// `--uploads`: pictures brought into the media library.
    #[serde(default)]
    pub images_imported: u64,
    /// `--uploads`: pictures a post shows that were not found (or not taken); their posts keep
    /// the old addresses.
    #[serde(default)]
    pub images_missing: Vec<String>,
}

impl Report {
    pub fn skip(&mut self, reason: &str) {
        *self.skipped.entry(reason.to_string()).or_default() += 1;
    }

    pub fn note(&mut self, note: String) {
        if self.notes.len() < MAX_NOTES {
            self.notes.push(note);
        } else {
            self.notes_left_out += 1;
        }
    }

    /// One line for progress: what has been done so far.
    pub fn progress_line(&self) -> String {
        format!(
            "{} posts, {} pages, {} comments",
            self.posts.imported + self.posts.already,
            self.pages.imported + self.pages.already,
            self.comments.imported + self.comments.already
        )
    }
}

impl Report {
    /// One line for the moderation log: the source and what came in.
    pub fn summary(&self) -> String {
        format!(
            "{}: {} posts, {} pages, {} comments imported ({} posts, {} pages, {} comments already there); {} users created",
            self.source,
            self.posts.imported,
            self.pages.imported,
            self.comments.imported,
            self.posts.already,
            self.pages.already,
            self.comments.already,
            self.users_created
        )
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verb = if self.dry_run {
            "would import"
        } else {
            "imported"
        };
        writeln!(f, "{}", self.source)?;
        if self.dry_run {
            writeln!(f, "dry run: nothing was written")?;
        }
        for (name, tally) in [
            ("posts", &self.posts),
            ("pages", &self.pages),
            ("comments", &self.comments),
        ] {
            writeln!(
                f,
                "{name}: {} {verb}, {} already imported",
                tally.imported, tally.already
            )?;
        }
        writeln!(
            f,
            "users: {} created (disabled, no password), {} matched by email",
            self.users_created, self.users_matched
        )?;
        writeln!(f, "old addresses redirected: {}", self.redirects)?;
        if self.images_imported > 0 || !self.images_missing.is_empty() {
            writeln!(
                f,
                "pictures: {} {verb} into the media library, {} not found (their posts keep the old addresses)",
                self.images_imported,
                self.images_missing.len()
            )?;
            for missing in &self.images_missing {
                writeln!(f, "  not found: {missing}")?;
            }
        }
        if self.skipped.is_empty() {
            writeln!(f, "skipped: none")?;
        } else {
            let skipped: Vec<String> = self
                .skipped
                .iter()
                .map(|(reason, n)| format!("{n} {reason}"))
                .collect();
            writeln!(f, "skipped: {}", skipped.join(", "))?;
        }
        if self.over_limits > 0 {
            writeln!(
                f,
                "over the comment form's limits, stored whole: {} comments",
                self.over_limits
            )?;
        }
        if !self.notes.is_empty() {
            writeln!(f, "notes:")?;
            for note in &self.notes {
                writeln!(f, "  - {note}")?;
            }
            if self.notes_left_out > 0 {
                writeln!(f, "  … and {} more", self.notes_left_out)?;
            }
        }
        Ok(())
    }
}

/// Recognises a file by its first bytes: an SQLite database (Isso), a Disqus export, a WordPress
/// export; `Err` names what else it seems to be.
pub fn detect(path: &Path) -> Result<Kind, ImportError> {
    let mut head = vec![0u8; 8192];
    let n = std::fs::File::open(path)
        .and_then(|mut f| f.read(&mut head))
        .map_err(|e| ImportError::Unreadable(format!("{}: {e}", path.display())))?;
    let head = &head[..n];
    if head.starts_with(b"SQLite format 3\0") {
        return Ok(Kind::Isso);
    }
    if head.starts_with(&[0x1f, 0x8b]) {
        return Err(ImportError::WrongKind(format!(
            "{}: this is a compressed (gzip) file; decompress it first",
            path.display()
        )));
    }
    let text = String::from_utf8_lossy(head);
    let text = text.trim_start_matches('\u{feff}');
    match root_element(text).as_deref() {
        Some("rss") if text.contains("wordpress.org/export/") => Ok(Kind::WordPress),
        Some("rss") => Err(ImportError::WrongKind(format!(
            "{}: this is an RSS feed, not a WordPress export (WordPress writes one at Tools → Export)",
            path.display()
        ))),
        Some("disqus") => Ok(Kind::Disqus),
        Some(other) => Err(ImportError::WrongKind(format!(
            "{}: an XML file whose root element is <{other}>, neither a WordPress nor a Disqus export",
            path.display()
        ))),
        None if text.trim_start().starts_with('{') => Err(ImportError::WrongKind(format!(
            "{}: this is a JSON file, not an export lectern imports",
            path.display()
        ))),
        None => Err(ImportError::WrongKind(format!(
            "{}: not a WordPress export, a Disqus export or an Isso database",
            path.display()
        ))),
    }
}

/// The name of the first element of an XML text (after the declaration, comments, a doctype).
fn root_element(text: &str) -> Option<String> {
    let mut rest = text.trim_start();
    loop {
        if let Some(after) = rest.strip_prefix("<?") {
            rest = after.split_once("?>")?.1.trim_start();
        } else if let Some(after) = rest.strip_prefix("<!--") {
            rest = after.split_once("-->")?.1.trim_start();
        } else if let Some(after) = rest.strip_prefix("<!") {
            rest = after.split_once('>')?.1.trim_start();
        } else if let Some(after) = rest.strip_prefix('<') {
            let name: String = after
                .chars()
                .take_while(|c| !c.is_whitespace() && *c != '>' && *c != '/')
                .collect();
            return (!name.is_empty()).then_some(name);
        } else {
            return None;
        }
    }
}

/// Checks that `path` is a file of `expected` kind, naming the right command when it is not.
pub fn check_kind(path: &Path, expected: Kind) -> Result<(), ImportError> {
    let found = detect(path)?;
    if found == expected {
        return Ok(());
    }
    Err(ImportError::WrongKind(format!(
        "{}: this looks like {}, not {}; use `lectern import {}`",
        path.display(),
        found.described(),
        expected.described(),
        found.command()
    )))
}

/// Records a finished import in the moderation log: "import" with the source and the counts,
/// under the actor who ran it (an admin from the web, or "the command line").
pub fn log_run(db: &Db, report: &Report, actor: &crate::actions::Actor) -> Result<(), DbError> {
    let detail = report.summary();
    let actor = actor.clone();
    db.write_blocking(move |conn| {
        crate::audit::log(conn, None, "import", &detail, &actor, crate::db::now())
    })
}

/// Runs the import of `path` as `kind`.
pub fn run(
    env: &Env,
    kind: Kind,
    path: &Path,
    options: &Options,
    progress: &mut dyn Progress,
) -> Result<Report, ImportError> {
    check_kind(path, kind)?;
    let report = match kind {
        Kind::WordPress => wordpress::import(env, path, options, progress)?,
        Kind::Disqus => disqus::import(env, path, options, progress)?,
        Kind::Isso => isso::import(env, path, options, progress)?,
    };
    progress.finish();
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_root_element_is_found_past_declarations_and_comments() {
        assert_eq!(
            root_element("<?xml version=\"1.0\"?>\n<!-- generator -->\n<rss version=\"2.0\">")
                .as_deref(),
            Some("rss")
        );
        assert_eq!(
            root_element("<disqus xmlns=\"x\">").as_deref(),
            Some("disqus")
        );
        assert_eq!(root_element("{\"a\": 1}"), None);
    }

    #[test]
    fn maps_need_an_old_prefix() {
        assert_eq!(
            Options::parse_map("/blog/=/posts/"),
            Ok(("/blog/".to_string(), "/posts/".to_string()))
        );
        assert!(Options::parse_map("nothing").is_err());
    }
}
