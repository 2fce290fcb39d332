//! Reading an archive into a database: `lectern import lectern` and `lectern restore`.
//!
//! Into an empty database (or one that holds only the untouched welcome post of a first start)
//! every row keeps its id, in one transaction: a failure anywhere leaves nothing. Unsent mail
//! comes back `held`. The search index, the comment counts and PostgreSQL's id sequences are
//! rebuilt at the end, and each post's thread version set back to the archived one, so pages
//! render byte for byte as before.
//!
//! With `--merge`, into a site that has content: rows get new ids and each is matched first by
//! what an earlier merge of the same site remembered (`import_items`, by all three of source,
//! kind and source id), then by its natural identity (a user's email, a tag's or post's slug, a
//! comment's post, time and email, a block's kind and value, a subscription's address, a
//! message's id); a matched row is left as it is, so running it again changes nothing.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use diesel::prelude::*;

use super::progress::Progress;
use super::tables;
use super::{ArchiveError, Header, Record, RecordReader};
use crate::db::schema::{
    blocks, comments, import_items, media, media_chunks, media_variants, moderation_log,
    notify_addresses, old_addresses, outbox, post_slugs, post_tags, posts, settings, tags,
    used_tokens, users,
};
use crate::db::{Db, DbConn, DbError};

/// Rows per INSERT statement (the widest record, a comment, has 24 columns).
const ROWS_PER_INSERT: usize = 400;

#[derive(Debug, Clone, Copy, Default)]
pub struct RestoreOptions {
    /// Into a database that already holds a site, matching by identity.
    pub merge: bool,
}

/// What a restore did.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    /// Records of each type written.
    pub written: BTreeMap<String, u64>,
    /// Records of each type found already there (`--merge`).
    pub already: BTreeMap<String, u64>,
    /// Mail held until an admin releases it.
    pub held_mail: u64,
    /// Whether the archive carried password hashes and the secret key.
    pub secrets: bool,
    /// The untouched welcome post of a first start, removed to make room.
    pub removed_welcome: bool,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "restored: {}", super::describe_counts(&self.written))?;
        if !self.already.is_empty() {
            writeln!(
                f,
                "already there (left as they are): {}",
                super::describe_counts(&self.already)
            )?;
        }
        if self.removed_welcome {
            writeln!(f, "the welcome post of the new database was removed first")?;
        }
        if self.held_mail > 0 {
            writeln!(
                f,
                "{} unsent message(s) held: release them from /admin/mail once you know the old site did not send them",
                self.held_mail
            )?;
        }
        if !self.secrets {
            writeln!(
                f,
                "the archive has no secrets: staff set a password with `lectern user passwd --email …` (or the reset link), and links in old emails no longer work"
            )?;
        }
        Ok(())
    }
}

/// What a site being merged into knows of the archive's ids.
#[derive(Default)]
struct Maps {
    source: String,
    users: HashMap<i32, i32>,
    /// Pictures and variants added by this merge (a picture already there keeps its own).
    media: HashMap<i32, i32>,
    variants: HashMap<i32, i32>,
    tags: HashMap<i32, i32>,
    posts: HashMap<i32, i32>,
    comments: HashMap<i32, i32>,
    /// Approved comments added per post, and comments added per status (maintained counts).
    approved_by_post: HashMap<i32, i32>,
    by_status: HashMap<String, i32>,
}

/// Writes records into one open write transaction.
pub struct Restorer {
    header: Header,
    merge: Option<Maps>,
    /// Records of one type waiting for a many-row INSERT.
    pending: Vec<Record>,
    /// Comments whose parent comes later in the archive: parent set at the end.
    late_parents: Vec<(i32, i32)>,
    thread_versions: Vec<(i32, i64)>,
    summary: Summary,
    records: u64,
}

impl Restorer {
    /// Checks the target and makes it ready: refuses a database that holds a site (unless
    /// merging), removes the untouched welcome post of a first start.
    pub fn begin(
        conn: &mut DbConn,
        header: Header,
        options: RestoreOptions,
    ) -> Result<Restorer, ArchiveError> {
        let mut summary = Summary {
            secrets: header.secrets,
            ..Summary::default()
        };
        let merge = if options.merge {
            Some(Maps {
                source: format!("lectern:{}", header.site),
                ..Maps::default()
            })
        } else {
            match occupancy(conn)? {
                Occupancy::Empty => {}
                Occupancy::Welcome => {
                    clear_welcome(conn)?;
                    summary.removed_welcome = true;
                }
                Occupancy::Site(what) => {
                    return Err(ArchiveError::NotEmpty(format!(
                        "the database is not empty ({what}); restore into an empty database, or add --merge to bring the archive into this site"
                    )));
                }
            }
            None
        };
        Ok(Restorer {
            header,
            merge,
            pending: Vec::new(),
            late_parents: Vec::new(),
            thread_versions: Vec::new(),
            summary,
            records: 0,
        })
    }

