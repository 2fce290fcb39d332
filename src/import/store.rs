//! What every importer writes with: batches in transactions (or, in a dry run, reads only),
//! the memory of imported items, comments stored through the same data rules as the form's
//! (the address never public, old IP addresses dropped at once, text whole), and old addresses.

use std::collections::HashMap;

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::{Env, ImportError, Report};
use crate::comments::CommentStatus;
use crate::comments::queries as comment_queries;
use crate::db::DbConn;
use crate::db::ids::{CommentId, PostId, UserId};
use crate::db::schema::{import_items, old_addresses};
use crate::render::CommentFormat;

/// The comment form's limits (DESIGN.md): imported text over them is stored whole and counted.
const NAME_LIMIT: usize = 100;
const EMAIL_LIMIT: usize = 254;
const WEBSITE_LIMIT: usize = 200;
const BODY_LIMIT: usize = 10_000;

/// Kinds of remembered items (`import_items.kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemKind {
    User,
    Post,
    Comment,
}

impl ItemKind {
    fn as_str(self) -> &'static str {
        match self {
            ItemKind::User => "user",
            ItemKind::Post => "post",
            ItemKind::Comment => "comment",
        }
    }
}

/// A comment as an importer read it.
pub struct ImportedComment<'a> {
    pub source_id: &'a str,
    pub name: &'a str,
    pub email: &'a str,
    pub website: &'a str,
    pub body: &'a str,
    /// `body` already rendered in `format` (and its newlines already normalised), if it was.
    pub body_html: Option<&'a str>,
    pub format: CommentFormat,
    pub status: CommentStatus,
    pub ip: &'a str,
    pub created_at: NaiveDateTime,
    pub held_reason: Option<&'a str>,
}

/// Where an imported comment goes: known only to the writer, which has the database.
#[derive(Debug, Clone, Copy)]
pub struct Place {
    pub post_id: PostId,
    pub parent_id: Option<CommentId>,
    pub user_id: Option<UserId>,
}

/// A comment put through the data rules, everything but its id and place: the work that needs
/// no database, so that a reading thread can do it while the writer writes.
#[derive(Debug, Clone)]
pub struct PreparedComment {
    source_id: String,
    author_name: String,
    author_email: String,
    author_url: Option<String>,
    body: String,
    body_html: String,
    format: CommentFormat,
    status: CommentStatus,
    held_reason: Option<String>,
    ip: Option<String>,
    ip_network: Option<String>,
    avatar_seed: i32,
    created_at: NaiveDateTime,
    updated_at: NaiveDateTime,
    /// Longer than the comment form allows (stored whole, counted in the report).
    over_limits: bool,
}

/// What putting a comment through the data rules needs from the site; cheap to copy to
/// another thread.
#[derive(Clone, Copy)]
pub struct CommentRules<'e> {
    /// Keys the avatar seed of each comment, as the form does.
    signer: &'e crate::crypto::Signer,
    /// Comments older than this keep no IP address (the retention window, at most 30 days).
    ip_cutoff: NaiveDateTime,
    now: NaiveDateTime,
}

