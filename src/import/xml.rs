//! A streaming reader over quick-xml for the export formats: elements with canonical prefixes
//! (`wp:` whatever prefix the file bound WordPress's namespace to, `dsq:` for Disqus's), text
//! with CDATA sections and entities joined, and errors that name the line and column.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};

use super::ImportError;

/// A file being read, counting the bytes read so far (for progress).
pub struct CountingFile {
    file: File,
    read: Arc<AtomicU64>,
}

impl Read for CountingFile {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.file.read(buf)?;
        self.read.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// Opens `path` for reading, with a counter of the bytes read.
pub fn open_counting(path: &Path) -> Result<(CountingFile, Arc<AtomicU64>), ImportError> {
    let file = File::open(path)
        .map_err(|e| ImportError::Unreadable(format!("{}: {e}", path.display())))?;
    let read = Arc::new(AtomicU64::new(0));
    Ok((
        CountingFile {
            file,
            read: read.clone(),
        },
        read,
    ))
}

#[derive(Debug)]
pub enum Node {
    /// An element starts (an empty element is a start followed by its end).
    Start {
        name: String,
        attrs: Vec<(String, String)>,
    },
    End(String),
    /// Character data, CDATA or an entity, decoded; consecutive pieces belong together.
    Text(String),
    Eof,
}

pub struct XmlStream {
    reader: Reader<BufReader<CountingFile>>,
    buf: Vec<u8>,
    path: PathBuf,
    /// Prefix in the file → canonical prefix.
    prefixes: HashMap<String, String>,
    /// An empty element was just returned as a start: its end comes next.
    pending_end: bool,
    /// The names of the elements open now (canonical), outermost first.
    open: Vec<String>,
    /// Text skipped by `skip_current`, kept to reuse its allocation.
    scratch: String,
    pub bytes_read: Arc<AtomicU64>,
}

/// The canonical prefix of a namespace this importer knows.
fn canonical_prefix(uri: &str) -> Option<&'static str> {
    let bare = uri
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .trim_end_matches('/');
    if let Some(version) = bare.strip_prefix("wordpress.org/export/") {
        return Some(if version.ends_with("excerpt") {
            "excerpt"
        } else {
            "wp"
        });
    }
    match bare {
        "purl.org/rss/1.0/modules/content" => Some("content"),
        "purl.org/dc/elements/1.1" => Some("dc"),
        "disqus.com/disqus-internals" => Some("dsq"),
        "wellformedweb.org/CommentAPI" => Some("wfw"),
        _ => None,
    }
}

/// One step through the file; text is appended to the caller's string (a million comments
/// are read twice: the text is not copied through a string of its own on the way).
enum Step {
    Start {
        name: String,
        attrs: Vec<(String, String)>,
    },
    End(String),
    Text,
    Eof,
}

impl XmlStream {
    pub fn open(path: &Path) -> Result<XmlStream, ImportError> {
        let (file, bytes_read) = open_counting(path)?;
        let mut reader = Reader::from_reader(BufReader::with_capacity(1 << 16, file));
        let config = reader.config_mut();
        config.trim_text(false);
        config.check_end_names = true;
        Ok(XmlStream {
            reader,
            buf: Vec::with_capacity(1 << 14),
            path: path.to_path_buf(),
            prefixes: HashMap::new(),
            pending_end: false,
            open: Vec::new(),
            scratch: String::new(),
            bytes_read,
        })
    }

    /// The elements open now, outermost first.
    pub fn depth(&self) -> usize {
        self.open.len()
    }

    pub fn next_node(&mut self) -> Result<Node, ImportError> {
        let mut text = String::new();
        Ok(match self.step(&mut text)? {
            Step::Start { name, attrs } => Node::Start { name, attrs },
            Step::End(name) => Node::End(name),
            Step::Text => Node::Text(text),
            Step::Eof => Node::Eof,
        })
    }

    fn step(&mut self, text: &mut String) -> Result<Step, ImportError> {
        if self.pending_end {
            self.pending_end = false;
            return Ok(Step::End(self.open.pop().unwrap_or_default()));
        }
        loop {
            self.buf.clear();
            let raw = match read_raw(&mut self.reader, &mut self.buf, text) {
                Ok(raw) => raw,
                Err((at, problem)) => return Err(self.malformed(at, &problem)),
            };
            match raw {
                Raw::Skip => {}
                Raw::Start { name, attrs, empty } => {
                    for (key, value) in &attrs {
                        if let Some(prefix) = key.strip_prefix("xmlns:")
                            && let Some(canonical) = canonical_prefix(value)
                        {
                            self.prefixes
                                .insert(prefix.to_string(), canonical.to_string());
                        }
                    }
                    let attrs = attrs
                        .into_iter()
                        .map(|(k, v)| (self.canonical(k), v))
                        .collect();
                    let name = self.canonical(name);
                    self.open.push(name.clone());
                    self.pending_end = empty;
                    return Ok(Step::Start { name, attrs });
                }
                // The reader checked that it closes the element open last.
                Raw::End => return Ok(Step::End(self.open.pop().unwrap_or_default())),
                Raw::Text => return Ok(Step::Text),
                Raw::Eof => {
                    if let Some(open) = self.open.last() {
                        let at = self.reader.buffer_position();
                        return Err(self.malformed(
                            at,
                            &format!("the file ends inside <{open}>; expected </{open}>"),
                        ));
                    }
                    return Ok(Step::Eof);
                }
            }
        }
    }

