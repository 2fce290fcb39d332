//! Old WordPress addresses answering 301: an imported post's permalink path (on any host), its
//! `/?p=ID` and `/?page_id=ID`, its feed (`…/feed/`), and the site-wide paths (`/feed/`,
//! `/comments/feed/`, `?feed=rss2`, `/category/X/`, `/tag/X/`, `/author/X/`, `/page/N/`, `?s=`).
//!
//! A middleware asks only when the router had nothing (a 404) or for the front page with one of
//! WordPress's query parameters, so no other page pays for it.

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{Error, web};
use diesel::prelude::*;

use crate::db::ids::PostId;
use crate::db::schema::old_addresses;
use crate::db::{DbConn, DbError};
use crate::state::AppState;

/// The key an old address is kept under: a path without its trailing slash (percent-decoded),
/// or `?p=ID` / `?page_id=ID` for WordPress's query permalinks. `None` for the site's root.
pub fn address_key(url: &str) -> Option<String> {
    let rest = url.trim();
    let rest = rest
        .strip_prefix("https://")
        .or_else(|| rest.strip_prefix("http://"))
        .map(|after_scheme| after_scheme.find('/').map_or("/", |i| &after_scheme[i..]))
        .unwrap_or(rest);
    let rest = rest.split('#').next().unwrap_or_default();
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    let path = percent_encoding::percent_decode_str(path).decode_utf8_lossy();
    let path = path.trim_end_matches('/');
    let front = path.is_empty() || path == "/index.php";
    if front {
        for (name, value) in query_pairs(query) {
            if (name == "p" || name == "page_id") && is_number(&value) {
                return Some(format!("?{name}={value}"));
            }
        }
        return None;
    }
    if !path.starts_with('/') {
        return Some(format!("/{path}"));
    }
    Some(path.to_string())
}

fn is_number(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit())
}

