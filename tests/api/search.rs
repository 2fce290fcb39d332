//! `GET /search?q=`: published posts and pages by title, text and tags, ranked, with escaped
//! highlighted snippets, pages of results, and a clear answer for empty, over-long or
//! syntax-only queries. The index follows every save of a post.

use crate::common::{PASSWORD, TestApp, client};

async fn admin(app: &TestApp) -> (reqwest::Client, String) {
    let id = app
        .create_user("editor@example.com", "Editor", "admin", PASSWORD)
        .await;
    (
        app.login_client("editor@example.com", PASSWORD).await,
        id.to_string(),
    )
}

/// Creates a post through the editor; returns its id.
async fn publish(
    app: &TestApp,
    http: &reqwest::Client,
    author: &str,
    fields: &[(&str, &str)],
) -> i32 {
    let mut form: Vec<(&str, &str)> = vec![
        ("slug", ""),
        ("excerpt", ""),
        ("tags", ""),
        ("kind", "post"),
        ("status", "published"),
        ("publish_at", ""),
        ("author", author),
    ];
    for (name, value) in fields {
        form.retain(|(n, _)| n != name);
        form.push((name, value));
    }
    let response = app.staff_post(http, "/admin/posts/new", &form).await;
    assert_eq!(response.status(), 303, "the post is created");
    let location = response.headers()["location"].to_str().unwrap().to_string();
    location
        .strip_prefix("/admin/posts/")
        .and_then(|rest| rest.split('/').next())
        .and_then(|id| id.parse().ok())
        .unwrap()
}

