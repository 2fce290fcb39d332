ALTER TABLE comments DROP COLUMN deleted_at;
DROP TABLE comment_counts;
DROP TABLE login_failures;
DROP TABLE moderation_log;
