//! Shared application state: what every handler and background task can reach, and the clock.
//!
//! It lives low in the house so handlers, middleware and tasks import it downwards; only
//! `startup.rs` builds it.

use std::sync::atomic::{AtomicI64, AtomicU32, Ordering};
use std::sync::{Arc, RwLock};

use chrono::NaiveDateTime;
use url::Url;

use crate::config::Config;
use crate::crypto::Signer;
use crate::db::Db;
use crate::site::identity::SiteIdentity;
use crate::thread_cache::ThreadCache;

/// The time as lectern sees it. Tests move it forward instead of sleeping.
#[derive(Clone, Default)]
pub struct Clock {
    offset_secs: Arc<AtomicI64>,
}

impl Clock {
    pub fn now(&self) -> NaiveDateTime {
        crate::db::now() + chrono::Duration::seconds(self.offset_secs.load(Ordering::Relaxed))
    }

    pub fn unix(&self) -> i64 {
        self.now().and_utc().timestamp()
    }

    pub fn advance(&self, secs: i64) {
        self.offset_secs.fetch_add(secs, Ordering::Relaxed);
    }
}

/// What every handler can reach.
pub struct AppState {
    pub db: Db,
    pub config: Config,
    pub base_url: Url,
    /// `scheme://host[:port]` of the base URL, for the origin check.
    pub origin: String,
    pub signer: Signer,
    /// Over an https base URL: Secure cookies, `__Host-` names and HSTS.
    pub secure_cookies: bool,
    pub clock: Clock,
    /// Every argon2 run: two threads, each reusing one 19 MiB block.
    pub passwords: crate::users::password::PasswordWorkers,
    pub mail: MailContext,
    /// Wakes the mail worker after a transaction added mail.
    pub mail_wakeup: Arc<tokio::sync::Notify>,
    /// Faults tests inject into the mail worker (none unless a test sets them).
    pub mail_faults: Arc<MailFaults>,
    /// Where mail goes, for the admin's mail page.
    pub mail_transport: String,
    /// Wakes the scheduler after a post was scheduled (or the test clock moved).
    pub publish_wakeup: Arc<tokio::sync::Notify>,
    /// Rendered comment threads, checked against the post's thread version on every request.
    pub thread_cache: Arc<ThreadCache>,
    /// Wakes the retention task (purging old spam and trash, dropping old IP addresses).
    pub retention_wakeup: Arc<tokio::sync::Notify>,
    /// This server's counters for `/metrics`.
    pub metrics: Arc<crate::telemetry::Metrics>,
    /// On SQLite: the writer that stores comments in shared transactions, one fsync per batch.
    pub group_commit: Option<Arc<crate::db::GroupCommit>>,
    /// The site's title, tagline, menu, footer and styles (`/admin/site`).
    pub identity: Arc<IdentityCell>,
}

/// This server's copy of the site identity: replaced at once by a save here, and by
/// [`refresh_identity`] within seconds of a save on another server sharing the database.
pub struct IdentityCell {
    current: RwLock<Arc<SiteIdentity>>,
}

/// How often a server looks for an identity saved by another one.
const IDENTITY_POLL: std::time::Duration = std::time::Duration::from_secs(5);

impl IdentityCell {
    pub fn new(identity: SiteIdentity) -> IdentityCell {
        IdentityCell {
            current: RwLock::new(Arc::new(identity)),
        }
    }

    pub fn get(&self) -> Arc<SiteIdentity> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn set(&self, identity: SiteIdentity) {
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(identity);
    }
}

/// Reloads the identity whenever its stored version is not the one this server has.
pub async fn refresh_identity(db: Db, cell: Arc<IdentityCell>, default_title: String) {
    loop {
        tokio::time::sleep(IDENTITY_POLL).await;
        let known = cell.get().version;
        let title = default_title.clone();
        let fresh = db
            .read(move |conn| {
                if crate::site::identity::load_version(conn)? == known {
                    return Ok(None);
                }
                SiteIdentity::load(conn, &title).map(Some)
            })
            .await;
        match fresh {
            Ok(Some(identity)) => cell.set(identity),
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "reading the site identity failed"),
        }
    }
}

impl AppState {
    /// The site identity as this server knows it.
    pub fn identity(&self) -> Arc<SiteIdentity> {
        self.identity.get()
    }

    /// An absolute URL for a site path (emails and feeds).
    pub fn absolute(&self, path: &str) -> String {
        let base = self.base_url.as_str().trim_end_matches('/');
        format!("{base}{path}")
    }
}

/// What rendering and signing an email needs, taken from the application's state.
#[derive(Debug, Clone)]
pub struct MailContext {
    pub signer: Signer,
    /// Without a trailing slash.
    pub base_url: String,
    pub site_title: String,
    /// The domain of the sender address, for Message-IDs.
    pub domain: String,
}

impl MailContext {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }
}

/// Faults a test can inject into the worker.
#[derive(Default)]
pub struct MailFaults {
    /// The next this many attempts to record a sent message fail as if the database had not
    /// answered (after the SMTP server accepted the message).
    pub fail_mark_sent: AtomicU32,
}

impl MailFaults {
    pub fn take(counter: &AtomicU32) -> bool {
        counter
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
    }
}
