//! The database: one connection type over SQLite and PostgreSQL, a pool, migrations, and the two
//! ways handlers reach it (`read` and `write`), both off the async threads.

pub mod ids;
pub mod schema;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use diesel::connection::{AnsiTransactionManager, SimpleConnection, TransactionManager};
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel::sqlite::SqliteConnection;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use crate::config::SqliteSync;

mod freshness;
mod group_commit;
pub use freshness::Freshness;
pub use group_commit::GroupCommit;

pub const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
pub const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

#[derive(diesel::MultiConnection)]
pub enum DbConn {
    Postgresql(PgConnection),
    Sqlite(SqliteConnection),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("cannot connect to the database: {0}")]
    Connect(String),
    #[error("no database connection available: {0}")]
    Pool(#[from] r2d2::Error),
    #[error(transparent)]
    Query(#[from] DieselError),
    #[error("database task failed: {0}")]
    Task(String),
    /// The database is there but cannot take the work now (another process has held SQLite's
    /// write lock past the busy wait, or a batch could not get a connection): try again later.
    #[error("the database is busy: {0}")]
    Busy(String),
}

impl DbError {
    /// No connection could be had (the database is down, or every connection stayed busy), or
    /// the one in hand was closed under the query: the request may work in a moment.
    pub fn is_unavailable(&self) -> bool {
        match self {
            DbError::Pool(_) | DbError::Busy(_) => true,
            DbError::Query(DieselError::DatabaseError(DatabaseErrorKind::ClosedConnection, _)) => {
                true
            }
            // SQLITE_BUSY after the busy wait: another process holds the write lock.
            DbError::Query(DieselError::DatabaseError(_, info)) => {
                info.message().contains("database is locked")
            }
            _ => false,
        }
    }

    pub fn is_unique_violation(&self) -> bool {
        matches!(
            self,
            DbError::Query(DieselError::DatabaseError(
                DatabaseErrorKind::UniqueViolation,
                _
            ))
        )
    }
}

/// Sets the bundled SQLite up for how lectern uses it, for the whole process. Every connection
/// is used by one thread at a time (the pool hands it out, `Freshness` and the group-commit
/// writer hold their own), so SQLite's lock around each call on a connection is not needed
/// (multi-thread mode), and its count of allocated memory, which takes one process-wide lock
/// per allocation, is never read. Must run before SQLite is first used and while no other
/// thread can call it: `main` calls it first. Anywhere else (tests) SQLite keeps its defaults.
pub fn configure_sqlite_for_this_process() {
    // SAFETY: called once, from `main` before any other thread exists and before any SQLite
    // call; sqlite3_config then only sets global options, and both take an int.
    unsafe {
        libsqlite3_sys::sqlite3_config(libsqlite3_sys::SQLITE_CONFIG_MULTITHREAD);
        libsqlite3_sys::sqlite3_config(libsqlite3_sys::SQLITE_CONFIG_MEMSTATUS, 0);
    }
}

/// libpq explains a refused connection over several lines ("…failed: Connection refused",
/// then a tab and "Is the server running on that host…?"); a start-up error and a log field
/// are one line each.
pub fn one_line(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

/// How long a request waits for a database connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Waits {
    /// While the database answers and every connection is busy: wait for one to come free.
    pub busy: Duration,
    /// `/healthz`'s whole wait, and the first wait of a request when the database stops
    /// answering. Also how often the pool tries again to connect while it does not.
    pub probe: Duration,
}

impl Default for Waits {
    fn default() -> Waits {
        Waits {
            busy: Duration::from_secs(10),
            probe: Duration::from_secs(1),
        }
    }
}

/// Whether the last attempt to open a connection failed. While it did, requests do not wait
/// for a connection (they answer 503 at once); the pool keeps trying to connect in the
/// background, and its first success ends that.
#[derive(Default)]
pub struct Health {
    down: AtomicBool,
}

impl Health {
    pub fn is_down(&self) -> bool {
        self.down.load(Ordering::Relaxed)
    }

    fn connected(&self) {
        if self.down.swap(false, Ordering::Relaxed) {
            tracing::info!("the database answers again");
        }
    }

    fn failed(&self, error: &DbError) {
        if !self.down.swap(true, Ordering::Relaxed) {
            tracing::error!(error = %error, "the database does not answer; requests get 503 until it does");
        }
    }
}

/// Opens connections for the pool, setting SQLite's per-connection pragmas.
pub struct ConnectionManager {
    backend: Backend,
    target: String,
    sync: SqliteSync,
    health: Arc<Health>,
}

impl ConnectionManager {
    pub fn new(url: &str, sync: SqliteSync) -> ConnectionManager {
        match url.strip_prefix("sqlite://") {
            Some(path) => ConnectionManager {
                backend: Backend::Sqlite,
                target: path.to_string(),
                sync,
                health: Arc::default(),
            },
            None => ConnectionManager {
                backend: Backend::Postgres,
                target: url.to_string(),
                sync,
                health: Arc::default(),
            },
        }
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Opens a connection, and records whether that worked for the fast path of `Db`.
    pub fn connect(&self) -> Result<DbConn, DbError> {
        let outcome = self.establish();
        match &outcome {
            Ok(_) => self.health.connected(),
            Err(e) => self.health.failed(e),
        }
        outcome
    }

    fn establish(&self) -> Result<DbConn, DbError> {
        match self.backend {
            Backend::Sqlite => {
                let mut conn = SqliteConnection::establish(&self.target).map_err(|e| {
                    DbError::Connect(format!("{}: {}", self.target, one_line(&e.to_string())))
                })?;
                // busy_timeout makes a writer wait for another process's write instead of
                // failing, and comes first: switching a new database to WAL (which lets readers
                // run beside the one writer) needs a lock another process may hold. Each
                // connection keeps 1 MiB of pages (SQLite's default is 2 MiB): with every
                // connection busy over a million-row table the default alone took the server
                // past 64 MB, and the operating system's own cache serves the rest.
                conn.batch_execute(&format!(
                    "PRAGMA busy_timeout = 5000; PRAGMA journal_mode = WAL; \
                     PRAGMA foreign_keys = ON; PRAGMA synchronous = {}; \
                     PRAGMA temp_store = MEMORY; PRAGMA cache_size = -1024;",
                    self.sync.pragma()
                ))
                .map_err(|e| {
                    DbError::Connect(format!("{}: {}", self.target, one_line(&e.to_string())))
                })?;
                Ok(DbConn::Sqlite(conn))
            }
            Backend::Postgres => {
                // libpq speaks TLS through the system's OpenSSL, which by default frees its
                // global state in an exit handler. A pool thread still connecting while the
                // process exits then crashes it (`lectern user add` ended with SIGSEGV after
                // its work was done). This initialises OpenSSL without that handler, once.
                openssl_sys::init();
                let mut conn = PgConnection::establish(&self.target)
                    .map_err(|e| DbError::Connect(one_line(&e.to_string())))?;
                // Timestamps are written by lectern in UTC; keep the session in UTC so that
                // CURRENT_TIMESTAMP agrees with them.
                conn.batch_execute("SET TIME ZONE 'UTC'")
                    .map_err(|e| DbError::Connect(one_line(&e.to_string())))?;
                Ok(DbConn::Postgresql(conn))
            }
        }
    }
}

impl r2d2::ManageConnection for ConnectionManager {
    type Connection = DbConn;
    type Error = DbError;

    fn connect(&self) -> Result<DbConn, DbError> {
        ConnectionManager::connect(self)
    }

    fn is_valid(&self, conn: &mut DbConn) -> Result<(), DbError> {
        conn.batch_execute("SELECT 1").map_err(DbError::from)
    }

    fn has_broken(&self, conn: &mut DbConn) -> bool {
        matches!(
            <DbConn as Connection>::TransactionManager::transaction_manager_status_mut(conn)
                .transaction_depth(),
            Err(_) | Ok(Some(_))
        )
    }
}

pub type Pool = r2d2::Pool<ConnectionManager>;
type PooledConn = r2d2::PooledConnection<ConnectionManager>;

/// How many times a write transaction runs at most when PostgreSQL aborts it for a conflict.
const WRITE_TRIES: u32 = 4;

/// Errors that may say "this transaction lost a race; run it again".
pub trait Retryable {
    fn is_retryable(&self) -> bool;
}

impl Retryable for DbError {
    fn is_retryable(&self) -> bool {
        match self {
            DbError::Query(DieselError::DatabaseError(
                DatabaseErrorKind::SerializationFailure,
                _,
            )) => true,
            // diesel reports 40P01 as Unknown; PostgreSQL's message names it.
            DbError::Query(DieselError::DatabaseError(_, info)) => {
                info.message().contains("deadlock detected")
            }
            _ => false,
        }
    }
}

impl Retryable for anyhow::Error {
    fn is_retryable(&self) -> bool {
        self.downcast_ref::<DbError>()
            .is_some_and(DbError::is_retryable)
    }
}

/// The handle every part of lectern uses to reach the database.
#[derive(Clone)]
pub struct Db {
    pool: Pool,
    backend: Backend,
    waits: Waits,
    health: Arc<Health>,
    /// SQLite has one writer at a time; queueing this process's writers here is fair and cheap,
    /// where many connections spinning in busy_timeout are neither.
    write_gate: Arc<Mutex<()>>,
    /// No more database jobs on blocking threads than there are connections: the rest wait
    /// here, on the async side, instead of each holding a parked thread (and its memory).
    jobs: Arc<tokio::sync::Semaphore>,
    /// Where the server's metrics record how long a connection took to come free.
    waits_seen: Option<prometheus::Histogram>,
    /// Write transactions this process committed: a change made through this server is known
    /// here at once, before any notification about it could arrive (`Freshness`).
    writes: Arc<AtomicU64>,
}

/// Runs a database job on a blocking thread inside the caller's span, so its log lines carry
/// the request's id.
fn spawn_job<T, F>(f: F) -> tokio::task::JoinHandle<T>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let span = tracing::Span::current();
    tokio::task::spawn_blocking(move || span.in_scope(f))
}

impl Db {
    /// Connects once (so a bad URL fails at once with the real message), runs pending
    /// migrations, then builds the pool.
    pub fn open(url: &str, sync: SqliteSync, pool_size: u32) -> Result<Db, DbError> {
        Db::open_with(url, sync, pool_size, Waits::default())
    }

    /// `open`, with the server's waits for a connection.
    pub fn open_with(
        url: &str,
        sync: SqliteSync,
        pool_size: u32,
        waits: Waits,
    ) -> Result<Db, DbError> {
        let manager = ConnectionManager::new(url, sync);
        let backend = manager.backend();
        let health = manager.health.clone();
        // Not `connect`: a database that cannot be opened at start-up is the start-up error
        // itself, not an outage to log.
        let mut first = manager.establish()?;
        run_migrations(&mut first)?;
        drop(first);
        let pool = r2d2::Pool::builder()
            .max_size(pool_size)
            .min_idle(Some(1))
            // r2d2 retries a failed connection after at most half of this: while the database
            // is down, that is how soon its return is noticed.
            .connection_timeout(waits.probe * 2)
            .build(manager)?;
        Ok(Db {
            pool,
            backend,
            waits,
            health,
            write_gate: Arc::new(Mutex::new(())),
            jobs: Arc::new(tokio::sync::Semaphore::new(pool_size as usize)),
            waits_seen: None,
            writes: Arc::default(),
        })
    }

    /// Records every wait for a connection in `histogram` (seconds).
    pub fn record_waits_in(&mut self, histogram: prometheus::Histogram) {
        self.waits_seen = Some(histogram);
    }

    /// Connections of the pool now: (in use, idle).
    pub fn pool_state(&self) -> (u32, u32) {
        let state = self.pool.state();
        (
            state.connections.saturating_sub(state.idle_connections),
            state.idle_connections,
        )
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Whether the last attempt to connect to the database failed.
    pub fn is_down(&self) -> bool {
        self.health.is_down()
    }

    /// A pooled connection. While the database answers, a request waits up to the busy wait
    /// for a free connection (the pool may just be busy). It stops waiting as soon as a
    /// connection attempt fails, and while the last one failed it does not wait at all: a page
    /// then answers 503 at once instead of holding its reader (and a thread) for seconds.
    fn checkout(&self, longest: Duration) -> Result<PooledConn, DbError> {
        let started = Instant::now();
        let conn = self.checkout_within(longest);
        if let Some(histogram) = &self.waits_seen {
            histogram.observe(started.elapsed().as_secs_f64());
        }
        conn
    }

    fn checkout_within(&self, longest: Duration) -> Result<PooledConn, DbError> {
        if self.health.is_down() {
            return Ok(self.pool.get_timeout(Duration::ZERO)?);
        }
        let deadline = Instant::now() + longest;
        loop {
            // In slices, so that a connection attempt failing meanwhile ends the wait.
            let slice = self
                .waits
                .probe
                .min(deadline.saturating_duration_since(Instant::now()));
            match self.pool.get_timeout(slice) {
                Ok(conn) => return Ok(conn),
                Err(e) if self.health.is_down() => return Err(e.into()),
                Err(e) if Instant::now() >= deadline => {
                    tracing::warn!(waited = ?longest, "every database connection stayed busy");
                    return Err(e.into());
                }
                Err(_) => {}
            }
        }
    }

    /// `read` for `/healthz`: waits at most the probe wait, for the job slot and the connection
    /// together, so a load balancer hears 503 quickly during an outage.
    pub async fn probe<T, F>(&self, f: F) -> Result<T, DbError>
    where
        T: Send + 'static,
        F: FnOnce(&mut DbConn) -> Result<T, DbError> + Send + 'static,
    {
        let started = Instant::now();
        let probe = self.waits.probe;
        let permit = tokio::time::timeout(probe, self.job_permit())
            .await
            .map_err(|_| DbError::Task("no database job slot came free in time".into()))??;
        let db = self.clone();
        spawn_job(move || {
            let _permit = permit;
            let mut conn = db.checkout(probe.saturating_sub(started.elapsed()))?;
            f(&mut conn)
        })
        .await
        .map_err(|e| DbError::Task(e.to_string()))?
    }

    async fn job_permit(&self) -> Result<tokio::sync::OwnedSemaphorePermit, DbError> {
        self.jobs
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| DbError::Task(e.to_string()))
    }

    /// Runs `f` on a pooled connection, on a blocking thread.
    pub async fn read<T, F>(&self, f: F) -> Result<T, DbError>
    where
        T: Send + 'static,
        F: FnOnce(&mut DbConn) -> Result<T, DbError> + Send + 'static,
    {
        let db = self.clone();
        let permit = self.job_permit().await?;
        spawn_job(move || {
            let _permit = permit;
            db.read_blocking(f)
        })
        .await
        .map_err(|e| DbError::Task(e.to_string()))?
    }

    /// Runs `f` in one write transaction (SQLite: `BEGIN IMMEDIATE`), on a blocking thread.
    pub async fn write<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
        F: FnOnce(&mut DbConn) -> Result<T, E> + Send + 'static,
    {
        let db = self.clone();
        let permit = self.job_permit().await?;
        spawn_job(move || {
            let _permit = permit;
            db.write_blocking(f)
        })
        .await
        .map_err(|e| E::from(DbError::Task(e.to_string())))?
    }

    /// `write` for transactions that update shared rows (the comment counts) and so may
    /// deadlock with another on PostgreSQL: one that loses is run again (SQLSTATE 40001,
    /// 40P01), a few times.
    pub async fn write_retrying<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<DbError> + Retryable + Send + 'static,
        F: FnMut(&mut DbConn) -> Result<T, E> + Send + 'static,
    {
        let db = self.clone();
        let permit = self.job_permit().await?;
        spawn_job(move || {
            let _permit = permit;
            db.write_blocking_retrying(f)
        })
        .await
        .map_err(|e| E::from(DbError::Task(e.to_string())))?
    }

    pub fn read_blocking<T, F>(&self, f: F) -> Result<T, DbError>
    where
        F: FnOnce(&mut DbConn) -> Result<T, DbError>,
    {
        let mut conn = self.checkout(self.waits.busy)?;
        f(&mut conn)
    }

    pub fn write_blocking<T, E, F>(&self, f: F) -> Result<T, E>
    where
        E: From<DbError>,
        F: FnOnce(&mut DbConn) -> Result<T, E>,
    {
        let mut conn = self.checkout(self.waits.busy)?;
        let _gate = self.write_gate();
        let outcome = immediate_transaction(&mut conn, f);
        if outcome.is_ok() {
            self.writes.fetch_add(1, Ordering::AcqRel);
        }
        outcome
    }

    /// A pooled connection, in turn with this process's other writers but outside any
    /// transaction, for work that sets connection options around its own transaction (SQLite
    /// refuses some pragmas inside one): `f` begins and commits it.
    pub fn with_write_connection<T, E, F>(&self, f: F) -> Result<T, E>
    where
        E: From<DbError>,
        F: FnOnce(&mut DbConn) -> Result<T, E>,
    {
        let mut conn = self.checkout(self.waits.busy)?;
        let _gate = self.write_gate();
        let outcome = f(&mut conn);
        if outcome.is_ok() {
            self.writes.fetch_add(1, Ordering::AcqRel);
        }
        outcome
    }

    /// The count of write transactions this process committed.
    pub fn write_counter(&self) -> Arc<AtomicU64> {
        self.writes.clone()
    }

    /// SQLite takes one writer at a time; this process's writers queue here.
    fn write_gate(&self) -> Option<std::sync::MutexGuard<'_, ()>> {
        // A poisoned gate only means another writer panicked; the database itself rolled back.
        match self.backend {
            Backend::Sqlite => Some(self.write_gate.lock().unwrap_or_else(|p| p.into_inner())),
            Backend::Postgres => None,
        }
    }

    pub fn write_blocking_retrying<T, E, F>(&self, mut f: F) -> Result<T, E>
    where
        E: From<DbError> + Retryable,
        F: FnMut(&mut DbConn) -> Result<T, E>,
    {
        let mut conn = self.checkout(self.waits.busy)?;
        let _gate = self.write_gate();
        let mut tries = 0;
        loop {
            tries += 1;
            match immediate_transaction(&mut conn, &mut f) {
                Err(e) if tries < WRITE_TRIES && e.is_retryable() => {
                    tracing::warn!(tries, "transaction conflict; running it again");
                    std::thread::sleep(Duration::from_millis(5 * tries as u64));
                }
                outcome => {
                    if outcome.is_ok() {
                        self.writes.fetch_add(1, Ordering::AcqRel);
                    }
                    return outcome;
                }
            }
        }
    }
}

