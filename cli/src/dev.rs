//! The local dev server: API Gateway in front of the Lambdas' own handlers, in one process,
//! on the embedded store.
//!
//! Each request goes the way it goes on AWS: routed by path as `template.yaml` routes it,
//! authorized by the authorizer Lambda's own code (its simple response's `context` becomes
//! the request's authorizer context), turned into the API Gateway HTTP API (v2) event the
//! function would receive, parsed by `lambda_http` exactly as in Lambda, and answered by the
//! function's handler. Methods, body limits, `If-Match` and errors are the handlers' own.
//! The signed routes (`/channels/{retell|vapi|twilio}/{connection}/<plugin>`) skip the
//! authorizer, as in the template: the plugin verifies the signature itself. The MCP
//! server (`/mcp/{channel}`) reaches the plugins in-process, with the same tool-call event
//! its Lambda sends their functions ([`LocalInvoker`]).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use base64::Engine;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Map, Value, json};
use tokio::net::TcpListener;

use switchboard::admin::AdminService;
use switchboard::agent::builder::AgentBuilder;
use switchboard::agent::dialects::ExportOptions;
use switchboard::agent::service::AgentService;
use switchboard::auth::{Authorizer, KEY_CACHE_TTL};
use switchboard::data::BuiltinData;
use switchboard::egress::Egress;
use switchboard::error::Error;
use switchboard::lambda::{LocalInvoker, handle, handle_admin, handle_agent, handle_mcp};
use switchboard::mcp::{McpService, OriginPolicy};
use switchboard::pipeline::{Platform, PluginService, route_error};
use switchboard::ports::ToolInvoker;
use switchboard::registry::Registry;
use switchboard::schedule::StoredSchedules;
use switchboard::secrets::Secrets;
use switchboard::settings::Settings;
use switchboard_embedded::Embedded;

pub struct Options {
    pub addr: SocketAddr,
    pub data_dir: PathBuf,
}

// `plugins()`: every plugin crate this binary depends on (cli/Cargo.toml), found by build.rs.
include!(concat!(env!("OUT_DIR"), "/plugins.rs"));

/// Lambda's limit on a synchronous invocation's request payload: API Gateway cannot hand a
/// function more than this, whatever the function would accept.
const LAMBDA_PAYLOAD_LIMIT: usize = 6 * 1024 * 1024;

