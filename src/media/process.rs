//! Turning uploaded bytes into what the library stores: the format recognised from the bytes
//! alone, the picture decoded within limits (so a "bomb" is refused from its header), turned
//! upright, its metadata removed, and narrower copies made. Pure and blocking: callers run it
//! on a blocking thread, a few at a time (see [`super::PROCESSING`]).

use std::io::Cursor;

use image::codecs::gif::GifDecoder;
use image::codecs::jpeg::JpegEncoder;
use image::codecs::png::PngEncoder;
use image::codecs::webp::WebPEncoder;
use image::metadata::Orientation;
use image::{AnimationDecoder, DynamicImage, ImageDecoder, ImageEncoder, ImageFormat, ImageReader};
use sha2::{Digest, Sha256};

use super::{MAX_PIXELS, MAX_SIDE, MediaFormat, VARIANT_WIDTHS};

/// What the decoders may allocate for one picture: a picture at the pixel limit, in 8-bit RGBA,
/// with room for the decoder's own buffers.
const MAX_DECODE_ALLOC: u64 = 4 * MAX_PIXELS + (32 << 20);

/// JPEG quality of re-encoded originals (only those whose orientation had to be applied) and
/// of the narrower copies.
const ORIGINAL_QUALITY: u8 = 90;
const VARIANT_QUALITY: u8 = 82;

/// A file the library will not take, and why (shown to the admin; answered with 422).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("the file is empty")]
    Empty,
    #[error("SVG images are not accepted, because they can carry scripts; upload a PNG instead")]
    Svg,
    #[error("the file is not a JPEG, PNG, GIF or WebP image (whatever its name says)")]
    NotAnImage,
    #[error(
        "the picture is {width} × {height} pixels; the limit is {MAX_SIDE} pixels a side and {} megapixels",
        MAX_PIXELS / 1_000_000
    )]
    TooLarge { width: u32, height: u32 },
    #[error("the image could not be read: {0}")]
    Unreadable(String),
    #[error(
        "the file is named “.{extension}” but is a {actual} image; rename it to match what it is"
    )]
    WrongName {
        extension: String,
        actual: &'static str,
    },
}

/// One stored file: the original or a narrower copy.
#[derive(Debug, Clone)]
pub struct EncodedVariant {
    pub width: u32,
    pub height: u32,
    pub format: MediaFormat,
    pub bytes: Vec<u8>,
}

/// A processed upload, ready to store.
#[derive(Debug, Clone)]
pub struct Processed {
    /// Hex SHA-256 of `original.bytes`, the picture's name in URLs.
    pub sha256: String,
    pub format: MediaFormat,
    /// The picture as stored (upright, without metadata), always first; then narrower copies,
    /// widest first.
    pub original: EncodedVariant,
    pub variants: Vec<EncodedVariant>,
}

/// Hex SHA-256 of some bytes.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn unreadable(e: impl std::fmt::Display) -> Refusal {
    Refusal::Unreadable(e.to_string())
}

/// The format the bytes are in, whatever the file's name or declared type.
pub fn sniff(bytes: &[u8]) -> Result<MediaFormat, Refusal> {
    if bytes.is_empty() {
        return Err(Refusal::Empty);
    }
    match image::guess_format(bytes) {
        Ok(ImageFormat::Jpeg) => Ok(MediaFormat::Jpeg),
        Ok(ImageFormat::Png) => Ok(MediaFormat::Png),
        Ok(ImageFormat::Gif) => Ok(MediaFormat::Gif),
        Ok(ImageFormat::WebP) => Ok(MediaFormat::Webp),
        _ => {
            let head =
                String::from_utf8_lossy(&bytes[..bytes.len().min(4096)]).to_ascii_lowercase();
            if head.contains("<svg") {
                Err(Refusal::Svg)
            } else {
                Err(Refusal::NotAnImage)
            }
        }
    }
}

fn limits() -> image::Limits {
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_DECODE_ALLOC);
    limits
}

/// Refuses a picture whose declared size is over the limits, before any pixel is decoded.
fn check_size(width: u32, height: u32) -> Result<(), Refusal> {
    if width == 0 || height == 0 {
        return Err(Refusal::Unreadable("the picture has no pixels".into()));
    }
    if width > MAX_SIDE || height > MAX_SIDE || u64::from(width) * u64::from(height) > MAX_PIXELS {
        return Err(Refusal::TooLarge { width, height });
    }
    Ok(())
}

