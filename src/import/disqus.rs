//! `lectern import disqus FILE.xml`: a Disqus export. Threads are matched to posts by their
//! address (never invented: an unmatched thread's comments are skipped and listed), posts become
//! comments with their parents, `isDeleted` → trash, `isSpam` → spam; the message is HTML.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::Ordering;

use super::store::{Ctx, ImportedComment, ItemKind, Place, match_thread, parse_date, set_parent};
use super::xml::{Node, XmlStream};
use super::{Env, ImportError, Options, Progress, Report};
use crate::comments::CommentStatus;
use crate::db::ids::{CommentId, PostId};
use crate::render::CommentFormat;

const BATCH: usize = 5000;

#[derive(Debug, Default, Clone)]
pub struct Thread {
    pub id: String,
    pub forum: String,
    pub link: String,
    pub title: String,
}

#[derive(Debug, Default, Clone)]
pub struct Post {
    pub id: String,
    pub message: String,
    pub created_at: String,
    pub is_deleted: bool,
    pub is_spam: bool,
    pub name: String,
    pub email: String,
    pub ip: String,
    pub thread: String,
    pub parent: String,
}

pub enum Event {
    Thread(Thread),
    Post(Post),
}

fn attr(attrs: &[(String, String)], key: &str) -> String {
    attrs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.clone())
        .unwrap_or_default()
}

/// Reads a Disqus export, calling `each` for each thread and post.
pub fn parse(
    path: &Path,
    mut each: impl FnMut(Event, &XmlStream) -> Result<(), ImportError>,
) -> Result<(), ImportError> {
    let mut xml = XmlStream::open(path)?;
    let mut saw_root = false;
    loop {
        match xml.next_node()? {
            Node::Eof => break,
            Node::Start { name, .. } if xml.depth() == 1 => {
                if name != "disqus" {
                    return Err(xml.malformed(0, &format!("expected <disqus>, found <{name}>")));
                }
                saw_root = true;
            }
            Node::Start { name, attrs } if xml.depth() == 2 => match name.as_str() {
                "thread" => {
                    let mut thread = Thread {
                        id: attr(&attrs, "dsq:id"),
                        ..Thread::default()
                    };
                    read_children(&mut xml, |name, _, xml| {
                        let slot = match name {
                            "forum" => &mut thread.forum,
                            "link" => &mut thread.link,
                            "title" => &mut thread.title,
                            _ => return xml.skip_current(),
                        };
                        *slot = xml.text_of_current()?.trim().to_string();
                        Ok(())
                    })?;
                    each(Event::Thread(thread), &xml)?;
                }
                "post" => {
                    let mut post = Post {
                        id: attr(&attrs, "dsq:id"),
                        ..Post::default()
                    };
                    read_children(&mut xml, |name, attrs, xml| {
                        match name {
                            "message" => post.message = xml.text_of_current()?,
                            "createdAt" => post.created_at = xml.text_of_current()?,
                            "isDeleted" => {
                                post.is_deleted = xml.text_of_current()?.trim() == "true"
                            }
                            "isSpam" => post.is_spam = xml.text_of_current()?.trim() == "true",
                            "ipAddress" => post.ip = xml.text_of_current()?.trim().to_string(),
                            "thread" => {
                                post.thread = attr(attrs, "dsq:id");
                                xml.skip_current()?;
                            }
                            "parent" => {
                                post.parent = attr(attrs, "dsq:id");
                                xml.skip_current()?;
                            }
                            "author" => read_children(xml, |name, _, xml| {
                                match name {
                                    "name" => post.name = xml.text_of_current()?.trim().to_string(),
                                    "email" => {
                                        post.email = xml.text_of_current()?.trim().to_string()
                                    }
                                    _ => xml.skip_current()?,
                                }
                                Ok(())
                            })?,
                            _ => xml.skip_current()?,
                        }
                        Ok(())
                    })?;
                    each(Event::Post(post), &xml)?;
                }
                _ => xml.skip_current()?,
            },
            _ => {}
        }
    }
    if !saw_root {
        return Err(ImportError::Unreadable(format!(
            "{}: the file holds no <disqus> element",
            path.display()
        )));
    }
    Ok(())
}

fn read_children(
    xml: &mut XmlStream,
    mut child: impl FnMut(&str, &[(String, String)], &mut XmlStream) -> Result<(), ImportError>,
) -> Result<(), ImportError> {
    let depth = xml.depth();
    loop {
        match xml.next_node()? {
            Node::Start { name, attrs } if xml.depth() == depth + 1 => child(&name, &attrs, xml)?,
            Node::End(_) if xml.depth() < depth => return Ok(()),
            Node::Eof => return Ok(()),
            _ => {}
        }
    }
}

/// Replies stored before their parents, waiting for them: (reply, parent's source id).
pub type Orphans = Vec<(CommentId, String)>;

struct Import<'e, 'o> {
    ctx: Ctx<'e>,
    options: &'o Options,
    threads: HashMap<String, Thread>,
    /// Thread → the post it matched (None: unmatched, reported once).
    matched: HashMap<String, Option<PostId>>,
    /// Source id → comment, for parents.
    stored: HashMap<String, CommentId>,
    orphans: Orphans,
    batch: Vec<Post>,
}

