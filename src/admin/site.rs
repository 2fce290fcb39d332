//! `GET|POST /admin/site` (admins only): the site's identity (title, tagline, menu, footer
//! text, accent colour, custom stylesheet, logo and favicon from the media library). A save is logged with what changed, moves the
//! identity's version (which the thread cache's keys carry) and takes effect on this server at
//! once, on others within seconds.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use crate::auth::Admin;
use crate::db::DbError;
use crate::error::{AppError, AppResult};
use crate::http::forms::{FieldErrors, FormFields};
use crate::http::response::{render, see_other};
use crate::posts::PostKind;
use crate::site::identity::{self, SiteIdentity, SiteImage};
use crate::staff::{AdminLayout, web_actor};
use crate::state::AppState;

/// The form as typed, so a refused form comes back exactly as it was sent.
#[derive(Debug, Clone, Default)]
pub struct SiteForm {
    pub title: String,
    pub tagline: String,
    pub menu: String,
    pub footer: String,
    pub accent: String,
    pub custom_css: String,
    pub login_link: bool,
    /// The SHA-256 of the library picture chosen as the logo, or empty.
    pub logo: String,
    pub favicon: String,
}

impl SiteForm {
    fn from_identity(site: &SiteIdentity) -> SiteForm {
        SiteForm {
            title: site.title.clone(),
            tagline: site.tagline.clone(),
            menu: identity::menu_text(&site.menu),
            footer: site.footer.clone(),
            accent: site.accent.clone(),
            custom_css: site.custom_css.clone(),
            login_link: site.login_link,
            logo: picked(&site.logo),
            favicon: picked(&site.favicon),
        }
    }

    fn from_fields(form: &FormFields) -> SiteForm {
        let text = |name: &str| crate::text::normalize_newlines(form.get(name).unwrap_or(""));
        SiteForm {
            title: text("title"),
            tagline: text("tagline"),
            menu: text("menu"),
            footer: text("footer"),
            accent: text("accent"),
            custom_css: text("custom_css"),
            login_link: form.get("login_link").is_some(),
            logo: text("logo").trim().to_string(),
            favicon: text("favicon").trim().to_string(),
        }
    }

