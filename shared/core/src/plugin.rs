//! The plugin contract: typed handlers registered against the plugin's embedded manifest.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::SystemTime;

use serde::{Serialize, de::DeserializeOwned};
use serde_json::Value;

use crate::agent::dialects::strip_strict_nulls;
use crate::error::{Detail, Error};
use crate::i18n::{Arg, Messages};
use crate::ids::{Channel, FunctionName, OrgId, PluginName};
use crate::manifest::{CompiledManifest, ManifestError};
use crate::ports::{Api, DataAdapter};
use crate::schedule::Deferrals;
use crate::toolnames;

/// What a handler knows about its call. Everything here is server-side, never from the
/// model's parameters: the organization, scopes and channel from the authorizer context,
/// the caller's number from the voice platform's payload.
#[derive(Clone)]
pub struct CallContext {
    pub org: OrgId,
    pub plugin: PluginName,
    pub function: FunctionName,
    pub channel: Option<Channel>,
    pub session_id: Option<String>,
    /// The caller's number as the voice platform reported it (Retell, Vapi); `None` on
    /// other channels. Never from the model's parameters or a client's header. A default
    /// for searches and contacts, not proof of who is calling.
    pub caller_phone: Option<String>,
    /// The credential's scopes, for functions reserved to staff (e.g. approvals).
    pub scopes: Vec<String>,
    /// `default_config` overlaid by the instance's config, already validated.
    pub config: Arc<Value>,
    pub data: Arc<dyn DataAdapter>,
    /// The vendor API when the instance's data adapter is `api`.
    pub api: Option<Arc<dyn Api>>,
    /// Where calls scheduled for later go, when the platform has a scheduler.
    pub deferrals: Option<Deferrals>,
    /// The language to answer in (BCP 47): the channel's locale, else the organization's;
    /// a plugin's messages follow it ([`CallContext::say`]).
    pub locale: String,
    pub now: SystemTime,
    /// The plugin's messages ([`PluginBuilder::messages`]) in `locale`.
    speaker: Speaker,
}

/// A plugin's messages in one call's language ([`CallContext::speaker`]): the languages to
/// try are negotiated once, on the first message, not per message (and not at all for the
/// calls that say nothing).
#[derive(Clone)]
pub struct Speaker {
    messages: Option<Arc<Messages>>,
    locale: String,
    /// `messages`' languages to try, best first.
    order: std::sync::OnceLock<Arc<[usize]>>,
}

impl Speaker {
    /// `messages` (compiled once per container) in `locale`.
    pub fn new(messages: Option<Arc<Messages>>, locale: impl Into<String>) -> Self {
        Self {
            messages,
            locale: locale.into(),
            order: std::sync::OnceLock::new(),
        }
    }

    /// As [`CallContext::say`].
    pub fn say(&self, id: &str, args: &[(&str, Arg<'_>)]) -> String {
        match &self.messages {
            Some(m) => {
                debug_assert!(m.has(id), "no message {id} in the plugin's English");
                let order = self.order.get_or_init(|| m.order(&self.locale).into());
                m.get_in(order, id, args)
            }
            None => {
                debug_assert!(false, "the plugin has no messages, so none named {id}");
                tracing::error!(message_id = id, "the plugin has no messages");
                id.to_owned()
            }
        }
    }
}

impl std::fmt::Debug for Speaker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Speaker")
            .field("locale", &self.locale)
            .finish_non_exhaustive()
    }
}

