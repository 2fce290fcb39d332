//! Writing an archive: every archived table in keyset batches, all inside one snapshot
//! transaction, so the archive is the site as it was at one moment while the server goes on
//! serving (and memory stays bounded however large the site).

use std::path::Path;

use diesel::connection::{AnsiTransactionManager, TransactionManager};
use diesel::prelude::*;

use super::progress::Progress;
use super::tables;
use super::{
    ArchiveError, FORMAT_NAME, FORMAT_VERSION, Header, LOCAL_SETTINGS, Record, RecordWriter,
    Trailer,
};
use crate::crypto::Signer;
use crate::db::schema::{
    blocks, comments, media, media_variants, moderation_log, notify_addresses, old_addresses,
    outbox, post_slugs, posts, settings, tags, used_tokens, users,
};
use crate::db::{Db, DbConn, DbError};

/// Rows read per query.
const BATCH: i64 = 1000;

#[derive(Debug, Clone, Copy, Default)]
pub struct ExportOptions {
    /// Password hashes and the secret key (never from the web).
    pub secrets: bool,
}

/// Runs `f` inside one read-only snapshot: SQLite's read transaction (WAL readers see the
/// database as of their first read), PostgreSQL's REPEATABLE READ.
pub fn in_snapshot<T>(
    conn: &mut DbConn,
    f: impl FnOnce(&mut DbConn) -> Result<T, ArchiveError>,
) -> Result<T, ArchiveError> {
    let begun = match conn {
        DbConn::Sqlite(c) => AnsiTransactionManager::begin_transaction_sql(c, "BEGIN DEFERRED"),
        DbConn::Postgresql(c) => AnsiTransactionManager::begin_transaction_sql(
            c,
            "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
        ),
    };
    begun.map_err(DbError::from)?;
    let outcome = f(conn);
    // Read only: ending it either way changes nothing.
    if let Err(e) = <DbConn as Connection>::TransactionManager::rollback_transaction(conn) {
        tracing::warn!(error = %e, "ending the export's snapshot failed");
    }
    outcome
}

/// The signer of the database's own secret (or `LECTERN_SECRET_KEY`): it drew the author
/// avatars of users who have no stored seed yet.
pub fn site_signer(db: &Db, configured: Option<&[u8]>) -> Result<Signer, DbError> {
    let secret = db.write_blocking(|conn| crate::site::secret_key(conn, configured))?;
    Ok(Signer::new(secret))
}

/// Reads `$table` in batches ordered by the integer `$key`, emitting each row as `$variant`.
macro_rules! by_int_key {
    ($conn:expr, $table:ident, $key:ident, $row:ty, $variant:ident, $emit:expr, $filter:expr) => {{
        let mut last: Option<i32> = None;
        loop {
            let mut query = $table::table
                .select(<$row>::as_select())
                .order($table::$key)
                .limit(BATCH)
                .into_boxed();
            if let Some(last) = last {
                query = query.filter($table::$key.gt(last));
            }
            let rows: Vec<$row> = query.load($conn)?;
            let Some(end) = rows.last() else { break };
            last = Some(end.$key);
            let n = rows.len();
            for row in rows {
                if $filter(&row) {
                    $emit(Record::$variant(row))?;
                }
            }
            if (n as i64) < BATCH {
                break;
            }
        }
    }};
}

/// `by_int_key` for a text key.
macro_rules! by_text_key {
    ($conn:expr, $table:ident, $key:ident, $row:ty, $variant:ident, $emit:expr) => {{
        let mut last: Option<String> = None;
        loop {
            let mut query = $table::table
                .select(<$row>::as_select())
                .order($table::$key)
                .limit(BATCH)
                .into_boxed();
            if let Some(last) = &last {
                query = query.filter($table::$key.gt(last.clone()));
            }
            let rows: Vec<$row> = query.load($conn)?;
            let Some(end) = rows.last() else { break };
            last = Some(end.$key.clone());
            let n = rows.len();
            for row in rows {
                $emit(Record::$variant(row))?;
            }
            if (n as i64) < BATCH {
                break;
            }
        }
    }};
}

#[derive(QueryableByName)]
struct PostTagRow {
    #[diesel(sql_type = diesel::sql_types::Integer)]
    post_id: i32,
    #[diesel(sql_type = diesel::sql_types::Integer)]
    tag_id: i32,
}

