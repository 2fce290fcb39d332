//! The media library: uploads of each format, metadata stripped and orientation applied,
//! refusals that store nothing, one copy per picture, sized `<img>` in posts, CDN-like
//! serving, access rules, deletion while in use, and two servers on one PostgreSQL.

use std::io::Cursor;

use diesel::prelude::*;
use image::{DynamicImage, ImageFormat, Rgb, RgbImage, Rgba, RgbaImage};
use lectern::db::schema::{media, media_chunks, media_variants};

use crate::common::{PASSWORD, TestApp, TestDb, client, postgres_server};

/// A photograph-like picture: a gradient with some detail, left half red-ish, right blue-ish.
fn photo(width: u32, height: u32) -> RgbImage {
    RgbImage::from_fn(width, height, |x, y| {
        let detail = ((x * 7 + y * 13) % 32) as u8;
        if x < width / 2 {
            Rgb([200 + detail / 2, 20 + detail, 20])
        } else {
            Rgb([20, 20 + detail, 200 + detail / 2])
        }
    })
}

fn encode(picture: &DynamicImage, format: ImageFormat) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    picture.write_to(&mut out, format).unwrap();
    out.into_inner()
}

fn jpeg(width: u32, height: u32) -> Vec<u8> {
    encode(
        &DynamicImage::ImageRgb8(photo(width, height)),
        ImageFormat::Jpeg,
    )
}

pub(crate) fn png(width: u32, height: u32) -> Vec<u8> {
    encode(
        &DynamicImage::ImageRgb8(photo(width, height)),
        ImageFormat::Png,
    )
}

/// An animated GIF of two frames.
fn animated_gif() -> Vec<u8> {
    use image::codecs::gif::{GifEncoder, Repeat};
    use image::{Delay, Frame};
    let mut out = Vec::new();
    {
        let mut encoder = GifEncoder::new(&mut out);
        encoder.set_repeat(Repeat::Infinite).unwrap();
        for colour in [[255, 0, 0, 255], [0, 0, 255, 255]] {
            let frame = Frame::from_parts(
                RgbaImage::from_pixel(32, 24, Rgba(colour)),
                0,
                0,
                Delay::from_numer_denom_ms(100, 1),
            );
            encoder.encode_frame(frame).unwrap();
        }
    }
    out
}

fn webp() -> Vec<u8> {
    encode(&DynamicImage::ImageRgb8(photo(64, 48)), ImageFormat::WebP)
}

/// An APP1 EXIF segment: orientation 6 (turn 90° clockwise to show) and a GPS position.
fn exif_app1() -> Vec<u8> {
    let mut tiff = Vec::new();
    tiff.extend_from_slice(b"MM\0\x2a\0\0\0\x08");
    // IFD0 at 8: orientation, GPS pointer.
    tiff.extend_from_slice(&2u16.to_be_bytes());
    tiff.extend_from_slice(&[0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, 6, 0, 0]);
    tiff.extend_from_slice(&[0x88, 0x25, 0, 4, 0, 0, 0, 1]);
    tiff.extend_from_slice(&38u32.to_be_bytes());
    tiff.extend_from_slice(&0u32.to_be_bytes());
    // GPS IFD at 38: latitude reference and latitude.
    tiff.extend_from_slice(&2u16.to_be_bytes());
    tiff.extend_from_slice(&[0x00, 0x01, 0, 2, 0, 0, 0, 2, b'N', 0, 0, 0]);
    tiff.extend_from_slice(&[0x00, 0x02, 0, 5, 0, 0, 0, 3]);
    tiff.extend_from_slice(&68u32.to_be_bytes());
    tiff.extend_from_slice(&0u32.to_be_bytes());
    assert_eq!(tiff.len(), 68);
    for (n, d) in [(51u32, 1u32), (30, 1), (1234, 100)] {
        tiff.extend_from_slice(&n.to_be_bytes());
        tiff.extend_from_slice(&d.to_be_bytes());
    }
    let mut payload = b"Exif\0\0".to_vec();
    payload.extend_from_slice(&tiff);
    let mut segment = vec![0xFF, 0xE1];
    segment.extend_from_slice(&u16::try_from(payload.len() + 2).unwrap().to_be_bytes());
    segment.extend_from_slice(&payload);
    segment
}

/// A JPEG with the EXIF segment inserted right after its start marker.
fn jpeg_with_exif(width: u32, height: u32) -> Vec<u8> {
    let plain = jpeg(width, height);
    let mut out = plain[..2].to_vec();
    out.extend_from_slice(&exif_app1());
    out.extend_from_slice(&plain[2..]);
    out
}

