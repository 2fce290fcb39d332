//! Moving in: WordPress (WXR 1.0–1.2), Disqus and Isso imports, from the command line and in
//! process, their reports, idempotency, old addresses, and the admin's import page.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use diesel::prelude::*;
use lectern::import::{Kind, Options, Report};

use crate::common::{TestApp, TestDb, WELCOME};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/import")
        .join(name)
}

/// Runs an import in process against the app's database.
async fn import_as(
    app: &TestApp,
    kind: Kind,
    file: &Path,
    options: Options,
) -> Result<Report, String> {
    let env = lectern::import::Env {
        db: app.state.db.clone(),
        signer: app.state.signer.clone(),
        now: app.state.clock.now(),
    };
    let file = file.to_path_buf();
    tokio::task::spawn_blocking(move || {
        lectern::import::run(
            &env,
            kind,
            &file,
            &options,
            &mut lectern::import::progress::Silent,
        )
        .map_err(|e| e.to_string())
    })
    .await
    .unwrap()
}

async fn import(app: &TestApp, kind: Kind, file: &Path) -> Report {
    import_as(app, kind, file, Options::default())
        .await
        .unwrap()
}

fn lectern(db: &TestDb, args: &[&str]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_lectern"))
        .args(args)
        .current_dir(db.dir.path())
        .env("LECTERN_DATABASE_URL", db.url.clone())
        .env_remove("LECTERN_BIND")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdin.take());
    child.wait_with_output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Everything an import could change, to compare before and after.
async fn fingerprint(app: &TestApp) -> Vec<String> {
    use lectern::db::schema::{
        comment_counts, comments, import_items, notify_addresses, old_addresses, outbox, posts,
        tags, users,
    };
    app.db(|conn| {
        let mut out = Vec::new();
        let posts: Vec<(i32, String, String, i32, i64)> = posts::table
            .select((
                posts::id,
                posts::slug,
                posts::status,
                posts::approved_comment_count,
                posts::thread_version,
            ))
            .order(posts::id)
            .load(conn)?;
        out.push(format!("{posts:?}"));
        let comments: Vec<(i32, Option<i32>, String, Option<String>)> = comments::table
            .select((
                comments::id,
                comments::parent_id,
                comments::status,
                comments::ip,
            ))
            .order(comments::id)
            .load(conn)?;
        out.push(format!("{comments:?}"));
        let counts: Vec<(String, i32)> = comment_counts::table
            .select((comment_counts::status, comment_counts::total))
            .order(comment_counts::status)
            .load(conn)?;
        out.push(format!("{counts:?}"));
        for n in [
            users::table.count().get_result::<i64>(conn)?,
            tags::table.count().get_result::<i64>(conn)?,
            import_items::table.count().get_result::<i64>(conn)?,
            old_addresses::table.count().get_result::<i64>(conn)?,
            outbox::table.count().get_result::<i64>(conn)?,
            notify_addresses::table.count().get_result::<i64>(conn)?,
        ] {
            out.push(n.to_string());
        }
        Ok(out)
    })
    .await
}

/// (author_name, status, parent's author name, ip, website, format, user id) of every comment
/// on the post with `slug`, oldest first.
#[allow(clippy::type_complexity)]
async fn comments_on(
    app: &TestApp,
    slug: &str,
) -> Vec<(
    String,
    String,
    Option<i32>,
    Option<String>,
    Option<String>,
    String,
    Option<i32>,
    i32,
)> {
    use lectern::db::schema::{comments, posts};
    let slug = slug.to_string();
    app.db(move |conn| {
        Ok(comments::table
            .inner_join(posts::table)
            .filter(posts::slug.eq(slug))
            .select((
                comments::author_name,
                comments::status,
                comments::parent_id,
                comments::ip,
                comments::author_url,
                comments::format,
                comments::user_id,
                comments::id,
            ))
            .order((comments::created_at, comments::id))
            .load(conn)?)
    })
    .await
}

async fn location(app: &TestApp, path: &str) -> (u16, String) {
    let response = app.get(path).await;
    let location = response
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (response.status().as_u16(), location)
}