impl<'e> CommentRules<'e> {
    /// The rules of the site `env` holds (its retention window is a setting).
    pub fn load(env: &'e Env) -> Result<CommentRules<'e>, ImportError> {
        let settings = env
            .db
            .read_blocking(crate::site::DiscussionSettings::load)?;
        let ip_days = settings
            .retention_days
            .min(crate::moderation::retention::MAX_IP_DAYS);
        Ok(CommentRules {
            signer: &env.signer,
            ip_cutoff: env.now - chrono::Duration::days(i64::from(ip_days)),
            now: env.now,
        })
    }

    /// The time the run started.
    pub fn now(&self) -> NaiveDateTime {
        self.now
    }

    /// `c` as it will be stored: the name, address and website as the form keeps them, the IP
    /// address only inside the retention window, the body rendered, the avatar seed.
    pub fn prepare(&self, c: &ImportedComment<'_>) -> PreparedComment {
        let over_limits = c.name.chars().count() > NAME_LIMIT
            || c.email.chars().count() > EMAIL_LIMIT
            || c.website.chars().count() > WEBSITE_LIMIT
            || c.body.chars().count() > BODY_LIMIT;
        let name = match c.name.trim() {
            "" => "Anonymous",
            name => name,
        };
        let email = c.email.trim();
        // IP addresses are kept for 30 days at most, counted from the comment's own date.
        let ip: Option<std::net::IpAddr> = if c.created_at >= self.ip_cutoff {
            c.ip.trim().parse().ok()
        } else {
            None
        };
        let (body, body_html) = match c.body_html {
            Some(html) => (c.body.to_string(), html.to_string()),
            None => {
                let body = crate::text::normalize_newlines(c.body);
                let html = c.format.render(&body).into_string();
                (body, html)
            }
        };
        PreparedComment {
            source_id: c.source_id.to_string(),
            author_name: name.to_string(),
            author_email: email.to_string(),
            author_url: website(c.website),
            body,
            body_html,
            format: c.format,
            status: c.status,
            held_reason: c.held_reason.map(str::to_string),
            ip: ip.map(|ip| ip.to_string()),
            ip_network: ip.map(crate::http::ip_network),
            avatar_seed: self.signer.keyed_u32("avatar", &email.to_lowercase()) as i32,
            created_at: c.created_at,
            // Spam and trash are purged `retention_days` after they last changed: for
            // imported ones that window starts now, so an admin can still look at them.
            updated_at: match c.status {
                CommentStatus::Spam | CommentStatus::Trash => self.now,
                _ => c.created_at,
            },
            over_limits,
        }
    }
}

/// Memory done with, to be freed by the thread that allocated it: strings made by a reading
/// thread and freed by the writer cost the writer (the busiest thread) a lock of the reader's
/// allocator arena each (a sixth of its time, measured at 100,000 comments).
pub type Spent = Box<dyn Send>;

/// One import run's state between batches.
pub struct Ctx<'e> {
    pub env: &'e Env,
    /// Whose items these are: `wordpress:example.com`, `disqus:forum`, `isso`.
    pub source: String,
    pub dry_run: bool,
    /// The data rules every comment is stored through.
    pub rules: CommentRules<'e>,
    pub report: Report,
    /// `--uploads`: where pictures are taken from (WordPress).
    pub uploads: Option<super::uploads::Uploads>,
    /// Ids handed out in a dry run, where nothing is inserted: negative, so never real.
    fake_id: i32,
    by_status: HashMap<&'static str, i32>,
    approved_by_post: HashMap<PostId, i32>,
    /// Comments waiting to be written with one multi-row INSERT (ids given out already).
    pending: Vec<CommentRow>,
    /// Identities of other items (posts) waiting to be written with the comments'.
    pending_items: Vec<(ItemKind, String, i32)>,
    /// Old addresses waiting to be written at the end of the batch: (address, post, target).
    pending_addresses: Vec<(String, Option<i32>, String)>,
    /// SQLite: the next free comment id, read under this transaction's write lock.
    next_id: Option<i32>,
    /// PostgreSQL: ids taken from the comments' sequence, not used yet.
    id_pool: Vec<i32>,
    /// Write batches committed so far.
    batches: u64,
    /// Whether batches may switch the comments' insert triggers off (see [`super::bulk`]).
    bulk: bool,
    /// Ids of the comments the open batch inserted.
    batch_ids: Vec<i32>,
    /// Rows written already, kept for [`Ctx::take_spent`] until the batch ends.
    spent: Vec<Spent>,
    /// The comments' indexes set aside for this run, built again by [`Ctx::finish`].
    deferred: super::bulk::Indexes,
}

/// Comments written per INSERT statement (19 values each: well under both backends' limits).
const ROWS_PER_INSERT: usize = 500;
/// Comments written per COPY on PostgreSQL (a few megabytes).
const ROWS_PER_COPY: usize = 5000;

/// A comment row as an import writes it: with its id, NULLs written as NULL (not `DEFAULT`), so
/// many rows go in one INSERT on both backends.
#[derive(Debug, Insertable)]
#[diesel(table_name = crate::db::schema::comments)]
#[diesel(treat_none_as_default_value = false)]
struct CommentRow {
    id: i32,
    post_id: i32,
    parent_id: Option<i32>,
    user_id: Option<i32>,
    author_name: String,
    author_email: String,
    author_url: Option<String>,
    body: String,
    body_html: String,
    format: CommentFormat,
    status: CommentStatus,
    held_reason: Option<String>,
    ip: Option<String>,
    ip_network: Option<String>,
    user_agent: String,
    avatar_seed: i32,
    notify: bool,
    created_at: NaiveDateTime,
    updated_at: NaiveDateTime,
    /// Not a column: the source identity remembered with it.
    #[diesel(skip_insertion)]
    source_id: String,
}

