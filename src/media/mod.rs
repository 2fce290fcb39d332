//! The media library: pictures uploaded by admins, checked and stripped of metadata
//! (`process`), kept in the database in 256 KiB chunks (`store`), served at
//! `/media/{sha256}-{width}.{ext}` like a CDN would (`serve`), and looked up when a post's
//! Markdown is rendered so its `<img>` gets dimensions and a `srcset` (`render_post`).
//!
//! For exports and archives, the API is: [`store::all_media`] and [`store::variants_of`] to
//! list everything, [`store::write_variant`] to copy one file's bytes out a chunk at a time,
//! and [`store::insert_processed`] with [`Processed`] to bring already-processed pictures back
//! (no re-encoding, same hashes, same URLs).

mod process;
pub mod serve;
pub mod store;
mod strip;

use std::sync::LazyLock;

use diesel::sql_types::Text;

pub use process::{
    EncodedVariant, Processed, Refusal, check_name, process, scaled_height, sha256_hex, sniff,
};
pub use store::{MediaMeta, MediaRow, VariantRow};

use crate::db::{DbConn, DbError};
use crate::render::{self, SafeHtml};

/// The largest file `/admin/media` takes; above it the answer is 413.
pub const MAX_UPLOAD_BYTES: usize = 20 * 1024 * 1024;

/// At most this many pixels a side, and this many in all: a 40-megapixel photograph decodes
/// into 160 MB of RGBA at most, and a "bomb" that declares more is refused from its header.
pub const MAX_SIDE: u32 = 12_000;
pub const MAX_PIXELS: u64 = 40_000_000;

/// Widths of the narrower copies; a picture only gets those narrower than itself.
pub const VARIANT_WIDTHS: [u32; 3] = [480, 960, 1600];

/// The size of a stored chunk.
pub const CHUNK_BYTES: usize = 256 * 1024;

/// The longest alt text, in characters.
pub const MAX_ALT_CHARS: usize = 1000;

/// Pictures processed at once by this server: each holds a decoded picture (up to ~160 MB,
/// 36 MB for a 12-megapixel photograph), and the machine has few cores anyway. Others wait.
pub static PROCESSING: LazyLock<tokio::sync::Semaphore> =
    LazyLock::new(|| tokio::sync::Semaphore::new(2));

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, diesel::AsExpression, diesel::FromSqlRow)]
#[diesel(sql_type = Text)]
pub enum MediaFormat {
    Jpeg,
    Png,
    Gif,
    Webp,
}

crate::db::text_column_enum!(MediaFormat);

impl MediaFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            MediaFormat::Jpeg => "jpeg",
            MediaFormat::Png => "png",
            MediaFormat::Gif => "gif",
            MediaFormat::Webp => "webp",
        }
    }

    pub fn parse(s: &str) -> Option<MediaFormat> {
        match s {
            "jpeg" => Some(MediaFormat::Jpeg),
            "png" => Some(MediaFormat::Png),
            "gif" => Some(MediaFormat::Gif),
            "webp" => Some(MediaFormat::Webp),
            _ => None,
        }
    }

    /// The file extension in URLs.
    pub fn extension(self) -> &'static str {
        match self {
            MediaFormat::Jpeg => "jpg",
            MediaFormat::Png => "png",
            MediaFormat::Gif => "gif",
            MediaFormat::Webp => "webp",
        }
    }

    pub fn from_extension(ext: &str) -> Option<MediaFormat> {
        match ext {
            "jpg" => Some(MediaFormat::Jpeg),
            "png" => Some(MediaFormat::Png),
            "gif" => Some(MediaFormat::Gif),
            "webp" => Some(MediaFormat::Webp),
            _ => None,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            MediaFormat::Jpeg => "image/jpeg",
            MediaFormat::Png => "image/png",
            MediaFormat::Gif => "image/gif",
            MediaFormat::Webp => "image/webp",
        }
    }
}

/// A parsed media address: `/media/{sha256}-{width}.{ext}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaPath {
    pub sha256: String,
    pub width: u32,
    pub format: MediaFormat,
}

impl MediaPath {
    /// The part after `/media/`.
    pub fn parse_file(file: &str) -> Option<MediaPath> {
        let (stem, ext) = file.rsplit_once('.')?;
        let (sha, width) = stem.split_once('-')?;
        let valid_sha =
            sha.len() == 64 && sha.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        let valid_width =
            !width.is_empty() && width.len() <= 5 && width.bytes().all(|b| b.is_ascii_digit());
        if !valid_sha || !valid_width || width.starts_with('0') {
            return None;
        }
        Some(MediaPath {
            sha256: sha.to_string(),
            width: width.parse().ok()?,
            format: MediaFormat::from_extension(ext)?,
        })
    }

