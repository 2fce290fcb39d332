//! Middleware: HEAD answered as GET, a deadline on request bodies, security headers, the
//! cross-site POST refusal, and each request's id, metrics and log line.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Instant;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::http::Method;
use actix_web::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::web::Bytes;
use actix_web::{Error, HttpMessage, web};
use futures_util::Stream;
use tracing::Instrument;

use crate::error::AppError;
use crate::state::AppState;

// `connect-src 'self'` lets no script in (there is none to run: `script-src` stays 'none');
// it lets a checker such as Lighthouse read /robots.txt from the page, as it does.
const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; form-action 'self'; base-uri 'none'; \
                   frame-ancestors 'none'";
/// The admin pages alone may run a script, and only the site's own file (keyboard moderation);
/// public pages keep no script at all.
const ADMIN_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
                         img-src 'self' data:; connect-src 'self'; form-action 'self'; \
                         base-uri 'none'; frame-ancestors 'none'";

/// Answers HEAD as GET, as HTTP requires of every server (RFC 9110, 9.1): the routes see GET,
/// and the HTTP layer, which parsed the request as HEAD, sends the same headers without the
/// body. Uptime monitors and link checkers ask with HEAD.
pub async fn head_as_get(
    mut req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    if req.method() == Method::HEAD {
        req.head_mut().method = Method::GET;
    }
    next.call(req).await
}

/// Gives a request's body `LECTERN_BODY_TIMEOUT_SECS` to arrive, counted from the request's
/// start: a client that declares 100 kB and sends 5 bytes would otherwise hold its connection
/// (and a file descriptor) for ever. Whatever route was reading the body, the answer is 408 and
/// the connection is closed.
/// Routes whose multipart upload its handler streams to disk (the admin guard leaves their
/// body, and their CSRF check, to the handler).
pub const STREAMED_UPLOADS: &[&str] = &["/admin/import", "/admin/media"];

/// `/admin/import` takes a whole WordPress export: its upload may be this large.
pub const MAX_IMPORT_UPLOAD_BYTES: usize = 256 * 1024 * 1024;

/// The body deadline of the streamed uploads.
const UPLOAD_BODY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(600);

pub async fn body_deadline(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, Error> {
    // Most requests (every page view) have no body: they pay for no timer.
    let has_body = req.headers().contains_key(header::TRANSFER_ENCODING)
        || req
            .headers()
            .get(header::CONTENT_LENGTH)
            .is_some_and(|v| v.as_bytes() != b"0");
    // A whole export uploaded to /admin/import may take minutes on a slow line.
    let upload = STREAMED_UPLOADS.contains(&req.path());
    let timeout = req
        .app_data::<web::Data<AppState>>()
        .map(|s| {
            if upload {
                UPLOAD_BODY_TIMEOUT
            } else {
                s.config.body_timeout
            }
        })
        .filter(|_| has_body);
    let Some(timeout) = timeout else {
        return Ok(next.call(req).await?.map_into_left_body());
    };
    let expired = Arc::new(AtomicBool::new(false));
    let payload = DeadlinePayload {
        inner: req.take_payload(),
        deadline: Box::pin(tokio::time::sleep(timeout)),
        expired: expired.clone(),
    };
    req.set_payload(Payload::Stream {
        payload: Box::pin(payload),
    });
    let res = next.call(req).await?;
    if !expired.load(Ordering::Relaxed) {
        return Ok(res.map_into_left_body());
    }
    tracing::info!(path = %loggable_path(res.request().path()), "a request body did not arrive in time");
    let (req, _) = res.into_parts();
    let res = actix_web::ResponseError::error_response(&AppError::RequestTimeout);
    Ok(ServiceResponse::new(req, res).map_into_right_body())
}

/// A request body that ends in an error once its deadline has passed.
struct DeadlinePayload {
    inner: Payload,
    deadline: Pin<Box<tokio::time::Sleep>>,
    expired: Arc<AtomicBool>,
}

impl Stream for DeadlinePayload {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if let Poll::Ready(item) = Pin::new(&mut self.inner).poll_next(cx) {
            return Poll::Ready(item);
        }
        if self.deadline.as_mut().poll(cx).is_ready() {
            self.expired.store(true, Ordering::Relaxed);
            return Poll::Ready(Some(Err(PayloadError::Io(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the request body did not arrive in time",
            )))));
        }
        Poll::Pending
    }
}

