//! Moving out and staying safe: the lectern archive round trip between SQLite and PostgreSQL
//! (same pages byte for byte, same queue, same subscriptions), backups taken while comments
//! arrive, refused archives that change nothing, and the WordPress export read back by the
//! WordPress importer.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use diesel::prelude::*;
use lectern::archive::tables;

use crate::common::{TestApp, TestDb, comment_id_from, postgres_server};

const BASE: &str = "http://blog.example";

fn settings() -> Vec<(&'static str, &'static str)> {
    vec![("LECTERN_BASE_URL", BASE), ("LECTERN_FLOOD_LIMITS", "off")]
}

fn lectern(url: &str, dir: &Path, args: &[&str]) -> Output {
    let child = Command::new(env!("CARGO_BIN_EXE_lectern"))
        .args(args)
        .current_dir(dir)
        .env("LECTERN_DATABASE_URL", url)
        .env("LECTERN_BASE_URL", BASE)
        .env_remove("LECTERN_BIND")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.wait_with_output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn succeeded(out: &Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what} failed: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

async fn spawn_on(db: TestDb) -> TestApp {
    let mut app = TestApp::spawn_on(&db.url, db.dir.path(), &settings()).await;
    app.test_db = Some(db);
    app
}

fn fields<'a>(
    title: &'a str,
    slug: &'a str,
    extra: &[(&'a str, &'a str)],
) -> Vec<(&'a str, &'a str)> {
    let mut form = vec![
        ("title", title),
        ("slug", slug),
        (
            "body",
            "Some *Markdown* text about archives.\n\n[box type=\"note\"]A note.[/box]\n",
        ),
        ("excerpt", ""),
        ("tags", ""),
        ("kind", "post"),
        ("status", "published"),
        ("publish_at", ""),
        ("comments_open", "1"),
    ];
    for (name, value) in extra {
        form.retain(|(n, _)| n != name);
        form.push((name, value));
    }
    form
}

async fn create_post(app: &TestApp, http: &reqwest::Client, form: &[(&str, &str)]) -> i32 {
    let response = app.staff_post(http, "/admin/posts/new", form).await;
    assert_eq!(response.status(), 303, "the post is created");
    let location = response.headers()["location"].to_str().unwrap().to_string();
    location
        .strip_prefix("/admin/posts/")
        .and_then(|rest| rest.split('/').next())
        .and_then(|id| id.parse().ok())
        .unwrap_or_else(|| panic!("unexpected redirect {location}"))
}

async fn comment(app: &TestApp, slug: &str, name: &str, body: &str, extra: &[(&str, &str)]) -> i32 {
    let email = format!("{}@example.net", name.to_lowercase());
    let mut form = vec![("name", name), ("email", email.as_str()), ("body", body)];
    form.extend_from_slice(extra);
    let response = app.comment_as(&crate::common::client(), slug, &form).await;
    assert_eq!(response.status(), 303, "comment by {name} is stored");
    comment_id_from(&response)
}

async fn act(app: &TestApp, http: &reqwest::Client, id: i32, action: &str) {
    let response = app
        .staff_post(http, &format!("/admin/comments/{id}/{action}"), &[])
        .await;
    assert_eq!(response.status(), 303, "{action} comment {id}");
}

