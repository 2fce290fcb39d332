//! Retention: spam and trash are purged after `retention_days`, and IP addresses (commenters'
//! and the staff's in the moderation log) are dropped after at most 30 days (DESIGN.md's privacy
//! promise), by a task beside the server. It also deletes expired staff sessions and mail sent
//! more than 30 days ago, which hold addresses and text nobody needs any more.
//!
//! Work is done in small batches, each its own write transaction, so a large backlog never
//! holds SQLite's write lock long enough to stall comment submissions.

use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::NaiveDateTime;
use diesel::prelude::*;
use tokio::sync::Notify;

use crate::actions::{Actor, Via};
use crate::comments::CommentStatus;
use crate::comments::queries::adjust_status_count;
use crate::db::ids::CommentId;
use crate::db::schema::{comments, moderation_log};
use crate::db::{Db, DbConn, DbError};
use crate::site::DiscussionSettings;
use crate::state::Clock;

/// How often the task runs on its own; `AppState::retention_wakeup` runs it sooner.
const EVERY: StdDuration = StdDuration::from_secs(3600);
/// IP addresses are never kept longer than this, whatever `retention_days` says.
pub const MAX_IP_DAYS: u32 = 30;
/// Sent mail stays visible on the admin's mail page this long.
pub const SENT_MAIL_DAYS: i64 = 30;
const BATCH: i64 = 200;

/// "1 day" or "N days".
fn days(n: u32) -> String {
    if n == 1 {
        "1 day".into()
    } else {
        format!("{n} days")
    }
}

/// What the retention settings mean, one sentence each: the privacy page and the settings page
/// print these same words, so what readers are told is what the site does.
pub fn policy(settings: &DiscussionSettings) -> Vec<String> {
    let ip_days = settings.retention_days.min(MAX_IP_DAYS);
    vec![
        format!(
            "Comments marked as spam and comments moved to the trash are deleted {} after they were moved there.",
            days(settings.retention_days)
        ),
        format!(
            "The IP address a comment was sent from is deleted {} after the comment was made (never later than {MAX_IP_DAYS} days).",
            days(ip_days)
        ),
        format!(
            "Copies of the emails this site sent are deleted {SENT_MAIL_DAYS} days after sending."
        ),
    ]
}

/// What one run did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PurgeReport {
    pub spam_deleted: usize,
    pub trash_deleted: usize,
    pub ips_dropped: usize,
    pub blocks_expired: usize,
    /// Moderation log rows whose (staff) IP address was dropped.
    pub log_ips_dropped: usize,
    pub sessions_deleted: usize,
    pub sent_mail_deleted: usize,
    /// Day-old records of "manage my comments" link requests (they hold a client network).
    pub link_requests_deleted: usize,
}

impl PurgeReport {
    pub fn is_empty(&self) -> bool {
        *self == PurgeReport::default()
    }
}

/// One purge run at `now`: deletes spam and trash that have stayed so longer than
/// `retention_days`, drops IP addresses older than min(`retention_days`, 30) days, deletes
/// run-out blocks, and writes one moderation log row (via `system`) when anything changed.
pub async fn purge(db: &Db, now: NaiveDateTime) -> Result<PurgeReport, DbError> {
    let settings = db.read(DiscussionSettings::load).await?;
    let days = settings.retention_days;
    let ip_days = days.min(MAX_IP_DAYS);
    let cutoff = now - chrono::Duration::days(i64::from(days));
    let ip_cutoff = now - chrono::Duration::days(i64::from(ip_days));
    let mut report = PurgeReport::default();
    for status in [CommentStatus::Spam, CommentStatus::Trash] {
        let deleted = drain(db, move |conn| delete_batch(conn, status, cutoff, now)).await?;
        match status {
            CommentStatus::Spam => report.spam_deleted = deleted,
            _ => report.trash_deleted = deleted,
        }
    }
    report.ips_dropped = drain(db, move |conn| drop_ip_batch(conn, ip_cutoff)).await?;
    report.blocks_expired = db
        .write(move |conn| super::blocks::delete_expired(conn, now))
        .await?;
    report.log_ips_dropped = drain(db, move |conn| drop_log_ip_batch(conn, ip_cutoff)).await?;
    report.sessions_deleted = db
        .write(move |conn| crate::auth::sessions::delete_expired(conn, now))
        .await?;
    report.link_requests_deleted = db
        .write(move |conn| -> Result<usize, DbError> {
            use crate::db::schema::my_comments_requests as requests;
            Ok(diesel::delete(
                requests::table.filter(requests::created_at.lt(now - chrono::Duration::days(1))),
            )
            .execute(conn)?)
        })
        .await?;
    let mail_cutoff = now - chrono::Duration::days(SENT_MAIL_DAYS);
    report.sent_mail_deleted = drain(db, move |conn| {
        let deleted = crate::notify::outbox::delete_sent_before(conn, mail_cutoff, BATCH)?;
        Ok((deleted, deleted as i64 == BATCH))
    })
    .await?;
    if !report.is_empty() {
        let mut detail = format!(
            "deleted {} spam and {} trashed comments older than {days} days; \
             dropped the IP address of {} comments older than {ip_days} days; \
             removed {} expired blocks",
            report.spam_deleted, report.trash_deleted, report.ips_dropped, report.blocks_expired
        );
        let housekeeping = [
            (
                report.log_ips_dropped,
                "moderation log entries' IP addresses dropped",
            ),
            (report.sessions_deleted, "expired sessions deleted"),
            (report.sent_mail_deleted, "sent emails deleted"),
            (
                report.link_requests_deleted,
                "day-old requests for comment links deleted",
            ),
        ];
        for (n, what) in housekeeping.into_iter().filter(|(n, _)| *n > 0) {
            detail.push_str(&format!("; {n} {what}"));
        }
        let system = Actor {
            user_id: None,
            via: Via::System,
            ip: None,
        };
        db.write(move |conn| crate::audit::log(conn, None, "purge", &detail, &system, now))
            .await?;
    }
    Ok(report)
}

