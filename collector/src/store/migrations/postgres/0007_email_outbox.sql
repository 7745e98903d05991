-- E-mail notifications waiting to be sent (SQLite migration 9): written in the transaction of
-- the change they tell of, claimed by one replica per attempt, retried with
-- backoff, kept as dead letters after the last attempt.
CREATE TABLE email_outbox (
    email_id BIGSERIAL PRIMARY KEY,
    to_address TEXT NOT NULL,
    user_id TEXT,
    subject TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    next_attempt_ms BIGINT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'sent', 'dead')),
    last_error TEXT
);
CREATE INDEX email_outbox_due ON email_outbox (state, next_attempt_ms);