/// A site with every kind of data: posts, a page, a draft, tags, a renamed post (an old slug),
/// threads, every status, a removed comment with replies (a placeholder), a notification
/// subscription, a block, mail waiting to be sent and mail sent.
async fn seed(app: &TestApp) -> reqwest::Client {
    let http = app.staff_client("admin").await;
    // A picture of the media library, every variant of it (format version 2).
    let (status, answer) = crate::media::upload(
        app,
        &http,
        &[("sunrise.png", &crate::media::png(1600, 900), "A sunrise")],
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    create_post(
        app,
        &http,
        &fields("First post", "first-post", &[("tags", "rust, web")]),
    )
    .await;
    let second = create_post(
        app,
        &http,
        &fields("Second post", "second", &[("tags", "web")]),
    )
    .await;
    create_post(
        app,
        &http,
        &fields("About", "about", &[("kind", "page"), ("comments_open", "")]),
    )
    .await;
    create_post(
        app,
        &http,
        &fields("Unfinished", "unfinished", &[("status", "draft")]),
    )
    .await;
    let renamed = app
        .staff_post(
            &http,
            &format!("/admin/posts/{second}/edit"),
            &fields("Second post", "second-renamed", &[("tags", "web")]),
        )
        .await;
    assert_eq!(renamed.status(), 303, "the post is renamed");

    let alice = comment(app, "first-post", "Alice", "The first comment.", &[]).await;
    act(app, &http, alice, "approve").await;
    let bob = comment(
        app,
        "first-post",
        "Bob",
        "A reply to Alice.",
        &[("parent_id", &alice.to_string())],
    )
    .await;
    act(app, &http, bob, "approve").await;
    let spam = comment(app, "first-post", "Carol", "Cheap watches here.", &[]).await;
    act(app, &http, spam, "spam").await;
    comment(
        app,
        "first-post",
        "Dave",
        "Still waiting for a moderator.",
        &[],
    )
    .await;
    let eve = comment(app, "second-renamed", "Eve", "This will be removed.", &[]).await;
    act(app, &http, eve, "approve").await;
    let frank = comment(
        app,
        "second-renamed",
        "Frank",
        "A reply that stays.",
        &[("parent_id", &eve.to_string())],
    )
    .await;
    act(app, &http, frank, "approve").await;
    act(app, &http, eve, "trash").await;
    let grace = comment(
        app,
        "second-renamed",
        "Grace",
        "Tell me about replies.",
        &[("notify", "1")],
    )
    .await;
    act(app, &http, grace, "approve").await;

    let now = app.state.clock.now();
    app.db(move |conn| {
        use lectern::db::schema::{blocks, notify_addresses, outbox};
        diesel::insert_into(blocks::table)
            .values((
                blocks::kind.eq("email"),
                blocks::value.eq("troll@example.org"),
                blocks::created_at.eq(now),
            ))
            .execute(conn)?;
        diesel::insert_into(notify_addresses::table)
            .values((
                notify_addresses::email.eq("heidi@example.net"),
                notify_addresses::confirmation_sent_at.eq(Some(now)),
                notify_addresses::confirmed_at.eq(Some(now)),
                notify_addresses::created_at.eq(now),
            ))
            .execute(conn)?;
        // Mail the old site has not sent yet: due tomorrow.
        diesel::insert_into(outbox::table)
            .values((
                outbox::message_id.eq("<waiting@blog.example>"),
                outbox::kind.eq("reply"),
                outbox::to_address.eq("heidi@example.net"),
                outbox::subject.eq("A reply"),
                outbox::body_text.eq("Someone replied."),
                outbox::body_html.eq("<p>Someone replied.</p>"),
                outbox::status.eq("queued"),
                outbox::next_attempt_at.eq(now + chrono::Duration::days(1)),
                outbox::created_at.eq(now),
            ))
            .execute(conn)?;
        Ok(())
    })
    .await;
    http
}

/// Every public page the seeded site has, with its status and body; per-request tokens
/// (the comment form's) blanked out. Pictures of the media library come as their length and a
/// hash of their bytes.
async fn public_pages(app: &TestApp) -> Vec<(String, u16, String)> {
    let pictures: Vec<String> = app
        .db(|conn| {
            use lectern::db::schema::{media, media_variants};
            let rows: Vec<(String, String, i32)> = media::table
                .inner_join(media_variants::table)
                .select((media::sha256, media_variants::format, media_variants::width))
                .order((media::id, media_variants::width))
                .load(conn)?;
            Ok(rows
                .into_iter()
                .map(|(sha, format, width)| {
                    let ext = if format == "jpeg" {
                        "jpg".to_string()
                    } else {
                        format
                    };
                    format!("/media/{sha}-{width}.{ext}")
                })
                .collect())
        })
        .await;
    assert!(!pictures.is_empty(), "the seeded site has pictures");
    let mut pages = Vec::new();
    for path in &pictures {
        let response = crate::common::client()
            .get(app.url(path))
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let bytes = response.bytes().await.unwrap();
        use sha2::Digest;
        let digest = hex::encode(sha2::Sha256::digest(&bytes));
        pages.push((
            path.clone(),
            status,
            format!("{} bytes, sha256 {digest}", bytes.len()),
        ));
    }
    let author: String = app
        .db(|conn| {
            use lectern::db::schema::users;
            Ok(users::table
                .filter(users::email.eq("admin@example.com"))
                .select(users::slug)
                .first(conn)?)
        })
        .await;
    let token = regex::Regex::new(r#"name="form_token" value="[^"]*""#).unwrap();
    for path in [
        "/".to_string(),
        "/posts/first-post".into(),
        "/posts/second-renamed".into(),
        "/posts/second".into(),
        "/posts/welcome-to-lectern".into(),
        "/pages/about".into(),
        "/tags/rust".into(),
        "/tags/web".into(),
        format!("/authors/{author}"),
        "/feed.xml".into(),
        "/comments/feed.xml".into(),
        "/posts/first-post/feed.xml".into(),
        "/tags/web/feed.xml".into(),
        "/sitemap.xml".into(),
        "/search?q=archives".into(),
        "/privacy".into(),
    ] {
        let response = crate::common::client()
            .get(app.url(&path))
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let location = response
            .headers()
            .get("location")
            .map(|l| l.to_str().unwrap().to_string())
            .unwrap_or_default();
        let body = response.text().await.unwrap();
        let body = token.replace_all(&body, r#"name="form_token" value="""#);
        pages.push((path, status, format!("{location}\n{body}")));
    }
    pages
}

/// The queue (every comment with every field), the subscriptions, and the unsent mail.
type Rows = (
    Vec<tables::Comment>,
    Vec<tables::Subscription>,
    Vec<tables::Mail>,
    Vec<tables::Post>,
    Vec<tables::Block>,
);

async fn rows(app: &TestApp) -> Rows {
    app.db(|conn| {
        use lectern::db::schema::{blocks, comments, notify_addresses, outbox, posts};
        Ok((
            comments::table
                .select(tables::Comment::as_select())
                .order(comments::id)
                .load(conn)?,
            notify_addresses::table
                .select(tables::Subscription::as_select())
                .order(notify_addresses::email)
                .load(conn)?,
            outbox::table
                .filter(outbox::status.ne("sent"))
                .select(tables::Mail::as_select())
                .order(outbox::id)
                .load(conn)?,
            posts::table
                .select(tables::Post::as_select())
                .order(posts::id)
                .load(conn)?,
            blocks::table
                .select(tables::Block::as_select())
                .order(blocks::id)
                .load(conn)?,
        ))
    })
    .await
}

async fn comment_counts(app: &TestApp) -> Vec<(String, i32)> {
    app.db(|conn| {
        use lectern::db::schema::comment_counts;
        Ok(comment_counts::table
            .select((comment_counts::status, comment_counts::total))
            .order(comment_counts::status)
            .load(conn)?)
    })
    .await
}

/// Export from `source` with the command line, import into `target`, and compare.
async fn round_trip(source_db: TestDb, target_db: TestDb, secrets: bool, file_name: &str) {
    let source = spawn_on(source_db).await;
    seed(&source).await;
    let pages = public_pages(&source).await;
    let page = |path: &str| pages.iter().find(|p| p.0 == path).unwrap();
    assert_eq!(page("/posts/first-post").1, 200);
    assert!(page("/posts/first-post").2.contains("A reply to Alice."));
    assert!(
        page("/posts/first-post").2.contains("<svg"),
        "avatars are drawn"
    );
    assert!(
        page("/posts/second-renamed")
            .2
            .contains("This comment was removed.")
    );
    assert_eq!(page("/posts/second").1, 301, "the old slug answers 301");
    let (comments, subscriptions, mail, posts, blocks) = rows(&source).await;
    let counts = comment_counts(&source).await;
    assert!(comments.iter().any(|c| c.status == "pending"));
    assert!(comments.iter().any(|c| c.status == "spam"));
    assert!(comments.iter().any(|c| c.status == "trash"));
    assert!(comments.iter().any(|c| c.parent_id.is_some()));
    assert!(!mail.is_empty(), "mail is waiting");

    let scratch = tempfile::tempdir().unwrap();
    let file = scratch.path().join(file_name);
    let file_arg = file.display().to_string();
    let mut args = vec!["export", file_arg.as_str()];
    if secrets {
        args.push("--include-secrets");
    }
    // While the source keeps serving.
    let exported = succeeded(
        &lectern(&source.database_url, scratch.path(), &args),
        "export",
    );
    assert!(exported.contains("comment"), "{exported}");
    let imported = succeeded(
        &lectern(
            &target_db.url,
            scratch.path(),
            &["import", "lectern", &file_arg],
        ),
        "import",
    );
    assert!(imported.contains("held"), "{imported}");

    let target = spawn_on(target_db).await;
    let restored = public_pages(&target).await;
    for ((path, status, body), (_, restored_status, restored_body)) in pages.iter().zip(&restored) {
        assert_eq!(status, restored_status, "{path}: same status");
        assert!(
            body == restored_body,
            "{path}: the restored page differs\n--- before\n{body}\n--- after\n{restored_body}"
        );
    }
    let (r_comments, r_subscriptions, r_mail, r_posts, r_blocks) = rows(&target).await;
    assert_eq!(comments, r_comments, "the same comments, every field");
    assert_eq!(subscriptions, r_subscriptions, "the same subscriptions");
    assert_eq!(posts, r_posts, "the same posts");
    assert_eq!(blocks, r_blocks, "the same blocks");
    assert_eq!(comment_counts(&target).await, counts, "the same counts");
    // Unsent mail comes back held, until an admin releases it. (The source's worker may send
    // its own mail between the snapshot above and the export: compare the message not due.)
    let waiting = |all: &[tables::Mail]| {
        all.iter()
            .find(|m| m.message_id == "<waiting@blog.example>")
            .cloned()
            .expect("the waiting message")
    };
    let (before, after) = (waiting(&mail), waiting(&r_mail));
    assert_eq!(after.status, "held", "restored mail waits");
    assert_eq!(
        (before.body_text, before.to_address),
        (after.body_text, after.to_address)
    );
    assert!(
        r_mail
            .iter()
            .all(|m| m.status == "held" || m.status == "failed")
    );
    if secrets {
        // Staff log in with their own passwords on the new database.
        let http = target
            .login_client("admin@example.com", crate::common::PASSWORD)
            .await;
        let page = http
            .get(target.url("/admin/mail"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(page.contains("Send held mail"), "{page}");
        let released = target.staff_post(&http, "/admin/mail/release", &[]).await;
        assert_eq!(released.status(), 303);
        let (_, _, after_release, _, _) = rows(&target).await;
        assert!(after_release.iter().all(|m| m.status != "held"));
    }
    // New rows continue after the restored ids (PostgreSQL's sequences were moved on).
    let id = comment(&target, "first-post", "Ivan", "After the move.", &[]).await;
    assert!(id > comments.iter().map(|c| c.id).max().unwrap());
    source.stop().await;
    target.stop().await;
}

#[tokio::test]
async fn a_site_moves_from_sqlite_to_sqlite_with_the_same_pages_queue_and_subscriptions() {
    round_trip(TestDb::sqlite(), TestDb::sqlite(), false, "site.jsonl").await;
}

#[tokio::test]
async fn a_site_moves_from_sqlite_to_postgresql_in_two_commands() {
    if postgres_server().is_none() {
        eprintln!("skipped: LECTERN_TEST_DATABASE_URL names no PostgreSQL server");
        return;
    }
    round_trip(TestDb::sqlite(), TestDb::new(), true, "site.jsonl.gz").await;
}

#[tokio::test]
async fn a_site_moves_from_postgresql_to_sqlite_in_two_commands() {
    if postgres_server().is_none() {
        eprintln!("skipped: LECTERN_TEST_DATABASE_URL names no PostgreSQL server");
        return;
    }
    round_trip(TestDb::new(), TestDb::sqlite(), true, "site.jsonl.gz").await;
}

/// The ids of the comments in a backup of either kind.
fn comment_ids_in_backup(path: &Path) -> Vec<i32> {
    use lectern::archive::backup::{BackupKind, kind_of};
    match kind_of(path).unwrap() {
        BackupKind::Sqlite => {
            let mut conn =
                diesel::sqlite::SqliteConnection::establish(&path.display().to_string()).unwrap();
            lectern::db::schema::comments::table
                .select(lectern::db::schema::comments::id)
                .load(&mut conn)
                .unwrap()
        }
        BackupKind::Archive => {
            let mut reader = lectern::archive::RecordReader::open(path).unwrap();
            let mut ids = Vec::new();
            while let Some(record) = reader.next_record().unwrap() {
                if let lectern::archive::Record::Comment(c) = record {
                    ids.push(c.id);
                }
            }
            ids
        }
    }
}

#[tokio::test]
async fn a_backup_taken_while_comments_arrive_holds_every_comment_acknowledged_before_it() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};
    let app = Arc::new(TestApp::spawn_with(&settings()).await);
    let acknowledged = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let poster = {
        let (app, acknowledged, stop) = (app.clone(), acknowledged.clone(), stop.clone());
        tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let body = format!("Comment number {n} while the backup runs.");
                let id = comment(&app, crate::common::WELCOME, "Poster", &body, &[]).await;
                acknowledged.lock().unwrap().push(id);
            }
        })
    };
    while acknowledged.lock().unwrap().len() < 5 {
        tokio::task::yield_now().await;
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let scratch = tempfile::tempdir().unwrap();
    let file = scratch.path().join(match app.state.db.backend() {
        lectern::db::Backend::Sqlite => "backup.db",
        lectern::db::Backend::Postgres => "backup.jsonl.gz",
    });
    let before: Vec<i32> = acknowledged.lock().unwrap().clone();
    let (db, signer, path) = (app.state.db.clone(), app.state.signer.clone(), file.clone());
    tokio::task::spawn_blocking(move || {
        lectern::archive::backup::backup(
            &db,
            &signer,
            &path,
            &mut lectern::archive::progress::Silent,
        )
        .unwrap()
    })
    .await
    .unwrap();
    // Comments kept arriving during the backup.
    let during = acknowledged.lock().unwrap().len();
    stop.store(true, Ordering::Relaxed);
    poster.await.unwrap();

    let (_, counts) =
        lectern::archive::backup::verify(&file, &mut lectern::archive::progress::Silent)
            .expect("the backup passes its integrity check");
    let in_backup = comment_ids_in_backup(&file);
    assert_eq!(counts["comment"], in_backup.len() as u64);
    for id in &before {
        assert!(
            in_backup.contains(id),
            "comment {id} was acknowledged before the backup"
        );
    }
    assert!(during >= before.len());
    // The backup can be restored into an empty database, and the admin sees when it ran.
    let target = TestDb::sqlite();
    let out = lectern(
        &target.url,
        scratch.path(),
        &["restore", &file.display().to_string()],
    );
    succeeded(&out, "restore");
    let http = app.staff_client("admin").await;
    let page = http
        .get(app.url("/admin/export"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("The last backup with"), "{page}");
}

/// Everything a failed import could have changed (mail by message id: the worker is sending
/// the site's own mail meanwhile).
type Fingerprint = (
    Vec<tables::Comment>,
    Vec<tables::Subscription>,
    Vec<tables::Post>,
    Vec<tables::Block>,
    Vec<(String, i32)>,
    i64,
    Vec<String>,
);

async fn fingerprint(app: &TestApp) -> Fingerprint {
    let (comments, subscriptions, _, posts, blocks) = rows(app).await;
    let (users, mail) = app
        .db(|conn| {
            use lectern::db::schema::{outbox, users};
            Ok((
                users::table.count().get_result(conn)?,
                outbox::table
                    .select(outbox::message_id)
                    .order(outbox::message_id)
                    .load(conn)?,
            ))
        })
        .await;
    (
        comments,
        subscriptions,
        posts,
        blocks,
        comment_counts(app).await,
        users,
        mail,
    )
}

#[tokio::test]
async fn a_truncated_or_future_archive_is_refused_and_changes_nothing() {
    let source = TestApp::spawn_with(&settings()).await;
    seed(&source).await;
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path();
    for name in ["site.jsonl", "site.jsonl.gz"] {
        let file = dir.join(name);
        succeeded(
            &lectern(
                &source.database_url,
                dir,
                &["export", &file.display().to_string()],
            ),
            "export",
        );
        let bytes = std::fs::read(&file).unwrap();
        let truncated = dir.join(format!("truncated-{name}"));
        std::fs::write(&truncated, &bytes[..bytes.len() - 40]).unwrap();

        // Into a new database: refused, and the database is not even created.
        let target = TestDb::sqlite();
        let out = lectern(
            &target.url,
            dir,
            &["import", "lectern", &truncated.display().to_string()],
        );
        assert!(!out.status.success());
        let error = text(&out.stderr);
        assert!(error.contains("truncated"), "{error}");
        assert_eq!(error.lines().count(), 1, "one line: {error}");
        assert!(
            !target.dir.path().join("test.db").exists(),
            "nothing was created"
        );

        // Merged into a site: refused, nothing changed.
        let before = fingerprint(&source).await;
        let out = lectern(
            &source.database_url,
            dir,
            &[
                "import",
                "lectern",
                "--merge",
                &truncated.display().to_string(),
            ],
        );
        assert!(!out.status.success());
        assert_eq!(fingerprint(&source).await, before);
    }

    // A newer format version is refused by name.
    let plain = std::fs::read_to_string(dir.join("site.jsonl")).unwrap();
    let future = dir.join("future.jsonl");
    std::fs::write(
        &future,
        plain.replacen(
            &format!("\"version\":{}", lectern::archive::FORMAT_VERSION),
            "\"version\":99",
            1,
        ),
    )
    .unwrap();
    let target = TestDb::sqlite();
    let out = lectern(
        &target.url,
        dir,
        &["import", "lectern", &future.display().to_string()],
    );
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("newer"), "{}", text(&out.stderr));
    assert!(!target.dir.path().join("test.db").exists());

    // Into a database that holds a site, without --merge: refused, nothing changed.
    let before = fingerprint(&source).await;
    let out = lectern(
        &source.database_url,
        dir,
        &[
            "import",
            "lectern",
            &dir.join("site.jsonl").display().to_string(),
        ],
    );
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("not empty"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(fingerprint(&source).await, before);

    // --merge of the site's own archive finds everything there: nothing changes, twice.
    for _ in 0..2 {
        let out = lectern(
            &source.database_url,
            dir,
            &[
                "import",
                "lectern",
                "--merge",
                &dir.join("site.jsonl.gz").display().to_string(),
            ],
        );
        let report = succeeded(&out, "merge");
        assert!(report.contains("restored: no records"), "{report}");
        assert_eq!(fingerprint(&source).await, before);
    }
}

#[tokio::test]
async fn a_merge_into_another_site_adds_the_archive_once() {
    let source = TestApp::spawn_with(&settings()).await;
    seed(&source).await;
    let scratch = tempfile::tempdir().unwrap();
    let file = scratch.path().join("site.jsonl");
    succeeded(
        &lectern(
            &source.database_url,
            scratch.path(),
            &["export", &file.display().to_string()],
        ),
        "export",
    );
    let other = TestApp::spawn_with(&settings()).await;
    other.staff_client("admin").await;
    comment(&other, crate::common::WELCOME, "Zed", "Already here.", &[]).await;
    let merge = || {
        lectern(
            &other.database_url,
            scratch.path(),
            &["import", "lectern", "--merge", &file.display().to_string()],
        )
    };
    succeeded(&merge(), "merge");
    let once = fingerprint(&other).await;
    let comments = &once.0;
    let source_comments = rows(&source).await.0;
    // The welcome post's comments match by post, time and email; the rest are added.
    assert!(comments.len() >= source_comments.len());
    assert!(comments.iter().any(|c| c.body == "A reply to Alice."));
    let bob = comments.iter().find(|c| c.author_name == "Bob").unwrap();
    let alice = comments.iter().find(|c| c.author_name == "Alice").unwrap();
    assert_eq!(bob.parent_id, Some(alice.id), "threads keep their shape");
    succeeded(&merge(), "merge again");
    assert_eq!(
        fingerprint(&other).await,
        once,
        "a second merge changes nothing"
    );
}

#[tokio::test]
async fn the_wordpress_export_is_xml_that_the_wordpress_import_reads_back_the_same() {
    let source = TestApp::spawn_with(&settings()).await;
    seed(&source).await;
    let scratch = tempfile::tempdir().unwrap();
    let file = scratch.path().join("site.xml");
    succeeded(
        &lectern(
            &source.database_url,
            scratch.path(),
            &[
                "export",
                "--format",
                "wordpress",
                &file.display().to_string(),
            ],
        ),
        "export --format wordpress",
    );
    // Well-formed XML, end to end.
    let xml = std::fs::read_to_string(&file).unwrap();
    let mut reader = quick_xml::Reader::from_str(&xml);
    let mut items = 0;
    loop {
        match reader.read_event() {
            Ok(quick_xml::events::Event::Eof) => break,
            Ok(quick_xml::events::Event::Start(e)) if e.name().as_ref() == b"item" => items += 1,
            Ok(_) => {}
            Err(e) => panic!("not well-formed at {}: {e}", reader.buffer_position()),
        }
    }
    assert_eq!(items, 5, "four posts and pages and the welcome post");

    let target = TestApp::spawn_with(&settings()).await;
    let env = lectern::import::Env {
        db: target.state.db.clone(),
        signer: target.state.signer.clone(),
        now: target.state.clock.now(),
    };
    let path = file.clone();
    let report = tokio::task::spawn_blocking(move || {
        lectern::import::run(
            &env,
            lectern::import::Kind::WordPress,
            &path,
            &lectern::import::Options::default(),
            &mut lectern::import::progress::Silent,
        )
    })
    .await
    .unwrap()
    .expect("the WordPress importer reads it");
    assert!(report.comments.imported >= 7, "{report}");

    type Shape = (
        Vec<(String, String, String, String)>,
        Vec<(String, String, String, String, Option<String>)>,
    );
    async fn shape(app: &TestApp) -> Shape {
        app.db(|conn| {
            use lectern::db::schema::{comments, posts};
            let posts: Vec<(String, String, String, String)> = posts::table
                .filter(posts::slug.not_like("welcome-to-lectern%"))
                .select((posts::slug, posts::title, posts::kind, posts::status))
                .order(posts::slug)
                .load(conn)?;
            let all: Vec<(i32, i32, Option<i32>, String, String, String)> = comments::table
                .inner_join(posts::table)
                .filter(posts::slug.not_like("welcome-to-lectern%"))
                .select((
                    comments::id,
                    comments::post_id,
                    comments::parent_id,
                    comments::author_name,
                    comments::body,
                    comments::status,
                ))
                .load(conn)?;
            let slugs: std::collections::HashMap<i32, String> = posts::table
                .select((posts::id, posts::slug))
                .load::<(i32, String)>(conn)?
                .into_iter()
                .collect();
            let names: std::collections::HashMap<i32, String> =
                all.iter().map(|c| (c.0, c.3.clone())).collect();
            let mut comments: Vec<_> = all
                .iter()
                .map(|c| {
                    (
                        slugs[&c.1].clone(),
                        c.3.clone(),
                        c.4.clone(),
                        c.5.clone(),
                        c.2.map(|p| names[&p].clone()),
                    )
                })
                .collect();
            comments.sort();
            Ok((posts, comments))
        })
        .await
    }
    let (source_posts, source_comments) = shape(&source).await;
    let (target_posts, target_comments) = shape(&target).await;
    assert_eq!(source_posts, target_posts, "the same posts and pages");
    assert_eq!(
        source_comments, target_comments,
        "the same comments, threads and statuses"
    );
}

#[tokio::test]
async fn the_admin_downloads_the_archive_without_secrets_and_moderators_cannot() {
    let app = TestApp::spawn_with(&settings()).await;
    let admin = seed(&app).await;
    let page = admin.get(app.url("/admin/export")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let page = page.text().await.unwrap();
    assert!(page.contains("No backup has been taken"), "{page}");
    assert!(page.contains(r#"href="/admin/export" aria-current="page">Export"#));

    let download = admin
        .get(app.url("/admin/export/archive"))
        .send()
        .await
        .unwrap();
    assert_eq!(download.status(), 200);
    let bytes = download.bytes().await.unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let file = scratch.path().join("download.jsonl.gz");
    std::fs::write(&file, &bytes).unwrap();
    let mut reader = lectern::archive::RecordReader::open(&file).unwrap();
    assert!(!reader.header.secrets);
    let mut comments = 0;
    while let Some(record) = reader.next_record().unwrap() {
        match record {
            lectern::archive::Record::User(u) => assert_eq!(u.password_hash, "", "no hashes"),
            lectern::archive::Record::Setting(s) => assert_ne!(s.name, "secret_key"),
            lectern::archive::Record::Comment(_) => comments += 1,
            _ => {}
        }
    }
    assert_eq!(comments as i64, app.comment_count().await);

    let wxr = admin
        .get(app.url("/admin/export/wordpress"))
        .send()
        .await
        .unwrap();
    assert_eq!(wxr.status(), 200);
    assert!(wxr.text().await.unwrap().ends_with("</rss>\n"));

    let moderator = app.staff_client("moderator").await;
    for path in [
        "/admin/export",
        "/admin/export/archive",
        "/admin/export/wordpress",
    ] {
        let response = moderator.get(app.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 403, "{path}");
    }
    let anonymous = crate::common::client()
        .get(app.url("/admin/export/archive"))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 303);
}
