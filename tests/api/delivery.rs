//! How pages reach readers: content coding negotiated per RFC 9110 and decoding to the very
//! bytes of the uncompressed page, kept pages with validators for anonymous readers only, and
//! a kept page never outliving a change made anywhere (the web, plain SQL, another server).

use std::io::Read;

use crate::common::{TestApp, WELCOME, client, hidden_value};

/// A client that neither decompresses nor keeps cookies: what it reads is what was sent.
fn raw_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn fetch(app: &TestApp, path: &str, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut request = raw_client().get(app.url(path));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.unwrap()
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    // One member: a decoder that stops at the first member sees the whole page.
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut out)
        .unwrap();
    out
}

fn unbrotli(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    brotli::Decompressor::new(bytes, 4096)
        .read_to_end(&mut out)
        .unwrap();
    out
}

/// The page with its form token blanked (it is made fresh for every response).
fn without_token(page: &[u8]) -> String {
    let text = String::from_utf8(page.to_vec()).unwrap();
    match hidden_value(&text, "form_token") {
        Some(token) => text.replace(&token, "TOKEN"),
        None => text,
    }
}

/// On PostgreSQL, a change made elsewhere reaches this server as a notification, delivered
/// when the change commits: waits until one more has arrived than `before` (the order of
/// events, not a time). On SQLite (no listener) there is nothing to wait for.
async fn notified_after(app: &TestApp, before: Option<f64>) {
    let Some(before) = before else { return };
    while app
        .metric("lectern_change_notifications")
        .await
        .unwrap_or(0.0)
        <= before
    {
        tokio::task::yield_now().await;
    }
}

/// The listener's notification count now (PostgreSQL), once it listens.
async fn notifications(app: &TestApp) -> Option<f64> {
    if !app.database_url.starts_with("postgres") {
        return None;
    }
    while app.metric("lectern_change_listener_live").await != Some(1.0) {
        tokio::task::yield_now().await;
    }
    app.metric("lectern_change_notifications").await
}

#[tokio::test]
async fn compressed_pages_decode_to_the_bytes_of_the_uncompressed_page() {
    let app = TestApp::spawn().await;
    for path in [format!("/posts/{WELCOME}"), "/".to_string()] {
        let plain = fetch(&app, &path, &[]).await;
        assert_eq!(plain.status(), 200);
        assert!(plain.headers().get("content-encoding").is_none());
        let plain = plain.bytes().await.unwrap();
        for _ in 0..2 {
            // The first request made the kept page, the second is served from it.
            let gz = fetch(&app, &path, &[("Accept-Encoding", "gzip")]).await;
            assert_eq!(gz.headers()["content-encoding"], "gzip");
            assert!(
                gz.headers()["vary"]
                    .to_str()
                    .unwrap()
                    .contains("Accept-Encoding")
            );
            let gz = gunzip(&gz.bytes().await.unwrap());
            assert_eq!(without_token(&gz), without_token(&plain), "{path}");

            let br = fetch(&app, &path, &[("Accept-Encoding", "gzip, deflate, br")]).await;
            assert_eq!(br.headers()["content-encoding"], "br");
            let br = unbrotli(&br.bytes().await.unwrap());
            assert_eq!(without_token(&br), without_token(&plain), "{path}");
        }
    }
    // q-values decide; identity;q=0 with nothing else acceptable is 406.
    let chosen = fetch(&app, "/", &[("Accept-Encoding", "br;q=0.2, gzip;q=0.8")]).await;
    assert_eq!(chosen.headers()["content-encoding"], "gzip");
    let none = fetch(&app, "/", &[("Accept-Encoding", "identity;q=0, *;q=0")]).await;
    assert_eq!(none.status(), 406);
    // A body made for one request alone (a 404 page) is compressed too.
    let missing = fetch(&app, "/posts/nope", &[("Accept-Encoding", "gzip")]).await;
    assert_eq!(missing.status(), 404);
    assert_eq!(missing.headers()["content-encoding"], "gzip");
    let text = String::from_utf8(gunzip(&missing.bytes().await.unwrap())).unwrap();
    assert!(text.contains("</html>"));
}