/// A transaction that takes SQLite's write lock at BEGIN, so it can never fail half-way with
/// "database is locked" when it first writes; on PostgreSQL an ordinary transaction.
pub fn immediate_transaction<T, E, F>(conn: &mut DbConn, f: F) -> Result<T, E>
where
    E: From<DbError>,
    F: FnOnce(&mut DbConn) -> Result<T, E>,
{
    let begun = match conn {
        DbConn::Sqlite(c) => AnsiTransactionManager::begin_transaction_sql(c, "BEGIN IMMEDIATE"),
        DbConn::Postgresql(c) => AnsiTransactionManager::begin_transaction(c),
    };
    begun.map_err(DbError::from)?;
    // The enum's transaction manager delegates to the inner connection's, so nested
    // `transaction` calls inside `f` become savepoints of this one.
    match f(conn) {
        Ok(value) => {
            <DbConn as Connection>::TransactionManager::commit_transaction(conn)
                .map_err(DbError::from)?;
            Ok(value)
        }
        Err(e) => {
            if let Err(rollback) =
                <DbConn as Connection>::TransactionManager::rollback_transaction(conn)
            {
                tracing::error!(error = %rollback, "rollback failed");
            }
            Err(e)
        }
    }
}

/// Runs the migration set of the connection's backend. Processes starting at once (two
/// servers, or a server and a command) take turns: on SQLite under the database's write lock,
/// on PostgreSQL under an advisory lock. Otherwise both could find a migration pending and the
/// second would fail running it again.
pub fn run_migrations(conn: &mut DbConn) -> Result<(), DbError> {
    let outcome = match conn {
        // Each migration's own transaction becomes a savepoint of this one; one that fails is
        // rolled back alone, as it would be without the outer transaction.
        DbConn::Sqlite(c) => c.immediate_transaction(|c| -> Result<_, DieselError> {
            Ok(c.run_pending_migrations(SQLITE_MIGRATIONS)
                .map(|_| ())
                .map_err(|e| e.to_string()))
        })?,
        DbConn::Postgresql(c) => {
            const LOCK: i64 = 0x6c65_6374_6572; // "lecter"
            diesel::sql_query(format!("SELECT pg_advisory_lock({LOCK})")).execute(c)?;
            let result = c
                .run_pending_migrations(POSTGRES_MIGRATIONS)
                .map(|_| ())
                .map_err(|e| e.to_string());
            diesel::sql_query(format!("SELECT pg_advisory_unlock({LOCK})")).execute(c)?;
            result
        }
    };
    outcome.map_err(|e| DbError::Connect(format!("migrations failed: {}", one_line(&e))))
}

