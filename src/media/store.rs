//! The library's tables: `media` (one row a picture), `media_variants` (the original and its
//! narrower copies) and `media_chunks` (their bytes, 256 KiB a row).

use std::collections::{BTreeSet, HashMap};

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::{CHUNK_BYTES, EncodedVariant, MediaFormat, MediaPath, Processed, url};
use crate::db::schema::{media, media_chunks, media_variants, posts};
use crate::db::{DbConn, DbError};
use crate::render::{MediaImage, MediaIndex};

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = media)]
pub struct MediaRow {
    pub id: i32,
    pub sha256: String,
    pub upload_sha256: String,
    pub format: MediaFormat,
    pub file_name: String,
    pub alt: String,
    pub width: i32,
    pub height: i32,
    pub byte_size: i64,
    pub uploaded_by: Option<i32>,
    pub created_at: NaiveDateTime,
}

impl MediaRow {
    /// The original's address.
    pub fn url(&self) -> String {
        url(&self.sha256, self.width_u32(), self.format)
    }

    pub fn width_u32(&self) -> u32 {
        u32::try_from(self.width).unwrap_or(0)
    }
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = media_variants)]
pub struct VariantRow {
    pub id: i32,
    pub media_id: i32,
    pub width: i32,
    pub height: i32,
    pub format: MediaFormat,
    pub byte_size: i64,
}

/// What is known of a picture besides its bytes.
#[derive(Debug, Clone)]
pub struct MediaMeta {
    pub file_name: String,
    pub alt: String,
    /// Hex SHA-256 of the bytes as uploaded (the same upload again is not processed again).
    pub upload_sha256: String,
    pub uploaded_by: Option<i32>,
    pub created_at: NaiveDateTime,
}

pub fn find(conn: &mut DbConn, id: i32) -> Result<Option<MediaRow>, DbError> {
    Ok(media::table
        .find(id)
        .select(MediaRow::as_select())
        .first(conn)
        .optional()?)
}

pub fn find_by_sha(conn: &mut DbConn, sha256: &str) -> Result<Option<MediaRow>, DbError> {
    Ok(media::table
        .filter(media::sha256.eq(sha256))
        .select(MediaRow::as_select())
        .first(conn)
        .optional()?)
}

pub fn find_by_upload(conn: &mut DbConn, upload_sha256: &str) -> Result<Option<MediaRow>, DbError> {
    Ok(media::table
        .filter(media::upload_sha256.eq(upload_sha256))
        .select(MediaRow::as_select())
        .first(conn)
        .optional()?)
}

/// Stores a processed picture and all its files, or answers the one already stored under the
/// same hash (then `false`). Run it inside a write transaction.
pub fn insert_processed(
    conn: &mut DbConn,
    processed: &Processed,
    meta: &MediaMeta,
) -> Result<(MediaRow, bool), DbError> {
    if let Some(existing) = find_by_sha(conn, &processed.sha256)? {
        return Ok((existing, false));
    }
    let original = &processed.original;
    let row: MediaRow = diesel::insert_into(media::table)
        .values((
            media::sha256.eq(&processed.sha256),
            media::upload_sha256.eq(&meta.upload_sha256),
            media::format.eq(processed.format),
            media::file_name.eq(&meta.file_name),
            media::alt.eq(&meta.alt),
            media::width.eq(to_i32(original.width)),
            media::height.eq(to_i32(original.height)),
            media::byte_size.eq(to_i64(original.bytes.len())),
            media::uploaded_by.eq(meta.uploaded_by),
            media::created_at.eq(meta.created_at),
        ))
        .returning(media::all_columns)
        .get_result(conn)?;
    for variant in std::iter::once(original).chain(&processed.variants) {
        insert_variant(conn, row.id, variant)?;
    }
    Ok((row, true))
}

fn to_i32(n: u32) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

