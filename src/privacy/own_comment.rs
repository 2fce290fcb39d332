//! `GET|POST /comments/{id}/edit` and `POST /comments/{id}/delete`: the browser that posted a
//! comment (its signed cookie names it) may change or delete it for a while after posting
//! (the discussion setting `edit_window_minutes`). Each form carries a token that only pages
//! rendered for that browser show. The rules of an edit are `comments::edit`; a delete goes as
//! "manage my comments" takes it (a placeholder stays while approved replies hang from it).

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;

use crate::actions::{Actor, Via};
use crate::comments::classify::keyword_hits;
use crate::comments::cookies;
use crate::comments::domain::CommentBody;
use crate::comments::edit::{self, NotEditable, OwnComment};
use crate::comments::views::own_comment_token;
use crate::crypto::constant_time_eq;
use crate::db::ids::CommentId;
use crate::error::{AppError, AppResult};
use crate::http::forms::FormFields;
use crate::http::response::{html_response, see_other};
use crate::render::{CommentFormat, SafeHtml, identicon_svg};
use crate::site::DiscussionSettings;
use crate::state::AppState;
use crate::views::{Layout, comment_date};

#[derive(Template)]
#[template(path = "comments/edit.html")]
struct EditPage {
    layout: Layout,
    id: CommentId,
    post_title: String,
    post_path: String,
    body: String,
    error: Option<String>,
    preview: Option<SafeHtml>,
    author_name: String,
    avatar: SafeHtml,
    until: String,
    token: String,
}

/// The comment and its post's title and address, if this browser may change it now.
async fn editable(
    state: &AppState,
    req: &HttpRequest,
    id: CommentId,
) -> AppResult<(OwnComment, String, String, DiscussionSettings)> {
    let own_ids = cookies::pending_ids(req, &state.signer, state.clock.unix());
    let now = state.clock.now();
    let found = state
        .db
        .read(move |conn| {
            let settings = DiscussionSettings::load(conn)?;
            let comment = edit::find_editable(conn, id, &own_ids, &settings, now)?;
            let post = match &comment {
                Ok(c) => crate::posts::queries::find_by_id(conn, c.post_id)?,
                Err(_) => None,
            };
            Ok((comment, post, settings))
        })
        .await?;
    match found {
        (Ok(comment), Some(post), settings) => {
            Ok((comment, post.title.clone(), post.path(), settings))
        }
        (Err(NotEditable::Closed), _, _) => Err(AppError::Forbidden(
            "The time for editing or deleting this comment has passed.",
        )),
        _ => Err(AppError::NotFound),
    }
}

fn token_is_valid(state: &AppState, id: CommentId, form: &FormFields) -> bool {
    let expected = own_comment_token(&state.signer, id);
    form.get("token")
        .is_some_and(|t| constant_time_eq(t, &expected))
}

#[allow(clippy::too_many_arguments)]
fn page(
    state: &AppState,
    comment: &OwnComment,
    post_title: String,
    post_path: String,
    settings: &DiscussionSettings,
    body: String,
    error: Option<String>,
    preview: Option<SafeHtml>,
    status: StatusCode,
) -> AppResult<HttpResponse> {
    let mut layout = Layout::new(state, "Edit your comment");
    layout.noindex = true;
    layout.description = Some(format!("Edit your comment on “{post_title}”."));
    let until = comment
        .editable_until(settings)
        .map(|at| comment_date(at, state.config.timezone))
        .unwrap_or_default();
    let html = EditPage {
        layout,
        id: comment.id,
        post_title,
        post_path,
        body,
        error,
        preview,
        author_name: comment.author_name.clone(),
        avatar: identicon_svg(comment.avatar_seed as u32, 48),
        until,
        token: own_comment_token(&state.signer, comment.id),
    }
    .render()
    .map_err(|e| AppError::Internal(e.into()))?;
    Ok(html_response(status, html, true))
}

