//! Locales: which language an agent speaks. A channel's `locale`, else the organization
//! profile's, is a BCP 47 tag (`es-US`); a plugin's manifest offers its instruction template
//! in English (`instruction_template`) and in other languages (`instruction_templates`,
//! keyed by tag, e.g. `es`). Project Fluent's negotiation picks the closest one (`es-US`
//! takes `es`, `es-MX` before `es` when both exist), English when none matches.

use std::collections::BTreeMap;

use fluent_langneg::{NegotiationStrategy, negotiate_languages};
use unic_langid::LanguageIdentifier;

/// The locale of an organization that has not set one.
pub const DEFAULT_LOCALE: &str = "en-US";

/// The language of a manifest's `instruction_template`.
pub const TEMPLATE_LANGUAGE: &str = "en";

/// Whether `tag` is a BCP 47 language tag with an ISO 639 language (`es`, `es-US`,
/// `zh-Hant-TW`); not `und`, nor the 5-8 letter subtags BCP 47 reserves ("Spanish").
pub fn is_tag(tag: &str) -> bool {
    let primary = tag.split(['-', '_']).next().unwrap_or_default();
    !tag.is_empty()
        && tag.len() <= 35
        && (2..=3).contains(&primary.len())
        && !primary.eq_ignore_ascii_case("und")
        && tag.parse::<LanguageIdentifier>().is_ok()
}

/// `tag` in its canonical form (`ES-us` → `es-US`), if it is a language tag.
pub fn canonical(tag: &str) -> Option<String> {
    is_tag(tag)
        .then(|| {
            tag.parse::<LanguageIdentifier>()
                .ok()
                .map(|l| l.to_string())
        })
        .flatten()
}

/// The template for `locale`: the closest of `localized` (by tag), else `default`
/// (English). Returns the text and the tag it is in.
pub fn choose<'a>(
    locale: &str,
    default: &'a str,
    localized: &'a BTreeMap<String, String>,
) -> (&'a str, String) {
    let Ok(requested) = locale.parse::<LanguageIdentifier>() else {
        return (default, TEMPLATE_LANGUAGE.to_owned());
    };
    let mut available: Vec<LanguageIdentifier> =
        localized.keys().filter_map(|k| k.parse().ok()).collect();
    let Ok(english) = TEMPLATE_LANGUAGE.parse::<LanguageIdentifier>() else {
        return (default, TEMPLATE_LANGUAGE.to_owned());
    };
    available.push(english.clone());
    let chosen = negotiate_languages(
        &[requested],
        &available,
        Some(&english),
        NegotiationStrategy::Lookup,
    );
    let Some(tag) = chosen.first().map(|l| l.to_string()) else {
        return (default, TEMPLATE_LANGUAGE.to_owned());
    };
    match localized.iter().find(|(k, _)| {
        k.parse::<LanguageIdentifier>()
            .is_ok_and(|l| l.to_string() == tag)
    }) {
        Some((_, text)) => (text.as_str(), tag),
        None => (default, TEMPLATE_LANGUAGE.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_closest_language_is_chosen() {
        let localized: BTreeMap<String, String> = [
            ("es".to_owned(), "hola".to_owned()),
            ("es-MX".to_owned(), "qué onda".to_owned()),
            ("fr".to_owned(), "bonjour".to_owned()),
        ]
        .into();
        let pick = |l: &str| choose(l, "hello", &localized);
        assert_eq!(pick("es-US"), ("hola", "es".to_owned()));
        assert_eq!(pick("es-MX"), ("qué onda", "es-MX".to_owned()));
        assert_eq!(pick("fr-CA"), ("bonjour", "fr".to_owned()));
        assert_eq!(pick("en-US"), ("hello", "en".to_owned()));
        assert_eq!(pick("de-DE"), ("hello", "en".to_owned()));
        assert_eq!(pick("not a tag"), ("hello", "en".to_owned()));
        assert!(is_tag("es-US") && is_tag("zh-Hant-TW"));
        for bad in ["Spanish", "Spanish please", "", "und", "e", "es-"] {
            assert!(!is_tag(bad), "{bad}");
        }
    }
}
