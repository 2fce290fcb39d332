//! Load benchmark (DESIGN.md, "Benchmarks"): seeds 1,000 posts and a post with 100 approved
//! threaded comments, starts the release build of `lectern`, and drives it with wrk on loopback.
//! Search is measured over 10,000 posts (the rest are added before its scenarios).
//! Run it with `scripts/bench` (which installs wrk and builds the release binary first).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use chrono::NaiveDate;
use diesel::prelude::*;
use lectern::comments::NewComment;
use lectern::config::SqliteSync;
use lectern::db::Db;
use lectern::db::schema::{comments, posts, tags, users};
use lectern::users::password::{Password, hash_password};

const CONNECTIONS: u32 = 64;
const THREADS: u32 = 2;
const POSTS: usize = 1_000;
const THREAD_COMMENTS: usize = 100;
/// Posts behind the search scenarios (POSTS at first, the rest added before them).
const SEARCH_POSTS: usize = 10_000;
/// Made-up topic words: each of the added posts carries one, so a one-word search matches 1%.
const TOPIC_HEADS: &[&str] = &[
    "bal", "cor", "dun", "fen", "gil", "hab", "jor", "kel", "mip", "tav",
];
const TOPIC_TAILS: &[&str] = &["ox", "ek", "ub", "iv", "am", "ot", "ur", "ix", "an", "ep"];
/// Pending comments behind the moderation queue scenario (env `BENCH_QUEUE_COMMENTS`).
const QUEUE_COMMENTS: u64 = 1_000_000;

fn main() -> ExitCode {
    // `cargo bench` passes --bench; `cargo test --all-targets` does not, and must not run this.
    if !std::env::args().any(|a| a == "--bench") {
        println!("load: skipped (run `scripts/bench` or `cargo bench --bench load`)");
        return ExitCode::SUCCESS;
    }
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("load benchmark failed: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn env_secs(name: &str, default: u64) -> Result<u64> {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => v.trim().parse().with_context(|| format!("{name}={v}")),
        _ => Ok(default),
    }
}

fn run() -> Result<()> {
    let secs = env_secs("BENCH_SECONDS", 10)?.max(1);
    let warmup = env_secs("BENCH_WARMUP", 2)?;
    let url = std::env::var("LECTERN_BENCH_DATABASE_URL").unwrap_or_default();
    let postgres = url.starts_with("postgres://") || url.starts_with("postgresql://");
    if !(url.is_empty() || postgres || url.starts_with("sqlite://")) {
        bail!("LECTERN_BENCH_DATABASE_URL must be empty, sqlite://FILE or postgres://…");
    }
    Command::new("wrk")
        .arg("--version")
        .output()
        .context("wrk is not installed (scripts/bench installs it)")?;
    let binary = env!("CARGO_BIN_EXE_lectern");
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!("lectern load benchmark: {binary}");
    println!(
        "machine: {cores} cores; wrk -t{THREADS} -c{CONNECTIONS}, {warmup} s warm-up + {secs} s \
         counted per scenario, loopback, no Accept-Encoding; server logs at warn level \
         (RUST_LOG=warn: no per-request log lines), LECTERN_FLOOD_LIMITS=off"
    );
    let modes: Vec<Option<SqliteSync>> = if postgres {
        println!("database: PostgreSQL (SQLite sync modes do not apply)");
        vec![None]
    } else {
        // BENCH_SYNC=full or normal: that mode alone.
        match std::env::var("BENCH_SYNC").unwrap_or_default().as_str() {
            "full" => vec![Some(SqliteSync::Full)],
            "normal" => vec![Some(SqliteSync::Normal)],
            "" => {
                println!("database: SQLite, both LECTERN_SQLITE_SYNC modes");
                vec![Some(SqliteSync::Full), Some(SqliteSync::Normal)]
            }
            other => bail!("BENCH_SYNC={other}: full or normal"),
        }
    };
    // The large site (100,000 posts, 1,000,000 comments): BENCH_LARGE=1 after the other
    // scenarios, BENCH_LARGE=only alone, since seeding it takes a while. On SQLite it runs at
    // LECTERN_SQLITE_SYNC=full.
    let large = std::env::var("BENCH_LARGE").unwrap_or_default();
    if large != "only" {
        for mode in &modes {
            run_mode(&url, *mode, warmup, secs)?;
        }
    }
    if large == "1" || large == "only" {
        run_large_site(&url, modes[0], warmup, secs)?;
    }
    Ok(())
}

