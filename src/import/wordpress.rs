//! `lectern import wordpress FILE.xml`: a WordPress export (WXR 1.0, 1.1, 1.2), read as a stream.
//! Authors, then each item with its comments, in batches; see the module above for the rules
//! every import keeps.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::Ordering;

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::content::wordpress_body;
use super::redirects::address_key;
use super::store::{
    CommentRules, Ctx, ImportedComment, ItemKind, Place, PreparedComment, Spent, parse_date,
};
use super::xml::{Node, XmlStream};
use super::{Env, ImportError, Options, Progress, Report};
use crate::comments::CommentStatus;
use crate::db::DbConn;
use crate::db::ids::{CommentId, PostId, UserId};
use crate::posts::{NewPost, PostKind, PostStatus, queries as post_queries};
use crate::render::CommentFormat;
use crate::users::{self, NewUser, Role};

/// Items and comments written per transaction.
const BATCH_ITEMS: usize = 200;
const BATCH_COMMENTS: usize = 5000;

#[derive(Debug, Default, Clone)]
pub struct Channel {
    pub version: String,
    pub base_site_url: String,
    pub base_blog_url: String,
    pub link: String,
}

#[derive(Debug, Default, Clone)]
pub struct Author {
    pub id: String,
    pub login: String,
    pub email: String,
    pub display_name: String,
}

#[derive(Debug, Default, Clone)]
pub struct Term {
    /// `category` or `post_tag`.
    pub taxonomy: String,
    pub slug: String,
    pub name: String,
}

#[derive(Debug, Default, Clone)]
pub struct Comment {
    pub id: String,
    pub author: String,
    pub author_email: String,
    pub author_url: String,
    pub author_ip: String,
    pub date: String,
    pub date_gmt: String,
    pub content: String,
    pub approved: String,
    pub comment_type: String,
    pub parent: String,
    pub user_id: String,
    /// The comment through the data rules (by the reading thread), when it was.
    pub prepared: Option<Box<PreparedComment>>,
}

#[derive(Debug, Default, Clone)]
pub struct Item {
    pub title: String,
    pub link: String,
    pub creator: String,
    pub content: String,
    pub excerpt: String,
    pub post_id: String,
    pub post_date: String,
    pub post_date_gmt: String,
    pub comment_status: String,
    pub post_name: String,
    pub status: String,
    pub post_type: String,
    pub post_password: String,
    /// (domain, nicename, name)
    pub categories: Vec<Term>,
    pub comments: Vec<Comment>,
}

pub enum Event {
    Channel(Channel),
    Author(Author),
    Term(Term),
    Item(Box<Item>),
}

/// Reads a WXR file, calling `each` for the channel (once, before the first author, term or
/// item), each author, term and item.
pub fn parse(
    path: &Path,
    each: impl FnMut(Event, &XmlStream) -> Result<(), ImportError>,
) -> Result<(), ImportError> {
    parse_with(path, true, each)
}

/// `parse`, reading items only when `read_items` (the check pass reads every byte of them as
/// closely, but keeps nothing of them).
fn parse_with(
    path: &Path,
    read_items: bool,
    mut each: impl FnMut(Event, &XmlStream) -> Result<(), ImportError>,
) -> Result<(), ImportError> {
    let mut xml = XmlStream::open(path)?;
    let mut channel = Channel::default();
    let mut channel_sent = false;
    let mut saw_rss = false;
    loop {
        match xml.next_node()? {
            Node::Eof => break,
            Node::Start { name, .. } if xml.depth() == 1 => {
                if name != "rss" {
                    return Err(xml.malformed(0, &format!("expected <rss>, found <{name}>")));
                }
                if !xml.declares("wp") {
                    return Err(ImportError::WrongKind(format!(
                        "{}: an RSS feed without WordPress's export namespace; not a WordPress export",
                        path.display()
                    )));
                }
                saw_rss = true;
            }
            Node::Start { name, .. } if xml.depth() == 3 => {
                let is_entry = matches!(
                    name.as_str(),
                    "item" | "wp:author" | "wp:category" | "wp:tag" | "wp:term"
                );
                if is_entry && !channel_sent {
                    channel_sent = true;
                    each(Event::Channel(channel.clone()), &xml)?;
                }
                match name.as_str() {
                    "wp:wxr_version" => channel.version = xml.text_of_current()?.trim().into(),
                    "wp:base_site_url" => {
                        channel.base_site_url = xml.text_of_current()?.trim().into()
                    }
                    "wp:base_blog_url" => {
                        channel.base_blog_url = xml.text_of_current()?.trim().into()
                    }
                    "link" => channel.link = xml.text_of_current()?.trim().into(),
                    "wp:author" => {
                        let author = read_author(&mut xml)?;
                        each(Event::Author(author), &xml)?;
                    }
                    "wp:category" | "wp:tag" | "wp:term" => {
                        if let Some(term) = read_term(&mut xml, &name)? {
                            each(Event::Term(term), &xml)?;
                        }
                    }
                    "item" if read_items => {
                        let item = read_item(&mut xml)?;
                        each(Event::Item(Box::new(item)), &xml)?;
                    }
                    _ => xml.skip_current()?,
                }
            }
            _ => {}
        }
    }
    if !saw_rss {
        return Err(ImportError::Unreadable(format!(
            "{}: the file holds no <rss> element",
            path.display()
        )));
    }
    if !channel_sent {
        each(Event::Channel(channel), &xml)?;
    }
    Ok(())
}

