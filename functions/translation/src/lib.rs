//! The translation plugin: text translated, and its language detected, by Amazon Translate
//! (`TranslateText`; with `auto` as the source, Translate asks Amazon Comprehend for the
//! language). The plugin calls AWS with its own function's role: its manifest's
//! `aws_actions` are what the template grants. It keeps no records.
//!
//! The client is built once per container: by `main` ([`AwsTranslate::from_env`]), or on the
//! first call in `dev` ([`plugin`]), where Amazon Translate is reached with the developer's
//! own AWS credentials, if any.

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_translate::Client;
use aws_sdk_translate::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_translate::types::{Formality, TranslationSettings};
use aws_smithy_types::retry::RetryConfig;
use aws_smithy_types::timeout::TimeoutConfig;
use serde::Deserialize;
use serde_json::{Value, json};
use switchboard::{CallContext, ContractError, Error, Plugin, Speaker, async_trait};

/// The manifest this binary serves and publishes.
pub const MANIFEST: &str = include_str!("../manifest.json");

/// The messages callers hear, by language (`locales/*.ftl`).
const LOCALES: &[(&str, &str)] = switchboard::locales!("en", "es");

/// A translation and the language it was made from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Translated {
    pub text: String,
    pub source: String,
    pub target: String,
}

/// How text is translated (Amazon Translate; a double in tests).
#[async_trait]
pub trait Translator: Send + Sync {
    /// `source` is a Translate language code or `auto`; refusals are said through `sp`, in
    /// the call's language.
    async fn translate(
        &self,
        sp: &Speaker,
        text: &str,
        source: &str,
        target: &str,
        formality: Option<&str>,
    ) -> Result<Translated, Error>;
}

/// Amazon Translate through the AWS SDK.
#[derive(Clone, Debug)]
pub struct AwsTranslate {
    client: Client,
}

/// Inside a call's budget: one retry, 4 s in all.
fn client(sdk: &switchboard_aws::SdkConfig, endpoint: Option<&str>) -> Client {
    let mut conf = aws_sdk_translate::config::Builder::from(sdk)
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(1))
                .operation_attempt_timeout(Duration::from_secs(2))
                .operation_timeout(Duration::from_secs(4))
                .build(),
        )
        .retry_config(RetryConfig::standard().with_max_attempts(2));
    if let Some(url) = endpoint {
        conf = conf.endpoint_url(url);
    }
    Client::from_conf(conf.build())
}

impl AwsTranslate {
    /// A client from the SDK config, at `endpoint` if given (a local Translate).
    pub fn new(sdk: &switchboard_aws::SdkConfig, endpoint: Option<&str>) -> Self {
        Self {
            client: client(sdk, endpoint),
        }
    }

    /// From the environment: the region and credentials Lambda sets, and
    /// `AWS_ENDPOINT_URL_TRANSLATE` for a local Translate.
    pub fn from_env() -> Result<Arc<Self>, switchboard_runtime::Error> {
        let settings = switchboard::settings::Settings::from_env()?;
        let sdk = switchboard_aws::sdk_config(&settings.aws, switchboard_aws::tls_config()?)?;
        let endpoint = std::env::var("AWS_ENDPOINT_URL_TRANSLATE")
            .ok()
            .filter(|v| !v.trim().is_empty());
        Ok(Arc::new(Self::new(&sdk, endpoint.as_deref())))
    }
}

/// Translate's refusals as the error contract; `at` is the parameter a language problem is
/// about (`/targetLanguage` for TranslateText, `/text` for DetectLanguage).
fn error<E>(sp: &Speaker, err: &SdkError<E>, source: &str, target: &str, at: &str) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let SdkError::ServiceError(s) = err else {
        return Error::Unavailable(format!(
            "Amazon Translate could not be reached: {}",
            DisplayErrorContext(err)
        ));
    };
    let code = s.err().code().unwrap_or("unknown");
    let said = s.err().message().unwrap_or_default().to_ascii_lowercase();
    match code {
        "UnsupportedLanguagePairException" if source == "auto" => Error::invalid_field(
            at,
            sp.say("unsupported-from-detected", &[("target", target.into())]),
        ),
        "UnsupportedLanguagePairException" => Error::invalid_field(
            at,
            sp.say(
                "unsupported-pair",
                &[("from", source.into()), ("target", target.into())],
            ),
        ),
        // `auto` needs Amazon Comprehend in the deployment's region: not the caller's to fix.
        "InvalidRequestException" if said.contains("auto") || said.contains("detect") => {
            Error::Unavailable(sp.say("no-detection-here", &[]))
        }
        "ValidationException" => Error::unprocessable(sp.say("refused-text", &[])),
        "DetectedLanguageLowConfidenceException" => {
            Error::invalid_field("/text", sp.say("low-confidence", &[]))
        }
        "TextSizeLimitExceededException" => Error::invalid_field("/text", sp.say("too-long", &[])),
        "InvalidRequestException" => Error::unprocessable(sp.say("refused-codes", &[])),
        "TooManyRequestsException" | "ThrottlingException" | "LimitExceededException" => {
            Error::Unavailable(sp.say("limited", &[]))
        }
        "ServiceUnavailableException" => Error::Unavailable(sp.say("unavailable", &[])),
        _ => Error::Upstream(format!(
            "Amazon Translate answered {code} (HTTP {})",
            s.raw().status().as_u16()
        )),
    }
}

