//! `/admin/media` (admins only): upload pictures (a plain multipart form, repeated `file` each
//! followed by its `alt`, no JavaScript needed), answered with each picture's address and the
//! Markdown to paste; the library as a grid with search and keyset pages; alt text edits and
//! deletion (refused while a published post shows the picture, unless forced).

use actix_multipart::Multipart;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use futures_util::StreamExt;
use serde::Deserialize;

use crate::auth::{Admin, Staff};
use crate::error::{AppError, AppResult};
use crate::http::forms::FormFields;
use crate::http::response::{render, see_other};
use crate::media::serve::MediaCache;
use crate::media::{self, MAX_ALT_CHARS, MAX_UPLOAD_BYTES, MediaMeta, MediaRow, store};
use crate::site::identity::{SiteIdentity, SiteImage};
use crate::staff::AdminLayout;
use crate::state::AppState;

/// Pictures on one page of the library.
const PAGE_SIZE: i64 = 24;
/// Files one upload may carry.
const MAX_FILES: usize = 20;

/// One picture as the grid shows it.
pub struct Tile {
    pub media: MediaRow,
    pub url: String,
    pub thumbnail: String,
    pub snippet: String,
    pub size: String,
    pub uses: Vec<store::Use>,
    /// "the site's logo", "the site's favicon" (`/admin/site`), if it is either.
    pub site_uses: Vec<&'static str>,
}

/// What became of one file of an upload.
pub struct UploadResult {
    pub file_name: String,
    pub stored: Option<StoredView>,
    pub refused: Option<String>,
}

pub struct StoredView {
    pub url: String,
    pub snippet: String,
    pub created: bool,
    pub width: i32,
    pub height: i32,
}

#[derive(Template)]
#[template(path = "admin/media.html")]
struct MediaPage {
    layout: AdminLayout,
    results: Vec<UploadResult>,
    error: Option<String>,
    tiles: Vec<Tile>,
    query: String,
    next_before: Option<i32>,
    paged: bool,
    limit_mib: usize,
    max_alt: usize,
}

#[derive(Debug, Deserialize)]
pub struct LibraryQuery {
    #[serde(default)]
    q: String,
    before: Option<i32>,
}

/// "1.2 MB", "340 kB", "912 bytes".
pub fn human_size(bytes: i64) -> String {
    let b = bytes as f64;
    if bytes >= 1_000_000 {
        format!("{:.1} MB", b / 1_000_000.0)
    } else if bytes >= 1_000 {
        format!("{:.0} kB", b / 1_000.0)
    } else {
        format!("{bytes} bytes")
    }
}

async fn tiles(
    state: &AppState,
    query: String,
    before: Option<i32>,
) -> AppResult<(Vec<Tile>, Option<i32>)> {
    let identity = state.identity();
    let site_picture = |image: &Option<crate::site::identity::SiteImage>| {
        image.as_ref().map(|i| i.sha256.clone()).unwrap_or_default()
    };
    let (logo, favicon) = (
        site_picture(&identity.logo),
        site_picture(&identity.favicon),
    );
    Ok(state
        .db
        .read(move |conn| {
            let mut rows = store::list(conn, &query, before, PAGE_SIZE + 1)?;
            let more = rows.len() as i64 > PAGE_SIZE;
            rows.truncate(PAGE_SIZE as usize);
            let ids: Vec<i32> = rows.iter().map(|m| m.id).collect();
            let variants = store::variants_of(conn, &ids)?;
            let shas: Vec<&str> = rows.iter().map(|m| m.sha256.as_str()).collect();
            let mut uses = store::uses_of(conn, &shas)?;
            let mut tiles = Vec::with_capacity(rows.len());
            for media in rows {
                // The narrowest stored file (variants come widest first).
                let thumbnail = variants
                    .iter()
                    .rfind(|v| v.media_id == media.id)
                    .map(|v| {
                        media::url(&media.sha256, u32::try_from(v.width).unwrap_or(0), v.format)
                    })
                    .unwrap_or_else(|| media.url());
                let mut site_uses = Vec::new();
                if media.sha256 == logo {
                    site_uses.push("the site's logo");
                }
                if media.sha256 == favicon {
                    site_uses.push("the site's favicon");
                }
                let url = media.url();
                tiles.push(Tile {
                    snippet: media::snippet(&media.alt, &url),
                    size: human_size(media.byte_size),
                    url,
                    thumbnail,
                    uses: uses.remove(&media.sha256).unwrap_or_default(),
                    site_uses,
                    media,
                });
            }
            let next = if more {
                tiles.last().map(|t| t.media.id)
            } else {
                None
            };
            Ok((tiles, next))
        })
        .await?)
}

