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

/// `AND` the filters every read applies: languages, kind, model, viewer.
fn push_filters<'a>(
    qb: &mut QueryBuilder<'a, Db>,
    langs: &'a [String],
    kind: Option<&'a str>,
    model: Option<&'a str>,
    viewer: ArticleViewer<'a>,
) {
    qb.push(" AND a.language IN ");
    in_list(qb, langs.iter().map(String::as_str));
    if let Some(k) = kind {
        qb.push(" AND a.kind = ").push_bind(k);
    }
    const GENERAL: &str =
        "NOT EXISTS (SELECT 1 FROM kb_article_models m WHERE m.article_id = a.article_id)";
    if let Some(m) = model {
        qb.push(format!(" AND ({GENERAL} OR EXISTS (SELECT 1 FROM kb_article_models m WHERE m.article_id = a.article_id AND m.model = "))
            .push_bind(m)
            .push("))");
    }
    if let Some(accounts) = viewer.accounts {
        qb.push(format!(
            " AND ({GENERAL} OR EXISTS (SELECT 1 FROM kb_article_models m JOIN products p \
             ON p.model = m.model WHERE m.article_id = a.article_id AND p.account_id IN "
        ));
        if accounts.is_empty() {
            qb.push("(NULL)");
        } else {
            in_list(qb, accounts.iter().map(String::as_str));
        }
        if let Some(u) = viewer.admin {
            qb.push(" AND p.serial IN ");
            administered_by(qb, u);
        }
        qb.push("))");
    }
}

