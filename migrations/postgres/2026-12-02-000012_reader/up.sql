-- The reader's side: commenters edit their own comments for a while, and posts are searchable.
-- Paired with migrations/sqlite/2026-12-02-000012_reader (same tables and columns; the
-- full-text index itself is each backend's own: FTS5 there, a GIN index here).

-- A commenter's own edit keeps the text it replaced for moderators (the moderation log keeps
-- every earlier version).
ALTER TABLE comments ADD COLUMN edited_at TIMESTAMP;
ALTER TABLE comments ADD COLUMN previous_body TEXT;

-- What search reads of each post: its title, its prose as plain text and its tags' names,
-- rewritten by the application in the same transaction as every change to the post.
CREATE TABLE post_search (
    post_id INTEGER PRIMARY KEY NOT NULL REFERENCES posts (id) ON DELETE CASCADE,
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    tags TEXT NOT NULL DEFAULT ''
);

-- The weighted document the search matches and ranks, kept by PostgreSQL itself (a generated
-- column, so ranking reads it instead of parsing every matching text again), and its index.
ALTER TABLE post_search ADD COLUMN document tsvector GENERATED ALWAYS AS (
    setweight(to_tsvector('english', title), 'A')
    || setweight(to_tsvector('english', tags), 'B')
    || setweight(to_tsvector('english', body), 'C')
) STORED;
CREATE INDEX post_search_fts ON post_search USING gin (document);

-- Every existing post, with its Markdown source as the text (the application rewrites a
-- post's row as plain prose the next time it is saved; the words are the same).
INSERT INTO post_search (post_id, title, body, tags)
    SELECT p.id, p.title, p.body_markdown,
        coalesce((SELECT string_agg(t.name, ' ') FROM post_tags pt JOIN tags t ON t.id = pt.tag_id
                  WHERE pt.post_id = p.id), '')
    FROM posts p;