pub fn import(
    env: &Env,
    path: &Path,
    options: &Options,
    progress: &mut dyn Progress,
) -> Result<Report, ImportError> {
    let total = std::fs::metadata(path)
        .map(|m| m.len())
        .map_err(|e| ImportError::Unreadable(format!("{}: {e}", path.display())))?;
    let mut forum = String::new();
    parse(path, |event, _| {
        if let Event::Thread(t) = event
            && forum.is_empty()
        {
            forum = t.forum;
        }
        Ok(())
    })?;
    let mut ctx = Ctx::new(env, format!("disqus:{forum}"), options.dry_run)?;
    ctx.report.source = format!("Disqus export of the forum {forum:?}");
    let mut run = Import {
        ctx,
        options,
        threads: HashMap::new(),
        matched: HashMap::new(),
        stored: HashMap::new(),
        orphans: Vec::new(),
        batch: Vec::new(),
    };
    parse(path, |event, xml| {
        match event {
            Event::Thread(thread) => {
                run.threads.insert(thread.id.clone(), thread);
            }
            Event::Post(post) => {
                run.batch.push(post);
                if run.batch.len() >= BATCH {
                    run.flush()?;
                    progress.tick(
                        xml.bytes_read.load(Ordering::Relaxed),
                        total,
                        &run.ctx.report,
                    );
                }
            }
        }
        Ok(())
    })?;
    run.flush()?;
    let orphans = std::mem::take(&mut run.orphans);
    let stored = std::mem::take(&mut run.stored);
    adopt_orphans(&mut run.ctx, orphans, &stored)?;
    progress.tick(total, total, &run.ctx.report);
    run.ctx.finish()?;
    Ok(std::mem::take(&mut run.ctx.report))
}

/// Attaches replies to parents that came later in the source; a parent that never came leaves
/// its reply at the top level, with a note.
pub fn adopt_orphans(
    ctx: &mut Ctx<'_>,
    orphans: Orphans,
    stored: &HashMap<String, CommentId>,
) -> Result<(), ImportError> {
    if orphans.is_empty() {
        return Ok(());
    }
    ctx.batch(|conn, ctx| {
        let wanted: Vec<String> = orphans
            .iter()
            .filter(|(_, p)| !stored.contains_key(p))
            .map(|(_, p)| p.clone())
            .collect();
        let earlier = ctx.lookup_many(conn, ItemKind::Comment, &wanted)?;
        for (child, parent) in &orphans {
            let found = stored
                .get(parent)
                .copied()
                .or_else(|| earlier.get(parent).map(|id| CommentId(*id)));
            match found {
                Some(parent_id) if !ctx.dry_run => set_parent(conn, *child, parent_id)?,
                Some(_) => {}
                None => ctx.report.note(format!(
                    "a reply's parent ({parent}) is not in the source; the reply is shown at the top level"
                )),
            }
        }
        Ok(())
    })
}

impl Import<'_, '_> {
    fn flush(&mut self) -> Result<(), ImportError> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let posts = std::mem::take(&mut self.batch);
        let threads = &self.threads;
        let matched = &mut self.matched;
        let stored = &mut self.stored;
        let orphans = &mut self.orphans;
        let maps = &self.options.maps;
        self.ctx.batch(|conn, ctx| {
            let ids: Vec<String> = posts.iter().map(|p| p.id.clone()).collect();
            let done = ctx.lookup_many(conn, ItemKind::Comment, &ids)?;
            for post in &posts {
                if let Some(id) = done.get(&post.id) {
                    ctx.report.comments.already += 1;
                    stored.insert(post.id.clone(), CommentId(*id));
                    continue;
                }
                let post_id = match matched.get(&post.thread) {
                    Some(found) => *found,
                    None => {
                        let thread = threads.get(&post.thread);
                        let found = match thread {
                            Some(t) => match_thread(conn, &t.link, maps)?,
                            None => None,
                        };
                        if found.is_none() {
                            let link = thread.map_or_else(
                                || format!("thread {}", post.thread),
                                |t| t.link.clone(),
                            );
                            ctx.report.note(format!(
                                "the thread {link} matched no post: its comments were skipped"
                            ));
                        }
                        matched.insert(post.thread.clone(), found);
                        found
                    }
                };
                let Some(post_id) = post_id else {
                    ctx.report.skip("comments on threads that match no post");
                    continue;
                };
                let status = if post.is_spam {
                    CommentStatus::Spam
                } else if post.is_deleted {
                    CommentStatus::Trash
                } else {
                    CommentStatus::Approved
                };
                let parent = (!post.parent.is_empty()).then_some(post.parent.as_str());
                let parent_id = match parent {
                    None => None,
                    Some(p) => match stored.get(p) {
                        Some(id) => Some(*id),
                        None => ctx.lookup(conn, ItemKind::Comment, p)?.map(CommentId),
                    },
                };
                let created_at = parse_date(&post.created_at).unwrap_or(ctx.env.now);
                let id = ctx.insert_comment(
                    conn,
                    Place {
                        post_id,
                        parent_id,
                        user_id: None,
                    },
                    &ImportedComment {
                        source_id: &post.id,
                        name: &post.name,
                        email: &post.email,
                        website: "",
                        body: &post.message,
                        body_html: None,
                        format: CommentFormat::Html,
                        status,
                        ip: &post.ip,
                        created_at,
                        held_reason: None,
                    },
                )?;
                if let (Some(p), None) = (parent, parent_id) {
                    orphans.push((id, p.to_string()));
                }
                stored.insert(post.id.clone(), id);
            }
            Ok(())
        })
    }
}
