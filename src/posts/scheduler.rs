//! Scheduled posts go live when their time comes, without a restart and without waiting for a
//! request: a task sleeps until the next one is due and publishes it. The UPDATE only matches
//! posts still scheduled, so with several servers each post is published once.

use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::NaiveDateTime;
use diesel::prelude::*;
use tokio::sync::Notify;

use super::PostStatus;
use crate::db::schema::posts;
use crate::db::{Db, DbConn, DbError};
use crate::state::Clock;

/// Another process (`lectern post publish`) may schedule a post; look at least this often.
const POLL: StdDuration = StdDuration::from_secs(30);

/// Publishes every scheduled post that is due; returns how many.
pub fn publish_due(conn: &mut DbConn, now: NaiveDateTime) -> Result<usize, DbError> {
    Ok(diesel::update(
        posts::table
            .filter(posts::status.eq(PostStatus::Scheduled))
            .filter(posts::published_at.le(now)),
    )
    .set((
        posts::status.eq(PostStatus::Published),
        posts::updated_at.eq(now),
    ))
    .execute(conn)?)
}

fn next_due(conn: &mut DbConn) -> Result<Option<NaiveDateTime>, DbError> {
    Ok(posts::table
        .filter(posts::status.eq(PostStatus::Scheduled))
        .select(diesel::dsl::min(posts::published_at))
        .first(conn)?)
}

pub async fn run(db: Db, clock: Clock, wakeup: Arc<Notify>) {
    loop {
        let now = clock.now();
        match db.write(move |conn| publish_due(conn, now)).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(posts = n, "published scheduled posts"),
            Err(e) => tracing::error!(error = %e, "publishing scheduled posts failed"),
        }
        let pause = match db.read(next_due).await {
            Ok(Some(due)) => (due - clock.now())
                .to_std()
                .unwrap_or(StdDuration::ZERO)
                .min(POLL),
            _ => POLL,
        };
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = wakeup.notified() => {}
        }
    }
}