#[derive(QueryableByName)]
struct ChunkRow {
    #[diesel(sql_type = diesel::sql_types::Integer)]
    variant_id: i32,
    #[diesel(sql_type = diesel::sql_types::Integer)]
    seq: i32,
    #[diesel(sql_type = diesel::sql_types::Binary)]
    data: Vec<u8>,
}

/// Pieces of a picture read at once: each is up to 256 KiB, so a few at a time.
const CHUNK_BATCH: i64 = 8;

/// media_chunks in batches by (variant_id, seq).
fn media_chunks(
    conn: &mut DbConn,
    emit: &mut dyn FnMut(Record) -> Result<(), ArchiveError>,
) -> Result<(), ArchiveError> {
    use diesel::sql_types::Integer;
    let mut last = (i32::MIN, i32::MIN);
    loop {
        let rows: Vec<ChunkRow> = match conn {
            DbConn::Sqlite(c) => diesel::sql_query(
                "SELECT variant_id, seq, data FROM media_chunks WHERE (variant_id, seq) > (?, ?) \
                 ORDER BY variant_id, seq LIMIT ?",
            )
            .bind::<Integer, _>(last.0)
            .bind::<Integer, _>(last.1)
            .bind::<diesel::sql_types::BigInt, _>(CHUNK_BATCH)
            .load(c)?,
            DbConn::Postgresql(c) => diesel::sql_query(
                "SELECT variant_id, seq, data FROM media_chunks WHERE (variant_id, seq) > ($1, $2) \
                 ORDER BY variant_id, seq LIMIT $3",
            )
            .bind::<Integer, _>(last.0)
            .bind::<Integer, _>(last.1)
            .bind::<diesel::sql_types::BigInt, _>(CHUNK_BATCH)
            .load(c)?,
        };
        let Some(end) = rows.last() else { break };
        last = (end.variant_id, end.seq);
        let n = rows.len();
        for row in rows {
            emit(Record::MediaChunk(tables::MediaChunk {
                variant_id: row.variant_id,
                seq: row.seq,
                data: row.data,
            }))?;
        }
        if (n as i64) < CHUNK_BATCH {
            break;
        }
    }
    Ok(())
}

#[derive(QueryableByName)]
struct ImportItemRow {
    #[diesel(sql_type = diesel::sql_types::Text)]
    source: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    kind: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    source_id: String,
    #[diesel(sql_type = diesel::sql_types::Integer)]
    target_id: i32,
}

/// post_tags in batches by (post_id, tag_id), a row-value comparison both backends index.
fn post_tags(
    conn: &mut DbConn,
    emit: &mut dyn FnMut(Record) -> Result<(), ArchiveError>,
) -> Result<(), ArchiveError> {
    use diesel::sql_types::Integer;
    let mut last = (i32::MIN, i32::MIN);
    loop {
        let rows: Vec<PostTagRow> = match conn {
            DbConn::Sqlite(c) => diesel::sql_query(
                "SELECT post_id, tag_id FROM post_tags WHERE (post_id, tag_id) > (?, ?) \
                 ORDER BY post_id, tag_id LIMIT ?",
            )
            .bind::<Integer, _>(last.0)
            .bind::<Integer, _>(last.1)
            .bind::<diesel::sql_types::BigInt, _>(BATCH)
            .load(c)?,
            DbConn::Postgresql(c) => diesel::sql_query(
                "SELECT post_id, tag_id FROM post_tags WHERE (post_id, tag_id) > ($1, $2) \
                 ORDER BY post_id, tag_id LIMIT $3",
            )
            .bind::<Integer, _>(last.0)
            .bind::<Integer, _>(last.1)
            .bind::<diesel::sql_types::BigInt, _>(BATCH)
            .load(c)?,
        };
        let Some(end) = rows.last() else { break };
        last = (end.post_id, end.tag_id);
        let n = rows.len();
        for row in rows {
            emit(Record::PostTag(tables::PostTag {
                post_id: row.post_id,
                tag_id: row.tag_id,
            }))?;
        }
        if (n as i64) < BATCH {
            break;
        }
    }
    Ok(())
}

