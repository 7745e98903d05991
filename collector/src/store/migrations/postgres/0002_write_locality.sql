-- Write locality (SQLite migration 4): readings keyed product, time,
-- counter; current values one row per product.
ALTER TABLE readings DROP CONSTRAINT readings_pkey;
ALTER TABLE readings ADD PRIMARY KEY (serial, taken_at_ms, counter_id, agent_id, seq);
CREATE TABLE product_current (
    serial TEXT PRIMARY KEY,
    counters TEXT NOT NULL,
    latest_ms BIGINT NOT NULL
);
INSERT INTO product_current (serial, counters, latest_ms)
    SELECT serial, json_object_agg(counter_id, json_build_array(value, taken_at_ms))::text, max(taken_at_ms)
    FROM counter_current GROUP BY serial;
DROP TABLE counter_current;
