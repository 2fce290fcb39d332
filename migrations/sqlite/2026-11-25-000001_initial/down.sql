DROP TABLE settings;
DROP TABLE sessions;
DROP TABLE comments;
DROP TABLE post_tags;
DROP TABLE tags;
DROP TABLE posts;
DROP TABLE users;
