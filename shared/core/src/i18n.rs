//! A plugin's user-facing messages (what its tool results and errors say) in several
//! languages, as Project Fluent resources (`.ftl`) compiled into the plugin, chosen by the
//! call's locale ([`crate::CallContext::locale`]) with Fluent's language negotiation, and
//! English when the locale has none.

use fluent_bundle::concurrent::FluentBundle;
use fluent_bundle::{FluentArgs, FluentResource, FluentValue};
use fluent_langneg::{NegotiationStrategy, negotiate_languages};
use unic_langid::LanguageIdentifier;

/// A plugin's `locales/<tag>.ftl` files, compiled into it, for
/// [`crate::plugin::PluginBuilder::messages`]: `switchboard::locales!("en", "es")`.
#[macro_export]
macro_rules! locales {
    ($($tag:literal),+ $(,)?) => {
        &[$(($tag, include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/locales/", $tag, ".ftl")))),+]
    };
}

/// A message argument: text as given, or a number (which Fluent formats for the language and
/// selects plural forms by, e.g. `{ $minutes -> [one] … *[other] … }`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Arg<'a> {
    Text(&'a str),
    Number(i64),
}

impl<'a> From<&'a str> for Arg<'a> {
    fn from(s: &'a str) -> Self {
        Self::Text(s)
    }
}

impl<'a> From<&'a String> for Arg<'a> {
    fn from(s: &'a String) -> Self {
        Self::Text(s)
    }
}

impl From<i64> for Arg<'_> {
    fn from(n: i64) -> Self {
        Self::Number(n)
    }
}

impl From<u32> for Arg<'_> {
    fn from(n: u32) -> Self {
        Self::Number(i64::from(n))
    }
}

impl From<usize> for Arg<'_> {
    fn from(n: usize) -> Self {
        Self::Number(i64::try_from(n).unwrap_or(i64::MAX))
    }
}

/// One plugin's messages in each language it ships.
pub struct Messages {
    /// English first: the fallback.
    bundles: Vec<(LanguageIdentifier, FluentBundle<FluentResource>)>,
}

impl std::fmt::Debug for Messages {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let languages: Vec<String> = self.bundles.iter().map(|(l, _)| l.to_string()).collect();
        f.debug_struct("Messages")
            .field("languages", &languages)
            .finish()
    }
}

impl Messages {
    /// `sources` are (language tag, FTL text); English (`en`) must be one of them, and every
    /// language must have exactly English's messages (none missing, none extra). Fails naming
    /// the problem: the resources are the plugin's own, so this is a build mistake caught at
    /// start-up (and by every test that builds the plugin).
    pub fn new(sources: &[(&str, &str)]) -> Result<Self, String> {
        let mut bundles = Vec::new();
        for (tag, text) in sources {
            let lang: LanguageIdentifier = tag
                .parse()
                .map_err(|e| format!("'{tag}' is not a language tag: {e}"))?;
            let resource = FluentResource::try_new((*text).to_owned())
                .map_err(|(_, errors)| format!("the {tag} messages do not parse: {errors:?}"))?;
            let mut bundle = FluentBundle::new_concurrent(vec![lang.clone()]);
            // Plain text for tool results: no Unicode isolation marks around arguments.
            bundle.set_use_isolating(false);
            bundle
                .add_resource(resource)
                .map_err(|errors| format!("the {tag} messages repeat an id: {errors:?}"))?;
            bundles.push((lang, bundle));
        }
        let english = bundles
            .iter()
            .position(|(l, _)| l.language.as_str() == crate::locale::TEMPLATE_LANGUAGE)
            .ok_or("the messages have no English (en) resource to fall back on")?;
        bundles.swap(0, english);
        // Every language has English's messages, and no others.
        let ids = |text: &str| -> Vec<String> {
            FluentResource::try_new(text.to_owned())
                .map(|r| {
                    r.entries()
                        .filter_map(|e| match e {
                            fluent_syntax::ast::Entry::Message(m) => Some(m.id.name.to_owned()),
                            _ => None,
                        })
                        .collect()
                })
                .unwrap_or_default()
        };
        let english_ids: std::collections::BTreeSet<String> = sources
            .iter()
            .filter(|(tag, _)| {
                tag.parse::<LanguageIdentifier>()
                    .is_ok_and(|l| l.language.as_str() == crate::locale::TEMPLATE_LANGUAGE)
            })
            .flat_map(|(_, text)| ids(text))
            .collect();
        for (tag, text) in sources {
            let theirs: std::collections::BTreeSet<String> = ids(text).into_iter().collect();
            if let Some(extra) = theirs.difference(&english_ids).next() {
                return Err(format!(
                    "the {tag} message '{extra}' has no English version"
                ));
            }
            if let Some(missing) = english_ids.difference(&theirs).next() {
                return Err(format!("the {tag} messages lack '{missing}'"));
            }
        }
        Ok(Self { bundles })
    }

