DROP TABLE post_search;
ALTER TABLE comments DROP COLUMN previous_body;
ALTER TABLE comments DROP COLUMN edited_at;
