//! The reader's experience (#14): preview without JavaScript, editing and deleting one's own
//! comment within the window, never stranding a reader (422, 429, 409, bot signals), and staff
//! on the public side.

use crate::common::{
    PASSWORD, TestApp, WELCOME, client, comment_id_from, hidden_value, settings_form,
};

const POST: &str = "/posts/welcome-to-lectern";
const SUBMIT: &str = "/posts/welcome-to-lectern/comments";

fn reader(body: &str) -> Vec<(&str, &str)> {
    vec![
        ("name", "Rita Reader"),
        ("email", "rita@example.com"),
        ("body", body),
    ]
}

/// The returning commenter of the welcome post: approved at once.
fn returning(body: &str) -> Vec<(&str, &str)> {
    vec![
        ("name", "A lectern Commenter"),
        ("email", "commenter@lectern.invalid"),
        ("body", body),
    ]
}

async fn approved_comment(app: &TestApp, body: &str) -> i32 {
    app.advance(60);
    let response = app.comment(WELCOME, &returning(body)).await;
    assert_eq!(response.status(), 303);
    let id = comment_id_from(&response);
    assert_eq!(app.stored_comment(id).await.0, "approved");
    id
}

#[tokio::test]
async fn the_form_posts_to_its_own_anchor_and_offers_a_preview_button() {
    let app = TestApp::spawn().await;
    let page = app.get_text(POST).await;
    assert!(page.contains(&format!(r#"action="{SUBMIT}#respond""#)));
    assert!(page.contains(r#"name="preview""#));
    assert!(page.contains(r#"id="respond""#));
}

#[tokio::test]
async fn preview_renders_the_comment_above_the_form_stores_nothing_and_counts_against_no_limit() {
    let app = TestApp::spawn().await;
    let before = app.comment_count().await;
    let token = app.form_token(WELCOME).await;
    let mut form = reader("Hello **world** <script>x</script>");
    form.push(("form_token", &token));
    form.push(("preview", ""));
    for _ in 0..3 {
        let response = app.post_form(SUBMIT, &form).await;
        assert_eq!(response.status(), 200);
        let page = response.text().await.unwrap();
        let preview = page
            .find("Preview of your comment")
            .expect("a preview block");
        let form_at = page.find(r#"class="comment-form""#).unwrap();
        assert!(preview < form_at, "the preview is above the form");
        assert!(page.contains("Hello <strong>world</strong> &lt;script&gt;x&lt;/script&gt;"));
        // The input is kept.
        assert!(page.contains(">Hello **world** &#60;script&#62;x&#60;/script&#62;</textarea>"));
        assert!(page.contains(r#"value="Rita Reader""#));
    }
    assert_eq!(app.comment_count().await, before, "nothing stored");
    // Previews counted against no flood limit: the real comment goes through at once.
    form.retain(|(k, _)| *k != "preview");
    let response = app.post_form(SUBMIT, &form).await;
    assert_eq!(response.status(), 303);
}

#[tokio::test]
async fn preview_works_for_replies() {
    let app = TestApp::spawn().await;
    let parent = approved_comment(&app, "A parent").await;
    let parent_text = parent.to_string();
    let token = app.form_token(WELCOME).await;
    let mut form = reader("My _reply_");
    form.push(("form_token", &token));
    form.push(("parent_id", &parent_text));
    form.push(("preview", "1"));
    let page = app.post_form(SUBMIT, &form).await.text().await.unwrap();
    assert!(page.contains("My <em>reply</em>"));
    assert!(page.contains("Reply to A lectern Commenter"));
    assert!(page.contains(&format!(r#"name="parent_id" value="{parent}""#)));
}

#[tokio::test]
async fn a_rejected_comment_opens_with_an_error_summary_linking_to_the_fields() {
    let app = TestApp::spawn().await;
    let token = app.form_token(WELCOME).await;
    let response = app
        .post_form(
            SUBMIT,
            &[
                ("form_token", token.as_str()),
                ("name", "Rita"),
                ("email", "not-an-address"),
                ("body", ""),
            ],
        )
        .await;
    assert_eq!(response.status(), 422);
    let page = response.text().await.unwrap();
    let summary = page.find(r#"class="error-summary""#).expect("a summary");
    assert!(summary < page.find(r#"class="comment-form""#).unwrap());
    assert!(page.contains(r##"<a href="#comment">Please type your comment.</a>"##));
    assert!(page.contains(r##"<a href="#email">Please enter a valid email address.</a>"##));
    // The first invalid field in the form's order is focused and described.
    let textarea = &page[page.find("<textarea").unwrap()..page.find("</textarea>").unwrap()];
    assert!(textarea.contains("autofocus"));
    assert!(textarea.contains(r#"aria-invalid="true""#));
    assert!(textarea.contains("body-error"));
    assert_eq!(page.matches("autofocus").count(), 1);
    assert!(page.contains(r#"aria-describedby="email-error""#));
}

#[tokio::test]
async fn a_flooded_comment_is_shown_again_with_the_input_kept_and_the_wait() {
    let app = TestApp::spawn().await;
    let first = app.comment(WELCOME, &reader("One")).await;
    assert_eq!(first.status(), 303);
    let token = app.form_token(WELCOME).await;
    let mut form = reader("Two, typed carefully");
    form.push(("form_token", &token));
    let response = app.post_form(SUBMIT, &form).await;
    assert_eq!(response.status(), 429);
    let wait: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(wait >= 1);
    let page = response.text().await.unwrap();
    assert!(page.contains(&format!("Please wait {wait} second")));
    assert!(page.contains(">Two, typed carefully</textarea>"));
    assert!(page.contains(r#"class="comment-form""#));
}

#[tokio::test]
async fn the_heading_never_says_no_comments_above_the_readers_own_waiting_comment() {
    let app = TestApp::spawn().await;
    // A post of its own, with no comments.
    let admin_id = app
        .create_user("ed@example.com", "Ed", "admin", PASSWORD)
        .await
        .to_string();
    let admin = app.login_client("ed@example.com", PASSWORD).await;
    let response = app
        .staff_post(
            &admin,
            "/admin/posts/new",
            &[
                ("title", "Quiet post"),
                ("body", "Nothing yet."),
                ("kind", "post"),
                ("status", "published"),
                ("author", &admin_id),
                ("comments_open", "1"),
            ],
        )
        .await;
    assert_eq!(response.status(), 303);
    assert!(
        app.get_text("/posts/quiet-post")
            .await
            .contains("No comments yet")
    );
    let response = app.comment("quiet-post", &reader("First!")).await;
    assert_eq!(response.status(), 303);
    let page = app.get_text("/posts/quiet-post").await;
    assert!(page.contains("Your comment is awaiting moderation."));
    assert!(!page.contains("No comments yet"));
}

#[tokio::test]
async fn a_commenter_edits_their_comment_within_the_window_and_moderators_see_the_old_text() {
    let app = TestApp::spawn().await;
    let id = approved_comment(&app, "Original words").await;
    let page = app.get_text(POST).await;
    assert!(page.contains(&format!(r#"href="/comments/{id}/edit""#)));
    assert!(page.contains(&format!(r#"action="/comments/{id}/delete""#)));
    // Strangers see neither, and their page stays cacheable.
    let stranger = client().get(app.url(POST)).send().await.unwrap();
    assert_eq!(stranger.headers()["cache-control"], "no-cache");
    let stranger = stranger.text().await.unwrap();
    assert!(!stranger.contains("/edit\""));
    assert_eq!(
        client()
            .get(app.url(&format!("/comments/{id}/edit")))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );

    let edit_page = app.get(&format!("/comments/{id}/edit")).await;
    assert_eq!(edit_page.status(), 200);
    assert_eq!(edit_page.headers()["cache-control"], "private, no-store");
    let edit_page = edit_page.text().await.unwrap();
    assert!(edit_page.contains(">Original words</textarea>"));
    let token = hidden_value(&edit_page, "token").unwrap();

    // A forged token changes nothing.
    let forged = app
        .post_form(
            &format!("/comments/{id}/edit"),
            &[("token", "x"), ("body", "Hijacked")],
        )
        .await;
    assert_eq!(forged.status(), 403);

    let preview = app
        .post_form(
            &format!("/comments/{id}/edit"),
            &[("token", &token), ("body", "New *words*"), ("preview", "1")],
        )
        .await;
    assert_eq!(preview.status(), 200);
    assert!(preview.text().await.unwrap().contains("New <em>words</em>"));
    assert_eq!(app.stored_comment(id).await.2, "Original words");

    let saved = app
        .post_form(
            &format!("/comments/{id}/edit"),
            &[("token", &token), ("body", "New *words*")],
        )
        .await;
    assert_eq!(saved.status(), 303);
    assert_eq!(
        saved.headers()["location"],
        format!("{POST}#comment-{id}").as_str()
    );
    assert_eq!(app.stored_comment(id).await.0, "approved");
    let public = client()
        .get(app.url(POST))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        public.contains("New <em>words</em>"),
        "the thread version moved"
    );
    assert!(!public.contains("Original words"));

    let moderator = app.staff_client("moderator").await;
    let audit = app.get_text_as(&moderator, "/admin/audit").await;
    assert!(audit.contains("previous text: Original words"));
    let queue = app
        .get_text_as(&moderator, "/admin/comments?status=approved")
        .await;
    assert!(queue.contains("Edited by its author"));
    assert!(queue.contains("Original words"));
}

#[tokio::test]
async fn an_edit_that_adds_links_sends_an_approved_comment_back_to_pending_with_the_reason() {
    let app = TestApp::spawn().await;
    let id = approved_comment(&app, "Plain").await;
    let page = app.get_text(&format!("/comments/{id}/edit")).await;
    let token = hidden_value(&page, "token").unwrap();
    let saved = app
        .post_form(
            &format!("/comments/{id}/edit"),
            &[
                ("token", &token),
                ("body", "See https://a.example and https://b.example"),
            ],
        )
        .await;
    assert_eq!(saved.status(), 303);
    let (status, reason, _) = app.stored_comment(id).await;
    assert_eq!(status, "pending");
    assert_eq!(
        reason.as_deref(),
        Some("edited by its author: 2 links (hold at 2 or more)")
    );
    // Its author still sees it, awaiting moderation.
    let mine = app.get_text(POST).await;
    assert!(mine.contains("Your comment is awaiting moderation."));
    assert!(mine.contains("https://b.example"));
}

#[tokio::test]
async fn editing_is_refused_after_the_window_and_when_turned_off() {
    let app = TestApp::spawn().await;
    let id = approved_comment(&app, "Soon frozen").await;
    let page = app.get_text(&format!("/comments/{id}/edit")).await;
    let token = hidden_value(&page, "token").unwrap();
    app.advance(15 * 60 + 1);
    assert_eq!(app.get(&format!("/comments/{id}/edit")).await.status(), 403);
    let late = app
        .post_form(
            &format!("/comments/{id}/edit"),
            &[("token", &token), ("body", "Too late")],
        )
        .await;
    assert_eq!(late.status(), 403);
    assert_eq!(app.stored_comment(id).await.2, "Soon frozen");
    assert!(
        !app.get_text(POST)
            .await
            .contains(&format!("/comments/{id}/edit"))
    );

    let admin = app.staff_client("admin").await;
    let saved = app
        .staff_post(
            &admin,
            "/admin/settings",
            &settings_form(&[("edit_window_minutes", "0")]),
        )
        .await;
    assert_eq!(saved.status(), 303);
    // With editing off, an approved comment is not even named by the cookie.
    let id = approved_comment(&app, "Never editable").await;
    assert_eq!(app.get(&format!("/comments/{id}/edit")).await.status(), 404);
    assert!(
        !app.get_text(POST)
            .await
            .contains(&format!("/comments/{id}/edit"))
    );
}

#[tokio::test]
async fn deleting_a_comment_with_approved_replies_leaves_the_placeholder() {
    let app = TestApp::spawn().await;
    let id = approved_comment(&app, "Doomed words").await;
    let page = app.get_text(&format!("/comments/{id}/edit")).await;
    let token = hidden_value(&page, "token").unwrap();
    let admin = app.staff_client("admin").await;
    let reply = app
        .staff_post(
            &admin,
            &format!("/admin/comments/{id}/reply"),
            &[("body", "A staff reply")],
        )
        .await;
    assert_eq!(reply.status(), 303);
    let deleted = app
        .post_form(&format!("/comments/{id}/delete"), &[("token", &token)])
        .await;
    assert_eq!(deleted.status(), 303);
    let public = app.get_text_as(&client(), POST).await;
    assert!(public.contains("This comment was removed."));
    assert!(public.contains("A staff reply"));
    assert!(!public.contains("Doomed words"));
}

#[tokio::test]
async fn staff_see_their_name_instead_of_the_fields_and_controls_on_comments_privately() {
    let app = TestApp::spawn().await;
    let admin = app.staff_client("admin").await;
    let response = admin.get(app.url(POST)).send().await.unwrap();
    assert_eq!(response.headers()["cache-control"], "private, no-store");
    let page = response.text().await.unwrap();
    assert!(page.contains("Logged in as Test admin."));
    assert!(page.contains("Log out?"));
    assert!(!page.contains(r#"name="email""#));
    assert!(page.contains("Edit post"));
    assert!(page.contains("/spam\" method=\"post\""));
    assert!(page.contains(r#"name="csrf_token""#));

    // A reader right after sees the ordinary page, from the shared cache.
    let reader_page = client().get(app.url(POST)).send().await.unwrap();
    assert_eq!(reader_page.headers()["cache-control"], "no-cache");
    let reader_page = reader_page.text().await.unwrap();
    assert!(!reader_page.contains("Logged in as"));
    assert!(!reader_page.contains("csrf_token"));
    let again = client()
        .get(app.url(POST))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        !again.contains("csrf_token"),
        "the staff rendering was never kept"
    );

    // A moderator comments from the public form without name or email: published at once.
    let moderator = app.staff_client("moderator").await;
    let page = app.get_text_as(&moderator, POST).await;
    assert!(!page.contains("Edit post"), "only admins edit posts");
    let token = hidden_value(&page, "form_token").unwrap();
    app.advance(5);
    let response = moderator
        .post(app.url(SUBMIT))
        .form(&[("form_token", token.as_str()), ("body", "Staff here")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    let id = comment_id_from(&response);
    assert_eq!(app.stored_comment(id).await.0, "approved");
    // Staff act on it from the thread and come back to the post.
    let spam = app
        .staff_post(
            &admin,
            &format!("/admin/comments/{id}/spam"),
            &[("back", &format!("{POST}#comments"))],
        )
        .await;
    assert_eq!(spam.status(), 303);
    assert_eq!(
        spam.headers()["location"],
        format!("{POST}#comments").as_str()
    );
    assert_eq!(app.stored_comment(id).await.0, "spam");
}

#[tokio::test]
async fn an_admin_sets_the_site_identity_and_every_page_follows() {
    let app = TestApp::spawn().await;
    let admin = app.staff_client("admin").await;
    let moderator = app.staff_client("moderator").await;
    assert!(
        !app.get_text_as(&moderator, "/admin/site")
            .await
            .contains("Site identity")
    );
    let refused = app
        .staff_post(&moderator, "/admin/site", &[("title", "Mine")])
        .await;
    assert_eq!(refused.status(), 403);

    let bad = app
        .staff_post(
            &admin,
            "/admin/site",
            &[("title", "Garden Diary"), ("menu", "About /pages/about")],
        )
        .await;
    assert_eq!(bad.status(), 422);
    assert!(bad.text().await.unwrap().contains("Label | /address"));
    assert!(
        app.get_text("/")
            .await
            .contains("<h1 class=\"listing-heading\">lectern</h1>")
    );

    let saved = app
        .staff_post(
            &admin,
            "/admin/site",
            &[
                ("title", "Garden Diary"),
                ("tagline", "Notes from a small garden"),
                (
                    "menu",
                    "About | /pages/about\nSource | https://example.com/code",
                ),
                ("footer", "Grown in Lisbon"),
                ("accent", "#2A7"),
                ("custom_css", "body { letter-spacing: 0.01em; }"),
            ],
        )
        .await;
    assert_eq!(saved.status(), 303);

    let home = app.get_text("/").await;
    assert!(home.contains("<h1 class=\"listing-heading\">Garden Diary</h1>"));
    assert!(home.contains(r#"<meta name="description" content="Notes from a small garden">"#));
    assert!(home.contains(r#"<a href="/pages/about">About</a>"#));
    assert!(home.contains(r#"<a href="https://example.com/code">Source</a>"#));
    assert!(home.contains("Grown in Lisbon"));
    assert!(home.contains("<title>Garden Diary</title>"));
    let start = home
        .find("/static/site-")
        .expect("the site stylesheet is linked");
    let href = &home[start..start + home[start..].find('"').unwrap()];
    let css = app.get(href).await;
    assert_eq!(css.status(), 200);
    assert_eq!(
        css.headers()["cache-control"],
        "public, max-age=31536000, immutable"
    );
    let css = css.text().await.unwrap();
    assert!(css.contains("--accent: #22aa77"));
    assert!(css.contains("letter-spacing: 0.01em"));
    assert_eq!(
        app.get("/static/site-0000000000000000.css").await.status(),
        404
    );

    let post = app.get_text(POST).await;
    assert!(post.contains("– Garden Diary</title>"));
    assert!(
        !post.contains("href=\"/admin/login\""),
        "no footer login link by default"
    );
    let audit = app.get_text_as(&admin, "/admin/audit").await;
    assert!(audit.contains("site-update"));
    assert!(audit.contains("title: “lectern” → “Garden Diary”"));

    // The footer's "Log in" link is a setting, off until an admin turns it on.
    let form = app.get_text_as(&admin, "/admin/site").await;
    assert!(!form.contains("name=\"login_link\" type=\"checkbox\" value=\"1\" checked"));
    let saved = app
        .staff_post(
            &admin,
            "/admin/site",
            &[
                ("title", "Garden Diary"),
                ("tagline", "Notes from a small garden"),
                ("footer", "Grown in Lisbon"),
                ("login_link", "1"),
            ],
        )
        .await;
    assert_eq!(saved.status(), 303);
    let post = app.get_text(POST).await;
    assert!(post.contains(r#"<a href="/admin/login" rel="nofollow">Log in</a>"#));
    let audit = app.get_text_as(&admin, "/admin/audit").await;
    assert!(audit.contains("footer “Log in” link: “hidden” → “shown”"));
}

#[tokio::test]
async fn every_public_page_has_a_description_and_the_favicon_is_answered() {
    let app = TestApp::spawn().await;
    for path in [
        "/",
        POST,
        "/authors/lectern",
        "/search?q=welcome",
        "/privacy",
        "/my-comments",
    ] {
        let page = app.get_text(path).await;
        assert!(
            page.contains(r#"<meta name="description" content=""#),
            "{path}"
        );
        assert!(
            page.contains(r#"<link rel="icon" href="/static/favicon."#),
            "{path}"
        );
    }
    for (path, cache) in [
        ("/favicon.ico", "public, max-age=86400"),
        ("/static/favicon.svg", "public, max-age=3600"),
    ] {
        let icon = app.get(path).await;
        assert_eq!(icon.status(), 200);
        assert_eq!(icon.headers()["content-type"], "image/svg+xml");
        assert_eq!(icon.headers()["cache-control"], cache);
    }
}
