//! `POST /posts/{slug}/comments`: the checks in DESIGN.md's order, then store and classify.

use actix_web::http::StatusCode;
use actix_web::http::header::{CACHE_CONTROL, LOCATION};
use actix_web::{HttpRequest, HttpResponse, web};
use futures_util::StreamExt;

use super::classify::{KeywordHits, Submission, Verdict, classify, keyword_hits};
use super::cookies::{self, RememberedCommenter};
use super::domain::{self, CommentInput, FormTokenCheck, MAX_FORM_BYTES, RawCommentForm};
use super::page::render_post_page;
use super::views::FormState;
use super::{CommentStatus, NewComment, queries, thread};
use crate::db::{DbConn, DbError};
use crate::error::{AppError, AppResult};
use crate::http::forms::FieldErrors;
use crate::posts::handlers::accepts_comments;
use crate::posts::{PostKind, queries as post_queries};
use crate::site::DiscussionSettings;
use crate::state::AppState;

/// Reads the request body, refusing it as soon as it passes `limit` bytes.
async fn read_limited(mut payload: web::Payload, limit: usize) -> AppResult<Vec<u8>> {
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

/// How the stored part of a submission ended.
enum Outcome {
    Stored { id: i32, status: CommentStatus },
    BadParent,
    Duplicate,
    Flooded { retry_after_secs: u64 },
}

pub async fn submit_comment(
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

    let body = read_limited(payload, MAX_FORM_BYTES).await?;

    let rejected = |raw: RawCommentForm, errors, notice| FormState::Rejected {
        raw: Box::new(raw),
        errors,
        notice,
    };
    let raw = match crate::http::forms::decode_form(&body) {
        Ok(pairs) => RawCommentForm::from_pairs(pairs),
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

    // A moderator or admin commenting while logged in is published at once.
    let staff_user = crate::auth::guard::current_staff(&state, &req)
        .await?
        .map(|staff| staff.user.id);
    let ip = crate::http::client_ip(&req, &state.config.trusted_proxies);
    let ip_text = ip.map(|ip| ip.to_string());
    let ip_network = ip.map(crate::http::ip_network);
    let user_agent: String = req
        .headers()
        .get(actix_web::http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .chars()
        .take(500)
        .collect();
    let avatar_seed = state.signer.keyed_u32("avatar", input.email.as_str()) as i32;
    let flood_limits = state.config.flood_limits;
    let post_id = post.id;
    let honeypot_filled = !raw.honeypot.trim().is_empty();
    let stored_input = input.clone();
    let settings_for_store = settings.clone();
    let mail = state.mail.clone();

    // Keyword lists are matched here, off the async threads and before the write transaction
    // (a list is compiled once per version, but a new version's first compile can take a while).
    let keywords = {
        let settings = settings.clone();
        let fields: Vec<String> = vec![
            input.body.as_str().to_string(),
            input.name.as_str().to_string(),
            input.email.as_str().to_string(),
            input
                .website
                .as_ref()
                .map(|w| w.as_str().to_string())
                .unwrap_or_default(),
            ip_text.clone().unwrap_or_default(),
            user_agent.clone(),
        ];
        tokio::task::spawn_blocking(move || {
            let fields: Vec<&str> = fields.iter().map(String::as_str).collect();
            keyword_hits(&settings, &fields)
        })
        .await
        .map_err(|e| AppError::Internal(e.into()))?
    };

    let outcome = state
        .db
        .write_retrying(move |conn| -> Result<Outcome, DbError> {
            store_comment(
                conn,
                &settings_for_store,
                &StoreRequest {
                    post_id,
                    input: &stored_input,
                    staff_user,
                    honeypot_filled,
                    token,
                    ip: ip_text.as_deref(),
                    ip_network: ip_network.as_deref(),
                    user_agent: &user_agent,
                    avatar_seed,
                    flood_limits,
                    now,
                    mail: &mail,
                    keywords: &keywords,
                },
            )
        })
        .await?;

    let (id, status) = match outcome {
        Outcome::Stored { id, status } => (id, status),
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
        Outcome::Duplicate => {
            return Err(AppError::Conflict(
                "Duplicate comment detected; it looks as though you’ve already said that!".into(),
            ));
        }
        Outcome::Flooded { retry_after_secs } => {
            return Err(AppError::TooManyRequests { retry_after_secs });
        }
    };
    tracing::info!(
        comment_id = id,
        post_id,
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
    if status != CommentStatus::Approved {
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

pub struct StoreRequest<'a> {
    pub post_id: i32,
    pub input: &'a CommentInput,
    pub staff_user: Option<i32>,
    pub honeypot_filled: bool,
    pub token: FormTokenCheck,
    pub ip: Option<&'a str>,
    pub ip_network: Option<&'a str>,
    pub user_agent: &'a str,
    pub avatar_seed: i32,
    pub flood_limits: bool,
    pub now: chrono::NaiveDateTime,
    pub mail: &'a crate::state::MailContext,
    pub keywords: &'a KeywordHits,
}

/// The checks that need the database, then the insert, all in one write transaction so two
/// submissions at once cannot both pass the duplicate or flood check.
fn store_comment(
    conn: &mut DbConn,
    settings: &DiscussionSettings,
    r: &StoreRequest<'_>,
) -> Result<Outcome, DbError> {
    let input = r.input;
    let parent_id = match input.parent_id {
        None => None,
        Some(parent) => {
            match queries::approved_parent_depth(conn, r.post_id, parent, settings.thread_depth)? {
                None => return Ok(Outcome::BadParent),
                // Replying to a comment at the deepest level attaches beside it, one level up.
                Some((id, depth)) if depth >= settings.thread_depth => {
                    queries::parent_of(conn, id)?.or(Some(id))
                }
                Some((id, _)) => Some(id),
            }
        }
    };
    let email = input.email.as_str();
    let body = input.body.as_str();
    if queries::is_duplicate(
        conn,
        r.post_id,
        email,
        body,
        r.now - chrono::Duration::days(1),
    )? {
        return Ok(Outcome::Duplicate);
    }
    if r.flood_limits
        && r.staff_user.is_none()
        && let Some(retry_after_secs) = flood_wait(conn, settings, r.ip_network, email, r.now)?
    {
        return Ok(Outcome::Flooded { retry_after_secs });
    }
    let returning_commenter = queries::is_returning_commenter(conn, email, input.name.as_str())?;
    // Read in this transaction, so a block a moderator has just saved applies to the next comment.
    let blocked = queries::is_blocked(conn, email, r.ip_network, r.now)?;
    let Verdict { status, reason } = classify(
        settings,
        &Submission {
            staff: r.staff_user.is_some(),
            blocked,
            honeypot_filled: r.honeypot_filled,
            form_token: r.token,
            name: input.name.as_str(),
            email,
            website: input.website.as_ref().map(|w| w.as_str()),
            body,
            ip: r.ip.unwrap_or(""),
            user_agent: r.user_agent,
            returning_commenter,
            keywords: r.keywords,
        },
    );
    let body_html = crate::render::render_comment(body);
    let id = queries::insert(
        conn,
        &NewComment {
            post_id: r.post_id,
            parent_id,
            user_id: r.staff_user,
            author_name: input.name.as_str(),
            author_email: email,
            author_url: input.website.as_ref().map(|w| w.as_str()),
            body,
            body_html: body_html.as_str(),
            status,
            held_reason: reason.as_deref(),
            ip: r.ip,
            ip_network: r.ip_network,
            user_agent: r.user_agent,
            avatar_seed: r.avatar_seed,
            notify: input.notify,
            created_at: r.now,
            updated_at: r.now,
        },
    )?;
    // The emails are written in this same transaction: stored comment, stored mail.
    match status {
        CommentStatus::Pending => {
            crate::comments::notifications::comment_held(conn, r.mail, id, r.now)?
        }
        CommentStatus::Approved => {
            crate::comments::notifications::comment_published(conn, r.mail, id, false, r.now)?
        }
        CommentStatus::Spam | CommentStatus::Trash => {}
    }
    Ok(Outcome::Stored { id, status })
}

/// Seconds until this network and this email may comment again, if they are over a limit.
fn flood_wait(
    conn: &mut DbConn,
    settings: &DiscussionSettings,
    ip_network: Option<&str>,
    email: &str,
    now: chrono::NaiveDateTime,
) -> Result<Option<u64>, DbError> {
    let hour = chrono::Duration::hours(1);
    let (by_network, by_email) =
        queries::recent_comment_times(conn, ip_network, email, now - hour)?;
    let interval = chrono::Duration::seconds(i64::from(settings.flood_interval_secs));
    let per_hour = settings.flood_per_hour as usize;
    let mut wait = chrono::Duration::zero();
    for times in [by_network, by_email] {
        if let Some(latest) = times.first() {
            wait = wait.max(*latest + interval - now);
        }
        if per_hour > 0 && times.len() >= per_hour {
            wait = wait.max(times[per_hour - 1] + hour - now);
        }
    }
    // Rounded up: a client that waits exactly Retry-After seconds must then be let through.
    let secs = wait.num_milliseconds().saturating_add(999) / 1000;
    Ok((wait > chrono::Duration::zero()).then(|| secs.max(1) as u64))
}
