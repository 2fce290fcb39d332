//! `/admin/import` (admins only): upload a WordPress export (up to 256 MiB, streamed to a file
//! on this server), read its dry-run report, confirm, and watch the import run in the
//! background on a page that refreshes itself (no JavaScript), then read its report. Each run
//! is a row of `import_runs`, so the pages work from any server; the file and the work stay on
//! the server that received the upload.

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use actix_multipart::Multipart;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use chrono::NaiveDateTime;
use diesel::prelude::*;
use futures_util::StreamExt;

use super::{Env, Kind, Options, Progress, Report};
use crate::auth::Admin;
use crate::db::schema::import_runs;
use crate::db::{Db, DbConn, DbError};
use crate::error::{AppError, AppResult};
use crate::http::middleware::MAX_IMPORT_UPLOAD_BYTES;
use crate::http::response::{render, see_other};
use crate::staff::AdminLayout;
use crate::state::AppState;

/// A run that has not written progress for this long has stopped (its server went away).
const STALLED: chrono::Duration = chrono::Duration::minutes(2);

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = import_runs)]
pub struct Run {
    pub id: i32,
    pub state: String,
    pub file_name: String,
    pub file_path: String,
    pub progress: String,
    pub report: String,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

impl Run {
    fn report(&self) -> Option<Report> {
        serde_json::from_str(&self.report).ok()
    }

