//! The call pipeline behind `POST /plugins/{plugin}`: tenant → instance → function →
//! parameters → effective config → data adapter → handler → envelope.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use serde_json::{Map, Value, json};
use tracing::Instrument;

use crate::agent::dialects::strip_strict_nulls;
use crate::auth::{TenantContext, no_tenant};
use crate::cache::TtlCache;
use crate::data::DataAdapterFactory;
use crate::error::Error;
use crate::ids::{Channel, FunctionName, OrgId, PluginName};
use crate::plugin::{CallContext, Plugin};
use crate::registry::{ChannelConfig, DataAdapterConfig, Registry};

/// Largest accepted request body.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// The scope a tenant's credential needs to call plugin functions.
pub const CALL_SCOPE: &str = "plugins:call";

pub type Clock = Arc<dyn Fn() -> SystemTime + Send + Sync>;

/// Per-container state shared by every call: built once in `main`.
pub struct Platform {
    pub registry: Registry,
    pub data: Arc<dyn DataAdapterFactory>,
    instances: TtlCache<(OrgId, PluginName), Option<Arc<ResolvedInstance>>>,
    channels: TtlCache<(OrgId, Channel), Option<Arc<ChannelConfig>>>,
    clock: Clock,
}

/// An instance as a call needs it: resolved and validated once per cache fill.
struct ResolvedInstance {
    enabled: bool,
    /// Set when the instance is pinned to a major version this build does not serve.
    version_mismatch: Option<String>,
    config: Result<Arc<Value>, Error>,
    data_adapter: DataAdapterConfig,
}

impl Platform {
    pub fn new(registry: Registry, data: Arc<dyn DataAdapterFactory>, cache_ttl: Duration) -> Self {
        Self {
            registry,
            data,
            instances: TtlCache::new(cache_ttl),
            channels: TtlCache::new(cache_ttl),
            clock: Arc::new(SystemTime::now),
        }
    }

    /// Replaces the clock (tests pin "now").
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    pub fn now(&self) -> SystemTime {
        (self.clock)()
    }

    async fn instance(
        &self,
        plugin: &Plugin,
        org: &OrgId,
    ) -> Result<Option<Arc<ResolvedInstance>>, Error> {
        let key = (org.clone(), plugin.name().clone());
        if let Some(hit) = self.instances.get(&key) {
            return Ok(hit);
        }
        let resolved = self
            .registry
            .get_instance(org, plugin.name())
            .await?
            .map(|v| {
                let manifest = plugin.manifest();
                let effective = manifest.effective_config(&v.value.config);
                let served = &manifest.manifest().version;
                let pinned = &v.value.pinned_version;
                Arc::new(ResolvedInstance {
                    enabled: v.value.enabled,
                    version_mismatch: (major(pinned) != major(served)).then(|| {
                        format!(
                            "this organization's {} instance is pinned to version {pinned}, but this deployment serves {served}; upgrade the instance or deploy {pinned}",
                            plugin.name()
                        )
                    }),
                    config: manifest
                        .validate_config(&effective)
                        .map(|()| Arc::new(effective)),
                    data_adapter: v.value.data_adapter,
                })
            });
        self.instances.insert(key, resolved.clone());
        Ok(resolved)
    }
}

fn major(version: &str) -> &str {
    version.split('.').next().unwrap_or(version)
}

impl Platform {
    /// The data adapter for a call: the instance's, unless the caller's channel assignment
    /// overrides it (ARCHITECTURE: "per instance, and per channel assignment override").
    async fn adapter_config(
        &self,
        org: &OrgId,
        plugin: &PluginName,
        channel: Option<&Channel>,
        instance: &DataAdapterConfig,
    ) -> Result<DataAdapterConfig, Error> {
        let Some(channel) = channel else {
            return Ok(instance.clone());
        };
        let key = (org.clone(), channel.clone());
        let config = match self.channels.get(&key) {
            Some(hit) => hit,
            None => {
                let found = self
                    .registry
                    .get_channel(org, channel)
                    .await?
                    .map(|v| Arc::new(v.value));
                self.channels.insert(key, found.clone());
                found
            }
        };
        let assigned = config
            .as_ref()
            .and_then(|c| c.plugin_assignments.iter().find(|a| &a.plugin == plugin))
            .and_then(|a| a.data_adapter.clone());
        Ok(assigned.unwrap_or_else(|| instance.clone()))
    }
}