#[tokio::test]
async fn a_wordpress_export_brings_posts_pages_comments_and_authors_with_their_statuses() {
    let app = TestApp::spawn().await;
    let admin = app
        .create_user("admin@example.com", "Ada", "admin", crate::common::PASSWORD)
        .await;
    let report = import(&app, Kind::WordPress, &fixture("wordpress-1.2.xml")).await;
    assert_eq!(report.posts.imported, 5, "{report}");
    assert_eq!(report.pages.imported, 1, "{report}");
    assert_eq!(report.comments.imported, 7, "{report}");
    assert_eq!(
        (report.users_created, report.users_matched),
        (1, 1),
        "{report}"
    );
    assert_eq!(
        report.skipped.get("pingbacks and trackbacks"),
        Some(&1),
        "{report}"
    );
    assert_eq!(
        report.skipped.get("items of type attachment"),
        Some(&1),
        "{report}"
    );
    assert_eq!(
        report.skipped.get("items of type nav_menu_item"),
        Some(&1),
        "{report}"
    );
    let notes = report.notes.join("\n");
    for expected in [
        "“Members only” (/?p=20) is password-protected: imported as a draft",
        "[gallery]",
        "its parent 999 is not in the export",
        "the slug \"%c3%bcber-uns\" became \"uber-uns\"",
        "“Diary” was private",
    ] {
        assert!(notes.contains(expected), "{expected} missing in\n{notes}");
    }

    // The post: paragraphs as WordPress showed them, no block comments, known shortcodes
    // rendered, unknown ones as text, HTML through the sanitiser, CDATA joined.
    let page = app.get_text("/posts/myofascial-release").await;
    for part in [
        "<p>Fascia is the <em>web</em> around everything.<br>\nA second line of the first paragraph.</p>",
        "Second paragraph with a CDATA end ]]&gt; inside &amp; an ampersand.",
        r#"<div class="box box-warning" role="note">"#,
        r#"<figure><img src="https://old.example.com/wp-content/uploads/2012/01/fascia.jpg" alt="Fascia"><figcaption>The fascia, up close</figcaption></figure>"#,
        "[gallery ids=\"40,41\"]",
        "<h2",
        "Great post!",
        "A reply that comes before its parent in the file.",
        "The author answers",
        "My parent was a spam comment the export left out.",
        "Bodywork",
    ] {
        assert!(page.contains(part), "{part} missing in the post page");
    }
    for absent in [
        "wp:paragraph",
        "<script",
        "onerror",
        "Waiting for moderation.",
        "Buy things",
        "Trashed words",
        "linked here",
        "carla@example.net",
        "Dan@Example.net",
        "javascript:",
    ] {
        assert!(
            !page.contains(absent),
            "{absent} must not be on the post page"
        );
    }

    // Threading, statuses, staff comment linked to the matched user, IPs and websites.
    let comments = comments_on(&app, "myofascial-release").await;
    let by_name = |name: &str| comments.iter().find(|c| c.0 == name).unwrap().clone();
    let dan = by_name("Dan Reader");
    assert_eq!(dan.1, "approved");
    assert_eq!(dan.4, None, "a javascript: website is dropped");
    assert_eq!(
        dan.3, None,
        "an IP address older than 30 days is dropped at once"
    );
    assert_eq!(dan.5, "html");
    let carla = by_name("Carla Reply");
    assert_eq!(carla.2, Some(dan.7), "the reply hangs from its parent");
    assert_eq!(carla.4.as_deref(), Some("http://carla.example.net"));
    let ada = by_name("Ada Admin");
    assert_eq!(ada.2, Some(dan.7));
    assert_eq!(
        ada.6,
        Some(admin.0),
        "a staff comment is linked to the matched user"
    );
    assert_eq!(
        ada.3.as_deref(),
        Some("192.0.2.1"),
        "a recent IP address is kept"
    );
    assert_eq!(by_name("Held Hanna").1, "pending");
    assert_eq!(by_name("Spammer").1, "spam");
    assert_eq!(by_name("Trashed Tom").1, "trash");
    assert_eq!(by_name("Orphan Olga").2, None);
    assert_eq!(comments.len(), 7);

    // Pages, drafts, scheduled and password-protected posts.
    let about = app.get_text("/pages/uber-uns").await;
    assert!(about.contains("Ça va très bien."), "{about}");
    for hidden in ["members-only", "half-written", "coming-soon", "diary"] {
        assert_eq!(
            app.get(&format!("/posts/{hidden}")).await.status(),
            404,
            "{hidden} is not public"
        );
    }
    let statuses: Vec<(String, String)> = app
        .db(|conn| {
            use lectern::db::schema::posts;
            Ok(posts::table
                .select((posts::slug, posts::status))
                .order(posts::slug)
                .load(conn)?)
        })
        .await;
    for (slug, status) in [
        ("coming-soon", "scheduled"),
        ("diary", "draft"),
        ("half-written", "draft"),
        ("members-only", "draft"),
        ("uber-uns", "published"),
    ] {
        assert!(
            statuses.contains(&(slug.to_string(), status.to_string())),
            "{slug} {status}: {statuses:?}"
        );
    }

    // The other author: a disabled account with no password, its slug from the login.
    let bjorn: (bool, String, String, String) = app
        .db(|conn| {
            use lectern::db::schema::users;
            Ok(users::table
                .filter(users::email.eq("bjorn@old.example.com"))
                .select((
                    users::disabled,
                    users::password_hash,
                    users::slug,
                    users::display_name,
                ))
                .first(conn)?)
        })
        .await;
    assert_eq!(
        bjorn,
        (
            true,
            String::new(),
            "bjorn".to_string(),
            "Björn Åkesson".to_string()
        )
    );

    // Tags, feeds and the sitemap know the imported posts; no email was queued.
    assert!(
        app.get_text("/tags/bodywork")
            .await
            .contains("Myofascial release")
    );
    assert!(
        app.get_text("/tags/self-care")
            .await
            .contains("Myofascial release")
    );
    assert!(
        app.get_text("/feed.xml")
            .await
            .contains("Myofascial release")
    );
    let comment_feed = app.get_text("/comments/feed.xml").await;
    assert!(comment_feed.contains("Great post!"));
    assert!(!comment_feed.contains("Buy things"));
    let sitemap = app.get_text("/sitemap.xml").await;
    assert!(sitemap.contains("/posts/myofascial-release"));
    assert!(!sitemap.contains("members-only"));
    let front = app.get_text("/").await;
    assert!(front.contains("Myofascial release"));
    assert!(
        front.contains("Fascia is the web around everything."),
        "the excerpt"
    );
    let fp = fingerprint(&app).await;
    assert_eq!(fp[7], "0", "no email was queued");
}

