//! Public pages kept for anonymous readers, and the content coding of every response.
//!
//! A reader without cookies sees the same page as every other such reader, except for the
//! comment form's token. Such a page is kept here once rendered, with its fixed parts
//! compressed once (gzip and brotli, on first demand), and served again without touching the
//! database for as long as the database's generation has not moved (`db::Freshness`) and the
//! page's own deadline (comments closing at a set time) has not passed. The token is made
//! fresh for every response and put where the page was rendered with `token_marker()`.
//!
//! Every response also gets its content coding here: a kept page from its pieces, any other
//! compressible body compressed at request time at a fast setting.
//!
//! A request with any cookie is never served from here and never stored: it may be a
//! commenter who must see their own pending comment, or a moderator. Kept pages carry a weak
//! `ETag` (a hash of their bytes, so a new release or any change gives a new one) and answer
//! `If-None-Match` with 304 (feeds and sitemaps keep their `Last-Modified` too, and answer
//! `If-Modified-Since`); they vary on `Accept-Encoding` and `Cookie`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::SystemTime;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderMap, HeaderValue, HttpDate};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::web::Bytes;
use actix_web::{Error, HttpResponse, web};
use chrono::NaiveDateTime;
use sha2::{Digest, Sha256};

use super::compression::{self, Coding, Pieces};
use crate::db::Freshness;
use crate::state::AppState;

/// Makes a fresh form token for one response of a kept page.
pub type TokenMaker = Arc<dyn Fn() -> String + Send + Sync>;

/// Attached by a handler to a response that may be kept for anonymous readers.
#[derive(Clone, Default)]
pub struct Keep {
    /// Until when the page is right whatever the database says (a post's comments close at a
    /// set time).
    pub valid_until: Option<NaiveDateTime>,
    /// For a page with a comment form: it was rendered with `token_marker()` as the token.
    pub token: Option<TokenMaker>,
}

/// What a kept page's form token is rendered as, to be replaced per response. Random per
/// process, so no comment can contain it.
pub fn token_marker() -> &'static str {
    static MARKER: OnceLock<String> = OnceLock::new();
    MARKER.get_or_init(|| format!("lectern-token-{}", crate::crypto::random_token(18)))
}

struct Entry {
    generation: Option<u64>,
    /// The site identity the page was made with: another server's save reaches this one's
    /// copy a moment after the database changed, and a page made in between must not stay.
    identity_version: i64,
    valid_until: Option<NaiveDateTime>,
    content_type: HeaderValue,
    cache_control: Option<HeaderValue>,
    /// `X-Robots-Tag` (search results say noindex in the header too).
    robots: Option<HeaderValue>,
    etag: HeaderValue,
    /// A feed's or sitemap's `Last-Modified`, as sent and as a time for `If-Modified-Since`.
    last_modified: Option<(HeaderValue, SystemTime)>,
    head: Bytes,
    tail: Bytes,
    token: Option<TokenMaker>,
    /// Compressed on first demand, then reused by every response (and by the next entry for
    /// the same bytes).
    pieces: Arc<OnceLock<Pieces>>,
    last_used: AtomicU64,
}

impl Entry {
    fn weight(&self) -> usize {
        let pieces = self.pieces.get().map_or(0, Pieces::weight);
        self.head.len() + self.tail.len() + pieces + 256
    }

    fn is_fresh(&self, generation: Option<u64>, identity: i64, now: NaiveDateTime) -> bool {
        generation.is_some()
            && self.generation == generation
            && self.identity_version == identity
            && self.valid_until.is_none_or(|until| now < until)
    }

    fn pieces(&self) -> &Pieces {
        self.pieces
            .get_or_init(|| Pieces::new(&self.head, &self.tail))
    }
}

/// Kept pages by path and query, least recently used dropped first past the budget.
pub struct PageCache {
    entries: Mutex<HashMap<String, Arc<Entry>>>,
    /// The pages being made now, each by one request (see `turn`).
    making: Arc<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>>,
    tick: AtomicU64,
    budget_bytes: usize,
}

impl PageCache {
    pub fn new(budget_bytes: usize) -> PageCache {
        PageCache {
            entries: Mutex::new(HashMap::new()),
            making: Arc::new(Mutex::new(HashMap::new())),
            tick: AtomicU64::new(0),
            budget_bytes,
        }
    }