/// What a call answers: the contract's envelope around a result, or a channel's own shape.
enum Reply {
    Result(Value),
    Raw(Value),
}

/// A parsed call envelope.
struct Envelope {
    function: String,
    parameters: Value,
    session_id: Option<String>,
}

/// Most tool calls one Vapi request may carry.
const MAX_VAPI_CALLS: usize = 16;

/// A request body in one of the shapes a plugin route accepts.
enum Incoming {
    /// Switchboard's envelope, or a Retell custom-function call mapped onto it.
    Call(Envelope),
    /// Vapi's `tool-calls` message: each call is answered under its `toolCallId`.
    Vapi(Vec<(String, Envelope)>),
}

fn parse_body(body: &[u8]) -> Result<Incoming, Error> {
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        Error::invalid_request(format!(
            "the body is not valid JSON ({e}); send {{\"function\": \"…\", \"parameters\": {{…}}}}"
        ))
    })?;
    let Value::Object(obj) = value else {
        return Err(Error::invalid_request(
            "the body must be a JSON object: {\"function\": \"…\", \"parameters\": {…}}",
        ));
    };
    if let Some(calls) = obj
        .get("message")
        .and_then(|m| m.get("toolCallList"))
        .and_then(Value::as_array)
    {
        let session = obj
            .get("message")
            .and_then(|m| m.get("call"))
            .and_then(|c| c.get("id"))
            .and_then(Value::as_str)
            .filter(|s| s.len() <= 256);
        return vapi_calls(calls, session).map(Incoming::Vapi);
    }
    if !obj.contains_key("function") && obj.contains_key("args") {
        return retell_call(obj).map(Incoming::Call);
    }
    native_envelope(obj).map(Incoming::Call)
}

/// Retell custom function: `{"name", "call": {"call_id", …}, "args": {…}}`.
fn retell_call(mut obj: Map<String, Value>) -> Result<Envelope, Error> {
    let function = match obj.remove("name") {
        Some(Value::String(s)) => s,
        _ => {
            return Err(Error::invalid_request(
                "a Retell call needs 'name', the function to call",
            ));
        }
    };
    let parameters = match obj.remove("args") {
        Some(p @ Value::Object(_)) => p,
        _ => {
            return Err(Error::invalid_request(
                "a Retell call's 'args' must be a JSON object",
            ));
        }
    };
    let session_id = obj
        .get("call")
        .and_then(|c| c.get("call_id"))
        .and_then(Value::as_str)
        .filter(|s| s.len() <= 256)
        .map(str::to_owned);
    Ok(Envelope {
        function,
        parameters,
        session_id,
    })
}

/// Vapi `toolCallList` entries: `{"id", "name", "arguments"}` or the OpenAI-style
/// `{"id", "function": {"name", "arguments"}}`, arguments as an object or a JSON string.
fn vapi_calls(calls: &[Value], session: Option<&str>) -> Result<Vec<(String, Envelope)>, Error> {
    if calls.is_empty() || calls.len() > MAX_VAPI_CALLS {
        return Err(Error::invalid_request(format!(
            "a Vapi message must carry 1 to {MAX_VAPI_CALLS} tool calls, not {}",
            calls.len()
        )));
    }
    calls
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let id = c
                .get("id")
                .and_then(Value::as_str)
                .ok_or_else(|| Error::invalid_request(format!("toolCallList[{i}] has no 'id'")))?;
            let f = c.get("function").unwrap_or(c);
            let name = f.get("name").and_then(Value::as_str).ok_or_else(|| {
                Error::invalid_request(format!("toolCallList[{i}] has no function name"))
            })?;
            let parameters = match f.get("arguments") {
                None | Some(Value::Null) => Value::Object(Map::new()),
                Some(a @ Value::Object(_)) => a.clone(),
                Some(Value::String(text)) => serde_json::from_str(text)
                    .ok()
                    .filter(Value::is_object)
                    .ok_or_else(|| {
                        Error::invalid_request(format!(
                            "toolCallList[{i}].arguments is not a JSON object"
                        ))
                    })?,
                Some(_) => {
                    return Err(Error::invalid_request(format!(
                        "toolCallList[{i}].arguments must be a JSON object"
                    )));
                }
            };
            Ok((
                id.to_owned(),
                Envelope {
                    function: name.to_owned(),
                    parameters,
                    session_id: session.map(str::to_owned),
                },
            ))
        })
        .collect()
}

