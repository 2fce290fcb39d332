//! The `lectern` binary itself: user and post commands, settings errors, and the privacy of a
//! real server's pages and logs.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Output, Stdio};

use crate::common::{TestDb, client, hidden_value};

fn lectern(db: &TestDb, args: &[&str], stdin: &str) -> Output {
    let dir = db.dir.path();
    let mut child = Command::new(env!("CARGO_BIN_EXE_lectern"))
        .args(args)
        .current_dir(dir)
        .env("LECTERN_DATABASE_URL", db.url.clone())
        .env_remove("LECTERN_BIND")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn user_add_creates_a_user_and_refuses_bad_input_clearly() {
    let db = TestDb::new();
    let ok = lectern(
        &db,
        &[
            "user",
            "add",
            "--email",
            "Admin@Example.com",
            "--name",
            "Ada Admin",
            "--role",
            "admin",
        ],
        "a long enough password\n",
    );
    assert!(ok.status.success(), "{}", text(&ok.stderr));
    assert!(text(&ok.stdout).contains("created admin admin@example.com"));

    let again = lectern(
        &db,
        &[
            "user",
            "add",
            "--email",
            "admin@example.com",
            "--name",
            "Other",
            "--role",
            "moderator",
        ],
        "a long enough password\n",
    );
    assert!(!again.status.success());
    assert!(text(&again.stderr).contains("already exists"));

    let short = lectern(
        &db,
        &[
            "user",
            "add",
            "--email",
            "mod@example.com",
            "--name",
            "Mo",
            "--role",
            "moderator",
        ],
        "short\n",
    );
    assert!(!short.status.success());
    assert!(text(&short.stderr).contains("at least 12 characters"));

    let long = lectern(
        &db,
        &[
            "user",
            "add",
            "--email",
            "mod@example.com",
            "--name",
            "Mo",
            "--role",
            "moderator",
        ],
        &"x".repeat(1025),
    );
    assert!(!long.status.success());
    assert!(text(&long.stderr).contains("longer than 1024 bytes"));

    let role = lectern(
        &db,
        &[
            "user",
            "add",
            "--email",
            "mod@example.com",
            "--name",
            "Mo",
            "--role",
            "owner",
        ],
        "a long enough password\n",
    );
    assert!(!role.status.success());

    let email = lectern(
        &db,
        &[
            "user",
            "add",
            "--email",
            "nobody",
            "--name",
            "Mo",
            "--role",
            "moderator",
        ],
        "a long enough password\n",
    );
    assert!(!email.status.success());
    assert!(text(&email.stderr).contains("--email"));

    let passwd = lectern(
        &db,
        &["user", "passwd", "--email", "admin@example.com"],
        "another long password\n",
    );
    assert!(passwd.status.success(), "{}", text(&passwd.stderr));
    let missing = lectern(
        &db,
        &["user", "passwd", "--email", "ghost@example.com"],
        "another long password\n",
    );
    assert!(!missing.status.success());
    assert!(text(&missing.stderr).contains("no user has the email"));
}

#[test]
fn commands_exit_cleanly_every_time() {
    // On PostgreSQL a pool thread could still be opening a TLS connection while the process
    // exited, and OpenSSL's exit handler then crashed it after the work was done (SIGSEGV in a
    // few percent of runs, more on a busy machine). Many runs, four at a time, make that likely
    // to show; a clean exit is every run.
    let db = TestDb::new();
    let failures: Vec<String> = std::thread::scope(|scope| {
        let runs: Vec<_> = (0..4)
            .map(|lane| {
                let db = &db;
                scope.spawn(move || {
                    let mut failures = Vec::new();
                    for run in 0..15 {
                        let email = format!("user{lane}x{run}@example.com");
                        let args = [
                            "user", "add", "--email", &email, "--name", "A", "--role", "admin",
                        ];
                        let out = lectern(db, &args, "a long enough password\n");
                        if !out.status.success() {
                            failures.push(format!(
                                "{email}: {:?} {}",
                                out.status,
                                text(&out.stderr)
                            ));
                        }
                    }
                    failures
                })
            })
            .collect();
        runs.into_iter().flat_map(|r| r.join().unwrap()).collect()
    });
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn post_publish_creates_and_updates_by_slug_and_one_bad_file_changes_nothing() {
    let db = TestDb::new();
    let dir = &db.dir;
    let add = lectern(
        &db,
        &[
            "user",
            "add",
            "--email",
            "w@example.com",
            "--name",
            "Writer",
            "--role",
            "admin",
        ],
        "a long enough password\n",
    );
    assert!(add.status.success(), "{}", text(&add.stderr));
    let good = dir.path().join("good.md");
    std::fs::write(
        &good,
        "---\ntitle: From a file\nauthor: w@example.com\ntags: [notes]\ndate: 2025-03-01\n---\nHello *file*.\n",
    )
    .unwrap();
    let out = lectern(&db, &["post", "publish", "good.md"], "");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("created /posts/from-a-file (published)"));
    let out = lectern(&db, &["post", "publish", "good.md"], "");
    assert!(text(&out.stdout).contains("updated /posts/from-a-file"));

    let bad = dir.path().join("bad.md");
    std::fs::write(
        &bad,
        "---\ntitle: Bad\nauthor: nobody@example.com\n---\nx\n",
    )
    .unwrap();
    let other = dir.path().join("other.md");
    std::fs::write(&other, "---\ntitle: Other\nauthor: w@example.com\n---\nx\n").unwrap();
    let out = lectern(&db, &["post", "publish", "other.md", "bad.md"], "");
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("bad.md: author: no user has the email nobody@example.com"));

    let no_front = dir.path().join("plain.md");
    std::fs::write(&no_front, "just text").unwrap();
    let out = lectern(&db, &["post", "publish", "plain.md"], "");
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("front matter"));
    let out = lectern(&db, &["post", "publish", "missing.md"], "");
    assert!(!out.status.success());

    // Nothing of other.md was stored, because bad.md failed in the same run.
    let db = lectern::db::Db::open(&db.url, lectern::config::SqliteSync::Normal, 1).unwrap();
    let other = db
        .read_blocking(|conn| lectern::posts::queries::find_by_slug(conn, "other"))
        .unwrap();
    assert!(other.is_none());
}

