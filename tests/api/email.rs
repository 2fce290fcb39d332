//! Email notifications, read from a real SMTP server on loopback.

use crate::common::{PASSWORD, TestApp, client, comment_id_from};
use crate::reading::publish;
use crate::smtp::{Mode, SmtpServer};

const POST: &str = "on-email";

/// An app mailing to `smtp`, with an admin who writes the post `on-email` and a moderator.
async fn site(smtp: &SmtpServer) -> TestApp {
    let app = TestApp::spawn_with(&[
        ("LECTERN_SMTP_URL", &smtp.url()),
        ("LECTERN_SITE_TITLE", "Test Blog"),
    ])
    .await;
    app.create_user("admin@example.com", "Ann Admin", "admin", PASSWORD)
        .await;
    app.create_user("mod@example.com", "Mo Moderator", "moderator", PASSWORD)
        .await;
    publish(
        &app,
        "---\ntitle: Mail me\nslug: on-email\nauthor: admin@example.com\n---\nA post.\n",
    )
    .await;
    app
}

async fn comment(
    app: &TestApp,
    name: &str,
    email: &str,
    body: &str,
    extra: &[(&str, &str)],
) -> i32 {
    app.advance(60);
    let mut fields = vec![("name", name), ("email", email), ("body", body)];
    fields.extend_from_slice(extra);
    let response = app.comment(POST, &fields).await;
    assert_eq!(response.status(), 303);
    comment_id_from(&response)
}

fn to(mail: &crate::smtp::Mail) -> String {
    mail.recipients.join(",")
}

async fn approve(app: &TestApp, id: i32) {
    let http = app.login_client("mod@example.com", PASSWORD).await;
    let response = app
        .staff_post(&http, &format!("/admin/comments/{id}/approve"), &[])
        .await;
    assert_eq!(response.status(), 303);
}

#[tokio::test]
async fn a_held_comment_mails_each_moderator_once_with_links_that_act_only_on_post() {
    let smtp = SmtpServer::start().await;
    let app = site(&smtp).await;
    let id = comment(&app, "Reader", "reader@example.com", "Hold me", &[]).await;
    let mails = smtp.wait_for(2).await;
    let mut recipients: Vec<String> = mails.iter().map(to).collect();
    recipients.sort();
    assert_eq!(recipients, ["<admin@example.com>", "<mod@example.com>"]);
    let mail = mails.iter().find(|m| to(m).contains("mod@")).unwrap();
    assert_eq!(mail.subject(), "[Test Blog] Please moderate: \"Mail me\"");
    let text = mail.text();
    assert!(
        text.contains("reader@example.com"),
        "the author's email is shown to moderators"
    );
    assert!(text.contains("Hold me"));
    assert!(text.contains("Held because: first comment from this author"));
    assert!(text.contains("1 comment is waiting"));

    let approve = mail.link("/moderate/").unwrap();
    let path = approve.trim_start_matches(&app.address).to_string();
    let scanner = client();
    let page = scanner.get(app.url(&path)).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("Hold me"));
    assert_eq!(
        app.stored_comment(id).await.0,
        "pending",
        "a GET changes nothing"
    );

    let done = scanner.post(app.url(&path)).send().await.unwrap();
    assert_eq!(done.status(), 200);
    assert_eq!(app.stored_comment(id).await.0, "approved");
    let again = scanner.post(app.url(&path)).send().await.unwrap();
    assert_eq!(again.status(), 410, "a link works once");
    assert_eq!(
        scanner.get(app.url(&path)).send().await.unwrap().status(),
        410
    );

    let tampered = path.replacen("/moderate/", "/moderate/x", 1);
    assert_eq!(
        scanner
            .post(app.url(&tampered))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );

    // The log names the moderator the link was made for, and that it came from email.
    let log: Vec<(Option<i32>, String, String)> = app
        .db(|conn| {
            use diesel::prelude::*;
            use lectern::db::schema::moderation_log as l;
            Ok(l::table
                .select((l::user_id, l::action, l::via))
                .load(conn)?)
        })
        .await;
    assert_eq!(log.len(), 1);
    assert_eq!((log[0].1.as_str(), log[0].2.as_str()), ("approve", "email"));

    // The admin's spam link has expired after a week.
    let admin_mail = mails.iter().find(|m| to(m).contains("admin@")).unwrap();
    let text = admin_mail.text();
    let spam_at = text.find("Mark it as spam: ").unwrap() + "Mark it as spam: ".len();
    let spam = text[spam_at..]
        .lines()
        .next()
        .unwrap()
        .trim()
        .trim_start_matches(&app.address)
        .to_string();
    app.advance(8 * 86_400);
    assert_eq!(
        scanner.post(app.url(&spam)).send().await.unwrap().status(),
        410
    );
    assert_eq!(app.stored_comment(id).await.0, "approved");
}

