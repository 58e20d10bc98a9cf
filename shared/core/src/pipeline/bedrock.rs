//! Amazon Bedrock Agents action groups (function details): the event Bedrock sends a plugin
//! function, answered in Bedrock's response format. The organization and channel come from
//! the registry's mapping of the event's agent id and alias, never from its session or
//! prompt attributes (the end user can steer those); an unmapped agent is refused. Parameter
//! values arrive as strings and are coerced by the function's schema before the pipeline
//! validates them.

use serde::Deserialize;
use serde_json::{Map, Number, Value, json};

use crate::auth::TenantContext;
use crate::error::Error;
use crate::ids::BedrockAgentRef;

use super::{CALL_SCOPE, CallInput, PluginService};

/// The only message version Bedrock sends and reads.
pub const MESSAGE_VERSION: &str = "1.0";

/// Bedrock's limit on a function's response.
pub const MAX_RESPONSE_BYTES: usize = 25 * 1024;

/// An action group invocation, function-details format.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BedrockEvent {
    pub message_version: String,
    pub agent: EventAgent,
    pub action_group: String,
    pub function: String,
    /// Absent or null when the function takes none.
    #[serde(default)]
    pub parameters: Option<Vec<EventParameter>>,
    #[serde(default)]
    pub session_id: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct EventAgent {
    pub id: String,
    pub alias: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct EventParameter {
    pub name: String,
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    pub value: Value,
}

impl BedrockEvent {
    /// Reads an event a function received; `None` when it is not a Bedrock action group's.
    pub fn from_event(event: &Value) -> Option<Result<Self, Error>> {
        let obj = event.as_object()?;
        if !(obj.contains_key("messageVersion") && obj.contains_key("actionGroup")) {
            return None;
        }
        if obj.contains_key("apiPath") {
            return Some(Err(Error::invalid_request(
                "OpenAPI action groups are not served: define the action group with function details (GET /agents/{channel}?format=bedrock)",
            )));
        }
        Some(Self::deserialize(event).map_err(|e| {
            Error::invalid_request(format!("malformed Bedrock action group event: {e}"))
        }))
    }
}

/// How the agent goes on after a refusal: the model may fix the call (REPROMPT), or the
/// action failed in a way it cannot fix (FAILURE).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Ok,
    Reprompt,
    Failure,
}

/// The response to `event`: its action group and function echoed, the attributes returned
/// unchanged (Bedrock keeps what the function returns).
fn reply(event: &Value, state: State, text: &str) -> Value {
    let echo = |k: &str| match event.get(k) {
        Some(v @ Value::Object(_)) => v.clone(),
        _ => json!({}),
    };
    if let Some(path) = event.get("apiPath") {
        // An OpenAPI action group's event (refused) is answered in its own shape.
        let status = if state == State::Ok { 200 } else { 400 };
        return json!({
            "messageVersion": MESSAGE_VERSION,
            "response": {
                "actionGroup": event.get("actionGroup").and_then(Value::as_str).unwrap_or_default(),
                "apiPath": path,
                "httpMethod": event.get("httpMethod").cloned().unwrap_or(json!("POST")),
                "httpStatusCode": status,
                "responseState": "FAILURE",
                "responseBody": {"application/json": {"body": json!({"error": text}).to_string()}},
            },
            "sessionAttributes": echo("sessionAttributes"),
            "promptSessionAttributes": echo("promptSessionAttributes"),
        });
    }
    let mut function_response = json!({"responseBody": {"TEXT": {"body": text}}});
    match state {
        State::Ok => {}
        State::Reprompt => function_response["responseState"] = json!("REPROMPT"),
        State::Failure => function_response["responseState"] = json!("FAILURE"),
    }
    json!({
        "messageVersion": MESSAGE_VERSION,
        "response": {
            "actionGroup": event.get("actionGroup").and_then(Value::as_str).unwrap_or_default(),
            "function": event.get("function").and_then(Value::as_str).unwrap_or_default(),
            "functionResponse": function_response,
        },
        "sessionAttributes": echo("sessionAttributes"),
        "promptSessionAttributes": echo("promptSessionAttributes"),
    })
}

