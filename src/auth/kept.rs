//! Sessions kept between commits: on SQLite, while nothing at all has been committed to the
//! database (its `data_version`, through `db::Freshness::commits`), a session read earlier is
//! still exactly what the database holds — its user, its role, its CSRF token, no new notice —
//! so an admin page can be judged without a trip to the database. Any commit (a login, a
//! logout, a disabled user, an action's notice, a session touched, from this process or the
//! command line) empties the keep, and the timeouts are judged at each request from the stored
//! times, as for a session just read. PostgreSQL counts no commits, so there every request reads.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::{Duration, NaiveDateTime};

use super::sessions::Stored;

/// Sessions kept at most; a site has a handful of staff, so the keep is emptied rather than
/// managed when a flood of cookies fills it.
const MAX_KEPT: usize = 256;

pub struct Sessions {
    enabled: bool,
    slot: Mutex<Slot>,
    /// When this server last moved each session's last-seen time: the requests arriving while
    /// one request's touch is being written leave it to that one (64 touches of one session at
    /// once, each waiting for its own fsync, stalled every page for 50 ms).
    touched: Mutex<HashMap<String, NaiveDateTime>>,
}

#[derive(Default)]
struct Slot {
    /// The commit count the kept sessions were read at (or after).
    commits: u64,
    by_hash: HashMap<String, Arc<Stored>>,
}

impl Sessions {
    pub fn new(enabled: bool) -> Sessions {
        Sessions {
            enabled,
            slot: Mutex::new(Slot::default()),
            touched: Mutex::new(HashMap::new()),
        }
    }

    /// Whether this request should move the session's last-seen time: not when this server has
    /// done so (or is doing so) within the last `every`.
    pub fn claim_touch(&self, id_hash: &str, now: NaiveDateTime, every: Duration) -> bool {
        let mut touched = self.touched.lock().unwrap_or_else(|p| p.into_inner());
        if touched
            .get(id_hash)
            .is_some_and(|at| now - *at < every && *at <= now)
        {
            return false;
        }
        if touched.len() >= MAX_KEPT {
            touched.clear();
        }
        touched.insert(id_hash.to_string(), now);
        true
    }

    /// The session kept under `id_hash`, if nothing has been committed since it was read
    /// (`commits` is the count now; `None` when it cannot be counted).
    pub fn get(&self, id_hash: &str, commits: Option<u64>) -> Option<Arc<Stored>> {
        let commits = commits.filter(|_| self.enabled)?;
        let slot = self.slot.lock().unwrap_or_else(|p| p.into_inner());
        if slot.commits != commits {
            return None;
        }
        slot.by_hash.get(id_hash).cloned()
    }

    /// Keeps `stored`, read after the count was `commits` (taken before the read, so that a
    /// commit during it keeps nothing stale). A session with a notice waiting is not kept: the
    /// page that shows it marks it seen, and a notice also stops showing with time.
    pub fn put(&self, commits: Option<u64>, stored: Arc<Stored>) {
        let Some(commits) = commits.filter(|_| self.enabled) else {
            return;
        };
        if stored.staff.notice.is_some() {
            return;
        }
        let mut slot = self.slot.lock().unwrap_or_else(|p| p.into_inner());
        if commits < slot.commits {
            return; // read before a commit the keep has already seen
        }
        if slot.commits != commits || slot.by_hash.len() >= MAX_KEPT {
            slot.by_hash.clear();
            slot.commits = commits;
        }
        slot.by_hash
            .insert(stored.staff.session_hash.clone(), stored);
    }
}
