DELETE FROM blocks WHERE kind = 'email_hash';
ALTER TABLE blocks DROP CONSTRAINT blocks_kind_check;
ALTER TABLE blocks ADD CONSTRAINT blocks_kind_check CHECK (kind IN ('email', 'ip'));
DROP INDEX comments_by_lower_email;
DROP TABLE my_comments_requests;
