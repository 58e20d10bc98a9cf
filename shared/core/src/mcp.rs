//! The MCP server of one channel: `POST /mcp/{channel}`, the Streamable HTTP transport,
//! stateless, JSON responses (no SSE stream). Both eras of the protocol: the `initialize`
//! handshake (2024-11-05 to 2025-11-25; batches under 2025-03-26) and 2026-07-28's
//! self-contained requests (`server/discover`, an envelope in every request's `_meta`,
//! routing headers checked against the body).
//!
//! - `tools/list` is the channel's agent (the agent builder's names, descriptions and
//!   schemas), `initialize` carries its instructions.
//! - `tools/call` runs the function on the plugin's own function through a
//!   [`ToolInvoker`], so the plugin pipeline (scopes, the channel's assignment, validation,
//!   idempotency) decides, exactly as on `POST /plugins/{plugin}`.
//! - A refusal of the call itself (a double booking, a failed validation, an unavailable
//!   upstream) is a tool result with `isError: true` and the message, which the model can
//!   act on; a malformed request, an unknown tool or method, and internal failures are
//!   JSON-RPC errors.
//! - No session: `initialize` issues no `Mcp-Session-Id`, and one sent anyway is ignored
//!   (every request stands alone). `GET` (no server-initiated stream) and `DELETE` (no
//!   session to end) are 405.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use futures_util::StreamExt;
use http::header::{ACCEPT, CONTENT_TYPE, ORIGIN};
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use tracing::Instrument;

use crate::agent::Agent;
use crate::agent::builder::AgentBuilder;
use crate::agent::dialects::{mcp_structured_content, mcp_tools};
use crate::audit::{AuditLog, Subject};
use crate::auth::{TenantContext, no_tenant};
use crate::cache::TtlCache;
use crate::error::Error;
use crate::ids::{Channel, OrgId, PluginName, is_valid_name};
use crate::pipeline::{CALL_SCOPE, MAX_BODY_BYTES, ToolCallEvent};
use crate::ports::ToolInvoker;
use crate::registry::Registry;

/// The `initialize` handshake's revisions served, newest first.
pub const PROTOCOL_VERSIONS: [&str; 4] = ["2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"];

/// The per-request-envelope revisions served (no handshake: every request stands alone).
pub const MODERN_VERSIONS: [&str; 1] = ["2026-07-28"];

/// Every revision served, newest first: what `server/discover` and a refused revision list.
pub const ALL_VERSIONS: [&str; 5] = [
    MODERN_VERSIONS[0],
    PROTOCOL_VERSIONS[0],
    PROTOCOL_VERSIONS[1],
    PROTOCOL_VERSIONS[2],
    PROTOCOL_VERSIONS[3],
];

/// The envelope every 2026-07-28 request carries in `params._meta`.
const META_VERSION: &str = "io.modelcontextprotocol/protocolVersion";
const META_CAPABILITIES: &str = "io.modelcontextprotocol/clientCapabilities";
/// Who answers, on every 2026-07-28 result.
const META_SERVER_INFO: &str = "io.modelcontextprotocol/serverInfo";

/// The header naming the revision a client negotiated.
const PROTOCOL_HEADER: &str = "mcp-protocol-version";

/// The one revision with JSON-RPC batches, and the one a request without the header is.
const BATCH_REVISION: &str = "2025-03-26";

/// Most messages one batch may carry.
const MAX_BATCH: usize = 16;

/// How many of a batch's messages run at once.
const BATCH_CONCURRENCY: usize = 4;

/// JSON-RPC 2.0 error codes, and MCP's for an unsupported revision.
pub mod codes {
    pub const PARSE_ERROR: i64 = -32700;
    pub const INVALID_REQUEST: i64 = -32600;
    pub const METHOD_NOT_FOUND: i64 = -32601;
    pub const INVALID_PARAMS: i64 = -32602;
    pub const INTERNAL_ERROR: i64 = -32603;
    /// The request was refused (the channel is not configured, the key may not read it);
    /// `data` holds the error contract's `status`, `code` and `details`.
    pub const REFUSED: i64 = -32000;
    pub const UNSUPPORTED_PROTOCOL_VERSION: i64 = -32022;
    /// 2026-07-28: a routing header disagrees with the body.
    pub const HEADER_MISMATCH: i64 = -32020;
}

/// The `_meta` key marking a result replayed from its idempotency record.
pub const REPLAYED_META: &str = "switchboard/replayed";

/// Which browser origins may call (the spec's DNS-rebinding rule): a request without an
/// `Origin` header (no browser) is always served.
#[derive(Debug, Clone, Default)]
pub struct OriginPolicy {
    /// Exact origins, e.g. `https://console.example.com`.
    pub allowed: Vec<String>,
    /// Also `http(s)://localhost`, `127.0.0.1` and `[::1]` on any port (`dev`).
    pub loopback: bool,
}

