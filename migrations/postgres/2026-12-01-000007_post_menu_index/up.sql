-- The moderation queue's post filter lists the newest 200 posts by id and title. Without an index
-- that read every post, bodies and all, and sorted them, on each queue page; this one answers it
-- by walking 200 index entries. Paired with migrations/sqlite/2026-12-01-000007_post_menu_index.
CREATE INDEX posts_menu ON posts (published_at, id, status, title);
