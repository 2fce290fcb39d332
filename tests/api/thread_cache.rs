//! A post's rendered thread is kept between requests (`posts::thread_cache`). These tests make
//! sure no reader ever sees a stale or someone else's thread, whatever changed the comments and
//! whichever server changed them.

use crate::common::{TestApp, WELCOME, client, comment_id_from, settings_form};

/// The post as an anonymous reader sees it: a client without cookies.
async fn public_page(app: &TestApp) -> String {
    public_page_at(app, &format!("/posts/{WELCOME}")).await
}

async fn public_page_at(app: &TestApp, path: &str) -> String {
    let response = client().get(app.url(path)).send().await.unwrap();
    assert_eq!(response.status(), 200, "GET {path}");
    response.text().await.unwrap()
}

fn cached_threads(app: &TestApp) -> usize {
    app.state.thread_cache.usage().0
}

/// A pending comment by `name`, from a browser of its own (which keeps its pending cookie).
async fn pending_comment(app: &TestApp, name: &str, body: &str) -> (reqwest::Client, i32) {
    let reader = client();
    let email = format!("{}@example.com", name.replace(' ', "."));
    let fields = [("name", name), ("email", email.as_str()), ("body", body)];
    let response = app.comment_as(&reader, WELCOME, &fields).await;
    assert_eq!(response.status(), 303);
    (reader, comment_id_from(&response))
}

async fn act(app: &TestApp, http: &reqwest::Client, id: i32, action: &str) {
    let path = format!("/admin/comments/{id}/{action}");
    let response = app.staff_post(http, &path, &[]).await;
    assert_eq!(response.status(), 303, "{action}");
}

