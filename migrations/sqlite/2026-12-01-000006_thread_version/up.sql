-- A post's thread version changes, in the same transaction, whenever anything a reader sees of
-- its comments may have changed. A server keeps a post's rendered comments keyed by this number,
-- so every server on a shared database knows at once when its copy is stale, whichever path
-- (web, email link, command line, retention, plain SQL) made the change.
-- Paired with migrations/postgres/2026-12-01-000006_thread_version.

ALTER TABLE posts ADD COLUMN thread_version BIGINT NOT NULL DEFAULT 0;

-- A new comment shows only when it is approved.
CREATE TRIGGER comments_thread_insert AFTER INSERT ON comments
WHEN NEW.status = 'approved'
BEGIN
    UPDATE posts SET thread_version = thread_version + 1 WHERE id = NEW.post_id;
END;

-- Any change to what the thread prints of a comment that is, or was, approved. A comment that
-- was never approved shows at most as a "removed" placeholder, which depends only on its replies.
CREATE TRIGGER comments_thread_update
AFTER UPDATE OF status, post_id, parent_id, user_id, author_name, author_url, body_html,
    avatar_seed, created_at ON comments
WHEN OLD.status = 'approved' OR NEW.status = 'approved'
BEGIN
    UPDATE posts SET thread_version = thread_version + 1 WHERE id IN (OLD.post_id, NEW.post_id);
END;

-- A deletion can drop a placeholder or re-root replies, whatever the status was.
CREATE TRIGGER comments_thread_delete AFTER DELETE ON comments
BEGIN
    UPDATE posts SET thread_version = thread_version + 1 WHERE id = OLD.post_id;
END;
