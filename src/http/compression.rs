//! Content coding: which encoding a client accepts (RFC 9110, 12.5.3), compressing a whole
//! body, and a page compressed once in pieces and joined around a small per-request part.
//!
//! A kept page is the same for every anonymous reader except the comment form's token. Its
//! fixed parts are compressed once, when the page is kept; a request compresses only the token
//! and joins the pieces:
//! - gzip: each piece is raw deflate ending on a byte boundary (a sync flush), the token goes in
//!   a stored block, and the gzip trailer's CRC-32 is combined from the pieces' CRCs. The result
//!   is one gzip member, as browsers expect.
//! - brotli: the pieces are brotli streams made to be joined (the first "appendable", the rest
//!   "catable": byte aligned at their start, never referring to earlier data), joined with the
//!   brotli crate's `BroCatli`, which only rewrites the bits where two streams meet.

use std::io::Write;

use brotli::enc::BrotliEncoderParams;
use flate2::{Compress, Compression, FlushCompress};

/// What a response body is sent as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coding {
    Identity,
    Gzip,
    Brotli,
}

impl Coding {
    /// The `Content-Encoding` value; none for identity.
    pub fn header(self) -> Option<&'static str> {
        match self {
            Coding::Identity => None,
            Coding::Gzip => Some("gzip"),
            Coding::Brotli => Some("br"),
        }
    }
}

/// The coding to answer with, from `Accept-Encoding`: the acceptable coding with the highest
/// q-value, brotli before gzip before identity when they tie. No header means identity; identity
/// is acceptable unless `identity;q=0` or `*;q=0` says otherwise. `None`: nothing we can send
/// is acceptable (406).
pub fn negotiate(accept_encoding: Option<&str>) -> Option<Coding> {
    let Some(header) = accept_encoding else {
        return Some(Coding::Identity);
    };
    let (mut br, mut gzip, mut identity, mut any) = (None, None, None, None);
    for item in header.split(',') {
        let mut parts = item.split(';');
        let name = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        if name.is_empty() {
            continue;
        }
        let mut q = 1.0f32;
        for param in parts {
            if let Some((key, value)) = param.split_once('=')
                && key.trim().eq_ignore_ascii_case("q")
            {
                // A malformed weight makes the coding unacceptable rather than preferred.
                q = value
                    .trim()
                    .parse::<f32>()
                    .ok()
                    .filter(|q| (0.0..=1.0).contains(q))
                    .unwrap_or(0.0);
            }
        }
        let slot = match name.as_str() {
            "br" => &mut br,
            "gzip" | "x-gzip" => &mut gzip,
            "identity" => &mut identity,
            "*" => &mut any,
            _ => continue,
        };
        *slot = Some(q);
    }
    let br = br.or(any).unwrap_or(0.0);
    let gzip = gzip.or(any).unwrap_or(0.0);
    // Identity is acceptable unless excluded, but a coding the client asked for by name comes
    // first: an unlisted identity only wins when nothing else is acceptable.
    let identity = identity.or(any).unwrap_or(f32::MIN_POSITIVE);
    let best = [
        (br, Coding::Brotli),
        (gzip, Coding::Gzip),
        (identity, Coding::Identity),
    ]
    .into_iter()
    // The first of the highest wins: brotli, then gzip, then identity.
    .fold(None::<(f32, Coding)>, |best, (q, coding)| match best {
        Some((top, _)) if top >= q => best,
        _ => Some((q, coding)),
    })?;
    (best.0 > 0.0).then_some(best.1)
}

/// Whether a body of this media type gains from compression.
pub fn compressible(content_type: &str) -> bool {
    let media = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    media.starts_with("text/")
        || matches!(
            media.as_str(),
            "application/xml"
                | "application/atom+xml"
                | "application/rss+xml"
                | "application/json"
                | "application/javascript"
                | "image/svg+xml"
        )
}

/// `bytes` as one gzip member.
pub fn gzip(bytes: &[u8], level: u32) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(
        Vec::with_capacity(bytes.len() / 3 + 64),
        Compression::new(level),
    );
    // Writing into a Vec cannot fail.
    let _ = encoder.write_all(bytes);
    encoder.finish().unwrap_or_default()
}

