//! Blog posts: Markdown with box shortcodes, rendered and then sanitised.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::ops::Range;
use std::sync::LazyLock;

use pulldown_cmark::{Alignment, CowStr, Event, Options, Parser, Tag, TagEnd};

use super::SafeHtml;

/// Box shortcode types; the first one is the fallback for missing or unknown types.
const BOX_TYPES: [&str; 4] = ["note", "info", "warning", "alert"];
const BOX_OPEN: &str = "[box";
const BOX_CLOSE: &str = "[/box]";

fn options() -> Options {
    Options::ENABLE_TABLES
        | Options::ENABLE_FOOTNOTES
        | Options::ENABLE_STRIKETHROUGH
        | Options::ENABLE_TASKLISTS
        | Options::ENABLE_HEADING_ATTRIBUTES
}

/// Renders a post's Markdown (raw HTML allowed) to sanitised HTML.
///
/// Headings get unique slug ids, footnotes get `fn-N` ids, table alignment becomes an
/// `align-*` class (the CSP forbids inline styles), task-list checkboxes are labelled, and `[box type="…"]…[/box]`
/// shortcodes become `<div class="box box-…" role="note">`.
pub fn render_post(markdown: &str) -> SafeHtml {
    render_post_with_media(markdown, &MediaIndex::new())
}

/// What the media library knows of one picture address: the size of the file it names and
/// every stored width of the same picture (`(address, width)`, narrowest first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaImage {
    pub width: u32,
    pub height: u32,
    pub srcset: Vec<(String, u32)>,
}

/// Known pictures by the address a post's Markdown gives them (`/media/…`).
pub type MediaIndex = HashMap<String, MediaImage>;

/// The widest a picture shows in the post column (`.wrap`'s 46rem at 16px).
const COLUMN_PX: u32 = 736;

/// [`render_post`], with each `![alt](/media/…)` the index knows becoming an `<img>` with
/// `width`, `height`, `srcset`, `sizes`, `decoding="async"`, and `loading="lazy"` unless it
/// is the post's first image. These attributes are written after sanitising (the allow-list
/// gives no author `srcset` or sizes of their own): the image leaves a placeholder, made
/// unguessable by a random nonce, that is swapped for the built tag.
pub fn render_post_with_media(markdown: &str, media: &MediaIndex) -> SafeHtml {
    let captioned = expand_captions(markdown);
    let source = expand_shortcodes(&captioned);
    let events = decorate(Parser::new_ext(&source, options()).collect());
    let nonce = if media.is_empty() {
        String::new()
    } else {
        let mut bytes = [0u8; 12];
        // Without randomness the placeholder is still unlikely text; nothing unsafe can come
        // of a guessed one (it only places a picture the library built).
        let _ = getrandom::fill(&mut bytes);
        hex::encode(bytes)
    };
    let (events, images) = media_images(events, media, &nonce);
    let mut html = String::with_capacity(source.len() * 3 / 2);
    pulldown_cmark::html::push_html(&mut html, events.into_iter());
    let mut clean = POST_SANITIZER.clean(&html).to_string();
    for (i, tag) in images.iter().enumerate() {
        clean = clean.replacen(&placeholder(&nonce, i), tag, 1);
    }
    SafeHtml(clean)
}

fn placeholder(nonce: &str, i: usize) -> String {
    format!("\u{E000}{nonce}:{i}\u{E001}")
}

/// The image addresses under `/media/` that a post's Markdown shows, in order.
pub fn media_paths(markdown: &str) -> Vec<String> {
    let captioned = expand_captions(markdown);
    let source = expand_shortcodes(&captioned);
    let mut paths: Vec<String> = Vec::new();
    for event in Parser::new_ext(&source, options()) {
        if let Event::Start(Tag::Image { dest_url, .. }) = event
            && dest_url.starts_with("/media/")
            && !paths.iter().any(|p| p == dest_url.as_ref())
        {
            paths.push(dest_url.to_string());
        }
    }
    paths
}

/// Replaces the known pictures with placeholders, and builds their tags.
fn media_images<'a>(
    events: Vec<Event<'a>>,
    media: &MediaIndex,
    nonce: &str,
) -> (Vec<Event<'a>>, Vec<String>) {
    if media.is_empty() {
        return (events, Vec::new());
    }
    let mut out = Vec::with_capacity(events.len());
    let mut tags = Vec::new();
    let mut images_seen = 0usize;
    let mut iter = events.into_iter();
    while let Some(event) = iter.next() {
        let Event::Start(Tag::Image {
            dest_url, title, ..
        }) = &event
        else {
            out.push(event);
            continue;
        };
        images_seen += 1;
        let Some(image) = media.get(dest_url.as_ref()) else {
            out.push(event);
            continue;
        };
        // The alt text is the text inside the image, up to its end.
        let mut alt = String::new();
        let mut depth = 0usize;
        for inner in iter.by_ref() {
            match inner {
                Event::Start(Tag::Image { .. }) => depth += 1,
                Event::End(TagEnd::Image) if depth == 0 => break,
                Event::End(TagEnd::Image) => depth -= 1,
                Event::Text(t) | Event::Code(t) => alt.push_str(&t),
                Event::SoftBreak | Event::HardBreak => alt.push(' '),
                _ => {}
            }
        }
        tags.push(media_img_tag(
            dest_url,
            title,
            &alt,
            image,
            images_seen == 1,
        ));
        out.push(Event::Text(placeholder(nonce, tags.len() - 1).into()));
    }
    (out, tags)
}

