//! Removing metadata from an image file without decoding its pixels: the file is walked block by
//! block and only what is needed to draw the picture (and its colour profile) is copied. The
//! walk also refuses a file whose structure is cut short, which some decoders forgive.

/// Why a file's structure was refused.
pub type Broken = &'static str;

const TRUNCATED: Broken = "the file is cut short or damaged";

/// A JPEG without its APP1 (EXIF, XMP), comment and other application segments. JFIF (APP0),
/// the ICC profile (APP2) and Adobe's colour transform (APP14) are kept; anything after the end
/// marker is dropped.
pub fn jpeg(data: &[u8]) -> Result<Vec<u8>, Broken> {
    if !data.starts_with(&[0xFF, 0xD8]) {
        return Err(TRUNCATED);
    }
    let mut out = Vec::with_capacity(data.len());
    out.extend_from_slice(&[0xFF, 0xD8]);
    let mut pos = 2;
    let mut scans = 0;
    loop {
        // Fill bytes may precede a marker.
        while data.get(pos) == Some(&0xFF) && data.get(pos + 1) == Some(&0xFF) {
            pos += 1;
        }
        if data.get(pos) != Some(&0xFF) {
            return Err(TRUNCATED);
        }
        let marker = *data.get(pos + 1).ok_or(TRUNCATED)?;
        match marker {
            0xD9 => {
                if scans == 0 {
                    return Err(TRUNCATED);
                }
                out.extend_from_slice(&[0xFF, 0xD9]);
                return Ok(out);
            }
            0x01 | 0xD0..=0xD7 => {
                out.extend_from_slice(&data[pos..pos + 2]);
                pos += 2;
                continue;
            }
            _ => {}
        }
        let len = usize::from(u16::from_be_bytes([
            *data.get(pos + 2).ok_or(TRUNCATED)?,
            *data.get(pos + 3).ok_or(TRUNCATED)?,
        ]));
        let end = pos + 2 + len;
        if len < 2 || end > data.len() {
            return Err(TRUNCATED);
        }
        let segment = &data[pos..end];
        let payload = &segment[4..];
        let keep = match marker {
            0xE0 => payload.starts_with(b"JFIF\0") || payload.starts_with(b"JFXX\0"),
            0xE2 => payload.starts_with(b"ICC_PROFILE\0"),
            0xEE => payload.starts_with(b"Adobe"),
            0xE1 | 0xE3..=0xED | 0xEF | 0xFE => false,
            _ => true,
        };
        if keep {
            out.extend_from_slice(segment);
        }
        pos = end;
        if marker == 0xDA {
            scans += 1;
            // Entropy-coded data runs to the next marker that is not a stuffed byte or a restart.
            let start = pos;
            loop {
                let byte = *data.get(pos).ok_or(TRUNCATED)?;
                if byte == 0xFF {
                    let next = *data.get(pos + 1).ok_or(TRUNCATED)?;
                    if next == 0x00 || (0xD0..=0xD7).contains(&next) {
                        pos += 2;
                        continue;
                    }
                    break;
                }
                pos += 1;
            }
            out.extend_from_slice(&data[start..pos]);
        }
    }
}

/// A PNG with only the chunks that draw it: critical chunks, transparency, colour (gamma,
/// chromaticities, sRGB, ICC, cICP), significant bits, background, pixel size and APNG's
/// animation chunks. Text (and the XMP in it), eXIf and time stamps are dropped.
pub fn png(data: &[u8]) -> Result<Vec<u8>, Broken> {
    const SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";
    const KEPT: [&[u8; 4]; 11] = [
        b"tRNS", b"gAMA", b"cHRM", b"sRGB", b"iCCP", b"cICP", b"sBIT", b"bKGD", b"pHYs", b"acTL",
        b"fcTL",
    ];
    if !data.starts_with(SIGNATURE) {
        return Err(TRUNCATED);
    }
    let mut out = Vec::with_capacity(data.len());
    out.extend_from_slice(SIGNATURE);
    let mut pos = SIGNATURE.len();
    loop {
        let header = data.get(pos..pos + 8).ok_or(TRUNCATED)?;
        let len = u32::from_be_bytes([header[0], header[1], header[2], header[3]]) as usize;
        let kind: &[u8] = &header[4..8];
        let end = pos
            .checked_add(12)
            .and_then(|n| n.checked_add(len))
            .filter(|end| *end <= data.len())
            .ok_or(TRUNCATED)?;
        let critical = kind[0].is_ascii_uppercase();
        if critical || kind == b"fdAT" || KEPT.iter().any(|k| k.as_slice() == kind) {
            out.extend_from_slice(&data[pos..end]);
        }
        pos = end;
        if kind == b"IEND" {
            return Ok(out);
        }
    }
}

