-- Moderation: one log table for every action, login throttling, maintained per-status counts,
-- and tombstones for deleted comments that still have replies.

CREATE TABLE moderation_log (
    id INTEGER PRIMARY KEY NOT NULL,
    comment_id INTEGER,
    user_id INTEGER REFERENCES users (id) ON DELETE SET NULL,
    action TEXT NOT NULL,
    via TEXT NOT NULL CHECK (via IN ('web', 'email', 'cli', 'system')),
    detail TEXT NOT NULL DEFAULT '',
    ip TEXT,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX moderation_log_recent ON moderation_log (created_at, id);
CREATE INDEX moderation_log_by_comment ON moderation_log (comment_id);

CREATE TABLE login_failures (
    id INTEGER PRIMARY KEY NOT NULL,
    email TEXT NOT NULL,
    ip_network TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX login_failures_by_email ON login_failures (email, created_at);
CREATE INDEX login_failures_by_network ON login_failures (ip_network, created_at);

-- How many comments have each status, kept in step by every insert, move and delete, so the
-- queue's tabs do not count a million rows per page view.
CREATE TABLE comment_counts (
    status TEXT PRIMARY KEY NOT NULL CHECK (status IN ('pending', 'approved', 'spam', 'trash')),
    total INTEGER NOT NULL DEFAULT 0
);
INSERT INTO comment_counts (status, total)
    SELECT s.status, (SELECT COUNT(*) FROM comments c WHERE c.status = s.status)
    FROM (SELECT 'pending' AS status UNION ALL SELECT 'approved' UNION ALL SELECT 'spam'
          UNION ALL SELECT 'trash') s;

-- A permanently deleted comment that approved replies still hang from is kept as an empty
-- tombstone (no name, email, text or address) so the replies keep their place.
ALTER TABLE comments ADD COLUMN deleted_at TIMESTAMP;
