-- A product's supplies (toner, drums, waste toner) as the agent last read
-- them: the product page shows their levels.
CREATE TABLE product_supplies (
    serial TEXT PRIMARY KEY,
    supplies TEXT NOT NULL,
    seen_at_ms INTEGER NOT NULL
) WITHOUT ROWID;
