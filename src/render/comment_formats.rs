//! The formats a comment body can be written in, and their renderers. Each comment keeps the
//! format it was written in: comments from before formatting existed stay `plain`, comments
//! from the form are `markdown` (a safe subset), and imported comments say where they came
//! from (`html` for WordPress and Disqus, whose comments are stored as HTML).

use std::collections::{HashMap, HashSet};
use std::ops::Range;
use std::sync::LazyLock;

use pulldown_cmark::{CowStr, Event, LinkType, Options, Parser, Tag, TagEnd};

use super::SafeHtml;
use super::comment_text::{LINK_REL, render_comment, web_links};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, diesel::AsExpression, diesel::FromSqlRow)]
#[diesel(sql_type = diesel::sql_types::Text)]
pub enum CommentFormat {
    /// Paragraphs, line breaks and linked URLs; everything else is text.
    Plain,
    /// The comment Markdown subset: paragraphs, line breaks, emphasis, strong, code, fenced
    /// code, quotes, lists and links. No images, headings, tables or raw HTML (shown as text).
    Markdown,
    /// HTML as WordPress or Disqus stored it, kept through the same allow-list.
    Html,
}

impl CommentFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            CommentFormat::Plain => "plain",
            CommentFormat::Markdown => "markdown",
            CommentFormat::Html => "html",
        }
    }

    pub fn parse(text: &str) -> Option<CommentFormat> {
        match text {
            "plain" => Some(CommentFormat::Plain),
            "markdown" => Some(CommentFormat::Markdown),
            "html" => Some(CommentFormat::Html),
            _ => None,
        }
    }

    /// Renders `text` written in this format. Never truncates.
    pub fn render(self, text: &str) -> SafeHtml {
        match self {
            CommentFormat::Plain => render_comment(text),
            CommentFormat::Markdown => render_markdown(text),
            CommentFormat::Html => render_html(text),
        }
    }
}

fn markdown_options() -> Options {
    // Tables, footnotes, task lists, strikethrough, heading attributes: all off, so their
    // syntax stays text.
    Options::empty()
}

/// Renders the comment Markdown subset. Line breaks inside a paragraph are kept (readers type
/// them on purpose); what the subset leaves out (headings, images, raw HTML) is shown as the
/// text that was typed; bare URLs become links.
fn render_markdown(text: &str) -> SafeHtml {
    let mut events: Vec<Event<'_>> = Vec::new();
    // Inside a link or code, text is not linkified again.
    let mut in_link = 0usize;
    let mut in_code = 0usize;
    // While Some(end): the events of a construct shown as its source text are skipped until
    // the one that ends it.
    let mut skip_until: Option<TagEnd> = None;
    for (event, range) in Parser::new_ext(text, markdown_options()).into_offset_iter() {
        if let Some(end) = &skip_until {
            if matches!(&event, Event::End(e) if e == end) {
                skip_until = None;
            }
            continue;
        }
        match event {
            Event::Start(Tag::Heading { level, .. }) => {
                push_source_paragraph(&mut events, text, range);
                skip_until = Some(TagEnd::Heading(level));
            }
            Event::Start(Tag::Image { .. }) => {
                push_source_text(&mut events, text, range);
                skip_until = Some(TagEnd::Image);
            }
            Event::Start(Tag::HtmlBlock) => events.push(Event::Start(Tag::Paragraph)),
            Event::End(TagEnd::HtmlBlock) => events.push(Event::End(TagEnd::Paragraph)),
            Event::Html(raw) | Event::InlineHtml(raw) => {
                push_lines(&mut events, &raw);
            }
            Event::SoftBreak => events.push(Event::HardBreak),
            Event::Start(Tag::Link {
                link_type,
                dest_url,
                title,
                id,
            }) => {
                in_link += 1;
                events.push(Event::Start(Tag::Link {
                    link_type,
                    dest_url: absolute_or_dropped(dest_url),
                    title,
                    id,
                }));
            }
            Event::End(TagEnd::Link) => {
                in_link = in_link.saturating_sub(1);
                events.push(Event::End(TagEnd::Link));
            }
            Event::Start(Tag::CodeBlock(_)) => {
                in_code += 1;
                // No language class: the allow-list keeps no attributes on code.
                events.push(Event::Start(Tag::CodeBlock(
                    pulldown_cmark::CodeBlockKind::Fenced(CowStr::Borrowed("")),
                )));
            }
            Event::End(TagEnd::CodeBlock) => {
                in_code = in_code.saturating_sub(1);
                events.push(Event::End(TagEnd::CodeBlock));
            }
            Event::Text(t) if in_link == 0 && in_code == 0 => push_linkified(&mut events, t),
            Event::FootnoteReference(label) => {
                events.push(Event::Text(CowStr::from(format!("[^{label}]"))));
            }
            Event::TaskListMarker(done) => {
                events.push(Event::Text(CowStr::Borrowed(if done {
                    "[x] "
                } else {
                    "[ ] "
                })));
            }
            other => events.push(other),
        }
    }
    let mut html = String::with_capacity(text.len() * 3 / 2);
    pulldown_cmark::html::push_html(&mut html, events.into_iter());
    SafeHtml(MARKDOWN_SANITIZER.clean(&html).to_string())
}

