//! Turns a post's comments into the threaded list the page prints: a flat sequence of items,
//! each saying whether a nested list opens after it and how many close, so the template needs
//! no recursion.

use std::collections::{HashMap, HashSet};

use super::{CommentStatus, PublicComment};
use crate::db::ids::CommentId;
use crate::site::CommentOrder;

#[derive(Debug, Clone)]
pub struct ThreadItem {
    pub comment: PublicComment,
    pub depth: u32,
    /// A removed comment kept as a placeholder because approved replies hang from it.
    pub removed: bool,
    /// The visitor's own comment, still waiting for a moderator (or held as spam for a bot
    /// signal, which its author is not told).
    pub awaiting: bool,
    pub can_reply: bool,
    pub opens_children: bool,
    pub closes: u32,
}

#[derive(Debug, Clone)]
pub struct ThreadPage {
    pub items: Vec<ThreadItem>,
    pub page: u32,
    pub pages: u32,
}

struct Tree {
    by_id: HashMap<CommentId, PublicComment>,
    children: HashMap<CommentId, Vec<CommentId>>,
    roots: Vec<CommentId>,
    own: HashSet<CommentId>,
}

impl Tree {
    fn new(comments: Vec<PublicComment>, own: HashSet<CommentId>, order: CommentOrder) -> Tree {
        let mut comments = comments;
        comments.sort_by_key(|c| (c.created_at, c.id));
        let ids: HashSet<CommentId> = comments.iter().map(|c| c.id).collect();
        let mut children: HashMap<CommentId, Vec<CommentId>> = HashMap::new();
        let mut roots = Vec::new();
        for c in &comments {
            match c.parent_id.filter(|p| ids.contains(p)) {
                Some(parent) => children.entry(parent).or_default().push(c.id),
                None => roots.push(c.id),
            }
        }
        if order == CommentOrder::NewestFirst {
            roots.reverse();
        }
        let by_id = comments.into_iter().map(|c| (c.id, c)).collect();
        let mut tree = Tree {
            by_id,
            children,
            roots,
            own,
        };
        let visible: Vec<CommentId> = tree
            .roots
            .clone()
            .into_iter()
            .filter(|id| tree.is_shown(*id))
            .collect();
        tree.roots = visible;
        tree
    }

    fn is_removed(&self, id: CommentId) -> bool {
        self.by_id
            .get(&id)
            .is_none_or(|c| c.status != CommentStatus::Approved && !self.own.contains(&id))
    }

    /// A removed comment is shown only while something visible hangs from it.
    fn is_shown(&self, id: CommentId) -> bool {
        !self.is_removed(id)
            || self
                .children
                .get(&id)
                .is_some_and(|kids| kids.iter().any(|k| self.is_shown(*k)))
    }

    /// Emits `id` and its shown descendants. Each comment is moved out of the tree as it is
    /// emitted (a page of a hundred comments is built without copying them).
    fn visit(&mut self, id: CommentId, depth: u32, max_depth: u32, out: &mut Vec<ThreadItem>) {
        if !self.by_id.contains_key(&id) {
            return;
        }
        let removed = self.is_removed(id);
        let kids: Vec<CommentId> = self
            .children
            .get(&id)
            .map(|k| k.iter().copied().filter(|k| self.is_shown(*k)).collect())
            .unwrap_or_default();
        let nests = depth < max_depth && !kids.is_empty();
        let Some(comment) = self.by_id.remove(&id) else {
            return;
        };
        // A comment marked spam for a bot signal is shown to its author exactly like a held one.
        let awaiting = self.own.contains(&id) && comment.status != CommentStatus::Approved;
        out.push(ThreadItem {
            comment,
            depth,
            removed,
            awaiting,
            can_reply: !removed && !awaiting && depth < max_depth,
            opens_children: nests,
            closes: 0,
        });
        let child_depth = if nests { depth + 1 } else { depth };
        for kid in &kids {
            self.visit(*kid, child_depth, max_depth, out);
        }
        if nests && let Some(last) = out.last_mut() {
            last.closes += 1;
        }
    }
}

