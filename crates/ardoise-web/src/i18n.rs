//! Message catalogues (Fluent): French first, English second. Every string
//! a person reads comes from `locales/{fr,en}.ftl`; a test checks that both
//! catalogues hold the same keys.

use fluent_bundle::concurrent::FluentBundle;
use fluent_bundle::{FluentArgs, FluentResource};
use std::sync::Arc;

/// An interface language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    /// French, the default.
    #[default]
    Fr,
    /// English.
    En,
}

impl Lang {
    /// The BCP 47 code.
    pub const fn code(self) -> &'static str {
        match self {
            Lang::Fr => "fr",
            Lang::En => "en",
        }
    }

    /// Parses a language code (`fr`, `en-GB`…).
    pub fn parse(s: &str) -> Option<Lang> {
        let primary = s
            .trim()
            .split(['-', '_'])
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase();
        match primary.as_str() {
            "fr" => Some(Lang::Fr),
            "en" => Some(Lang::En),
            _ => None,
        }
    }

    /// Picks the language from an `Accept-Language` header: the first of
    /// the listed languages we have, by quality; French otherwise.
    pub fn negotiate(accept_language: &str) -> Lang {
        let mut best: Option<(f32, Lang)> = None;
        for part in accept_language.split(',') {
            let mut pieces = part.split(';');
            let tag = pieces.next().unwrap_or_default();
            let q = pieces
                .find_map(|p| {
                    p.trim()
                        .strip_prefix("q=")
                        .and_then(|v| v.parse::<f32>().ok())
                })
                .unwrap_or(1.0);
            if let Some(lang) = Lang::parse(tag) {
                if best.is_none_or(|(bq, _)| q > bq) {
                    best = Some((q, lang));
                }
            }
        }
        best.map(|(_, l)| l).unwrap_or_default()
    }
}

/// Both catalogues, loaded once.
pub struct Catalogs {
    fr: FluentBundle<FluentResource>,
    en: FluentBundle<FluentResource>,
    /// Messages without arguments, formatted once at load: most of a
    /// page's strings, which every request would otherwise format anew.
    plain_fr: std::collections::HashMap<String, String>,
    plain_en: std::collections::HashMap<String, String>,
}

impl std::fmt::Debug for Catalogs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Catalogs")
    }
}

/// The French catalogue's source.
pub const FR_SOURCE: &str = include_str!("../locales/fr.ftl");
/// The English catalogue's source.
pub const EN_SOURCE: &str = include_str!("../locales/en.ftl");

fn bundle(lang: &str, source: &str) -> Result<FluentBundle<FluentResource>, String> {
    let resource = FluentResource::try_new(source.to_string())
        .map_err(|(_, errors)| format!("{lang}.ftl: {errors:?}"))?;
    let id = lang.parse().map_err(|e| format!("{lang}: {e:?}"))?;
    let mut b = FluentBundle::new_concurrent(vec![id]);
    // No Unicode isolation marks: our pages are left-to-right only.
    b.set_use_isolating(false);
    b.add_resource(resource)
        .map_err(|e| format!("{lang}.ftl: {e:?}"))?;
    Ok(b)
}

/// Formats every message that needs no argument.
fn plain_messages(
    b: &FluentBundle<FluentResource>,
    source: &str,
) -> std::collections::HashMap<String, String> {
    let mut out = std::collections::HashMap::new();
    for key in keys(source) {
        let Some(pattern) = b.get_message(&key).and_then(|m| m.value()) else {
            continue;
        };
        let mut errors = vec![];
        let text = b.format_pattern(pattern, None, &mut errors);
        if errors.is_empty() {
            out.insert(key, text.into_owned());
        }
    }
    out
}

impl Catalogs {
    /// Parses both catalogues. They are compiled in; an error here is a
    /// bug caught by the tests.
    pub fn load() -> Result<Arc<Catalogs>, String> {
        let fr = bundle("fr", FR_SOURCE)?;
        let en = bundle("en", EN_SOURCE)?;
        Ok(Arc::new(Catalogs {
            plain_fr: plain_messages(&fr, FR_SOURCE),
            plain_en: plain_messages(&en, EN_SOURCE),
            fr,
            en,
        }))
    }

