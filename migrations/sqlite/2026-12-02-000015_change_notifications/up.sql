-- PostgreSQL's change notifications for kept pages (see the postgres tree's migration of this
-- name). SQLite counts commits itself (PRAGMA data_version): nothing to add.
SELECT 1;
