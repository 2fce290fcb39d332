//! `GET /media/{sha256}-{width}.{ext}`: a stored file, immutable (its address is its hash), read
//! from the database a chunk at a time, so a big file never sits whole in memory.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use actix_web::body::{EitherBody, MessageBody, SizedStream};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{Error, HttpRequest, HttpResponse, web};
use chrono::NaiveDateTime;
use futures_util::stream;

use super::store::{self, Served};
use super::{CHUNK_BYTES, MediaFormat, MediaPath};
use crate::error::{AppError, AppResult};
use crate::http::pieces::Pieces;
use crate::state::AppState;

const IMMUTABLE: HeaderValue = HeaderValue::from_static("public, max-age=31536000, immutable");
const NOSNIFF: HeaderValue = HeaderValue::from_static("nosniff");
const CROSS_ORIGIN: HeaderValue = HeaderValue::from_static("cross-origin");
const CORP: HeaderName = HeaderName::from_static("cross-origin-resource-policy");

/// What the files kept in memory may weigh, and the largest one kept: a file never changes
/// under its address, so a kept copy only raises the question whether it was deleted (by
/// another server sharing the database), asked again after `RECHECK_SECS`.
pub const CACHE_BYTES: usize = 16 << 20;
const CACHE_MAX_FILE: usize = 1 << 20;
const RECHECK_SECS: i64 = 60;

#[derive(Clone)]
struct Kept {
    bytes: web::Bytes,
    etag: HeaderValue,
    /// Every header of its 304 answer, built once (the 200 adds its `Content-Type`).
    headers: Arc<HeaderMap>,
    content_type: HeaderValue,
    /// When the database last said the file exists (the app's clock, so tests can move it).
    checked: NaiveDateTime,
}

#[derive(Default)]
struct Files {
    by_name: HashMap<Box<str>, Kept>,
    /// Oldest first; dropped first when the budget is reached.
    order: VecDeque<Box<str>>,
    bytes: usize,
}

/// Small files recently served by this server, kept in memory within a byte budget.
pub struct MediaCache {
    budget_bytes: usize,
    files: Mutex<Files>,
}

impl MediaCache {
    pub fn new(budget_bytes: usize) -> MediaCache {
        MediaCache {
            budget_bytes,
            files: Mutex::new(Files::default()),
        }
    }

    fn get(&self, file: &str, now: NaiveDateTime) -> Option<Kept> {
        let files = self.files.lock().unwrap_or_else(|p| p.into_inner());
        let kept = files.by_name.get(file)?;
        ((now - kept.checked).num_seconds() < RECHECK_SECS && now >= kept.checked)
            .then(|| kept.clone())
    }

    fn keep(&self, file: &str, kept: Kept) {
        let size = kept.bytes.len();
        if size > CACHE_MAX_FILE || size > self.budget_bytes {
            return;
        }
        let mut files = self.files.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(old) = files.by_name.insert(file.into(), kept) {
            files.bytes -= old.bytes.len();
        } else {
            files.order.push_back(file.into());
        }
        files.bytes += size;
        while files.bytes > self.budget_bytes {
            let Some(oldest) = files.order.pop_front() else {
                break;
            };
            if let Some(gone) = files.by_name.remove(&oldest) {
                files.bytes -= gone.bytes.len();
            }
        }
    }

    /// Forgets every kept file of a picture (this server deleted it).
    pub fn forget(&self, sha256: &str) {
        let mut files = self.files.lock().unwrap_or_else(|p| p.into_inner());
        let prefix = format!("{sha256}-");
        let Files {
            by_name,
            order,
            bytes,
        } = &mut *files;
        by_name.retain(|name, kept| {
            let gone = name.starts_with(&prefix);
            if gone {
                *bytes -= kept.bytes.len();
            }
            !gone
        });
        order.retain(|name| !name.starts_with(&prefix));
    }

    /// Files kept and their weight in bytes.
    pub fn usage(&self) -> (usize, usize) {
        let files = self.files.lock().unwrap_or_else(|p| p.into_inner());
        (files.by_name.len(), files.bytes)
    }
}

impl Kept {
    fn new(
        bytes: web::Bytes,
        format: MediaFormat,
        etag: HeaderValue,
        checked: NaiveDateTime,
        state: &AppState,
    ) -> Kept {
        let mut headers = HeaderMap::new();
        insert_headers(&mut headers, etag.clone());
        crate::http::middleware::insert_security_headers(&mut headers, false, state.secure_cookies);
        Kept {
            bytes,
            etag,
            headers: Arc::new(headers),
            content_type: HeaderValue::from_static(format.content_type()),
            checked,
        }
    }