/// One fresh database and server; the three scenarios; a printed table.
fn run_mode(url: &str, mode: Option<SqliteSync>, warmup: u64, secs: u64) -> Result<()> {
    let dir = tempfile::Builder::new()
        .prefix("lectern-bench-")
        .tempdir()?;
    let (db_url, _scratch) = scratch_database(url, dir.path())?;
    let label = match mode {
        Some(m) => format!("SQLite, LECTERN_SQLITE_SYNC={}", m.pragma().to_lowercase()),
        None => "PostgreSQL".to_string(),
    };
    println!("\n== {label}");
    let db = Db::open(&db_url, SqliteSync::Normal, 4).context("opening the bench database")?;
    let started = Instant::now();
    let seeded = seed(&db)?;
    println!(
        "seeded in {:.1} s: {seeded}",
        started.elapsed().as_secs_f64()
    );

    let server = Server::start(dir.path(), &db_url, mode)?;
    for path in ["/", "/posts/bench-thread", "/posts/bench-submit"] {
        let (status, _) = http_get(&server.addr, path)?;
        if status != 200 {
            bail!("GET {path} answered {status}, not 200");
        }
    }
    let base = format!("http://{}", server.addr);
    // VmHWM never falls, so reading it after each scenario shows which one raised it.
    let mut peaks = vec![("start", server.peak_rss_kb()?)];
    let post_url = format!("{base}/posts/bench-thread");
    let compressed = Load::browser();
    // nginx serving the same bytes, measured in turn with lectern in the same run.
    let (_, page_bytes) = http_get(&server.addr, "/posts/bench-thread")?;
    let nginx = match Nginx::start(&[("/posts/bench-thread", page_bytes.clone().into_bytes())]) {
        Ok(nginx) => Some(nginx),
        Err(e) => {
            println!("nginx: {e:#}; the ratios are left out");
            None
        }
    };
    let nginx_url = nginx
        .as_ref()
        .map(|n| format!("http://{}/posts/bench-thread/", n.addr));
    let runs = env_secs("BENCH_RUNS", 3)?.max(1) as usize;
    let (mut post_runs, mut gzip_runs, mut nginx_runs, mut nginx_gzip_runs) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..runs {
        post_runs.push(measure(&post_url, None, warmup, secs)?);
        gzip_runs.push(measure_as(&post_url, None, &compressed, warmup, secs)?);
        if let Some(url) = &nginx_url {
            nginx_runs.push(measure(url, None, warmup, secs)?);
            nginx_gzip_runs.push(measure_as(url, None, &compressed, warmup, secs)?);
        }
    }
    drop(nginx);
    let post = median(post_runs);
    let post_gzip = median(gzip_runs);
    let nginx_plain = (!nginx_runs.is_empty()).then(|| median(nginx_runs));
    let nginx_gzip = (!nginx_gzip_runs.is_empty()).then(|| median(nginx_gzip_runs));
    peaks.push(("post page", server.peak_rss_kb()?));
    // One browser on one kept-alive connection: its latency, not the server's throughput.
    let one_browser = Load {
        headers: vec![BROWSER_ENCODINGS],
        threads: 1,
        connections: 1,
    };
    let post_gzip_one = measure_as(&post_url, None, &one_browser, warmup, secs)?;
    peaks.push(("compressed post page", server.peak_rss_kb()?));
    let index = measure(&format!("{base}/"), None, warmup, secs)?;
    peaks.push(("index", server.peak_rss_kb()?));

    let (_, page) = http_get(&server.addr, "/posts/bench-submit")?;
    let token = form_token(&page)?;
    std::thread::sleep(Duration::from_millis(3_500)); // tokens younger than 3 s count as spam
    let script = dir.path().join("submit.lua");
    std::fs::write(&script, submit_script(&token))?;
    let profile = Profile::of(&server);
    let submit = profile.during("submission", || {
        measure(
            &format!("{base}/posts/bench-submit/comments"),
            Some(&script),
            warmup,
            secs,
        )
    })?;

    peaks.push(("submission", server.peak_rss_kb()?));

    // Search over 10,000 posts: a word that 1% of them carry, and two words most of them have.
    let started = Instant::now();
    let added = seed_search_posts(&db)?;
    println!(
        "search: {added} posts added in {:.1} s ({SEARCH_POSTS} in all)",
        started.elapsed().as_secs_f64()
    );
    let word = topic(37);
    for query in [word.as_str(), "keyset+pagination"] {
        let (status, page) = http_get(&server.addr, &format!("/search?q={query}"))?;
        if status != 200 || !page.contains("search-result") {
            bail!("GET /search?q={query} answered {status} without results");
        }
    }
    let search_rare = profile.during("search", || {
        measure(&format!("{base}/search?q={word}"), None, warmup, secs)
    })?;
    let search_common = measure(
        &format!("{base}/search?q=keyset+pagination"),
        None,
        warmup,
        secs,
    )?;
    peaks.push(("search", server.peak_rss_kb()?));

    // The moderation queue over a large table: pending comments added in one statement, then
    // the first page and a page deep in the keyset, as a logged-in moderator.
    let queue_size = std::env::var("BENCH_QUEUE_COMMENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(QUEUE_COMMENTS);
    let started = Instant::now();
    let (session, deep_cursor) = seed_queue(&db, queue_size)?;
    println!(
        "queue: {queue_size} pending comments added in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    // The submissions' moderation mail is delivered first (the mail worker commits once per
    // message, and the seeding above held the database for a while): the admin pages are
    // measured on a site at rest, not behind a backlog of thousands of emails.
    let started = Instant::now();
    let waiting = wait_for_outbox(&db, Duration::from_secs(300))?;
    println!(
        "mail: the outbox emptied in {:.1} s ({waiting} still waiting)",
        started.elapsed().as_secs_f64()
    );
    let cookie = format!("Cookie: lectern_session={session}");
    let staff = Load {
        headers: vec![&cookie],
        ..Load::default()
    };
    let queue = profile.during("queue", || {
        measure_as(
            &format!("{base}/admin/comments"),
            None,
            &staff,
            warmup,
            secs,
        )
    })?;
    let deep = measure_as(
        &format!("{base}/admin/comments?status=pending&before={deep_cursor}"),
        None,
        &staff,
        warmup,
        secs,
    )?;
    // The dashboard over the same million: its charts read the trigger-kept counts.
    let dashboard = profile.during("dashboard", || {
        measure_as(&format!("{base}/admin"), None, &staff, warmup, secs)
    })?;
    peaks.push(("queue", server.peak_rss_kb()?));
    // The kernel's RSS counters are approximate (per-thread caches): take the highest reading.
    let peak_kb = peaks.iter().map(|(_, kb)| *kb).max().unwrap_or(0);
    let stored = db.read_blocking(|conn| {
        Ok(comments::table
            .group_by(comments::status)
            .select((comments::status, diesel::dsl::count_star()))
            .order(comments::status)
            .load::<(String, i64)>(conn)?)
    })?;
    drop(server); // SIGTERM, then wait

    // The cold path: the same post page built from the database on every view (no kept
    // thread, no kept page), by a server started for it.
    let cold_server =
        Server::start_with(dir.path(), &db_url, mode, &[("LECTERN_PAGE_CACHES", "off")])?;
    let cold = measure(
        &format!("http://{}/posts/bench-thread", cold_server.addr),
        None,
        warmup,
        secs,
    )?;
    drop(cold_server);

    println!(
        "{:<26} {:>9} {:>8} {:>8} {:>8}   target",
        "scenario", "req/s", "p50 ms", "p99 ms", "errors"
    );
    let verdict = |ok: bool| if ok { "PASS" } else { "MISS" };
    let ratio = |ours: &WrkResult, theirs: &Option<WrkResult>| {
        theirs
            .as_ref()
            .map_or(0.0, |n| if n.rps > 0.0 { ours.rps / n.rps } else { 0.0 })
    };
    let (plain_ratio, gzip_ratio) = (ratio(&post, &nginx_plain), ratio(&post_gzip, &nginx_gzip));
    let post_ok =
        post.rps >= 20_000.0 && post.p99_ms < 10.0 && post.errors == 0 && plain_ratio >= 0.35;
    let gzip_ok = post_gzip.rps >= 30_000.0
        && post_gzip.p99_ms < 10.0
        && post_gzip.errors == 0
        && gzip_ratio >= 0.25;
    // One fsync per batch of comments (group commit) on SQLite; PostgreSQL commits each.
    let submit_target = if mode.is_some() { 3_000.0 } else { 500.0 };
    let submit_ok = submit.rps >= submit_target && submit.errors == 0;
    let search_ok = search_rare.p99_ms < 20.0 && search_rare.errors == 0;
    let rows = [
        (
            "post page, 100 comments",
            &post,
            format!(
                "{} ≥ 20,000 req/s, p99 < 10 ms, ≥ 0.35 of nginx (here {plain_ratio:.2})",
                verdict(post_ok)
            ),
        ),
        (
            "post page, gzip/br asked",
            &post_gzip,
            format!(
                "{} ≥ 30,000 req/s, p99 < 10 ms, ≥ 0.25 of nginx gzip_static (here {gzip_ratio:.2})",
                verdict(gzip_ok)
            ),
        ),
        ("  the same, 1 connection", &post_gzip_one, "-".to_string()),
        (
            "post page, cold (no caches)",
            &cold,
            format!(
                "{} ≥ 1,000 req/s",
                verdict(cold.rps >= 1_000.0 && cold.errors == 0)
            ),
        ),
        ("index page", &index, "-".to_string()),
        (
            "comment submission",
            &submit,
            format!(
                "{} ≥ {submit_target:.0} req/s, 0 errors",
                verdict(submit_ok)
            ),
        ),
        (
            "search, 1% of 10,000 posts",
            &search_rare,
            format!("{} p99 < 20 ms", verdict(search_ok)),
        ),
        ("search, most of them", &search_common, "-".to_string()),
        ("queue, first page", &queue, "-".to_string()),
        ("queue, deep keyset page", &deep, "-".to_string()),
        (
            "dashboard, 1M comments",
            &dashboard,
            format!(
                "{} p99 < 20 ms",
                verdict(dashboard.p99_ms < 20.0 && dashboard.errors == 0)
            ),
        ),
    ];
    for (name, r, target) in rows {
        println!(
            "{name:<26} {:>9.0} {:>8.2} {:>8.2} {:>8}   {target}",
            r.rps, r.p50_ms, r.p99_ms, r.errors
        );
    }
    for (name, r) in [
        ("nginx, same page", &nginx_plain),
        ("nginx, gzip_static", &nginx_gzip),
    ] {
        if let Some(r) = r {
            println!(
                "{name:<26} {:>9.0} {:>8.2} {:>8.2} {:>8}   (yardstick, median of {runs})",
                r.rps, r.p50_ms, r.p99_ms, r.errors
            );
        }
    }
    let mb = |kb: u64| kb as f64 / 1024.0;
    let steps: Vec<String> = peaks
        .iter()
        .map(|(after, kb)| format!("{after} {:.1}", mb(*kb)))
        .collect();
    println!(
        "server peak RSS: {:.1} MB (VmHWM {peak_kb} kB)   {} < 64 MB   [after: {}]",
        mb(peak_kb),
        verdict(mb(peak_kb) < 64.0),
        steps.join(", ")
    );
    let total: i64 = stored.iter().map(|(_, n)| n).sum();
    let by_status: Vec<String> = stored.iter().map(|(s, n)| format!("{s} {n}")).collect();
    println!(
        "comments stored after the runs: {total} ({}); 100 seeded + {} submissions completed \
         in wrk's counts (warm-up + counted; requests in flight when wrk stops are stored but not \
         counted), {} errors",
        by_status.join(", "),
        submit.total_sent,
        submit.total_errors
    );
    Ok(())
}

/// A site of `posts` posts (20 authors, 50 tags, two tags a post) and `comments` approved
/// comments spread over them, added in a few statements, with the maintained counts fixed.
fn seed_large_site(db: &Db, posts: u64, comments: u64) -> Result<()> {
    use diesel::connection::SimpleConnection;
    use lectern::db::DbConn;
    db.write_blocking(|conn| -> Result<()> {
        let sqlite = matches!(conn, DbConn::Sqlite(_));
        let series = |n: u64, body: &str| {
            if sqlite {
                format!(
                    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {n}) {body} FROM n"
                )
            } else {
                format!("{body} FROM generate_series(1, {n}) AS i")
            }
        };
        let ts = |text: &str| {
            if sqlite {
                format!("'{text}'")
            } else {
                format!("TIMESTAMP '{text}'")
            }
        };
        // Seconds after 2000-01-01, as a timestamp expression of each backend.
        let at = |seconds: &str| {
            if sqlite {
                format!("datetime('2000-01-01 00:00:00', '+' || ({seconds}) || ' seconds')")
            } else {
                format!("TIMESTAMP '2000-01-01 00:00:00' + (({seconds}) * INTERVAL '1 second')")
            }
        };
        let now = ts("2026-01-01 00:00:00");
        conn.batch_execute(&series(
            20,
            &format!(
                "INSERT INTO users (email, display_name, slug, bio, role, password_hash, disabled, created_at, updated_at) \
                 SELECT 'large-author-' || i || '@example.com', 'Large Author ' || i, 'large-author-' || i, \
                 'Writes about many things.', 'admin', '', FALSE, {now}, {now}"
            ),
        ))?;
        conn.batch_execute(&series(
            50,
            "INSERT INTO tags (name, slug) SELECT 'Large tag ' || i, 'large-tag-' || i",
        ))?;
        let first_author: i32 = users::table
            .filter(users::slug.eq("large-author-1"))
            .select(users::id)
            .first(conn)?;
        conn.batch_execute(&series(
            posts,
            &format!(
                "INSERT INTO posts (slug, title, body_markdown, body_html, excerpt, author_id, kind, status, \
                 published_at, comments_open, approved_comment_count, created_at, updated_at, thread_version) \
                 SELECT 'large-' || i, 'Large post number ' || i, 'Body of large post ' || i, \
                 '<p>Body of large post ' || i || '</p>', 'Body of large post ' || i, \
                 {first_author} + (i % 20), 'post', 'published', {}, TRUE, 0, {now}, {now}, 0",
                at("i * 3600")
            ),
        ))?;
        let first_post: i32 = posts::table
            .filter(posts::slug.eq("large-1"))
            .select(posts::id)
            .first(conn)?;
        let first_tag: i32 = tags::table
            .filter(tags::slug.eq("large-tag-1"))
            .select(tags::id)
            .first(conn)?;
        for offset in [0, 7] {
            conn.batch_execute(&format!(
                "INSERT INTO post_tags (post_id, tag_id) SELECT id, {first_tag} + ((id + {offset}) % 50) \
                 FROM posts WHERE id >= {first_post}"
            ))?;
        }
        let per_post = (comments / posts).max(1);
        conn.batch_execute(&series(
            comments,
            &format!(
                "INSERT INTO comments (post_id, author_name, author_email, body, body_html, status, \
                 user_agent, avatar_seed, notify, created_at, updated_at, format) \
                 SELECT {first_post} + ((i - 1) / {per_post}) % {posts}, 'Reader ' || (i % 997), \
                 'reader' || (i % 997) || '@example.com', 'A comment, number ' || i, \
                 '<p>A comment, number ' || i || '</p>', 'approved', '', i, FALSE, {}, {}, 'markdown'",
                at(&format!("(({first_post} + ((i - 1) / {per_post}) % {posts}) - {first_post} + 1) * 3600 + i % 3600")),
                at(&format!("(({first_post} + ((i - 1) / {per_post}) % {posts}) - {first_post} + 1) * 3600 + i % 3600"))
            ),
        ))?;
        conn.batch_execute(
            "UPDATE posts SET approved_comment_count = \
             (SELECT COUNT(*) FROM comments c WHERE c.post_id = posts.id AND c.status = 'approved')",
        )?;
        conn.batch_execute(
            "UPDATE comment_counts SET total = \
             (SELECT COUNT(*) FROM comments c WHERE c.status = comment_counts.status)",
        )?;
        conn.batch_execute("ANALYZE")?;
        Ok(())
    })?;
    db.read_blocking(|conn| {
        if let DbConn::Sqlite(_) = conn {
            conn.batch_execute("PRAGMA wal_checkpoint(TRUNCATE)")?;
        }
        Ok(())
    })?;
    Ok(())
}

/// The large site's pages, measured twice: first with every request read from the database
/// (the server runs with `LECTERN_PAGE_CACHES=off`, so those figures come from indexes, keyset
/// pages and maintained counts, not from kept pages), then as a site is served (kept pages,
/// dashboard readings and sessions, each kept until the next commit that could change it).
fn run_large_site(url: &str, mode: Option<SqliteSync>, warmup: u64, secs: u64) -> Result<()> {
    let posts_n = env_secs("BENCH_LARGE_POSTS", 100_000)?;
    let comments_n = env_secs("BENCH_LARGE_COMMENTS", 1_000_000)?;
    let dir = tempfile::Builder::new()
        .prefix("lectern-bench-large-")
        .tempdir()?;
    let (db_url, _scratch) = scratch_database(url, dir.path())?;
    println!("\n== large site: {posts_n} posts, {comments_n} comments");
    let db = Db::open(&db_url, SqliteSync::Normal, 4).context("opening the bench database")?;
    seed(&db)?;
    let started = Instant::now();
    seed_large_site(&db, posts_n, comments_n)?;
    println!("seeded in {:.1} s", started.elapsed().as_secs_f64());
    let (session, _) = seed_queue(&db, 0)?;
    let kinds: [(&str, &[(&str, &str)]); 2] = [
        ("no kept pages", &[("LECTERN_PAGE_CACHES", "off")]),
        ("as served", &[]),
    ];
    // BENCH_LARGE_PASS=served (or direct) measures one of the two passes alone.
    let pass = std::env::var("BENCH_LARGE_PASS").unwrap_or_default();
    let wanted = |kind: &str| match pass.as_str() {
        "served" => kind == "as served",
        "direct" => kind == "no kept pages",
        _ => true,
    };
    for (kind, settings) in kinds.into_iter().filter(|(kind, _)| wanted(kind)) {
        let server = Server::start_with(dir.path(), &db_url, mode, settings)?;
        measure_large_site(&db, &server, &session, posts_n, kind, warmup, secs)?;
    }
    Ok(())
}

/// One pass over the large site's pages, printing a row per page.
fn measure_large_site(
    db: &Db,
    server: &Server,
    session: &str,
    posts_n: u64,
    kind: &str,
    warmup: u64,
    secs: u64,
) -> Result<()> {
    let base = format!("http://{}", server.addr);
    // A cursor deep in the listing: the post 90% of the way back.
    let deep: (chrono::NaiveDateTime, i32) = db.read_blocking(|conn| {
        Ok(posts::table
            .filter(posts::slug.eq(format!("large-{}", posts_n / 10)))
            .select((posts::published_at, posts::id))
            .first(conn)?)
    })?;
    let deep_cursor = format!(
        "{}.{}",
        deep.0.and_utc().timestamp_nanos_opt().unwrap_or_default(),
        deep.1
    );
    let cookie = format!("Cookie: lectern_session={session}");
    let staff = Load {
        headers: vec![&cookie],
        ..Load::default()
    };
    let pages: Vec<(&str, String, bool, f64)> = vec![
        ("home", "/".into(), false, 20.0),
        (
            "home, deep cursor",
            format!("/?before={deep_cursor}"),
            false,
            20.0,
        ),
        ("tag page", "/tags/large-tag-3".into(), false, 20.0),
        ("author page", "/authors/large-author-3".into(), false, 20.0),
        (
            "post page",
            format!("/posts/large-{}", posts_n / 2),
            false,
            20.0,
        ),
        ("/feed.xml", "/feed.xml".into(), false, 20.0),
        (
            "/comments/feed.xml",
            "/comments/feed.xml".into(),
            false,
            20.0,
        ),
        ("sitemap index", "/sitemap.xml".into(), false, 20.0),
        (
            "sitemap file, 50,000",
            "/sitemaps/posts-1.xml".into(),
            false,
            150.0,
        ),
        ("queue, first page", "/admin/comments".into(), true, 20.0),
        ("admin dashboard", "/admin".into(), true, 20.0),
    ];
    println!(
        "{:<26} {:>9} {:>8} {:>8} {:>8} {:>8}   target",
        format!("page ({kind})"),
        "req/s",
        "p50 ms",
        "p99 ms",
        "errors",
        "peak MB"
    );
    // BENCH_LARGE_PAGES=queue,sitemap measures only the pages whose names hold one of those.
    let only = std::env::var("BENCH_LARGE_PAGES").unwrap_or_default();
    let chosen = |name: &str| only.is_empty() || only.split(',').any(|part| name.contains(part));
    for (name, path, as_staff, p99_target) in pages.into_iter().filter(|p| chosen(p.0)) {
        let (status, _) = if as_staff {
            (200, String::new())
        } else {
            match http_get(&server.addr, &path) {
                Ok(answer) => answer,
                Err(e) => {
                    println!("{name:<26} MISS: a single request failed ({e})");
                    continue;
                }
            }
        };
        if status != 200 {
            println!("{name:<26} answered {status}");
            continue;
        }
        let load = if as_staff { &staff } else { &Load::default() };
        let r = measure_as(&format!("{base}{path}"), None, load, warmup, secs)?;
        // Requests wrk gave up on are still being answered: the next page is measured once
        // the server has caught up, not behind this one's backlog.
        settle(&server.addr);
        // The server's peak memory so far (VmHWM): where in the pass it rose.
        let peak = server.peak_rss_kb()? as f64 / 1024.0;
        let rps_target = if p99_target > 20.0 { 0.0 } else { 2_000.0 };
        let ok = r.p99_ms < p99_target && r.rps >= rps_target && r.rps > 0.0 && r.errors == 0;
        println!(
            "{name:<26} {:>9.0} {:>8.2} {:>8.2} {:>8} {peak:>8.1}   {} p99 < {p99_target} ms{}",
            r.rps,
            r.p50_ms,
            r.p99_ms,
            r.errors,
            if ok { "PASS" } else { "MISS" },
            if rps_target > 0.0 {
                ", ≥ 2,000 req/s"
            } else {
                ""
            }
        );
    }
    if kind == "as served" && chosen("sitemap file") {
        sitemap_file_beside_nginx(server, warmup, secs)?;
    }
    println!(
        "server peak RSS: {:.1} MB",
        server.peak_rss_kb()? as f64 / 1024.0
    );
    Ok(())
}

/// The sitemap file of 50,000 URLs as crawlers ask for it (they send `Accept-Encoding: gzip`),
/// and nginx serving the same uncompressed bytes from a file (sendfile) in the same run: how
/// far the machine itself takes a 5 MB answer to 64 readers at once.
fn sitemap_file_beside_nginx(server: &Server, warmup: u64, secs: u64) -> Result<()> {
    let path = "/sitemaps/posts-1.xml";
    let compressed = Load::browser();
    let r = measure_as(
        &format!("http://{}{path}", server.addr),
        None,
        &compressed,
        warmup,
        secs,
    )?;
    settle(&server.addr);
    print_yardstick("sitemap file, compressed", &r);
    let (_, bytes) = http_get(&server.addr, path)?;
    match Nginx::start(&[(path, bytes.into_bytes())]) {
        Ok(nginx) => {
            let url = format!("http://{}{path}/", nginx.addr);
            let r = measure_as(&url, None, &Load::default(), warmup, secs)?;
            print_yardstick("nginx, same sitemap file", &r);
        }
        Err(e) => println!("nginx: {e:#}; left out"),
    }
    Ok(())
}

/// A row measured for comparison, without a target of its own.
fn print_yardstick(name: &str, r: &WrkResult) {
    println!(
        "{name:<26} {:>9.0} {:>8.2} {:>8.2} {:>8} {:>8}   (for comparison)",
        r.rps, r.p50_ms, r.p99_ms, r.errors, ""
    );
}

/// Waits until no email is queued or being sent, or `limit` has passed; returns how many still
/// wait.
fn wait_for_outbox(db: &Db, limit: Duration) -> Result<i64> {
    use lectern::db::schema::outbox;
    let started = Instant::now();
    loop {
        let waiting: i64 = db.read_blocking(|conn| {
            Ok(outbox::table
                .filter(outbox::status.eq_any(["queued", "sending"]))
                .count()
                .get_result(conn)?)
        })?;
        if waiting == 0 || started.elapsed() > limit {
            return Ok(waiting);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Adds `n` pending comments in one statement per backend, fixes the maintained counts, and
/// opens a moderator session. Returns the session id and a cursor near the oldest comments.
fn seed_queue(db: &Db, n: u64) -> Result<(String, i32)> {
    use diesel::connection::SimpleConnection;
    use lectern::db::DbConn;
    db.write_blocking(|conn| -> Result<(String, i32)> {
        let post_id: i32 = posts::table
            .filter(posts::slug.eq("bench-submit"))
            .select(posts::id)
            .first(conn)?;
        // Spread over the last 60 days, an hour apart, so the dashboard's 30-day chart has a
        // month of them to draw.
        let at = match conn {
            DbConn::Sqlite(_) => "datetime('now', '-' || (i % 1440) || ' hours')".to_string(),
            DbConn::Postgresql(_) => {
                "(now() AT TIME ZONE 'UTC') - (i % 1440) * INTERVAL '1 hour'".to_string()
            }
        };
        let select = format!(
            "SELECT {post_id}, 'Reader ' || i, 'reader' || i || '@example.com', \
             'Queue comment number ' || i || ' with some words to search through.', \
             '<p>Queue comment number ' || i || '</p>', 'pending', \
             'first comment from this author', '', 0, FALSE, {at}, {at}"
        );
        let columns = "post_id, author_name, author_email, body, body_html, status, held_reason, \
                       user_agent, avatar_seed, notify, created_at, updated_at";
        let sql = match conn {
            DbConn::Sqlite(_) => format!(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {n}) \
                 INSERT INTO comments ({columns}) {} FROM n",
                select
            ),
            DbConn::Postgresql(_) => format!(
                "INSERT INTO comments ({columns}) {select} FROM generate_series(1, {n}) AS i"
            ),
        };
        conn.batch_execute(&sql)?;
        conn.batch_execute(
            "UPDATE comment_counts SET total = \
             (SELECT COUNT(*) FROM comments c WHERE c.status = comment_counts.status)",
        )?;
        // A site that grew to a million comments has planner statistics that say so
        // (autovacuum, or SQLite's ANALYZE); a bulk insert does not update them by itself.
        conn.batch_execute("ANALYZE comments")?;
        let oldest: i32 = comments::table
            .filter(comments::status.eq("pending"))
            .select(diesel::dsl::min(comments::id))
            .first::<Option<i32>>(conn)?
            .unwrap_or(1);
        let user_id: lectern::db::ids::UserId = users::table.select(users::id).first(conn)?;
        let session =
            lectern::auth::sessions::create(conn, user_id, None, "bench", lectern::db::now())?;
        Ok((session, oldest + 100))
    })
    .and_then(|found| {
        // Fold the million-row write-ahead log back into the database, as SQLite's automatic
        // checkpoint would over time, so the server is not measured with it mapped.
        db.read_blocking(|conn| {
            if let DbConn::Sqlite(_) = conn {
                conn.batch_execute("PRAGMA wal_checkpoint(TRUNCATE)")?;
            }
            Ok(())
        })?;
        Ok(found)
    })
}

/// The database URL for one mode, and a guard that removes what was made for it.
fn scratch_database(url: &str, dir: &Path) -> Result<(String, Option<Scratch>)> {
    if url.is_empty() {
        return Ok((format!("sqlite://{}", dir.join("bench.db").display()), None));
    }
    if let Some(path) = url.strip_prefix("sqlite://") {
        // The server runs in the temp dir, so a relative path is made absolute here.
        let path = std::env::current_dir()?.join(path);
        if path.exists() {
            bail!(
                "{} exists; the benchmark needs a file it may create and remove",
                path.display()
            );
        }
        let url = format!("sqlite://{}", path.display());
        return Ok((url, Some(Scratch::SqliteFile(path.display().to_string()))));
    }
    let name = format!("lectern_bench_{}", std::process::id());
    let mut admin = PgConnection::establish(url).with_context(|| format!("connecting to {url}"))?;
    diesel::sql_query(format!("CREATE DATABASE {name}")).execute(&mut admin)?;
    let mut bench_url = url::Url::parse(url)?;
    bench_url.set_path(&name);
    let guard = Scratch::Postgres {
        admin_url: url.to_string(),
        name,
    };
    Ok((bench_url.to_string(), Some(guard)))
}

/// Removes the bench database when dropped (after the server and the pool are gone).
enum Scratch {
    Postgres { admin_url: String, name: String },
    SqliteFile(String),
}

impl Drop for Scratch {
    fn drop(&mut self) {
        match self {
            Scratch::Postgres { admin_url, name } => {
                let dropped = PgConnection::establish(admin_url)
                    .map_err(|e| e.to_string())
                    .and_then(|mut c| {
                        diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                            .execute(&mut c)
                            .map_err(|e| e.to_string())
                    });
                if let Err(e) = dropped {
                    eprintln!("could not drop the bench database {name}: {e}");
                }
            }
            Scratch::SqliteFile(path) => {
                for suffix in ["", "-wal", "-shm"] {
                    let _ = std::fs::remove_file(format!("{path}{suffix}"));
                }
            }
        }
    }
}

/// A tiny deterministic generator, so every run seeds the same text.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) % n as u64) as usize
    }
}

const SENTENCES: &[&str] = &[
    "I ran into exactly this last winter and ended up rewriting the whole import step.",
    "The part about keeping the write path boring is the bit I wish more people took to heart.",
    "Have you measured what happens when the cache is cold, say right after a deploy?",
    "We tried the same approach at work; it held up fine until the table passed ten million rows.",
    "Small nit: the second example uses the old flag name, which confused me for a minute.",
    "This is the clearest explanation of keyset pagination I have read, thank you.",
    "I disagree a little with the conclusion, mostly because our traffic is far spikier.",
    "One thing worth adding is how you handle retries when the database is briefly unavailable.",
    "Bookmarked, and sent to the rest of the team before our planning meeting.",
    "Did you consider a queue here instead, or was that more machinery than it was worth?",
    "The numbers match what I see on a cheap two-core box, which is reassuring.",
    "It took me a second read to see why the index has to include the timestamp column.",
];

const TAGS: &[&str] = &[
    "rust",
    "databases",
    "web",
    "performance",
    "writing",
    "tools",
    "ops",
];

fn paragraph(rng: &mut Rng, min: usize, max: usize) -> String {
    let mut text = String::new();
    let target = min + rng.below(max - min);
    loop {
        let s = SENTENCES[rng.below(SENTENCES.len())];
        if text.len() >= min && text.len() + s.len() + 1 > max {
            break;
        }
        if !text.is_empty() {
            text.push(' ');
        }
        text.push_str(s);
        if text.len() >= target {
            break;
        }
    }
    text
}

fn post_file(i: usize, slug: &str, title: &str, body: &str) -> String {
    let date = NaiveDate::from_ymd_opt(2022, 1, 1)
        .and_then(|d| d.and_hms_opt(9, 0, 0))
        .unwrap_or_default()
        + chrono::Duration::days(i as i64);
    let tags = [TAGS[i % TAGS.len()], TAGS[(i * 3 + 1) % TAGS.len()]];
    format!(
        "---\ntitle: \"{title}\"\nslug: {slug}\nauthor: bench@example.com\ndate: \"{}Z\"\n\
         tags: [{}, {}]\n---\n{body}",
        date.format("%Y-%m-%dT%H:%M:%S"),
        tags[0],
        tags[1]
    )
}

const THREAD_POST: &str = "Keyset pagination keeps every page equally fast, however deep the \
reader goes. Offsets make the database walk past every skipped row.\n\n\
The trick is to remember the last row's sort key and ask for rows after it:\n\n\
```sql\nSELECT id, created_at FROM comments\n WHERE post_id = ? AND (created_at, id) > (?, ?)\n \
ORDER BY created_at, id LIMIT 50;\n```\n\n\
What it needs:\n\n- an index on `(post_id, created_at, id)`;\n- a stable tie-breaker (the id);\n\
- links that carry the key instead of a page number.\n\n\
Counts are kept up to date on write, so nothing has to count a million rows to print a total.\n";

/// The made-up topic word number `n` (0 to 99).
fn topic(n: usize) -> String {
    format!(
        "{}{}",
        TOPIC_HEADS[n % TOPIC_HEADS.len()],
        TOPIC_TAILS[(n / TOPIC_HEADS.len()) % TOPIC_TAILS.len()]
    )
}

/// Adds posts up to SEARCH_POSTS, each with one topic word in its title and text; returns how
/// many were added.
fn seed_search_posts(db: &Db) -> Result<usize> {
    let mut rng = Rng(7);
    let mut files = Vec::with_capacity(SEARCH_POSTS - POSTS);
    for i in POSTS..SEARCH_POSTS {
        let word = topic(i % 100);
        let body: Vec<String> = (0..3).map(|_| paragraph(&mut rng, 200, 500)).collect();
        let title = format!("Notes on {word}, part {i}");
        let text = format!("All about {word} today.\n\n{}", body.join("\n\n"));
        // Dates from the first thousand days again: later ones would be in the future.
        let file = post_file(i % POSTS, &format!("post-{i:05}"), &title, &text);
        files.push(
            lectern::posts::publish::parse_post_file(&file, chrono_tz::UTC)
                .map_err(|e| anyhow!("generated post {i}: {e}"))?,
        );
    }
    for batch in files.chunks(250) {
        db.write_blocking(|conn| -> Result<()> {
            for file in batch {
                lectern::posts::publish::store(conn, file)?;
            }
            Ok(())
        })?;
    }
    Ok(files.len())
}

/// Seeds the database and says what it holds.
fn seed(db: &Db) -> Result<String> {
    let password = Password::parse("bench password 123").map_err(|e| anyhow!(e))?;
    let hash = hash_password(&password)?;
    let now = lectern::db::now();
    db.write_blocking(|conn| -> Result<()> {
        lectern::users::insert(
            conn,
            &lectern::users::NewUser {
                email: "bench@example.com",
                display_name: "Bench Author",
                slug: "bench-author",
                bio: "Writes posts for the load benchmark.",
                role: lectern::users::Role::Admin,
                password_hash: &hash,
                disabled: false,
                created_at: now,
                updated_at: now,
            },
        )?;
        Ok(())
    })?;

    let mut rng = Rng(42);
    let mut files = Vec::with_capacity(POSTS);
    for i in 0..POSTS {
        let text = match POSTS - i {
            1 => post_file(
                i,
                "bench-thread",
                "Keyset pagination, explained",
                THREAD_POST,
            ),
            2 => post_file(
                i,
                "bench-submit",
                "Tell us what you think",
                "Comments welcome.\n",
            ),
            _ => {
                let body: Vec<String> = (0..3).map(|_| paragraph(&mut rng, 200, 500)).collect();
                let title = format!("Field notes {i}: {}", TAGS[i % TAGS.len()]);
                post_file(i, &format!("post-{i:04}"), &title, &body.join("\n\n"))
            }
        };
        files.push(
            lectern::posts::publish::parse_post_file(&text, chrono_tz::UTC)
                .map_err(|e| anyhow!("generated post {i}: {e}"))?,
        );
    }
    for batch in files.chunks(100) {
        db.write_blocking(|conn| -> Result<()> {
            for file in batch {
                lectern::posts::publish::store(conn, file)?;
            }
            Ok(())
        })?;
    }

    db.write_blocking(|conn| -> Result<()> {
        let post = lectern::posts::queries::find_by_slug(conn, "bench-thread")?
            .context("bench-thread was not stored")?;
        let mut depths: Vec<(lectern::db::ids::CommentId, u32)> = Vec::new(); // (id, depth: 1 = top level)
        for i in 0..THREAD_COMMENTS {
            let parent = if i % 5 == 0 || i % 5 == 2 {
                None
            } else {
                let open: Vec<&(lectern::db::ids::CommentId, u32)> =
                    depths.iter().filter(|(_, d)| *d < 4).collect();
                let recent = &open[open.len().saturating_sub(8)..];
                Some(*recent[rng.below(recent.len())])
            };
            let body = match rng.below(3) {
                0 => format!(
                    "{}\n\n{}",
                    paragraph(&mut rng, 100, 280),
                    paragraph(&mut rng, 100, 300)
                ),
                _ => paragraph(&mut rng, 200, 600),
            };
            let name = format!("Reader {}", i % 37);
            let email = format!("reader{}@example.com", i % 37);
            let website = format!("https://reader{i}.example.org");
            let at = post.published_at + chrono::Duration::minutes(23 * (i as i64 + 1));
            let html = lectern::render::CommentFormat::Markdown.render(&body);
            let id = lectern::comments::queries::insert(
                conn,
                &NewComment {
                    post_id: post.id,
                    parent_id: parent.map(|(id, _)| id),
                    user_id: None,
                    author_name: &name,
                    author_email: &email,
                    author_url: (i % 4 == 0).then_some(website.as_str()),
                    body: &body,
                    body_html: html.as_str(),
                    format: lectern::render::CommentFormat::Markdown,
                    status: lectern::comments::CommentStatus::Approved,
                    held_reason: None,
                    ip: None,
                    ip_network: None,
                    user_agent: "Mozilla/5.0 (bench)",
                    avatar_seed: (i as i32).wrapping_mul(7919),
                    notify: false,
                    created_at: at,
                    updated_at: at,
                },
            )?;
            depths.push((id, parent.map_or(1, |(_, d)| d + 1)));
        }
        Ok(())
    })?;

    db.read_blocking(|conn| {
        let (users, posts, tags, comments): (i64, i64, i64, i64) = (
            users::table.count().get_result(conn)?,
            posts::table.count().get_result(conn)?,
            tags::table.count().get_result(conn)?,
            comments::table.count().get_result(conn)?,
        );
        Ok(format!(
            "{users} user, {posts} posts, {tags} tags, {comments} approved comments on bench-thread"
        ))
    })
    .map_err(Into::into)
}

/// The release server as a child process, its output drained on threads.
/// `BENCH_PERF_DIR=DIR`: the server is profiled with `perf record -g` during the scenarios
/// that pass through `Profile::during` (one `DIR/NAME.data` each), to be read with
/// `perf report -i DIR/NAME.data`. Unset, nothing is recorded.
struct Profile {
    dir: Option<std::path::PathBuf>,
    pid: u32,
}

impl Profile {
    fn of(server: &Server) -> Profile {
        Profile {
            dir: std::env::var_os("BENCH_PERF_DIR").map(Into::into),
            pid: server.child.id(),
        }
    }

    /// Runs `f`, recorded as `name` when profiling.
    fn during<T>(&self, name: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
        let Some(dir) = &self.dir else {
            return f();
        };
        std::fs::create_dir_all(dir)?;
        let mut perf = Command::new("perf")
            .args([
                "record",
                "-g",
                "-F",
                "997",
                "-p",
                &self.pid.to_string(),
                "-o",
            ])
            .arg(dir.join(format!("{name}.data")))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting perf (BENCH_PERF_DIR is set)")?;
        let result = f();
        // perf writes its file on SIGINT.
        let _ = Command::new("kill")
            .args(["-INT", &perf.id().to_string()])
            .status();
        let _ = perf.wait();
        result
    }
}

struct Server {
    child: Child,
    addr: String,
}

impl Server {
    fn start(dir: &Path, url: &str, mode: Option<SqliteSync>) -> Result<Server> {
        Server::start_with(dir, url, mode, &[])
    }

    fn start_with(
        dir: &Path,
        url: &str,
        mode: Option<SqliteSync>,
        extra: &[(&str, &str)],
    ) -> Result<Server> {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_lectern"));
        for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("LECTERN_")) {
            cmd.env_remove(key);
        }
        cmd.arg("serve")
            .current_dir(dir)
            .env("LECTERN_DATABASE_URL", url)
            .env("LECTERN_BIND", "127.0.0.1:0")
            .env("LECTERN_FLOOD_LIMITS", "off")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(mode) = mode {
            cmd.env("LECTERN_SQLITE_SYNC", mode.pragma().to_lowercase());
        }
        for (key, value) in extra {
            cmd.env(key, value);
        }
        let mut child = cmd.spawn().context("starting target/release/lectern")?;
        let (stdout, stderr) = (child.stdout.take(), child.stderr.take());
        let (tx, rx) = mpsc::channel();
        if let Some(out) = stdout {
            std::thread::spawn(move || {
                for line in BufReader::new(out).lines().map_while(Result::ok) {
                    if let Some(addr) = line.strip_prefix("listening on http://") {
                        let _ = tx.send(addr.trim().to_string());
                    }
                }
            });
        }
        if let Some(err) = stderr {
            std::thread::spawn(move || {
                for line in BufReader::new(err).lines().map_while(Result::ok) {
                    eprintln!("[server] {line}");
                }
            });
        }
        let mut server = Server {
            child,
            addr: String::new(),
        };
        server.addr = rx
            .recv_timeout(Duration::from_secs(60))
            .context("the server did not print `listening on http://…` within 60 s")?;
        Ok(server)
    }

    /// The kernel's high-water mark of the server's resident memory, in kB.
    fn peak_rss_kb(&self) -> Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .context("no VmHWM in /proc/PID/status")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// nginx serving the same bytes as lectern, for the figures' yardstick: the page as a static
/// file (sendfile), and pre-compressed beside it for `gzip_static`.
struct Nginx {
    child: Child,
    addr: String,
    _root: tempfile::TempDir,
}

impl Nginx {
    /// Starts nginx on a free loopback port serving `pages` (path → bytes), or says why not.
    fn start(pages: &[(&str, Vec<u8>)]) -> Result<Nginx> {
        let binary = ["/usr/sbin/nginx", "/usr/bin/nginx"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .context("nginx is not installed (apt-get install nginx)")?;
        let root = tempfile::Builder::new()
            .prefix("lectern-nginx-")
            .tempdir()?;
        let html = root.path().join("html");
        for (path, bytes) in pages {
            let file = html.join(path.trim_start_matches('/')).join("index.html");
            if let Some(parent) = file.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::write(&file, bytes)?;
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
            gz.write_all(bytes)?;
            std::fs::write(file.with_extension("html.gz"), gz.finish()?)?;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let conf = root.path().join("nginx.conf");
        let dir = root.path().display();
        std::fs::write(
            &conf,
            format!(
                "worker_processes auto;\ndaemon off;\npid {dir}/nginx.pid;\nerror_log {dir}/error.log warn;\n\
                 events {{ worker_connections 1024; }}\n\
                 http {{\n  access_log off;\n  sendfile on;\n  tcp_nopush on;\n  keepalive_requests 1000000;\n\
                   default_type text/html;\n  gzip_static on;\n  gzip_vary on;\n\
                   client_body_temp_path {dir}/tmp; proxy_temp_path {dir}/tmp; fastcgi_temp_path {dir}/tmp;\n\
                   uwsgi_temp_path {dir}/tmp; scgi_temp_path {dir}/tmp;\n\
                   server {{ listen 127.0.0.1:{port}; root {dir}/html; index index.html; }}\n}}\n"
            ),
        )?;
        std::fs::create_dir_all(root.path().join("tmp"))?;
        let child = Command::new(binary)
            .args(["-c", &conf.display().to_string(), "-p", &dir.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting nginx")?;
        let addr = format!("127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(&addr).is_err() {
            if Instant::now() > deadline {
                bail!("nginx did not listen on {addr}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(Nginx {
            child,
            addr,
            _root: root,
        })
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-QUIT", &pid]).status();
        let _ = self.child.wait();
    }
}

/// The run with the median request rate.
fn median(mut runs: Vec<WrkResult>) -> WrkResult {
    runs.sort_by(|a, b| a.rps.total_cmp(&b.rps));
    let middle = runs.len() / 2;
    runs.swap_remove(middle)
}

/// One GET over HTTP/1.0 (the server closes the connection, so the body ends at EOF).
fn http_get(addr: &str, path: &str) -> Result<(u16, String)> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n")?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw);
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("GET {path}: no HTTP status line"))?;
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    Ok((status, body.to_string()))
}

/// Waits (at most two minutes) until the server answers `/healthz` within 50 ms.
fn settle(addr: &str) {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(120) {
        let asked = Instant::now();
        if http_get(addr, "/healthz").is_ok() && asked.elapsed() < Duration::from_millis(50) {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn form_token(page: &str) -> Result<String> {
    const MARK: &str = "name=\"form_token\" value=\"";
    let start = page
        .find(MARK)
        .context("no form_token on /posts/bench-submit")?
        + MARK.len();
    let len = page[start..].find('"').context("unterminated form_token")?;
    Ok(page[start..start + len].to_string())
}

/// wrk script: every request posts a comment with a body unique to this run, thread and count.
fn submit_script(token: &str) -> String {
    let token = percent_encoding::utf8_percent_encode(token, percent_encoding::NON_ALPHANUMERIC);
    format!(
        r#"local token = "{token}"
local run = "run"
local counter = 0
local threads = 0
local headers = {{ ["Content-Type"] = "application/x-www-form-urlencoded" }}

function setup(thread)
  threads = threads + 1
  thread:set("id", threads)
end

function init(args)
  run = args[1] or run
end

function request()
  counter = counter + 1
  local n = id .. "-" .. counter
  local body = "name=Bench+Reader&email=reader" .. n .. "%40example.com"
    .. "&body=Benchmark+comment+" .. run .. "-" .. n
    .. "+%E2%80%94+thanks+for+the+write-up%2C+the+part+about+indexes+was+useful."
    .. "&form_token=" .. token
  return wrk.format("POST", wrk.path, headers, body)
end
"#
    )
}

struct WrkResult {
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
    errors: u64,
    /// Requests and errors over warm-up and counted runs (for the submission sanity check).
    total_sent: u64,
    total_errors: u64,
}

/// A warm-up run (figures dropped), then the counted run.
fn measure(url: &str, script: Option<&Path>, warmup: u64, secs: u64) -> Result<WrkResult> {
    measure_as(url, script, &Load::default(), warmup, secs)
}

/// How wrk loads the server beyond the URL: extra request headers and the connection count.
struct Load<'a> {
    headers: Vec<&'a str>,
    threads: u32,
    connections: u32,
}

impl Default for Load<'_> {
    fn default() -> Self {
        Load {
            headers: Vec::new(),
            threads: THREADS,
            connections: CONNECTIONS,
        }
    }
}

/// What every browser sends: the page figures that readers actually get.
const BROWSER_ENCODINGS: &str = "Accept-Encoding: gzip, deflate, br";

impl Load<'_> {
    /// The default load, asking for the codings a browser asks for.
    fn browser() -> Self {
        Load {
            headers: vec![BROWSER_ENCODINGS],
            ..Load::default()
        }
    }
}

/// `measure` with request headers (a staff session's cookie, compression) or other concurrency.
fn measure_as(
    url: &str,
    script: Option<&Path>,
    load: &Load<'_>,
    warmup: u64,
    secs: u64,
) -> Result<WrkResult> {
    let (mut sent, mut errs) = (0, 0);
    if warmup > 0 {
        let w = wrk(url, script, load, "warm", warmup)?;
        (sent, errs) = (w.total_sent, w.errors);
    }
    let mut r = wrk(url, script, load, "main", secs)?;
    r.total_sent += sent;
    r.total_errors = r.errors + errs;
    Ok(r)
}

fn wrk(
    url: &str,
    script: Option<&Path>,
    load: &Load<'_>,
    run: &str,
    secs: u64,
) -> Result<WrkResult> {
    let mut cmd = Command::new("wrk");
    cmd.arg(format!("-t{}", load.threads))
        .arg(format!("-c{}", load.connections))
        .arg(format!("-d{secs}s"))
        .arg("--latency");
    for header in &load.headers {
        cmd.arg("-H").arg(header);
    }
    if let Some(script) = script {
        cmd.arg("-s").arg(script);
    }
    cmd.arg(url).args(["--", run]);
    let out = cmd.output().context("running wrk")?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!(
            "wrk failed: {}{}",
            text,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    parse_wrk(&text).with_context(|| format!("reading wrk's output:\n{text}"))
}

fn parse_wrk(text: &str) -> Result<WrkResult> {
    let mut r = WrkResult {
        rps: f64::NAN,
        p50_ms: f64::NAN,
        p99_ms: f64::NAN,
        errors: 0,
        total_sent: 0,
        total_errors: 0,
    };
    for line in text.lines().map(str::trim) {
        if let Some(v) = line.strip_prefix("Requests/sec:") {
            r.rps = v.trim().parse()?;
        } else if let Some(v) = line.strip_prefix("50%") {
            r.p50_ms = duration_ms(v.trim())?;
        } else if let Some(v) = line.strip_prefix("99%") {
            r.p99_ms = duration_ms(v.trim())?;
        } else if let Some(v) = line.strip_prefix("Non-2xx or 3xx responses:") {
            r.errors += v.trim().parse::<u64>()?;
        } else if let Some(v) = line.strip_prefix("Socket errors:") {
            // "connect 0, read 0, write 0, timeout 0"
            for part in v.split(',') {
                let n = part.split_whitespace().nth(1).context("socket errors")?;
                r.errors += n.parse::<u64>()?;
            }
        } else if line.contains(" requests in ") {
            r.total_sent = line.split_whitespace().next().unwrap_or("").parse()?;
        }
    }
    if r.rps.is_nan() || r.p50_ms.is_nan() || r.p99_ms.is_nan() {
        bail!("no Requests/sec or latency distribution");
    }
    Ok(r)
}

/// wrk prints times as 850.00us, 3.90ms, 1.20s, 2.00m.
fn duration_ms(text: &str) -> Result<f64> {
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .ok_or_else(|| anyhow!("no unit in {text:?}"))?;
    let value: f64 = text[..split].parse()?;
    let factor = match &text[split..] {
        "us" => 0.001,
        "ms" => 1.0,
        "s" => 1_000.0,
        "m" => 60_000.0,
        "h" => 3_600_000.0,
        unit => bail!("unknown unit {unit:?}"),
    };
    Ok(value * factor)
}