/// Link targets a comment may have: absolute http(s) and mailto. Anything else (relative,
/// `javascript:`) loses its target, keeping its text.
fn absolute_or_dropped(url: CowStr<'_>) -> CowStr<'_> {
    let lower = url.trim_start().to_ascii_lowercase();
    if lower.starts_with("http://") || lower.starts_with("https://") || lower.starts_with("mailto:")
    {
        url
    } else {
        CowStr::Borrowed("")
    }
}

/// The typed source of a construct the subset leaves out, as a paragraph of text.
fn push_source_paragraph<'a>(events: &mut Vec<Event<'a>>, text: &'a str, range: Range<usize>) {
    events.push(Event::Start(Tag::Paragraph));
    push_lines(events, text[range].trim_end());
    events.push(Event::End(TagEnd::Paragraph));
}

fn push_source_text<'a>(events: &mut Vec<Event<'a>>, text: &'a str, range: Range<usize>) {
    push_lines(events, &text[range]);
}

/// Text whose line breaks are kept as `<br>`.
fn push_lines<'a>(events: &mut Vec<Event<'a>>, text: &str) {
    for (i, line) in text.trim_end_matches('\n').split('\n').enumerate() {
        if i > 0 {
            events.push(Event::HardBreak);
        }
        events.push(Event::Text(CowStr::from(
            line.trim_end_matches('\r').to_string(),
        )));
    }
}

/// Text with its web URLs as links.
fn push_linkified<'a>(events: &mut Vec<Event<'a>>, text: CowStr<'a>) {
    let mut last = 0;
    let links: Vec<_> = web_links(&text).collect();
    if links.is_empty() {
        events.push(Event::Text(text));
        return;
    }
    for (start, end, href) in links {
        if start > last {
            events.push(Event::Text(CowStr::from(text[last..start].to_string())));
        }
        events.push(Event::Start(Tag::Link {
            link_type: LinkType::Autolink,
            dest_url: CowStr::from(href),
            title: CowStr::Borrowed(""),
            id: CowStr::Borrowed(""),
        }));
        events.push(Event::Text(CowStr::from(text[start..end].to_string())));
        events.push(Event::End(TagEnd::Link));
        last = end;
    }
    if last < text.len() {
        events.push(Event::Text(CowStr::from(text[last..].to_string())));
    }
}

/// HTML comments as WordPress and Disqus store them: without paragraph tags (WordPress adds
/// them when it shows a comment), so blank lines become paragraphs and single line breaks
/// `<br>`, as WordPress shows them; then the allow-list.
fn render_html(text: &str) -> SafeHtml {
    let text = text.replace("\r\n", "\n");
    // Most comments are plain text: with no tag, entity or NUL in it, the allow-list would
    // only escape, so the paragraphs are built directly (an import renders a million of them).
    if !text.contains(['<', '&', '\0']) {
        return SafeHtml(plain_paragraphs(&text));
    }
    let mut html = String::with_capacity(text.len() + text.len() / 4);
    for block in text.split("\n\n").map(str::trim).filter(|b| !b.is_empty()) {
        let starts_block = BLOCK_TAGS.iter().any(|tag| {
            block
                .get(..tag.len())
                .is_some_and(|h| h.eq_ignore_ascii_case(tag))
        });
        if starts_block {
            html.push_str(block);
            html.push('\n');
        } else {
            html.push_str("<p>");
            html.push_str(&block.replace('\n', "<br>\n"));
            html.push_str("</p>\n");
        }
    }
    SafeHtml(MARKDOWN_SANITIZER.clean(&html).to_string())
}

/// `render_html`'s paragraphs for text without markup, escaped as the sanitiser escapes text.
fn plain_paragraphs(text: &str) -> String {
    let mut html = String::with_capacity(text.len() + text.len() / 4 + 16);
    for block in text.split("\n\n").map(str::trim).filter(|b| !b.is_empty()) {
        html.push_str("<p>");
        for c in block.chars() {
            match c {
                '>' => html.push_str("&gt;"),
                '\u{a0}' => html.push_str("&nbsp;"),
                '\n' => html.push_str("<br>\n"),
                c => html.push(c),
            }
        }
        html.push_str("</p>\n");
    }
    html
}

const BLOCK_TAGS: &[&str] = &["<p", "<blockquote", "<ul", "<ol", "<pre", "<div"];

