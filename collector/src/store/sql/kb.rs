//! The knowledge centre: articles with their languages and models, the
//! full-text search (SQLite FTS5 with BM25, PostgreSQL `tsvector` with
//! `ts_rank` in each article's language), written all or nothing.

use crate::model::{
    search_languages, text_search_config, Article, ArticleHit, ArticleQuery, ArticleViewer,
};
use crate::store::{Refusal, StoreError};
use sqlx::{QueryBuilder, Row};
use std::collections::BTreeMap;

use super::rows::{administered_by, in_list};
use super::{Backend, Db, BACKEND};

const COLS: &str = "a.article_id, a.kind, a.code, a.language, a.title, a.body";

fn article_from(r: &<Db as sqlx::Database>::Row) -> Article {
    Article {
        id: r.get(0),
        kind: r.get(1),
        code: r.get(2),
        language: r.get(3),
        models: Vec::new(),
        title: r.get(4),
        body: r.get(5),
    }
}

/// Codes are printable ASCII; a prefix range [code, code + DEL) holds every
/// code that starts with it, in byte order (SQLite's BINARY collation,
/// PostgreSQL's "C").
fn code_range(code: &str) -> Option<(String, String)> {
    let c = crate::model::normal_code(code);
    (!c.is_empty() && c.bytes().all(|b| b.is_ascii_graphic())).then(|| {
        let hi = format!("{c}\u{7f}");
        (c, hi)
    })
}

fn sqlite() -> bool {
    BACKEND == "sqlite"
}

/// The code column compared byte by byte.
fn code_col() -> &'static str {
    if sqlite() {
        "a.code"
    } else {
        "a.code COLLATE \"C\""
    }
}

/// The models a viewer's articles may name: None for everyone (operators),
/// else those of the products the viewer sees.
type ViewerModels = Option<Vec<String>>;

/// The filters every read applies: languages, kind, model, viewer.
struct Filters<'a> {
    langs: &'a [String],
    kind: Option<&'a str>,
    model: Option<&'a str>,
    models: &'a ViewerModels,
}

impl<'a> Filters<'a> {
    /// `AND` each filter on the articles aliased `a`.
    fn push(&self, qb: &mut QueryBuilder<'a, Db>) {
        qb.push(" AND a.language IN ");
        in_list(qb, self.langs.iter().map(String::as_str));
        if let Some(k) = self.kind {
            qb.push(" AND a.kind = ").push_bind(k);
        }
        const NAMED: &str = "EXISTS (SELECT 1 FROM kb_article_models m \
                             WHERE m.article_id = a.article_id AND m.model";
        if let Some(m) = self.model {
            qb.push(format!(" AND (a.general = 1 OR {NAMED} = "))
                .push_bind(m)
                .push("))");
        }
        if let Some(ms) = self.models {
            if ms.is_empty() {
                qb.push(" AND a.general = 1");
            } else {
                qb.push(format!(" AND (a.general = 1 OR {NAMED} IN "));
                in_list(qb, ms.iter().map(String::as_str));
                qb.push("))");
            }
        }
    }
}

/// How the words of a search combine.
#[derive(Clone, Copy, PartialEq)]
enum Words {
    All,
    Any,
    /// All of them in the title (PostgreSQL's `title_search`).
    InTitle,
}

impl Backend {
    /// The models of the products a customer sees (None: an operator).
    async fn viewer_models(&self, viewer: ArticleViewer<'_>) -> Result<ViewerModels, StoreError> {
        let Some(accounts) = viewer.accounts else {
            return Ok(None);
        };
        if accounts.is_empty() {
            return Ok(Some(Vec::new()));
        }
        let mut qb = QueryBuilder::<Db>::new(
            "SELECT DISTINCT p.model FROM products p WHERE p.model IS NOT NULL AND p.account_id IN ",
        );
        in_list(&mut qb, accounts.iter().map(String::as_str));
        if let Some(u) = viewer.admin {
            qb.push(" AND p.serial IN ");
            administered_by(&mut qb, u);
        }
        qb.push(" ORDER BY p.model LIMIT 1000");
        let rows = qb
            .build()
            .fetch_all(&self.pool)
            .await
            .map_err(|e| self.err(e))?;
        Ok(Some(rows.iter().map(|r| r.get(0)).collect()))
    }

