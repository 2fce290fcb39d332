//! The moderator's desk in a real browser: Undo after a single and a bulk action, a
//! keyboard-only pass over the queue, the queue on a 390 px phone, and the dashboard's chart.
//!
//! Needs Debian's `chromium` and `chromium-driver`; skipped without them, except in CI.

use fantoccini::Client;
use fantoccini::actions::{InputSource, KeyAction, KeyActions};

use crate::browser::{Driver, browser, click, eventually, fill, find_chromedriver, start_driver};
use crate::common::{PASSWORD, TestApp, WELCOME, comment_id_from};

/// The driver, or `None` (and a note) when this machine has no Chromium.
fn driver() -> Option<Driver> {
    let Some(chromedriver) = find_chromedriver() else {
        if std::env::var_os("CI").is_some() {
            panic!("CI must run the browser tests: install chromium and chromium-driver");
        }
        eprintln!("SKIPPED desk browser test: chromedriver not found");
        return None;
    };
    Some(start_driver(&chromedriver))
}

async fn pending_comments(app: &TestApp, n: u32) -> Vec<i32> {
    let mut ids = Vec::new();
    for i in 1..=n {
        app.advance(60);
        let email = format!("reader{i}@example.com");
        let response = app
            .comment(
                WELCOME,
                &[
                    ("name", &format!("Reader {i}")),
                    ("email", &email),
                    (
                        "body",
                        &format!("Browser desk comment {i}\nwith a second line"),
                    ),
                ],
            )
            .await;
        assert_eq!(response.status(), 303);
        ids.push(comment_id_from(&response));
    }
    ids
}

async fn log_in(app: &TestApp, client: &Client) {
    app.create_user("desk@example.com", "Desk Moderator", "moderator", PASSWORD)
        .await;
    client.goto(&app.url("/admin/login")).await.unwrap();
    fill(client, "#email", "desk@example.com").await;
    fill(client, "#password", PASSWORD).await;
    click(client, "form[action='/admin/login'] button[type=submit]").await;
    eventually(client, |page| page.contains("Log out")).await;
}

async fn press(client: &Client, key: char) {
    let keys = KeyActions::new("keyboard".into())
        .then(KeyAction::Down { value: key })
        .then(KeyAction::Up { value: key });
    client.perform_actions(keys).await.unwrap();
}

async fn script(client: &Client, code: &str) -> serde_json::Value {
    client.execute(code, Vec::new()).await.unwrap()
}

#[tokio::test]
async fn an_approval_and_a_bulk_spam_are_undone_from_their_notices_in_a_browser() {
    let Some(driver) = driver() else { return };
    let app = TestApp::spawn().await;
    let ids = pending_comments(&app, 3).await;
    let profiles = tempfile::tempdir().unwrap();
    let client = browser(&driver, profiles.path()).await;
    log_in(&app, &client).await;

    client.goto(&app.url("/admin/comments")).await.unwrap();
    click(&client, &format!("#c{} button.action-approve", ids[0])).await;
    eventually(&client, |page| {
        page.contains("Comment by Reader 1 approved.")
    })
    .await;
    assert_eq!(app.stored_comment(ids[0]).await.0, "approved");
    click(&client, ".flash button.undo").await;
    eventually(&client, |page| page.contains("is pending again")).await;
    assert_eq!(app.stored_comment(ids[0]).await.0, "pending");

    // Tick two, choose Spam, apply; then Undo.
    click(&client, &format!("#c{} input[name=ids]", ids[1])).await;
    click(&client, &format!("#c{} input[name=ids]", ids[2])).await;
    script(
        &client,
        "document.getElementById('bulk-action').value = 'spam';",
    )
    .await;
    click(&client, ".bulk button[type=submit]").await;
    eventually(&client, |page| page.contains("2 comments marked as spam.")).await;
    assert_eq!(app.stored_comment(ids[1]).await.0, "spam");
    assert_eq!(app.stored_comment(ids[2]).await.0, "spam");
    click(&client, ".flash button.undo").await;
    eventually(&client, |page| {
        page.contains("2 comments are back where they were")
    })
    .await;
    assert_eq!(app.stored_comment(ids[1]).await.0, "pending");
    assert_eq!(app.stored_comment(ids[2]).await.0, "pending");
    client.close().await.unwrap();
}

