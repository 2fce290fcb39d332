//! `lectern import isso FILE.db`: an Isso database (SQLite), read in pages of rows. Threads are
//! matched like Disqus's; `mode` 1 → approved, 2 → pending, 4 (deleted, kept for its replies)
//! → trash, which leaves the "removed" placeholder; the text is Markdown. A notification
//! subscription is kept only as an unconfirmed address: nobody is mailed who did not confirm
//! with lectern.

use std::collections::HashMap;
use std::path::Path;

use diesel::prelude::*;
use diesel::sql_types::{Double, Integer, Nullable, Text};
use diesel::sqlite::SqliteConnection;

use super::disqus::{Orphans, adopt_orphans};
use super::store::{Ctx, ImportedComment, ItemKind, Place, match_thread};
use super::{Env, ImportError, Options, Progress, Report};
use crate::comments::CommentStatus;
use crate::db::ids::{CommentId, PostId};
use crate::render::CommentFormat;

const PAGE: i64 = 5000;

#[derive(QueryableByName)]
struct Row {
    #[diesel(sql_type = Integer)]
    id: i32,
    #[diesel(sql_type = Integer)]
    tid: i32,
    #[diesel(sql_type = Nullable<Text>)]
    uri: Option<String>,
    #[diesel(sql_type = Nullable<Integer>)]
    parent: Option<i32>,
    #[diesel(sql_type = Double)]
    created: f64,
    #[diesel(sql_type = Nullable<Integer>)]
    mode: Option<i32>,
    #[diesel(sql_type = Nullable<Text>)]
    remote_addr: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    text: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    author: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    email: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    website: Option<String>,
    #[diesel(sql_type = Integer)]
    notification: i32,
}

