//! Bulk writing for imports, where a million comments would otherwise spend most of their time
//! in the comments table's per-row work.
//!
//! - **Per-row triggers, once per batch.** Each inserted comment fires two triggers (the post's
//!   thread version, migration 000006; the dashboard's sums, 000014): on PostgreSQL four
//!   statements of PL/pgSQL a row, updating the same few rows over and over in one transaction.
//!   A batch switches those two triggers off inside its own transaction (SQLite: dropped and
//!   created again from their own text; PostgreSQL: `DISABLE TRIGGER`, which also keeps other
//!   writers of comments waiting until the batch commits, but not readers) and does their work
//!   once, set-wise, for the batch's rows. Another transaction never sees them off: a batch that
//!   fails or is killed rolls back with them.
//! - **Secondary indexes after the rows.** On a site with no comments yet, the comments table's
//!   non-unique indexes are set aside for the run and built once at its end (sorting a million
//!   keys once instead of inserting each at a random place, which on SQLite rewrote the same
//!   index pages at every commit). Their definitions wait in the `settings` row
//!   `import_deferred_indexes` until they are built again: a run stopped half-way leaves that
//!   row, the site works (more slowly on comments), and the next import (running it again
//!   completes it) builds them.

use diesel::prelude::*;
use diesel::sql_types::{Array, Integer, Text};

use super::ImportError;
use crate::db::DbConn;

/// The per-row triggers of an insert into comments that a batch does set-wise instead.
const INSERT_TRIGGERS: [&str; 2] = ["comments_thread_insert", "comments_stats_insert"];

/// The `settings` row that holds the definitions of indexes set aside by an unfinished run.
const DEFERRED_INDEXES: &str = "import_deferred_indexes";

#[derive(QueryableByName)]
struct Definition {
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Text)]
    sql: String,
}

#[derive(QueryableByName)]
struct Flag {
    #[diesel(sql_type = diesel::sql_types::Bool)]
    yes: bool,
}

/// Whether this connection may switch the comments table's triggers and indexes: always on
/// SQLite; on PostgreSQL when its role owns the table (as the role that ran the migrations does).
pub fn may_alter(conn: &mut DbConn) -> Result<bool, ImportError> {
    match conn {
        DbConn::Sqlite(_) => Ok(true),
        DbConn::Postgresql(c) => {
            let flag: Flag = diesel::sql_query(
                "SELECT pg_has_role(current_user, relowner, 'USAGE') AS yes \
                 FROM pg_class WHERE oid = 'comments'::regclass",
            )
            .get_result(c)?;
            Ok(flag.yes)
        }
    }
}

/// A name as SQL text may use it unquoted: lectern's own names only.
fn plain_name(name: &str) -> Result<&str, ImportError> {
    if !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        Ok(name)
    } else {
        Err(ImportError::Unreadable(format!(
            "unexpected index or trigger name {name:?}"
        )))
    }
}

/// Index definitions, as they wait in `settings`.
pub type Indexes = Vec<(String, String)>;

/// The indexes an unfinished run set aside, from their note in `settings`.
fn set_aside(conn: &mut DbConn) -> Result<Option<Indexes>, ImportError> {
    let Some(saved) = crate::site::get(conn, DEFERRED_INDEXES)? else {
        return Ok(None);
    };
    serde_json::from_str(&saved).map(Some).map_err(|e| {
        ImportError::Unreadable(format!("the setting {DEFERRED_INDEXES} is unreadable: {e}"))
    })
}

/// Sets the comments table's non-unique indexes aside when it has no rows (their definitions
/// remembered first), or finds the ones an unfinished run set aside. Run inside a write
/// transaction; returns what the run has to build at its end.
pub fn defer_indexes(conn: &mut DbConn) -> Result<Indexes, ImportError> {
    use crate::db::schema::comments;
    if let Some(indexes) = set_aside(conn)? {
        return Ok(indexes);
    }
    let any: Option<i32> = comments::table
        .select(comments::id)
        .first(conn)
        .optional()?;
    if any.is_some() {
        return Ok(Vec::new());
    }
    let found: Vec<Definition> = match conn {
        DbConn::Sqlite(c) => diesel::sql_query(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'comments' \
             AND sql IS NOT NULL AND sql NOT LIKE 'CREATE UNIQUE%' ORDER BY name",
        )
        .load(c)?,
        DbConn::Postgresql(c) => diesel::sql_query(
            "SELECT i.relname::text AS name, pg_get_indexdef(i.oid) AS sql \
             FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid \
             WHERE x.indrelid = 'comments'::regclass AND NOT x.indisunique \
             AND NOT x.indisprimary ORDER BY 1",
        )
        .load(c)?,
    };
    let indexes: Indexes = found.into_iter().map(|d| (d.name, d.sql)).collect();
    if indexes.is_empty() {
        return Ok(indexes);
    }
    let saved = serde_json::to_string(&indexes)
        .map_err(|e| ImportError::Unreadable(format!("index definitions: {e}")))?;
    crate::site::put(conn, DEFERRED_INDEXES, &saved)?;
    for (name, _) in &indexes {
        diesel::sql_query(format!("DROP INDEX IF EXISTS {}", plain_name(name)?)).execute(conn)?;
    }
    Ok(indexes)
}

