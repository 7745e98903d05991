//! The knowledge centre: everyone searches (a customer finds the articles
//! for their products' models and those for every model), operators write
//! articles one at a time or in bulk. A product's page gets its model's three
//! categories and the download centre's address.

use super::audit::{record, Change};
use super::caller::Caller;
use super::error::{ApiError, ApiResult};
use super::{Routes, S};
use crate::auth::Action;
use crate::model::{
    download_url, search_languages, search_words, Article, ArticleHit, ArticleQuery, ArticleViewer,
    Role, ARTICLE_KINDS,
};
use crate::store::Store;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{json, Value};

/// The knowledge centre's settings.
#[derive(Clone, Debug, Default)]
pub struct Knowledge {
    /// The download centre's address for a model, `{model}` standing for it.
    pub download_url: Option<String>,
}

/// Articles a product page shows per category before "view more".
const PER_CATEGORY: u32 = 5;

pub(super) fn routes() -> Routes {
    Routes::new()
        .route("/api/v1/kb-articles", get(search))
        .route("/api/v1/kb-articles/import", post(import))
        .route(
            "/api/v1/kb-articles/{id}",
            get(article).put(put_article).delete(delete_article),
        )
        .route("/api/v1/products/{serial}/knowledge", get(for_product))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct SearchQuery {
    pub(super) q: Option<String>,
    pub(super) code: Option<String>,
    /// Languages to search, comma-separated; English when absent.
    pub(super) lang: Option<String>,
    pub(super) kind: Option<String>,
    pub(super) model: Option<String>,
    pub(super) limit: Option<u32>,
    pub(super) offset: Option<u32>,
}

fn languages(lang: Option<&str>) -> Vec<String> {
    search_languages(
        &lang
            .unwrap_or("")
            .split(',')
            .map(str::to_string)
            .collect::<Vec<_>>(),
    )
}

fn check_kind(kind: Option<&str>) -> ApiResult<()> {
    match kind {
        Some(k) if !ARTICLE_KINDS.contains(&k) => Err(ApiError::bad_request(
            "invalid_kind",
            format!("kind is one of {}", ARTICLE_KINDS.join(", ")),
        )),
        _ => Ok(()),
    }
}

/// What the caller may read (see `ArticleViewer`).
fn viewer(c: &Caller) -> ArticleViewer<'_> {
    ArticleViewer {
        accounts: c.confined_to(),
        admin: (c.role == Role::ProductAdministrator).then_some(c.id.as_str()),
    }
}

async fn search(
    State(s): S,
    c: Caller,
    q: Result<Query<SearchQuery>, QueryRejection>,
) -> ApiResult<Json<Value>> {
    let (hits, languages, next_offset) = find(&s, &c, q?.0).await?;
    Ok(Json(json!({
        "articles": hits,
        "languages": languages,
        "next_offset": next_offset,
    })))
}

/// The articles the caller may read that `q` finds, the languages
/// searched and the next page's offset.
pub(super) async fn find(
    s: &Store,
    c: &Caller,
    q: SearchQuery,
) -> ApiResult<(Vec<ArticleHit>, Vec<String>, Option<u32>)> {
    check_kind(q.kind.as_deref())?;
    let limit = q.limit.unwrap_or(20).clamp(1, 100);
    let offset = q.offset.unwrap_or(0).min(10_000);
    let query = ArticleQuery {
        code: q.code.filter(|c| !c.trim().is_empty()),
        text: search_words(q.q.as_deref().unwrap_or("")),
        languages: languages(q.lang.as_deref()),
        kind: q.kind,
        model: q.model.filter(|m| !m.is_empty()),
        // One more than asked tells whether there is a next page.
        limit: limit + 1,
        offset,
    };
    let mut hits = s.search_articles(&query, viewer(c)).await?;
    let more = hits.len() > limit as usize;
    hits.truncate(limit as usize);
    Ok((hits, query.languages, more.then_some(offset + limit)))
}

pub(super) async fn article(
    State(s): S,
    c: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Article>> {
    s.article(&id, viewer(&c))
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("article {id:?}")))
}