/// What a call knows before its function is resolved: everything of [`CallContext`] but the
/// plugin and the function, which [`Plugin::call`] fills in.
#[derive(Clone)]
pub struct CallScope {
    pub org: OrgId,
    pub channel: Option<Channel>,
    pub session_id: Option<String>,
    pub caller_phone: Option<String>,
    pub scopes: Vec<String>,
    pub config: Arc<Value>,
    pub data: Arc<dyn DataAdapter>,
    /// The vendor API when the instance's data adapter is `api`.
    pub api: Option<Arc<dyn Api>>,
    /// Where calls scheduled for later go, when the platform has a scheduler.
    pub deferrals: Option<Deferrals>,
    /// The language to answer in (BCP 47): the channel's locale, else the organization's;
    /// a plugin's messages follow it ([`crate::i18n::Messages`]).
    pub locale: String,
    pub now: SystemTime,
}

/// A call whose function is resolved and whose parameters are valid ([`Plugin::prepare`]).
#[derive(Debug)]
pub struct Prepared {
    function: FunctionName,
    params: Value,
}

impl Prepared {
    pub fn function(&self) -> &FunctionName {
        &self.function
    }

    /// The parameters as validated: strict-mode nulls removed.
    pub fn params(&self) -> &Value {
        &self.params
    }
}

/// UTC time as RFC 3339 truncated to the second, e.g. "2025-12-01T14:00:00Z": the stamp
/// plugins put on the records they write. A clock before 1970 is clamped to the epoch.
pub fn rfc3339(t: SystemTime) -> Result<String, Error> {
    jiff::Timestamp::try_from(t.max(SystemTime::UNIX_EPOCH))
        .and_then(|ts| jiff::Timestamp::from_second(ts.as_second()))
        .map(|ts| ts.to_string())
        .map_err(|e| Error::internal(format!("the clock's time cannot be written down: {e}")))
}

impl CallContext {
    /// The plugin's message `id` in this call's language ([`PluginBuilder::messages`]), with
    /// `args`, e.g. `ctx.say("too-soon", &[("minutes", minutes.into())])`; English when the
    /// language has none. An id the plugin's English lacks fails the tests that reach it
    /// (debug builds) and reads as the id in production.
    pub fn say(&self, id: &str, args: &[(&str, Arg<'_>)]) -> String {
        self.speaker.say(id, args)
    }

    /// [`say`](Self::say) for helpers that outlive or do not hold the context.
    pub fn speaker(&self) -> Speaker {
        self.speaker.clone()
    }

    /// This call's `now` as an RFC 3339 stamp (see [`rfc3339`]).
    pub fn timestamp(&self) -> Result<String, Error> {
        rfc3339(self.now)
    }

    /// The vendor API this instance is connected to; 422 `invalid_config` when its data
    /// adapter (or the channel assignment's override) is not an `api` one.
    pub fn api(&self) -> Result<&dyn Api, Error> {
        self.api.as_deref().ok_or_else(|| Error::Validation {
            code: "invalid_config",
            message: format!(
                "the {} plugin calls its vendor's API: set the instance's data_adapter to {{\"type\": \"api\", \"base_url\": …, \"credential\": …, \"auth\": …}}",
                self.plugin
            ),
            details: vec![Detail::new("/data_adapter/type", "must be api")],
        })
    }

    /// Schedules this plugin's `function` (one of its manifest's `scheduled_functions`) to
    /// run with `parameters` at `at`, for this call's organization, channel and scopes,
    /// under `name` (the plugin's own, e.g. "reminder-1042"; unique per organization and
    /// plugin). A name already scheduled is `409`; without a scheduler in this deployment,
    /// `503`.
    pub async fn schedule_call(
        &self,
        name: &str,
        at: SystemTime,
        function: &str,
        parameters: Value,
    ) -> Result<(), Error> {
        self.deferrals()?
            .schedule(name, at, self.now, function, parameters)
            .await
    }

    /// Cancels the call scheduled under `name`; whether there was one.
    pub async fn cancel_scheduled_call(&self, name: &str) -> Result<bool, Error> {
        self.deferrals()?.cancel(name).await
    }

    fn deferrals(&self) -> Result<&Deferrals, Error> {
        self.deferrals.as_ref().ok_or_else(|| {
            Error::Unavailable(format!(
                "the {} plugin schedules calls, and this deployment has no scheduler (SWITCHBOARD_SCHEDULE_GROUP)",
                self.plugin
            ))
        })
    }

    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }

    /// The effective config as the plugin's own type.
    pub fn config<T: DeserializeOwned>(&self) -> Result<T, Error> {
        T::deserialize(self.config.as_ref()).map_err(|e| Error::Validation {
            code: "invalid_config",
            message: format!("the {} instance's config cannot be used: {e}", self.plugin),
            details: Vec::new(),
        })
    }
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;
type Handler = Arc<dyn Fn(CallContext, Value) -> BoxFuture<Result<Value, Error>> + Send + Sync>;

/// A plugin whose manifest and handlers are known to match.
pub struct Plugin {
    manifest: Arc<CompiledManifest>,
    handlers: HashMap<FunctionName, Handler>,
    messages: Option<Arc<Messages>>,
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin")
            .field("manifest", &self.manifest)
            .finish_non_exhaustive()
    }
}

/// Start-up failure of a plugin: its manifest or its handler set is wrong.
#[derive(Debug, thiserror::Error)]
pub enum ContractError {
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error("plugin {plugin}: functions without a handler: {}", .functions.join(", "))]
    MissingHandlers {
        plugin: String,
        functions: Vec<String>,
    },
    #[error("plugin {plugin}: handlers for functions not in manifest.json: {}", .handlers.join(", "))]
    UnknownHandlers {
        plugin: String,
        handlers: Vec<String>,
    },
    #[error("plugin {plugin}: handler '{handler}' is registered twice")]
    DuplicateHandler { plugin: String, handler: String },
    #[error("plugin {plugin}: its messages cannot be used: {problem}")]
    Messages { plugin: String, problem: String },
}

