use crate::common::{TestApp, WELCOME};

pub async fn publish(app: &TestApp, text: &str) {
    let tz = app.state.config.timezone;
    let file = lectern::posts::publish::parse_post_file(text, tz).expect("valid post file");
    app.state
        .db
        .write(move |conn| {
            lectern::posts::publish::store(conn, &file)
                .map_err(|e| lectern::db::DbError::Task(e.to_string()))
        })
        .await
        .unwrap();
}

#[tokio::test]
async fn the_welcome_post_renders_with_its_comment_and_count_heading() {
    let app = TestApp::spawn().await;
    let index = app.get_text("/").await;
    assert!(index.contains("Welcome to lectern"));
    assert!(index.contains("1 comment"));

    let response = app.get(&format!("/posts/{WELCOME}")).await;
    assert_eq!(response.status(), 200);
    let page = response.text().await.unwrap();
    assert!(page.contains("One thought on “Welcome to lectern”"));
    assert!(page.contains("A lectern Commenter"));
    assert!(page.contains("Hi, this is a comment."));
    assert!(page.contains("Leave a Reply"));
    assert!(page.contains("Your email address will not be published."));
    assert!(page.contains(r#"rel="external nofollow ugc noopener""#));
    assert!(page.contains("?replytocom=1#respond"));
    assert!(page.contains("About <a href=\"/authors/lectern\">The lectern team</a>"));
    // "November 25, 2026 at 4:55 am"
    assert!(page.contains(" at "), "WordPress-style comment date");
}

#[tokio::test]
async fn markdown_and_box_shortcodes_render() {
    let app = TestApp::spawn().await;
    publish(
        &app,
        "---\ntitle: Shapes\ntags: [Rust Lang]\n---\n## A heading\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n[box type=\"warning\"]\nMind the **gap**.\n[/box]\n\n<script>alert(1)</script>\n",
    )
    .await;
    let page = app.get_text("/posts/shapes").await;
    assert!(page.contains(r#"<h2 id="a-heading">"#), "{page}");
    assert!(page.contains("<table>"));
    assert!(page.contains(r#"<div class="box box-warning""#));
    assert!(page.contains("<strong>gap</strong>"));
    assert!(!page.contains("<script>alert(1)</script>"));
    assert!(page.contains("No comments yet"));
    let tagged = app.get_text("/tags/rust-lang").await;
    assert!(tagged.contains("Shapes"));
}

#[tokio::test]
async fn drafts_scheduled_posts_and_unknown_slugs_are_404_with_a_page() {
    let app = TestApp::spawn().await;
    publish(
        &app,
        "---\ntitle: Secret draft\ndraft: true\n---\nnot yet\n",
    )
    .await;
    publish(&app, "---\ntitle: Future\ndate: 2999-01-01\n---\nlater\n").await;
    for path in [
        "/posts/secret-draft",
        "/posts/future",
        "/posts/no-such-post",
        "/nowhere",
    ] {
        let response = app.get(path).await;
        assert_eq!(response.status(), 404, "{path}");
        let page = response.text().await.unwrap();
        assert!(page.contains("Page not found"), "{path}");
    }
    let index = app.get_text("/").await;
    assert!(!index.contains("Secret draft"));
    assert!(!index.contains("Future"));
    let response = app
        .post_form("/posts/secret-draft/comments", &[("name", "x")])
        .await;
    assert_eq!(response.status(), 404);
}

#[tokio::test]
async fn the_index_paginates_newest_first() {
    let app = TestApp::spawn().await;
    for n in 1..=12 {
        publish(
            &app,
            &format!("---\ntitle: Post number {n}\ndate: 2020-01-{n:02}\n---\nbody {n}\n"),
        )
        .await;
    }
    let first = app.get_text("/").await;
    assert!(first.contains("Welcome to lectern"));
    assert!(first.find("Post number 12").unwrap() < first.find("Post number 11").unwrap());
    // The link to older posts is a cursor (keyset: as fast on page 10,000 as on page 2).
    let older = crate::common::hidden_href(&first, "next").expect("an older-posts link");
    assert!(older.starts_with("/?before="), "{older}");
    let second = app.get_text(&older).await;
    let has_first_post = |page: &str| {
        page.contains("Post number 1<")
            || page.contains("Post number 1\n")
            || page.contains(">Post number 1</a>")
    };
    assert!(has_first_post(&second));
    assert!(!second.contains("Post number 12<"));
    // Back to newer posts: the same posts as the first page.
    let newer = crate::common::hidden_href(&second, "prev").expect("a newer-posts link");
    assert!(newer.starts_with("/?after="), "{newer}");
    let back = app.get_text(&newer).await;
    assert!(back.contains("Welcome to lectern") && back.contains("Post number 4"));
    assert!(!back.contains("Post number 3<"));
    assert!(!has_first_post(&back));
    // Page numbers still answer for the first pages (old links, bookmarks).
    assert!(has_first_post(&app.get_text("/?page=2").await));
    assert_eq!(app.get("/?page=99").await.status(), 404);
    assert_eq!(app.get("/?page=100000").await.status(), 404);
    assert_eq!(app.get("/?page=abc").await.status(), 404);
    assert_eq!(app.get("/?before=nonsense").await.status(), 404);
    assert_eq!(app.get("/?before=1.1&page=2").await.status(), 404);
}

#[tokio::test]
async fn every_response_carries_the_security_headers() {
    let app = TestApp::spawn().await;
    for path in [
        "/",
        "/posts/welcome-to-lectern",
        "/nowhere",
        "/static/style.css",
    ] {
        let response = app.get(path).await;
        let headers = response.headers();
        let csp = headers["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("default-src 'none'"), "{path}");
        assert!(!csp.contains("unsafe-inline"));
        assert_eq!(headers["x-content-type-options"], "nosniff");
        assert_eq!(headers["x-frame-options"], "DENY");
        assert!(headers.contains_key("referrer-policy"));
    }
}

#[tokio::test]
async fn head_is_answered_like_get_without_a_body() {
    let app = TestApp::spawn().await;
    for path in [
        "/",
        "/feed.xml",
        "/healthz",
        "/static/style.css",
        "/robots.txt",
    ] {
        let get = app.get(path).await;
        let head = app.client.head(app.url(path)).send().await.unwrap();
        assert_eq!(head.status(), 200, "HEAD {path}");
        assert_eq!(
            head.headers()["content-type"],
            get.headers()["content-type"],
            "{path}"
        );
        assert_eq!(
            head.headers()["content-length"],
            get.headers()["content-length"],
            "{path}"
        );
        assert!(head.headers().contains_key("content-security-policy"));
        assert!(
            head.bytes().await.unwrap().is_empty(),
            "HEAD {path} has no body"
        );
    }
    let post_page = app
        .client
        .head(app.url("/posts/welcome-to-lectern"))
        .send()
        .await
        .unwrap();
    assert_eq!(post_page.status(), 200);
    let head = app
        .client
        .head(app.url("/posts/nowhere"))
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), 404, "HEAD of a missing post");
    // The comment form's address takes POST only.
    let comments = app.url("/posts/welcome-to-lectern/comments");
    let head = app.client.head(comments).send().await.unwrap();
    assert_eq!(head.status(), 405, "HEAD of a POST-only route");
}

#[tokio::test]
async fn healthz_answers_when_the_database_does() {
    let app = TestApp::spawn().await;
    let response = app.get("/healthz").await;
    assert_eq!(response.status(), 200);
    assert!(response.text().await.unwrap().contains("database: ok"));
}

#[tokio::test]
async fn an_https_base_url_turns_on_hsts() {
    let app = TestApp::spawn_with(&[("LECTERN_BASE_URL", "https://blog.example.com")]).await;
    let response = app.get("/").await;
    assert!(response.headers().contains_key("strict-transport-security"));
    let page = response.text().await.unwrap();
    assert!(page.contains(r#"<link rel="canonical" href="https://blog.example.com/">"#));
}

#[tokio::test]
async fn a_scheduled_post_appears_when_its_time_comes_without_a_request() {
    let app = TestApp::spawn().await;
    let at = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    publish(
        &app,
        &format!("---\ntitle: Later\ndate: \"{at}\"\n---\nsoon\n"),
    )
    .await;
    assert_eq!(app.get("/posts/later").await.status(), 404);
    app.advance(2 * 3600);
    app.state.publish_wakeup.notify_one();
    // The scheduler publishes it by itself; look (bounded) in the database, not through a page.
    let mut status = String::new();
    for _ in 0..500 {
        status = app
            .db(|conn| {
                Ok(lectern::posts::queries::find_by_slug(conn, "later")?
                    .unwrap()
                    .status
                    .to_string())
            })
            .await;
        if status == "published" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(status, "published");
    assert_eq!(app.get("/posts/later").await.status(), 200);
    assert!(app.get_text("/").await.contains("Later"));
}

#[tokio::test]
async fn a_sitemap_past_one_file_becomes_an_index_of_files() {
    let app = TestApp::spawn_with(&[("LECTERN_SITEMAP_FILE_URLS", "10")]).await;
    for n in 1..=14 {
        publish(
            &app,
            &format!("---\ntitle: Mapped {n}\nslug: mapped-{n}\ndate: 2020-02-{n:02}\n---\nbody\n"),
        )
        .await;
    }
    let index = app.get_text("/sitemap.xml").await;
    assert!(index.contains("<sitemapindex"), "{index}");
    let files: Vec<String> = index
        .split("<loc>")
        .skip(1)
        .map(|part| part[..part.find("</loc>").unwrap()].to_string())
        .collect();
    assert!(files[0].ends_with("/sitemaps/site.xml"), "{files:?}");
    assert_eq!(files.len(), 3, "site + 15 posts in files of 10: {files:?}");
    let mut found = Vec::new();
    for file in &files {
        let path = &file[file.find("/sitemaps/").unwrap()..];
        let xml = app.get_text(path).await;
        assert!(xml.contains("<urlset"));
        let count = xml.matches("<url>").count();
        assert!((1..=10).contains(&count), "{path}: {count}");
        found.extend(xml.matches("/posts/mapped-").map(|_| ()));
    }
    assert_eq!(found.len(), 14, "every post in exactly one file");
    assert_eq!(app.get("/sitemaps/posts-3.xml").await.status(), 404);
    assert_eq!(app.get("/sitemaps/other.xml").await.status(), 404);

    // The index dates the site file by its newest entry, also after an older post changes.
    let site_file_dates = |index: &str| {
        let after = &index[index.find("/sitemaps/site.xml</loc>").unwrap()..];
        after[after.find("<lastmod>").unwrap() + 9..after.find("</lastmod>").unwrap()].to_string()
    };
    let newest_entry = |xml: &str| {
        xml.split("<lastmod>")
            .skip(1)
            .map(|part| part[..part.find("</lastmod>").unwrap()].to_string())
            .max()
            .unwrap()
    };
    let site = app.get_text("/sitemaps/site.xml").await;
    assert_eq!(site_file_dates(&index), newest_entry(&site));
    // Written as an edit would be (through the pool's writer, which this server counts at once;
    // on PostgreSQL another process's write is seen when its notification arrives).
    app.state
        .db
        .write(|conn| -> Result<usize, lectern::db::DbError> {
            use diesel::prelude::*;
            use lectern::db::schema::posts;
            let at = chrono::NaiveDate::from_ymd_opt(2026, 12, 31)
                .and_then(|d| d.and_hms_opt(12, 0, 0))
                .unwrap_or_default();
            Ok(
                diesel::update(posts::table.filter(posts::slug.eq("mapped-3")))
                    .set(posts::updated_at.eq(at))
                    .execute(conn)?,
            )
        })
        .await
        .unwrap();
    let index = app.get_text("/sitemap.xml").await;
    assert_eq!(site_file_dates(&index), "2026-12-31T12:00:00Z", "{index}");
    let site = app.get_text("/sitemaps/site.xml").await;
    assert_eq!(newest_entry(&site), "2026-12-31T12:00:00Z", "{site}");
}

/// Posts that fit in one file with tags and authors that do not: an index of the site file and
/// one file of posts, the site file dated by its newest entry.
#[tokio::test]
async fn a_sitemap_whose_tags_overflow_one_file_becomes_an_index_too() {
    let app = TestApp::spawn_with(&[("LECTERN_SITEMAP_FILE_URLS", "10")]).await;
    for n in 1..=6 {
        publish(
            &app,
            &format!(
                "---\ntitle: Tagged {n}\nslug: tagged-{n}\ntags: [Topic {n}]\ndate: 2020-03-{n:02}\n---\nbody\n"
            ),
        )
        .await;
    }
    let index = app.get_text("/sitemap.xml").await;
    assert!(index.contains("<sitemapindex"), "{index}");
    assert_eq!(index.matches("<sitemap>").count(), 2, "{index}");
    assert!(index.contains("/sitemaps/posts-1.xml</loc>"), "{index}");
    let after = &index[index.find("/sitemaps/site.xml</loc>").unwrap()..];
    let dated = &after[after.find("<lastmod>").unwrap() + 9..after.find("</lastmod>").unwrap()];
    let site = app.get_text("/sitemaps/site.xml").await;
    assert!(site.contains("/tags/topic-6</loc>"), "{site}");
    let newest = site
        .split("<lastmod>")
        .skip(1)
        .map(|part| &part[..part.find("</lastmod>").unwrap()])
        .max()
        .unwrap();
    assert_eq!(dated, newest);
    let posts = app.get_text("/sitemaps/posts-1.xml").await;
    assert_eq!(posts.matches("/posts/tagged-").count(), 6, "{posts}");
}

/// Every post of a listing, walking its "older" links from the first page; then one "newer"
/// link back from the last page.
async fn walk_listing(app: &TestApp, first: &str, prefix: &str) -> (Vec<String>, String, usize) {
    let mut slugs = Vec::new();
    let mut last_page_starts;
    let mut path = first.to_string();
    let mut pages = Vec::new();
    loop {
        let page = app.get_text(&path).await;
        last_page_starts = slugs.len();
        let mut on_page = std::collections::HashSet::new();
        for part in page.split(&format!("href=\"/posts/{prefix}")).skip(1) {
            let slug = &part[..part.find(['"', '#']).unwrap()];
            let slug = format!("{prefix}{slug}");
            if on_page.insert(slug.clone()) {
                slugs.push(slug);
            }
        }
        pages.push(page.clone());
        match crate::common::hidden_href(&page, "next") {
            Some(next) => path = next,
            None => break,
        }
        assert!(pages.len() < 200, "the walk never ends");
    }
    let newer = crate::common::hidden_href(pages.last().unwrap(), "prev").unwrap_or_default();
    (slugs, newer, last_page_starts)
}

/// Posts published at the same moment are ordered by id across keyset pages, both for a tag of
/// a few posts (its posts sorted) and for a tag of more than a thousand (the listing walked in
/// index order): each post exactly once, newest id first, and "newer" leads back a page.
#[tokio::test]
async fn keyset_pages_keep_every_post_once_through_ties_for_small_and_common_tags() {
    let app = TestApp::spawn().await;
    app.state
        .db
        .write(|conn| {
            use diesel::connection::SimpleConnection;
            conn.batch_execute(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1003)
                 INSERT INTO posts (slug, title, body_markdown, body_html, excerpt, author_id, kind,
                     status, published_at, comments_open, approved_comment_count, created_at,
                     updated_at, thread_version)
                 SELECT 'tie-' || i, 'Tie ' || i, 'Tie', '<p>Tie</p>', 'Tie',
                     (SELECT MIN(id) FROM users), 'post', 'published', '2021-06-01 12:00:00',
                     TRUE, 0, '2021-06-01 12:00:00', '2021-06-01 12:00:00', 0
                 FROM n;
                 INSERT INTO tags (name, slug) VALUES ('Common', 'common'), ('Rare', 'rare');
                 INSERT INTO post_tags (post_id, tag_id)
                     SELECT posts.id, tags.id FROM posts, tags
                     WHERE posts.slug LIKE 'tie-%' AND tags.slug = 'common';
                 INSERT INTO post_tags (post_id, tag_id)
                     SELECT posts.id, tags.id FROM posts, tags
                     WHERE posts.slug IN ('tie-1', 'tie-500', 'tie-1000') AND tags.slug = 'rare';",
            )?;
            Ok::<_, lectern::db::DbError>(())
        })
        .await
        .unwrap();
    let expected: Vec<String> = (1..=1003).rev().map(|n| format!("tie-{n}")).collect();
    for first in ["/tags/common", "/"] {
        let (slugs, newer, last_page_starts) = walk_listing(&app, first, "tie-").await;
        assert_eq!(slugs, expected, "{first}");
        // The last page holds the oldest posts; the page before it ends just above them.
        let back = app.get_text(&newer).await;
        let above = &expected[last_page_starts - 1];
        let oldest = &expected[expected.len() - 1];
        assert!(
            back.contains(&format!("/posts/{above}\"")),
            "{first}: {newer}"
        );
        assert!(
            !back.contains(&format!("/posts/{oldest}\"")),
            "{first}: {newer}"
        );
    }
    let (rare, _, _) = walk_listing(&app, "/tags/rare", "tie-").await;
    assert_eq!(rare, ["tie-1000", "tie-500", "tie-1"]);
}

/// The site's comment feed skips comments on posts that are not visible, however many of the
/// newest comments they are (the feed reads the newest comments in batches until it is full).
#[tokio::test]
async fn the_comment_feed_reaches_past_many_comments_on_a_hidden_post() {
    let app = TestApp::spawn().await;
    app.state
        .db
        .write(|conn| {
            use diesel::connection::SimpleConnection;
            conn.batch_execute(
                "INSERT INTO posts (slug, title, body_markdown, body_html, excerpt, author_id, kind,
                     status, published_at, comments_open, approved_comment_count, created_at,
                     updated_at, thread_version)
                 VALUES ('hidden-draft', 'Hidden', 'Hidden', '<p>Hidden</p>', 'Hidden',
                     (SELECT MIN(id) FROM users), 'post', 'draft', '2021-06-01 12:00:00', TRUE, 0,
                     '2021-06-01 12:00:00', '2021-06-01 12:00:00', 0);
                 WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 300)
                 INSERT INTO comments (post_id, author_name, author_email, body, body_html, status,
                     user_agent, avatar_seed, notify, created_at, updated_at, format)
                 SELECT (SELECT id FROM posts WHERE slug = 'hidden-draft'), 'Hider',
                     'hider@example.com', 'Hidden remark ' || i, '<p>Hidden remark</p>',
                     'approved', '', i, FALSE, '2026-01-01 00:00:00', '2026-01-01 00:00:00',
                     'markdown'
                 FROM n;",
            )?;
            Ok::<_, lectern::db::DbError>(())
        })
        .await
        .unwrap();
    let feed = app.get_text("/comments/feed.xml").await;
    assert!(!feed.contains("Hidden remark"), "{feed}");
    assert!(feed.contains("Welcome to lectern"), "{feed}");
    assert_eq!(app.get("/posts/hidden-draft/feed.xml").await.status(), 404);
}
