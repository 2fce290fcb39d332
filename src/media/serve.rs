//! `GET /media/{sha256}-{width}.{ext}`: a stored file, immutable (its address is its hash), read
//! from the database a chunk at a time, so a big file never sits whole in memory.

use std::collections::{HashMap, VecDeque};
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

use actix_web::body::SizedStream;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use futures_util::stream;

use super::store::{self, Served};
use super::{CHUNK_BYTES, MediaPath};
use crate::error::{AppError, AppResult};
use crate::state::AppState;

const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// Small files recently served, kept in memory: a file never changes under its address, so the
/// only question a kept copy raises is whether it was deleted, asked again after `RECHECK`.
const CACHE_BYTES: usize = 16 << 20;
const CACHE_MAX_FILE: usize = 1 << 20;
const RECHECK: Duration = Duration::from_secs(60);

struct Kept {
    bytes: web::Bytes,
    content_type: &'static str,
    checked: Instant,
}

#[derive(Default)]
struct Cache {
    files: HashMap<String, Kept>,
    order: VecDeque<String>,
    bytes: usize,
}

static CACHE: LazyLock<Mutex<Cache>> = LazyLock::new(|| Mutex::new(Cache::default()));

fn kept(file: &str) -> Option<(web::Bytes, &'static str)> {
    let cache = CACHE.lock().ok()?;
    let kept = cache.files.get(file)?;
    (kept.checked.elapsed() < RECHECK).then(|| (kept.bytes.clone(), kept.content_type))
}

fn keep(file: &str, bytes: web::Bytes, content_type: &'static str) {
    if bytes.len() > CACHE_MAX_FILE {
        return;
    }
    let Ok(mut cache) = CACHE.lock() else { return };
    let size = bytes.len();
    if let Some(old) = cache.files.insert(
        file.to_string(),
        Kept {
            bytes,
            content_type,
            checked: Instant::now(),
        },
    ) {
        cache.bytes -= old.bytes.len();
    } else {
        cache.order.push_back(file.to_string());
    }
    cache.bytes += size;
    while cache.bytes > CACHE_BYTES {
        let Some(oldest) = cache.order.pop_front() else {
            break;
        };
        if let Some(gone) = cache.files.remove(&oldest) {
            cache.bytes -= gone.bytes.len();
        }
    }
}

/// Forgets every kept file of a picture (this server deleted it).
pub fn forget(sha256: &str) {
    let Ok(mut cache) = CACHE.lock() else { return };
    let prefix = format!("{sha256}-");
    let gone: Vec<String> = cache
        .files
        .keys()
        .filter(|k| k.starts_with(&prefix))
        .cloned()
        .collect();
    for key in gone {
        if let Some(old) = cache.files.remove(&key) {
            cache.bytes -= old.bytes.len();
        }
        cache.order.retain(|k| *k != key);
    }
}

fn headers(response: &mut actix_web::HttpResponseBuilder, etag: HeaderValue) {
    response
        .insert_header((header::CACHE_CONTROL, IMMUTABLE))
        .insert_header((header::ETAG, etag))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        // Pictures may be shown by other sites (feed readers, link previews).
        .insert_header(("Cross-Origin-Resource-Policy", "cross-origin"));
}

/// `GET /media/{file}`
pub async fn media_file(
    state: web::Data<AppState>,
    req: HttpRequest,
    file: web::Path<String>,
) -> AppResult<HttpResponse> {
    let Some(path) = MediaPath::parse_file(&file) else {
        return Err(AppError::NotFound);
    };
    let etag = HeaderValue::from_str(&format!("\"{}-{}\"", path.sha256, path.width))
        .map_err(|e| AppError::Internal(e.into()))?;
    let not_modified = crate::http::page_cache::not_modified(req.headers(), &etag);
    if let Some((bytes, content_type)) = kept(&file) {
        let mut response = if not_modified {
            HttpResponse::NotModified()
        } else {
            HttpResponse::Ok()
        };
        headers(&mut response, etag);
        if not_modified {
            return Ok(response.finish());
        }
        return Ok(response.content_type(content_type).body(bytes));
    }
    let lookup = path.clone();
    let Some(Served {
        variant,
        first_chunk,
    }) = state
        .db
        .read(move |conn| store::served(conn, &lookup))
        .await?
    else {
        return Err(AppError::NotFound);
    };
    let mut response = if not_modified {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    headers(&mut response, etag);
    if not_modified {
        return Ok(response.finish());
    }
    response.content_type(variant.format.content_type());
    let size = u64::try_from(variant.byte_size).unwrap_or(0);
    if first_chunk.len() as u64 >= size {
        let bytes = web::Bytes::from(first_chunk);
        keep(&file, bytes.clone(), variant.format.content_type());
        return Ok(response.body(bytes));
    }

    // The rest, one chunk at a time, as the client takes them.
    let chunks = size.div_ceil(CHUNK_BYTES as u64);
    let variant_id = variant.id;
    let first = web::Bytes::from(first_chunk);
    let rest = stream::unfold(1i32, move |seq| {
        let state = state.clone();
        async move {
            if u64::try_from(seq).unwrap_or(u64::MAX) >= chunks {
                return None;
            }
            let read = state
                .db
                .read(move |conn| store::chunk(conn, variant_id, seq))
                .await;
            let item = match read {
                Ok(Some(bytes)) => Ok(web::Bytes::from(bytes)),
                Ok(None) => Err(AppError::NotFound),
                Err(e) => Err(AppError::from(e)),
            };
            Some((item, seq + 1))
        }
    });
    let body = futures_util::StreamExt::chain(stream::once(async move { Ok(first) }), rest);
    Ok(response.body(SizedStream::new(size, Box::pin(body))))
}
