-- Commenters manage their own data (`/my-comments`).
-- Paired with migrations/postgres/2026-12-02-000010_privacy.

-- Each request for a "manage my comments" link, known address or not, so a stranger can neither
-- fill an inbox nor probe addresses in bulk: a few an hour per address, more per network. The
-- address is kept only as a keyed hash; rows older than a day are trimmed as new ones arrive.
CREATE TABLE my_comments_requests (
    id INTEGER PRIMARY KEY NOT NULL,
    address_key TEXT NOT NULL,
    ip_network TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX my_comments_requests_by_address ON my_comments_requests (address_key, created_at);
CREATE INDEX my_comments_requests_by_network ON my_comments_requests (ip_network, created_at);

-- A commenter's comments are found by their address without regard to case (imports keep the
-- case their source had), through this index rather than by reading every comment.
CREATE INDEX comments_by_lower_email ON comments (lower(author_email));

-- A block on an email address that its owner had erased survives as the address's keyed hash
-- (kind 'email_hash'), so erasing cannot lift a block. SQLite cannot change a CHECK in place:
-- the table is rebuilt with the same columns and index.
CREATE TABLE blocks_new (
    id INTEGER PRIMARY KEY NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('email', 'ip', 'email_hash')),
    value TEXT NOT NULL,
    expires_at TIMESTAMP,
    created_by INTEGER REFERENCES users (id) ON DELETE SET NULL,
    created_at TIMESTAMP NOT NULL
);
INSERT INTO blocks_new (id, kind, value, expires_at, created_by, created_at)
    SELECT id, kind, value, expires_at, created_by, created_at FROM blocks;
DROP TABLE blocks;
ALTER TABLE blocks_new RENAME TO blocks;
CREATE INDEX blocks_by_value ON blocks (kind, value);