#[async_trait]
impl Translator for AwsTranslate {
    async fn translate(
        &self,
        sp: &Speaker,
        text: &str,
        source: &str,
        target: &str,
        formality: Option<&str>,
    ) -> Result<Translated, Error> {
        let mut request = self
            .client
            .translate_text()
            .text(text)
            .source_language_code(source)
            .target_language_code(target);
        let formality = match formality {
            Some("formal") => Some(Formality::Formal),
            Some("informal") => Some(Formality::Informal),
            _ => None,
        };
        if let Some(f) = formality {
            request = request.settings(TranslationSettings::builder().formality(f).build());
        }
        let at = if source == "auto" && target == DETECT_INTO {
            "/text"
        } else {
            "/targetLanguage"
        };
        let out = request
            .send()
            .await
            .map_err(|e| error(sp, &e, source, target, at))?;
        Ok(Translated {
            text: out.translated_text,
            source: out.source_language_code,
            target: out.target_language_code,
        })
    }
}

/// Built on the first call: `dev` links every plugin, and only this one needs the client.
#[derive(Default)]
struct OnFirstCall {
    cell: tokio::sync::OnceCell<Arc<AwsTranslate>>,
}

#[async_trait]
impl Translator for OnFirstCall {
    async fn translate(
        &self,
        sp: &Speaker,
        text: &str,
        source: &str,
        target: &str,
        formality: Option<&str>,
    ) -> Result<Translated, Error> {
        let t = self
            .cell
            .get_or_try_init(|| async {
                AwsTranslate::from_env().map_err(|e| {
                    Error::Unavailable(format!("Amazon Translate is not configured here: {e}"))
                })
            })
            .await?;
        t.translate(sp, text, source, target, formality).await
    }
}

/// The plugin with Amazon Translate's client built on the first call (`dev`).
pub fn plugin() -> Result<Plugin, ContractError> {
    plugin_with(Arc::new(OnFirstCall::default()))
}

/// The plugin on `translator`.
pub fn plugin_with(translator: Arc<dyn Translator>) -> Result<Plugin, ContractError> {
    let t = translator.clone();
    Plugin::builder(MANIFEST)
        .messages(LOCALES)
        .handler("TranslateText", move |ctx, p| {
            translate_text(t.clone(), ctx, p)
        })
        .handler("DetectLanguage", move |ctx, p| {
            detect_language(translator.clone(), ctx, p)
        })
        .build()
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Config {
    formality: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct TranslateText {
    text: String,
    target_language: String,
    source_language: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DetectLanguage {
    text: String,
}

/// Amazon Translate's variants of a language; other regions translate as the language.
const REGIONAL: [&str; 5] = ["es-MX", "fr-CA", "pt-PT", "zh-TW", "fa-AF"];

/// What DetectLanguage translates into to learn the source.
const DETECT_INTO: &str = "en";

/// A BCP 47 tag as the language code Translate takes: `es-US` → `es`, `es-mx` → `es-MX`,
/// Traditional Chinese (`zh-Hant`, `zh-HK`) → `zh-TW`.
pub fn translate_code(tag: &str) -> String {
    let mut parts = tag.split('-');
    let language = parts.next().unwrap_or_default().to_ascii_lowercase();
    let rest: Vec<String> = parts.map(str::to_ascii_uppercase).collect();
    if language == "zh"
        && rest
            .iter()
            .any(|p| matches!(p.as_str(), "HANT" | "TW" | "HK" | "MO"))
    {
        return "zh-TW".into();
    }
    let region = rest.into_iter().find(|p| p.len() == 2);
    match region {
        Some(r) => {
            let full = format!("{language}-{r}");
            if REGIONAL.contains(&full.as_str()) {
                full
            } else {
                language
            }
        }
        None => language,
    }
}

async fn translate_text(
    t: Arc<dyn Translator>,
    ctx: CallContext,
    p: TranslateText,
) -> Result<Value, Error> {
    let cfg: Config = ctx.config()?;
    let source = p
        .source_language
        .as_deref()
        .map_or_else(|| "auto".to_owned(), translate_code);
    let target = translate_code(&p.target_language);
    if source == target {
        return Ok(
            json!({"translatedText": p.text, "sourceLanguage": source, "targetLanguage": target}),
        );
    }
    let out = t
        .translate(
            &ctx.speaker(),
            &p.text,
            &source,
            &target,
            Some(cfg.formality.as_str()),
        )
        .await?;
    Ok(json!({
        "translatedText": out.text,
        "sourceLanguage": out.source,
        "targetLanguage": out.target,
    }))
}

async fn detect_language(
    t: Arc<dyn Translator>,
    ctx: CallContext,
    p: DetectLanguage,
) -> Result<Value, Error> {
    // Translate detects the source on the way; English text into English comes back as is.
    let out = t
        .translate(&ctx.speaker(), &p.text, "auto", DETECT_INTO, None)
        .await?;
    Ok(json!({"language": out.source}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_become_translate_codes() {
        for (tag, code) in [
            ("es-US", "es"),
            ("es-mx", "es-MX"),
            ("en", "en"),
            ("fr-CA", "fr-CA"),
            ("pt-BR", "pt"),
            ("ZH-tw", "zh-TW"),
            ("zh-Hant", "zh-TW"),
            ("zh-Hans-CN", "zh"),
            ("sr-Latn-RS", "sr"),
        ] {
            assert_eq!(translate_code(tag), code, "{tag}");
        }
    }
}
