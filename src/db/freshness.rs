//! Whether the database may have changed since a page was kept, known without asking it for
//! the page's data.
//!
//! On SQLite one file holds everything, and SQLite itself counts commits: `PRAGMA
//! data_version` on a connection of our own changes whenever any other connection, in this
//! process (the pool) or another (the command line, the `sqlite3` shell), has committed. Reading
//! it touches no page of the database (it is read from the WAL index in shared memory), so a
//! page view can afford it. Most commits change nothing a reader sees (the mail worker's
//! outbox, sessions, throttling, held comments), so when it has moved, the one-row counter that
//! triggers move with every change to the public tables (migration 000018) says whether
//! anything public changed; only then does the generation move.
//!
//! On PostgreSQL, the tables whose rows show on public pages notify `lectern_changed` from a
//! statement trigger (migration 000015), delivered when the writing transaction commits, on
//! whichever server wrote. Each server keeps one listening connection; every notification
//! moves the generation. While that connection is not known to be live (not yet connected,
//! broken, reconnecting), `generation` says "unknown" and every kept page is checked against
//! the database by rendering it again (its compressed forms are still reused when nothing
//! changed); a reconnection moves the generation, since notifications may have been missed.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use diesel::prelude::*;
use diesel::sql_types::BigInt;
use diesel::sqlite::SqliteConnection;

use super::{DbError, one_line};

#[derive(QueryableByName)]
struct DataVersion {
    #[diesel(sql_type = BigInt)]
    data_version: i64,
}

#[derive(QueryableByName)]
struct PublicChanges {
    #[diesel(sql_type = BigInt)]
    total: i64,
}

struct Watch {
    conn: SqliteConnection,
    /// `data_version` when last read.
    last: i64,
    /// The public changes counter when last read; `None` when it could not be read (then every
    /// commit counts).
    public: Option<i64>,
    generation: u64,
    /// Moves with every commit seen, public or not.
    commits: u64,
}

impl Watch {
    /// Reads `data_version`, then the public counter if it moved.
    fn refresh(&mut self) -> Result<(), DbError> {
        let version = read_version(&mut self.conn)?;
        if version != self.last {
            self.last = version;
            self.commits += 1;
            let public = read_public_changes(&mut self.conn).ok();
            if public.is_none() || public != self.public {
                self.public = public;
                self.generation += 1;
            }
        }
        Ok(())
    }
}

/// The PostgreSQL listener's state, shared with its task.
#[derive(Default)]
struct Listener {
    live: AtomicBool,
    generation: AtomicU64,
    notifications: AtomicU64,
    connections: AtomicU64,
}

enum Source {
    Sqlite(Mutex<Watch>),
    /// The listener, and this process's own committed writes (known before their
    /// notification comes back).
    Postgres(Arc<Listener>, Arc<AtomicU64>),
    Unknown,
}

/// A number that moves whenever the database may have changed.
pub struct Freshness {
    source: Source,
}

/// The channel the change triggers notify.
const CHANNEL: &str = "lectern_changed";

impl Freshness {
    /// Watches the SQLite database at `path`.
    pub fn sqlite(path: &str) -> Result<Freshness, DbError> {
        let mut conn = SqliteConnection::establish(path)
            .map_err(|e| DbError::Connect(format!("{path}: {}", one_line(&e.to_string()))))?;
        let last = read_version(&mut conn)?;
        let public = read_public_changes(&mut conn).ok();
        Ok(Freshness {
            source: Source::Sqlite(Mutex::new(Watch {
                conn,
                last,
                public,
                generation: 0,
                commits: 0,
            })),
        })
    }

    /// Listens on PostgreSQL at `url` (from a task on the current Tokio runtime, reconnecting
    /// with back-off); until the first LISTEN succeeds, the generation is unknown.
    pub fn postgres(url: &str, own_writes: Arc<AtomicU64>) -> Freshness {
        let listener = Arc::new(Listener::default());
        tokio::spawn(listen(url.to_string(), listener.clone()));
        Freshness {
            source: Source::Postgres(listener, own_writes),
        }
    }

    /// Nothing to watch: every kept page is checked against the database.
    pub fn unknown() -> Freshness {
        Freshness {
            source: Source::Unknown,
        }
    }