async fn page(
    state: &AppState,
    staff: &Staff,
    query: LibraryQuery,
    results: Vec<UploadResult>,
    error: Option<String>,
    status: StatusCode,
) -> AppResult<HttpResponse> {
    let paged = query.before.is_some();
    let (tiles, next_before) = tiles(state, query.q.clone(), query.before).await?;
    let page = MediaPage {
        layout: AdminLayout::new(state, staff, "Media", "media").await?,
        results,
        error,
        tiles,
        query: query.q,
        next_before,
        paged,
        limit_mib: MAX_UPLOAD_BYTES >> 20,
        max_alt: MAX_ALT_CHARS,
    };
    render(page, status)
}

/// `GET /admin/media?q=TEXT&before=ID`
pub async fn library(
    state: web::Data<AppState>,
    Admin(staff): Admin,
    query: web::Query<LibraryQuery>,
) -> AppResult<HttpResponse> {
    page(
        &state,
        &staff,
        query.into_inner(),
        Vec::new(),
        None,
        StatusCode::OK,
    )
    .await
}

fn check_alt(alt: &str) -> Result<String, String> {
    let alt = alt.replace("\r\n", "\n").trim().to_string();
    if alt.is_empty() {
        return Err(
            "Describe the picture in its alt text (what a reader who cannot see it should know) before it can be inserted in a post."
                .into(),
        );
    }
    let chars = alt.chars().count();
    if chars > MAX_ALT_CHARS {
        return Err(format!(
            "The alt text is {chars} characters long; the limit is {MAX_ALT_CHARS}."
        ));
    }
    if alt.contains('\0') {
        return Err("The alt text contains a NUL character, which cannot be stored.".into());
    }
    Ok(alt)
}

/// A file field read whole (at most the upload limit), waiting for its `alt`.
struct PendingFile {
    file_name: String,
    bytes: Vec<u8>,
}