fn to_i64(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn insert_variant(
    conn: &mut DbConn,
    media_id: i32,
    variant: &EncodedVariant,
) -> Result<(), DbError> {
    let variant_id: i32 = diesel::insert_into(media_variants::table)
        .values((
            media_variants::media_id.eq(media_id),
            media_variants::width.eq(to_i32(variant.width)),
            media_variants::height.eq(to_i32(variant.height)),
            media_variants::format.eq(variant.format),
            media_variants::byte_size.eq(to_i64(variant.bytes.len())),
        ))
        .returning(media_variants::id)
        .get_result(conn)?;
    for (seq, chunk) in variant.bytes.chunks(CHUNK_BYTES).enumerate() {
        diesel::insert_into(media_chunks::table)
            .values((
                media_chunks::variant_id.eq(variant_id),
                media_chunks::seq.eq(i32::try_from(seq).unwrap_or(i32::MAX)),
                media_chunks::data.eq(chunk),
            ))
            .execute(conn)?;
    }
    Ok(())
}

/// Every picture, oldest first (for exports).
pub fn all_media(conn: &mut DbConn) -> Result<Vec<MediaRow>, DbError> {
    Ok(media::table
        .order(media::id.asc())
        .select(MediaRow::as_select())
        .load(conn)?)
}

/// The stored files of these pictures, widest first.
pub fn variants_of(conn: &mut DbConn, media_ids: &[i32]) -> Result<Vec<VariantRow>, DbError> {
    Ok(media_variants::table
        .filter(media_variants::media_id.eq_any(media_ids))
        .order((media_variants::media_id, media_variants::width.desc()))
        .select(VariantRow::as_select())
        .load(conn)?)
}

/// Copies one stored file into `out`, a chunk at a time.
pub fn write_variant(
    conn: &mut DbConn,
    variant_id: i32,
    out: &mut impl std::io::Write,
) -> Result<(), anyhow::Error> {
    let mut seq = 0;
    while let Some(bytes) = chunk(conn, variant_id, seq)? {
        out.write_all(&bytes)?;
        seq += 1;
    }
    Ok(())
}

/// One chunk of a stored file.
pub fn chunk(conn: &mut DbConn, variant_id: i32, seq: i32) -> Result<Option<Vec<u8>>, DbError> {
    Ok(media_chunks::table
        .find((variant_id, seq))
        .select(media_chunks::data)
        .first(conn)
        .optional()?)
}

/// A file to serve: its row, and its first chunk (all of it, for most copies).
pub struct Served {
    pub variant: VariantRow,
    pub first_chunk: Vec<u8>,
}

pub fn served(conn: &mut DbConn, path: &MediaPath) -> Result<Option<Served>, DbError> {
    let variant: Option<VariantRow> = media_variants::table
        .inner_join(media::table)
        .filter(media::sha256.eq(&path.sha256))
        .filter(media_variants::width.eq(to_i32(path.width)))
        .select(VariantRow::as_select())
        .first(conn)
        .optional()?;
    let Some(variant) = variant.filter(|v| v.format == path.format) else {
        return Ok(None);
    };
    let first_chunk = chunk(conn, variant.id, 0)?.unwrap_or_default();
    Ok(Some(Served {
        variant,
        first_chunk,
    }))
}

/// What the renderer needs for these addresses: the size of the file each names, and every
/// stored width of its picture. Addresses the library does not have are left out.
pub fn render_index(conn: &mut DbConn, paths: &[String]) -> Result<MediaIndex, DbError> {
    let parsed: Vec<(String, MediaPath)> = paths
        .iter()
        .filter_map(|p| MediaPath::parse(p).map(|m| (p.clone(), m)))
        .collect();
    let shas: BTreeSet<&str> = parsed.iter().map(|(_, m)| m.sha256.as_str()).collect();
    let rows: Vec<(String, VariantRow)> = media_variants::table
        .inner_join(media::table)
        .filter(media::sha256.eq_any(shas))
        .order((media::id, media_variants::width.desc()))
        .select((media::sha256, VariantRow::as_select()))
        .load(conn)?;
    let mut by_sha: HashMap<&str, Vec<&VariantRow>> = HashMap::new();
    for (sha, variant) in &rows {
        by_sha.entry(sha.as_str()).or_default().push(variant);
    }
    let mut index = MediaIndex::new();
    for (path, media_path) in parsed {
        let Some(variants) = by_sha.get(media_path.sha256.as_str()) else {
            continue;
        };
        let Some(named) = variants
            .iter()
            .find(|v| v.width == to_i32(media_path.width) && v.format == media_path.format)
        else {
            continue;
        };
        let mut srcset: Vec<(String, u32)> = variants
            .iter()
            .map(|v| {
                let width = u32::try_from(v.width).unwrap_or(0);
                (url(&media_path.sha256, width, v.format), width)
            })
            .collect();
        srcset.sort_by_key(|(_, w)| *w);
        index.insert(
            path,
            MediaImage {
                width: u32::try_from(named.width).unwrap_or(0),
                height: u32::try_from(named.height).unwrap_or(0),
                srcset,
            },
        );
    }
    Ok(index)
}

/// A page of the library, newest first: pictures older than `before` (an id), whose file name
/// or alt text contains `query` (case-insensitive for ASCII on both databases).
pub fn list(
    conn: &mut DbConn,
    query: &str,
    before: Option<i32>,
    limit: i64,
) -> Result<Vec<MediaRow>, DbError> {
    let mut select = media::table.select(MediaRow::as_select()).into_boxed();
    if let Some(before) = before {
        select = select.filter(media::id.lt(before));
    }
    let query = query.trim();
    if !query.is_empty() {
        let pattern = format!("%{}%", escape_like(&query.to_lowercase()));
        select = select.filter(
            diesel::dsl::sql::<diesel::sql_types::Bool>("(LOWER(media.file_name) LIKE ")
                .bind::<diesel::sql_types::Text, _>(pattern.clone())
                .sql(" ESCAPE '\\' OR LOWER(media.alt) LIKE ")
                .bind::<diesel::sql_types::Text, _>(pattern)
                .sql(" ESCAPE '\\')"),
        );
    }
    Ok(select.order(media::id.desc()).limit(limit).load(conn)?)
}

fn escape_like(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The most recent pictures (the editor's list to insert from).
pub fn recent(conn: &mut DbConn, limit: i64) -> Result<Vec<MediaRow>, DbError> {
    list(conn, "", None, limit)
}

pub fn set_alt(conn: &mut DbConn, id: i32, alt: &str) -> Result<bool, DbError> {
    let changed = diesel::update(media::table.find(id))
        .set(media::alt.eq(alt))
        .execute(conn)?;
    Ok(changed > 0)
}

/// Removes a picture and all its files.
pub fn delete(conn: &mut DbConn, id: i32) -> Result<bool, DbError> {
    let variant_ids: Vec<i32> = media_variants::table
        .filter(media_variants::media_id.eq(id))
        .select(media_variants::id)
        .load(conn)?;
    diesel::delete(media_chunks::table.filter(media_chunks::variant_id.eq_any(&variant_ids)))
        .execute(conn)?;
    diesel::delete(media_variants::table.filter(media_variants::media_id.eq(id))).execute(conn)?;
    Ok(diesel::delete(media::table.find(id)).execute(conn)? > 0)
}

/// A post or page whose Markdown shows a picture.
#[derive(Debug, Clone, Queryable)]
pub struct Use {
    pub post_id: i32,
    pub title: String,
    pub status: String,
}

/// The posts and pages (trash included) whose Markdown names any file of this picture.
pub fn uses(conn: &mut DbConn, sha256: &str) -> Result<Vec<Use>, DbError> {
    Ok(uses_of(conn, &[sha256])?.remove(sha256).unwrap_or_default())
}

/// The uses of several pictures, newest post first, from one reading of the posts that show
/// any picture (a library page asked once per tile read every post body 24 times).
pub fn uses_of(conn: &mut DbConn, shas: &[&str]) -> Result<HashMap<String, Vec<Use>>, DbError> {
    let mut found: HashMap<String, Vec<Use>> = HashMap::new();
    if shas.is_empty() {
        return Ok(found);
    }
    let showing: Vec<(i32, String, String, String)> = posts::table
        .filter(posts::body_markdown.like("%/media/%"))
        .order(posts::id.desc())
        .select((posts::id, posts::title, posts::status, posts::body_markdown))
        .load(conn)?;
    for (post_id, title, status, markdown) in showing {
        for sha in shas {
            if markdown.contains(&format!("/media/{sha}-")) {
                found.entry((*sha).to_string()).or_default().push(Use {
                    post_id,
                    title: title.clone(),
                    status: status.clone(),
                });
            }
        }
    }
    Ok(found)
}