impl OriginPolicy {
    pub fn allows(&self, origin: &str) -> bool {
        self.allowed.iter().any(|o| o.eq_ignore_ascii_case(origin))
            || (self.loopback && is_loopback_origin(origin))
    }
}

fn is_loopback_origin(origin: &str) -> bool {
    let Some(rest) = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
    else {
        return false;
    };
    let host = match rest.strip_prefix("[::1]") {
        Some(port) => return port.is_empty() || is_port(port),
        None => rest,
    };
    let (name, port) = host.split_once(':').unwrap_or((host, ""));
    (name.eq_ignore_ascii_case("localhost") || name == "127.0.0.1")
        && (port.is_empty() || is_port(&format!(":{port}")))
}

fn is_port(s: &str) -> bool {
    s.strip_prefix(':')
        .is_some_and(|p| !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()))
}

pub struct McpService {
    agents: AgentBuilder,
    invoker: Arc<dyn ToolInvoker>,
    origins: OriginPolicy,
    audit: Option<McpAudit>,
}

/// Where the tool calls refused before any plugin function ran are recorded: the audit log,
/// and the registry for each organization's retention (cached like agents).
struct McpAudit {
    log: Arc<AuditLog>,
    registry: Registry,
    retention: TtlCache<OrgId, u32>,
    /// Refusals (key and error code) this container recorded in the last second: a key
    /// that loops on a bad call costs the table a write a second, not one per message.
    reported: TtlCache<(OrgId, Option<String>, &'static str), ()>,
}

/// How long recording a refusal may take, reading the organization's retention and writing
/// the entry: an invoke that used most of the function's time must still answer before the
/// function's timeout.
const RETENTION_LOOKUP: Duration = Duration::from_millis(300);
const REFUSAL_WRITE_BUDGET: Duration = Duration::from_millis(700);

/// An HTTP request to `/mcp/{channel}`, after the authorizer.
pub struct McpRequest<'a> {
    pub method: &'a Method,
    /// The `{channel}` path segment.
    pub channel: &'a str,
    pub tenant: Option<TenantContext>,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
    pub request_id: &'a str,
}

/// The HTTP answer: `body` is `None` for `202 Accepted`.
#[derive(Debug)]
pub struct McpResponse {
    pub status: u16,
    pub body: Option<Value>,
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

impl McpResponse {
    fn error(e: &Error) -> Self {
        let mut headers = Vec::new();
        if e.status() == 405 {
            headers.push((http::header::ALLOW, HeaderValue::from_static("POST")));
        }
        Self {
            status: e.status(),
            body: Some(e.to_body()),
            headers,
        }
    }

    fn rpc(status: u16, body: Value) -> Self {
        Self {
            status,
            body: Some(body),
            headers: Vec::new(),
        }
    }
}

/// A JSON-RPC error.
#[derive(Debug)]
struct RpcError {
    code: i64,
    message: String,
    data: Option<Value>,
}

impl RpcError {
    fn new(code: i64, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            data: None,
        }
    }

    /// A revision this server does not serve, with the ones it does.
    fn unsupported(requested: &str) -> Self {
        Self {
            code: codes::UNSUPPORTED_PROTOCOL_VERSION,
            message: format!(
                "MCP-Protocol-Version '{}' is not served here; supported: {}",
                short(requested),
                ALL_VERSIONS.join(", ")
            ),
            data: Some(json!({"supported": ALL_VERSIONS, "requested": short(requested)})),
        }
    }

    fn params(message: impl Into<String>) -> Self {
        Self::new(codes::INVALID_PARAMS, message)
    }

    /// A platform error: internal failures as JSON-RPC's internal error (the cause stays in
    /// the log), refusals with the contract's code and details.
    fn from_error(e: &Error) -> Self {
        let body = e.to_body();
        let code = if e.status() >= 500 {
            codes::INTERNAL_ERROR
        } else {
            codes::REFUSED
        };
        Self {
            code,
            message: e.to_string(),
            data: Some(json!({
                "status": e.status(),
                "code": e.code(),
                "details": body["error"]["details"],
            })),
        }
    }

    fn to_message(&self, id: &Value) -> Value {
        let mut error = json!({"code": self.code, "message": self.message});
        if let Some(data) = &self.data {
            error["data"] = data.clone();
        }
        json!({"jsonrpc": "2.0", "id": id, "error": error})
    }
}

/// The verified parts of a request every method sees.
struct Ctx<'a> {
    tenant: TenantContext,
    channel: Channel,
    idempotency_key: Option<&'a str>,
    request_id: &'a str,
}

/// One message's answer: none (a notification or a response), or a JSON-RPC response
/// with the HTTP status it gets when alone.
enum Outcome {
    Accepted,
    Reply {
        status: u16,
        body: Value,
        replayed: bool,
    },
}

/// What a method answered, and whether a tool result was replayed.
struct Answer {
    result: Value,
    replayed: bool,
}

