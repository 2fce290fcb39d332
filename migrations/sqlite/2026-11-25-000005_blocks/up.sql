-- Blocks made by moderators: new comments from a blocked email address or IP network go to
-- spam. `value` is an email address (lower-cased) or a comment's `ip_network` (an IPv4 address
-- or an IPv6 /64); `expires_at` NULL means forever.

CREATE TABLE blocks (
    id INTEGER PRIMARY KEY NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('email', 'ip')),
    value TEXT NOT NULL,
    expires_at TIMESTAMP,
    created_by INTEGER REFERENCES users (id) ON DELETE SET NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX blocks_by_value ON blocks (kind, value);
