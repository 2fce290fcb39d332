//! WordPress post bodies as lectern stores them. WordPress keeps HTML without paragraph tags and
//! adds them when it shows a post (`wpautop`); lectern stores Markdown, in which HTML blocks pass
//! through as written. So each blank-line-separated block of text becomes a `<p>` (single line
//! breaks `<br>`), blocks that already start with a block-level tag stay as they are, the block
//! editor's comments go, and the shortcodes lectern knows (`[box]`, `[caption]`) are left as
//! paragraphs of their own for the post renderer to expand. Other shortcodes stay as text and are
//! named in the report.

use std::collections::BTreeSet;
use std::sync::LazyLock;

use regex::Regex;

/// A converted body and the unknown shortcodes found in it.
#[derive(Debug, Default)]
pub struct Converted {
    pub markdown: String,
    pub unknown_shortcodes: BTreeSet<String>,
}

/// Shortcodes the post renderer expands.
const KNOWN_SHORTCODES: &[&str] = &["box", "caption", "wp_caption"];

/// Tags that open a block of their own in WordPress's eyes and in CommonMark's (an HTML block
/// that runs to the next blank line, or to its closing tag for `pre`).
const BLOCK_TAGS: &[&str] = &[
    "address",
    "article",
    "aside",
    "blockquote",
    "caption",
    "col",
    "colgroup",
    "dd",
    "details",
    "div",
    "dl",
    "dt",
    "fieldset",
    "figcaption",
    "figure",
    "footer",
    "form",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "header",
    "hr",
    "legend",
    "li",
    "menu",
    "nav",
    "ol",
    "p",
    "pre",
    "section",
    "summary",
    "table",
    "tbody",
    "td",
    "tfoot",
    "th",
    "thead",
    "tr",
    "ul",
    "script",
    "style",
    "iframe",
];

static BLOCK_COMMENT: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(r"(?s)<!--\s*/?wp:.*?-->|<!--(more|nextpage|noteaser)(\s.*?)?-->").ok()
});

static BLANK_LINES: LazyLock<Option<Regex>> = LazyLock::new(|| Regex::new(r"\n[ \t]*\n").ok());

static SHORTCODE: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r"\[(/?)([A-Za-z][A-Za-z0-9_-]*)(\s[^\]\[]*)?(/?)\]").ok());

/// Converts a WordPress post body (`content:encoded`).
pub fn wordpress_body(html: &str) -> Converted {
    let text = crate::text::normalize_newlines(html);
    let text = match BLOCK_COMMENT.as_ref() {
        Some(re) => re.replace_all(&text, "").into_owned(),
        None => text,
    };
    let mut blocks: Vec<String> = Vec::new();
    for (segment, is_pre) in split_pre(&text) {
        if is_pre {
            blocks.push(segment.trim().to_string());
            continue;
        }
        let parts: Vec<&str> = match BLANK_LINES.as_ref() {
            Some(re) => re.split(segment).collect(),
            None => segment.split("\n\n").collect(),
        };
        for part in parts {
            let part = part.trim();
            if !part.is_empty() {
                blocks.push(block(part));
            }
        }
    }
    Converted {
        unknown_shortcodes: unknown_shortcodes(&text),
        markdown: blocks.join("\n\n"),
    }
}

/// One block of text as the post renderer should see it.
fn block(part: &str) -> String {
    if starts_with_block_tag(part) || is_known_shortcode_block(part) {
        return part.to_string();
    }
    let mut out = String::with_capacity(part.len() + 16);
    out.push_str("<p>");
    let mut lines = part.lines().peekable();
    while let Some(line) = lines.next() {
        out.push_str(line.trim_end());
        if lines.peek().is_some() {
            out.push_str("<br>\n");
        }
    }
    out.push_str("</p>");
    out
}

fn starts_with_block_tag(part: &str) -> bool {
    let Some(rest) = part.strip_prefix('<') else {
        return false;
    };
    let rest = rest.strip_prefix('/').unwrap_or(rest);
    let name: String = rest
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric())
        .collect::<String>()
        .to_ascii_lowercase();
    let after = rest[name.len()..].chars().next();
    BLOCK_TAGS.contains(&name.as_str())
        && matches!(after, None | Some(' ' | '>' | '/' | '\n' | '\t'))
}

