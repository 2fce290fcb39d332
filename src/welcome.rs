//! The first thing a new site shows: a welcome post with one approved comment, so the front
//! page, a thread and the comment form are all visible before anyone has written a word.
//! It writes a post and a comment, so it lives beside `startup`, above both features.

use diesel::prelude::*;

use crate::comments::{CommentStatus, NewComment, queries as comment_queries};
use crate::crypto::Signer;
use crate::db::ids::UserId;
use crate::db::schema::users;
use crate::db::{DbConn, DbError};
use crate::posts::{NewPost, PostKind, PostStatus, queries as post_queries};
use crate::render;
use crate::site::welcome::PLACEHOLDER_EMAIL;

const WELCOME_MARKDOWN: &str = r#"This is lectern, a blog engine whose heart is the comment section. This post was published
when the database was created, so you can see every part of a page working before you write
your own.

## What to do next

1. Open the setup link that `lectern serve` printed to create your administrator account.
2. Write a post in Markdown, in the admin or from a file with `lectern post publish post.md`.
3. Leave a comment below: it waits for moderation until you approve it, and you will see it
   marked "awaiting moderation" in the meantime.

[box type="note"]
Comment email addresses are **never published**: not on pages, not in feeds, not even hashed.
Avatars are drawn locally from a keyed hash.
[/box]

Posts support tables, footnotes[^1], ~~strikethrough~~, task lists and code:

```rust
fn main() {
    println!("Hello from lectern");
}
```

| Feature            | Default                 |
|--------------------|-------------------------|
| Database           | SQLite, embedded        |
| First comments     | held for moderation     |
| Email              | written to `mail/`      |

[^1]: Like this one.
"#;

const WELCOME_COMMENT: &str = "Hi, this is a comment.\n\nTo get started with moderating, editing, and deleting comments, visit the comments screen in the admin. A returning commenter whose earlier comment was approved appears at once; everyone else waits in the queue.";

/// Publishes the welcome post once, on a database that has never had posts.
pub fn publish_if_new_site(conn: &mut DbConn, signer: &Signer) -> Result<bool, DbError> {
    // Several servers may start at once on one PostgreSQL database: one of them seeds.
    crate::db::startup_lock(conn)?;
    if crate::site::get(conn, "welcome_published")?.is_some()
        || post_queries::count_posts(conn)? > 0
    {
        return Ok(false);
    }
    let now = crate::db::now();
    let author_id =
        match users::table
            .select(users::id)
            .order(users::id.asc())
            .first::<UserId>(conn)
            .optional()?
        {
            Some(id) => id,
            None => crate::users::insert(
                conn,
                &crate::users::NewUser {
                    email: PLACEHOLDER_EMAIL,
                    display_name: "The lectern team",
                    slug: "lectern",
                    bio: "lectern is a blog engine whose heart is the comment section done right.",
                    role: crate::users::Role::Moderator,
                    // No password hash ever matches "!", and the account is disabled.
                    password_hash: "!",
                    disabled: true,
                    created_at: now,
                    updated_at: now,
                },
            )?
            .id,
        };
    let body_html = render::render_post(WELCOME_MARKDOWN);
    let excerpt = render::excerpt(WELCOME_MARKDOWN, 280);
    let post = post_queries::insert(
        conn,
        &NewPost {
            slug: crate::site::welcome::WELCOME_SLUG,
            title: "Welcome to lectern",
            body_markdown: WELCOME_MARKDOWN,
            body_html: body_html.as_str(),
            excerpt: &excerpt,
            author_id,
            kind: PostKind::Post,
            status: PostStatus::Published,
            published_at: now,
            comments_open: true,
            updated_at: now,
        },
    )?;
    post_queries::set_tags(conn, post.id, &["lectern".to_string()])?;
    let email = "commenter@lectern.invalid";
    comment_queries::insert(
        conn,
        &NewComment {
            post_id: post.id,
            parent_id: None,
            user_id: None,
            author_name: "A lectern Commenter",
            author_email: email,
            author_url: Some("https://example.org"),
            body: WELCOME_COMMENT,
            body_html: render::render_comment(WELCOME_COMMENT).as_str(),
            format: render::CommentFormat::Plain,
            status: CommentStatus::Approved,
            held_reason: None,
            ip: None,
            ip_network: None,
            user_agent: "",
            avatar_seed: signer.keyed_u32("avatar", email) as i32,
            notify: false,
            created_at: now,
            updated_at: now,
        },
    )?;
    crate::site::put(conn, "welcome_published", "true")?;
    Ok(true)
}
