-- API users: operators (no account) beside the two customer roles, and
-- their tokens (only a hash of each). A product administrator's
-- products are those naming them as administrator: user_products went.
DROP TABLE user_products;
ALTER TABLE users RENAME TO users_old;
CREATE TABLE users (
    user_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    account_id TEXT REFERENCES accounts (account_id),
    role TEXT NOT NULL CHECK (role IN ('operator', 'account_manager', 'product_administrator')),
    CHECK ((role = 'operator') = (account_id IS NULL))
);
INSERT INTO users (user_id, name, account_id, role)
    SELECT user_id, name, account_id, role FROM users_old;
DROP TABLE users_old;
CREATE INDEX users_account ON users (account_id);
CREATE TABLE api_tokens (
    token_id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (user_id),
    secret_sha256 TEXT NOT NULL,
    label TEXT NOT NULL DEFAULT '',
    created_at_ms INTEGER NOT NULL,
    expires_at_ms INTEGER
);
CREATE INDEX api_tokens_user ON api_tokens (user_id);
CREATE INDEX products_administrator ON products (administrator);