    pub fn records(&self) -> u64 {
        self.records
    }

    pub fn accept(&mut self, conn: &mut DbConn, record: Record) -> Result<(), ArchiveError> {
        self.records += 1;
        if self.merge.is_some() {
            return self.merge_one(conn, record);
        }
        let record = match record {
            Record::Header(_) | Record::Trailer(_) => return Ok(()),
            Record::Setting(s) => {
                crate::site::put(conn, &s.name, &s.value)?;
                self.count_written("setting");
                return Ok(());
            }
            Record::Post(mut p) => {
                self.thread_versions.push((p.id, p.thread_version));
                // The comments' triggers move it; set back at the end.
                p.thread_version = 0;
                Record::Post(p)
            }
            Record::Comment(mut c) => {
                if let Some(parent) = c.parent_id
                    && parent >= c.id
                {
                    self.late_parents.push((c.id, parent));
                    c.parent_id = None;
                }
                Record::Comment(c)
            }
            Record::Mail(mut m) => {
                if m.status == "queued" || m.status == "sending" || m.status == "held" {
                    m.status = "held".into();
                    self.summary.held_mail += 1;
                }
                m.locked_until = None;
                m.lease_token = None;
                Record::Mail(m)
            }
            other => other,
        };
        if let Some(first) = self.pending.first()
            && first.kind() != record.kind()
        {
            self.flush(conn)?;
        }
        // A picture's pieces are up to 256 KiB each: a few per statement.
        let limit = if matches!(record, Record::MediaChunk(_)) {
            4
        } else {
            ROWS_PER_INSERT
        };
        self.pending.push(record);
        if self.pending.len() >= limit {
            self.flush(conn)?;
        }
        Ok(())
    }

    fn count_written(&mut self, kind: &str) {
        *self.summary.written.entry(kind.to_string()).or_default() += 1;
    }

    fn count_already(&mut self, kind: &str) {
        *self.summary.already.entry(kind.to_string()).or_default() += 1;
    }

    /// Writes the waiting records of one type, many rows per statement.
    fn flush(&mut self, conn: &mut DbConn) -> Result<(), ArchiveError> {
        let Some(first) = self.pending.first() else {
            return Ok(());
        };
        let kind = first.kind();
        let records = std::mem::take(&mut self.pending);
        let n = records.len() as u64;
        macro_rules! insert_all {
            ($variant:ident, $table:ident) => {{
                let rows: Vec<_> = records
                    .into_iter()
                    .filter_map(|r| match r {
                        Record::$variant(row) => Some(row),
                        _ => None,
                    })
                    .collect();
                match conn {
                    DbConn::Sqlite(c) => {
                        diesel::insert_into($table::table)
                            .values(&rows)
                            .execute(c)?;
                    }
                    DbConn::Postgresql(c) => {
                        diesel::insert_into($table::table)
                            .values(&rows)
                            .execute(c)?;
                    }
                }
            }};
        }
        match kind {
            "user" => insert_all!(User, users),
            "media" => insert_all!(Media, media),
            "media_variant" => insert_all!(MediaVariant, media_variants),
            "media_chunk" => insert_all!(MediaChunk, media_chunks),
            "tag" => insert_all!(Tag, tags),
            "post" => insert_all!(Post, posts),
            "post_tag" => insert_all!(PostTag, post_tags),
            "redirect" => insert_all!(Redirect, post_slugs),
            "old_address" => insert_all!(OldAddress, old_addresses),
            "comment" => insert_all!(Comment, comments),
            "block" => insert_all!(Block, blocks),
            "subscription" => insert_all!(Subscription, notify_addresses),
            "mail" => insert_all!(Mail, outbox),
            "log" => insert_all!(Log, moderation_log),
            "used_token" => insert_all!(UsedToken, used_tokens),
            "import_item" => insert_all!(ImportItem, import_items),
            _ => {}
        }
        *self.summary.written.entry(kind.to_string()).or_default() += n;
        Ok(())
    }