/// Reads the children of the element just started as (name, text) pairs, calling `child` for
/// each; nested elements are passed by name too (their text is their whole text).
fn fields(
    xml: &mut XmlStream,
    mut child: impl FnMut(&str, String, &[(String, String)], &mut XmlStream) -> Result<(), ImportError>,
) -> Result<(), ImportError> {
    let depth = xml.depth();
    loop {
        match xml.next_node()? {
            Node::Start { name, attrs } if xml.depth() == depth + 1 => {
                child(&name, String::new(), &attrs, xml)?;
            }
            Node::End(_) if xml.depth() < depth => return Ok(()),
            Node::Eof => return Ok(()),
            _ => {}
        }
    }
}

fn read_author(xml: &mut XmlStream) -> Result<Author, ImportError> {
    let mut author = Author::default();
    fields(xml, |name, _, _, xml| {
        let slot = match name {
            "wp:author_id" => &mut author.id,
            "wp:author_login" => &mut author.login,
            "wp:author_email" => &mut author.email,
            "wp:author_display_name" => &mut author.display_name,
            _ => return xml.skip_current(),
        };
        *slot = xml.text_of_current()?.trim().to_string();
        Ok(())
    })?;
    Ok(author)
}

fn read_term(xml: &mut XmlStream, element: &str) -> Result<Option<Term>, ImportError> {
    let mut term = Term {
        taxonomy: match element {
            "wp:category" => "category".into(),
            "wp:tag" => "post_tag".into(),
            _ => String::new(),
        },
        ..Term::default()
    };
    fields(xml, |name, _, _, xml| {
        let slot = match name {
            "wp:category_nicename" | "wp:tag_slug" | "wp:term_slug" => &mut term.slug,
            "wp:cat_name" | "wp:tag_name" | "wp:term_name" => &mut term.name,
            "wp:term_taxonomy" => &mut term.taxonomy,
            _ => return xml.skip_current(),
        };
        *slot = xml.text_of_current()?.trim().to_string();
        Ok(())
    })?;
    let known = term.taxonomy == "category" || term.taxonomy == "post_tag";
    Ok((known && !term.slug.is_empty()).then_some(term))
}

fn read_item(xml: &mut XmlStream) -> Result<Item, ImportError> {
    let mut item = Item::default();
    fields(xml, |name, _, attrs, xml| {
        let slot = match name {
            "title" => &mut item.title,
            "link" => &mut item.link,
            "dc:creator" => &mut item.creator,
            "content:encoded" => &mut item.content,
            "excerpt:encoded" => &mut item.excerpt,
            "wp:post_id" => &mut item.post_id,
            "wp:post_date" => &mut item.post_date,
            "wp:post_date_gmt" => &mut item.post_date_gmt,
            "wp:comment_status" => &mut item.comment_status,
            "wp:post_name" => &mut item.post_name,
            "wp:status" => &mut item.status,
            "wp:post_type" => &mut item.post_type,
            "wp:post_password" => &mut item.post_password,
            "category" => {
                let attr = |key: &str| {
                    attrs
                        .iter()
                        .find(|(k, _)| k == key)
                        .map(|(_, v)| v.clone())
                        .unwrap_or_default()
                };
                let name = xml.text_of_current()?.trim().to_string();
                let taxonomy = match attr("domain").as_str() {
                    // WXR 1.0 wrote `tag`; 1.1 and later `post_tag`.
                    "tag" | "post_tag" => "post_tag".to_string(),
                    "" | "category" => "category".to_string(),
                    other => other.to_string(),
                };
                let slug = match attr("nicename") {
                    s if s.is_empty() => crate::text::slugify(&name),
                    s => s,
                };
                item.categories.push(Term {
                    taxonomy,
                    slug,
                    name,
                });
                return Ok(());
            }
            "wp:comment" => {
                let comment = read_comment(xml)?;
                item.comments.push(comment);
                return Ok(());
            }
            _ => return xml.skip_current(),
        };
        *slot = xml.text_of_current()?;
        Ok(())
    })?;
    for field in [
        &mut item.post_id,
        &mut item.post_type,
        &mut item.status,
        &mut item.post_name,
        &mut item.comment_status,
        &mut item.link,
        &mut item.creator,
    ] {
        trim_in_place(field);
    }
    Ok(item)
}

fn read_comment(xml: &mut XmlStream) -> Result<Comment, ImportError> {
    let mut c = Comment::default();
    fields(xml, |name, _, _, xml| {
        let slot = match name {
            "wp:comment_id" => &mut c.id,
            "wp:comment_author" => &mut c.author,
            "wp:comment_author_email" => &mut c.author_email,
            "wp:comment_author_url" => &mut c.author_url,
            "wp:comment_author_IP" => &mut c.author_ip,
            "wp:comment_date" => &mut c.date,
            "wp:comment_date_gmt" => &mut c.date_gmt,
            "wp:comment_content" => &mut c.content,
            "wp:comment_approved" => &mut c.approved,
            "wp:comment_type" => &mut c.comment_type,
            "wp:comment_parent" => &mut c.parent,
            "wp:comment_user_id" => &mut c.user_id,
            _ => return xml.skip_current(),
        };
        *slot = xml.text_of_current()?;
        Ok(())
    })?;
    for field in [
        &mut c.id,
        &mut c.approved,
        &mut c.comment_type,
        &mut c.parent,
        &mut c.user_id,
        &mut c.author,
    ] {
        trim_in_place(field);
    }
    Ok(c)
}

/// `text.trim()`, in place (without a new string for each field of a million comments).
fn trim_in_place(text: &mut String) {
    let end = text.trim_end().len();
    text.truncate(end);
    let start = text.len() - text.trim_start().len();
    if start > 0 {
        text.drain(..start);
    }
}

