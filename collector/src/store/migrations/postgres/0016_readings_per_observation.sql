-- Readings found by product and time through a narrower index. PostgreSQL
-- keeps rows in a heap beside their indexes (SQLite's readings table is the
-- index itself): the primary key on (serial, taken_at_ms, counter_id,
-- agent_id, seq) repeated most of each row in a second tree four times the
-- size of this one, and every batch wrote a leaf page of it per product.
-- On (serial, taken_at_ms) an observation's counters are one entry with
-- four row pointers. Every query on readings names the product and most a
-- time. A reading stays filed once: its observation's (agent_id, seq) is
-- the primary key of observations, filed in the same transaction.
ALTER TABLE readings DROP CONSTRAINT readings_pkey;
CREATE INDEX readings_product_time ON readings (serial, taken_at_ms);
