//! Search over published posts and pages (title, prose, tags): SQLite FTS5 or PostgreSQL full
//! text search, ranked, with highlighted snippets made here (so both backends read alike and
//! the template escapes every piece).
//!
//! The index is `post_search` (migration 000012), rewritten by [`reindex`] in the same
//! transaction as every change to a post or its tags (`queries::insert`, `update`,
//! `set_tags`). Reader text is never passed through as query syntax: it is cut into words,
//! and each word is quoted (FTS5) or handed to `plainto_tsquery` (PostgreSQL).

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Integer, Text, Timestamp};
use serde::Deserialize;

use super::{PostKind, PostStatus};
use crate::db::ids::PostId;
use crate::db::schema::{post_search, post_tags, posts, tags};
use crate::db::{DbConn, DbError};
use crate::error::{AppError, AppResult};
use crate::http::response::html_response;
use crate::state::AppState;
use crate::views::{Layout, iso_date, post_date};

/// Longest query accepted, in characters.
pub const MAX_QUERY_CHARS: usize = 200;
/// At most this many words of a query are searched for.
const MAX_TERMS: usize = 12;
const PER_PAGE: i64 = 10;
const MAX_PAGE: i64 = 100;
/// Words of context around the first match in a snippet.
const SNIPPET_WORDS: usize = 32;

/// Rewrites the search row of `post_id` from the post as stored (title, prose, tag names).
pub fn reindex(conn: &mut DbConn, post_id: PostId) -> Result<(), DbError> {
    let found: Option<(String, String)> = posts::table
        .find(post_id)
        .select((posts::title, posts::body_markdown))
        .first(conn)
        .optional()?;
    let Some((title, markdown)) = found else {
        return Ok(());
    };
    let names: Vec<String> = post_tags::table
        .inner_join(tags::table)
        .filter(post_tags::post_id.eq(post_id))
        .select(tags::name)
        .order(tags::name.asc())
        .load(conn)?;
    let (body, tags) = row_text(&markdown, &names);
    let updated = diesel::update(post_search::table.find(post_id))
        .set((
            post_search::title.eq(&title),
            post_search::body.eq(&body),
            post_search::tags.eq(&tags),
        ))
        .execute(conn)?;
    if updated == 0 {
        diesel::insert_into(post_search::table)
            .values((
                post_search::post_id.eq(post_id),
                post_search::title.eq(&title),
                post_search::body.eq(&body),
                post_search::tags.eq(&tags),
            ))
            .execute(conn)?;
    }
    Ok(())
}

/// A search row's body and tags: the prose of a post's Markdown, its tag names (in order).
pub fn row_text(markdown: &str, tag_names: &[String]) -> (String, String) {
    (crate::render::plain_text(markdown), tag_names.join(" "))
}

/// The words of a reader's query: runs of letters and digits, lower-cased, at most
/// [`MAX_TERMS`]. Everything else (quotes, `*`, `-`, `NEAR(`, `:`) only separates words.
pub fn terms(query: &str) -> Vec<String> {
    let mut terms: Vec<String> = Vec::new();
    for word in query
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
    {
        let word = word.to_lowercase();
        if !terms.contains(&word) {
            terms.push(word);
        }
        if terms.len() == MAX_TERMS {
            break;
        }
    }
    terms
}

/// The FTS5 query for `terms`: each one a quoted string (a `"` inside is doubled), all
/// required.
fn fts5_query(terms: &[String]) -> String {
    terms
        .iter()
        .map(|t| format!("\"{}\"", t.replace('"', "\"\"")))
        .collect::<Vec<_>>()
        .join(" ")
}

#[derive(Debug, QueryableByName)]
struct RankedId {
    #[diesel(sql_type = Integer)]
    id: i32,
}

/// A post that matched, with its indexed text for the snippet.
#[derive(Debug)]
pub struct Hit {
    pub id: i32,
    pub slug: String,
    pub title: String,
    pub kind: PostKind,
    pub published_at: NaiveDateTime,
    pub body: String,
}