/// import_items in batches by its primary key (source, kind, source_id): every lookup and
/// every page of it uses all three columns.
fn import_items(
    conn: &mut DbConn,
    emit: &mut dyn FnMut(Record) -> Result<(), ArchiveError>,
) -> Result<(), ArchiveError> {
    use diesel::sql_types::Text;
    let mut last: Option<(String, String, String)> = None;
    loop {
        let rows: Vec<ImportItemRow> = match (&mut *conn, &last) {
            (DbConn::Sqlite(c), None) => diesel::sql_query(
                "SELECT source, kind, source_id, target_id FROM import_items \
                 ORDER BY source, kind, source_id LIMIT ?",
            )
            .bind::<diesel::sql_types::BigInt, _>(BATCH)
            .load(c)?,
            (DbConn::Sqlite(c), Some((a, b, k))) => diesel::sql_query(
                "SELECT source, kind, source_id, target_id FROM import_items \
                 WHERE (source, kind, source_id) > (?, ?, ?) \
                 ORDER BY source, kind, source_id LIMIT ?",
            )
            .bind::<Text, _>(a)
            .bind::<Text, _>(b)
            .bind::<Text, _>(k)
            .bind::<diesel::sql_types::BigInt, _>(BATCH)
            .load(c)?,
            (DbConn::Postgresql(c), None) => diesel::sql_query(
                "SELECT source, kind, source_id, target_id FROM import_items \
                 ORDER BY source, kind, source_id LIMIT $1",
            )
            .bind::<diesel::sql_types::BigInt, _>(BATCH)
            .load(c)?,
            (DbConn::Postgresql(c), Some((a, b, k))) => diesel::sql_query(
                "SELECT source, kind, source_id, target_id FROM import_items \
                 WHERE (source, kind, source_id) > ($1, $2, $3) \
                 ORDER BY source, kind, source_id LIMIT $4",
            )
            .bind::<Text, _>(a)
            .bind::<Text, _>(b)
            .bind::<Text, _>(k)
            .bind::<diesel::sql_types::BigInt, _>(BATCH)
            .load(c)?,
        };
        let Some(end) = rows.last() else { break };
        last = Some((end.source.clone(), end.kind.clone(), end.source_id.clone()));
        let n = rows.len();
        for row in rows {
            emit(Record::ImportItem(tables::ImportItem {
                source: row.source,
                kind: row.kind,
                source_id: row.source_id,
                target_id: row.target_id,
            }))?;
        }
        if (n as i64) < BATCH {
            break;
        }
    }
    Ok(())
}

