//! The console's knowledge base: find articles, write a new one or change
//! one (kind, language, code, models, title, body), delete one.

use super::{operator, operator_post, sections};
use crate::api::web::form::{caller, done, notice, refusal, state, Fields};
use crate::api::web::i18n::{self, Texts};
use crate::api::web::{error_page, html, Who};
use crate::api::{kb, S};
use crate::auth::password::Sessions;
use crate::model::{Article, ARTICLE_KINDS, ARTICLE_LANGUAGES};
use askama::Template;
use axum::extract::{Path, Query, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::{Extension, Json};

struct Row {
    id: String,
    title: String,
    kind: String,
    code: String,
    language: String,
    models: String,
}

#[derive(Template)]
#[template(path = "console/articles.html")]
struct ListPage<'a> {
    t: &'static Texts,
    who: Option<Who>,
    page: &'a str,
    sections: Vec<(&'static str, String, bool)>,
    q: String,
    rows: Vec<Row>,
    notice: Option<String>,
}

/// `?q=` words or an error code; every language.
pub(in crate::api::web) async fn list(
    State(s): S,
    Extension(cfg): Extension<Sessions>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let w = match operator(&s, &cfg, &headers, false).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    let t = i18n::texts(&w.user.language);
    let f = Fields::parse(raw.unwrap_or_default().as_bytes());
    let q = f.get("q").trim().to_string();
    let looks_like_code =
        !q.is_empty() && !q.contains(' ') && q.chars().any(|c| c.is_ascii_digit());
    let sq = kb::SearchQuery {
        q: Some(q.clone()).filter(|q| !q.is_empty() && !looks_like_code),
        code: Some(q.clone()).filter(|_| looks_like_code),
        lang: Some(ARTICLE_LANGUAGES.join(",")),
        limit: Some(100),
        ..kb::SearchQuery::default()
    };
    let hits = match kb::find(&s, &caller(&w), sq).await {
        Ok((h, _, _)) => h,
        Err(e) => return error_page(t, Some(w), e.status(), "error-title", "error-try-later"),
    };
    let rows = hits
        .into_iter()
        .map(|h| Row {
            kind: t.get(&format!("kb-{}", h.article.kind)),
            code: h.article.code.unwrap_or_default(),
            language: h.article.language,
            models: h.article.models.join(", "),
            id: h.article.id,
            title: h.article.title,
        })
        .collect();
    html(ListPage {
        t,
        notice: notice(t, Some(f.get("done").as_str())),
        who: Some(w),
        page: "console",
        sections: sections(t, "/console/knowledge"),
        q,
        rows,
    })
}

#[derive(Template)]
#[template(path = "console/article.html")]
struct EditPage<'a> {
    t: &'static Texts,
    who: Option<Who>,
    page: &'a str,
    a: Article,
    models: String,
    is_new: bool,
    kinds: Vec<(&'static str, String)>,
    languages: &'static [&'static str],
    error: Option<String>,
}

fn edit(w: Who, a: Article, is_new: bool, error: Option<String>) -> Response {
    let t = i18n::texts(&w.user.language);
    html(EditPage {
        t,
        who: Some(w),
        page: "console",
        models: a.models.join(", "),
        a,
        is_new,
        kinds: ARTICLE_KINDS
            .iter()
            .map(|k| (*k, t.get(&format!("kb-{k}"))))
            .collect(),
        languages: &ARTICLE_LANGUAGES,
        error,
    })
}

#[derive(serde::Deserialize)]
pub(in crate::api::web) struct EditQuery {
    id: Option<String>,
}

/// `?id=` an article to change; without: a new one.
pub(in crate::api::web) async fn edit_page(
    State(s): S,
    Extension(cfg): Extension<Sessions>,
    headers: HeaderMap,
    Query(q): Query<EditQuery>,
) -> Response {
    let w = match operator(&s, &cfg, &headers, false).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    match q.id {
        Some(id) => match kb::article(state(&s), caller(&w), Path(id)).await {
            Ok(Json(a)) => edit(w, a, false, None),
            Err(e) => {
                let t = i18n::texts(&w.user.language);
                error_page(t, Some(w), e.status(), "error-title", "api-not-found")
            }
        },
        None => {
            let a = Article {
                id: String::new(),
                kind: "faq".into(),
                code: None,
                language: "en".into(),
                models: Vec::new(),
                title: String::new(),
                body: String::new(),
            };
            edit(w, a, true, None)
        }
    }
}

pub(in crate::api::web) async fn save(
    State(s): S,
    Extension(cfg): Extension<Sessions>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let (w, t, f) = match operator_post(&s, &cfg, &headers, &body).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let code = f.get("code").trim().to_string();
    let a = Article {
        id: f.get("id").trim().to_string(),
        kind: f.get("kind"),
        code: Some(code).filter(|c| !c.is_empty()),
        language: f.get("language"),
        // Model names have spaces: one per line or separated by commas.
        models: f
            .get("models")
            .split([',', '\n'])
            .map(str::trim)
            .filter(|m| !m.is_empty())
            .map(str::to_string)
            .collect(),
        title: f.get("title").trim().to_string(),
        body: f.get("body").trim().to_string(),
    };
    let is_new = f.get("is_new") == "1";
    let id = a.id.clone();
    if is_new {
        // A new article must not overwrite one with the same id.
        if let Ok(Some(_)) = s.article(&id, Default::default()).await {
            let e = t.get("console-article-exists");
            return edit(w, a, true, Some(e));
        }
    }
    match kb::put_article(state(&s), caller(&w), Path(id.clone()), Ok(Json(a.clone()))).await {
        Ok(_) => done("/console/knowledge", "article-saved"),
        Err(e) => {
            let e = refusal(t, &e);
            edit(w, a, is_new, Some(e))
        }
    }
}

pub(in crate::api::web) async fn delete(
    State(s): S,
    Extension(cfg): Extension<Sessions>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let (w, t, f) = match operator_post(&s, &cfg, &headers, &body).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let id = f.get("id");
    if f.get("confirm") != "yes" {
        return html(crate::api::web::form::ConfirmPage {
            t,
            page: "console",
            title: t.with("console-article-delete-title", &[("id", &id)]),
            text: t.get("console-article-delete-text"),
            action: "/console/knowledge/delete".into(),
            extra: vec![("id", id.clone())],
            submit: t.get("console-delete"),
            back: "/console/knowledge",
            who: Some(w),
        });
    }
    match kb::delete_article(state(&s), caller(&w), Path(id)).await {
        Ok(_) => done("/console/knowledge", "article-deleted"),
        Err(e) => error_page(t, Some(w), e.status(), "error-title", "api-not-found"),
    }
}
