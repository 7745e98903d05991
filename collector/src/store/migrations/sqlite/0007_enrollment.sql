-- Agent enrollment: single-use join tokens (only a hash of each secret), and
-- per agent the serial of the certificate issued last (and the one before,
-- while a renewal's answer may not have arrived), its expiry, and whether an
-- operator disabled it.
CREATE TABLE join_tokens (
    token_id TEXT PRIMARY KEY,
    secret_sha256 TEXT NOT NULL,
    account_id TEXT NOT NULL REFERENCES accounts (account_id),
    agent_id TEXT,
    created_by TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL,
    expires_at_ms INTEGER NOT NULL,
    used_at_ms INTEGER,
    used_by_agent TEXT
);
CREATE INDEX join_tokens_account ON join_tokens (account_id);
ALTER TABLE agents ADD COLUMN disabled INTEGER NOT NULL DEFAULT 0;
ALTER TABLE agents ADD COLUMN cert_serial TEXT;
ALTER TABLE agents ADD COLUMN previous_serial TEXT;
ALTER TABLE agents ADD COLUMN cert_expires_at_ms INTEGER;