    /// Writes what is still waiting and rebuilds what is derived from the rows.
    pub fn finish(mut self, conn: &mut DbConn) -> Result<Summary, ArchiveError> {
        self.flush(conn)?;
        if let Some(maps) = self.merge.take() {
            for (status, n) in &maps.by_status {
                crate::comments::queries::adjust_status_count(conn, status, *n)?;
            }
            for (post, n) in &maps.approved_by_post {
                crate::comments::queries::adjust_approved_count(
                    conn,
                    crate::db::ids::PostId(*post),
                    *n,
                )?;
            }
            for post in maps.posts.values() {
                crate::posts::search::reindex(conn, crate::db::ids::PostId(*post))?;
            }
            reset_sequences(conn)?;
            return Ok(self.summary);
        }
        for (id, parent) in std::mem::take(&mut self.late_parents) {
            diesel::update(comments::table.find(id))
                .set(comments::parent_id.eq(Some(parent)))
                .execute(conn)?;
        }
        for (id, version) in std::mem::take(&mut self.thread_versions) {
            diesel::update(posts::table.find(id))
                .set(posts::thread_version.eq(version))
                .execute(conn)?;
        }
        recount_statuses(conn)?;
        let ids: Vec<i32> = posts::table.select(posts::id).load(conn)?;
        for id in ids {
            crate::posts::search::reindex(conn, crate::db::ids::PostId(id))?;
        }
        reset_sequences(conn)?;
        crate::site::put(conn, "archive_restored_from", &self.header.site)?;
        Ok(self.summary)
    }
}

/// What the target database holds.
enum Occupancy {
    Empty,
    /// Only what a first start wrote: the welcome post, its comment, its placeholder author.
    Welcome,
    Site(String),
}

fn occupancy(conn: &mut DbConn) -> Result<Occupancy, ArchiveError> {
    let post_count: i64 = posts::table.count().get_result(conn)?;
    let comment_count: i64 = comments::table.count().get_result(conn)?;
    let staff: i64 = users::table
        .filter(users::disabled.eq(false))
        .filter(users::password_hash.ne(""))
        .filter(users::password_hash.ne("!"))
        .count()
        .get_result(conn)?;
    if post_count == 0 && comment_count == 0 && staff == 0 {
        let user_count: i64 = users::table.count().get_result(conn)?;
        return Ok(if user_count == 0 {
            Occupancy::Empty
        } else {
            Occupancy::Welcome
        });
    }
    let other_posts: i64 = posts::table
        .filter(posts::slug.ne(crate::site::welcome::WELCOME_SLUG))
        .count()
        .get_result(conn)?;
    if other_posts == 0 && comment_count <= 1 && staff == 0 {
        return Ok(Occupancy::Welcome);
    }
    Ok(Occupancy::Site(format!(
        "{post_count} posts and pages, {comment_count} comments, {staff} staff accounts"
    )))
}

fn clear_welcome(conn: &mut DbConn) -> Result<(), ArchiveError> {
    diesel::delete(comments::table).execute(conn)?;
    diesel::delete(posts::table).execute(conn)?;
    diesel::delete(tags::table).execute(conn)?;
    diesel::delete(moderation_log::table).execute(conn)?;
    diesel::delete(users::table).execute(conn)?;
    diesel::delete(settings::table.filter(settings::name.eq("welcome_published"))).execute(conn)?;
    Ok(())
}

/// `comment_counts` from the comments themselves.
fn recount_statuses(conn: &mut DbConn) -> Result<(), ArchiveError> {
    diesel::sql_query(
        "UPDATE comment_counts SET total = \
         (SELECT COUNT(*) FROM comments WHERE comments.status = comment_counts.status)",
    )
    .execute(conn)?;
    Ok(())
}

/// PostgreSQL's identity sequences continue after the largest id written explicitly.
fn reset_sequences(conn: &mut DbConn) -> Result<(), ArchiveError> {
    let DbConn::Postgresql(pg) = conn else {
        return Ok(());
    };
    for table in [
        "users",
        "media",
        "media_variants",
        "posts",
        "tags",
        "comments",
        "blocks",
        "outbox",
        "moderation_log",
    ] {
        diesel::sql_query(format!(
            "SELECT setval(pg_get_serial_sequence('{table}', 'id'), \
             COALESCE((SELECT MAX(id) FROM {table}), 0) + 1, false)"
        ))
        .execute(pg)?;
    }
    Ok(())
}

