//! Turning user-supplied text into HTML that templates may print unescaped.
//!
//! Everything that leaves this module as [`SafeHtml`] has been built from escaped
//! text or passed through an ammonia allow-list, so templates never need `|safe`.

mod comment_formats;
mod comment_text;
mod identicon;
mod markdown;

use std::fmt;

pub use comment_formats::CommentFormat;
pub use comment_text::{count_links, render_comment};
pub use identicon::identicon_svg;
pub use markdown::{
    MediaImage, MediaIndex, excerpt, first_image_src, media_paths, plain_text, render_post,
    render_post_with_media,
};

/// HTML that is safe to print unescaped: made only by this module's sanitising renderers,
/// or read back from a column this module filled.
///
/// The field is private so that the rest of the crate cannot wrap arbitrary strings;
/// the submodules of `render` can, because they are the sanitisers.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SafeHtml(String);

impl SafeHtml {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }

    /// For HTML that was produced by this module and stored in the database.
    pub fn from_stored(html: String) -> Self {
        Self(html)
    }
}

impl fmt::Display for SafeHtml {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

// askama picks the non-escaping path for `HtmlSafe` types by autoref specialisation,
// which only works when the template sees the concrete type (`SafeHtml` or `&SafeHtml`).
// Any filter in between (e.g. `{{ body|trim }}`) yields another type, which is escaped
// again. `.xml` templates use the HTML escaper too, so an Atom feed embedding post HTML
// as text must write `{{ body|e }}`.
impl askama::filters::HtmlSafe for SafeHtml {}

#[cfg(test)]
mod tests {
    use super::*;
    use askama::Template;

    #[derive(Template)]
    #[template(source = "<main>{{ body }}</main><p>{{ raw }}</p>", ext = "html")]
    struct Page<'a> {
        body: &'a SafeHtml,
        raw: &'a str,
    }

    #[test]
    fn askama_prints_safe_html_verbatim_but_escapes_plain_strings() {
        let body = SafeHtml::from_stored("<p>hi &amp; bye</p>".to_owned());
        let page = Page {
            body: &body,
            raw: "<b>",
        };
        assert_eq!(
            page.render().unwrap(),
            "<main><p>hi &amp; bye</p></main><p>&#60;b&#62;</p>"
        );
    }

    #[derive(Template)]
    #[template(source = "{{ body|trim }}|{{ body|e }}", ext = "xml")]
    struct Feed<'a> {
        body: &'a SafeHtml,
    }

    #[test]
    fn filters_and_explicit_escape_escape_again() {
        let body = SafeHtml::from_stored("<p>x</p>".to_owned());
        assert_eq!(
            Feed { body: &body }.render().unwrap(),
            "&#60;p&#62;x&#60;/p&#62;|&#60;p&#62;x&#60;/p&#62;"
        );
    }

    #[test]
    fn accessors_round_trip() {
        let html = SafeHtml::from_stored("<p>x</p>".to_owned());
        assert_eq!(html.as_str(), "<p>x</p>");
        assert_eq!(html.to_string(), "<p>x</p>");
        assert_eq!(html.into_string(), "<p>x</p>");
    }
}
