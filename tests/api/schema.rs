//! The two migration trees build the same schema: tables, columns, types, nullability,
//! defaults, indexes, unique and foreign keys, read from each database's own catalogue.

use std::collections::BTreeSet;

use diesel::prelude::*;
use diesel::sql_types::{Integer, Nullable, Text};

use crate::common::{TestDb, postgres_server};

#[derive(QueryableByName)]
struct Name {
    #[diesel(sql_type = Text)]
    name: String,
}

#[derive(QueryableByName)]
struct SqliteColumn {
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Text)]
    #[diesel(column_name = "type")]
    ty: String,
    #[diesel(sql_type = Integer)]
    notnull: i32,
    #[diesel(sql_type = Nullable<Text>)]
    dflt_value: Option<String>,
    #[diesel(sql_type = Integer)]
    pk: i32,
}

#[derive(QueryableByName)]
struct SqliteIndex {
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Integer)]
    unique: i32,
}

#[derive(QueryableByName)]
struct SqliteForeignKey {
    #[diesel(sql_type = Text)]
    table: String,
    #[diesel(sql_type = Text)]
    from: String,
    #[diesel(sql_type = Text)]
    on_delete: String,
}

#[derive(QueryableByName)]
struct PgColumn {
    #[diesel(sql_type = Text)]
    table_name: String,
    #[diesel(sql_type = Text)]
    column_name: String,
    #[diesel(sql_type = Text)]
    data_type: String,
    #[diesel(sql_type = Text)]
    is_nullable: String,
    #[diesel(sql_type = Nullable<Text>)]
    column_default: Option<String>,
}

#[derive(QueryableByName)]
struct PgIndex {
    #[diesel(sql_type = Text)]
    table_name: String,
    #[diesel(sql_type = Text)]
    index_name: String,
    #[diesel(sql_type = Text)]
    columns: String,
    #[diesel(sql_type = diesel::sql_types::Bool)]
    is_unique: bool,
    #[diesel(sql_type = diesel::sql_types::Bool)]
    is_primary: bool,
}

#[derive(QueryableByName)]
struct PgForeignKey {
    #[diesel(sql_type = Text)]
    table_name: String,
    #[diesel(sql_type = Text)]
    column_name: String,
    #[diesel(sql_type = Text)]
    foreign_table: String,
    #[diesel(sql_type = Text)]
    delete_rule: String,
}

fn normal_type(ty: &str) -> String {
    match ty.to_ascii_lowercase().as_str() {
        "integer" | "int4" => "integer",
        "text" => "text",
        "boolean" | "bool" => "boolean",
        "timestamp" | "timestamp without time zone" => "timestamp",
        "blob" | "bytea" => "binary",
        other => return other.to_string(),
    }
    .to_string()
}

fn normal_default(value: Option<String>) -> String {
    let Some(v) = value else { return "-".into() };
    let v = v
        .split("::")
        .next()
        .unwrap_or(&v)
        .trim()
        .to_ascii_lowercase();
    match v.as_str() {
        "0" | "false" => "false/0".into(),
        "1" | "true" => "true/1".into(),
        _ => v,
    }
}

/// (table.column, type, not null, default) rows, primary keys, indexes and foreign keys.
type Schema = (BTreeSet<String>, BTreeSet<String>, BTreeSet<String>);