#[tokio::test]
async fn approval_mails_the_author_and_a_confirmation_and_replies_reach_only_confirmed_addresses() {
    let smtp = SmtpServer::start().await;
    let app = site(&smtp).await;
    let id = comment(
        &app,
        "Rita Reader",
        "rita@example.com",
        "Tell me about replies",
        &[("notify", "1")],
    )
    .await;
    smtp.wait_for(2).await; // the moderation emails
    approve(&app, id).await;
    let mails = smtp.wait_for(4).await;
    let new: Vec<_> = mails[2..].to_vec();
    let author = new
        .iter()
        .find(|m| to(m) == "<admin@example.com>")
        .expect("the post's author hears of it");
    assert_eq!(author.subject(), "[Test Blog] New comment on \"Mail me\"");
    let confirm = new
        .iter()
        .find(|m| to(m) == "<rita@example.com>")
        .expect("a confirmation");
    assert!(confirm.subject().contains("Please confirm"));
    assert!(confirm.header("List-Unsubscribe").is_some());

    // Before confirming, a reply sends nothing to Rita.
    let before = smtp.mails().len();
    let reply = comment(
        &app,
        "Other",
        "other@example.com",
        "A reply",
        &[("parent_id", &id.to_string())],
    )
    .await;
    smtp.wait_for(before + 2).await; // moderation emails for the reply
    approve(&app, reply).await;
    let after_reply = smtp.wait_for(before + 3).await; // the post's author only
    assert!(
        after_reply[before..]
            .iter()
            .all(|m| to(m) != "<rita@example.com>")
    );

    // Confirm (GET shows a page, POST confirms), then the next approved reply reaches her.
    let path = confirm
        .link("/confirm/")
        .unwrap()
        .trim_start_matches(&app.address)
        .to_string();
    assert_eq!(
        client().get(app.url(&path)).send().await.unwrap().status(),
        200
    );
    assert_eq!(
        client().post(app.url(&path)).send().await.unwrap().status(),
        200
    );
    let count = smtp.mails().len();
    let second = comment(
        &app,
        "Third",
        "third@example.com",
        "Another reply",
        &[("parent_id", &id.to_string())],
    )
    .await;
    smtp.wait_for(count + 2).await;
    approve(&app, second).await;
    let mails = smtp.wait_for(count + 4).await;
    let to_rita = mails[count..]
        .iter()
        .find(|m| to(m) == "<rita@example.com>")
        .expect("a reply notification");
    assert_eq!(
        to_rita.subject(),
        "[Test Blog] New reply to your comment on \"Mail me\""
    );
    assert!(to_rita.text().contains("Another reply"));
    assert_eq!(
        to_rita.header("List-Unsubscribe-Post").as_deref(),
        Some("List-Unsubscribe=One-Click")
    );

    // One-click unsubscribe (RFC 8058: a bare POST), then nothing more.
    let unsubscribe = to_rita.header("List-Unsubscribe").unwrap();
    let url = unsubscribe.trim_start_matches('<').trim_end_matches('>');
    let response = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("List-Unsubscribe=One-Click")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let count = smtp.mails().len();
    let third = comment(
        &app,
        "Fourth",
        "fourth@example.com",
        "Yet another",
        &[("parent_id", &id.to_string())],
    )
    .await;
    smtp.wait_for(count + 2).await;
    approve(&app, third).await;
    let mails = smtp.wait_for(count + 3).await;
    assert!(mails[count..].iter().all(|m| to(m) != "<rita@example.com>"));
}

