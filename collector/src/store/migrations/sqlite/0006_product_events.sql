-- Events of a product that are not requests: an address change (the agent
-- followed the printer by its serial), a configuration change.
CREATE TABLE product_events (
    event_id INTEGER PRIMARY KEY AUTOINCREMENT,
    serial TEXT NOT NULL,
    at_ms INTEGER NOT NULL,
    event TEXT NOT NULL,
    text TEXT NOT NULL
);
CREATE INDEX product_events_serial ON product_events (serial, at_ms);
