//! Knowledge-base articles.

use crate::model::Article;
use crate::store::{Refusal, StoreError};
use sqlx::Row;

use super::Backend;

impl Backend {
    pub async fn articles(&self) -> Result<Vec<Article>, StoreError> {
        let rows = sqlx::query(
            "SELECT article_id, kind, code, title, body FROM kb_articles ORDER BY article_id",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.err(e))?;
        Ok(rows
            .iter()
            .map(|r| Article {
                id: r.get(0),
                kind: r.get(1),
                code: r.get(2),
                title: r.get(3),
                body: r.get(4),
            })
            .collect())
    }

    pub async fn put_article(&self, a: &Article) -> Result<Article, StoreError> {
        if !["error_code", "faq", "troubleshooter"].contains(&a.kind.as_str()) {
            return Err(StoreError::refused(
                Refusal::InvalidKind,
                "an article's kind is error_code, faq or troubleshooter",
            ));
        }
        if a.id.is_empty() {
            return Err(StoreError::refused(
                Refusal::InvalidArticleId,
                "give the article an id",
            ));
        }
        sqlx::query(
            "INSERT INTO kb_articles (article_id, kind, code, title, body) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (article_id) DO UPDATE SET kind = excluded.kind, code = excluded.code,
             title = excluded.title, body = excluded.body",
        )
        .bind(&a.id)
        .bind(&a.kind)
        .bind(&a.code)
        .bind(&a.title)
        .bind(&a.body)
        .execute(&self.pool)
        .await
        .map_err(|e| self.err(e))?;
        Ok(a.clone())
    }
}
