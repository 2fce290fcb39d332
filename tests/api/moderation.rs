//! The moderation queue and its actions.

use crate::common::{TestApp, WELCOME, client, comment_id_from};

async fn pending_comment(app: &TestApp, n: u32) -> i32 {
    app.advance(60);
    let email = format!("reader{n}@example.com");
    let body = format!("Pending comment number {n}");
    let response = app
        .comment(
            WELCOME,
            &[
                ("name", &format!("Reader {n}")),
                ("email", &email),
                ("body", &body),
            ],
        )
        .await;
    assert_eq!(response.status(), 303);
    comment_id_from(&response)
}

async fn act(app: &TestApp, http: &reqwest::Client, id: i32, action: &str) -> reqwest::Response {
    app.staff_post(
        http,
        &format!("/admin/comments/{id}/{action}"),
        &[("back", "/admin/comments?status=all")],
    )
    .await
}

async fn log_actions(app: &TestApp) -> Vec<(Option<i32>, String, String)> {
    use diesel::prelude::*;
    use lectern::db::schema::moderation_log;
    app.db(|conn| {
        Ok(moderation_log::table
            .select((
                moderation_log::comment_id,
                moderation_log::action,
                moderation_log::via,
            ))
            .order(moderation_log::id)
            .load(conn)?)
    })
    .await
}