/// Builds the indexes set aside again (any that exist are left alone) and forgets their note.
/// Run inside a write transaction.
pub fn build_indexes(conn: &mut DbConn, indexes: &Indexes) -> Result<(), ImportError> {
    for (name, sql) in indexes {
        plain_name(name)?;
        let Some(rest) = sql.strip_prefix("CREATE INDEX ") else {
            return Err(ImportError::Unreadable(format!(
                "unexpected index definition {sql:?}"
            )));
        };
        diesel::sql_query(format!("CREATE INDEX IF NOT EXISTS {rest}")).execute(conn)?;
    }
    crate::site::delete(conn, DEFERRED_INDEXES)?;
    Ok(())
}

/// Builds the indexes an import stopped half-way (killed, or the machine went down) left set
/// aside, so that a server starting heals the site without waiting for the import to be run
/// again. Returns how many were set aside; 0 when none were, or when this connection's role
/// may not alter the table. Run inside a write transaction.
pub fn build_left_aside(conn: &mut DbConn) -> Result<usize, ImportError> {
    let Some(indexes) = set_aside(conn)? else {
        return Ok(0);
    };
    if !may_alter(conn)? {
        return Ok(0);
    }
    build_indexes(conn, &indexes)?;
    Ok(indexes.len())
}

/// Triggers switched off for one batch; [`Triggers::restore`] switches them on again in the
/// same transaction.
pub struct Triggers {
    /// SQLite: the text of each trigger dropped, to create it again.
    dropped: Vec<String>,
}

/// Switches the comments' insert triggers off for this transaction, when both are there (a
/// schema that changed them keeps firing them per row). Run first in a write transaction.
pub fn triggers_off(conn: &mut DbConn) -> Result<Option<Triggers>, ImportError> {
    match conn {
        DbConn::Sqlite(c) => {
            let found: Vec<Definition> = diesel::sql_query(
                "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' \
                 AND tbl_name = 'comments' AND name IN (?, ?) ORDER BY name",
            )
            .bind::<Text, _>(INSERT_TRIGGERS[0])
            .bind::<Text, _>(INSERT_TRIGGERS[1])
            .load(c)?;
            if found.len() != INSERT_TRIGGERS.len() {
                return Ok(None);
            }
            for trigger in &found {
                diesel::sql_query(format!("DROP TRIGGER {}", plain_name(&trigger.name)?))
                    .execute(c)?;
            }
            Ok(Some(Triggers {
                dropped: found.into_iter().map(|t| t.sql).collect(),
            }))
        }
        DbConn::Postgresql(c) => {
            #[derive(QueryableByName)]
            struct Count {
                #[diesel(sql_type = diesel::sql_types::BigInt)]
                n: i64,
            }
            let count: Count = diesel::sql_query(
                "SELECT count(*) AS n FROM pg_trigger \
                 WHERE tgrelid = 'comments'::regclass AND tgname = ANY($1) AND tgenabled = 'O'",
            )
            .bind::<Array<Text>, _>(INSERT_TRIGGERS.to_vec())
            .get_result(c)?;
            if count.n != INSERT_TRIGGERS.len() as i64 {
                return Ok(None);
            }
            diesel::sql_query(format!(
                "ALTER TABLE comments DISABLE TRIGGER {}, DISABLE TRIGGER {}",
                INSERT_TRIGGERS[0], INSERT_TRIGGERS[1]
            ))
            .execute(c)?;
            Ok(Some(Triggers {
                dropped: Vec::new(),
            }))
        }
    }
}

