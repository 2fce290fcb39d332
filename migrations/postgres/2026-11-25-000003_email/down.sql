ALTER TABLE comments DROP COLUMN published_notified_at;
DROP TABLE used_tokens;
DROP TABLE notify_addresses;
DROP TABLE outbox;