    fn get(&self, key: &str) -> Option<Arc<Entry>> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let entry = entries.get(key)?.clone();
        entry
            .last_used
            .store(self.tick.fetch_add(1, Ordering::Relaxed), Ordering::Relaxed);
        Some(entry)
    }

    fn insert(&self, key: String, entry: Arc<Entry>) {
        // A page may take up to half the budget (a sitemap file of 50,000 addresses is ~5 MB).
        if entry.weight() * 2 > self.budget_bytes {
            return;
        }
        entry
            .last_used
            .store(self.tick.fetch_add(1, Ordering::Relaxed), Ordering::Relaxed);
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries.insert(key, entry);
        let mut total: usize = entries.values().map(|e| e.weight()).sum();
        while total > self.budget_bytes {
            let Some(oldest) = entries
                .iter()
                .min_by_key(|(_, e)| e.last_used.load(Ordering::Relaxed))
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            if let Some(dropped) = entries.remove(&oldest) {
                total -= dropped.weight();
            }
        }
    }

    /// Whether this request makes the page at `key` (no other is making it) or waits for the
    /// one that is: its lock is released when that request is done.
    fn turn(&self, key: &str) -> Turn {
        let mut making = self.making.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(made) = making.get(key) {
            return Turn::Wait(made.clone());
        }
        let lock = Arc::new(tokio::sync::Mutex::new(()));
        // A new lock is free: taking it cannot fail.
        let Ok(held) = lock.clone().try_lock_owned() else {
            return Turn::Wait(lock);
        };
        making.insert(key.to_string(), lock);
        Turn::Make(Making {
            key: key.to_string(),
            making: self.making.clone(),
            _held: held,
        })
    }

    /// Kept pages and their weight in bytes.
    pub fn usage(&self) -> (usize, usize) {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        (entries.len(), entries.values().map(|e| e.weight()).sum())
    }
}

enum Turn {
    Make(Making),
    Wait(Arc<tokio::sync::Mutex<()>>),
}

/// A request's turn to make a page; the next requests for it go ahead once this is dropped
/// (the page made and kept, or not, or the request gone).
struct Making {
    key: String,
    making: Arc<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>>,
    _held: tokio::sync::OwnedMutexGuard<()>,
}

impl Drop for Making {
    fn drop(&mut self) {
        self.making
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.key);
    }
}

/// The compression level of bodies compressed per request: fast, since the reader waits.
const DYNAMIC_GZIP_LEVEL: u32 = 5;
const DYNAMIC_BROTLI_QUALITY: i32 = 4;
/// Smaller bodies are sent as they are: compression would gain less than a packet.
const MIN_COMPRESSED_BYTES: usize = 512;

const VARY_ENCODING: HeaderValue = HeaderValue::from_static("Accept-Encoding");
const VARY_KEPT: HeaderValue = HeaderValue::from_static("Accept-Encoding, Cookie");

/// Files immutable under their address, kept in memory by their own routes: never kept here,
/// so they skip the freshness check (a query on SQLite) that a kept page needs.
const NEVER_KEPT: &[&str] = &["/static/", "/media/"];