/// Emits the whole site, header first (the trailer is the writer's): call inside
/// [`in_snapshot`].
pub fn export_records(
    conn: &mut DbConn,
    signer: &Signer,
    options: ExportOptions,
    now: chrono::NaiveDateTime,
    progress: &mut dyn Progress,
    emit: &mut dyn FnMut(Record) -> Result<(), ArchiveError>,
) -> Result<(), ArchiveError> {
    emit(Record::Header(Header {
        format: FORMAT_NAME.into(),
        version: FORMAT_VERSION,
        generator: format!("lectern {}", env!("CARGO_PKG_VERSION")),
        created_at: now,
        site: super::site_name(signer),
        secrets: options.secrets,
    }))?;
    let total_comments: i64 = comments::table.count().get_result(conn)?;
    let total = total_comments.max(0) as u64;

    let rows: Vec<tables::Setting> = settings::table
        .select(tables::Setting::as_select())
        .order(settings::name)
        .load(conn)?;
    for row in rows {
        let local = LOCAL_SETTINGS.contains(&row.name.as_str());
        let secret = row.name == "secret_key" && !options.secrets;
        if !local && !secret {
            emit(Record::Setting(row))?;
        }
    }
    let mut users_out = |record: Record| -> Result<(), ArchiveError> {
        let Record::User(mut user) = record else {
            return emit(record);
        };
        if !options.secrets {
            user.password_hash = String::new();
        }
        // Drawn from the secret as the pages draw it, so they survive without it.
        user.avatar_seed =
            Some(crate::users::author_avatar_seed(signer, &user.slug, user.avatar_seed) as i32);
        emit(Record::User(user))
    };
    by_int_key!(conn, users, id, tables::User, User, users_out, |_: &_| true);
    by_int_key!(conn, media, id, tables::Media, Media, emit, |_: &_| true);
    by_int_key!(
        conn,
        media_variants,
        id,
        tables::MediaVariant,
        MediaVariant,
        emit,
        |_: &_| true
    );
    media_chunks(conn, emit)?;
    by_int_key!(conn, tags, id, tables::Tag, Tag, emit, |_: &_| true);
    by_int_key!(conn, posts, id, tables::Post, Post, emit, |_: &_| true);
    post_tags(conn, emit)?;
    by_text_key!(conn, post_slugs, old_slug, tables::Redirect, Redirect, emit);
    by_text_key!(
        conn,
        old_addresses,
        address,
        tables::OldAddress,
        OldAddress,
        emit
    );
    let mut written: u64 = 0;
    let mut comments_out = |record: Record| -> Result<(), ArchiveError> {
        written += 1;
        if written.is_multiple_of(4096) {
            progress.tick(written, total, "written", written);
        }
        emit(record)
    };
    by_int_key!(
        conn,
        comments,
        id,
        tables::Comment,
        Comment,
        comments_out,
        |_: &_| true
    );
    by_int_key!(conn, blocks, id, tables::Block, Block, emit, |_: &_| true);
    by_text_key!(
        conn,
        notify_addresses,
        email,
        tables::Subscription,
        Subscription,
        emit
    );
    by_int_key!(
        conn,
        outbox,
        id,
        tables::Mail,
        Mail,
        emit,
        |m: &tables::Mail| m.status != "sent"
    );
    by_int_key!(
        conn,
        moderation_log,
        id,
        tables::LogEntry,
        Log,
        emit,
        |_: &_| true
    );
    by_text_key!(
        conn,
        used_tokens,
        token_hash,
        tables::UsedToken,
        UsedToken,
        emit
    );
    import_items(conn, emit)?;
    progress.finish();
    Ok(())
}

/// Streams the archive of `db` into `out`; returns the trailer written.
pub fn export_to<W: std::io::Write + Send + 'static>(
    db: &Db,
    signer: &Signer,
    options: ExportOptions,
    out: W,
    gzip: bool,
    progress: &mut dyn Progress,
) -> Result<(W, Trailer), ArchiveError> {
    let mut writer = RecordWriter::new(out, gzip);
    let now = crate::db::now();
    let mut outcome: Option<Result<(), ArchiveError>> = None;
    db.read_blocking(|conn| {
        outcome = Some(in_snapshot(conn, |conn| {
            export_records(conn, signer, options, now, progress, &mut |record| {
                writer.write(&record)
            })
        }));
        Ok(())
    })?;
    outcome.unwrap_or_else(|| Err(ArchiveError::Io("the export did not run".into())))?;
    writer.finish()
}

/// Writes the archive of `db` to `path` (compressed when it ends in `.gz`): into a file beside
/// it first, renamed into place only when complete, so `path` is never a partial archive.
pub fn export_file(
    db: &Db,
    signer: &Signer,
    options: ExportOptions,
    path: &Path,
    progress: &mut dyn Progress,
) -> Result<Trailer, ArchiveError> {
    export_file_as(
        db,
        signer,
        options,
        path,
        super::is_gzip_name(path),
        progress,
    )
}

/// `export_file`, compressed or not whatever the name.
pub fn export_file_as(
    db: &Db,
    signer: &Signer,
    options: ExportOptions,
    path: &Path,
    gzip: bool,
    progress: &mut dyn Progress,
) -> Result<Trailer, ArchiveError> {
    let partial = partial_path(path);
    let file = std::fs::File::create(&partial)
        .map_err(|e| ArchiveError::Io(format!("{}: {e}", partial.display())))?;
    let outcome =
        export_to(db, signer, options, file, gzip, progress).and_then(|(file, trailer)| {
            file.sync_all()
                .map_err(|e| ArchiveError::Io(format!("{}: {e}", partial.display())))?;
            std::fs::rename(&partial, path)
                .map_err(|e| ArchiveError::Io(format!("{}: {e}", path.display())))?;
            Ok(trailer)
        });
    if outcome.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    outcome
}

/// `site.jsonl.gz` → `site.jsonl.gz.partial`.
pub fn partial_path(path: &Path) -> std::path::PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".partial");
    path.with_file_name(name)
}
