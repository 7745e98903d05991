//! The portal's texts in English and Italian, from Fluent catalogs
//! (`locales/*.ftl`, embedded); the language a person gets.

use fluent_bundle::concurrent::FluentBundle;
use fluent_bundle::{FluentArgs, FluentResource};
use std::sync::LazyLock;

/// The languages the portal speaks, the first the default.
pub const LANGUAGES: [&str; 2] = ["en", "it"];

pub struct Texts {
    pub lang: &'static str,
    bundle: FluentBundle<FluentResource>,
}

fn bundle(lang: &'static str, source: &'static str) -> Texts {
    let id: unic_langid::LanguageIdentifier = lang.parse().expect("a valid language tag");
    let mut b = FluentBundle::new_concurrent(vec![id]);
    // Arguments appear as typed, without Unicode isolation marks around
    // them (they would show in page titles and plain text).
    b.set_use_isolating(false);
    let res = FluentResource::try_new(source.to_string()).expect("the catalog parses (tested)");
    b.add_resource(res)
        .expect("no message is defined twice (tested)");
    Texts { lang, bundle: b }
}

static EN: LazyLock<Texts> =
    LazyLock::new(|| bundle("en", include_str!("../../../locales/en.ftl")));
static IT: LazyLock<Texts> =
    LazyLock::new(|| bundle("it", include_str!("../../../locales/it.ftl")));

/// The texts of a language; English for any other.
pub fn texts(lang: &str) -> &'static Texts {
    match lang {
        "it" => &IT,
        _ => &EN,
    }
}

impl Texts {
    /// The message `id`; the id itself when the catalog lacks it (a test
    /// checks that every id used exists in both catalogs).
    pub fn get(&self, id: &str) -> String {
        self.with(id, &[])
    }

    /// The message `id` with its arguments.
    pub fn with(&self, id: &str, args: &[(&str, &str)]) -> String {
        let Some(p) = self.bundle.get_message(id).and_then(|m| m.value()) else {
            return id.to_string();
        };
        let mut a = FluentArgs::new();
        for (k, v) in args {
            a.set(*k, v.to_string());
        }
        let mut errors = Vec::new();
        self.bundle
            .format_pattern(p, Some(&a), &mut errors)
            .into_owned()
    }

    /// A message whose one argument is a counter's id.
    pub fn with_counter(&self, id: &str, counter: &str) -> String {
        self.with(id, &[("counter", counter)])
    }

    #[cfg(test)]
    pub fn has(&self, id: &str) -> bool {
        self.bundle.has_message(id)
    }
}

/// The language for a person: their profile's when logged in and the
/// portal speaks it, else the first the browser asks for that it speaks.
pub fn choose(profile: Option<&str>, accept_language: Option<&str>) -> &'static str {
    if let Some(l) = profile.and_then(|p| LANGUAGES.iter().find(|l| **l == p)) {
        return l;
    }
    let mut asked: Vec<(f32, &str)> = accept_language
        .unwrap_or("")
        .split(',')
        .filter_map(|part| {
            let mut it = part.trim().split(';');
            let tag = it.next()?.trim();
            let q = it
                .find_map(|p| p.trim().strip_prefix("q="))
                .and_then(|q| q.parse::<f32>().ok())
                .unwrap_or(1.0);
            Some((q, tag))
        })
        .collect();
    asked.sort_by(|a, b| b.0.total_cmp(&a.0));
    for (_, tag) in asked {
        let primary = tag.split('-').next().unwrap_or("").to_lowercase();
        if let Some(l) = LANGUAGES.iter().find(|l| **l == primary) {
            return l;
        }
    }
    LANGUAGES[0]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_catalogs_have_the_same_messages() {
        let ids = |src: &str| -> Vec<String> {
            src.lines()
                .filter(|l| !l.starts_with('#') && !l.starts_with(' '))
                .filter_map(|l| l.split_once(" = ").map(|(k, _)| k.trim().to_string()))
                .collect()
        };
        let en = ids(include_str!("../../../locales/en.ftl"));
        let it = ids(include_str!("../../../locales/it.ftl"));
        assert_eq!(en, it);
        for id in &en {
            assert!(texts("en").has(id) && texts("it").has(id), "{id}");
        }
    }

    #[test]
    fn arguments_and_missing_ids() {
        assert_eq!(
            texts("en").with("home-welcome", &[("name", "Mia")]),
            "Welcome, Mia"
        );
        assert_eq!(
            texts("it").with("home-welcome", &[("name", "Mia")]),
            "Benvenuto, Mia"
        );
        assert_eq!(texts("en").get("no-such-id"), "no-such-id");
    }

    #[test]
    fn the_profile_first_then_the_browser() {
        assert_eq!(choose(Some("it"), Some("en-GB")), "it");
        assert_eq!(choose(Some("de"), Some("de-DE, it;q=0.8, en;q=0.5")), "it");
        assert_eq!(choose(None, Some("en;q=0.4, it-IT;q=0.9")), "it");
        assert_eq!(choose(None, Some("fr")), "en");
        assert_eq!(choose(None, None), "en");
    }
}