#[tokio::test]
async fn a_moderator_works_the_queue_with_the_keyboard_alone() {
    let Some(driver) = driver() else { return };
    let app = TestApp::spawn().await;
    let ids = pending_comments(&app, 3).await;
    let (oldest, middle, newest) = (ids[0], ids[1], ids[2]);
    let profiles = tempfile::tempdir().unwrap();
    let client = browser(&driver, profiles.path()).await;
    log_in(&app, &client).await;
    client.goto(&app.url("/admin/comments")).await.unwrap();

    // j: the newest comment (the first row); a: approve it.
    press(&client, 'j').await;
    eventually(&client, |page| {
        page.contains(&format!(
            "id=\"c{newest}\" class=\"status-pending selected\""
        ))
    })
    .await;
    press(&client, 'a').await;
    eventually(&client, |page| {
        page.contains("Comment by Reader 3 approved.")
    })
    .await;
    // The next page starts where the last one left off: the next comment is current.
    eventually(&client, |page| {
        page.contains(&format!(
            "id=\"c{middle}\" class=\"status-pending selected\""
        ))
    })
    .await;
    // j: on to the oldest; s: spam.
    press(&client, 'j').await;
    eventually(&client, |page| {
        page.contains(&format!(
            "id=\"c{oldest}\" class=\"status-pending selected\""
        ))
    })
    .await;
    press(&client, 's').await;
    eventually(&client, |page| {
        page.contains("Comment by Reader 1 marked as spam.")
    })
    .await;

    assert_eq!(app.stored_comment(newest).await.0, "approved");
    assert_eq!(app.stored_comment(middle).await.0, "pending");
    assert_eq!(app.stored_comment(oldest).await.0, "spam");

    // ? shows the keys.
    press(&client, '?').await;
    let open = script(&client, "return document.getElementById('keys').open;").await;
    assert_eq!(open, serde_json::Value::Bool(true));
    client.close().await.unwrap();
}

#[tokio::test]
async fn on_a_390_px_phone_the_queue_fits_and_every_action_is_reachable() {
    let Some(driver) = driver() else { return };
    let app = TestApp::spawn().await;
    pending_comments(&app, 3).await;
    // A long unbroken word and a long address must not widen the page either.
    app.advance(60);
    let long = "x".repeat(300);
    app.comment(
        WELCOME,
        &[
            ("name", "Wide Reader"),
            (
                "email",
                "a-very-long-address-for-a-narrow-screen@example.com",
            ),
            ("body", &long),
        ],
    )
    .await;
    let profiles = tempfile::tempdir().unwrap();
    let client = browser(&driver, profiles.path()).await;
    client.set_window_size(390, 844).await.unwrap();
    log_in(&app, &client).await;
    for path in ["/admin/comments", "/admin"] {
        client.goto(&app.url(path)).await.unwrap();
        let width = script(&client, "return window.innerWidth;").await;
        assert!(
            width.as_i64().unwrap() <= 390,
            "the window is a phone's: {width}"
        );
        let scroll = script(&client, "return document.documentElement.scrollWidth;").await;
        assert!(
            scroll.as_i64().unwrap() <= 390,
            "{path}: no horizontal scroll, got scrollWidth {scroll}"
        );
        let outside = script(
            &client,
            "const w = document.documentElement.clientWidth;
             return [...document.querySelectorAll(
                 'tr[data-comment] .row-actions > button, tr[data-comment] .row-actions > a, tr[data-comment] summary, .bulk button')]
               .filter(b => { const r = b.getBoundingClientRect();
                              return r.width === 0 || r.left < 0 || r.right > w; })
               .map(b => b.textContent.trim());",
        )
        .await;
        assert_eq!(
            outside,
            serde_json::json!([]),
            "{path}: buttons outside the viewport"
        );
        let buttons = script(
            &client,
            "return document.querySelectorAll('tr[data-comment] .row-actions > button').length;",
        )
        .await;
        assert!(
            buttons.as_i64().unwrap() >= 3,
            "{path}: the actions are there"
        );
    }
    client.close().await.unwrap();
}

#[tokio::test]
async fn the_dashboard_shows_its_chart_with_a_data_table() {
    let Some(driver) = driver() else { return };
    let app = TestApp::spawn().await;
    pending_comments(&app, 2).await;
    let profiles = tempfile::tempdir().unwrap();
    let client = browser(&driver, profiles.path()).await;
    log_in(&app, &client).await;
    client.goto(&app.url("/admin")).await.unwrap();
    let chart = script(
        &client,
        "const svg = document.querySelector('svg.days-chart');
         return svg && { title: svg.querySelector('title').textContent,
                         bars: svg.querySelectorAll('rect').length,
                         width: svg.getBoundingClientRect().width,
                         rows: document.querySelectorAll('table.days-table tbody tr').length };",
    )
    .await;
    assert!(
        chart["title"]
            .as_str()
            .unwrap()
            .contains("3 comments in the last 30 days"),
        "{chart}"
    );
    assert!(chart["bars"].as_i64().unwrap() >= 2, "{chart}");
    assert!(chart["width"].as_f64().unwrap() > 300.0, "{chart}");
    assert_eq!(chart["rows"], 30);
    client.close().await.unwrap();
}
