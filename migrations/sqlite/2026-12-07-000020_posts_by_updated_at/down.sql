DROP INDEX posts_by_updated_at;
