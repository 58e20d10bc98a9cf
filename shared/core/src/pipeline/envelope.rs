//! The bodies a plugin route accepts: Switchboard's envelope, a Retell custom-function call,
//! and a Vapi `tool-calls` message, parsed into calls.

use serde_json::{Map, Value};

use crate::error::Error;
use crate::idempotency::KeySource;
use crate::ids::VoicePlatform;

/// A parsed call envelope.
pub struct Envelope {
    pub function: String,
    pub parameters: Value,
    pub session_id: Option<String>,
    /// The caller's number from a voice platform's payload (Retell, Vapi); never from a
    /// header or Switchboard's own envelope. The payload is only as trustworthy as the key
    /// that sent it, so this is a convenience (a default search), never an identity.
    pub caller_phone: Option<String>,
    /// What makes a retry of this call recognisable without an `Idempotency-Key` header:
    /// Vapi's tool-call id, or Retell's call id (with the function and arguments).
    pub retry_key: Option<KeySource>,
    /// The platform whose verified webhook this is: only then may a webhook function run.
    pub webhook: Option<VoicePlatform>,
}

/// Longest caller number kept (E.164 is at most 15 digits; formatting adds a few).
const MAX_PHONE_CHARS: usize = 32;

/// A caller number as a platform sends it: `+`, digits and common separators. Anything else
/// ("anonymous", "unknown", SIP URIs) is no number rather than a refused call.
fn phone(v: Option<&Value>) -> Option<String> {
    let s = v?.as_str()?.trim();
    let digits = s.chars().filter(char::is_ascii_digit).count();
    let shaped = s.len() <= MAX_PHONE_CHARS
        && s.chars()
            .enumerate()
            .all(|(i, c)| c.is_ascii_digit() || " -().".contains(c) || (c == '+' && i == 0));
    (shaped && digits >= 3).then(|| s.to_owned())
}

/// Most tool calls one Vapi request may carry.
const MAX_VAPI_CALLS: usize = 16;

/// A request body in one of the shapes a plugin route accepts.
pub enum Incoming {
    /// Switchboard's envelope, or a Retell custom-function call mapped onto it.
    Call(Envelope),
    /// Vapi's `tool-calls` message: each call is answered under its `toolCallId`.
    Vapi(Vec<(String, Envelope)>),
}

pub fn parse_body(body: &[u8]) -> Result<Incoming, Error> {
    parse_body_as(body, None)
}

/// [`parse_body`], held to one platform's shape on that platform's signed route: a Retell
/// connection's URL runs Retell custom-function calls only, a Vapi one Vapi messages only.
pub fn parse_body_as(body: &[u8], only: Option<VoicePlatform>) -> Result<Incoming, Error> {
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
    let vapi = obj
        .get("message")
        .and_then(|m| m.get("toolCallList"))
        .and_then(Value::as_array);
    let retell = vapi.is_none() && !obj.contains_key("function") && obj.contains_key("args");
    match only {
        Some(VoicePlatform::Vapi) if vapi.is_none() => {
            return Err(Error::invalid_request(
                "a Vapi connection's URL takes Vapi tool-calls messages: {\"message\": {\"type\": \"tool-calls\", \"toolCallList\": […]}}",
            ));
        }
        Some(VoicePlatform::Retell) if !retell => {
            return Err(Error::invalid_request(
                "a Retell connection's URL takes Retell custom-function calls: {\"name\": \"…\", \"call\": {…}, \"args\": {…}}",
            ));
        }
        Some(p) if p.sends_webhooks() => {
            return Err(Error::invalid_request(format!(
                "a {p} connection's URL takes {p}'s webhooks, not tool calls"
            )));
        }
        _ => {}
    }
    if let Some(calls) = vapi {
        let message = obj.get("message");
        let call = message.and_then(|m| m.get("call"));
        let session = call
            .and_then(|c| c.get("id"))
            .and_then(Value::as_str)
            .filter(|s| s.len() <= 256);
        let customer = |v: Option<&Value>| phone(v?.get("customer")?.get("number"));
        let caller = customer(message).or_else(|| customer(call));
        return vapi_calls(calls, session, caller.as_deref()).map(Incoming::Vapi);
    }
    if retell {
        return retell_call(obj).map(Incoming::Call);
    }
    native_envelope(obj).map(Incoming::Call)
}

