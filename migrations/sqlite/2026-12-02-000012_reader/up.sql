-- The reader's side: commenters edit their own comments for a while, and posts are searchable.
-- Paired with migrations/postgres/2026-12-02-000012_reader (same tables and columns; the
-- full-text index itself is each backend's own: FTS5 here, a GIN index there).

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

-- FTS5 over post_search (external content: the text is stored once), kept in step by triggers.
CREATE VIRTUAL TABLE post_search_fts USING fts5(
    title, body, tags,
    content = 'post_search', content_rowid = 'post_id',
    tokenize = 'porter unicode61 remove_diacritics 2'
);
CREATE TRIGGER post_search_fts_insert AFTER INSERT ON post_search BEGIN
    INSERT INTO post_search_fts (rowid, title, body, tags)
        VALUES (NEW.post_id, NEW.title, NEW.body, NEW.tags);
END;
CREATE TRIGGER post_search_fts_delete AFTER DELETE ON post_search BEGIN
    INSERT INTO post_search_fts (post_search_fts, rowid, title, body, tags)
        VALUES ('delete', OLD.post_id, OLD.title, OLD.body, OLD.tags);
END;
CREATE TRIGGER post_search_fts_update AFTER UPDATE ON post_search BEGIN
    INSERT INTO post_search_fts (post_search_fts, rowid, title, body, tags)
        VALUES ('delete', OLD.post_id, OLD.title, OLD.body, OLD.tags);
    INSERT INTO post_search_fts (rowid, title, body, tags)
        VALUES (NEW.post_id, NEW.title, NEW.body, NEW.tags);
END;

-- Every existing post, with its Markdown source as the text (the application rewrites a
-- post's row as plain prose the next time it is saved; the words are the same).
INSERT INTO post_search (post_id, title, body, tags)
    SELECT p.id, p.title, p.body_markdown,
        coalesce((SELECT group_concat(t.name, ' ') FROM post_tags pt JOIN tags t ON t.id = pt.tag_id
                  WHERE pt.post_id = p.id), '')
    FROM posts p;