fn sqlite_schema(url: &str) -> Schema {
    let mut conn =
        diesel::sqlite::SqliteConnection::establish(url.trim_start_matches("sqlite://")).unwrap();
    let tables: Vec<Name> = diesel::sql_query(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name != '__diesel_schema_migrations' AND name NOT LIKE 'post_search_fts%' AND name != 'lectern_public_changes'",
    )
    .load(&mut conn)
    .unwrap();
    let (mut columns, mut indexes, mut keys) = Schema::default();
    for Name { name: table } in tables {
        let cols: Vec<SqliteColumn> = diesel::sql_query(format!("PRAGMA table_info('{table}')"))
            .load(&mut conn)
            .unwrap();
        for c in cols {
            // SQLite's INTEGER PRIMARY KEY is its identity column; NOT NULL is implied.
            let not_null = c.notnull == 1 || c.pk > 0;
            let default = if c.pk > 0 {
                "-".into()
            } else {
                normal_default(c.dflt_value)
            };
            columns.insert(format!(
                "{table}.{} {} notnull={not_null} default={default}",
                c.name,
                normal_type(&c.ty)
            ));
        }
        let list: Vec<SqliteIndex> = diesel::sql_query(format!("PRAGMA index_list('{table}')"))
            .load(&mut conn)
            .unwrap();
        for index in list {
            let cols: Vec<Name> = diesel::sql_query(format!(
                "SELECT coalesce(name, '(expression)') AS name FROM pragma_index_info('{}') ORDER BY seqno",
                index.name
            ))
            .load(&mut conn)
            .unwrap();
            let cols = cols
                .into_iter()
                .map(|c| c.name)
                .collect::<Vec<_>>()
                .join(",");
            let label = if index.name.starts_with("sqlite_autoindex") {
                "(constraint)".to_string()
            } else {
                index.name
            };
            indexes.insert(format!(
                "{table} {label} ({cols}) unique={}",
                index.unique == 1
            ));
        }
        let pk: Vec<Name> = diesel::sql_query(format!(
            "SELECT name FROM pragma_table_info('{table}') WHERE pk > 0 ORDER BY pk"
        ))
        .load(&mut conn)
        .unwrap();
        if pk.len() == 1
            && columns
                .iter()
                .any(|c| c.starts_with(&format!("{table}.{} integer", pk[0].name)))
        {
            // A one-column INTEGER primary key has no separate index in SQLite.
            indexes.insert(format!("{table} (constraint) ({}) unique=true", pk[0].name));
        }
        let fks: Vec<SqliteForeignKey> =
            diesel::sql_query(format!("PRAGMA foreign_key_list('{table}')"))
                .load(&mut conn)
                .unwrap();
        for fk in fks {
            keys.insert(format!(
                "{table}.{} -> {} on delete {}",
                fk.from,
                fk.table,
                fk.on_delete.to_ascii_lowercase()
            ));
        }
    }
    (columns, indexes, keys)
}

fn postgres_schema(url: &str) -> Schema {
    let mut conn = diesel::pg::PgConnection::establish(url).unwrap();
    let (mut columns, mut indexes, mut keys) = Schema::default();
    let cols: Vec<PgColumn> = diesel::sql_query(
        "SELECT table_name::text, column_name::text, data_type::text, is_nullable::text, column_default::text
         FROM information_schema.columns
         WHERE table_schema = 'public' AND table_name != '__diesel_schema_migrations'",
    )
    .load(&mut conn)
    .unwrap();
    for c in cols {
        columns.insert(format!(
            "{}.{} {} notnull={} default={}",
            c.table_name,
            c.column_name,
            normal_type(&c.data_type),
            c.is_nullable == "NO",
            normal_default(c.column_default)
        ));
    }
    let list: Vec<PgIndex> = diesel::sql_query(
        "SELECT t.relname::text AS table_name, i.relname::text AS index_name,
                array_to_string(ARRAY(SELECT coalesce(a.attname::text, '(expression)') FROM unnest(x.indkey) WITH ORDINALITY k(n, o)
                    LEFT JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.n ORDER BY k.o), ',') AS columns,
                x.indisunique AS is_unique, x.indisprimary AS is_primary
         FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid
         JOIN pg_namespace n ON n.oid = t.relnamespace
         WHERE n.nspname = 'public' AND t.relname != '__diesel_schema_migrations'",
    )
    .load(&mut conn)
    .unwrap();
    for index in list {
        let constraint = index.is_primary || index.index_name.ends_with("_key");
        let label = if constraint {
            "(constraint)".to_string()
        } else {
            index.index_name
        };
        indexes.insert(format!(
            "{} {label} ({}) unique={}",
            index.table_name, index.columns, index.is_unique
        ));
    }
    let fks: Vec<PgForeignKey> = diesel::sql_query(
        "SELECT tc.table_name::text, kcu.column_name::text, ccu.table_name::text AS foreign_table, rc.delete_rule::text
         FROM information_schema.table_constraints tc
         JOIN information_schema.key_column_usage kcu ON tc.constraint_name = kcu.constraint_name
         JOIN information_schema.constraint_column_usage ccu ON tc.constraint_name = ccu.constraint_name
         JOIN information_schema.referential_constraints rc ON tc.constraint_name = rc.constraint_name
         WHERE tc.constraint_type = 'FOREIGN KEY' AND tc.table_schema = 'public'",
    )
    .load(&mut conn)
    .unwrap();
    for fk in fks {
        let rule = match fk.delete_rule.as_str() {
            "NO ACTION" => "no action".to_string(),
            other => other.to_ascii_lowercase(),
        };
        keys.insert(format!(
            "{}.{} -> {} on delete {rule}",
            fk.table_name, fk.column_name, fk.foreign_table
        ));
    }
    (columns, indexes, keys)
}