/// Where a database stands against the migrations this binary carries.
#[derive(Debug, Default)]
pub struct MigrationStatus {
    /// Migrations this binary would run, oldest first.
    pub pending: Vec<String>,
    /// Migrations the database has that this binary does not know: a newer lectern ran here.
    pub unknown: Vec<String>,
    /// False for an SQLite file that does not exist yet (nothing was created to find out).
    pub exists: bool,
}

/// Reads which migrations are pending without running any, and without creating an SQLite
/// file that does not exist yet.
pub fn migration_status(url: &str) -> Result<MigrationStatus, DbError> {
    use diesel::migration::MigrationSource;
    if let Some(path) = url.strip_prefix("sqlite://")
        && !std::path::Path::new(path).exists()
    {
        let all = MigrationSource::<diesel::sqlite::Sqlite>::migrations(&SQLITE_MIGRATIONS)
            .map_err(|e| DbError::Task(e.to_string()))?;
        return Ok(MigrationStatus {
            pending: all.iter().map(|m| m.name().to_string()).collect(),
            unknown: Vec::new(),
            exists: false,
        });
    }
    let manager = ConnectionManager::new(url, SqliteSync::Full);
    let conn = manager.establish()?;
    let (pending, applied, known) = match conn {
        DbConn::Sqlite(mut c) => names_of(&mut c, SQLITE_MIGRATIONS),
        DbConn::Postgresql(mut c) => names_of(&mut c, POSTGRES_MIGRATIONS),
    }
    .map_err(|e| {
        DbError::Task(format!(
            "reading the migrations failed: {}",
            one_line(&e.to_string())
        ))
    })?;
    let unknown = applied
        .into_iter()
        .filter(|version| !known.contains(version))
        .collect();
    Ok(MigrationStatus {
        pending,
        unknown,
        exists: true,
    })
}