pub struct PluginBuilder {
    manifest: Result<CompiledManifest, ManifestError>,
    handlers: Vec<(String, Handler)>,
    messages: &'static [(&'static str, &'static str)],
}

impl Plugin {
    /// Starts a plugin from its manifest text (`include_str!("../manifest.json")`).
    pub fn builder(manifest_json: &str) -> PluginBuilder {
        PluginBuilder {
            manifest: CompiledManifest::from_json(manifest_json),
            handlers: Vec::new(),
            messages: &[],
        }
    }

    pub fn manifest(&self) -> &CompiledManifest {
        &self.manifest
    }

    /// The plugin's messages in `locale`, as a call in that language says them (tests of
    /// helpers that take a [`Speaker`]).
    pub fn speaker(&self, locale: &str) -> Speaker {
        Speaker::new(self.messages.clone(), locale)
    }

    pub fn name(&self) -> &PluginName {
        self.manifest.name()
    }

    /// The routes this plugin answers: `/plugins/<name>` and its manifest's `route_aliases`.
    pub fn routes(&self) -> Vec<String> {
        let mut routes = vec![format!("/plugins/{}", self.name())];
        routes.extend(self.manifest.manifest().route_aliases.iter().cloned());
        routes
    }

    /// The declared function a tool name stands for: the declared name, or a name the agent
    /// builder qualified ([`crate::toolnames`]); 404 `unknown_function` otherwise.
    pub fn resolve(&self, tool: &str) -> Result<FunctionName, Error> {
        let functions = self.manifest.manifest().functions.iter().map(|f| &f.name);
        toolnames::resolve(self.name(), functions, tool)
            .cloned()
            .ok_or_else(|| {
                let known: Vec<&str> = self
                    .manifest
                    .manifest()
                    .functions
                    .iter()
                    .filter(|f| f.is_tool())
                    .map(|f| f.name.as_str())
                    .collect();
                Error::NotFound {
                    code: "unknown_function",
                    message: format!(
                        "the {} plugin has no function '{}'; available: {}",
                        self.name(),
                        tool.chars().take(64).collect::<String>(),
                        known.join(", ")
                    ),
                }
            })
    }