/// "table trigger" for each trigger: the thread version (migration 000006) depends on both
/// trees having the same ones. Leaves out SQLite's counter of public changes (migration
/// 000018), which stands for PostgreSQL's notifications.
fn sqlite_triggers(url: &str) -> BTreeSet<String> {
    let mut conn =
        diesel::sqlite::SqliteConnection::establish(url.trim_start_matches("sqlite://")).unwrap();
    let rows: Vec<Name> = diesel::sql_query(
        "SELECT tbl_name || ' ' || name AS name FROM sqlite_master WHERE type = 'trigger' AND name NOT LIKE 'post_search_fts%' AND name NOT LIKE 'lectern_notify_%'",
    )
    .load(&mut conn)
    .unwrap();
    rows.into_iter().map(|r| r.name).collect()
}

/// Leaves out PostgreSQL's change notifications (migration 000015), which SQLite has no need of.
fn postgres_triggers(url: &str) -> BTreeSet<String> {
    let mut conn = diesel::pg::PgConnection::establish(url).unwrap();
    let rows: Vec<Name> = diesel::sql_query(
        "SELECT (c.relname || ' ' || t.tgname)::text AS name
         FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid WHERE NOT t.tgisinternal
         AND t.tgname NOT LIKE 'lectern_notify_%'",
    )
    .load(&mut conn)
    .unwrap();
    rows.into_iter().map(|r| r.name).collect()
}

/// The search index's own objects in SQLite: the FTS5 table and its triggers.
fn sqlite_fts_objects(url: &str) -> usize {
    let mut conn =
        diesel::sqlite::SqliteConnection::establish(url.trim_start_matches("sqlite://")).unwrap();
    let rows: Vec<Name> = diesel::sql_query(
        "SELECT name FROM sqlite_master WHERE name IN ('post_search_fts', 'post_search_fts_insert', 'post_search_fts_delete', 'post_search_fts_update')",
    )
    .load(&mut conn)
    .unwrap();
    rows.len()
}

#[test]
fn both_migration_trees_build_the_same_schema() {
    // Runs in the PostgreSQL pass (`.ci/run` sets the URL); there a missing server fails.
    let Some(_) = postgres_server() else {
        eprintln!("SKIPPED schema parity: LECTERN_TEST_DATABASE_URL is not set");
        return;
    };
    // A SQLite file next to the PostgreSQL database the harness makes.
    let pg = TestDb::new();
    let sqlite_url = format!("sqlite://{}", pg.dir.path().join("parity.db").display());
    let manager =
        lectern::db::ConnectionManager::new(&sqlite_url, lectern::config::SqliteSync::Normal);
    lectern::db::run_migrations(&mut manager.connect().unwrap()).unwrap();

    let (sqlite_columns, sqlite_indexes, sqlite_keys) = sqlite_schema(&sqlite_url);
    let (mut pg_columns, mut pg_indexes, pg_keys) = postgres_schema(&pg.url);
    // The full-text index is each backend's own (migration 000012): FTS5 tables kept by
    // triggers in SQLite, a generated tsvector column with a GIN index in PostgreSQL. Both
    // must exist; the rest of the schema must agree.
    let gin = "post_search post_search_fts (document) unique=false".to_string();
    assert!(
        pg_indexes.remove(&gin),
        "the GIN search index exists: {pg_indexes:?}"
    );
    let document = pg_columns
        .iter()
        .find(|c| c.starts_with("post_search.document tsvector"))
        .cloned()
        .expect("the generated tsvector column exists");
    pg_columns.remove(&document);
    assert!(
        sqlite_fts_objects(&sqlite_url) >= 4,
        "the FTS5 table and its three triggers exist"
    );
    assert!(sqlite_columns.len() > 50, "the catalogue was read");
    let diff = |a: &BTreeSet<String>, b: &BTreeSet<String>| -> Vec<String> {
        a.symmetric_difference(b)
            .map(|x| {
                format!(
                    "{} {x}",
                    if a.contains(x) {
                        "sqlite only:"
                    } else {
                        "postgres only:"
                    }
                )
            })
            .collect()
    };
    assert_eq!(
        diff(&sqlite_columns, &pg_columns),
        Vec::<String>::new(),
        "columns"
    );
    assert_eq!(
        diff(&sqlite_indexes, &pg_indexes),
        Vec::<String>::new(),
        "indexes"
    );
    assert_eq!(
        diff(&sqlite_keys, &pg_keys),
        Vec::<String>::new(),
        "foreign keys"
    );
    let sqlite_triggers = sqlite_triggers(&sqlite_url);
    assert_eq!(sqlite_triggers.len(), 6, "{sqlite_triggers:?}");
    assert_eq!(
        diff(&sqlite_triggers, &postgres_triggers(&pg.url)),
        Vec::<String>::new(),
        "triggers"
    );
}