/// Whether a request declares a body larger than `limit`: refused with 413 before a byte of
/// it is read.
pub fn declares_more_than(headers: &header::HeaderMap, limit: usize) -> bool {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .is_some_and(|declared| declared > limit as u64)
}

/// Adds the security headers every response carries.
pub async fn security_headers(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let https = req
        .app_data::<web::Data<AppState>>()
        .is_some_and(|s| s.secure_cookies);
    // Admin pages (login and reset forms included) have no business in a search index.
    let admin = req.path() == "/admin" || req.path().starts_with("/admin/");
    let mut res = next.call(req).await?;
    insert_security_headers(res.headers_mut(), admin, https);
    Ok(res)
}

/// The security headers, each one the response does not already set. Kept media files are
/// answered before this middleware runs and carry them from here too (`media::serve`).
pub fn insert_security_headers(headers: &mut HeaderMap, admin: bool, https: bool) {
    let mut set = |name: HeaderName, value: &'static str| {
        if !headers.contains_key(&name) {
            headers.insert(name, HeaderValue::from_static(value));
        }
    };
    set(
        header::CONTENT_SECURITY_POLICY,
        if admin { ADMIN_CSP } else { CSP },
    );
    set(header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(header::X_FRAME_OPTIONS, "DENY");
    set(header::REFERRER_POLICY, "strict-origin-when-cross-origin");
    set(
        HeaderName::from_static("permissions-policy"),
        "camera=(), microphone=(), geolocation=(), interest-cohort=()",
    );
    set(
        HeaderName::from_static("cross-origin-opener-policy"),
        "same-origin",
    );
    set(
        HeaderName::from_static("cross-origin-resource-policy"),
        "same-origin",
    );
    if admin {
        set(HeaderName::from_static("x-robots-tag"), "noindex");
    }
    if https {
        set(
            header::STRICT_TRANSPORT_SECURITY,
            "max-age=63072000; includeSubDomains",
        );
    }
}

/// Refuses any POST that a browser says comes from another site: an `Origin` that is not ours,
/// or `Sec-Fetch-Site: cross-site`. Requests with neither (command-line clients, RFC 8058
/// one-click unsubscribe) are judged by their tokens alone.
pub async fn refuse_cross_site_posts(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<actix_web::body::EitherBody<impl MessageBody>>, Error> {
    if req.method() == Method::POST {
        let own_origin = req
            .app_data::<web::Data<AppState>>()
            .map(|s| s.origin.clone())
            .unwrap_or_default();
        let headers = req.headers();
        let foreign_origin = headers
            .get(header::ORIGIN)
            .is_some_and(|o| o.to_str().map_or(true, |o| o != own_origin));
        let cross_site = headers
            .get("sec-fetch-site")
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"cross-site"));
        if foreign_origin || cross_site {
            tracing::warn!(path = %loggable_path(req.path()), "refused a cross-site POST");
            let (req, _) = req.into_parts();
            let res = actix_web::ResponseError::error_response(&AppError::Forbidden(
                "This form was sent from another site, so it was refused and nothing changed.",
            ));
            return Ok(ServiceResponse::new(req, res).map_into_right_body());
        }
    }
    Ok(next.call(req).await?.map_into_left_body())
}

/// Paths whose last segment is a secret token; logged without it.
const TOKEN_PATHS: &[&str] = &[
    "/my-comments/",
    "/moderate/",
    "/confirm/",
    "/unsubscribe/",
    "/admin/password-reset/",
];

pub fn loggable_path(path: &str) -> String {
    for prefix in TOKEN_PATHS {
        if path.starts_with(prefix) && path.len() > prefix.len() {
            return format!("{prefix}…");
        }
    }
    path.to_string()
}

