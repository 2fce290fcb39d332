//! Publishing: the admin's post editor, scheduling, slug changes, trash, feeds, the sitemap,
//! page metadata and closed comments.

use std::str::FromStr;

use atom_syndication::Feed;
use diesel::prelude::*;
use lectern::db::schema::{moderation_log, posts};

use crate::common::{PASSWORD, TestApp, WELCOME, comment_id_from, hidden_value};
use crate::reading::publish;

/// An admin's client and its CSRF token.
async fn admin(app: &TestApp) -> (reqwest::Client, String) {
    let http = app.staff_client("admin").await;
    let csrf = app.csrf(&http).await;
    (http, csrf)
}

async fn post(
    app: &TestApp,
    http: &reqwest::Client,
    csrf: &str,
    path: &str,
    fields: &[(&str, &str)],
) -> reqwest::Response {
    let mut form = fields.to_vec();
    form.push(("csrf_token", csrf));
    http.post(app.url(path)).form(&form).send().await.unwrap()
}

fn location(response: &reqwest::Response) -> String {
    response.headers()["location"].to_str().unwrap().to_string()
}

/// The editor's fields for a published post, with `extra` replacing or adding fields.
fn fields<'a>(title: &'a str, extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut form = vec![
        ("title", title),
        ("slug", ""),
        (
            "body",
            "Some *Markdown* text.\n\n| a | b |\n|---|---|\n| 1 | 2 |\n",
        ),
        ("excerpt", ""),
        ("tags", ""),
        ("kind", "post"),
        ("status", "published"),
        ("publish_at", ""),
        ("comments_open", "1"),
    ];
    for (name, value) in extra {
        form.retain(|(n, _)| n != name);
        form.push((name, value));
    }
    form
}

/// Creates a post through the editor and returns its id.
async fn create(app: &TestApp, http: &reqwest::Client, csrf: &str, form: &[(&str, &str)]) -> i32 {
    let response = post(app, http, csrf, "/admin/posts/new", form).await;
    assert_eq!(response.status(), 303, "the post is created");
    let location = location(&response);
    location
        .strip_prefix("/admin/posts/")
        .and_then(|rest| rest.split('/').next())
        .and_then(|id| id.parse().ok())
        .unwrap_or_else(|| panic!("unexpected redirect {location}"))
}

/// (slug, title, status, status_before_trash) of a stored post.
async fn stored(app: &TestApp, id: i32) -> (String, String, String, Option<String>) {
    app.db(move |conn| {
        Ok(posts::table
            .find(id)
            .select((
                posts::slug,
                posts::title,
                posts::status,
                posts::status_before_trash,
            ))
            .first(conn)?)
    })
    .await
}

async fn post_count(app: &TestApp) -> i64 {
    app.db(|conn| Ok(posts::table.count().get_result(conn)?))
        .await
}

/// (action, detail) of every post entry in the moderation log, oldest first; all have no
/// comment.
async fn post_log(app: &TestApp) -> Vec<(String, String)> {
    let rows: Vec<(String, String, Option<i32>)> = app
        .db(|conn| {
            Ok(moderation_log::table
                .filter(moderation_log::action.like("post-%"))
                .select((
                    moderation_log::action,
                    moderation_log::detail,
                    moderation_log::comment_id,
                ))
                .order(moderation_log::id)
                .load(conn)?)
        })
        .await;
    assert!(rows.iter().all(|r| r.2.is_none()));
    rows.into_iter().map(|(a, d, _)| (a, d)).collect()
}