/// The site's name in `import_items`: its address without scheme or trailing slash, so an
/// export of the same site over http and https is the same source.
fn source_name(channel: &Channel) -> String {
    let base = [
        &channel.base_blog_url,
        &channel.base_site_url,
        &channel.link,
    ]
    .into_iter()
    .find(|s| !s.is_empty())
    .cloned()
    .unwrap_or_default();
    let bare = base
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_ascii_lowercase();
    format!("wordpress:{bare}")
}

struct Import<'e> {
    ctx: Ctx<'e>,
    total_bytes: u64,
    authors: Vec<Author>,
    authors_written: bool,
    /// Author login → user.
    users: HashMap<String, UserId>,
    /// WordPress user id → user (for staff comments).
    users_by_wp_id: HashMap<String, UserId>,
    /// Category and tag slugs (WordPress's) → tag names, for their old addresses.
    terms: BTreeMap<(String, String), String>,
    /// Lectern tags by slug: (id, name), looked up or made once per run.
    tags: HashMap<String, (i32, String)>,
    batch: Vec<Item>,
    batch_comments: usize,
    fallback_author: Option<UserId>,
}

/// Files smaller than this are checked whole before anything is written, so a malformed one
/// changes nothing. A larger one is not read an extra time to be checked (at a million comments
/// that pass was a tenth of the import's CPU): the reading thread's own parse checks it, and a
/// malformed spot stops the run after the whole batches committed before it (see the README).
const CHECKED_BEFORE_WRITING: u64 = 64 << 20;

/// The check pass of a small file (reading every byte, keeping nothing of the items), on a
/// thread of its own while the reading thread prepares the first items; writing waits for it.
struct Check<'scope> {
    running: Option<std::thread::ScopedJoinHandle<'scope, Result<(), ImportError>>>,
}

impl Check<'_> {
    /// Waits for the check to end: the file's error, if it is malformed. Called before each
    /// write transaction (only the first waits).
    fn wait(&mut self) -> Result<(), ImportError> {
        match self.running.take() {
            Some(running) => running
                .join()
                .unwrap_or_else(|_| Err(ImportError::Unreadable("the file check failed".into()))),
            None => Ok(()),
        }
    }
}

/// Imports a WordPress export. One thread reads the file, keeping the items, and puts each
/// comment through the data rules (rendering its HTML); this one writes. A small file is also
/// checked whole by a third before anything is written (see [`CHECKED_BEFORE_WRITING`]). The
/// reader's channel is short, so memory stays bounded by a few items.
pub fn import(
    env: &Env,
    path: &Path,
    options: &Options,
    progress: &mut dyn Progress,
) -> Result<Report, ImportError> {
    let total_bytes = std::fs::metadata(path)
        .map(|m| m.len())
        .map_err(|e| ImportError::Unreadable(format!("{}: {e}", path.display())))?;
    let rules = CommentRules::load(env)?;
    let (sender, receiver) = std::sync::mpsc::sync_channel::<(Event, u64)>(64);
    // Batches written go back to the reader to be freed (see `store::Spent`).
    let (give_back, given_back) = std::sync::mpsc::sync_channel::<Vec<Spent>>(4);
    let mut run = std::thread::scope(|scope| -> Result<Option<Import<'_>>, ImportError> {
        let mut check = Check {
            running: (total_bytes < CHECKED_BEFORE_WRITING)
                .then(|| scope.spawn(move || parse_with(path, false, |_, _| Ok(())))),
        };
        let reader = scope.spawn(move || read_prepared(path, &rules, &sender, &given_back));
        let mut run: Option<Import<'_>> = None;
        let mut written: Result<(), ImportError> = Ok(());
        for (event, done) in receiver.iter() {
            written = match (&mut run, event) {
                (Some(run), event) => {
                    let taken = run.take(event, done, progress, &mut check);
                    let spent = run.ctx.take_spent();
                    if !spent.is_empty() {
                        // A full channel (the reader is waiting on the writer): dropped here.
                        let _ = give_back.try_send(spent);
                    }
                    taken
                }
                (None, Event::Channel(channel)) => check.wait().and_then(|()| {
                    run = Some(Import::start(env, &channel, options, total_bytes)?);
                    Ok(())
                }),
                (None, _) => Err(ImportError::Unreadable(
                    "the export's items came before its channel".into(),
                )),
            };
            if written.is_err() {
                break;
            }
        }
        drop(receiver);
        let read = reader
            .join()
            .unwrap_or_else(|_| Err(ImportError::Unreadable("the file reader failed".into())));
        // The check's error first: it names the first malformed spot, as the reader would.
        let checked = check.wait();
        checked.and(written).and(read)?;
        Ok(run)
    })?;
    let Some(run) = run.as_mut() else {
        return Err(ImportError::Unreadable(format!(
            "{}: the file holds no channel",
            path.display()
        )));
    };
    run.write_authors()?;
    run.flush()?;
    run.write_terms()?;
    progress.tick(run.total_bytes, run.total_bytes, &run.ctx.report);
    run.ctx.finish()?;
    Ok(std::mem::take(&mut run.ctx.report))
}

/// The reading thread: parses the file again, keeping the items, and puts each comment through
/// the data rules on the way, sending the events to the writer with how far the file was read.
fn read_prepared(
    path: &Path,
    rules: &CommentRules<'_>,
    sender: &std::sync::mpsc::SyncSender<(Event, u64)>,
    given_back: &std::sync::mpsc::Receiver<Vec<Spent>>,
) -> Result<(), ImportError> {
    parse(path, |mut event, xml| {
        while let Ok(spent) = given_back.try_recv() {
            drop(spent);
        }
        if let Event::Item(item) = &mut event {
            for comment in &mut item.comments {
                comment.prepared = prepare_comment(rules, comment).map(Box::new);
            }
        }
        let done = xml.bytes_read.load(Ordering::Relaxed);
        // The writer stopped (it failed): stop reading too.
        sender
            .send((event, done))
            .map_err(|_| ImportError::Unreadable("the import stopped".into()))
    })
}