#[tokio::test]
async fn the_thread_is_rendered_once_and_kept_for_the_next_reader() {
    let app = TestApp::spawn().await;
    assert_eq!(cached_threads(&app), 0);
    let first = public_page(&app).await;
    assert!(first.contains("A lectern Commenter"));
    assert_eq!(cached_threads(&app), 1);
    let second = public_page(&app).await;
    assert_eq!(cached_threads(&app), 1);
    // Identical but for the form token, which is issued per page view.
    let without_token = |page: &str| {
        let at = page.find(r#"name="form_token" value=""#).unwrap();
        let end = at + page[at..].find('>').unwrap();
        format!("{}{}", &page[..at], &page[end..])
    };
    assert_eq!(without_token(&first), without_token(&second));
}

#[tokio::test]
async fn edits_replies_and_removals_show_on_the_next_page_view() {
    let app = TestApp::spawn().await;
    let http = app.staff_client("moderator").await;
    public_page(&app).await;

    let (_, id) = pending_comment(&app, "Pat Pending", "A thought worth approving").await;
    assert!(!public_page(&app).await.contains("Pat Pending"));
    act(&app, &http, id, "approve").await;
    assert!(
        public_page(&app)
            .await
            .contains("A thought worth approving")
    );

    let edit = format!("/admin/comments/{id}/edit");
    let fields = [
        ("name", "Pat Edited"),
        ("email", "pat@example.com"),
        ("website", "https://pat.example"),
        ("body", "A thought, edited"),
    ];
    assert_eq!(app.staff_post(&http, &edit, &fields).await.status(), 303);
    let page = public_page(&app).await;
    assert!(page.contains("A thought, edited"));
    assert!(page.contains(r#"href="https://pat.example""#));
    assert!(!page.contains("Pat Pending"));

    let reply = format!("/admin/comments/{id}/reply");
    let response = app
        .staff_post(&http, &reply, &[("body", "Thanks, Pat!")])
        .await;
    assert_eq!(response.status(), 303);
    let page = public_page(&app).await;
    assert!(page.contains("Thanks, Pat!"));
    assert!(page.contains(r#"<span class="badge">Staff</span>"#));

    // The parent goes; its approved reply keeps its place under a placeholder.
    act(&app, &http, id, "spam").await;
    let page = public_page(&app).await;
    assert!(!page.contains("A thought, edited"));
    assert!(page.contains("This comment was removed."));
    assert!(page.contains("Thanks, Pat!"));
    act(&app, &http, id, "delete").await;
    let page = public_page(&app).await;
    assert!(page.contains("This comment was removed."));
    assert!(page.contains("Thanks, Pat!"));

    // Old renderings of the thread are dropped, not kept beside the new one.
    assert_eq!(cached_threads(&app), 1);
}

#[tokio::test]
async fn thread_settings_show_on_the_next_page_view() {
    let app = TestApp::spawn().await;
    let admin = app.staff_client("admin").await;
    let reply = app
        .staff_post(
            &admin,
            "/admin/comments/1/reply",
            &[("body", "A nested reply")],
        )
        .await;
    assert_eq!(reply.status(), 303);
    let page = public_page(&app).await;
    assert!(page.contains(r#"<ol class="children">"#));
    assert!(page.contains("comment depth-2"));

    let save = |changes: &'static [(&'static str, &'static str)]| {
        let (app, admin) = (&app, admin.clone());
        async move {
            let response = app
                .staff_post(&admin, "/admin/settings", &settings_form(changes))
                .await;
            assert_eq!(response.status(), 303, "settings {changes:?}");
        }
    };
    save(&[("thread_depth", "1")]).await;
    let page = public_page(&app).await;
    assert!(!page.contains(r#"<ol class="children">"#));
    assert!(!page.contains("comment depth-2"));

    let (_, newer) = pending_comment(&app, "Nora Newer", "A later top-level comment").await;
    act(&app, &admin, newer, "approve").await;
    let page = public_page(&app).await;
    let position = |text: &str| page.find(text).unwrap();
    assert!(position("A lectern Commenter") < position("Nora Newer"));
    save(&[("thread_depth", "1"), ("comment_order", "newest")]).await;
    let page = public_page(&app).await;
    let position = |text: &str| page.find(text).unwrap();
    assert!(position("Nora Newer") < position("A lectern Commenter"));

    save(&[("thread_depth", "1"), ("comments_per_page", "1")]).await;
    let page = public_page(&app).await;
    assert!(page.contains("Comment page 1 of 2"));
    assert!(!page.contains("Nora Newer"));
    let page = public_page_at(&app, &format!("/posts/{WELCOME}?cpage=2")).await;
    assert!(page.contains("Comment page 2 of 2"));
    assert!(page.contains("Nora Newer"));
}

#[tokio::test]
async fn reply_links_go_when_comments_close_with_age() {
    let app = TestApp::spawn().await;
    let admin = app.staff_client("admin").await;
    let page = public_page(&app).await;
    assert!(page.contains(r#"class="comment-reply-link""#));
    let response = app
        .staff_post(
            &admin,
            "/admin/settings",
            &settings_form(&[("close_after_days", "14")]),
        )
        .await;
    assert_eq!(response.status(), 303);
    assert!(public_page(&app).await.contains("comment-reply-link"));
    // Nothing about the comments changed; only time passed.
    app.advance(15 * 86_400);
    let page = public_page(&app).await;
    assert!(page.contains("Comments are closed."));
    assert!(!page.contains("comment-reply-link"));
}

#[tokio::test]
async fn a_change_made_outside_lectern_shows_too() {
    use diesel::prelude::*;
    use lectern::db::schema::comments;
    let app = TestApp::spawn().await;
    assert!(public_page(&app).await.contains("A lectern Commenter"));
    // As a database console or another program would: the triggers still move the version.
    app.state
        .db
        .write(|conn| -> Result<usize, lectern::db::DbError> {
            Ok(diesel::update(comments::table.find(1))
                .set(comments::author_name.eq("Renamed by hand"))
                .execute(conn)?)
        })
        .await
        .unwrap();
    let page = public_page(&app).await;
    assert!(page.contains("Renamed by hand"));
    assert!(!page.contains("A lectern Commenter"));
}

#[tokio::test]
async fn kept_pages_outlive_commits_that_change_nothing_a_reader_sees() {
    let app = TestApp::spawn().await;
    let (hits, misses) = (
        "lectern_page_cache_hits_total",
        "lectern_page_cache_misses_total",
    );
    public_page(&app).await;
    // A held comment commits the comment, its moderation mail and the flood counters: nothing
    // an anonymous reader sees.
    let (_, id) = pending_comment(&app, "Quiet Quinn", "Held for a moment").await;
    let before = app.metric(hits).await.unwrap();
    assert!(!public_page(&app).await.contains("Held for a moment"));
    // On PostgreSQL a notification of an earlier write may still be on its way.
    if app.database_url.starts_with("sqlite") {
        assert_eq!(
            app.metric(hits).await.unwrap() - before,
            1.0,
            "served as kept"
        );
    }
    // Its approval is something readers see: the next view makes the page again.
    let http = app.staff_client("moderator").await;
    act(&app, &http, id, "approve").await;
    let before = app.metric(misses).await.unwrap();
    assert!(public_page(&app).await.contains("Held for a moment"));
    assert_eq!(
        app.metric(misses).await.unwrap() - before,
        1.0,
        "made again"
    );
}

#[tokio::test]
async fn a_readers_own_pending_comment_is_shown_to_them_alone_whoever_comes_first() {
    let app = TestApp::spawn().await;
    public_page(&app).await;
    let (reader, _) = pending_comment(&app, "Rita Reader", "My own words, pending").await;
    let path = app.url(&format!("/posts/{WELCOME}"));
    for _ in 0..2 {
        let mine = reader.get(&path).send().await.unwrap();
        assert_eq!(
            mine.headers()["cache-control"],
            "private, no-store",
            "a page with the reader's own comment is never stored"
        );
        let mine = mine.text().await.unwrap();
        assert!(mine.contains("My own words, pending"));
        assert!(mine.contains("Your comment is awaiting moderation."));
        let stranger = public_page(&app).await;
        assert!(!stranger.contains("My own words, pending"));
        assert!(!stranger.contains(r#"class="awaiting-moderation""#));
    }
}

#[tokio::test]
async fn reply_to_names_a_comment_from_the_kept_thread_and_ignores_others() {
    let app = TestApp::spawn().await;
    public_page(&app).await;
    let page = public_page_at(&app, &format!("/posts/{WELCOME}?replytocom=1")).await;
    assert!(page.contains("Reply to A lectern Commenter"));
    assert!(page.contains(r#"<input type="hidden" name="parent_id" value="1">"#));
    let (_, pending) = pending_comment(&app, "Hidden Hal", "Not approved yet").await;
    let page = public_page_at(&app, &format!("/posts/{WELCOME}?replytocom={pending}")).await;
    assert!(page.contains("Leave a Reply"));
    assert!(!page.contains("Hidden Hal"));
    assert!(!page.contains(r#"name="parent_id""#));
}

#[tokio::test]
async fn two_servers_on_one_database_never_serve_each_other_a_stale_thread() {
    let a = TestApp::spawn().await;
    let dir = a.test_db.as_ref().unwrap().dir.path().to_path_buf();
    let b = TestApp::spawn_on(&a.database_url, &dir, &[]).await;
    assert!(public_page(&a).await.contains("A lectern Commenter"));
    assert!(public_page(&b).await.contains("A lectern Commenter"));

    let (_, id) = pending_comment(&a, "Sam Shared", "Seen by both servers").await;
    let http = b.staff_client("moderator").await;
    act(&b, &http, id, "approve").await;
    assert!(public_page(&a).await.contains("Seen by both servers"));
    act(&b, &http, id, "trash").await;
    assert!(!public_page(&a).await.contains("Seen by both servers"));
    b.stop().await;
}