fn media_img_tag(src: &str, title: &str, alt: &str, image: &MediaImage, first: bool) -> String {
    let srcset: Vec<String> = image
        .srcset
        .iter()
        .map(|(url, w)| format!("{} {w}w", escape_attr(url)))
        .collect();
    let shown = image.width.min(COLUMN_PX);
    let mut tag = format!(
        r#"<img src="{}" alt="{}" width="{}" height="{}" srcset="{}" sizes="(max-width: {shown}px) 100vw, {shown}px""#,
        escape_attr(src),
        escape_attr(alt),
        image.width,
        image.height,
        srcset.join(", "),
    );
    if !title.is_empty() {
        tag.push_str(&format!(r#" title="{}""#, escape_attr(title)));
    }
    if !first {
        tag.push_str(r#" loading="lazy""#);
    }
    tag.push_str(r#" decoding="async">"#);
    tag
}

fn escape_attr(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    super::comment_text::push_escaped(&mut out, s);
    out
}

/// The address of the first picture in rendered post HTML, if any (for `og:image` and feeds).
pub fn first_image_src(html: &str) -> Option<String> {
    let start = html.find("<img ")?;
    let tag = &html[start..start + html[start..].find('>')?];
    let src_at = tag.find(" src=\"")? + " src=\"".len();
    let src = &tag[src_at..];
    let src = &src[..src.find('"')?];
    Some(src.replace("&amp;", "&"))
}

/// The post's readable text (no markup, code blocks, image alt text or shortcode tags),
/// whitespace collapsed. It is *not* HTML-escaped: let the template do that.
pub fn plain_text(markdown: &str) -> String {
    let source = expand_shortcodes(markdown);
    let mut text = String::with_capacity(source.len());
    // Depth inside blocks whose text is not prose.
    let mut hidden = 0usize;
    for event in Parser::new_ext(&source, options()) {
        match event {
            Event::Start(Tag::CodeBlock(_) | Tag::Image { .. } | Tag::MetadataBlock(_)) => {
                hidden += 1;
            }
            Event::End(TagEnd::CodeBlock | TagEnd::Image | TagEnd::MetadataBlock(_)) => {
                hidden = hidden.saturating_sub(1);
            }
            Event::Text(t) | Event::Code(t) if hidden == 0 => text.push_str(&t),
            // Words in neighbouring blocks must not run together.
            Event::SoftBreak
            | Event::HardBreak
            | Event::End(
                TagEnd::Paragraph
                | TagEnd::Heading(_)
                | TagEnd::Item
                | TagEnd::TableCell
                | TagEnd::BlockQuote(_)
                | TagEnd::FootnoteDefinition,
            ) => text.push(' '),
            _ => {}
        }
    }
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The post's prose: the text of its paragraphs (quotes and list paragraphs included), without
/// headings, table cells, code blocks, footnotes or image text, whitespace collapsed. Not
/// HTML-escaped.
pub fn prose_text(markdown: &str) -> String {
    let source = expand_shortcodes(markdown);
    let mut text = String::with_capacity(source.len());
    // Depth inside paragraphs, and inside blocks whose text is not prose.
    let mut paragraph = 0usize;
    let mut hidden = 0usize;
    for event in Parser::new_ext(&source, options()) {
        match event {
            Event::Start(
                Tag::CodeBlock(_)
                | Tag::Image { .. }
                | Tag::MetadataBlock(_)
                | Tag::Table(_)
                | Tag::FootnoteDefinition(_)
                | Tag::Heading { .. },
            ) => hidden += 1,
            Event::End(
                TagEnd::CodeBlock
                | TagEnd::Image
                | TagEnd::MetadataBlock(_)
                | TagEnd::Table
                | TagEnd::FootnoteDefinition
                | TagEnd::Heading(_),
            ) => hidden = hidden.saturating_sub(1),
            Event::Start(Tag::Paragraph) => paragraph += 1,
            Event::End(TagEnd::Paragraph) => {
                paragraph = paragraph.saturating_sub(1);
                text.push(' ');
            }
            Event::Text(t) | Event::Code(t) if hidden == 0 && paragraph > 0 => text.push_str(&t),
            Event::SoftBreak | Event::HardBreak => text.push(' '),
            _ => {}
        }
    }
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// [`prose_text`] cut at a word boundary to at most `max_chars` characters, followed by
/// "…" when anything was cut (so the result may be `max_chars + 1` characters long).
pub fn excerpt(markdown: &str, max_chars: usize) -> String {
    let text = prose_text(markdown);
    let Some((limit, next)) = text.char_indices().nth(max_chars) else {
        return text;
    };
    let head = &text[..limit];
    let cut = if next.is_whitespace() {
        head
    } else {
        // A single word longer than the limit is cut mid-word rather than dropped.
        head.rfind(char::is_whitespace).map_or(head, |i| &head[..i])
    };
    let cut = cut.trim_end_matches(|c: char| c.is_whitespace() || ",;:-–—".contains(c));
    format!("{cut}…")
}

// ---------------------------------------------------------------------------------------
// Shortcodes

const CAPTION_OPEN: &str = "[caption";
const CAPTION_CLOSE: &str = "[/caption]";

/// WordPress's `[caption …]<img …> Text[/caption]` (or `caption="Text"`), written as a paragraph
/// of its own, becomes `<figure>` with the image and a `<figcaption>`. Blocks inside fenced or
/// indented code are left alone.
fn expand_captions(markdown: &str) -> Cow<'_, str> {
    if !markdown.contains(CAPTION_OPEN) {
        return Cow::Borrowed(markdown);
    }
    let mut out = String::with_capacity(markdown.len() + 64);
    let mut fence: Option<&str> = None;
    for (i, block) in markdown.split("\n\n").enumerate() {
        if i > 0 {
            out.push_str("\n\n");
        }
        let trimmed = block.trim();
        let in_code = fence.is_some() || block.starts_with("    ") || block.starts_with('\t');
        match (in_code, caption_figure(trimmed)) {
            (false, Some(figure)) => out.push_str(&figure),
            _ => out.push_str(block),
        }
        for line in block.lines() {
            let line = line.trim_start();
            for marker in ["```", "~~~"] {
                if line.starts_with(marker) {
                    fence = match fence {
                        Some(open) if open == marker => None,
                        None => Some(marker),
                        other => other,
                    };
                }
            }
        }
    }
    Cow::Owned(out)
}

/// The figure for a block that is one caption shortcode, if it is one.
fn caption_figure(block: &str) -> Option<String> {
    let rest = block.strip_prefix(CAPTION_OPEN)?;
    if !rest.starts_with([' ', ']']) {
        return None;
    }
    let inner = rest.strip_suffix(CAPTION_CLOSE)?;
    let tag_end = inner.find(']')?;
    let (attrs, content) = (&inner[..tag_end], inner[tag_end + 1..].trim());
    let lower = content.to_ascii_lowercase();
    let image_end = if lower.starts_with("<a") {
        lower.find("</a>").map(|e| e + "</a>".len())
    } else if lower.starts_with("<img") {
        lower.find('>').map(|e| e + 1)
    } else {
        Some(0)
    }?;
    let image = content[..image_end].trim();
    let text = content[image_end..].trim();
    let text = if text.is_empty() {
        caption_attribute(attrs).unwrap_or_default()
    } else {
        text.to_string()
    };
    let mut figure = String::from("<figure>");
    figure.push_str(&image.replace('\n', " "));
    if !text.is_empty() {
        figure.push_str("<figcaption>");
        figure.push_str(&text.replace('\n', " "));
        figure.push_str("</figcaption>");
    }
    figure.push_str("</figure>");
    Some(figure)
}

/// The old form's `caption="…"` attribute.
fn caption_attribute(attrs: &str) -> Option<String> {
    let start = attrs.find("caption=")? + "caption=".len();
    let value = &attrs[start..];
    let quote = value.chars().next().filter(|c| *c == '"' || *c == '\'')?;
    let value = &value[1..];
    value.find(quote).map(|end| value[..end].to_string())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shortcode {
    Open(&'static str),
    Close,
}

/// Replaces matched box shortcodes with `<div>` lines surrounded by blank lines.
///
/// CommonMark ends a `<div>` HTML block at the next blank line, so the box's inner text is
/// still parsed as Markdown, and the whole post stays one document: reference links,
/// footnotes and heading ids work across box boundaries. Shortcodes are recognised only
/// where the Markdown parser sees paragraph text, which is what keeps code spans, code
/// blocks, link targets and raw HTML untouched. A box opened inside a list item or quote
/// ends that container; boxes are meant for the top level.
fn expand_shortcodes(markdown: &str) -> Cow<'_, str> {
    if !markdown.contains(BOX_OPEN) {
        return Cow::Borrowed(markdown);
    }
    let tokens = find_shortcodes(markdown);

    // Pair closers with the nearest open box; anything left unpaired stays literal text.
    let mut open: Vec<usize> = Vec::new();
    let mut paired = vec![false; tokens.len()];
    for (i, (_, code)) in tokens.iter().enumerate() {
        match code {
            Shortcode::Open(_) => open.push(i),
            Shortcode::Close => {
                if let Some(opener) = open.pop() {
                    paired[opener] = true;
                    paired[i] = true;
                }
            }
        }
    }

    let mut out = String::with_capacity(markdown.len() + 64 * tokens.len());
    let mut last = 0;
    for ((range, code), _) in tokens.iter().zip(&paired).filter(|(_, p)| **p) {
        out.push_str(&markdown[last..range.start]);
        match code {
            Shortcode::Open(kind) => {
                out.push_str("\n\n<div class=\"box box-");
                out.push_str(kind);
                out.push_str("\" role=\"note\">\n\n");
            }
            Shortcode::Close => out.push_str("\n\n</div>\n\n"),
        }
        // Text that followed the tag now starts a line; four spaces there would make it code.
        let rest = &markdown[range.end..];
        last = range.end + (rest.len() - rest.trim_start_matches([' ', '\t']).len());
    }
    out.push_str(&markdown[last..]);
    Cow::Owned(out)
}

/// Shortcode tags, in source order, that lie in paragraph text.
fn find_shortcodes(markdown: &str) -> Vec<(Range<usize>, Shortcode)> {
    let mut tokens = Vec::new();
    for span in prose_spans(markdown) {
        let mut at = span.start;
        while let Some(offset) = markdown[at..span.end].find('[') {
            let start = at + offset;
            let escaped = markdown[..start].ends_with('\\');
            match parse_shortcode(&markdown[start..span.end]) {
                Some((len, code)) if !escaped => {
                    tokens.push((start..start + len, code));
                    at = start + len;
                }
                _ => at = start + 1,
            }
        }
    }
    tokens
}

/// Byte ranges of paragraph text outside links and images, with adjacent text events
/// merged (the parser splits text at every `[`).
fn prose_spans(markdown: &str) -> Vec<Range<usize>> {
    let mut spans: Vec<Range<usize>> = Vec::new();
    let mut in_paragraph = 0usize;
    let mut in_link = 0usize;
    for (event, range) in Parser::new_ext(markdown, options()).into_offset_iter() {
        match event {
            Event::Start(Tag::Paragraph) => in_paragraph += 1,
            Event::End(TagEnd::Paragraph) => in_paragraph = in_paragraph.saturating_sub(1),
            Event::Start(Tag::Link { .. } | Tag::Image { .. }) => in_link += 1,
            Event::End(TagEnd::Link | TagEnd::Image) => in_link = in_link.saturating_sub(1),
            Event::Text(_) if in_paragraph > 0 && in_link == 0 => match spans.last_mut() {
                Some(last) if last.end == range.start => last.end = range.end,
                _ => spans.push(range),
            },
            _ => {}
        }
    }
    spans
}

/// Parses `[box …]` or `[/box]` at the start of `s`, returning its length.
fn parse_shortcode(s: &str) -> Option<(usize, Shortcode)> {
    if s.starts_with(BOX_CLOSE) {
        return Some((BOX_CLOSE.len(), Shortcode::Close));
    }
    let rest = s.strip_prefix(BOX_OPEN)?;
    let end = rest.find(']')?;
    let attrs = &rest[..end];
    // `[boxes]` is not a shortcode, and a tag never spans lines or holds brackets.
    if !(attrs.is_empty() || attrs.starts_with([' ', '\t'])) || attrs.contains(['\n', '[']) {
        return None;
    }
    Some((BOX_OPEN.len() + end + 1, Shortcode::Open(box_type(attrs))))
}

/// The `type` attribute (quoted or bare) if it names a known box type, else the fallback.
fn box_type(attrs: &str) -> &'static str {
    let value = attrs
        .split_whitespace()
        .find_map(|attr| attr.strip_prefix("type="))
        .map(|v| v.trim_matches(['"', '\'']).to_ascii_lowercase());
    BOX_TYPES
        .into_iter()
        .find(|kind| value.as_deref() == Some(*kind))
        .unwrap_or(BOX_TYPES[0])
}

// ---------------------------------------------------------------------------------------
// Event rewriting

/// Gives headings unique ids, numbers footnotes with `fn-N` ids, and replaces the table
/// cell `style` that pulldown-cmark writes with an `align` attribute.
fn decorate(events: Vec<Event<'_>>) -> Vec<Event<'_>> {
    let footnotes = footnote_numbers(&events);
    // Footnote ids are reserved first so that a heading can never take one.
    let mut used: HashSet<String> = footnotes.values().map(|n| format!("fn-{n}")).collect();
    let mut heading_ids = heading_ids(&events, &mut used).into_iter();
    let number = |name: &str| {
        footnotes
            .get(&name.to_lowercase())
            .copied()
            .unwrap_or_default()
    };

    let mut alignments: Vec<Alignment> = Vec::new();
    let mut in_head = false;
    let mut column = 0;
    events
        .into_iter()
        .map(|event| match event {
            Event::Start(Tag::Heading {
                level,
                id,
                classes,
                attrs,
            }) => Event::Start(Tag::Heading {
                level,
                id: heading_ids.next().map(CowStr::from).or(id),
                classes,
                attrs,
            }),
            Event::Start(Tag::Table(aligns)) => {
                alignments = aligns;
                Event::Start(Tag::Table(Vec::new()))
            }
            Event::Start(Tag::TableHead) => {
                in_head = true;
                column = 0;
                event
            }
            Event::End(TagEnd::TableHead) => {
                in_head = false;
                event
            }
            Event::Start(Tag::TableRow) => {
                column = 0;
                event
            }
            Event::Start(Tag::TableCell) => {
                let cell = if in_head { "th" } else { "td" };
                let align = match alignments.get(column) {
                    Some(Alignment::Left) => " class=\"align-left\"",
                    Some(Alignment::Center) => " class=\"align-center\"",
                    Some(Alignment::Right) => " class=\"align-right\"",
                    _ => "",
                };
                Event::Html(format!("<{cell}{align}>").into())
            }
            Event::End(TagEnd::TableCell) => {
                column += 1;
                Event::Html(if in_head { "</th>" } else { "</td>" }.into())
            }
            Event::FootnoteReference(name) => {
                let n = number(&name);
                Event::InlineHtml(
                    format!(r##"<sup class="footnote-reference"><a href="#fn-{n}">{n}</a></sup>"##)
                        .into(),
                )
            }
            Event::Start(Tag::FootnoteDefinition(name)) => {
                let n = number(&name);
                Event::Html(
                    format!(
                        r#"<div class="footnote-definition" id="fn-{n}"><sup class="footnote-definition-label">{n}</sup>"#
                    )
                    .into(),
                )
            }
            Event::End(TagEnd::FootnoteDefinition) => Event::Html("</div>\n".into()),
            // A checkbox needs a name: say what its tick means.
            Event::TaskListMarker(done) => Event::InlineHtml(
                if done {
                    r#"<input type="checkbox" disabled checked aria-label="done"> "#
                } else {
                    r#"<input type="checkbox" disabled aria-label="not done"> "#
                }
                .into(),
            ),
            other => other,
        })
        .collect()
}

/// Footnote numbers by (case-folded) label, in order of first mention.
fn footnote_numbers(events: &[Event<'_>]) -> HashMap<String, usize> {
    let mut numbers = HashMap::new();
    for event in events {
        if let Event::FootnoteReference(name) | Event::Start(Tag::FootnoteDefinition(name)) = event
        {
            let next = numbers.len() + 1;
            numbers.entry(name.to_lowercase()).or_insert(next);
        }
    }
    numbers
}

/// One unique id per heading, in order: an explicit `{#id}` or a slug of the heading text.
fn heading_ids(events: &[Event<'_>], used: &mut HashSet<String>) -> Vec<String> {
    let mut ids = Vec::new();
    for (i, event) in events.iter().enumerate() {
        let Event::Start(Tag::Heading { id, .. }) = event else {
            continue;
        };
        let base = match id {
            Some(id) => id.to_string(),
            None => {
                let text: String = events[i + 1..]
                    .iter()
                    .take_while(|e| !matches!(e, Event::End(TagEnd::Heading(_))))
                    .filter_map(|e| match e {
                        Event::Text(t) | Event::Code(t) => Some(t.as_ref()),
                        _ => None,
                    })
                    .collect();
                slugify(&text)
            }
        };
        let mut candidate = base.clone();
        let mut n = 1;
        while used.contains(&candidate) {
            candidate = format!("{base}-{n}");
            n += 1;
        }
        used.insert(candidate.clone());
        ids.push(candidate);
    }
    ids
}

/// "## Hello, World" → "hello-world": lowercase letters and digits, runs of spaces,
/// hyphens and underscores become one hyphen, other punctuation is dropped.
fn slugify(text: &str) -> String {
    let mut slug = String::with_capacity(text.len());
    let mut gap = false;
    for c in text.chars() {
        if c.is_alphanumeric() {
            if gap && !slug.is_empty() {
                slug.push('-');
            }
            gap = false;
            slug.extend(c.to_lowercase());
        } else if c.is_whitespace() || c == '-' || c == '_' {
            gap = true;
        }
    }
    if slug.is_empty() {
        slug.push_str("section");
    }
    slug
}

// ---------------------------------------------------------------------------------------
// Sanitising

/// The allow-list for post HTML: what Markdown produces plus a little common inline HTML.
static POST_SANITIZER: LazyLock<ammonia::Builder<'static>> = LazyLock::new(|| {
    let headings = ["h1", "h2", "h3", "h4", "h5", "h6"];
    let mut tag_attributes = HashMap::from([
        // Authors are trusted with `rel` (e.g. rel="me"); nothing can set `target`, so
        // no `noopener` is needed and internal links are left alone.
        ("a", HashSet::from(["href", "rel"])),
        ("img", HashSet::from(["src", "alt"])),
        ("ol", HashSet::from(["start"])),
        ("td", HashSet::from(["class", "colspan", "rowspan"])),
        ("th", HashSet::from(["class", "colspan", "rowspan"])),
        ("input", HashSet::from(["checked", "aria-label"])),
        ("code", HashSet::from(["class"])),
        ("sup", HashSet::from(["class"])),
        ("div", HashSet::from(["class", "id", "role"])),
    ]);
    for h in headings {
        tag_attributes.insert(h, HashSet::from(["id"]));
    }
    let mut tags = HashSet::from([
        "a",
        "abbr",
        "b",
        "blockquote",
        "br",
        "code",
        "dd",
        "del",
        "details",
        "div",
        "dl",
        "dt",
        "em",
        "figcaption",
        "figure",
        "hr",
        "i",
        "img",
        "input",
        "ins",
        "kbd",
        "li",
        "mark",
        "ol",
        "p",
        "pre",
        "s",
        "section",
        "small",
        "strong",
        "sub",
        "summary",
        "sup",
        "table",
        "tbody",
        "td",
        "tfoot",
        "th",
        "thead",
        "tr",
        "ul",
    ]);
    tags.extend(headings);

    let mut builder = ammonia::Builder::default();
    builder
        .tags(tags)
        // Dropped together with their content, not just unwrapped.
        .clean_content_tags(HashSet::from([
            "script", "style", "iframe", "object", "embed", "noscript", "template", "textarea",
            "svg", "math",
        ]))
        .generic_attributes(HashSet::from(["title", "lang"]))
        .tag_attributes(tag_attributes)
        // Task-list checkboxes are display-only; no other kind of input is possible.
        .set_tag_attribute_values(HashMap::from([(
            "input",
            HashMap::from([("type", "checkbox"), ("disabled", "")]),
        )]))
        .url_schemes(HashSet::from(["http", "https", "mailto"]))
        .url_relative(ammonia::UrlRelative::PassThrough)
        .link_rel(None)
        .attribute_filter(filter_attribute);
    builder
});

/// Narrows attribute values that the tag allow-list can only allow wholesale.
fn filter_attribute<'u>(element: &str, attribute: &str, value: &'u str) -> Option<Cow<'u, str>> {
    match (element, attribute) {
        (_, "class") => {
            let kept: Vec<&str> = value
                .split_ascii_whitespace()
                .filter(|class| class_allowed(element, class))
                .collect();
            (!kept.is_empty()).then(|| kept.join(" ").into())
        }
        ("input", "aria-label") => matches!(value, "done" | "not done").then_some(value.into()),
        ("div", "role") => (value == "note").then_some(value.into()),
        _ => Some(value.into()),
    }
}

/// The classes our own markup uses; author-supplied classes could otherwise pull in
/// arbitrary site styles.
fn class_allowed(element: &str, class: &str) -> bool {
    match element {
        "div" => {
            class == "box"
                || class == "footnote-definition"
                || class
                    .strip_prefix("box-")
                    .is_some_and(|kind| BOX_TYPES.contains(&kind))
        }
        "sup" => matches!(class, "footnote-reference" | "footnote-definition-label"),
        // Table column alignment, styled by the stylesheet (the CSP forbids inline styles).
        "td" | "th" => matches!(class, "align-left" | "align-center" | "align-right"),
        "code" => class.strip_prefix("language-").is_some_and(|lang| {
            !lang.is_empty()
                && lang
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+-_#.".contains(c))
        }),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(markdown: &str) -> String {
        render_post(markdown).into_string()
    }

    #[test]
    fn headings_get_unique_slug_ids() {
        let html =
            render("## Hello, World\n\n## Hello, World\n\n## Hello World\n\n# `code` & Ünïcode!\n");
        assert!(
            html.contains(r#"<h2 id="hello-world">Hello, World</h2>"#),
            "{html}"
        );
        assert!(html.contains(r#"<h2 id="hello-world-1">"#), "{html}");
        assert!(html.contains(r#"<h2 id="hello-world-2">"#), "{html}");
        assert!(html.contains(r#"<h1 id="code-ünïcode">"#), "{html}");
    }

    #[test]
    fn explicit_heading_ids_are_kept_and_attributes_sanitised() {
        let html = render("# Title {#intro onclick=alert(1)}\n\n# Intro\n");
        assert!(html.contains(r#"<h1 id="intro">Title</h1>"#), "{html}");
        assert!(html.contains(r#"<h1 id="intro-1">Intro</h1>"#), "{html}");
        assert!(!html.contains("onclick"), "{html}");
    }

    #[test]
    fn tables_use_align_classes_not_styles() {
        let html = render("| a | b | c |\n|:--|:-:|--:|\n| 1 | 2 | 3 |\n");
        assert!(html.contains("<table>"), "{html}");
        assert!(html.contains(r#"<th class="align-left">a</th>"#), "{html}");
        assert!(
            html.contains(r#"<td class="align-center">2</td>"#),
            "{html}"
        );
        assert!(html.contains(r#"<td class="align-right">3</td>"#), "{html}");
        assert!(!html.contains("align="), "{html}");
        let forged =
            render(r#"<table><tr><td class="box" align="left" style="x">1</td></tr></table>"#);
        assert!(forged.contains("<td>1</td>"), "{forged}");
        assert!(
            html.contains("<thead>") && html.contains("<tbody>"),
            "{html}"
        );
        assert!(!html.contains("style"), "{html}");
    }

    #[test]
    fn footnotes_render_with_prefixed_ids() {
        let html = render("Text[^n].\n\n# Fn 1\n\n[^n]: The note.\n");
        assert!(
            html.contains(r##"<sup class="footnote-reference"><a href="#fn-1">1</a></sup>"##),
            "{html}"
        );
        assert!(
            html.contains(r#"<div class="footnote-definition" id="fn-1"><sup class="footnote-definition-label">1</sup>"#),
            "{html}"
        );
        assert!(html.contains(r#"<h1 id="fn-1-1">"#), "{html}");
    }

    #[test]
    fn strikethrough_and_task_lists() {
        let html = render("~~gone~~\n\n- [x] done\n- [ ] todo\n");
        assert!(html.contains("<del>gone</del>"), "{html}");
        assert!(
            html.contains(r#"<input type="checkbox" disabled="" checked="" aria-label="done">"#)
                || html.contains(r#"aria-label="done""#),
            "{html}"
        );
        assert!(html.contains(r#"aria-label="not done""#), "{html}");
        assert!(!render(r#"<input type="text" aria-label="x">"#).contains("aria-label"));
        assert_eq!(html.matches(r#"type="checkbox""#).count(), 2, "{html}");
        assert_eq!(html.matches("checked").count(), 1, "{html}");
        assert_eq!(html.matches("disabled").count(), 2, "{html}");
    }

    #[test]
    fn fenced_code_keeps_language_class() {
        let html = render("```rust\nfn main() {}\n```\n");
        assert!(
            html.contains(r#"<pre><code class="language-rust">fn main() {}"#),
            "{html}"
        );
    }

    #[test]
    fn box_shortcode_on_own_lines_renders_inner_markdown() {
        for kind in BOX_TYPES {
            let html = render(&format!("[box type=\"{kind}\"]\nSome *text*.\n[/box]\n"));
            assert_eq!(
                html,
                format!(
                    "<div class=\"box box-{kind}\" role=\"note\">\n<p>Some <em>text</em>.</p>\n</div>\n"
                )
            );
        }
    }

    #[test]
    fn box_shortcode_inline_around_a_paragraph() {
        let html = render("Before.\n\n[box type='warning']Careful **now**.[/box]\n\nAfter.");
        assert!(
            html.contains(
                "<div class=\"box box-warning\" role=\"note\">\n<p>Careful <strong>now</strong>.</p>\n</div>"
            ),
            "{html}"
        );
        assert!(
            html.starts_with("<p>Before.</p>") && html.ends_with("<p>After.</p>\n"),
            "{html}"
        );
    }

    #[test]
    fn box_without_or_with_unknown_type_is_a_note() {
        for open in ["[box]", "[box type=\"shout\"]", "[box kind=info]"] {
            let html = render(&format!("{open}\nHi\n[/box]"));
            assert!(
                html.starts_with(r#"<div class="box box-note" role="note">"#),
                "{open} → {html}"
            );
        }
    }

    #[test]
    fn boxes_nest_and_see_whole_document_references() {
        let html = render(
            "[box type=info]\nOuter [link][r]\n\n[box type=alert]\nInner\n[/box]\n[/box]\n\n[r]: https://example.com\n",
        );
        assert!(
            html.contains(r#"<div class="box box-info" role="note">"#),
            "{html}"
        );
        assert!(
            html.contains(r#"<div class="box box-alert" role="note">"#),
            "{html}"
        );
        assert!(
            html.contains(r#"<a href="https://example.com">link</a>"#),
            "{html}"
        );
        assert_eq!(html.matches("</div>").count(), 2, "{html}");
    }

    #[test]
    fn shortcodes_in_code_are_untouched() {
        let html = render(
            "```\n[box type=\"info\"]\nx\n[/box]\n```\n\nUse `[box]…[/box]` like this.\n\n    [box]\n    indented\n    [/box]\n",
        );
        assert!(!html.contains("class=\"box"), "{html}");
        assert!(html.contains("[box type=\"info\"]\nx\n[/box]"), "{html}");
        assert!(html.contains("<code>[box]…[/box]</code>"), "{html}");
        assert!(html.contains("[box]\nindented\n[/box]"), "{html}");
    }

    #[test]
    fn unclosed_or_escaped_box_is_literal() {
        assert_eq!(
            render("[box type=\"info\"]\nNever closed."),
            "<p>[box type=\"info\"]\nNever closed.</p>\n"
        );
        assert_eq!(render("\\[box]x[/box]"), "<p>[box]x[/box]</p>\n");
        assert_eq!(render("[/box] stray"), "<p>[/box] stray</p>\n");
    }

    #[test]
    fn raw_html_is_sanitised() {
        let html = render(
            "<script>alert(1)</script>\n\nHi <img src=x onerror=alert(1)> <b onclick=x>b</b>\n\n<iframe src=https://evil.example></iframe><div class=\"admin box\" style=\"color:red\">d</div>\n",
        );
        assert!(
            !html.contains("script") && !html.contains("alert"),
            "{html}"
        );
        assert!(
            !html.contains("onerror") && !html.contains("onclick"),
            "{html}"
        );
        assert!(
            !html.contains("iframe") && !html.contains("style"),
            "{html}"
        );
        assert!(html.contains(r#"<img src="x">"#), "{html}");
        assert!(html.contains(r#"<div class="box">d</div>"#), "{html}");
    }

    #[test]
    fn dangerous_urls_are_dropped() {
        let html = render(
            "[x](javascript:alert(1)) [y](data:text/html,hi) ![z](javascript:alert(1)) <a href=\"JaVaScRiPt:alert(1)\">w</a>",
        );
        assert!(!html.to_lowercase().contains("javascript"), "{html}");
        assert!(!html.contains("data:"), "{html}");
        assert!(html.contains("<a>x</a>"), "{html}");
    }

    #[test]
    fn safe_urls_are_kept_without_added_rel() {
        let html =
            render("[a](https://example.com) [b](/about) [c](mailto:me@example.com) [d](#top)");
        assert!(
            html.contains(r#"<a href="https://example.com">a</a>"#),
            "{html}"
        );
        assert!(html.contains(r#"<a href="/about">b</a>"#), "{html}");
        assert!(
            html.contains(r#"<a href="mailto:me@example.com">c</a>"#),
            "{html}"
        );
        assert!(html.contains(r##"<a href="#top">d</a>"##), "{html}");
    }

    #[test]
    fn plain_text_strips_markup_code_and_shortcodes() {
        let text = plain_text(
            "# Title\n\n[box type=info]\nSome *em* and `code`.\n[/box]\n\n```\nhidden()\n```\n\n![alt](x.png) <b>bold</b>&amp;",
        );
        assert_eq!(text, "Title Some em and code. bold&");
    }

    #[test]
    fn excerpts_are_prose_only() {
        let md = "# Heading\n\nFirst paragraph[^1] with `code`.\n\n| a | b |\n|---|---|\n| cell | cell |\n\n```\nfn x() {}\n```\n\n> A quote.\n\n[^1]: The footnote.\n";
        assert_eq!(prose_text(md), "First paragraph with code. A quote.");
        assert_eq!(excerpt(md, 280), "First paragraph with code. A quote.");
    }

    #[test]
    fn excerpt_cuts_at_word_boundary() {
        let md = "The quick brown fox jumps over the lazy dog.";
        assert_eq!(
            excerpt(md, 100),
            "The quick brown fox jumps over the lazy dog."
        );
        assert_eq!(excerpt(md, 12), "The quick…");
        assert_eq!(excerpt(md, 15), "The quick brown…");
        assert_eq!(excerpt(md, 16), "The quick brown…");
        assert_eq!(excerpt("Ünïcödé wörds everywhere", 10), "Ünïcödé…");
        assert_eq!(excerpt("Supercalifragilistic", 5), "Super…");
    }

    #[test]
    fn caption_shortcode_becomes_a_figure() {
        let html = render(
            "Before.\n\n[caption id=\"attachment_5\" align=\"alignleft\" width=\"300\"]<a href=\"https://example.com/cat.jpg\"><img src=\"https://example.com/cat-300.jpg\" alt=\"A cat\"></a> A <em>fine</em> cat[/caption]\n\n[caption caption=\"Old style\"]<img src=\"x.png\">[/caption]\n\n```\n[caption]<img src=\"y.png\"> code[/caption]\n```\n",
        );
        assert!(
            html.contains(r#"<figure><a href="https://example.com/cat.jpg"><img src="https://example.com/cat-300.jpg" alt="A cat"></a><figcaption>A <em>fine</em> cat</figcaption></figure>"#),
            "{html}"
        );
        assert!(
            html.contains(
                r#"<figure><img src="x.png"><figcaption>Old style</figcaption></figure>"#
            ),
            "{html}"
        );
        assert!(html.contains("[caption]&lt;img"), "{html}");
    }

    #[test]
    fn slugs() {
        assert_eq!(slugify("Hello, World"), "hello-world");
        assert_eq!(slugify("  C++ -- rocks_now "), "c-rocks-now");
        assert_eq!(slugify("!!!"), "section");
    }
}
