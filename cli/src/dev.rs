//! The local dev server: every function's routes on one port, on the embedded store, with
//! the authorizer emulated by the same code the authorizer Lambda runs.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpListener;

use switchboard::adapters::DataAdapters;
use switchboard::adapters::embedded::Embedded;
use switchboard::admin::{AdminRequest, AdminService, MAX_ADMIN_BODY};
use switchboard::agent::builder::AgentBuilder;
use switchboard::agent::dialects::ExportOptions;
use switchboard::agent::service::AgentService;
use switchboard::auth::{Authorizer, KEY_CACHE_TTL};
use switchboard::cache::ttl_from_env;
use switchboard::data::BuiltinData;
use switchboard::error::Error;
use switchboard::pipeline::{CallInput, MAX_BODY_BYTES, Platform, PluginService, route_error};
use switchboard::registry::Registry;
use switchboard::secrets::Secrets;

pub struct Options {
    pub addr: SocketAddr,
    pub data_dir: PathBuf,
}

/// Every plugin this build serves. A new plugin crate adds one line here.
pub fn plugins() -> Result<Vec<switchboard::Plugin>, switchboard::ContractError> {
    Ok(vec![booking::plugin()?, support::plugin()?, crm::plugin()?])
}

pub struct Server {
    routes: HashMap<String, Arc<PluginService>>,
    agents: AgentService,
    admin: Option<AdminService>,
    authorizer: Authorizer,
    next_id: AtomicU64,
}

impl Server {
    pub fn new(
        platform: Arc<Platform>,
        plugins: Vec<switchboard::Plugin>,
        agents: AgentService,
    ) -> Self {
        let mut routes = HashMap::new();
        for plugin in plugins {
            let paths = plugin.routes();
            let svc = Arc::new(PluginService::new(plugin, platform.clone()));
            for p in paths {
                routes.insert(p, svc.clone());
            }
        }
        Self {
            authorizer: Authorizer::new(platform.registry.clone(), KEY_CACHE_TTL),
            routes,
            agents,
            admin: None,
            next_id: AtomicU64::new(1),
        }
    }

    /// Serves `/admin/…` too, as the admin Lambda does.
    pub fn with_admin(mut self, admin: AdminService) -> Self {
        self.admin = Some(admin);
        self
    }

    /// Answers one request: route, emulated authorizer, pipeline.
    pub async fn answer(&self, req: Request<Incoming>) -> Response<Full<Bytes>> {
        let path = req.uri().path().to_owned();
        if let Some(channel) = path.strip_prefix("/agents/") {
            return self.agent(&req, channel).await;
        }
        if let (Some(admin), true) = (&self.admin, path.starts_with("/admin/")) {
            return self.admin(admin, req).await;
        }
        let Some(svc) = self.routes.get(&path).cloned() else {
            let mut served: Vec<String> = self.routes.keys().cloned().collect();
            served.sort_unstable();
            let e = route_error(&path, &served);
            return reply(e.status(), &e.to_body());
        };
        if req.method() != Method::POST {
            let e = Error::MethodNotAllowed(format!("{path} accepts POST only"));
            return reply(e.status(), &e.to_body());
        }
        let tenant = match self.authorizer.authenticate(bearer(&req).as_deref()).await {
            Ok(t) => t,
            Err(e) => return reply(e.status(), &e.to_body()),
        };
        let body = match Limited::new(req.into_body(), MAX_BODY_BYTES + 1)
            .collect()
            .await
        {
            Ok(b) => b.to_bytes(),
            Err(_) => {
                let e = Error::PayloadTooLarge {
                    size: MAX_BODY_BYTES + 1,
                    limit: MAX_BODY_BYTES,
                };
                return reply(e.status(), &e.to_body());
            }
        };
        let rid = format!("dev-{}", self.next_id.fetch_add(1, Ordering::Relaxed));
        let (status, value) = svc
            .call(CallInput {
                tenant: Some(tenant),
                body: &body,
                request_id: &rid,
            })
            .await;
        reply(status, &value)
    }
}

impl Server {
    /// `/admin/…`, as the admin Lambda answers it behind the authorizer.
    async fn admin(&self, admin: &AdminService, req: Request<Incoming>) -> Response<Full<Bytes>> {
        let tenant = match self.authorizer.authenticate(bearer(&req).as_deref()).await {
            Ok(t) => t,
            Err(e) => return reply(e.status(), &e.to_body()),
        };
        let method = req.method().as_str().to_owned();
        let path = req.uri().path().to_owned();
        let if_match = req
            .headers()
            .get(hyper::header::IF_MATCH)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = match Limited::new(req.into_body(), MAX_ADMIN_BODY + 1)
            .collect()
            .await
        {
            Ok(b) => b.to_bytes(),
            Err(_) => {
                let e = Error::PayloadTooLarge {
                    size: MAX_ADMIN_BODY + 1,
                    limit: MAX_ADMIN_BODY,
                };
                return reply(e.status(), &e.to_body());
            }
        };
        let (status, value) = admin
            .handle(AdminRequest {
                tenant: Some(tenant),
                method: &method,
                path: &path,
                if_match: if_match.as_deref(),
                body: &body,
            })
            .await;
        reply(status, &value)
    }

    /// `GET /agents/{channel}[?format=…]`, as the agent-builder Lambda answers it.
    async fn agent(&self, req: &Request<Incoming>, channel: &str) -> Response<Full<Bytes>> {
        if req.method() != Method::GET {
            let e = Error::MethodNotAllowed("/agents/{channel} accepts GET only".into());
            return reply(e.status(), &e.to_body());
        }
        let tenant = match self.authorizer.authenticate(bearer(req).as_deref()).await {
            Ok(t) => t,
            Err(e) => return reply(e.status(), &e.to_body()),
        };
        let format = req
            .uri()
            .query()
            .into_iter()
            .flat_map(|q| q.split('&'))
            .find_map(|kv| kv.strip_prefix("format="));
        let rid = format!("dev-{}", self.next_id.fetch_add(1, Ordering::Relaxed));
        let (status, body) = self.agents.get(Some(tenant), channel, format, &rid).await;
        reply(status, &body)
    }
}

fn bearer<B>(req: &Request<B>) -> Option<String> {
    req.headers()
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

fn reply(status: u16, body: &Value) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from(body.to_string())));
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    resp
}

/// Serves `server` on `listener` until the process ends.
pub async fn serve(listener: TcpListener, server: Arc<Server>) -> std::io::Result<()> {
    loop {
        let (stream, _) = listener.accept().await?;
        let server = server.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req| {
                let server = server.clone();
                async move { Ok::<_, std::convert::Infallible>(server.answer(req).await) }
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

pub async fn run(opts: Options) -> Result<(), Box<dyn std::error::Error>> {
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
    let agents = AgentService::new(
        AgentBuilder::new(registry.clone(), ttl_from_env()),
        ExportOptions {
            public_base_url: Some(format!("http://{addr}")),
        },
    );
    let secrets = Arc::new(Secrets::from_env(db.secret_store()));
    // Local upstreams (a json-server, a local PostgreSQL) are the point of dev.
    let adapters = Arc::new(DataAdapters::with_private_upstreams(data, secrets, true)?);
    let admin = AdminService::new(registry.clone(), adapters.clone());
    let platform = Arc::new(Platform::new(registry, adapters, ttl_from_env()));
    let server = Arc::new(Server::new(platform, plugins, agents).with_admin(admin));
    println!(
        "{}",
        crate::seed::banner(addr, &opts.data_dir, &key, &operator)
    );
    serve(listener, server).await?;
    Ok(())
}