#[tokio::test]
async fn published_posts_and_pages_are_found_by_title_text_and_tags_best_first() {
    let app = TestApp::spawn().await;
    let (http, author) = admin(&app).await;
    publish(
        &app,
        &http,
        &author,
        &[
            ("title", "Gardening notes"),
            (
                "body",
                "Tomatoes like sun. A <b>marigold</b> & basil keep pests away.",
            ),
        ],
    )
    .await;
    publish(
        &app,
        &http,
        &author,
        &[("title", "Marigolds"), ("body", "All about them.")],
    )
    .await;
    publish(
        &app,
        &http,
        &author,
        &[
            ("title", "Tagged one"),
            ("body", "Nothing here."),
            ("tags", "Orchards"),
        ],
    )
    .await;
    publish(
        &app,
        &http,
        &author,
        &[
            ("title", "About"),
            ("body", "Who grows the marigold here."),
            ("kind", "page"),
        ],
    )
    .await;
    publish(
        &app,
        &http,
        &author,
        &[
            ("title", "Secret marigold draft"),
            ("body", "Hidden."),
            ("status", "draft"),
        ],
    )
    .await;

    let response = app.get("/search?q=marigold").await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-robots-tag"], "noindex");
    let page = response.text().await.unwrap();
    assert!(page.contains(r#"<meta name="robots" content="noindex">"#));
    let first = page
        .find(r#"href="/posts/marigolds""#)
        .expect("title match");
    let body_match = page
        .find(r#"href="/posts/gardening-notes""#)
        .expect("text match");
    assert!(first < body_match, "a title match ranks first");
    assert!(page.contains(r#"href="/pages/about""#), "pages are found");
    assert!(!page.contains("Secret"), "drafts are not");
    // Snippets are plain text with the matches marked, escaped.
    assert!(page.contains("<mark>marigold</mark> &#38; basil"));
    assert!(!page.contains("<b>marigold"));

    let tagged = app.get_text("/search?q=orchards").await;
    assert!(tagged.contains(r#"href="/posts/tagged-one""#));
    let stemmed = app.get_text("/search?q=tomato").await;
    assert!(stemmed.contains(r#"href="/posts/gardening-notes""#));
    let nothing = app.get_text("/search?q=zucchini").await;
    assert!(nothing.contains("Nothing matches “zucchini”"));
}

#[tokio::test]
async fn the_index_follows_each_save_of_a_post() {
    let app = TestApp::spawn().await;
    let (http, author) = admin(&app).await;
    let id = publish(
        &app,
        &http,
        &author,
        &[("title", "Changing"), ("body", "The word is aardvark.")],
    )
    .await;
    let first = app.get("/search?q=aardvark").await;
    let etag = first.headers()["etag"].to_str().unwrap().to_string();
    assert!(first.text().await.unwrap().contains("/posts/changing"));
    // Kept for anonymous readers: the same page again is a 304 until the database changes.
    let again = client()
        .get(app.url("/search?q=aardvark"))
        .header("If-None-Match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
    let form = [
        ("title", "Changing"),
        ("slug", "changing"),
        ("body", "The word is now zebra."),
        ("excerpt", ""),
        ("tags", "stripes"),
        ("kind", "post"),
        ("status", "published"),
        ("publish_at", ""),
        ("author", author.as_str()),
    ];
    let saved = app
        .staff_post(&http, &format!("/admin/posts/{id}/edit"), &form)
        .await;
    assert_eq!(saved.status(), 303);
    assert!(
        !app.get_text("/search?q=aardvark")
            .await
            .contains("/posts/changing")
    );
    assert!(
        app.get_text("/search?q=zebra")
            .await
            .contains("/posts/changing")
    );
    assert!(
        app.get_text("/search?q=stripes")
            .await
            .contains("/posts/changing")
    );
    let trashed = app
        .staff_post(&http, &format!("/admin/posts/{id}/trash"), &[])
        .await;
    assert_eq!(trashed.status(), 303);
    assert!(
        !app.get_text("/search?q=zebra")
            .await
            .contains("/posts/changing")
    );
}

#[tokio::test]
async fn reader_text_is_never_query_syntax() {
    let app = TestApp::spawn().await;
    for q in [
        "%22",
        "%22unclosed",
        "*",
        "NEAR(welcome",
        "-lectern",
        "title%3Awelcome",
        "welcome%20OR%20AND%20NOT",
        "%28%28%28",
        "%5E",
    ] {
        let response = app.get(&format!("/search?q={q}")).await;
        assert_eq!(response.status(), 200, "{q}");
    }
    let page = app.get_text("/search?q=%22welcome*%20-lectern:").await;
    assert!(
        page.contains("/posts/welcome-to-lectern"),
        "the words are searched for"
    );
}

#[tokio::test]
async fn empty_and_over_long_queries_get_a_clear_page() {
    let app = TestApp::spawn().await;
    let empty = app.get("/search?q=").await;
    assert_eq!(empty.status(), 200);
    assert!(
        empty
            .text()
            .await
            .unwrap()
            .contains("Type one or more words")
    );
    assert_eq!(app.get("/search").await.status(), 200);
    let long = "a".repeat(201);
    let response = app.get(&format!("/search?q={long}")).await;
    assert_eq!(response.status(), 400);
    let page = response.text().await.unwrap();
    assert!(page.contains("the limit is 200"));
    assert!(page.contains(r#"aria-invalid="true""#));
    assert_eq!(app.get("/search?q=x&page=0").await.status(), 404);
    // Every page has the search box in its header.
    assert!(app.get_text("/").await.contains(r#"role="search""#));
}

#[tokio::test]
async fn results_come_in_pages() {
    let app = TestApp::spawn().await;
    let (http, author) = admin(&app).await;
    for n in 0..12 {
        let title = format!("Pebble {n}");
        publish(
            &app,
            &http,
            &author,
            &[("title", &title), ("body", "A pebble on the beach.")],
        )
        .await;
    }
    let first = app.get_text("/search?q=pebble").await;
    assert_eq!(
        first.matches(r#"class="summary search-result""#).count(),
        10
    );
    assert!(first.contains(r#"href="/search?q=pebble&#38;page=2""#));
    let second = app.get_text("/search?q=pebble&page=2").await;
    assert_eq!(
        second.matches(r#"class="summary search-result""#).count(),
        2
    );
    assert!(second.contains(r#"href="/search?q=pebble""#));
    assert_eq!(app.get("/search?q=pebble&page=3").await.status(), 404);
}
