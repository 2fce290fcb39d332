-- Email: a durable outbox written in the same transaction as the change that causes each
-- message; the commenters' notification addresses (double opt-in, unsubscribe); and the
-- one-time links that have been used.

CREATE TABLE outbox (
    id INTEGER PRIMARY KEY NOT NULL,
    -- Stable across retries, so a retried message is the same message.
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
    -- While a worker holds the row: the lease's end, after which another worker may take it.
    locked_until TIMESTAMP,
    first_deferred_at TIMESTAMP,
    last_error TEXT,
    created_at TIMESTAMP NOT NULL,
    sent_at TIMESTAMP
);
CREATE INDEX outbox_due ON outbox (status, next_attempt_at);

CREATE TABLE notify_addresses (
    email TEXT PRIMARY KEY NOT NULL,
    confirmation_sent_at TIMESTAMP,
    confirmed_at TIMESTAMP,
    unsubscribed_at TIMESTAMP,
    created_at TIMESTAMP NOT NULL
);

CREATE TABLE used_tokens (
    token_hash TEXT PRIMARY KEY NOT NULL,
    used_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL
);

-- Set when a comment's "published" notifications went out, so approving it again never
-- sends them twice.
ALTER TABLE comments ADD COLUMN published_notified_at TIMESTAMP;
