ALTER TABLE comments DROP COLUMN format;