#[tokio::test]
async fn spam_sends_nothing_to_anyone() {
    let smtp = SmtpServer::start().await;
    let app = site(&smtp).await;
    let page = app.get_text(&format!("/posts/{POST}")).await;
    let token = crate::common::hidden_value(&page, "form_token").unwrap();
    // Submitted at once: a bot, stored as spam.
    let response = app
        .post_form(
            &format!("/posts/{POST}/comments"),
            &[
                ("form_token", &token),
                ("name", "Bot"),
                ("email", "victim@example.com"),
                ("body", "buy"),
                ("notify", "1"),
            ],
        )
        .await;
    assert_eq!(response.status(), 303);
    assert_eq!(
        app.stored_comment(comment_id_from(&response)).await.0,
        "spam"
    );
    // A held comment afterwards proves the worker ran past the spam.
    comment(&app, "Real", "real@example.com", "hello", &[]).await;
    let mails = smtp.wait_for(2).await;
    assert_eq!(mails.len(), 2);
    assert!(
        mails
            .iter()
            .all(|m| !m.text().contains("buy") && to(m) != "<victim@example.com>")
    );
}

#[tokio::test]
async fn with_the_smtp_server_down_the_comment_is_stored_and_mail_arrives_once_it_is_up() {
    let port = SmtpServer::reserve_port();
    let url = format!("smtp://127.0.0.1:{port}");
    let app = TestApp::spawn_with(&[("LECTERN_SMTP_URL", &url)]).await;
    app.create_user("mod@example.com", "Mo", "moderator", PASSWORD)
        .await;
    let response = app
        .comment(
            "welcome-to-lectern",
            &[
                ("name", "Patient"),
                ("email", "p@example.com"),
                ("body", "Waiting for mail"),
            ],
        )
        .await;
    assert_eq!(response.status(), 303);
    let health = app.get_text("/healthz").await;
    assert!(health.contains("failed_emails: 0"));

    let smtp = SmtpServer::start_on(port).await;
    let mails = app.deliver_mail(&smtp, 1).await;
    assert_eq!(to(&mails[0]), "<mod@example.com>");
    assert_eq!(
        settled_statuses(&app).await,
        ["sent"],
        "delivered exactly once"
    );
    assert_eq!(smtp.mails().len(), 1);
}

