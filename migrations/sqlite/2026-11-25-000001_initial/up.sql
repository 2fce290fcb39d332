-- lectern's first schema. Paired with migrations/postgres/2026-11-25-000001_initial: same tables,
-- columns, nullability, defaults, indexes and constraints; only the id spelling differs.

CREATE TABLE users (
    id INTEGER PRIMARY KEY NOT NULL,
    email TEXT NOT NULL UNIQUE,
    display_name TEXT NOT NULL,
    slug TEXT NOT NULL UNIQUE,
    bio TEXT NOT NULL DEFAULT '',
    role TEXT NOT NULL CHECK (role IN ('admin', 'moderator')),
    password_hash TEXT NOT NULL,
    disabled BOOLEAN NOT NULL DEFAULT FALSE,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);

CREATE TABLE posts (
    id INTEGER PRIMARY KEY NOT NULL,
    slug TEXT NOT NULL UNIQUE,
    title TEXT NOT NULL,
    body_markdown TEXT NOT NULL,
    body_html TEXT NOT NULL,
    excerpt TEXT NOT NULL DEFAULT '',
    author_id INTEGER NOT NULL REFERENCES users (id),
    kind TEXT NOT NULL DEFAULT 'post' CHECK (kind IN ('post', 'page')),
    status TEXT NOT NULL CHECK (status IN ('draft', 'published', 'scheduled', 'trash')),
    status_before_trash TEXT CHECK (status_before_trash IN ('draft', 'published', 'scheduled')),
    published_at TIMESTAMP NOT NULL,
    comments_open BOOLEAN NOT NULL DEFAULT TRUE,
    approved_comment_count INTEGER NOT NULL DEFAULT 0,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX posts_listing ON posts (kind, status, published_at, id);
CREATE INDEX posts_by_author ON posts (author_id, status, published_at);

CREATE TABLE tags (
    id INTEGER PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    slug TEXT NOT NULL UNIQUE
);

CREATE TABLE post_tags (
    post_id INTEGER NOT NULL REFERENCES posts (id) ON DELETE CASCADE,
    tag_id INTEGER NOT NULL REFERENCES tags (id) ON DELETE CASCADE,
    PRIMARY KEY (post_id, tag_id)
);
CREATE INDEX post_tags_by_tag ON post_tags (tag_id, post_id);

CREATE TABLE comments (
    id INTEGER PRIMARY KEY NOT NULL,
    post_id INTEGER NOT NULL REFERENCES posts (id) ON DELETE CASCADE,
    parent_id INTEGER REFERENCES comments (id) ON DELETE SET NULL,
    user_id INTEGER REFERENCES users (id) ON DELETE SET NULL,
    author_name TEXT NOT NULL,
    author_email TEXT NOT NULL,
    author_url TEXT,
    body TEXT NOT NULL,
    body_html TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'spam', 'trash')),
    status_before TEXT CHECK (status_before IN ('pending', 'approved', 'spam', 'trash')),
    held_reason TEXT,
    ip TEXT,
    ip_network TEXT,
    user_agent TEXT NOT NULL DEFAULT '',
    avatar_seed INTEGER NOT NULL,
    notify BOOLEAN NOT NULL DEFAULT FALSE,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX comments_thread ON comments (post_id, status, created_at, id);
CREATE INDEX comments_queue ON comments (status, id);
CREATE INDEX comments_by_email ON comments (author_email, created_at);
CREATE INDEX comments_by_network ON comments (ip_network, created_at);
CREATE INDEX comments_by_parent ON comments (parent_id);

-- Staff sessions, kept server-side so several app servers share them. Only a hash of the
-- session id is stored: a leaked table does not log anyone in.
CREATE TABLE sessions (
    id_hash TEXT PRIMARY KEY NOT NULL,
    user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    csrf_token TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    last_seen_at TIMESTAMP NOT NULL,
    ip TEXT,
    user_agent TEXT NOT NULL DEFAULT ''
);
CREATE INDEX sessions_by_user ON sessions (user_id);

-- Key/value site settings (discussion settings, the generated secret key).
CREATE TABLE settings (
    name TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
);
