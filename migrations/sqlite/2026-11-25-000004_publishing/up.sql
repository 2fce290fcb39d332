-- Publishing from the admin. When a published post's slug changes, its old address keeps
-- working: /posts/{old_slug} (and its comment feed) answer 301 to the post's current address.
-- Paired with migrations/postgres/2026-11-25-000004_publishing; identical SQL.

CREATE TABLE post_slugs (
    old_slug TEXT PRIMARY KEY NOT NULL,
    post_id INTEGER NOT NULL REFERENCES posts (id) ON DELETE CASCADE
);
CREATE INDEX post_slugs_by_post ON post_slugs (post_id);
