-- The media library: pictures uploaded by admins, stored in the database itself so that
-- backups, exports and several app servers need nothing else. Paired with
-- migrations/postgres/2026-12-02-000016_media; only the id and blob spellings differ.

-- One picture. `sha256` is the hash of the original as stored (re-encoded, without metadata),
-- and names it in every URL; `upload_sha256` is the hash of the bytes as uploaded, so the same
-- file uploaded again is recognised before it is decoded.
CREATE TABLE media (
    id INTEGER PRIMARY KEY NOT NULL,
    sha256 TEXT NOT NULL UNIQUE,
    upload_sha256 TEXT NOT NULL,
    format TEXT NOT NULL CHECK (format IN ('jpeg', 'png', 'gif', 'webp')),
    file_name TEXT NOT NULL,
    alt TEXT NOT NULL,
    width INTEGER NOT NULL,
    height INTEGER NOT NULL,
    byte_size BIGINT NOT NULL,
    uploaded_by INTEGER REFERENCES users (id) ON DELETE SET NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX media_by_upload ON media (upload_sha256);

-- The original (width = the picture's width) and its narrower copies, each served at
-- /media/{sha256}-{width}.{ext}; a copy's format may differ from the original's (a WebP's
-- copies are JPEG or PNG).
CREATE TABLE media_variants (
    id INTEGER PRIMARY KEY NOT NULL,
    media_id INTEGER NOT NULL REFERENCES media (id) ON DELETE CASCADE,
    width INTEGER NOT NULL,
    height INTEGER NOT NULL,
    format TEXT NOT NULL CHECK (format IN ('jpeg', 'png', 'gif', 'webp')),
    byte_size BIGINT NOT NULL,
    UNIQUE (media_id, width)
);

-- A variant's bytes in 256 KiB pieces: diesel reads a blob whole, so serving reads one piece
-- at a time and memory stays bounded whatever the picture's size.
CREATE TABLE media_chunks (
    variant_id INTEGER NOT NULL REFERENCES media_variants (id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (variant_id, seq)
);