/// A block that is a shortcode the renderer expands: left as a Markdown paragraph.
fn is_known_shortcode_block(part: &str) -> bool {
    KNOWN_SHORTCODES.iter().any(|name| {
        part.strip_prefix('[')
            .map(|rest| rest.strip_prefix('/').unwrap_or(rest))
            .and_then(|rest| rest.strip_prefix(name))
            .and_then(|rest| rest.chars().next())
            .is_some_and(|c| c == ']' || c == ' ')
    })
}

/// The text cut into runs outside and inside `<pre>…</pre>`, whose blank lines are kept.
fn split_pre(text: &str) -> Vec<(&str, bool)> {
    let mut out = Vec::new();
    let mut rest = text;
    loop {
        let lower = rest.to_ascii_lowercase();
        let Some(start) = lower.find("<pre") else {
            break;
        };
        let Some(end) = lower[start..]
            .find("</pre>")
            .map(|e| start + e + "</pre>".len())
        else {
            break;
        };
        out.push((&rest[..start], false));
        out.push((&rest[start..end], true));
        rest = &rest[end..];
    }
    out.push((rest, false));
    out
}

/// Names of shortcodes lectern does not know that the text uses: tags with attributes, that
/// close themselves, or that have a closing tag (a bare `[sic]` is just text).
fn unknown_shortcodes(text: &str) -> BTreeSet<String> {
    let Some(re) = SHORTCODE.as_ref() else {
        return BTreeSet::new();
    };
    let mut opened: BTreeSet<String> = BTreeSet::new();
    let mut closed: BTreeSet<String> = BTreeSet::new();
    let mut found = BTreeSet::new();
    for caps in re.captures_iter(text) {
        let name = caps.get(2).map_or("", |m| m.as_str()).to_ascii_lowercase();
        if KNOWN_SHORTCODES.contains(&name.as_str()) {
            continue;
        }
        let closing = caps.get(1).is_some_and(|m| !m.is_empty());
        let has_attrs = caps.get(3).is_some_and(|m| !m.as_str().trim().is_empty());
        let self_closing = caps.get(4).is_some_and(|m| !m.is_empty());
        if closing {
            closed.insert(name);
        } else if has_attrs || self_closing {
            found.insert(name);
        } else {
            opened.insert(name);
        }
    }
    found.extend(opened.intersection(&closed).cloned());
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn md(html: &str) -> String {
        wordpress_body(html).markdown
    }

    #[test]
    fn blank_lines_make_paragraphs_and_single_breaks_br() {
        assert_eq!(
            md("First line\nsecond line\r\n\r\nNext <em>para</em>"),
            "<p>First line<br>\nsecond line</p>\n\n<p>Next <em>para</em></p>"
        );
    }

    #[test]
    fn block_tags_and_pre_stay_whole() {
        let out = md("<h2>Title</h2>\n\n<pre>code\n\nmore code</pre>\n\ntext");
        assert_eq!(
            out,
            "<h2>Title</h2>\n\n<pre>code\n\nmore code</pre>\n\n<p>text</p>"
        );
    }

    #[test]
    fn block_editor_comments_are_dropped() {
        let out =
            md("<!-- wp:paragraph -->\n<p>Hi</p>\n<!-- /wp:paragraph -->\n\n<!--more-->\n\nRest");
        assert_eq!(out, "<p>Hi</p>\n\n<p>Rest</p>");
    }

    #[test]
    fn known_shortcodes_stay_paragraphs_and_unknown_ones_are_named() {
        let converted = wordpress_body(
            "[caption id=\"a\" width=\"300\"]<img src=\"x.jpg\"> A cat[/caption]\n\n[gallery ids=\"1,2\"]\n\n[sic] and [note]x[/note]",
        );
        assert!(converted.markdown.starts_with("[caption id=\"a\""));
        assert_eq!(
            converted.unknown_shortcodes.into_iter().collect::<Vec<_>>(),
            vec!["gallery".to_string(), "note".to_string()]
        );
    }
}