    fn is_moving(&self) -> bool {
        self.state == "checking" || self.state == "running"
    }
}

fn recent_runs(conn: &mut DbConn) -> Result<Vec<Run>, DbError> {
    Ok(import_runs::table
        .order(import_runs::id.desc())
        .limit(10)
        .select(Run::as_select())
        .load(conn)?)
}

fn find_run(conn: &mut DbConn, id: i32) -> Result<Option<Run>, DbError> {
    Ok(import_runs::table
        .find(id)
        .select(Run::as_select())
        .first(conn)
        .optional()?)
}

fn set_state(
    db: &Db,
    id: i32,
    state: &str,
    progress: &str,
    report: Option<&str>,
    now: NaiveDateTime,
) -> Result<(), DbError> {
    db.write_blocking(|conn| -> Result<(), DbError> {
        let row = import_runs::table.find(id);
        match report {
            Some(report) => diesel::update(row)
                .set((
                    import_runs::state.eq(state),
                    import_runs::progress.eq(progress),
                    import_runs::report.eq(report),
                    import_runs::updated_at.eq(now),
                ))
                .execute(conn)?,
            None => diesel::update(row)
                .set((
                    import_runs::state.eq(state),
                    import_runs::progress.eq(progress),
                    import_runs::updated_at.eq(now),
                ))
                .execute(conn)?,
        };
        Ok(())
    })
}

#[derive(Template)]
#[template(path = "admin/import.html")]
struct ImportPage {
    layout: AdminLayout,
    runs: Vec<Run>,
    error: Option<String>,
    limit_mib: usize,
}

#[derive(Template)]
#[template(path = "admin/import_run.html")]
struct RunPage {
    layout: AdminLayout,
    run: Run,
    report_text: Option<String>,
    stalled: bool,
    refresh: bool,
}

/// `GET /admin/import`
pub async fn page(state: web::Data<AppState>, Admin(staff): Admin) -> AppResult<HttpResponse> {
    let runs = state.db.read(recent_runs).await?;
    let page = ImportPage {
        layout: AdminLayout::new(&state, &staff, "Import", "import").await?,
        runs,
        error: None,
        limit_mib: MAX_IMPORT_UPLOAD_BYTES >> 20,
    };
    render(page, StatusCode::OK)
}

async fn refuse_upload(
    state: &AppState,
    staff: &crate::auth::Staff,
    status: StatusCode,
    error: String,
) -> AppResult<HttpResponse> {
    let runs = state.db.read(recent_runs).await?;
    let page = ImportPage {
        layout: AdminLayout::new(state, staff, "Import", "import").await?,
        runs,
        error: Some(error),
        limit_mib: MAX_IMPORT_UPLOAD_BYTES >> 20,
    };
    render(page, status)
}

/// A file under the system's temporary folder that is removed when dropped, unless kept.
struct Upload {
    path: PathBuf,
    keep: bool,
}

impl Drop for Upload {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// `POST /admin/import` (multipart: `csrf_token` first, then `file`).
pub async fn upload(
    state: web::Data<AppState>,
    Admin(staff): Admin,
    mut form: Multipart,
) -> AppResult<HttpResponse> {
    // The token comes first; nothing is kept before it is checked.
    crate::auth::guard::check_upload_token(&mut form, &staff).await?;
    let path = std::env::temp_dir().join(format!(
        "lectern-import-{}.xml",
        crate::crypto::random_token(12)
    ));
    let mut upload = Upload {
        path: path.clone(),
        keep: false,
    };
    let mut file_name = None;
    let mut size = 0usize;
    while let Some(field) = form.next().await {
        let mut field = field
            .map_err(|e| AppError::BadRequest(format!("The upload could not be read: {e}")))?;
        if field.name() != Some("file") {
            continue;
        }
        file_name = Some(
            field
                .content_disposition()
                .and_then(|d| d.get_filename())
                .unwrap_or("export.xml")
                .chars()
                .filter(|c| !c.is_control())
                .take(200)
                .collect::<String>(),
        );
        let mut out = std::fs::File::create(&path)
            .map_err(|e| AppError::Internal(anyhow::anyhow!("creating {}: {e}", path.display())))?;
        let mut pending: Vec<u8> = Vec::with_capacity(1 << 20);
        while let Some(chunk) = field.next().await {
            let chunk = chunk
                .map_err(|e| AppError::BadRequest(format!("The upload could not be read: {e}")))?;
            size += chunk.len();
            if size > MAX_IMPORT_UPLOAD_BYTES {
                return Err(AppError::PayloadTooLarge);
            }
            pending.extend_from_slice(&chunk);
            if pending.len() >= 1 << 20 {
                let full = std::mem::replace(&mut pending, Vec::with_capacity(1 << 20));
                out = write_chunk(out, full).await?;
            }
        }
        write_chunk(out, pending).await?;
    }
    let Some(file_name) = file_name.filter(|_| size > 0) else {
        return refuse_upload(
            &state,
            &staff,
            StatusCode::UNPROCESSABLE_ENTITY,
            "Choose a WordPress export file (Tools → Export in WordPress) to upload.".into(),
        )
        .await;
    };
    let checked_path = path.clone();
    let kind = web::block(move || super::check_kind(&checked_path, Kind::WordPress))
        .await
        .map_err(|e| AppError::Internal(e.into()))?;
    if let Err(e) = kind {
        let message = e
            .to_string()
            .replace(&path.display().to_string(), &file_name);
        return refuse_upload(&state, &staff, StatusCode::UNPROCESSABLE_ENTITY, message).await;
    }
    let now = state.clock.now();
    let user = staff.user.id.0;
    let stored_path = path.display().to_string();
    let name = file_name.clone();
    let id: i32 = state
        .db
        .write(move |conn| -> Result<i32, DbError> {
            Ok(diesel::insert_into(import_runs::table)
                .values((
                    import_runs::state.eq("checking"),
                    import_runs::file_name.eq(&name),
                    import_runs::file_path.eq(&stored_path),
                    import_runs::created_by.eq(Some(user)),
                    import_runs::created_at.eq(now),
                    import_runs::updated_at.eq(now),
                ))
                .returning(import_runs::id)
                .get_result(conn)?)
        })
        .await?;
    upload.keep = true;
    spawn_run(&state, id, path, None);
    Ok(see_other(&format!("/admin/import/{id}")))
}

async fn write_chunk(mut out: std::fs::File, bytes: Vec<u8>) -> AppResult<std::fs::File> {
    web::block(move || out.write_all(&bytes).map(|()| out))
        .await
        .map_err(|e| AppError::Internal(e.into()))?
        .map_err(|e| AppError::Internal(anyhow::anyhow!("writing the upload: {e}")))
}

/// Writes a run's progress to its row, at most once a second.
struct RunProgress {
    db: Db,
    id: i32,
    state: &'static str,
    last: Option<Instant>,
}

impl Progress for RunProgress {
    fn tick(&mut self, done: u64, total: u64, report: &Report) {
        if self
            .last
            .is_some_and(|t| t.elapsed() < Duration::from_secs(1))
        {
            return;
        }
        self.last = Some(Instant::now());
        let line = format!(
            "{}% of the file read: {}",
            super::progress::percent(done, total),
            report.progress_line()
        );
        if let Err(e) = set_state(&self.db, self.id, self.state, &line, None, crate::db::now()) {
            tracing::warn!(error = %e, "recording an import's progress failed");
        }
    }
}

/// Runs the check (a dry run) or the import of run `id` in the background.
/// Checks (`actor` None: a dry run) or runs the import of `path` on a blocking thread; a real
/// run is logged under `actor`.
fn spawn_run(state: &AppState, id: i32, path: PathBuf, actor: Option<crate::actions::Actor>) {
    let dry_run = actor.is_none();
    let env = Env {
        db: state.db.clone(),
        signer: state.signer.clone(),
        now: state.clock.now(),
    };
    tokio::task::spawn_blocking(move || {
        let moving = if dry_run { "checking" } else { "running" };
        let mut progress = RunProgress {
            db: env.db.clone(),
            id,
            state: moving,
            last: None,
        };
        let options = Options {
            dry_run,
            maps: Vec::new(),
            uploads: None,
        };
        let outcome = super::run(&env, Kind::WordPress, &path, &options, &mut progress);
        let finished = crate::db::now();
        let written = match outcome {
            Ok(report) => {
                if let Some(actor) = &actor
                    && let Err(e) = super::log_run(&env.db, &report, actor)
                {
                    tracing::error!(error = %e, run = id, "logging an import failed");
                }
                let json = serde_json::to_string(&report).unwrap_or_default();
                let state = if dry_run { "checked" } else { "done" };
                if !dry_run {
                    let _ = std::fs::remove_file(&path);
                }
                set_state(&env.db, id, state, "", Some(&json), finished)
            }
            Err(e) => {
                let _ = std::fs::remove_file(&path);
                tracing::warn!(error = %e, run = id, "an import from the admin failed");
                set_state(&env.db, id, "failed", &e.to_string(), None, finished)
            }
        };
        if let Err(e) = written {
            tracing::error!(error = %e, run = id, "recording an import's outcome failed");
        }
    });
}

/// `GET /admin/import/{id}`
pub async fn run_page(
    state: web::Data<AppState>,
    Admin(staff): Admin,
    path: web::Path<i32>,
) -> AppResult<HttpResponse> {
    let id = path.into_inner();
    let run = state
        .db
        .read(move |conn| find_run(conn, id))
        .await?
        .ok_or(AppError::NotFound)?;
    let stalled = run.is_moving() && state.clock.now() - run.updated_at > STALLED;
    let report_text = run.report().map(|r| r.to_string());
    let page = RunPage {
        layout: AdminLayout::new(&state, &staff, "Import", "import").await?,
        refresh: run.is_moving() && !stalled,
        stalled,
        report_text,
        run,
    };
    render(page, StatusCode::OK)
}

/// `POST /admin/import/{id}/start`: runs an import whose check is done.
pub async fn start(
    state: web::Data<AppState>,
    req: HttpRequest,
    Admin(staff): Admin,
    path: web::Path<i32>,
) -> AppResult<HttpResponse> {
    let id = path.into_inner();
    let now = state.clock.now();
    let claimed = state
        .db
        .write(move |conn| -> Result<Option<Run>, DbError> {
            let run = find_run(conn, id)?;
            let taken = diesel::update(
                import_runs::table
                    .find(id)
                    .filter(import_runs::state.eq("checked")),
            )
            .set((
                import_runs::state.eq("running"),
                import_runs::progress.eq("starting"),
                import_runs::updated_at.eq(now),
            ))
            .execute(conn)?;
            Ok(run.filter(|_| taken == 1))
        })
        .await?;
    let Some(run) = claimed else {
        return Err(AppError::Conflict(
            "This import is not waiting to start: it is still being checked, or it ran already."
                .into(),
        ));
    };
    let file = PathBuf::from(&run.file_path);
    if !file.exists() {
        let message = "The uploaded file is not on this server (it was received by another one, or removed); upload it again.";
        let db = state.db.clone();
        web::block(move || set_state(&db, id, "failed", message, None, crate::db::now()))
            .await
            .map_err(|e| AppError::Internal(e.into()))??;
        return Ok(see_other(&format!("/admin/import/{id}")));
    }
    let actor = crate::staff::web_actor(&state, &req, &staff);
    spawn_run(&state, id, file, Some(actor));
    Ok(see_other(&format!("/admin/import/{id}")))
}