    /// Whether message `id` exists in English (every message must).
    pub fn has(&self, id: &str) -> bool {
        self.bundles.first().is_some_and(|(_, b)| b.has_message(id))
    }

    /// Message `id` in the closest language to `locale`, with `args`; English when that
    /// language lacks it. A message whose arguments were not all given still reads, with
    /// `{$name}` in place of each (logged); only an id English lacks comes back as itself.
    pub fn get(&self, locale: &str, id: &str, args: &[(&str, Arg<'_>)]) -> String {
        self.get_in(&self.order(locale), id, args)
    }

    /// The bundles to try for `locale`, best first, English always among them: Fluent's
    /// negotiation, done once per call's [`crate::Speaker`].
    pub fn order(&self, locale: &str) -> Vec<usize> {
        let requested: Vec<LanguageIdentifier> = locale.parse().ok().into_iter().collect();
        let available: Vec<LanguageIdentifier> =
            self.bundles.iter().map(|(l, _)| l.clone()).collect();
        let chosen = negotiate_languages(
            &requested,
            &available,
            available.first(),
            NegotiationStrategy::Filtering,
        );
        let mut order: Vec<usize> = chosen
            .into_iter()
            .filter_map(|lang| self.bundles.iter().position(|(l, _)| l == lang))
            .collect();
        if !order.contains(&0) {
            order.push(0);
        }
        order
    }

    /// Message `id` from the first of `order`'s bundles that has it ([`Messages::order`]).
    pub fn get_in(&self, order: &[usize], id: &str, args: &[(&str, Arg<'_>)]) -> String {
        let mut fluent_args = FluentArgs::new();
        for (k, v) in args {
            let value = match *v {
                Arg::Text(t) => FluentValue::from(t),
                Arg::Number(n) => FluentValue::from(n),
            };
            fluent_args.set(*k, value);
        }
        for &i in order {
            let Some((_, bundle)) = self.bundles.get(i) else {
                continue;
            };
            let Some(pattern) = bundle.get_message(id).and_then(|m| m.value()) else {
                continue;
            };
            let mut errors = Vec::new();
            let text = bundle.format_pattern(pattern, Some(&fluent_args), &mut errors);
            if !errors.is_empty() {
                tracing::error!(
                    message_id = id,
                    ?errors,
                    "a message was formatted without all its arguments"
                );
            }
            return text.into_owned();
        }
        tracing::error!(message_id = id, "no such message in any language");
        id.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EN: &str = "greeting = Hello, { $name }!\nminutes = { $n ->\n    [one] one minute\n   *[other] { $n } minutes\n}\n";
    const ES: &str = "greeting = ¡Hola, { $name }!\nminutes = { $n ->\n    [one] un minuto\n   *[other] { $n } minutos\n}\n";

    #[test]
    fn the_callers_language_else_english() {
        let m = Messages::new(&[("es", ES), ("en", EN)]).unwrap();
        let name = |n| [("name", Arg::Text(n))];
        assert_eq!(m.get("es-US", "greeting", &name("Ana")), "¡Hola, Ana!");
        assert_eq!(m.get("en-GB", "greeting", &name("Ann")), "Hello, Ann!");
        assert_eq!(m.get("fr", "greeting", &name("Anne")), "Hello, Anne!");
        assert_eq!(m.get("not a tag", "greeting", &name("A")), "Hello, A!");
        assert_eq!(m.get("es", "missing", &[]), "missing");
        assert!(m.has("greeting") && !m.has("missing"));
        assert_eq!(
            m.get("es", "greeting", &[]),
            "¡Hola, {$name}!",
            "readable without its arguments"
        );
    }

    #[test]
    fn numbers_choose_plural_forms() {
        let m = Messages::new(&[("en", EN), ("es", ES)]).unwrap();
        assert_eq!(m.get("en", "minutes", &[("n", 1u32.into())]), "one minute");
        assert_eq!(
            m.get("en", "minutes", &[("n", 1440u32.into())]),
            "1440 minutes"
        );
        assert_eq!(m.get("es", "minutes", &[("n", 1i64.into())]), "un minuto");
        assert_eq!(m.get("es", "minutes", &[("n", 5usize.into())]), "5 minutos");
        // Text is never a number: "1" as text takes the other form.
        assert_eq!(m.get("en", "minutes", &[("n", "1".into())]), "1 minutes");
    }

    #[test]
    fn every_language_has_exactly_englishs_messages() {
        assert!(Messages::new(&[("es", ES)]).is_err(), "English is required");
        assert!(Messages::new(&[("en", "broken = {")]).is_err());
        let extra = format!("{ES}nuevo = solo en español\n");
        let e = Messages::new(&[("en", EN), ("es", &extra)]).unwrap_err();
        assert!(e.contains("'nuevo' has no English version"), "{e}");
        let e = Messages::new(&[("en", EN), ("es", "greeting = Hola\n")]).unwrap_err();
        assert!(e.contains("es messages lack 'minutes'"), "{e}");
    }
}