#[derive(QueryableByName)]
struct Name {
    #[diesel(sql_type = Text)]
    name: String,
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

fn open(path: &Path) -> Result<SqliteConnection, ImportError> {
    let url = format!("file:{}?mode=ro", path.display());
    SqliteConnection::establish(&url)
        .map_err(|e| ImportError::Unreadable(format!("{}: {e}", path.display())))
}

fn columns(conn: &mut SqliteConnection, table: &str) -> Result<Vec<String>, ImportError> {
    let rows: Vec<Name> =
        diesel::sql_query(format!("SELECT name FROM pragma_table_info('{table}')"))
            .load(conn)
            .map_err(|e| ImportError::Unreadable(e.to_string()))?;
    Ok(rows.into_iter().map(|r| r.name).collect())
}

/// The source's name: comment ids are per database, so they are kept with their thread's
/// address (`/blog/fascia/#12`).
fn source_id(uri: &str, id: i32) -> String {
    format!("{uri}#{id}")
}

pub fn import(
    env: &Env,
    path: &Path,
    options: &Options,
    progress: &mut dyn Progress,
) -> Result<Report, ImportError> {
    let mut isso = open(path)?;
    let thread_columns = columns(&mut isso, "threads")?;
    let comment_columns = columns(&mut isso, "comments")?;
    if thread_columns.is_empty() || comment_columns.is_empty() {
        let what = if columns(&mut isso, "posts")?.is_empty() {
            "an SQLite database without Isso's tables (threads, comments)"
        } else {
            "a lectern database, not an Isso database"
        };
        return Err(ImportError::WrongKind(format!(
            "{}: {what}",
            path.display()
        )));
    }
    // Isso added `notification` in 0.12; older databases have none.
    let notification = if comment_columns.iter().any(|c| c == "notification") {
        "coalesce(c.notification, 0)"
    } else {
        "0"
    };
    let total: i64 = diesel::sql_query("SELECT count(*) AS n FROM comments")
        .get_result::<Count>(&mut isso)
        .map_err(|e| ImportError::Unreadable(e.to_string()))?
        .n;
    let mut ctx = Ctx::new(env, "isso".into(), options.dry_run)?;
    ctx.report.source = format!("Isso database {}", path.display());
    let mut matched: HashMap<i32, Option<PostId>> = HashMap::new();
    let mut stored: HashMap<String, CommentId> = HashMap::new();
    let mut by_isso_id: HashMap<i32, String> = HashMap::new();
    let mut orphans: Orphans = Vec::new();
    let mut subscriptions = 0u64;
    let mut last = i32::MIN;
    let mut done = 0u64;
    loop {
        let rows: Vec<Row> = diesel::sql_query(format!(
            "SELECT c.id, c.tid, t.uri, c.parent, CAST(c.created AS REAL) AS created, c.mode, \
             c.remote_addr, c.text, c.author, c.email, c.website, {notification} AS notification \
             FROM comments c JOIN threads t ON t.id = c.tid WHERE c.id > ? ORDER BY c.id LIMIT {PAGE}"
        ))
        .bind::<Integer, _>(last)
        .load(&mut isso)
        .map_err(|e| ImportError::Unreadable(format!("{}: {e}", path.display())))?;
        let Some(end) = rows.last().map(|r| r.id) else {
            break;
        };
        last = end;
        done += rows.len() as u64;
        ctx.batch(|conn, ctx| {
            let ids: Vec<String> = rows
                .iter()
                .map(|r| source_id(r.uri.as_deref().unwrap_or_default(), r.id))
                .collect();
            let earlier = ctx.lookup_many(conn, ItemKind::Comment, &ids)?;
            for (row, sid) in rows.iter().zip(&ids) {
                by_isso_id.insert(row.id, sid.clone());
                if let Some(id) = earlier.get(sid) {
                    ctx.report.comments.already += 1;
                    stored.insert(sid.clone(), CommentId(*id));
                    continue;
                }
                let uri = row.uri.as_deref().unwrap_or_default();
                let post_id = match matched.get(&row.tid) {
                    Some(found) => *found,
                    None => {
                        let found = match_thread(conn, uri, &options.maps)?;
                        if found.is_none() {
                            ctx.report.note(format!(
                                "the thread {uri} matched no post: its comments were skipped (try --map OLD_PREFIX=NEW_PREFIX)"
                            ));
                        }
                        matched.insert(row.tid, found);
                        found
                    }
                };
                let Some(post_id) = post_id else {
                    ctx.report.skip("comments on threads that match no post");
                    continue;
                };
                let status = match row.mode.unwrap_or(1) {
                    1 => CommentStatus::Approved,
                    2 => CommentStatus::Pending,
                    _ => CommentStatus::Trash,
                };
                let parent_sid = row
                    .parent
                    .map(|p| by_isso_id.get(&p).cloned().unwrap_or_else(|| source_id(uri, p)));
                let parent_id = match &parent_sid {
                    None => None,
                    Some(p) => stored.get(p).copied(),
                };
                let created_at = chrono::DateTime::from_timestamp_micros((row.created * 1e6) as i64)
                    .map(|t| t.naive_utc())
                    .unwrap_or(ctx.env.now);
                let email = row.email.as_deref().unwrap_or_default().trim().to_string();
                let id = ctx.insert_comment(
                    conn,
                    Place {
                        post_id,
                        parent_id,
                        user_id: None,
                    },
                    &ImportedComment {
                        source_id: sid,
                        name: row.author.as_deref().unwrap_or_default(),
                        email: &email,
                        website: row.website.as_deref().unwrap_or_default(),
                        body: row.text.as_deref().unwrap_or_default(),
                        body_html: None,
                        format: CommentFormat::Markdown,
                        status,
                        ip: row.remote_addr.as_deref().unwrap_or_default(),
                        created_at,
                        held_reason: (status == CommentStatus::Pending).then_some("imported"),
                    },
                )?;
                if let (Some(p), None) = (parent_sid, parent_id) {
                    orphans.push((id, p));
                }
                stored.insert(sid.clone(), id);
                if row.notification != 0 && email.contains('@') {
                    let address = email.to_lowercase();
                    let added = if ctx.dry_run {
                        true
                    } else {
                        crate::notify::remember_unconfirmed(conn, &address, ctx.env.now)?
                    };
                    if added {
                        subscriptions += 1;
                    }
                }
            }
            Ok(())
        })?;
        progress.tick(done, total.max(0) as u64, &ctx.report);
    }
    adopt_orphans(&mut ctx, orphans, &stored)?;
    if subscriptions > 0 {
        ctx.report.note(format!(
            "{subscriptions} notification subscriptions kept as unconfirmed: nobody is mailed until they confirm on this site"
        ));
    }
    ctx.finish()?;
    Ok(std::mem::take(&mut ctx.report))
}