pub(super) async fn put_article(
    State(s): S,
    c: Caller,
    Path(id): Path<String>,
    body: Result<Json<Article>, JsonRejection>,
) -> ApiResult<Json<Article>> {
    c.need(
        Action::ManageKnowledgeBase,
        "writing knowledge-base articles",
    )?;
    let a = body?.0;
    if a.id != id {
        return Err(ApiError::id_mismatch(&a.id, &id));
    }
    let before = s.article(&id, ArticleViewer::default()).await?;
    let after = s.put_article(&a).await?;
    let what = Change::new("article", &id, "put", None);
    record(&s, &c, what, before.as_ref(), Some(&after)).await?;
    Ok(Json(after))
}

pub(super) async fn delete_article(
    State(s): S,
    c: Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    c.need(
        Action::ManageKnowledgeBase,
        "writing knowledge-base articles",
    )?;
    let before = s
        .article(&id, ArticleViewer::default())
        .await?
        .ok_or_else(|| ApiError::not_found(format!("article {id:?}")))?;
    s.delete_article(&id).await?;
    let what = Change::new("article", &id, "deleted", None);
    record::<_, ()>(&s, &c, what, Some(&before), None).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Import {
    articles: Vec<Article>,
}

/// Many articles at once: all are checked first, and none is written
/// unless every one is good.
async fn import(
    State(s): S,
    c: Caller,
    body: Result<Json<Import>, JsonRejection>,
) -> ApiResult<Json<Value>> {
    c.need(
        Action::ManageKnowledgeBase,
        "writing knowledge-base articles",
    )?;
    let articles = body?.0.articles;
    if articles.len() > 10_000 {
        return Err(ApiError::bad_request(
            "invalid_article",
            "import at most 10,000 articles at once; split the file",
        ));
    }
    let written = s.put_articles(&articles).await?;
    let ids: Vec<&str> = written.iter().map(|a| a.id.as_str()).collect();
    let what = Change::new("article", "import", "imported", None);
    record::<(), _>(&s, &c, what, None, Some(&json!({"articles": ids}))).await?;
    Ok(Json(json!({"written": written.len()})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProductKnowledgeQuery {
    lang: Option<String>,
}

/// A product's knowledge centre: per category the first articles for its
/// model and how many there are, and the download centre's address.
async fn for_product(
    State(s): S,
    c: Caller,
    Extension(k): Extension<Knowledge>,
    Path(serial): Path<String>,
    q: Result<Query<ProductKnowledgeQuery>, QueryRejection>,
) -> ApiResult<Json<Value>> {
    let q = q?.0;
    let p = c.product(&s, &serial).await?;
    let langs = languages(q.lang.as_deref());
    let model = p.model.clone();
    let counts = s
        .article_counts(model.as_deref(), &langs, viewer(&c))
        .await?;
    let mut categories = Vec::new();
    for kind in ARTICLE_KINDS {
        let first = s
            .search_articles(
                &ArticleQuery {
                    languages: langs.clone(),
                    kind: Some(kind.into()),
                    model: model.clone(),
                    limit: PER_CATEGORY,
                    ..ArticleQuery::default()
                },
                viewer(&c),
            )
            .await?;
        categories.push(json!({
            "kind": kind,
            "total": counts.get(kind).copied().unwrap_or(0),
            "articles": first,
        }));
    }
    let download = match (&k.download_url, &model) {
        (Some(t), Some(m)) => Some(download_url(t, m)),
        _ => None,
    };
    Ok(Json(json!({
        "serial": p.serial,
        "model": model,
        "languages": langs,
        "download_url": download,
        "categories": categories,
    })))
}

/// The articles that explain an error code on a product of this model, in
/// every language.
pub(super) async fn for_code(
    s: &Store,
    c: &Caller,
    code: &str,
    model: Option<String>,
) -> ApiResult<Vec<ArticleHit>> {
    let hits = s
        .search_articles(
            &ArticleQuery {
                code: Some(code.into()),
                languages: crate::model::ARTICLE_LANGUAGES
                    .iter()
                    .map(|l| l.to_string())
                    .collect(),
                model,
                limit: 20,
                ..ArticleQuery::default()
            },
            viewer(c),
        )
        .await?;
    Ok(hits.into_iter().filter(|h| h.matched == "code").collect())
}