/// An imported comment's identity, as `import_items` keeps it.
#[derive(Insertable)]
#[diesel(table_name = import_items)]
#[diesel(treat_none_as_default_value = false)]
struct ItemRow<'a> {
    source: &'a str,
    kind: &'a str,
    source_id: &'a str,
    target_id: i32,
}

#[derive(diesel::QueryableByName)]
struct NextId {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    id: i64,
}

/// Inserts the slice `rows` into `table` on an SQLite connection, [`ROWS_PER_INSERT`] a
/// statement. A full chunk goes through one prepared statement that SQLite keeps (a fixed
/// number of rows has a fixed text, and diesel caches it); a shorter one is parsed each time.
/// (A macro: the generic function's bounds send diesel's trait solver into a loop.)
macro_rules! insert_sqlite_rows {
    ($conn:expr, $table:expr, $rows:expr) => {{
        let mut chunks = $rows.chunks_exact(ROWS_PER_INSERT);
        for chunk in chunks.by_ref() {
            let full: &[_; ROWS_PER_INSERT] = chunk.try_into().map_err(|_| {
                ImportError::Unreadable("a chunk of rows of the wrong length".into())
            })?;
            diesel::insert_into($table).values(full).execute($conn)?;
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            diesel::insert_into($table).values(rest).execute($conn)?;
        }
    }};
}

/// A run that stopped on an error still builds the indexes it set aside (a run that is killed
/// leaves that to the next one).
impl Drop for Ctx<'_> {
    fn drop(&mut self) {
        if self.dry_run || self.deferred.is_empty() {
            return;
        }
        if let Err(e) = self.finish() {
            tracing::error!(error = %e, "building the comments' indexes again failed; the next import builds them");
        }
    }
}