/// The middleware: serves kept pages, keeps new ones, and encodes every response.
pub async fn deliver(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let accept = req
        .headers()
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let Some(coding) = compression::negotiate(accept.as_deref()) else {
        let (req, _) = req.into_parts();
        let res = HttpResponse::NotAcceptable()
            .insert_header((header::VARY, VARY_ENCODING))
            .content_type("text/plain; charset=utf-8")
            .body("None of the content codings this request accepts is available.\n");
        return Ok(ServiceResponse::new(req, res));
    };
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let cache = req.app_data::<web::Data<PageCache>>().cloned();
    let freshness = req.app_data::<web::Data<Freshness>>().cloned();
    let anonymous_read = matches!(*req.method(), Method::GET | Method::HEAD)
        && !req.headers().contains_key(header::COOKIE)
        && !NEVER_KEPT
            .iter()
            .any(|prefix| req.path().starts_with(prefix));
    let (Some(state), Some(cache), Some(freshness), true) =
        (state, cache, freshness, anonymous_read)
    else {
        let res = next.call(req).await?;
        return encode(res, coding).await;
    };

    let key = req
        .uri()
        .path_and_query()
        .map_or_else(|| req.path().to_string(), |pq| pq.as_str().to_string());
    // Read before the page is made: a change committed meanwhile leaves the kept page with an
    // older generation, so the next request makes it again.
    let generation = freshness.generation();
    let now = state.clock.now();
    let identity = state.identity.get().version;
    let mut kept = cache.get(&key);
    if let Some(entry) = &kept
        && entry.is_fresh(generation, identity, now)
    {
        return Ok(hit(&state, req, entry, coding));
    }
    // One request makes a page at a time: the others asking for it meanwhile wait for it and
    // take what it kept, instead of each making (and holding in memory) a copy of their own.
    // A page that was not kept lets them all go ahead at once.
    let _making = match cache.turn(&key) {
        Turn::Make(guard) => Some(guard),
        Turn::Wait(made) => {
            drop(made.lock().await);
            kept = cache.get(&key);
            if let Some(entry) = &kept
                && entry.is_fresh(generation, identity, now)
            {
                return Ok(hit(&state, req, entry, coding));
            }
            None
        }
    };

    let res = next.call(req).await?;
    let keep = res.response().extensions().get::<Keep>().cloned();
    let keep = match keep {
        Some(keep)
            if res.status() == StatusCode::OK
                && !res.headers().contains_key(header::SET_COOKIE) =>
        {
            keep
        }
        _ => return encode(res, coding).await,
    };
    let (req, res) = res.into_parts();
    let (head_parts, body) = res.into_parts();
    let bytes = actix_web::body::to_bytes(body)
        .await
        .map_err(|e| actix_web::error::ErrorInternalServerError(e.into()))?;
    let (head, tail) = match &keep.token {
        Some(_) => match split_at_marker(&bytes) {
            Some(parts) => parts,
            None => {
                // The handler promised a marker and rendered none: never keep such a page.
                tracing::error!(route = %key, "a kept page has no token marker; not kept");
                let res = head_parts.set_body(bytes).map_into_boxed_body();
                return encode(ServiceResponse::new(req, res), coding).await;
            }
        },
        None => (bytes.clone(), Bytes::new()),
    };
    let etag = etag_of(&head, &tail);
    // The same bytes as before (a change elsewhere moved the generation): keep the compressed
    // pieces already made.
    let pieces = match &kept {
        Some(old) if old.etag == etag => old.pieces.clone(),
        _ => Arc::new(OnceLock::new()),
    };
    state.metrics.page_cache_miss();
    let entry = Arc::new(Entry {
        generation,
        identity_version: identity,
        valid_until: keep.valid_until,
        content_type: head_parts
            .headers()
            .get(header::CONTENT_TYPE)
            .cloned()
            .unwrap_or(HeaderValue::from_static("text/html; charset=utf-8")),
        cache_control: head_parts.headers().get(header::CACHE_CONTROL).cloned(),
        robots: head_parts.headers().get("x-robots-tag").cloned(),
        etag,
        last_modified: last_modified_of(head_parts.headers()),
        head,
        tail,
        token: keep.token,
        pieces,
        last_used: AtomicU64::new(0),
    });
    cache.insert(key, entry.clone());
    let res = serve(&req, &entry, coding);
    Ok(ServiceResponse::new(req, res))
}

/// The answer from a fresh kept page, counted as a hit.
fn hit(state: &AppState, req: ServiceRequest, entry: &Entry, coding: Coding) -> ServiceResponse {
    state.metrics.page_cache_hit();
    let (req, _) = req.into_parts();
    let res = serve(&req, entry, coding);
    ServiceResponse::new(req, res)
}

fn split_at_marker(bytes: &Bytes) -> Option<(Bytes, Bytes)> {
    let marker = token_marker().as_bytes();
    let at = bytes.windows(marker.len()).rposition(|w| w == marker)?;
    Some((bytes.slice(..at), bytes.slice(at + marker.len()..)))
}

fn etag_of(head: &[u8], tail: &[u8]) -> HeaderValue {
    let mut hash = Sha256::new();
    hash.update(head);
    hash.update([0u8]);
    hash.update(tail);
    let tag = format!("W/\"{}\"", hex::encode(&hash.finalize()[..12]));
    HeaderValue::from_str(&tag).unwrap_or(HeaderValue::from_static("W/\"0\""))
}

/// Whether `If-None-Match` names this entity (weak comparison, RFC 9110 13.1.2).
pub fn not_modified(headers: &HeaderMap, etag: &HeaderValue) -> bool {
    let Some(value) = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let ours = etag.to_str().unwrap_or("").trim_start_matches("W/");
    value
        .split(',')
        .map(str::trim)
        .any(|candidate| candidate == "*" || candidate.trim_start_matches("W/") == ours)
}

/// The `Last-Modified` a response was made with, if it has a valid one.
fn last_modified_of(headers: &HeaderMap) -> Option<(HeaderValue, SystemTime)> {
    let value = headers.get(header::LAST_MODIFIED)?;
    let date: HttpDate = value.to_str().ok()?.parse().ok()?;
    Some((value.clone(), SystemTime::from(date)))
}

/// Whether the request's validators match the kept page (RFC 9110 §13.2.2: `If-None-Match`,
/// when present, decides alone; else `If-Modified-Since`, for a page with a `Last-Modified`).
fn unchanged_for(headers: &HeaderMap, entry: &Entry) -> bool {
    if headers.contains_key(header::IF_NONE_MATCH) {
        return not_modified(headers, &entry.etag);
    }
    let Some((_, modified)) = &entry.last_modified else {
        return false;
    };
    headers
        .get(header::IF_MODIFIED_SINCE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<HttpDate>().ok())
        .is_some_and(|since| *modified <= SystemTime::from(since))
}