/// Waits (bounded) until the scheduler has given the post `status`.
async fn wait_for_status(app: &TestApp, id: i32, status: &str) {
    for _ in 0..500 {
        if stored(app, id).await.2 == status {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("post {id} never became {status}");
}

/// Fetches and parses an Atom feed, checking what every feed must have.
async fn feed(app: &TestApp, path: &str) -> (Feed, String) {
    let response = app.get(path).await;
    assert_eq!(response.status(), 200, "{path}");
    assert_eq!(
        response.headers()["content-type"],
        "application/atom+xml; charset=utf-8",
        "{path}"
    );
    let text = response.text().await.unwrap();
    let feed = Feed::from_str(&text).unwrap_or_else(|e| panic!("{path} is not Atom: {e}"));
    assert!(!feed.id().is_empty(), "{path}: id");
    assert!(!feed.title().is_empty(), "{path}: title");
    assert!(feed.updated().timestamp() > 0, "{path}: updated is set");
    for entry in feed.entries() {
        assert!(!entry.id().is_empty(), "{path}: entry id");
        assert!(!entry.title().is_empty(), "{path}: entry title");
        assert!(entry.updated().timestamp() > 0, "{path}: entry updated");
        assert!(
            entry.links().iter().any(|l| l.href().starts_with("http")),
            "{path}: entry link"
        );
        assert!(
            entry.updated() <= feed.updated(),
            "{path}: feed updated is the newest"
        );
    }
    (feed, text)
}

fn titles(feed: &Feed) -> Vec<String> {
    feed.entries()
        .iter()
        .map(|e| e.title().as_str().to_string())
        .collect()
}

/// A datetime-local value `secs` from lectern's now, in `tz`.
fn local_in(app: &TestApp, secs: i64, tz: chrono_tz::Tz) -> String {
    (app.state.clock.now() + chrono::Duration::seconds(secs))
        .and_utc()
        .with_timezone(&tz)
        .format("%Y-%m-%dT%H:%M")
        .to_string()
}

/// Approves a comment from the queue.
async fn approve(app: &TestApp, http: &reqwest::Client, csrf: &str, id: i32) {
    let response = post(
        app,
        http,
        csrf,
        &format!("/admin/comments/{id}/approve"),
        &[],
    )
    .await;
    assert_eq!(response.status(), 303);
}

#[tokio::test]
async fn an_admin_writes_publishes_and_edits_a_post_that_readers_then_see() {
    let app = TestApp::spawn().await;
    let (http, csrf) = admin(&app).await;
    let editor = http.get(app.url("/admin/posts/new")).send().await.unwrap();
    assert_eq!(editor.status(), 200);
    let editor = editor.text().await.unwrap();
    for name in [
        "title",
        "slug",
        "body",
        "excerpt",
        "tags",
        "author",
        "kind",
        "status",
        "publish_at",
        "comments_open",
    ] {
        assert!(editor.contains(&format!("name=\"{name}\"")), "{name}");
    }
    assert!(editor.contains(r#"type="datetime-local""#));

    let id = create(
        &app,
        &http,
        &csrf,
        &fields("First steps", &[("tags", "Rust, Web dev")]),
    )
    .await;
    assert_eq!(stored(&app, id).await.2, "published");
    let page = app.get_text("/posts/first-steps").await;
    assert!(page.contains("<em>Markdown</em>"));
    assert!(page.contains("<table>"));
    assert!(page.contains("Leave a Reply"));
    let index = app.get_text("/").await;
    assert!(index.contains("First steps"));
    // No excerpt typed: one is made from the text.
    assert!(index.contains("Some Markdown text."));
    assert!(app.get_text("/tags/web-dev").await.contains("First steps"));

    // A first-time commenter waits in the queue: the list counts it apart.
    let pending = comment_id_from(
        &app.comment(
            "first-steps",
            &[
                ("name", "Reader"),
                ("email", "reader@example.com"),
                ("body", "Nice one"),
            ],
        )
        .await,
    );
    assert_eq!(app.stored_comment(pending).await.0, "pending");
    let list = http.get(app.url("/admin/posts")).send().await.unwrap();
    assert_eq!(list.status(), 200);
    let list = list.text().await.unwrap();
    assert!(list.contains("First steps"));
    assert!(list.contains("1 pending"));
    assert!(list.contains("Welcome to lectern"));
    assert!(
        list.contains(r#"href="/admin/posts""#),
        "the nav links to posts"
    );

    let edit = http
        .get(app.url(&format!("/admin/posts/{id}/edit")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(hidden_value(&edit, "slug").as_deref(), Some("first-steps"));
    // The excerpt was made from the text, so it is not frozen into the form as if typed.
    assert!(edit.contains(r#"name="excerpt" rows="3" maxlength="1000"></textarea>"#));
    assert!(edit.contains("Rust, Web dev"));
    let response = post(
        &app,
        &http,
        &csrf,
        &format!("/admin/posts/{id}/edit"),
        &fields(
            "First steps, revised",
            &[
                ("slug", "first-steps"),
                ("body", "Now with ~~less~~ more."),
                ("excerpt", "A hand-written summary."),
                ("tags", "Rust"),
            ],
        ),
    )
    .await;
    assert_eq!(response.status(), 303);
    assert_eq!(
        location(&response),
        format!("/admin/posts/{id}/edit?done=saved")
    );
    let page = app.get_text("/posts/first-steps").await;
    assert!(page.contains("First steps, revised"));
    assert!(page.contains("<del>less</del>"));
    assert!(app.get_text("/").await.contains("A hand-written summary."));
    assert!(!app.get_text("/tags/web-dev").await.contains("First steps"));

    let log = post_log(&app).await;
    assert_eq!(log.len(), 2);
    assert_eq!(log[0].0, "post-create");
    assert!(log[0].1.contains("“First steps”"), "{}", log[0].1);
    assert_eq!(log[1].0, "post-update");
    assert!(log[1].1.contains("First steps, revised"));
}

#[tokio::test]
async fn an_invalid_post_form_is_422_with_the_input_kept_and_nothing_saved() {
    let app = TestApp::spawn().await;
    let (http, csrf) = admin(&app).await;
    create(&app, &http, &csrf, &fields("Taken", &[("slug", "taken")])).await;
    let before = (post_count(&app).await, post_log(&app).await.len());
    let past = local_in(&app, -3600, chrono_tz::UTC);
    let cases: Vec<(&str, Vec<(&str, &str)>)> = vec![
        ("title", fields("", &[])),
        ("slug", fields("Fine", &[("slug", "Not a slug!")])),
        ("slug", fields("Fine", &[("slug", "taken")])),
        ("status", fields("Fine", &[("status", "trash")])),
        ("kind", fields("Fine", &[("kind", "novel")])),
        ("author", fields("Fine", &[("author", "999")])),
        ("publish_at", fields("Fine", &[("status", "scheduled")])),
        (
            "publish_at",
            fields("Fine", &[("status", "scheduled"), ("publish_at", &past)]),
        ),
        (
            "publish_at",
            fields("Fine", &[("publish_at", "next tuesday")]),
        ),
        ("tags", fields("Fine", &[("tags", "日本")])),
    ];
    for (field, mut form) in cases {
        form.retain(|(n, _)| *n != "body");
        form.push(("body", "My precious draft text"));
        let response = post(&app, &http, &csrf, "/admin/posts/new", &form).await;
        assert_eq!(response.status(), 422, "{field}");
        let page = response.text().await.unwrap();
        assert!(page.contains("Nothing was saved."), "{field}");
        assert!(
            page.contains("My precious draft text"),
            "{field}: input kept"
        );
        assert!(
            page.contains(&format!("field has-error\"><label for=\"{field}\"")),
            "{field} is marked"
        );
    }
    assert_eq!(
        (post_count(&app).await, post_log(&app).await.len()),
        before,
        "nothing saved"
    );
}

#[tokio::test]
async fn an_empty_slug_is_made_from_the_title_and_kept_unique() {
    let app = TestApp::spawn().await;
    let (http, csrf) = admin(&app).await;
    let first = create(&app, &http, &csrf, &fields("Café & Crème", &[])).await;
    let second = create(&app, &http, &csrf, &fields("Café & Crème", &[])).await;
    assert_eq!(stored(&app, first).await.0, "cafe-creme");
    assert_eq!(stored(&app, second).await.0, "cafe-creme-2");
    assert_eq!(app.get("/posts/cafe-creme-2").await.status(), 200);
}

#[tokio::test]
async fn drafts_and_scheduled_posts_stay_hidden_everywhere_until_their_time_comes() {
    let tz = chrono_tz::America::New_York;
    let app = TestApp::spawn_with(&[("LECTERN_TIMEZONE", "America/New_York")]).await;
    let (http, csrf) = admin(&app).await;
    let at = local_in(&app, 2 * 3600, tz);
    let scheduled = create(
        &app,
        &http,
        &csrf,
        &fields(
            "Coming soon",
            &[
                ("status", "scheduled"),
                ("publish_at", &at),
                ("tags", "Soon"),
            ],
        ),
    )
    .await;
    // "published" with a future date is scheduled too.
    let later = local_in(&app, 3 * 3600, tz);
    let future = create(
        &app,
        &http,
        &csrf,
        &fields(
            "Published later",
            &[("publish_at", &later), ("tags", "Soon")],
        ),
    )
    .await;
    let draft = create(
        &app,
        &http,
        &csrf,
        &fields("Just a draft", &[("status", "draft"), ("tags", "Soon")]),
    )
    .await;
    assert_eq!(stored(&app, scheduled).await.2, "scheduled");
    assert_eq!(stored(&app, future).await.2, "scheduled");
    assert_eq!(stored(&app, draft).await.2, "draft");
    // The form's time was read in the site's time zone.
    let published_at: chrono::NaiveDateTime = app
        .db(move |conn| {
            Ok(posts::table
                .find(scheduled)
                .select(posts::published_at)
                .first(conn)?)
        })
        .await;
    assert_eq!(
        published_at
            .and_utc()
            .with_timezone(&tz)
            .format("%Y-%m-%dT%H:%M")
            .to_string(),
        at
    );

    let hidden = ["Coming soon", "Published later", "Just a draft"];
    let visible_titles = |text: &str| -> Vec<&str> {
        hidden
            .iter()
            .copied()
            .filter(|title| text.contains(title))
            .collect()
    };
    for slug in ["coming-soon", "published-later", "just-a-draft"] {
        assert_eq!(app.get(&format!("/posts/{slug}")).await.status(), 404);
        assert_eq!(
            app.get(&format!("/posts/{slug}/feed.xml")).await.status(),
            404
        );
    }
    for path in ["/", "/tags/soon", "/authors/test-admin"] {
        assert_eq!(
            visible_titles(&app.get_text(path).await),
            Vec::<&str>::new(),
            "{path}"
        );
    }
    for path in ["/feed.xml", "/tags/soon/feed.xml"] {
        let (parsed, _) = feed(&app, path).await;
        assert_eq!(
            visible_titles(&titles(&parsed).join("\n")),
            Vec::<&str>::new()
        );
    }
    let sitemap = app.get_text("/sitemap.xml").await;
    assert!(!sitemap.contains("coming-soon"));
    assert!(!sitemap.contains("/tags/soon"));

    // Two hours and a half later, without a request, the first is published by the scheduler.
    app.advance(2 * 3600 + 1800);
    app.state.publish_wakeup.notify_one();
    wait_for_status(&app, scheduled, "published").await;
    assert_eq!(stored(&app, future).await.2, "scheduled");
    assert_eq!(app.get("/posts/coming-soon").await.status(), 200);
    assert!(app.get_text("/").await.contains("Coming soon"));
    assert!(app.get_text("/tags/soon").await.contains("Coming soon"));
    assert!(titles(&feed(&app, "/feed.xml").await.0).contains(&"Coming soon".to_string()));
    assert!(
        titles(&feed(&app, "/tags/soon/feed.xml").await.0).contains(&"Coming soon".to_string())
    );
    assert!(
        app.get_text("/sitemap.xml")
            .await
            .contains("/posts/coming-soon")
    );
    assert!(!app.get_text("/").await.contains("Published later"));
    assert_eq!(app.get("/posts/just-a-draft").await.status(), 404);
}

#[tokio::test]
async fn a_new_slug_redirects_the_old_address_and_the_comments_stay() {
    let app = TestApp::spawn_with(&[("LECTERN_FLOOD_LIMITS", "off")]).await;
    let (http, csrf) = admin(&app).await;
    let id = create(&app, &http, &csrf, &fields("Old name", &[])).await;
    let comment = comment_id_from(
        &app.comment(
            "old-name",
            &[
                ("name", "Reader"),
                ("email", "reader@example.com"),
                ("body", "Still here after the move"),
            ],
        )
        .await,
    );
    approve(&app, &http, &csrf, comment).await;
    // A reader opens the post and is still writing when its address changes.
    let open_form = app.form_token("old-name").await;

    let response = post(
        &app,
        &http,
        &csrf,
        &format!("/admin/posts/{id}/edit"),
        &fields("New name", &[("slug", "new-name")]),
    )
    .await;
    assert_eq!(response.status(), 303);
    let late = app
        .comment_with_token(
            "old-name",
            &open_form,
            &[
                ("name", "Late Reader"),
                ("email", "late@example.com"),
                ("body", "Written before the move, sent after it"),
            ],
        )
        .await;
    assert_eq!(late.status(), 303, "the comment is taken, not lost");
    let late_id = comment_id_from(&late);
    assert_eq!(
        location(&late),
        format!("/posts/new-name#comment-{late_id}")
    );
    let stored_on: i32 = app
        .db(move |conn| {
            use lectern::db::schema::comments;
            Ok(comments::table
                .find(late_id)
                .select(comments::post_id)
                .first(conn)?)
        })
        .await;
    assert_eq!(stored_on, id);
    let moved = app.get("/posts/old-name?cpage=1").await;
    assert_eq!(moved.status(), 301);
    assert_eq!(location(&moved), "/posts/new-name?cpage=1");
    assert_eq!(moved.headers()["cache-control"], "public, max-age=86400");
    let moved = app.get("/posts/old-name/feed.xml").await;
    assert_eq!(moved.status(), 301);
    assert_eq!(location(&moved), "/posts/new-name/feed.xml");

    let page = app.get_text("/posts/new-name").await;
    assert!(page.contains("Still here after the move"));
    assert!(page.contains("One thought on “New name”"));
    let (comments, _) = feed(&app, "/posts/new-name/feed.xml").await;
    assert_eq!(comments.entries().len(), 1);
    assert!(
        comments.entries()[0].links()[0]
            .href()
            .ends_with(&format!("/posts/new-name#comment-{comment}"))
    );
    let log = post_log(&app).await;
    assert!(
        log.last()
            .unwrap()
            .1
            .contains("address /posts/old-name → /posts/new-name"),
        "{log:?}"
    );

    // Moved twice, both old addresses lead to the current one; taking an old address back
    // ends its redirect.
    post(
        &app,
        &http,
        &csrf,
        &format!("/admin/posts/{id}/edit"),
        &fields("Newest name", &[("slug", "newest-name")]),
    )
    .await;
    assert_eq!(
        location(&app.get("/posts/old-name").await),
        "/posts/newest-name"
    );
    assert_eq!(
        location(&app.get("/posts/new-name").await),
        "/posts/newest-name"
    );
    let other = create(
        &app,
        &http,
        &csrf,
        &fields("Reuse", &[("slug", "old-name")]),
    )
    .await;
    assert_eq!(stored(&app, other).await.0, "old-name");
    assert!(app.get_text("/posts/old-name").await.contains("Reuse"));
    // An address made from a title avoids old addresses still in use.
    let made = create(&app, &http, &csrf, &fields("New name", &[])).await;
    assert_eq!(stored(&app, made).await.0, "new-name-2");
}

#[tokio::test]
async fn a_trashed_post_is_404_everywhere_and_restore_brings_it_back() {
    let app = TestApp::spawn().await;
    let (http, csrf) = admin(&app).await;
    let id = create(
        &app,
        &http,
        &csrf,
        &fields("Short lived", &[("tags", "Gone")]),
    )
    .await;
    let response = post(&app, &http, &csrf, &format!("/admin/posts/{id}/trash"), &[]).await;
    assert_eq!(response.status(), 303);
    let (_, _, status, before) = stored(&app, id).await;
    assert_eq!(
        (status.as_str(), before.as_deref()),
        ("trash", Some("published"))
    );
    assert_eq!(app.get("/posts/short-lived").await.status(), 404);
    assert_eq!(app.get("/posts/short-lived/feed.xml").await.status(), 404);
    assert!(!app.get_text("/").await.contains("Short lived"));
    assert!(!app.get_text("/tags/gone").await.contains("Short lived"));
    assert!(!feed(&app, "/feed.xml").await.1.contains("Short lived"));
    assert!(!app.get_text("/sitemap.xml").await.contains("short-lived"));
    let list = http
        .get(app.url("/admin/posts"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!list.contains("Short lived"), "not among the live posts");
    let trash = http
        .get(app.url("/admin/posts?status=trash"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(trash.contains("Short lived"));
    assert!(trash.contains(&format!("/admin/posts/{id}/restore")));

    // A trashed post is restored before it is edited.
    let edit = post(
        &app,
        &http,
        &csrf,
        &format!("/admin/posts/{id}/edit"),
        &fields("Short lived", &[]),
    )
    .await;
    assert_eq!(edit.status(), 409);

    let response = post(
        &app,
        &http,
        &csrf,
        &format!("/admin/posts/{id}/restore"),
        &[],
    )
    .await;
    assert_eq!(response.status(), 303);
    let (_, _, status, before) = stored(&app, id).await;
    assert_eq!((status.as_str(), before), ("published", None));
    assert_eq!(app.get("/posts/short-lived").await.status(), 200);
    let again = post(
        &app,
        &http,
        &csrf,
        &format!("/admin/posts/{id}/restore"),
        &[],
    )
    .await;
    assert_eq!(again.status(), 409, "only a trashed post can be restored");

    let actions: Vec<String> = post_log(&app).await.into_iter().map(|(a, _)| a).collect();
    assert_eq!(actions, ["post-create", "post-trash", "post-restore"]);
}

#[tokio::test]
async fn a_preview_renders_the_unsaved_post_as_readers_would_see_it_and_saves_nothing() {
    let app = TestApp::spawn().await;
    let (http, csrf) = admin(&app).await;
    let id = create(&app, &http, &csrf, &fields("Saved title", &[])).await;
    let before = (
        stored(&app, id).await,
        post_count(&app).await,
        post_log(&app).await,
    );
    let response = post(
        &app,
        &http,
        &csrf,
        &format!("/admin/posts/{id}/preview"),
        &fields(
            "Unsaved title",
            &[
                ("body", "[box type=\"warning\"]\nCareful **now**.\n[/box]\n"),
                ("tags", "Preview tag"),
            ],
        ),
    )
    .await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-robots-tag"], "noindex, nofollow");
    let page = response.text().await.unwrap();
    assert!(page.contains(r#"<meta name="robots" content="noindex">"#));
    assert!(page.contains(r#"<h1 class="entry-title">Unsaved title</h1>"#));
    assert!(page.contains(r#"<div class="box box-warning""#));
    assert!(page.contains("Preview tag"));
    assert!(!page.contains("form_token"), "no working comment form");
    assert!(!page.contains("Leave a Reply"));

    let new = post(
        &app,
        &http,
        &csrf,
        "/admin/posts/new/preview",
        &fields("Never saved", &[]),
    )
    .await;
    assert_eq!(new.status(), 200);
    assert!(new.text().await.unwrap().contains("Never saved"));
    let invalid = post(
        &app,
        &http,
        &csrf,
        "/admin/posts/new/preview",
        &fields("", &[]),
    )
    .await;
    assert_eq!(invalid.status(), 422);

    let after = (
        stored(&app, id).await,
        post_count(&app).await,
        post_log(&app).await,
    );
    assert_eq!(after, before, "nothing saved");
    assert!(
        app.get_text("/posts/saved-title")
            .await
            .contains("Saved title")
    );
}

#[tokio::test]
async fn feeds_are_valid_atom_with_only_public_posts_and_approved_comments() {
    let app = TestApp::spawn_with(&[("LECTERN_FLOOD_LIMITS", "off")]).await;
    let (http, csrf) = admin(&app).await;
    create(
        &app,
        &http,
        &csrf,
        &fields("Feed me", &[("tags", "Food"), ("excerpt", "A summary")]),
    )
    .await;
    let approved = comment_id_from(
        &app.comment(
            "feed-me",
            &[
                ("name", "Approved Person"),
                ("email", "approved@example.com"),
                ("website", "https://approved.example"),
                ("body", "An approved remark"),
            ],
        )
        .await,
    );
    approve(&app, &http, &csrf, approved).await;
    app.comment(
        "feed-me",
        &[
            ("name", "Waiting Person"),
            ("email", "pending@example.com"),
            ("body", "A pending remark"),
        ],
    )
    .await;
    app.comment(
        "feed-me",
        &[
            ("name", "Spammer"),
            ("email", "spam@example.com"),
            ("body", "A spam remark"),
            ("homepage", "http://spam.example"),
        ],
    )
    .await;
    let trashed = comment_id_from(
        &app.comment(
            "feed-me",
            &[
                ("name", "Trashed Person"),
                ("email", "trashed@example.com"),
                ("body", "A trashed remark"),
            ],
        )
        .await,
    );
    post(
        &app,
        &http,
        &csrf,
        &format!("/admin/comments/{trashed}/trash"),
        &[],
    )
    .await;

    let (posts_feed, text) = feed(&app, "/feed.xml").await;
    assert_eq!(titles(&posts_feed), ["Feed me", "Welcome to lectern"]);
    let entry = &posts_feed.entries()[0];
    let content = entry.content().unwrap();
    assert_eq!(content.content_type(), Some("html"));
    assert!(content.value().unwrap().contains("<em>Markdown</em>"));
    assert_eq!(entry.summary().unwrap().as_str(), "A summary");
    assert_eq!(entry.authors()[0].name(), "Test admin");
    assert_eq!(entry.categories()[0].term(), "food");
    assert!(entry.links()[0].href().ends_with("/posts/feed-me"));
    assert!(posts_feed.links().iter().any(|l| l.rel() == "self"));
    assert_eq!(posts_feed.updated(), entry.updated());
    let mut bodies = vec![text];

    for path in ["/comments/feed.xml", "/posts/feed-me/feed.xml"] {
        let (comments_feed, text) = feed(&app, path).await;
        let text_of_entries: String = comments_feed
            .entries()
            .iter()
            .map(|e| e.content().and_then(|c| c.value()).unwrap_or_default())
            .collect();
        assert!(text_of_entries.contains("An approved remark"), "{path}");
        for absent in ["A pending remark", "A spam remark", "A trashed remark"] {
            assert!(!text_of_entries.contains(absent), "{path}: {absent}");
        }
        let author = &comments_feed.entries()[0].authors()[0];
        assert_eq!(author.name(), "Approved Person");
        assert_eq!(author.uri(), Some("https://approved.example"));
        assert_eq!(author.email(), None);
        bodies.push(text);
    }
    let (site_comments, _) = feed(&app, "/comments/feed.xml").await;
    assert!(titles(&site_comments).contains(&"Comment on Feed me by Approved Person".to_string()));
    // The welcome post's comment is there too.
    assert!(
        titles(&site_comments)
            .iter()
            .any(|t| t.contains("Welcome to lectern"))
    );
    let (tag_feed, text) = feed(&app, "/tags/food/feed.xml").await;
    assert_eq!(titles(&tag_feed), ["Feed me"]);
    bodies.push(text);
    assert_eq!(app.get("/tags/no-such-tag/feed.xml").await.status(), 404);

    for body in &bodies {
        for email in [
            "approved@example.com",
            "pending@example.com",
            "spam@example.com",
            "trashed@example.com",
            "commenter@lectern.invalid",
            "admin@example.com",
        ] {
            assert!(!body.contains(email), "a feed shows {email}");
        }
    }

    // Pages link their feeds.
    let page = app.get_text("/posts/feed-me").await;
    let feed_links = |page: &str| -> Vec<String> {
        page.lines()
            .filter(|l| l.contains(r#"<link rel="alternate" type="application/atom+xml""#))
            .filter_map(|l| {
                l.split("href=\"")
                    .nth(1)?
                    .split('"')
                    .next()
                    .map(str::to_string)
            })
            .collect()
    };
    assert_eq!(
        feed_links(&page),
        ["/feed.xml", "/comments/feed.xml", "/posts/feed-me/feed.xml"]
    );
    assert!(feed_links(&app.get_text("/tags/food").await).contains(&"/tags/food/feed.xml".into()));
}

#[tokio::test]
async fn markup_in_a_title_is_escaped_in_pages_and_feeds() {
    let app = TestApp::spawn().await;
    let (http, csrf) = admin(&app).await;
    let title = r#"<script>alert("x")</script> & friends"#;
    create(&app, &http, &csrf, &fields(title, &[("slug", "escaped")])).await;
    for path in ["/posts/escaped", "/", "/admin/posts"] {
        let page = if path.starts_with("/admin") {
            http.get(app.url(path))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        } else {
            app.get_text(path).await
        };
        assert!(!page.contains("<script>"), "{path}");
        assert!(
            page.contains("&#60;script&#62;") || page.contains("&lt;script&gt;"),
            "{path}"
        );
        assert!(
            page.contains("&#38; friends") || page.contains("&amp; friends"),
            "{path}"
        );
    }
    let (posts_feed, text) = feed(&app, "/feed.xml").await;
    assert!(!text.contains("<script>"));
    assert!(!text.contains("& friends"));
    assert_eq!(posts_feed.entries()[0].title().as_str(), title);
}

#[tokio::test]
async fn feeds_and_the_sitemap_are_kept_and_answer_a_conditional_get_with_304() {
    let app = TestApp::spawn().await;
    for path in ["/feed.xml", "/comments/feed.xml", "/sitemap.xml"] {
        let first = app.get(path).await;
        assert_eq!(first.status(), 200);
        let etag = first.headers()["etag"].to_str().unwrap().to_string();
        let modified = first.headers()["last-modified"]
            .to_str()
            .unwrap()
            .to_string();
        let hits = app
            .metric("lectern_page_cache_hits_total")
            .await
            .unwrap_or(0.0);
        let again = app
            .client
            .get(app.url(path))
            .header("if-none-match", &etag)
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), 304, "{path}: If-None-Match");
        assert_eq!(again.headers()["etag"].to_str().unwrap(), etag);
        assert!(again.text().await.unwrap().is_empty());
        let since = app
            .client
            .get(app.url(path))
            .header("if-modified-since", &modified)
            .send()
            .await
            .unwrap();
        assert_eq!(since.status(), 304, "{path}: If-Modified-Since");
        assert_eq!(since.headers()["last-modified"].to_str().unwrap(), modified);
        // On PostgreSQL a notification of an earlier write may still be on its way and make
        // the page again.
        if app.database_url.starts_with("sqlite") {
            assert!(
                app.metric("lectern_page_cache_hits_total")
                    .await
                    .unwrap_or(0.0)
                    >= hits + 2.0,
                "{path}: both answered from the kept page"
            );
        }
        let other = app
            .client
            .get(app.url(path))
            .header("if-none-match", "W/\"something-else\"")
            .send()
            .await
            .unwrap();
        assert_eq!(other.status(), 200, "{path}: another version");
    }

    // A new post changes the feed: the old validators no longer match.
    let first = app.get("/feed.xml").await;
    let etag = first.headers()["etag"].to_str().unwrap().to_string();
    app.advance(60);
    publish(&app, "---\ntitle: Fresh news\n---\nnews\n").await;
    let after = app
        .client
        .get(app.url("/feed.xml"))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(after.status(), 200);
    assert_ne!(after.headers()["etag"].to_str().unwrap(), etag);
    assert!(after.text().await.unwrap().contains("Fresh news"));
}

#[tokio::test]
async fn a_post_that_becomes_a_page_keeps_its_comments_but_takes_no_new_ones() {
    let app = TestApp::spawn().await;
    let (http, csrf) = admin(&app).await;
    let id = create(&app, &http, &csrf, &fields("Colophon", &[])).await;
    let response = app
        .comment(
            "colophon",
            &[
                ("name", "Early Reader"),
                ("email", "early@example.com"),
                ("body", "Said while it was a post"),
            ],
        )
        .await;
    let comment = comment_id_from(&response);
    approve(&app, &http, &csrf, comment).await;
    let token = app.form_token("colophon").await;
    let edit = format!("/admin/posts/{id}/edit");
    let response = post(
        &app,
        &http,
        &csrf,
        &edit,
        &fields("Colophon", &[("kind", "page")]),
    )
    .await;
    assert_eq!(response.status(), 303);

    let page = app.get_text("/pages/colophon").await;
    assert!(page.contains("Said while it was a post"));
    assert!(!page.contains("form_token"), "no form that could only fail");
    assert!(!page.contains("comment-reply-link"));
    let before = app.comment_count().await;
    let refused = app
        .comment_with_token(
            "colophon",
            &token,
            &[
                ("name", "Late Reader"),
                ("email", "late@example.com"),
                ("body", "Too late"),
            ],
        )
        .await;
    assert_eq!(refused.status(), 404);
    assert_eq!(app.comment_count().await, before);
}

#[tokio::test]
async fn the_sitemap_lists_public_posts_pages_tags_and_authors() {
    let app = TestApp::spawn().await;
    let (http, csrf) = admin(&app).await;
    create(&app, &http, &csrf, &fields("Mapped", &[("tags", "Maps")])).await;
    create(&app, &http, &csrf, &fields("About us", &[("kind", "page")])).await;
    create(
        &app,
        &http,
        &csrf,
        &fields("Unmapped draft", &[("status", "draft"), ("tags", "Secret")]),
    )
    .await;
    let response = app.get("/sitemap.xml").await;
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/xml")
    );
    let sitemap = response.text().await.unwrap();
    let base = app.state.absolute("");
    for path in [
        "/",
        "/posts/mapped",
        "/pages/about-us",
        "/tags/maps",
        "/authors/test-admin",
        &format!("/posts/{WELCOME}"),
    ] {
        assert!(
            sitemap.contains(&format!("<loc>{base}{path}</loc>")),
            "{path} in {sitemap}"
        );
    }
    assert!(!sitemap.contains("unmapped-draft"));
    assert!(!sitemap.contains("/tags/secret"));
    assert!(sitemap.contains("<lastmod>"));
    assert!(app.get_text("/robots.txt").await.contains("/sitemap.xml"));
    // A page has no date and no feed.
    assert_eq!(app.get("/pages/about-us").await.status(), 200);
    assert_eq!(app.get("/pages/about-us/feed.xml").await.status(), 404);
}

#[tokio::test]
async fn a_post_page_carries_open_graph_and_twitter_metadata() {
    let app = TestApp::spawn().await;
    let (http, csrf) = admin(&app).await;
    create(
        &app,
        &http,
        &csrf,
        &fields(
            "Shared widely",
            &[("excerpt", "What the card says"), ("tags", "Social")],
        ),
    )
    .await;
    let page = app.get_text("/posts/shared-widely").await;
    for meta in [
        r#"<meta property="og:title" content="Shared widely">"#,
        r#"<meta property="og:description" content="What the card says">"#,
        r#"<meta property="og:type" content="article">"#,
        r#"<meta name="twitter:card" content="summary">"#,
        r#"<meta property="article:tag" content="Social">"#,
        r#"<meta property="article:published_time" content="20"#,
    ] {
        assert!(page.contains(meta), "{meta}");
    }
    assert!(page.contains(&format!(
        r#"<link rel="canonical" href="{}">"#,
        app.state.absolute("/posts/shared-widely")
    )));
}

#[tokio::test]
async fn a_post_with_comments_closed_refuses_a_comment_with_403_and_stores_nothing() {
    let app = TestApp::spawn().await;
    let (http, csrf) = admin(&app).await;
    let mut form = fields("Quiet please", &[]);
    form.retain(|(n, _)| *n != "comments_open");
    create(&app, &http, &csrf, &form).await;
    let page = app.get_text("/posts/quiet-please").await;
    assert!(page.contains("Comments are closed."));
    assert!(!page.contains("form_token"));
    // A token from an open post, as a bot would reuse one.
    let token = app.form_token(WELCOME).await;
    let before = app.comment_count().await;
    let response = app
        .comment_with_token(
            "quiet-please",
            &token,
            &[
                ("name", "Late"),
                ("email", "late@example.com"),
                ("body", "Let me in"),
            ],
        )
        .await;
    assert_eq!(response.status(), 403);
    assert_eq!(app.comment_count().await, before);
}

#[tokio::test]
async fn comments_close_after_the_configured_number_of_days() {
    let app = TestApp::spawn().await;
    publish(&app, "---\ntitle: Aging\n---\ntext\n").await;
    app.state
        .db
        .write(|conn| {
            lectern::site::DiscussionSettings {
                close_after_days: Some(2),
                ..lectern::site::DiscussionSettings::default()
            }
            .save(conn)
        })
        .await
        .unwrap();
    let token = app.form_token("aging").await;
    app.advance(3 * 24 * 3600);
    let before = app.comment_count().await;
    let response = app
        .comment_with_token(
            "aging",
            &token,
            &[
                ("name", "Late"),
                ("email", "late@example.com"),
                ("body", "Three days on"),
            ],
        )
        .await;
    assert_eq!(response.status(), 403);
    assert_eq!(app.comment_count().await, before);
    let page = app.get_text("/posts/aging").await;
    assert!(page.contains("Comments are closed."));
    assert!(!page.contains("form_token"));
}

#[tokio::test]
async fn an_authors_page_lists_only_their_published_posts() {
    let app = TestApp::spawn().await;
    let (http, csrf) = admin(&app).await;
    let writer = app
        .create_user("writer@example.com", "Wendy Writer", "moderator", PASSWORD)
        .await
        .to_string();
    let soon = local_in(&app, 3600, chrono_tz::UTC);
    for (title, status, publish_at, author) in [
        ("Wendy live", "published", "", writer.as_str()),
        ("Wendy draft", "draft", "", writer.as_str()),
        ("Wendy soon", "scheduled", soon.as_str(), writer.as_str()),
        ("Someone else", "published", "", ""),
    ] {
        let mut form = fields(title, &[("status", status), ("publish_at", publish_at)]);
        if !author.is_empty() {
            form.push(("author", author));
        }
        create(&app, &http, &csrf, &form).await;
    }
    let page = app.get("/authors/wendy-writer").await;
    assert_eq!(page.status(), 200);
    let page = page.text().await.unwrap();
    assert!(page.contains("Posts by Wendy Writer"));
    assert!(page.contains("Wendy live"));
    for absent in ["Wendy draft", "Wendy soon", "Someone else"] {
        assert!(!page.contains(absent), "{absent}");
    }
    assert!(
        app.get_text("/posts/wendy-live")
            .await
            .contains("/authors/wendy-writer")
    );
}

#[tokio::test]
async fn a_moderator_is_refused_every_posts_page_and_action() {
    let app = TestApp::spawn().await;
    let (admin_http, admin_csrf) = admin(&app).await;
    let id = create(&app, &admin_http, &admin_csrf, &fields("Admins only", &[])).await;
    let http = app.staff_client("moderator").await;
    let csrf = app.csrf(&http).await;
    let before = (post_count(&app).await, stored(&app, id).await);
    let routes: Vec<_> = lectern::startup::admin_routes()
        .into_iter()
        .filter(|(_, path, _)| path.starts_with("/posts"))
        .collect();
    assert_eq!(
        routes.len(),
        8,
        "list, new ×2, edit ×2, preview, trash, restore"
    );
    for (method, path, _) in routes {
        let url = app.url(&format!("/admin{}", path.replace("{id}", &id.to_string())));
        let response = if method == actix_web::http::Method::GET {
            http.get(&url).send().await.unwrap()
        } else {
            let mut form = fields("Hijacked", &[]);
            form.push(("csrf_token", &csrf));
            http.post(&url).form(&form).send().await.unwrap()
        };
        assert_eq!(response.status(), 403, "{method} {path}");
    }
    assert_eq!((post_count(&app).await, stored(&app, id).await), before);
    // And the nav does not offer what they cannot open.
    let dashboard = http
        .get(app.url("/admin"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!dashboard.contains(r#"href="/admin/posts""#));
}

#[tokio::test]
async fn republishing_a_file_updates_its_tags_and_its_date() {
    let app = TestApp::spawn().await;
    publish(
        &app,
        "---\ntitle: Round trip\ntags: [first]\ndate: 2024-01-05\n---\nv1\n",
    )
    .await;
    assert!(app.get_text("/tags/first").await.contains("Round trip"));
    publish(
        &app,
        "---\ntitle: Round trip\ntags: [second, third]\ndate: \"2999-02-01T10:00:00Z\"\n---\nv2\n",
    )
    .await;
    let (status, published_at): (String, chrono::NaiveDateTime) = app
        .db(|conn| {
            Ok(posts::table
                .filter(posts::slug.eq("round-trip"))
                .select((posts::status, posts::published_at))
                .first(conn)?)
        })
        .await;
    assert_eq!(status, "scheduled");
    assert_eq!(published_at.to_string(), "2999-02-01 10:00:00");
    let tags = app
        .db(|conn| {
            let post = lectern::posts::queries::find_by_slug(conn, "round-trip")?.unwrap();
            lectern::posts::queries::tags_for_posts(conn, &[post.id])
        })
        .await
        .into_values()
        .flatten()
        .map(|t| t.slug)
        .collect::<Vec<_>>();
    assert_eq!(tags, ["second", "third"]);
    assert!(!app.get_text("/tags/first").await.contains("Round trip"));
    assert_eq!(
        app.get("/posts/round-trip").await.status(),
        404,
        "scheduled now"
    );
}