/// One page of visible posts and pages matching every term, best first, and whether another
/// page follows.
pub fn search(
    conn: &mut DbConn,
    terms: &[String],
    page: i64,
    now: NaiveDateTime,
) -> Result<(Vec<Hit>, bool), DbError> {
    if terms.is_empty() {
        return Ok((Vec::new(), false));
    }
    let limit = PER_PAGE + 1;
    let offset = (page - 1).max(0) * PER_PAGE;
    let published = PostStatus::Published.as_str();
    // First the page's ids, ranked, from the index and the visible posts' covering index
    // alone; then the text of just those rows (ranking never carries every match's text).
    let ranked: Vec<RankedId> = match conn {
        DbConn::Sqlite(c) => diesel::sql_query(
            // Each match's post is looked up by its key. As `m.id IN (SELECT id FROM posts
            // …)` SQLite ran that subquery over every post for each match: 0.7 s for a word
            // in 1% of 10,000 posts, 10 s for words in most of them (5 ms and 49 ms now).
            "SELECT m.id FROM \
               (SELECT rowid AS id, bm25(post_search_fts, 10.0, 1.0, 5.0) AS rank \
                FROM post_search_fts WHERE post_search_fts MATCH ?) m \
             JOIN posts p ON p.id = m.id \
             WHERE p.status = ? AND p.published_at <= ? \
             ORDER BY m.rank, m.id DESC LIMIT ? OFFSET ?",
        )
        .bind::<Text, _>(fts5_query(terms))
        .bind::<Text, _>(published)
        .bind::<Timestamp, _>(now)
        .bind::<BigInt, _>(limit)
        .bind::<BigInt, _>(offset)
        .load(c)?,
        DbConn::Postgresql(c) => diesel::sql_query(
            "SELECT s.post_id AS id FROM post_search s, plainto_tsquery('english', $1) q \
             WHERE s.document @@ q \
               AND s.post_id IN (SELECT id FROM posts WHERE status = $2 AND published_at <= $3) \
             ORDER BY ts_rank(s.document, q) DESC, s.post_id DESC LIMIT $4 OFFSET $5",
        )
        .bind::<Text, _>(terms.join(" "))
        .bind::<Text, _>(published)
        .bind::<Timestamp, _>(now)
        .bind::<BigInt, _>(limit)
        .bind::<BigInt, _>(offset)
        .load(c)?,
    };
    let ids: Vec<PostId> = ranked.iter().map(|r| PostId(r.id)).collect();
    let rows: Vec<(PostId, String, String, PostKind, NaiveDateTime, String)> = posts::table
        .inner_join(post_search::table)
        .filter(posts::id.eq_any(&ids))
        .select((
            posts::id,
            posts::slug,
            posts::title,
            posts::kind,
            posts::published_at,
            post_search::body,
        ))
        .load(conn)?;
    let mut hits: Vec<Hit> = ids
        .iter()
        .filter_map(|id| rows.iter().find(|r| r.0 == *id))
        .map(|(id, slug, title, kind, published_at, body)| Hit {
            id: id.0,
            slug: slug.clone(),
            title: title.clone(),
            kind: *kind,
            published_at: *published_at,
            body: body.clone(),
        })
        .collect();
    let more = hits.len() as i64 > PER_PAGE;
    hits.truncate(PER_PAGE as usize);
    Ok((hits, more))
}

/// A word matches a term when it starts with the term's stem (a crude one: the index stems
/// properly, this only decides what is highlighted).
fn stem(term: &str) -> &str {
    for suffix in ["ing", "ed", "es", "s", "ly"] {
        if let Some(stripped) = term.strip_suffix(suffix)
            && stripped.chars().count() >= 3
        {
            return stripped;
        }
    }
    term
}

/// Up to [`SNIPPET_WORDS`] words of `text` around the first word matching a term, as
/// (text, highlighted) pieces.
pub fn snippet(text: &str, terms: &[String]) -> Vec<(String, bool)> {
    let stems: Vec<String> = terms.iter().map(|t| stem(t).to_string()).collect();
    let words: Vec<&str> = text.split_whitespace().collect();
    let is_hit = |word: &str| {
        let core: String = word
            .trim_matches(|c: char| !c.is_alphanumeric())
            .to_lowercase();
        !core.is_empty() && stems.iter().any(|s| core.starts_with(s.as_str()))
    };
    let first = words.iter().position(|w| is_hit(w)).unwrap_or(0);
    let start = first.saturating_sub(SNIPPET_WORDS / 4);
    let end = (start + SNIPPET_WORDS).min(words.len());
    let mut pieces: Vec<(String, bool)> = Vec::new();
    if start > 0 {
        pieces.push(("… ".into(), false));
    }
    for (i, word) in words[start..end].iter().enumerate() {
        let gap = if i + 1 < end - start { " " } else { "" };
        if is_hit(word) {
            pieces.push(((*word).to_string(), true));
            pieces.push((gap.into(), false));
        } else {
            match pieces.last_mut() {
                Some((text, false)) => {
                    text.push_str(word);
                    text.push_str(gap);
                }
                _ => pieces.push((format!("{word}{gap}"), false)),
            }
        }
    }
    if end < words.len() {
        pieces.push((" …".into(), false));
    }
    pieces
}

pub struct ResultView {
    pub title: String,
    pub href: String,
    pub is_page: bool,
    pub date: String,
    pub iso_date: String,
    pub snippet: Vec<(String, bool)>,
}

