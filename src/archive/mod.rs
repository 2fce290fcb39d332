//! Moving out and staying safe: the lectern archive (`lectern export`, `lectern import
//! lectern`), the WordPress export, and online backups with a verified restore.
//!
//! The archive is JSON Lines, gzip-compressed when the file name ends in `.gz`: a header (format
//! name and [`FORMAT_VERSION`]), one record per row, and a trailer with the count of each record
//! type. Both ways stream in batches: the export reads keyset pages inside one snapshot
//! transaction, the import reads the file once to check it (header, every record, the trailer's
//! counts) before it writes anything, then writes it all in one transaction with the ids it
//! had, so a restored site renders the same pages.

pub mod backup;
pub mod export;
pub mod handlers;
pub mod progress;
pub mod restore;
pub mod tables;
pub mod wxr;

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::db::DbError;

/// The `format` of every lectern archive's header.
pub const FORMAT_NAME: &str = "lectern-archive";
/// Bumped whenever a record type gains, loses or changes a field; an import refuses a newer one.
/// 2: media, media_variant and media_chunk records (the media library). Version 1 archives,
/// which have none, are read as they are.
pub const FORMAT_VERSION: u32 = 2;

#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// The file cannot be read, is not an archive, is truncated or is from a newer lectern.
    #[error("{0}")]
    Refused(String),
    /// The target database holds a site already (and `--merge` was not given).
    #[error("{0}")]
    NotEmpty(String),
    #[error("{0}")]
    Io(String),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<diesel::result::Error> for ArchiveError {
    fn from(e: diesel::result::Error) -> ArchiveError {
        ArchiveError::Db(DbError::from(e))
    }
}

/// The first record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Header {
    pub format: String,
    pub version: u32,
    /// The lectern that wrote it.
    pub generator: String,
    pub created_at: chrono::NaiveDateTime,
    /// A stable name of the site (derived from its secret, revealing nothing of it): `--merge`
    /// remembers what it brought in under it.
    pub site: String,
    /// Whether password hashes and the secret key are in it.
    pub secrets: bool,
}

/// The last record: how many of each type came before it. An archive without it was cut
/// short.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Trailer {
    pub counts: BTreeMap<String, u64>,
}

/// One line of an archive.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Record {
    Header(Header),
    Setting(tables::Setting),
    User(tables::User),
    Media(tables::Media),
    MediaVariant(tables::MediaVariant),
    MediaChunk(tables::MediaChunk),
    Tag(tables::Tag),
    Post(tables::Post),
    PostTag(tables::PostTag),
    Redirect(tables::Redirect),
    OldAddress(tables::OldAddress),
    Comment(tables::Comment),
    Block(tables::Block),
    Subscription(tables::Subscription),
    Mail(tables::Mail),
    Log(tables::LogEntry),
    UsedToken(tables::UsedToken),
    ImportItem(tables::ImportItem),
    Trailer(Trailer),
}

impl Record {
    /// The record's `type`, as written.
    pub fn kind(&self) -> &'static str {
        match self {
            Record::Header(_) => "header",
            Record::Setting(_) => "setting",
            Record::User(_) => "user",
            Record::Media(_) => "media",
            Record::MediaVariant(_) => "media_variant",
            Record::MediaChunk(_) => "media_chunk",
            Record::Tag(_) => "tag",
            Record::Post(_) => "post",
            Record::PostTag(_) => "post_tag",
            Record::Redirect(_) => "redirect",
            Record::OldAddress(_) => "old_address",
            Record::Comment(_) => "comment",
            Record::Block(_) => "block",
            Record::Subscription(_) => "subscription",
            Record::Mail(_) => "mail",
            Record::Log(_) => "log",
            Record::UsedToken(_) => "used_token",
            Record::ImportItem(_) => "import_item",
            Record::Trailer(_) => "trailer",
        }
    }
}

/// Settings that describe one database rather than the site: never exported.
pub const LOCAL_SETTINGS: &[&str] = &[
    "setup_nonce",
    "setup_token_hash",
    LAST_BACKUP_SETTING,
    "archive_restored_from",
];

/// The `settings` row where `lectern backup` records when it last finished.
pub const LAST_BACKUP_SETTING: &str = "last_backup_at";

/// Whether `path` names a compressed archive.
pub fn is_gzip_name(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("gz"))
}

/// Writes records as JSON lines, compressed or not.
pub struct RecordWriter<W: Write> {
    /// serde_json writes a record in many small pieces: they are gathered here before they
    /// reach the compressor (which is slow on small writes) or the file.
    out: BufWriter<Box<dyn WriteFinish<W>>>,
    pub counts: BTreeMap<String, u64>,
}

/// A writer that is finished explicitly (gzip writes its trailer there).
pub trait WriteFinish<W>: Write + Send {
    fn finish(self: Box<Self>) -> std::io::Result<W>;
}

struct Plain<W: Write>(BufWriter<W>);