/// `GET /comments/{id}/edit`
pub async fn edit_form(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<CommentId>,
) -> AppResult<HttpResponse> {
    let (comment, title, post_path, settings) = editable(&state, &req, path.into_inner()).await?;
    let body = comment.body.clone();
    page(
        &state,
        &comment,
        title,
        post_path,
        &settings,
        body,
        None,
        None,
        StatusCode::OK,
    )
}

/// `POST /comments/{id}/edit` (`body`, `token`; `preview` shows the new text without saving)
pub async fn edit(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<CommentId>,
    body: web::Bytes,
) -> AppResult<HttpResponse> {
    let id = path.into_inner();
    let form = FormFields::parse(&body)?;
    if !token_is_valid(&state, id, &form) {
        return Err(AppError::Forbidden(
            "This form was not sent from your comment's page.",
        ));
    }
    let (comment, title, post_path, settings) = editable(&state, &req, id).await?;
    let text = crate::text::normalize_newlines(form.get("body").unwrap_or(""));
    let new_body = match CommentBody::parse(&text) {
        Ok(body) => body,
        Err(message) => {
            return page(
                &state,
                &comment,
                title,
                post_path,
                &settings,
                text,
                Some(message),
                None,
                StatusCode::UNPROCESSABLE_ENTITY,
            );
        }
    };
    if form.get("preview").is_some() {
        let html = CommentFormat::Markdown.render(new_body.as_str());
        return page(
            &state,
            &comment,
            title,
            post_path,
            &settings,
            text,
            None,
            Some(html),
            StatusCode::OK,
        );
    }
    let keywords = {
        let settings = settings.clone();
        let fields = [
            new_body.as_str().to_string(),
            comment.author_name.clone(),
            comment.author_email.clone(),
            comment.author_url.clone().unwrap_or_default(),
            comment.ip.clone().unwrap_or_default(),
            comment.user_agent.clone(),
        ];
        tokio::task::spawn_blocking(move || {
            let fields: Vec<&str> = fields.iter().map(String::as_str).collect();
            keyword_hits(&settings, &fields)
        })
        .await
        .map_err(|e| AppError::Internal(e.into()))?
    };
    let actor = Actor {
        user_id: None,
        via: Via::Web,
        ip: crate::http::client_ip(&req, &state.config.trusted_proxies).map(|ip| ip.to_string()),
    };
    let address_key = state.signer.address_key(&comment.author_email);
    let now = state.clock.now();
    let mail = state.mail.clone();
    let edited = state
        .db
        .write_retrying(move |conn| {
            edit::edit_own(
                conn,
                &settings,
                &mail,
                &comment,
                &new_body,
                &address_key,
                &keywords,
                &actor,
                now,
            )
        })
        .await?;
    tracing::info!(
        comment_id = id.0,
        from = edited.from.as_str(),
        to = edited.to.as_str(),
        "comment edited by its author"
    );
    state.mail_wakeup.notify_one();
    Ok(see_other(&format!("{post_path}#comment-{id}")))
}

/// `POST /comments/{id}/delete` (`token`)
pub async fn delete(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<CommentId>,
    body: web::Bytes,
) -> AppResult<HttpResponse> {
    let id = path.into_inner();
    let form = FormFields::parse(&body)?;
    if !token_is_valid(&state, id, &form) {
        return Err(AppError::Forbidden(
            "This form was not sent from your comment's page.",
        ));
    }
    let (_, _, post_path, _) = editable(&state, &req, id).await?;
    let actor = Actor {
        user_id: None,
        via: Via::Web,
        ip: crate::http::client_ip(&req, &state.config.trusted_proxies).map(|ip| ip.to_string()),
    };
    let now = state.clock.now();
    state
        .db
        .write_retrying(move |conn| -> Result<(), crate::db::DbError> {
            if let Some(from) = crate::moderation::delete_for_author(conn, id, now)? {
                crate::audit::log(
                    conn,
                    Some(id),
                    "author-delete",
                    &format!(
                        "deleted by its author within the edit window (was {})",
                        from.as_str()
                    ),
                    &actor,
                    now,
                )?;
            }
            Ok(())
        })
        .await?;
    tracing::info!(comment_id = id.0, "comment deleted by its author");
    Ok(see_other(&format!("{post_path}#comments")))
}