    /// The identity this form asks for (its version still to be given), or every problem.
    fn parse(&self) -> Result<SiteIdentity, FieldErrors> {
        let mut errors = FieldErrors::new();
        let one_line = |errors: &mut FieldErrors,
                        field: &'static str,
                        text: &str,
                        max: usize,
                        required: bool| {
            let text = text.trim();
            if required && text.is_empty() {
                errors.push((field, "This cannot be empty.".into()));
            } else if text.chars().count() > max || text.chars().any(char::is_control) {
                errors.push((field, format!("At most {max} characters on one line.")));
            }
            text.to_string()
        };
        let title = one_line(
            &mut errors,
            "title",
            &self.title,
            identity::MAX_TITLE_CHARS,
            true,
        );
        let tagline = one_line(
            &mut errors,
            "tagline",
            &self.tagline,
            identity::MAX_TAGLINE_CHARS,
            false,
        );
        let footer = one_line(
            &mut errors,
            "footer",
            &self.footer,
            identity::MAX_FOOTER_CHARS,
            false,
        );
        let menu = identity::parse_menu(&self.menu)
            .map_err(|e| errors.push(("menu", e)))
            .unwrap_or_default();
        let accent = identity::parse_accent(&self.accent)
            .map_err(|e| errors.push(("accent", e)))
            .unwrap_or_default();
        let custom_css = self.custom_css.trim().to_string();
        if custom_css.len() > identity::MAX_CSS_BYTES {
            errors.push((
                "custom_css",
                format!(
                    "The stylesheet is {} KiB; the limit is {} KiB.",
                    custom_css.len() / 1024,
                    identity::MAX_CSS_BYTES / 1024
                ),
            ));
        } else if custom_css.contains('\0') {
            errors.push((
                "custom_css",
                "The stylesheet contains a NUL character.".into(),
            ));
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(SiteIdentity {
            title,
            tagline,
            menu,
            footer,
            accent,
            custom_css,
            login_link: self.login_link,
            // Looked up in the library by `resolve_pictures`.
            logo: None,
            favicon: None,
            version: 0,
        })
    }
}

fn picked(image: &Option<SiteImage>) -> String {
    image.as_ref().map(|i| i.sha256.clone()).unwrap_or_default()
}

/// The logo and favicon the form names, from the library; a picture that is not there (deleted
/// meanwhile, or a forged value) is a field error.
fn resolve_pictures(
    conn: &mut crate::db::DbConn,
    form: &SiteForm,
    wanted: &mut SiteIdentity,
    errors: &mut FieldErrors,
) -> Result<(), DbError> {
    for (field, sha, width, slot) in [
        ("logo", &form.logo, identity::LOGO_WIDTH, &mut wanted.logo),
        (
            "favicon",
            &form.favicon,
            identity::FAVICON_WIDTH,
            &mut wanted.favicon,
        ),
    ] {
        if sha.is_empty() {
            continue;
        }
        match SiteImage::find(conn, sha, width)? {
            Some(image) => *slot = Some(image),
            None => errors.push((
                field,
                "That picture is not in the media library (any more). Please choose another."
                    .into(),
            )),
        }
    }
    Ok(())
}

/// How many of the newest library pictures the logo and favicon lists offer.
const PICTURES_OFFERED: i64 = 200;

#[derive(Template)]
#[template(path = "admin/site.html")]
struct SitePage {
    layout: AdminLayout,
    form: SiteForm,
    errors: FieldErrors,
    saved: bool,
    /// (title, path) of the published pages, to put in the menu.
    pages: Vec<(String, String)>,
    /// (SHA-256, "file name (width × height)") of the library's pictures, newest first.
    pictures: Vec<(String, String)>,
    default_title: String,
}

#[derive(Deserialize)]
pub struct SiteQuery {
    saved: Option<String>,
}

async fn page(
    state: &AppState,
    admin: &Admin,
    form: SiteForm,
    errors: FieldErrors,
    saved: bool,
    status: StatusCode,
) -> AppResult<HttpResponse> {
    let now = state.clock.now();
    let (pages, pictures) = state
        .db
        .read(move |conn| {
            Ok((
                crate::posts::queries::visible_pages(conn, now)?,
                crate::media::store::recent(conn, PICTURES_OFFERED)?,
            ))
        })
        .await?;
    let pages = pages
        .into_iter()
        .map(|(title, slug)| (title, PostKind::Page.path(&slug)))
        .collect();
    let pictures = pictures
        .into_iter()
        .map(|m| {
            let label = format!("{} ({} × {})", m.file_name, m.width, m.height);
            (m.sha256, label)
        })
        .collect();
    render(
        SitePage {
            layout: AdminLayout::new(state, &admin.0, "Site identity", "site").await?,
            form,
            errors,
            saved,
            pages,
            pictures,
            default_title: state.config.site_title.clone(),
        },
        status,
    )
}

/// `GET /admin/site`
pub async fn form(
    state: web::Data<AppState>,
    admin: Admin,
    query: web::Query<SiteQuery>,
) -> AppResult<HttpResponse> {
    let current = SiteForm::from_identity(&state.identity());
    page(
        &state,
        &admin,
        current,
        FieldErrors::new(),
        query.saved.is_some(),
        StatusCode::OK,
    )
    .await
}

/// What changed, for the moderation log: each field's old → new value, long ones shortened.
fn changes(before: &SiteIdentity, after: &SiteIdentity) -> Vec<String> {
    let short = |text: &str| {
        let line = text.replace('\n', " ⏎ ");
        if line.chars().count() > 80 {
            format!("{}…", line.chars().take(80).collect::<String>())
        } else {
            line
        }
    };
    let mut out = Vec::new();
    let mut field = |name: &str, old: &str, new: &str| {
        if old != new {
            out.push(format!("{name}: “{}” → “{}”", short(old), short(new)));
        }
    };
    field("title", &before.title, &after.title);
    field("tagline", &before.tagline, &after.tagline);
    field(
        "menu",
        &identity::menu_text(&before.menu),
        &identity::menu_text(&after.menu),
    );
    field("footer", &before.footer, &after.footer);
    field("accent", &before.accent, &after.accent);
    let picture = |image: &Option<SiteImage>| {
        image
            .as_ref()
            .map_or_else(|| "none".to_string(), |i| i.file_name.clone())
    };
    field("logo", &picture(&before.logo), &picture(&after.logo));
    field(
        "favicon",
        &picture(&before.favicon),
        &picture(&after.favicon),
    );
    let shown = |on: bool| if on { "shown" } else { "hidden" };
    field(
        "footer “Log in” link",
        shown(before.login_link),
        shown(after.login_link),
    );
    if before.custom_css != after.custom_css {
        out.push(format!(
            "custom stylesheet: {} → {} bytes",
            before.custom_css.len(),
            after.custom_css.len()
        ));
    }
    out
}

/// `POST /admin/site`
pub async fn save(
    state: web::Data<AppState>,
    req: HttpRequest,
    admin: Admin,
    body: web::Bytes,
) -> AppResult<HttpResponse> {
    let fields = FormFields::parse(&body)?;
    let typed = SiteForm::from_fields(&fields);
    let parsed = typed.parse();
    let lookup = typed.clone();
    let resolved = state
        .db
        .read(move |conn| {
            let mut errors = FieldErrors::new();
            let mut wanted = parsed.unwrap_or_else(|e| {
                errors = e;
                SiteIdentity::defaults("")
            });
            resolve_pictures(conn, &lookup, &mut wanted, &mut errors)?;
            Ok(if errors.is_empty() {
                Ok(wanted)
            } else {
                Err(errors)
            })
        })
        .await?;
    let wanted = match resolved {
        Ok(wanted) => wanted,
        Err(errors) => {
            return page(
                &state,
                &admin,
                typed,
                errors,
                false,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await;
        }
    };
    let actor = web_actor(&state, &req, &admin.0);
    let now = state.clock.now();
    let default_title = state.config.site_title.clone();
    let saved = state
        .db
        .write(move |conn| -> Result<SiteIdentity, DbError> {
            let before = SiteIdentity::load(conn, &default_title)?;
            let mut after = wanted;
            after.version = after.save(conn)?;
            let changed = changes(&before, &after);
            let detail = if changed.is_empty() {
                "no changes".to_string()
            } else {
                changed.join("; ")
            };
            crate::audit::log(conn, None, "site-update", &detail, &actor, now)?;
            Ok(after)
        })
        .await
        .map_err(AppError::from)?;
    state.identity.set(saved);
    Ok(see_other("/admin/site?saved=1"))
}

/// `GET /static/site-{hash}.css`: the accent colour and custom CSS, under an address made from
/// their content, so browsers keep it for a year.
pub async fn stylesheet(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> AppResult<HttpResponse> {
    let identity = state.identity();
    let wanted = format!("/static/site-{}.css", path.into_inner());
    match (identity.stylesheet_path(), identity.stylesheet()) {
        (Some(current), Some(css)) if current == wanted => Ok(HttpResponse::Ok()
            .content_type("text/css; charset=utf-8")
            .insert_header(("Cache-Control", "public, max-age=31536000, immutable"))
            .body(css)),
        _ => Err(AppError::NotFound),
    }
}