    /// `prefix:local` with the prefix made canonical.
    fn canonical(&self, raw: String) -> String {
        let renamed = match raw.split_once(':') {
            Some((prefix, local)) if prefix != "xmlns" => match self.prefixes.get(prefix) {
                Some(canonical) if canonical != prefix => Some(format!("{canonical}:{local}")),
                _ => None,
            },
            _ => None,
        };
        renamed.unwrap_or(raw)
    }

    /// Whether the file declared a namespace with this canonical prefix.
    pub fn declares(&self, canonical: &str) -> bool {
        self.prefixes.values().any(|p| p == canonical)
    }

    /// Reads the text of the element just started, up to its end, ignoring any child elements'
    /// tags (their text is included).
    pub fn text_of_current(&mut self) -> Result<String, ImportError> {
        let mut text = String::new();
        self.text_of_current_into(&mut text)?;
        Ok(text)
    }

    fn text_of_current_into(&mut self, text: &mut String) -> Result<(), ImportError> {
        let depth = self.open.len();
        loop {
            match self.step(text)? {
                Step::End(_) if self.open.len() < depth => return Ok(()),
                Step::Eof => return Ok(()),
                _ => {}
            }
        }
    }

    /// Skips the rest of the element just started (its text is still read and checked).
    pub fn skip_current(&mut self) -> Result<(), ImportError> {
        let depth = self.open.len();
        let mut scratch = std::mem::take(&mut self.scratch);
        let outcome = loop {
            scratch.clear();
            match self.step(&mut scratch) {
                Ok(Step::End(_)) if self.open.len() < depth => break Ok(()),
                Ok(Step::Eof) => break Ok(()),
                Ok(_) => {}
                Err(e) => break Err(e),
            }
        };
        // A huge piece of skipped text does not keep its memory.
        if scratch.capacity() <= 1 << 16 {
            self.scratch = scratch;
        }
        outcome
    }

    /// A malformed-file error at byte `offset`: the line and column, counted again from the
    /// file (the reader keeps only positions).
    pub fn malformed(&self, offset: u64, problem: &str) -> ImportError {
        let (line, column) = line_and_column(&self.path, offset);
        ImportError::Unreadable(format!(
            "{}: line {line}, column {column}: {problem}",
            self.path.display()
        ))
    }
}

/// An event (text appended to the caller's string), or where and why reading failed.
enum Raw {
    Start {
        name: String,
        attrs: Vec<(String, String)>,
        empty: bool,
    },
    End,
    Text,
    Eof,
    Skip,
}

fn read_raw<R: std::io::BufRead>(
    reader: &mut Reader<R>,
    buf: &mut Vec<u8>,
    text: &mut String,
) -> Result<Raw, (u64, String)> {
    let event = match reader.read_event_into(buf) {
        Ok(event) => event,
        Err(e) => return Err((reader.error_position(), e.to_string())),
    };
    let here = reader.buffer_position();
    let failed = |e: &dyn std::fmt::Display| (here, e.to_string());
    Ok(match event {
        Event::Start(start) => element(&start, false).map_err(|e| failed(&e))?,
        Event::Empty(start) => element(&start, true).map_err(|e| failed(&e))?,
        Event::End(_) => Raw::End,
        Event::Text(t) => {
            text.push_str(&t.xml10_content().map_err(|e| failed(&e))?);
            Raw::Text
        }
        Event::CData(data) => {
            text.push_str(&data.xml10_content().map_err(|e| failed(&e))?);
            Raw::Text
        }
        Event::GeneralRef(reference) => {
            match reference.resolve_char_ref().map_err(|e| failed(&e))? {
                Some(c) => text.push(c),
                None => {
                    let name = reference.decode().map_err(|e| failed(&e))?;
                    match name.as_ref() {
                        "lt" => text.push('<'),
                        "gt" => text.push('>'),
                        "amp" => text.push('&'),
                        "quot" => text.push('"'),
                        "apos" => text.push('\''),
                        // An HTML entity outside CDATA: kept as written.
                        other => {
                            text.push('&');
                            text.push_str(other);
                            text.push(';');
                        }
                    }
                }
            }
            Raw::Text
        }
        Event::Eof => Raw::Eof,
        Event::Decl(_) | Event::PI(_) | Event::Comment(_) | Event::DocType(_) => Raw::Skip,
    })
}

fn element(start: &BytesStart<'_>, empty: bool) -> Result<Raw, quick_xml::Error> {
    let mut attrs = Vec::new();
    for attr in start.attributes() {
        let attr = attr?;
        let key = String::from_utf8_lossy(attr.key.as_ref()).into_owned();
        let value = attr
            .normalized_value(quick_xml::XmlVersion::Implicit1_0)?
            .into_owned();
        attrs.push((key, value));
    }
    Ok(Raw::Start {
        name: String::from_utf8_lossy(start.name().as_ref()).into_owned(),
        attrs,
        empty,
    })
}

/// Line and column (both from 1; the column in characters) of byte `offset` in the file.
fn line_and_column(path: &Path, offset: u64) -> (u64, u64) {
    let Ok(file) = File::open(path) else {
        return (0, 0);
    };
    let mut reader = BufReader::new(file).take(offset);
    let mut chunk = vec![0u8; 1 << 16];
    let (mut line, mut column) = (1u64, 1u64);
    while let Ok(n) = reader.read(&mut chunk) {
        if n == 0 {
            break;
        }
        for &b in &chunk[..n] {
            if b == b'\n' {
                line += 1;
                column = 1;
            } else if b & 0xC0 != 0x80 {
                // Counts characters, not the continuation bytes of UTF-8.
                column += 1;
            }
        }
    }
    (line, column)
}