/// A kept page as a response in `coding`, or 304.
fn serve(req: &actix_web::HttpRequest, entry: &Entry, coding: Coding) -> HttpResponse {
    let unchanged = unchanged_for(req.headers(), entry);
    let mut res = if unchanged {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    res.insert_header((header::ETAG, entry.etag.clone()))
        .insert_header((header::VARY, VARY_KEPT));
    if let Some(robots) = &entry.robots {
        res.insert_header(("x-robots-tag", robots.clone()));
    }
    if let Some(cache_control) = &entry.cache_control {
        res.insert_header((header::CACHE_CONTROL, cache_control.clone()));
    }
    if let Some((value, _)) = &entry.last_modified {
        res.insert_header((header::LAST_MODIFIED, value.clone()));
    }
    if unchanged {
        return res.finish();
    }
    res.insert_header((header::CONTENT_TYPE, entry.content_type.clone()));
    let token = entry.token.as_ref().map(|make| make()).unwrap_or_default();
    let body: Bytes = match coding {
        // A page without a form is sent as it is kept, without a copy.
        Coding::Identity if token.is_empty() && entry.tail.is_empty() => entry.head.clone(),
        Coding::Identity => {
            let mut body = Vec::with_capacity(entry.head.len() + token.len() + entry.tail.len());
            body.extend_from_slice(&entry.head);
            body.extend_from_slice(token.as_bytes());
            body.extend_from_slice(&entry.tail);
            body.into()
        }
        Coding::Gzip => entry.pieces().gzip(token.as_bytes()).into(),
        Coding::Brotli => entry.pieces().brotli(token.as_bytes()).into(),
    };
    if let Some(name) = coding.header() {
        res.insert_header((header::CONTENT_ENCODING, name));
    }
    if body.len() > STREAMED_ABOVE {
        // Handed over in pieces, in turn with the worker's other readers (`http::pieces`).
        return res.body(super::pieces::Pieces::taking_turns(body));
    }
    res.body(body)
}

/// Kept pages larger than this are sent in pieces.
const STREAMED_ABOVE: usize = 512 * 1024;

/// Compresses a response made for this request alone, when that is worth it.
async fn encode(
    res: ServiceResponse<impl MessageBody + 'static>,
    coding: Coding,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let compressible = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(compression::compressible);
    let sized = match res.response().body().size() {
        actix_web::body::BodySize::Sized(n) => Some(n as usize),
        _ => None,
    };
    if !compressible
        || res.headers().contains_key(header::CONTENT_ENCODING)
        || matches!(
            res.status(),
            StatusCode::NOT_MODIFIED | StatusCode::NO_CONTENT
        )
    {
        return Ok(res.map_into_boxed_body());
    }
    let mut res = res;
    add_vary(res.headers_mut());
    let worth_it = sized.is_some_and(|n| n >= MIN_COMPRESSED_BYTES);
    if coding == Coding::Identity || !worth_it {
        return Ok(res.map_into_boxed_body());
    }
    let (req, res) = res.into_parts();
    let (mut head, body) = res.into_parts();
    let bytes = actix_web::body::to_bytes(body)
        .await
        .map_err(|e| actix_web::error::ErrorInternalServerError(e.into()))?;
    let compressed = match coding {
        Coding::Gzip => compression::gzip(&bytes, DYNAMIC_GZIP_LEVEL),
        Coding::Brotli => compression::brotli(&bytes, DYNAMIC_BROTLI_QUALITY),
        Coding::Identity => bytes.to_vec(),
    };
    if let Some(name) = coding.header() {
        head.headers_mut()
            .insert(header::CONTENT_ENCODING, HeaderValue::from_static(name));
    }
    head.headers_mut().remove(header::CONTENT_LENGTH);
    let res = head.set_body(compressed).map_into_boxed_body();
    Ok(ServiceResponse::new(req, res))
}

/// Adds `Accept-Encoding` to `Vary`, keeping what is there.
fn add_vary(headers: &mut HeaderMap) {
    let existing = headers
        .get(header::VARY)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let value = match existing {
        Some(v) if v.to_ascii_lowercase().contains("accept-encoding") => return,
        Some(v) if !v.is_empty() => format!("{v}, Accept-Encoding"),
        _ => "Accept-Encoding".to_string(),
    };
    if let Ok(value) = HeaderValue::from_str(&value) {
        headers.insert(header::VARY, value);
    }
}