    /// The whole answer, headers included: the same as a file read from the database gets
    /// from the handler and the middleware (less the request's id, added by its observer).
    fn answer(self, request: &HeaderMap) -> HttpResponse {
        let unchanged = crate::http::page_cache::not_modified(request, &self.etag);
        let mut res = if unchanged {
            HttpResponse::new(StatusCode::NOT_MODIFIED)
        } else {
            HttpResponse::with_body(StatusCode::OK, Pieces::new(self.bytes)).map_into_boxed_body()
        };
        let headers = res.headers_mut();
        *headers = HeaderMap::clone(&self.headers);
        if !unchanged {
            headers.insert(header::CONTENT_TYPE, self.content_type);
        }
        res
    }
}

/// The route pattern kept files are counted under in `/metrics`, as `observe_requests`
/// labels `/media/{file}`.
const MEDIA_ROUTE: &str = "/media/:file";

/// The outermost middleware: a GET or HEAD for a file kept in memory is answered here, before
/// the other middleware (each boxes a future and reads or writes headers) and the router (a
/// regular expression a route) see it. Its headers were built with the file; it is counted
/// and logged like every request. Anything else, a kept file past its recheck included, goes
/// on to the full stack, which reads and keeps it again.
pub async fn answer_kept_files(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<actix_web::body::BoxBody, impl MessageBody>>, Error> {
    let Some(kept) = kept_file_for(&req) else {
        return Ok(next.call(req).await?.map_into_right_body());
    };
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let arrival = crate::http::middleware::Arrival::of(&req, state.as_ref().map(|s| s.get_ref()));
    let mut res = kept.answer(req.headers());
    let status = res.status().as_u16();
    arrival.answered(
        state.as_ref().map(|s| s.get_ref()),
        MEDIA_ROUTE,
        status,
        res.headers_mut(),
    );
    let (req, _) = req.into_parts();
    Ok(ServiceResponse::new(req, res).map_into_left_body())
}

/// The kept file a request asks for, if it is a GET or HEAD of one that is fresh, and the
/// request accepts it without a content coding (otherwise the full stack answers 406).
fn kept_file_for(req: &ServiceRequest) -> Option<Kept> {
    if !matches!(*req.method(), Method::GET | Method::HEAD) {
        return None;
    }
    let name = req.path().strip_prefix("/media/")?;
    let cache = req.app_data::<web::Data<MediaCache>>()?;
    let state = req.app_data::<web::Data<AppState>>()?;
    let accept = req
        .headers()
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok());
    crate::http::compression::negotiate(accept)?;
    cache.get(name, state.clock.now())
}

/// The headers every answer for a file carries, 304 included.
fn insert_headers(headers: &mut HeaderMap, etag: HeaderValue) {
    headers.insert(header::CACHE_CONTROL, IMMUTABLE);
    headers.insert(header::ETAG, etag);
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, NOSNIFF);
    // Pictures may be shown by other sites (feed readers, link previews).
    headers.insert(CORP, CROSS_ORIGIN);
}

fn not_modified(etag: HeaderValue) -> HttpResponse {
    let mut res = HttpResponse::new(StatusCode::NOT_MODIFIED);
    insert_headers(res.headers_mut(), etag);
    res
}

fn file(etag: HeaderValue, format: MediaFormat, body: impl MessageBody + 'static) -> HttpResponse {
    let mut res = HttpResponse::with_body(StatusCode::OK, body).map_into_boxed_body();
    let headers = res.headers_mut();
    insert_headers(headers, etag);
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    res
}

/// `GET /media/{file}`
pub async fn media_file(
    state: web::Data<AppState>,
    cache: web::Data<MediaCache>,
    req: HttpRequest,
) -> AppResult<HttpResponse> {
    let name = req.match_info().get("file").unwrap_or("");
    let now = state.clock.now();
    // A kept file was found in the database less than `RECHECK_SECS` ago.
    if let Some(kept) = cache.get(name, now) {
        return Ok(kept.answer(req.headers()));
    }
    let Some(path) = MediaPath::parse_file(name) else {
        return Err(AppError::NotFound);
    };
    let etag = HeaderValue::from_str(&format!("\"{}-{}\"", path.sha256, path.width))
        .map_err(|e| AppError::Internal(e.into()))?;
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
    let unchanged = crate::http::page_cache::not_modified(req.headers(), &etag);
    let size = u64::try_from(variant.byte_size).unwrap_or(0);
    if first_chunk.len() as u64 >= size {
        let bytes = web::Bytes::from(first_chunk);
        cache.keep(
            name,
            Kept::new(bytes.clone(), variant.format, etag.clone(), now, &state),
        );
        if unchanged {
            return Ok(not_modified(etag));
        }
        return Ok(file(etag, variant.format, bytes));
    }
    if unchanged {
        return Ok(not_modified(etag));
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
    Ok(file(
        etag,
        variant.format,
        SizedStream::new(size, Box::pin(body)),
    ))
}
