//! Anti-abuse, over HTTP: classification rules, bots, flood limits, size and shape of the
//! form, blocks made by moderators, and the retention purge.

use std::future::Future;

use diesel::prelude::*;
use lectern::db::schema::{blocks, comment_counts, comments, moderation_log};
use lectern::site::DiscussionSettings;

use crate::common::{TestApp, WELCOME, client, comment_id_from, hidden_value};

const POST_URL: &str = "/posts/welcome-to-lectern/comments";
/// Believe `X-Forwarded-For` from the test client, so a test can send from any address.
const BEHIND_PROXY: (&str, &str) = ("LECTERN_TRUSTED_PROXIES", "127.0.0.1/32");
const NO_FLOOD: (&str, &str) = ("LECTERN_FLOOD_LIMITS", "off");

fn person<'a>(name: &'a str, email: &'a str, body: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![("name", name), ("email", email), ("body", body)]
}

/// Changes the discussion settings as the admin's settings page would save them.
async fn set_settings(
    app: &TestApp,
    change: impl FnOnce(&mut DiscussionSettings) + Send + 'static,
) {
    app.state
        .db
        .write(move |conn| -> Result<(), lectern::db::DbError> {
            let mut settings = DiscussionSettings::load(conn)?;
            change(&mut settings);
            settings.save(conn)
        })
        .await
        .unwrap();
}

/// Submits the comment form with a valid token (after the minimum fill-in time) and extra
/// request headers, such as `X-Forwarded-For` or `User-Agent`.
async fn submit(
    app: &TestApp,
    fields: &[(&str, &str)],
    headers: &[(&str, &str)],
) -> reqwest::Response {
    let token = app.form_token(WELCOME).await;
    let mut form = vec![("form_token", token.as_str())];
    form.extend_from_slice(fields);
    let mut request = app.client.post(app.url(POST_URL)).form(&form);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.unwrap()
}

/// Submits from the client address `ip` (the app must trust the loopback proxy).
async fn submit_from(app: &TestApp, ip: &str, fields: &[(&str, &str)]) -> reqwest::Response {
    submit(app, fields, &[("x-forwarded-for", ip)]).await
}

/// Status and held reason of the comment a 303 points at.
async fn verdict(app: &TestApp, response: reqwest::Response) -> (String, Option<String>) {
    assert_eq!(response.status(), 303, "the comment is accepted");
    let (status, reason, _) = app.stored_comment(comment_id_from(&response)).await;
    (status, reason)
}

fn is(expected_status: &str, expected_reason: Option<&str>) -> (String, Option<String>) {
    (
        expected_status.to_string(),
        expected_reason.map(str::to_string),
    )
}

