-- The knowledge centre (SQLite migration 15, PostgreSQL migration 13):
-- articles get a language and the models they apply to, and a full-text
-- vector in the article language's text-search configuration (title
-- weighted A, body B) with a GIN index.
ALTER TABLE kb_articles ADD COLUMN language TEXT NOT NULL DEFAULT 'en';
ALTER TABLE kb_articles ADD COLUMN updated_at_ms BIGINT NOT NULL DEFAULT 0;
UPDATE kb_articles SET code = UPPER(TRIM(code)) WHERE code IS NOT NULL;
ALTER TABLE kb_articles ADD COLUMN search tsvector GENERATED ALWAYS AS (
    setweight(to_tsvector(CASE language
        WHEN 'en' THEN 'english'::regconfig WHEN 'it' THEN 'italian'::regconfig
        WHEN 'de' THEN 'german'::regconfig WHEN 'fr' THEN 'french'::regconfig
        WHEN 'es' THEN 'spanish'::regconfig WHEN 'pt' THEN 'portuguese'::regconfig
        WHEN 'nl' THEN 'dutch'::regconfig ELSE 'simple'::regconfig END, title), 'A')
    || setweight(to_tsvector(CASE language
        WHEN 'en' THEN 'english'::regconfig WHEN 'it' THEN 'italian'::regconfig
        WHEN 'de' THEN 'german'::regconfig WHEN 'fr' THEN 'french'::regconfig
        WHEN 'es' THEN 'spanish'::regconfig WHEN 'pt' THEN 'portuguese'::regconfig
        WHEN 'nl' THEN 'dutch'::regconfig ELSE 'simple'::regconfig END, body), 'B')
) STORED;
CREATE INDEX kb_articles_search ON kb_articles USING GIN (search);
CREATE INDEX kb_articles_kind ON kb_articles (kind, language);
CREATE TABLE kb_article_models (
    article_id TEXT NOT NULL REFERENCES kb_articles (article_id) ON DELETE CASCADE,
    model TEXT NOT NULL,
    PRIMARY KEY (article_id, model)
);
CREATE INDEX kb_article_models_model ON kb_article_models (model, article_id);
CREATE INDEX products_model ON products (model);

-- A product's configuration (paper trays and their media, output bins,
-- finishers, duplex unit, options) as the agent last read it, as JSON.
CREATE TABLE product_configuration (
    serial TEXT PRIMARY KEY,
    components TEXT NOT NULL,
    seen_at_ms BIGINT NOT NULL,
    changed_at_ms BIGINT NOT NULL
);
