//! Atom feeds (posts, a tag's posts, all comments, one post's comments) and the sitemap.
//!
//! Feeds show only what the public pages show: visible posts and approved comments, read
//! through queries that select public columns only. Each answer carries an `ETag` and a
//! `Last-Modified` (its newest entry), so feed readers polling every few minutes get a 304.

pub mod conditional;
pub mod queries;

use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use atom_syndication::{
    Category, Content, Entry, Feed, FixedDateTime, Generator, Link, Person, Text,
};
use chrono::NaiveDateTime;

use crate::db::ids::PostId;
use crate::error::{AppError, AppResult};
use crate::http::response::moved_permanently;
use crate::posts::queries::{self as post_queries, PublicAuthor};
use crate::posts::{Post, PostKind, Tag};
use crate::state::AppState;
use queries::{CommentedPost, FeedComment};

const POSTS_IN_FEED: i64 = 20;
const COMMENTS_IN_FEED: i64 = 30;
const ATOM: &str = "application/atom+xml; charset=utf-8";

fn fixed(at: NaiveDateTime) -> FixedDateTime {
    at.and_utc().fixed_offset()
}

fn link(href: String, rel: &str, mime_type: &str) -> Link {
    let mut link = Link::default();
    link.set_href(href);
    link.set_rel(rel);
    link.set_mime_type(Some(mime_type.to_string()));
    link
}

fn person(name: &str, uri: Option<String>) -> Person {
    let mut person = Person::default();
    person.set_name(name);
    person.set_uri(uri);
    person
}

/// A `tag:` URI (RFC 4151): an entry keeps its id when its title or address changes.
fn tag_uri(state: &AppState, created: NaiveDateTime, specific: &str) -> String {
    let host = state.base_url.host_str().unwrap_or("localhost");
    format!("tag:{host},{}:{specific}", created.format("%Y-%m-%d"))
}

/// When an entry last changed in a way worth telling readers about.
fn post_updated(post: &Post) -> NaiveDateTime {
    post.updated_at.max(post.published_at)
}

fn post_entry(state: &AppState, post: &Post, author: &PublicAuthor, tags: &[Tag]) -> Entry {
    let mut entry = Entry::default();
    entry.set_id(tag_uri(
        state,
        post.created_at,
        &format!("posts/{}", post.id),
    ));
    entry.set_title(Text::plain(post.title.clone()));
    entry.set_updated(fixed(post_updated(post)));
    entry.set_published(Some(fixed(post.published_at)));
    let mut links = vec![link(state.absolute(&post.path()), "alternate", "text/html")];
    // The post's first picture from the media library, for readers that show one per entry.
    if let Some(picture) = crate::render::first_image_src(&post.body_html)
        .and_then(|src| crate::media::MediaPath::parse(&src))
    {
        links.push(link(
            state.absolute(&picture.url()),
            "enclosure",
            picture.format.content_type(),
        ));
    }
    entry.set_links(links);
    entry.set_authors(vec![person(
        &author.display_name,
        Some(state.absolute(&format!("/authors/{}", author.slug))),
    )]);
    entry.set_categories(
        tags.iter()
            .map(|tag| {
                let mut category = Category::default();
                category.set_term(tag.slug.clone());
                category.set_label(Some(tag.name.clone()));
                category
            })
            .collect::<Vec<_>>(),
    );
    if !post.excerpt.is_empty() {
        entry.set_summary(Some(Text::plain(post.excerpt.clone())));
    }
    let mut content = Content::default();
    content.set_content_type(Some("html".to_string()));
    // Footnote and heading links (`#fn-1`) are relative to the post's own page.
    content.set_base(Some(state.absolute(&post.path())));
    // Sanitised when the post was saved; the feed writer escapes it as text.
    content.set_value(Some(post.body_html.clone()));
    entry.set_content(Some(content));
    entry
}

fn comment_entry(
    state: &AppState,
    comment: &FeedComment,
    post: &CommentedPost,
    site_wide: bool,
) -> Entry {
    let mut entry = Entry::default();
    entry.set_id(tag_uri(
        state,
        comment.created_at,
        &format!("comments/{}", comment.id),
    ));
    let title = if site_wide {
        format!("Comment on {} by {}", post.title, comment.author_name)
    } else {
        format!("By: {}", comment.author_name)
    };
    entry.set_title(Text::plain(title));
    // A comment's row changes when it is approved: that is when readers can first see it.
    entry.set_updated(fixed(comment.updated_at.max(comment.created_at)));
    entry.set_published(Some(fixed(comment.created_at)));
    entry.set_links(vec![link(
        state.absolute(&format!("/posts/{}#comment-{}", post.slug, comment.id)),
        "alternate",
        "text/html",
    )]);
    // Name and website only: never the email address.
    entry.set_authors(vec![person(
        &comment.author_name,
        comment.author_url.clone(),
    )]);
    let mut content = Content::default();
    content.set_content_type(Some("html".to_string()));
    content.set_value(Some(comment.body_html.clone()));
    entry.set_content(Some(content));
    entry
}