/// A GIF with its frames, their timing and the loop count, without comments, plain-text
/// overlays or other application blocks (where XMP lives).
pub fn gif(data: &[u8]) -> Result<Vec<u8>, Broken> {
    if !(data.starts_with(b"GIF87a") || data.starts_with(b"GIF89a")) || data.len() < 13 {
        return Err(TRUNCATED);
    }
    let mut out = Vec::with_capacity(data.len());
    let flags = data[10];
    let mut pos = 13 + color_table_len(flags);
    out.extend_from_slice(data.get(..pos).ok_or(TRUNCATED)?);
    loop {
        match *data.get(pos).ok_or(TRUNCATED)? {
            0x3B => {
                out.push(0x3B);
                return Ok(out);
            }
            0x21 => {
                let label = *data.get(pos + 1).ok_or(TRUNCATED)?;
                let end = sub_blocks_end(data, pos + 2)?;
                let keep = match label {
                    0xF9 => true,
                    0xFF => {
                        let id = data.get(pos + 3..pos + 14).ok_or(TRUNCATED)?;
                        id == b"NETSCAPE2.0" || id == b"ANIMEXTS1.0"
                    }
                    _ => false,
                };
                if keep {
                    out.extend_from_slice(&data[pos..end]);
                }
                pos = end;
            }
            0x2C => {
                let flags = *data.get(pos + 9).ok_or(TRUNCATED)?;
                // Descriptor, local colour table, LZW code size, then the data sub-blocks.
                let data_start = pos + 10 + color_table_len(flags) + 1;
                let end = sub_blocks_end(data, data_start)?;
                out.extend_from_slice(&data[pos..end]);
                pos = end;
            }
            _ => return Err(TRUNCATED),
        }
    }
}

fn color_table_len(flags: u8) -> usize {
    if flags & 0x80 == 0 {
        0
    } else {
        3 << ((flags & 7) + 1)
    }
}

/// The position just after the terminator of the sub-blocks starting at `pos`.
fn sub_blocks_end(data: &[u8], mut pos: usize) -> Result<usize, Broken> {
    loop {
        let size = usize::from(*data.get(pos).ok_or(TRUNCATED)?);
        pos += 1;
        if size == 0 {
            return Ok(pos);
        }
        pos += size;
        if pos > data.len() {
            return Err(TRUNCATED);
        }
    }
}

/// A WebP without its EXIF and XMP chunks (and with the extended header's flags saying so).
pub fn webp(data: &[u8]) -> Result<Vec<u8>, Broken> {
    if data.len() < 12 || &data[..4] != b"RIFF" || &data[8..12] != b"WEBP" {
        return Err(TRUNCATED);
    }
    let riff_len = u32::from_le_bytes([data[4], data[5], data[6], data[7]]) as usize;
    let body_end = riff_len.checked_add(8).ok_or(TRUNCATED)?;
    if body_end > data.len() {
        return Err(TRUNCATED);
    }
    let mut chunks = Vec::with_capacity(data.len());
    let mut pos = 12;
    while pos < body_end {
        let header = data.get(pos..pos + 8).ok_or(TRUNCATED)?;
        let kind = &header[..4];
        let len = u32::from_le_bytes([header[4], header[5], header[6], header[7]]) as usize;
        let padded = len + (len & 1);
        let end = pos
            .checked_add(8 + padded)
            .filter(|end| *end <= body_end)
            .ok_or(TRUNCATED)?;
        if kind != b"EXIF" && kind != b"XMP " {
            let start = chunks.len();
            chunks.extend_from_slice(&data[pos..end]);
            if kind == b"VP8X" && len >= 1 {
                // Flags: ICC 0x20, alpha 0x10, EXIF 0x08, XMP 0x04, animation 0x02.
                chunks[start + 8] &= !(0x08 | 0x04);
            }
        }
        pos = end;
    }
    let mut out = Vec::with_capacity(chunks.len() + 12);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(
        &u32::try_from(chunks.len() + 4)
            .map_err(|_| TRUNCATED)?
            .to_le_bytes(),
    );
    out.extend_from_slice(b"WEBP");
    out.extend_from_slice(&chunks);
    Ok(out)
}