/// A WordPress comment through the data rules; `None` for one of an unknown status (the writer
/// skips it and counts it).
fn prepare_comment(rules: &CommentRules<'_>, c: &Comment) -> Option<PreparedComment> {
    let status = comment_status(&c.approved)?;
    let created_at = parse_date(&c.date_gmt)
        .or_else(|| parse_date(&c.date))
        .unwrap_or(rules.now());
    let body = crate::text::normalize_newlines(&c.content);
    let html = CommentFormat::Html.render(&body).into_string();
    Some(rules.prepare(&ImportedComment {
        source_id: &c.id,
        name: &c.author,
        email: &c.author_email,
        website: &c.author_url,
        body: &body,
        body_html: Some(&html),
        format: CommentFormat::Html,
        status,
        ip: &c.author_ip,
        created_at,
        held_reason: (status == CommentStatus::Pending).then_some("imported"),
    }))
}

impl<'e> Import<'e> {
    /// The writer's start, once the channel is known: the run's source and its report.
    fn start(
        env: &'e Env,
        channel: &Channel,
        options: &Options,
        total_bytes: u64,
    ) -> Result<Import<'e>, ImportError> {
        let mut ctx = Ctx::new(env, source_name(channel), options.dry_run)?;
        ctx.uploads = options.uploads.clone().map(super::uploads::Uploads::new);
        let version = match channel.version.as_str() {
            "" => "WXR".to_string(),
            v => format!("WXR {v}"),
        };
        let site = [
            &channel.base_blog_url,
            &channel.link,
            &channel.base_site_url,
        ]
        .into_iter()
        .find(|s| !s.is_empty())
        .cloned()
        .unwrap_or_else(|| "an unnamed site".into());
        ctx.report.source = format!("WordPress export of {site} ({version})");
        Ok(Import {
            ctx,
            total_bytes,
            authors: Vec::new(),
            authors_written: false,
            users: HashMap::new(),
            users_by_wp_id: HashMap::new(),
            terms: BTreeMap::new(),
            tags: HashMap::new(),
            batch: Vec::new(),
            batch_comments: 0,
            fallback_author: None,
        })
    }

    /// One event from the reading thread.
    fn take(
        &mut self,
        event: Event,
        done: u64,
        progress: &mut dyn Progress,
        check: &mut Check<'_>,
    ) -> Result<(), ImportError> {
        match event {
            Event::Channel(_) => {}
            Event::Author(author) => self.authors.push(author),
            Event::Term(term) => {
                self.terms.insert((term.taxonomy, term.slug), term.name);
            }
            Event::Item(item) => {
                if !self.authors_written {
                    check.wait()?;
                    self.write_authors()?;
                }
                self.batch_comments += item.comments.len();
                self.batch.push(*item);
                if self.batch.len() >= BATCH_ITEMS || self.batch_comments >= BATCH_COMMENTS {
                    check.wait()?;
                    self.flush()?;
                    progress.tick(done, self.total_bytes, &self.ctx.report);
                }
            }
        }
        Ok(())
    }

    /// Matches or creates the export's authors, once, before the first item.
    fn write_authors(&mut self) -> Result<(), ImportError> {
        if self.authors_written {
            return Ok(());
        }
        self.authors_written = true;
        let authors = std::mem::take(&mut self.authors);
        let mut users = HashMap::new();
        let mut by_id = HashMap::new();
        self.ctx.batch(|conn, ctx| {
            for author in &authors {
                let user = author_user(conn, ctx, author)?;
                users.insert(author.login.clone(), user);
                if !author.id.is_empty() {
                    by_id.insert(author.id.clone(), user);
                }
            }
            Ok(())
        })?;
        self.users = users;
        self.users_by_wp_id = by_id;
        Ok(())
    }

    fn flush(&mut self) -> Result<(), ImportError> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let mut items = std::mem::take(&mut self.batch);
        self.batch_comments = 0;
        let (users, users_by_wp_id, fallback, terms, tags) = (
            &mut self.users,
            &self.users_by_wp_id,
            &mut self.fallback_author,
            &mut self.terms,
            &mut self.tags,
        );
        let written = self.ctx.batch(|conn, ctx| {
            let mut batch = Batch::look_up(conn, ctx, &items)?;
            let mut run = RunState {
                users,
                users_by_wp_id,
                fallback,
                terms,
                tags,
            };
            for item in &mut items {
                import_item(conn, ctx, item, &mut run, &mut batch)?;
            }
            batch.write_rows(conn)
        });
        self.ctx.spend(Box::new(items));
        written
    }

    /// Old category and tag pages answer 301 to the tag each became.
    fn write_terms(&mut self) -> Result<(), ImportError> {
        let terms = std::mem::take(&mut self.terms);
        self.ctx.batch(|conn, ctx| {
            for ((taxonomy, slug), name) in &terms {
                let tag = crate::text::slugify(name);
                if tag.is_empty() || is_uncategorized(slug) {
                    continue;
                }
                let old = match taxonomy.as_str() {
                    "category" => format!("/category/{slug}"),
                    _ => format!("/tag/{slug}"),
                };
                if let Some(key) = address_key(&old) {
                    ctx.add_address(conn, &key, None, &format!("/tags/{tag}"))?;
                }
            }
            Ok(())
        })
    }
}

