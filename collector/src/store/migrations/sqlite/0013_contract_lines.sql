-- Contract lines (SQLite migration 13, PostgreSQL migration 11): per
-- company, what a contract covers (a product by serial, or a service), of
-- which kind, from when to when (ISO dates, the end inclusive; none: open).
CREATE TABLE contract_lines (
    line_id INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id TEXT NOT NULL REFERENCES accounts (account_id),
    contract_number TEXT NOT NULL,
    item TEXT NOT NULL,
    serial TEXT,
    service TEXT,
    kind TEXT NOT NULL,
    starts_on TEXT NOT NULL,
    ends_on TEXT,
    UNIQUE (account_id, contract_number, item)
);
CREATE INDEX contract_lines_serial ON contract_lines (serial);