/// A PNG whose header declares 60,000 × 60,000 pixels, with a tiny data chunk.
fn png_bomb() -> Vec<u8> {
    fn chunk(kind: &[u8], data: &[u8]) -> Vec<u8> {
        let mut out = u32::try_from(data.len()).unwrap().to_be_bytes().to_vec();
        out.extend_from_slice(kind);
        out.extend_from_slice(data);
        let mut hasher = crc32fast::Hasher::new();
        hasher.update(kind);
        hasher.update(data);
        out.extend_from_slice(&hasher.finalize().to_be_bytes());
        out
    }
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&60_000u32.to_be_bytes());
    ihdr.extend_from_slice(&60_000u32.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    out.extend(chunk(b"IHDR", &ihdr));
    out.extend(chunk(
        b"IDAT",
        &[0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01],
    ));
    out.extend(chunk(b"IEND", &[]));
    out
}

/// A JPEG whose frame header declares 60,000 × 60,000 pixels.
fn jpeg_bomb() -> Vec<u8> {
    let mut bytes = jpeg(16, 16);
    let sof = bytes
        .windows(2)
        .position(|w| w == [0xFF, 0xC0])
        .expect("a baseline frame header");
    bytes[sof + 5..sof + 7].copy_from_slice(&60_000u16.to_be_bytes());
    bytes[sof + 7..sof + 9].copy_from_slice(&60_000u16.to_be_bytes());
    bytes
}

