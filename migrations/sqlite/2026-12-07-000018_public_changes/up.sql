-- Kept pages (src/http/page_cache.rs) stay valid for as long as nothing they show has changed.
-- SQLite's own commit counter (PRAGMA data_version) moves on every commit, including the many
-- that change nothing a reader sees (the mail worker's outbox, sessions, login throttling), and
-- each one made every kept page be made again. This counter moves only when a table whose rows
-- show on public pages changes, in the same transaction, whoever wrote (the web, the command
-- line, plain SQL): `db::Freshness` reads it when data_version has moved, and only a move of
-- this number ages the kept pages. The tables are those PostgreSQL's lectern_notify_* triggers
-- watch (migration 000015), with one difference: a comment a reader can see never changes
-- without its post's thread_version moving (migration 000006), so the trigger on posts stands
-- for comments too, and a held comment arriving ages nothing.
CREATE TABLE lectern_public_changes (
    id INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
    total BIGINT NOT NULL
);
INSERT INTO lectern_public_changes (id, total) VALUES (1, 0);

CREATE TRIGGER lectern_notify_posts_insert AFTER INSERT ON posts
BEGIN UPDATE lectern_public_changes SET total = total + 1 WHERE id = 1; END;
CREATE TRIGGER lectern_notify_posts_update AFTER UPDATE ON posts
BEGIN UPDATE lectern_public_changes SET total = total + 1 WHERE id = 1; END;
CREATE TRIGGER lectern_notify_posts_delete AFTER DELETE ON posts
BEGIN UPDATE lectern_public_changes SET total = total + 1 WHERE id = 1; END;

CREATE TRIGGER lectern_notify_tags_insert AFTER INSERT ON tags
BEGIN UPDATE lectern_public_changes SET total = total + 1 WHERE id = 1; END;
CREATE TRIGGER lectern_notify_tags_update AFTER UPDATE ON tags
BEGIN UPDATE lectern_public_changes SET total = total + 1 WHERE id = 1; END;
CREATE TRIGGER lectern_notify_tags_delete AFTER DELETE ON tags
BEGIN UPDATE lectern_public_changes SET total = total + 1 WHERE id = 1; END;

CREATE TRIGGER lectern_notify_post_tags_insert AFTER INSERT ON post_tags
BEGIN UPDATE lectern_public_changes SET total = total + 1 WHERE id = 1; END;
CREATE TRIGGER lectern_notify_post_tags_update AFTER UPDATE ON post_tags
BEGIN UPDATE lectern_public_changes SET total = total + 1 WHERE id = 1; END;
CREATE TRIGGER lectern_notify_post_tags_delete AFTER DELETE ON post_tags
BEGIN UPDATE lectern_public_changes SET total = total + 1 WHERE id = 1; END;

CREATE TRIGGER lectern_notify_users_insert AFTER INSERT ON users
BEGIN UPDATE lectern_public_changes SET total = total + 1 WHERE id = 1; END;
CREATE TRIGGER lectern_notify_users_update AFTER UPDATE ON users
BEGIN UPDATE lectern_public_changes SET total = total + 1 WHERE id = 1; END;
CREATE TRIGGER lectern_notify_users_delete AFTER DELETE ON users
BEGIN UPDATE lectern_public_changes SET total = total + 1 WHERE id = 1; END;

CREATE TRIGGER lectern_notify_settings_insert AFTER INSERT ON settings
BEGIN UPDATE lectern_public_changes SET total = total + 1 WHERE id = 1; END;
CREATE TRIGGER lectern_notify_settings_update AFTER UPDATE ON settings
BEGIN UPDATE lectern_public_changes SET total = total + 1 WHERE id = 1; END;
CREATE TRIGGER lectern_notify_settings_delete AFTER DELETE ON settings
BEGIN UPDATE lectern_public_changes SET total = total + 1 WHERE id = 1; END;

CREATE TRIGGER lectern_notify_post_slugs_insert AFTER INSERT ON post_slugs
BEGIN UPDATE lectern_public_changes SET total = total + 1 WHERE id = 1; END;
CREATE TRIGGER lectern_notify_post_slugs_update AFTER UPDATE ON post_slugs
BEGIN UPDATE lectern_public_changes SET total = total + 1 WHERE id = 1; END;
CREATE TRIGGER lectern_notify_post_slugs_delete AFTER DELETE ON post_slugs
BEGIN UPDATE lectern_public_changes SET total = total + 1 WHERE id = 1; END;