/// What a formatted comment may contain.
static MARKDOWN_SANITIZER: LazyLock<ammonia::Builder<'static>> = LazyLock::new(|| {
    let mut builder = ammonia::Builder::default();
    builder
        .tags(HashSet::from([
            "p",
            "br",
            "a",
            "em",
            "strong",
            "b",
            "i",
            "code",
            "pre",
            "blockquote",
            "ul",
            "ol",
            "li",
        ]))
        .generic_attributes(HashSet::new())
        .tag_attributes(HashMap::from([
            ("a", HashSet::from(["href"])),
            ("ol", HashSet::from(["start"])),
        ]))
        .url_schemes(HashSet::from(["http", "https", "mailto"]))
        .url_relative(ammonia::UrlRelative::Deny)
        .link_rel(Some(LINK_REL));
    builder
});

#[cfg(test)]
mod tests {
    use super::*;

    fn md(text: &str) -> String {
        CommentFormat::Markdown.render(text).into_string()
    }

    #[test]
    fn the_subset_renders() {
        let html = md(
            "Some *emphasis*, **strong** and `code`.\nA second line.\n\n> quoted\n\n- one\n- two\n\n1. first\n2. second\n\n```rust\nfn main() {}\n```",
        );
        for part in [
            "<em>emphasis</em>",
            "<strong>strong</strong>",
            "<code>code</code>",
            "<br>",
            "<blockquote>",
            "<ul>",
            "<ol>",
            "<pre><code>fn main() {}\n</code></pre>",
        ] {
            assert!(html.contains(part), "{part} missing in {html}");
        }
        assert!(!html.contains("language-"), "{html}");
    }

    #[test]
    fn links_are_safe_and_bare_urls_are_linked() {
        let html = md(
            "[site](https://example.com) and https://rust-lang.org and [x](javascript:alert(1)) and [m](mailto:a@example.com) and [r](/admin)",
        );
        assert!(
            html.contains(r#"<a href="https://example.com" rel="nofollow ugc noopener">site</a>"#),
            "{html}"
        );
        assert!(html.contains(r#"<a href="https://rust-lang.org" rel="nofollow ugc noopener">"#));
        assert!(html.contains(r#"href="mailto:a@example.com""#));
        assert!(!html.contains("javascript"), "{html}");
        assert!(!html.contains(r#"href="/admin""#), "{html}");
    }

    #[test]
    fn what_the_subset_leaves_out_is_shown_as_typed() {
        let html = md(
            "# Not a heading\n\n![alt](https://example.com/x.png)\n\n<script>alert(1)</script>\n\n<b>bold</b> | a | b |\n|---|---|",
        );
        assert!(html.contains("# Not a heading"), "{html}");
        assert!(!html.contains("<h1"), "{html}");
        assert!(!html.contains("<img"), "{html}");
        assert!(html.contains("![alt]("), "{html}");
        assert!(!html.contains("<script"), "{html}");
        assert!(html.contains("&lt;script&gt;"), "{html}");
        assert!(html.contains("&lt;b&gt;bold&lt;/b&gt;"), "{html}");
        assert!(!html.contains("<table"), "{html}");
    }

    #[test]
    fn html_comments_get_paragraphs_and_keep_only_the_allow_list() {
        let html = CommentFormat::Html
            .render("Hello <em>there</em>\nsecond line\n\n<blockquote>quoted</blockquote>\n\n<img src=x onerror=alert(1)><a href=\"http://example.com\" onclick=\"x()\">link</a>")
            .into_string();
        assert!(
            html.contains("<p>Hello <em>there</em><br>\nsecond line</p>"),
            "{html}"
        );
        assert!(html.contains("<blockquote>quoted</blockquote>"), "{html}");
        assert!(!html.contains("<img"), "{html}");
        assert!(!html.contains("onclick"), "{html}");
        assert!(html.contains(r#"rel="nofollow ugc noopener""#), "{html}");
    }

    #[test]
    fn plain_html_comments_skip_the_sanitiser_with_the_same_result() {
        for text in [
            "Hello",
            "Two\nlines\n\n\nand a \"quoted\" 'para' -> arrows > here\u{a0}nbsp",
            "  padded  \n\n  ",
            "Ünïcödé 日本 ✓ emoji 🎉\ttab",
            "",
        ] {
            let wrapped = text.replace("\r\n", "\n");
            let mut html = String::new();
            for block in wrapped
                .split("\n\n")
                .map(str::trim)
                .filter(|b| !b.is_empty())
            {
                html.push_str("<p>");
                html.push_str(&block.replace('\n', "<br>\n"));
                html.push_str("</p>\n");
            }
            let sanitised = MARKDOWN_SANITIZER.clean(&html).to_string();
            assert_eq!(plain_paragraphs(&wrapped), sanitised, "{text:?}");
        }
    }

    #[test]
    fn formats_round_trip_through_their_names() {
        for format in [
            CommentFormat::Plain,
            CommentFormat::Markdown,
            CommentFormat::Html,
        ] {
            assert_eq!(CommentFormat::parse(format.as_str()), Some(format));
        }
    }
}