/// What the writer keeps for the whole run, lent to each batch.
struct RunState<'a> {
    /// Author login → user.
    users: &'a mut HashMap<String, UserId>,
    /// WordPress user id → user (for staff comments).
    users_by_wp_id: &'a HashMap<String, UserId>,
    fallback: &'a mut Option<UserId>,
    terms: &'a mut BTreeMap<(String, String), String>,
    /// Lectern tags by slug: (id, name).
    tags: &'a mut HashMap<String, (i32, String)>,
}

/// One batch's lookups, made together at its start (a statement each, not a few per post),
/// and the rows it writes together at its end.
struct Batch {
    /// Source ids of posts and comments already stored (by an earlier run, or this batch).
    known_posts: HashMap<String, i32>,
    known_comments: HashMap<String, i32>,
    /// Slugs looked up for the batch's new posts, and the ones among them taken.
    slugs_checked: HashSet<String>,
    slugs_taken: HashSet<String>,
    /// (post, tag) rows.
    post_tags: Vec<(i32, i32)>,
    /// The new posts' search rows: (post, title, body, tags).
    search_rows: Vec<(i32, String, String, String)>,
}

impl Batch {
    fn look_up(conn: &mut DbConn, ctx: &mut Ctx<'_>, items: &[Item]) -> Result<Batch, ImportError> {
        let post_ids: Vec<String> = items.iter().map(|i| i.post_id.clone()).collect();
        let known_posts = ctx.lookup_many(conn, ItemKind::Post, &post_ids)?;
        let comment_ids: Vec<String> = items
            .iter()
            .flat_map(|i| i.comments.iter().map(|c| c.id.clone()))
            .collect();
        let known_comments = ctx.lookup_many(conn, ItemKind::Comment, &comment_ids)?;
        let slugs_checked: HashSet<String> = items
            .iter()
            .filter(|i| !known_posts.contains_key(&i.post_id))
            .map(base_slug)
            .collect();
        let wanted: Vec<&String> = slugs_checked.iter().collect();
        let slugs_taken = slugs_in_use(conn, &wanted)?;
        Ok(Batch {
            known_posts,
            known_comments,
            slugs_checked,
            slugs_taken,
            post_tags: Vec::new(),
            search_rows: Vec::new(),
        })
    }

    /// Whether `slug` is a post's, or redirects to one.
    fn slug_taken(&self, conn: &mut DbConn, slug: &str) -> Result<bool, ImportError> {
        if self.slugs_checked.contains(slug) {
            return Ok(self.slugs_taken.contains(slug));
        }
        Ok(post_queries::slug_taken(conn, slug, None)?
            || post_queries::slug_redirects_elsewhere(conn, slug, None)?)
    }

    fn write_rows(&mut self, conn: &mut DbConn) -> Result<(), ImportError> {
        let post_tags = std::mem::take(&mut self.post_tags);
        let search_rows = std::mem::take(&mut self.search_rows);
        write_post_rows(conn, &post_tags, &search_rows)
    }
}

/// Which of `slugs` are posts' slugs, or old slugs that still redirect.
fn slugs_in_use(conn: &mut DbConn, slugs: &[&String]) -> Result<HashSet<String>, ImportError> {
    use crate::db::schema::{post_slugs, posts};
    let mut taken = HashSet::new();
    for chunk in slugs.chunks(500) {
        let current: Vec<String> = posts::table
            .filter(posts::slug.eq_any(chunk))
            .select(posts::slug)
            .load(conn)?;
        let old: Vec<String> = post_slugs::table
            .filter(post_slugs::old_slug.eq_any(chunk))
            .select(post_slugs::old_slug)
            .load(conn)?;
        taken.extend(current.into_iter().chain(old));
    }
    Ok(taken)
}

/// Writes new posts' tags and search rows, many rows per statement.
fn write_post_rows(
    conn: &mut DbConn,
    post_tags: &[(i32, i32)],
    search_rows: &[(i32, String, String, String)],
) -> Result<(), ImportError> {
    use crate::db::schema::{post_search, post_tags as tagged};
    let tags: Vec<_> = post_tags
        .iter()
        .map(|(post, tag)| (tagged::post_id.eq(*post), tagged::tag_id.eq(*tag)))
        .collect();
    let search: Vec<_> = search_rows
        .iter()
        .map(|(post, title, body, tags)| {
            (
                post_search::post_id.eq(*post),
                post_search::title.eq(title),
                post_search::body.eq(body),
                post_search::tags.eq(tags),
            )
        })
        .collect();
    // Through each backend's own connection: a slice of rows does not insert through the
    // MultiConnection.
    for chunk in tags.chunks(500) {
        match conn {
            DbConn::Sqlite(c) => diesel::insert_into(tagged::table)
                .values(chunk)
                .execute(c)?,
            DbConn::Postgresql(c) => diesel::insert_into(tagged::table)
                .values(chunk)
                .execute(c)?,
        };
    }
    for chunk in search.chunks(100) {
        match conn {
            DbConn::Sqlite(c) => diesel::insert_into(post_search::table)
                .values(chunk)
                .execute(c)?,
            DbConn::Postgresql(c) => diesel::insert_into(post_search::table)
                .values(chunk)
                .execute(c)?,
        };
    }
    Ok(())
}

fn is_uncategorized(slug: &str) -> bool {
    slug == "uncategorized"
}

