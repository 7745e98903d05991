-- The knowledge centre (SQLite migration 15, PostgreSQL migration 13):
-- articles get a language and the models they apply to, and a full-text
-- index (FTS5, Porter stemming over Unicode words, diacritics folded)
-- ranked with BM25. The table gets an integer key: an external-content
-- FTS5 index needs a rowid that VACUUM cannot renumber. `general`: the
-- article applies to every model (it names none).
CREATE TABLE kb_articles_keyed (
    seq INTEGER PRIMARY KEY,
    article_id TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    code TEXT,
    language TEXT NOT NULL DEFAULT 'en',
    title TEXT NOT NULL,
    body TEXT NOT NULL DEFAULT '',
    general INTEGER NOT NULL DEFAULT 1,
    updated_at_ms INTEGER NOT NULL DEFAULT 0
);
INSERT INTO kb_articles_keyed (article_id, kind, code, title, body)
    SELECT article_id, kind, UPPER(TRIM(code)), title, body FROM kb_articles ORDER BY article_id;
DROP TABLE kb_articles;
ALTER TABLE kb_articles_keyed RENAME TO kb_articles;
CREATE INDEX kb_articles_code ON kb_articles (code);
CREATE INDEX kb_articles_kind ON kb_articles (kind, language, title);
CREATE INDEX kb_articles_general ON kb_articles (general, kind, language);
CREATE VIRTUAL TABLE kb_text USING fts5(
    title, body, content = 'kb_articles', content_rowid = 'seq',
    tokenize = 'porter unicode61 remove_diacritics 2'
);
INSERT INTO kb_text (kb_text) VALUES ('rebuild');
CREATE TRIGGER kb_text_insert AFTER INSERT ON kb_articles BEGIN
    INSERT INTO kb_text (rowid, title, body) VALUES (new.seq, new.title, new.body);
END;
CREATE TRIGGER kb_text_delete AFTER DELETE ON kb_articles BEGIN
    INSERT INTO kb_text (kb_text, rowid, title, body) VALUES ('delete', old.seq, old.title, old.body);
END;
CREATE TRIGGER kb_text_update AFTER UPDATE ON kb_articles BEGIN
    INSERT INTO kb_text (kb_text, rowid, title, body) VALUES ('delete', old.seq, old.title, old.body);
    INSERT INTO kb_text (rowid, title, body) VALUES (new.seq, new.title, new.body);
END;
CREATE TABLE kb_article_models (
    article_id TEXT NOT NULL,
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
    seen_at_ms INTEGER NOT NULL,
    changed_at_ms INTEGER NOT NULL
);

-- Request lists are read newest first, a page at a time, per company and
-- state: the indexes hold that order, so a page is a walk, not a sort.
DROP INDEX service_requests_account;
CREATE INDEX service_requests_account ON service_requests (account_id, state, request_id);
CREATE INDEX service_requests_account_all ON service_requests (account_id, request_id);
CREATE INDEX service_requests_state ON service_requests (state, request_id);
