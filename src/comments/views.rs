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
    /// The visitor's own comment, still inside the edit window: Edit and Delete show.
    pub editable: bool,
    /// Signs the Delete form of an editable comment (see `own_comment_token`).
    pub own_token: String,
    /// Approved (staff may unapprove it); otherwise the visitor's own waiting comment.
    pub approved: bool,
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
    /// The errors as links to their fields (`#id`, message), in the form's order.
    pub summary: Vec<(&'static str, String)>,
    /// The id of the first invalid field, which gets `autofocus` (no script needed).
    pub focus: &'static str,
    /// The comment as it will appear, when the reader pressed Preview.
    pub preview: Option<PreviewView>,
    /// A moderator or admin signed in: their name replaces the name, email and website
    /// fields, and a Log out button carries their CSRF token.
    pub staff: Option<StaffView>,
}

/// The reader's comment rendered exactly as the thread would show it, above the form.
pub struct PreviewView {
    pub author_name: String,
    pub author_url: Option<String>,
    pub avatar: SafeHtml,
    pub body_html: SafeHtml,
}

/// The signed-in staff member, as the public pages show them.
#[derive(Debug, Clone)]
pub struct StaffView {
    pub name: String,
    pub csrf_token: String,
    pub is_admin: bool,
}

/// The element ids of the comment form's fields, by field name, in the order they appear.
pub const FORM_FIELD_IDS: [(&str, &str); 5] = [
    ("body", "comment"),
    ("name", "author"),
    ("email", "email"),
    ("website", "url"),
    ("parent_id", "respond"),
];

/// The error summary's links and the field to focus, in the form's order.
pub fn error_links(errors: &FieldErrors) -> (Vec<(&'static str, String)>, &'static str) {
    let summary: Vec<(&'static str, String)> = FORM_FIELD_IDS
        .iter()
        .filter_map(|(field, id)| errors.get(field).map(|m| (*id, m.to_string())))
        .collect();
    let focus = summary
        .first()
        .map(|(id, _)| *id)
        .filter(|id| *id != "respond")
        .unwrap_or("");
    (summary, focus)
}

/// The token a commenter's Edit and Delete forms carry: only a page rendered for the browser
/// holding the comment's signed cookie shows it, so another site cannot forge the request.
pub fn own_comment_token(signer: &crate::crypto::Signer, id: CommentId) -> String {
    signer.sign("own-comment", &id.to_string())
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
    /// Staff controls on each comment (never in a kept rendering).
    staff: Option<&'a StaffView>,
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
    /// The reader pressed Preview: the input is kept and shown rendered above the form.
    Preview {
        raw: Box<RawCommentForm>,
        preview: PreviewView,
    },
}

/// What a visitor's own browser may do on this page beyond reading it.
#[derive(Default)]
pub struct Personal<'a> {
    /// Their own comments still inside the edit window.
    pub editable: std::collections::HashSet<CommentId>,
    pub staff: Option<&'a StaffView>,
}

/// One page of the thread as HTML.
#[allow(clippy::too_many_arguments)]
pub fn render_thread(
    state: &AppState,
    post: &Post,
    settings: &DiscussionSettings,
    rows: Vec<PublicComment>,
    own: Vec<PublicComment>,
    cpage: u32,
    replies_open: bool,
    personal: &Personal<'_>,
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
        .map(|item| {
            let mut view = comment_view(item, post.author_id, tz);
            if personal.editable.contains(&view.id) && !view.removed {
                view.editable = true;
                view.own_token = own_comment_token(&state.signer, view.id);
            }
            view
        })
        .collect();
    let has_comments = !comments.is_empty();
    let path = post.path();
    let html = ThreadFragment {
        comments,
        path: &path,
        replies_open,
        cpage: page.page,
        cpages: page.pages,
        staff: personal.staff,
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
        approved: c.status == super::CommentStatus::Approved,
        editable: false,
        own_token: String::new(),
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