fn native_envelope(mut obj: Map<String, Value>) -> Result<Envelope, Error> {
    let function = match obj.remove("function") {
        Some(Value::String(s)) => s,
        Some(_) => return Err(Error::invalid_request("'function' must be a string")),
        None => {
            return Err(Error::invalid_request(
                "'function' is required: name the function to call",
            ));
        }
    };
    let parameters = match obj.remove("parameters") {
        None | Some(Value::Null) => Value::Object(Map::new()),
        Some(p @ Value::Object(_)) => p,
        Some(_) => return Err(Error::invalid_request("'parameters' must be a JSON object")),
    };
    let session_id = match obj.remove("sessionId") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.len() <= 256 => Some(s),
        Some(_) => {
            return Err(Error::invalid_request(
                "'sessionId' must be a string of at most 256 characters",
            ));
        }
    };
    if let Some(extra) = obj.keys().next() {
        return Err(Error::invalid_request(format!(
            "unexpected field '{extra}': the body takes 'function', 'parameters' and 'sessionId'"
        )));
    }
    Ok(Envelope {
        function,
        parameters,
        session_id,
    })
}

/// One plugin's pipeline. In Lambda there is one per container; `dev` keeps one per plugin.
pub struct PluginService {
    plugin: Plugin,
    routes: Vec<String>,
    platform: Arc<Platform>,
}

/// The 404 for a path no plugin answers; `served` lists the routes that exist.
pub fn route_error(path: &str, served: &[String]) -> Error {
    match path.rsplit_once("/plugins/") {
        Some((_, name)) => Error::NotFound {
            code: "unknown_plugin",
            message: format!(
                "no plugin named '{name}' is served here; available: {}",
                served.join(", ")
            ),
        },
        None => Error::not_found(format!(
            "no route {path}; plugins answer POST /plugins/<name>"
        )),
    }
}

/// A call as the pipeline sees it, whatever carried it (API Gateway event or `dev`).
pub struct CallInput<'a> {
    pub tenant: Option<TenantContext>,
    pub body: &'a [u8],
    pub request_id: &'a str,
}

impl PluginService {
    pub fn new(plugin: Plugin, platform: Arc<Platform>) -> Self {
        Self {
            routes: plugin.routes(),
            plugin,
            platform,
        }
    }

    pub fn plugin(&self) -> &Plugin {
        &self.plugin
    }

    /// `/plugins/<name>` and the plugin's legacy aliases.
    pub fn routes(&self) -> &[String] {
        &self.routes
    }

    /// Runs one call and returns `(status, body)` in the contract's envelope.
    pub async fn call(&self, input: CallInput<'_>) -> (u16, Value) {
        let started = Instant::now();
        let org = input.tenant.as_ref().map(|t| t.org.to_string());
        let span = tracing::info_span!(
            "call",
            request_id = input.request_id,
            org = org.as_deref().unwrap_or("-"),
            plugin = %self.plugin.name(),
            function = tracing::field::Empty,
        );
        let result = self.run(input, &span).instrument(span.clone()).await;
        let elapsed_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        span.in_scope(|| match &result {
            Ok(_) => tracing::info!(status = 200, elapsed_us, "call ok"),
            Err(Error::Internal(cause)) => {
                tracing::error!(status = 500, elapsed_us, cause = %cause, "call failed: internal")
            }
            Err(e) if e.status() >= 500 => {
                tracing::warn!(
                    status = e.status(),
                    code = e.code(),
                    elapsed_us,
                    "call failed"
                )
            }
            Err(e) => tracing::info!(
                status = e.status(),
                code = e.code(),
                elapsed_us,
                "call refused"
            ),
        });
        match result {
            Ok(Reply::Result(v)) => (200, json!({"success": true, "result": v})),
            Ok(Reply::Raw(v)) => (200, v),
            Err(e) => (e.status(), e.to_body()),
        }
    }

