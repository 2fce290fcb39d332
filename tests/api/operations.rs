//! Running lectern: what `/healthz` and the mail page tell an operator, how start-up fails, and
//! how the server answers while its database does not.

use std::path::Path;
use std::process::{Command, Output};

use crate::common::{TestApp, TestDb, postgres_server};
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

/// Runs the `lectern` binary in `dir` with `env`, to its end.
fn lectern_in(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_lectern"));
    command
        .args(args)
        .current_dir(dir)
        .env_remove("RUST_LOG")
        .env("LECTERN_BIND", "127.0.0.1:0");
    for (key, value) in env {
        command.env(key, value);
    }
    command.output().unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_database_that_cannot_be_opened_stops_serve_with_one_line_naming_lectern_database_url() {
    let dir = tempfile::tempdir().unwrap();
    let missing_dir = dir.path().join("no-such-folder").join("lectern.db");
    for (url, says) in [
        // Nothing listens on port 1: libpq explains the refusal over two lines.
        (
            "postgres://postgres@127.0.0.1:1/lectern".to_string(),
            "Connection refused",
        ),
        (
            format!("sqlite://{}", missing_dir.display()),
            "unable to open database file",
        ),
    ] {
        let out = lectern_in(dir.path(), &["serve"], &[("LECTERN_DATABASE_URL", &url)]);
        assert!(!out.status.success(), "{url}");
        let text = stderr(&out);
        assert_eq!(text.lines().count(), 1, "{url}: {text:?}");
        assert!(
            text.starts_with("error: LECTERN_DATABASE_URL: "),
            "{url}: {text:?}"
        );
        assert!(text.contains(says), "{url}: {text:?}");
    }
}

#[test]
fn a_bad_tls_mode_in_the_smtp_url_exits_like_every_bad_setting_before_opening_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let database = dir.path().join("lectern.db");
    let out = lectern_in(
        dir.path(),
        &["serve"],
        &[
            (
                "LECTERN_DATABASE_URL",
                &format!("sqlite://{}", database.display()),
            ),
            ("LECTERN_SMTP_URL", "smtp://127.0.0.1:2525?tls=always"),
        ],
    );
    // Exit status 2 is what a bad setting gives (`a_bad_setting_stops_start_up_…`).
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let text = stderr(&out);
    assert_eq!(text.lines().count(), 1, "{text:?}");
    assert!(text.contains("LECTERN_SMTP_URL"), "{text:?}");
    assert!(text.contains("always"), "{text:?}");
    assert!(!database.exists(), "the database was not created");
}

/// The names of the tables in a PostgreSQL database.
fn postgres_tables(url: &str) -> Vec<String> {
    use diesel::prelude::*;
    #[derive(QueryableByName)]
    struct Table {
        #[diesel(sql_type = diesel::sql_types::Text)]
        table_name: String,
    }
    let mut conn = diesel::pg::PgConnection::establish(url).unwrap();
    diesel::sql_query(
        "SELECT table_name::text AS table_name FROM information_schema.tables \
         WHERE table_schema = 'public'",
    )
    .load::<Table>(&mut conn)
    .unwrap()
    .into_iter()
    .map(|t| t.table_name)
    .collect()
}

#[test]
fn when_the_port_is_taken_serve_fails_before_writing_anything_to_the_database() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let bind = taken.local_addr().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let database = dir.path().join("lectern.db");
    let sqlite = format!("sqlite://{}", database.display());
    let postgres = postgres_server().map(|server| TestDb::empty_postgres(&server));
    let mut urls = vec![sqlite];
    urls.extend(postgres.iter().map(|db| db.url.clone()));
    for url in urls {
        let out = lectern_in(
            dir.path(),
            &["serve"],
            &[("LECTERN_DATABASE_URL", &url), ("LECTERN_BIND", &bind)],
        );
        assert!(!out.status.success(), "{url}");
        let text = stderr(&out);
        assert!(text.contains("LECTERN_BIND"), "{url}: {text:?}");
        assert_eq!(text.lines().count(), 1, "{url}: {text:?}");
    }
    assert!(!database.exists(), "no SQLite database was created");
    if let Some(db) = &postgres {
        assert_eq!(
            postgres_tables(&db.url),
            Vec::<String>::new(),
            "no migration ran on PostgreSQL"
        );
    }
    drop(taken);
}

/// Runs one statement on the PostgreSQL server as its administrator.
fn postgres_admin(server: &str, sql: &str) {
    use diesel::Connection;
    use diesel::connection::SimpleConnection;
    let mut conn = diesel::pg::PgConnection::establish(server).unwrap();
    conn.batch_execute(sql)
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

#[tokio::test]
async fn while_postgresql_refuses_connections_pages_and_healthz_answer_503_at_once_and_recover() {
    let Some(server) = postgres_server() else {
        return; // An outage of PostgreSQL, in the PostgreSQL run of the suite.
    };
    // Requests would wait five minutes for a busy pool: a 503 below can only come from
    // noticing that the database is gone, not from that wait running out.
    let app = TestApp::spawn_with(&[
        ("LECTERN_DATABASE_TIMEOUT_SECS", "300"),
        ("LECTERN_DATABASE_PROBE_MS", "200"),
    ])
    .await;
    assert_eq!(app.get("/healthz").await.status(), 200);
    assert_eq!(app.get("/posts/welcome-to-lectern").await.status(), 200);

    let name = url::Url::parse(&app.database_url).unwrap().path()[1..].to_string();
    postgres_admin(
        &server,
        &format!(
            "ALTER DATABASE \"{name}\" ALLOW_CONNECTIONS false; \
             SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = '{name}' AND pid <> pg_backend_pid();"
        ),
    );

    // A guard against hanging for the five minutes, not a measure of speed.
    let guard = std::time::Duration::from_secs(60);
    let health = tokio::time::timeout(guard, app.get("/healthz"))
        .await
        .expect("/healthz answers during the outage");
    assert_eq!(health.status(), 503);
    assert!(health.text().await.unwrap().contains("database: down"));
    for path in ["/posts/welcome-to-lectern", "/", "/feed.xml"] {
        let page = tokio::time::timeout(guard, app.get(path))
            .await
            .unwrap_or_else(|_| panic!("{path} answers during the outage"));
        assert_eq!(page.status(), 503, "{path}");
        assert_eq!(
            page.headers().get("retry-after").unwrap().to_str().unwrap(),
            "5"
        );
        let text = page.text().await.unwrap();
        assert!(text.contains("Temporarily unavailable"), "{path}: {text}");
        assert!(text.contains("Please try again shortly"), "{path}: {text}");
    }

    postgres_admin(
        &server,
        &format!("ALTER DATABASE \"{name}\" ALLOW_CONNECTIONS true"),
    );
    // The pool notices on its own: poll, bounded, until it has.
    let mut status = 0;
    for _ in 0..300 {
        status = app.get("/healthz").await.status().as_u16();
        if status == 200 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(status, 200, "/healthz recovers with the database");
    assert_eq!(app.get("/posts/welcome-to-lectern").await.status(), 200);
}