impl<W: Write + Send> Write for Plain<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

impl<W: Write + Send> WriteFinish<W> for Plain<W> {
    fn finish(self: Box<Self>) -> std::io::Result<W> {
        self.0.into_inner().map_err(|e| e.into_error())
    }
}

struct Gz<W: Write>(flate2::write::GzEncoder<BufWriter<W>>);

impl<W: Write + Send> Write for Gz<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

impl<W: Write + Send> WriteFinish<W> for Gz<W> {
    fn finish(self: Box<Self>) -> std::io::Result<W> {
        self.0.finish()?.into_inner().map_err(|e| e.into_error())
    }
}

impl<W: Write + Send + 'static> RecordWriter<W> {
    pub fn new(out: W, gzip: bool) -> RecordWriter<W> {
        let buffered = BufWriter::with_capacity(64 * 1024, out);
        let out: Box<dyn WriteFinish<W>> = if gzip {
            Box::new(Gz(flate2::write::GzEncoder::new(
                buffered,
                flate2::Compression::fast(),
            )))
        } else {
            Box::new(Plain(buffered))
        };
        RecordWriter {
            out: BufWriter::with_capacity(64 * 1024, out),
            counts: BTreeMap::new(),
        }
    }

    pub fn write(&mut self, record: &Record) -> Result<(), ArchiveError> {
        serde_json::to_writer(&mut self.out, record)
            .map_err(|e| ArchiveError::Io(e.to_string()))?;
        self.out
            .write_all(b"\n")
            .map_err(|e| ArchiveError::Io(e.to_string()))?;
        if !matches!(record, Record::Header(_) | Record::Trailer(_)) {
            *self.counts.entry(record.kind().to_string()).or_default() += 1;
        }
        Ok(())
    }

    /// Writes the trailer and finishes the stream.
    pub fn finish(mut self) -> Result<(W, Trailer), ArchiveError> {
        let trailer = Trailer {
            counts: std::mem::take(&mut self.counts),
        };
        self.write(&Record::Trailer(trailer.clone()))?;
        let out = self
            .out
            .into_inner()
            .map_err(|e| ArchiveError::Io(e.into_error().to_string()))?
            .finish()
            .map_err(|e| ArchiveError::Io(e.to_string()))?;
        Ok((out, trailer))
    }
}

/// Counts the bytes read through it (of the file, before decompression): progress.
pub struct Counting<R> {
    inner: R,
    pub read: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read
            .fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
        Ok(n)
    }
}

/// Reads an archive's records one line at a time, checking the header first and noticing a
/// missing trailer at the end.
pub struct RecordReader {
    lines: Box<dyn BufRead + Send>,
    path: PathBuf,
    line_no: u64,
    pub header: Header,
    pub bytes_read: std::sync::Arc<std::sync::atomic::AtomicU64>,
    pub file_size: u64,
    trailer: Option<Trailer>,
    counts: BTreeMap<String, u64>,
    buf: String,
}

impl RecordReader {
    /// Opens `path` (gzip or not, by its first bytes) and reads its header.
    pub fn open(path: &Path) -> Result<RecordReader, ArchiveError> {
        let unreadable = |e: std::io::Error| {
            ArchiveError::Refused(format!("{}: cannot be read: {e}", path.display()))
        };
        let file = File::open(path).map_err(unreadable)?;
        let file_size = file.metadata().map_err(unreadable)?.len();
        let read = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let mut raw = BufReader::with_capacity(
            64 * 1024,
            Counting {
                inner: file,
                read: read.clone(),
            },
        );
        let head = raw.fill_buf().map_err(unreadable)?;
        let lines: Box<dyn BufRead + Send> = if head.starts_with(&[0x1f, 0x8b]) {
            Box::new(BufReader::with_capacity(
                64 * 1024,
                flate2::bufread::MultiGzDecoder::new(raw),
            ))
        } else if head.starts_with(b"SQLite format 3\0") {
            return Err(ArchiveError::Refused(format!(
                "{}: this is an SQLite database (a backup?), not an archive; use `lectern restore`",
                path.display()
            )));
        } else {
            Box::new(raw)
        };
        let mut reader = RecordReader {
            lines,
            path: path.to_path_buf(),
            line_no: 0,
            header: Header {
                format: String::new(),
                version: 0,
                generator: String::new(),
                created_at: chrono::NaiveDateTime::default(),
                site: String::new(),
                secrets: false,
            },
            bytes_read: read,
            file_size,
            trailer: None,
            counts: BTreeMap::new(),
            buf: String::new(),
        };
        reader.header = reader.read_header()?;
        Ok(reader)
    }

    fn refused(&self, why: impl std::fmt::Display) -> ArchiveError {
        ArchiveError::Refused(format!("{}: {why}", self.path.display()))
    }

