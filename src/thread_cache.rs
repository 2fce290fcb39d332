//! A post's public comment thread, rendered once and reused until it changes.
//!
//! Printing a hundred comments is most of a post page's cost. The rendered thread is kept under a
//! key of everything it is made from: the post's `thread_version` (moved on by database triggers
//! whenever a reader could see a difference, see migration 000006), the settings that shape the
//! thread, the comment page, and whether Reply links show. The version is read with the post on
//! every request, so a copy can never be served after a change, made by this server or another
//! one on the same database. Pages that show a visitor their own pending comment are never kept.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::db::ids::{CommentId, PostId, UserId};
use crate::render::SafeHtml;
use crate::site::{CommentOrder, DiscussionSettings};

/// Everything the rendered thread depends on besides the comments themselves.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ThreadKey {
    post_id: PostId,
    thread_version: i64,
    /// Links in the thread point at the post's address.
    path: String,
    /// The "Author" badge is given by the post's author.
    author_id: UserId,
    thread_depth: u32,
    order: CommentOrder,
    per_page: Option<u32>,
    /// Always 1 while paging is off, so `?cpage=7` cannot make copies of the one page.
    cpage: u32,
    replies_open: bool,
    /// The site identity's version (`/admin/site`): a change of identity starts new renderings.
    site_version: i64,
}

/// What a thread's key needs of its post (`Post::thread_of` makes one).
pub struct ThreadOf {
    pub post_id: PostId,
    pub thread_version: i64,
    pub path: String,
    pub author_id: UserId,
}

impl ThreadKey {
    pub fn new(
        post: ThreadOf,
        settings: &DiscussionSettings,
        cpage: u32,
        replies_open: bool,
    ) -> Self {
        let per_page = settings.comments_per_page.filter(|n| *n > 0);
        ThreadKey {
            post_id: post.post_id,
            thread_version: post.thread_version,
            path: post.path,
            author_id: post.author_id,
            thread_depth: settings.thread_depth,
            order: settings.comment_order,
            per_page,
            cpage: if per_page.is_some() { cpage } else { 1 },
            replies_open,
            site_version: 0,
        }
    }

    /// The key under the site identity of `site_version`.
    pub fn for_site(mut self, site_version: i64) -> Self {
        self.site_version = site_version;
        self
    }
}

/// One page of a thread as HTML, with what the rest of the page needs to know about it.
#[derive(Debug)]
pub struct RenderedThread {
    /// The comment list and its page links; empty when there are no comments.
    pub html: SafeHtml,
    pub has_comments: bool,
    /// Comments on this page that take replies, by id, with their authors' names: the form
    /// says "Reply to {name}" for `?replytocom=ID`.
    pub repliable: Vec<(CommentId, String)>,
}

impl RenderedThread {
    pub fn name_of_repliable(&self, id: CommentId) -> Option<&str> {
        self.repliable
            .iter()
            .find(|(c, _)| *c == id)
            .map(|(_, name)| name.as_str())
    }

    fn weight(&self) -> usize {
        self.html.as_str().len()
            + self
                .repliable
                .iter()
                .map(|(_, n)| n.len() + 32)
                .sum::<usize>()
            + 256
    }
}

struct Entry {
    thread: Arc<RenderedThread>,
    last_used: u64,
}

/// Rendered threads, least recently used dropped first once they weigh more than the budget.
pub struct ThreadCache {
    entries: Mutex<HashMap<ThreadKey, Entry>>,
    tick: AtomicU64,
    budget_bytes: usize,
}

impl ThreadCache {
    pub fn new(budget_bytes: usize) -> ThreadCache {
        ThreadCache {
            entries: Mutex::new(HashMap::new()),
            tick: AtomicU64::new(0),
            budget_bytes,
        }
    }

    pub fn get(&self, key: &ThreadKey) -> Option<Arc<RenderedThread>> {
        let tick = self.tick.fetch_add(1, Ordering::Relaxed);
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let entry = entries.get_mut(key)?;
        entry.last_used = tick;
        Some(entry.thread.clone())
    }