/// `bytes` as a brotli stream.
pub fn brotli(bytes: &[u8], quality: i32) -> Vec<u8> {
    let params = brotli_params(quality, bytes.len());
    compress_brotli(bytes, &params)
}

/// The window of every brotli stream made here: joined streams must not have a larger window
/// than the first, so all use the same.
const BROTLI_LGWIN: i32 = 22;

fn brotli_params(quality: i32, size_hint: usize) -> BrotliEncoderParams {
    BrotliEncoderParams {
        quality,
        lgwin: BROTLI_LGWIN,
        size_hint,
        ..BrotliEncoderParams::default()
    }
}

fn compress_brotli(bytes: &[u8], params: &BrotliEncoderParams) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() / 4 + 64);
    let mut input = bytes;
    // Reading a slice and writing a Vec cannot fail.
    let _ = brotli::BrotliCompress(&mut input, &mut out, params);
    out
}

/// Raw deflate of `bytes`. `last`: the final block (the stream ends); otherwise the output ends
/// with a sync flush, on a byte boundary, so more deflate data may follow it.
fn raw_deflate(bytes: &[u8], level: u32, last: bool) -> Vec<u8> {
    let mut compress = Compress::new(Compression::new(level), false);
    let mut out = Vec::with_capacity(bytes.len() / 3 + 64);
    let flush = if last {
        FlushCompress::Finish
    } else {
        FlushCompress::Sync
    };
    let mut input = bytes;
    loop {
        if out.capacity() - out.len() < 1024 {
            out.reserve(out.capacity().max(4096));
        }
        let before_in = compress.total_in();
        // Compressing into spare capacity of a Vec cannot fail.
        let status = compress.compress_vec(input, &mut out, flush);
        let consumed = (compress.total_in() - before_in) as usize;
        input = &input[consumed..];
        match status {
            Ok(flate2::Status::StreamEnd) => break,
            Ok(_) if input.is_empty() && !last && out.capacity() > out.len() => break,
            Ok(_) => {}
            Err(_) => break,
        }
    }
    out
}

/// `bytes` as a catable brotli stream of uncompressed meta-blocks (RFC 7932): the window size,
/// then meta-blocks of at most 64 KiB, each with ISUNCOMPRESSED set and its bytes starting on a
/// byte boundary, then the empty last meta-block.
fn brotli_stored(bytes: &[u8]) -> Vec<u8> {
    let mut out = BitWriter::with_capacity(bytes.len() + 8);
    // WBITS = 22: a 1, then 22 - 17 in three bits.
    out.put(1, 1);
    out.put((BROTLI_LGWIN - 17) as u64, 3);
    for chunk in bytes.chunks(1 << 16) {
        out.put(0, 1); // ISLAST
        out.put(0, 2); // MNIBBLES: four nibbles
        out.put(chunk.len() as u64 - 1, 16); // MLEN - 1
        out.put(1, 1); // ISUNCOMPRESSED
        out.align();
        out.bytes.extend_from_slice(chunk);
    }
    out.put(1, 1); // ISLAST
    out.put(1, 1); // ISLASTEMPTY
    out.align();
    out.bytes
}

/// Bits, least significant first, as brotli writes them.
struct BitWriter {
    bytes: Vec<u8>,
    /// Bits already used in the last byte (0 when it is complete).
    used: u32,
}

impl BitWriter {
    fn with_capacity(n: usize) -> BitWriter {
        BitWriter {
            bytes: Vec::with_capacity(n),
            used: 0,
        }
    }

    fn put(&mut self, value: u64, bits: u32) {
        for i in 0..bits {
            if self.used == 0 {
                self.bytes.push(0);
            }
            if (value >> i) & 1 == 1
                && let Some(last) = self.bytes.last_mut()
            {
                *last |= 1 << self.used;
            }
            self.used = (self.used + 1) % 8;
        }
    }

    /// Pads the last byte with zero bits.
    fn align(&mut self) {
        self.used = 0;
    }
}

/// The fixed parts of a page (before and after the per-request part), compressed once.
pub struct Pieces {
    head_len: usize,
    tail_len: usize,
    head_crc: crc32fast::Hasher,
    tail_crc: crc32fast::Hasher,
    head_deflate: Vec<u8>,
    tail_deflate: Vec<u8>,
    head_brotli: Vec<u8>,
    tail_brotli: Vec<u8>,
}