/// Refuses a file whose name claims one image format while its bytes are another (a PNG
/// named `.jpg`): something is amiss, and the name would mislead whoever downloads it. Names
/// without an image extension are judged by their bytes alone.
pub fn check_name(file_name: &str, bytes: &[u8]) -> Result<(), Refusal> {
    let Some((_, extension)) = file_name.rsplit_once('.') else {
        return Ok(());
    };
    let extension = extension.to_ascii_lowercase();
    let claimed = match extension.as_str() {
        "jpg" | "jpeg" | "jpe" | "jfif" => MediaFormat::Jpeg,
        "png" => MediaFormat::Png,
        "gif" => MediaFormat::Gif,
        "webp" => MediaFormat::Webp,
        // A text file named .svg or .txt is refused by its bytes anyway.
        _ => return Ok(()),
    };
    let actual = sniff(bytes)?;
    if actual != claimed {
        return Err(Refusal::WrongName {
            extension,
            actual: match actual {
                MediaFormat::Jpeg => "JPEG",
                MediaFormat::Png => "PNG",
                MediaFormat::Gif => "GIF",
                MediaFormat::Webp => "WebP",
            },
        });
    }
    Ok(())
}

/// Checks, decodes and re-packs an upload. Nothing here touches the database.
pub fn process(upload: &[u8]) -> Result<Processed, Refusal> {
    let format = sniff(upload)?;
    let image_format = match format {
        MediaFormat::Jpeg => ImageFormat::Jpeg,
        MediaFormat::Png => ImageFormat::Png,
        MediaFormat::Gif => ImageFormat::Gif,
        MediaFormat::Webp => ImageFormat::WebP,
    };
    // The container walk refuses a cut-short file (the JPEG decoder would forgive one) and
    // gives the original without metadata when no re-encoding is needed.
    let stripped = match format {
        MediaFormat::Jpeg => super::strip::jpeg(upload),
        MediaFormat::Png => super::strip::png(upload),
        MediaFormat::Gif => super::strip::gif(upload),
        MediaFormat::Webp => super::strip::webp(upload),
    }
    .map_err(unreadable)?;

    if format == MediaFormat::Gif {
        return process_gif(stripped);
    }

    let mut reader = ImageReader::with_format(Cursor::new(upload), image_format);
    reader.limits(limits());
    let mut decoder = match reader.into_decoder() {
        Ok(decoder) => decoder,
        // Over the limits: say by how much, from the header alone (no pixel is decoded).
        Err(image::ImageError::Limits(_)) => {
            let mut header = ImageReader::with_format(Cursor::new(upload), image_format);
            header.no_limits();
            let (width, height) = header.into_dimensions().map_err(decode_refusal)?;
            check_size(width, height)?;
            return Err(decode_refusal(image::ImageError::Limits(
                image::error::LimitError::from_kind(
                    image::error::LimitErrorKind::InsufficientMemory,
                ),
            )));
        }
        Err(e) => return Err(decode_refusal(e)),
    };
    let (width, height) = decoder.dimensions();
    check_size(width, height)?;
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    let icc = decoder.icc_profile().ok().flatten();
    let mut picture = DynamicImage::from_decoder(decoder).map_err(decode_refusal)?;

    let original_bytes = if orientation == Orientation::NoTransforms {
        stripped
    } else {
        drop(stripped);
        picture.apply_orientation(orientation);
        encode_original(&picture, format, icc)?
    };
    let original = EncodedVariant {
        width: picture.width(),
        height: picture.height(),
        format,
        bytes: original_bytes,
    };

    let mut variants = Vec::new();
    let mut source = picture;
    for &target in VARIANT_WIDTHS.iter().rev() {
        if target >= source.width() {
            continue;
        }
        let target_height = scaled_height(original.width, original.height, target);
        // Each copy is made from the next wider one: a fraction of the work and memory of
        // starting from the original every time.
        let smaller = source.thumbnail_exact(target, target_height);
        let variant_format = variant_format(format, &smaller);
        let bytes = encode_variant(&smaller, variant_format)?;
        variants.push(EncodedVariant {
            width: target,
            height: target_height,
            format: variant_format,
            bytes,
        });
        source = smaller;
    }

    Ok(Processed {
        sha256: sha256_hex(&original.bytes),
        format,
        original,
        variants,
    })
}

/// A GIF keeps its frames (an animation stays animated), without metadata; it gets no narrower
/// copies. Every frame is decoded once to check the file.
fn process_gif(stripped: Vec<u8>) -> Result<Processed, Refusal> {
    let mut decoder = GifDecoder::new(Cursor::new(&stripped)).map_err(decode_refusal)?;
    let (width, height) = decoder.dimensions();
    check_size(width, height)?;
    decoder.set_limits(limits()).map_err(decode_refusal)?;
    let mut frames = 0usize;
    for frame in decoder.into_frames() {
        frame.map_err(decode_refusal)?;
        frames += 1;
    }
    if frames == 0 {
        return Err(Refusal::Unreadable("the GIF has no frames".into()));
    }
    Ok(Processed {
        sha256: sha256_hex(&stripped),
        format: MediaFormat::Gif,
        original: EncodedVariant {
            width,
            height,
            format: MediaFormat::Gif,
            bytes: stripped,
        },
        variants: Vec::new(),
    })
}

