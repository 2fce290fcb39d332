//! A real browser walks the whole story: a reader comments and sees it awaiting moderation, a
//! moderator logs in, approves and replies, and the reader sees both.
//!
//! Needs Debian's `chromium` and `chromium-driver`. Without them the test says it was skipped,
//! except in CI (`CI` set), where it must run and fails instead.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};

use crate::common::{PASSWORD, TestApp, WELCOME};

pub(crate) struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn find_chromedriver() -> Option<PathBuf> {
    let candidates = [
        std::env::var("LECTERN_CHROMEDRIVER").ok(),
        Some("/usr/bin/chromedriver".into()),
    ];
    candidates
        .into_iter()
        .flatten()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

pub(crate) fn start_driver(path: &PathBuf) -> Driver {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(path)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver starts");
    // Wait for the driver to accept connections (a readiness poll, bounded).
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "chromedriver did not start listening"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    Driver {
        child,
        url: format!("http://127.0.0.1:{port}"),
    }
}

pub(crate) async fn browser(driver: &Driver, profile: &std::path::Path) -> Client {
    let mut caps = serde_json::Map::new();
    let chromium = std::env::var("LECTERN_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "binary": chromium,
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update",
                "--no-first-run", "--disable-sync", "--window-size=1280,4000",
                format!("--user-data-dir={}", profile.display()),
            ],
        }),
    );
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .expect("a browser session")
}

pub(crate) async fn fill(client: &Client, css: &str, text: &str) {
    client
        .find(Locator::Css(css))
        .await
        .unwrap()
        .send_keys(text)
        .await
        .unwrap();
}

pub(crate) async fn click(client: &Client, css: &str) {
    client
        .find(Locator::Css(css))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

/// Waits (bounded) until the current page satisfies `ready`, and returns it.
pub(crate) async fn eventually(client: &Client, ready: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let page = client.source().await.unwrap();
        if ready(&page) {
            return page;
        }
        assert!(
            Instant::now() < deadline,
            "the page never got there:\n{page}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub(crate) async fn page_containing(client: &Client, text: &str) -> String {
    eventually(client, |page| page.contains(text)).await
}

#[tokio::test]
async fn a_reader_and_a_moderator_walk_the_whole_story_in_a_real_browser() {
    let Some(chromedriver) = find_chromedriver() else {
        if std::env::var_os("CI").is_some() {
            panic!("CI must run the browser test: install chromium and chromium-driver");
        }
        eprintln!(
            "SKIPPED browser test: chromedriver not found (apt-get install chromium chromium-driver)"
        );
        return;
    };
    let app = TestApp::spawn().await;
    app.create_user("mod@example.com", "Mona Moderator", "moderator", PASSWORD)
        .await;
    let driver = start_driver(&chromedriver);
    let profiles = tempfile::tempdir().unwrap();

    // The reader comments.
    let reader = browser(&driver, &profiles.path().join("reader")).await;
    reader
        .goto(&app.url(&format!("/posts/{WELCOME}")))
        .await
        .unwrap();
    fill(&reader, "#comment", "Hello from a real browser").await;
    fill(&reader, "#author", "Brenda Browser").await;
    fill(&reader, "#email", "brenda@example.com").await;
    app.advance(5); // the time a person takes to type
    click(&reader, ".comment-form button[type=submit]").await;
    // A click that submits a form does not wait for the next page; wait for what it shows.
    let page = page_containing(&reader, "Your comment is awaiting moderation.").await;
    assert!(page.contains("Hello from a real browser"));
    assert!(
        reader
            .current_url()
            .await
            .unwrap()
            .as_str()
            .contains("#comment-")
    );

    // The moderator logs in, approves and replies.
    let moderator = browser(&driver, &profiles.path().join("moderator")).await;
    moderator.goto(&app.url("/admin/comments")).await.unwrap();
    fill(&moderator, "#email", "mod@example.com").await;
    fill(&moderator, "#password", PASSWORD).await;
    click(
        &moderator,
        "form[action='/admin/login'] button[type=submit]",
    )
    .await;
    let page = page_containing(&moderator, "brenda@example.com").await;
    assert!(page.contains("Held: first comment from this author"));
    let id = {
        let at = page.find("Hello from a real browser").unwrap();
        let row = page[..at].rfind("<tr id=\"c").unwrap() + 9;
        page[row..row + page[row..].find('"').unwrap()].to_string()
    };
    click(&moderator, &format!("#c{id} button.action-approve")).await;
    eventually(&moderator, |page| !page.contains("brenda@example.com")).await;
    moderator
        .goto(&app.url("/admin/comments?status=approved"))
        .await
        .unwrap();
    click(&moderator, &format!("#c{id} details.reply-box summary")).await;
    fill(&moderator, &format!("#reply-{id}-body"), "Welcome, Brenda!").await;
    click(&moderator, &format!("#c{id} details.reply-box button")).await;
    page_containing(&moderator, "Welcome, Brenda!").await;

    // The reader reloads and sees both.
    reader
        .goto(&app.url(&format!("/posts/{WELCOME}")))
        .await
        .unwrap();
    let page = reader.source().await.unwrap();
    assert!(page.contains("Hello from a real browser"));
    assert!(page.contains("Welcome, Brenda!"));
    assert!(!page.contains("Your comment is awaiting moderation."));
    assert!(page.contains("3 thoughts on"));

    reader.close().await.unwrap();
    moderator.close().await.unwrap();
}
