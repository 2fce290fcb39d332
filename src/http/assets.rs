//! Static files: built into the binary, each with a fingerprinted address that never changes
//! meaning (`/static/style.3f2a9c1b.css`, cached for a year as immutable), compressed once at
//! start (gzip and brotli at their best settings), with an `ETag` for revalidation. The plain
//! address (`/static/style.css`) still answers, with a short cache, for anyone who linked it.

use std::sync::LazyLock;

use actix_web::http::header::{self, HeaderValue};
use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, web};
use sha2::{Digest, Sha256};

use super::compression::{self, Coding};

struct Asset {
    /// As in the plain address: `style.css`.
    name: &'static str,
    /// `style.3f2a9c1b.css`.
    fingerprinted: String,
    /// `/static/style.3f2a9c1b.css`.
    url: String,
    content_type: &'static str,
    bytes: &'static [u8],
    etag: HeaderValue,
    gzip: Bytes,
    brotli: Bytes,
}

/// Every static file: its name, media type and bytes.
const FILES: &[(&str, &str, &[u8])] = &[
    (
        "style.css",
        "text/css; charset=utf-8",
        include_bytes!("../../static/style.css"),
    ),
    (
        "admin.css",
        "text/css; charset=utf-8",
        include_bytes!("../../static/admin.css"),
    ),
    (
        "admin.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../static/admin.js"),
    ),
    (
        "favicon.svg",
        "image/svg+xml",
        include_bytes!("../../static/favicon.svg"),
    ),
];

static ASSETS: LazyLock<Vec<Asset>> = LazyLock::new(|| {
    FILES
        .iter()
        .map(|(name, content_type, bytes)| {
            let hash = hex::encode(&Sha256::digest(bytes)[..6]);
            let fingerprinted = match name.rsplit_once('.') {
                Some((stem, ext)) => format!("{stem}.{hash}.{ext}"),
                None => format!("{name}.{hash}"),
            };
            Asset {
                name,
                url: format!("/static/{fingerprinted}"),
                fingerprinted,
                content_type,
                bytes,
                etag: HeaderValue::from_str(&format!("W/\"{hash}\""))
                    .unwrap_or(HeaderValue::from_static("W/\"0\"")),
                gzip: Bytes::from(compression::gzip(bytes, 9)),
                brotli: Bytes::from(compression::brotli(bytes, 11)),
            }
        })
        .collect()
});

/// Compresses every file now, so the first reader does not wait for it.
pub fn prepare() {
    LazyLock::force(&ASSETS);
}

/// The fingerprinted address of the file `name`, for templates.
pub fn url(name: &str) -> &'static str {
    ASSETS
        .iter()
        .find(|a| a.name == name)
        .map_or("/static/missing", |a| a.url.as_str())
}

/// The stylesheet's address (templates call this).
pub fn stylesheet() -> &'static str {
    url("style.css")
}

/// `GET /static/{file}`.
pub async fn serve(req: HttpRequest, file: web::Path<String>) -> HttpResponse {
    let file = file.into_inner();
    let Some((asset, immutable)) = ASSETS.iter().find_map(|a| {
        if a.fingerprinted == file {
            Some((a, true))
        } else if a.name == file {
            Some((a, false))
        } else {
            None
        }
    }) else {
        return HttpResponse::NotFound()
            .content_type("text/plain; charset=utf-8")
            .body("No such file.\n");
    };
    let cache = if immutable {
        "public, max-age=31536000, immutable"
    } else {
        "public, max-age=3600"
    };
    let matches = super::page_cache::not_modified(req.headers(), &asset.etag);
    let mut res = if matches {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    res.insert_header((header::CACHE_CONTROL, cache))
        .insert_header((header::ETAG, asset.etag.clone()))
        .insert_header((header::VARY, "Accept-Encoding"));
    if matches {
        return res.finish();
    }
    res.content_type(asset.content_type);
    let accept = req
        .headers()
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok());
    match compression::negotiate(accept).unwrap_or(Coding::Identity) {
        Coding::Brotli => res
            .insert_header((header::CONTENT_ENCODING, "br"))
            .body(asset.brotli.clone()),
        Coding::Gzip => res
            .insert_header((header::CONTENT_ENCODING, "gzip"))
            .body(asset.gzip.clone()),
        Coding::Identity => res.body(Bytes::from_static(asset.bytes)),
    }
}