/// Which function a route goes to, as `template.yaml` wires them.
enum Target<'a> {
    Plugin(&'a PluginService),
    /// A plugin's signed route: no authorizer.
    Signed(&'a PluginService),
    Agents,
    Admin,
    /// The console's files, on the admin function: no authorizer.
    Console,
    Mcp,
}

/// API Gateway and the functions behind it.
pub struct Gateway {
    plugins: Vec<Arc<PluginService>>,
    /// Plugins' scheduled calls, run here when due ([`Gateway::run_due`]).
    schedules: Option<Arc<StoredSchedules>>,
    invoker: Arc<LocalInvoker>,
    platform: Arc<Platform>,
    agents: AgentService,
    admin: AdminService,
    mcp: McpService,
    authorizer: Authorizer,
    next_id: AtomicU64,
    /// The `Host` every event carries: this server's address.
    host: String,
}

impl Gateway {
    pub fn new(
        platform: Arc<Platform>,
        plugins: Vec<switchboard::Plugin>,
        agents: AgentService,
        admin: AdminService,
        mcp_agents: AgentBuilder,
        settings: &Settings,
        addr: SocketAddr,
    ) -> Self {
        let plugins: Vec<_> = plugins
            .into_iter()
            .map(|p| Arc::new(PluginService::new(p, platform.clone())))
            .collect();
        // Browsers on this machine (the MCP Inspector's page) may call; others are refused.
        let origins = OriginPolicy {
            allowed: settings.mcp_origins.clone(),
            loopback: true,
        };
        let invoker = Arc::new(LocalInvoker::new(plugins.clone()));
        Self {
            host: addr.to_string(),
            authorizer: match platform.audit() {
                Some(audit) => Authorizer::new(platform.registry.clone(), KEY_CACHE_TTL)
                    .with_audit(audit.clone()),
                None => Authorizer::new(platform.registry.clone(), KEY_CACHE_TTL),
            },
            mcp: match platform.audit() {
                Some(audit) => McpService::new(mcp_agents, invoker.clone(), origins).with_audit(
                    audit.clone(),
                    platform.registry.clone(),
                    settings.cache_ttl,
                ),
                None => McpService::new(mcp_agents, invoker.clone(), origins),
            },
            invoker,
            schedules: None,
            platform,
            plugins,
            agents,
            admin,
            next_id: AtomicU64::new(1),
        }
    }

    /// Runs plugins' scheduled calls from `schedules` when due (the platform's scheduler
    /// must be the same store: [`gateway`] sets both).
    pub fn with_schedules(mut self, schedules: Arc<StoredSchedules>) -> Self {
        self.schedules = Some(schedules);
        self
    }

    /// Runs the scheduled calls due at `now` (epoch seconds) through each plugin's event
    /// handling, as EventBridge Scheduler delivers them on AWS; how many ran.
    pub async fn run_due(&self, now: i64) -> usize {
        let Some(schedules) = &self.schedules else {
            return 0;
        };
        let due = match schedules.take_due(now).await {
            Ok(due) => due,
            Err(e) => {
                tracing::error!(error = %e, "the scheduled calls could not be read");
                return 0;
            }
        };
        let ran = due.len();
        for call in due {
            match self.invoker.invoke(&call.event).await {
                Ok(out) => tracing::info!(
                    plugin = %call.event.plugin,
                    function = %call.event.function,
                    status = out.status,
                    "ran a scheduled call"
                ),
                Err(e) => tracing::error!(
                    plugin = %call.event.plugin,
                    function = %call.event.function,
                    error = %e,
                    "a scheduled call failed"
                ),
            }
        }
        ran
    }

    /// Every second, [`Gateway::run_due`] by the platform's clock.
    async fn run_schedules(self: Arc<Self>) {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
        loop {
            tick.tick().await;
            let now = self
                .platform
                .now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
            self.run_due(now).await;
        }
    }

    /// The route a path matches: the route key's path and its path parameters.
    fn route(
        &self,
        method: &hyper::Method,
        path: &str,
    ) -> Option<(Target<'_>, String, Map<String, Value>)> {
        for svc in &self.plugins {
            if let Some(r) = svc.routes().iter().find(|r| r.as_str() == path) {
                return Some((Target::Plugin(svc), r.clone(), Map::new()));
            }
        }
        // POST only, as the template routes them (API Gateway answers 404 to the rest).
        if let Some(tail) = path.strip_prefix("/channels/") {
            if method != hyper::Method::POST {
                return None;
            }
            let parts: Vec<&str> = tail.split('/').collect();
            // Every plugin takes the voice platforms' tool calls; a webhook platform reaches
            // only the plugins with a function for its webhooks.
            if let [platform, connection, plugin] = parts.as_slice()
                && let Some(kind) = switchboard::VoicePlatform::parse(platform)
                && !connection.is_empty()
                && let Some(svc) = self.plugins.iter().find(|p| {
                    p.plugin().name().as_str() == *plugin
                        && (!kind.sends_webhooks()
                            || p.plugin().manifest().webhook_function(kind).is_some())
                })
            {
                let params = Map::from_iter([("connection".to_owned(), json!(connection))]);
                let route = format!("/channels/{platform}/{{connection}}/{plugin}");
                return Some((Target::Signed(svc), route, params));
            }
            return None;
        }
        if let Some(channel) = path
            .strip_prefix("/agents/")
            .filter(|c| !c.is_empty() && !c.contains('/'))
        {
            let params = Map::from_iter([("channel".to_owned(), json!(channel))]);
            return Some((Target::Agents, "/agents/{channel}".into(), params));
        }
        if let Some(channel) = path
            .strip_prefix("/mcp/")
            .filter(|c| !c.is_empty() && !c.contains('/'))
        {
            let params = Map::from_iter([("channel".to_owned(), json!(channel))]);
            return Some((Target::Mcp, "/mcp/{channel}".into(), params));
        }
        // GET only, as the template routes them.
        if path == "/console" {
            return (method == hyper::Method::GET)
                .then(|| (Target::Console, path.into(), Map::new()));
        }
        if let Some(rest) = path.strip_prefix("/console/").filter(|r| !r.is_empty()) {
            if method != hyper::Method::GET {
                return None;
            }
            let params = Map::from_iter([("proxy".to_owned(), json!(rest))]);
            return Some((Target::Console, "/console/{proxy+}".into(), params));
        }
        if let Some(rest) = path.strip_prefix("/admin/").filter(|r| !r.is_empty()) {
            let params = Map::from_iter([("proxy".to_owned(), json!(rest))]);
            return Some((Target::Admin, "/admin/{proxy+}".into(), params));
        }
        None
    }

    /// Answers one request as API Gateway and the function behind the route would.
    pub async fn answer(&self, req: Request<Incoming>) -> Response<Full<Bytes>> {
        let (parts, body) = req.into_parts();
        let path = parts.uri.path().to_owned();
        let Some((target, route, params)) = self.route(&parts.method, &path) else {
            let mut served: Vec<String> = self
                .plugins
                .iter()
                .flat_map(|p| p.routes().iter().cloned())
                .collect();
            served.sort_unstable();
            let e = route_error(&path, &served);
            return reply(e.status(), e.to_body().to_string().into(), None);
        };
        let request_id = format!("dev-{}", self.next_id.fetch_add(1, Ordering::Relaxed));
        let mut headers = header_map(&parts.headers);
        // API Gateway sets these itself; lambda_http builds the request's URL from them, and
        // Twilio signs that URL. A tunnel in front of dev (the URL Twilio was given) keeps its
        // own host and scheme.
        // Only values lambda_http can build a URL from (it unwraps the parse): a repeated
        // header (joined with commas) or anything else that does not parse as its URL's
        // host falls back to dev's own.
        let given = |name: &str| headers.get(name).and_then(Value::as_str).map(str::to_owned);
        let scheme = given("x-forwarded-proto")
            .map(|p| p.to_ascii_lowercase())
            .filter(|p| p == "http" || p == "https")
            .unwrap_or_else(|| "http".to_owned());
        let host = given("host")
            .filter(|h| {
                h.chars()
                    .all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c))
                    && url::Url::parse(&format!("{scheme}://{h}/")).is_ok()
            })
            .unwrap_or_else(|| self.host.clone());
        headers.insert("host".into(), json!(host));
        headers.insert("x-forwarded-proto".into(), json!(scheme));
        let route_key = format!("{} {route}", parts.method);
        let context = match target {
            Target::Signed(_) | Target::Console => None,
            _ => match self.authorize(&parts, &headers, &route_key).await {
                Ok(context) => Some(context),
                Err(resp) => return resp,
            },
        };
        let body = match Limited::new(body, LAMBDA_PAYLOAD_LIMIT).collect().await {
            Ok(b) => b.to_bytes(),
            Err(_) => {
                return reply(
                    413,
                    json!({"message": "Request Entity Too Large"})
                        .to_string()
                        .into(),
                    None,
                );
            }
        };
        let event = v2_event(V2 {
            parts: &parts,
            headers,
            route_key,
            params,
            body: &body,
            context,
            request_id: &request_id,
        });
        let lambda_req = match lambda_http::request::from_str(&event.to_string()) {
            Ok(r) => r,
            Err(e) => {
                let e = Error::internal(format!("dev could not build the Lambda event: {e}"));
                tracing::error!(error = ?e, "dev gateway");
                return reply(e.status(), e.to_body().to_string().into(), None);
            }
        };
        let resp = match target {
            Target::Plugin(svc) | Target::Signed(svc) => handle(svc, lambda_req).await,
            Target::Agents => handle_agent(&self.agents, lambda_req).await,
            Target::Admin | Target::Console => handle_admin(&self.admin, lambda_req).await,
            Target::Mcp => handle_mcp(&self.mcp, lambda_req).await,
        };
        from_lambda(resp)
    }

    /// The authorizer as API Gateway runs it: no `Authorization` header is 401 without a
    /// call; otherwise the authorizer Lambda's own code decides, and its `context` is what the
    /// function sees. A refused key is API Gateway's 403 (the reason is in dev's log).
    async fn authorize(
        &self,
        parts: &hyper::http::request::Parts,
        headers: &Map<String, Value>,
        route_key: &str,
    ) -> Result<Value, Response<Full<Bytes>>> {
        let Some(identity) = headers.get("authorization").cloned() else {
            return Err(gateway_refusal(
                401,
                "unauthenticated",
                "no Authorization header: send 'Authorization: Bearer <api key>' (API Gateway answers 401 {\"message\":\"Unauthorized\"})",
            ));
        };
        let event = json!({
            "version": "2.0",
            "type": "REQUEST",
            "routeArn": format!("arn:aws:execute-api:local:000000000000:dev/$default/{}{}", parts.method, parts.uri.path()),
            "identitySource": [identity],
            "routeKey": route_key,
            "rawPath": parts.uri.path(),
            "rawQueryString": parts.uri.query().unwrap_or(""),
            "headers": headers,
        });
        match self.authorizer.simple_response(&event).await {
            Ok(r) if r["isAuthorized"] == true => {
                Ok(r.get("context").cloned().unwrap_or(json!({})))
            }
            Ok(_) => Err(gateway_refusal(
                403,
                "forbidden",
                "the authorizer refused this API key: it is unknown or revoked (API Gateway answers 403 {\"message\":\"Forbidden\"})",
            )),
            Err(e) => {
                tracing::error!(error = %e, "authorizer failed");
                Err(reply(
                    500,
                    json!({"message": "Internal Server Error"})
                        .to_string()
                        .into(),
                    None,
                ))
            }
        }
    }
}

