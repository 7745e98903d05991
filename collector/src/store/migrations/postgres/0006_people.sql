-- People who log in (SQLite migration 8): an e-mail address (lower case, unique), an argon2id
-- password hash, a state (active, pending, suspended, refused) and a
-- language; their sessions (only a hash of each session id is kept, with
-- its CSRF token); failed logins, for throttling by e-mail and by client.
ALTER TABLE users ADD COLUMN email TEXT;
ALTER TABLE users ADD COLUMN password_hash TEXT;
ALTER TABLE users ADD COLUMN state TEXT NOT NULL DEFAULT 'active'
    CHECK (state IN ('active', 'pending', 'suspended', 'refused'));
ALTER TABLE users ADD COLUMN language TEXT NOT NULL DEFAULT 'en';
CREATE UNIQUE INDEX users_email ON users (email);
CREATE TABLE sessions (
    session_sha256 TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (user_id),
    csrf_token TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    last_seen_ms BIGINT NOT NULL,
    client TEXT NOT NULL DEFAULT ''
);
CREATE INDEX sessions_user ON sessions (user_id);
CREATE TABLE login_failures (
    failure_key TEXT NOT NULL,
    at_ms BIGINT NOT NULL
);
CREATE INDEX login_failures_key ON login_failures (failure_key, at_ms);
