//! Comments: the model, the public thread, submission, classification.

pub mod classify;
pub mod cookies;
pub mod domain;
pub mod edit;
pub mod handlers;
pub mod notifications;
pub mod page;
pub mod queries;
pub mod submit;
pub mod thread;
pub mod views;

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::ids::{CommentId, PostId, UserId};
use crate::db::schema::comments;
use crate::render::CommentFormat;

#[derive(Debug, Clone, Copy, PartialEq, Eq, diesel::AsExpression, diesel::FromSqlRow)]
#[diesel(sql_type = diesel::sql_types::Text)]
pub enum CommentStatus {
    Pending,
    Approved,
    Spam,
    Trash,
}

crate::db::text_column_enum!(CommentStatus);

impl CommentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CommentStatus::Pending => "pending",
            CommentStatus::Approved => "approved",
            CommentStatus::Spam => "spam",
            CommentStatus::Trash => "trash",
        }
    }

    pub fn parse(text: &str) -> Option<CommentStatus> {
        match text {
            "pending" => Some(CommentStatus::Pending),
            "approved" => Some(CommentStatus::Approved),
            "spam" => Some(CommentStatus::Spam),
            "trash" => Some(CommentStatus::Trash),
            _ => None,
        }
    }
}

/// A comment as the public thread shows it. It has no email field on purpose: the public
/// pages cannot print what they never load.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = comments)]
pub struct PublicComment {
    pub id: CommentId,
    pub parent_id: Option<CommentId>,
    pub user_id: Option<UserId>,
    pub author_name: String,
    pub author_url: Option<String>,
    pub body_html: String,
    pub status: CommentStatus,
    pub avatar_seed: i32,
    pub created_at: NaiveDateTime,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = comments)]
// None is written as NULL (each column's default), so the INSERT's SQL is the same every time
// and its prepared statement, with the triggers SQLite compiles into it, is kept and reused.
#[diesel(treat_none_as_default_value = false)]
pub struct NewComment<'a> {
    pub post_id: PostId,
    pub parent_id: Option<CommentId>,
    pub user_id: Option<UserId>,
    pub author_name: &'a str,
    pub author_email: &'a str,
    pub author_url: Option<&'a str>,
    pub body: &'a str,
    pub body_html: &'a str,
    /// What `body` is written in; `body_html` was rendered from it.
    pub format: CommentFormat,
    pub status: CommentStatus,
    pub held_reason: Option<&'a str>,
    pub ip: Option<&'a str>,
    pub ip_network: Option<&'a str>,
    pub user_agent: &'a str,
    pub avatar_seed: i32,
    pub notify: bool,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}