/// `POST /admin/media` (multipart: `csrf_token` first, then `file` and `alt`, repeated).
pub async fn upload(
    state: web::Data<AppState>,
    Admin(staff): Admin,
    mut form: Multipart,
) -> AppResult<HttpResponse> {
    // The token comes first; nothing is read further before it is checked.
    crate::auth::guard::check_upload_token(&mut form, &staff).await?;

    let mut results = Vec::new();
    let mut pending: Option<PendingFile> = None;
    let mut files = 0usize;
    let mut not_taken = 0usize;
    while let Some(field) = form.next().await {
        let mut field = field
            .map_err(|e| AppError::BadRequest(format!("The upload could not be read: {e}")))?;
        match field.name() {
            Some("file") => {
                if let Some(file) = pending.take() {
                    results.push(store_file(&state, &staff, file, "").await?);
                }
                let file_name = field
                    .content_disposition()
                    .and_then(|d| d.get_filename())
                    .unwrap_or("")
                    .chars()
                    .filter(|c| !c.is_control())
                    .take(200)
                    .collect::<String>();
                if files == MAX_FILES {
                    // Past the limit: the client sends the file anyway, so it is read through
                    // (and dropped) to name it in the answer; the pictures before it are kept.
                    let mut empty = true;
                    while let Some(chunk) = field.next().await {
                        let chunk = chunk.map_err(|e| {
                            AppError::BadRequest(format!("The upload could not be read: {e}"))
                        })?;
                        empty &= chunk.is_empty();
                    }
                    if file_name.is_empty() && empty {
                        continue;
                    }
                    not_taken += 1;
                    results.push(UploadResult {
                        file_name: display_name(file_name),
                        stored: None,
                        refused: Some(format!(
                            "Not stored: an upload takes at most {MAX_FILES} pictures. Upload this one again."
                        )),
                    });
                    continue;
                }
                let mut bytes = Vec::new();
                while let Some(chunk) = field.next().await {
                    let chunk = chunk.map_err(|e| {
                        AppError::BadRequest(format!("The upload could not be read: {e}"))
                    })?;
                    if bytes.len() + chunk.len() > MAX_UPLOAD_BYTES {
                        return Err(AppError::PayloadTooLarge);
                    }
                    bytes.extend_from_slice(&chunk);
                }
                // A file input left empty sends a nameless empty part: not an upload.
                if file_name.is_empty() && bytes.is_empty() {
                    continue;
                }
                files += 1;
                pending = Some(PendingFile { file_name, bytes });
            }
            Some("alt") => {
                let alt = match field.bytes(64 * 1024).await {
                    Ok(Ok(bytes)) => String::from_utf8_lossy(&bytes).into_owned(),
                    _ => {
                        return Err(AppError::Unprocessable(
                            "An alt text is too long to read.".into(),
                        ));
                    }
                };
                if let Some(file) = pending.take() {
                    results.push(store_file(&state, &staff, file, &alt).await?);
                }
            }
            _ => {}
        }
    }
    if let Some(file) = pending.take() {
        results.push(store_file(&state, &staff, file, "").await?);
    }
    let query = LibraryQuery {
        q: String::new(),
        before: None,
    };
    if results.is_empty() {
        return page(
            &state,
            &staff,
            query,
            results,
            Some("Choose a picture to upload (JPEG, PNG, GIF or WebP).".into()),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    }
    let status = if results.iter().any(|r| r.refused.is_some()) {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let note = (not_taken > 0).then(|| {
        format!(
            "An upload takes at most {MAX_FILES} pictures: the first {MAX_FILES} were handled as listed above, \
             and {not_taken} more {} not stored. Upload {} again.",
            if not_taken == 1 { "was" } else { "were" },
            if not_taken == 1 { "it" } else { "them" },
        )
    });
    page(&state, &staff, query, results, note, status).await
}

/// A file's name as the answer shows it.
fn display_name(file_name: String) -> String {
    if file_name.is_empty() {
        "(no name)".to_string()
    } else {
        file_name
    }
}

async fn store_file(
    state: &AppState,
    staff: &Staff,
    file: PendingFile,
    alt: &str,
) -> AppResult<UploadResult> {
    let file_name = display_name(file.file_name);
    let refused = |message: String| UploadResult {
        file_name: file_name.clone(),
        stored: None,
        refused: Some(message),
    };
    let alt = match check_alt(alt) {
        Ok(alt) => alt,
        Err(message) => return Ok(refused(format!("Not stored: {message}"))),
    };
    // Hashing up to 20 MiB is work for a blocking thread, not for the server's event loop.
    let (bytes, upload_sha256) = web::block(move || {
        let hash = media::sha256_hex(&file.bytes);
        (file.bytes, hash)
    })
    .await
    .map_err(|e| AppError::Internal(e.into()))?;
    let meta = MediaMeta {
        file_name: file_name.clone(),
        alt: alt.clone(),
        upload_sha256,
        uploaded_by: Some(staff.user.id.0),
        created_at: state.clock.now(),
    };
    match media::upload(&state.db, bytes, meta).await? {
        Ok(stored) => {
            let url = stored.media.url();
            Ok(UploadResult {
                file_name,
                stored: Some(StoredView {
                    snippet: media::snippet(&alt, &url),
                    url,
                    created: stored.created,
                    width: stored.media.width,
                    height: stored.media.height,
                }),
                refused: None,
            })
        }
        Err(refusal) => Ok(refused(format!("Not stored: {refusal}."))),
    }
}

/// `POST /admin/media/{id}/alt` (`alt`)
pub async fn set_alt(
    state: web::Data<AppState>,
    Admin(_staff): Admin,
    path: web::Path<i32>,
    body: web::Bytes,
) -> AppResult<HttpResponse> {
    let id = path.into_inner();
    let form = FormFields::parse(&body)?;
    let alt = check_alt(form.get("alt").unwrap_or("")).map_err(AppError::Unprocessable)?;
    let changed = state
        .db
        .write(move |conn| store::set_alt(conn, id, &alt))
        .await?;
    if !changed {
        return Err(AppError::NotFound);
    }
    Ok(see_other(&format!("/admin/media#media-{id}")))
}

/// `POST /admin/media/{id}/delete` (`force` to delete while published posts show it or it is
/// the site's logo or favicon, which then go back to none). Logged in the moderation log.
pub async fn delete(
    state: web::Data<AppState>,
    cache: web::Data<MediaCache>,
    req: HttpRequest,
    Admin(staff): Admin,
    path: web::Path<i32>,
    body: web::Bytes,
) -> AppResult<HttpResponse> {
    let id = path.into_inner();
    let form = FormFields::parse(&body)?;
    let force = form.get("force").is_some_and(|v| !v.is_empty());
    let actor = crate::staff::web_actor(&state, &req, &staff);
    let now = state.clock.now();
    let default_title = state.config.site_title.clone();
    let outcome = state
        .db
        .write(
            move |conn| -> Result<Result<Option<SiteIdentity>, String>, AppError> {
                let Some(media) = store::find(conn, id)? else {
                    return Err(AppError::NotFound);
                };
                let mut site = SiteIdentity::load(conn, &default_title)?;
                let is = |image: &Option<SiteImage>| {
                    image.as_ref().is_some_and(|i| i.sha256 == media.sha256)
                };
                let (logo, favicon) = (is(&site.logo), is(&site.favicon));
                let mut uses: Vec<String> = store::uses(conn, &media.sha256)?
                    .into_iter()
                    .filter(|u| u.status == "published" || u.status == "scheduled")
                    .map(|u| format!("“{}”", u.title))
                    .collect();
                if logo {
                    uses.push("the site's logo".into());
                }
                if favicon {
                    uses.push("the site's favicon".into());
                }
                if !uses.is_empty() && !force {
                    return Ok(Err(uses.join(", ")));
                }
                store::delete(conn, id)?;
                let mut detail = format!(
                    "deleted picture {} ({} × {}, {})",
                    media.file_name, media.width, media.height, media.sha256
                );
                if !uses.is_empty() {
                    detail.push_str(&format!(" although used by {}", uses.join(", ")));
                }
                crate::audit::log(conn, None, "media-delete", &detail, &actor, now)?;
                cache.forget(&media.sha256);
                if logo || favicon {
                    if logo {
                        site.logo = None;
                    }
                    if favicon {
                        site.favicon = None;
                    }
                    site.version = site.save(conn)?;
                    return Ok(Ok(Some(site)));
                }
                Ok(Ok(None))
            },
        )
        .await?;
    match outcome {
        Ok(site) => {
            if let Some(site) = site {
                state.identity.set(site);
            }
            Ok(see_other("/admin/media"))
        }
        Err(titles) => Err(AppError::Conflict(format!(
            "This picture is in use ({titles}), so it was not deleted. Remove it from there first, or delete it anyway with “Delete even though it is in use”."
        ))),
    }
}
