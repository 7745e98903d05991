CREATE TABLE agents (
    agent_id TEXT PRIMARY KEY,
    version TEXT NOT NULL DEFAULT '',
    first_seen_ms BIGINT NOT NULL,
    last_seen_ms BIGINT NOT NULL,
    highest_seq BIGINT NOT NULL DEFAULT 0,
    account_id TEXT,
    held_seq BIGINT NOT NULL DEFAULT 0
);
CREATE TABLE observations (
    agent_id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    kind TEXT NOT NULL,
    serial TEXT NOT NULL,
    device_address TEXT NOT NULL,
    taken_at_ms BIGINT NOT NULL,
    received_at_ms BIGINT NOT NULL,
    body BYTEA NOT NULL,
    PRIMARY KEY (agent_id, seq)
);
CREATE TABLE products (
    serial TEXT PRIMARY KEY,
    vendor TEXT, model TEXT, firmware TEXT, mac TEXT, address TEXT,
    first_seen_ms BIGINT NOT NULL,
    last_seen_ms BIGINT NOT NULL,
    account_id TEXT,
    agent_id TEXT,
    alt_name TEXT,
    site_address TEXT,
    location TEXT,
    administrator TEXT,
    emaintenance BIGINT NOT NULL DEFAULT 1,
    billing_day BIGINT,
    entitlements TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX products_account ON products (account_id, serial);
CREATE TABLE counter_current (
    serial TEXT NOT NULL,
    counter_id TEXT NOT NULL,
    value BIGINT NOT NULL,
    taken_at_ms BIGINT NOT NULL,
    PRIMARY KEY (serial, counter_id)
);
CREATE TABLE readings (
    serial TEXT NOT NULL,
    counter_id TEXT NOT NULL,
    value BIGINT NOT NULL,
    taken_at_ms BIGINT NOT NULL,
    filed_at_ms BIGINT NOT NULL,
    agent_id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    raw_value BIGINT,
    state TEXT NOT NULL DEFAULT 'filed',
    anomaly TEXT,
    PRIMARY KEY (serial, counter_id, taken_at_ms, agent_id, seq)
);
CREATE TABLE counters (
    counter_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    unit TEXT NOT NULL,
    oid TEXT NOT NULL,
    wraps_at_bits BIGINT NOT NULL
);
CREATE TABLE accounts (
    account_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    billing_code TEXT NOT NULL,
    service_code TEXT NOT NULL,
    auto_create BIGINT NOT NULL DEFAULT 0,
    time_zone TEXT NOT NULL DEFAULT 'UTC'
);
CREATE TABLE product_groups (
    group_id BIGSERIAL PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts (account_id),
    name TEXT NOT NULL,
    UNIQUE (account_id, name)
);
CREATE TABLE group_products (
    group_id BIGINT NOT NULL REFERENCES product_groups (group_id),
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
    request_id BIGSERIAL PRIMARY KEY,
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
    occurrences BIGINT NOT NULL DEFAULT 1,
    first_seen_ms BIGINT NOT NULL,
    last_seen_ms BIGINT NOT NULL,
    opened_at_ms BIGINT NOT NULL,
    closed_at_ms BIGINT,
    close_reason TEXT
);
CREATE UNIQUE INDEX service_requests_one_open ON service_requests (serial, fingerprint)
    WHERE state = 'open' AND fingerprint IS NOT NULL;
CREATE INDEX service_requests_account ON service_requests (account_id, state);
CREATE INDEX service_requests_serial ON service_requests (serial, state);
CREATE TABLE request_events (
    event_id BIGSERIAL PRIMARY KEY,
    request_id BIGINT NOT NULL REFERENCES service_requests (request_id),
    at_ms BIGINT NOT NULL,
    event TEXT NOT NULL,
    text TEXT NOT NULL
);
CREATE INDEX request_events_request ON request_events (request_id);
CREATE TABLE request_tracks (
    serial TEXT PRIMARY KEY,
    track TEXT NOT NULL,
    due_ms BIGINT
);
CREATE INDEX request_tracks_due ON request_tracks (due_ms);
CREATE TABLE outbox (
    outbox_id BIGSERIAL PRIMARY KEY,
    request_id BIGINT NOT NULL,
    idempotency_key TEXT NOT NULL UNIQUE,
    payload TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    next_attempt_ms BIGINT NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending',
    last_error TEXT
);
CREATE INDEX outbox_state ON outbox (state, request_id, outbox_id);