    /// Reads the next line into `buf`; false at the end of the file.
    fn next_line(&mut self) -> Result<bool, ArchiveError> {
        self.buf.clear();
        let n = self.lines.read_line(&mut self.buf).map_err(|e| {
            let why = match e.kind() {
                std::io::ErrorKind::UnexpectedEof => {
                    "the compressed archive is truncated (it ends before its trailer); nothing was written".to_string()
                }
                _ => format!("cannot be read after line {}: {e}", self.line_no),
            };
            ArchiveError::Refused(format!("{}: {why}", self.path.display()))
        })?;
        if n == 0 {
            return Ok(false);
        }
        self.line_no += 1;
        Ok(true)
    }

    fn line(&self) -> &str {
        self.buf.trim_end_matches(['\n', '\r'])
    }

    fn read_header(&mut self) -> Result<Header, ArchiveError> {
        if !self.next_line()? {
            return Err(self.refused("empty file, not a lectern archive"));
        }
        let line = self.line();
        let header = match serde_json::from_str::<Record>(line) {
            Ok(Record::Header(header)) if header.format == FORMAT_NAME => header,
            _ => {
                return Err(self.refused(
                    "not a lectern archive (its first line is not a lectern-archive header)",
                ));
            }
        };
        if header.version > FORMAT_VERSION {
            return Err(self.refused(format!(
                "archive format version {} is newer than this lectern reads ({FORMAT_VERSION}); upgrade lectern ({}) to import it",
                header.version, header.generator
            )));
        }
        if header.version == 0 {
            return Err(self.refused("archive format version 0 is not valid"));
        }
        Ok(header)
    }

    /// The next record (not the header), or `None` after the trailer. A file that ends
    /// without a trailer, or whose trailer's counts disagree, is refused.
    pub fn next_record(&mut self) -> Result<Option<Record>, ArchiveError> {
        if self.trailer.is_some() {
            // Nothing may follow the trailer.
            if !self.next_line()? || self.line().trim().is_empty() {
                return Ok(None);
            }
            return Err(self.refused(format!("line {}: records after the trailer", self.line_no)));
        }
        loop {
            if !self.next_line()? {
                return Err(self.refused(
                    "the archive is truncated (it ends before its trailer); nothing was written",
                ));
            }
            let line = self.line();
            if line.trim().is_empty() {
                continue;
            }
            let complete = self.buf.ends_with('\n');
            let record: Record = match serde_json::from_str(line) {
                Ok(record) => record,
                Err(e) if !complete && e.is_eof() => {
                    return Err(self.refused(format!(
                        "the archive is truncated (its line {} is cut short and it has no trailer); nothing was written",
                        self.line_no
                    )));
                }
                Err(e) => {
                    return Err(
                        self.refused(format!("line {}: not a valid record: {e}", self.line_no))
                    );
                }
            };
            match record {
                Record::Header(_) => {
                    return Err(self.refused(format!("line {}: a second header", self.line_no)));
                }
                Record::Trailer(trailer) => {
                    if trailer.counts != self.counts {
                        return Err(self.refused(format!(
                            "the trailer's counts ({}) disagree with the records read ({}); the archive is damaged",
                            describe_counts(&trailer.counts),
                            describe_counts(&self.counts)
                        )));
                    }
                    self.trailer = Some(trailer);
                    return self.next_record();
                }
                record => {
                    *self.counts.entry(record.kind().to_string()).or_default() += 1;
                    return Ok(Some(record));
                }
            }
        }
    }

    /// The counts read so far.
    pub fn counts(&self) -> &BTreeMap<String, u64> {
        &self.counts
    }

    pub fn bytes_read(&self) -> u64 {
        self.bytes_read.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// "12 comments, 3 posts, …".
pub fn describe_counts(counts: &BTreeMap<String, u64>) -> String {
    if counts.is_empty() {
        return "no records".into();
    }
    counts
        .iter()
        .map(|(kind, n)| format!("{n} {kind}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Reads the whole archive once, checking every record and the trailer, writing nothing.
pub fn check_file(
    path: &Path,
    progress: &mut dyn progress::Progress,
) -> Result<(Header, BTreeMap<String, u64>), ArchiveError> {
    let mut reader = RecordReader::open(path)?;
    let mut n: u64 = 0;
    while reader.next_record()?.is_some() {
        n += 1;
        if n.is_multiple_of(4096) {
            progress.tick(reader.bytes_read(), reader.file_size, "checked", n);
        }
    }
    progress.finish();
    Ok((reader.header.clone(), reader.counts().clone()))
}

/// A stable, secret-free name of the site whose secret is `signer`'s.
pub fn site_name(signer: &crate::crypto::Signer) -> String {
    let signed = signer.sign("archive-site", "lectern");
    signed
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(16)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_tagged_by_type() {
        let line = serde_json::to_string(&Record::Tag(tables::Tag {
            id: 1,
            name: "Rust".into(),
            slug: "rust".into(),
        }))
        .unwrap();
        assert_eq!(line, r#"{"type":"tag","id":1,"name":"Rust","slug":"rust"}"#);
    }
}
