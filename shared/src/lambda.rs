//! Lambda entry glue: API Gateway HTTP API (v2) event → tenant context → pipeline → response.

use std::sync::Arc;

use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response, service_fn};
use serde_json::Value;

use crate::adapters::secretsmanager::{self, SecretsManagerStore};
use crate::adapters::{DataAdapters, dynamodb};
use crate::admin::{AdminRequest, AdminService};
use crate::agent::builder::AgentBuilder;
use crate::agent::dialects::ExportOptions;
use crate::agent::service::AgentService;
use crate::auth::{Authorizer, KEY_CACHE_TTL, TenantContext};
use crate::cache::ttl_from_env;
use crate::data::BuiltinData;
use crate::error::Error as ApiError;
use crate::pipeline::{CallInput, Platform, PluginService, route_error};
use crate::plugin::Plugin;
use crate::ports::ItemStore;
use crate::registry::Registry;
use crate::secrets::{SecretStore, Secrets};
use crate::telemetry;

/// The error `main` returns (lambda_http's), so plugin crates need not depend on lambda_http.
pub use lambda_http::Error;

/// Builds the per-container platform from the environment:
/// - `SWITCHBOARD_STORE` unset or `dynamodb`: DynamoDB tables `REGISTRY_TABLE` and
///   `DATA_TABLE` (defaults `switchboard-registry`, `switchboard-data`), credentials from
///   Secrets Manager;
/// - `SWITCHBOARD_STORE=sqlite:<path>`: the embedded store and its local secret store
///   (`cargo lambda watch` locally).
pub async fn platform_from_env() -> Result<Platform, Error> {
    let (registry, adapters) = stores_from_env().await?;
    Ok(Platform::new(registry, adapters, ttl_from_env()))
}

/// The registry and the data adapter factory (with its secret resolver), from the
/// environment as [`platform_from_env`] describes.
pub async fn stores_from_env() -> Result<(Registry, Arc<DataAdapters>), Error> {
    let store = std::env::var("SWITCHBOARD_STORE").unwrap_or_else(|_| "dynamodb".to_owned());
    let (registry, data, secrets) = if let Some(path) = store.strip_prefix("sqlite:") {
        embedded_tables(path)?
    } else if store == "dynamodb" {
        let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .load()
            .await;
        let client = dynamodb::client_from_config(&sdk);
        let table =
            |var: &str, default: &str| std::env::var(var).unwrap_or_else(|_| default.to_owned());
        let registry: Arc<dyn ItemStore> = Arc::new(dynamodb::DynamoStore::new(
            client.clone(),
            table("REGISTRY_TABLE", "switchboard-registry"),
        ));
        let data: Arc<dyn ItemStore> = Arc::new(dynamodb::DynamoStore::new(
            client,
            table("DATA_TABLE", "switchboard-data"),
        ));
        let secrets: Arc<dyn SecretStore> = Arc::new(SecretsManagerStore::new(
            secretsmanager::client_from_config(&sdk),
        ));
        (registry, data, secrets)
    } else {
        return Err(format!(
            "SWITCHBOARD_STORE must be 'dynamodb' or 'sqlite:<path>', not '{store}'"
        )
        .into());
    };
    let adapters = DataAdapters::new(BuiltinData::new(data), Arc::new(Secrets::from_env(secrets)))?;
    Ok((Registry::new(registry), Arc::new(adapters)))
}

/// The registry and data tables and the secret store.
type Stores = (Arc<dyn ItemStore>, Arc<dyn ItemStore>, Arc<dyn SecretStore>);

#[cfg(feature = "embedded")]
fn embedded_tables(path: &str) -> Result<Stores, Error> {
    let db = crate::adapters::embedded::Embedded::open(std::path::Path::new(path))?;
    Ok((db.registry_table(), db.data_table(), db.secret_store()))
}

#[cfg(not(feature = "embedded"))]
fn embedded_tables(_: &str) -> Result<Stores, Error> {
    Err(
        "SWITCHBOARD_STORE=sqlite:… needs the `embedded` feature (e.g. `--features booking/local`)"
            .into(),
    )
}

/// The whole `main` of a plugin Lambda: tracing, clients once, then the runtime loop.
pub async fn run_plugin(plugin: Plugin) -> Result<(), Error> {
    telemetry::init();
    let platform = Arc::new(platform_from_env().await?);
    let service = PluginService::new(plugin, platform);
    let service = &service;
    lambda_http::run(service_fn(move |req: Request| async move {
        Ok::<_, std::convert::Infallible>(handle(service, req).await)
    }))
    .await
}

/// The whole `main` of the agent-builder Lambda (`GET /agents/{channel}[?format=…]`).
/// `SWITCHBOARD_PUBLIC_URL` is the API's public base URL for Vapi and Retell tool URLs.
pub async fn run_agent_builder() -> Result<(), Error> {
    telemetry::init();
    let platform = platform_from_env().await?;
    let export = ExportOptions {
        public_base_url: std::env::var("SWITCHBOARD_PUBLIC_URL")
            .ok()
            .filter(|u| !u.is_empty()),
    };
    let service = AgentService::new(AgentBuilder::new(platform.registry, ttl_from_env()), export);
    let service = &service;
    lambda_http::run(service_fn(move |req: Request| async move {
        Ok::<_, std::convert::Infallible>(handle_agent(service, req).await)
    }))
    .await
}

