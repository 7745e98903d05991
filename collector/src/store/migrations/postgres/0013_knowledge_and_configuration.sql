-- The knowledge centre (SQLite migration 15, PostgreSQL migration 13):
-- articles get a language and the models they apply to, and a full-text
-- vector in the article language's text-search configuration (title
-- weighted A, body B) with a GIN index. `general`: the article applies to
-- every model (it names none).
ALTER TABLE kb_articles ADD COLUMN language TEXT NOT NULL DEFAULT 'en';
ALTER TABLE kb_articles ADD COLUMN general INTEGER NOT NULL DEFAULT 1;
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
-- The title's words alone: a word in an article's title outranks any number
-- of it in a body (weights A 1.0 and B 0.4 in ts_rank), so a one-word search
-- ranks the articles with it in their titles first, without reading every
-- article that merely mentions it.
ALTER TABLE kb_articles ADD COLUMN title_search tsvector GENERATED ALWAYS AS (
    to_tsvector(CASE language
        WHEN 'en' THEN 'english'::regconfig WHEN 'it' THEN 'italian'::regconfig
        WHEN 'de' THEN 'german'::regconfig WHEN 'fr' THEN 'french'::regconfig
        WHEN 'es' THEN 'spanish'::regconfig WHEN 'pt' THEN 'portuguese'::regconfig
        WHEN 'nl' THEN 'dutch'::regconfig ELSE 'simple'::regconfig END, title)
) STORED;
CREATE INDEX kb_articles_search ON kb_articles USING GIN (search);
CREATE INDEX kb_articles_title_search ON kb_articles USING GIN (title_search);
CREATE INDEX kb_articles_kind ON kb_articles (kind, language, title);
CREATE INDEX kb_articles_general ON kb_articles (general, kind, language);
CREATE INDEX kb_articles_code_bytes ON kb_articles (code COLLATE "C");
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

-- Request lists are read newest first, a page at a time, per company and
-- state: the indexes hold that order, so a page is a walk, not a sort.
DROP INDEX service_requests_account;
CREATE INDEX service_requests_account ON service_requests (account_id, state, request_id);
CREATE INDEX service_requests_account_all ON service_requests (account_id, request_id);
CREATE INDEX service_requests_state ON service_requests (state, request_id);
