//! `lectern backup`, `lectern backup --verify` and `lectern restore`.
//!
//! On SQLite a backup is the database's own online copy (`VACUUM INTO`: one read transaction,
//! so it is the database as of one moment, while the server goes on writing); on PostgreSQL it
//! is the archive. `--verify` opens the copy, checks it and prints its counts. `restore` takes
//! either kind: an archive is restored as `lectern import lectern` does; an SQLite copy is
//! opened (a scratch copy of it is migrated if it is older) and streamed into the target the
//! same way, so it can land on PostgreSQL as well.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use diesel::prelude::*;

use super::export::{ExportOptions, export_records, in_snapshot};
use super::progress::Progress;
use super::restore::{RestoreOptions, Restorer, Summary};
use super::{ArchiveError, LAST_BACKUP_SETTING};
use crate::config::SqliteSync;
use crate::crypto::Signer;
use crate::db::{Backend, Db, DbConn, DbError};

/// What a backup file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackupKind {
    Sqlite,
    Archive,
}

pub fn kind_of(path: &Path) -> Result<BackupKind, ArchiveError> {
    use std::io::Read;
    let mut head = [0u8; 16];
    let n = std::fs::File::open(path)
        .and_then(|mut f| f.read(&mut head))
        .map_err(|e| ArchiveError::Refused(format!("{}: cannot be read: {e}", path.display())))?;
    Ok(if head[..n].starts_with(b"SQLite format 3\0") {
        BackupKind::Sqlite
    } else {
        BackupKind::Archive
    })
}

/// What `lectern backup` wrote.
pub struct BackupDone {
    pub kind: BackupKind,
    pub bytes: u64,
    pub counts: BTreeMap<String, u64>,
}

/// Takes a consistent copy of the site while it is being served, and records when.
pub fn backup(
    db: &Db,
    signer: &Signer,
    path: &Path,
    progress: &mut dyn Progress,
) -> Result<BackupDone, ArchiveError> {
    if path.exists() {
        return Err(ArchiveError::Refused(format!(
            "{} exists already; a backup never overwrites a file",
            path.display()
        )));
    }
    let done = match db.backend() {
        Backend::Sqlite => {
            let partial = super::export::partial_path(path);
            let _ = std::fs::remove_file(&partial);
            let target = partial.to_string_lossy().into_owned();
            db.read_blocking(|conn| {
                diesel::sql_query("VACUUM INTO ?")
                    .bind::<diesel::sql_types::Text, _>(&target)
                    .execute(conn)?;
                Ok(())
            })?;
            let file = std::fs::File::open(&partial)
                .map_err(|e| ArchiveError::Io(format!("{}: {e}", partial.display())))?;
            file.sync_all()
                .map_err(|e| ArchiveError::Io(format!("{}: {e}", partial.display())))?;
            // A link, not a rename: it fails if a file appeared at `path` meanwhile, so a
            // backup never replaces one.
            std::fs::hard_link(&partial, path)
                .map_err(|e| ArchiveError::Io(format!("{}: {e}", path.display())))?;
            let _ = std::fs::remove_file(&partial);
            let counts = sqlite_counts(path)?;
            BackupDone {
                kind: BackupKind::Sqlite,
                bytes: file_size(path),
                counts,
            }
        }
        Backend::Postgres => {
            // Always compressed (readers know gzip by its first bytes), whatever the name.
            let trailer = super::export::export_file_as(
                db,
                signer,
                ExportOptions { secrets: true },
                path,
                true,
                progress,
            )?;
            BackupDone {
                kind: BackupKind::Archive,
                bytes: file_size(path),
                counts: trailer.counts,
            }
        }
    };
    let now = crate::db::now().and_utc().to_rfc3339();
    db.write_blocking(|conn| crate::site::put(conn, LAST_BACKUP_SETTING, &now))?;
    Ok(done)
}

