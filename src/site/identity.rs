//! Site identity, set by an admin at `/admin/site`: title and tagline (the home page's `h1` and
//! description), a navigation menu, footer text (and whether the footer offers "Log in"), an
//! accent colour, a custom stylesheet, and a logo and favicon picked from the media library.
//! `LECTERN_SITE_TITLE` is only the default title.
//!
//! Kept as settings rows with a `site_version` that every save moves on; each server keeps the
//! identity in memory and reloads it when the version it reads differs (see `AppState`). The
//! accent colour and custom CSS are served as one fingerprinted file under `/static/` (the CSP
//! allows no inline style).

use diesel::prelude::*;
use sha2::{Digest, Sha256};

use super::{get, put};
use crate::db::schema::{media, media_variants};
use crate::db::{DbConn, DbError};

pub const MAX_TITLE_CHARS: usize = 100;
pub const MAX_TAGLINE_CHARS: usize = 300;
pub const MAX_FOOTER_CHARS: usize = 500;
pub const MAX_MENU_ITEMS: usize = 20;
pub const MAX_LABEL_CHARS: usize = 60;
pub const MAX_CSS_BYTES: usize = 100 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MenuItem {
    pub label: String,
    /// A path on this site (`/pages/about`) or an http(s) address.
    pub href: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteIdentity {
    pub title: String,
    pub tagline: String,
    pub menu: Vec<MenuItem>,
    pub footer: String,
    /// `#rrggbb`, or empty for the theme's own.
    pub accent: String,
    pub custom_css: String,
    /// A "Log in" link in the public footer (off by default: staff usually know `/admin`).
    pub login_link: bool,
    /// Shown before the title in the header.
    pub logo: Option<SiteImage>,
    /// The browser tab's icon instead of lectern's own.
    pub favicon: Option<SiteImage>,
    /// Moved on by every save; servers reload when it differs from theirs.
    pub version: i64,
}

impl SiteIdentity {
    /// What a site starts with: the configured title and nothing else.
    pub fn defaults(default_title: &str) -> SiteIdentity {
        SiteIdentity {
            title: default_title.to_string(),
            tagline: String::new(),
            menu: Vec::new(),
            footer: String::new(),
            accent: String::new(),
            custom_css: String::new(),
            login_link: false,
            logo: None,
            favicon: None,
            version: 0,
        }
    }

    pub fn load(conn: &mut DbConn, default_title: &str) -> Result<SiteIdentity, DbError> {
        let text = |conn: &mut DbConn, name: &str| -> Result<String, DbError> {
            Ok(get(conn, name)?.unwrap_or_default())
        };
        let title = text(conn, "site_title")?;
        let logo = text(conn, "site_logo")?;
        let favicon = text(conn, "site_favicon")?;
        Ok(SiteIdentity {
            title: if title.trim().is_empty() {
                default_title.to_string()
            } else {
                title
            },
            tagline: text(conn, "site_tagline")?,
            menu: parse_menu(&text(conn, "site_menu")?).unwrap_or_default(),
            footer: text(conn, "site_footer")?,
            accent: text(conn, "site_accent")?,
            custom_css: text(conn, "site_css")?,
            login_link: text(conn, "site_login_link")? == "1",
            logo: SiteImage::find(conn, &logo, LOGO_WIDTH)?,
            favicon: SiteImage::find(conn, &favicon, FAVICON_WIDTH)?,
            version: load_version(conn)?,
        })
    }

    /// Stores every field and moves the version on; returns the new version.
    pub fn save(&self, conn: &mut DbConn) -> Result<i64, DbError> {
        put(conn, "site_title", &self.title)?;
        put(conn, "site_tagline", &self.tagline)?;
        put(conn, "site_menu", &menu_text(&self.menu))?;
        put(conn, "site_footer", &self.footer)?;
        put(conn, "site_accent", &self.accent)?;
        put(conn, "site_css", &self.custom_css)?;
        put(
            conn,
            "site_login_link",
            if self.login_link { "1" } else { "0" },
        )?;
        let sha = |image: &Option<SiteImage>| image.as_ref().map(|i| i.sha256.clone());
        put(conn, "site_logo", &sha(&self.logo).unwrap_or_default())?;
        put(
            conn,
            "site_favicon",
            &sha(&self.favicon).unwrap_or_default(),
        )?;
        let version = load_version(conn)? + 1;
        put(conn, "site_version", &version.to_string())?;
        Ok(version)
    }

    /// The generated stylesheet (accent colour, then the custom CSS), if there is one.
    pub fn stylesheet(&self) -> Option<String> {
        if self.accent.is_empty() && self.custom_css.trim().is_empty() {
            return None;
        }
        let mut css = String::from("/* Site identity, from /admin/site. */\n");
        if !self.accent.is_empty() {
            let a = &self.accent;
            css.push_str(&format!(
                "@media (prefers-color-scheme: light) {{\n  :root {{ --accent: {a}; --accent-hover: {a}; --link: {a}; --link-hover: {a}; --focus: {a}; }}\n}}\n"
            ));
        }
        css.push_str(&self.custom_css);
        css.push('\n');
        Some(css)
    }

    /// Where the generated stylesheet is served: its address changes with its content, so it
    /// is cached for a year.
    pub fn stylesheet_path(&self) -> Option<String> {
        self.stylesheet().map(|css| {
            let digest = Sha256::digest(css.as_bytes());
            format!("/static/site-{}.css", hex::encode(&digest[..8]))
        })
    }
}

/// The logo is drawn 40 px high (`.site-logo`): the smallest stored copy at least this wide
/// serves screens of twice that density for any shape short of a very wide banner.
pub const LOGO_WIDTH: i32 = 160;
/// Browsers ask for 16 to 48 px icons (and 180 px for a phone's home screen).
pub const FAVICON_WIDTH: i32 = 96;

/// A picture of the media library shown by every page: the logo or the favicon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteImage {
    /// The picture's SHA-256, which is what the settings keep.
    pub sha256: String,
    pub file_name: String,
    /// The copy served: the smallest stored one wide enough, else the widest there is.
    pub url: String,
    pub width: i32,
    pub height: i32,
    pub content_type: &'static str,
}