#[tokio::test]
async fn every_kept_response_has_a_fresh_form_token_that_works() {
    let app = TestApp::spawn().await;
    let path = format!("/posts/{WELCOME}");
    let first = fetch(&app, &path, &[]).await.text().await.unwrap();
    app.advance(1);
    let second = fetch(&app, &path, &[]).await.text().await.unwrap();
    let (a, b) = (
        hidden_value(&first, "form_token").unwrap(),
        hidden_value(&second, "form_token").unwrap(),
    );
    assert_ne!(a, b, "each response makes its own token");
    assert!(!second.contains("lectern-token-"), "no marker leaks");
    // A token from a kept page is a real one: the comment is accepted.
    app.advance(10);
    let posted = raw_client()
        .post(app.url(&format!("/posts/{WELCOME}/comments")))
        .form(&[
            ("name", "Kept Reader"),
            ("email", "kept@example.com"),
            ("body", "Posted from a kept page."),
            ("form_token", b.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), 303);
    let (status, reason, _) = app
        .stored_comment(crate::common::comment_id_from(&posted))
        .await;
    assert_eq!(status, "pending");
    assert_eq!(reason.as_deref(), Some("first comment from this author"));
}

#[tokio::test]
async fn anonymous_readers_get_validators_and_304_and_cookie_holders_never_do() {
    let app = TestApp::spawn().await;
    let path = format!("/posts/{WELCOME}");
    let first = fetch(&app, &path, &[]).await;
    let etag = first.headers()["etag"].to_str().unwrap().to_string();
    assert!(etag.starts_with("W/\""), "{etag}");
    assert!(first.headers()["vary"].to_str().unwrap().contains("Cookie"));
    let again = fetch(&app, &path, &[("If-None-Match", etag.as_str())]).await;
    assert_eq!(again.status(), 304);
    assert_eq!(again.headers()["etag"], etag.as_str());
    assert!(again.bytes().await.unwrap().is_empty());
    // Any cookie: no validators, no 304, a page made for this request.
    let with_cookie = fetch(
        &app,
        &path,
        &[("If-None-Match", etag.as_str()), ("Cookie", "something=1")],
    )
    .await;
    assert_eq!(with_cookie.status(), 200);
    assert!(with_cookie.headers().get("etag").is_none());

    // A token on a page kept in a browser for over a day is refused with the input kept and
    // a fresh form: nothing is lost.
    let page = fetch(&app, &path, &[]).await.text().await.unwrap();
    let old_token = hidden_value(&page, "form_token").unwrap();
    app.advance(2 * 24 * 3600);
    let late = raw_client()
        .post(app.url(&format!("/posts/{WELCOME}/comments")))
        .form(&[
            ("name", "Slow Reader"),
            ("email", "slow@example.com"),
            ("body", "I kept this tab open."),
            ("form_token", old_token.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(late.status(), 422);
    let late = late.text().await.unwrap();
    assert!(late.contains("I kept this tab open."));
    assert_ne!(hidden_value(&late, "form_token").unwrap(), old_token);
}

#[tokio::test]
async fn a_kept_page_never_outlives_a_change_from_the_web_sql_or_another_server() {
    let app = TestApp::spawn().await;
    let path = format!("/posts/{WELCOME}");
    let page = |app: &TestApp| {
        let url = app.url(&path);
        async move {
            raw_client()
                .get(url)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        }
    };
    assert!(!page(&app).await.contains("Approved through the web"));

    // Through the web: a moderator approves a comment.
    let admin = app.staff_client("admin").await;
    app.advance(60);
    let posted = app
        .comment(
            WELCOME,
            &[
                ("name", "Webby"),
                ("email", "webby@example.com"),
                ("body", "Approved through the web"),
            ],
        )
        .await;
    let id = crate::common::comment_id_from(&posted);
    assert!(!page(&app).await.contains("Approved through the web"));
    let csrf = app.csrf(&admin).await;
    let approved = admin
        .post(app.url(&format!("/admin/comments/{id}/approve")))
        .form(&[("csrf_token", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert!(approved.status().is_redirection());
    assert!(page(&app).await.contains("Approved through the web"));

    // Plain SQL on a connection of its own, as a shell would.
    let before = notifications(&app).await;
    app.db(|conn| {
        use diesel::prelude::*;
        diesel::sql_query(
            "UPDATE posts SET title = 'Retitled by SQL' WHERE slug = 'welcome-to-lectern'",
        )
        .execute(conn)?;
        Ok(())
    })
    .await;
    notified_after(&app, before).await;
    assert!(page(&app).await.contains("Retitled by SQL"));

    // The command line, another process: a new post shows on the kept home page.
    let home = |app: &TestApp| {
        let url = app.url("/");
        async move {
            raw_client()
                .get(url)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        }
    };
    assert!(!home(&app).await.contains("Published from the shell"));
    let before = notifications(&app).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("shell.md");
    std::fs::write(
        &file,
        "---\ntitle: Published from the shell\nauthor: admin@example.com\n---\nHello.\n",
    )
    .unwrap();
    let published = std::process::Command::new(env!("CARGO_BIN_EXE_lectern"))
        .args(["post", "publish"])
        .arg(&file)
        .current_dir(dir.path())
        .env("LECTERN_DATABASE_URL", &app.database_url)
        .output()
        .unwrap();
    assert!(
        published.status.success(),
        "{}",
        String::from_utf8_lossy(&published.stderr)
    );
    notified_after(&app, before).await;
    assert!(home(&app).await.contains("Published from the shell"));

    // Another server on the same database.
    let other = TestApp::spawn_on(
        &app.database_url,
        app.test_db.as_ref().unwrap().dir.path(),
        &[],
    )
    .await;
    let other_admin = other
        .login_client("admin@example.com", crate::common::PASSWORD)
        .await;
    let csrf = other.csrf(&other_admin).await;
    let before = notifications(&app).await;
    let trashed = other_admin
        .post(other.url(&format!("/admin/comments/{id}/trash")))
        .form(&[("csrf_token", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert!(trashed.status().is_redirection());
    notified_after(&app, before).await;
    assert!(!page(&app).await.contains("Approved through the web"));
    let _ = client;
}

#[tokio::test]
async fn the_stylesheet_has_a_fingerprinted_immutable_address_and_the_old_one_still_answers() {
    let app = TestApp::spawn().await;
    let page = fetch(&app, "/", &[]).await.text().await.unwrap();
    let start = page.find("<link rel=\"stylesheet\" href=\"").unwrap() + 29;
    let href = &page[start..start + page[start..].find('"').unwrap()];
    assert!(
        href.starts_with("/static/style.") && href.ends_with(".css") && href.len() > 20,
        "{href}"
    );
    let css = fetch(&app, href, &[]).await;
    assert_eq!(css.status(), 200);
    assert_eq!(
        css.headers()["cache-control"],
        "public, max-age=31536000, immutable"
    );
    assert_eq!(css.headers()["content-type"], "text/css; charset=utf-8");
    let etag = css.headers()["etag"].to_str().unwrap().to_string();
    let plain = css.bytes().await.unwrap();
    for (accept, decode) in [
        ("gzip", gunzip as fn(&[u8]) -> Vec<u8>),
        ("br", unbrotli as fn(&[u8]) -> Vec<u8>),
    ] {
        let coded = fetch(&app, href, &[("Accept-Encoding", accept)]).await;
        assert_eq!(coded.headers()["content-encoding"], accept);
        assert_eq!(decode(&coded.bytes().await.unwrap()), plain);
    }
    assert_eq!(
        fetch(&app, href, &[("If-None-Match", etag.as_str())])
            .await
            .status(),
        304
    );
    let old = fetch(&app, "/static/style.css", &[]).await;
    assert_eq!(old.status(), 200);
    assert_eq!(old.headers()["cache-control"], "public, max-age=3600");
    assert_eq!(old.bytes().await.unwrap(), plain);
    assert_eq!(fetch(&app, "/static/nothing.css", &[]).await.status(), 404);
}

#[tokio::test]
async fn on_postgresql_a_change_made_while_the_listener_was_cut_off_still_shows() {
    let app = TestApp::spawn().await;
    if !app.database_url.starts_with("postgres") {
        eprintln!("SKIPPED: PostgreSQL only (LECTERN_TEST_DATABASE_URL)");
        return;
    }
    let path = format!("/posts/{WELCOME}");
    notifications(&app).await;
    let connections = app
        .metric("lectern_change_listener_connections")
        .await
        .unwrap();
    let kept = fetch(&app, &path, &[]).await.text().await.unwrap();
    assert!(!kept.contains("Changed while nobody listened"));
    // Cut the listening connection, then change the post at once: its notification has no
    // listener to reach.
    app.db(|conn| {
        use diesel::prelude::*;
        diesel::sql_query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE application_name = 'lectern-listener' AND datname = current_database()",
        )
        .execute(conn)?;
        diesel::sql_query(
            "UPDATE posts SET title = 'Changed while nobody listened' \
             WHERE slug = 'welcome-to-lectern'",
        )
        .execute(conn)?;
        Ok(())
    })
    .await;
    // Once the server listens again, the kept page is not trusted: the change shows.
    while app
        .metric("lectern_change_listener_connections")
        .await
        .unwrap_or(0.0)
        <= connections
    {
        tokio::task::yield_now().await;
    }
    assert!(
        fetch(&app, &path, &[])
            .await
            .text()
            .await
            .unwrap()
            .contains("Changed while nobody listened")
    );
}

#[tokio::test]
async fn a_large_kept_page_arrives_whole_in_every_coding() {
    let app = TestApp::spawn().await;
    // Some 680 KB of page: over the size (512 KiB) a kept page is sent in pieces.
    let paragraph = "A long paragraph about fascia, written again and again. ".repeat(40);
    let body: Vec<String> = (0..300).map(|i| format!("{i}: {paragraph}")).collect();
    crate::reading::publish(
        &app,
        &format!("---\ntitle: A very long read\n---\n{}\n", body.join("\n\n")),
    )
    .await;
    let path = "/posts/a-very-long-read";
    let made = fetch(&app, path, &[]).await;
    assert_eq!(made.status(), 200);
    let made = made.bytes().await.unwrap();
    assert!(made.len() > 600_000, "{}", made.len());
    let hits = app
        .metric("lectern_page_cache_hits_total")
        .await
        .unwrap_or(0.0);
    let kept = fetch(&app, path, &[]).await;
    let length: usize = kept.headers()["content-length"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let kept = kept.bytes().await.unwrap();
    assert_eq!(length, kept.len());
    assert_eq!(without_token(&kept), without_token(&made));
    let gz = fetch(&app, path, &[("Accept-Encoding", "gzip")]).await;
    assert_eq!(gz.headers()["content-encoding"], "gzip");
    assert_eq!(
        without_token(&gunzip(&gz.bytes().await.unwrap())),
        without_token(&made)
    );
    let br = fetch(&app, path, &[("Accept-Encoding", "br")]).await;
    assert_eq!(
        without_token(&unbrotli(&br.bytes().await.unwrap())),
        without_token(&made)
    );
    // On PostgreSQL a notification of an earlier write may still be on its way.
    if app.database_url.starts_with("sqlite") {
        assert!(
            app.metric("lectern_page_cache_hits_total")
                .await
                .unwrap_or(0.0)
                >= hits + 3.0
        );
    }
}