    /// A site-relative address such as `/media/…` (query and fragment ignored).
    pub fn parse(path: &str) -> Option<MediaPath> {
        let file = path.strip_prefix("/media/")?;
        let file = file.split(['?', '#']).next().unwrap_or(file);
        MediaPath::parse_file(file)
    }

    pub fn url(&self) -> String {
        url(&self.sha256, self.width, self.format)
    }
}

/// `/media/{sha256}-{width}.{ext}`.
pub fn url(sha256: &str, width: u32, format: MediaFormat) -> String {
    format!("/media/{sha256}-{width}.{}", format.extension())
}

/// A post's Markdown rendered with what the library knows of the pictures it shows: each
/// `![alt](/media/…)` of a stored picture gets its dimensions and a `srcset` of every stored
/// width. Dimensions and copies never change for a given address (the address is the hash of
/// the picture), so the HTML kept with the post stays right; alt text is the Markdown's own.
pub fn render_post(conn: &mut DbConn, markdown: &str) -> Result<SafeHtml, DbError> {
    let paths = render::media_paths(markdown);
    if paths.is_empty() {
        return Ok(render::render_post(markdown));
    }
    let index = store::render_index(conn, &paths)?;
    Ok(render::render_post_with_media(markdown, &index))
}

/// What became of one uploaded file.
#[derive(Debug, Clone)]
pub struct Stored {
    pub media: MediaRow,
    /// False when the same picture was already in the library (nothing new was written).
    pub created: bool,
}

/// `![alt](url)`, with `[`, `]` and `\` in the alt text escaped and line breaks made spaces.
pub fn snippet(alt: &str, url: &str) -> String {
    let mut escaped = String::with_capacity(alt.len());
    for c in alt.chars() {
        if matches!(c, '[' | ']' | '\\') {
            escaped.push('\\');
        }
        escaped.push(if c == '\n' || c == '\r' { ' ' } else { c });
    }
    format!("![{escaped}]({url})")
}

/// Checks and stores one upload, the decision behind `/admin/media` and imports. The same
/// bytes uploaded again are recognised before any decoding; a different file that comes out
/// as the same picture is stored once. Processing runs on a blocking thread, a few at a time.
pub async fn upload(
    db: &crate::db::Db,
    bytes: Vec<u8>,
    meta: MediaMeta,
) -> Result<Result<Stored, Refusal>, DbError> {
    if let Err(refusal) = check_name(&meta.file_name, &bytes) {
        return Ok(Err(refusal));
    }
    let upload_sha = meta.upload_sha256.clone();
    if let Some(media) = db
        .read(move |conn| store::find_by_upload(conn, &upload_sha))
        .await?
    {
        return Ok(Ok(Stored {
            media,
            created: false,
        }));
    }
    let processed = {
        let _permit = PROCESSING
            .acquire()
            .await
            .map_err(|e| DbError::Task(e.to_string()))?;
        tokio::task::spawn_blocking(move || process(&bytes))
            .await
            .map_err(|e| DbError::Task(e.to_string()))?
    };
    let stored = match processed {
        Ok(processed) => {
            let (media, created) = db
                .write(move |conn| store::insert_processed(conn, &processed, &meta))
                .await?;
            Ok(Stored { media, created })
        }
        Err(refusal) => Err(refusal),
    };
    // Every buffer of this picture is freed by now: the upload, the decoded pixels, the copies
    // and the chunks written.
    let _ = tokio::task::spawn_blocking(release_freed_memory).await;
    Ok(stored)
}

/// Hands freed memory back to the system. Blocks of 1 MiB and more (decoded pictures) are
/// returned as they are freed (`startup::tune_allocator`); this returns the free pages left
/// inside glibc's heaps by the smaller ones (encoded copies, chunks, the database's pages).
fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free pages of glibc's own heaps to the kernel.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// [`upload`] for callers already on a blocking thread with a connection (imports).
pub fn upload_blocking(
    conn: &mut DbConn,
    bytes: &[u8],
    meta: &MediaMeta,
) -> Result<Result<Stored, Refusal>, DbError> {
    if let Err(refusal) = check_name(&meta.file_name, bytes) {
        return Ok(Err(refusal));
    }
    if let Some(media) = store::find_by_upload(conn, &meta.upload_sha256)? {
        return Ok(Ok(Stored {
            media,
            created: false,
        }));
    }
    let processed = match process(bytes) {
        Ok(processed) => processed,
        Err(refusal) => return Ok(Err(refusal)),
    };
    let (media, created) = store::insert_processed(conn, &processed, meta)?;
    Ok(Ok(Stored { media, created }))
}
