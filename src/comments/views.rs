//! The comment thread and the comment form as the post page shows them: view-models, and one
//! page of the thread rendered to HTML (which the thread cache keeps).

use askama::Template;

use super::PublicComment;
use super::domain::RawCommentForm;
use super::thread::{self, ThreadItem};
use crate::db::ids::{CommentId, UserId};
use crate::error::{AppError, AppResult};
use crate::http::forms::FieldErrors;
use crate::posts::Post;
use crate::render::{SafeHtml, identicon_svg};
use crate::site::DiscussionSettings;
use crate::state::AppState;
use crate::thread_cache::RenderedThread;
use crate::views::{comment_date, iso_date};

/// One comment as the thread prints it.
pub struct CommentView {
    pub id: CommentId,
    pub author_name: String,
    pub author_url: Option<String>,
    pub date: String,
    pub iso_date: String,
    pub body_html: SafeHtml,
    pub avatar: SafeHtml,
    pub badge: Option<&'static str>,
    pub depth: u32,
    pub removed: bool,
    pub awaiting: bool,
    pub can_reply: bool,
    pub opens_children: bool,
    pub closes: u32,
}

/// The comment form's state: empty, prefilled from the remember cookie, or sent back with errors.
pub struct CommentFormView {
    pub action: String,
    pub name: String,
    pub email: String,
    pub website: String,
    pub body: String,
    pub parent_id: Option<CommentId>,
    pub reply_to: Option<String>,
    pub notify: bool,
    pub remember: bool,
    pub errors: FieldErrors,
    pub notice: Option<String>,
    pub form_token: String,
    pub honeypot_field: &'static str,
    pub cancel_href: String,
}

/// One page of the thread; its HTML is kept in the thread cache, so it depends on nothing but
/// the comments and the `ThreadKey`.
#[derive(Template)]
#[template(path = "posts/thread.html")]
struct ThreadFragment<'a> {
    comments: Vec<CommentView>,
    path: &'a str,
    replies_open: bool,
    cpage: u32,
    cpages: u32,
}

/// What the comment form should show when the page is rendered.
pub enum FormState {
    Fresh {
        reply_to: Option<CommentId>,
    },
    Rejected {
        raw: Box<RawCommentForm>,
        errors: FieldErrors,
        notice: Option<String>,
    },
}

/// One page of the thread as HTML.
pub fn render_thread(
    state: &AppState,
    post: &Post,
    settings: &DiscussionSettings,
    rows: Vec<PublicComment>,
    own: Vec<PublicComment>,
    cpage: u32,
    replies_open: bool,
) -> AppResult<RenderedThread> {
    let page = thread::build(
        rows,
        own,
        settings.thread_depth,
        settings.comment_order,
        settings.comments_per_page,
        cpage,
    );
    let repliable = page
        .items
        .iter()
        .filter(|i| i.can_reply)
        .map(|i| (i.comment.id, i.comment.author_name.clone()))
        .collect();
    let tz = state.config.timezone;
    let comments: Vec<CommentView> = page
        .items
        .into_iter()
        .map(|item| comment_view(item, post.author_id, tz))
        .collect();
    let has_comments = !comments.is_empty();
    let path = post.path();
    let html = ThreadFragment {
        comments,
        path: &path,
        replies_open,
        cpage: page.page,
        cpages: page.pages,
    }
    .render()
    .map_err(|e| AppError::Internal(e.into()))?;
    Ok(RenderedThread {
        html: SafeHtml::from_stored(html),
        has_comments,
        repliable,
    })
}

fn comment_view(item: ThreadItem, post_author_id: UserId, tz: chrono_tz::Tz) -> CommentView {
    let c = item.comment;
    let badge = match c.user_id {
        Some(id) if id == post_author_id => Some("Author"),
        Some(_) => Some("Staff"),
        None => None,
    };
    CommentView {
        id: c.id,
        date: comment_date(c.created_at, tz),
        iso_date: iso_date(c.created_at),
        body_html: SafeHtml::from_stored(c.body_html),
        avatar: identicon_svg(c.avatar_seed as u32, 48),
        author_name: c.author_name,
        author_url: c.author_url,
        badge,
        depth: item.depth,
        removed: item.removed,
        awaiting: item.awaiting,
        can_reply: item.can_reply,
        opens_children: item.opens_children,
        closes: item.closes,
    }
}