    /// The current generation: equal to an earlier one only if nothing was committed between
    /// the two calls. `None` when it cannot be known.
    pub fn generation(&self) -> Option<u64> {
        match &self.source {
            Source::Sqlite(watch) => {
                let mut watch = watch.lock().unwrap_or_else(|p| p.into_inner());
                watch.refresh().ok()?;
                Some(watch.generation)
            }
            Source::Postgres(listener, own) => listener.live.load(Ordering::Acquire).then(|| {
                listener
                    .generation
                    .load(Ordering::Acquire)
                    .wrapping_add(own.load(Ordering::Acquire))
            }),
            Source::Unknown => None,
        }
    }

    /// A number that moves with every commit to the database, whatever it changed: equal to an
    /// earlier one only if nothing at all was committed between the two calls. Known on SQLite
    /// alone (PostgreSQL notifies of public changes only); `None` elsewhere.
    pub fn commits(&self) -> Option<u64> {
        match &self.source {
            Source::Sqlite(watch) => {
                let mut watch = watch.lock().unwrap_or_else(|p| p.into_inner());
                watch.refresh().ok()?;
                Some(watch.commits)
            }
            Source::Postgres(..) | Source::Unknown => None,
        }
    }

    /// For `/metrics`: (listening now, notifications received, connections made); PostgreSQL
    /// only.
    pub fn listener_stats(&self) -> Option<(bool, u64, u64)> {
        match &self.source {
            Source::Postgres(l, _) => Some((
                l.live.load(Ordering::Relaxed),
                l.notifications.load(Ordering::Relaxed),
                l.connections.load(Ordering::Relaxed),
            )),
            _ => None,
        }
    }
}

/// Keeps one connection listening for change notifications, for as long as the server runs.
async fn listen(url: String, listener: Arc<Listener>) {
    let mut backoff = Duration::from_millis(100);
    loop {
        let mut config: tokio_postgres::Config = match url.parse() {
            Ok(config) => config,
            Err(e) => {
                tracing::warn!(error = %e, "change notifications: the database URL is not usable; kept pages are checked against the database");
                return;
            }
        };
        config.application_name("lectern-listener");
        match config.connect(tokio_postgres::NoTls).await {
            Ok((client, mut connection)) => {
                let driving = listener.clone();
                // The connection must be polled for the client's queries to complete, and it
                // yields the notifications.
                let driver = tokio::spawn(async move {
                    loop {
                        let message = std::future::poll_fn(|cx| connection.poll_message(cx)).await;
                        match message {
                            Some(Ok(tokio_postgres::AsyncMessage::Notification(_))) => {
                                driving.notifications.fetch_add(1, Ordering::Relaxed);
                                driving.generation.fetch_add(1, Ordering::AcqRel);
                            }
                            Some(Ok(_)) => {}
                            Some(Err(_)) | None => break,
                        }
                    }
                    driving.live.store(false, Ordering::Release);
                });
                match client.batch_execute(&format!("LISTEN {CHANNEL}")).await {
                    Ok(()) => {
                        // Anything may have changed while nobody listened.
                        listener.generation.fetch_add(1, Ordering::AcqRel);
                        listener.connections.fetch_add(1, Ordering::Relaxed);
                        listener.live.store(true, Ordering::Release);
                        backoff = Duration::from_millis(100);
                        let _ = driver.await;
                        listener.live.store(false, Ordering::Release);
                        tracing::warn!(
                            "change notifications: the listening connection ended; reconnecting"
                        );
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "change notifications: LISTEN failed");
                        driver.abort();
                    }
                }
                drop(client);
            }
            Err(e) => {
                tracing::debug!(error = %e, "change notifications: cannot connect yet");
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

fn read_version(conn: &mut SqliteConnection) -> Result<i64, DbError> {
    let row: DataVersion = diesel::sql_query("PRAGMA data_version").get_result(conn)?;
    Ok(row.data_version)
}

fn read_public_changes(conn: &mut SqliteConnection) -> Result<i64, DbError> {
    let row: PublicChanges =
        diesel::sql_query("SELECT total FROM lectern_public_changes WHERE id = 1")
            .get_result(conn)?;
    Ok(row.total)
}