/// What one feed is about.
struct FeedHead {
    id: String,
    title: String,
    self_path: String,
    page_path: String,
    /// `updated` when there are no entries.
    empty_updated: NaiveDateTime,
}

/// Writes the feed, with `updated` the newest entry's, and answers it conditionally.
fn respond(
    state: &AppState,
    req: &HttpRequest,
    head: FeedHead,
    entries: Vec<Entry>,
) -> AppResult<HttpResponse> {
    let updated = entries
        .iter()
        .map(|e| e.updated)
        .max()
        .unwrap_or_else(|| fixed(head.empty_updated));
    let mut feed = Feed::default();
    feed.set_id(head.id);
    feed.set_title(Text::plain(head.title));
    feed.set_updated(updated);
    feed.set_links(vec![
        link(
            state.absolute(&head.self_path),
            "self",
            "application/atom+xml",
        ),
        link(state.absolute(&head.page_path), "alternate", "text/html"),
    ]);
    feed.set_base(Some(state.absolute("/")));
    feed.set_lang(Some("en".to_string()));
    feed.set_generator(Some(Generator {
        value: "lectern".to_string(),
        uri: None,
        version: None,
    }));
    feed.set_entries(entries);
    let body = feed
        .write_to(Vec::new())
        .map_err(|e| AppError::Internal(anyhow::anyhow!("writing a feed: {e}")))?;
    Ok(conditional::respond(req, ATOM, body, updated.naive_utc()))
}

/// `updated` for a feed without entries: when the site began. Read only for an empty feed,
/// since no index answers it (a large site would scan its posts on every feed request).
async fn empty_updated(state: &AppState, entries: &[Entry]) -> AppResult<NaiveDateTime> {
    if !entries.is_empty() {
        return Ok(NaiveDateTime::default());
    }
    Ok(state
        .db
        .read(queries::site_started)
        .await?
        .unwrap_or_default())
}

/// Entries for the newest visible posts, of one tag or of all.
async fn post_entries(state: &AppState, tag_id: Option<i32>) -> AppResult<Vec<Entry>> {
    let now = state.clock.now();
    let (rows, tags) = state
        .db
        .read(move |conn| {
            let (rows, _) = post_queries::list_visible(
                conn,
                now,
                tag_id,
                None,
                post_queries::Position::Page(1),
                POSTS_IN_FEED,
            )?;
            let ids: Vec<PostId> = rows.iter().map(|(p, _)| p.id).collect();
            let tags = post_queries::tags_for_posts(conn, &ids)?;
            Ok((rows, tags))
        })
        .await?;
    Ok(rows
        .iter()
        .map(|(post, author)| {
            let post_tags = tags.get(&post.id).map_or(&[][..], Vec::as_slice);
            post_entry(state, post, author, post_tags)
        })
        .collect())
}

/// `GET /feed.xml`: the newest posts, full text.
pub async fn posts_feed(state: web::Data<AppState>, req: HttpRequest) -> AppResult<HttpResponse> {
    let entries = post_entries(&state, None).await?;
    let head = FeedHead {
        id: state.absolute("/feed.xml"),
        title: state.identity().title.clone(),
        self_path: "/feed.xml".into(),
        page_path: "/".into(),
        empty_updated: empty_updated(&state, &entries).await?,
    };
    respond(&state, &req, head, entries)
}

/// `GET /tags/{tag}/feed.xml`
pub async fn tag_feed(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
) -> AppResult<HttpResponse> {
    let slug = path.into_inner();
    let lookup = slug.clone();
    let tag = state
        .db
        .read(move |conn| post_queries::find_tag(conn, &lookup))
        .await?
        .ok_or(AppError::NotFound)?;
    let entries = post_entries(&state, Some(tag.id)).await?;
    let head = FeedHead {
        id: state.absolute(&format!("/tags/{slug}/feed.xml")),
        title: format!("{} – posts tagged {}", state.identity().title, tag.name),
        self_path: format!("/tags/{slug}/feed.xml"),
        page_path: format!("/tags/{slug}"),
        empty_updated: empty_updated(&state, &entries).await?,
    };
    respond(&state, &req, head, entries)
}

