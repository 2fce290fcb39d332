//! Running lectern: what `/healthz` and the mail page tell an operator, how start-up fails, and
//! how the server answers while its database does not.

use crate::common::TestApp;
use crate::smtp::SmtpServer;

/// The number after `name: ` on its own line of a `/healthz` body.
fn health_line(body: &str, name: &str) -> i64 {
    let prefix = format!("{name}: ");
    body.lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no {name} line in {body:?}"))
        .parse()
        .unwrap()
}

#[tokio::test]
async fn mail_waiting_on_a_dead_smtp_server_is_counted_with_its_age_by_healthz_and_the_mail_page() {
    // Nothing listens on this port: every attempt fails to connect and the mail stays queued.
    let port = SmtpServer::reserve_port();
    let app =
        TestApp::spawn_with(&[("LECTERN_SMTP_URL", &format!("smtp://127.0.0.1:{port}"))]).await;
    let health = app.get_text("/healthz").await;
    assert_eq!(health_line(&health, "queued_emails"), 0, "{health}");
    assert_eq!(health_line(&health, "oldest_queued_secs"), 0, "{health}");

    let admin = app.staff_client("admin").await;
    for (name, email) in [("One", "one@example.com"), ("Two", "two@example.com")] {
        let body = format!("{name} waits for the mail server");
        app.advance(20); // past the flood interval
        let response = app
            .comment(
                "welcome-to-lectern",
                &[("name", name), ("email", email), ("body", &body)],
            )
            .await;
        assert_eq!(response.status(), 303);
    }
    // Each held comment tells the admin: two messages that cannot leave.
    app.advance(600);
    let health = app.get_text("/healthz").await;
    assert_eq!(health_line(&health, "failed_emails"), 0, "{health}");
    assert_eq!(health_line(&health, "queued_emails"), 2, "{health}");
    let age = health_line(&health, "oldest_queued_secs");
    assert!((600..700).contains(&age), "{health}");

    let page = admin
        .get(app.url("/admin/mail"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("2 messages waiting to be sent"), "{page}");
    assert!(page.contains("the oldest has waited 10 minutes"), "{page}");
    assert!(!page.contains("No failed messages"), "{page}");
    assert!(!page.contains("nothing failed"), "{page}");
}
