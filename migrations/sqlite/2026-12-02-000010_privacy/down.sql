DELETE FROM blocks WHERE kind = 'email_hash';
CREATE TABLE blocks_old (
    id INTEGER PRIMARY KEY NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('email', 'ip')),
    value TEXT NOT NULL,
    expires_at TIMESTAMP,
    created_by INTEGER REFERENCES users (id) ON DELETE SET NULL,
    created_at TIMESTAMP NOT NULL
);
INSERT INTO blocks_old (id, kind, value, expires_at, created_by, created_at)
    SELECT id, kind, value, expires_at, created_by, created_at FROM blocks;
DROP TABLE blocks;
ALTER TABLE blocks_old RENAME TO blocks;
CREATE INDEX blocks_by_value ON blocks (kind, value);
DROP INDEX comments_by_lower_email;
DROP TABLE my_comments_requests;
