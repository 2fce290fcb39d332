//! Conditional GET for feeds and the sitemap: an `ETag` made from the body, `Last-Modified`
//! from the newest entry, and 304 when the client already has this version. Each is a kept
//! page for anonymous readers (`http::page_cache`), which answers the same validators.

use std::time::SystemTime;

use actix_web::http::header::{
    self, EntityTag, Header, HttpDate, IfModifiedSince, IfNoneMatch, TryIntoHeaderValue,
};
use actix_web::{HttpRequest, HttpResponse};
use chrono::NaiveDateTime;
use sha2::{Digest, Sha256};

/// Answers `body` as `content_type`, or 304 Not Modified when the request's validators match.
pub fn respond(
    req: &HttpRequest,
    content_type: &'static str,
    body: Vec<u8>,
    last_modified: NaiveDateTime,
) -> HttpResponse {
    // Weak: the same entity may be sent gzip-compressed or not.
    let etag = EntityTag::new_weak(hex::encode(&Sha256::digest(&body)[..16]));
    let modified_secs = last_modified.and_utc().timestamp();
    let modified = HttpDate::from(SystemTime::from(
        chrono::DateTime::from_timestamp(modified_secs, 0).unwrap_or_default(),
    ));
    let headers = req.headers();
    // RFC 9110 §13.2.2: If-None-Match, when present, decides alone.
    let not_modified = if headers.contains_key(header::IF_NONE_MATCH) {
        match IfNoneMatch::parse(req) {
            Ok(IfNoneMatch::Any) => true,
            Ok(IfNoneMatch::Items(tags)) => tags.iter().any(|tag| tag.weak_eq(&etag)),
            Err(_) => false,
        }
    } else if headers.contains_key(header::IF_MODIFIED_SINCE) {
        IfModifiedSince::parse(req).is_ok_and(|since| {
            let since = SystemTime::from(since.0);
            SystemTime::from(modified) <= since
        })
    } else {
        false
    };
    let mut response = if not_modified {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    response
        .insert_header((header::ETAG, header_value(header::ETag(etag))))
        .insert_header((
            header::LAST_MODIFIED,
            header_value(header::LastModified(modified)),
        ))
        // Readers may keep it, but must ask again (cheaply, with the validators) each time.
        .insert_header((header::CACHE_CONTROL, "public, no-cache"));
    if not_modified {
        response.finish()
    } else {
        let mut response = response.content_type(content_type).body(body);
        // The same for every reader: kept (with its Last-Modified) until the database changes.
        response
            .extensions_mut()
            .insert(crate::http::page_cache::Keep::default());
        response
    }
}

fn header_value(value: impl TryIntoHeaderValue) -> header::HeaderValue {
    // Both typed headers always format to valid header text.
    value
        .try_into_value()
        .unwrap_or_else(|_| header::HeaderValue::from_static(""))
}