/// One merged row: `Some(id)` of the row it became or matched.
impl Restorer {
    fn remembered(
        &self,
        conn: &mut DbConn,
        kind: &str,
        source_id: i32,
    ) -> Result<Option<i32>, ArchiveError> {
        let Some(maps) = &self.merge else {
            return Ok(None);
        };
        Ok(import_items::table
            .filter(import_items::source.eq(&maps.source))
            .filter(import_items::kind.eq(kind))
            .filter(import_items::source_id.eq(source_id.to_string()))
            .select(import_items::target_id)
            .first(conn)
            .optional()?)
    }

    fn remember(
        &self,
        conn: &mut DbConn,
        kind: &str,
        source_id: i32,
        target_id: i32,
    ) -> Result<(), ArchiveError> {
        let Some(maps) = &self.merge else {
            return Ok(());
        };
        diesel::insert_into(import_items::table)
            .values((
                import_items::source.eq(&maps.source),
                import_items::kind.eq(kind),
                import_items::source_id.eq(source_id.to_string()),
                import_items::target_id.eq(target_id),
            ))
            .execute(conn)?;
        Ok(())
    }

    fn maps(&mut self) -> Result<&mut Maps, ArchiveError> {
        self.merge
            .as_mut()
            .ok_or_else(|| ArchiveError::Io("not merging".into()))
    }