    async fn run(&self, input: CallInput<'_>, span: &tracing::Span) -> Result<Reply, Error> {
        let tenant = input.tenant.ok_or_else(no_tenant)?;
        if !tenant.scopes.iter().any(|s| s == CALL_SCOPE) {
            return Err(Error::Forbidden {
                code: "forbidden",
                message: format!(
                    "this credential lacks the '{CALL_SCOPE}' scope needed to call plugins"
                ),
            });
        }
        if input.body.len() > MAX_BODY_BYTES {
            return Err(Error::PayloadTooLarge {
                size: input.body.len(),
                limit: MAX_BODY_BYTES,
            });
        }
        match parse_body(input.body)? {
            Incoming::Call(envelope) => self
                .run_one(&tenant, envelope, span)
                .await
                .map(Reply::Result),
            Incoming::Vapi(calls) => {
                // Vapi wants HTTP 200 with one single-line string per call.
                let mut results = Vec::with_capacity(calls.len());
                for (id, envelope) in calls {
                    let function = envelope.function.clone();
                    results.push(match self.run_one(&tenant, envelope, span).await {
                        Ok(Value::String(text)) => json!({"toolCallId": id, "result": text}),
                        Ok(v) => json!({"toolCallId": id, "result": v.to_string()}),
                        Err(e) => {
                            // The HTTP status is 200 whatever happens, so say it here.
                            match &e {
                                Error::Internal(cause) => tracing::error!(tool_call = %id, %function, cause = %cause, "vapi call failed: internal"),
                                _ => tracing::info!(tool_call = %id, %function, status = e.status(), code = e.code(), "vapi call refused"),
                            }
                            json!({"toolCallId": id, "error": e.to_string()})
                        }
                    });
                }
                Ok(Reply::Raw(json!({"results": results})))
            }
        }
    }

