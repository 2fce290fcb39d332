-- A comment a reader can see never changes without its post's thread_version moving
-- (migration 000006), and that update of posts notifies lectern_changed already. The trigger on
-- comments itself made every held comment, and every moderator's look at one, age every kept
-- page on every server. SQLite gains the same rule with its own counter in the migration of
-- this name.
DROP TRIGGER lectern_notify_comments ON comments;
