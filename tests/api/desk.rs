//! The moderator's desk over HTTP: every action answers with a notice and Undo, the email-link
//! result page and its signed Undo, the dashboard's numbers, the admin's own stylesheet and
//! script, and the wording of held reasons and moves.

use crate::common::{TestApp, WELCOME, client, comment_id_from, hidden_value};
use crate::smtp::SmtpServer;

async fn pending_comment(app: &TestApp, n: u32) -> i32 {
    app.advance(60);
    let email = format!("desk{n}@example.com");
    let response = app
        .comment(
            WELCOME,
            &[
                ("name", &format!("Rita {n}")),
                ("email", &email),
                ("body", &format!("Desk comment {n}\nsecond line")),
            ],
        )
        .await;
    assert_eq!(response.status(), 303);
    comment_id_from(&response)
}

/// Renames a comment's author to "Renamed by hand" in plain SQL, as a database console would.
async fn rename_by_hand(app: &TestApp, id: i32) {
    use diesel::prelude::*;
    use lectern::db::schema::comments;
    app.db(move |conn| {
        Ok(diesel::update(comments::table.find(id))
            .set(comments::author_name.eq("Renamed by hand"))
            .execute(conn)?)
    })
    .await;
}

async fn page(http: &reqwest::Client, app: &TestApp, path: &str) -> String {
    http.get(app.url(path))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

async fn log_entries(app: &TestApp) -> Vec<(Option<i32>, String, String)> {
    use diesel::prelude::*;
    use lectern::db::schema::moderation_log as l;
    app.db(|conn| {
        Ok(l::table
            .select((l::comment_id, l::action, l::detail))
            .order(l::id)
            .load(conn)?)
    })
    .await
}

#[tokio::test]
async fn an_approval_answers_with_a_notice_whose_undo_puts_the_comment_back_once() {
    let app = TestApp::spawn().await;
    let id = pending_comment(&app, 1).await;
    let http = app.staff_client("moderator").await;
    let back = "/admin/comments?status=pending";
    let done = app
        .staff_post(
            &http,
            &format!("/admin/comments/{id}/approve"),
            &[("back", back)],
        )
        .await;
    assert_eq!(done.status(), 303);
    assert_eq!(done.headers()["location"], back);
    assert_eq!(app.stored_comment(id).await.0, "approved");

    let queue = page(&http, &app, back).await;
    assert!(queue.contains("Comment by Rita 1 approved."), "{queue}");
    assert!(queue.contains("action=\"/admin/undo\""));
    assert!(queue.contains(&format!("href=\"/posts/{WELCOME}#comment-{id}\"")));
    let notice = hidden_value(&queue, "notice").expect("the Undo form names its notice");
    // The flash is shown once.
    assert!(
        !page(&http, &app, back)
            .await
            .contains("Comment by Rita 1 approved.")
    );

    // Another moderator cannot undo it.
    let other = app.staff_client("admin").await;
    let refused = app
        .staff_post(
            &other,
            "/admin/undo",
            &[("notice", &notice), ("back", back)],
        )
        .await;
    assert_eq!(refused.status(), 409);
    assert_eq!(app.stored_comment(id).await.0, "approved");

    let undone = app
        .staff_post(&http, "/admin/undo", &[("notice", &notice), ("back", back)])
        .await;
    assert_eq!(undone.status(), 303);
    assert_eq!(undone.headers()["location"], back);
    assert_eq!(app.stored_comment(id).await.0, "pending");
    let queue = page(&http, &app, back).await;
    assert!(
        queue.contains("Undone: the comment by Rita 1 is pending again."),
        "{queue}"
    );

    let again = app
        .staff_post(&http, "/admin/undo", &[("notice", &notice), ("back", back)])
        .await;
    assert_eq!(again.status(), 409, "an Undo works once");

    let log = log_entries(&app).await;
    let last = log.last().unwrap();
    assert_eq!(
        (last.0, last.1.as_str(), last.2.as_str()),
        (Some(id), "undo", "approved → pending")
    );
    // The pending count is true again.
    assert!(queue.contains("Pending <span class=\"count\">(1)</span>"));
}

#[tokio::test]
async fn a_bulk_spam_is_counted_in_its_notice_and_undone_comment_by_comment() {
    let app = TestApp::spawn().await;
    let a = pending_comment(&app, 1).await;
    let b = pending_comment(&app, 2).await;
    let http = app.staff_client("moderator").await;
    // b is approved first, so Undo must put each back where it was.
    app.staff_post(&http, &format!("/admin/comments/{b}/approve"), &[])
        .await;
    let (a_id, b_id) = (a.to_string(), b.to_string());
    let done = app
        .staff_post(
            &http,
            "/admin/comments/bulk",
            &[
                ("action", "spam"),
                ("ids", &a_id),
                ("ids", &b_id),
                ("back", "/admin/comments?status=all"),
            ],
        )
        .await;
    assert_eq!(done.status(), 303);
    let queue = page(&http, &app, "/admin/comments?status=all").await;
    assert!(queue.contains("2 comments marked as spam."), "{queue}");
    let notice = hidden_value(&queue, "notice").unwrap();
    app.staff_post(&http, "/admin/undo", &[("notice", &notice)])
        .await;
    assert_eq!(app.stored_comment(a).await.0, "pending");
    assert_eq!(app.stored_comment(b).await.0, "approved");
    let queue = page(&http, &app, "/admin/comments?status=all").await;
    assert!(queue.contains("Undone: 2 comments are back where they were."));
    // Spam, then not spam, remembers nothing stale: a later "not spam" still works.
    assert!(queue.contains("Approved by Test moderator"));
}

#[tokio::test]
async fn an_undo_leaves_alone_a_comment_someone_moved_since() {
    let app = TestApp::spawn().await;
    let id = pending_comment(&app, 1).await;
    let http = app.staff_client("moderator").await;
    app.staff_post(&http, &format!("/admin/comments/{id}/trash"), &[])
        .await;
    let queue = page(&http, &app, "/admin/comments?status=trash").await;
    assert!(queue.contains("Comment by Rita 1 moved to the trash."));
    let notice = hidden_value(&queue, "notice").unwrap();
    app.staff_post(&http, &format!("/admin/comments/{id}/approve"), &[])
        .await;
    app.staff_post(&http, "/admin/undo", &[("notice", &notice)])
        .await;
    assert_eq!(app.stored_comment(id).await.0, "approved");
    let page = page(&http, &app, "/admin/comments").await;
    assert!(page.contains("Nothing was undone. 1 comment was moved by someone since"));
}

#[tokio::test]
async fn the_email_link_result_page_names_the_comment_and_carries_a_single_use_undo() {
    let smtp = SmtpServer::start().await;
    let app = TestApp::spawn_with(&[("LECTERN_SMTP_URL", &smtp.url())]).await;
    app.create_user(
        "mod@example.com",
        "Lin Moderator",
        "moderator",
        crate::common::PASSWORD,
    )
    .await;
    let id = pending_comment(&app, 1).await;
    let mails = smtp.wait_for(1).await;
    let approve = mails[0].link("/moderate/").unwrap();
    let path = approve.trim_start_matches(&app.address).to_string();
    let scanner = client();
    let confirm = page(&scanner, &app, &path).await;
    assert!(confirm.contains("Approve this comment?"));
    assert!(confirm.contains("/static/admin."));

    let done = scanner.post(app.url(&path)).send().await.unwrap();
    assert_eq!(done.status(), 200);
    let done = done.text().await.unwrap();
    assert!(
        done.contains("Comment by Rita 1 on “Welcome to lectern” approved."),
        "{done}"
    );
    assert!(done.contains(&format!("href=\"/posts/{WELCOME}#comment-{id}\"")));
    assert!(done.contains("href=\"/admin/comments?status=pending\""));
    assert!(
        !done.contains("Reply to Rita 1"),
        "no session, no reply form"
    );
    let undo_at = done.find("action=\"/moderate/").expect("an Undo form") + 8;
    let undo = &done[undo_at..undo_at + done[undo_at..].find('"').unwrap()];
    assert_eq!(app.stored_comment(id).await.0, "approved");

    // GET shows a button and changes nothing; POST undoes, once.
    assert!(page(&scanner, &app, undo).await.contains("Undo this?"));
    assert_eq!(app.stored_comment(id).await.0, "approved");
    let undone = scanner.post(app.url(undo)).send().await.unwrap();
    assert_eq!(undone.status(), 200);
    assert!(undone.text().await.unwrap().contains("is pending again"));
    assert_eq!(app.stored_comment(id).await.0, "pending");
    let again = scanner.post(app.url(undo)).send().await.unwrap();
    assert_eq!(again.status(), 410);
    let forged = undo.replacen("/moderate/", "/moderate/x", 1);
    assert_eq!(
        scanner
            .post(app.url(&forged))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    let log = log_entries(&app).await;
    assert_eq!(log.last().unwrap().1, "undo");
}

#[tokio::test]
async fn an_email_undo_expires_after_an_hour() {
    let smtp = SmtpServer::start().await;
    let app = TestApp::spawn_with(&[("LECTERN_SMTP_URL", &smtp.url())]).await;
    app.create_user(
        "mod@example.com",
        "Lin",
        "moderator",
        crate::common::PASSWORD,
    )
    .await;
    let id = pending_comment(&app, 1).await;
    let mails = smtp.wait_for(1).await;
    let spam = mails[0].text();
    let spam_at = spam.find("Mark it as spam: ").unwrap() + "Mark it as spam: ".len();
    let spam = spam[spam_at..].lines().next().unwrap().trim();
    let path = spam.trim_start_matches(&app.address).to_string();
    let done = client().post(app.url(&path)).send().await.unwrap();
    let done = done.text().await.unwrap();
    assert!(done.contains("marked as spam"));
    let undo_at = done.find("action=\"/moderate/").unwrap() + 8;
    let undo = done[undo_at..undo_at + done[undo_at..].find('"').unwrap()].to_string();
    app.advance(61 * 60);
    let late = client().post(app.url(&undo)).send().await.unwrap();
    assert_eq!(late.status(), 410);
    assert_eq!(app.stored_comment(id).await.0, "spam");
}

#[tokio::test]
async fn a_logged_in_moderator_can_reply_from_the_link_result_page() {
    let smtp = SmtpServer::start().await;
    let app = TestApp::spawn_with(&[("LECTERN_SMTP_URL", &smtp.url())]).await;
    let http = app.staff_client("moderator").await;
    let id = pending_comment(&app, 1).await;
    let mails = smtp.wait_for(1).await;
    let approve = mails[0].link("/moderate/").unwrap();
    let path = approve.trim_start_matches(&app.address).to_string();
    let done = http.post(app.url(&path)).send().await.unwrap();
    let done = done.text().await.unwrap();
    assert!(done.contains("Reply to Rita 1"));
    assert!(done.contains(&format!("action=\"/admin/comments/{id}/reply\"")));
}

#[tokio::test]
async fn the_dashboard_draws_its_charts_from_the_maintained_counts() {
    let app = TestApp::spawn().await;
    let a = pending_comment(&app, 1).await;
    let _b = pending_comment(&app, 2).await;
    let c = pending_comment(&app, 3).await;
    let http = app.staff_client("admin").await;
    app.staff_post(&http, &format!("/admin/comments/{a}/approve"), &[])
        .await;
    app.staff_post(&http, &format!("/admin/comments/{c}/spam"), &[])
        .await;
    let dashboard = page(&http, &app, "/admin").await;
    assert!(dashboard.contains("<svg class=\"chart days-chart\""));
    assert!(dashboard.contains("<title id=\"days-svg-title\">"));
    assert!(dashboard.contains("<table class=\"days-table\">"));
    // The welcome comment (approved) and three today: 2 approved, 1 pending, 1 spam.
    assert!(
        dashboard.contains("4 comments in the last 30 days"),
        "{dashboard}"
    );
    assert!(dashboard.contains("<td>2</td><td>1</td><td>1</td><td>0</td><td>4</td>"));
    assert!(dashboard.contains("first comment from this author"));
    assert!(dashboard.contains("Most comments this month"));
    assert!(dashboard.contains(">Welcome to lectern</a></th><td>2</td>"));
    assert!(dashboard.contains("Email outbox"));

    // The counts follow a deletion too (the triggers see every path).
    app.staff_post(&http, &format!("/admin/comments/{c}/delete"), &[])
        .await;
    let dashboard = page(&http, &app, "/admin").await;
    assert!(dashboard.contains("3 comments in the last 30 days"));
}

#[tokio::test]
async fn the_dashboard_shows_every_change_at_the_next_view() {
    let app = TestApp::spawn().await;
    let http = app.staff_client("admin").await;
    // Read once, and kept while nothing is committed: a second view shows the same.
    let first = page(&http, &app, "/admin").await;
    assert!(!first.contains("Rita 1"));
    assert_eq!(first, page(&http, &app, "/admin").await);
    // A held comment from the form.
    let id = pending_comment(&app, 1).await;
    let dashboard = page(&http, &app, "/admin").await;
    assert!(dashboard.contains("Rita 1"), "{dashboard}");
    assert!(dashboard.contains("first comment from this author"));
    // A change made in plain SQL, as a database console would.
    rename_by_hand(&app, id).await;
    let dashboard = page(&http, &app, "/admin").await;
    assert!(dashboard.contains("Renamed by hand"), "{dashboard}");
    assert!(!dashboard.contains("Rita 1"));
}

#[tokio::test]
async fn every_queue_page_shows_every_change_at_the_next_view() {
    let app = TestApp::spawn().await;
    let http = app.staff_client("moderator").await;
    // Two tabs read once each, and kept while nothing is committed.
    let pending = page(&http, &app, "/admin/comments").await;
    let approved = page(&http, &app, "/admin/comments?status=approved").await;
    assert!(!pending.contains("Rita 1"));
    assert_eq!(pending, page(&http, &app, "/admin/comments").await);
    assert_eq!(
        approved,
        page(&http, &app, "/admin/comments?status=approved").await
    );
    // A held comment from the form.
    let id = pending_comment(&app, 1).await;
    let pending = page(&http, &app, "/admin/comments").await;
    assert!(pending.contains("Rita 1"), "{pending}");
    // A change made in plain SQL, as a database console would.
    rename_by_hand(&app, id).await;
    let pending = page(&http, &app, "/admin/comments").await;
    assert!(pending.contains("Renamed by hand"), "{pending}");
    // Approved from the queue: gone from the pending tab, on the approved tab kept before.
    app.staff_post(&http, &format!("/admin/comments/{id}/approve"), &[])
        .await;
    let pending = page(&http, &app, "/admin/comments").await;
    assert!(pending.contains("Comment by Renamed by hand approved."));
    assert!(!pending.contains("Desk comment 1"), "{pending}");
    let approved = page(&http, &app, "/admin/comments?status=approved").await;
    assert!(approved.contains("Desk comment 1"), "{approved}");
    assert!(approved.contains("Approved by"), "{approved}");
}

#[tokio::test]
async fn admin_pages_alone_may_run_the_sites_own_script() {
    let app = TestApp::spawn().await;
    let http = app.staff_client("moderator").await;
    let admin = http.get(app.url("/admin/comments")).send().await.unwrap();
    let csp = admin.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(csp.contains("script-src 'self'"));
    let html = admin.text().await.unwrap();
    assert!(html.contains("<script src=\"/static/admin."));
    assert!(html.contains(".js\" defer></script>"));
    assert!(html.contains("<link rel=\"stylesheet\" href=\"/static/admin."));
    assert!(!html.contains("style=\""), "no inline style");
    let public = client()
        .get(app.url(&format!("/posts/{WELCOME}")))
        .send()
        .await
        .unwrap();
    let csp = public.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(!csp.contains("script-src"));
    assert!(!public.text().await.unwrap().contains("<script"));
    for (path, kind) in [
        ("/static/admin.js", "text/javascript"),
        ("/static/admin.css", "text/css"),
    ] {
        let asset = client().get(app.url(path)).send().await.unwrap();
        assert_eq!(asset.status(), 200);
        assert!(
            asset.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with(kind)
        );
    }
}

#[tokio::test]
async fn a_moved_comment_says_who_moved_it_instead_of_why_it_was_held() {
    let app = TestApp::spawn().await;
    let id = pending_comment(&app, 1).await;
    let http = app.staff_client("moderator").await;
    let queue = page(&http, &app, "/admin/comments").await;
    assert!(queue.contains("Held: first comment from this author"));
    app.staff_post(&http, &format!("/admin/comments/{id}/spam"), &[])
        .await;
    let spam = page(&http, &app, "/admin/comments?status=spam").await;
    assert!(spam.contains("Marked spam by Test moderator, "), "{spam}");
    assert!(!spam.contains("Held: first comment from this author"));
    // The comment keeps its line breaks (the stylesheet shows them: pre-wrap).
    assert!(spam.contains("Desk comment 1\nsecond line"));
}
