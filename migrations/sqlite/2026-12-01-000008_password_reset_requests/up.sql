-- Password reset emails sent per account, so a stranger who knows a staff address cannot fill
-- its inbox: a few an hour, then the request is answered the same way but sends nothing.
-- Rows older than a day are deleted by the retention task.
-- Paired with migrations/postgres/2026-12-01-000008_password_reset_requests.
CREATE TABLE password_reset_requests (
    id INTEGER PRIMARY KEY NOT NULL,
    user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX password_reset_requests_by_user ON password_reset_requests (user_id, created_at);
