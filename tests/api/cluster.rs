//! Two `lectern serve` processes on one PostgreSQL database behave as one site.

use crate::common::{
    PASSWORD, TestApp, TestDb, client, comment_id_from, hidden_value, postgres_server,
};
use crate::smtp::SmtpServer;

/// The PostgreSQL server, or a clear skip.
fn server() -> Option<String> {
    // Runs in the PostgreSQL pass (`.ci/run` sets the URL); there a missing server fails.
    let server = postgres_server();
    if server.is_none() {
        eprintln!("SKIPPED two-server test: LECTERN_TEST_DATABASE_URL is not set");
    }
    server
}

#[tokio::test]
async fn two_servers_starting_at_once_migrate_safely_and_share_logins_limits_and_mail() {
    let Some(server) = server() else { return };
    let db = TestDb::empty_postgres(&server);
    let smtp = SmtpServer::start().await;
    let settings = [("LECTERN_SMTP_URL", smtp.url())];
    let settings: Vec<(&str, &str)> = settings.iter().map(|(k, v)| (*k, v.as_str())).collect();
    // Both start on an empty database at the same moment: the advisory lock makes them take
    // turns with the migrations.
    let (a, b) = tokio::join!(
        TestApp::spawn_on(&db.url, db.dir.path(), &settings),
        TestApp::spawn_on(&db.url, db.dir.path(), &settings),
    );
    let welcome_posts: i64 = a
        .db(|conn| {
            use diesel::prelude::*;
            use lectern::db::schema::posts;
            Ok(posts::table
                .filter(posts::slug.eq("welcome-to-lectern"))
                .count()
                .get_result(conn)?)
        })
        .await;
    assert_eq!(welcome_posts, 1, "one welcome post, not one per server");
    let token = |app: &TestApp| {
        let url = app.setup_url.clone().expect("no admin yet: a setup link");
        url.rsplit_once("token=").unwrap().1.to_string()
    };
    assert_eq!(
        token(&a),
        token(&b),
        "both servers print a working setup link"
    );

    // A login made through one server is valid on the other.
    a.create_user("mod@example.com", "Mo", "moderator", PASSWORD)
        .await;
    let http = a.login_client("mod@example.com", PASSWORD).await;
    assert_eq!(
        http.get(b.url("/admin")).send().await.unwrap().status(),
        200
    );

    // Flood limits count across both: a comment through A, another through B at once.
    let fields = [
        ("name", "Fast"),
        ("email", "fast@example.com"),
        ("body", "first"),
    ];
    let first = a.comment("welcome-to-lectern", &fields).await;
    assert_eq!(first.status(), 303);
    let page = b.get_text("/posts/welcome-to-lectern").await;
    let token = hidden_value(&page, "form_token").unwrap();
    a.advance(5);
    b.advance(5);
    let second = client()
        .post(b.url("/posts/welcome-to-lectern/comments"))
        .form(&[
            ("form_token", token.as_str()),
            ("name", "Fast"),
            ("email", "fast@example.com"),
            ("body", "second"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(
        second.status(),
        429,
        "the limit is shared through the database"
    );

    // The held comment's email is delivered exactly once, though both workers run.
    let id = comment_id_from(&first);
    assert!(id > 0);
    for app in [&a, &b] {
        app.state.mail_wakeup.notify_one();
    }
    smtp.wait_for(1).await;
    for app in [&a, &b] {
        app.advance(3600);
        app.state.mail_wakeup.notify_one();
    }
    // Wait until no message is being sent, then count what arrived.
    for _ in 0..500 {
        let busy: i64 = a
            .db(|conn| {
                use diesel::prelude::*;
                use lectern::db::schema::outbox;
                Ok(outbox::table
                    .filter(outbox::status.ne("sent"))
                    .count()
                    .get_result(conn)?)
            })
            .await;
        if busy == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(smtp.mails().len(), 1);

    // A scheduled post is published when due, once, whichever server's scheduler gets there.
    let at = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    crate::reading::publish(
        &a,
        &format!("---\ntitle: Later\nauthor: mod@example.com\ndate: \"{at}\"\n---\nsoon\n"),
    )
    .await;
    for app in [&a, &b] {
        app.advance(2 * 3600);
        app.state.publish_wakeup.notify_one();
    }
    let mut visible = false;
    for _ in 0..500 {
        if b.get("/posts/later").await.status() == 200 {
            visible = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(visible);
    assert_eq!(a.get("/posts/later").await.status(), 200);
    drop(db);
}