#[test]
fn a_bad_setting_stops_start_up_with_one_line_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_lectern"))
        .arg("migrate")
        .current_dir(dir.path())
        .env("LECTERN_TIMEZONE", "Mars/Olympus_Mons")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("LECTERN_TIMEZONE"));
    assert!(
        !dir.path().join("lectern.db").exists(),
        "nothing was created"
    );
}

struct Server {
    child: Child,
    address: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

fn serve(db: &TestDb) -> Server {
    let dir = db.dir.path();
    let mut child = Command::new(env!("CARGO_BIN_EXE_lectern"))
        .current_dir(dir)
        .env("LECTERN_DATABASE_URL", db.url.clone())
        .env("LECTERN_BIND", "127.0.0.1:0")
        .env("RUST_LOG", "debug")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let address = loop {
        let line = lines.next().expect("lectern printed its address").unwrap();
        if let Some(address) = line.strip_prefix("listening on ") {
            break address.to_string();
        }
    };
    // Keep reading, so the server never writes into a closed pipe.
    std::thread::spawn(move || lines.for_each(drop));
    Server { child, address }
}

#[tokio::test]
async fn a_sentinel_email_appears_in_no_page_and_no_log_line() {
    let db = TestDb::new();
    let server = serve(&db);
    let sentinel = "sentinel-4f7a9c@example.com";
    let http = client();
    let page = http
        .get(format!("{}/posts/welcome-to-lectern", server.address))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let token = hidden_value(&page, "form_token").unwrap();
    // Submitted at once, so it is stored (as spam); then a moderator's decision is simulated
    // below by approving it directly in the database.
    let response = http
        .post(format!(
            "{}/posts/welcome-to-lectern/comments",
            server.address
        ))
        .form(&[
            ("name", "Sentinel Person"),
            ("email", sentinel),
            ("body", "A comment whose author's address must stay private"),
            ("form_token", &token),
            ("remember", "1"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    // A second, invalid submission from another visitor does not see it either.
    let invalid = client()
        .post(format!(
            "{}/posts/welcome-to-lectern/comments",
            server.address
        ))
        .form(&[("name", ""), ("email", "other@example.com"), ("body", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(invalid.status(), 422);
    assert!(!invalid.text().await.unwrap().contains(sentinel));

    let db = lectern::db::Db::open(&db.url, lectern::config::SqliteSync::Normal, 1).unwrap();
    db.write_blocking(|conn| -> Result<(), lectern::db::DbError> {
        use diesel::prelude::*;
        use lectern::db::schema::comments;
        diesel::update(comments::table.filter(comments::author_email.eq(sentinel)))
            .set(comments::status.eq("approved"))
            .execute(conn)?;
        Ok(())
    })
    .unwrap();

    let stranger = client();
    for path in [
        "/",
        "/posts/welcome-to-lectern",
        "/tags/lectern",
        "/authors/lectern",
        "/feed.xml",
        "/comments/feed.xml",
        "/posts/welcome-to-lectern/feed.xml",
        "/sitemap.xml",
        "/no-such-page",
    ] {
        let body = stranger
            .get(format!("{}{path}", server.address))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(!body.contains(sentinel), "{path} leaks the email");
        assert!(
            !body.contains("sentinel-4f7a9c"),
            "{path} leaks part of the email"
        );
    }
    let page = stranger
        .get(format!("{}/posts/welcome-to-lectern", server.address))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("Sentinel Person"),
        "the comment itself is public"
    );

    let mut server = server;
    let _ = server.child.kill();
    let _ = server.child.wait();
    let mut log = String::new();
    server
        .child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    assert!(log.contains("comment stored"), "the log was captured");
    assert!(!log.contains("sentinel-4f7a9c"), "the log leaks the email");
}

#[test]
fn log_lines_written_to_a_pipe_carry_no_colour_codes() {
    let db = TestDb::new();
    let mut child = Command::new(env!("CARGO_BIN_EXE_lectern"))
        .current_dir(db.dir.path())
        .env("LECTERN_DATABASE_URL", db.url.clone())
        .env("LECTERN_BIND", "127.0.0.1:0")
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let mut seen = Vec::new();
    for line in stderr.lines() {
        let line = line.unwrap();
        let done = line.contains("mail goes to");
        seen.push(line);
        if done {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        seen.iter().any(|l| l.contains("mail goes to")),
        "the start-up log line was written: {seen:?}"
    );
    assert!(
        seen.iter().all(|l| !l.contains('\u{1b}')),
        "no escape codes in a piped log: {seen:?}"
    );
}

/// `lectern check` in the test database's folder with `settings`: (exit success, stdout).
fn check(db: &TestDb, settings: &[(&str, &str)], args: &[&str]) -> (bool, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_lectern"));
    command
        .arg("check")
        .args(args)
        .current_dir(db.dir.path())
        .env("LECTERN_DATABASE_URL", db.url.clone())
        .env_remove("LECTERN_BIND")
        .env_remove("LECTERN_SMTP_URL")
        .env_remove("LECTERN_BASE_URL");
    for (key, value) in settings {
        command.env(key, value);
    }
    let output = command.output().unwrap();
    (output.status.success(), text(&output.stdout))
}

fn line_of<'a>(report: &'a str, prefix: &str) -> &'a str {
    report
        .lines()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no line starting {prefix:?} in:\n{report}"))
}

#[test]
fn check_passes_a_fresh_local_setup_with_warnings_only() {
    let db = TestDb::new();
    let (ok, report) = check(&db, &[], &[]);
    assert!(ok, "{report}");
    assert!(report.contains("✓ settings"), "{report}");
    // http, loopback or unset base URL and no SMTP are warnings, not failures.
    line_of(&report, "! LECTERN_SMTP_URL");
    line_of(&report, "! LECTERN_BASE_URL");
    assert!(!report.contains('✗'), "{report}");
    assert!(report.contains("ready to serve"));
    if db.url.starts_with("sqlite://") {
        // Nothing was created to find out.
        assert!(!db.dir.path().join("test.db").exists());
        line_of(&report, "! LECTERN_DATABASE_URL");
    } else {
        line_of(&report, "✓ LECTERN_DATABASE_URL");
    }
}

#[test]
fn check_names_the_variable_of_each_failure() {
    let db = TestDb::new();
    let (ok, report) = check(&db, &[("LECTERN_TIMEZONE", "Mars/Olympus")], &[]);
    assert!(!ok);
    line_of(&report, "✗ LECTERN_TIMEZONE");

    let (ok, report) = check(
        &db,
        &[(
            "LECTERN_DATABASE_URL",
            "postgres://postgres@127.0.0.1:1/none",
        )],
        &[],
    );
    assert!(!ok);
    line_of(&report, "✗ LECTERN_DATABASE_URL");
    assert!(report.contains("not ready: 1 check(s) failed"), "{report}");

    // A public https site behind a proxy that lectern does not believe.
    let (ok, report) = check(
        &db,
        &[
            ("LECTERN_BASE_URL", "https://blog.example.com"),
            ("LECTERN_MAIL_FROM", "Blog <blog@example.com>"),
        ],
        &[],
    );
    assert!(!ok);
    line_of(&report, "✓ LECTERN_BASE_URL");
    line_of(&report, "✗ LECTERN_TRUSTED_PROXIES");
    assert!(!report.contains("! LECTERN_MAIL_FROM"), "{report}");
    let (ok, report) = check(
        &db,
        &[
            ("LECTERN_BASE_URL", "https://blog.example.com"),
            ("LECTERN_TRUSTED_PROXIES", "127.0.0.1/32"),
            ("LECTERN_MAIL_FROM", "Blog <blog@elsewhere.example>"),
        ],
        &[],
    );
    assert!(ok, "{report}");
    line_of(&report, "✓ LECTERN_TRUSTED_PROXIES");
    line_of(&report, "! LECTERN_MAIL_FROM");
}

#[test]
fn check_fails_an_smtp_server_that_refuses_or_never_answers() {
    let db = TestDb::new();
    // Nothing listens on a reserved port: the connection is refused.
    let port = crate::smtp::SmtpServer::reserve_port();
    let (ok, report) = check(
        &db,
        &[("LECTERN_SMTP_URL", &format!("smtp://127.0.0.1:{port}"))],
        &[],
    );
    assert!(!ok);
    line_of(&report, "✗ LECTERN_SMTP_URL");

    // A listener that accepts connections and never says a word: failed within its deadline
    // (a one-second step deadline here), not waited on for ever.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let (ok, report) = check(
        &db,
        &[
            ("LECTERN_SMTP_URL", &format!("smtp://127.0.0.1:{port}")),
            ("LECTERN_SMTP_TIMEOUT_SECS", "1"),
        ],
        &[],
    );
    assert!(!ok);
    assert!(
        line_of(&report, "✗ LECTERN_SMTP_URL").contains("no answer"),
        "{report}"
    );
    drop(silent);
}

// Multi-threaded: the SMTP server keeps answering while this thread waits for the command.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_passes_a_working_smtp_server_and_sends_a_test_email_only_when_asked() {
    let smtp = crate::smtp::SmtpServer::start().await;
    let db = TestDb::new();
    let url = smtp.url();
    let settings = [("LECTERN_SMTP_URL", url.as_str())];
    let (ok, report) = {
        let (db, settings) = (&db, &settings);
        tokio::task::block_in_place(|| check(db, settings, &[]))
    };
    assert!(ok, "{report}");
    assert!(line_of(&report, "✓ LECTERN_SMTP_URL").contains("no message sent"));
    assert!(smtp.mails().is_empty());

    let (ok, report) = tokio::task::block_in_place(|| {
        check(
            &db,
            &settings,
            &["--send-test-email", "operator@example.com"],
        )
    });
    assert!(ok, "{report}");
    line_of(&report, "✓ test email to operator@example.com");
    let mails = smtp.wait_for(1).await;
    assert_eq!(mails[0].recipients, ["<operator@example.com>"]);
}

#[test]
fn migrate_dry_run_lists_pending_migrations_and_runs_none() {
    let db = TestDb::new();
    let dry = lectern(&db, &["migrate", "--dry-run"], "");
    assert!(dry.status.success(), "{}", text(&dry.stderr));
    let listed = text(&dry.stdout);
    if db.url.starts_with("sqlite://") {
        assert!(listed.contains("pending migration(s):"), "{listed}");
        assert!(listed.contains("_initial"), "{listed}");
        assert!(
            !db.dir.path().join("test.db").exists(),
            "nothing was created"
        );
        let migrated = lectern(&db, &["migrate"], "");
        assert!(migrated.status.success());
    }
    let again = lectern(&db, &["migrate", "--dry-run"], "");
    assert_eq!(text(&again.stdout).trim(), "migrations are up to date");
}
