//! Load benchmark (DESIGN.md, "Benchmarks"): seeds 1,000 posts and a post with 100 approved
//! threaded comments, starts the release build of `lectern`, and drives it with wrk on loopback.
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
        println!("database: SQLite, both LECTERN_SQLITE_SYNC modes");
        vec![Some(SqliteSync::Full), Some(SqliteSync::Normal)]
    };
    for mode in modes {
        run_mode(&url, mode, warmup, secs)?;
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
    let post = measure(&post_url, None, warmup, secs)?;
    peaks.push(("post page", server.peak_rss_kb()?));
    let compressed = Load {
        headers: vec![BROWSER_ENCODINGS],
        ..Load::default()
    };
    let post_gzip = measure_as(&post_url, None, &compressed, warmup, secs)?;
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
    let submit = measure(
        &format!("{base}/posts/bench-submit/comments"),
        Some(&script),
        warmup,
        secs,
    )?;

    peaks.push(("submission", server.peak_rss_kb()?));

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
    let cookie = format!("Cookie: lectern_session={session}");
    let staff = Load {
        headers: vec![&cookie],
        ..Load::default()
    };
    let queue = measure_as(
        &format!("{base}/admin/comments"),
        None,
        &staff,
        warmup,
        secs,
    )?;
    let deep = measure_as(
        &format!("{base}/admin/comments?status=pending&before={deep_cursor}"),
        None,
        &staff,
        warmup,
        secs,
    )?;
    // The dashboard over the same million: its charts read the trigger-kept counts.
    let dashboard = measure_as(&format!("{base}/admin"), None, &staff, warmup, secs)?;
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

    println!(
        "{:<26} {:>9} {:>8} {:>8} {:>8}   target",
        "scenario", "req/s", "p50 ms", "p99 ms", "errors"
    );
    let verdict = |ok: bool| if ok { "PASS" } else { "MISS" };
    let post_ok = post.rps >= 5_000.0 && post.p99_ms < 50.0 && post.errors == 0;
    let submit_ok = submit.rps >= 500.0 && submit.errors == 0;
    let rows = [
        (
            "post page, 100 comments",
            &post,
            format!("{} ≥ 5,000 req/s, p99 < 50 ms", verdict(post_ok)),
        ),
        ("post page, gzip/br asked", &post_gzip, "-".to_string()),
        ("  the same, 1 connection", &post_gzip_one, "-".to_string()),
        ("index page", &index, "-".to_string()),
        (
            "comment submission",
            &submit,
            format!("{} ≥ 500 req/s, 0 errors", verdict(submit_ok)),
        ),
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
struct Server {
    child: Child,
    addr: String,
}

impl Server {
    fn start(dir: &Path, url: &str, mode: Option<SqliteSync>) -> Result<Server> {
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
