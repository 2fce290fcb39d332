-- Kept pages (src/http/page_cache.rs) are served without the database for as long as nothing
-- they show has changed. Every table whose rows show on public pages notifies the channel
-- lectern_changed when a statement changes it; the notification is delivered at commit, to
-- every server's listening connection (src/db/freshness.rs). SQLite needs no such thing: it
-- counts commits itself (PRAGMA data_version). These triggers are PostgreSQL's alone, named
-- lectern_notify_* (the schema parity test leaves them out).
CREATE FUNCTION lectern_notify_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('lectern_changed', TG_TABLE_NAME);
    RETURN NULL;
END
$$;

CREATE TRIGGER lectern_notify_posts AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON posts
    FOR EACH STATEMENT EXECUTE FUNCTION lectern_notify_change();
CREATE TRIGGER lectern_notify_comments AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON comments
    FOR EACH STATEMENT EXECUTE FUNCTION lectern_notify_change();
CREATE TRIGGER lectern_notify_tags AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON tags
    FOR EACH STATEMENT EXECUTE FUNCTION lectern_notify_change();
CREATE TRIGGER lectern_notify_post_tags AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON post_tags
    FOR EACH STATEMENT EXECUTE FUNCTION lectern_notify_change();
CREATE TRIGGER lectern_notify_users AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON users
    FOR EACH STATEMENT EXECUTE FUNCTION lectern_notify_change();
CREATE TRIGGER lectern_notify_settings AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON settings
    FOR EACH STATEMENT EXECUTE FUNCTION lectern_notify_change();
CREATE TRIGGER lectern_notify_post_slugs AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON post_slugs
    FOR EACH STATEMENT EXECUTE FUNCTION lectern_notify_change();