    fn merge_one(&mut self, conn: &mut DbConn, record: Record) -> Result<(), ArchiveError> {
        let kind = record.kind();
        let added = match record {
            Record::Header(_) | Record::Trailer(_) => return Ok(()),
            // The site merged into keeps its own settings, log and import memory.
            Record::Setting(_) | Record::Log(_) | Record::ImportItem(_) => false,
            Record::User(u) => {
                let found = match self.remembered(conn, "user", u.id)? {
                    Some(id) => Some(id),
                    None => users::table
                        .filter(users::email.eq(&u.email))
                        .select(users::id)
                        .first(conn)
                        .optional()?,
                };
                let (id, added) = match found {
                    Some(id) => (id, false),
                    None => {
                        let slug = crate::users::unused_slug(conn, &u.display_name)?;
                        let id: i32 = diesel::insert_into(users::table)
                            .values((
                                users::email.eq(&u.email),
                                users::display_name.eq(&u.display_name),
                                users::slug.eq(&slug),
                                users::bio.eq(&u.bio),
                                users::role.eq(&u.role),
                                // Another site's staff arrive disabled, without a
                                // password: an admin here enables whom they trust.
                                users::password_hash.eq(""),
                                users::disabled.eq(true),
                                users::created_at.eq(u.created_at),
                                users::updated_at.eq(u.updated_at),
                                users::avatar_seed.eq(u.avatar_seed),
                            ))
                            .returning(users::id)
                            .get_result(conn)?;
                        self.remember(conn, "user", u.id, id)?;
                        (id, true)
                    }
                };
                self.maps()?.users.insert(u.id, id);
                added
            }
            Record::Media(m) => {
                let found: Option<i32> = media::table
                    .filter(media::sha256.eq(&m.sha256))
                    .select(media::id)
                    .first(conn)
                    .optional()?;
                match found {
                    Some(_) => false,
                    None => {
                        let by = m.uploaded_by.and_then(|u| {
                            self.merge
                                .as_ref()
                                .and_then(|maps| maps.users.get(&u).copied())
                        });
                        let id: i32 = diesel::insert_into(media::table)
                            .values((
                                media::sha256.eq(&m.sha256),
                                media::upload_sha256.eq(&m.upload_sha256),
                                media::format.eq(&m.format),
                                media::file_name.eq(&m.file_name),
                                media::alt.eq(&m.alt),
                                media::width.eq(m.width),
                                media::height.eq(m.height),
                                media::byte_size.eq(m.byte_size),
                                media::uploaded_by.eq(by),
                                media::created_at.eq(m.created_at),
                            ))
                            .returning(media::id)
                            .get_result(conn)?;
                        self.maps()?.media.insert(m.id, id);
                        true
                    }
                }
            }
            Record::MediaVariant(v) => match self.maps()?.media.get(&v.media_id).copied() {
                Some(media_id) => {
                    let id: i32 = diesel::insert_into(media_variants::table)
                        .values((
                            media_variants::media_id.eq(media_id),
                            media_variants::width.eq(v.width),
                            media_variants::height.eq(v.height),
                            media_variants::format.eq(&v.format),
                            media_variants::byte_size.eq(v.byte_size),
                        ))
                        .returning(media_variants::id)
                        .get_result(conn)?;
                    self.maps()?.variants.insert(v.id, id);
                    true
                }
                None => false,
            },
            Record::MediaChunk(c) => match self.maps()?.variants.get(&c.variant_id).copied() {
                Some(variant_id) => {
                    diesel::insert_into(media_chunks::table)
                        .values((
                            media_chunks::variant_id.eq(variant_id),
                            media_chunks::seq.eq(c.seq),
                            media_chunks::data.eq(&c.data),
                        ))
                        .execute(conn)?;
                    true
                }
                None => false,
            },
            Record::Tag(t) => {
                let found: Option<i32> = tags::table
                    .filter(tags::slug.eq(&t.slug))
                    .select(tags::id)
                    .first(conn)
                    .optional()?;
                let (id, added) = match found {
                    Some(id) => (id, false),
                    None => (
                        diesel::insert_into(tags::table)
                            .values((tags::name.eq(&t.name), tags::slug.eq(&t.slug)))
                            .returning(tags::id)
                            .get_result(conn)?,
                        true,
                    ),
                };
                self.maps()?.tags.insert(t.id, id);
                added
            }
            Record::Post(p) => {
                let found = match self.remembered(conn, "post", p.id)? {
                    Some(id) => Some(id),
                    None => posts::table
                        .filter(posts::slug.eq(&p.slug))
                        .select(posts::id)
                        .first(conn)
                        .optional()?,
                };
                let (id, added) = match found {
                    Some(id) => (id, false),
                    None => {
                        let author =
                            self.maps()?
                                .users
                                .get(&p.author_id)
                                .copied()
                                .ok_or_else(|| {
                                    ArchiveError::Refused(format!(
                                        "post {} names no archived author",
                                        p.id
                                    ))
                                })?;
                        let id: i32 = diesel::insert_into(posts::table)
                            .values((
                                posts::slug.eq(&p.slug),
                                posts::title.eq(&p.title),
                                posts::body_markdown.eq(&p.body_markdown),
                                posts::body_html.eq(&p.body_html),
                                posts::excerpt.eq(&p.excerpt),
                                posts::author_id.eq(author),
                                posts::kind.eq(&p.kind),
                                posts::status.eq(&p.status),
                                posts::status_before_trash.eq(&p.status_before_trash),
                                posts::published_at.eq(p.published_at),
                                posts::comments_open.eq(p.comments_open),
                                posts::approved_comment_count.eq(0),
                                posts::created_at.eq(p.created_at),
                                posts::updated_at.eq(p.updated_at),
                                posts::thread_version.eq(0i64),
                            ))
                            .returning(posts::id)
                            .get_result(conn)?;
                        self.remember(conn, "post", p.id, id)?;
                        (id, true)
                    }
                };
                self.maps()?.posts.insert(p.id, id);
                added
            }
            Record::PostTag(pt) => {
                let maps = self.maps()?;
                match (maps.posts.get(&pt.post_id), maps.tags.get(&pt.tag_id)) {
                    (Some(&post), Some(&tag)) => {
                        let there: i64 = post_tags::table
                            .filter(post_tags::post_id.eq(post))
                            .filter(post_tags::tag_id.eq(tag))
                            .count()
                            .get_result(conn)?;
                        if there == 0 {
                            diesel::insert_into(post_tags::table)
                                .values((post_tags::post_id.eq(post), post_tags::tag_id.eq(tag)))
                                .execute(conn)?;
                        }
                        there == 0
                    }
                    _ => false,
                }
            }
            Record::Redirect(r) => {
                let post = self.maps()?.posts.get(&r.post_id).copied();
                let taken = post_slugs::table
                    .find(&r.old_slug)
                    .count()
                    .get_result::<i64>(conn)?
                    > 0
                    || posts::table
                        .filter(posts::slug.eq(&r.old_slug))
                        .count()
                        .get_result::<i64>(conn)?
                        > 0;
                match post {
                    Some(post) if !taken => {
                        diesel::insert_into(post_slugs::table)
                            .values((
                                post_slugs::old_slug.eq(&r.old_slug),
                                post_slugs::post_id.eq(post),
                            ))
                            .execute(conn)?;
                        true
                    }
                    _ => false,
                }
            }
            Record::OldAddress(a) => {
                let post = match a.post_id {
                    Some(p) => match self.maps()?.posts.get(&p) {
                        Some(&p) => Some(p),
                        None => return Ok(()),
                    },
                    None => None,
                };
                let taken: i64 = old_addresses::table
                    .find(&a.address)
                    .count()
                    .get_result(conn)?;
                if taken == 0 {
                    diesel::insert_into(old_addresses::table)
                        .values((
                            old_addresses::address.eq(&a.address),
                            old_addresses::post_id.eq(post),
                            old_addresses::target.eq(&a.target),
                        ))
                        .execute(conn)?;
                }
                taken == 0
            }
            Record::Comment(c) => self.merge_comment(conn, c)?,
            Record::Block(b) => {
                let taken: i64 = blocks::table
                    .filter(blocks::kind.eq(&b.kind))
                    .filter(blocks::value.eq(&b.value))
                    .count()
                    .get_result(conn)?;
                if taken == 0 {
                    let by = b
                        .created_by
                        .and_then(|u| self.merge.as_ref().and_then(|m| m.users.get(&u).copied()));
                    diesel::insert_into(blocks::table)
                        .values((
                            blocks::kind.eq(&b.kind),
                            blocks::value.eq(&b.value),
                            blocks::expires_at.eq(b.expires_at),
                            blocks::created_by.eq(by),
                            blocks::created_at.eq(b.created_at),
                        ))
                        .execute(conn)?;
                }
                taken == 0
            }
            Record::Subscription(s) => {
                let taken: i64 = notify_addresses::table
                    .find(&s.email)
                    .count()
                    .get_result(conn)?;
                if taken == 0 {
                    diesel::insert_into(notify_addresses::table)
                        .values(&s)
                        .execute(conn)?;
                }
                taken == 0
            }
            Record::Mail(m) => {
                let taken: i64 = outbox::table
                    .filter(outbox::message_id.eq(&m.message_id))
                    .count()
                    .get_result(conn)?;
                if taken == 0 {
                    let status = if m.status == "failed" {
                        "failed"
                    } else {
                        "held"
                    };
                    diesel::insert_into(outbox::table)
                        .values((
                            outbox::message_id.eq(&m.message_id),
                            outbox::kind.eq(&m.kind),
                            outbox::to_name.eq(&m.to_name),
                            outbox::to_address.eq(&m.to_address),
                            outbox::subject.eq(&m.subject),
                            outbox::body_text.eq(&m.body_text),
                            outbox::body_html.eq(&m.body_html),
                            outbox::list_unsubscribe.eq(&m.list_unsubscribe),
                            outbox::status.eq(status),
                            outbox::attempts.eq(m.attempts),
                            outbox::next_attempt_at.eq(m.next_attempt_at),
                            outbox::first_deferred_at.eq(m.first_deferred_at),
                            outbox::last_error.eq(&m.last_error),
                            outbox::created_at.eq(m.created_at),
                        ))
                        .execute(conn)?;
                    if status == "held" {
                        self.summary.held_mail += 1;
                    }
                }
                taken == 0
            }
            Record::UsedToken(t) => {
                let taken: i64 = used_tokens::table
                    .find(&t.token_hash)
                    .count()
                    .get_result(conn)?;
                if taken == 0 {
                    diesel::insert_into(used_tokens::table)
                        .values(&t)
                        .execute(conn)?;
                }
                taken == 0
            }
        };
        if added {
            self.count_written(kind);
        } else {
            self.count_already(kind);
        }
        Ok(())
    }

