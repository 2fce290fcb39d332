//! The reader's experience in a real browser (#14): preview, editing within the window and
//! being refused after it, a refused comment landing on the form with focus, a fast submission
//! shown as awaiting moderation, and a moderator's view of a post.
//!
//! Needs Debian's `chromium` and `chromium-driver`, like `browser.rs`; skipped without them
//! except in CI.

use fantoccini::{Client, Locator};

use crate::browser::{
    browser, click, eventually, fill, find_chromedriver, page_containing, start_driver,
};
use crate::common::{PASSWORD, TestApp, WELCOME};

fn driver_or_skip() -> Option<std::path::PathBuf> {
    let found = find_chromedriver();
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must run the browser test: install chromium and chromium-driver"
        );
        eprintln!("SKIPPED browser test: chromedriver not found");
    }
    found
}

async fn script(client: &Client, js: &str) -> String {
    client
        .execute(js, vec![])
        .await
        .unwrap()
        .as_str()
        .unwrap_or_default()
        .to_string()
}

async fn current_url(client: &Client) -> String {
    client.current_url().await.unwrap().to_string()
}

#[tokio::test]
async fn a_reader_previews_posts_edits_within_the_window_and_is_refused_after_it() {
    let Some(chromedriver) = driver_or_skip() else {
        return;
    };
    let app = TestApp::spawn().await;
    let driver = start_driver(&chromedriver);
    let profiles = tempfile::tempdir().unwrap();
    let reader = browser(&driver, &profiles.path().join("reader")).await;
    let post = app.url(&format!("/posts/{WELCOME}"));

    reader.goto(&post).await.unwrap();
    fill(&reader, "#comment", "Hello *previewed* world").await;
    fill(&reader, "#author", "Paula Preview").await;
    fill(&reader, "#email", "paula@example.com").await;
    click(&reader, "button[name=preview]").await;
    let page = page_containing(&reader, "Preview of your comment").await;
    assert!(page.contains("Hello <em>previewed</em> world"));
    assert!(current_url(&reader).await.ends_with("#respond"));
    assert_eq!(
        script(&reader, "return document.getElementById('comment').value").await,
        "Hello *previewed* world",
        "the input is kept"
    );

    app.advance(5);
    click(&reader, ".comment-form button[type=submit]").await;
    page_containing(&reader, "Your comment is awaiting moderation.").await;
    click(&reader, ".own-comment-actions a").await;
    page_containing(&reader, "Edit your comment").await;
    reader
        .find(Locator::Css("#comment"))
        .await
        .unwrap()
        .clear()
        .await
        .unwrap();
    fill(&reader, "#comment", "Hello **edited** world").await;
    click(&reader, ".comment-edit .comment-form button[type=submit]").await;
    let page = page_containing(&reader, "Hello <strong>edited</strong> world").await;
    assert!(page.contains("Your comment is awaiting moderation."));
    let edit_href = {
        let end = page.find("/edit\"").unwrap() + "/edit".len();
        let start = page[..end].rfind("\"").unwrap() + 1;
        page[start..end].to_string()
    };
    assert!(edit_href.ends_with("/edit"));

    // After the window the links are gone and the page refuses.
    app.advance(16 * 60);
    reader.goto(&post).await.unwrap();
    let page = reader.source().await.unwrap();
    assert!(!page.contains("own-comment-actions"));
    reader.goto(&app.url(&edit_href)).await.unwrap();
    page_containing(
        &reader,
        "The time for editing or deleting this comment has passed.",
    )
    .await;
    reader.close().await.unwrap();
}

#[tokio::test]
async fn refusals_land_on_the_form_bots_are_held_and_staff_see_their_controls() {
    let Some(chromedriver) = driver_or_skip() else {
        return;
    };
    let app = TestApp::spawn().await;
    app.create_user("mod@example.com", "Mona Moderator", "moderator", PASSWORD)
        .await;
    let driver = start_driver(&chromedriver);
    let profiles = tempfile::tempdir().unwrap();
    let post = app.url(&format!("/posts/{WELCOME}"));

    // A 422 opens on the form, the summary above it, the first invalid field focused.
    let reader = browser(&driver, &profiles.path().join("reader")).await;
    reader.goto(&post).await.unwrap();
    fill(&reader, "#author", "Quinn Quick").await;
    fill(&reader, "#email", "not an address").await;
    app.advance(5);
    click(&reader, ".comment-form button[type=submit]").await;
    page_containing(&reader, "Your comment was not posted").await;
    assert!(current_url(&reader).await.ends_with("#respond"));
    assert_eq!(
        script(&reader, "return document.activeElement.id").await,
        "comment"
    );
    assert_eq!(
        script(
            &reader,
            "return document.getElementById('email').getAttribute('aria-invalid')"
        )
        .await,
        "true"
    );

    // Sent faster than a person could type: spam for moderators, "awaiting moderation" for
    // its author, at an anchor that exists. (A fresh address: revisiting the same one, the
    // browser would revalidate its copy and get 304, keeping the older form token.)
    reader.goto(&format!("{post}?again=1")).await.unwrap();
    fill(&reader, "#comment", "Too quick to be true").await;
    fill(&reader, "#author", "Quinn Quick").await;
    fill(&reader, "#email", "quinn@example.com").await;
    click(&reader, ".comment-form button[type=submit]").await;
    let page = page_containing(&reader, "Too quick to be true").await;
    assert!(page.contains("Your comment is awaiting moderation."));
    let url = current_url(&reader).await;
    let anchor = url.rsplit_once('#').unwrap().1.to_string();
    assert!(anchor.starts_with("comment-"));
    assert_eq!(
        script(
            &reader,
            &format!("return document.getElementById('{anchor}') ? 'yes' : 'no'")
        )
        .await,
        "yes"
    );
    let id: i32 = anchor.trim_start_matches("comment-").parse().unwrap();
    assert_eq!(app.stored_comment(id).await.0, "spam");

    // A moderator reads the post with their own controls, and nobody else gets them.
    let moderator = browser(&driver, &profiles.path().join("moderator")).await;
    moderator.goto(&app.url("/admin/login")).await.unwrap();
    fill(&moderator, "#email", "mod@example.com").await;
    fill(&moderator, "#password", PASSWORD).await;
    click(
        &moderator,
        "form[action='/admin/login'] button[type=submit]",
    )
    .await;
    eventually(&moderator, |page| page.contains("Log out")).await;
    moderator.goto(&post).await.unwrap();
    let page = page_containing(&moderator, "Logged in as Mona Moderator.").await;
    assert!(page.contains("staff-actions"));
    assert!(moderator.find(Locator::Css("#email")).await.is_err());
    reader.goto(&post).await.unwrap();
    assert!(!reader.source().await.unwrap().contains("staff-actions"));
    reader.close().await.unwrap();
    moderator.close().await.unwrap();
}