    /// Articles found by `q`, best first: the exact code, then codes that
    /// start with it, then by text rank (titles weigh more than bodies);
    /// without code or text, by title. Articles with every word rank; when
    /// none has them all, those with any.
    pub async fn search_articles(
        &self,
        q: &ArticleQuery,
        viewer: ArticleViewer<'_>,
    ) -> Result<Vec<ArticleHit>, StoreError> {
        let models = self.viewer_models(viewer).await?;
        let hits = self.search_with(q, &models, Words::All).await?;
        if !hits.is_empty() || q.text.len() < 2 {
            return Ok(hits);
        }
        // Past the first page, "all words" may have run out rather than
        // found nothing: only when none has them all do any words count.
        if q.offset > 0 {
            let first = ArticleQuery {
                offset: 0,
                limit: 1,
                ..q.clone()
            };
            if !self
                .search_with(&first, &models, Words::All)
                .await?
                .is_empty()
            {
                return Ok(hits);
            }
        }
        self.search_with(q, &models, Words::Any).await
    }

    /// One search: the code's articles (exact, then by code), then the
    /// text's (by rank), each its own indexed query, merged here; or, with
    /// neither, every article by title.
    async fn search_with(
        &self,
        q: &ArticleQuery,
        models: &ViewerModels,
        words: Words,
    ) -> Result<Vec<ArticleHit>, StoreError> {
        let langs = search_languages(&q.languages);
        let range = q.code.as_deref().and_then(code_range);
        if q.code.is_some() && range.is_none() && q.text.is_empty() {
            return Ok(Vec::new());
        }
        let need = i64::from(q.offset) + i64::from(q.limit.clamp(1, 200));
        let filters = Filters {
            langs: &langs,
            kind: q.kind.as_deref(),
            model: q.model.as_deref(),
            models,
        };
        let mut hits: Vec<ArticleHit> = Vec::new();
        if let Some((c, hi)) = &range {
            hits = self.code_hits(c, hi, &filters, need).await?;
        }
        if !q.text.is_empty() {
            let text = self
                .text_hits(&q.text, words, &filters, need + hits.len() as i64)
                .await?;
            for h in text {
                if !hits.iter().any(|x| x.article.id == h.article.id) {
                    hits.push(h);
                }
            }
        }
        if range.is_none() && q.text.is_empty() {
            hits = self.titled(&filters, need).await?;
        }
        let mut page: Vec<ArticleHit> = hits
            .into_iter()
            .skip(q.offset as usize)
            .take(q.limit.clamp(1, 200) as usize)
            .collect();
        self.attach_models(page.iter_mut().map(|h| &mut h.article))
            .await?;
        Ok(page)
    }

    async fn code_hits(
        &self,
        code: &str,
        hi: &str,
        f: &Filters<'_>,
        need: i64,
    ) -> Result<Vec<ArticleHit>, StoreError> {
        let mut qb = QueryBuilder::<Db>::new(format!("SELECT {COLS}, CASE WHEN a.code = "));
        qb.push_bind(code.to_string())
            .push(format!(
                " THEN 0 ELSE 1 END AS bucket FROM kb_articles a WHERE {} >= ",
                code_col()
            ))
            .push_bind(code.to_string())
            .push(format!(" AND {} < ", code_col()))
            .push_bind(hi.to_string());
        f.push(&mut qb);
        qb.push(" ORDER BY bucket, a.code, a.article_id LIMIT ")
            .push_bind(need);
        self.fetch_hits(qb, |r| {
            let exact = r.get::<i32, _>(6) == 0;
            (if exact { "code" } else { "code_prefix" }, 0.0)
        })
        .await
    }

