//! `POST /posts/{slug}/comments`: the HTML route. It finds the post, reads and checks the form
//! (DESIGN.md's order), hands the parsed input to `submit::submit`, and answers with a redirect,
//! a re-rendered page or an error.

use actix_web::http::StatusCode;
use actix_web::http::header::{CACHE_CONTROL, LOCATION};
use actix_web::{HttpRequest, HttpResponse, web};
use futures_util::StreamExt;

use super::cookies::{self, RememberedCommenter};
use super::domain::{self, FormTokenCheck, MAX_FORM_BYTES, RawCommentForm};
use super::page::render_post_page;
use super::submit::{Client, FormChecks, Outcome, submit};
use super::views::{FormState, PreviewView};
use super::{CommentStatus, queries, thread};
use crate::error::{AppError, AppResult};
use crate::http::forms::FieldErrors;
use crate::posts::handlers::accepts_comments;
use crate::posts::{PostKind, queries as post_queries};
use crate::site::DiscussionSettings;
use crate::state::AppState;

/// Reads the request body, refusing it as soon as it passes `limit` bytes.
async fn read_limited(
    req: &HttpRequest,
    mut payload: web::Payload,
    limit: usize,
) -> AppResult<Vec<u8>> {
    if crate::http::middleware::declares_more_than(req.headers(), limit) {
        return Err(AppError::PayloadTooLarge);
    }
    let mut body = Vec::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk
            .map_err(|_| AppError::BadRequest("The request body could not be read.".into()))?;
        if body.len() + chunk.len() > limit {
            return Err(AppError::PayloadTooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// `POST /posts/{slug}/comments`. Every refusal is counted by its status code; a stored
/// comment by its status and the rule that held it.
pub async fn submit_comment(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
) -> AppResult<HttpResponse> {
    let metrics = state.metrics.clone();
    let answer = store_comment(state, req, path, payload).await;
    let status = match &answer {
        Ok(response) => response.status(),
        Err(e) => actix_web::ResponseError::status_code(e),
    };
    if status.is_client_error() || status.is_server_error() {
        metrics.comment_refused(status.as_u16());
    }
    answer
}

async fn store_comment(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
) -> AppResult<HttpResponse> {
    let now = state.clock.now();
    let slug = path.into_inner();
    let (post, author, settings) = state
        .db
        .read(move |conn| {
            let found = match post_queries::find_visible(conn, PostKind::Post, &slug, now)? {
                Some(found) => Some(found),
                // The post's address changed while the reader was writing: their comment is
                // for the same post (the form token says which), so it is not refused.
                None => match post_queries::find_moved(conn, PostKind::Post, &slug, now)? {
                    Some(moved) if moved.kind() == PostKind::Post => {
                        post_queries::find_visible(conn, PostKind::Post, &moved.slug, now)?
                    }
                    _ => None,
                },
            };
            let settings = DiscussionSettings::load(conn)?;
            Ok(found.map(|(post, author)| (post, author, settings)))
        })
        .await?
        .ok_or(AppError::NotFound)?;

    if !accepts_comments(&post, &settings, now) {
        return Err(AppError::Forbidden("Comments are closed on this post."));
    }

    let body = read_limited(&req, payload, MAX_FORM_BYTES).await?;

    let rejected = |raw: RawCommentForm, errors, notice| FormState::Rejected {
        raw: Box::new(raw),
        errors,
        notice,
    };
    // A moderator or admin commenting while logged in is published at once, under their name.
    let staff = crate::auth::guard::current_staff(&state, &req).await?;
    let raw = match crate::http::forms::decode_form(&body) {
        Ok(pairs) => {
            let mut raw = RawCommentForm::from_pairs(pairs);
            if let Some(staff) = &staff {
                if raw.name.trim().is_empty() {
                    raw.name = staff.user.display_name.clone();
                }
                if raw.email.trim().is_empty() {
                    raw.email = staff.user.email.clone();
                }
            }
            raw
        }
        Err(message) => {
            let state_ = rejected(
                RawCommentForm::default(),
                FieldErrors::from(vec![("body", message)]),
                None,
            );
            return render_post_page(
                &state,
                &req,
                post,
                author,
                state_,
                1,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await;
        }
    };
    let input = match domain::validate(&raw) {
        Ok(input) => input,
        Err(errors) => {
            let notice =
                Some("Your comment was not posted. Please correct the marked fields.".into());
            return render_post_page(
                &state,
                &req,
                post,
                author,
                rejected(raw, errors, notice),
                1,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await;
        }
    };
    if raw.preview {
        // Rendered exactly as the stored comment will be; nothing is stored or counted.
        let preview = PreviewView {
            author_name: input.name.as_str().to_string(),
            author_url: input.website.as_ref().map(|w| w.as_str().to_string()),
            avatar: crate::render::identicon_svg(
                state.signer.keyed_u32("avatar", input.email.as_str()),
                48,
            ),
            body_html: crate::render::CommentFormat::Markdown.render(input.body.as_str()),
        };
        let form = FormState::Preview {
            raw: Box::new(raw),
            preview,
        };
        return render_post_page(&state, &req, post, author, form, 1, StatusCode::OK).await;
    }
    let token =
        domain::check_form_token(&state.signer, &raw.form_token, post.id, state.clock.unix());
    if token == FormTokenCheck::Expired {
        let notice = Some(
            "This page was open for more than a day, so the form expired. Your comment is kept below: please submit it again."
                .into(),
        );
        return render_post_page(
            &state,
            &req,
            post,
            author,
            rejected(raw, FieldErrors::new(), notice),
            1,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    }

    let staff_user = staff.map(|staff| staff.user.id);
    let client = Client {
        staff_user,
        ip: crate::http::client_ip(&req, &state.config.trusted_proxies),
        user_agent: req
            .headers()
            .get(actix_web::http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .chars()
            .take(500)
            .collect(),
    };
    let post_id = post.id;
    let checks = FormChecks {
        token,
        honeypot_filled: !raw.honeypot.trim().is_empty(),
    };
    let outcome = submit(&state, post_id, &settings, &input, checks, &client, now).await?;

    let (id, status) = match outcome {
        Outcome::Stored {
            id, status, rule, ..
        } => {
            state.metrics.comment_stored(status.as_str(), rule);
            (id, status)
        }
        Outcome::BadParent => {
            let errors = FieldErrors::from(vec![(
                "parent_id",
                "The comment you are replying to is not available for replies.".to_string(),
            )]);
            return render_post_page(
                &state,
                &req,
                post,
                author,
                rejected(raw, errors, None),
                1,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await;
        }
        // Both answer with the page and the input kept, so nothing the reader typed is lost.
        Outcome::Duplicate => {
            let notice = Some(
                "Duplicate comment detected; it looks as though you’ve already said that!".into(),
            );
            return render_post_page(
                &state,
                &req,
                post,
                author,
                rejected(raw, FieldErrors::new(), notice),
                1,
                StatusCode::CONFLICT,
            )
            .await;
        }
        Outcome::Flooded { retry_after_secs } => {
            let notice = Some(format!(
                "Please wait {retry_after_secs} second{} before commenting again. Your comment is kept below.",
                if retry_after_secs == 1 { "" } else { "s" }
            ));
            let mut response = render_post_page(
                &state,
                &req,
                post,
                author,
                rejected(raw, FieldErrors::new(), notice),
                1,
                StatusCode::TOO_MANY_REQUESTS,
            )
            .await?;
            response.headers_mut().insert(
                actix_web::http::header::RETRY_AFTER,
                actix_web::http::header::HeaderValue::from(retry_after_secs),
            );
            return Ok(response);
        }
    };
    tracing::info!(
        comment_id = id.0,
        post_id = post_id.0,
        status = status.as_str(),
        "comment stored"
    );
    state.mail_wakeup.notify_one();

    let mut location = format!("/posts/{}", post.slug);
    if let Some(per_page) = settings.comments_per_page.filter(|n| *n > 0) {
        let own = cookies::pending_ids(&req, &state.signer, state.clock.unix());
        let (rows, own_rows) = state
            .db
            .read(move |conn| {
                let mut own = own;
                own.push(id);
                Ok((
                    queries::load_thread(conn, post_id)?,
                    queries::own_pending(conn, post_id, &own)?,
                ))
            })
            .await?;
        let page = thread::page_of(rows, own_rows, id, settings.comment_order, per_page);
        location.push_str(&format!("?cpage={page}"));
    }
    location.push_str(&format!("#comment-{id}"));

    let secure = state.secure_cookies;
    let mut response = HttpResponse::SeeOther();
    response
        .insert_header((LOCATION, location))
        .insert_header((CACHE_CONTROL, "no-store"));
    // The cookie names the comments this browser posted: a waiting one shows to its author
    // alone, and any may be edited or deleted within the edit window.
    if status != CommentStatus::Approved || settings.edit_window_minutes > 0 {
        let mut ids = cookies::pending_ids(&req, &state.signer, state.clock.unix());
        ids.push(id);
        response.cookie(cookies::pending_cookie(
            &ids,
            &state.signer,
            state.clock.unix(),
            secure,
        ));
    }
    if input.remember {
        response.cookie(cookies::remember_cookie(
            &RememberedCommenter {
                name: input.name.as_str().to_string(),
                email: input.email.as_str().to_string(),
                website: input
                    .website
                    .as_ref()
                    .map(|w| w.as_str().to_string())
                    .unwrap_or_default(),
            },
            secure,
        ));
    } else if cookies::remembered(&req).is_some() {
        response.cookie(cookies::forget_cookie(secure));
    }
    Ok(response.finish())
}
