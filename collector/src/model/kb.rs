//! The knowledge centre's articles and how a search is asked. Pure: an
//! article in, the checked article (or what is wrong with it) out; a
//! person's search text in, the words the full-text index is asked for out.

use serde::{Deserialize, Serialize};

/// The three categories of the knowledge centre: FAQs & Knowledge, Error
/// codes, Troubleshooters.
pub const ARTICLE_KINDS: [&str; 3] = ["faq", "error_code", "troubleshooter"];

/// Languages articles are written in; English is the language of all
/// content, the others are translations or local articles.
pub const ARTICLE_LANGUAGES: [&str; 7] = ["en", "it", "de", "fr", "es", "pt", "nl"];

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Article {
    pub id: String,
    /// One of `ARTICLE_KINDS`.
    pub kind: String,
    /// The error code this article explains (error_code articles), as the
    /// device shows it ("E602-0001"); kept upper case.
    #[serde(default)]
    pub code: Option<String>,
    /// One of `ARTICLE_LANGUAGES`.
    #[serde(default = "english")]
    pub language: String,
    /// The product models it applies to; none: every model.
    #[serde(default)]
    pub models: Vec<String>,
    pub title: String,
    #[serde(default)]
    pub body: String,
}

fn english() -> String {
    "en".into()
}

impl Article {
    /// The article with its fields trimmed (code upper case, models sorted
    /// and unique), or what is wrong with it.
    pub fn checked(&self) -> Result<Article, String> {
        let id = self.id.trim().to_string();
        if id.is_empty() || id.chars().count() > 100 || id.contains('/') || id == "import" {
            return Err("id: give 1 to 100 characters, no '/', not \"import\"".into());
        }
        let kind = self.kind.trim().to_lowercase();
        if !ARTICLE_KINDS.contains(&kind.as_str()) {
            return Err(format!(
                "kind {:?}: give one of {}",
                self.kind,
                ARTICLE_KINDS.join(", ")
            ));
        }
        let language = self.language.trim().to_lowercase();
        if !ARTICLE_LANGUAGES.contains(&language.as_str()) {
            return Err(format!(
                "language {:?}: give one of {}",
                self.language,
                ARTICLE_LANGUAGES.join(", ")
            ));
        }
        let code = self
            .code
            .as_deref()
            .map(normal_code)
            .filter(|c| !c.is_empty());
        if code.as_ref().is_some_and(|c| c.chars().count() > 40) {
            return Err("code: give at most 40 characters".into());
        }
        let title = self.title.trim().to_string();
        if title.is_empty() || title.chars().count() > 200 {
            return Err("title: give 1 to 200 characters".into());
        }
        if self.body.chars().count() > 100_000 {
            return Err("body: give at most 100,000 characters".into());
        }
        let mut models: Vec<String> = self
            .models
            .iter()
            .map(|m| m.trim().to_string())
            .filter(|m| !m.is_empty())
            .collect();
        if models.iter().any(|m| m.chars().count() > 100) || models.len() > 200 {
            return Err("models: give at most 200 models of at most 100 characters".into());
        }
        models.sort();
        models.dedup();
        Ok(Article {
            id,
            kind,
            code,
            language,
            models,
            title,
            body: self.body.clone(),
        })
    }
}

/// An error code as articles keep it: trimmed, upper case.
pub fn normal_code(code: &str) -> String {
    code.trim().to_uppercase()
}

/// An article a search found, and why: `code` (exactly its code),
/// `code_prefix` (its code starts with the one asked), `text` (ranked by
/// `score`, higher is better) or `all` (no code or text asked).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ArticleHit {
    #[serde(flatten)]
    pub article: Article,
    pub matched: String,
    pub score: f64,
}

/// Who reads articles: everyone (operators), or a customer who finds the
/// articles for every model and those for the models of the products in
/// these companies (of the products `admin` administers, when given).
#[derive(Debug, Clone, Copy, Default)]
pub struct ArticleViewer<'a> {
    pub accounts: Option<&'a [String]>,
    pub admin: Option<&'a str>,
}

/// A search of the knowledge centre.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ArticleQuery {
    /// An error code: the article with exactly this code ranks first, codes
    /// that start with it next.
    pub code: Option<String>,
    /// Words to find in titles (weighted more) and bodies.
    pub text: Vec<String>,
    /// Languages to search; English when none are given.
    pub languages: Vec<String>,
    pub kind: Option<String>,
    /// Only articles for this model (and those for every model).
    pub model: Option<String>,
    pub limit: u32,
    pub offset: u32,
}

