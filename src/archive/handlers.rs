//! `/admin/export` (admin only): download the site as a lectern archive, or as a WordPress
//! export, streamed while it is written, never with secrets; and when `lectern backup` last ran.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;

use super::export::{ExportOptions, export_records, in_snapshot};
use super::{ArchiveError, LAST_BACKUP_SETTING, RecordWriter};
use crate::auth::Admin;
use crate::error::AppResult;
use crate::http::response::render;
use crate::staff::AdminLayout;
use crate::state::AppState;

#[derive(Template)]
#[template(path = "admin/export.html")]
struct ExportPage {
    layout: AdminLayout,
    last_backup: Option<String>,
    format_version: u32,
}

/// `GET /admin/export`
pub async fn page(state: web::Data<AppState>, admin: Admin) -> AppResult<HttpResponse> {
    let stored = state
        .db
        .read(|conn| crate::site::get(conn, LAST_BACKUP_SETTING))
        .await?;
    let tz = state.config.timezone;
    let last_backup = stored.and_then(|text| {
        chrono::DateTime::parse_from_rfc3339(&text)
            .ok()
            .map(|at| crate::views::comment_date(at.naive_utc(), tz))
    });
    render(
        ExportPage {
            layout: AdminLayout::new(&state, &admin.0, "Export", "export").await?,
            last_backup,
            format_version: super::FORMAT_VERSION,
        },
        StatusCode::OK,
    )
}

/// Hands what the export writes, in pieces, to the response as it is written; the export
/// waits while the reader is slower (the channel is small), so memory stays bounded.
struct ChannelWriter {
    sender: tokio::sync::mpsc::Sender<Result<web::Bytes, std::io::Error>>,
    buffer: Vec<u8>,
}

const PIECE: usize = 64 * 1024;
/// How long a download may stop reading before the export gives up.
const STALLED: std::time::Duration = std::time::Duration::from_secs(60);

impl ChannelWriter {
    fn send(&mut self) -> std::io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let piece = std::mem::replace(&mut self.buffer, Vec::with_capacity(PIECE));
        // The export holds a pooled connection and a snapshot while it waits here: a client
        // that stops reading gives them back after STALLED instead of keeping them for good.
        let sent = tokio::runtime::Handle::current().block_on(tokio::time::timeout(
            STALLED,
            self.sender.send(Ok(web::Bytes::from(piece))),
        ));
        match sent {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(std::io::Error::new(
                std::io::ErrorKind::BrokenPipe,
                "download ended",
            )),
            Err(_) => Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the download stopped reading",
            )),
        }
    }
}

impl std::io::Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.buffer.extend_from_slice(buf);
        if self.buffer.len() >= PIECE {
            self.send()?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.send()
    }
}

fn stream_response(
    file_name: String,
    content_type: &'static str,
    receiver: tokio::sync::mpsc::Receiver<Result<web::Bytes, std::io::Error>>,
) -> HttpResponse {
    let body = futures_util::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|piece| (piece, receiver))
    });
    HttpResponse::Ok()
        .content_type(content_type)
        .insert_header((
            "Content-Disposition",
            format!("attachment; filename=\"{file_name}\""),
        ))
        .insert_header(("Cache-Control", "private, no-store"))
        .streaming(body)
}

fn file_stamp(state: &AppState) -> String {
    state.clock.now().format("%Y-%m-%d").to_string()
}

/// `GET /admin/export/archive`: the lectern archive, gzip-compressed, without secrets.
pub async fn archive(state: web::Data<AppState>, _admin: Admin) -> AppResult<HttpResponse> {
    let (sender, receiver) = tokio::sync::mpsc::channel(4);
    let db = state.db.clone();
    let signer = state.signer.clone();
    let now = state.clock.now();
    let failure = sender.clone();
    tokio::task::spawn_blocking(move || {
        let out = ChannelWriter {
            sender,
            buffer: Vec::with_capacity(PIECE),
        };
        let mut writer = RecordWriter::new(out, true);
        let mut outcome: Option<Result<(), ArchiveError>> = None;
        let read = db.read_blocking(|conn| {
            outcome = Some(in_snapshot(conn, |conn| {
                export_records(
                    conn,
                    &signer,
                    ExportOptions { secrets: false },
                    now,
                    &mut super::progress::Silent,
                    &mut |record| writer.write(&record),
                )
            }));
            Ok(())
        });
        let done = read
            .map_err(ArchiveError::from)
            .and_then(|()| outcome.unwrap_or_else(|| Err(ArchiveError::Io("nothing ran".into()))))
            .and_then(|()| writer.finish())
            .and_then(|(mut out, _)| out.send().map_err(|e| ArchiveError::Io(e.to_string())));
        if let Err(e) = done {
            tracing::error!(error = %e, "the archive download failed");
            // The download ends with an error instead of a complete-looking file; without its
            // trailer the archive would be refused anyway.
            let _ = failure.blocking_send(Err(std::io::Error::other(e.to_string())));
        }
    });
    Ok(stream_response(
        format!("lectern-{}.jsonl.gz", file_stamp(&state)),
        "application/gzip",
        receiver,
    ))
}

/// `GET /admin/export/wordpress`: the WXR 1.2 file WordPress imports.
pub async fn wordpress(state: web::Data<AppState>, _admin: Admin) -> AppResult<HttpResponse> {
    let (sender, receiver) = tokio::sync::mpsc::channel(4);
    let db = state.db.clone();
    let base = state.mail.url("/").trim_end_matches('/').to_string();
    let title = state.identity().title.clone();
    let tz = state.config.timezone;
    let failure = sender.clone();
    tokio::task::spawn_blocking(move || {
        let mut out = ChannelWriter {
            sender,
            buffer: Vec::with_capacity(PIECE),
        };
        let mut outcome = None;
        let read = db.read_blocking(|conn| {
            outcome = Some(in_snapshot(conn, |conn| {
                super::wxr::write_wxr(
                    conn,
                    &mut out,
                    &base,
                    &title,
                    tz,
                    &mut super::progress::Silent,
                )
            }));
            Ok(())
        });
        let done = read
            .map_err(ArchiveError::from)
            .and_then(|()| outcome.unwrap_or_else(|| Err(ArchiveError::Io("nothing ran".into()))))
            .and_then(|_| out.send().map_err(|e| ArchiveError::Io(e.to_string())));
        if let Err(e) = done {
            tracing::error!(error = %e, "the WordPress export download failed");
            let _ = failure.blocking_send(Err(std::io::Error::other(e.to_string())));
        }
    });
    Ok(stream_response(
        format!("lectern-wordpress-{}.xml", file_stamp(&state)),
        "application/xml",
        receiver,
    ))
}