impl McpService {
    pub fn new(agents: AgentBuilder, invoker: Arc<dyn ToolInvoker>, origins: OriginPolicy) -> Self {
        Self {
            agents,
            invoker,
            origins,
            audit: None,
        }
    }

    /// Records the `tools/call`s this server refuses itself (no tool named, arguments that
    /// are not an object, no agent, an unknown tool, an invoke that failed) in `log`, with
    /// the retention of each organization's profile in `registry`, read at most once per
    /// `ttl`. A call the plugin function ran is recorded by that function.
    pub fn with_audit(mut self, log: Arc<AuditLog>, registry: Registry, ttl: Duration) -> Self {
        self.audit = Some(McpAudit {
            log,
            registry,
            retention: TtlCache::new(ttl),
            reported: TtlCache::new(Duration::from_secs(1)),
        });
        self
    }

    /// The audit entry of a `tools/call` refused before a plugin function ran (or reached).
    async fn audit_refused(
        &self,
        ctx: &Ctx<'_>,
        tool: (Option<&PluginName>, Option<&str>),
        started: (SystemTime, Instant),
        e: &Error,
    ) {
        let Some(audit) = &self.audit else {
            return;
        };
        let org = &ctx.tenant.org;
        let reporter = (org.clone(), ctx.tenant.key_id.clone(), e.code());
        if audit.reported.get(&reporter).is_some() {
            tracing::debug!(
                code = e.code(),
                "tools/call refused; the same refusal of this key is recorded for this second"
            );
            return;
        }
        audit.reported.insert(reporter, ());
        let subject = Subject {
            channel: Some(ctx.channel.to_string()),
            key_id: ctx.tenant.key_id.clone(),
            route: "mcp".to_owned(),
            plugin: tool.0.map(ToString::to_string),
            function: tool.1.map(|f| f.chars().take(128).collect()),
            idempotency_key: ctx.idempotency_key.map(str::to_owned),
            request_id: ctx.request_id.to_owned(),
            ..Subject::default()
        };
        let entry = subject.refused(org, started.0, started.1, e);
        let load = || async {
            let profile = audit.registry.get_profile(org).await?;
            Ok::<_, Error>(crate::audit::retention_days(
                profile.as_ref().map(|p| &p.value),
            ))
        };
        let lookup = audit.retention.get_or_load(org, load);
        let days = match tokio::time::timeout(RETENTION_LOOKUP, lookup).await {
            Ok(Ok(days)) => days,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "profile unreadable; audit entry kept for the default retention");
                crate::audit::DEFAULT_RETENTION_DAYS
            }
            Err(_) => {
                tracing::warn!(
                    "profile not read in time; audit entry kept for the default retention"
                );
                crate::audit::DEFAULT_RETENTION_DAYS
            }
        };
        audit
            .log
            .record_within(&entry, 0, days, REFUSAL_WRITE_BUDGET)
            .await;
    }

    /// Answers one HTTP request.
    pub async fn handle(&self, req: McpRequest<'_>) -> McpResponse {
        let started = Instant::now();
        let span = tracing::info_span!(
            "mcp",
            request_id = req.request_id,
            org = tracing::field::Empty,
            channel = req.channel,
            rpc = tracing::field::Empty,
            tool = tracing::field::Empty,
        );
        let resp = self.respond(req).instrument(span.clone()).await;
        let elapsed_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        span.in_scope(|| tracing::info!(status = resp.status, elapsed_us, "mcp answered"));
        resp
    }

    async fn respond(&self, req: McpRequest<'_>) -> McpResponse {
        let ctx = match self.check_http(&req) {
            Ok(ctx) => ctx,
            Err(e) => return McpResponse::error(&e),
        };
        tracing::Span::current().record("org", ctx.tenant.org.as_str());
        let message: Value = match serde_json::from_slice(req.body) {
            Ok(v) => v,
            Err(e) => {
                let e = RpcError::new(codes::PARSE_ERROR, format!("the body is not JSON: {e}"));
                return McpResponse::rpc(400, e.to_message(&Value::Null));
            }
        };
        if let Some(v) = req.headers.get(PROTOCOL_HEADER)
            && let Some(modern) = MODERN_VERSIONS
                .iter()
                .find(|m| v.as_bytes() == m.as_bytes())
        {
            return self.modern(&ctx, message, req.headers, modern).await;
        }
        // A 2026-07-28 envelope under another header (or none) disagrees with itself.
        if let Some(claimed) = message
            .pointer("/params/_meta")
            .and_then(|m| m.get(META_VERSION))
        {
            let e = RpcError::new(
                codes::HEADER_MISMATCH,
                format!(
                    "params._meta names protocol revision {}, but MCP-Protocol-Version does not; send the same revision in both",
                    short(&claimed.to_string())
                ),
            );
            let id = message.get("id").cloned().unwrap_or(Value::Null);
            return McpResponse::rpc(400, e.to_message(&id));
        }
        // The negotiated revision; without the header, 2025-03-26 (the specification's rule).
        let revision = match req.headers.get(PROTOCOL_HEADER) {
            None => Ok(BATCH_REVISION),
            Some(v) => {
                let v = v.to_str().unwrap_or_default();
                PROTOCOL_VERSIONS
                    .iter()
                    .find(|p| **p == v)
                    .copied()
                    .ok_or(v)
            }
        };
        let Value::Array(batch) = message else {
            return match self.one(&ctx, message, revision, None).await {
                Outcome::Accepted => accepted(),
                Outcome::Reply {
                    status,
                    body,
                    replayed,
                } => {
                    let mut resp = McpResponse::rpc(status, body);
                    if replayed {
                        resp.headers.push((
                            HeaderName::from_static("idempotent-replayed"),
                            HeaderValue::from_static("true"),
                        ));
                    }
                    resp
                }
            };
        };
        // Batches are 2025-03-26's only (later revisions removed them).
        if let Err(v) = revision {
            let e = RpcError::unsupported(v);
            return McpResponse::rpc(400, e.to_message(&Value::Null));
        }
        if revision != Ok(BATCH_REVISION) {
            let e = RpcError::new(
                codes::INVALID_REQUEST,
                "send one JSON-RPC message per POST: batches exist in protocol revision 2025-03-26 only",
            );
            return McpResponse::rpc(400, e.to_message(&Value::Null));
        }
        if batch.is_empty() || batch.len() > MAX_BATCH {
            let e = RpcError::new(
                codes::INVALID_REQUEST,
                format!("a batch holds 1 to {MAX_BATCH} messages"),
            );
            return McpResponse::rpc(400, e.to_message(&Value::Null));
        }
        // Ids must tell the answers apart (and, with a key, the calls).
        let mut ids: Vec<&Value> = batch
            .iter()
            .filter(|m| m.get("method").is_some())
            .filter_map(|m| m.get("id"))
            .filter(|id| id.is_string() || id.is_number())
            .collect();
        ids.sort_by_key(|id| id.to_string());
        if ids.windows(2).any(|w| w[0] == w[1]) {
            let e = RpcError::new(
                codes::INVALID_REQUEST,
                "each request of a batch needs an id of its own",
            );
            return McpResponse::rpc(400, e.to_message(&Value::Null));
        }
        // A few at a time, so a batch ends within a few calls' time rather than the sum of
        // them, without one request starting many plugin functions at once. Answers keep the
        // batch's order; the calls' effects have none.
        let answers: Vec<Outcome> = futures_util::stream::iter(
            batch
                .into_iter()
                .map(|message| self.one(&ctx, message, revision, Some(()))),
        )
        .buffered(BATCH_CONCURRENCY)
        .collect()
        .await;
        let replies: Vec<Value> = answers
            .into_iter()
            .filter_map(|a| match a {
                Outcome::Reply { body, .. } => Some(body),
                Outcome::Accepted => None,
            })
            .collect();
        if replies.is_empty() {
            accepted()
        } else {
            McpResponse::rpc(200, Value::Array(replies))
        }
    }

    /// One JSON-RPC message (alone, or one of a batch when `batch` is set: its errors are
    /// then entries of the batch's answer, and its idempotency key is the request's key and
    /// its id together).
    async fn one(
        &self,
        ctx: &Ctx<'_>,
        message: Value,
        revision: Result<&'static str, &str>,
        batch: Option<()>,
    ) -> Outcome {
        let rpc = |status: u16, body: Value| Outcome::Reply {
            status: if batch.is_some() { 200 } else { status },
            body,
            replayed: false,
        };
        let Value::Object(message) = message else {
            let e = RpcError::new(codes::INVALID_REQUEST, "a JSON-RPC message is an object");
            return rpc(400, e.to_message(&Value::Null));
        };
        let id = message.get("id");
        let valid_id = match id {
            Some(Value::String(_)) => true,
            Some(Value::Number(n)) => n.is_i64() || n.is_u64(),
            _ => false,
        };
        let invalid = |why: &str| {
            let e = RpcError::new(codes::INVALID_REQUEST, why);
            let id = if valid_id { id.cloned() } else { None };
            rpc(400, e.to_message(&id.unwrap_or(Value::Null)))
        };
        if message.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
            return invalid("a JSON-RPC 2.0 message needs \"jsonrpc\": \"2.0\"");
        }
        let method = match message.get("method") {
            Some(Value::String(m)) => m.as_str(),
            Some(_) => return invalid("\"method\" must be a string"),
            // A response to a server request: this server sends none, so nothing awaits it.
            None if id.is_some()
                && (message.contains_key("result") || message.contains_key("error")) =>
            {
                return Outcome::Accepted;
            }
            None => return invalid("a request needs \"method\""),
        };
        tracing::Span::current().record("rpc", short(method));
        let Some(id) = id else {
            // A notification (`notifications/initialized`, `notifications/cancelled`, …):
            // nothing here keeps state for it to change.
            return Outcome::Accepted;
        };
        if !valid_id {
            return invalid("\"id\" must be a string or an integer");
        }
        if batch.is_some() && method == "initialize" {
            return invalid("initialize cannot be part of a batch");
        }
        // Every request but `initialize` carries the negotiated revision.
        if method != "initialize"
            && let Err(v) = revision
        {
            let e = RpcError::unsupported(v);
            return rpc(400, e.to_message(id));
        }
        let batch_key;
        let ctx = match (batch, ctx.idempotency_key) {
            (Some(()), Some(k)) => {
                // One key for a batch: each call's key is the key and its id, hashed to stay
                // within the key's length and alphabet.
                let digest = Sha256::digest(format!("{k}\n{id}").as_bytes());
                batch_key = digest
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect::<String>();
                &Ctx {
                    idempotency_key: Some(&batch_key),
                    tenant: ctx.tenant.clone(),
                    channel: ctx.channel.clone(),
                    request_id: ctx.request_id,
                }
            }
            _ => ctx,
        };
        match self.dispatch(ctx, method, message.get("params")).await {
            Ok(answer) => Outcome::Reply {
                status: 200,
                body: json!({"jsonrpc": "2.0", "id": id, "result": answer.result}),
                replayed: answer.replayed,
            },
            Err(e) => rpc(200, e.to_message(id)),
        }
    }

    /// A 2026-07-28 request: one JSON-RPC message carrying its own envelope (revision and
    /// client capabilities in `params._meta`), its method and tool name mirrored in headers.
    /// There is no handshake: `server/discover` says what is served.
    async fn modern(
        &self,
        ctx: &Ctx<'_>,
        message: Value,
        headers: &HeaderMap,
        version: &'static str,
    ) -> McpResponse {
        // HTTP status by JSON-RPC code, as this revision maps them.
        let fail = |id: &Value, e: RpcError| {
            let status = match e.code {
                codes::METHOD_NOT_FOUND => 404,
                codes::PARSE_ERROR
                | codes::INVALID_REQUEST
                | codes::INVALID_PARAMS
                | codes::HEADER_MISMATCH
                | codes::UNSUPPORTED_PROTOCOL_VERSION => 400,
                _ => 200,
            };
            McpResponse::rpc(status, e.to_message(id))
        };
        let Value::Object(message) = message else {
            let e = RpcError::new(
                codes::INVALID_REQUEST,
                "send one JSON-RPC message (an object) per POST",
            );
            return fail(&Value::Null, e);
        };
        if message.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
            let e = RpcError::new(
                codes::INVALID_REQUEST,
                "a JSON-RPC 2.0 message needs \"jsonrpc\": \"2.0\"",
            );
            return fail(&Value::Null, e);
        }
        let Some(method) = message.get("method").and_then(Value::as_str) else {
            let e = RpcError::new(
                codes::INVALID_REQUEST,
                "a request needs \"method\" (a string)",
            );
            return fail(&Value::Null, e);
        };
        tracing::Span::current().record("rpc", short(method));
        let id = match message.get("id") {
            // A notification: nothing here keeps state for it to change.
            None => return accepted(),
            Some(id @ Value::String(_)) => id,
            Some(id @ Value::Number(n)) if n.is_i64() || n.is_u64() => id,
            Some(_) => {
                let e = RpcError::new(
                    codes::INVALID_REQUEST,
                    "\"id\" must be a string or an integer",
                );
                return fail(&Value::Null, e);
            }
        };
        let params = message.get("params").and_then(Value::as_object);
        let meta = params
            .and_then(|p| p.get("_meta"))
            .and_then(Value::as_object);
        let (Some(asked), Some(Value::Object(_))) = (
            meta.and_then(|m| m.get(META_VERSION))
                .and_then(Value::as_str),
            meta.and_then(|m| m.get(META_CAPABILITIES)),
        ) else {
            let e = RpcError::params(format!(
                "a 2026-07-28 request carries params._meta with '{META_VERSION}' (a string) and '{META_CAPABILITIES}' (an object)"
            ));
            return fail(id, e);
        };
        // One value each: a proxy reading another copy would route differently.
        for h in [PROTOCOL_HEADER, "mcp-method", "mcp-name"] {
            if headers.get_all(h).iter().count() > 1 {
                let e = RpcError::new(
                    codes::HEADER_MISMATCH,
                    format!("the {h} header is sent more than once"),
                );
                return fail(id, e);
            }
        }
        let mismatch = |what: &str| {
            fail(
                id,
                RpcError::new(
                    codes::HEADER_MISMATCH,
                    format!("the {what} header does not match the body"),
                ),
            )
        };
        if asked != version {
            return mismatch("MCP-Protocol-Version");
        }
        if headers.get("mcp-method").map(HeaderValue::as_bytes) != Some(method.as_bytes()) {
            return mismatch("Mcp-Method");
        }
        if method == "tools/call"
            && let Some(name) = params.and_then(|p| p.get("name")).and_then(Value::as_str)
            && header_value(headers.get("mcp-name")).as_deref() != Some(name)
        {
            return mismatch("Mcp-Name");
        }
        let server_info = json!({
            "name": "switchboard",
            "title": format!("Switchboard: {} / {}", ctx.tenant.org, ctx.channel),
            "version": env!("CARGO_PKG_VERSION"),
        });
        let answer = match method {
            "server/discover" => match self.agent(ctx).await {
                Ok(agent) => Ok(Answer {
                    result: json!({
                        "supportedVersions": ALL_VERSIONS,
                        "capabilities": {"tools": {}},
                        "instructions": agent.instructions,
                        "ttlMs": 0,
                        "cacheScope": "private",
                    }),
                    replayed: false,
                }),
                Err(e) => Err(e),
            },
            "tools/list" | "tools/call" => self.dispatch(ctx, method, message.get("params")).await,
            // No handshake and no ping in this revision.
            other => Err(RpcError::new(
                codes::METHOD_NOT_FOUND,
                format!(
                    "method '{}' is not served under {version}; this server has server/discover, tools/list and tools/call",
                    short(other)
                ),
            )),
        };
        match answer {
            Ok(mut answer) => {
                let result = &mut answer.result;
                result["resultType"] = json!("complete");
                if method == "tools/list" {
                    result["ttlMs"] = json!(0);
                    result["cacheScope"] = json!("private");
                }
                match result.get_mut("_meta").and_then(Value::as_object_mut) {
                    Some(meta) => {
                        meta.insert(META_SERVER_INFO.to_owned(), server_info);
                    }
                    None => result["_meta"] = json!({META_SERVER_INFO: server_info}),
                }
                let mut resp = McpResponse::rpc(
                    200,
                    json!({"jsonrpc": "2.0", "id": id, "result": answer.result}),
                );
                if answer.replayed {
                    resp.headers.push((
                        HeaderName::from_static("idempotent-replayed"),
                        HeaderValue::from_static("true"),
                    ));
                }
                resp
            }
            Err(e) => fail(id, e),
        }
    }

    /// The transport's rules, before the body is read: method, origin, tenant, channel,
    /// media types, size.
    fn check_http<'a>(&self, req: &McpRequest<'a>) -> Result<Ctx<'a>, Error> {
        if req.method != Method::POST {
            return Err(Error::MethodNotAllowed(
                "/mcp/{channel} takes POST only: this stateless server opens no stream (GET) and keeps no session to end (DELETE)".into(),
            ));
        }
        if let Some(origin) = req.headers.get(ORIGIN) {
            let origin = origin.to_str().unwrap_or_default();
            if !self.origins.allows(origin) {
                return Err(Error::Forbidden {
                    code: "origin_not_allowed",
                    message: format!(
                        "Origin '{}' may not call this MCP server; call without an Origin header, or from an allowed origin (SWITCHBOARD_MCP_ALLOWED_ORIGINS)",
                        origin.chars().take(100).collect::<String>()
                    ),
                });
            }
        }
        let tenant = req.tenant.clone().ok_or_else(no_tenant)?;
        let channel =
            Channel::parse(req.channel).map_err(|e| Error::invalid_request(e.to_string()))?;
        if let Some(bound) = tenant.channel.as_ref().filter(|b| **b != channel) {
            return Err(Error::Forbidden {
                code: "forbidden",
                message: format!(
                    "this key is bound to the '{bound}' channel; it can reach only /mcp/{bound}"
                ),
            });
        }
        let has = |scope: &str| tenant.scopes.iter().any(|s| s == scope);
        if !has(CALL_SCOPE) && !has(crate::agent::service::READ_SCOPE) {
            return Err(Error::Forbidden {
                code: "forbidden",
                message: format!(
                    "this credential has neither '{CALL_SCOPE}' nor '{}', one of which an MCP client needs",
                    crate::agent::service::READ_SCOPE
                ),
            });
        }
        let media = |h: &HeaderValue| {
            h.to_str()
                .unwrap_or_default()
                .split(',')
                .map(|m| {
                    m.split(';')
                        .next()
                        .unwrap_or_default()
                        .trim()
                        .to_ascii_lowercase()
                })
                .collect::<Vec<_>>()
        };
        let json_body = req
            .headers
            .get(CONTENT_TYPE)
            .is_some_and(|h| media(h).first().is_some_and(|m| m == "application/json"));
        if !json_body {
            return Err(Error::UnsupportedMediaType(
                "send the JSON-RPC message with Content-Type: application/json".into(),
            ));
        }
        if let Some(accept) = req.headers.get(ACCEPT) {
            let takes_json = media(accept)
                .iter()
                .any(|m| m == "application/json" || m == "application/*" || m == "*/*");
            if !takes_json {
                return Err(Error::NotAcceptable(
                    "this server answers with application/json; include it in Accept (e.g. 'Accept: application/json, text/event-stream')".into(),
                ));
            }
        }
        if req.body.len() > MAX_BODY_BYTES {
            return Err(Error::PayloadTooLarge {
                size: req.body.len(),
                limit: MAX_BODY_BYTES,
            });
        }
        let idempotency_key = match req.headers.get("idempotency-key").map(|v| v.to_str()) {
            None => None,
            // Checked here, before a batch derives its calls' keys from it.
            Some(Ok(k)) => Some(crate::idempotency::header_key(k).map(|_| k)?),
            Some(Err(_)) => {
                return Err(Error::invalid_request(
                    "the Idempotency-Key header must be 1 to 255 visible ASCII characters",
                ));
            }
        };
        Ok(Ctx {
            // Calls run on the route's channel: its assignments and adapter overrides apply.
            tenant: tenant.on_channel(channel.clone()),
            channel,
            idempotency_key,
            request_id: req.request_id,
        })
    }

    async fn agent(&self, ctx: &Ctx<'_>) -> Result<Arc<Agent>, RpcError> {
        self.built(ctx).await.map_err(|e| RpcError::from_error(&e))
    }

    async fn built(&self, ctx: &Ctx<'_>) -> Result<Arc<Agent>, Error> {
        self.agents
            .build(&ctx.tenant.org, &ctx.channel)
            .await
            .inspect_err(|e| {
                if let Error::Internal(cause) = e {
                    tracing::error!(cause = %cause, "agent build failed: internal");
                }
            })
    }

    async fn dispatch(
        &self,
        ctx: &Ctx<'_>,
        method: &str,
        params: Option<&Value>,
    ) -> Result<Answer, RpcError> {
        let params = match params {
            None | Some(Value::Null) => &Map::new(),
            Some(Value::Object(p)) => p,
            Some(_) => return Err(RpcError::params("\"params\" must be an object")),
        };
        let done = |result| {
            Ok(Answer {
                result,
                replayed: false,
            })
        };
        match method {
            "initialize" => {
                let Some(asked) = params.get("protocolVersion").and_then(Value::as_str) else {
                    return Err(RpcError::params(
                        "initialize needs params.protocolVersion (a string)",
                    ));
                };
                // The client's revision when served, else the newest, for it to decide.
                let version = PROTOCOL_VERSIONS
                    .iter()
                    .find(|v| **v == asked)
                    .unwrap_or(&PROTOCOL_VERSIONS[0]);
                let agent = self.agent(ctx).await?;
                done(json!({
                    "protocolVersion": version,
                    "capabilities": {"tools": {"listChanged": false}},
                    "serverInfo": {
                        "name": "switchboard",
                        "title": format!("Switchboard: {} / {}", ctx.tenant.org, ctx.channel),
                        "version": env!("CARGO_PKG_VERSION"),
                    },
                    "instructions": agent.instructions,
                }))
            }
            "ping" => done(json!({})),
            "tools/list" => {
                if params.get("cursor").is_some_and(|c| !c.is_null()) {
                    return Err(RpcError::params(
                        "unknown cursor: tools/list answers in one page",
                    ));
                }
                let agent = self.agent(ctx).await?;
                done(json!({"tools": mcp_tools(&agent)}))
            }
            "tools/call" => self.call_tool(ctx, params).await,
            other => Err(RpcError::new(
                codes::METHOD_NOT_FOUND,
                format!(
                    "method '{}' is not served; this server has initialize, ping, tools/list and tools/call",
                    other.chars().take(64).collect::<String>()
                ),
            )),
        }
    }

    async fn call_tool(
        &self,
        ctx: &Ctx<'_>,
        params: &Map<String, Value>,
    ) -> Result<Answer, RpcError> {
        let started = (SystemTime::now(), Instant::now());
        let Some(name) = params.get("name").and_then(Value::as_str) else {
            let why = "tools/call needs params.name (a string)";
            let e = Error::invalid_request(why);
            self.audit_refused(ctx, (None, None), started, &e).await;
            return Err(RpcError::params(why));
        };
        tracing::Span::current().record("tool", short(name));
        let arguments = match params.get("arguments") {
            None | Some(Value::Null) => Value::Object(Map::new()),
            Some(a @ Value::Object(_)) => a.clone(),
            Some(_) => {
                let why = "params.arguments must be an object";
                let e = Error::invalid_request(why);
                self.audit_refused(ctx, (None, Some(name)), started, &e)
                    .await;
                return Err(RpcError::params(why));
            }
        };
        let agent = match self.built(ctx).await {
            Ok(agent) => agent,
            Err(e) => {
                self.audit_refused(ctx, (None, Some(name)), started, &e)
                    .await;
                return Err(RpcError::from_error(&e));
            }
        };
        // Exactly the tools tools/list shows (names MCP clients take).
        let listed = |t: &&crate::agent::AgentTool| t.name == name && is_valid_name(&t.name);
        let Some(tool) = agent.tools.iter().find(listed) else {
            let why = format!(
                "Unknown tool: '{}'; tools/list names this channel's tools",
                name.chars().take(64).collect::<String>()
            );
            let e = Error::NotFound {
                code: "unknown_tool",
                message: why.clone(),
            };
            self.audit_refused(ctx, (None, Some(name)), started, &e)
                .await;
            return Err(RpcError::params(why));
        };
        let event = ToolCallEvent::new(
            tool.plugin.clone(),
            &ctx.tenant,
            tool.function.as_str(),
            arguments,
            ctx.request_id,
        )
        .with_idempotency_key(ctx.idempotency_key);
        let out = match self.invoker.invoke(&event).await {
            Ok(out) => out,
            // The function could not be reached: an outage (throttled, timed out) is the
            // model's to report; anything else is internal.
            Err(e) => {
                tracing::error!(plugin = %tool.plugin, error = ?e, "tool invoke failed");
                let function = Some(tool.function.as_str());
                self.audit_refused(ctx, (Some(&tool.plugin), function), started, &e)
                    .await;
                if matches!(e, Error::Internal(_)) {
                    return Err(RpcError::from_error(&e));
                }
                crate::pipeline::CallOutput {
                    status: e.status(),
                    body: e.to_body(),
                    replayed: false,
                }
            }
        };
        if out.status == 200 {
            let value = out.body.get("result").cloned().unwrap_or(Value::Null);
            let text = match &value {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            let mut result = json!({
                "content": [{"type": "text", "text": text}],
                "structuredContent": mcp_structured_content(&value, tool.output_schema.as_ref()),
                "isError": false,
            });
            if out.replayed {
                result["_meta"] = json!({REPLAYED_META: true});
            }
            return Ok(Answer {
                result,
                replayed: out.replayed,
            });
        }
        let error = &out.body["error"];
        let message = error["message"].as_str().unwrap_or("the call failed");
        if out.status == 500 {
            // The cause is in the plugin function's log under this request id.
            return Err(RpcError {
                code: codes::INTERNAL_ERROR,
                message: message.to_owned(),
                data: Some(
                    json!({"status": 500, "code": error["code"], "requestId": ctx.request_id}),
                ),
            });
        }
        // The call was refused: the model gets the reason, as a tool result it can act on.
        let mut text = message.to_owned();
        for d in error["details"].as_array().into_iter().flatten() {
            if let (Some(path), Some(msg)) = (d["path"].as_str(), d["message"].as_str())
                && !message.contains(msg)
            {
                text.push_str(&format!("\n{path}: {msg}"));
            }
        }
        Ok(Answer {
            result: json!({
                "content": [{"type": "text", "text": text}],
                "isError": true,
                "_meta": {"switchboard/error": {"status": out.status, "code": error["code"], "details": error["details"]}},
            }),
            replayed: false,
        })
    }
}