const GZIP_LEVEL: u32 = 6;
const BROTLI_QUALITY: i32 = 9;
const BROTLI_QUALITY_LARGE: i32 = 5;
const LARGE_PAGE_BYTES: usize = 512 * 1024;

impl Pieces {
    pub fn new(head: &[u8], tail: &[u8]) -> Pieces {
        let crc = |bytes: &[u8]| {
            let mut hasher = crc32fast::Hasher::new();
            hasher.update(bytes);
            hasher
        };
        // Pieces are made on a request's thread: a large page (a sitemap file) gets a quicker
        // brotli setting, so that its first compressed response does not hold the thread for
        // a second.
        let quality = if head.len() + tail.len() > LARGE_PAGE_BYTES {
            BROTLI_QUALITY_LARGE
        } else {
            BROTLI_QUALITY
        };
        let mut first = brotli_params(quality, head.len());
        first.appendable = true;
        let mut rest = brotli_params(quality, tail.len());
        rest.catable = true;
        rest.appendable = true;
        Pieces {
            head_len: head.len(),
            tail_len: tail.len(),
            head_crc: crc(head),
            tail_crc: crc(tail),
            head_deflate: raw_deflate(head, GZIP_LEVEL, false),
            tail_deflate: raw_deflate(tail, GZIP_LEVEL, true),
            head_brotli: compress_brotli(head, &first),
            tail_brotli: compress_brotli(tail, &rest),
        }
    }

    /// What the pieces weigh, for the cache's budget.
    pub fn weight(&self) -> usize {
        self.head_deflate.len()
            + self.tail_deflate.len()
            + self.head_brotli.len()
            + self.tail_brotli.len()
    }