/// Runs `batch` in write transactions until one does less than a full batch; returns the total.
/// A batch moves the shared comment counts, so on PostgreSQL it may lose a deadlock against a
/// moderator's bulk action; it is then run again.
async fn drain<F>(db: &Db, batch: F) -> Result<usize, DbError>
where
    F: Fn(&mut DbConn) -> Result<(usize, bool), DbError> + Clone + Send + 'static,
{
    let mut total = 0;
    loop {
        let (done, full) = db.write_retrying(batch.clone()).await?;
        total += done;
        if !full {
            return Ok(total);
        }
    }
}

/// Deletes up to one batch of `status` comments unchanged since before `cutoff`. Returns how
/// many were deleted and whether the batch was full (more may wait).
///
/// "Older" counts from `updated_at`, the time the comment was moved to spam or trash: a
/// months-old comment trashed by mistake yesterday stays restorable for the whole period.
fn delete_batch(
    conn: &mut DbConn,
    status: CommentStatus,
    cutoff: NaiveDateTime,
    now: NaiveDateTime,
) -> Result<(usize, bool), DbError> {
    let due = || {
        comments::table
            .filter(comments::status.eq(status))
            .filter(comments::deleted_at.is_null())
            .filter(comments::updated_at.lt(cutoff))
    };
    // Newest first: a reply is purged before the comment it answers, which can then be
    // deleted outright instead of leaving a tombstone.
    let ids: Vec<CommentId> = due()
        .select(comments::id)
        .order(comments::id.desc())
        .limit(BATCH)
        .load(conn)?;
    let mut deleted = 0;
    for id in &ids {
        // Claim the row: on PostgreSQL this waits for, and then re-checks against, a moderator
        // or another server touching the same comment, so the counts are adjusted only once.
        let claimed = diesel::update(due().filter(comments::id.eq(id)))
            .set(comments::updated_at.eq(comments::updated_at))
            .execute(conn)?;
        if claimed == 0 {
            continue;
        }
        // The same steps as the moderators' "Delete permanently" (`super::apply`): the counts,
        // then deletion or a tombstone when replies hang from it. Not `apply` itself, because
        // it logs each comment, and a purge is logged once per run.
        adjust_status_count(conn, status.as_str(), -1)?;
        super::delete_permanently(conn, *id, now)?;
        deleted += 1;
    }
    Ok((deleted, ids.len() as i64 == BATCH))
}

/// Drops the IP address of up to one batch of comments made before `cutoff`.
fn drop_ip_batch(conn: &mut DbConn, cutoff: NaiveDateTime) -> Result<(usize, bool), DbError> {
    let due = || {
        comments::table
            .filter(comments::created_at.lt(cutoff))
            .filter(
                comments::ip
                    .is_not_null()
                    .or(comments::ip_network.is_not_null()),
            )
    };
    let ids: Vec<CommentId> = due()
        .select(comments::id)
        .order(comments::id)
        .limit(BATCH)
        .load(conn)?;
    if ids.is_empty() {
        return Ok((0, false));
    }
    let dropped = diesel::update(due().filter(comments::id.eq_any(&ids)))
        .set((
            comments::ip.eq(None::<String>),
            comments::ip_network.eq(None::<String>),
        ))
        .execute(conn)?;
    Ok((dropped, ids.len() as i64 == BATCH))
}

/// Drops the IP address of up to one batch of moderation log entries made before `cutoff`.
fn drop_log_ip_batch(conn: &mut DbConn, cutoff: NaiveDateTime) -> Result<(usize, bool), DbError> {
    let ids: Vec<i32> = moderation_log::table
        .filter(moderation_log::created_at.lt(cutoff))
        .filter(moderation_log::ip.is_not_null())
        .select(moderation_log::id)
        .order(moderation_log::id)
        .limit(BATCH)
        .load(conn)?;
    if ids.is_empty() {
        return Ok((0, false));
    }
    let dropped = diesel::update(moderation_log::table.filter(moderation_log::id.eq_any(&ids)))
        .set(moderation_log::ip.eq(None::<String>))
        .execute(conn)?;
    Ok((dropped, ids.len() as i64 == BATCH))
}

/// The background task: a run at start, then every hour or when woken.
pub async fn run(db: Db, clock: Clock, wakeup: Arc<Notify>) {
    loop {
        match purge(&db, clock.now()).await {
            Ok(report) if report.is_empty() => {}
            Ok(report) => tracing::info!(
                spam = report.spam_deleted,
                trash = report.trash_deleted,
                ips = report.ips_dropped,
                blocks = report.blocks_expired,
                log_ips = report.log_ips_dropped,
                sessions = report.sessions_deleted,
                sent_mail = report.sent_mail_deleted,
                "retention: purged old spam and trash, dropped old IP addresses"
            ),
            Err(e) => tracing::error!(error = %e, "retention: purge failed"),
        }
        tokio::select! {
            _ = tokio::time::sleep(EVERY) => {}
            _ = wakeup.notified() => {}
        }
    }
}
