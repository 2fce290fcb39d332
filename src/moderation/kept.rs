//! The moderation screens' last readings of the database (the dashboard's numbers, a queue
//! page's rows), kept for as long as nothing has been committed since (`db::Freshness::commits`)
//! and the hour has not turned, so that moderators who keep a screen open, or reload it, cost no
//! database work between changes. Any commit, by this server or any other process, makes the
//! next view read again. On PostgreSQL, where this server cannot know of every other server's
//! commits, and with `LECTERN_PAGE_CACHES=off`, every view reads.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::{Arc, Mutex};

use chrono::{NaiveDate, NaiveDateTime, TimeZone, Timelike};

/// Readings of type `T`, each kept under the query `Q` that made it (the dashboard has one
/// query, `()`; the queue one per tab, filter and page), at most `capacity` of them.
pub struct Kept<Q, T> {
    enabled: bool,
    capacity: usize,
    /// Oldest first; every reading here was made under the same `KeptKey`.
    slots: Mutex<VecDeque<(KeptKey, Q, Arc<T>)>>,
    /// Taken by the view that reads: after a commit, the views arriving meanwhile wait for its
    /// reading instead of each reading the same rows at once.
    reading: tokio::sync::Mutex<()>,
}

/// Commits seen, and the hour of the view (UTC hour and local date: a chart's days and the
/// month start with the local date).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct KeptKey {
    commits: u64,
    hour: NaiveDateTime,
    local_day: NaiveDate,
}

impl KeptKey {
    /// `None` when the commits cannot be counted.
    pub fn new(commits: Option<u64>, now: NaiveDateTime, tz: chrono_tz::Tz) -> Option<KeptKey> {
        Some(KeptKey {
            commits: commits?,
            hour: now.date().and_hms_opt(now.hour(), 0, 0)?,
            local_day: tz.from_utc_datetime(&now).date_naive(),
        })
    }
}

impl<Q: PartialEq, T> Kept<Q, T> {
    pub fn new(enabled: bool, capacity: usize) -> Kept<Q, T> {
        Kept {
            enabled,
            capacity: capacity.max(1),
            slots: Mutex::new(VecDeque::new()),
            reading: tokio::sync::Mutex::new(()),
        }
    }

    /// The reading for `query` under `key` (counted before anything is read, so that a commit
    /// during the read makes the next view read again): the kept one, or one made by `read`
    /// and kept. One view reads at a time; the others wait and take what it kept.
    pub async fn get_or_read<E, F, Fut>(
        &self,
        key: Option<KeptKey>,
        query: Q,
        read: F,
    ) -> Result<Arc<T>, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let Some(key) = key.filter(|_| self.enabled) else {
            return read().await.map(Arc::new);
        };
        if let Some(kept) = self.get(key, &query) {
            return Ok(kept);
        }
        let _turn = self.reading.lock().await;
        if let Some(kept) = self.get(key, &query) {
            return Ok(kept);
        }
        let value = Arc::new(read().await?);
        self.put(key, query, value.clone());
        Ok(value)
    }

    fn get(&self, key: KeptKey, query: &Q) -> Option<Arc<T>> {
        let slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        slots
            .iter()
            .find(|(k, q, _)| *k == key && q == query)
            .map(|(_, _, value)| value.clone())
    }

    fn put(&self, key: KeptKey, query: Q, value: Arc<T>) {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        // Readings made before a commit can never be taken again.
        slots.retain(|(k, q, _)| *k == key && *q != query);
        slots.push_back((key, query, value));
        while slots.len() > self.capacity {
            slots.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(commits: u64) -> Option<KeptKey> {
        let now = chrono::NaiveDate::from_ymd_opt(2026, 12, 7)
            .and_then(|d| d.and_hms_opt(10, 30, 0))
            .unwrap_or_default();
        KeptKey::new(Some(commits), now, chrono_tz::UTC)
    }

    async fn reading(kept: &Kept<&'static str, u32>, at: u64, query: &'static str, n: u32) -> u32 {
        let value: Result<_, ()> = kept.get_or_read(key(at), query, || async { Ok(n) }).await;
        value.map_or(0, |v| *v)
    }

    #[tokio::test]
    async fn a_reading_is_kept_per_query_until_the_next_commit() {
        let kept = Kept::new(true, 2);
        assert_eq!(reading(&kept, 1, "pending", 10).await, 10);
        assert_eq!(reading(&kept, 1, "pending", 11).await, 10, "kept");
        assert_eq!(
            reading(&kept, 1, "spam", 20).await,
            20,
            "another query reads"
        );
        assert_eq!(
            reading(&kept, 2, "pending", 12).await,
            12,
            "a commit reads again"
        );
        assert_eq!(reading(&kept, 2, "spam", 21).await, 21, "for every query");
        assert_eq!(reading(&kept, 2, "trash", 30).await, 30);
        assert_eq!(
            reading(&kept, 2, "pending", 13).await,
            13,
            "the oldest made room"
        );
        assert_eq!(reading(&kept, 2, "trash", 31).await, 30);
    }

    #[tokio::test]
    async fn nothing_is_kept_when_commits_are_not_counted_or_keeping_is_off() {
        let off = Kept::new(false, 4);
        assert_eq!(reading(&off, 1, "pending", 1).await, 1);
        assert_eq!(reading(&off, 1, "pending", 2).await, 2);
        let uncounted: Kept<&str, u32> = Kept::new(true, 4);
        for n in 1..3 {
            let value: Result<_, ()> = uncounted
                .get_or_read(None, "pending", || async move { Ok(n) })
                .await;
            assert_eq!(value.map_or(0, |v| *v), n);
        }
    }
}