fn query_pairs(query: &str) -> Vec<(String, String)> {
    url::form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// Where an old address now lives, if anywhere.
pub fn lookup(
    conn: &mut DbConn,
    key: &str,
    now: chrono::NaiveDateTime,
) -> Result<Option<String>, DbError> {
    let row: Option<(Option<i32>, String)> = old_addresses::table
        .find(key)
        .select((old_addresses::post_id, old_addresses::target))
        .first(conn)
        .optional()?;
    match row {
        Some((Some(post_id), _)) => Ok(crate::posts::queries::find_by_id(conn, PostId(post_id))?
            .filter(|post| post.is_visible(now))
            .map(|post| post.path())),
        Some((None, target)) if !target.is_empty() => Ok(Some(target)),
        _ => Ok(None),
    }
}

/// Where a request for `path` (not found by the router) or for `/` with `query` should go.
fn resolve(
    conn: &mut DbConn,
    path: &str,
    query: &str,
    now: chrono::NaiveDateTime,
) -> Result<Option<String>, DbError> {
    let decoded = percent_encoding::percent_decode_str(path).decode_utf8_lossy();
    let path = decoded.trim_end_matches('/');
    if path.is_empty() || path == "/index.php" {
        for (name, value) in query_pairs(query) {
            match (name.as_str(), value.as_str()) {
                ("p" | "page_id", id) if is_number(id) => {
                    return lookup(conn, &format!("?{name}={id}"), now);
                }
                ("feed", "comments-rss2" | "comments-atom") => {
                    return Ok(Some("/comments/feed.xml".into()));
                }
                ("feed", _) => return Ok(Some("/feed.xml".into())),
                ("s", text) => {
                    let q: String = url::form_urlencoded::byte_serialize(text.as_bytes()).collect();
                    return Ok(Some(format!("/search?q={q}")));
                }
                ("paged", n) if is_number(n) => return Ok(Some(format!("/?page={n}"))),
                _ => {}
            }
        }
        return Ok(None);
    }
    // A paged comment view of a post: the post.
    let path = match path.rfind("/comment-page-") {
        Some(i) if is_number(&path[i + "/comment-page-".len()..]) => &path[..i],
        _ => path,
    };
    for suffix in [
        "/feed/rss2",
        "/feed/atom",
        "/feed/rss",
        "/feed/rdf",
        "/feed",
    ] {
        if let Some(base) = path.strip_suffix(suffix) {
            return feed_of(conn, base, now);
        }
    }
    if let Some(target) = lookup(conn, path, now)? {
        return Ok(Some(target));
    }
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    Ok(match segments.as_slice() {
        ["page", n] if is_number(n) => Some(format!("/?page={n}")),
        ["category", .., last] | ["tag", last] => {
            let slug = crate::text::slugify(last);
            (!slug.is_empty()).then(|| format!("/tags/{slug}"))
        }
        ["author", name] => {
            let slug = crate::text::slugify(name);
            (!slug.is_empty()).then(|| format!("/authors/{slug}"))
        }
        _ => None,
    })
}

/// The feed of whatever `base` was on the old site.
fn feed_of(
    conn: &mut DbConn,
    base: &str,
    now: chrono::NaiveDateTime,
) -> Result<Option<String>, DbError> {
    if base.is_empty() {
        return Ok(Some("/feed.xml".into()));
    }
    if base == "/comments" {
        return Ok(Some("/comments/feed.xml".into()));
    }
    let Some(target) = resolve(conn, base, "", now)? else {
        return Ok(None);
    };
    if let Some(slug) = target.strip_prefix("/posts/") {
        return Ok(Some(format!("/posts/{slug}/feed.xml")));
    }
    if let Some(slug) = target.strip_prefix("/tags/") {
        return Ok(Some(format!("/tags/{slug}/feed.xml")));
    }
    Ok(Some(target))
}

/// WordPress's query parameters on the front page.
fn is_wordpress_front_query(query: &str) -> bool {
    query_pairs(query)
        .iter()
        .any(|(k, _)| matches!(k.as_str(), "p" | "page_id" | "feed" | "s" | "paged"))
}

/// The middleware: old addresses answer 301 to their new places.
pub async fn old_addresses(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, Error> {
    let reading = req.method() == Method::GET || req.method() == Method::HEAD;
    let Some(state) = req
        .app_data::<web::Data<AppState>>()
        .cloned()
        .filter(|_| reading)
    else {
        return Ok(next.call(req).await?.map_into_left_body());
    };
    let path = req.path().to_string();
    let query = req.query_string().to_string();
    if (path == "/" || path == "/index.php") && is_wordpress_front_query(&query) {
        if let Some(location) = find(&state, path.clone(), query.clone()).await {
            let (req, _) = req.into_parts();
            return Ok(moved(req, &location));
        }
        return Ok(next.call(req).await?.map_into_left_body());
    }
    let res = next.call(req).await?;
    if res.status() != StatusCode::NOT_FOUND {
        return Ok(res.map_into_left_body());
    }
    match find(&state, path, query).await {
        Some(location) => {
            let (req, _) = res.into_parts();
            Ok(moved(req, &location))
        }
        None => Ok(res.map_into_left_body()),
    }
}

async fn find(state: &AppState, path: String, query: String) -> Option<String> {
    let now = state.clock.now();
    match state
        .db
        .read(move |conn| resolve(conn, &path, &query, now))
        .await
    {
        Ok(found) => found,
        Err(e) => {
            tracing::warn!(error = %e, "looking up an old address failed");
            None
        }
    }
}

fn moved<B>(req: actix_web::HttpRequest, location: &str) -> ServiceResponse<EitherBody<B>> {
    let res = crate::http::response::moved_permanently(location, "");
    ServiceResponse::new(req, res).map_into_right_body()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_keys_drop_host_trailing_slash_and_keep_query_permalinks() {
        assert_eq!(
            address_key("https://old.example/2012/01/06/myofascial-release/").as_deref(),
            Some("/2012/01/06/myofascial-release")
        );
        assert_eq!(
            address_key("http://old.example/?p=12").as_deref(),
            Some("?p=12")
        );
        assert_eq!(
            address_key("/?page_id=7&lang=en").as_deref(),
            Some("?page_id=7")
        );
        assert_eq!(address_key("http://old.example/"), None);
        assert_eq!(address_key("/caf%C3%A9/").as_deref(), Some("/café"));
    }
}