/// Retell custom function: `{"name", "call": {"call_id", "from_number", …}, "args": {…}}`.
/// On an outbound call the caller Retell dialled is `to_number`.
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
    let call = obj.get("call");
    let call_id = call.and_then(|c| c.get("call_id")).and_then(Value::as_str);
    let session_id = call_id.filter(|s| s.len() <= 256).map(str::to_owned);
    let outbound = call
        .and_then(|c| c.get("direction"))
        .and_then(Value::as_str)
        == Some("outbound");
    let number = if outbound { "to_number" } else { "from_number" };
    let caller_phone = phone(call.and_then(|c| c.get(number)));
    // Hashed into the record's key, so any length will do.
    let retry_key = call_id.map(|id| KeySource::RetellCall(id.to_owned()));
    Ok(Envelope {
        function,
        parameters,
        session_id,
        caller_phone,
        retry_key,
        webhook: None,
    })
}

/// Vapi `toolCallList` entries: `{"id", "name", "arguments"}` or the OpenAI-style
/// `{"id", "function": {"name", "arguments"}}`, arguments as an object or a JSON string.
fn vapi_calls(
    calls: &[Value],
    session: Option<&str>,
    caller: Option<&str>,
) -> Result<Vec<(String, Envelope)>, Error> {
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
                    caller_phone: caller.map(str::to_owned),
                    retry_key: Some(KeySource::ToolCall(id.to_owned())),
                    webhook: None,
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
        caller_phone: None,
        retry_key: None,
        webhook: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
    fn the_caller_number_comes_from_the_platform_payload_only() {
        let retell = |call: Value| {
            let body = json!({"name": "SearchPatients", "call": call, "args": {}});
            parse_envelope(body.to_string().as_bytes())
                .unwrap()
                .caller_phone
        };
        assert_eq!(
            retell(
                json!({"call_id": "c", "from_number": "+15550102000", "to_number": "+15550100000"})
            ),
            Some("+15550102000".into())
        );
        assert_eq!(
            retell(
                json!({"call_id": "c", "direction": "outbound", "from_number": "+15550100000", "to_number": "+15550102000"})
            ),
            Some("+15550102000".into()),
            "on an outbound call the caller is the number dialled"
        );
        for junk in [
            json!("anonymous"),
            json!("sip:a@b"),
            json!(15550102000_u64),
            json!("+1 555 ".repeat(10)),
        ] {
            assert_eq!(retell(json!({"from_number": junk})), None, "{junk}");
        }
        let vapi =
            |message: Value| match parse_body(json!({"message": message}).to_string().as_bytes())
                .unwrap()
            {
                Incoming::Vapi(calls) => calls[0].1.caller_phone.clone(),
                Incoming::Call(_) => panic!("not parsed as Vapi"),
            };
        let list = json!([{"id": "a", "name": "SearchPatients", "arguments": {}}]);
        assert_eq!(
            vapi(json!({"toolCallList": list, "customer": {"number": "+15550102000"}})),
            Some("+15550102000".into())
        );
        assert_eq!(
            vapi(
                json!({"toolCallList": list, "call": {"id": "v", "customer": {"number": "+15550102001"}}})
            ),
            Some("+15550102001".into())
        );
        // Switchboard's own envelope is written by the client: it carries no caller.
        let own = parse_envelope(br#"{"function": "F", "parameters": {}}"#).unwrap();
        assert_eq!(own.caller_phone, None);
        assert!(parse_envelope(br#"{"function": "F", "callerPhone": "+15550102000"}"#).is_err());
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