    /// A translator for one language.
    pub fn tr(self: &Arc<Self>, lang: Lang) -> Tr {
        Tr {
            catalogs: Arc::clone(self),
            lang,
        }
    }
}

/// Looks up messages in one language; handed to every template.
#[derive(Debug, Clone)]
pub struct Tr {
    catalogs: Arc<Catalogs>,
    /// The language.
    pub lang: Lang,
}

impl Tr {
    /// The message `key`, or the key itself if it is missing (a test makes
    /// sure none is).
    pub fn get(&self, key: &str) -> String {
        let plain = match self.lang {
            Lang::Fr => &self.catalogs.plain_fr,
            Lang::En => &self.catalogs.plain_en,
        };
        match plain.get(key) {
            Some(text) => text.clone(),
            None => self.format(key, None),
        }
    }

    /// The message `key` with named arguments.
    pub fn with(&self, key: &str, args: &[(&str, &str)]) -> String {
        let mut fa = FluentArgs::new();
        for (k, v) in args {
            fa.set(*k, v.to_string());
        }
        self.format(key, Some(&fa))
    }

    fn format(&self, key: &str, args: Option<&FluentArgs>) -> String {
        let b = match self.lang {
            Lang::Fr => &self.catalogs.fr,
            Lang::En => &self.catalogs.en,
        };
        let Some(pattern) = b.get_message(key).and_then(|m| m.value()) else {
            return key.to_string();
        };
        let mut errors = vec![];
        b.format_pattern(pattern, args, &mut errors).into_owned()
    }

    /// Whether `key` exists in this language.
    pub fn has(&self, key: &str) -> bool {
        let b = match self.lang {
            Lang::Fr => &self.catalogs.fr,
            Lang::En => &self.catalogs.en,
        };
        b.has_message(key)
    }

    /// A date and time in a school's time zone, in the reader's format.
    pub fn datetime_in(&self, t: i64, zone: ardoise_core::diary::Tz) -> String {
        chrono::DateTime::from_timestamp(t, 0)
            .map(|d| d.with_timezone(&zone))
            .map(|d| match self.lang {
                Lang::Fr => d.format("%d/%m/%Y %H:%M").to_string(),
                Lang::En => d.format("%Y-%m-%d %H:%M").to_string(),
            })
            .unwrap_or_default()
    }

    /// A date and time for people: `23/11/2026 09:15` (UTC: for times
    /// that belong to no school, such as sign-in throttling).
    pub fn datetime(&self, t: impl std::borrow::Borrow<i64>) -> String {
        chrono::DateTime::from_timestamp(*t.borrow(), 0)
            .map(|d| match self.lang {
                Lang::Fr => d.format("%d/%m/%Y %H:%M").to_string(),
                Lang::En => d.format("%Y-%m-%d %H:%M").to_string(),
            })
            .unwrap_or_default()
    }
}

/// The keys of a catalogue source, for the consistency test.
pub fn keys(source: &str) -> Vec<String> {
    source
        .lines()
        .filter(|l| l.chars().next().is_some_and(|c| c.is_ascii_alphabetic()))
        .filter_map(|l| l.split('=').next().map(|k| k.trim().to_string()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_catalogues_have_the_same_keys() {
        let mut fr = keys(FR_SOURCE);
        let mut en = keys(EN_SOURCE);
        fr.sort();
        en.sort();
        let missing_en: Vec<_> = fr.iter().filter(|k| !en.contains(k)).collect();
        let missing_fr: Vec<_> = en.iter().filter(|k| !fr.contains(k)).collect();
        assert!(
            missing_en.is_empty() && missing_fr.is_empty(),
            "missing in en: {missing_en:?}; missing in fr: {missing_fr:?}"
        );
        assert!(Catalogs::load().is_ok());
    }

    #[test]
    fn accept_language_picks_the_preferred_known_language() {
        assert_eq!(Lang::negotiate("en-GB,en;q=0.9,fr;q=0.8"), Lang::En);
        assert_eq!(Lang::negotiate("de-DE,fr;q=0.5,en;q=0.4"), Lang::Fr);
        assert_eq!(Lang::negotiate("de"), Lang::Fr);
        assert_eq!(Lang::negotiate(""), Lang::Fr);
        assert_eq!(Lang::negotiate("fr;q=0.2, en;q=0.9"), Lang::En);
    }
}
