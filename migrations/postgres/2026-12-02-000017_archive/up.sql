-- Archives (issue 17); see the sqlite tree's migration of this name.
ALTER TABLE users ADD COLUMN avatar_seed INTEGER;

-- Restored unsent mail waits as `held` until an admin releases it. The constraint is the one
-- CREATE TABLE named for the inline CHECK of migration 000003.
ALTER TABLE outbox DROP CONSTRAINT outbox_status_check;
ALTER TABLE outbox ADD CONSTRAINT outbox_status_check
    CHECK (status IN ('queued', 'sending', 'sent', 'failed', 'held'));

-- When `lectern backup` last finished: the `last_backup_at` row of `settings`.
