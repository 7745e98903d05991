-- The Activity panel's requests (SQLite migration 12, PostgreSQL migration
-- 10): what the customer writes when opening one (description, contact,
-- the product's location then), a move's destination, the operator's
-- status; who wrote each event (status updates and comments).
ALTER TABLE service_requests ADD COLUMN description TEXT NOT NULL DEFAULT '';
ALTER TABLE service_requests ADD COLUMN contact_name TEXT NOT NULL DEFAULT '';
ALTER TABLE service_requests ADD COLUMN contact_phone TEXT NOT NULL DEFAULT '';
ALTER TABLE service_requests ADD COLUMN location TEXT NOT NULL DEFAULT '';
ALTER TABLE service_requests ADD COLUMN destination_address TEXT;
ALTER TABLE service_requests ADD COLUMN destination_location TEXT;
ALTER TABLE service_requests ADD COLUMN status TEXT NOT NULL DEFAULT 'new';
ALTER TABLE request_events ADD COLUMN author TEXT;