/// A refusal of API Gateway's, in the error contract's envelope (with a message saying what
/// API Gateway itself would send).
fn gateway_refusal(status: u16, code: &str, message: &str) -> Response<Full<Bytes>> {
    let body =
        json!({"success": false, "error": {"code": code, "message": message, "details": []}});
    reply(status, body.to_string().into(), None)
}

/// Request headers as an HTTP API event carries them: lower-case names, repeated values
/// joined with commas.
fn header_map(headers: &hyper::HeaderMap) -> Map<String, Value> {
    let mut out: Map<String, Value> = Map::new();
    for (name, value) in headers {
        let Ok(v) = value.to_str() else { continue };
        match out.get_mut(name.as_str()) {
            Some(Value::String(s)) => {
                s.push(',');
                s.push_str(v);
            }
            _ => {
                out.insert(name.as_str().to_owned(), json!(v));
            }
        }
    }
    out
}

struct V2<'a> {
    parts: &'a hyper::http::request::Parts,
    headers: Map<String, Value>,
    route_key: String,
    params: Map<String, Value>,
    body: &'a Bytes,
    /// The authorizer's context; `None` on a route without the authorizer.
    context: Option<Value>,
    request_id: &'a str,
}

/// The API Gateway HTTP API (payload 2.0) event of a request.
fn v2_event(r: V2<'_>) -> Value {
    let (body, base64) = match std::str::from_utf8(r.body) {
        Ok(text) => (text.to_owned(), false),
        Err(_) => (
            base64::engine::general_purpose::STANDARD.encode(r.body),
            true,
        ),
    };
    let query = r.parts.uri.query().unwrap_or("");
    let mut query_params: Map<String, Value> = Map::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        query_params.insert(k.to_owned(), json!(v));
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let mut event = json!({
        "version": "2.0",
        "routeKey": r.route_key,
        "rawPath": r.parts.uri.path(),
        "rawQueryString": query,
        "headers": r.headers,
        "requestContext": {
            "accountId": "000000000000",
            "apiId": "dev",
            "domainName": r.headers.get("host").cloned().unwrap_or(json!("localhost")),
            "http": {
                "method": r.parts.method.as_str(),
                "path": r.parts.uri.path(),
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": r.headers.get("user-agent").cloned().unwrap_or(json!("")),
            },
            "requestId": r.request_id,
            "routeKey": r.route_key,
            "stage": "$default",
            "timeEpoch": now,
        },
        "body": body,
        "isBase64Encoded": base64,
    });
    if let Some(context) = r.context {
        event["requestContext"]["authorizer"] = json!({"lambda": context});
    }
    if !query_params.is_empty() {
        event["queryStringParameters"] = Value::Object(query_params);
    }
    if !r.params.is_empty() {
        event["pathParameters"] = Value::Object(r.params);
    }
    event
}

