-- The portal domain (migrations/postgres holds the same schema).
ALTER TABLE agents ADD COLUMN account_id TEXT;
ALTER TABLE agents ADD COLUMN held_seq INTEGER NOT NULL DEFAULT 0;
ALTER TABLE products ADD COLUMN account_id TEXT;
ALTER TABLE products ADD COLUMN agent_id TEXT;
ALTER TABLE products ADD COLUMN alt_name TEXT;
ALTER TABLE products ADD COLUMN site_address TEXT;
ALTER TABLE products ADD COLUMN location TEXT;
ALTER TABLE products ADD COLUMN administrator TEXT;
ALTER TABLE products ADD COLUMN emaintenance INTEGER NOT NULL DEFAULT 1;
ALTER TABLE products ADD COLUMN billing_day INTEGER;
ALTER TABLE products ADD COLUMN entitlements TEXT NOT NULL DEFAULT '{}';
CREATE INDEX products_account ON products (account_id, serial);
ALTER TABLE readings ADD COLUMN raw_value INTEGER;
ALTER TABLE readings ADD COLUMN state TEXT NOT NULL DEFAULT 'filed';
ALTER TABLE readings ADD COLUMN anomaly TEXT;
CREATE TABLE accounts (
    account_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    billing_code TEXT NOT NULL,
    service_code TEXT NOT NULL,
    auto_create INTEGER NOT NULL DEFAULT 0,
    time_zone TEXT NOT NULL DEFAULT 'UTC'
);
CREATE TABLE product_groups (
    group_id INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id TEXT NOT NULL REFERENCES accounts (account_id),
    name TEXT NOT NULL,
    UNIQUE (account_id, name)
);
CREATE TABLE group_products (
    group_id INTEGER NOT NULL REFERENCES product_groups (group_id),
    serial TEXT NOT NULL,
    PRIMARY KEY (group_id, serial)
);
CREATE INDEX group_products_serial ON group_products (serial);
CREATE TABLE users (
    user_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    account_id TEXT NOT NULL REFERENCES accounts (account_id),
    role TEXT NOT NULL CHECK (role IN ('account_manager', 'product_administrator'))
);
CREATE TABLE user_products (
    user_id TEXT NOT NULL REFERENCES users (user_id),
    serial TEXT NOT NULL,
    PRIMARY KEY (user_id, serial)
);
CREATE TABLE kb_articles (
    article_id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    code TEXT,
    title TEXT NOT NULL,
    body TEXT NOT NULL DEFAULT ''
);
CREATE INDEX kb_articles_code ON kb_articles (code);
CREATE TABLE service_requests (
    request_id INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id TEXT,
    serial TEXT,
    kind TEXT NOT NULL,
    priority TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('open', 'closed')),
    opened_by TEXT NOT NULL,
    fingerprint TEXT,
    title TEXT NOT NULL,
    code TEXT,
    kb_article TEXT,
    occurrences INTEGER NOT NULL DEFAULT 1,
    first_seen_ms INTEGER NOT NULL,
    last_seen_ms INTEGER NOT NULL,
    opened_at_ms INTEGER NOT NULL,
    closed_at_ms INTEGER,
    close_reason TEXT
);
CREATE UNIQUE INDEX service_requests_one_open ON service_requests (serial, fingerprint)
    WHERE state = 'open' AND fingerprint IS NOT NULL;
CREATE INDEX service_requests_account ON service_requests (account_id, state);
CREATE INDEX service_requests_serial ON service_requests (serial, state);
CREATE TABLE request_events (
    event_id INTEGER PRIMARY KEY AUTOINCREMENT,
    request_id INTEGER NOT NULL REFERENCES service_requests (request_id),
    at_ms INTEGER NOT NULL,
    event TEXT NOT NULL,
    text TEXT NOT NULL
);
CREATE INDEX request_events_request ON request_events (request_id);
CREATE TABLE request_tracks (
    serial TEXT PRIMARY KEY,
    track TEXT NOT NULL,
    due_ms INTEGER
);
CREATE INDEX request_tracks_due ON request_tracks (due_ms);
CREATE TABLE outbox (
    outbox_id INTEGER PRIMARY KEY AUTOINCREMENT,
    request_id INTEGER NOT NULL,
    idempotency_key TEXT NOT NULL UNIQUE,
    payload TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_ms INTEGER NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending',
    last_error TEXT
);
CREATE INDEX outbox_state ON outbox (state, request_id, outbox_id);