/// The user an author becomes: matched by email, else created disabled with no password.
fn author_user(
    conn: &mut DbConn,
    ctx: &mut Ctx<'_>,
    author: &Author,
) -> Result<UserId, ImportError> {
    if let Some(id) = ctx.lookup(conn, ItemKind::User, &author.login)? {
        return Ok(UserId(id));
    }
    let email = match author.email.trim().to_lowercase() {
        e if e.contains('@') => e,
        _ => format!("{}@imported.invalid", crate::text::slugify(&author.login)),
    };
    if let Some(user) = users::find_by_email(conn, &email)? {
        ctx.report.users_matched += 1;
        ctx.remember(conn, ItemKind::User, &author.login, user.id.0)?;
        return Ok(user.id);
    }
    ctx.report.users_created += 1;
    let display_name = match author.display_name.trim() {
        "" => author.login.trim(),
        name => name,
    };
    let display_name: String = display_name.chars().take(100).collect();
    let base = if author.login.trim().is_empty() {
        display_name.clone()
    } else {
        author.login.clone()
    };
    let slug = users::unused_slug(conn, &base)?;
    if ctx.dry_run {
        return Ok(UserId(ctx.fake_id()));
    }
    let now = ctx.env.now;
    let user = users::insert(
        conn,
        &NewUser {
            email: &email,
            display_name: &display_name,
            slug: &slug,
            bio: "",
            role: Role::Moderator,
            // No password: an admin enables the account and its owner sets one by reset.
            password_hash: "",
            disabled: true,
            created_at: now,
            updated_at: now,
        },
    )?;
    ctx.remember(conn, ItemKind::User, &author.login, user.id.0)?;
    if !author.login.is_empty()
        && let Some(key) = address_key(&format!("/author/{}", author.login))
    {
        ctx.add_address(conn, &key, None, &format!("/authors/{slug}"))?;
    }
    Ok(user.id)
}

/// The slug a post would like: WordPress's `post_name` where it is a valid lectern slug, else
/// one made from it or from the title.
fn base_slug(item: &Item) -> String {
    if crate::text::is_slug(&item.post_name) {
        return item.post_name.clone();
    }
    let decoded = percent_encoding::percent_decode_str(&item.post_name)
        .decode_utf8_lossy()
        .into_owned();
    [decoded.as_str(), item.title.as_str()]
        .into_iter()
        .map(crate::text::slugify)
        .find(|s| !s.is_empty())
        .unwrap_or_else(|| format!("post-{}", item.post_id))
}

/// A post's slug: [`base_slug`], with a number after it when another post has it, unique.
fn choose_slug(
    conn: &mut DbConn,
    item: &Item,
    batch: &Batch,
) -> Result<(String, bool), ImportError> {
    let base = base_slug(item);
    let mut candidate = base.clone();
    let mut n = 2;
    while batch.slug_taken(conn, &candidate)? {
        candidate = format!("{base}-{n}");
        n += 1;
    }
    let changed = candidate != item.post_name;
    Ok((candidate, changed))
}

fn post_status(item: &Item, published_at: NaiveDateTime, now: NaiveDateTime) -> Option<PostStatus> {
    if !item.post_password.is_empty() {
        return Some(PostStatus::Draft);
    }
    match item.status.as_str() {
        "publish" | "future" if published_at > now => Some(PostStatus::Scheduled),
        "publish" | "future" => Some(PostStatus::Published),
        "draft" | "pending" | "private" => Some(PostStatus::Draft),
        _ => None,
    }
}

/// A post's text for its excerpt: the tags of its HTML taken out.
fn html_text(html: &str) -> String {
    let mut text = String::with_capacity(html.len());
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => {
                in_tag = false;
                text.push(' ');
            }
            _ if !in_tag => text.push(c),
            _ => {}
        }
    }
    let text = text
        .replace("&nbsp;", " ")
        .replace("&amp;", "&")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#8217;", "’");
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Text without shortcode tags (`[box type="note"]`, `[/box]`).
fn strip_shortcodes(text: &str) -> String {
    static TAG: std::sync::LazyLock<Option<regex::Regex>> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"\[/?[A-Za-z][A-Za-z0-9_-]*(\s[^\]\[]*)?/?\]").ok()
    });
    match TAG.as_ref() {
        Some(re) => re
            .replace_all(text, " ")
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" "),
        None => text.to_string(),
    }
}

fn excerpt(item: &Item, markdown: &str) -> String {
    let source = if item.excerpt.trim().is_empty() {
        html_text(markdown)
    } else {
        html_text(&item.excerpt)
    };
    let source = strip_shortcodes(&source);
    let Some((cut, _)) = source.char_indices().nth(280) else {
        return source;
    };
    let head = &source[..cut];
    let head = head.rfind(' ').map_or(head, |i| &head[..i]);
    format!("{head}…")
}

fn import_item(
    conn: &mut DbConn,
    ctx: &mut Ctx<'_>,
    item: &mut Item,
    run: &mut RunState<'_>,
    batch: &mut Batch,
) -> Result<(), ImportError> {
    let kind = match item.post_type.as_str() {
        "post" => PostKind::Post,
        "page" => PostKind::Page,
        "" => PostKind::Post,
        other => {
            ctx.report.skip(&format!("items of type {other}"));
            return Ok(());
        }
    };
    let now = ctx.env.now;
    let published_at = parse_date(&item.post_date_gmt)
        .or_else(|| parse_date(&item.post_date))
        .unwrap_or(now);
    let Some(status) = post_status(item, published_at, now) else {
        let reason = match item.status.as_str() {
            "trash" => "posts in the trash".to_string(),
            "auto-draft" => "automatic drafts".to_string(),
            other => format!("posts with status {other:?}"),
        };
        ctx.report.skip(&reason);
        return Ok(());
    };
    let post_id = match batch.known_posts.get(&item.post_id).copied() {
        Some(id) => {
            if id > 0 && post_queries::find_by_id(conn, PostId(id))?.is_none() {
                ctx.report.note(format!(
                    "“{}” (/?p={}) was deleted after an earlier import; it and its comments were skipped",
                    item.title, item.post_id
                ));
                return Ok(());
            }
            match kind {
                PostKind::Post => ctx.report.posts.already += 1,
                PostKind::Page => ctx.report.pages.already += 1,
            }
            PostId(id)
        }
        None => {
            let post_id = create_post(conn, ctx, item, kind, status, published_at, run, batch)?;
            if !ctx.dry_run {
                batch.known_posts.insert(item.post_id.clone(), post_id.0);
            }
            for term in &item.categories {
                if !is_uncategorized(&term.slug) {
                    run.terms
                        .entry((term.taxonomy.clone(), term.slug.clone()))
                        .or_insert_with(|| term.name.clone());
                }
            }
            match kind {
                PostKind::Post => ctx.report.posts.imported += 1,
                PostKind::Page => ctx.report.pages.imported += 1,
            }
            post_id
        }
    };
    import_comments(conn, ctx, item, post_id, run.users_by_wp_id, batch)
}

