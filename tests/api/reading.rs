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
}