    /// Runs a query of `COLS` and one more column, `why` telling each
    /// row's match and score.
    async fn fetch_hits(
        &self,
        mut qb: QueryBuilder<'_, Db>,
        why: impl Fn(&<Db as sqlx::Database>::Row) -> (&'static str, f64),
    ) -> Result<Vec<ArticleHit>, StoreError> {
        let rows = qb
            .build()
            .fetch_all(&self.pool)
            .await
            .map_err(|e| self.err(e))?;
        Ok(rows
            .iter()
            .map(|r| {
                let (matched, score) = why(r);
                ArticleHit {
                    article: article_from(r),
                    matched: matched.into(),
                    score,
                }
            })
            .collect())
    }

    /// Articles by text rank. The index ranks its best `cap` matches alone
    /// first (a common word matches much of the corpus, and joining every
    /// match to its article costs more than ranking it); only when the
    /// filters leave too few of those does every match count.
    async fn text_hits(
        &self,
        words: &[String],
        how: Words,
        f: &Filters<'_>,
        need: i64,
    ) -> Result<Vec<ArticleHit>, StoreError> {
        if !sqlite() && words.len() == 1 {
            // One word: the articles with it in their titles rank above all
            // others (see the migration); enough of them make the page.
            let titled = self.ranked(words, Words::InTitle, f, need, None).await?;
            if titled.len() as i64 >= need {
                return Ok(titled);
            }
        }
        let cap = (need * 4 + 100).min(20_000);
        let hits = self.ranked(words, how, f, need, Some(cap)).await?;
        if (hits.len() as i64) < need {
            return self.ranked(words, how, f, need, None).await;
        }
        Ok(hits)
    }

    async fn ranked(
        &self,
        words: &[String],
        how: Words,
        f: &Filters<'_>,
        need: i64,
        cap: Option<i64>,
    ) -> Result<Vec<ArticleHit>, StoreError> {
        let (quote, sep) = match (sqlite(), how) {
            (true, Words::All | Words::InTitle) => (true, " AND "),
            (true, Words::Any) => (true, " OR "),
            (false, Words::All | Words::InTitle) => (false, " & "),
            (false, Words::Any) => (false, " | "),
        };
        let matched = if how == Words::InTitle {
            "k.title_search"
        } else {
            "k.search"
        };
        let text = words
            .iter()
            .map(|w| if quote { format!("\"{w}\"") } else { w.clone() })
            .collect::<Vec<_>>()
            .join(sep);
        let mut qb = QueryBuilder::<Db>::new(format!("SELECT {COLS}, t.score FROM ("));
        if sqlite() {
            // BM25 is negative: lower ranks first.
            qb.push(
                "SELECT rowid AS seq, bm25(kb_text, 10.0, 1.0) AS score FROM kb_text \
                 WHERE kb_text MATCH ",
            )
            .push_bind(text);
            if let Some(c) = cap {
                qb.push(" ORDER BY score LIMIT ").push_bind(c);
            }
            qb.push(") t JOIN kb_articles a ON a.seq = t.seq WHERE 1 = 1");
        } else {
            // Each language's articles against the words stemmed its way;
            // the rank negated so that lower ranks first here too.
            qb.push("SELECT k.article_id, CAST(CASE");
            for l in f.langs {
                qb.push(" WHEN k.language = ")
                    .push_bind(l.clone())
                    .push(format!(
                        " THEN -ts_rank(k.search, to_tsquery('{}', ",
                        text_search_config(l)
                    ))
                    .push_bind(text.clone())
                    .push("))");
            }
            qb.push(" ELSE 0 END AS DOUBLE PRECISION) AS score FROM kb_articles k WHERE 1 = 0");
            for l in f.langs {
                qb.push(" OR (k.language = ")
                    .push_bind(l.clone())
                    .push(format!(
                        " AND {matched} @@ to_tsquery('{}', ",
                        text_search_config(l)
                    ))
                    .push_bind(text.clone())
                    .push("))");
            }
            if let Some(c) = cap {
                qb.push(" ORDER BY score LIMIT ").push_bind(c);
            }
            qb.push(") t JOIN kb_articles a ON a.article_id = t.article_id WHERE 1 = 1");
        }
        f.push(&mut qb);
        qb.push(" ORDER BY t.score, a.article_id LIMIT ")
            .push_bind(need);
        self.fetch_hits(qb, |r| ("text", -r.get::<f64, _>(6))).await
    }

    /// Every article the filters pass, by title.
    async fn titled(&self, f: &Filters<'_>, need: i64) -> Result<Vec<ArticleHit>, StoreError> {
        let mut qb =
            QueryBuilder::<Db>::new(format!("SELECT {COLS}, 0 FROM kb_articles a WHERE 1 = 1"));
        f.push(&mut qb);
        qb.push(" ORDER BY a.title, a.article_id LIMIT ")
            .push_bind(need);
        self.fetch_hits(qb, |_| ("all", 0.0)).await
    }

    /// A product page's knowledge centre in one statement: the first
    /// `per_kind` articles of each kind for `model` (and every model) by
    /// title, and how many of each kind there are. For anyone who sees a
    /// product of the model.
    pub async fn article_categories(
        &self,
        model: Option<&str>,
        languages: &[String],
        per_kind: i64,
    ) -> Result<(Vec<Article>, BTreeMap<String, i64>), StoreError> {
        let langs = search_languages(languages);
        let mut qb = QueryBuilder::<Db>::new(format!(
            "SELECT * FROM (SELECT {COLS},
                 CAST(ROW_NUMBER() OVER (PARTITION BY a.kind ORDER BY a.title, a.article_id) AS BIGINT) AS rn,
                 CAST(COUNT(*) OVER (PARTITION BY a.kind) AS BIGINT) AS n
             FROM kb_articles a WHERE 1 = 1"
        ));
        Filters {
            langs: &langs,
            kind: None,
            model,
            models: &None,
        }
        .push(&mut qb);
        qb.push(") t WHERE rn <= ")
            .push_bind(per_kind)
            .push(" ORDER BY kind, rn");
        let rows = qb
            .build()
            .fetch_all(&self.pool)
            .await
            .map_err(|e| self.err(e))?;
        let mut counts = BTreeMap::new();
        let articles = rows
            .iter()
            .map(|r| {
                counts.insert(r.get::<String, _>(1), r.get::<i64, _>(7));
                article_from(r)
            })
            .collect();
        Ok((articles, counts))
    }

    /// How many articles of each kind the viewer finds for a model.
    pub async fn article_counts(
        &self,
        model: Option<&str>,
        languages: &[String],
        viewer: ArticleViewer<'_>,
    ) -> Result<BTreeMap<String, i64>, StoreError> {
        let langs = search_languages(languages);
        let models = self.viewer_models(viewer).await?;
        let mut qb =
            QueryBuilder::<Db>::new("SELECT a.kind, COUNT(*) FROM kb_articles a WHERE 1 = 1");
        Filters {
            langs: &langs,
            kind: None,
            model,
            models: &models,
        }
        .push(&mut qb);
        qb.push(" GROUP BY a.kind");
        let rows = qb
            .build()
            .fetch_all(&self.pool)
            .await
            .map_err(|e| self.err(e))?;
        Ok(rows
            .iter()
            .map(|r| (r.get::<String, _>(0), r.get::<i64, _>(1)))
            .collect())
    }

    pub async fn article(
        &self,
        id: &str,
        viewer: ArticleViewer<'_>,
    ) -> Result<Option<Article>, StoreError> {
        let langs: Vec<String> = crate::model::ARTICLE_LANGUAGES
            .iter()
            .map(|l| l.to_string())
            .collect();
        let mut qb = QueryBuilder::<Db>::new(format!(
            "SELECT {COLS} FROM kb_articles a WHERE a.article_id = "
        ));
        qb.push_bind(id);
        let models = self.viewer_models(viewer).await?;
        Filters {
            langs: &langs,
            kind: None,
            model: None,
            models: &models,
        }
        .push(&mut qb);
        let row = qb
            .build()
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| self.err(e))?;
        let mut a = row.as_ref().map(article_from);
        self.attach_models(a.iter_mut()).await?;
        Ok(a)
    }

