-- Archives (issue 17).
--
-- 1. An author's avatar was a keyed hash of the site secret: stored per user, so pages keep
--    their avatars after a restore without the secret. Filled in at start-up (the key is not
--    known here); a user without one is drawn from the secret as before.
ALTER TABLE users ADD COLUMN avatar_seed INTEGER;

-- 2. Restored unsent mail waits as `held` until an admin releases it from /admin/mail: the old
--    site may have sent it after the snapshot. SQLite cannot alter a CHECK constraint, so the
--    outbox is rebuilt with the same columns and indexes (nothing refers to it).
CREATE TABLE outbox_new (
    id INTEGER PRIMARY KEY NOT NULL,
    message_id TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    to_name TEXT NOT NULL DEFAULT '',
    to_address TEXT NOT NULL,
    subject TEXT NOT NULL,
    body_text TEXT NOT NULL,
    body_html TEXT NOT NULL,
    list_unsubscribe TEXT,
    status TEXT NOT NULL CHECK (status IN ('queued', 'sending', 'sent', 'failed', 'held')),
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMP NOT NULL,
    locked_until TIMESTAMP,
    first_deferred_at TIMESTAMP,
    last_error TEXT,
    created_at TIMESTAMP NOT NULL,
    sent_at TIMESTAMP,
    lease_token TEXT
);
INSERT INTO outbox_new (id, message_id, kind, to_name, to_address, subject, body_text,
    body_html, list_unsubscribe, status, attempts, next_attempt_at, locked_until,
    first_deferred_at, last_error, created_at, sent_at, lease_token)
SELECT id, message_id, kind, to_name, to_address, subject, body_text, body_html,
    list_unsubscribe, status, attempts, next_attempt_at, locked_until, first_deferred_at,
    last_error, created_at, sent_at, lease_token
FROM outbox;
DROP TABLE outbox;
ALTER TABLE outbox_new RENAME TO outbox;
CREATE INDEX outbox_due ON outbox (status, next_attempt_at);
CREATE INDEX outbox_by_status_age ON outbox (status, created_at);

-- 3. When `lectern backup` last finished, shown on /admin/export: the `last_backup_at` row of
--    `settings` (no table needed; it is never exported).
