DROP TRIGGER comments_thread_delete;
DROP TRIGGER comments_thread_update;
DROP TRIGGER comments_thread_insert;
ALTER TABLE posts DROP COLUMN thread_version;