/// The post's author: the user its creator became, one made for a creator WXR 1.0 names only
/// by login, or a "WordPress" user for posts with none.
fn post_author(
    conn: &mut DbConn,
    ctx: &mut Ctx<'_>,
    item: &Item,
    run: &mut RunState<'_>,
) -> Result<UserId, ImportError> {
    if let Some(id) = run.users.get(&item.creator) {
        return Ok(*id);
    }
    if !item.creator.is_empty() {
        // WXR 1.0 names authors only by login.
        let author = Author {
            login: item.creator.clone(),
            ..Author::default()
        };
        let id = author_user(conn, ctx, &author)?;
        run.users.insert(item.creator.clone(), id);
        return Ok(id);
    }
    if let Some(id) = run.fallback {
        return Ok(*id);
    }
    let author = Author {
        login: "wordpress".into(),
        display_name: "WordPress".into(),
        ..Author::default()
    };
    let id = author_user(conn, ctx, &author)?;
    *run.fallback = Some(id);
    Ok(id)
}

/// The tags a new post gets from its categories and tags (WordPress's “Uncategorized” left
/// out), each looked up or made once per run: (id, name), one per slug.
fn post_tags(
    conn: &mut DbConn,
    item: &Item,
    run: &mut RunState<'_>,
) -> Result<Vec<(i32, String)>, ImportError> {
    use crate::db::schema::tags;
    let mut found: Vec<(i32, String)> = Vec::new();
    let mut seen: Vec<String> = Vec::new();
    for term in item
        .categories
        .iter()
        .filter(|t| !is_uncategorized(&t.slug))
    {
        let slug = crate::text::slugify(&term.name);
        if slug.is_empty() || seen.contains(&slug) {
            continue;
        }
        let tag = match run.tags.get(&slug) {
            Some(tag) => tag.clone(),
            None => {
                let tag = match post_queries::find_tag(conn, &slug)? {
                    Some(tag) => (tag.id, tag.name),
                    None => {
                        let name = term.name.trim();
                        let id: i32 = diesel::insert_into(tags::table)
                            .values((tags::name.eq(name), tags::slug.eq(&slug)))
                            .returning(tags::id)
                            .get_result(conn)?;
                        (id, name.to_string())
                    }
                };
                run.tags.insert(slug.clone(), tag.clone());
                tag
            }
        };
        found.push(tag);
        seen.push(slug);
    }
    Ok(found)
}

#[allow(clippy::too_many_arguments)]
fn create_post(
    conn: &mut DbConn,
    ctx: &mut Ctx<'_>,
    item: &Item,
    kind: PostKind,
    status: PostStatus,
    published_at: NaiveDateTime,
    run: &mut RunState<'_>,
    batch: &mut Batch,
) -> Result<PostId, ImportError> {
    let author_id = post_author(conn, ctx, item, run)?;
    let (slug, changed) = choose_slug(conn, item, batch)?;
    if !ctx.dry_run {
        batch.slugs_checked.insert(slug.clone());
        batch.slugs_taken.insert(slug.clone());
    }
    let title = match item.title.trim() {
        "" => "(untitled)".to_string(),
        t => t.to_string(),
    };
    if changed && !item.post_name.is_empty() {
        ctx.report.note(format!(
            "“{title}”: the slug {:?} became {slug:?}",
            item.post_name
        ));
    }
    if !item.post_password.is_empty() {
        ctx.report.note(format!(
            "“{title}” (/?p={}) is password-protected: imported as a draft (lectern has no post passwords)",
            item.post_id
        ));
    }
    if item.status == "private" {
        ctx.report
            .note(format!("“{title}” was private: imported as a draft"));
    }
    let mut converted = wordpress_body(&item.content);
    if let Some(uploads) = ctx.uploads.as_mut() {
        converted.markdown = uploads.rewrite(
            conn,
            &mut ctx.report,
            ctx.dry_run,
            ctx.env.now,
            &title,
            &converted.markdown,
        )?;
    }
    if !converted.unknown_shortcodes.is_empty() {
        let names: Vec<String> = converted
            .unknown_shortcodes
            .iter()
            .map(|n| format!("[{n}]"))
            .collect();
        ctx.report.note(format!(
            "“{title}” uses shortcodes lectern does not know, kept as text: {}",
            names.join(", ")
        ));
    }
    let excerpt = excerpt(item, &converted.markdown);
    let post_id = if ctx.dry_run {
        PostId(ctx.fake_id())
    } else {
        use crate::db::schema::posts;
        let body_html = crate::media::render_post(conn, &converted.markdown)?;
        let new_post = NewPost {
            slug: &slug,
            title: &title,
            body_markdown: &converted.markdown,
            body_html: body_html.as_str(),
            excerpt: &excerpt,
            author_id,
            kind,
            status,
            published_at,
            comments_open: item.comment_status == "open",
            updated_at: now_or(ctx, published_at),
        };
        // As `posts::queries::insert` and `set_tags` store a post, but with its tags and search
        // row written with the batch's others, the search row once.
        let post_id: PostId = diesel::insert_into(posts::table)
            .values((&new_post, posts::created_at.eq(new_post.updated_at)))
            .returning(posts::id)
            .get_result(conn)?;
        let mut tags = post_tags(conn, item, run)?;
        batch
            .post_tags
            .extend(tags.iter().map(|(tag_id, _)| (post_id.0, *tag_id)));
        tags.sort_by(|a, b| a.1.cmp(&b.1));
        let names: Vec<String> = tags.into_iter().map(|(_, name)| name).collect();
        let (body, tag_text) = crate::posts::search::row_text(&converted.markdown, &names);
        batch
            .search_rows
            .push((post_id.0, title.clone(), body, tag_text));
        post_id
    };
    ctx.remember_later(ItemKind::Post, &item.post_id, post_id.0);
    // Every old address of the item: its link, ?p=ID (?page_id=ID for pages).
    let mut addresses = vec![format!("/?p={}", item.post_id)];
    if kind == PostKind::Page {
        addresses.push(format!("/?page_id={}", item.post_id));
    }
    addresses.push(item.link.clone());
    for address in addresses {
        if let Some(key) = address_key(&address)
            && key != kind.path(&slug)
        {
            ctx.add_address(conn, &key, Some(post_id), "")?;
        }
    }
    Ok(post_id)
}