#[derive(Template)]
#[template(path = "posts/search.html")]
struct SearchPage {
    layout: Layout,
    query: String,
    /// Why nothing was searched for (an empty or over-long query).
    problem: Option<String>,
    results: Vec<ResultView>,
    searched: bool,
    page: i64,
    prev_href: Option<String>,
    next_href: Option<String>,
}

#[derive(Deserialize)]
pub struct SearchQuery {
    q: Option<String>,
    page: Option<String>,
}

/// `GET /search?q=TEXT&page=N`
pub async fn search_page(
    state: web::Data<AppState>,
    query: web::Query<SearchQuery>,
) -> AppResult<HttpResponse> {
    let text = query.q.clone().unwrap_or_default();
    let text = text.trim().to_string();
    let page = match query.page.as_deref() {
        None => 1,
        Some(p) => p
            .parse::<i64>()
            .ok()
            .filter(|n| (1..=MAX_PAGE).contains(n))
            .ok_or(AppError::NotFound)?,
    };
    let count = text.chars().count();
    let words = terms(&text);
    let (problem, status) = if count > MAX_QUERY_CHARS {
        (
            Some(format!(
                "Your search is {count} characters long; the limit is {MAX_QUERY_CHARS}. Please shorten it."
            )),
            StatusCode::BAD_REQUEST,
        )
    } else if words.is_empty() {
        (
            Some(if text.is_empty() {
                "Type one or more words to search the posts and pages.".to_string()
            } else {
                "Your search has no letters or digits to look for.".to_string()
            }),
            StatusCode::OK,
        )
    } else {
        (None, StatusCode::OK)
    };
    let now = state.clock.now();
    let searched = problem.is_none();
    let (hits, more) = if searched {
        let words = words.clone();
        state
            .db
            .read(move |conn| search(conn, &words, page, now))
            .await?
    } else {
        (Vec::new(), false)
    };
    if searched && hits.is_empty() && page > 1 {
        return Err(AppError::NotFound);
    }
    let tz = state.config.timezone;
    let results = hits
        .into_iter()
        .map(|hit| {
            let kind = hit.kind;
            ResultView {
                href: kind.path(&hit.slug),
                is_page: kind == PostKind::Page,
                date: post_date(hit.published_at, tz),
                iso_date: iso_date(hit.published_at),
                snippet: snippet(&crate::render::plain_text(&hit.body), &words),
                title: hit.title,
            }
        })
        .collect();
    let page_title = if text.is_empty() || !searched {
        "Search".to_string()
    } else {
        format!("Search results for “{text}”")
    };
    let mut layout = Layout::new(&state, &page_title);
    layout.noindex = true;
    layout.description = Some(format!(
        "Search the posts and pages of {}.",
        layout.site_title
    ));
    let href = |n: i64| {
        let q = crate::auth::urlencode(&text);
        if n == 1 {
            format!("/search?q={q}")
        } else {
            format!("/search?q={q}&page={n}")
        }
    };
    let html = SearchPage {
        layout,
        problem,
        results,
        searched,
        page,
        prev_href: (page > 1).then(|| href(page - 1)),
        next_href: more.then(|| href(page + 1)),
        query: text,
    }
    .render()
    .map_err(|e| AppError::Internal(e.into()))?;
    let mut response = html_response(status, html, false);
    response.headers_mut().insert(
        actix_web::http::header::HeaderName::from_static("x-robots-tag"),
        actix_web::http::header::HeaderValue::from_static("noindex"),
    );
    // The same for every reader of this address until the database changes (a scheduled post
    // goes live by a write too): kept for anonymous readers, so a popular search costs its
    // ranking once, not once per reader.
    if status == StatusCode::OK {
        response
            .extensions_mut()
            .insert(crate::http::page_cache::Keep::default());
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reader_text_is_only_ever_words() {
        assert_eq!(
            terms(r#"  "quoted" NEAR(a b) -minus * star:col café "#),
            vec!["quoted", "near", "a", "b", "minus", "star", "col", "café"]
        );
        assert_eq!(fts5_query(&terms("a\"b")), r#""a" "b""#);
        assert!(terms("*** --- \"\"").is_empty());
        assert_eq!(terms(&"w ".repeat(50)).len(), 1);
    }

    #[test]
    fn snippets_highlight_matching_words_around_the_first_match() {
        let text = "One two three. Comments are where readers talk; a comment is welcome.";
        let pieces = snippet(text, &terms("comments"));
        let marked: Vec<&str> = pieces
            .iter()
            .filter(|(_, hit)| *hit)
            .map(|(t, _)| t.as_str())
            .collect();
        assert_eq!(marked, vec!["Comments", "comment"]);
        let joined: String = pieces.iter().map(|(t, _)| t.as_str()).collect();
        assert_eq!(joined, text);
    }
}
