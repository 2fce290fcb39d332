//! `lectern export --format wordpress FILE.xml`: WXR 1.2, the file WordPress's own importer
//! (Tools → Import → WordPress) reads: authors, tags, posts and pages with their HTML, and
//! their comments with threading and statuses. Nobody is locked in.
//!
//! Written as a stream inside one snapshot: posts in keyset batches, each post's comments in
//! batches of their own.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::ArchiveError;
use super::export::{in_snapshot, partial_path};
use super::progress::Progress;
use super::tables;
use crate::db::schema::{comments, post_tags, posts, tags, users};
use crate::db::{Db, DbConn};

const BATCH: i64 = 500;

/// Text as XML character data.
fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            // Characters XML 1.0 cannot carry at all.
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => {}
            c => out.push(c),
        }
    }
    out
}

/// Text as a CDATA section (WordPress writes its content this way); a `]]>` inside is split.
fn cdata(text: &str) -> String {
    let clean: String = text
        .chars()
        .filter(|&c| (c as u32) >= 0x20 || matches!(c, '\t' | '\n' | '\r'))
        .collect();
    format!("<![CDATA[{}]]>", clean.replace("]]>", "]]]]><![CDATA[>"))
}

fn wp_date(at: NaiveDateTime) -> String {
    at.format("%Y-%m-%d %H:%M:%S").to_string()
}

fn io(e: std::io::Error) -> ArchiveError {
    ArchiveError::Io(e.to_string())
}

fn post_status(status: &str) -> &'static str {
    match status {
        "published" => "publish",
        "scheduled" => "future",
        "trash" => "trash",
        _ => "draft",
    }
}

fn comment_status(status: &str) -> &'static str {
    match status {
        "approved" => "1",
        "spam" => "spam",
        "trash" => "trash",
        _ => "0",
    }
}

