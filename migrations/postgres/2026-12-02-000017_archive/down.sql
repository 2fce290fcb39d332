UPDATE outbox SET status = 'queued' WHERE status = 'held';
ALTER TABLE outbox DROP CONSTRAINT outbox_status_check;
ALTER TABLE outbox ADD CONSTRAINT outbox_status_check
    CHECK (status IN ('queued', 'sending', 'sent', 'failed'));
DELETE FROM settings WHERE name = 'last_backup_at';
ALTER TABLE users DROP COLUMN avatar_seed;