impl SiteImage {
    /// The picture with this hash, if the library has it (a deleted one is simply not shown).
    pub fn find(
        conn: &mut DbConn,
        sha256: &str,
        min_width: i32,
    ) -> Result<Option<SiteImage>, DbError> {
        if sha256.is_empty() {
            return Ok(None);
        }
        let Some((id, file_name, format, width, height)) = media::table
            .filter(media::sha256.eq(sha256))
            .select((
                media::id,
                media::file_name,
                media::format,
                media::width,
                media::height,
            ))
            .first::<(i32, String, String, i32, i32)>(conn)
            .optional()?
        else {
            return Ok(None);
        };
        let mut files: Vec<(i32, i32, String)> = media_variants::table
            .filter(media_variants::media_id.eq(id))
            .select((
                media_variants::width,
                media_variants::height,
                media_variants::format,
            ))
            .load(conn)?;
        files.push((width, height, format));
        files.sort_by_key(|(w, _, _)| *w);
        let chosen = files
            .iter()
            .find(|(w, _, _)| *w >= min_width)
            .or(files.last())
            .cloned();
        let Some((width, height, format)) = chosen else {
            return Ok(None);
        };
        let (extension, content_type) = match format.as_str() {
            "png" => ("png", "image/png"),
            "gif" => ("gif", "image/gif"),
            "webp" => ("webp", "image/webp"),
            _ => ("jpg", "image/jpeg"),
        };
        Ok(Some(SiteImage {
            sha256: sha256.to_string(),
            file_name,
            url: format!("/media/{sha256}-{width}.{extension}"),
            width,
            height,
            content_type,
        }))
    }

    /// The width to draw the logo at, 40 px high.
    pub fn logo_width(&self) -> i32 {
        if self.height <= 0 {
            40
        } else {
            (i64::from(self.width) * 40 / i64::from(self.height)).clamp(1, 400) as i32
        }
    }
}

