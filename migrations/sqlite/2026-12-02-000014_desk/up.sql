-- The moderator's desk. Paired with migrations/postgres/2026-12-02-000014_desk.
--
-- 1. The notice an admin page shows after an action ("Comment by Rita approved." + Undo): a
--    short-lived flash kept here, not in a cookie. `session_hash` is the session that sees it
--    (NULL after an email-link action, whose Undo is a signed link); `undo` lists what Undo puts
--    back, written by moderation and opaque to the table.
CREATE TABLE admin_notices (
    id INTEGER PRIMARY KEY NOT NULL,
    user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    session_hash TEXT,
    message TEXT NOT NULL,
    undo TEXT NOT NULL DEFAULT '',
    view_href TEXT,
    created_at TIMESTAMP NOT NULL,
    shown_at TIMESTAMP,
    undone_at TIMESTAMP
);
CREATE INDEX admin_notices_by_session ON admin_notices (session_hash, id);
CREATE INDEX admin_notices_by_age ON admin_notices (created_at);

-- The outbox's waiting messages by age: the dashboard (and /healthz, /admin/mail) count them
-- and read the oldest one's age from the index alone, without reading each large row.
CREATE INDEX outbox_by_status_age ON outbox (status, created_at);

-- 2. The dashboard's numbers, kept in step by triggers so that every path that writes comments
--    (the form, moderation, imports, erasure, retention, plain SQL) keeps them true, and the
--    dashboard reads a few hundred rows however many comments there are.
--    Comments by the hour they were written (UTC) and their status now: the 30-day chart.
CREATE TABLE comment_hours (
    hour TIMESTAMP NOT NULL,
    status TEXT NOT NULL,
    total INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (hour, status)
);
--    Why comments were held or marked spam when they arrived, by day (keywords and link counts
--    folded into one reason each).
CREATE TABLE held_reason_days (
    day TIMESTAMP NOT NULL,
    reason TEXT NOT NULL,
    total INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (day, reason)
);
--    Approved comments per post by the month they were written: "most comments this month".
CREATE TABLE post_comment_months (
    month TIMESTAMP NOT NULL,
    post_id INTEGER NOT NULL REFERENCES posts (id) ON DELETE CASCADE,
    total INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (month, post_id)
);
CREATE INDEX post_comment_months_top ON post_comment_months (month, total);

INSERT INTO comment_hours (hour, status, total)
    SELECT strftime('%Y-%m-%d %H:00:00', created_at), status, COUNT(*)
    FROM comments GROUP BY 1, 2;
INSERT INTO held_reason_days (day, reason, total)
    SELECT strftime('%Y-%m-%d 00:00:00', created_at),
        CASE WHEN held_reason LIKE 'moderation keyword:%' THEN 'moderation keyword'
             WHEN held_reason LIKE 'disallowed keyword:%' THEN 'disallowed keyword'
             WHEN held_reason LIKE '% link% (%' THEN 'links'
             ELSE held_reason END,
        COUNT(*)
    FROM comments WHERE held_reason IS NOT NULL AND held_reason != '' GROUP BY 1, 2;
INSERT INTO post_comment_months (month, post_id, total)
    SELECT strftime('%Y-%m-01 00:00:00', created_at), post_id, COUNT(*)
    FROM comments WHERE status = 'approved' GROUP BY 1, 2;

CREATE TRIGGER comments_stats_insert AFTER INSERT ON comments
BEGIN
    INSERT INTO comment_hours (hour, status, total)
        VALUES (strftime('%Y-%m-%d %H:00:00', NEW.created_at), NEW.status, 1)
        ON CONFLICT (hour, status) DO UPDATE SET total = total + 1;
    INSERT INTO held_reason_days (day, reason, total)
        SELECT strftime('%Y-%m-%d 00:00:00', NEW.created_at),
            CASE WHEN NEW.held_reason LIKE 'moderation keyword:%' THEN 'moderation keyword'
                 WHEN NEW.held_reason LIKE 'disallowed keyword:%' THEN 'disallowed keyword'
                 WHEN NEW.held_reason LIKE '% link% (%' THEN 'links'
                 ELSE NEW.held_reason END,
            1
        WHERE NEW.held_reason IS NOT NULL AND NEW.held_reason != ''
        ON CONFLICT (day, reason) DO UPDATE SET total = total + 1;
    INSERT INTO post_comment_months (month, post_id, total)
        SELECT strftime('%Y-%m-01 00:00:00', NEW.created_at), NEW.post_id, 1
        WHERE NEW.status = 'approved'
        ON CONFLICT (month, post_id) DO UPDATE SET total = total + 1;
END;

CREATE TRIGGER comments_stats_update AFTER UPDATE OF status, created_at, post_id ON comments
WHEN OLD.status != NEW.status OR OLD.created_at != NEW.created_at OR OLD.post_id != NEW.post_id
BEGIN
    UPDATE comment_hours SET total = total - 1
        WHERE hour = strftime('%Y-%m-%d %H:00:00', OLD.created_at) AND status = OLD.status;
    INSERT INTO comment_hours (hour, status, total)
        VALUES (strftime('%Y-%m-%d %H:00:00', NEW.created_at), NEW.status, 1)
        ON CONFLICT (hour, status) DO UPDATE SET total = total + 1;
    UPDATE post_comment_months SET total = total - 1
        WHERE OLD.status = 'approved' AND month = strftime('%Y-%m-01 00:00:00', OLD.created_at)
            AND post_id = OLD.post_id;
    INSERT INTO post_comment_months (month, post_id, total)
        SELECT strftime('%Y-%m-01 00:00:00', NEW.created_at), NEW.post_id, 1
        WHERE NEW.status = 'approved'
        ON CONFLICT (month, post_id) DO UPDATE SET total = total + 1;
END;

CREATE TRIGGER comments_stats_delete AFTER DELETE ON comments
BEGIN
    UPDATE comment_hours SET total = total - 1
        WHERE hour = strftime('%Y-%m-%d %H:00:00', OLD.created_at) AND status = OLD.status;
    UPDATE post_comment_months SET total = total - 1
        WHERE OLD.status = 'approved' AND month = strftime('%Y-%m-01 00:00:00', OLD.created_at)
            AND post_id = OLD.post_id;
END;
