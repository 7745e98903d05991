-- The portal's people (SQLite migration 11, PostgreSQL migration 9).
-- Organisations hold companies (accounts); each existing account becomes
-- the one company of an organisation of its own id and name.
CREATE TABLE organisations (
    organisation_id TEXT PRIMARY KEY,
    name TEXT NOT NULL
);
INSERT INTO organisations (organisation_id, name) SELECT account_id, name FROM accounts;
ALTER TABLE accounts ADD COLUMN organisation_id TEXT REFERENCES organisations (organisation_id);
UPDATE accounts SET organisation_id = account_id;
CREATE INDEX accounts_organisation ON accounts (organisation_id);
-- A user sees all the companies of their organisation, or only these.
CREATE TABLE user_companies (
    user_id TEXT NOT NULL REFERENCES users (user_id),
    account_id TEXT NOT NULL REFERENCES accounts (account_id),
    PRIMARY KEY (user_id, account_id)
);
ALTER TABLE users ADD COLUMN first_name TEXT NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN last_name TEXT NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN phone TEXT NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN invited_by TEXT;
CREATE INDEX users_last_name ON users (last_name);
-- Several product administrators per product, directly or through a group.
CREATE TABLE product_administrators (
    serial TEXT NOT NULL,
    user_id TEXT NOT NULL REFERENCES users (user_id),
    PRIMARY KEY (serial, user_id)
);
CREATE INDEX product_administrators_user ON product_administrators (user_id);
INSERT INTO product_administrators (serial, user_id)
    SELECT serial, administrator FROM products WHERE administrator IS NOT NULL;
DROP INDEX products_administrator;
ALTER TABLE products DROP COLUMN administrator;
CREATE TABLE group_administrators (
    group_id BIGINT NOT NULL REFERENCES product_groups (group_id),
    user_id TEXT NOT NULL REFERENCES users (user_id),
    PRIMARY KEY (group_id, user_id)
);
CREATE INDEX group_administrators_user ON group_administrators (user_id);
-- A product administrator's own groups hold only products they administer.
ALTER TABLE product_groups ADD COLUMN created_by TEXT;
-- The TOTP second factor (RFC 6238): the shared secret, whether it is on,
-- the last time step used (a code is accepted once); recovery codes hashed.
ALTER TABLE users ADD COLUMN totp_secret TEXT;
ALTER TABLE users ADD COLUMN totp_enabled BIGINT NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN totp_last_step BIGINT NOT NULL DEFAULT 0;
CREATE TABLE recovery_codes (
    user_id TEXT NOT NULL REFERENCES users (user_id),
    code_sha256 TEXT NOT NULL,
    used_at_ms BIGINT,
    PRIMARY KEY (user_id, code_sha256)
);
-- Which events a person is told of by e-mail, for which products or groups
-- (JSON arrays; both empty: every product they see). No row: the default.
CREATE TABLE notification_settings (
    user_id TEXT NOT NULL REFERENCES users (user_id),
    event TEXT NOT NULL,
    enabled BIGINT NOT NULL,
    products TEXT NOT NULL DEFAULT '[]',
    groups_json TEXT NOT NULL DEFAULT '[]',
    PRIMARY KEY (user_id, event)
);
-- People who registered: confirmed by an e-mailed link; a registration
-- whose serial numbers match no company, or whose organisation has an
-- account manager already, waits for an operator.
CREATE TABLE registrations (
    registration_id TEXT PRIMARY KEY,
    company_name TEXT NOT NULL,
    first_name TEXT NOT NULL,
    last_name TEXT NOT NULL,
    email TEXT NOT NULL,
    phone TEXT NOT NULL,
    serials TEXT NOT NULL,
    language TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('unconfirmed', 'queued', 'approved', 'rejected')),
    account_id TEXT,
    password_hash TEXT,
    link_sha256 TEXT NOT NULL UNIQUE,
    link_expires_at_ms BIGINT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    confirmed_at_ms BIGINT,
    decided_at_ms BIGINT,
    decided_by TEXT,
    user_id TEXT
);
CREATE INDEX registrations_state ON registrations (state, created_at_ms);
-- Every change made by a person, a program or an agent's enrollment.
CREATE TABLE audit_log (
    audit_id INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms BIGINT NOT NULL,
    actor_kind TEXT NOT NULL,
    actor TEXT NOT NULL,
    organisation_id TEXT,
    object_kind TEXT NOT NULL,
    object_id TEXT NOT NULL,
    action TEXT NOT NULL,
    before_json TEXT,
    after_json TEXT
);
CREATE INDEX audit_log_organisation ON audit_log (organisation_id, audit_id);
CREATE INDEX audit_log_actor ON audit_log (actor, audit_id);
CREATE INDEX audit_log_object ON audit_log (object_kind, object_id, audit_id);