type MigrationError = Box<dyn std::error::Error + Send + Sync>;
/// Pending migrations (names), applied ones and the ones this binary carries (versions).
type MigrationNames = (Vec<String>, Vec<String>, Vec<String>);

/// What a database has and lacks of the migrations in `source`.
fn names_of<DB, C>(
    conn: &mut C,
    source: EmbeddedMigrations,
) -> Result<MigrationNames, MigrationError>
where
    DB: diesel::backend::Backend,
    C: MigrationHarness<DB>,
    EmbeddedMigrations: diesel::migration::MigrationSource<DB>,
{
    use diesel::migration::MigrationSource;
    let known = MigrationSource::<DB>::migrations(&source)?
        .iter()
        .map(|m| m.name().version().to_string())
        .collect();
    let applied = conn
        .applied_migrations()?
        .iter()
        .map(ToString::to_string)
        .collect();
    let pending = conn
        .pending_migrations(source)?
        .iter()
        .map(|m| m.name().to_string())
        .collect();
    Ok((pending, applied, known))
}

/// Makes transactions that check and then write on behalf of the same keys (an email address,
/// a client network) take turns on PostgreSQL until they commit, so that "is there already
/// one?" and the insert that follows cannot interleave with another server's (or connection's)
/// at READ COMMITTED. SQLite runs one writer at a time anyway.
pub fn take_turns(conn: &mut DbConn, keys: &[&str]) -> Result<(), DbError> {
    use sha2::{Digest, Sha256};
    let DbConn::Postgresql(pg) = conn else {
        return Ok(());
    };
    let mut locks: Vec<i64> = keys
        .iter()
        .map(|key| {
            let digest = Sha256::digest(key.as_bytes());
            let mut bytes = [0u8; 8];
            bytes.copy_from_slice(&digest[..8]);
            i64::from_be_bytes(bytes)
        })
        .collect();
    // Always in the same order, so two transactions never wait for each other in a circle.
    locks.sort_unstable();
    locks.dedup();
    for lock in locks {
        diesel::sql_query("SELECT pg_advisory_xact_lock($1)")
            .bind::<diesel::sql_types::BigInt, _>(lock)
            .execute(pg)?;
    }
    Ok(())
}

