//! Comment bodies: plain text in, paragraphs and safe links out.

use std::collections::{HashMap, HashSet};
use std::sync::LazyLock;

use linkify::{LinkFinder, LinkKind};

use super::SafeHtml;

pub(super) const LINK_REL: &str = "nofollow ugc noopener";

/// Renders a comment body. Everything is escaped; the only markup produced is `<p>`, `<br>`
/// and links to http(s) URLs. Never truncates.
pub fn render_comment(text: &str) -> SafeHtml {
    let mut html = String::with_capacity(text.len() + text.len() / 4);
    for paragraph in paragraphs(text) {
        html.push_str("<p>");
        for (i, line) in paragraph.lines().enumerate() {
            if i > 0 {
                html.push_str("<br>\n");
            }
            push_linkified(&mut html, line);
        }
        html.push_str("</p>\n");
    }
    // Defence in depth: if the escaping above ever has a bug, the allow-list still holds.
    SafeHtml(COMMENT_SANITIZER.clean(&html).to_string())
}

/// The number of web links (http, https or www.) in `text`, e.g. for spam heuristics.
pub fn count_links(text: &str) -> usize {
    web_links(text).count()
}

/// Blocks of text separated by blank (or whitespace-only) lines, trimmed, never empty.
/// `str::lines` also strips the `\r` of Windows line endings.
fn paragraphs(text: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Vec<&str> = Vec::new();
    for line in text.lines() {
        if line.trim().is_empty() {
            if !current.is_empty() {
                blocks.push(current.join("\n"));
                current.clear();
            }
        } else {
            current.push(line.trim_end());
        }
    }
    if !current.is_empty() {
        blocks.push(current.join("\n"));
    }
    blocks
}

/// Appends `line` escaped, with web links turned into anchors.
fn push_linkified(html: &mut String, line: &str) {
    let mut last = 0;
    for (start, end, href) in web_links(line) {
        push_escaped(html, &line[last..start]);
        html.push_str("<a href=\"");
        push_escaped(html, &href);
        html.push_str("\" rel=\"");
        html.push_str(LINK_REL);
        html.push_str("\">");
        push_escaped(html, &line[start..end]);
        html.push_str("</a>");
        last = end;
    }
    push_escaped(html, &line[last..]);
}

/// Byte ranges and hrefs of the http(s) and `www.` URLs in `text`.
///
/// linkify also finds other schemes and bare domains; those stay text, which is how a
/// `javascript:` URL can never become a link.
pub(super) fn web_links(text: &str) -> impl Iterator<Item = (usize, usize, String)> + '_ {
    let mut finder = LinkFinder::new();
    finder.kinds(&[LinkKind::Url]).url_must_have_scheme(false);
    finder.links(text).filter_map(|link| {
        let url = link.as_str();
        let href =
            if has_prefix_ignore_case(url, "http://") || has_prefix_ignore_case(url, "https://") {
                url.to_owned()
            } else if has_prefix_ignore_case(url, "www.") {
                format!("http://{url}")
            } else {
                return None;
            };
        Some((link.start(), link.end(), href))
    })
}

fn has_prefix_ignore_case(s: &str, prefix: &str) -> bool {
    s.get(..prefix.len())
        .is_some_and(|head| head.eq_ignore_ascii_case(prefix))
}

pub(super) fn push_escaped(html: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => html.push_str("&amp;"),
            '<' => html.push_str("&lt;"),
            '>' => html.push_str("&gt;"),
            '"' => html.push_str("&quot;"),
            '\'' => html.push_str("&#39;"),
            _ => html.push(c),
        }
    }
}

static COMMENT_SANITIZER: LazyLock<ammonia::Builder<'static>> = LazyLock::new(|| {
    let mut builder = ammonia::Builder::default();
    builder
        .tags(HashSet::from(["p", "br", "a"]))
        .generic_attributes(HashSet::new())
        .tag_attributes(HashMap::from([("a", HashSet::from(["href"]))]))
        .url_schemes(HashSet::from(["http", "https"]))
        // Every href we write is absolute, so anything relative was not made by us.
        .url_relative(ammonia::UrlRelative::Deny)
        .link_rel(Some(LINK_REL));
    builder
});

#[cfg(test)]
mod tests {
    use super::*;

    fn render(text: &str) -> String {
        render_comment(text).into_string()
    }

    #[test]
    fn escapes_markup() {
        let html = render("<script>alert(1)</script> & <b>bold</b>");
        assert!(!html.contains("<script"), "{html}");
        assert!(!html.contains("<b>"), "{html}");
        assert!(
            html.contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp; &lt;b&gt;"),
            "{html}"
        );
    }

    #[test]
    fn paragraphs_and_line_breaks() {
        let html = render("first line\nsecond line\n\n\n  \nnew paragraph\r\n");
        assert_eq!(
            html,
            "<p>first line<br>\nsecond line</p>\n<p>new paragraph</p>\n"
        );
    }

    #[test]
    fn empty_comment_renders_nothing() {
        assert_eq!(render(" \n\n "), "");
    }

    #[test]
    fn autolinks_with_rel() {
        let html = render("see https://example.com/a?b=1&c=2 now");
        assert_eq!(
            html,
            "<p>see <a href=\"https://example.com/a?b=1&amp;c=2\" rel=\"nofollow ugc noopener\">\
             https://example.com/a?b=1&amp;c=2</a> now</p>\n"
        );
    }

    #[test]
    fn www_links_get_a_scheme_in_href_only() {
        let html = render("visit www.example.org.");
        assert!(
            html.contains("<a href=\"http://www.example.org\" rel=\"nofollow ugc noopener\">www.example.org</a>."),
            "{html}"
        );
    }

    #[test]
    fn javascript_is_not_linked() {
        for text in [
            "javascript:alert(1)",
            "javascript://example.com/%0aalert(1)",
            "example.com",
        ] {
            let html = render(text);
            assert!(!html.contains("<a"), "{text} → {html}");
        }
    }

    #[test]
    fn long_text_is_not_truncated() {
        let text = "word ".repeat(5000);
        assert_eq!(render(&text).matches("word").count(), 5000);
    }

    #[test]
    fn counts_web_links_only() {
        assert_eq!(count_links("no links here"), 0);
        assert_eq!(
            count_links(
                "a http://a.example b https://b.example/x c www.c.example d mailto:x@y.z e javascript:alert(1)"
            ),
            3
        );
    }
}
