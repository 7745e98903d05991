CREATE TABLE counters (
    counter_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    unit TEXT NOT NULL,
    oid TEXT NOT NULL,
    wraps_at_bits INTEGER NOT NULL
) WITHOUT ROWID;