    /// One call, exactly as every caller makes it (the pipeline, the test kit): resolve the
    /// tool name, drop the nulls OpenAI's strict mode sends for omitted optional parameters,
    /// validate against the manifest ([`Plugin::prepare`]), run the handler
    /// ([`Plugin::run`]). The pipeline calls the two halves with the instance's config and
    /// data adapter looked up in between, so a request's own mistakes are reported first.
    pub async fn call(&self, tool: &str, params: Value, scope: CallScope) -> Result<Value, Error> {
        let call = self.prepare(tool, params)?;
        self.run(call, scope).await
    }

    /// The function a tool name stands for, with its parameters normalised and validated.
    pub fn prepare(&self, tool: &str, mut params: Value) -> Result<Prepared, Error> {
        let function = self.resolve(tool)?;
        tracing::Span::current().record("function", function.as_str());
        if let Some(def) = self.manifest.function(function.as_str()) {
            strip_strict_nulls(&def.parameters, &mut params);
        }
        self.manifest.validate_params(&function, &params)?;
        Ok(Prepared { function, params })
    }

    /// Runs a prepared call's handler in `scope`.
    pub async fn run(&self, call: Prepared, scope: CallScope) -> Result<Value, Error> {
        let ctx = CallContext {
            org: scope.org,
            plugin: self.name().clone(),
            function: call.function,
            channel: scope.channel,
            session_id: scope.session_id,
            caller_phone: scope.caller_phone,
            scopes: scope.scopes,
            config: scope.config,
            data: scope.data,
            api: scope.api,
            deferrals: scope.deferrals.map(|d| {
                d.for_plugin(
                    self.name().clone(),
                    self.manifest.manifest().scheduled_functions.clone(),
                )
            }),
            speaker: Speaker::new(self.messages.clone(), scope.locale.clone()),
            locale: scope.locale,
            now: scope.now,
        };
        self.invoke(ctx, call.params).await
    }

    /// Runs a function's handler on parameters that were already validated.
    async fn invoke(&self, ctx: CallContext, params: Value) -> Result<Value, Error> {
        let handler = self
            .handlers
            .get(&ctx.function)
            .ok_or_else(|| Error::internal(format!("no handler for {}", ctx.function)))?;
        handler(ctx, params).await
    }
}

impl PluginBuilder {
    /// The plugin's messages to callers, as (language tag, Fluent resource) pairs, e.g.
    /// `[("en", include_str!("../locales/en.ftl")), ("es", include_str!("../locales/es.ftl"))]`:
    /// English required, every language with exactly English's messages (checked by
    /// [`build`](Self::build)); handlers read them with [`CallContext::say`].
    pub fn messages(mut self, sources: &'static [(&'static str, &'static str)]) -> Self {
        self.messages = sources;
        self
    }

    /// Registers the handler of one manifest function. `P` is deserialized from the
    /// validated parameters; `R` is serialized into the response's `result`.
    pub fn handler<P, R, F, Fut>(mut self, function: &str, f: F) -> Self
    where
        P: DeserializeOwned + Send + 'static,
        R: Serialize + 'static,
        F: Fn(CallContext, P) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<R, Error>> + Send + 'static,
    {
        let f = Arc::new(f);
        let handler: Handler = Arc::new(move |ctx, params| {
            let f = f.clone();
            Box::pin(async move {
                let params: P = serde_json::from_value(params).map_err(|e| Error::Validation {
                    code: "validation_failed",
                    message: format!("parameters for {} are invalid: {e}", ctx.function),
                    details: vec![Detail::new("", e.to_string())],
                })?;
                let out = f(ctx, params).await?;
                serde_json::to_value(out).map_err(|e| Error::internal(e.to_string()))
            })
        });
        self.handlers.push((function.to_owned(), handler));
        self
    }

