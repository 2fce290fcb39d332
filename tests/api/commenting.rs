use crate::common::{TestApp, WELCOME, client, comment_id_from, hidden_value};

const POST_URL: &str = "/posts/welcome-to-lectern/comments";

fn valid(body: &str) -> Vec<(&str, &str)> {
    vec![
        ("name", "Ada Reader"),
        ("email", "ada@example.com"),
        ("website", "example.com"),
        ("body", body),
    ]
}

#[tokio::test]
async fn a_valid_comment_redirects_and_shows_as_pending_only_to_its_author() {
    let app = TestApp::spawn().await;
    let response = app.comment(WELCOME, &valid("First time here!")).await;
    assert_eq!(response.status(), 303);
    let id = comment_id_from(&response);
    assert_eq!(
        response.headers()["location"],
        format!("/posts/{WELCOME}#comment-{id}").as_str()
    );
    let (status, reason, _) = app.stored_comment(id).await;
    assert_eq!(status, "pending");
    assert_eq!(reason.as_deref(), Some("first comment from this author"));

    let mine = app.get(&format!("/posts/{WELCOME}")).await;
    assert_eq!(mine.headers()["cache-control"], "private, no-store");
    let mine = mine.text().await.unwrap();
    assert!(mine.contains(&format!(r#"id="comment-{id}""#)));
    assert!(mine.contains("Your comment is awaiting moderation."));
    assert!(mine.contains("First time here!"));
    // The heading counts approved comments only.
    assert!(mine.contains("One thought on"));

    let stranger = client()
        .get(app.url(&format!("/posts/{WELCOME}")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!stranger.contains("First time here!"));
    assert!(!stranger.contains("Your comment is awaiting moderation."));
}

#[tokio::test]
async fn a_returning_approved_commenter_appears_at_once() {
    let app = TestApp::spawn().await;
    // The welcome comment by this address was stored at start-up; let the flood window pass.
    app.advance(60);
    let fields = [
        ("name", "A lectern Commenter"),
        ("email", "commenter@lectern.invalid"),
        ("body", "Back again"),
    ];
    let response = app.comment(WELCOME, &fields).await;
    let id = comment_id_from(&response);
    assert_eq!(app.stored_comment(id).await.0, "approved");
    let page = client()
        .get(app.url(&format!("/posts/{WELCOME}")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Back again"));
    assert!(page.contains("2 thoughts on “Welcome to lectern”"));
}

#[tokio::test]
async fn each_invalid_field_gives_422_with_the_input_kept_and_nothing_stored() {
    let app = TestApp::spawn().await;
    let before = app.comment_count().await;
    let long_name = "n".repeat(101);
    let long_site = format!("https://example.com/{}", "p".repeat(200));
    let cases: Vec<(&str, &str, &str)> = vec![
        ("name", "", "Please enter your name."),
        ("name", long_name.as_str(), "the limit is 100"),
        ("email", "", "Please enter your email address."),
        ("email", "not-an-email", "valid email address"),
        ("website", "javascript:alert(1)", "http:// or https://"),
        ("website", "ftp://example.com", "http:// or https://"),
        ("website", long_site.as_str(), "limit is 200"),
        ("body", "", "Please type your comment."),
        ("body", "bell\u{7}", "control characters"),
        ("parent_id", "abc", "replying to"),
        ("parent_id", "9999", "not available for replies"),
    ];
    for (field, value, message) in cases {
        let mut form = vec![
            ("name", "Kept Name"),
            ("email", "kept@example.com"),
            ("website", "https://kept.example.com"),
            ("body", "Kept body text"),
        ];
        form.retain(|(k, _)| *k != field);
        form.push((field, value));
        let response = app.comment(WELCOME, &form).await;
        assert_eq!(response.status(), 422, "{field}={value:?}");
        assert_eq!(response.headers()["cache-control"], "private, no-store");
        let page = response.text().await.unwrap();
        assert!(page.contains(message), "{field}: expected {message:?}");
        for (k, v) in &form {
            if *k != field && *k != "parent_id" {
                assert!(page.contains(v), "{field}: input {k} kept");
            }
        }
    }
    assert_eq!(app.comment_count().await, before);
}

#[tokio::test]
async fn an_over_long_body_is_refused_and_one_at_the_limit_is_stored_byte_for_byte() {
    let app = TestApp::spawn().await;
    let before = app.comment_count().await;
    let over = "é".repeat(10_001);
    let response = app.comment(WELCOME, &valid(&over)).await;
    assert_eq!(response.status(), 422);
    let page = response.text().await.unwrap();
    assert!(page.contains("10001 characters long; the limit is 10000"));
    assert!(page.contains(&over), "the text comes back whole");
    assert_eq!(app.comment_count().await, before);

    // Emoji and CR LF: the limit counts characters after CR LF becomes LF.
    let mut at_limit = "😀\r\n".repeat(4_999);
    at_limit.push_str("xy");
    let response = app.comment(WELCOME, &valid(&at_limit)).await;
    assert_eq!(response.status(), 303);
    let id = comment_id_from(&response);
    let stored = app.stored_comment(id).await.2;
    assert_eq!(stored, at_limit.replace("\r\n", "\n"));
    assert_eq!(stored.chars().count(), 10_000);
}

#[tokio::test]
async fn a_form_body_over_256_kib_is_413_and_the_order_of_checks_holds() {
    let app = TestApp::spawn().await;
    let huge = "x".repeat(300 * 1024);
    let response = app.post_form(POST_URL, &[("body", huge.as_str())]).await;
    assert_eq!(response.status(), 413);
    // An unpublished post answers 404 before the size is looked at.
    let response = app
        .post_form("/posts/nope/comments", &[("body", huge.as_str())])
        .await;
    assert_eq!(response.status(), 404);
}

#[tokio::test]
async fn script_and_javascript_payloads_come_back_escaped_or_refused() {
    let app = TestApp::spawn().await;
    let xss = "<script>alert('x')</script>";
    let response = app
        .comment(
            WELCOME,
            &[
                ("name", xss),
                ("email", "xss@example.com"),
                ("website", "javascript:alert(1)"),
                ("body", xss),
            ],
        )
        .await;
    assert_eq!(response.status(), 422);
    let page = response.text().await.unwrap();
    assert!(!page.contains(xss));
    assert!(shows_escaped(&page, "<script>"));
    assert!(!page.contains(r#"href="javascript:"#));

    let response = app
        .comment(
            WELCOME,
            &[
                ("name", xss),
                ("email", "xss@example.com"),
                ("website", "https://example.com/\"onmouseover=alert(1)"),
                (
                    "body",
                    &format!("{xss} and javascript:alert(1) and <img src=x onerror=alert(1)>"),
                ),
            ],
        )
        .await;
    assert_eq!(response.status(), 422, "a quote in the website is refused");
    let response = app
        .comment(
            WELCOME,
            &[
                ("name", xss),
                ("email", "xss@example.com"),
                (
                    "body",
                    &format!("{xss} and javascript:alert(1) and <img src=x onerror=alert(1)>"),
                ),
            ],
        )
        .await;
    assert_eq!(response.status(), 303);
    let page = app.get_text(&format!("/posts/{WELCOME}")).await;
    assert!(!page.contains("<script>alert"));
    assert!(!page.contains("<img src=x"));
    assert!(!page.contains(r#"href="javascript"#));
    assert!(shows_escaped(&page, "<script>"));
}

/// Whether `text` appears HTML-escaped (askama writes `&#60;`, the comment renderer `&lt;`).
fn shows_escaped(page: &str, text: &str) -> bool {
    let named = text.replace('<', "&lt;").replace('>', "&gt;");
    let numeric = text.replace('<', "&#60;").replace('>', "&#62;");
    page.contains(&named) || page.contains(&numeric)
}

#[tokio::test]
async fn links_in_comments_get_nofollow_ugc_noopener() {
    let app = TestApp::spawn().await;
    // The welcome comment by this address was stored at start-up; let the flood window pass.
    app.advance(60);
    let fields = [
        ("name", "A lectern Commenter"),
        ("email", "commenter@lectern.invalid"),
        ("body", "See https://example.org/page for more"),
    ];
    let response = app.comment(WELCOME, &fields).await;
    assert_eq!(response.status(), 303);
    let page = app.get_text(&format!("/posts/{WELCOME}")).await;
    assert!(
        page.contains(r#"<a href="https://example.org/page" rel="nofollow ugc noopener">"#),
        "{page}"
    );
}

#[tokio::test]
async fn replies_thread_under_an_approved_parent_and_the_reply_link_works_without_javascript() {
    let app = TestApp::spawn().await;
    // The welcome comment by this address was stored at start-up; let the flood window pass.
    app.advance(60);
    let form = app
        .get_text(&format!("/posts/{WELCOME}?replytocom=1"))
        .await;
    assert!(form.contains("Reply to A lectern Commenter"));
    assert_eq!(hidden_value(&form, "parent_id").as_deref(), Some("1"));
    let fields = [
        ("name", "A lectern Commenter"),
        ("email", "commenter@lectern.invalid"),
        ("body", "Replying to myself"),
        ("parent_id", "1"),
    ];
    let response = app.comment(WELCOME, &fields).await;
    let id = comment_id_from(&response);
    let page = app.get_text(&format!("/posts/{WELCOME}")).await;
    let parent_at = page.find(r#"id="comment-1""#).unwrap();
    let children_at = page[parent_at..].find(r#"<ol class="children">"#).unwrap() + parent_at;
    let reply_at = page.find(&format!(r#"id="comment-{id}""#)).unwrap();
    assert!(children_at < reply_at);
    assert!(page.contains("depth-2"));
}

#[tokio::test]
async fn a_duplicate_comment_is_409() {
    let app = TestApp::spawn_with(&[("LECTERN_FLOOD_LIMITS", "off")]).await;
    let first = app.comment(WELCOME, &valid("Same words")).await;
    assert_eq!(first.status(), 303);
    let before = app.comment_count().await;
    let second = app.comment(WELCOME, &valid("Same words")).await;
    assert_eq!(second.status(), 409);
    assert!(second.text().await.unwrap().contains("already said that"));
    assert_eq!(app.comment_count().await, before);
}

#[tokio::test]
async fn flooding_is_429_with_retry_after_and_stores_nothing() {
    let app = TestApp::spawn().await;
    assert_eq!(app.comment(WELCOME, &valid("one")).await.status(), 303);
    let before = app.comment_count().await;
    // The form helper lets 5 seconds pass; the limit is one comment per 15 seconds.
    let response = app.comment(WELCOME, &valid("two")).await;
    assert_eq!(response.status(), 429);
    let retry: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=15).contains(&retry), "{retry}");
    assert_eq!(app.comment_count().await, before);
    app.advance(retry as i64);
    assert_eq!(app.comment(WELCOME, &valid("three")).await.status(), 303);
}

#[tokio::test]
async fn bots_get_the_human_response_but_are_stored_as_spam() {
    let app = TestApp::spawn_with(&[("LECTERN_FLOOD_LIMITS", "off")]).await;
    let page = app.get_text(&format!("/posts/{WELCOME}")).await;
    let token = hidden_value(&page, "form_token").unwrap();

    // Too fast: no time passes between render and submit.
    let mut form = valid("instant");
    form.push(("form_token", &token));
    let response = app.post_form(POST_URL, &form).await;
    assert_eq!(response.status(), 303);
    let (status, reason, _) = app.stored_comment(comment_id_from(&response)).await;
    assert_eq!(
        (status.as_str(), reason.as_deref()),
        ("spam", Some("form submitted too fast"))
    );

    app.advance(5);
    let mut form = valid("honey");
    form.push(("form_token", &token));
    form.push(("homepage", "http://spam.example"));
    let response = app.post_form(POST_URL, &form).await;
    assert_eq!(response.status(), 303);
    let (status, reason, _) = app.stored_comment(comment_id_from(&response)).await;
    assert_eq!(
        (status.as_str(), reason.as_deref()),
        ("spam", Some("honeypot field filled in"))
    );

    let mut form = valid("forged");
    form.push(("form_token", "1.1.AAAA"));
    let response = app.post_form(POST_URL, &form).await;
    assert_eq!(response.status(), 303);
    let (status, reason, _) = app.stored_comment(comment_id_from(&response)).await;
    assert_eq!(
        (status.as_str(), reason.as_deref()),
        ("spam", Some("form token missing or forged"))
    );

    // A bot learns nothing: its sender sees it exactly like a held comment, and nobody else
    // sees it at all.
    let page = app.get_text(&format!("/posts/{WELCOME}")).await;
    assert!(page.contains("honey"));
    assert!(page.contains("Your comment is awaiting moderation."));
    let stranger = app
        .get_text_as(&client(), &format!("/posts/{WELCOME}"))
        .await;
    assert!(!stranger.contains("honey"));
}

#[tokio::test]
async fn a_form_older_than_a_day_is_shown_again_with_the_input_kept() {
    let app = TestApp::spawn().await;
    let page = app.get_text(&format!("/posts/{WELCOME}")).await;
    let token = hidden_value(&page, "form_token").unwrap();
    app.advance(25 * 3600);
    let before = app.comment_count().await;
    let mut form = valid("Written yesterday");
    form.push(("form_token", &token));
    let response = app.post_form(POST_URL, &form).await;
    assert_eq!(response.status(), 422);
    let page = response.text().await.unwrap();
    assert!(page.contains("please submit it again"));
    assert!(page.contains("Written yesterday"));
    assert_ne!(hidden_value(&page, "form_token").unwrap(), token);
    assert_eq!(app.comment_count().await, before);
}

#[tokio::test]
async fn invalid_utf8_is_422_and_stores_nothing() {
    let app = TestApp::spawn().await;
    let before = app.comment_count().await;
    let response = app
        .client
        .post(app.url(POST_URL))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("name=%FF%FE&email=a%40example.com&body=hi")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 422);
    assert_eq!(app.comment_count().await, before);
}

#[tokio::test]
async fn remember_me_prefills_the_form_and_is_off_by_default() {
    let app = TestApp::spawn().await;
    let response = app.comment(WELCOME, &valid("no remember")).await;
    assert!(
        response
            .headers()
            .get_all("set-cookie")
            .iter()
            .all(|c| !c.to_str().unwrap().starts_with("lectern_commenter="))
    );
    let page = app.get_text(&format!("/posts/{WELCOME}")).await;
    assert!(!page.contains(r#"value="Ada Reader""#));

    app.advance(20);
    let mut form = valid("remember me");
    form.push(("remember", "1"));
    assert_eq!(app.comment(WELCOME, &form).await.status(), 303);
    let response = app.get(&format!("/posts/{WELCOME}")).await;
    assert_eq!(response.headers()["cache-control"], "private, no-store");
    let page = response.text().await.unwrap();
    assert!(page.contains(r#"value="Ada Reader""#));
    assert!(page.contains(r#"value="ada@example.com""#));
}

#[tokio::test]
async fn a_cross_site_post_is_refused_before_anything_is_stored() {
    let app = TestApp::spawn().await;
    let before = app.comment_count().await;
    let token = app.form_token(WELCOME).await;
    let mut form = valid("from elsewhere");
    form.push(("form_token", &token));
    let response = app
        .client
        .post(app.url(POST_URL))
        .header("origin", "https://evil.example")
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    let response = app
        .client
        .post(app.url(POST_URL))
        .header("sec-fetch-site", "cross-site")
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    assert_eq!(app.comment_count().await, before);
    let response = app
        .client
        .post(app.url(POST_URL))
        .header("origin", app.address.as_str())
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
}

#[tokio::test]
async fn comments_are_written_in_a_safe_markdown_subset() {
    let app = TestApp::spawn().await;
    let body = "Some *emphasis*, **strong** and `code`.\nSame paragraph, new line.\n\n> a quote\n\n- one\n- two\n\n# not a heading\n\n<b>raw</b> [x](javascript:alert(1))";
    let response = app.comment(WELCOME, &valid(body)).await;
    assert_eq!(response.status(), 303);
    let id = comment_id_from(&response);
    let page = app.get_text(&format!("/posts/{WELCOME}")).await;
    let start = page.find(&format!(r#"id="comment-{id}""#)).unwrap();
    let comment = &page[start..];
    for part in [
        "<em>emphasis</em>",
        "<strong>strong</strong>",
        "<code>code</code>",
        "<br>",
        "<blockquote>",
        "<li>one</li>",
        "# not a heading",
        "&lt;b&gt;raw&lt;/b&gt;",
    ] {
        assert!(comment.contains(part), "{part} missing");
    }
    assert!(!comment.contains("javascript:"));
    assert!(!comment.contains("<h1"));
    // The stored text is what was typed, and its format is remembered.
    let (_, _, stored) = app.stored_comment(id).await;
    assert_eq!(stored, body);
    let form = app.get_text(&format!("/posts/{WELCOME}")).await;
    assert!(form.contains("You can use Markdown"));
}

#[tokio::test]
async fn comments_submitted_at_once_are_checked_as_if_one_after_another() {
    let app = TestApp::spawn_with(&[("LECTERN_FLOOD_LIMITS", "off")]).await;
    let token = app.form_token(WELCOME).await;
    app.advance(10);
    let before = app.comment_count().await;
    // Twelve copies of one comment, all at once: they share batches, and exactly one is stored.
    let sends = (0..12).map(|_| {
        let token = token.clone();
        let http = client();
        let url = app.url(POST_URL);
        async move {
            http.post(url)
                .form(&[
                    ("name", "Twin"),
                    ("email", "twin@example.com"),
                    ("body", "Said at the same moment."),
                    ("form_token", token.as_str()),
                ])
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    });
    let mut statuses = futures_util::future::join_all(sends).await;
    statuses.sort();
    assert_eq!(
        statuses.iter().filter(|s| **s == 303).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 409).count(),
        11,
        "{statuses:?}"
    );
    assert_eq!(app.comment_count().await, before + 1);

    // Distinct comments at once: every one acknowledged is stored.
    let sends = (0..20).map(|i| {
        let token = token.clone();
        let http = client();
        let url = app.url(POST_URL);
        async move {
            let body = format!("Distinct comment number {i}.");
            let email = format!("many{i}@example.com");
            http.post(url)
                .form(&[
                    ("name", "Many"),
                    ("email", email.as_str()),
                    ("body", body.as_str()),
                    ("form_token", token.as_str()),
                ])
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    });
    let statuses = futures_util::future::join_all(sends).await;
    assert!(statuses.iter().all(|s| *s == 303), "{statuses:?}");
    assert_eq!(app.comment_count().await, before + 21);
}