/// A function's response as API Gateway passes it on.
fn from_lambda(resp: lambda_http::Response<lambda_http::Body>) -> Response<Full<Bytes>> {
    let (parts, body) = resp.into_parts();
    let bytes: Bytes = match body {
        lambda_http::Body::Text(t) => t.into(),
        lambda_http::Body::Binary(b) => b.into(),
        _ => Bytes::new(),
    };
    reply(parts.status.as_u16(), bytes, Some(parts.headers))
}

fn reply(status: u16, body: Bytes, headers: Option<hyper::HeaderMap>) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(body));
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    match headers {
        Some(h) => *resp.headers_mut() = h,
        None => {
            resp.headers_mut().insert(
                hyper::header::CONTENT_TYPE,
                hyper::header::HeaderValue::from_static("application/json"),
            );
        }
    }
    resp
}

/// Serves `gateway` on `listener` until the process ends.
pub async fn serve(listener: TcpListener, gateway: Arc<Gateway>) -> std::io::Result<()> {
    let _runner = AbortOnDrop(tokio::spawn(gateway.clone().run_schedules()));
    loop {
        let (stream, _) = listener.accept().await?;
        let gateway = gateway.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req| {
                let gateway = gateway.clone();
                async move { Ok::<_, std::convert::Infallible>(gateway.answer(req).await) }
            });
            if let Err(e) = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await
            {
                tracing::debug!(error = %e, "connection closed with an error");
            }
        });
    }
}

