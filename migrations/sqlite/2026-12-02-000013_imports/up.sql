-- Imports (WordPress, Disqus, Isso). Paired with migrations/postgres/2026-12-02-000013_imports;
-- only the id spelling differs.

-- Every item an import brought in, by its identity in the source (a WordPress site's comment
-- 12, a Disqus post id, an Isso thread's comment), so running the same import again, or again
-- after it was stopped half-way, adds only what is missing. Kept when the item is deleted
-- later: a re-run must not bring back what an admin removed.
CREATE TABLE import_items (
    source TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('user', 'post', 'comment')),
    source_id TEXT NOT NULL,
    target_id INTEGER NOT NULL,
    PRIMARY KEY (source, kind, source_id)
);

-- Addresses of the old site that answer 301: a post's old permalink path or `?p=ID` query
-- (followed to the post's current address, whatever its slug becomes), or a fixed target
-- (a category's or an author's old page).
CREATE TABLE old_addresses (
    address TEXT PRIMARY KEY NOT NULL,
    post_id INTEGER REFERENCES posts (id) ON DELETE CASCADE,
    target TEXT NOT NULL DEFAULT ''
);
CREATE INDEX old_addresses_by_post ON old_addresses (post_id);

-- Imports started from /admin/import: the uploaded file waits on the server that received it,
-- is checked (a dry run), and runs in the background once confirmed.
CREATE TABLE import_runs (
    id INTEGER PRIMARY KEY NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('checking', 'checked', 'running', 'done', 'failed')),
    file_name TEXT NOT NULL,
    file_path TEXT NOT NULL,
    progress TEXT NOT NULL DEFAULT '',
    report TEXT NOT NULL DEFAULT '',
    created_by INTEGER REFERENCES users (id) ON DELETE SET NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
