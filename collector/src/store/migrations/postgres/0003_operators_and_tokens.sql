-- API users and tokens (SQLite migration 5).
DROP TABLE user_products;
ALTER TABLE users ALTER COLUMN account_id DROP NOT NULL;
ALTER TABLE users DROP CONSTRAINT users_role_check;
ALTER TABLE users ADD CONSTRAINT users_role_check
    CHECK (role IN ('operator', 'account_manager', 'product_administrator'));
ALTER TABLE users ADD CONSTRAINT users_operator_has_no_account
    CHECK ((role = 'operator') = (account_id IS NULL));
CREATE INDEX users_account ON users (account_id);
CREATE TABLE api_tokens (
    token_id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (user_id),
    secret_sha256 TEXT NOT NULL,
    label TEXT NOT NULL DEFAULT '',
    created_at_ms BIGINT NOT NULL,
    expires_at_ms BIGINT
);
CREATE INDEX api_tokens_user ON api_tokens (user_id);
CREATE INDEX products_administrator ON products (administrator);