/// The words of a person's search text the index is asked for: runs of
/// letters and digits, lower case, at most 16 of them. Everything else
/// (quotes, operators, punctuation) separates words, so no text can change
/// the meaning of the index's query syntax.
pub fn search_words(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for w in text.split(|c: char| !c.is_alphanumeric()) {
        if w.is_empty() {
            continue;
        }
        let w = w.to_lowercase();
        if !out.contains(&w) {
            out.push(w);
        }
        if out.len() == 16 {
            break;
        }
    }
    out
}

/// The languages a search asks for: the known ones among `given`, English
/// when none is given or known.
pub fn search_languages(given: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for l in given {
        let l = l.trim().to_lowercase();
        if ARTICLE_LANGUAGES.contains(&l.as_str()) && !out.contains(&l) {
            out.push(l);
        }
    }
    if out.is_empty() {
        out.push("en".into());
    }
    out
}

/// The PostgreSQL text-search configuration for an article language.
pub fn text_search_config(language: &str) -> &'static str {
    match language {
        "en" => "english",
        "it" => "italian",
        "de" => "german",
        "fr" => "french",
        "es" => "spanish",
        "pt" => "portuguese",
        "nl" => "dutch",
        _ => "simple",
    }
}

/// A model's download-centre address from the configured template, where
/// `{model}` stands for the model name (percent-encoded).
pub fn download_url(template: &str, model: &str) -> String {
    template.replace("{model}", &url_part(model))
}

/// Text as one part of a URL (a path segment or a query value): every byte
/// but letters, digits and `-_.~` percent-encoded (RFC 3986 unreserved).
pub fn url_part(text: &str) -> String {
    let mut enc = String::new();
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            enc.push(b as char);
        } else {
            enc.push_str(&format!("%{b:02X}"));
        }
    }
    enc
}

#[cfg(test)]
mod tests {
    use super::*;

    fn article() -> Article {
        Article {
            id: "kb-1".into(),
            kind: "error_code".into(),
            code: Some(" e602-0001 ".into()),
            language: "EN".into(),
            models: vec!["iR-ADV C5560".into(), " ".into(), "iR-ADV C5560".into()],
            title: " Drive error ".into(),
            body: "text".into(),
        }
    }

    #[test]
    fn checked_normalises_code_language_and_models() {
        let a = article().checked().unwrap();
        assert_eq!(a.code.as_deref(), Some("E602-0001"));
        assert_eq!(a.language, "en");
        assert_eq!(a.models, vec!["iR-ADV C5560"]);
        assert_eq!(a.title, "Drive error");
    }

    #[test]
    fn checked_names_the_bad_field() {
        let mut a = article();
        a.kind = "howto".into();
        assert!(a.checked().unwrap_err().starts_with("kind"));
        let mut a = article();
        a.language = "xx".into();
        assert!(a.checked().unwrap_err().starts_with("language"));
        let mut a = article();
        a.title = "  ".into();
        assert!(a.checked().unwrap_err().starts_with("title"));
        let mut a = article();
        a.id = "a/b".into();
        assert!(a.checked().unwrap_err().starts_with("id"));
    }

    #[test]
    fn search_words_drop_query_syntax() {
        assert_eq!(
            search_words("Paper \"jam\" OR tray* NEAR(x) -- E602-0001 paper"),
            vec!["paper", "jam", "or", "tray", "near", "x", "e602", "0001"]
        );
        assert!(search_words("\"*-()").is_empty());
        assert_eq!(search_words("carta inceppata"), vec!["carta", "inceppata"]);
        assert_eq!(search_words(&"w ".repeat(40)).len(), 1);
    }

    #[test]
    fn english_unless_languages_are_given() {
        assert_eq!(search_languages(&[]), vec!["en"]);
        assert_eq!(search_languages(&["xx".into()]), vec!["en"]);
        assert_eq!(
            search_languages(&["IT".into(), "en".into(), "it".into()]),
            vec!["it", "en"]
        );
    }

    #[test]
    fn download_url_encodes_the_model() {
        assert_eq!(
            download_url("https://dl.example/p?m={model}", "iR-ADV C5560/i"),
            "https://dl.example/p?m=iR-ADV%20C5560%2Fi"
        );
    }
}