    fn merge_comment(
        &mut self,
        conn: &mut DbConn,
        c: tables::Comment,
    ) -> Result<bool, ArchiveError> {
        let maps = self.maps()?;
        let Some(&post) = maps.posts.get(&c.post_id) else {
            return Err(ArchiveError::Refused(format!(
                "comment {} is on a post the archive does not have",
                c.id
            )));
        };
        let parent = c.parent_id.and_then(|p| maps.comments.get(&p).copied());
        let user = c.user_id.and_then(|u| maps.users.get(&u).copied());
        let found = match self.remembered(conn, "comment", c.id)? {
            Some(id) => Some(id),
            None => comments::table
                .filter(comments::post_id.eq(post))
                .filter(comments::created_at.eq(c.created_at))
                .filter(comments::author_email.eq(&c.author_email))
                .select(comments::id)
                .first(conn)
                .optional()?,
        };
        if let Some(id) = found {
            self.maps()?.comments.insert(c.id, id);
            return Ok(false);
        }
        let id: i32 = diesel::insert_into(comments::table)
            .values((
                comments::post_id.eq(post),
                comments::parent_id.eq(parent),
                comments::user_id.eq(user),
                comments::author_name.eq(&c.author_name),
                comments::author_email.eq(&c.author_email),
                comments::author_url.eq(&c.author_url),
                comments::body.eq(&c.body),
                comments::body_html.eq(&c.body_html),
                comments::status.eq(&c.status),
                comments::status_before.eq(&c.status_before),
                comments::held_reason.eq(&c.held_reason),
                comments::ip.eq(&c.ip),
                comments::ip_network.eq(&c.ip_network),
                comments::user_agent.eq(&c.user_agent),
                comments::avatar_seed.eq(c.avatar_seed),
                comments::notify.eq(c.notify),
                comments::created_at.eq(c.created_at),
                comments::updated_at.eq(c.updated_at),
                comments::deleted_at.eq(c.deleted_at),
                comments::published_notified_at.eq(c.published_notified_at),
                comments::format.eq(&c.format),
                comments::edited_at.eq(c.edited_at),
                comments::previous_body.eq(&c.previous_body),
            ))
            .returning(comments::id)
            .get_result(conn)?;
        self.remember(conn, "comment", c.id, id)?;
        let maps = self.maps()?;
        maps.comments.insert(c.id, id);
        *maps.by_status.entry(c.status.clone()).or_default() += 1;
        if c.status == "approved" {
            *maps.approved_by_post.entry(post).or_default() += 1;
        }
        Ok(true)
    }
}