/// One page of the thread. With paging off (`per_page` None) everything is on page 1.
pub fn build(
    comments: Vec<PublicComment>,
    own_pending: Vec<PublicComment>,
    max_depth: u32,
    order: CommentOrder,
    per_page: Option<u32>,
    page: u32,
) -> ThreadPage {
    let own: HashSet<CommentId> = own_pending.iter().map(|c| c.id).collect();
    let mut all = comments;
    all.extend(own_pending);
    let mut tree = Tree::new(all, own, order);
    let per_page = per_page
        .filter(|n| *n > 0)
        .map_or(tree.roots.len().max(1), |n| n as usize);
    let pages = tree.roots.len().div_ceil(per_page).max(1) as u32;
    let page = page.clamp(1, pages);
    let mut items = Vec::new();
    let roots: Vec<CommentId> = tree
        .roots
        .iter()
        .skip((page as usize - 1) * per_page)
        .take(per_page)
        .copied()
        .collect();
    for root in roots {
        tree.visit(root, 1, max_depth.max(1), &mut items);
    }
    ThreadPage { items, page, pages }
}

/// The page a comment lands on, so the redirect after posting can point at it.
pub fn page_of(
    comments: Vec<PublicComment>,
    own_pending: Vec<PublicComment>,
    comment_id: CommentId,
    order: CommentOrder,
    per_page: u32,
) -> u32 {
    let own: HashSet<CommentId> = own_pending.iter().map(|c| c.id).collect();
    let mut all = comments;
    all.extend(own_pending);
    let parents: HashMap<CommentId, Option<CommentId>> =
        all.iter().map(|c| (c.id, c.parent_id)).collect();
    let tree = Tree::new(all, own, order);
    let mut root = comment_id;
    let mut guard = 0;
    while let Some(Some(parent)) = parents.get(&root) {
        if !parents.contains_key(parent) || guard > 100 {
            break;
        }
        root = *parent;
        guard += 1;
    }
    let index = tree.roots.iter().position(|r| *r == root).unwrap_or(0);
    (index / per_page.max(1) as usize) as u32 + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn comment(id: i32, parent: Option<i32>, status: &str) -> PublicComment {
        PublicComment {
            id: CommentId(id),
            parent_id: parent.map(CommentId),
            user_id: None,
            author_name: format!("c{id}"),
            author_url: None,
            body_html: String::new(),
            status: CommentStatus::parse(status).unwrap(),
            avatar_seed: 0,
            created_at: chrono::DateTime::from_timestamp(i64::from(id), 0)
                .unwrap()
                .naive_utc(),
        }
    }

    fn shape(page: &ThreadPage) -> Vec<(i32, u32, bool, u32)> {
        page.items
            .iter()
            .map(|i| (i.comment.id.0, i.depth, i.opens_children, i.closes))
            .collect()
    }

    #[test]
    fn replies_nest_under_their_parents() {
        let page = build(
            vec![
                comment(1, None, "approved"),
                comment(2, Some(1), "approved"),
                comment(3, None, "approved"),
            ],
            vec![],
            5,
            CommentOrder::OldestFirst,
            None,
            1,
        );
        assert_eq!(
            shape(&page),
            vec![(1, 1, true, 0), (2, 2, false, 1), (3, 1, false, 0)]
        );
    }

    #[test]
    fn replies_past_the_depth_limit_stay_at_the_deepest_level() {
        let page = build(
            vec![
                comment(1, None, "approved"),
                comment(2, Some(1), "approved"),
                comment(3, Some(2), "approved"),
            ],
            vec![],
            2,
            CommentOrder::OldestFirst,
            None,
            1,
        );
        assert_eq!(
            shape(&page),
            vec![(1, 1, true, 0), (2, 2, false, 0), (3, 2, false, 1)]
        );
        assert!(!page.items[1].can_reply);
    }

    #[test]
    fn a_removed_parent_stays_as_a_placeholder_only_while_it_has_replies() {
        let page = build(
            vec![
                comment(1, None, "trash"),
                comment(2, Some(1), "approved"),
                comment(3, None, "trash"),
            ],
            vec![],
            5,
            CommentOrder::OldestFirst,
            None,
            1,
        );
        assert_eq!(shape(&page), vec![(1, 1, true, 0), (2, 2, false, 1)]);
        assert!(page.items[0].removed);
    }

    #[test]
    fn paging_counts_top_level_threads() {
        let comments = vec![
            comment(1, None, "approved"),
            comment(2, Some(1), "approved"),
            comment(3, None, "approved"),
            comment(4, None, "approved"),
        ];
        let page = build(
            comments.clone(),
            vec![],
            5,
            CommentOrder::OldestFirst,
            Some(2),
            2,
        );
        assert_eq!(page.pages, 2);
        assert_eq!(shape(&page), vec![(4, 1, false, 0)]);
        assert_eq!(
            page_of(comments, vec![], CommentId(2), CommentOrder::OldestFirst, 2),
            1
        );
    }
}
