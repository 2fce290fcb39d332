//! What every page's layout needs, and display formatting shared by templates.

use chrono::NaiveDateTime;
use chrono_tz::Tz;

use crate::state::AppState;

/// The parts of `base.html` that vary by page.
#[derive(Debug, Clone)]
pub struct Layout {
    pub site_title: String,
    /// The `<title>`: "Page – Site", or just the site's name on the home page.
    pub head_title: String,
    pub canonical: Option<String>,
    pub description: Option<String>,
    pub feeds: Vec<(String, String)>,
    pub og_type: &'static str,
    pub noindex: bool,
    /// `og:title` when it differs from the `<title>` (a post's own title, without the site's).
    pub og_title: Option<String>,
    /// Open Graph article details on a post page.
    pub article: Option<ArticleMeta>,
    /// `og:image`: a post's first picture, absolute.
    pub og_image: Option<String>,
    /// The header's menu, after Home (`/admin/site`).
    pub menu: Vec<crate::site::identity::MenuItem>,
    /// The site's own footer text, if any.
    pub footer: String,
    /// Whether the footer links to the staff login.
    pub login_link: bool,
    /// The fingerprinted stylesheet of the accent colour and custom CSS, if any.
    pub site_stylesheet: Option<String>,
    /// The header's logo and the tab's icon, from the media library (`/admin/site`).
    pub logo: Option<crate::site::identity::SiteImage>,
    pub favicon: Option<crate::site::identity::SiteImage>,
}

/// The `article:*` Open Graph properties of a post.
#[derive(Debug, Clone)]
pub struct ArticleMeta {
    /// RFC 3339, as `iso_date` writes it.
    pub published_time: String,
    pub modified_time: String,
    /// The author's page, absolute.
    pub author_url: String,
    pub tags: Vec<String>,
}

impl Layout {
    /// A page's layout. Every page has a description: the site's tagline (or a sentence made
    /// from its title) unless the page sets its own.
    pub fn new(state: &AppState, page_title: &str) -> Layout {
        let identity = state.identity();
        let site_title = identity.title.clone();
        let description = if identity.tagline.trim().is_empty() {
            format!("Posts and discussion on {site_title}.")
        } else {
            identity.tagline.clone()
        };
        let head_title = if page_title.is_empty() {
            site_title.clone()
        } else {
            format!("{page_title} – {site_title}")
        };
        Layout {
            feeds: vec![
                (format!("{site_title} – posts"), "/feed.xml".into()),
                (
                    format!("{site_title} – comments"),
                    "/comments/feed.xml".into(),
                ),
            ],
            site_title,
            head_title,
            canonical: None,
            description: Some(description),
            og_type: "website",
            noindex: false,
            og_title: None,
            article: None,
            og_image: None,
            menu: identity.menu.clone(),
            footer: identity.footer.clone(),
            login_link: identity.login_link,
            site_stylesheet: identity.stylesheet_path(),
            logo: identity.logo.clone(),
            favicon: identity.favicon.clone(),
        }
    }

    /// For an error page rendered without the application's state.
    pub fn bare(page_title: &str) -> Layout {
        Layout {
            site_title: "lectern".into(),
            head_title: page_title.into(),
            canonical: None,
            description: None,
            feeds: Vec::new(),
            og_type: "website",
            noindex: true,
            og_title: None,
            article: None,
            og_image: None,
            menu: Vec::new(),
            footer: String::new(),
            login_link: false,
            site_stylesheet: None,
            logo: None,
            favicon: None,
        }
    }
}

/// "January 6, 2012 at 10:47 am" in the site's time zone.
pub fn comment_date(at: NaiveDateTime, tz: Tz) -> String {
    // Parsed once: a post page formats a date per comment, and re-parsing the pattern each
    // time showed in its profile.
    static ITEMS: std::sync::LazyLock<Vec<chrono::format::Item<'static>>> =
        std::sync::LazyLock::new(|| {
            chrono::format::StrftimeItems::new("%B %-d, %Y at %-I:%M %P").collect()
        });
    at.and_utc()
        .with_timezone(&tz)
        .format_with_items(ITEMS.iter())
        .to_string()
}

/// "January 6, 2012" in the site's time zone.
pub fn post_date(at: NaiveDateTime, tz: Tz) -> String {
    at.and_utc()
        .with_timezone(&tz)
        .format("%B %-d, %Y")
        .to_string()
}

/// Machine-readable time for `<time datetime>`.
pub fn iso_date(at: NaiveDateTime) -> String {
    at.and_utc()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_read_like_wordpress() {
        let at = chrono::NaiveDate::from_ymd_opt(2012, 1, 6)
            .unwrap()
            .and_hms_opt(10, 47, 0)
            .unwrap();
        assert_eq!(
            comment_date(at, chrono_tz::UTC),
            "January 6, 2012 at 10:47 am"
        );
        assert_eq!(post_date(at, chrono_tz::UTC), "January 6, 2012");
        assert_eq!(
            comment_date(at, chrono_tz::America::New_York),
            "January 6, 2012 at 5:47 am"
        );
    }
}