impl Triggers {
    /// Does the triggers' work for the comments with `ids` (inserted by this transaction), then
    /// switches the triggers on again.
    pub fn restore(self, conn: &mut DbConn, ids: &[i32]) -> Result<(), ImportError> {
        if !ids.is_empty() {
            triggers_work(conn, ids)?;
        }
        match conn {
            DbConn::Sqlite(c) => {
                for sql in &self.dropped {
                    diesel::sql_query(sql.as_str()).execute(c)?;
                }
            }
            DbConn::Postgresql(c) => {
                diesel::sql_query(format!(
                    "ALTER TABLE comments ENABLE TRIGGER {}, ENABLE TRIGGER {}",
                    INSERT_TRIGGERS[0], INSERT_TRIGGERS[1]
                ))
                .execute(c)?;
            }
        }
        Ok(())
    }
}

/// What `comments_thread_insert` and `comments_stats_insert` do for each new row, done once for
/// the rows `ids`: each post with a new approved comment gets a new thread version, and the
/// dashboard's sums grow by the rows (the same expressions as the triggers).
fn triggers_work(conn: &mut DbConn, ids: &[i32]) -> Result<(), ImportError> {
    match conn {
        DbConn::Sqlite(c) => {
            // A batch's ids on SQLite are consecutive (given out under its write lock).
            let (Some(first), Some(last)) = (ids.iter().min(), ids.iter().max()) else {
                return Ok(());
            };
            let rows = "FROM comments WHERE id BETWEEN ? AND ?";
            for sql in [
                format!(
                    "UPDATE posts SET thread_version = thread_version + 1 WHERE id IN \
                     (SELECT post_id {rows} AND status = 'approved')"
                ),
                format!(
                    "INSERT INTO comment_hours (hour, status, total) \
                     SELECT strftime('%Y-%m-%d %H:00:00', created_at), status, COUNT(*) \
                     {rows} GROUP BY 1, 2 \
                     ON CONFLICT (hour, status) DO UPDATE SET total = total + excluded.total"
                ),
                format!(
                    "INSERT INTO held_reason_days (day, reason, total) \
                     SELECT strftime('%Y-%m-%d 00:00:00', created_at), \
                        CASE WHEN held_reason LIKE 'moderation keyword:%' THEN 'moderation keyword' \
                             WHEN held_reason LIKE 'disallowed keyword:%' THEN 'disallowed keyword' \
                             WHEN held_reason LIKE '% link% (%' THEN 'links' \
                             ELSE held_reason END, \
                        COUNT(*) \
                     {rows} AND held_reason IS NOT NULL AND held_reason != '' GROUP BY 1, 2 \
                     ON CONFLICT (day, reason) DO UPDATE SET total = total + excluded.total"
                ),
                format!(
                    "INSERT INTO post_comment_months (month, post_id, total) \
                     SELECT strftime('%Y-%m-01 00:00:00', created_at), post_id, COUNT(*) \
                     {rows} AND status = 'approved' GROUP BY 1, 2 \
                     ON CONFLICT (month, post_id) DO UPDATE SET total = total + excluded.total"
                ),
            ] {
                diesel::sql_query(sql)
                    .bind::<Integer, _>(*first)
                    .bind::<Integer, _>(*last)
                    .execute(c)?;
            }
        }
        DbConn::Postgresql(c) => {
            let rows = "FROM comments WHERE id = ANY($1)";
            for sql in [
                format!(
                    "UPDATE posts SET thread_version = thread_version + 1 WHERE id IN \
                     (SELECT post_id {rows} AND status = 'approved')"
                ),
                format!(
                    "INSERT INTO comment_hours (hour, status, total) \
                     SELECT date_trunc('hour', created_at), status, COUNT(*) {rows} GROUP BY 1, 2 \
                     ON CONFLICT (hour, status) \
                     DO UPDATE SET total = comment_hours.total + EXCLUDED.total"
                ),
                format!(
                    "INSERT INTO held_reason_days (day, reason, total) \
                     SELECT date_trunc('day', created_at), held_reason_key(held_reason), COUNT(*) \
                     {rows} AND held_reason IS NOT NULL AND held_reason != '' GROUP BY 1, 2 \
                     ON CONFLICT (day, reason) \
                     DO UPDATE SET total = held_reason_days.total + EXCLUDED.total"
                ),
                format!(
                    "INSERT INTO post_comment_months (month, post_id, total) \
                     SELECT date_trunc('month', created_at), post_id, COUNT(*) \
                     {rows} AND status = 'approved' GROUP BY 1, 2 \
                     ON CONFLICT (month, post_id) \
                     DO UPDATE SET total = post_comment_months.total + EXCLUDED.total"
                ),
            ] {
                diesel::sql_query(sql)
                    .bind::<Array<Integer>, _>(ids)
                    .execute(c)?;
            }
        }
    }
    Ok(())
}