fn now_or(ctx: &Ctx<'_>, published_at: NaiveDateTime) -> NaiveDateTime {
    published_at.min(ctx.env.now)
}

fn comment_status(approved: &str) -> Option<CommentStatus> {
    match approved {
        "1" | "approve" | "approved" => Some(CommentStatus::Approved),
        "0" | "hold" | "" => Some(CommentStatus::Pending),
        "spam" => Some(CommentStatus::Spam),
        "trash" | "post-trashed" => Some(CommentStatus::Trash),
        _ => None,
    }
}

fn import_comments(
    conn: &mut DbConn,
    ctx: &mut Ctx<'_>,
    item: &mut Item,
    post_id: PostId,
    users_by_wp_id: &HashMap<String, UserId>,
    batch: &mut Batch,
) -> Result<(), ImportError> {
    if item.comments.is_empty() {
        return Ok(());
    }
    let mut prepared: Vec<Option<Box<PreparedComment>>> = item
        .comments
        .iter_mut()
        .map(|c| c.prepared.take())
        .collect();
    let comments = &item.comments;
    let title = item.title.trim();
    let in_item: HashMap<&str, &Comment> = comments.iter().map(|c| (c.id.as_str(), c)).collect();
    let mut waiting: Vec<usize> = Vec::new();
    // Comments whose parents form a loop, shown at the top level.
    let mut loop_breakers: HashSet<&str> = HashSet::new();
    for (i, c) in comments.iter().enumerate() {
        if batch.known_comments.contains_key(&c.id) {
            ctx.report.comments.already += 1;
            continue;
        }
        if matches!(c.comment_type.as_str(), "pingback" | "trackback") {
            ctx.report.skip("pingbacks and trackbacks");
            continue;
        }
        waiting.push(i);
    }
    // Parents before their replies; a reply whose parent never comes is made top-level.
    while !waiting.is_empty() {
        let mut next_round = Vec::new();
        let mut progressed = false;
        for i in waiting {
            let c = &comments[i];
            let parent = c.parent.as_str();
            let parent_id = if parent.is_empty()
                || parent == "0"
                || loop_breakers.contains(c.id.as_str())
            {
                None
            } else if let Some(id) = in_item
                .contains_key(parent)
                .then(|| batch.known_comments.get(parent))
                .flatten()
            {
                Some(CommentId(*id))
            } else if in_item.contains_key(parent)
                && !matches!(
                    in_item.get(parent).map(|p| p.comment_type.as_str()),
                    Some("pingback" | "trackback")
                )
            {
                next_round.push(i);
                continue;
            } else {
                ctx.report.note(format!(
                    "comment {} on “{title}”: its parent {parent} is not in the export; shown at the top level",
                    c.id
                ));
                None
            };
            let comment = match prepared[i].take() {
                Some(comment) => *comment,
                None => match prepare_comment(&ctx.rules, c) {
                    Some(comment) => comment,
                    None => {
                        ctx.report.skip("comments with an unknown status");
                        continue;
                    }
                },
            };
            let user_id = match c.user_id.as_str() {
                "" | "0" => None,
                id => users_by_wp_id.get(id).copied().filter(|u| u.0 > 0),
            };
            let place = Place {
                post_id,
                parent_id,
                user_id,
            };
            let id = ctx.insert_prepared(conn, place, comment)?;
            batch.known_comments.insert(c.id.clone(), id.0);
            progressed = true;
        }
        if !progressed && !next_round.is_empty() {
            // A cycle of parents: the first one goes to the top level, and the rest follow.
            if let Some(first) = next_round.first().map(|i| &comments[*i]) {
                ctx.report.note(format!(
                    "comment {} on “{title}”: its parents form a loop; shown at the top level",
                    first.id
                ));
                loop_breakers.insert(first.id.as_str());
            }
        }
        waiting = next_round;
    }
    Ok(())
}
