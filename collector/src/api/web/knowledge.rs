//! The knowledge centre's pages: search by error code and/or words, with
//! check boxes for the languages to search (English always), a category
//! and a model ("view more" from a product's page lands here), and an
//! article's page.

use super::form::{caller, person, state};
use super::i18n::{self, Texts};
use super::{error_page, html, Who};
use crate::api::{kb, S};
use crate::auth::password::Sessions;
use crate::model::{url_part, ARTICLE_LANGUAGES};
use askama::Template;
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::{Extension, Json};

const PAGE: u32 = 20;

struct Hit {
    id: String,
    title: String,
    kind: String,
    code: String,
    language: String,
    excerpt: String,
}

#[derive(Template)]
#[template(path = "knowledge.html")]
struct SearchPage<'a> {
    t: &'static Texts,
    who: Option<Who>,
    page: &'a str,
    code: String,
    q: String,
    kind: String,
    model: String,
    kinds: Vec<(&'static str, String)>,
    languages: Vec<(&'static str, String, bool)>,
    searched: bool,
    hits: Vec<Hit>,
    next: Option<String>,
}

fn excerpt(body: &str) -> String {
    let flat = body.split_whitespace().collect::<Vec<_>>().join(" ");
    match flat.char_indices().nth(220) {
        Some((i, _)) => format!("{}…", &flat[..i]),
        None => flat,
    }
}

/// `?code=&q=&kind=&model=&lang=it&lang=de&offset=`; the languages are
/// repeated check boxes.
pub(super) async fn search(
    State(s): S,
    Extension(cfg): Extension<Sessions>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let w = match person(&s, &cfg, &headers, false).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    let t = i18n::texts(&w.user.language);
    let f = super::form::Fields::parse(raw.unwrap_or_default().as_bytes());
    let (code, q, kind, model) = (
        f.get("code").trim().to_string(),
        f.get("q").trim().to_string(),
        f.get("kind"),
        f.get("model"),
    );
    let mut langs = f.all("lang");
    if langs.is_empty() && w.user.language != "en" {
        langs.push(w.user.language.clone());
    }
    let searched = !code.is_empty() || !q.is_empty() || !kind.is_empty() || !model.is_empty();
    let offset: u32 = f.get("offset").parse().unwrap_or(0);
    let mut hits = Vec::new();
    let mut next = None;
    if searched {
        let sq = kb::SearchQuery {
            q: Some(q.clone()),
            code: Some(code.clone()),
            lang: Some(langs.join(",")),
            kind: Some(kind.clone()).filter(|k| crate::model::ARTICLE_KINDS.contains(&k.as_str())),
            model: Some(model.clone()),
            limit: Some(PAGE),
            offset: Some(offset),
        };
        match kb::find(&s, &caller(&w), sq).await {
            Ok((found, _, more)) => {
                hits = found
                    .into_iter()
                    .map(|h| Hit {
                        kind: t.get(&format!("kb-{}", h.article.kind)),
                        code: h.article.code.clone().unwrap_or_default(),
                        language: h.article.language.clone(),
                        excerpt: excerpt(&h.article.body),
                        id: h.article.id,
                        title: h.article.title,
                    })
                    .collect();
                next = more.map(|o| {
                    let mut link = format!(
                        "/knowledge?code={}&q={}&kind={}&model={}&offset={o}",
                        url_part(&code),
                        url_part(&q),
                        url_part(&kind),
                        url_part(&model)
                    );
                    for l in &langs {
                        link.push_str(&format!("&lang={}", url_part(l)));
                    }
                    link
                });
            }
            Err(e) => return error_page(t, Some(w), e.status(), "error-title", "error-try-later"),
        }
    }
    let languages = ARTICLE_LANGUAGES
        .iter()
        .filter(|l| **l != "en")
        .map(|l| {
            (
                *l,
                t.get(&format!("language-{l}")),
                langs.iter().any(|x| x == l),
            )
        })
        .collect();
    html(SearchPage {
        t,
        who: Some(w),
        page: "knowledge",
        code,
        q,
        kinds: crate::model::ARTICLE_KINDS
            .iter()
            .map(|k| (*k, t.get(&format!("kb-{k}"))))
            .collect(),
        kind,
        model,
        languages,
        searched,
        hits,
        next,
    })
}

#[derive(Template)]
#[template(path = "article.html")]
struct ArticlePage<'a> {
    t: &'static Texts,
    who: Option<Who>,
    page: &'a str,
    a: crate::model::Article,
    kind: String,
    paragraphs: Vec<String>,
}

pub(super) async fn article(
    State(s): S,
    Extension(cfg): Extension<Sessions>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let w = match person(&s, &cfg, &headers, false).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    let t = i18n::texts(&w.user.language);
    let a = match kb::article(state(&s), caller(&w), Path(id)).await {
        Ok(Json(a)) => a,
        Err(e) => return error_page(t, Some(w), e.status(), "error-title", "api-not-found"),
    };
    let paragraphs = a
        .body
        .split("\n\n")
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(str::to_string)
        .collect();
    html(ArticlePage {
        t,
        who: Some(w),
        page: "knowledge",
        kind: t.get(&format!("kb-{}", a.kind)),
        a,
        paragraphs,
    })
}
