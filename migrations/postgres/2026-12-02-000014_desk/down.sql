DROP TRIGGER comments_stats_delete ON comments;
DROP TRIGGER comments_stats_update ON comments;
DROP TRIGGER comments_stats_insert ON comments;
DROP FUNCTION comments_keep_stats();
DROP FUNCTION held_reason_key(TEXT);
DROP TABLE post_comment_months;
DROP TABLE held_reason_days;
DROP TABLE comment_hours;
DROP TABLE admin_notices;