    async fn attach_models<'a>(
        &self,
        articles: impl Iterator<Item = &'a mut Article>,
    ) -> Result<(), StoreError> {
        let mut by_id: BTreeMap<String, &mut Article> =
            articles.map(|a| (a.id.clone(), a)).collect();
        if by_id.is_empty() {
            return Ok(());
        }
        let mut qb = QueryBuilder::<Db>::new(
            "SELECT article_id, model FROM kb_article_models WHERE article_id IN ",
        );
        in_list(&mut qb, by_id.keys().map(String::as_str));
        qb.push(" ORDER BY article_id, model");
        let rows = qb
            .build()
            .fetch_all(&self.pool)
            .await
            .map_err(|e| self.err(e))?;
        for r in rows {
            let id: String = r.get(0);
            if let Some(a) = by_id.get_mut(&id) {
                a.models.push(r.get(1));
            }
        }
        Ok(())
    }

    /// Writes articles (new, or replacing the one with the same id) in one
    /// transaction: every one is checked first, and none is written unless
    /// all are good (the bad one named by its position and id).
    pub async fn put_articles(&self, articles: &[Article]) -> Result<Vec<Article>, StoreError> {
        let mut checked = Vec::with_capacity(articles.len());
        for (i, a) in articles.iter().enumerate() {
            let c = a.checked().map_err(|m| {
                StoreError::refused(
                    Refusal::InvalidArticle,
                    format!("article {} ({:?}): {m}", i + 1, a.id),
                )
            })?;
            checked.push(c);
        }
        let now = chrono::Utc::now().timestamp_millis();
        let mut tx = self.begin_write().await?;
        for a in &checked {
            sqlx::query(
                "INSERT INTO kb_articles (article_id, kind, code, language, title, body, general, updated_at_ms)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                 ON CONFLICT (article_id) DO UPDATE SET kind = excluded.kind, code = excluded.code,
                 language = excluded.language, title = excluded.title, body = excluded.body,
                 general = excluded.general, updated_at_ms = excluded.updated_at_ms",
            )
            .bind(&a.id)
            .bind(&a.kind)
            .bind(&a.code)
            .bind(&a.language)
            .bind(&a.title)
            .bind(&a.body)
            .bind(i32::from(a.models.is_empty()))
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(|e| self.err(e))?;
            sqlx::query("DELETE FROM kb_article_models WHERE article_id = $1")
                .bind(&a.id)
                .execute(&mut *tx)
                .await
                .map_err(|e| self.err(e))?;
            for m in &a.models {
                sqlx::query("INSERT INTO kb_article_models (article_id, model) VALUES ($1, $2)")
                    .bind(&a.id)
                    .bind(m)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| self.err(e))?;
            }
        }
        tx.commit().await.map_err(|e| self.err(e))?;
        Ok(checked)
    }

    pub async fn put_article(&self, a: &Article) -> Result<Article, StoreError> {
        let mut v = self.put_articles(std::slice::from_ref(a)).await?;
        v.pop()
            .ok_or_else(|| StoreError::refused(Refusal::InvalidArticle, "no article given"))
    }

    /// Deletes an article; false when there was none.
    pub async fn delete_article(&self, id: &str) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        sqlx::query("DELETE FROM kb_article_models WHERE article_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(|e| self.err(e))?;
        let n = sqlx::query("DELETE FROM kb_articles WHERE article_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(|e| self.err(e))?
            .rows_affected();
        tx.commit().await.map_err(|e| self.err(e))?;
        Ok(n > 0)
    }
}
