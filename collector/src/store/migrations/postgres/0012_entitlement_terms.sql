-- Typed entitlements (SQLite migration 14, PostgreSQL migration 12): a
-- product's terms (response hours within coverage hours, on site or
-- remote) as JSON; a request's due time, computed from them when it opens.
ALTER TABLE products ADD COLUMN terms TEXT;
ALTER TABLE service_requests ADD COLUMN due_at_ms BIGINT;
CREATE INDEX service_requests_due ON service_requests (state, due_at_ms);