    /// One function call, after the tenant and body checks.
    async fn run_one(
        &self,
        tenant: &TenantContext,
        envelope: Envelope,
        span: &tracing::Span,
    ) -> Result<Value, Error> {
        let plugin = &self.plugin;
        let name = plugin.name();

        let instance = self.platform.instance(plugin, &tenant.org).await?;
        let instance = match instance {
            Some(i) if i.enabled => i,
            Some(_) => {
                return Err(Error::Forbidden {
                    code: "plugin_not_enabled",
                    message: format!("the {name} plugin is disabled for this organization"),
                });
            }
            None => {
                return Err(Error::Forbidden {
                    code: "plugin_not_enabled",
                    message: format!("the {name} plugin is not enabled for this organization"),
                });
            }
        };

        if let Some(msg) = &instance.version_mismatch {
            return Err(Error::Conflict {
                code: "version_mismatch",
                message: msg.clone(),
            });
        }

        let manifest = plugin.manifest();
        // An agent qualifies colliding tool names as `<plugin>_<function>`.
        let declared = envelope
            .function
            .strip_prefix(name.as_str())
            .and_then(|rest| rest.strip_prefix('_'))
            .filter(|rest| {
                manifest.function(rest).is_some() && manifest.function(&envelope.function).is_none()
            })
            .unwrap_or(&envelope.function);
        let function = match FunctionName::parse(declared) {
            Ok(f) if manifest.function(f.as_str()).is_some() => f,
            _ => {
                let known: Vec<&str> = manifest
                    .manifest()
                    .functions
                    .iter()
                    .map(|f| f.name.as_str())
                    .collect();
                return Err(Error::NotFound {
                    code: "unknown_function",
                    message: format!(
                        "the {name} plugin has no function '{}'; available: {}",
                        envelope.function.chars().take(64).collect::<String>(),
                        known.join(", ")
                    ),
                });
            }
        };
        span.record("function", function.as_str());
        let mut parameters = envelope.parameters;
        if let Some(def) = manifest.function(function.as_str()) {
            // OpenAI strict mode sends null for every optional property it omits.
            strip_strict_nulls(&def.parameters, &mut parameters);
        }
        manifest.validate_params(&function, &parameters)?;
        let config = instance.config.clone()?;
        let adapter = self
            .platform
            .adapter_config(
                &tenant.org,
                name,
                tenant.channel.as_ref(),
                &instance.data_adapter,
            )
            .await?;
        let data = self.platform.data.build(&tenant.org, name, &adapter)?;

        let ctx = CallContext {
            org: tenant.org.clone(),
            plugin: name.clone(),
            function,
            channel: tenant.channel.clone(),
            session_id: envelope.session_id,
            caller: tenant.caller.clone(),
            scopes: tenant.scopes.clone(),
            config,
            data,
            now: self.platform.now(),
        };
        plugin.invoke(ctx, parameters).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_envelope(body: &[u8]) -> Result<Envelope, Error> {
        match parse_body(body)? {
            Incoming::Call(e) => Ok(e),
            Incoming::Vapi(_) => panic!("parsed as a Vapi message"),
        }
    }

    #[test]
    fn retell_and_vapi_bodies_map_onto_calls() {
        let r = parse_envelope(
            br#"{"name": "GetPatient", "call": {"call_id": "c1"}, "args": {"PatNum": 1}}"#,
        )
        .unwrap();
        assert_eq!(
            (r.function.as_str(), r.session_id.as_deref()),
            ("GetPatient", Some("c1"))
        );
        assert_eq!(r.parameters, json!({"PatNum": 1}));
        let v = parse_body(br#"{"message": {"type": "tool-calls", "call": {"id": "v1"}, "toolCallList": [
            {"id": "a", "name": "GetPatient", "arguments": {"PatNum": 1}},
            {"id": "b", "type": "function", "function": {"name": "GetProviders", "arguments": "{}"}}]}}"#)
        .unwrap();
        let Incoming::Vapi(calls) = v else {
            panic!("not parsed as Vapi")
        };
        assert_eq!(calls.len(), 2);
        assert_eq!(
            calls[0].1.session_id.as_deref(),
            Some("v1"),
            "the call id is the session"
        );
        assert_eq!(
            (calls[1].0.as_str(), calls[1].1.function.as_str()),
            ("b", "GetProviders")
        );
        let bad = parse_body(
            br#"{"message": {"toolCallList": [{"id": "a", "name": "X", "arguments": "[1]"}]}}"#,
        );
        assert!(matches!(bad, Err(e) if e.status() == 400));
    }

    #[test]
    fn envelope_errors_say_what_to_fix() {
        let cases: [(&[u8], &str); 6] = [
            (b"not json", "not valid JSON"),
            (b"[1]", "must be a JSON object"),
            (b"{}", "'function' is required"),
            (br#"{"function": 3}"#, "'function' must be a string"),
            (
                br#"{"function": "F", "parameters": [1]}"#,
                "'parameters' must be a JSON object",
            ),
            (
                br#"{"function": "F", "orgId": "other"}"#,
                "unexpected field 'orgId'",
            ),
        ];
        for (body, needle) in cases {
            let Err(e) = parse_envelope(body) else {
                panic!("accepted {:?}", String::from_utf8_lossy(body));
            };
            assert_eq!(e.status(), 400);
            assert!(e.to_string().contains(needle), "{e}");
        }
    }

    #[test]
    fn envelope_defaults_parameters() {
        let e = parse_envelope(br#"{"function": "F", "sessionId": "s1"}"#).unwrap();
        assert_eq!(e.parameters, json!({}));
        assert_eq!(e.session_id.as_deref(), Some("s1"));
    }
}
