//! `lectern import wordpress FILE --uploads DIR`: the pictures a post shows from
//! `wp-content/uploads` are taken from DIR (a local copy of that folder) into the media library,
//! and the post's addresses for them, size variants such as `-300x200` included, are rewritten
//! to the library's. A picture not found in DIR is listed in the report and keeps its old
//! address.

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};
use std::sync::LazyLock;

use regex::Regex;

use super::Report;
use crate::db::{DbConn, DbError};
use crate::media::{self, MAX_UPLOAD_BYTES, MediaMeta};

/// An address under `wp-content/uploads` (absolute, protocol-relative or site-relative) of a
/// picture; group 1 is the path inside the uploads folder.
static UPLOAD_URL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r#"(?i)(?:https?:)?(?://[^\s"'<>()/]+)?/wp-content/uploads/([^\s"'<>()?#]+?\.(?:jpe?g|png|gif|webp))"#,
    )
    .unwrap_or_else(|_| unreachable_regex())
});

/// WordPress's resized copies: `name-300x200.jpg` is a copy of `name.jpg`.
static SIZE_SUFFIX: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)-\d+x\d+(\.[a-z]+)$").unwrap_or_else(|_| unreachable_regex())
});

#[allow(clippy::panic)]
fn unreachable_regex() -> Regex {
    // The patterns above are constants that compile (the tests below use them).
    panic!("a constant regular expression does not compile")
}

/// The uploads folder and what has been found in it so far.
pub struct Uploads {
    dir: PathBuf,
    /// Path inside the folder → the library's address, or `None` when it is missing.
    seen: HashMap<String, Option<String>>,
}

impl Uploads {
    pub fn new(dir: PathBuf) -> Uploads {
        Uploads {
            dir,
            seen: HashMap::new(),
        }
    }

    /// `body` with every picture found in the folder pointing at the library.
    pub fn rewrite(
        &mut self,
        conn: &mut DbConn,
        report: &mut Report,
        dry_run: bool,
        now: chrono::NaiveDateTime,
        title: &str,
        body: &str,
    ) -> Result<String, DbError> {
        let mut out = String::with_capacity(body.len());
        let mut last = 0;
        for found in UPLOAD_URL.captures_iter(body) {
            let (Some(whole), Some(inner)) = (found.get(0), found.get(1)) else {
                continue;
            };
            let address = match self.seen.get(inner.as_str()) {
                Some(known) => known.clone(),
                None => {
                    let address =
                        self.import_one(conn, report, dry_run, now, title, inner.as_str())?;
                    self.seen
                        .insert(inner.as_str().to_string(), address.clone());
                    address
                }
            };
            if let Some(address) = address {
                out.push_str(&body[last..whole.start()]);
                out.push_str(&address);
                last = whole.end();
            }
        }
        out.push_str(&body[last..]);
        Ok(out)
    }

    fn import_one(
        &mut self,
        conn: &mut DbConn,
        report: &mut Report,
        dry_run: bool,
        now: chrono::NaiveDateTime,
        title: &str,
        inner: &str,
    ) -> Result<Option<String>, DbError> {
        let decoded = percent_encoding::percent_decode_str(inner)
            .decode_utf8_lossy()
            .into_owned();
        // The original first (a `-300x200` copy shows the same picture), then the file named.
        let original = SIZE_SUFFIX.replace(&decoded, "$1").into_owned();
        let file = [original.as_str(), decoded.as_str()]
            .into_iter()
            .filter_map(|rel| safe_join(&self.dir, rel))
            .find(|path| path.is_file());
        let Some(file) = file else {
            report.images_missing.push(inner.to_string());
            return Ok(None);
        };
        if dry_run {
            report.images_imported += 1;
            // Any address: nothing is written in a dry run.
            return Ok(Some(format!("/media/{inner}")));
        }
        let refused = |report: &mut Report, why: String| {
            report.note(format!(
                "“{title}”: the picture {inner} was not imported ({why}); the post keeps its old address"
            ));
            report.images_missing.push(inner.to_string());
        };
        let bytes = match std::fs::read(&file) {
            Ok(bytes) if bytes.len() <= MAX_UPLOAD_BYTES => bytes,
            Ok(_) => {
                refused(
                    report,
                    format!("over the {} MiB limit", MAX_UPLOAD_BYTES >> 20),
                );
                return Ok(None);
            }
            Err(e) => {
                refused(report, e.to_string());
                return Ok(None);
            }
        };
        let meta = MediaMeta {
            file_name: file
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            alt: String::new(),
            upload_sha256: media::sha256_hex(&bytes),
            uploaded_by: None,
            created_at: now,
        };
        match media::upload_blocking(conn, &bytes, &meta)? {
            Ok(stored) => {
                if stored.created {
                    report.images_imported += 1;
                }
                Ok(Some(stored.media.url()))
            }
            Err(refusal) => {
                refused(report, refusal.to_string());
                Ok(None)
            }
        }
    }
}

/// `dir/rel`, unless `rel` would leave `dir`.
fn safe_join(dir: &Path, rel: &str) -> Option<PathBuf> {
    let rel = Path::new(rel);
    rel.components()
        .all(|c| matches!(c, Component::Normal(_)))
        .then(|| dir.join(rel))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_of_uploads_and_their_size_copies_are_recognised() {
        let body = r#"<img src="https://example.com/wp-content/uploads/2020/01/cat-300x200.jpg" alt="Cat"> and /wp-content/uploads/dog.PNG"#;
        let found: Vec<&str> = UPLOAD_URL
            .captures_iter(body)
            .filter_map(|c| c.get(1).map(|m| m.as_str()))
            .collect();
        assert_eq!(found, ["2020/01/cat-300x200.jpg", "dog.PNG"]);
        assert_eq!(
            SIZE_SUFFIX.replace("2020/01/cat-300x200.jpg", "$1"),
            "2020/01/cat.jpg"
        );
        assert!(safe_join(Path::new("/u"), "../etc/passwd").is_none());
    }
}
