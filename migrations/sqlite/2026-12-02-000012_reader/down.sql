DROP TRIGGER post_search_fts_update;
DROP TRIGGER post_search_fts_delete;
DROP TRIGGER post_search_fts_insert;
DROP TABLE post_search_fts;
DROP TABLE post_search;
ALTER TABLE comments DROP COLUMN previous_body;
ALTER TABLE comments DROP COLUMN edited_at;
