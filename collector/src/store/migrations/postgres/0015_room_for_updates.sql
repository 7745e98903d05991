-- Every batch updates its products' rows (address, last seen) and their
-- current values. With room left on each page, PostgreSQL updates them in
-- place (HOT) without touching their indexes; full pages made most of these
-- updates new index entries in every index of the table.
ALTER TABLE products SET (fillfactor = 70);
ALTER TABLE product_current SET (fillfactor = 70);