/// A request's id: the trusted proxy's `X-Request-Id` when it sent a usable one, else made
/// here (a random prefix per process and a counter, so unique across servers and cheap).
fn request_id(req: &ServiceRequest, trusted: &[ipnet::IpNet]) -> String {
    let from_proxy = req
        .peer_addr()
        .is_some_and(|peer| trusted.iter().any(|net| net.contains(&peer.ip())));
    if from_proxy
        && let Some(id) = req
            .headers()
            .get(REQUEST_ID)
            .and_then(|v| v.to_str().ok())
            .filter(|id| usable_request_id(id))
    {
        return id.to_string();
    }
    static PREFIX: OnceLock<String> = OnceLock::new();
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let prefix = PREFIX.get_or_init(|| crate::crypto::random_token(6));
    format!("{prefix}-{:x}", NEXT.fetch_add(1, Ordering::Relaxed))
}

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// An id a proxy may hand us: short, and nothing a log reader could mistake for structure.
fn usable_request_id(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:@+/=".contains(&b))
}

/// A route pattern as a label: `/posts/{slug}` becomes `/posts/:slug`. Braces are valid in a
/// Prometheus label value, but several text parsers stop at the first `}`.
fn route_label(pattern: &str) -> String {
    let mut label = String::with_capacity(pattern.len());
    for c in pattern.chars() {
        match c {
            '{' => label.push(':'),
            '}' => {}
            c => label.push(c),
        }
    }
    label
}

/// Every request gets an id (in the `X-Request-Id` response header and on every log line
/// written while it is handled), is counted and timed by route pattern for `/metrics`, and is
/// logged in one line: method, path (tokens and query strings left out, since they can carry
/// secrets), route, status and latency.
pub async fn observe_requests(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let arrival = Arrival::of(&req, state.as_ref().map(|s| s.get_ref()));
    let mut res = next.call(req).instrument(arrival.span.clone()).await?;
    let route = res
        .request()
        .match_pattern()
        .map_or_else(|| "unmatched".to_string(), |p| route_label(&p));
    let status = res.status().as_u16();
    arrival.answered(
        state.as_ref().map(|s| s.get_ref()),
        &route,
        status,
        res.headers_mut(),
    );
    Ok(res)
}

/// A request as it arrived (HEAD still HEAD): what its log line, metrics and id need. Kept
/// media files are answered before `observe_requests` runs, and observed through this too.
pub struct Arrival {
    started: Instant,
    id: String,
    method: Method,
    path: String,
    span: tracing::Span,
}

impl Arrival {
    pub fn of(req: &ServiceRequest, state: Option<&AppState>) -> Arrival {
        let started = Instant::now();
        let id = request_id(
            req,
            state.map_or(&[][..], |s| &s.config.trusted_proxies[..]),
        );
        let span = tracing::info_span!("request", request_id = %id);
        Arrival {
            started,
            id,
            method: req.method().clone(),
            path: loggable_path(req.path()),
            span,
        }
    }

    /// Counts and times the answer under `route` (a label such as `/media/:file`), gives it
    /// the request's id and logs it.
    pub fn answered(
        self,
        state: Option<&AppState>,
        route: &str,
        status: u16,
        headers: &mut HeaderMap,
    ) {
        let Arrival {
            started,
            id,
            method,
            path,
            span,
        } = self;
        let elapsed = started.elapsed();
        let method_label = match method {
            Method::GET => "GET",
            Method::HEAD => "HEAD",
            Method::POST => "POST",
            _ => "other",
        };
        if let Some(state) = state {
            state
                .metrics
                .observe_request(route, method_label, status, elapsed);
        }
        if let Ok(value) = HeaderValue::from_str(&id) {
            headers.insert(REQUEST_ID, value);
        }
        let latency_ms = elapsed.as_secs_f64() * 1000.0;
        let _entered = span.enter();
        if status >= 500 {
            tracing::error!(%method, %path, %route, status, latency_ms, "request");
        } else {
            tracing::info!(%method, %path, %route, status, latency_ms, "request");
        }
    }
}
