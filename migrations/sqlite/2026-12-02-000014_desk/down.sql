DROP TRIGGER comments_stats_delete;
DROP TRIGGER comments_stats_update;
DROP TRIGGER comments_stats_insert;
DROP TABLE post_comment_months;
DROP TABLE held_reason_days;
DROP TABLE comment_hours;
DROP INDEX outbox_by_status_age;
DROP TABLE admin_notices;
