CREATE TABLE agents (
    agent_id TEXT PRIMARY KEY,
    version TEXT NOT NULL DEFAULT '',
    first_seen_ms INTEGER NOT NULL,
    last_seen_ms INTEGER NOT NULL,
    highest_seq INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE observations (
    agent_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    kind TEXT NOT NULL,
    serial TEXT NOT NULL,
    device_address TEXT NOT NULL,
    taken_at_ms INTEGER NOT NULL,
    received_at_ms INTEGER NOT NULL,
    body BLOB NOT NULL,
    PRIMARY KEY (agent_id, seq)
) WITHOUT ROWID;
CREATE TABLE products (
    serial TEXT PRIMARY KEY,
    vendor TEXT, model TEXT, firmware TEXT, mac TEXT, address TEXT,
    first_seen_ms INTEGER NOT NULL,
    last_seen_ms INTEGER NOT NULL
);
CREATE TABLE counter_current (
    serial TEXT NOT NULL,
    counter_id TEXT NOT NULL,
    value INTEGER NOT NULL,
    taken_at_ms INTEGER NOT NULL,
    PRIMARY KEY (serial, counter_id)
) WITHOUT ROWID;
CREATE TABLE readings (
    serial TEXT NOT NULL,
    counter_id TEXT NOT NULL,
    value INTEGER NOT NULL,
    taken_at_ms INTEGER NOT NULL,
    filed_at_ms INTEGER NOT NULL,
    agent_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    PRIMARY KEY (serial, counter_id, taken_at_ms, agent_id, seq)
) WITHOUT ROWID;