async fn public_page(app: &TestApp) -> String {
    client()
        .get(app.url(&format!("/posts/{WELCOME}")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

#[tokio::test]
async fn each_action_moves_the_comment_and_is_logged() {
    let app = TestApp::spawn().await;
    let id = pending_comment(&app, 1).await;
    let http = app.staff_client("moderator").await;
    let steps = [
        ("approve", "approved"),
        ("unapprove", "pending"),
        ("spam", "spam"),
        ("not-spam", "pending"),
        ("approve", "approved"),
        ("trash", "trash"),
        ("restore", "approved"),
        ("spam", "spam"),
    ];
    for (action, expected) in steps {
        let response = act(&app, &http, id, action).await;
        assert_eq!(response.status(), 303, "{action}");
        assert_eq!(response.headers()["location"], "/admin/comments?status=all");
        assert_eq!(app.stored_comment(id).await.0, expected, "after {action}");
        let visible = public_page(&app).await.contains("Pending comment number 1");
        assert_eq!(
            visible,
            expected == "approved",
            "public page after {action}"
        );
    }
    let logged: Vec<String> = log_actions(&app)
        .await
        .into_iter()
        .map(|(c, a, via)| {
            assert_eq!(c, Some(id));
            assert_eq!(via, "web");
            a
        })
        .collect();
    assert_eq!(
        logged,
        steps.iter().map(|(a, _)| a.to_string()).collect::<Vec<_>>()
    );

    let response = act(&app, &http, id, "delete").await;
    assert_eq!(response.status(), 303);
    assert_eq!(
        app.comment_count().await,
        1,
        "only the welcome comment is left"
    );
    assert_eq!(act(&app, &http, id, "approve").await.status(), 404);
}

#[tokio::test]
async fn deleting_an_approved_comment_is_409_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let http = app.staff_client("moderator").await;
    let response = act(&app, &http, 1, "delete").await;
    assert_eq!(response.status(), 409);
    assert_eq!(app.stored_comment(1).await.0, "approved");
    assert!(log_actions(&app).await.is_empty());
    assert_eq!(act(&app, &http, 1, "not-spam").await.status(), 409);
    assert_eq!(act(&app, &http, 1, "fly").await.status(), 404);
}

#[tokio::test]
async fn bulk_actions_move_every_selected_comment() {
    let app = TestApp::spawn().await;
    let ids = [
        pending_comment(&app, 1).await,
        pending_comment(&app, 2).await,
        pending_comment(&app, 3).await,
    ];
    let http = app.staff_client("moderator").await;
    let csrf = app.csrf(&http).await;
    let mut form = vec![
        ("csrf_token", csrf.clone()),
        ("action", "approve".to_string()),
        ("back", "/admin/comments".to_string()),
    ];
    form.extend(ids[..2].iter().map(|id| ("ids", id.to_string())));
    let response = http
        .post(app.url("/admin/comments/bulk"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    assert_eq!(app.stored_comment(ids[0]).await.0, "approved");
    assert_eq!(app.stored_comment(ids[1]).await.0, "approved");
    assert_eq!(app.stored_comment(ids[2]).await.0, "pending");
    assert_eq!(log_actions(&app).await.len(), 2);
    let page = public_page(&app).await;
    assert!(page.contains("Pending comment number 1") && page.contains("Pending comment number 2"));
    assert!(!page.contains("Pending comment number 3"));
    assert!(page.contains("3 thoughts on"));

    let form = vec![
        ("csrf_token", csrf.clone()),
        ("action", "trash".to_string()),
        ("ids", ids[0].to_string()),
        ("ids", ids[2].to_string()),
    ];
    http.post(app.url("/admin/comments/bulk"))
        .form(&form)
        .send()
        .await
        .unwrap();
    let form = vec![
        ("csrf_token", csrf),
        ("action", "delete".to_string()),
        ("ids", ids[0].to_string()),
        ("ids", ids[1].to_string()),
    ];
    http.post(app.url("/admin/comments/bulk"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(
        app.stored_comment(ids[1]).await.0,
        "approved",
        "an approved comment is skipped by bulk delete"
    );
    assert_eq!(app.comment_count().await, 3);
}

#[tokio::test]
async fn a_reply_from_the_queue_approves_its_parent_and_is_published_with_a_badge() {
    let app = TestApp::spawn().await;
    let id = pending_comment(&app, 1).await;
    let http = app.staff_client("moderator").await;
    let reply = format!("/admin/comments/{id}/reply");
    let fields = [("body", "Thanks for writing!"), ("back", "/admin/comments")];
    let response = app.staff_post(&http, &reply, &fields).await;
    assert_eq!(response.status(), 303);
    assert_eq!(app.stored_comment(id).await.0, "approved");
    let page = public_page(&app).await;
    assert!(page.contains("Thanks for writing!"));
    assert!(page.contains(r#"<span class="badge">Staff</span>"#));
    let parent_at = page.find(&format!(r#"id="comment-{id}""#)).unwrap();
    let reply_at = page.find("Thanks for writing!").unwrap();
    assert!(parent_at < reply_at);
    let actions: Vec<String> = log_actions(&app)
        .await
        .into_iter()
        .map(|(_, a, _)| a)
        .collect();
    assert_eq!(actions, ["approve", "reply"]);

    let empty = app.staff_post(&http, &reply, &[("body", "  ")]).await;
    assert_eq!(empty.status(), 422);
}

#[tokio::test]
async fn the_queue_shows_why_each_comment_was_held_with_the_authors_details_and_history() {
    let app = TestApp::spawn().await;
    let id = pending_comment(&app, 1).await;
    app.advance(60);
    let linky = comment_id_from(
        &app.comment(
            WELCOME,
            &[
                ("name", "Linker"),
                ("email", "links@example.com"),
                ("website", "https://a.example"),
                ("body", "see https://b.example and https://c.example"),
            ],
        )
        .await,
    );
    let http = app.staff_client("moderator").await;
    let page = http.get(app.url("/admin/comments")).send().await.unwrap();
    assert_eq!(page.headers()["cache-control"], "no-store");
    let page = page.text().await.unwrap();
    assert!(page.contains("Pending <span class=\"count\">(2)</span>"));
    assert!(
        page.contains("reader1@example.com"),
        "emails are shown to staff"
    );
    assert!(page.contains("Held: first comment from this author"));
    assert!(page.contains("Held: 3 links (hold at 2 or more)"));
    assert!(page.contains("127.0.0.1"));
    assert!(page.contains("0 approved · 0 spam"));
    assert!(page.contains(&format!("/admin/comments/{id}/approve")));
    assert!(page.contains(&format!("/admin/comments/{linky}/spam")));

    let found = http
        .get(app.url("/admin/comments?status=all&q=LINKER"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(found.contains("links@example.com"));
    assert!(!found.contains("reader1@example.com"));
    let by_mail = http
        .get(app.url("/admin/comments?status=all&q=reader1%40"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(by_mail.contains("Pending comment number 1"));
    let wildcard = http
        .get(app.url("/admin/comments?status=all&q=%25"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        wildcard.contains("No comments here."),
        "LIKE wildcards are matched literally"
    );
    let approved = http
        .get(app.url("/admin/comments?status=approved"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(approved.contains("commenter@lectern.invalid"));
    assert!(approved.contains("1 approved · 0 spam"));
    assert_eq!(
        http.get(app.url("/admin/comments?status=bogus"))
            .send()
            .await
            .unwrap()
            .status(),
        400
    );
}

#[tokio::test]
async fn the_queue_pages_by_keyset() {
    let app = TestApp::spawn_with(&[("LECTERN_FLOOD_LIMITS", "off")]).await;
    for n in 0..25 {
        pending_comment(&app, n).await;
    }
    let http = app.staff_client("moderator").await;
    let first = http
        .get(app.url("/admin/comments"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(first.contains("Pending comment number 24"));
    assert!(!first.contains("Pending comment number 4<"));
    let before = first.find("before=").expect("an Older link");
    let start = first[..before].rfind('"').unwrap() + 1;
    let end = before + first[before..].find('"').unwrap();
    let href = first[start..end]
        .replace("&#38;", "&")
        .replace("&amp;", "&");
    let second = http
        .get(app.url(&href))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(second.contains("Pending comment number 0"));
    assert!(!second.contains("Pending comment number 24"));
}

#[tokio::test]
async fn the_all_tab_merges_pending_and_approved_newest_first_across_pages() {
    let app = TestApp::spawn_with(&[("LECTERN_FLOOD_LIMITS", "off")]).await;
    let http = app.staff_client("moderator").await;
    let mut ids = Vec::new();
    for n in 0..25 {
        ids.push(pending_comment(&app, n).await);
    }
    for (n, id) in ids.iter().enumerate() {
        if n % 2 == 1 {
            assert_eq!(act(&app, &http, *id, "approve").await.status(), 303);
        }
    }
    let listed = |page: &str| {
        (0..25)
            .filter(|n| page.contains(&format!("Pending comment number {n}<")))
            .collect::<Vec<_>>()
    };
    let first = app.get_text_as(&http, "/admin/comments?status=all").await;
    assert_eq!(listed(&first), (5..25).collect::<Vec<_>>());
    let before = first.find("before=").expect("an Older link");
    let start = first[..before].rfind('"').unwrap() + 1;
    let end = before + first[before..].find('"').unwrap();
    let href = first[start..end]
        .replace("&#38;", "&")
        .replace("&amp;", "&");
    assert!(href.contains("status=all"), "{href}");
    let second = app.get_text_as(&http, &href).await;
    assert_eq!(listed(&second), (0..5).collect::<Vec<_>>());
    let numbered = app
        .get_text_as(&http, "/admin/comments?status=all&page=2")
        .await;
    assert_eq!(listed(&numbered), (0..5).collect::<Vec<_>>());
}

#[tokio::test]
async fn editing_a_comment_changes_its_text_and_refuses_bad_input() {
    let app = TestApp::spawn().await;
    let http = app.staff_client("moderator").await;
    let form = http
        .get(app.url("/admin/comments/1/edit"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(form.contains("commenter@lectern.invalid"));
    let edit = |email: &'static str, body: &'static str| {
        let fields = [
            ("name", "Edited"),
            ("email", email),
            ("website", ""),
            ("body", body),
        ];
        let http = http.clone();
        let app = &app;
        async move {
            app.staff_post(&http, "/admin/comments/1/edit", &fields)
                .await
        }
    };
    let bad = edit("nope", "Edited text").await;
    assert_eq!(bad.status(), 422);
    assert!(bad.text().await.unwrap().contains("Edited text"));
    assert!(
        app.stored_comment(1)
            .await
            .2
            .starts_with("Hi, this is a comment.")
    );
    let good = edit("e@example.com", "Edited <b>text</b>").await;
    assert_eq!(good.status(), 303);
    let page = public_page(&app).await;
    assert!(page.contains("Edited &lt;b&gt;text&lt;/b&gt;") || page.contains("Edited &#60;b&#62;"));
    assert!(
        log_actions(&app)
            .await
            .iter()
            .any(|(c, a, _)| *c == Some(1) && a == "edit")
    );
}

#[tokio::test]
async fn the_audit_log_and_dashboard_show_what_happened() {
    let app = TestApp::spawn().await;
    let id = pending_comment(&app, 1).await;
    let http = app.staff_client("moderator").await;
    let dashboard = http
        .get(app.url("/admin"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(dashboard.contains("Moderate 1 pending comment"));
    assert!(dashboard.contains("Pending comment number 1"));
    act(&app, &http, id, "approve").await;
    let audit = http
        .get(app.url("/admin/audit"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(audit.contains("Test moderator"));
    assert!(audit.contains("pending → approved"));
    assert!(audit.contains(&format!("#{id}")));
}

#[tokio::test]
async fn a_moderator_commenting_while_logged_in_is_approved_at_once() {
    let app = TestApp::spawn().await;
    let http = app.staff_client("moderator").await;
    let page = http
        .get(app.url(&format!("/posts/{WELCOME}")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let token = crate::common::hidden_value(&page, "form_token").unwrap();
    app.advance(5);
    let response = http
        .post(app.url(&format!("/posts/{WELCOME}/comments")))
        .form(&[
            ("form_token", token.as_str()),
            ("name", "Mo"),
            ("email", "moderator@example.com"),
            ("body", "Staff here"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    assert_eq!(
        app.stored_comment(comment_id_from(&response)).await.0,
        "approved"
    );
    assert!(public_page(&app).await.contains("Staff here"));
}

/// `back` values a header cannot carry: each must fall back to the queue, never a 500.
const UNSENDABLE_BACKS: &[&str] = &[
    "/admin/comments\r\nSet-Cookie: planted=1",
    "/admin/comments\n",
    "/admin/comments\u{7f}",
    "/admin/comments?q=caf\u{e9}",
];

#[tokio::test]
async fn a_back_with_a_control_character_goes_to_the_queue_after_every_action() {
    let app = TestApp::spawn().await;
    let http = app.staff_client("admin").await;
    for (n, back) in UNSENDABLE_BACKS.iter().enumerate() {
        let id = pending_comment(&app, n as u32).await;
        let id_text = id.to_string();
        let block_spec = format!("email:{id}");
        let calls: Vec<(String, Vec<(&str, &str)>)> = vec![
            (
                format!("/admin/comments/{id}/edit"),
                vec![
                    ("name", "Edited"),
                    ("email", "edited@example.com"),
                    ("website", ""),
                    ("body", "Edited body"),
                ],
            ),
            (format!("/admin/comments/{id}/approve"), vec![]),
            (
                format!("/admin/comments/{id}/reply"),
                vec![("body", "A staff reply")],
            ),
            (
                "/admin/comments/bulk".to_string(),
                vec![("action", "unapprove"), ("ids", id_text.as_str())],
            ),
            (
                "/admin/blocks".to_string(),
                vec![("block", block_spec.as_str()), ("duration", "1")],
            ),
        ];
        for (path, mut fields) in calls {
            fields.push(("back", back));
            let response = app.staff_post(&http, &path, &fields).await;
            assert_eq!(response.status(), 303, "{path} with back {back:?}");
            assert_eq!(
                response.headers()["location"],
                "/admin/comments",
                "{path} with back {back:?}"
            );
        }
    }
}