    pub fn insert(&self, key: ThreadKey, thread: Arc<RenderedThread>) {
        let weight = thread.weight();
        if weight > self.budget_bytes {
            return;
        }
        let tick = self.tick.fetch_add(1, Ordering::Relaxed);
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        // Older versions of this post's thread can never be asked for again.
        entries.retain(|k, _| k.post_id != key.post_id || k.thread_version >= key.thread_version);
        entries.insert(
            key,
            Entry {
                thread,
                last_used: tick,
            },
        );
        let mut total: usize = entries.values().map(|e| e.thread.weight()).sum();
        while total > self.budget_bytes {
            let Some(oldest) = entries
                .iter()
                .min_by_key(|(_, e)| e.last_used)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            if let Some(dropped) = entries.remove(&oldest) {
                total -= dropped.thread.weight();
            }
        }
    }

    /// What the cache holds: entries and their weight in bytes.
    pub fn usage(&self) -> (usize, usize) {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        (
            entries.len(),
            entries.values().map(|e| e.thread.weight()).sum(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(post_id: i32, version: i64) -> ThreadKey {
        ThreadKey {
            post_id: PostId(post_id),
            thread_version: version,
            path: format!("/posts/post-{post_id}"),
            author_id: UserId(1),
            thread_depth: 5,
            order: CommentOrder::OldestFirst,
            per_page: None,
            cpage: 1,
            replies_open: true,
            site_version: 0,
        }
    }

    fn thread(bytes: usize) -> Arc<RenderedThread> {
        Arc::new(RenderedThread {
            html: SafeHtml::from_stored("x".repeat(bytes)),
            has_comments: true,
            repliable: vec![(CommentId(1), "Ann".into())],
        })
    }

    #[test]
    fn a_newer_version_replaces_the_older_one() {
        let cache = ThreadCache::new(1 << 20);
        cache.insert(key(1, 1), thread(10));
        cache.insert(key(2, 1), thread(10));
        cache.insert(key(1, 2), thread(10));
        assert!(cache.get(&key(1, 1)).is_none());
        assert!(cache.get(&key(1, 2)).is_some());
        assert!(cache.get(&key(2, 1)).is_some());
        assert_eq!(cache.usage().0, 2);
    }

    #[test]
    fn the_least_recently_used_thread_goes_first_when_over_budget() {
        let cache = ThreadCache::new(3 * (1000 + 256 + 35));
        cache.insert(key(1, 1), thread(1000));
        cache.insert(key(2, 1), thread(1000));
        cache.insert(key(3, 1), thread(1000));
        assert!(cache.get(&key(1, 1)).is_some());
        cache.insert(key(4, 1), thread(1000));
        assert!(cache.get(&key(2, 1)).is_none(), "2 was used least recently");
        for kept in [1, 3, 4] {
            assert!(cache.get(&key(kept, 1)).is_some(), "{kept} is kept");
        }
        assert!(cache.usage().1 <= 3 * (1000 + 256 + 35));
    }

    #[test]
    fn a_thread_larger_than_the_budget_is_not_kept() {
        let cache = ThreadCache::new(100);
        cache.insert(key(1, 1), thread(1000));
        assert_eq!(cache.usage(), (0, 0));
    }

    #[test]
    fn the_comment_page_only_matters_when_paging_is_on() {
        let post_row = |slug: &str| ThreadOf {
            post_id: PostId(1),
            thread_version: 3,
            path: format!("/posts/{slug}"),
            author_id: UserId(1),
        };
        let mut settings = DiscussionSettings::default();
        assert_eq!(
            ThreadKey::new(post_row("a"), &settings, 1, true),
            ThreadKey::new(post_row("a"), &settings, 7, true)
        );
        settings.comments_per_page = Some(10);
        assert_ne!(
            ThreadKey::new(post_row("a"), &settings, 1, true),
            ThreadKey::new(post_row("a"), &settings, 7, true)
        );
        assert_ne!(
            ThreadKey::new(post_row("a"), &settings, 1, true),
            ThreadKey::new(post_row("b"), &settings, 1, true)
        );
    }
}