/// Writes the WXR of the site to `out`; returns counts of what it holds.
pub fn write_wxr(
    conn: &mut DbConn,
    out: &mut dyn Write,
    base: &str,
    title: &str,
    tz: chrono_tz::Tz,
    progress: &mut dyn Progress,
) -> Result<BTreeMap<String, u64>, ArchiveError> {
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    let local = |at: NaiveDateTime| wp_date(at.and_utc().with_timezone(&tz).naive_local());
    let now = crate::db::now();
    write!(
        out,
        "<?xml version=\"1.0\" encoding=\"UTF-8\" ?>\n\
         <!-- A WordPress eXtended RSS (WXR 1.2) export written by lectern; import it with WordPress's Tools → Import → WordPress. -->\n\
         <rss version=\"2.0\" xmlns:excerpt=\"http://wordpress.org/export/1.2/excerpt/\" \
         xmlns:content=\"http://purl.org/rss/1.0/modules/content/\" \
         xmlns:wfw=\"http://wellformedweb.org/CommentAPI/\" \
         xmlns:dc=\"http://purl.org/dc/elements/1.1/\" \
         xmlns:wp=\"http://wordpress.org/export/1.2/\">\n<channel>\n\
         <title>{}</title>\n<link>{}</link>\n<description></description>\n<pubDate>{}</pubDate>\n\
         <language>en</language>\n<wp:wxr_version>1.2</wp:wxr_version>\n\
         <wp:base_site_url>{}</wp:base_site_url>\n<wp:base_blog_url>{}</wp:base_blog_url>\n",
        esc(title),
        esc(base),
        now.and_utc().to_rfc2822(),
        esc(base),
        esc(base),
    )
    .map_err(io)?;

    // Authors: every staff account (no password, of course).
    let authors: Vec<(i32, String, String, String)> = users::table
        .select((users::id, users::slug, users::email, users::display_name))
        .order(users::id)
        .load(conn)?;
    let mut logins = BTreeMap::new();
    for (id, slug, email, name) in &authors {
        writeln!(
            out,
            "<wp:author><wp:author_id>{id}</wp:author_id><wp:author_login>{}</wp:author_login>\
             <wp:author_email>{}</wp:author_email><wp:author_display_name>{}</wp:author_display_name>\
             <wp:author_first_name>{}</wp:author_first_name><wp:author_last_name>{}</wp:author_last_name></wp:author>",
            cdata(slug),
            cdata(email),
            cdata(name),
            cdata(""),
            cdata("")
        )
        .map_err(io)?;
        logins.insert(*id, slug.clone());
    }
    *counts.entry("author".into()).or_default() += authors.len() as u64;
    let all_tags: Vec<tables::Tag> = tags::table
        .select(tables::Tag::as_select())
        .order(tags::id)
        .load(conn)?;
    for tag in &all_tags {
        writeln!(
            out,
            "<wp:tag><wp:term_id>{}</wp:term_id><wp:tag_slug>{}</wp:tag_slug><wp:tag_name>{}</wp:tag_name></wp:tag>",
            tag.id,
            cdata(&tag.slug),
            cdata(&tag.name)
        )
        .map_err(io)?;
    }
    *counts.entry("tag".into()).or_default() += all_tags.len() as u64;
    writeln!(
        out,
        "<generator>lectern {}</generator>",
        env!("CARGO_PKG_VERSION")
    )
    .map_err(io)?;

    let total: i64 = comments::table.count().get_result(conn)?;
    let mut written_comments: u64 = 0;
    let mut last_post = 0;
    loop {
        let batch: Vec<tables::Post> = posts::table
            .filter(posts::id.gt(last_post))
            .order(posts::id)
            .limit(BATCH)
            .select(tables::Post::as_select())
            .load(conn)?;
        let Some(end) = batch.last() else { break };
        last_post = end.id;
        let n = batch.len();
        for post in batch {
            let path = match post.kind.as_str() {
                "page" => format!("/pages/{}", post.slug),
                _ => format!("/posts/{}", post.slug),
            };
            write!(
                out,
                "<item>\n<title>{}</title>\n<link>{}{}</link>\n<pubDate>{}</pubDate>\n\
                 <dc:creator>{}</dc:creator>\n<guid isPermaLink=\"false\">{}/?p={}</guid>\n\
                 <description></description>\n<content:encoded>{}</content:encoded>\n\
                 <excerpt:encoded>{}</excerpt:encoded>\n<wp:post_id>{}</wp:post_id>\n\
                 <wp:post_date>{}</wp:post_date>\n<wp:post_date_gmt>{}</wp:post_date_gmt>\n\
                 <wp:post_modified>{}</wp:post_modified>\n<wp:post_modified_gmt>{}</wp:post_modified_gmt>\n\
                 <wp:comment_status>{}</wp:comment_status>\n<wp:ping_status>{}</wp:ping_status>\n\
                 <wp:post_name>{}</wp:post_name>\n<wp:status>{}</wp:status>\n\
                 <wp:post_parent>0</wp:post_parent>\n<wp:menu_order>0</wp:menu_order>\n\
                 <wp:post_type>{}</wp:post_type>\n<wp:post_password>{}</wp:post_password>\n\
                 <wp:is_sticky>0</wp:is_sticky>\n",
                esc(&post.title),
                esc(base),
                esc(&path),
                post.published_at.and_utc().to_rfc2822(),
                cdata(logins.get(&post.author_id).map_or("", String::as_str)),
                esc(base),
                post.id,
                cdata(&post.body_html),
                cdata(&post.excerpt),
                post.id,
                cdata(&local(post.published_at)),
                cdata(&wp_date(post.published_at)),
                cdata(&local(post.updated_at)),
                cdata(&wp_date(post.updated_at)),
                cdata(if post.comments_open { "open" } else { "closed" }),
                cdata("closed"),
                cdata(&post.slug),
                cdata(post_status(&post.status)),
                cdata(if post.kind == "page" { "page" } else { "post" }),
                cdata(""),
            )
            .map_err(io)?;
            let post_tag_list: Vec<(String, String)> = post_tags::table
                .inner_join(tags::table)
                .filter(post_tags::post_id.eq(post.id))
                .select((tags::slug, tags::name))
                .order(tags::slug)
                .load(conn)?;
            for (slug, name) in post_tag_list {
                writeln!(
                    out,
                    "<category domain=\"post_tag\" nicename=\"{}\">{}</category>",
                    esc(&slug),
                    cdata(&name)
                )
                .map_err(io)?;
            }
            let mut last_comment = 0;
            loop {
                let batch: Vec<tables::Comment> = comments::table
                    .filter(comments::post_id.eq(post.id))
                    .filter(comments::id.gt(last_comment))
                    .order(comments::id)
                    .limit(BATCH)
                    .select(tables::Comment::as_select())
                    .load(conn)?;
                let Some(end) = batch.last() else { break };
                last_comment = end.id;
                let n = batch.len();
                for c in batch {
                    writeln!(
                        out,
                        "<wp:comment><wp:comment_id>{}</wp:comment_id>\
                         <wp:comment_author>{}</wp:comment_author>\
                         <wp:comment_author_email>{}</wp:comment_author_email>\
                         <wp:comment_author_url>{}</wp:comment_author_url>\
                         <wp:comment_author_IP>{}</wp:comment_author_IP>\
                         <wp:comment_date>{}</wp:comment_date>\
                         <wp:comment_date_gmt>{}</wp:comment_date_gmt>\
                         <wp:comment_content>{}</wp:comment_content>\
                         <wp:comment_approved>{}</wp:comment_approved>\
                         <wp:comment_type>{}</wp:comment_type>\
                         <wp:comment_parent>{}</wp:comment_parent>\
                         <wp:comment_user_id>{}</wp:comment_user_id></wp:comment>",
                        c.id,
                        cdata(&c.author_name),
                        cdata(&c.author_email),
                        cdata(c.author_url.as_deref().unwrap_or("")),
                        cdata(c.ip.as_deref().unwrap_or("")),
                        cdata(&local(c.created_at)),
                        cdata(&wp_date(c.created_at)),
                        cdata(&c.body),
                        cdata(comment_status(&c.status)),
                        cdata("comment"),
                        c.parent_id.unwrap_or(0),
                        c.user_id.unwrap_or(0),
                    )
                    .map_err(io)?;
                    written_comments += 1;
                    if written_comments.is_multiple_of(4096) {
                        progress.tick(
                            written_comments,
                            total.max(0) as u64,
                            "written",
                            written_comments,
                        );
                    }
                }
                if (n as i64) < BATCH {
                    break;
                }
            }
            out.write_all(b"</item>\n").map_err(io)?;
            let kind = if post.kind == "page" { "page" } else { "post" };
            *counts.entry(kind.into()).or_default() += 1;
        }
        if (n as i64) < BATCH {
            break;
        }
    }
    *counts.entry("comment".into()).or_default() += written_comments;
    out.write_all(b"</channel>\n</rss>\n").map_err(io)?;
    progress.finish();
    Ok(counts)
}