fn decode_refusal(e: image::ImageError) -> Refusal {
    match e {
        image::ImageError::Limits(_) => Refusal::Unreadable(
            "the picture needs more memory to decode than the limit allows".into(),
        ),
        other => unreadable(other),
    }
}

/// The height of a copy `width` wide, keeping the picture's proportions (at least 1 pixel).
pub fn scaled_height(original_width: u32, original_height: u32, width: u32) -> u32 {
    let h = (u64::from(original_height) * u64::from(width) + u64::from(original_width) / 2)
        / u64::from(original_width.max(1));
    u32::try_from(h.max(1)).unwrap_or(u32::MAX)
}

/// Copies of a WebP are JPEG (or PNG when they have transparency): the only WebP encoder at
/// hand is lossless, which makes photographs large.
fn variant_format(original: MediaFormat, picture: &DynamicImage) -> MediaFormat {
    match original {
        MediaFormat::Webp if picture.color().has_alpha() => MediaFormat::Png,
        MediaFormat::Webp => MediaFormat::Jpeg,
        other => other,
    }
}

fn encode_original(
    picture: &DynamicImage,
    format: MediaFormat,
    icc: Option<Vec<u8>>,
) -> Result<Vec<u8>, Refusal> {
    let mut out = Vec::new();
    match format {
        MediaFormat::Jpeg => {
            let mut encoder = JpegEncoder::new_with_quality(&mut out, ORIGINAL_QUALITY);
            if let Some(icc) = icc {
                // A profile the encoder cannot embed is dropped, not fatal.
                let _ = encoder.set_icc_profile(icc);
            }
            jpeg_ready(picture)
                .write_with_encoder(encoder)
                .map_err(unreadable)?;
        }
        MediaFormat::Png => {
            let mut encoder = PngEncoder::new(&mut out);
            if let Some(icc) = icc {
                let _ = encoder.set_icc_profile(icc);
            }
            picture.write_with_encoder(encoder).map_err(unreadable)?;
        }
        MediaFormat::Webp => {
            let mut encoder = WebPEncoder::new_lossless(&mut out);
            if let Some(icc) = icc {
                let _ = encoder.set_icc_profile(icc);
            }
            webp_ready(picture)
                .write_with_encoder(encoder)
                .map_err(unreadable)?;
        }
        MediaFormat::Gif => return Err(Refusal::NotAnImage),
    }
    Ok(out)
}

fn encode_variant(picture: &DynamicImage, format: MediaFormat) -> Result<Vec<u8>, Refusal> {
    let mut out = Vec::new();
    match format {
        MediaFormat::Jpeg => jpeg_ready(picture)
            .write_with_encoder(JpegEncoder::new_with_quality(&mut out, VARIANT_QUALITY))
            .map_err(unreadable)?,
        MediaFormat::Png => picture
            .write_with_encoder(PngEncoder::new(&mut out))
            .map_err(unreadable)?,
        MediaFormat::Webp | MediaFormat::Gif => return encode_original(picture, format, None),
    }
    Ok(out)
}

/// JPEG holds grey or RGB, 8 bits.
fn jpeg_ready(picture: &DynamicImage) -> std::borrow::Cow<'_, DynamicImage> {
    match picture {
        DynamicImage::ImageLuma8(_) | DynamicImage::ImageRgb8(_) => {
            std::borrow::Cow::Borrowed(picture)
        }
        other if !other.color().has_color() => {
            std::borrow::Cow::Owned(DynamicImage::ImageLuma8(other.to_luma8()))
        }
        other => std::borrow::Cow::Owned(DynamicImage::ImageRgb8(other.to_rgb8())),
    }
}

/// The WebP encoder takes 8-bit grey or RGB(A).
fn webp_ready(picture: &DynamicImage) -> std::borrow::Cow<'_, DynamicImage> {
    match picture {
        DynamicImage::ImageRgb8(_) | DynamicImage::ImageRgba8(_) => {
            std::borrow::Cow::Borrowed(picture)
        }
        other if other.color().has_alpha() => {
            std::borrow::Cow::Owned(DynamicImage::ImageRgba8(other.to_rgba8()))
        }
        other => std::borrow::Cow::Owned(DynamicImage::ImageRgb8(other.to_rgb8())),
    }
}