impl PluginService {
    /// Answers one Bedrock action group event (as JSON, so a malformed one still gets its
    /// action group and function echoed).
    pub async fn respond_bedrock(&self, raw: &Value, request_id: &str) -> Value {
        let attributes_len = ["sessionAttributes", "promptSessionAttributes"]
            .iter()
            .filter_map(|k| raw.get(*k))
            .map(|v| v.to_string().len())
            .sum::<usize>()
            + 512;
        let event = match BedrockEvent::from_event(raw) {
            Some(Ok(e)) => e,
            Some(Err(e)) => {
                tracing::warn!(request_id, error = %e, "bedrock event refused");
                return reply(raw, State::Failure, &e.to_string());
            }
            None => {
                return reply(raw, State::Failure, "not a Bedrock action group event");
            }
        };
        let (state, text) = self.run_bedrock(&event, request_id, attributes_len).await;
        reply(raw, state, &text)
    }

    async fn run_bedrock(
        &self,
        event: &BedrockEvent,
        request_id: &str,
        attributes_len: usize,
    ) -> (State, String) {
        let shown = |s: &str| s.chars().take(64).collect::<String>();
        if event.message_version != MESSAGE_VERSION {
            return (
                State::Failure,
                format!(
                    "message version '{}' is not served; this function reads Bedrock's {MESSAGE_VERSION}",
                    shown(&event.message_version)
                ),
            );
        }
        let agent = match BedrockAgentRef::parse(&event.agent.id, &event.agent.alias) {
            Ok(a) => a,
            Err((_, why)) => return (State::Failure, why),
        };
        // The call's budget counts this lookup too.
        let arrived = tokio::time::Instant::now();
        // Read on every call, never cached: an alias can be unmapped and mapped to another
        // organization, and a warm container must not run it as the old one meanwhile.
        let lookup = async {
            self.platform
                .registry
                .get_bedrock_agent(&agent)
                .await
                .map_err(Error::from)
        };
        let mapping = match super::within(arrived + super::CALL_BUDGET, lookup).await {
            Ok(Some(m)) => m,
            Ok(None) => {
                tracing::info!(request_id, agent = %agent, "bedrock call refused: unmapped agent");
                return (
                    State::Failure,
                    format!(
                        "Bedrock agent {agent} is not mapped to a Switchboard organization; a platform operator maps it (switchboard bedrock map)"
                    ),
                );
            }
            Err(e) => return failure(&e, request_id),
        };
        let tenant = TenantContext {
            org: mapping.org.clone(),
            scopes: vec![CALL_SCOPE.to_owned()],
            channel: Some(mapping.channel.clone()),
            key_id: Some(format!("bedrock:{agent}")),
            key_rate_limit: None,
        };
        // A function the plugin does not have: the action group is out of step with it.
        if let Err(e) = self.plugin().resolve(&event.function) {
            return (State::Failure, e.to_string());
        }
        let given = event.parameters.as_deref().unwrap_or_default();
        let parameters = match self.coerce(&event.function, given) {
            Ok(p) => p,
            Err(e) => return (State::Reprompt, e.to_string()),
        };
        let mut body = json!({"function": event.function, "parameters": parameters});
        if let Some(session) = &event.session_id {
            body["sessionId"] = json!(session);
        }
        let body = body.to_string();
        let out = self
            .respond_from(
                CallInput {
                    tenant: Some(tenant),
                    body: body.as_bytes(),
                    request_id,
                    idempotency_key: None,
                },
                super::Shape::Any,
                "bedrock",
                arrived,
            )
            .await;
        if out.status == 200 {
            let text = match &out.body["result"] {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            // Room for the envelope and the attributes Bedrock gets back.
            // The text goes out as a JSON string: measured escaped.
            let escaped = serde_json::to_string(&text).map_or(usize::MAX, |t| t.len());
            if escaped.saturating_add(attributes_len) > MAX_RESPONSE_BYTES {
                let changed = self
                    .plugin()
                    .resolve(&event.function)
                    .ok()
                    .and_then(|f| self.plugin().manifest().function(f.as_str()))
                    .is_some_and(|f| f.has_side_effects());
                // A call that changed something is done: asking again would do it twice.
                return if changed {
                    (
                        State::Ok,
                        format!(
                            "Done. The result ({} bytes) is over Bedrock's {} KB for a function response, so it is not shown; read the record back to see it.",
                            text.len(),
                            MAX_RESPONSE_BYTES / 1024
                        ),
                    )
                } else {
                    (
                        State::Reprompt,
                        format!(
                            "the result is {} bytes, over Bedrock's {} KB for a function response; ask for less (a narrower filter, a smaller limit)",
                            text.len(),
                            MAX_RESPONSE_BYTES / 1024
                        ),
                    )
                };
            }
            return (State::Ok, text);
        }
        let message = out.body["error"]["message"]
            .as_str()
            .unwrap_or("the call failed")
            .to_owned();
        // FAILURE ends the session with Bedrock's DependencyFailedException: for an outage
        // or a deployment's configuration (an action group out of step with the plugin
        // included), which the model cannot act on. A refusal of the call itself (a taken
        // slot, a failed validation, a scope the line lacks, whose message says what to tell
        // the caller) goes back to the model to fix or to pass on.
        let code = out.body["error"]["code"].as_str().unwrap_or_default();
        let configuration = matches!(
            code,
            "plugin_not_assigned"
                | "plugin_not_enabled"
                | "version_mismatch"
                | "invalid_config"
                | "unauthenticated"
                | "unknown_function"
        );
        if out.status >= 500 || configuration {
            (State::Failure, message)
        } else {
            (State::Reprompt, message)
        }
    }

    /// The event's string values as the function's schema types them; the pipeline then
    /// validates the result like any call's.
    fn coerce(&self, function: &str, params: &[EventParameter]) -> Result<Value, Error> {
        let schema = self
            .plugin()
            .resolve(function)
            .ok()
            .and_then(|f| self.plugin().manifest().function(f.as_str()))
            .map(|f| f.parameters.clone())
            .unwrap_or(Value::Null);
        let mut out = Map::new();
        for p in params {
            let at = format!("/{}", p.name);
            let name = shown(&p.name);
            if out.contains_key(&p.name) {
                return Err(Error::invalid_field(
                    at,
                    format!("parameter '{name}' is given twice"),
                ));
            }
            let declared = schema.pointer(&format!("/properties/{}", escape(&p.name)));
            let value = coerce_value(declared, p.kind.as_deref(), &p.value)
                .map_err(|why| Error::invalid_field(at, format!("parameter '{name}': {why}")))?;
            out.insert(p.name.clone(), value);
        }
        Ok(Value::Object(out))
    }
}

fn failure(e: &Error, request_id: &str) -> (State, String) {
    if let Error::Internal(cause) = e {
        tracing::error!(request_id, cause = %cause, "bedrock call failed: internal");
    }
    (State::Failure, e.to_string())
}

/// A JSON pointer token for a property name.
fn escape(name: &str) -> String {
    name.replace('~', "~0").replace('/', "~1")
}

/// The types a schema allows, in its order (`type` as a string or a list).
fn schema_types(schema: Option<&Value>) -> Vec<&str> {
    match schema.and_then(|s| s.get("type")) {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

/// One value: the schema's type (Bedrock's declared type when the schema allows several or
/// none), parsed from Bedrock's string. A value that is already JSON of another kind
/// passes through for the validation to judge.
fn coerce_value(
    schema: Option<&Value>,
    declared: Option<&str>,
    value: &Value,
) -> Result<Value, String> {
    let Value::String(text) = value else {
        return Ok(value.clone());
    };
    let allowed = schema_types(schema);
    let target = match (allowed.as_slice(), declared) {
        ([], Some(d)) => d,
        ([], None) => "string",
        (types, Some(d)) if types.contains(&d) => d,
        (types, _) if types.contains(&"string") => "string",
        (types, _) => types
            .iter()
            .find(|t| **t != "null")
            .copied()
            .unwrap_or("string"),
    };
    let trimmed = text.trim();
    if allowed.contains(&"null") && !allowed.contains(&"string") && trimmed == "null" {
        return Ok(Value::Null);
    }
    match target {
        "integer" => {
            whole(trimmed).ok_or_else(|| format!("'{}' is not a whole number", shown(text)))
        }
        "number" => match whole(trimmed) {
            Some(i) => Ok(i),
            None => trimmed
                .parse::<f64>()
                .ok()
                .and_then(Number::from_f64)
                .map(Value::Number)
                .ok_or_else(|| format!("'{}' is not a number", shown(text))),
        },
        "boolean" => match trimmed.to_ascii_lowercase().as_str() {
            "true" => Ok(Value::Bool(true)),
            "false" => Ok(Value::Bool(false)),
            _ => Err(format!("'{}' is not true or false", shown(text))),
        },
        "array" | "object" => match serde_json::from_str::<Value>(trimmed) {
            // Items that are not text where the items' schema takes text become text.
            Ok(Value::Array(items)) if target == "array" => {
                let text_items = schema_types(schema.and_then(|s| s.get("items")))
                    .first()
                    .is_some_and(|t| *t == "string");
                Ok(Value::Array(
                    items
                        .into_iter()
                        .map(|v| match v {
                            Value::Number(_) | Value::Bool(_) if text_items => {
                                Value::String(v.to_string())
                            }
                            other => other,
                        })
                        .collect(),
                ))
            }
            Ok(v @ Value::Object(_)) if target == "object" => Ok(v),
            // `[a, b]`: a list of plain words, each typed by the items' schema. Quotes could
            // hide commas, so a list with quotes must be JSON.
            Err(_)
                if target == "array"
                    && trimmed.starts_with('[')
                    && trimmed.ends_with(']')
                    && !trimmed.contains(['"', '\'']) =>
            {
                let items = schema.and_then(|s| s.get("items"));
                let inner = &trimmed[1..trimmed.len() - 1];
                inner
                    .split(',')
                    .map(str::trim)
                    .filter(|w| !w.is_empty())
                    .map(|w| coerce_value(items, None, &Value::String(w.to_owned())))
                    .collect::<Result<Vec<_>, _>>()
                    .map(Value::Array)
            }
            _ => Err(format!(
                "'{}' is not a JSON {target} (send it as JSON, e.g. {})",
                shown(text),
                if target == "array" {
                    "[\"a\", \"b\"]"
                } else {
                    "{\"key\": \"value\"}"
                }
            )),
        },
        _ => Ok(Value::String(text.clone())),
    }
}

/// A whole number as Bedrock may write it: `42`, `42.0`, `1e3` (exact, so within 2^53 when
/// written as a float).
fn whole(s: &str) -> Option<Value> {
    if let Ok(i) = s.parse::<i64>() {
        return Some(Value::from(i));
    }
    let f = s.parse::<f64>().ok()?;
    // Exactly representable (within 2^53), with no fraction.
    (f.is_finite() && f.fract() == 0.0 && f.abs() <= 9_007_199_254_740_992.0)
        .then(|| Value::from(f as i64))
}

fn shown(s: &str) -> String {
    s.chars().take(64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(schema: Value, declared: Option<&str>, v: &str) -> Result<Value, String> {
        coerce_value(Some(&schema), declared, &json!(v))
    }

    #[test]
    fn values_are_typed_by_the_schema() {
        let int = json!({"type": "integer"});
        assert_eq!(c(int.clone(), Some("number"), " 42 "), Ok(json!(42)));
        assert!(
            c(int.clone(), Some("integer"), "4.5")
                .unwrap_err()
                .contains("whole number")
        );
        assert_eq!(c(int.clone(), None, "42.0"), Ok(json!(42)));
        assert_eq!(c(int.clone(), None, "1e3"), Ok(json!(1000)));
        assert!(c(int.clone(), None, "1e30").is_err());
        assert!(
            c(int, None, "12345678901234567.0").is_err(),
            "not exact as a float"
        );
        let num = json!({"type": "number"});
        assert_eq!(c(num.clone(), None, "2"), Ok(json!(2)));
        assert_eq!(c(num.clone(), None, "2.5"), Ok(json!(2.5)));
        assert!(c(num, None, "NaN").is_err());
        let b = json!({"type": "boolean"});
        assert_eq!(c(b.clone(), None, "TRUE"), Ok(json!(true)));
        assert!(c(b, None, "yes").is_err());
        let arr = json!({"type": "array", "items": {"type": "string"}});
        assert_eq!(
            c(arr.clone(), Some("array"), r#"["a","b"]"#),
            Ok(json!(["a", "b"]))
        );
        assert!(
            c(arr.clone(), Some("array"), "a, b")
                .unwrap_err()
                .contains("JSON array")
        );
        assert_eq!(
            c(arr.clone(), Some("array"), "[a, b]"),
            Ok(json!(["a", "b"]))
        );
        // Quotes could hide a comma: such a list must be JSON.
        assert!(c(arr.clone(), Some("array"), "['Smith, Jane', 'Doe']").is_err());
        assert_eq!(
            c(arr, Some("array"), "[5551234, 5559876]"),
            Ok(json!(["5551234", "5559876"]))
        );
        let ints = json!({"type": "array", "items": {"type": "integer"}});
        assert_eq!(c(ints.clone(), None, "[1, 2]"), Ok(json!([1, 2])));
        assert!(
            c(ints, None, "[1, x]")
                .unwrap_err()
                .contains("whole number")
        );
        let s = json!({"type": "string", "pattern": "^\\d+$"});
        assert_eq!(
            c(s, Some("number"), "0042"),
            Ok(json!("0042")),
            "a string stays a string"
        );
        let nullable = json!({"type": ["integer", "null"]});
        assert_eq!(c(nullable.clone(), None, "null"), Ok(Value::Null));
        assert_eq!(c(nullable, None, "7"), Ok(json!(7)));
        // "null" is text where the schema takes text.
        assert_eq!(
            c(json!({"type": ["string", "null"]}), None, "null"),
            Ok(json!("null"))
        );
        // No schema for the name (the validation refuses it later): Bedrock's type decides.
        assert_eq!(
            coerce_value(None, Some("integer"), &json!("3")),
            Ok(json!(3))
        );
        assert_eq!(coerce_value(None, None, &json!("3")), Ok(json!("3")));
    }

    #[test]
    fn the_reply_echoes_the_event_and_says_the_state() {
        let event = json!({"actionGroup": "booking", "function": "CreateAppointment",
            "sessionAttributes": {"a": "1"}, "promptSessionAttributes": {}});
        let r = reply(&event, State::Reprompt, "taken");
        assert_eq!(r["messageVersion"], "1.0");
        assert_eq!(r["response"]["actionGroup"], "booking");
        assert_eq!(r["response"]["function"], "CreateAppointment");
        assert_eq!(
            r["response"]["functionResponse"]["responseState"],
            "REPROMPT"
        );
        assert_eq!(
            r["response"]["functionResponse"]["responseBody"]["TEXT"]["body"],
            "taken"
        );
        assert_eq!(r["sessionAttributes"], json!({"a": "1"}));
        let ok = reply(&event, State::Ok, "{}");
        assert!(
            ok["response"]["functionResponse"]
                .get("responseState")
                .is_none()
        );
    }
}
