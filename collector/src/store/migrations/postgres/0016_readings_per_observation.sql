-- Readings stored one row per observation: its counters, values, raw
-- values, states and anomalies as arrays in the order filed. PostgreSQL
-- keeps rows in a heap beside their indexes (SQLite's readings table is
-- its key's tree), and a row and an index entry for each counter was most
-- of what filing a batch cost: a batch of 500 observations of four
-- counters wrote 2,000 heap rows and 2,000 index entries, now 500 of each.
-- The index is on (serial, taken_at_ms) alone, a quarter of the size of the
-- old five-column primary key: every query on readings names the product
-- and most a time. A reading is filed once because its observation is (the
-- observations' primary key, in the same transaction).
-- `readings` stays, as a view with one row per counter as before, so every
-- query reads it as it did; the store inserts into reading_sets.
CREATE TABLE reading_sets (
    serial TEXT NOT NULL,
    taken_at_ms BIGINT NOT NULL,
    filed_at_ms BIGINT NOT NULL,
    agent_id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    counter_ids TEXT[] NOT NULL,
    vals BIGINT[] NOT NULL,
    raw_values BIGINT[] NOT NULL,
    states TEXT[] NOT NULL,
    anomalies TEXT[] NOT NULL
);
INSERT INTO reading_sets (serial, taken_at_ms, filed_at_ms, agent_id, seq, counter_ids, vals, raw_values, states, anomalies)
    SELECT serial, taken_at_ms, filed_at_ms, agent_id, seq,
        array_agg(counter_id ORDER BY counter_id), array_agg(value ORDER BY counter_id),
        array_agg(raw_value ORDER BY counter_id), array_agg(state ORDER BY counter_id),
        array_agg(anomaly ORDER BY counter_id)
    FROM readings GROUP BY serial, taken_at_ms, filed_at_ms, agent_id, seq;
DROP TABLE readings;
CREATE INDEX reading_sets_product_time ON reading_sets (serial, taken_at_ms);
CREATE VIEW readings AS
    SELECT r.serial, u.counter_id, u.value, r.taken_at_ms, r.filed_at_ms, r.agent_id, r.seq,
        u.raw_value, u.state, u.anomaly
    FROM reading_sets r
    CROSS JOIN LATERAL UNNEST(r.counter_ids, r.vals, r.raw_values, r.states, r.anomalies)
        AS u(counter_id, value, raw_value, state, anomaly);
