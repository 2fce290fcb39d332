//! Posts and pages: the model, its queries, the public pages and publishing from files.

pub mod editor;
pub mod handlers;
pub mod publish;
pub mod queries;
pub mod scheduler;
pub mod search;

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::ids::{PostId, UserId};
use crate::db::schema::{posts, tags};

#[derive(Debug, Clone, Copy, PartialEq, Eq, diesel::AsExpression, diesel::FromSqlRow)]
#[diesel(sql_type = diesel::sql_types::Text)]
pub enum PostStatus {
    Draft,
    Published,
    Scheduled,
    Trash,
}

crate::db::text_column_enum!(PostStatus);

impl PostStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            PostStatus::Draft => "draft",
            PostStatus::Published => "published",
            PostStatus::Scheduled => "scheduled",
            PostStatus::Trash => "trash",
        }
    }

    pub fn parse(text: &str) -> Option<PostStatus> {
        [
            PostStatus::Draft,
            PostStatus::Published,
            PostStatus::Scheduled,
            PostStatus::Trash,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, diesel::AsExpression, diesel::FromSqlRow)]
#[diesel(sql_type = diesel::sql_types::Text)]
pub enum PostKind {
    Post,
    Page,
}

crate::db::text_column_enum!(PostKind);

impl PostKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PostKind::Post => "post",
            PostKind::Page => "page",
        }
    }

    pub fn parse(text: &str) -> Option<PostKind> {
        [PostKind::Post, PostKind::Page]
            .into_iter()
            .find(|k| k.as_str() == text)
    }

    /// Where readers find a post of this kind with `slug`.
    pub fn path(self, slug: &str) -> String {
        match self {
            PostKind::Post => format!("/posts/{slug}"),
            PostKind::Page => format!("/pages/{slug}"),
        }
    }
}

#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = posts)]
pub struct Post {
    pub id: PostId,
    pub slug: String,
    pub title: String,
    pub body_markdown: String,
    pub body_html: String,
    pub excerpt: String,
    pub author_id: UserId,
    pub kind: PostKind,
    pub status: PostStatus,
    pub status_before_trash: Option<PostStatus>,
    pub published_at: NaiveDateTime,
    pub comments_open: bool,
    pub approved_comment_count: i32,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    /// Moved on by database triggers whenever the public thread may have changed (migration
    /// 000006); the key of the post's rendered comments in `crate::thread_cache`.
    pub thread_version: i64,
}

impl Post {
    /// Whether readers can see it at `now`.
    pub fn is_visible(&self, now: NaiveDateTime) -> bool {
        self.status == PostStatus::Published && self.published_at <= now
    }

    pub fn kind(&self) -> PostKind {
        self.kind
    }

    pub fn status(&self) -> PostStatus {
        self.status
    }

    /// The public address of the post (whether or not readers can see it yet).
    pub fn path(&self) -> String {
        self.kind().path(&self.slug)
    }

    /// What the key of this post's rendered thread is made from.
    pub fn thread_of(&self) -> crate::thread_cache::ThreadOf {
        crate::thread_cache::ThreadOf {
            post_id: self.id,
            thread_version: self.thread_version,
            path: self.path(),
            author_id: self.author_id,
        }
    }
}

#[derive(Debug, Insertable, AsChangeset)]
#[diesel(table_name = posts)]
pub struct NewPost<'a> {
    pub slug: &'a str,
    pub title: &'a str,
    pub body_markdown: &'a str,
    pub body_html: &'a str,
    pub excerpt: &'a str,
    pub author_id: UserId,
    pub kind: PostKind,
    pub status: PostStatus,
    pub published_at: NaiveDateTime,
    pub comments_open: bool,
    pub updated_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable, Identifiable, PartialEq, Eq)]
#[diesel(table_name = tags)]
pub struct Tag {
    pub id: i32,
    pub name: String,
    pub slug: String,
}
