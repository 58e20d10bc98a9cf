//! The internal tool-call event: how the MCP function reaches a plugin's own Lambda (a
//! request-response `Invoke`), with the tenant it already verified. The invoke right is what
//! makes the tenant trustworthy: API Gateway only ever delivers its own event shape, and in
//! the stack only the MCP function's role may invoke plugin functions (template.yaml). A
//! principal that may invoke a plugin function directly is trusted with any tenant, as it
//! already is through a hand-made API Gateway event.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::audit::Subject;
use crate::auth::TenantContext;
use crate::error::Error;
use crate::ids::{Channel, OrgId, PluginName};

use super::{CallInput, CallOutput, PluginService};

/// The audit log's route for tool-call events: the MCP function is what sends them, or the
/// scheduler ([`ToolCallEvent::scheduled`]).
const TOOL_CALL_ROUTE: &str = "mcp";
const SCHEDULED_ROUTE: &str = "scheduler";

/// The `kind` of a tool-call event; another version is refused, not guessed at.
pub const TOOL_CALL_KIND: &str = "switchboard.tool-call/1";

/// One tool call for one plugin function, as the MCP function sends it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ToolCallEvent {
    pub kind: String,
    /// The plugin the event is for; a function serving another one refuses it.
    pub plugin: PluginName,
    pub tenant: InvokedTenant,
    pub function: String,
    #[serde(default)]
    pub parameters: Value,
    /// The `Idempotency-Key` the client's HTTP request carried.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
    /// The request id of the call that caused this one, for the logs of both.
    pub request_id: String,
    /// A call a plugin scheduled for later ([`crate::schedule`]), delivered by the scheduler.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub scheduled: bool,
}

/// The verified tenant, as the authorizer context said it (the channel is the MCP route's).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct InvokedTenant {
    pub org: OrgId,
    pub channel: Option<Channel>,
    pub scopes: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
    /// The key's own limit, so a call through MCP counts against it as a direct one does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_rate_limit: Option<u32>,
}

impl From<&TenantContext> for InvokedTenant {
    fn from(t: &TenantContext) -> Self {
        Self {
            org: t.org.clone(),
            channel: t.channel.clone(),
            scopes: t.scopes.clone(),
            key_id: t.key_id.clone(),
            key_rate_limit: t.key_rate_limit,
        }
    }
}

impl From<InvokedTenant> for TenantContext {
    fn from(t: InvokedTenant) -> Self {
        Self {
            org: t.org,
            scopes: t.scopes,
            channel: t.channel,
            key_id: t.key_id,
            key_rate_limit: t.key_rate_limit,
        }
    }
}

impl ToolCallEvent {
    pub fn new(
        plugin: PluginName,
        tenant: &TenantContext,
        function: impl Into<String>,
        parameters: Value,
        request_id: impl Into<String>,
    ) -> Self {
        Self {
            kind: TOOL_CALL_KIND.to_owned(),
            plugin,
            tenant: tenant.into(),
            function: function.into(),
            parameters,
            idempotency_key: None,
            request_id: request_id.into(),
            scheduled: false,
        }
    }

    /// Marks a call a plugin scheduled (audited as the scheduler's).
    pub fn scheduled(mut self) -> Self {
        self.scheduled = true;
        self
    }

    fn route(&self) -> &'static str {
        if self.scheduled {
            SCHEDULED_ROUTE
        } else {
            TOOL_CALL_ROUTE
        }
    }

    pub fn with_idempotency_key(mut self, key: Option<&str>) -> Self {
        self.idempotency_key = key.map(str::to_owned);
        self
    }

    /// Reads an event a function received; `None` when it is not a tool-call event at all.
    pub fn from_event(event: &Value) -> Option<Result<Self, Error>> {
        let kind = event.get("kind")?.as_str()?;
        if !kind.starts_with("switchboard.tool-call/") {
            return None;
        }
        if kind != TOOL_CALL_KIND {
            return Some(Err(Error::invalid_request(format!(
                "tool-call event kind '{}' is not served here; this function takes '{TOOL_CALL_KIND}'",
                kind.chars().take(64).collect::<String>()
            ))));
        }
        Some(
            Self::deserialize(event)
                .map_err(|e| Error::invalid_request(format!("malformed tool-call event: {e}"))),
        )
    }
}

impl PluginService {
    /// Runs a tool-call event through the same pipeline as the HTTP routes: scopes, the
    /// channel's assignment, validation, idempotency, the handler.
    pub async fn respond_tool_call(&self, event: ToolCallEvent) -> CallOutput {
        let started_at = self.platform.now();
        let started = std::time::Instant::now();
        if &event.plugin != self.plugin().name() {
            let e = Error::NotFound {
                code: "unknown_plugin",
                message: format!(
                    "a tool call for the {} plugin reached the {} function",
                    event.plugin,
                    self.plugin().name()
                ),
            };
            let subject = Subject {
                channel: event.tenant.channel.as_ref().map(ToString::to_string),
                key_id: event.tenant.key_id.clone(),
                route: event.route().to_owned(),
                plugin: Some(event.plugin.to_string()),
                function: Some(event.function.chars().take(128).collect()),
                request_id: event.request_id.clone(),
                params_sha256: Some(crate::audit::params_hash(&event.parameters)),
                ..Subject::default()
            };
            let entry = subject.refused(&event.tenant.org, started_at, started, &e);
            let answer = tokio::time::Instant::now() + crate::audit::WRITE_BUDGET;
            self.platform
                .write_audit(&event.tenant.org, entry, 0, answer)
                .await;
            return CallOutput {
                status: e.status(),
                body: e.to_body(),
                replayed: false,
            };
        }
        let route = event.route();
        let body = json!({"function": event.function, "parameters": event.parameters});
        let body = body.to_string();
        self.respond_as(
            CallInput {
                tenant: Some(event.tenant.into()),
                body: body.as_bytes(),
                request_id: &event.request_id,
                idempotency_key: event.idempotency_key.as_deref(),
            },
            super::Shape::Any,
            route,
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::OrgId;

    #[test]
    fn a_keys_own_limit_travels_with_a_tool_call() {
        let mut tenant = TenantContext::new(OrgId::parse("acme").unwrap())
            .with_scopes(&[crate::pipeline::CALL_SCOPE]);
        tenant.key_id = Some("0123456789abcdef".into());
        tenant.key_rate_limit = Some(2);
        let plugin = PluginName::parse("booking").unwrap();
        let event = ToolCallEvent::new(plugin, &tenant, "GetProviders", Value::Null, "r-1");
        let wire = serde_json::to_value(&event).unwrap();
        assert_eq!(wire["tenant"]["keyRateLimit"], 2, "{wire}");
        let back: ToolCallEvent = serde_json::from_value(wire).unwrap();
        assert_eq!(TenantContext::from(back.tenant), tenant);
        // A key without one sends none: plugin functions built before the field read it.
        tenant.key_rate_limit = None;
        let event = ToolCallEvent::new(
            PluginName::parse("booking").unwrap(),
            &tenant,
            "GetProviders",
            Value::Null,
            "r-2",
        );
        let wire = serde_json::to_value(&event).unwrap();
        assert!(wire["tenant"].get("keyRateLimit").is_none(), "{wire}");
    }
}