fn retry_after(response: &reqwest::Response) -> i64 {
    response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

/// (ip, ip_network) stored for a comment.
async fn stored_ip(app: &TestApp, id: i32) -> (Option<String>, Option<String>) {
    app.db(move |conn| {
        Ok(comments::table
            .find(id)
            .select((comments::ip, comments::ip_network))
            .first(conn)?)
    })
    .await
}

async fn comment_exists(app: &TestApp, id: i32) -> bool {
    app.db(move |conn| {
        Ok(comments::table
            .find(id)
            .select(comments::id)
            .first::<i32>(conn)
            .optional()?
            .is_some())
    })
    .await
}

/// (action, via, detail, comment_id) of every moderation log row, oldest first.
async fn log_rows(app: &TestApp) -> Vec<(String, String, String, Option<i32>)> {
    app.db(|conn| {
        Ok(moderation_log::table
            .order(moderation_log::id)
            .select((
                moderation_log::action,
                moderation_log::via,
                moderation_log::detail,
                moderation_log::comment_id,
            ))
            .load(conn)?)
    })
    .await
}

/// Waits (bounded) for background work to show its effect.
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    for _ in 0..400 {
        if check().await {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!("timed out waiting for {what}");
}

/// A moderator's client and its CSRF token.
async fn moderator(app: &TestApp) -> (reqwest::Client, String) {
    let http = app.staff_client("moderator").await;
    let csrf = app.csrf(&http).await;
    (http, csrf)
}

async fn moderate(app: &TestApp, http: &reqwest::Client, csrf: &str, id: i32, action: &str) {
    let response = http
        .post(app.url(&format!("/admin/comments/{id}/{action}")))
        .form(&[("csrf_token", csrf)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303, "{action} #{id}");
}

// --- The rules, in DESIGN.md's order ---------------------------------------------------------

#[tokio::test]
async fn a_disallowed_keyword_sends_the_comment_to_spam_and_names_the_keyword() {
    let app = TestApp::spawn().await;
    set_settings(&app, |s| s.disallowed_keywords = vec!["viagra".into()]).await;
    let response = submit(
        &app,
        &person("Sam Seller", "sam@example.com", "Buy VIAGRA here"),
        &[],
    )
    .await;
    assert_eq!(
        verdict(&app, response).await,
        is("spam", Some("disallowed keyword: viagra"))
    );
    let page = app.get_text(&format!("/posts/{WELCOME}")).await;
    assert!(!page.contains("Buy VIAGRA"), "spam is never shown");
}

#[tokio::test]
async fn a_moderation_keyword_holds_the_comment_and_names_the_keyword() {
    let app = TestApp::spawn().await;
    set_settings(&app, |s| s.moderation_keywords = vec!["casino".into()]).await;
    let response = submit(
        &app,
        &person("Ada Reader", "ada@example.com", "The casino down the road"),
        &[],
    )
    .await;
    assert_eq!(
        verdict(&app, response).await,
        is("pending", Some("moderation keyword: casino"))
    );
}

#[tokio::test]
async fn a_keyword_matches_whole_words_only() {
    let app = TestApp::spawn_with(&[NO_FLOOD]).await;
    set_settings(&app, |s| s.moderation_keywords = vec!["press".into()]).await;
    let inside_a_word = submit(
        &app,
        &person(
            "Ada Reader",
            "ada@example.com",
            "I built my site on WordPress.",
        ),
        &[],
    )
    .await;
    assert_eq!(
        verdict(&app, inside_a_word).await,
        is("pending", Some("first comment from this author"))
    );
    let whole_word = submit(
        &app,
        &person("Ada Reader", "ada@example.com", "Hot off the PRESS!"),
        &[],
    )
    .await;
    assert_eq!(
        verdict(&app, whole_word).await,
        is("pending", Some("moderation keyword: press"))
    );
}

#[tokio::test]
async fn a_keyword_between_slashes_is_a_regular_expression() {
    let app = TestApp::spawn().await;
    set_settings(&app, |s| s.disallowed_keywords = vec!["/v[i1]agra/".into()]).await;
    let response = submit(
        &app,
        &person("Sam Seller", "sam@example.com", "cheap v1agra, ask me"),
        &[],
    )
    .await;
    assert_eq!(
        verdict(&app, response).await,
        is("spam", Some("disallowed keyword: /v[i1]agra/"))
    );
}

#[tokio::test]
async fn a_hostile_regular_expression_does_not_hang_the_submission() {
    let app = TestApp::spawn().await;
    // Catastrophic backtracking in a backtracking engine; linear time in the regex crate.
    set_settings(&app, |s| s.moderation_keywords = vec!["/(a+)+$/".into()]).await;
    let body = format!("{}!", "a".repeat(9_999));
    let response = submit(&app, &person("Ada Reader", "ada@example.com", &body), &[]).await;
    assert_eq!(
        verdict(&app, response).await,
        is("pending", Some("first comment from this author"))
    );
}

#[tokio::test]
async fn keywords_are_matched_in_name_email_website_ip_and_user_agent() {
    let app = TestApp::spawn_with(&[NO_FLOOD, BEHIND_PROXY]).await;
    set_settings(&app, |s| {
        s.moderation_keywords = vec![
            "bigseller".into(),
            "shady.example".into(),
            "pills.example".into(),
            "203.0.113.9".into(),
            "spamhaus-bot".into(),
        ]
    })
    .await;
    let browser = "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0";
    let clean_ip = "198.51.100.20";
    #[rustfmt::skip]
    let cases: [(&str, &str, &str, &str, &str, &str); 6] = [
        // (name, email, website, ip, user agent, expected keyword)
        ("BigSeller Bob", "bob@example.com", "", clean_ip, browser, "bigseller"),
        ("Carol", "carol@shady.example", "", clean_ip, browser, "shady.example"),
        ("Dan", "dan@example.com", "https://pills.example/buy", clean_ip, browser, "pills.example"),
        ("Eve", "eve@example.com", "", "203.0.113.9", browser, "203.0.113.9"),
        ("Fay", "fay@example.com", "", clean_ip, "Mozilla/5.0 (compatible; SpamHaus-Bot/2.1)", "spamhaus-bot"),
        // Whole words: a longer address that begins with the keyword does not match.
        ("Gus", "gus@example.com", "", "203.0.113.99", browser, ""),
    ];
    for (i, (name, email, website, ip, agent, keyword)) in cases.into_iter().enumerate() {
        let body = format!("An ordinary remark, number {i}.");
        let mut fields = person(name, email, &body);
        fields.push(("website", website));
        let response = submit(
            &app,
            &fields,
            &[("x-forwarded-for", ip), ("user-agent", agent)],
        )
        .await;
        let expected = if keyword.is_empty() {
            "first comment from this author".to_string()
        } else {
            format!("moderation keyword: {keyword}")
        };
        assert_eq!(
            verdict(&app, response).await,
            is("pending", Some(&expected)),
            "{name}"
        );
    }
}

#[tokio::test]
async fn links_at_the_limit_hold_the_comment_counting_the_website() {
    let app = TestApp::spawn_with(&[NO_FLOOD]).await;
    let mut fields = person(
        "Ada Reader",
        "ada@example.com",
        "See https://a.example/one and https://b.example/two",
    );
    fields.push(("website", "https://ada.example"));
    let response = submit(&app, &fields, &[]).await;
    assert_eq!(
        verdict(&app, response).await,
        is("pending", Some("3 links (hold at 2 or more)"))
    );
    let one_link = submit(
        &app,
        &person(
            "Ada Reader",
            "ada@example.com",
            "Only https://a.example/one",
        ),
        &[],
    )
    .await;
    assert_eq!(
        verdict(&app, one_link).await,
        is("pending", Some("first comment from this author"))
    );
}

#[tokio::test]
async fn manual_approval_holds_even_a_returning_commenter() {
    let app = TestApp::spawn().await;
    set_settings(&app, |s| s.require_approval = true).await;
    // The welcome comment by this address was stored (approved) at start-up.
    app.advance(60);
    let response = submit(
        &app,
        &person(
            "A lectern Commenter",
            "commenter@lectern.invalid",
            "Back again",
        ),
        &[],
    )
    .await;
    assert_eq!(
        verdict(&app, response).await,
        is("pending", Some("comments must be manually approved"))
    );
}

#[tokio::test]
async fn a_returning_commenter_with_the_same_email_and_name_is_approved() {
    let app = TestApp::spawn_with(&[NO_FLOOD]).await;
    let first = submit(
        &app,
        &person("Ada Reader", "ada@example.com", "My first words"),
        &[],
    )
    .await;
    let first_id = comment_id_from(&first);
    let (http, csrf) = moderator(&app).await;
    moderate(&app, &http, &csrf, first_id, "approve").await;

    let again = submit(
        &app,
        &person("Ada Reader", "ada@example.com", "Me again"),
        &[],
    )
    .await;
    assert_eq!(verdict(&app, again).await, is("approved", None));
    let other_name = submit(
        &app,
        &person(
            "Not Ada",
            "ada@example.com",
            "Someone else with her address",
        ),
        &[],
    )
    .await;
    assert_eq!(
        verdict(&app, other_name).await,
        is("pending", Some("first comment from this author"))
    );
}

#[tokio::test]
async fn a_logged_in_moderator_is_approved_before_any_other_rule() {
    let app = TestApp::spawn().await;
    set_settings(&app, |s| {
        s.require_approval = true;
        s.disallowed_keywords = vec!["viagra".into()];
    })
    .await;
    let (http, _) = moderator(&app).await;
    let page = http
        .get(app.url(&format!("/posts/{WELCOME}")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let token = hidden_value(&page, "form_token").unwrap();
    app.advance(5);
    let response = http
        .post(app.url(POST_URL))
        .form(&[
            ("form_token", token.as_str()),
            ("name", "Test moderator"),
            ("email", "moderator@example.com"),
            ("body", "Spammers here keep saying viagra; ignore them."),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(verdict(&app, response).await, is("approved", None));
}

// --- Bots -------------------------------------------------------------------------------------

/// What a response shows the sender: status, where it points (ids aside), cookie names.
fn outward(response: &reqwest::Response) -> (u16, String, String, Vec<String>) {
    let location = response.headers()["location"].to_str().unwrap();
    let shape = location.split("#comment-").next().unwrap().to_string();
    let mut cookies: Vec<String> = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|c| c.to_str().unwrap().split('=').next().unwrap().to_string())
        .collect();
    cookies.sort();
    (
        response.status().as_u16(),
        shape,
        response.headers()["cache-control"]
            .to_str()
            .unwrap()
            .to_string(),
        cookies,
    )
}

#[tokio::test]
async fn a_missing_or_foreign_form_token_is_spam_behind_the_human_response() {
    let app = TestApp::spawn_with(&[NO_FLOOD]).await;
    crate::reading::publish(
        &app,
        "---\ntitle: Another post\nslug: another-post\ndate: 2020-01-01\n---\nHello\n",
    )
    .await;
    let human = submit(
        &app,
        &person("Ada Reader", "ada@example.com", "A person wrote this"),
        &[],
    )
    .await;
    let human_shape = outward(&human);
    assert_eq!(
        verdict(&app, human).await,
        is("pending", Some("first comment from this author"))
    );

    let missing = client()
        .post(app.url(POST_URL))
        .form(&person("Bot", "bot@example.com", "no token at all"))
        .send()
        .await
        .unwrap();
    assert_eq!(outward(&missing), human_shape);
    assert_eq!(
        verdict(&app, missing).await,
        is("spam", Some("form token missing or forged"))
    );

    // A token rendered for another post is not valid here.
    let other = client()
        .get(app.url("/posts/another-post"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let foreign = hidden_value(&other, "form_token").unwrap();
    app.advance(5);
    let mut form = person("Bot", "bot@example.com", "token from elsewhere");
    form.push(("form_token", &foreign));
    let response = client()
        .post(app.url(POST_URL))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(outward(&response), human_shape);
    assert_eq!(
        verdict(&app, response).await,
        is("spam", Some("form token missing or forged"))
    );
}

// --- Flooding ---------------------------------------------------------------------------------

#[tokio::test]
async fn flood_limits_count_per_ipv4_address_with_retry_after() {
    let app = TestApp::spawn_with(&[BEHIND_PROXY]).await;
    let ip = "198.51.100.7";
    let first = submit_from(&app, ip, &person("Ada", "ada@example.com", "one")).await;
    assert_eq!(first.status(), 303);
    let id = comment_id_from(&first);
    assert_eq!(
        stored_ip(&app, id).await,
        (Some(ip.to_string()), Some(ip.to_string())),
        "the forwarded client is recorded"
    );
    let before = app.comment_count().await;
    // The form helper lets 5 seconds pass; the limit is one comment per 15 seconds.
    let second = submit_from(&app, ip, &person("Bob", "bob@example.com", "two")).await;
    assert_eq!(second.status(), 429);
    assert_eq!(retry_after(&second), 10);
    assert_eq!(app.comment_count().await, before, "nothing stored");
    let neighbour = submit_from(
        &app,
        "198.51.100.8",
        &person("Bob", "bob@example.com", "two"),
    )
    .await;
    assert_eq!(neighbour.status(), 303, "another address has its own limit");
}

#[tokio::test]
async fn ipv6_clients_share_a_flood_limit_per_64() {
    let app = TestApp::spawn_with(&[BEHIND_PROXY]).await;
    let first = submit_from(
        &app,
        "2001:db8:1:2::1",
        &person("Ada", "ada@example.com", "one"),
    )
    .await;
    assert_eq!(first.status(), 303);
    assert_eq!(
        stored_ip(&app, comment_id_from(&first)).await,
        (
            Some("2001:db8:1:2::1".to_string()),
            Some("2001:db8:1:2::/64".to_string())
        )
    );
    let same_64 = submit_from(
        &app,
        "2001:db8:1:2:ffff:ffff:ffff:9",
        &person("Bob", "bob@example.com", "two"),
    )
    .await;
    assert_eq!(same_64.status(), 429);
    assert!((1..=15).contains(&retry_after(&same_64)));
    let next_64 = submit_from(
        &app,
        "2001:db8:1:3::1",
        &person("Carol", "carol@example.com", "three"),
    )
    .await;
    assert_eq!(next_64.status(), 303);
}

#[tokio::test]
async fn flood_limits_count_per_email_across_addresses() {
    let app = TestApp::spawn_with(&[BEHIND_PROXY]).await;
    let first = submit_from(
        &app,
        "198.51.100.7",
        &person("Ada", "ada@example.com", "one"),
    )
    .await;
    assert_eq!(first.status(), 303);
    let moved = submit_from(
        &app,
        "203.0.113.50",
        &person("Ada", "ada@example.com", "two"),
    )
    .await;
    assert_eq!(moved.status(), 429);
    assert_eq!(retry_after(&moved), 10);
}

#[tokio::test]
async fn a_forwarded_for_header_from_an_untrusted_peer_is_ignored() {
    let app = TestApp::spawn().await;
    let first = submit_from(
        &app,
        "198.51.100.7",
        &person("Ada", "ada@example.com", "one"),
    )
    .await;
    assert_eq!(first.status(), 303);
    assert_eq!(
        stored_ip(&app, comment_id_from(&first)).await,
        (Some("127.0.0.1".to_string()), Some("127.0.0.1".to_string())),
        "the socket peer is the client"
    );
    let spoofed = submit_from(
        &app,
        "198.51.100.8",
        &person("Bob", "bob@example.com", "two"),
    )
    .await;
    assert_eq!(
        spoofed.status(),
        429,
        "a made-up address does not escape the limit"
    );
}

#[tokio::test]
async fn the_interval_and_hourly_limit_come_from_the_settings() {
    let app = TestApp::spawn_with(&[BEHIND_PROXY]).await;
    set_settings(&app, |s| {
        s.flood_interval_secs = 60;
        s.flood_per_hour = 3;
    })
    .await;
    let ip = "198.51.100.7";
    let from = |n: usize| (format!("p{n}@example.com"), format!("comment {n}"));
    let (email, body) = from(1);
    assert_eq!(
        submit_from(&app, ip, &person("P", &email, &body))
            .await
            .status(),
        303
    );
    let (email, body) = from(2);
    let early = submit_from(&app, ip, &person("P", &email, &body)).await;
    assert_eq!(early.status(), 429);
    assert_eq!(retry_after(&early), 55, "60 s interval, 5 s gone");
    app.advance(55);
    assert_eq!(
        submit_from(&app, ip, &person("P", &email, &body))
            .await
            .status(),
        303
    );
    app.advance(60);
    let (email, body) = from(3);
    assert_eq!(
        submit_from(&app, ip, &person("P", &email, &body))
            .await
            .status(),
        303
    );
    app.advance(60);
    let (email, body) = from(4);
    let fourth = submit_from(&app, ip, &person("P", &email, &body)).await;
    assert_eq!(fourth.status(), 429, "three an hour");
    let wait = retry_after(&fourth);
    assert!((3000..3600).contains(&wait), "{wait}");
    app.advance(wait);
    assert_eq!(
        submit_from(&app, ip, &person("P", &email, &body))
            .await
            .status(),
        303
    );
}

#[tokio::test]
async fn flood_limits_can_be_switched_off() {
    let app = TestApp::spawn_with(&[NO_FLOOD]).await;
    for n in 0..3 {
        let body = format!("quick {n}");
        let response = submit(&app, &person("Ada", "ada@example.com", &body), &[]).await;
        assert_eq!(response.status(), 303);
    }
}

// --- Size and shape -----------------------------------------------------------------------------

#[tokio::test]
async fn a_form_over_256_kib_is_413_and_stores_nothing() {
    let app = TestApp::spawn().await;
    let before = app.comment_count().await;
    let huge = "x".repeat(256 * 1024);
    let response = submit(&app, &person("Ada", "ada@example.com", &huge), &[]).await;
    assert_eq!(response.status(), 413);
    assert_eq!(app.comment_count().await, before);
}

/// Sends `head` (request line and headers) and `body` on a raw connection, then reads until the
/// server closes it. The bound only keeps a broken server from hanging the suite.
async fn raw_exchange(app: &TestApp, head: &str, body: &[u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let port = app.address.rsplit(':').next().unwrap();
    let mut socket = tokio::net::TcpStream::connect(format!("127.0.0.1:{port}"))
        .await
        .unwrap();
    socket.write_all(head.as_bytes()).await.unwrap();
    socket.write_all(body).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(
        std::time::Duration::from_secs(120),
        socket.read_to_end(&mut answer),
    )
    .await
    .expect("the server closes the connection")
    .unwrap();
    String::from_utf8_lossy(&answer).into_owned()
}

fn form_post(path: &str, declared_length: usize) -> String {
    format!(
        "POST {path} HTTP/1.1\r\nHost: localhost\r\n\
         Content-Type: application/x-www-form-urlencoded\r\n\
         Content-Length: {declared_length}\r\n\r\n"
    )
}

#[tokio::test]
async fn a_body_that_never_finishes_is_cut_off_with_408_at_the_deadline_and_stores_nothing() {
    let app = TestApp::spawn_with(&[("LECTERN_BODY_TIMEOUT_SECS", "1")]).await;
    let before = app.comment_count().await;
    let comments = format!("/posts/{WELCOME}/comments");
    for path in [comments.as_str(), "/admin/login"] {
        let answer = raw_exchange(&app, &form_post(path, 100_000), b"name=").await;
        assert!(answer.starts_with("HTTP/1.1 408"), "{path}: {answer}");
        assert!(
            answer.contains("took too long to arrive"),
            "{path}: {answer}"
        );
    }
    assert_eq!(app.comment_count().await, before);
    // The server still answers others.
    assert_eq!(app.get("/").await.status(), 200);
}

#[tokio::test]
async fn a_declared_length_over_the_limit_is_413_before_any_of_the_body_is_sent() {
    let app = TestApp::spawn().await;
    let cases = [
        (format!("/posts/{WELCOME}/comments"), 256 * 1024 + 1),
        ("/admin/login".to_string(), 4 * 1024 * 1024 + 1),
    ];
    for (path, declared) in cases {
        let answer = raw_exchange(&app, &form_post(&path, declared), b"").await;
        assert!(answer.starts_with("HTTP/1.1 413"), "{path}: {answer}");
    }
    // The order of checks still holds: an unknown post is 404 whatever it declares.
    let answer = raw_exchange(
        &app,
        &form_post("/posts/no-such-post/comments", 1 << 30),
        b"",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 404"), "{answer}");
}

#[tokio::test]
async fn control_characters_and_invalid_utf8_are_422_and_store_nothing() {
    let app = TestApp::spawn_with(&[NO_FLOOD]).await;
    let before = app.comment_count().await;
    let cases = [
        ("body", "nul\0here"),
        ("body", "escape\u{1b}[31m"),
        ("body", "delete\u{7f}"),
        ("body", "next line\u{85}"),
        ("name", "Tab\tName"),
        ("name", "Two\nLines"),
        ("email", "ada\0@example.com"),
    ];
    for (field, value) in cases {
        let mut form = person("Ada", "ada@example.com", "Fine text");
        form.retain(|(k, _)| *k != field);
        form.push((field, value));
        let response = submit(&app, &form, &[]).await;
        assert_eq!(response.status(), 422, "{field}={value:?}");
    }
    let token = app.form_token(WELCOME).await;
    let response = app
        .client
        .post(app.url(POST_URL))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "form_token={token}&name=Ada&email=ada%40example.com&body=caf%C3%28"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 422, "invalid UTF-8");
    assert_eq!(app.comment_count().await, before);

    // Newlines and tabs belong in a comment.
    let response = submit(
        &app,
        &person("Ada", "ada@example.com", "line one\n\tindented"),
        &[],
    )
    .await;
    assert_eq!(response.status(), 303);
}

#[tokio::test]
async fn names_with_text_direction_controls_are_refused_and_store_nothing() {
    let app = TestApp::spawn().await;
    let before = app.comment_count().await;
    for name in ["Eve\u{202E}gnp.exe", "Eve\u{2066}x\u{2069}", "Eve\u{200F}"] {
        let response = submit(&app, &person(name, "eve@example.com", "hello"), &[]).await;
        assert_eq!(response.status(), 422, "{name:?}");
        assert!(response.text().await.unwrap().contains("text-direction"));
    }
    assert_eq!(app.comment_count().await, before);
}

// --- Blocks -------------------------------------------------------------------------------------

/// The fields a browser sends when a moderator presses a block button in the queue: the whole
/// bulk form, plus the pressed button's name and value.
async fn press_block_button(
    app: &TestApp,
    http: &reqwest::Client,
    comment_id: i32,
    kind: &str,
    duration: &str,
) -> reqwest::Response {
    let page = http
        .get(app.url("/admin/comments?status=all"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let button = format!(r#"formaction="/admin/blocks" name="block" value="{kind}:{comment_id}""#);
    assert!(page.contains(&button), "the row has the button: {button}");
    let csrf = hidden_value(&page, "csrf_token").unwrap();
    let back = hidden_value(&page, "back").unwrap();
    let spec = format!("{kind}:{comment_id}");
    let duration_field = format!("block_duration_{comment_id}");
    http.post(app.url("/admin/blocks"))
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("back", back.as_str()),
            ("action", "approve"),
            (duration_field.as_str(), duration),
            ("block", spec.as_str()),
        ])
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_moderator_blocks_an_email_from_the_queue_until_the_block_is_removed() {
    let app = TestApp::spawn_with(&[NO_FLOOD, BEHIND_PROXY]).await;
    let first = submit_from(
        &app,
        "198.51.100.7",
        &person("Ada", "ada@example.com", "first"),
    )
    .await;
    let first_id = comment_id_from(&first);
    let (http, csrf) = moderator(&app).await;
    let page = http
        .get(app.url("/admin/comments"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Block email") && page.contains("Block IP"));
    assert!(
        page.contains(r#"href="/admin/blocks""#),
        "the nav links to the blocks"
    );

    let response = press_block_button(&app, &http, first_id, "email", "7").await;
    assert_eq!(response.status(), 303);
    assert_eq!(
        response.headers()["location"],
        "/admin/comments?status=all",
        "back to the queue page"
    );
    assert_eq!(
        app.stored_comment(first_id).await.0,
        "pending",
        "the bulk form's action was not applied"
    );
    assert!(log_rows(&app).await.contains(&(
        "block".to_string(),
        "web".to_string(),
        "email ada@example.com for 7 days".to_string(),
        Some(first_id)
    )));

    // Another address, same email: spam, behind the usual response.
    let blocked = submit_from(
        &app,
        "203.0.113.60",
        &person("Ada", "ADA@example.com", "second"),
    )
    .await;
    assert_eq!(verdict(&app, blocked).await, is("spam", Some("blocked")));

    let list = http
        .get(app.url("/admin/blocks"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(list.contains("ada@example.com"));
    let block_id = hidden_value(&list, "id").expect("a remove button");
    let response = http
        .post(app.url("/admin/blocks"))
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("op", "remove"),
            ("id", block_id.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    assert_eq!(response.headers()["location"], "/admin/blocks?done=removed");
    let (action, via, detail, _) = log_rows(&app).await.pop().unwrap();
    assert_eq!(
        (action.as_str(), via.as_str(), detail.as_str()),
        ("unblock", "web", "email ada@example.com")
    );
    let list = app_page(&app, &http, "/admin/blocks?done=removed").await;
    assert!(list.contains("Block removed.") && list.contains("Nothing is blocked."));

    let again = submit_from(
        &app,
        "203.0.113.60",
        &person("Ada", "ada@example.com", "third"),
    )
    .await;
    assert_eq!(
        verdict(&app, again).await,
        is("pending", Some("first comment from this author"))
    );
}

async fn app_page(app: &TestApp, http: &reqwest::Client, path: &str) -> String {
    let response = http.get(app.url(path)).send().await.unwrap();
    assert_eq!(response.status(), 200, "{path}");
    response.text().await.unwrap()
}

#[tokio::test]
async fn a_blocked_ipv6_network_covers_its_64_until_the_block_expires() {
    let app = TestApp::spawn_with(&[NO_FLOOD, BEHIND_PROXY]).await;
    let first = submit_from(
        &app,
        "2001:db8:5:6::1",
        &person("Ada", "ada@example.com", "first"),
    )
    .await;
    let first_id = comment_id_from(&first);
    let (http, _) = moderator(&app).await;
    let response = press_block_button(&app, &http, first_id, "ip", "1").await;
    assert_eq!(response.status(), 303);
    let (action, _, detail, comment_id) = log_rows(&app).await.pop().unwrap();
    assert_eq!(
        (action.as_str(), detail.as_str(), comment_id),
        ("block", "ip 2001:db8:5:6::/64 for 1 day", Some(first_id))
    );

    let same_64 = submit_from(
        &app,
        "2001:db8:5:6:abcd::2",
        &person("Bob", "bob@example.com", "from the same network"),
    )
    .await;
    assert_eq!(verdict(&app, same_64).await, is("spam", Some("blocked")));
    let other_64 = submit_from(
        &app,
        "2001:db8:5:7::2",
        &person("Carol", "carol@example.com", "from next door"),
    )
    .await;
    assert_eq!(
        verdict(&app, other_64).await,
        is("pending", Some("first comment from this author"))
    );

    app.advance(24 * 3600);
    let after = submit_from(
        &app,
        "2001:db8:5:6::3",
        &person("Dan", "dan@example.com", "a day later"),
    )
    .await;
    assert_eq!(
        verdict(&app, after).await,
        is("pending", Some("first comment from this author"))
    );
    // The moderator's session has idled out over the day.
    let http = app
        .login_client("moderator@example.com", crate::common::PASSWORD)
        .await;
    let list = app_page(&app, &http, "/admin/blocks").await;
    assert!(
        !list.contains("2001:db8:5:6::/64"),
        "an expired block is not listed"
    );
}

#[tokio::test]
async fn staff_add_blocks_on_the_blocks_page_and_bad_input_is_422() {
    let app = TestApp::spawn_with(&[NO_FLOOD, BEHIND_PROXY]).await;
    let (http, csrf) = moderator(&app).await;
    let page = app_page(&app, &http, "/admin/blocks").await;
    assert!(page.contains(r#"<a href="/admin/blocks" aria-current="page">Blocks</a>"#));

    let before = app
        .db(|conn| Ok(blocks::table.count().get_result::<i64>(conn)?))
        .await;
    let response = http
        .post(app.url("/admin/blocks"))
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("op", "add"),
            ("kind", "ip"),
            ("value", "192.0.2.0/24"),
            ("duration", "forever"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 422);
    let page = response.text().await.unwrap();
    assert!(page.contains("IPv6 /64") && page.contains(r#"value="192.0.2.0/24""#));
    let after = app
        .db(|conn| Ok(blocks::table.count().get_result::<i64>(conn)?))
        .await;
    assert_eq!(after, before, "nothing added");

    let admin = app.staff_client("admin").await;
    let admin_csrf = app.csrf(&admin).await;
    let response = admin
        .post(app.url("/admin/blocks"))
        .form(&[
            ("csrf_token", admin_csrf.as_str()),
            ("op", "add"),
            ("kind", "ip"),
            ("value", "192.0.2.44"),
            ("duration", "forever"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    assert_eq!(response.headers()["location"], "/admin/blocks?done=added");
    let list = app_page(&app, &http, "/admin/blocks").await;
    assert!(list.contains("192.0.2.44") && list.contains("forever"));
    let blocked = submit_from(
        &app,
        "192.0.2.44",
        &person("Ada", "ada@example.com", "hello"),
    )
    .await;
    assert_eq!(verdict(&app, blocked).await, is("spam", Some("blocked")));

    // A logged-in moderator is never caught by a block.
    let mut form = person("Test moderator", "moderator@example.com", "staff words");
    let page = app_page(&app, &http, &format!("/posts/{WELCOME}")).await;
    let token = hidden_value(&page, "form_token").unwrap();
    app.advance(5);
    form.push(("form_token", &token));
    let response = http
        .post(app.url(POST_URL))
        .header("x-forwarded-for", "192.0.2.44")
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(verdict(&app, response).await, is("approved", None));
}

// --- Retention ----------------------------------------------------------------------------------

/// Whether the maintained per-status counts agree with the comments themselves.
async fn counts_are_true(app: &TestApp) -> bool {
    app.db(|conn| {
        let kept: Vec<(String, i32)> = comment_counts::table
            .select((comment_counts::status, comment_counts::total))
            .load(conn)?;
        for (status, total) in kept {
            let real: i64 = comments::table
                .filter(comments::status.eq(&status))
                .filter(comments::deleted_at.is_null())
                .count()
                .get_result(conn)?;
            if real != i64::from(total) {
                return Ok(false);
            }
        }
        Ok(true)
    })
    .await
}

#[tokio::test]
async fn the_retention_task_purges_old_spam_and_trash_and_drops_old_ip_addresses() {
    let app = TestApp::spawn_with(&[NO_FLOOD]).await;
    set_settings(&app, |s| s.disallowed_keywords = vec!["viagra".into()]).await;
    let (http, csrf) = moderator(&app).await;
    let spam =
        comment_id_from(&submit(&app, &person("Sam", "sam@example.com", "viagra"), &[]).await);
    let trashed =
        comment_id_from(&submit(&app, &person("Tom", "tom@example.com", "meh"), &[]).await);
    moderate(&app, &http, &csrf, trashed, "trash").await;
    let pending =
        comment_id_from(&submit(&app, &person("Ada", "ada@example.com", "waiting"), &[]).await);
    // An approved reply to the welcome comment, which is then trashed: purging it must leave
    // a placeholder so the reply keeps its place.
    let reply = submit(
        &app,
        &[
            ("name", "A lectern Commenter"),
            ("email", "commenter@lectern.invalid"),
            ("body", "A reply that stays"),
            ("parent_id", "1"),
        ],
        &[],
    )
    .await;
    let reply = comment_id_from(&reply);
    assert_eq!(app.stored_comment(reply).await.0, "approved");
    moderate(&app, &http, &csrf, 1, "trash").await;

    app.advance(31 * 24 * 3600);
    let fresh_spam =
        comment_id_from(&submit(&app, &person("Sam", "sam@example.com", "more viagra"), &[]).await);
    app.state.retention_wakeup.notify_one();
    // The log row is the run's last step.
    eventually("the purge", || async {
        log_rows(&app)
            .await
            .iter()
            .any(|(action, ..)| action == "purge")
    })
    .await;
    assert!(!comment_exists(&app, spam).await);

    assert!(!comment_exists(&app, trashed).await);
    assert!(comment_exists(&app, fresh_spam).await, "recent spam stays");
    assert_eq!(app.stored_comment(pending).await.0, "pending");
    assert_eq!(stored_ip(&app, pending).await, (None, None));
    assert_eq!(stored_ip(&app, reply).await, (None, None));
    assert_eq!(
        stored_ip(&app, fresh_spam).await,
        (Some("127.0.0.1".into()), Some("127.0.0.1".into())),
        "a recent address is kept"
    );
    assert!(
        counts_are_true(&app).await,
        "the maintained counts stay right"
    );
    let page = app.get_text(&format!("/posts/{WELCOME}")).await;
    assert!(page.contains("This comment was removed.") && page.contains("A reply that stays"));

    let purges: Vec<_> = log_rows(&app)
        .await
        .into_iter()
        .filter(|(action, ..)| action == "purge")
        .collect();
    assert_eq!(purges.len(), 1, "one log row per run: {purges:?}");
    let (_, via, detail, comment_id) = &purges[0];
    assert_eq!((via.as_str(), *comment_id), ("system", None));
    assert!(
        detail.contains("deleted 1 spam and 2 trashed comments older than 30 days")
            && detail.contains("dropped the IP address of 2 comments older than 30 days"),
        "{detail}"
    );
}

#[tokio::test]
async fn the_retention_task_drops_staff_addresses_expired_sessions_and_old_sent_mail() {
    use lectern::db::schema::{outbox, sessions};
    let app = TestApp::spawn_with(&[NO_FLOOD]).await;
    let (http, csrf) = moderator(&app).await;
    // Two held comments, each mailed to the moderator (as .eml files: no SMTP is set).
    let first = comment_id_from(&submit(&app, &person("Ada", "ada@example.com", "one"), &[]).await);
    comment_id_from(&submit(&app, &person("Bea", "bea@example.com", "two"), &[]).await);
    moderate(&app, &http, &csrf, first, "approve").await;
    let outbox_statuses = || {
        app.db(|conn| {
            Ok(outbox::table
                .select(outbox::status)
                .order(outbox::id)
                .load::<String>(conn)?)
        })
    };
    eventually("both emails sent", || async {
        outbox_statuses().await == ["sent", "sent"]
    })
    .await;
    // One of them failed later on a retry; a failed message waits for a person, however old.
    app.db(|conn| {
        let newest: i32 = outbox::table
            .select(outbox::id)
            .order(outbox::id.desc())
            .first(conn)?;
        Ok(diesel::update(outbox::table.find(newest))
            .set(outbox::status.eq("failed"))
            .execute(conn)?)
    })
    .await;
    let logged_ips = || {
        app.db(|conn| {
            Ok(moderation_log::table
                .filter(moderation_log::ip.is_not_null())
                .count()
                .get_result::<i64>(conn)?)
        })
    };
    assert!(
        logged_ips().await > 0,
        "the approval logged the moderator's address"
    );

    app.advance(31 * 24 * 3600);
    let report = lectern::moderation::retention::purge(&app.state.db, app.state.clock.now())
        .await
        .unwrap();
    assert_eq!(report.sessions_deleted, 1);
    assert_eq!(report.sent_mail_deleted, 1);
    assert!(report.log_ips_dropped > 0);
    assert_eq!(logged_ips().await, 0);
    assert_eq!(outbox_statuses().await, ["failed"]);
    let sessions_left: i64 = app
        .db(|conn| Ok(sessions::table.count().get_result(conn)?))
        .await;
    assert_eq!(sessions_left, 0);
    let detail = log_rows(&app).await.pop().unwrap().2;
    assert!(
        detail.contains("1 expired sessions deleted") && detail.contains("1 sent emails deleted"),
        "{detail}"
    );
}

#[tokio::test]
async fn ip_addresses_go_after_30_days_even_when_spam_is_kept_longer() {
    let app = TestApp::spawn_with(&[NO_FLOOD]).await;
    set_settings(&app, |s| {
        s.retention_days = 90;
        s.disallowed_keywords = vec!["viagra".into()];
    })
    .await;
    let spam =
        comment_id_from(&submit(&app, &person("Sam", "sam@example.com", "viagra"), &[]).await);
    app.advance(29 * 24 * 3600);
    let purge = || lectern::moderation::retention::purge(&app.state.db, app.state.clock.now());
    let report = purge().await.unwrap();
    assert!(report.is_empty(), "{report:?}");
    assert!(stored_ip(&app, spam).await.0.is_some());

    app.advance(2 * 24 * 3600);
    let report = purge().await.unwrap();
    assert_eq!((report.spam_deleted, report.ips_dropped), (0, 1));
    assert_eq!(app.stored_comment(spam).await.0, "spam");
    assert_eq!(stored_ip(&app, spam).await, (None, None));
}

#[tokio::test]
async fn a_shorter_retention_purges_sooner_and_expired_blocks_are_removed() {
    let app = TestApp::spawn_with(&[NO_FLOOD]).await;
    set_settings(&app, |s| {
        s.retention_days = 7;
        s.disallowed_keywords = vec!["viagra".into()];
    })
    .await;
    let (http, csrf) = moderator(&app).await;
    let response = http
        .post(app.url("/admin/blocks"))
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("kind", "email"),
            ("value", "blocked@example.com"),
            ("duration", "1"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    let spam =
        comment_id_from(&submit(&app, &person("Sam", "sam@example.com", "viagra"), &[]).await);
    let pending =
        comment_id_from(&submit(&app, &person("Ada", "ada@example.com", "hello"), &[]).await);
    app.advance(8 * 24 * 3600);
    let report = lectern::moderation::retention::purge(&app.state.db, app.state.clock.now())
        .await
        .unwrap();
    assert_eq!(
        (
            report.spam_deleted,
            report.trash_deleted,
            report.ips_dropped,
            report.blocks_expired
        ),
        (1, 0, 1, 1)
    );
    assert!(!comment_exists(&app, spam).await);
    assert_eq!(stored_ip(&app, pending).await, (None, None));
    let left = app
        .db(|conn| Ok(blocks::table.count().get_result::<i64>(conn)?))
        .await;
    assert_eq!(left, 0);
    assert!(counts_are_true(&app).await);
}