/// `GET /comments/feed.xml`: the newest approved comments on all posts.
pub async fn comments_feed(
    state: web::Data<AppState>,
    req: HttpRequest,
) -> AppResult<HttpResponse> {
    let now = state.clock.now();
    let rows = state
        .db
        .read(move |conn| queries::latest_comments(conn, now, None, COMMENTS_IN_FEED))
        .await?;
    let entries = rows
        .iter()
        .map(|(comment, post)| comment_entry(&state, comment, post, true))
        .collect::<Vec<_>>();
    let head = FeedHead {
        id: state.absolute("/comments/feed.xml"),
        title: format!("Comments for {}", state.identity().title),
        self_path: "/comments/feed.xml".into(),
        page_path: "/".into(),
        empty_updated: empty_updated(&state, &entries).await?,
    };
    respond(&state, &req, head, entries)
}

/// `GET /posts/{slug}/feed.xml`: one post's approved comments. An old address redirects.
pub async fn post_comments_feed(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
) -> AppResult<HttpResponse> {
    let now = state.clock.now();
    let slug = path.into_inner();
    let found = state
        .db
        .read(
            move |conn| match post_queries::find_visible(conn, PostKind::Post, &slug, now)? {
                Some((post, _)) => {
                    let rows =
                        queries::latest_comments(conn, now, Some(post.id), COMMENTS_IN_FEED)?;
                    Ok(Ok((post, rows)))
                }
                None => Ok(Err(post_queries::find_moved(
                    conn,
                    PostKind::Post,
                    &slug,
                    now,
                )?)),
            },
        )
        .await?;
    let (post, rows) = match found {
        Ok(found) => found,
        // Pages have no comment feed, so only a post that moved is followed.
        Err(Some(moved)) if moved.kind() == PostKind::Post => {
            return Ok(moved_permanently(
                &format!("{}/feed.xml", moved.path()),
                req.query_string(),
            ));
        }
        Err(_) => return Err(AppError::NotFound),
    };
    let entries = rows
        .iter()
        .map(|(comment, on)| comment_entry(&state, comment, on, false))
        .collect();
    let head = FeedHead {
        id: tag_uri(
            &state,
            post.created_at,
            &format!("posts/{}/comments", post.id),
        ),
        title: format!("Comments on: {}", post.title),
        self_path: format!("{}/feed.xml", post.path()),
        page_path: post.path(),
        empty_updated: post_updated(&post),
    };
    respond(&state, &req, head, entries)
}

/// One `<url>` of the sitemap.
pub struct SitemapUrl {
    pub loc: String,
    /// W3C datetime.
    pub lastmod: Option<String>,
}

#[derive(Template)]
#[template(path = "posts/sitemap.xml")]
struct Sitemap {
    urls: Vec<SitemapUrl>,
}

fn w3c(at: NaiveDateTime) -> String {
    crate::views::iso_date(at)
}

#[derive(Template)]
#[template(path = "posts/sitemap_index.xml")]
struct SitemapIndex {
    files: Vec<SitemapUrl>,
}

/// What the home, tag and author entries of the sitemap are made from.
struct SiteEntries {
    newest_post: Option<NaiveDateTime>,
    tags: Vec<(String, Option<NaiveDateTime>)>,
    authors: Vec<(String, Option<NaiveDateTime>)>,
    started: Option<NaiveDateTime>,
}

fn site_urls(state: &AppState, site: &SiteEntries) -> Vec<SitemapUrl> {
    let mut urls = vec![SitemapUrl {
        loc: state.absolute("/"),
        lastmod: site.newest_post.map(w3c),
    }];
    let listing = |prefix: &str, rows: &[(String, Option<NaiveDateTime>)]| -> Vec<SitemapUrl> {
        rows.iter()
            .map(|(slug, at)| SitemapUrl {
                loc: state.absolute(&format!("{prefix}/{slug}")),
                lastmod: at.map(w3c),
            })
            .collect()
    };
    urls.extend(listing("/tags", &site.tags));
    urls.extend(listing("/authors", &site.authors));
    urls
}

fn read_site_entries(
    conn: &mut crate::db::DbConn,
    now: NaiveDateTime,
) -> Result<SiteEntries, crate::db::DbError> {
    let newest = queries::sitemap_posts(conn, now, 1)?
        .into_iter()
        .map(|p| p.updated_at.max(p.published_at))
        .next();
    let tags = queries::sitemap_tags(conn, now)?;
    let authors = queries::sitemap_authors(conn, now)?;
    // Only a site with nothing dated falls back on when it began (an unindexed scan).
    let dated = newest.is_some() || tags.iter().chain(&authors).any(|(_, at)| at.is_some());
    Ok(SiteEntries {
        newest_post: newest,
        tags,
        authors,
        started: if dated {
            None
        } else {
            queries::site_started(conn)?
        },
    })
}

fn site_modified(site: &SiteEntries) -> NaiveDateTime {
    site.newest_post
        .into_iter()
        .chain(site.tags.iter().filter_map(|(_, at)| *at))
        .chain(site.authors.iter().filter_map(|(_, at)| *at))
        .max()
        .or(site.started)
        .unwrap_or_default()
}

