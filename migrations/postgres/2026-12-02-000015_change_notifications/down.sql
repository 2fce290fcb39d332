DROP TRIGGER lectern_notify_posts ON posts;
DROP TRIGGER lectern_notify_comments ON comments;
DROP TRIGGER lectern_notify_tags ON tags;
DROP TRIGGER lectern_notify_post_tags ON post_tags;
DROP TRIGGER lectern_notify_users ON users;
DROP TRIGGER lectern_notify_settings ON settings;
DROP TRIGGER lectern_notify_post_slugs ON post_slugs;
DROP FUNCTION lectern_notify_change();