impl<'e> Ctx<'e> {
    pub fn new(env: &'e Env, source: String, dry_run: bool) -> Result<Ctx<'e>, ImportError> {
        let rules = CommentRules::load(env)?;
        let (bulk, deferred) = if dry_run {
            (false, Vec::new())
        } else {
            env.db.write_blocking(|conn| -> Result<_, ImportError> {
                if !super::bulk::may_alter(conn)? {
                    return Ok((false, Vec::new()));
                }
                Ok((true, super::bulk::defer_indexes(conn)?))
            })?
        };
        Ok(Ctx {
            env,
            source,
            dry_run,
            rules,
            report: Report {
                dry_run,
                ..Report::default()
            },
            uploads: None,
            fake_id: 0,
            by_status: HashMap::new(),
            approved_by_post: HashMap::new(),
            pending: Vec::new(),
            pending_items: Vec::new(),
            pending_addresses: Vec::new(),
            next_id: None,
            id_pool: Vec::new(),
            batches: 0,
            bulk,
            batch_ids: Vec::new(),
            spent: Vec::new(),
            deferred,
        })
    }

    /// Ends a run that wrote: builds the comments' indexes it set aside and, on PostgreSQL,
    /// refreshes the planner's statistics. This last transaction commits durably (on
    /// PostgreSQL the batches before it did not wait for their commits to reach the disk; this
    /// commit's wait covers them too).
    pub fn finish(&mut self) -> Result<(), ImportError> {
        if self.dry_run {
            return Ok(());
        }
        let deferred = std::mem::take(&mut self.deferred);
        self.env
            .db
            .with_write_connection(|conn| -> Result<(), ImportError> {
                // SQLite sorts an index's keys in temporary files: on disk, not in memory
                // (`temp_store` is the pool's MEMORY otherwise), or a million keys would
                // double the import's memory. It can only change outside a transaction.
                let sqlite = matches!(conn, DbConn::Sqlite(_));
                // (The pool's small page cache suits the sort: a larger one only holds more of
                // it in memory, and was slower.)
                if sqlite {
                    diesel::sql_query("PRAGMA temp_store = FILE").execute(conn)?;
                }
                let built = crate::db::immediate_transaction(conn, |conn| {
                    super::bulk::build_indexes(conn, &deferred)?;
                    if let DbConn::Postgresql(c) = conn {
                        diesel::sql_query(
                            "ANALYZE comments, import_items, posts, old_addresses, post_tags, tags",
                        )
                        .execute(c)?;
                    }
                    Ok::<(), ImportError>(())
                });
                if sqlite {
                    diesel::sql_query("PRAGMA temp_store = MEMORY").execute(conn)?;
                }
                built
            })
    }

    /// Runs `f` as one batch: one write transaction, or in a dry run a read-only connection.
    pub fn batch<T>(
        &mut self,
        f: impl FnOnce(&mut DbConn, &mut Ctx<'e>) -> Result<T, ImportError>,
    ) -> Result<T, ImportError> {
        let env: &'e Env = self.env;
        if self.dry_run {
            let mut outcome = None;
            env.db.read_blocking(|conn| {
                outcome = Some(f(conn, self));
                Ok(())
            })?;
            return outcome.unwrap_or_else(|| Err(ImportError::Unreadable("no batch ran".into())));
        }
        self.next_id = None;
        self.pending.clear();
        self.pending_items.clear();
        self.pending_addresses.clear();
        self.batch_ids.clear();
        self.spent.clear();
        let value = env.db.write_blocking(|conn| {
            // First, before this transaction holds anything another could wait on.
            let triggers = if self.bulk {
                super::bulk::triggers_off(conn)?
            } else {
                None
            };
            match conn {
                // SQLite: a bigger page cache for the batch keeps the growing indexes in memory
                // instead of reading pages back; set back afterwards, as the connection is pooled.
                DbConn::Sqlite(c) => {
                    diesel::sql_query("PRAGMA cache_size = -32768").execute(c)?;
                }
                // A batch's commit need not wait for the disk: `finish` ends the run with a
                // commit that does, which covers every commit before it.
                DbConn::Postgresql(c) => {
                    diesel::sql_query("SET LOCAL synchronous_commit = off").execute(c)?;
                }
            }
            let value = f(conn, self)?;
            self.flush_pending(conn)?;
            self.flush_addresses(conn)?;
            if let Some(triggers) = triggers {
                triggers.restore(conn, &self.batch_ids)?;
            }
            self.flush_counts(conn)?;
            if let DbConn::Sqlite(c) = conn {
                diesel::sql_query("PRAGMA cache_size = -2000").execute(c)?;
            }
            Ok::<T, ImportError>(value)
        })?;
        self.batches += 1;
        // PostgreSQL plans the import's lookups with the statistics of the tables as they were
        // (empty, on a new site): refreshed as they grow, or every lookup reads whole tables.
        if self.batches.is_power_of_two() && env.db.backend() == crate::db::Backend::Postgres {
            env.db.write_blocking(|conn| -> Result<(), ImportError> {
                diesel::sql_query(
                    "ANALYZE comments, import_items, posts, old_addresses, post_tags, tags",
                )
                .execute(conn)?;
                Ok(())
            })?;
        }
        Ok(value)
    }

    fn flush_counts(&mut self, conn: &mut DbConn) -> Result<(), ImportError> {
        let by_status: Vec<(CommentStatus, i32)> = self
            .by_status
            .drain()
            .filter_map(|(s, n)| CommentStatus::parse(s).map(|s| (s, n)))
            .collect();
        let by_post: Vec<(PostId, i32)> = self.approved_by_post.drain().collect();
        comment_queries::add_to_counts(conn, &by_status, &by_post)?;
        Ok(())
    }

    /// An id for something a dry run pretends to insert.
    pub fn fake_id(&mut self) -> i32 {
        self.fake_id -= 1;
        self.fake_id
    }

    /// A new comment's id: on SQLite the next after the largest (this transaction holds the
    /// write lock), on PostgreSQL from the table's own sequence, taken a thousand at a time.
    fn new_comment_id(&mut self, conn: &mut DbConn) -> Result<i32, ImportError> {
        use crate::db::schema::comments;
        match conn {
            DbConn::Sqlite(_) => {
                let next = match self.next_id {
                    Some(next) => next,
                    None => {
                        let max: Option<i32> = comments::table
                            .select(diesel::dsl::max(comments::id))
                            .first(conn)?;
                        max.unwrap_or(0) + 1
                    }
                };
                self.next_id = Some(next + 1);
                Ok(next)
            }
            DbConn::Postgresql(pg) => {
                if self.id_pool.is_empty() {
                    let ids: Vec<NextId> = diesel::sql_query(
                        "SELECT nextval(pg_get_serial_sequence('comments', 'id')) AS id \
                         FROM generate_series(1, 1000)",
                    )
                    .load(pg)?;
                    self.id_pool = ids.into_iter().rev().map(|r| r.id as i32).collect();
                }
                self.id_pool.pop().ok_or_else(|| {
                    ImportError::Unreadable("the comment id sequence gave nothing".into())
                })
            }
        }
    }

    /// Writes the waiting comments and the identities of everything waiting, many rows per
    /// statement.
    fn flush_pending(&mut self, conn: &mut DbConn) -> Result<(), ImportError> {
        if self.pending.is_empty() && self.pending_items.is_empty() {
            return Ok(());
        }
        let rows = std::mem::take(&mut self.pending);
        let others = std::mem::take(&mut self.pending_items);
        self.batch_ids.extend(rows.iter().map(|row| row.id));
        let source = self.source.as_str();
        let items: Vec<ItemRow<'_>> = rows
            .iter()
            .map(|row| ItemRow {
                source,
                kind: ItemKind::Comment.as_str(),
                source_id: row.source_id.as_str(),
                target_id: row.id,
            })
            .chain(others.iter().map(|(kind, source_id, target_id)| ItemRow {
                source,
                kind: kind.as_str(),
                source_id: source_id.as_str(),
                target_id: *target_id,
            }))
            .collect();
        match conn {
            DbConn::Sqlite(c) => {
                insert_sqlite_rows!(c, crate::db::schema::comments::table, rows);
                // (Borrowed rows cannot take the kept statement: its key needs owned types.)
                for chunk in items.chunks(ROWS_PER_INSERT) {
                    diesel::insert_into(import_items::table)
                        .values(chunk)
                        .execute(c)?;
                }
            }
            // COPY: the rows in one statement each, in PostgreSQL's binary format.
            DbConn::Postgresql(c) => {
                if !rows.is_empty() {
                    diesel::copy_from(crate::db::schema::comments::table)
                        .from_insertable(rows.as_slice())
                        .execute(c)?;
                }
                diesel::copy_from(import_items::table)
                    .from_insertable(items.as_slice())
                    .execute(c)?;
            }
        }
        drop(items);
        self.spent.push(Box::new(rows));
        Ok(())
    }

    /// Keeps `memory` with the batch's spent rows.
    pub fn spend(&mut self, memory: Spent) {
        self.spent.push(memory);
    }

    /// The rows the batch has written, to be dropped by whoever can best afford it (see
    /// [`Spent`]).
    pub fn take_spent(&mut self) -> Vec<Spent> {
        std::mem::take(&mut self.spent)
    }

    /// Writes the old addresses the batch made: each one that is not taken yet (the first of
    /// two alike in the batch), counted in the report.
    fn flush_addresses(&mut self, conn: &mut DbConn) -> Result<(), ImportError> {
        if self.pending_addresses.is_empty() {
            return Ok(());
        }
        let addresses = std::mem::take(&mut self.pending_addresses);
        let rows: Vec<_> = addresses
            .iter()
            .map(|(address, post_id, target)| {
                (
                    old_addresses::address.eq(address),
                    old_addresses::post_id.eq(*post_id),
                    old_addresses::target.eq(target),
                )
            })
            .collect();
        let mut added = 0;
        for chunk in rows.chunks(ROWS_PER_INSERT) {
            added += match conn {
                DbConn::Sqlite(c) => diesel::insert_into(old_addresses::table)
                    .values(chunk)
                    .on_conflict_do_nothing()
                    .execute(c)?,
                DbConn::Postgresql(c) => diesel::insert_into(old_addresses::table)
                    .values(chunk)
                    .on_conflict_do_nothing()
                    .execute(c)?,
            };
        }
        self.report.redirects += added as u64;
        Ok(())
    }

    /// What an earlier run made of the source item `source_id`.
    pub fn lookup(
        &mut self,
        conn: &mut DbConn,
        kind: ItemKind,
        source_id: &str,
    ) -> Result<Option<i32>, ImportError> {
        self.flush_pending(conn)?;
        Ok(import_items::table
            .filter(import_items::source.eq(&self.source))
            .filter(import_items::kind.eq(kind.as_str()))
            .filter(import_items::source_id.eq(source_id))
            .select(import_items::target_id)
            .first(conn)
            .optional()?)
    }

    /// `lookup` for many items at once.
    pub fn lookup_many(
        &mut self,
        conn: &mut DbConn,
        kind: ItemKind,
        source_ids: &[String],
    ) -> Result<HashMap<String, i32>, ImportError> {
        self.flush_pending(conn)?;
        let mut found = HashMap::new();
        for chunk in source_ids.chunks(ROWS_PER_COPY) {
            let rows: Vec<(String, i32)> = import_items::table
                .filter(import_items::source.eq(&self.source))
                .filter(import_items::kind.eq(kind.as_str()))
                .filter(import_items::source_id.eq_any(chunk))
                .select((import_items::source_id, import_items::target_id))
                .load(conn)?;
            found.extend(rows);
        }
        Ok(found)
    }

    /// Remembers that the source item `source_id` became `target_id`.
    pub fn remember(
        &mut self,
        conn: &mut DbConn,
        kind: ItemKind,
        source_id: &str,
        target_id: i32,
    ) -> Result<(), ImportError> {
        if self.dry_run {
            return Ok(());
        }
        diesel::insert_into(import_items::table)
            .values((
                import_items::source.eq(&self.source),
                import_items::kind.eq(kind.as_str()),
                import_items::source_id.eq(source_id),
                import_items::target_id.eq(target_id),
            ))
            .execute(conn)?;
        Ok(())
    }

    /// `remember`, written with the batch's comments (a lookup writes it first).
    pub fn remember_later(&mut self, kind: ItemKind, source_id: &str, target_id: i32) {
        if !self.dry_run {
            self.pending_items
                .push((kind, source_id.to_string(), target_id));
        }
    }

    /// Stores one comment (and remembers it), counting it for the report.
    pub fn insert_comment(
        &mut self,
        conn: &mut DbConn,
        place: Place,
        c: &ImportedComment<'_>,
    ) -> Result<CommentId, ImportError> {
        let prepared = self.rules.prepare(c);
        self.insert_prepared(conn, place, prepared)
    }

    /// Stores a comment put through the rules already (and remembers it), counting it for the
    /// report.
    pub fn insert_prepared(
        &mut self,
        conn: &mut DbConn,
        place: Place,
        c: PreparedComment,
    ) -> Result<CommentId, ImportError> {
        if c.over_limits {
            self.report.over_limits += 1;
        }
        self.report.comments.imported += 1;
        *self.by_status.entry(c.status.as_str()).or_default() += 1;
        if c.status == CommentStatus::Approved {
            *self.approved_by_post.entry(place.post_id).or_default() += 1;
        }
        if self.dry_run {
            return Ok(CommentId(self.fake_id()));
        }
        let id = self.new_comment_id(conn)?;
        self.pending.push(CommentRow {
            id,
            post_id: place.post_id.0,
            parent_id: place.parent_id.map(|p| p.0),
            user_id: place.user_id.map(|u| u.0),
            author_name: c.author_name,
            author_email: c.author_email,
            author_url: c.author_url,
            body: c.body,
            body_html: c.body_html,
            format: c.format,
            status: c.status,
            held_reason: c.held_reason,
            ip: c.ip,
            ip_network: c.ip_network,
            user_agent: String::new(),
            avatar_seed: c.avatar_seed,
            notify: false,
            created_at: c.created_at,
            updated_at: c.updated_at,
            source_id: c.source_id,
        });
        let flush_at = match conn {
            DbConn::Sqlite(_) => ROWS_PER_INSERT,
            DbConn::Postgresql(_) => ROWS_PER_COPY,
        };
        if self.pending.len() >= flush_at {
            self.flush_pending(conn)?;
        }
        Ok(CommentId(id))
    }

    /// Makes `address` (see [`super::redirects::address_key`]) answer 301: to a post's current
    /// address, or to `target`. An address already taken is left as it is. Written at the end
    /// of the batch, all in a few statements (a dry run only looks).
    pub fn add_address(
        &mut self,
        conn: &mut DbConn,
        address: &str,
        post_id: Option<PostId>,
        target: &str,
    ) -> Result<(), ImportError> {
        if !self.dry_run {
            self.pending_addresses.push((
                address.to_string(),
                post_id.map(|id| id.0),
                target.to_string(),
            ));
            return Ok(());
        }
        let taken: Option<String> = old_addresses::table
            .find(address)
            .select(old_addresses::address)
            .first(conn)
            .optional()?;
        if taken.is_none() {
            self.report.redirects += 1;
        }
        Ok(())
    }
}

/// A commenter's website as the form would keep it: http(s) only; a bare `example.com` gets
/// `http://`; anything else (another scheme, spaces) is dropped.
pub fn website(text: &str) -> Option<String> {
    let text = text.trim();
    if text.is_empty() || text.chars().any(char::is_whitespace) {
        return None;
    }
    let lower = text.to_ascii_lowercase();
    if lower.starts_with("http://") || lower.starts_with("https://") {
        return Some(text.to_string());
    }
    if lower.contains(':') || !lower.contains('.') {
        return None;
    }
    Some(format!("http://{text}"))
}

/// A date as exports write it: `2012-01-06 10:47:00` (WordPress), RFC 3339 (Disqus).
pub fn parse_date(text: &str) -> Option<NaiveDateTime> {
    let text = text.trim();
    if text.is_empty() || text.starts_with("0000-00-00") {
        return None;
    }
    if let Ok(dt) = NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S") {
        return Some(dt);
    }
    chrono::DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|dt| dt.naive_utc())
        .or_else(|| NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S").ok())
}

/// Attaches a reply whose parent was stored after it (Disqus lists comments in any order).
pub fn set_parent(
    conn: &mut DbConn,
    child: CommentId,
    parent: CommentId,
) -> Result<(), ImportError> {
    use crate::db::schema::comments;
    diesel::update(comments::table.find(child))
        .set(comments::parent_id.eq(Some(parent)))
        .execute(conn)?;
    Ok(())
}

/// The post a comment thread of a static site or another comment service belongs to, from its
/// address: after `--map` prefixes are applied, the exact lectern path (`/posts/{slug}`,
/// `/pages/{slug}`), then an old address (an imported permalink or a renamed post's slug),
/// then the address's final segment as a post's slug (`/blog/2020/fascia/` → `fascia`).
pub fn match_thread(
    conn: &mut DbConn,
    url: &str,
    maps: &[(String, String)],
) -> Result<Option<PostId>, ImportError> {
    use crate::db::schema::{post_slugs, posts};
    let Some(mut path) = super::redirects::address_key(url) else {
        return Ok(None);
    };
    for (old, new) in maps {
        let old = old.trim_end_matches('/');
        if let Some(rest) = path.strip_prefix(old)
            && (rest.is_empty() || rest.starts_with('/'))
        {
            path = format!("{}{rest}", new.trim_end_matches('/'));
            break;
        }
    }
    let by_slug = |conn: &mut DbConn, slug: &str| -> Result<Option<PostId>, ImportError> {
        Ok(posts::table
            .filter(posts::slug.eq(slug))
            .select(posts::id)
            .first::<PostId>(conn)
            .optional()?)
    };
    for prefix in ["/posts/", "/pages/"] {
        if let Some(slug) = path.strip_prefix(prefix)
            && !slug.contains('/')
            && let Some(id) = by_slug(conn, slug)?
        {
            return Ok(Some(id));
        }
    }
    let old: Option<Option<i32>> = old_addresses::table
        .find(&path)
        .select(old_addresses::post_id)
        .first(conn)
        .optional()?;
    if let Some(Some(id)) = old {
        return Ok(Some(PostId(id)));
    }
    let last = path.rsplit('/').find(|s| !s.is_empty()).unwrap_or_default();
    let slug = last.trim_end_matches(".html").trim_end_matches(".htm");
    if slug.is_empty() {
        return Ok(None);
    }
    if let Some(id) = by_slug(conn, slug)? {
        return Ok(Some(id));
    }
    let renamed: Option<i32> = post_slugs::table
        .find(slug)
        .select(post_slugs::post_id)
        .first(conn)
        .optional()?;
    Ok(renamed.map(PostId))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn websites_are_kept_only_as_http_or_https() {
        assert_eq!(
            website("example.com").as_deref(),
            Some("http://example.com")
        );
        assert_eq!(
            website(" https://Example.com/x ").as_deref(),
            Some("https://Example.com/x")
        );
        assert_eq!(website("javascript:alert(1)"), None);
        assert_eq!(website("not a site"), None);
        assert_eq!(website(""), None);
    }

    #[test]
    fn export_dates_parse() {
        assert_eq!(
            parse_date("2012-01-06 10:47:00").unwrap().to_string(),
            "2012-01-06 10:47:00"
        );
        assert_eq!(
            parse_date("2013-02-03T04:05:06Z").unwrap().to_string(),
            "2013-02-03 04:05:06"
        );
        assert_eq!(parse_date("0000-00-00 00:00:00"), None);
    }
}
