CREATE TABLE outbox_old (
    id INTEGER PRIMARY KEY NOT NULL,
    message_id TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    to_name TEXT NOT NULL DEFAULT '',
    to_address TEXT NOT NULL,
    subject TEXT NOT NULL,
    body_text TEXT NOT NULL,
    body_html TEXT NOT NULL,
    list_unsubscribe TEXT,
    status TEXT NOT NULL CHECK (status IN ('queued', 'sending', 'sent', 'failed')),
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMP NOT NULL,
    locked_until TIMESTAMP,
    first_deferred_at TIMESTAMP,
    last_error TEXT,
    created_at TIMESTAMP NOT NULL,
    sent_at TIMESTAMP,
    lease_token TEXT
);
INSERT INTO outbox_old
SELECT id, message_id, kind, to_name, to_address, subject, body_text, body_html,
    list_unsubscribe, CASE status WHEN 'held' THEN 'queued' ELSE status END, attempts,
    next_attempt_at, locked_until, first_deferred_at, last_error, created_at, sent_at,
    lease_token
FROM outbox;
DROP TABLE outbox;
ALTER TABLE outbox_old RENAME TO outbox;
CREATE INDEX outbox_due ON outbox (status, next_attempt_at);
CREATE INDEX outbox_by_status_age ON outbox (status, created_at);
DELETE FROM settings WHERE name = 'last_backup_at';
ALTER TABLE users DROP COLUMN avatar_seed;