/// Stops the scheduled-call runner with the server.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The functions `dev` runs, over one embedded database, composed as the Lambdas compose
/// theirs (`switchboard-runtime`), with private upstreams allowed: a developer's local
/// json-server or PostgreSQL is the point of `dev`.
pub fn gateway(
    db: &Embedded,
    settings: &Settings,
    plugins: Vec<switchboard::Plugin>,
    addr: SocketAddr,
) -> Result<Gateway, Box<dyn std::error::Error>> {
    let registry = Registry::new(db.registry_table());
    let secrets = Arc::new(Secrets::from_settings(db.secret_store(), settings));
    let platform = switchboard_runtime::platform_with(
        registry.clone(),
        BuiltinData::new(db.data_table()),
        secrets.clone(),
        switchboard_runtime::tls_config()?,
        settings,
    )
    .map_err(|e| e.to_string())?;
    let schedules = Arc::new(StoredSchedules::new(db.data_table()));
    let platform = platform.with_scheduler(schedules.clone());
    let agents = AgentService::new(
        AgentBuilder::new(registry.clone(), settings.cache_ttl),
        ExportOptions {
            public_base_url: Some(format!("http://{addr}")),
        },
    );
    let mcp_agents = AgentBuilder::new(registry.clone(), settings.cache_ttl);
    let audit = Arc::new(switchboard::audit::AuditLog::new(db.data_table()));
    let admin = switchboard_runtime::admin_with(registry, secrets, settings)
        .with_audit(audit)
        .with_export(ExportOptions {
            public_base_url: Some(format!("http://{addr}")),
        });
    Ok(Gateway::new(
        Arc::new(platform),
        plugins,
        agents,
        admin,
        mcp_agents,
        settings,
        addr,
    )
    .with_schedules(schedules))
}

/// `dev`'s settings: the environment's, on the embedded store, private upstreams allowed.
pub fn settings() -> Result<Settings, Box<dyn std::error::Error>> {
    let mut settings = Settings::from_env()?;
    settings.egress = Egress::new(true);
    Ok(settings)
}

pub async fn run(opts: Options) -> Result<(), Box<dyn std::error::Error>> {
    let settings = settings()?;
    let db = Embedded::open(&opts.data_dir.join("switchboard.db"))?;
    let registry = Registry::new(db.registry_table());
    let data = BuiltinData::new(db.data_table());
    let plugins = plugins()?;
    let key = crate::seed::ensure_demo(&registry, &data, &plugins, &opts.data_dir, None).await?;
    let operator = crate::seed::operator_key(&registry, &opts.data_dir).await?;
    let listener = TcpListener::bind(opts.addr)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", opts.addr))?;
    let addr = listener.local_addr()?;
    // Vapi and Retell tool definitions point back at this server.
    let gateway = gateway(&db, &settings, plugins, addr)?;
    println!(
        "{}",
        crate::seed::banner(addr, &opts.data_dir, &key, &operator)
    );
    serve(listener, Arc::new(gateway)).await?;
    Ok(())
}
