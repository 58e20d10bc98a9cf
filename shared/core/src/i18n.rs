//! A plugin's user-facing messages (what its tool results and errors say) in several
//! languages, as Project Fluent resources (`.ftl`) compiled into the plugin, chosen by the
//! call's locale ([`crate::CallContext::locale`]) with Fluent's language negotiation, and
//! English when the locale has none.

use fluent_bundle::concurrent::FluentBundle;
use fluent_bundle::{FluentArgs, FluentResource, FluentValue};
use fluent_langneg::{NegotiationStrategy, negotiate_languages};
use unic_langid::LanguageIdentifier;

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
    /// message of another language must exist in English. Fails naming the problem: the
    /// resources are the plugin's own, so this is a build mistake caught at start-up.
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
        // Every message exists in English, the fallback.
        for (tag, text) in sources {
            let resource = FluentResource::try_new((*text).to_owned())
                .map_err(|(_, errors)| format!("the {tag} messages do not parse: {errors:?}"))?;
            for entry in resource.entries() {
                if let fluent_syntax::ast::Entry::Message(m) = entry
                    && !bundles[0].1.has_message(m.id.name)
                {
                    return Err(format!(
                        "the {tag} message '{}' has no English version",
                        m.id.name
                    ));
                }
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
    pub fn get(&self, locale: &str, id: &str, args: &[(&str, &str)]) -> String {
        let mut fluent_args = FluentArgs::new();
        for (k, v) in args {
            fluent_args.set(*k, FluentValue::from(*v));
        }
        let requested: Vec<LanguageIdentifier> = locale.parse().ok().into_iter().collect();
        let available: Vec<LanguageIdentifier> =
            self.bundles.iter().map(|(l, _)| l.clone()).collect();
        let chosen = negotiate_languages(
            &requested,
            &available,
            available.first(),
            NegotiationStrategy::Filtering,
        );
        for lang in chosen {
            let Some((_, bundle)) = self.bundles.iter().find(|(l, _)| l == lang) else {
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

    const EN: &str = "greeting = Hello, { $name }!\nonly-en = English only\n";
    const ES: &str = "greeting = ¡Hola, { $name }!\n";

    #[test]
    fn the_callers_language_else_english() {
        let m = Messages::new(&[("es", ES), ("en", EN)]).unwrap();
        assert_eq!(
            m.get("es-US", "greeting", &[("name", "Ana")]),
            "¡Hola, Ana!"
        );
        assert_eq!(
            m.get("en-GB", "greeting", &[("name", "Ann")]),
            "Hello, Ann!"
        );
        assert_eq!(m.get("fr", "greeting", &[("name", "Anne")]), "Hello, Anne!");
        assert_eq!(m.get("es", "only-en", &[]), "English only");
        assert_eq!(
            m.get("not a tag", "greeting", &[("name", "A")]),
            "Hello, A!"
        );
        assert_eq!(m.get("es", "missing", &[]), "missing");
        assert!(m.has("only-en") && !m.has("missing"));
        assert!(Messages::new(&[("es", ES)]).is_err(), "English is required");
        assert!(Messages::new(&[("en", "broken = {")]).is_err());
        assert!(
            Messages::new(&[("en", EN), ("es", "nuevo = solo en español\n")]).is_err(),
            "every message exists in English"
        );
        assert_eq!(
            m.get("es", "greeting", &[]),
            "¡Hola, {$name}!",
            "readable without its arguments"
        );
    }
}