/// Restores the archive at `path` into `db`: read once to check it all, then written in one
/// transaction.
pub fn restore_file(
    db: &Db,
    path: &Path,
    options: RestoreOptions,
    progress: &mut dyn Progress,
) -> Result<Summary, ArchiveError> {
    super::check_file(path, progress)?;
    restore_checked_file(db, path, options, progress)
}

/// `restore_file` of a file [`super::check_file`] has just read through.
pub fn restore_checked_file(
    db: &Db,
    path: &Path,
    options: RestoreOptions,
    progress: &mut dyn Progress,
) -> Result<Summary, ArchiveError> {
    let mut reader = RecordReader::open(path)?;
    let header = reader.header.clone();
    let mut outcome: Option<Result<Summary, ArchiveError>> = None;
    let result = db.write_blocking(|conn| -> Result<(), DbError> {
        // SQLite: a bigger page cache keeps the growing indexes in memory instead of reading
        // pages back (as imports do); set back afterwards, as the connection is pooled.
        if let DbConn::Sqlite(c) = conn {
            diesel::sql_query("PRAGMA cache_size = -32768").execute(c)?;
        }
        let run = |conn: &mut DbConn| -> Result<Summary, ArchiveError> {
            let mut restorer = Restorer::begin(conn, header, options)?;
            while let Some(record) = reader.next_record()? {
                restorer.accept(conn, record)?;
                if restorer.records().is_multiple_of(4096) {
                    progress.tick(
                        reader.bytes_read(),
                        reader.file_size,
                        "restored",
                        restorer.records(),
                    );
                }
            }
            restorer.finish(conn)
        };
        let ran = run(conn);
        if let DbConn::Sqlite(c) = conn {
            diesel::sql_query("PRAGMA cache_size = -2000").execute(c)?;
        }
        match ran {
            Ok(summary) => {
                outcome = Some(Ok(summary));
                Ok(())
            }
            Err(e) => {
                outcome = Some(Err(e));
                // Any error rolls the whole restore back.
                Err(DbError::Task("restore failed".into()))
            }
        }
    });
    progress.finish();
    match (outcome, result) {
        (Some(Ok(summary)), Ok(())) => Ok(summary),
        (Some(Err(e)), _) => Err(e),
        (_, Err(e)) => Err(e.into()),
        (None, Ok(())) => Err(ArchiveError::Io("the restore did not run".into())),
    }
}
