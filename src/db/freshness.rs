//! Whether the database may have changed since a page was kept, known without asking it for
//! the page's data.
//!
//! On SQLite one file holds everything, and SQLite itself counts commits: `PRAGMA
//! data_version` on a connection of our own changes whenever any other connection, in this
//! process (the pool) or another (the command line, the `sqlite3` shell), has committed. Reading
//! it touches no page of the database (it is read from the WAL index in shared memory), so a
//! page view can afford it.
//!
//! On PostgreSQL there is no such cheap local signal yet: `generation` says "unknown" and every
//! kept page is checked against the database by rendering it again (its compressed forms are
//! still reused when nothing changed).

use std::sync::Mutex;

use diesel::prelude::*;
use diesel::sql_types::BigInt;
use diesel::sqlite::SqliteConnection;

use super::{DbError, one_line};

#[derive(QueryableByName)]
struct DataVersion {
    #[diesel(sql_type = BigInt)]
    data_version: i64,
}

struct Watch {
    conn: SqliteConnection,
    last: i64,
    generation: u64,
}

/// A number that moves whenever the database may have changed.
pub struct Freshness {
    watch: Option<Mutex<Watch>>,
}

impl Freshness {
    /// Watches the SQLite database at `path`.
    pub fn sqlite(path: &str) -> Result<Freshness, DbError> {
        let mut conn = SqliteConnection::establish(path)
            .map_err(|e| DbError::Connect(format!("{path}: {}", one_line(&e.to_string()))))?;
        let last = read_version(&mut conn)?;
        Ok(Freshness {
            watch: Some(Mutex::new(Watch {
                conn,
                last,
                generation: 0,
            })),
        })
    }

    /// Nothing to watch: every kept page is checked against the database.
    pub fn unknown() -> Freshness {
        Freshness { watch: None }
    }

    /// The current generation: equal to an earlier one only if nothing was committed between
    /// the two calls. `None` when it cannot be known.
    pub fn generation(&self) -> Option<u64> {
        let watch = self.watch.as_ref()?;
        let mut watch = watch.lock().unwrap_or_else(|p| p.into_inner());
        let version = read_version(&mut watch.conn).ok()?;
        if version != watch.last {
            watch.last = version;
            watch.generation += 1;
        }
        Some(watch.generation)
    }
}

fn read_version(conn: &mut SqliteConnection) -> Result<i64, DbError> {
    let row: DataVersion = diesel::sql_query("PRAGMA data_version").get_result(conn)?;
    Ok(row.data_version)
}