/// Makes servers that start at once on one PostgreSQL database take turns with the first-start
/// work (secret, welcome post, setup link) for the rest of the transaction. SQLite writers are
/// serialised anyway.
pub fn startup_lock(conn: &mut DbConn) -> Result<(), DbError> {
    if let DbConn::Postgresql(pg) = conn {
        diesel::sql_query("SELECT pg_advisory_xact_lock(7310010)").execute(pg)?;
    }
    Ok(())
}

/// The current time as stored: UTC, whole microseconds (PostgreSQL's precision).
pub fn now() -> chrono::NaiveDateTime {
    let now = chrono::Utc::now();
    chrono::DateTime::from_timestamp_micros(now.timestamp_micros())
        .unwrap_or(now)
        .naive_utc()
}

/// Stores a status-like enum in a `Text` column (CHECK-constrained in both migration trees):
/// `MultiConnection` cannot carry PostgreSQL enum types. The type needs
/// `#[derive(diesel::AsExpression, diesel::FromSqlRow)] #[diesel(sql_type = Text)]`, and
/// `as_str(self) -> &'static str` and `parse(&str) -> Option<Self>` methods.
macro_rules! text_column_enum {
    // A list of values (`eq_any`) is bound through each real backend's own `ToSql`.
    (@backend $ty:ty, $backend:ty) => {
        impl diesel::serialize::ToSql<diesel::sql_types::Text, $backend> for $ty {
            fn to_sql<'b>(
                &'b self,
                out: &mut diesel::serialize::Output<'b, '_, $backend>,
            ) -> diesel::serialize::Result {
                <str as diesel::serialize::ToSql<diesel::sql_types::Text, $backend>>::to_sql(
                    self.as_str(),
                    out,
                )
            }
        }
    };
    ($ty:ty) => {
        $crate::db::text_column_enum!(@backend $ty, diesel::pg::Pg);
        $crate::db::text_column_enum!(@backend $ty, diesel::sqlite::Sqlite);

        /// As stored: `pending`, `draft`, `admin`, ….
        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl diesel::serialize::ToSql<diesel::sql_types::Text, $crate::db::MultiBackend> for $ty {
            fn to_sql<'b>(
                &'b self,
                out: &mut diesel::serialize::Output<'b, '_, $crate::db::MultiBackend>,
            ) -> diesel::serialize::Result {
                out.set_value((diesel::sql_types::Text, self.as_str()));
                Ok(diesel::serialize::IsNull::No)
            }
        }

        impl diesel::deserialize::FromSql<diesel::sql_types::Text, $crate::db::MultiBackend>
            for $ty
        {
            fn from_sql(
                bytes: <$crate::db::MultiBackend as diesel::backend::Backend>::RawValue<'_>,
            ) -> diesel::deserialize::Result<Self> {
                let text = <String as diesel::deserialize::FromSql<
                    diesel::sql_types::Text,
                    $crate::db::MultiBackend,
                >>::from_sql(bytes)?;
                <$ty>::parse(&text).ok_or_else(|| {
                    format!("{:?} is not a {}", text, stringify!($ty)).into()
                })
            }
        }
    };
}
pub(crate) use text_column_enum;