/// The version of the stored identity (0 before the first save).
pub fn load_version(conn: &mut DbConn) -> Result<i64, DbError> {
    Ok(get(conn, "site_version")?
        .and_then(|v| v.parse().ok())
        .unwrap_or(0))
}

/// One `Label | /path` line per item, as the admin's form shows them.
pub fn menu_text(menu: &[MenuItem]) -> String {
    menu.iter()
        .map(|item| format!("{} | {}", item.label, item.href))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Menu lines `Label | /path` or `Label | https://…`, in order; blank lines are skipped.
pub fn parse_menu(text: &str) -> Result<Vec<MenuItem>, String> {
    let mut menu = Vec::new();
    for (n, line) in text.lines().enumerate().map(|(n, l)| (n + 1, l.trim())) {
        if line.is_empty() {
            continue;
        }
        let Some((label, href)) = line.split_once('|') else {
            return Err(format!(
                "Line {n}: write “Label | /address”, such as “About | /pages/about”."
            ));
        };
        let (label, href) = (label.trim(), href.trim());
        if label.is_empty() || label.chars().count() > MAX_LABEL_CHARS {
            return Err(format!(
                "Line {n}: the label must be 1 to {MAX_LABEL_CHARS} characters."
            ));
        }
        let local = href.starts_with('/') && !href.starts_with("//");
        let web = (href.starts_with("https://") || href.starts_with("http://"))
            && url::Url::parse(href).is_ok_and(|u| u.host_str().is_some());
        if !(local || web)
            || href.len() > 500
            || href
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || c == '"')
        {
            return Err(format!(
                "Line {n}: the address must be a path on this site (/pages/about) or an http(s) address."
            ));
        }
        menu.push(MenuItem {
            label: label.to_string(),
            href: href.to_string(),
        });
    }
    if menu.len() > MAX_MENU_ITEMS {
        return Err(format!("The menu can have at most {MAX_MENU_ITEMS} items."));
    }
    Ok(menu)
}

/// `#rgb` or `#rrggbb` (any case) as `#rrggbb`; empty stays empty.
pub fn parse_accent(text: &str) -> Result<String, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(String::new());
    }
    let hex = text.strip_prefix('#').unwrap_or(text);
    if !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err("Enter a colour such as #0a58ca.".into());
    }
    match hex.len() {
        6 => Ok(format!("#{}", hex.to_ascii_lowercase())),
        3 => Ok(format!(
            "#{}",
            hex.chars()
                .flat_map(|c| [c, c])
                .collect::<String>()
                .to_ascii_lowercase()
        )),
        _ => Err("Enter a colour such as #0a58ca.".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn menus_are_label_and_address_lines() {
        let menu = parse_menu("About | /pages/about\n\n Code | https://example.com/x ").unwrap();
        assert_eq!(menu.len(), 2);
        assert_eq!(menu[1].href, "https://example.com/x");
        assert_eq!(parse_menu(&menu_text(&menu)).unwrap(), menu);
        assert!(parse_menu("About /pages/about").is_err());
        assert!(parse_menu("Bad | javascript:alert(1)").is_err());
        assert!(parse_menu("Bad | //evil.example").is_err());
    }

    #[test]
    fn accents_are_hex_colours() {
        assert_eq!(parse_accent("#ABC").unwrap(), "#aabbcc");
        assert_eq!(parse_accent("0a58ca").unwrap(), "#0a58ca");
        assert_eq!(parse_accent("").unwrap(), "");
        assert!(parse_accent("red; }").is_err());
    }

    #[test]
    fn the_stylesheet_address_follows_its_content() {
        let mut identity = SiteIdentity::defaults("x");
        assert_eq!(identity.stylesheet_path(), None);
        identity.accent = "#112233".into();
        let first = identity.stylesheet_path().unwrap();
        identity.custom_css = "body { margin: 0 }".into();
        assert_ne!(identity.stylesheet_path().unwrap(), first);
    }
}