    /// head + `middle` + tail as one gzip member.
    pub fn gzip(&self, middle: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(
            10 + self.head_deflate.len() + middle.len() + 16 + self.tail_deflate.len() + 8,
        );
        // ID1 ID2, deflate, no flags, no time, no extra flags, unknown OS.
        out.extend_from_slice(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255]);
        out.extend_from_slice(&self.head_deflate);
        // Stored blocks (BFINAL 0, BTYPE 00; the header's bits are padded to the byte
        // boundary the sync flush left), at most 65,535 bytes each.
        for chunk in middle.chunks(u16::MAX as usize) {
            let len = chunk.len() as u16;
            out.push(0);
            out.extend_from_slice(&len.to_le_bytes());
            out.extend_from_slice(&(!len).to_le_bytes());
            out.extend_from_slice(chunk);
        }
        out.extend_from_slice(&self.tail_deflate);
        let mut crc = self.head_crc.clone();
        let mut middle_crc = crc32fast::Hasher::new();
        middle_crc.update(middle);
        crc.combine(&middle_crc);
        crc.combine(&self.tail_crc);
        out.extend_from_slice(&crc.finalize().to_le_bytes());
        let size = (self.head_len + middle.len() + self.tail_len) as u32;
        out.extend_from_slice(&size.to_le_bytes());
        out
    }

    /// head + `middle` + tail as one brotli stream.
    pub fn brotli(&self, middle: &[u8]) -> Vec<u8> {
        // The middle is a few dozen bytes: stored, not compressed (a brotli encoder would first
        // zero its tables, which costs more than the whole rest of the response).
        let middle = brotli_stored(middle);
        let total = self.head_brotli.len() + middle.len() + self.tail_brotli.len() + 16;
        let mut out = vec![0u8; total];
        let mut written = 0;
        let mut join = brotli::concat::BroCatli::new();
        for piece in [&self.head_brotli[..], &middle[..], &self.tail_brotli[..]] {
            join.new_brotli_file();
            let mut read = 0;
            match join.stream(piece, &mut read, &mut out, &mut written) {
                brotli::concat::BroCatliResult::Success
                | brotli::concat::BroCatliResult::NeedsMoreInput => {}
                _ => return Vec::new(),
            }
        }
        match join.finish(&mut out, &mut written) {
            brotli::concat::BroCatliResult::Success => {
                out.truncate(written);
                out
            }
            _ => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    #[test]
    fn negotiation_follows_q_values() {
        assert_eq!(negotiate(None), Some(Coding::Identity));
        assert_eq!(negotiate(Some("")), Some(Coding::Identity));
        assert_eq!(negotiate(Some("gzip, deflate, br")), Some(Coding::Brotli));
        assert_eq!(negotiate(Some("gzip")), Some(Coding::Gzip));
        assert_eq!(negotiate(Some("br;q=0.5, gzip")), Some(Coding::Gzip));
        assert_eq!(negotiate(Some("gzip;q=0, br;q=0")), Some(Coding::Identity));
        assert_eq!(
            negotiate(Some("identity;q=0, gzip;q=0.1")),
            Some(Coding::Gzip)
        );
        assert_eq!(negotiate(Some("*;q=0")), None);
        assert_eq!(negotiate(Some("identity;q=0")), None);
        assert_eq!(negotiate(Some("*")), Some(Coding::Brotli));
        assert_eq!(negotiate(Some("deflate")), Some(Coding::Identity));
        assert_eq!(negotiate(Some("GZIP;Q=1")), Some(Coding::Gzip));
        assert_eq!(negotiate(Some("br;q=0.2, gzip;q=0.8")), Some(Coding::Gzip));
        assert_eq!(
            negotiate(Some("gzip;q=0.5, identity")),
            Some(Coding::Identity)
        );
        assert_eq!(negotiate(Some("gzip;q=bad")), Some(Coding::Identity));
    }

    fn page() -> (Vec<u8>, Vec<u8>) {
        let mut head = b"<!doctype html><title>x</title>".to_vec();
        for i in 0..2000 {
            head.extend_from_slice(format!("<p>comment {i} — ünïcode</p>\n").as_bytes());
        }
        let tail = b"<input name=x></form></body></html>\n".repeat(50);
        (head, tail)
    }

    #[test]
    fn gzip_pieces_decode_to_the_whole_page_in_one_member() {
        let (head, tail) = page();
        let pieces = Pieces::new(&head, &tail);
        for middle in [&b"token-abc123"[..], b"", &vec![b'x'; 70_000][..]] {
            let body = pieces.gzip(middle);
            let mut decoded = Vec::new();
            // GzDecoder reads exactly one member.
            flate2::read::GzDecoder::new(&body[..])
                .read_to_end(&mut decoded)
                .unwrap();
            let whole = [&head[..], middle, &tail[..]].concat();
            assert_eq!(decoded, whole);
            let mut all = Vec::new();
            flate2::read::MultiGzDecoder::new(&body[..])
                .read_to_end(&mut all)
                .unwrap();
            assert_eq!(all, whole, "nothing follows the first member");
        }
    }

    #[test]
    fn brotli_pieces_decode_to_the_whole_page() {
        let (head, tail) = page();
        let pieces = Pieces::new(&head, &tail);
        for middle in [&b"token-abc123"[..], b"", &vec![b'x'; 70_000][..]] {
            let body = pieces.brotli(middle);
            assert!(!body.is_empty());
            let mut decoded = Vec::new();
            brotli::Decompressor::new(&body[..], 4096)
                .read_to_end(&mut decoded)
                .unwrap();
            assert_eq!(decoded, [&head[..], middle, &tail[..]].concat());
        }
    }

    #[test]
    fn stored_brotli_streams_decode_alone() {
        for len in [0usize, 1, 60, 65_536, 65_537, 200_000] {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
            let mut decoded = Vec::new();
            brotli::Decompressor::new(&brotli_stored(&bytes)[..], 4096)
                .read_to_end(&mut decoded)
                .unwrap();
            assert_eq!(decoded, bytes, "{len}");
        }
    }

    #[test]
    fn whole_bodies_round_trip() {
        let (head, _) = page();
        let mut decoded = Vec::new();
        flate2::read::GzDecoder::new(&gzip(&head, 6)[..])
            .read_to_end(&mut decoded)
            .unwrap();
        assert_eq!(decoded, head);
        let mut decoded = Vec::new();
        brotli::Decompressor::new(&brotli(&head, 5)[..], 4096)
            .read_to_end(&mut decoded)
            .unwrap();
        assert_eq!(decoded, head);
    }
}