#[tokio::test]
async fn a_5xx_reply_fails_the_message_visibly_and_it_can_be_retried() {
    let smtp = SmtpServer::start().await;
    smtp.set_mode(Mode::Reject);
    let app = TestApp::spawn_with(&[("LECTERN_SMTP_URL", &smtp.url())]).await;
    app.create_user("admin@example.com", "Ann", "admin", PASSWORD)
        .await;
    app.comment(
        "welcome-to-lectern",
        &[
            ("name", "R"),
            ("email", "r@example.com"),
            ("body", "rejected mail"),
        ],
    )
    .await;
    let http = app.login_client("admin@example.com", PASSWORD).await;
    let mut page = String::new();
    for _ in 0..200 {
        if app.get_text("/healthz").await.contains("failed_emails: 1") {
            page = http
                .get(app.url("/admin/mail"))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            break;
        }
        app.state.mail_wakeup.notify_one();
        tokio::task::yield_now().await;
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(page.contains("1 message failed."), "{page}");
    assert!(page.contains("554"));
    smtp.set_mode(Mode::Accept);
    let csrf = app.csrf(&http).await;
    let id = {
        let end = page.find("/retry\"").unwrap();
        let start = page[..end].rfind('/').unwrap() + 1;
        page[start..end].to_string()
    };
    let retried = http
        .post(app.url(&format!("/admin/mail/{id}/retry")))
        .form(&[("csrf_token", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(retried.status(), 303);
    smtp.wait_for(1).await;
}

#[tokio::test]
async fn a_4xx_reply_is_retried_later() {
    let smtp = SmtpServer::start().await;
    smtp.set_mode(Mode::Defer);
    let app = TestApp::spawn_with(&[("LECTERN_SMTP_URL", &smtp.url())]).await;
    app.create_user("mod@example.com", "Mo", "moderator", PASSWORD)
        .await;
    app.comment(
        "welcome-to-lectern",
        &[
            ("name", "R"),
            ("email", "r@example.com"),
            ("body", "deferred"),
        ],
    )
    .await;
    // Wait until the first attempt was deferred.
    for _ in 0..500 {
        let attempts: Vec<i32> = app
            .db(|conn| {
                use diesel::prelude::*;
                use lectern::db::schema::outbox;
                Ok(outbox::table.select(outbox::attempts).load(conn)?)
            })
            .await;
        if attempts.first().is_some_and(|a| *a >= 1) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    smtp.set_mode(Mode::Accept);
    app.deliver_mail(&smtp, 1).await;
}

#[tokio::test]
async fn mail_queued_when_the_app_stops_is_delivered_after_a_restart() {
    let port = SmtpServer::reserve_port();
    let url = format!("smtp://127.0.0.1:{port}");
    let first = TestApp::spawn_with(&[("LECTERN_SMTP_URL", &url)]).await;
    first
        .create_user("mod@example.com", "Mo", "moderator", PASSWORD)
        .await;
    first
        .comment(
            "welcome-to-lectern",
            &[
                ("name", "R"),
                ("email", "r@example.com"),
                ("body", "survive a restart"),
            ],
        )
        .await;
    first.stop().await;

    let smtp = SmtpServer::start_on(port).await;
    let dir = first.test_db.as_ref().unwrap().dir.path().to_path_buf();
    let second = TestApp::spawn_on(&first.database_url, &dir, &[("LECTERN_SMTP_URL", &url)]).await;
    let mails = second.deliver_mail(&smtp, 1).await;
    assert!(mails[0].text().contains("survive a restart"));
}

#[tokio::test]
async fn a_crlf_injection_in_the_name_adds_no_header_and_no_recipient() {
    let smtp = SmtpServer::start().await;
    let app = site(&smtp).await;
    let before = app.comment_count().await;
    let response = app
        .comment(
            POST,
            &[
                ("name", "Eve\r\nBcc: evil@example.com"),
                ("email", "eve@example.com"),
                ("body", "hi"),
            ],
        )
        .await;
    assert_eq!(response.status(), 422);
    assert_eq!(app.comment_count().await, before);

    // Quotes, commas, angle brackets and non-ASCII in a name are encoded, never a new address.
    let id = comment(
        &app,
        "Zoë, \"the\" <Admin> evil@example.com",
        "zoe@example.com",
        "hello",
        &[("notify", "1")],
    )
    .await;
    smtp.wait_for(2).await;
    approve(&app, id).await;
    let mails = smtp.wait_for(4).await;
    for mail in &mails {
        assert_eq!(mail.recipients.len(), 1);
        assert!(!mail.recipients[0].contains("evil"));
        assert!(
            mail.headers()
                .iter()
                .all(|h| !h.to_ascii_lowercase().starts_with("bcc"))
        );
    }
    let confirm = mails.iter().find(|m| to(m) == "<zoe@example.com>").unwrap();
    let to_header = confirm.header("To").unwrap();
    assert!(to_header.ends_with("<zoe@example.com>"), "{to_header}");
}

/// The CSRF token of the password reset form, as `http`'s browser gets it.
async fn reset_form_csrf(app: &TestApp, http: &reqwest::Client) -> String {
    let page = app.get_text_as(http, "/admin/password-reset").await;
    crate::common::hidden_value(&page, "csrf_token").unwrap()
}

#[tokio::test]
async fn password_reset_answers_the_same_for_any_address_and_its_link_works_once() {
    let smtp = SmtpServer::start().await;
    let app = site(&smtp).await;
    let http = client();
    let csrf = reset_form_csrf(&app, &http).await;
    let ask = |email: &'static str| {
        let http = http.clone();
        let csrf = csrf.clone();
        let url = app.url("/admin/password-reset");
        async move {
            http.post(url)
                .form(&[("email", email), ("csrf_token", &csrf)])
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        }
    };
    let unknown = ask("nobody@example.com").await;
    let known = ask("mod@example.com").await;
    assert_eq!(
        unknown.replace(char::is_whitespace, ""),
        known.replace(char::is_whitespace, "")
    );
    let mails = smtp.wait_for(1).await;
    assert_eq!(mails.len(), 1);
    let path = mails[0]
        .link("/admin/password-reset/")
        .unwrap()
        .trim_start_matches(&app.address)
        .to_string();
    let form = http.get(app.url(&path)).send().await.unwrap();
    assert_eq!(form.status(), 200);
    let csrf = crate::common::hidden_value(&form.text().await.unwrap(), "csrf_token").unwrap();
    let new_password = "a brand new password";
    let done = http
        .post(app.url(&path))
        .form(&[
            ("password", new_password),
            ("password_confirm", new_password),
            ("csrf_token", &csrf),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), 303);
    app.login_client("mod@example.com", new_password).await;
    let again = http
        .post(app.url(&path))
        .form(&[
            ("password", "yet another password"),
            ("password_confirm", "yet another password"),
            ("csrf_token", &csrf),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 410);
}

#[tokio::test]
async fn password_reset_mails_an_account_at_most_three_times_an_hour() {
    let smtp = SmtpServer::start().await;
    let app = site(&smtp).await;
    let http = client();
    let csrf = reset_form_csrf(&app, &http).await;
    let ask = || async {
        let response = http
            .post(app.url("/admin/password-reset"))
            .form(&[("email", "mod@example.com"), ("csrf_token", csrf.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        response.text().await.unwrap()
    };
    let resets_queued = || {
        app.db(|conn| {
            use diesel::prelude::*;
            use lectern::db::schema::outbox;
            Ok(outbox::table
                .filter(outbox::kind.eq("password-reset"))
                .filter(outbox::to_address.eq("mod@example.com"))
                .count()
                .get_result::<i64>(conn)?)
        })
    };
    let first = ask().await;
    for _ in 0..4 {
        app.advance(60);
        let again = ask().await;
        assert_eq!(
            again.replace(char::is_whitespace, ""),
            first.replace(char::is_whitespace, ""),
            "a throttled request is answered like any other"
        );
    }
    assert_eq!(resets_queued().await, 3);
    app.advance(3600);
    ask().await;
    assert_eq!(
        resets_queued().await,
        4,
        "an hour later a new link can be asked for"
    );
}

/// The outbox statuses once no message is in the middle of being sent (bounded wait).
async fn settled_statuses(app: &TestApp) -> Vec<String> {
    for _ in 0..500 {
        let statuses: Vec<String> = app
            .db(|conn| {
                use diesel::prelude::*;
                use lectern::db::schema::outbox;
                Ok(outbox::table
                    .select(outbox::status)
                    .order(outbox::id)
                    .load(conn)?)
            })
            .await;
        if statuses.iter().all(|s| s != "sending") {
            return statuses;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("a message stayed in 'sending'");
}

/// The last path segment of a link: the token.
fn token_of(path: &str) -> String {
    path.rsplit('/').next().unwrap().to_string()
}

/// GET, a POST refused as cross-site, then a POST that acts, as a browser would send them.
async fn walk_token_route(app: &TestApp, path: &str, fields: &[(&str, &str)]) {
    let http = client();
    let page = http.get(app.url(path)).send().await.unwrap();
    assert_eq!(page.status(), 200, "GET {path}");
    let page = page.text().await.unwrap();
    let csrf = crate::common::hidden_value(&page, "csrf_token");
    let mut form: Vec<(&str, &str)> = fields.to_vec();
    if let Some(csrf) = &csrf {
        form.push(("csrf_token", csrf));
    }
    let refused = http
        .post(app.url(path))
        .header("origin", "https://evil.example")
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403, "cross-site POST {path}");
    let accepted = http.post(app.url(path)).form(&form).send().await.unwrap();
    assert!(
        accepted.status().is_success() || accepted.status().is_redirection(),
        "POST {path}: {}",
        accepted.status()
    );
}

#[tokio::test]
async fn the_log_of_every_token_route_holds_no_token_and_no_email_address() {
    let log = crate::common::captured_log();
    let mut secrets: Vec<String> = vec![
        "logprobe-rita@example.net".into(),
        "logprobe-setup@example.net".into(),
        "mod@example.com".into(),
    ];

    // The setup link, refused cross-site and then used.
    let fresh = TestApp::spawn().await;
    let setup = fresh.setup_url.clone().expect("a setup link");
    let setup_path = setup.trim_start_matches(&fresh.address).to_string();
    let setup_token = setup_path.rsplit("token=").next().unwrap().to_string();
    secrets.push(setup_token.clone());
    walk_token_route(
        &fresh,
        &setup_path,
        &[
            ("token", &setup_token),
            ("name", "Probe"),
            ("email", "logprobe-setup@example.net"),
            ("password", PASSWORD),
            ("password_confirm", PASSWORD),
        ],
    )
    .await;

    // Moderation, confirmation and unsubscribe links, from the emails they come in.
    let smtp = SmtpServer::start().await;
    let app = site(&smtp).await;
    comment(
        &app,
        "Rita",
        "logprobe-rita@example.net",
        "Tell me about replies",
        &[("notify", "1")],
    )
    .await;
    let held = smtp.wait_for(2).await;
    let moderate = held[0].link("/moderate/").unwrap();
    let moderate = moderate.trim_start_matches(&app.address).to_string();
    secrets.push(token_of(&moderate));
    walk_token_route(&app, &moderate, &[]).await;
    // Approved: the post's author is told, and Rita gets the opt-in email.
    let mails = smtp.wait_for(4).await;
    let confirm_mail = mails
        .iter()
        .find(|m| to(m).contains("logprobe-rita"))
        .expect("the opt-in email");
    for prefix in ["/confirm/", "/unsubscribe/"] {
        let link = confirm_mail.link(prefix).unwrap();
        let path = link.trim_start_matches(&app.address).to_string();
        secrets.push(token_of(&path));
        walk_token_route(&app, &path, &[]).await;
    }

    // A password reset link.
    let http = client();
    let csrf = reset_form_csrf(&app, &http).await;
    let before = smtp.mails().len();
    let asked = http
        .post(app.url("/admin/password-reset"))
        .form(&[("email", "mod@example.com"), ("csrf_token", &csrf)])
        .send()
        .await
        .unwrap();
    assert_eq!(asked.status(), 200);
    let mails = smtp.wait_for(before + 1).await;
    let reset = mails
        .iter()
        .find_map(|m| m.link("/admin/password-reset/"))
        .unwrap();
    let reset = reset.trim_start_matches(&app.address).to_string();
    secrets.push(token_of(&reset));
    walk_token_route(
        &app,
        &reset,
        &[
            ("password", "a brand new password"),
            ("password_confirm", "a brand new password"),
        ],
    )
    .await;

    let text = log.text();
    assert!(
        text.contains("refused a cross-site POST"),
        "the log was captured"
    );
    for secret in &secrets {
        assert!(
            !text.contains(secret.as_str()),
            "the log holds {secret}:\n{text}"
        );
    }
}
