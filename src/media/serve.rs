//! `GET /media/{sha256}-{width}.{ext}`: a stored file, immutable (its address is its hash), read
//! from the database a chunk at a time, so a big file never sits whole in memory.

use actix_web::body::SizedStream;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use futures_util::stream;

use super::store::{self, Served};
use super::{CHUNK_BYTES, MediaPath};
use crate::error::{AppError, AppResult};
use crate::state::AppState;

const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// `GET /media/{file}`
pub async fn media_file(
    state: web::Data<AppState>,
    req: HttpRequest,
    file: web::Path<String>,
) -> AppResult<HttpResponse> {
    let Some(path) = MediaPath::parse_file(&file) else {
        return Err(AppError::NotFound);
    };
    let etag = HeaderValue::from_str(&format!("\"{}-{}\"", path.sha256, path.width))
        .map_err(|e| AppError::Internal(e.into()))?;
    let lookup = path.clone();
    let Some(Served {
        variant,
        first_chunk,
    }) = state
        .db
        .read(move |conn| store::served(conn, &lookup))
        .await?
    else {
        return Err(AppError::NotFound);
    };
    let not_modified = crate::http::page_cache::not_modified(req.headers(), &etag);
    let mut response = if not_modified {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    response
        .insert_header((header::CACHE_CONTROL, IMMUTABLE))
        .insert_header((header::ETAG, etag))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        // Pictures may be shown by other sites (feed readers, link previews).
        .insert_header(("Cross-Origin-Resource-Policy", "cross-origin"));
    if not_modified {
        return Ok(response.finish());
    }
    response.content_type(variant.format.content_type());
    let size = u64::try_from(variant.byte_size).unwrap_or(0);
    if first_chunk.len() as u64 >= size {
        return Ok(response.body(first_chunk));
    }

    // The rest, one chunk at a time, as the client takes them.
    let chunks = size.div_ceil(CHUNK_BYTES as u64);
    let variant_id = variant.id;
    let first = web::Bytes::from(first_chunk);
    let rest = stream::unfold(1i32, move |seq| {
        let state = state.clone();
        async move {
            if u64::try_from(seq).unwrap_or(u64::MAX) >= chunks {
                return None;
            }
            let read = state
                .db
                .read(move |conn| store::chunk(conn, variant_id, seq))
                .await;
            let item = match read {
                Ok(Some(bytes)) => Ok(web::Bytes::from(bytes)),
                Ok(None) => Err(AppError::NotFound),
                Err(e) => Err(AppError::from(e)),
            };
            Some((item, seq + 1))
        }
    });
    let body = futures_util::StreamExt::chain(stream::once(async move { Ok(first) }), rest);
    Ok(response.body(SizedStream::new(size, Box::pin(body))))
}
