//! Storing a comment, for any route: the checks that need the database (parent, duplicate,
//! flood, blocks), classification, the insert and the mail it causes, in one write
//! transaction. A route parses its input (the HTML form, an import, a later API), checks what
//! it alone knows (the post is open: 403; the body's size: 413; the fields: 422), names the
//! client, and calls [`submit`].

use std::net::IpAddr;

use chrono::NaiveDateTime;

use super::classify::{KeywordHits, Submission, Verdict, classify, keyword_hits};
use super::domain::{CommentInput, FormTokenCheck};
use super::{CommentStatus, NewComment, queries};
use crate::db::ids::{CommentId, PostId, UserId};
use crate::db::{DbConn, DbError};
use crate::error::{AppError, AppResult};
use crate::render::{CommentFormat, SafeHtml};
use crate::site::DiscussionSettings;
use crate::state::AppState;

/// Who sent a comment, as the route sees them.
#[derive(Debug, Clone, Default)]
pub struct Client {
    /// A moderator or admin signed in: published at once, no flood limits.
    pub staff_user: Option<UserId>,
    pub ip: Option<IpAddr>,
    /// At most 500 characters.
    pub user_agent: String,
}

/// What the route learnt from the form besides its fields.
#[derive(Debug, Clone, Copy)]
pub struct FormChecks {
    pub token: FormTokenCheck,
    pub honeypot_filled: bool,
}

/// How a submission ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Stored with this status; `reason` says why it was held or marked spam.
    Stored {
        id: CommentId,
        status: CommentStatus,
        reason: Option<String>,
        /// The rule that held it (a fixed name, for metrics).
        rule: Option<&'static str>,
    },
    /// 422: the comment it replies to is not an approved comment of this post.
    BadParent,
    /// 409: the same text from the same address on this post within a day.
    Duplicate,
    /// 429: this network or address commented too recently.
    Flooded { retry_after_secs: u64 },
}

/// Stores `input` as a comment on the post `post_id` (found and open to comments) for
/// `client` at `now`, or says why not.
pub async fn submit(
    state: &AppState,
    post_id: PostId,
    settings: &DiscussionSettings,
    input: &CommentInput,
    checks: FormChecks,
    client: &Client,
    now: NaiveDateTime,
) -> AppResult<Outcome> {
    let ip_text = client.ip.map(|ip| ip.to_string());
    let ip_network = client.ip.map(crate::http::ip_network);
    let user_agent = client.user_agent.clone();
    let staff_user = client.staff_user;
    let avatar_seed = state.signer.keyed_u32("avatar", input.email.as_str()) as i32;
    let address_key = state.signer.address_key(input.email.as_str());
    let flood_limits = state.config.flood_limits;
    let stored_input = input.clone();
    let settings_for_store = settings.clone();
    let mail = state.mail.clone();

    // Keyword lists are matched here, off the async threads and before the write transaction
    // (a list is compiled once per version, but a new version's first compile can take a while),
    // and the body is rendered here too: on SQLite one writer thread stores every comment in
    // turn, so what it does not have to do, it does not do.
    let (keywords, body_html) = {
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
            // `fields[0]` is the body.
            (
                keyword_hits(&settings, &fields),
                CommentFormat::Markdown.render(fields[0]),
            )
        })
        .await
        .map_err(|e| AppError::Internal(e.into()))?
    };

    let store = move |conn: &mut DbConn| -> Result<Outcome, DbError> {
        store_comment(
            conn,
            &settings_for_store,
            &StoreRequest {
                post_id,
                input: &stored_input,
                staff_user,
                honeypot_filled: checks.honeypot_filled,
                token: checks.token,
                ip: ip_text.as_deref(),
                ip_network: ip_network.as_deref(),
                user_agent: &user_agent,
                avatar_seed,
                address_key: &address_key,
                flood_limits,
                now,
                mail: &mail,
                keywords: &keywords,
                body_html: &body_html,
            },
        )
    };
    // On SQLite the comment joins the next batch of the group-commit writer: the same checks
    // in the same order, in a savepoint of a transaction shared with the comments submitted at
    // the same moment, acknowledged only once that transaction is on disk.
    Ok(match &state.group_commit {
        Some(group) => group.run(store).await?,
        None => state.db.write_retrying(store).await?,
    })
}

struct StoreRequest<'a> {
    post_id: PostId,
    input: &'a CommentInput,
    staff_user: Option<UserId>,
    honeypot_filled: bool,
    token: FormTokenCheck,
    ip: Option<&'a str>,
    ip_network: Option<&'a str>,
    user_agent: &'a str,
    avatar_seed: i32,
    /// The address's keyed hash, which a block outliving its erasure matches.
    address_key: &'a str,
    flood_limits: bool,
    now: chrono::NaiveDateTime,
    mail: &'a crate::state::MailContext,
    keywords: &'a KeywordHits,
    /// The body as it will show, rendered before the write.
    body_html: &'a SafeHtml,
}

/// The checks that need the database, then the insert, all in one write transaction so two
/// submissions at once cannot both pass the duplicate or flood check.
fn store_comment(
    conn: &mut DbConn,
    settings: &DiscussionSettings,
    r: &StoreRequest<'_>,
) -> Result<Outcome, DbError> {
    let input = r.input;
    // The duplicate and flood checks below read, then the insert writes: submissions from the
    // same address or network take turns until this transaction commits.
    let address = format!("comment-address:{}", input.email.as_str());
    let network = format!("comment-network:{}", r.ip_network.unwrap_or(""));
    crate::db::take_turns(conn, &[&address, &network])?;
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
    let blocked = queries::is_blocked(conn, email, r.address_key, r.ip_network, r.now)?;
    let Verdict {
        status,
        reason,
        rule,
    } = classify(
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
            body_html: r.body_html.as_str(),
            format: CommentFormat::Markdown,
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
    Ok(Outcome::Stored {
        id,
        status,
        reason,
        rule,
    })
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