impl Backend {
    /// Articles found by `q`, best first: the exact code, then codes that
    /// start with it, then by text rank (titles weigh more than bodies);
    /// without code or text, by title.
    pub async fn search_articles(
        &self,
        q: &ArticleQuery,
        viewer: ArticleViewer<'_>,
    ) -> Result<Vec<ArticleHit>, StoreError> {
        let langs = search_languages(&q.languages);
        let range = q.code.as_deref().and_then(code_range);
        if q.code.is_some() && range.is_none() && q.text.is_empty() {
            return Ok(Vec::new());
        }
        let text = (!q.text.is_empty()).then(|| {
            if sqlite() {
                q.text
                    .iter()
                    .map(|w| format!("\"{w}\""))
                    .collect::<Vec<_>>()
                    .join(" OR ")
            } else {
                q.text.join(" | ")
            }
        });
        let mut qb = QueryBuilder::<Db>::new("");
        if sqlite() && text.is_some() {
            qb.push(
                "WITH t AS MATERIALIZED (SELECT rowid AS seq, bm25(kb_text, 10.0, 1.0) AS score \
                 FROM kb_text WHERE kb_text MATCH ",
            )
            .push_bind(text.clone().unwrap_or_default())
            .push(") ");
        }
        qb.push(format!("SELECT {COLS}, "));
        match &range {
            Some((c, hi)) => {
                qb.push("CASE WHEN a.code = ")
                    .push_bind(c.clone())
                    .push(format!(" THEN 0 WHEN {} >= ", code_col()))
                    .push_bind(c.clone())
                    .push(format!(" AND {} < ", code_col()))
                    .push_bind(hi.clone())
                    .push(" THEN 1 ELSE 2 END");
            }
            None => {
                qb.push("2");
            }
        }
        qb.push(" AS bucket, ");
        // Lower scores rank first on both backends (BM25 is negative).
        match (&text, sqlite()) {
            (None, _) => {
                qb.push("CAST(0.0 AS DOUBLE PRECISION) AS score FROM kb_articles a WHERE 1 = 1");
            }
            (Some(_), true) => {
                qb.push("COALESCE(t.score, 0.0) AS score FROM kb_articles a LEFT JOIN t ON t.seq = a.seq WHERE 1 = 1");
            }
            (Some(words), false) => {
                qb.push("CASE");
                for l in &langs {
                    let cfg = text_search_config(l);
                    qb.push(" WHEN a.language = ")
                        .push_bind(l.clone())
                        .push(format!(
                            " THEN CAST(-ts_rank(a.search, to_tsquery('{cfg}', "
                        ))
                        .push_bind(words.clone())
                        .push(")) AS DOUBLE PRECISION)");
                }
                qb.push(" ELSE CAST(0.0 AS DOUBLE PRECISION) END AS score FROM kb_articles a WHERE 1 = 1");
            }
        }
        // Which articles are candidates: the code's range, the text's matches.
        if range.is_some() || text.is_some() {
            qb.push(" AND (1 = 0");
            if let Some((c, hi)) = &range {
                qb.push(format!(" OR ({} >= ", code_col()))
                    .push_bind(c.clone())
                    .push(format!(" AND {} < ", code_col()))
                    .push_bind(hi.clone())
                    .push(")");
            }
            if let Some(words) = &text {
                if sqlite() {
                    qb.push(" OR a.seq IN (SELECT seq FROM t)");
                } else {
                    for l in &langs {
                        let cfg = text_search_config(l);
                        qb.push(" OR (a.language = ")
                            .push_bind(l.clone())
                            .push(format!(" AND a.search @@ to_tsquery('{cfg}', "))
                            .push_bind(words.clone())
                            .push("))");
                    }
                }
            }
            qb.push(")");
        }
        push_filters(
            &mut qb,
            &langs,
            q.kind.as_deref(),
            q.model.as_deref(),
            viewer,
        );
        if range.is_none() && text.is_none() {
            qb.push(" ORDER BY a.title, a.article_id");
        } else {
            qb.push(" ORDER BY bucket, score, a.article_id");
        }
        qb.push(" LIMIT ")
            .push_bind(i64::from(q.limit.clamp(1, 200)))
            .push(" OFFSET ")
            .push_bind(i64::from(q.offset));
        let rows = qb
            .build()
            .fetch_all(&self.pool)
            .await
            .map_err(|e| self.err(e))?;
        let mut hits: Vec<ArticleHit> = rows
            .iter()
            .map(|r| {
                let bucket: i32 = r.get(6);
                let score: f64 = r.get(7);
                ArticleHit {
                    article: article_from(r),
                    matched: match (bucket, &text) {
                        (0, _) => "code",
                        (1, _) => "code_prefix",
                        (_, Some(_)) => "text",
                        _ => "all",
                    }
                    .into(),
                    score: -score,
                }
            })
            .collect();
        self.attach_models(hits.iter_mut().map(|h| &mut h.article))
            .await?;
        Ok(hits)
    }

    /// How many articles of each kind the viewer finds for a model.
    pub async fn article_counts(
        &self,
        model: Option<&str>,
        languages: &[String],
        viewer: ArticleViewer<'_>,
    ) -> Result<BTreeMap<String, i64>, StoreError> {
        let langs = search_languages(languages);
        let mut qb =
            QueryBuilder::<Db>::new("SELECT a.kind, COUNT(*) FROM kb_articles a WHERE 1 = 1");
        push_filters(&mut qb, &langs, None, model, viewer);
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
        push_filters(&mut qb, &langs, None, None, viewer);
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
        let mut tx = self.pool.begin().await.map_err(|e| self.err(e))?;
        for a in &checked {
            sqlx::query(
                "INSERT INTO kb_articles (article_id, kind, code, language, title, body, updated_at_ms)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)
                 ON CONFLICT (article_id) DO UPDATE SET kind = excluded.kind, code = excluded.code,
                 language = excluded.language, title = excluded.title, body = excluded.body,
                 updated_at_ms = excluded.updated_at_ms",
            )
            .bind(&a.id)
            .bind(&a.kind)
            .bind(&a.code)
            .bind(&a.language)
            .bind(&a.title)
            .bind(&a.body)
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
        let mut tx = self.pool.begin().await.map_err(|e| self.err(e))?;
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