/// The whole `main` of the admin Lambda (`/admin/…`).
pub async fn run_admin() -> Result<(), Error> {
    telemetry::init();
    let (registry, adapters) = stores_from_env().await?;
    let service = AdminService::new(registry, adapters);
    let service = &service;
    lambda_http::run(service_fn(move |req: Request| async move {
        Ok::<_, std::convert::Infallible>(handle_admin(service, req).await)
    }))
    .await
}

/// Answers one API Gateway request under `/admin/`.
pub async fn handle_admin(service: &AdminService, req: Request) -> Response<Body> {
    let tenant = match tenant_of(&req) {
        Ok(t) => t,
        Err(e) => return json_response(e.status(), &e.to_body()),
    };
    let if_match = req
        .headers()
        .get(lambda_http::http::header::IF_MATCH)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = body_bytes(&req);
    let (status, value) = service
        .handle(AdminRequest {
            tenant,
            method: req.method().as_str(),
            path: req.uri().path(),
            if_match: if_match.as_deref(),
            body,
        })
        .await;
    json_response(status, &value)
}

/// Answers one API Gateway request for `GET /agents/{channel}`.
pub async fn handle_agent(service: &AgentService, req: Request) -> Response<Body> {
    if req.method() != lambda_http::http::Method::GET {
        let e = ApiError::MethodNotAllowed("/agents/{channel} accepts GET only".into());
        return json_response(e.status(), &e.to_body());
    }
    let from_path = req
        .uri()
        .path()
        .rsplit_once("/agents/")
        .map(|(_, c)| c.to_owned());
    let channel = req
        .path_parameters_ref()
        .and_then(|p| p.first("channel").map(str::to_owned))
        .or(from_path)
        .unwrap_or_default();
    let tenant = match tenant_of(&req) {
        Ok(t) => t,
        Err(e) => return json_response(e.status(), &e.to_body()),
    };
    let format = req
        .query_string_parameters_ref()
        .and_then(|q| q.first("format").map(str::to_owned));
    let (status, body) = service
        .get(tenant, &channel, format.as_deref(), &request_id(&req))
        .await;
    json_response(status, &body)
}

/// The whole `main` of the authorizer Lambda: an HTTP API Lambda authorizer (payload 2.0,
/// simple responses) that turns `Authorization: Bearer <key>` into `{orgId, scopes}`.
pub async fn run_authorizer() -> Result<(), Error> {
    telemetry::init();
    let platform = platform_from_env().await?;
    let authorizer = Authorizer::new(platform.registry, KEY_CACHE_TTL);
    let authorizer = &authorizer;
    lambda_http::lambda_runtime::run(lambda_http::service_fn(
        move |event: lambda_http::LambdaEvent<Value>| async move {
            authorizer
                .simple_response(&event.payload)
                .await
                .map_err(|e| Error::from(format!("authorizer: {e}")))
        },
    ))
    .await
}

/// The tenant from `requestContext.authorizer.lambda`; `None` when there is none.
pub fn tenant_of(req: &Request) -> Result<Option<TenantContext>, ApiError> {
    let fields = match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(ctx)) => ctx.authorizer.as_ref().map(|a| &a.fields),
        _ => None,
    };
    match fields {
        Some(f) if !f.is_empty() => {
            let map: serde_json::Map<String, Value> =
                f.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
            TenantContext::from_authorizer(&map).map(Some)
        }
        _ => Ok(None),
    }
}

fn request_id(req: &Request) -> String {
    if let Some(ctx) = req.lambda_context_ref() {
        return ctx.request_id.clone();
    }
    match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(ctx)) => ctx.request_id.clone().unwrap_or_default(),
        _ => String::new(),
    }
}

/// Answers one API Gateway request for this plugin's routes.
pub async fn handle(service: &PluginService, req: Request) -> Response<Body> {
    // API Gateway has routed the request already; the check catches a mis-wired route. A
    // named stage prefixes the path, so match `{plugin}` or the path's tail.
    let path = req.uri().path();
    let served = match req.path_parameters_ref().and_then(|p| p.first("plugin")) {
        Some(name) => name == service.plugin().name().as_str(),
        None => service.routes().iter().any(|r| path.ends_with(r.as_str())),
    };
    if !served {
        let e = route_error(path, service.routes());
        return json_response(e.status(), &e.to_body());
    }
    if req.method() != lambda_http::http::Method::POST {
        let e = ApiError::MethodNotAllowed(format!("{path} accepts POST only"));
        return json_response(e.status(), &e.to_body());
    }
    let tenant = match tenant_of(&req) {
        Ok(t) => t,
        Err(e) => return json_response(e.status(), &e.to_body()),
    };
    let rid = request_id(&req);
    let body = body_bytes(&req);
    let (status, value) = service
        .call(CallInput {
            tenant,
            body,
            request_id: &rid,
        })
        .await;
    json_response(status, &value)
}

fn body_bytes(req: &Request) -> &[u8] {
    match req.body() {
        Body::Empty => b"",
        Body::Text(t) => t.as_bytes(),
        Body::Binary(b) => b,
        _ => b"",
    }
}

pub fn json_response(status: u16, body: &Value) -> Response<Body> {
    let mut resp = Response::new(Body::Text(body.to_string()));
    *resp.status_mut() = lambda_http::http::StatusCode::from_u16(status)
        .unwrap_or(lambda_http::http::StatusCode::INTERNAL_SERVER_ERROR);
    resp.headers_mut().insert(
        lambda_http::http::header::CONTENT_TYPE,
        lambda_http::http::HeaderValue::from_static("application/json"),
    );
    resp
}