/// A routing header's value: as sent, or decoded from the `=?base64?…?=` form clients use
/// for values that are not plain visible ASCII.
fn header_value(h: Option<&HeaderValue>) -> Option<String> {
    use base64::Engine;
    let raw = h?.to_str().ok()?;
    match raw
        .strip_prefix("=?base64?")
        .and_then(|r| r.strip_suffix("?="))
    {
        Some(b64) => {
            let bytes = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
            String::from_utf8(bytes).ok()
        }
        None => Some(raw.to_owned()),
    }
}

/// A caller's string as logs and answers show it: at most 64 characters.
fn short(s: &str) -> String {
    s.chars().take(64).collect()
}

fn accepted() -> McpResponse {
    McpResponse {
        status: 202,
        body: None,
        headers: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_origins_are_told_apart_from_look_alikes() {
        let dev = OriginPolicy {
            allowed: vec!["https://console.example.com".into()],
            loopback: true,
        };
        for ok in [
            "http://localhost",
            "http://localhost:6274",
            "http://127.0.0.1:3000",
            "https://[::1]:8443",
            "https://console.example.com",
        ] {
            assert!(dev.allows(ok), "{ok}");
        }
        for refused in [
            "http://localhost.evil.com",
            "http://127.0.0.1.evil.com:3000",
            "http://evil.com",
            "null",
            "http://localhost:abc",
            "http://[::1]evil",
            "file://localhost",
        ] {
            assert!(!dev.allows(refused), "{refused}");
        }
        let aws = OriginPolicy::default();
        assert!(!aws.allows("http://localhost:3000"));
    }
}