/// A multipart body: `csrf_token`, then (file name, bytes, alt) for each file.
fn multipart(csrf: &str, files: &[(&str, &[u8], &str)]) -> (String, Vec<u8>) {
    let boundary = "----lecternMediaBoundary0b1c2d3e";
    let mut body = Vec::new();
    let text = |body: &mut Vec<u8>, name: &str, value: &[u8]| {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        body.extend_from_slice(
            format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes(),
        );
        body.extend_from_slice(value);
        body.extend_from_slice(b"\r\n");
    };
    text(&mut body, "csrf_token", csrf.as_bytes());
    for (name, bytes, alt) in files {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        body.extend_from_slice(
            format!(
                "Content-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
        text(&mut body, "alt", alt.as_bytes());
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

pub(crate) async fn upload(
    app: &TestApp,
    http: &reqwest::Client,
    files: &[(&str, &[u8], &str)],
) -> (u16, String) {
    let csrf = app.csrf(http).await;
    let (content_type, body) = multipart(&csrf, files);
    let response = http
        .post(app.url("/admin/media"))
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

/// The `/media/…` addresses an answer names, in order of appearance, deduplicated.
pub(crate) fn media_urls(page: &str) -> Vec<String> {
    let mut urls: Vec<String> = Vec::new();
    for (i, _) in page.match_indices("/media/") {
        let rest = &page[i..];
        let end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || "/-.".contains(c)))
            .unwrap_or(rest.len());
        let url = rest[..end].trim_end_matches('.').to_string();
        if url.len() > 70 && !urls.contains(&url) {
            urls.push(url);
        }
    }
    urls
}

/// The stored original's address from an upload answer (its Markdown snippet).
fn snippet_url(page: &str) -> String {
    let at = page
        .find("](/media/")
        .expect("the answer has a Markdown snippet")
        + 2;
    let rest = &page[at..];
    rest[..rest.find(')').unwrap()].to_string()
}

async fn counts(app: &TestApp) -> (i64, i64, i64) {
    app.db(|conn| {
        Ok((
            media::table.count().get_result(conn)?,
            media_variants::table.count().get_result(conn)?,
            media_chunks::table.count().get_result(conn)?,
        ))
    })
    .await
}

#[tokio::test]
async fn each_format_is_stored_and_served_with_its_type_and_immutable_caching() {
    let app = TestApp::spawn().await;
    let http = app.staff_client("admin").await;
    let gif = animated_gif();
    let cases: [(&str, Vec<u8>, &str, &str); 4] = [
        ("photo.jpg", jpeg(800, 600), "image/jpeg", ".jpg"),
        ("drawing.png", png(300, 200), "image/png", ".png"),
        ("moving.gif", gif, "image/gif", ".gif"),
        ("modern.webp", webp(), "image/webp", ".webp"),
    ];
    for (name, bytes, content_type, ext) in &cases {
        let (status, page) = upload(&app, &http, &[(name, bytes, "A test picture")]).await;
        assert_eq!(status, 200, "{name}: {page}");
        let url = snippet_url(&page);
        assert!(url.ends_with(ext), "{name}: {url}");
        assert!(page.contains(&format!("![A test picture]({url})")));
        let response = client().get(app.url(&url)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{url}");
        let headers = response.headers().clone();
        assert_eq!(headers["content-type"], *content_type);
        assert_eq!(
            headers["cache-control"],
            "public, max-age=31536000, immutable"
        );
        assert_eq!(headers["x-content-type-options"], "nosniff");
        let etag = headers["etag"].to_str().unwrap();
        assert!(etag.starts_with('"') && !etag.starts_with("W/"), "{etag}");
        let served = response.bytes().await.unwrap();
        image::load_from_memory(&served).expect("the served file decodes");
    }
    // The GIF stays animated.
    let page = app.get_text("/").await;
    drop(page);
    let gif_url = app
        .db(|conn| {
            Ok(media::table
                .filter(media::format.eq("gif"))
                .select(media::sha256)
                .first::<String>(conn)?)
        })
        .await;
    let served = client()
        .get(app.url(&format!("/media/{gif_url}-32.gif")))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    use image::AnimationDecoder;
    let frames = image::codecs::gif::GifDecoder::new(Cursor::new(served.to_vec()))
        .unwrap()
        .into_frames()
        .count();
    assert_eq!(frames, 2, "an animated GIF keeps its frames");
    assert_eq!(counts(&app).await.0, 4);
}

#[tokio::test]
async fn a_jpeg_with_exif_orientation_and_gps_comes_back_upright_without_any_exif() {
    let app = TestApp::spawn().await;
    let http = app.staff_client("admin").await;
    let upload_bytes = jpeg_with_exif(40, 20);
    assert!(upload_bytes.windows(6).any(|w| w == b"Exif\0\0"));
    let (status, page) = upload(&app, &http, &[("phone.jpg", &upload_bytes, "Turned")]).await;
    assert_eq!(status, 200, "{page}");
    let url = snippet_url(&page);
    assert!(
        url.ends_with("-20.jpg"),
        "the picture is now 20 wide: {url}"
    );
    let served = client()
        .get(app.url(&url))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert!(
        !served.windows(4).any(|w| w == b"Exif"),
        "no EXIF left in the served file"
    );
    assert!(
        !served.windows(2).any(|w| w == [0xFF, 0xE1]) || {
            // 0xFFE1 may occur in entropy data only as a stuffed pair, never as a segment; check
            // the segments themselves.
            segments(&served).iter().all(|m| *m != 0xE1)
        }
    );
    let picture = image::load_from_memory(&served).unwrap().to_rgb8();
    assert_eq!(picture.dimensions(), (20, 40));
    // Turned clockwise: what was the left (red) half is now the top.
    let top = picture.get_pixel(10, 5);
    let bottom = picture.get_pixel(10, 35);
    assert!(top[0] > 150 && top[2] < 100, "top is red: {top:?}");
    assert!(
        bottom[2] > 150 && bottom[0] < 100,
        "bottom is blue: {bottom:?}"
    );
}

/// The markers of a JPEG's segments before its first scan.
fn segments(jpeg: &[u8]) -> Vec<u8> {
    let mut markers = Vec::new();
    let mut pos = 2;
    while pos + 4 <= jpeg.len() && jpeg[pos] == 0xFF {
        let marker = jpeg[pos + 1];
        markers.push(marker);
        if marker == 0xDA {
            break;
        }
        pos += 2 + usize::from(u16::from_be_bytes([jpeg[pos + 2], jpeg[pos + 3]]));
    }
    markers
}

#[tokio::test]
async fn files_that_are_not_safe_pictures_are_refused_and_nothing_is_stored() {
    let app = TestApp::spawn().await;
    let http = app.staff_client("admin").await;
    let full = jpeg(400, 300);
    let truncated = full[..full.len() / 2].to_vec();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("renamed.jpg", png(20, 20), "is a PNG"),
        (
            "evil.svg",
            b"<svg xmlns=\"http://www.w3.org/2000/svg\"><script>alert(1)</script></svg>".to_vec(),
            "SVG images are not accepted",
        ),
        (
            "notes.png",
            b"just some text, not a picture\n".to_vec(),
            "not a JPEG, PNG, GIF or WebP",
        ),
        ("cut.jpg", truncated, "cut short"),
        ("bomb.png", png_bomb(), "60000 × 60000"),
        ("bomb.jpg", jpeg_bomb(), "60000 × 60000"),
        ("empty.png", Vec::new(), "the file is empty"),
    ];
    for (name, bytes, message) in &cases {
        let (status, page) = upload(&app, &http, &[(name, bytes, "Something")]).await;
        assert_eq!(status, 422, "{name} is refused: {page}");
        assert!(
            page.contains(message),
            "{name}: says why ({message}): {page}"
        );
        assert_eq!(counts(&app).await, (0, 0, 0), "{name}: nothing stored");
    }
    // A picture without alt text is refused with a clear message.
    let (status, page) = upload(&app, &http, &[("fine.jpg", &full, "  ")]).await;
    assert_eq!(status, 422);
    assert!(page.contains("alt text"), "{page}");
    assert_eq!(counts(&app).await, (0, 0, 0));
}

#[tokio::test]
async fn a_file_over_the_upload_limit_is_refused_with_413() {
    let app = TestApp::spawn().await;
    let http = app.staff_client("admin").await;
    let mut big = jpeg(64, 64);
    big.resize(20 * 1024 * 1024 + 1, 0);
    let (status, _) = upload(&app, &http, &[("huge.jpg", &big, "Huge")]).await;
    assert_eq!(status, 413);
    assert_eq!(counts(&app).await, (0, 0, 0));
}

#[tokio::test]
async fn an_upload_of_more_than_twenty_files_stores_the_first_twenty_and_names_the_rest() {
    let app = TestApp::spawn().await;
    let http = app.staff_client("admin").await;
    let pictures: Vec<(String, Vec<u8>, String)> = (0..23u32)
        .map(|i| {
            (
                format!("pic-{i}.png"),
                png(20 + i, 10),
                format!("Picture {i}"),
            )
        })
        .collect();
    let files: Vec<(&str, &[u8], &str)> = pictures
        .iter()
        .map(|(name, bytes, alt)| (name.as_str(), bytes.as_slice(), alt.as_str()))
        .collect();
    let (status, page) = upload(&app, &http, &files).await;
    assert_eq!(status, 422, "{page}");
    for i in 0..20 {
        assert!(
            page.contains(&format!("![Picture {i}](/media/")),
            "picture {i} is stored and offered: {page}"
        );
    }
    for i in 20..23 {
        let row = page
            .split(&format!("<strong>pic-{i}.png</strong>"))
            .nth(1)
            .and_then(|rest| rest.split("</li>").next())
            .unwrap_or_else(|| panic!("pic-{i}.png is named: {page}"));
        assert!(
            row.contains("Not stored: an upload takes at most 20 pictures. Upload this one again."),
            "pic-{i}.png is not stored and says why: {row}"
        );
        assert!(!page.contains(&format!("![Picture {i}]")));
    }
    assert!(
        page.contains("and 3 more were not stored. Upload them again."),
        "{page}"
    );
    let stored: i64 = app
        .db(|conn| Ok(media::table.count().get_result(conn)?))
        .await;
    assert_eq!(stored, 20);
}

#[tokio::test]
async fn the_same_picture_uploaded_twice_is_stored_once() {
    let app = TestApp::spawn().await;
    let http = app.staff_client("admin").await;
    let bytes = jpeg(500, 400);
    let (_, first) = upload(&app, &http, &[("a.jpg", &bytes, "One")]).await;
    let stored = counts(&app).await;
    let (status, second) = upload(&app, &http, &[("b.jpg", &bytes, "Two")]).await;
    assert_eq!(status, 200);
    assert!(second.contains("already in the library"), "{second}");
    assert_eq!(snippet_url(&first), snippet_url(&second));
    assert_eq!(counts(&app).await, stored, "nothing new was written");
    assert_eq!(stored.0, 1);
}

#[tokio::test]
async fn copies_are_narrower_only_never_upscaled() {
    let app = TestApp::spawn().await;
    let http = app.staff_client("admin").await;
    let (_, page) = upload(
        &app,
        &http,
        &[
            ("wide.jpg", &jpeg(1000, 500), "Wide"),
            ("small.png", &png(300, 100), "Small"),
        ],
    )
    .await;
    let widths: Vec<(String, i32, i32)> = app
        .db(|conn| {
            Ok(media_variants::table
                .inner_join(media::table)
                .order((media::id, media_variants::width))
                .select((
                    media::file_name,
                    media_variants::width,
                    media_variants::height,
                ))
                .load(conn)?)
        })
        .await;
    assert_eq!(
        widths,
        [
            ("wide.jpg".to_string(), 480, 240),
            ("wide.jpg".to_string(), 960, 480),
            ("wide.jpg".to_string(), 1000, 500),
            ("small.png".to_string(), 300, 100),
        ]
    );
    let url = media_urls(&page)
        .into_iter()
        .find(|u| u.ends_with("-1000.jpg"))
        .unwrap();
    let upscaled = url.replace("-1000.jpg", "-1600.jpg");
    assert_eq!(
        client()
            .get(app.url(&upscaled))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    let copy = url.replace("-1000.jpg", "-480.jpg");
    let bytes = client()
        .get(app.url(&copy))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let picture = image::load_from_memory(&bytes).unwrap();
    assert_eq!((picture.width(), picture.height()), (480, 240));
}

#[tokio::test]
async fn a_big_file_is_served_whole_from_several_chunks_and_revalidates_with_304() {
    let app = TestApp::spawn().await;
    let http = app.staff_client("admin").await;
    // Noise compresses badly: a PNG of well over one 256 KiB chunk.
    let noise = RgbImage::from_fn(600, 600, |x, y| {
        let v =
            (x.wrapping_mul(2_654_435_761) ^ y.wrapping_mul(40_503)).wrapping_mul(2_246_822_519);
        Rgb([(v >> 8) as u8, (v >> 16) as u8, (v >> 24) as u8])
    });
    let bytes = encode(&DynamicImage::ImageRgb8(noise.clone()), ImageFormat::Png);
    assert!(bytes.len() > 600 * 1024);
    let (status, page) = upload(&app, &http, &[("noise.png", &bytes, "Noise")]).await;
    assert_eq!(status, 200, "{page}");
    let url = snippet_url(&page);
    let response = client().get(app.url(&url)).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let length: usize = response.headers()["content-length"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let etag = response.headers()["etag"].clone();
    let served = response.bytes().await.unwrap();
    assert_eq!(served.len(), length);
    assert!(served.len() > 2 * 256 * 1024);
    let decoded = image::load_from_memory(&served).unwrap().to_rgb8();
    assert_eq!(decoded, noise, "the PNG is stored losslessly");

    let again = client()
        .get(app.url(&url))
        .header("if-none-match", etag.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
    assert_eq!(again.headers()["etag"], etag);
    let head = client().head(app.url(&url)).send().await.unwrap();
    assert_eq!(head.status(), 200);
    assert_eq!(
        head.headers()["content-length"].to_str().unwrap(),
        length.to_string()
    );
    assert_eq!(
        client()
            .get(app.url("/media/notahash-10.png"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
}

#[tokio::test]
async fn a_kept_file_answers_like_a_read_one_and_a_picture_deleted_elsewhere_goes_within_a_minute()
{
    let app = TestApp::spawn().await;
    let http = app.staff_client("admin").await;
    let (status, page) = upload(&app, &http, &[("kept.jpg", &jpeg(600, 400), "Kept")]).await;
    assert_eq!(status, 200, "{page}");
    let url = snippet_url(&page);
    // The first answer reads the database and keeps the file; the second comes from memory.
    let first = client().get(app.url(&url)).send().await.unwrap();
    let second = client().get(app.url(&url)).send().await.unwrap();
    for response in [&first, &second] {
        assert_eq!(response.status(), 200);
    }
    for name in [
        "content-type",
        "content-length",
        "cache-control",
        "etag",
        "x-content-type-options",
        "cross-origin-resource-policy",
    ] {
        assert_eq!(
            first.headers().get(name),
            second.headers().get(name),
            "{name}"
        );
    }
    let etag = second.headers()["etag"].clone();
    assert_eq!(first.bytes().await.unwrap(), second.bytes().await.unwrap());
    let again = client()
        .get(app.url(&url))
        .header("if-none-match", etag.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
    assert_eq!(again.headers()["etag"], etag);
    assert_eq!(
        again.headers()["cache-control"],
        "public, max-age=31536000, immutable"
    );
    let head = client().head(app.url(&url)).send().await.unwrap();
    assert_eq!(head.status(), 200);
    assert_eq!(head.headers()["content-type"], "image/jpeg");
    assert!(head.bytes().await.unwrap().is_empty());

    // Deleted by another server (or the command line): this one's kept copy is checked
    // against the database again after a minute.
    let id: i32 = app
        .db(|conn| Ok(media::table.select(media::id).first(conn)?))
        .await;
    app.state
        .db
        .write(move |conn| lectern::media::store::delete(conn, id))
        .await
        .unwrap();
    app.advance(61);
    assert_eq!(
        client().get(app.url(&url)).send().await.unwrap().status(),
        404
    );
}

#[tokio::test]
async fn a_post_with_a_picture_shows_it_sized_with_a_srcset_and_as_its_og_image() {
    let app = TestApp::spawn().await;
    let http = app.staff_client("admin").await;
    let (_, page) = upload(&app, &http, &[("cat.jpg", &jpeg(1200, 800), "A cat")]).await;
    let url = snippet_url(&page);
    let (_, page) = upload(&app, &http, &[("dog.png", &png(200, 100), "A dog")]).await;
    let second = snippet_url(&page);
    let body = format!("Look:\n\n![A cat on a mat]({url})\n\nAnd ![A dog]({second}).\n");
    let csrf = app.csrf(&http).await;
    let form = [
        ("title", "Pets"),
        ("slug", "pets"),
        ("body", body.as_str()),
        ("excerpt", ""),
        ("tags", ""),
        ("kind", "post"),
        ("status", "published"),
        ("publish_at", ""),
        ("comments_open", "1"),
        ("csrf_token", csrf.as_str()),
    ];
    let response = http
        .post(app.url("/admin/posts/new"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);

    let post = app.get_text("/posts/pets").await;
    let sha = url.trim_start_matches("/media/").split('-').next().unwrap();
    let img = &post[post
        .find(&format!("<img src=\"{url}\""))
        .expect("the picture is shown")..];
    let img = &img[..img.find('>').unwrap()];
    assert!(img.contains("alt=\"A cat on a mat\""), "{img}");
    assert!(img.contains("width=\"1200\" height=\"800\""), "{img}");
    assert!(
        img.contains(&format!(
            "srcset=\"/media/{sha}-480.jpg 480w, /media/{sha}-960.jpg 960w, /media/{sha}-1200.jpg 1200w\""
        )),
        "{img}"
    );
    assert!(img.contains("sizes="), "{img}");
    assert!(img.contains("decoding=\"async\""), "{img}");
    assert!(
        !img.contains("loading="),
        "the first picture is not lazy: {img}"
    );
    let dog = &post[post.find(&format!("<img src=\"{second}\"")).unwrap()..];
    let dog = &dog[..dog.find('>').unwrap()];
    assert!(dog.contains("loading=\"lazy\""), "{dog}");
    assert!(dog.contains(&format!("srcset=\"{second} 200w\"")), "{dog}");
    assert!(
        post.contains(&format!(
            "<meta property=\"og:image\" content=\"{}\">",
            app.url(&url)
        )),
        "og:image"
    );
    let feed = app.get_text("/feed.xml").await;
    let enclosure = feed
        .split("<link")
        .find(|link| link.contains("rel=\"enclosure\""))
        .unwrap_or_else(|| panic!("an enclosure: {feed}"));
    let enclosure = &enclosure[..enclosure.find("/>").unwrap()];
    assert!(
        enclosure.contains(&format!("href=\"{}\"", app.url(&url))),
        "{enclosure}"
    );
    assert!(enclosure.contains("type=\"image/jpeg\""), "{enclosure}");

    // An author's own srcset or sizes on other images is not kept.
    let csrf = app.csrf(&http).await;
    let form = [
        ("title", "Raw"),
        ("slug", "raw"),
        (
            "body",
            "<img src=\"https://example.com/x.png\" alt=\"x\" srcset=\"javascript:alert(1) 1w\" width=\"9\">",
        ),
        ("excerpt", ""),
        ("tags", ""),
        ("kind", "post"),
        ("status", "published"),
        ("publish_at", ""),
        ("comments_open", "1"),
        ("csrf_token", csrf.as_str()),
    ];
    http.post(app.url("/admin/posts/new"))
        .form(&form)
        .send()
        .await
        .unwrap();
    let raw = app.get_text("/posts/raw").await;
    assert!(
        !raw.contains("srcset") && !raw.contains("width=\"9\""),
        "{raw}"
    );

    // Deleting it while the published post shows it is refused; forced, it goes.
    let id: i32 = app
        .db(|conn| {
            Ok(media::table
                .filter(media::file_name.eq("cat.jpg"))
                .select(media::id)
                .first(conn)?)
        })
        .await;
    let library = app.get_text_as(&http, "/admin/media").await;
    assert!(
        library.contains("Pets"),
        "the library says where it is used"
    );
    let refused = app
        .staff_post(&http, &format!("/admin/media/{id}/delete"), &[])
        .await;
    assert_eq!(refused.status(), 409);
    assert_eq!(counts(&app).await.0, 2);
    let forced = app
        .staff_post(
            &http,
            &format!("/admin/media/{id}/delete"),
            &[("force", "1")],
        )
        .await;
    assert_eq!(forced.status(), 303);
    assert_eq!(counts(&app).await.0, 1);
    assert_eq!(
        client().get(app.url(&url)).send().await.unwrap().status(),
        404
    );
}

#[tokio::test]
async fn alt_text_is_edited_and_the_library_is_searched_and_paged() {
    let app = TestApp::spawn().await;
    let http = app.staff_client("admin").await;
    for i in 0..26u32 {
        let name = format!("pic-{i}.png");
        let alt = format!("Picture number {i}");
        let (status, _) = upload(&app, &http, &[(&name, &png(20 + i, 10), &alt)]).await;
        assert_eq!(status, 200);
    }
    let first = app.get_text_as(&http, "/admin/media").await;
    assert!(
        first.contains("pic-25.png") && !first.contains("pic-1.png<"),
        "newest first"
    );
    let older = first
        .split("before=")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a link to older pictures");
    let second = app
        .get_text_as(&http, &format!("/admin/media?before={older}"))
        .await;
    assert!(
        second.contains("pic-0.png") && second.contains("pic-1.png"),
        "{second}"
    );
    assert!(!second.contains("pic-25.png"));

    let found = app.get_text_as(&http, "/admin/media?q=NUMBER%2012").await;
    assert!(
        found.contains("pic-12.png") && !found.contains("pic-13.png"),
        "search by alt"
    );

    let id: i32 = app
        .db(|conn| {
            Ok(media::table
                .filter(media::file_name.eq("pic-3.png"))
                .select(media::id)
                .first(conn)?)
        })
        .await;
    let saved = app
        .staff_post(
            &http,
            &format!("/admin/media/{id}/alt"),
            &[("alt", "A better description")],
        )
        .await;
    assert_eq!(saved.status(), 303);
    let empty = app
        .staff_post(&http, &format!("/admin/media/{id}/alt"), &[("alt", " ")])
        .await;
    assert_eq!(empty.status(), 422);
    let alt: String = app
        .db(move |conn| Ok(media::table.find(id).select(media::alt).first(conn)?))
        .await;
    assert_eq!(alt, "A better description");
    let editor = app.get_text_as(&http, "/admin/posts/new").await;
    assert!(
        editor.contains("action=\"/admin/media\""),
        "the editor can upload"
    );
    assert!(
        editor.contains("![Picture number 25](/media/"),
        "and lists recent pictures"
    );
}

#[tokio::test]
async fn library_search_takes_percent_underscore_and_backslash_literally() {
    let app = TestApp::spawn().await;
    let http = app.staff_client("admin").await;
    for (i, (name, alt)) in [
        ("sale-50%.png", "Half off"),
        ("under_score.png", "A line"),
        ("plain.png", "Plain picture"),
        ("path.png", "C:\\pictures"),
    ]
    .into_iter()
    .enumerate()
    {
        let (status, page) = upload(&app, &http, &[(name, &png(30 + i as u32, 12), alt)]).await;
        assert_eq!(status, 200, "{page}");
    }
    let names = ["sale-50%.png", "under_score.png", "plain.png", "path.png"];
    for (query, found) in [
        ("%25", "sale-50%.png"),
        ("50%25", "sale-50%.png"),
        ("_", "under_score.png"),
        ("r_s", "under_score.png"),
        ("%5C", "path.png"),
    ] {
        let page = app
            .get_text_as(&http, &format!("/admin/media?q={query}"))
            .await;
        for name in names {
            assert_eq!(
                page.contains(&format!("<strong>{name}</strong>")),
                name == found,
                "q={query}: {name} {}: {page}",
                if name == found {
                    "is found"
                } else {
                    "is not found"
                }
            );
        }
    }
}

#[tokio::test]
async fn a_moderator_or_an_anonymous_visitor_cannot_upload() {
    let app = TestApp::spawn().await;
    let moderator = app.staff_client("moderator").await;
    let bytes = jpeg(50, 50);
    let (status, _) = upload(&app, &moderator, &[("a.jpg", &bytes, "A")]).await;
    assert_eq!(status, 403);
    // An admin's form with a forged token is refused before a byte of the file is kept.
    let admin = app.staff_client("admin").await;
    let (content_type, body) = multipart("forged", &[("a.jpg", &bytes, "A")]);
    let forged = admin
        .post(app.url("/admin/media"))
        .header("content-type", content_type.clone())
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    assert!(forged.text().await.unwrap().contains("security token"));
    let anonymous = client()
        .post(app.url("/admin/media"))
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 303);
    assert_eq!(
        anonymous.headers()["location"],
        "/admin/login",
        "an anonymous visitor is sent to log in"
    );
    assert_eq!(
        moderator
            .get(app.url("/admin/media"))
            .send()
            .await
            .unwrap()
            .status(),
        403
    );
    assert_eq!(counts(&app).await, (0, 0, 0));
}

#[tokio::test]
async fn two_servers_on_one_postgresql_serve_a_picture_uploaded_on_the_other() {
    let Some(server) = postgres_server() else {
        eprintln!("SKIPPED two-server media test: LECTERN_TEST_DATABASE_URL is not set");
        return;
    };
    let db = TestDb::empty_postgres(&server);
    let a = TestApp::spawn_on(&db.url, db.dir.path(), &[]).await;
    let b = TestApp::spawn_on(&db.url, db.dir.path(), &[]).await;
    a.create_user("admin@example.com", "Ad", "admin", PASSWORD)
        .await;
    let http = a.login_client("admin@example.com", PASSWORD).await;
    let (status, page) = upload(&a, &http, &[("shared.jpg", &jpeg(1000, 700), "Shared")]).await;
    assert_eq!(status, 200, "{page}");
    let url = snippet_url(&page);
    for path in [url.clone(), url.replace("-1000.jpg", "-480.jpg")] {
        let response = client().get(b.url(&path)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path} from the other server");
        let bytes = response.bytes().await.unwrap();
        image::load_from_memory(&bytes).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wordpress_import_with_uploads_brings_pictures_in_and_lists_the_missing_ones() {
    let app = TestApp::spawn().await;
    let dir = tempfile::tempdir().unwrap();
    // The post shows WordPress's 300×200 copy, and a picture the folder does not have.
    let fixture = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/import/wordpress-1.2.xml"),
    )
    .unwrap()
    .replacen(
        "<img src=\"https://old.example.com/wp-content/uploads/2012/01/fascia.jpg\" alt=\"Fascia\" />",
        "<img src=\"https://old.example.com/wp-content/uploads/2012/01/fascia-300x200.jpg\" alt=\"Fascia\" /><img src=\"/wp-content/uploads/2012/01/gone.png\" alt=\"Gone\" />",
        1,
    );
    let export = dir.path().join("export.xml");
    std::fs::write(&export, fixture).unwrap();
    let uploads = dir.path().join("uploads");
    std::fs::create_dir_all(uploads.join("2012/01")).unwrap();
    std::fs::write(uploads.join("2012/01/fascia.jpg"), jpeg(900, 600)).unwrap();
    std::fs::write(uploads.join("2012/01/fascia-300x200.jpg"), jpeg(300, 200)).unwrap();

    let env = lectern::import::Env {
        db: app.state.db.clone(),
        signer: app.state.signer.clone(),
        now: app.state.clock.now(),
    };
    let run = |dry_run: bool| {
        let options = lectern::import::Options {
            dry_run,
            uploads: Some(uploads.clone()),
            ..Default::default()
        };
        lectern::import::run(
            &env,
            lectern::import::Kind::WordPress,
            &export,
            &options,
            &mut lectern::import::progress::Silent,
        )
        .unwrap()
    };
    let report = tokio::task::block_in_place(|| run(false));
    assert_eq!(report.images_imported, 1, "{report}");
    assert_eq!(report.images_missing, ["2012/01/gone.png"], "{report}");
    assert!(report.to_string().contains("not found: 2012/01/gone.png"));

    let body: String = app
        .db(|conn| {
            use lectern::db::schema::posts;
            Ok(posts::table
                .filter(posts::title.eq("Myofascial release"))
                .select(posts::body_markdown)
                .first(conn)?)
        })
        .await;
    let sha: String = app
        .db(|conn| Ok(media::table.select(media::sha256).first(conn)?))
        .await;
    assert!(body.contains(&format!("/media/{sha}-900.jpg")), "{body}");
    assert!(!body.contains("fascia-300x200"), "{body}");
    assert!(
        body.contains("/wp-content/uploads/2012/01/gone.png"),
        "the missing one keeps its address"
    );
    let served = client()
        .get(app.url(&format!("/media/{sha}-900.jpg")))
        .send()
        .await
        .unwrap();
    assert_eq!(served.status(), 200);

    // A second run changes nothing.
    let again = tokio::task::block_in_place(|| run(false));
    assert_eq!(again.images_imported, 0, "{again}");
    assert_eq!(counts(&app).await.0, 1);
}

/// An admin picks a logo and a favicon from the library at `/admin/site`: every page shows
/// them (a small copy, not the original), the change is logged, a picture not in the library is
/// refused, and deleting one in use asks for force, then puts lectern's own icon back.
#[tokio::test]
async fn the_site_logo_and_favicon_come_from_the_library() {
    let app = TestApp::spawn().await;
    let http = app.staff_client("admin").await;
    let (status, _) = upload(&app, &http, &[("logo.png", &png(1200, 300), "Logo")]).await;
    assert_eq!(status, 200);
    let (status, _) = upload(&app, &http, &[("icon.png", &png(512, 512), "Icon")]).await;
    assert_eq!(status, 200);
    let sha = |name: &'static str| {
        app.db(move |conn| {
            Ok(media::table
                .filter(media::file_name.eq(name))
                .select(media::sha256)
                .first::<String>(conn)?)
        })
    };
    let (logo, icon) = (sha("logo.png").await, sha("icon.png").await);
    let form = app.get_text_as(&http, "/admin/site").await;
    assert!(form.contains(&format!(
        "<option value=\"{logo}\">logo.png (1200 × 300)</option>"
    )));

    let refused = app
        .staff_post(
            &http,
            "/admin/site",
            &[("title", "Pictured"), ("logo", &"0".repeat(64))],
        )
        .await;
    assert_eq!(refused.status(), 422);
    assert!(
        refused
            .text()
            .await
            .unwrap()
            .contains("not in the media library")
    );
    assert!(!app.get_text("/").await.contains("site-logo"));

    let saved = app
        .staff_post(
            &http,
            "/admin/site",
            &[("title", "Pictured"), ("logo", &logo), ("favicon", &icon)],
        )
        .await;
    assert_eq!(saved.status(), 303);
    let home = app.get_text("/").await;
    // The smallest stored copy wide enough for a 40 px high logo on a dense screen: 480 px.
    assert!(
        home.contains(&format!(
            "<img class=\"site-logo\" src=\"/media/{logo}-480.png\" width=\"160\" height=\"40\" alt=\"\">Pictured</a>"
        )),
        "{home}"
    );
    assert!(home.contains(&format!(
        "<link rel=\"icon\" href=\"/media/{icon}-480.png\" type=\"image/png\">"
    )));
    let served = client()
        .get(app.url(&format!("/media/{logo}-480.png")))
        .send()
        .await
        .unwrap();
    assert_eq!(served.status(), 200);
    let audit = app.get_text_as(&http, "/admin/audit").await;
    assert!(audit.contains("logo: “none” → “logo.png”"), "{audit}");
    let library = app.get_text_as(&http, "/admin/media").await;
    assert!(
        library.contains("Shown as the site&#39;s favicon.")
            && library.contains("Shown as the site&#39;s logo."),
        "the library says which picture is the logo and which the favicon"
    );

    let id: i32 = app
        .db(|conn| {
            Ok(media::table
                .filter(media::file_name.eq("icon.png"))
                .select(media::id)
                .first(conn)?)
        })
        .await;
    let in_use = app
        .staff_post(&http, &format!("/admin/media/{id}/delete"), &[])
        .await;
    assert_eq!(in_use.status(), 409);
    assert!(in_use.text().await.unwrap().contains("favicon"));
    let forced = app
        .staff_post(
            &http,
            &format!("/admin/media/{id}/delete"),
            &[("force", "1")],
        )
        .await;
    assert_eq!(forced.status(), 303);
    let home = app.get_text("/").await;
    assert!(
        home.contains("favicon") && home.contains("image/svg+xml"),
        "{home}"
    );
    assert!(home.contains("site-logo"));
    let audit = app.get_text_as(&http, "/admin/audit").await;
    assert!(audit.contains("deleted picture icon.png"), "{audit}");
}