fn file_size(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

#[derive(QueryableByName)]
struct Line {
    #[diesel(sql_type = diesel::sql_types::Text)]
    integrity_check: String,
}

/// Opens an SQLite copy without changing it: the integrity check, and its counts.
fn sqlite_counts(path: &Path) -> Result<BTreeMap<String, u64>, ArchiveError> {
    let url = format!("file:{}?mode=ro", path.display());
    let mut conn = diesel::sqlite::SqliteConnection::establish(&url)
        .map_err(|e| ArchiveError::Refused(format!("{}: {e}", path.display())))?;
    let lines: Vec<Line> = diesel::sql_query("PRAGMA integrity_check")
        .load(&mut conn)
        .map_err(|e| ArchiveError::Refused(format!("{}: {e}", path.display())))?;
    let problems: Vec<String> = lines
        .into_iter()
        .map(|l| l.integrity_check)
        .filter(|l| l != "ok")
        .collect();
    if !problems.is_empty() {
        return Err(ArchiveError::Refused(format!(
            "{}: the integrity check failed: {}",
            path.display(),
            problems.join("; ")
        )));
    }
    let mut counts = BTreeMap::new();
    for (name, table) in [
        ("user", "users"),
        ("post", "posts"),
        ("tag", "tags"),
        ("comment", "comments"),
        ("redirect", "post_slugs"),
        ("block", "blocks"),
        ("subscription", "notify_addresses"),
        ("mail", "outbox WHERE status <> 'sent'"),
        ("log", "moderation_log"),
        ("media", "media"),
    ] {
        #[derive(QueryableByName)]
        struct Count {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        let count: Count = diesel::sql_query(format!("SELECT COUNT(*) AS n FROM {table}"))
            .get_result(&mut conn)
            .map_err(|e| {
                ArchiveError::Refused(format!("{}: not a lectern database ({e})", path.display()))
            })?;
        counts.insert(name.to_string(), count.n.max(0) as u64);
    }
    Ok(counts)
}

/// `lectern backup --verify`: checks a backup of either kind and returns its counts.
pub fn verify(
    path: &Path,
    progress: &mut dyn Progress,
) -> Result<(BackupKind, BTreeMap<String, u64>), ArchiveError> {
    match kind_of(path)? {
        BackupKind::Sqlite => Ok((BackupKind::Sqlite, sqlite_counts(path)?)),
        BackupKind::Archive => {
            let (_, counts) = super::check_file(path, progress)?;
            Ok((BackupKind::Archive, counts))
        }
    }
}

/// `lectern restore`: a backup of either kind into the empty database `db`.
pub fn restore(db: &Db, path: &Path, progress: &mut dyn Progress) -> Result<Summary, ArchiveError> {
    match kind_of(path)? {
        BackupKind::Archive => {
            super::restore::restore_file(db, path, RestoreOptions::default(), progress)
        }
        BackupKind::Sqlite => restore_sqlite(db, path, progress),
    }
}

/// Streams an SQLite copy into `db`, as an archive of it would be restored.
fn restore_sqlite(
    db: &Db,
    path: &Path,
    progress: &mut dyn Progress,
) -> Result<Summary, ArchiveError> {
    sqlite_counts(path)?;
    // A scratch copy, so the backup itself is never migrated or otherwise written.
    let scratch = tempfile_dir()?;
    let copy = scratch.join("backup.db");
    std::fs::copy(path, &copy)
        .map_err(|e| ArchiveError::Io(format!("copying {}: {e}", path.display())))?;
    let source = Db::open(
        &format!("sqlite://{}", copy.display()),
        SqliteSync::Normal,
        1,
    )
    .map_err(|e| ArchiveError::Refused(format!("{}: {e}", path.display())))?;
    let signer = Signer::new(
        source
            .read_blocking(|conn| crate::site::get(conn, "secret_key"))?
            .unwrap_or_default()
            .into_bytes(),
    );
    let now = crate::db::now();
    let mut outcome: Option<Result<Summary, ArchiveError>> = None;
    let written = db.write_blocking(|target| -> Result<(), DbError> {
        let mut run = |target: &mut DbConn| -> Result<Summary, ArchiveError> {
            let mut restorer: Option<Restorer> = None;
            let mut failed: Option<ArchiveError> = None;
            source.read_blocking(|conn| {
                let result = in_snapshot(conn, |conn| {
                    export_records(
                        conn,
                        &signer,
                        ExportOptions { secrets: true },
                        now,
                        progress,
                        &mut |record| match (&mut restorer, record) {
                            (None, super::Record::Header(header)) => {
                                restorer = Some(Restorer::begin(
                                    target,
                                    header,
                                    RestoreOptions::default(),
                                )?);
                                Ok(())
                            }
                            (Some(r), record) => r.accept(target, record),
                            (None, _) => Err(ArchiveError::Io("no header".into())),
                        },
                    )
                });
                if let Err(e) = result {
                    failed = Some(e);
                }
                Ok(())
            })?;
            if let Some(e) = failed {
                return Err(e);
            }
            match restorer {
                Some(r) => r.finish(target),
                None => Err(ArchiveError::Io("nothing was read".into())),
            }
        };
        match run(target) {
            Ok(summary) => {
                outcome = Some(Ok(summary));
                Ok(())
            }
            Err(e) => {
                outcome = Some(Err(e));
                Err(DbError::Task("restore failed".into()))
            }
        }
    });
    drop(source);
    let _ = std::fs::remove_dir_all(&scratch);
    match (outcome, written) {
        (Some(Ok(summary)), Ok(())) => Ok(summary),
        (Some(Err(e)), _) => Err(e),
        (_, Err(e)) => Err(e.into()),
        (None, Ok(())) => Err(ArchiveError::Io("the restore did not run".into())),
    }
}

/// A scratch folder beside the system's temporary files.
fn tempfile_dir() -> Result<PathBuf, ArchiveError> {
    let dir = std::env::temp_dir().join(format!(
        "lectern-restore-{}-{}",
        std::process::id(),
        crate::crypto::random_token(6).replace(['-', '_'], "x")
    ));
    std::fs::create_dir_all(&dir)
        .map_err(|e| ArchiveError::Io(format!("{}: {e}", dir.display())))?;
    Ok(dir)
}