#[tokio::test]
async fn every_old_wordpress_address_answers_301_to_the_new_one() {
    let app = TestApp::spawn().await;
    import(&app, Kind::WordPress, &fixture("wordpress-1.2.xml")).await;
    for (old, new) in [
        (
            "/2012/01/06/myofascial-release/",
            "/posts/myofascial-release",
        ),
        (
            "/2012/01/06/myofascial-release",
            "/posts/myofascial-release",
        ),
        (
            "/2012/01/06/myofascial-release/comment-page-2/",
            "/posts/myofascial-release",
        ),
        ("/?p=12", "/posts/myofascial-release"),
        ("/index.php?p=12", "/posts/myofascial-release"),
        ("/?page_id=2", "/pages/uber-uns"),
        ("/?p=2", "/pages/uber-uns"),
        ("/about/", "/pages/uber-uns"),
        (
            "/2012/01/06/myofascial-release/feed/",
            "/posts/myofascial-release/feed.xml",
        ),
        ("/feed/", "/feed.xml"),
        ("/feed/atom/", "/feed.xml"),
        ("/comments/feed/", "/comments/feed.xml"),
        ("/?feed=rss2", "/feed.xml"),
        ("/?feed=comments-rss2", "/comments/feed.xml"),
        ("/category/bodywork/", "/tags/bodywork"),
        ("/category/bodywork/feed/", "/tags/bodywork/feed.xml"),
        ("/tag/self-care/", "/tags/self-care"),
        ("/author/bjorn/", "/authors/bjorn"),
        ("/page/2/", "/?page=2"),
        ("/?paged=3", "/?page=3"),
        ("/?s=fascia+release", "/search?q=fascia+release"),
    ] {
        assert_eq!(location(&app, old).await, (301, new.to_string()), "{old}");
    }
    // What was not public stays hidden; unknown addresses and the plain front page are as before.
    assert_eq!(
        location(&app, "/?p=20").await,
        (200, String::new()),
        "a draft is not revealed"
    );
    assert_eq!(location(&app, "/2012/02/01/members-only/").await.0, 404);
    assert_eq!(location(&app, "/2013/no/such/post/").await.0, 404);
    assert_eq!(
        location(&app, "/?p=999").await.0,
        200,
        "the front page, as before"
    );
    assert_eq!(app.get("/").await.status(), 200);
    assert_eq!(app.get("/?page=1").await.status(), 200);
    // A post's old address follows it when its slug changes later.
    app.db(|conn| {
        use lectern::db::schema::posts;
        diesel::update(posts::table.filter(posts::slug.eq("myofascial-release")))
            .set(posts::slug.eq("fascia-release"))
            .execute(conn)?;
        Ok(())
    })
    .await;
    assert_eq!(
        location(&app, "/?p=12").await,
        (301, "/posts/fascia-release".to_string())
    );
}

#[tokio::test]
async fn running_the_same_import_again_changes_nothing() {
    let app = TestApp::spawn().await;
    let first = import(&app, Kind::WordPress, &fixture("wordpress-1.2.xml")).await;
    let after_first = fingerprint(&app).await;
    let second = import(&app, Kind::WordPress, &fixture("wordpress-1.2.xml")).await;
    assert_eq!(fingerprint(&app).await, after_first);
    assert_eq!(second.posts.imported + second.pages.imported, 0, "{second}");
    assert_eq!(second.comments.imported, 0, "{second}");
    assert_eq!(second.comments.already, first.comments.imported, "{second}");
    assert_eq!(second.posts.already, first.posts.imported, "{second}");
    assert_eq!(second.users_created, 0, "{second}");
    // A comment an admin deleted after the import is not brought back.
    app.db(|conn| {
        use lectern::db::schema::comments;
        diesel::delete(comments::table.filter(comments::author_name.eq("Spammer")))
            .execute(conn)?;
        Ok(())
    })
    .await;
    let third = import(&app, Kind::WordPress, &fixture("wordpress-1.2.xml")).await;
    assert_eq!(third.comments.imported, 0, "{third}");
}

