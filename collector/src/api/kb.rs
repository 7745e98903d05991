//! Knowledge-base articles: everyone reads, operators write.

use super::audit::{record, Change};
use super::caller::Caller;
use super::error::{ApiError, ApiResult};
use super::{Routes, S};
use crate::auth::Action;
use crate::model::Article;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::routing::{get, put};
use axum::Json;
use serde_json::{json, Value};

pub(super) fn routes() -> Routes {
    Routes::new()
        .route("/api/v1/kb-articles", get(articles))
        .route("/api/v1/kb-articles/{id}", put(put_article))
}

async fn articles(State(s): S) -> ApiResult<Json<Value>> {
    let a = s.articles().await?;
    Ok(Json(json!({"articles": a})))
}

async fn put_article(
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
    let after = s.put_article(&a).await?;
    let what = Change::new("article", &id, "put", None);
    record::<(), _>(&s, &c, what, None, Some(&after)).await?;
    Ok(Json(after))
}
