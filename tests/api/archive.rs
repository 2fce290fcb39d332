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
    create_post(
        app,
        &http,
        &fields("First post", "first-post", &[("tags", "rust, web")]),
    )
    .await;
    let second = create_post(app, &http, &fields("Second post", "second", &[("tags", "web")])).await;
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
    comment(app, "first-post", "Dave", "Still waiting for a moderator.", &[]).await;
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
/// (the comment form's) blanked out.
async fn public_pages(app: &TestApp) -> Vec<(String, u16, String)> {
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
    let mut pages = Vec::new();
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
    assert!(page("/posts/first-post").2.contains("<svg"), "avatars are drawn");
    assert!(page("/posts/second-renamed").2.contains("This comment was removed."));
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
    let exported = succeeded(&lectern(&source.database_url, scratch.path(), &args), "export");
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
    for ((path, status, body), (_, restored_status, restored_body)) in pages.iter().zip(&restored)
    {
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
    // Unsent mail comes back held, until an admin releases it.
    assert_eq!(mail.len(), r_mail.len());
    for (before, after) in mail.iter().zip(&r_mail) {
        assert_eq!(after.status, "held", "restored mail waits");
        assert_eq!(before.message_id, after.message_id);
        assert_eq!(before.body_text, after.body_text);
    }
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