/// Writes the WXR file at `path` (complete or not at all).
pub fn export_file(
    db: &Db,
    base: &str,
    title: &str,
    tz: chrono_tz::Tz,
    path: &Path,
    progress: &mut dyn Progress,
) -> Result<BTreeMap<String, u64>, ArchiveError> {
    let partial = partial_path(path);
    let file = std::fs::File::create(&partial)
        .map_err(|e| ArchiveError::Io(format!("{}: {e}", partial.display())))?;
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, file);
    let mut outcome = None;
    let read = db.read_blocking(|conn| {
        outcome = Some(in_snapshot(conn, |conn| {
            write_wxr(conn, &mut out, base, title, tz, progress)
        }));
        Ok(())
    });
    let result = read
        .map_err(ArchiveError::from)
        .and_then(|()| outcome.unwrap_or_else(|| Err(ArchiveError::Io("nothing ran".into()))))
        .and_then(|counts| {
            let file = out.into_inner().map_err(|e| io(e.into_error()))?;
            file.sync_all().map_err(io)?;
            std::fs::rename(&partial, path)
                .map_err(|e| ArchiveError::Io(format!("{}: {e}", path.display())))?;
            Ok(counts)
        });
    if result.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cdata_sections_cannot_be_closed_by_the_text() {
        assert_eq!(cdata("a]]>b"), "<![CDATA[a]]]]><![CDATA[>b]]>");
        assert_eq!(esc("<a & \"b\">"), "&lt;a &amp; &quot;b&quot;&gt;");
    }
}