#[tokio::test]
async fn a_dry_run_reports_what_would_happen_and_writes_nothing() {
    let app = TestApp::spawn().await;
    let before = fingerprint(&app).await;
    let report = import_as(
        &app,
        Kind::WordPress,
        &fixture("wordpress-1.2.xml"),
        Options {
            dry_run: true,
            ..Options::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(fingerprint(&app).await, before);
    assert!(report.dry_run);
    assert_eq!(report.posts.imported, 5);
    assert_eq!(report.comments.imported, 7);
    assert!(report.to_string().contains("dry run: nothing was written"));
    assert!(report.to_string().contains("comments: 7 would import"));
}

#[tokio::test]
async fn wxr_1_0_and_1_1_with_another_namespace_prefix_are_read() {
    let app = TestApp::spawn().await;
    let old = import(&app, Kind::WordPress, &fixture("wordpress-1.0.xml")).await;
    assert_eq!((old.posts.imported, old.comments.imported), (1, 1), "{old}");
    assert_eq!(
        old.users_created, 1,
        "an author named only by login becomes a user"
    );
    let page = app.get_text("/posts/fjords-and-ferries").await;
    assert!(
        page.contains("Fjords &#38; ferries"),
        "entities in titles: {page}"
    );
    assert!(page.contains("Lovely &lt;3 Takk!"), "{page}");
    assert!(
        page.contains("Travel") && page.contains("Norway"),
        "tags from 1.0 categories"
    );
    let comments = comments_on(&app, "fjords-and-ferries").await;
    assert_eq!(comments[0].0, "Ingrid");

    let com = import(&app, Kind::WordPress, &fixture("wordpress-1.1.xml")).await;
    assert_eq!((com.posts.imported, com.comments.imported), (1, 1), "{com}");
    assert!(com.source.contains("someone.wordpress.com"), "{com}");
    let page = app.get_text("/posts/hello").await;
    assert!(page.contains("Welcome to the neighbourhood."));
    assert!(
        app.get_text("/").await.contains("A short hello."),
        "the export's excerpt"
    );
    assert_eq!(
        location(&app, "/2015/03/04/hello/").await,
        (301, "/posts/hello".to_string())
    );
}

#[test]
fn the_command_prints_the_report_and_a_second_run_changes_nothing() {
    let db = TestDb::new();
    let file = fixture("wordpress-1.2.xml");
    let file = file.to_str().unwrap();
    let dry = lectern(&db, &["import", "wordpress", file, "--dry-run"]);
    assert!(dry.status.success(), "{}", text(&dry.stderr));
    assert!(text(&dry.stdout).contains("would import"));
    let first = lectern(&db, &["import", "wordpress", file]);
    assert!(first.status.success(), "{}", text(&first.stderr));
    let out = text(&first.stdout);
    assert!(
        out.contains("WordPress export of https://old.example.com (WXR 1.2)"),
        "{out}"
    );
    assert!(out.contains("posts: 5 imported"), "{out}");
    assert!(out.contains("comments: 7 imported"), "{out}");
    assert!(out.contains("skipped: 1 items of type attachment"), "{out}");
    assert!(!out.contains("@"), "the report names no address: {out}");
    let second = lectern(&db, &["import", "wordpress", file]);
    assert!(second.status.success(), "{}", text(&second.stderr));
    let out = text(&second.stdout);
    assert!(
        out.contains("posts: 0 imported, 5 already imported"),
        "{out}"
    );
    assert!(
        out.contains("comments: 0 imported, 7 already imported"),
        "{out}"
    );
}

#[test]
fn a_malformed_file_names_its_line_and_column_and_stores_nothing() {
    let db = TestDb::new();
    let out = lectern(
        &db,
        &[
            "import",
            "wordpress",
            fixture("malformed.xml").to_str().unwrap(),
        ],
    );
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains("line 16, column 2"), "{err}");
    assert!(err.contains("expected `</item>`"), "{err}");
    assert!(err.contains("itemz") || err.contains("item"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    // Nothing of the first, well-formed item was stored.
    let check = lectern(
        &db,
        &[
            "import",
            "wordpress",
            fixture("wordpress-1.0.xml").to_str().unwrap(),
            "--dry-run",
        ],
    );
    assert!(check.status.success());
    let manager = lectern::db::ConnectionManager::new(&db.url, lectern::config::SqliteSync::Normal);
    let mut conn = manager.connect().unwrap();
    use lectern::db::schema::posts;
    let titles: Vec<String> = posts::table.select(posts::title).load(&mut conn).unwrap();
    assert!(!titles.iter().any(|t| t == "Fine so far"), "{titles:?}");
}

#[test]
fn a_file_of_the_wrong_kind_is_recognised_and_the_right_command_named() {
    let db = TestDb::new();
    let disqus = fixture("disqus.xml");
    let out = lectern(&db, &["import", "wordpress", disqus.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains("this looks like a Disqus export"), "{err}");
    assert!(err.contains("lectern import disqus"), "{err}");

    let wxr = fixture("wordpress-1.2.xml");
    let out = lectern(&db, &["import", "isso", wxr.to_str().unwrap()]);
    assert!(
        text(&out.stderr).contains("lectern import wordpress"),
        "{}",
        text(&out.stderr)
    );

    let feed = db.dir.path().join("feed.xml");
    std::fs::write(
        &feed,
        "<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>x</title></channel></rss>",
    )
    .unwrap();
    let out = lectern(&db, &["import", "wordpress", feed.to_str().unwrap()]);
    assert!(
        text(&out.stderr).contains("RSS feed, not a WordPress export"),
        "{}",
        text(&out.stderr)
    );

    let missing = lectern(&db, &["import", "wordpress", "/no/such/file.xml"]);
    assert!(!missing.status.success());
    assert!(text(&missing.stderr).contains("/no/such/file.xml"));
}

/// A WXR file of `posts` posts with `per_post` comments each.
fn generated_wxr(path: &Path, posts: usize, per_post: usize) {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    writeln!(out, r#"<?xml version="1.0" encoding="UTF-8"?><rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/" xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:wp="http://wordpress.org/export/1.2/"><channel><link>https://gen.example</link><wp:wxr_version>1.2</wp:wxr_version><wp:base_site_url>https://gen.example</wp:base_site_url>"#).unwrap();
    let mut comment = 1;
    for p in 1..=posts {
        writeln!(out, "<item><title>Post {p}</title><link>https://gen.example/p/{p}/</link><dc:creator>gen</dc:creator><content:encoded><![CDATA[Body {p}]]></content:encoded><wp:post_id>{p}</wp:post_id><wp:post_date_gmt>2010-01-01 00:00:00</wp:post_date_gmt><wp:comment_status>open</wp:comment_status><wp:post_name>post-{p}</wp:post_name><wp:status>publish</wp:status><wp:post_type>post</wp:post_type>").unwrap();
        for c in 0..per_post {
            let parent = if c > 0 && c % 3 == 0 { comment - 1 } else { 0 };
            writeln!(out, "<wp:comment><wp:comment_id>{comment}</wp:comment_id><wp:comment_author>Reader {comment}</wp:comment_author><wp:comment_author_email>r{comment}@example.net</wp:comment_author_email><wp:comment_date_gmt>2010-01-02 00:00:00</wp:comment_date_gmt><wp:comment_content><![CDATA[Comment {comment}]]></wp:comment_content><wp:comment_approved>1</wp:comment_approved><wp:comment_parent>{parent}</wp:comment_parent></wp:comment>").unwrap();
            comment += 1;
        }
        writeln!(out, "</item>").unwrap();
    }
    writeln!(out, "</channel></rss>").unwrap();
}

#[test]
fn an_import_killed_half_way_completes_when_run_again() {
    let db = TestDb::new();
    let file = db.dir.path().join("big.xml");
    let (posts, per_post) = (300, 60);
    generated_wxr(&file, posts, per_post);
    // Starts the import, and kills it (SIGKILL) once some of it has been written.
    let mut child = Command::new(env!("CARGO_BIN_EXE_lectern"))
        .args(["import", "wordpress", file.to_str().unwrap()])
        .current_dir(db.dir.path())
        .env("LECTERN_DATABASE_URL", db.url.clone())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let manager = lectern::db::ConnectionManager::new(&db.url, lectern::config::SqliteSync::Normal);
    let count = |manager: &lectern::db::ConnectionManager| -> i64 {
        use lectern::db::schema::comments;
        match manager.connect() {
            Ok(mut conn) => comments::table.count().get_result(&mut conn).unwrap_or(0),
            Err(_) => 0,
        }
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while count(&manager) == 0 && std::time::Instant::now() < deadline {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::yield_now();
    }
    let _ = child.kill();
    let _ = child.wait();
    let partial = count(&manager);
    let again = lectern(&db, &["import", "wordpress", file.to_str().unwrap()]);
    assert!(again.status.success(), "{}", text(&again.stderr));
    let total = (posts * per_post) as i64;
    assert_eq!(
        count(&manager),
        total,
        "after {partial} were written before the kill"
    );
    let mut conn = manager.connect().unwrap();
    use lectern::db::schema::{comment_counts, posts as posts_table};
    let approved: i32 = comment_counts::table
        .find("approved")
        .select(comment_counts::total)
        .first(&mut conn)
        .unwrap();
    assert_eq!(i64::from(approved), total, "the maintained counts agree");
    let per_post_counts: Vec<i32> = posts_table::table
        .filter(posts_table::slug.like("post-%"))
        .select(posts_table::approved_comment_count)
        .load(&mut conn)
        .unwrap();
    assert_eq!(per_post_counts.len(), posts);
    assert!(per_post_counts.iter().all(|n| *n as usize == per_post));
    // The dashboard's sums (kept per batch, not per row) and the thread versions agree too.
    use lectern::db::schema::{comment_hours, post_comment_months, settings};
    let hours: Vec<i32> = comment_hours::table
        .select(comment_hours::total)
        .load(&mut conn)
        .unwrap();
    assert_eq!(hours.iter().map(|n| i64::from(*n)).sum::<i64>(), total);
    let months: Vec<i32> = post_comment_months::table
        .select(post_comment_months::total)
        .load(&mut conn)
        .unwrap();
    assert_eq!(months.iter().map(|n| i64::from(*n)).sum::<i64>(), total);
    let versions: Vec<i64> = posts_table::table
        .filter(posts_table::slug.like("post-%"))
        .select(posts_table::thread_version)
        .load(&mut conn)
        .unwrap();
    assert!(versions.iter().all(|v| *v > 0), "{versions:?}");
    // The comments' indexes, set aside while the rows went in, are all there again.
    let note: Option<String> = settings::table
        .find("import_deferred_indexes")
        .select(settings::value)
        .first(&mut conn)
        .optional()
        .unwrap();
    assert_eq!(note, None);
    assert_eq!(
        comment_index_names(&mut conn),
        [
            "comments_by_email",
            "comments_by_email_status",
            "comments_by_lower_email",
            "comments_by_network",
            "comments_by_parent",
            "comments_queue",
            "comments_thread"
        ]
    );
}

#[tokio::test]
async fn a_server_starting_builds_the_indexes_a_stopped_import_set_aside() {
    let app = TestApp::spawn().await;
    // What a bulk import stopped half-way leaves: an index dropped, its definition in a note.
    app.db(|conn| {
        #[derive(QueryableByName)]
        struct Definition {
            #[diesel(sql_type = diesel::sql_types::Text)]
            sql: String,
        }
        let found: Definition = match conn {
            lectern::db::DbConn::Sqlite(c) => diesel::sql_query(
                "SELECT sql FROM sqlite_master WHERE name = 'comments_by_network'",
            )
            .get_result(c)?,
            lectern::db::DbConn::Postgresql(c) => diesel::sql_query(
                "SELECT indexdef AS sql FROM pg_indexes WHERE indexname = 'comments_by_network' \
                 AND schemaname = current_schema()",
            )
            .get_result(c)?,
        };
        let note = serde_json::to_string(&[("comments_by_network", found.sql)]).unwrap();
        diesel::sql_query("DROP INDEX comments_by_network").execute(conn)?;
        lectern::site::put(conn, "import_deferred_indexes", &note)
    })
    .await;
    let mut names = app.db(|conn| Ok(comment_index_names(conn))).await;
    assert!(!names.contains(&"comments_by_network".to_string()));
    // The next server to start builds it, without waiting for the import to run again.
    let other = TestApp::spawn_on(
        &app.database_url,
        app.test_db.as_ref().unwrap().dir.path(),
        &[],
    )
    .await;
    names = other.db(|conn| Ok(comment_index_names(conn))).await;
    assert!(
        names.contains(&"comments_by_network".to_string()),
        "{names:?}"
    );
    let note = other
        .db(|conn| lectern::site::get(conn, "import_deferred_indexes"))
        .await;
    assert_eq!(note, None);
    other.stop().await;
}

/// The names of the comments table's non-unique indexes.
fn comment_index_names(conn: &mut lectern::db::DbConn) -> Vec<String> {
    #[derive(QueryableByName)]
    struct Name {
        #[diesel(sql_type = diesel::sql_types::Text)]
        name: String,
    }
    let names: Vec<Name> = match conn {
        lectern::db::DbConn::Sqlite(c) => diesel::sql_query(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'comments' \
             AND sql IS NOT NULL AND sql NOT LIKE 'CREATE UNIQUE%' ORDER BY name",
        )
        .load(c)
        .unwrap(),
        lectern::db::DbConn::Postgresql(c) => diesel::sql_query(
            "SELECT indexname::text AS name FROM pg_indexes WHERE tablename = 'comments' \
             AND schemaname = current_schema() AND indexdef NOT LIKE 'CREATE UNIQUE%' ORDER BY 1",
        )
        .load(c)
        .unwrap(),
    };
    names.into_iter().map(|n| n.name).collect()
}

#[tokio::test]
async fn an_import_moves_thread_caches_on_so_every_server_shows_the_new_comments() {
    let app = TestApp::spawn().await;
    import(&app, Kind::WordPress, &fixture("wordpress-1.0.xml")).await;
    // A second server on the same database renders (and caches) the thread first.
    let other = TestApp::spawn_on(
        &app.database_url,
        app.test_db.as_ref().unwrap().dir.path(),
        &[],
    )
    .await;
    let before = other.get_text("/posts/fjords-and-ferries").await;
    assert!(before.contains("Lovely"));
    assert!(!before.contains("Second visit"));
    let more = app.test_db.as_ref().unwrap().dir.path().join("more.xml");
    let original = std::fs::read_to_string(fixture("wordpress-1.0.xml")).unwrap();
    let extra = "<wp:comment><wp:comment_id>10</wp:comment_id><wp:comment_author>Ola</wp:comment_author><wp:comment_author_email>ola@example.org</wp:comment_author_email><wp:comment_date_gmt>2009-05-22 06:00:00</wp:comment_date_gmt><wp:comment_content>Second visit</wp:comment_content><wp:comment_approved>1</wp:comment_approved><wp:comment_parent>9</wp:comment_parent></wp:comment>\n\t</item>";
    std::fs::write(&more, original.replacen("</item>", extra, 1)).unwrap();
    let report = import(&app, Kind::WordPress, &more).await;
    assert_eq!(
        (report.comments.imported, report.comments.already),
        (1, 1),
        "{report}"
    );
    let after = other.get_text("/posts/fjords-and-ferries").await;
    assert!(
        after.contains("Second visit"),
        "the other server's cached thread moved on"
    );
    assert!(
        after.contains("2 thoughts on"),
        "the count heading: {after}"
    );
    other.stop().await;
}

#[tokio::test]
async fn imports_are_in_the_moderation_log_under_who_ran_them() {
    let app = TestApp::spawn().await;
    let db = app.test_db.as_ref().unwrap();
    let file = fixture("wordpress-1.2.xml");
    let dry = lectern(
        db,
        &["import", "wordpress", file.to_str().unwrap(), "--dry-run"],
    );
    assert!(dry.status.success(), "{}", text(&dry.stderr));
    let admin = app.staff_client("admin").await;
    let log = app.get_text_as(&admin, "/admin/audit").await;
    assert!(
        !log.contains("WordPress export of"),
        "a dry run is not logged"
    );

    let run = lectern(db, &["import", "wordpress", file.to_str().unwrap()]);
    assert!(run.status.success(), "{}", text(&run.stderr));
    let log = app.get_text_as(&admin, "/admin/audit").await;
    let entry = log
        .find("WordPress export of https://old.example.com (WXR 1.2): 5 posts")
        .expect("the import is logged");
    let row = &log[log[..entry].rfind("<tr").unwrap()..entry];
    assert!(row.contains("command line"), "{row}");
}

#[tokio::test]
async fn a_disqus_export_adds_comments_to_matching_posts_and_lists_the_rest() {
    let app = TestApp::spawn().await;
    import(&app, Kind::WordPress, &fixture("wordpress-1.2.xml")).await;
    let report = import_as(
        &app,
        Kind::Disqus,
        &fixture("disqus.xml"),
        Options {
            maps: vec![("/blog".into(), "/posts".into())],
            ..Options::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(report.comments.imported, 5, "{report}");
    assert_eq!(
        report.skipped.get("comments on threads that match no post"),
        Some(&1),
        "{report}"
    );
    assert!(
        report
            .notes
            .iter()
            .any(|n| n.contains("https://old.example.com/never/existed/")),
        "{report}"
    );
    let page = app.get_text("/posts/myofascial-release").await;
    assert!(page.contains("First from Disqus &amp; friends."), "{page}");
    assert!(page.contains("Second <b>para</b>"), "{page}");
    assert!(!page.contains("<script"));
    assert!(page.contains("A reply, before its parent."));
    assert!(!page.contains("Deleted words") && !page.contains("Spammy words"));
    assert!(!page.contains("finn@example.net"));
    let comments = comments_on(&app, "myofascial-release").await;
    let finn = comments.iter().find(|c| c.0 == "Finn First").unwrap();
    let erin = comments.iter().find(|c| c.0 == "Erin Reply").unwrap();
    assert_eq!(
        erin.2,
        Some(finn.7),
        "a reply listed before its parent is attached to it"
    );
    assert_eq!(comments.iter().find(|c| c.0 == "Gail").unwrap().1, "trash");
    assert_eq!(comments.iter().find(|c| c.0 == "Spam").unwrap().1, "spam");
    assert!(
        app.get_text(&format!("/posts/{WELCOME}"))
            .await
            .contains("matched by its last path segment")
    );
    let fp = fingerprint(&app).await;
    let again = import_as(
        &app,
        Kind::Disqus,
        &fixture("disqus.xml"),
        Options::default(),
    )
    .await
    .unwrap();
    assert_eq!(again.comments.imported, 0, "{again}");
    assert_eq!(fingerprint(&app).await, fp);
}

/// An Isso database as Isso 0.13 creates it.
fn isso_database(path: &Path) {
    use diesel::connection::SimpleConnection;
    let mut conn = diesel::sqlite::SqliteConnection::establish(path.to_str().unwrap()).unwrap();
    conn.batch_execute(
        "CREATE TABLE threads (id INTEGER PRIMARY KEY, uri VARCHAR(256) UNIQUE, title VARCHAR(256));
         CREATE TABLE comments (tid REFERENCES threads(id), id INTEGER PRIMARY KEY, parent INTEGER,
             created FLOAT NOT NULL, modified FLOAT, mode INTEGER, remote_addr VARCHAR, text VARCHAR,
             author VARCHAR, email VARCHAR, website VARCHAR, likes INTEGER DEFAULT 0,
             dislikes INTEGER DEFAULT 0, voters BLOB NOT NULL, notification INTEGER DEFAULT 0);
         CREATE TABLE preferences (key VARCHAR PRIMARY KEY, value VARCHAR);
         INSERT INTO threads VALUES (1, '/blog/2012/myofascial-release/', 'Myofascial release');
         INSERT INTO threads VALUES (2, '/notes/fjords.html', 'Fjords');
         INSERT INTO threads VALUES (3, '/old/section/about-us/', 'About');
         INSERT INTO comments VALUES (1, 1, NULL, 1328000000.5, NULL, 1, '203.0.113.50', 'Isso *first*', 'Ivy', 'Ivy@Example.net', 'ivy.example.net', 0, 0, x'', 1);
         INSERT INTO comments VALUES (1, 2, 1, 1328000100.0, NULL, 1, '203.0.113.51', 'A reply with `code`', 'Jon', 'jon@example.net', NULL, 0, 0, x'', 0);
         INSERT INTO comments VALUES (1, 3, NULL, 1328000200.0, NULL, 2, '203.0.113.52', 'Held one', NULL, NULL, NULL, 0, 0, x'', 0);
         INSERT INTO comments VALUES (1, 4, NULL, 1328000300.0, NULL, 4, NULL, '', '', NULL, NULL, 0, 0, x'', 0);
         INSERT INTO comments VALUES (1, 5, 4, 1328000400.0, NULL, 1, NULL, 'Reply to a deleted one', 'Kim', 'kim@example.net', NULL, 0, 0, x'', 1);
         INSERT INTO comments VALUES (3, 6, NULL, 1328000500.0, NULL, 1, NULL, 'Mapped by prefix', 'Lu', NULL, NULL, 0, 0, x'', 0);
         INSERT INTO comments VALUES (2, 7, NULL, 1328000600.0, NULL, 1, NULL, 'Unmatched', 'Mo', NULL, NULL, 0, 0, x'', 0);",
    )
    .unwrap();
}

#[tokio::test]
async fn an_isso_database_is_matched_by_path_with_maps_and_subscriptions_stay_unconfirmed() {
    let app = TestApp::spawn().await;
    import(&app, Kind::WordPress, &fixture("wordpress-1.2.xml")).await;
    let db_file = app.test_db.as_ref().unwrap().dir.path().join("isso.db");
    isso_database(&db_file);
    let report = import_as(
        &app,
        Kind::Isso,
        &db_file,
        Options {
            maps: vec![("/old/section/about-us".into(), "/pages/uber-uns".into())],
            ..Options::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(report.comments.imported, 6, "{report}");
    assert!(
        report
            .notes
            .iter()
            .any(|n| n.contains("/notes/fjords.html")),
        "{report}"
    );
    assert!(
        report
            .notes
            .iter()
            .any(|n| n.contains("2 notification subscriptions kept as unconfirmed")),
        "{report}"
    );
    let page = app.get_text("/posts/myofascial-release").await;
    assert!(
        page.contains("Isso <em>first</em>"),
        "Markdown rendered: {page}"
    );
    assert!(page.contains("<code>code</code>"));
    assert!(
        page.contains("This comment was removed."),
        "a deleted comment with a reply"
    );
    assert!(page.contains("Reply to a deleted one"));
    assert!(!page.contains("Held one"));
    let comments = comments_on(&app, "myofascial-release").await;
    let ivy = comments.iter().find(|c| c.0 == "Ivy").unwrap();
    assert_eq!(ivy.5, "markdown");
    assert_eq!(ivy.4.as_deref(), Some("http://ivy.example.net"));
    let jon = comments.iter().find(|c| c.0 == "Jon").unwrap();
    assert_eq!(jon.2, Some(ivy.7));
    assert_eq!(
        comments
            .iter()
            .find(|c| c.0 == "Anonymous" && c.1 == "pending")
            .map(|c| c.1.clone()),
        Some("pending".into())
    );
    assert!(
        app.get_text("/pages/uber-uns")
            .await
            .contains("Mapped by prefix")
    );
    // Subscriptions: rows with nothing confirmed, no mail queued, comments without notify.
    let (unconfirmed, confirmed, outbox, notifying): (i64, i64, i64, i64) = app
        .db(|conn| {
            use lectern::db::schema::{comments, notify_addresses, outbox};
            Ok((
                notify_addresses::table.count().get_result(conn)?,
                notify_addresses::table
                    .filter(
                        notify_addresses::confirmed_at
                            .is_not_null()
                            .or(notify_addresses::confirmation_sent_at.is_not_null()),
                    )
                    .count()
                    .get_result(conn)?,
                outbox::table.count().get_result(conn)?,
                comments::table
                    .filter(comments::notify.eq(true))
                    .count()
                    .get_result(conn)?,
            ))
        })
        .await;
    assert_eq!((unconfirmed, confirmed, outbox, notifying), (2, 0, 0, 0));
    let fp = fingerprint(&app).await;
    let again = import_as(
        &app,
        Kind::Isso,
        &db_file,
        Options {
            maps: vec![("/old/section/about-us".into(), "/pages/uber-uns".into())],
            ..Options::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(
        (again.comments.imported, again.comments.already),
        (0, 6),
        "{again}"
    );
    assert_eq!(fingerprint(&app).await, fp);
}

/// A multipart/form-data body with `fields` in order; a field named `file` is sent as a file.
fn multipart(fields: &[(&str, &[u8])]) -> (String, Vec<u8>) {
    let boundary = "----lecternTestBoundary7MA4YWxkTrZu0gW";
    let mut body = Vec::new();
    for (name, value) in fields {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        if *name == "file" {
            body.extend_from_slice(
                b"Content-Disposition: form-data; name=\"file\"; filename=\"export.xml\"\r\nContent-Type: text/xml\r\n\r\n",
            );
        } else {
            body.extend_from_slice(
                format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes(),
            );
        }
        body.extend_from_slice(value);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// Reads `/admin/import/{id}` until it no longer refreshes itself.
async fn settled(app: &TestApp, http: &reqwest::Client, page: &str) -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let text = http
            .get(app.url(page))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if !text.contains("http-equiv=\"refresh\"") || std::time::Instant::now() > deadline {
            return text;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn an_admin_uploads_a_wordpress_export_reads_the_check_confirms_and_gets_the_report() {
    let app = TestApp::spawn().await;
    let http = app.staff_client("admin").await;
    let form = http.get(app.url("/admin/import")).send().await.unwrap();
    assert_eq!(form.status(), 200);
    let form = form.text().await.unwrap();
    assert!(form.contains("enctype=\"multipart/form-data\""));
    assert!(form.contains("256 MiB"));
    let csrf = app.csrf(&http).await;
    let export = std::fs::read(fixture("wordpress-1.2.xml")).unwrap();
    let (content_type, body) = multipart(&[("csrf_token", csrf.as_bytes()), ("file", &export)]);
    let response = http
        .post(app.url("/admin/import"))
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    let run = response.headers()["location"].to_str().unwrap().to_string();
    assert!(run.starts_with("/admin/import/"), "{run}");

    let checked = settled(&app, &http, &run).await;
    assert!(
        checked.contains("dry run: nothing was written"),
        "{checked}"
    );
    assert!(checked.contains("posts: 5 would import"), "{checked}");
    assert!(checked.contains("Import now"));
    assert_eq!(
        app.get("/posts/myofascial-release").await.status(),
        404,
        "nothing written yet"
    );

    let started = app.staff_post(&http, &format!("{run}/start"), &[]).await;
    assert_eq!(started.status(), 303);
    let done = settled(&app, &http, &run).await;
    assert!(done.contains("The import is done."), "{done}");
    assert!(done.contains("posts: 5 imported"), "{done}");
    assert!(!done.contains("Import now"));
    assert_eq!(app.get("/posts/myofascial-release").await.status(), 200);
    let log = http
        .get(app.url("/admin/audit"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        log.contains("WordPress export of https://old.example.com (WXR 1.2): 5 posts"),
        "the import is logged under the admin who started it"
    );
    // A run that ran cannot start again.
    let again = app.staff_post(&http, &format!("{run}/start"), &[]).await;
    assert_eq!(again.status(), 409);
    let list = http
        .get(app.url("/admin/import"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        list.contains("export.xml") && list.contains("done"),
        "{list}"
    );
}

#[tokio::test]
async fn the_import_upload_refuses_a_foreign_token_another_kind_of_file_moderators_and_oversized_bodies()
 {
    let app = TestApp::spawn().await;
    let http = app.staff_client("admin").await;
    let export = std::fs::read(fixture("wordpress-1.2.xml")).unwrap();
    let runs = || async {
        app.db(|conn| {
            use lectern::db::schema::import_runs;
            Ok(import_runs::table.count().get_result::<i64>(conn)?)
        })
        .await
    };
    // No token, a wrong one, or the file sent before the token.
    let csrf = app.csrf(&http).await;
    for fields in [
        vec![("file", export.as_slice())],
        vec![
            ("csrf_token", b"forged".as_slice()),
            ("file", export.as_slice()),
        ],
        vec![("file", export.as_slice()), ("csrf_token", csrf.as_bytes())],
    ] {
        let (content_type, body) = multipart(&fields);
        let response = http
            .post(app.url("/admin/import"))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 403);
    }
    assert_eq!(runs().await, 0);
    // A Disqus export is named as such.
    let disqus = std::fs::read(fixture("disqus.xml")).unwrap();
    let (content_type, body) = multipart(&[("csrf_token", csrf.as_bytes()), ("file", &disqus)]);
    let response = http
        .post(app.url("/admin/import"))
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 422);
    let page = response.text().await.unwrap();
    assert!(page.contains("this looks like a Disqus export"), "{page}");
    assert!(page.contains("lectern import disqus"), "{page}");
    assert!(!page.contains("/tmp/"), "no server path in the page");
    assert_eq!(runs().await, 0);
    // Declared too large: 413 before anything is read.
    let (content_type, body) = multipart(&[("csrf_token", csrf.as_bytes()), ("file", b"x")]);
    let response = http
        .post(app.url("/admin/import"))
        .header("content-type", content_type)
        .header("content-length", (300u64 << 20).to_string())
        .body(body)
        .send()
        .await;
    if let Ok(response) = response {
        assert_eq!(response.status(), 413);
    }
    // Moderators may not import.
    let moderator = app.staff_client("moderator").await;
    assert_eq!(
        moderator
            .get(app.url("/admin/import"))
            .send()
            .await
            .unwrap()
            .status(),
        403
    );
}
