DROP TRIGGER comments_thread_delete ON comments;
DROP TRIGGER comments_thread_update ON comments;
DROP TRIGGER comments_thread_insert ON comments;
DROP FUNCTION comments_bump_thread_version();
ALTER TABLE posts DROP COLUMN thread_version;
