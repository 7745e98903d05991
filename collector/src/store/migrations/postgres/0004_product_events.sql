-- Events of a product that are not requests (SQLite migration 6).
CREATE TABLE product_events (
    event_id BIGSERIAL PRIMARY KEY,
    serial TEXT NOT NULL,
    at_ms BIGINT NOT NULL,
    event TEXT NOT NULL,
    text TEXT NOT NULL
);
CREATE INDEX product_events_serial ON product_events (serial, at_ms);