    /// Checks that every manifest function has exactly one handler and vice versa.
    pub fn build(self) -> Result<Plugin, ContractError> {
        let manifest = self.manifest?;
        let plugin = manifest.name().to_string();
        let mut handlers = HashMap::new();
        let mut unknown = Vec::new();
        for (name, h) in self.handlers {
            match manifest.function(&name) {
                Some(def) => {
                    if handlers.insert(def.name.clone(), h).is_some() {
                        return Err(ContractError::DuplicateHandler {
                            plugin,
                            handler: name,
                        });
                    }
                }
                None => unknown.push(name),
            }
        }
        if !unknown.is_empty() {
            return Err(ContractError::UnknownHandlers {
                plugin,
                handlers: unknown,
            });
        }
        let missing: Vec<String> = manifest
            .manifest()
            .functions
            .iter()
            .filter(|f| !handlers.contains_key(&f.name))
            .map(|f| f.name.to_string())
            .collect();
        if !missing.is_empty() {
            return Err(ContractError::MissingHandlers {
                plugin,
                functions: missing,
            });
        }
        let messages = if self.messages.is_empty() {
            None
        } else {
            let compiled = Messages::new(self.messages)
                .map_err(|problem| ContractError::Messages { plugin, problem })?;
            Some(Arc::new(compiled))
        };
        Ok(Plugin {
            manifest: Arc::new(manifest),
            handlers,
            messages,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MANIFEST: &str = r#"{
        "name": "echo", "version": "0.1.0", "display_name": "Echo", "description": "Echoes",
        "instruction_template": "",
        "functions": [
            {"name": "Say", "description": "say", "side_effects": false, "parameters": {"type": "object"}},
            {"name": "Shout", "description": "shout", "side_effects": false, "parameters": {"type": "object"}}
        ]
    }"#;

    async fn ok(_: CallContext, v: Value) -> Result<Value, Error> {
        Ok(v)
    }

    #[test]
    fn timestamps_are_rfc3339_utc() {
        use std::time::Duration;
        let at = |s: u64| rfc3339(SystemTime::UNIX_EPOCH + Duration::from_secs(s)).unwrap();
        assert_eq!(at(0), "1970-01-01T00:00:00Z");
        assert_eq!(at(1_764_597_600), "2025-12-01T14:00:00Z");
        assert_eq!(at(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(at(951_782_400 + 86_399), "2000-02-29T23:59:59Z");
        assert_eq!(at(4_107_542_399), "2100-02-28T23:59:59Z");
        let before = SystemTime::UNIX_EPOCH - Duration::from_secs(5);
        assert_eq!(rfc3339(before).unwrap(), "1970-01-01T00:00:00Z");
    }

    #[test]
    fn a_time_beyond_the_calendar_is_an_internal_error() {
        let far = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(400_000_000_000);
        assert_eq!(rfc3339(far).unwrap_err().status(), 500);
    }

    #[test]
    fn a_function_without_a_handler_fails_start_up() {
        let err = Plugin::builder(MANIFEST)
            .handler("Say", ok)
            .build()
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "plugin echo: functions without a handler: Shout"
        );
    }

    #[test]
    fn a_handler_without_a_function_fails_start_up() {
        let err = Plugin::builder(MANIFEST)
            .handler("Say", ok)
            .handler("Shout", ok)
            .handler("Whisper", ok)
            .build()
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "plugin echo: handlers for functions not in manifest.json: Whisper"
        );
    }

    #[test]
    fn an_invalid_manifest_fails_start_up() {
        let err = Plugin::builder("{}").build().unwrap_err();
        assert!(err.to_string().contains("'name' is required"), "{err}");
    }

    #[test]
    fn matching_handlers_build() {
        let p = Plugin::builder(MANIFEST)
            .handler("Say", ok)
            .handler("Shout", ok)
            .build()
            .unwrap();
        assert_eq!(p.name().as_str(), "echo");
    }
}
