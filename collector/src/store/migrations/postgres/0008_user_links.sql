-- Single-use, expiring links e-mailed to people (SQLite migration 10) (password reset; later
-- confirmation and invitation): only the SHA-256 of each link's token.
CREATE TABLE user_links (
    link_sha256 TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (user_id),
    purpose TEXT NOT NULL CHECK (purpose IN ('reset', 'confirm', 'invite')),
    created_at_ms BIGINT NOT NULL,
    expires_at_ms BIGINT NOT NULL,
    used_at_ms BIGINT
);
CREATE INDEX user_links_user ON user_links (user_id);