fn post_urls(state: &AppState, posts: &[queries::SitemapPost]) -> Vec<SitemapUrl> {
    posts
        .iter()
        .map(|p| SitemapUrl {
            loc: state.absolute(&p.kind.path(&p.slug)),
            lastmod: Some(w3c(p.updated_at.max(p.published_at))),
        })
        .collect()
}

/// `GET /sitemap.xml`: the home page, visible posts and pages, tag and author pages in one
/// file while they fit (sitemaps.org: at most 50,000 addresses a file); past that, an index of
/// files: `/sitemaps/site.xml` (home, tags, authors) and `/sitemaps/posts-N.xml`.
pub async fn sitemap(state: web::Data<AppState>, req: HttpRequest) -> AppResult<HttpResponse> {
    let now = state.clock.now();
    let per_file = state.config.sitemap_file_urls;
    let read = state
        .db
        .read(move |conn| {
            let count = queries::visible_count(conn, now)?;
            // Past a file's worth of posts the index needs only the site file's date, the
            // newest change to a post, not every tag's and author's own newest change.
            if 1 + count > per_file {
                let modified = queries::sitemap_posts(conn, now, 1)?
                    .into_iter()
                    .map(|p| p.updated_at.max(p.published_at))
                    .chain(queries::newest_post_change(conn, now)?)
                    .max()
                    .unwrap_or_default();
                return Ok(SitemapRead::Index { count, modified });
            }
            let site = read_site_entries(conn, now)?;
            if 1 + site.tags.len() as i64 + site.authors.len() as i64 + count > per_file {
                let modified = site_modified(&site);
                return Ok(SitemapRead::Index { count, modified });
            }
            let posts = queries::sitemap_posts(conn, now, per_file)?;
            Ok(SitemapRead::One { site, posts })
        })
        .await?;
    let (body, modified) = match read {
        SitemapRead::One { site, posts } => {
            let mut urls = site_urls(&state, &site);
            urls.extend(post_urls(&state, &posts));
            (Sitemap { urls }.render(), site_modified(&site))
        }
        SitemapRead::Index { count, modified } => {
            let files = (count + per_file - 1) / per_file;
            let mut list = vec![SitemapUrl {
                loc: state.absolute("/sitemaps/site.xml"),
                lastmod: Some(w3c(modified)),
            }];
            list.extend((1..=files).map(|n| SitemapUrl {
                loc: state.absolute(&format!("/sitemaps/posts-{n}.xml")),
                lastmod: None,
            }));
            (SitemapIndex { files: list }.render(), modified)
        }
    };
    let body = body.map_err(|e| AppError::Internal(e.into()))?;
    Ok(conditional::respond(
        &req,
        "application/xml; charset=utf-8",
        body.into_bytes(),
        modified,
    ))
}

/// What `/sitemap.xml` is made from.
enum SitemapRead {
    /// Everything fits in one file.
    One {
        site: SiteEntries,
        posts: Vec<queries::SitemapPost>,
    },
    /// An index of the site file and `count` posts' files; the site file last changed at
    /// `modified`.
    Index { count: i64, modified: NaiveDateTime },
}

/// `GET /sitemaps/{file}`: one file of a split sitemap.
pub async fn sitemap_file(
    state: web::Data<AppState>,
    req: HttpRequest,
    file: web::Path<String>,
) -> AppResult<HttpResponse> {
    let now = state.clock.now();
    let per_file = state.config.sitemap_file_urls;
    let file = file.into_inner();
    let body = if file == "site.xml" {
        let site = state
            .db
            .read(move |conn| read_site_entries(conn, now))
            .await?;
        let mut urls = site_urls(&state, &site);
        urls.truncate(per_file as usize);
        (Sitemap { urls }.render(), site_modified(&site))
    } else {
        let n: i64 = file
            .strip_prefix("posts-")
            .and_then(|rest| rest.strip_suffix(".xml"))
            .and_then(|n| n.parse().ok())
            .filter(|n| *n >= 1 && *n <= 1_000_000)
            .ok_or(AppError::NotFound)?;
        let posts = state
            .db
            .read(move |conn| queries::sitemap_posts_file(conn, now, n, per_file))
            .await?;
        if posts.is_empty() {
            return Err(AppError::NotFound);
        }
        let modified = posts
            .iter()
            .map(|p| p.updated_at.max(p.published_at))
            .max()
            .unwrap_or_default();
        (
            Sitemap {
                urls: post_urls(&state, &posts),
            }
            .render(),
            modified,
        )
    };
    let (xml, modified) = body;
    let xml = xml.map_err(|e| AppError::Internal(e.into()))?;
    Ok(conditional::respond(
        &req,
        "application/xml; charset=utf-8",
        xml.into_bytes(),
        modified,
    ))
}
