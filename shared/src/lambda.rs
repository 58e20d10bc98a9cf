//! Lambda entry glue: API Gateway HTTP API (v2) event → tenant context → pipeline → response.

use std::sync::Arc;

use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response, service_fn};
use serde_json::Value;

use crate::adapters::{dynamodb, embedded::Embedded};
use crate::auth::TenantContext;
use crate::cache::ttl_from_env;
use crate::data::BuiltinData;
use crate::error::Error;
use crate::pipeline::{CallInput, Platform, PluginService};
use crate::plugin::Plugin;
use crate::registry::Registry;
use crate::telemetry;

/// Builds the per-container platform from the environment:
/// - `SWITCHBOARD_STORE` unset or `dynamodb`: DynamoDB tables `REGISTRY_TABLE` and
///   `DATA_TABLE` (defaults `switchboard-registry`, `switchboard-data`);
/// - `SWITCHBOARD_STORE=sqlite:<path>`: the embedded store (`cargo lambda watch` locally).
pub async fn platform_from_env() -> Result<Platform, lambda_http::Error> {
    let store = std::env::var("SWITCHBOARD_STORE").unwrap_or_else(|_| "dynamodb".to_owned());
    let (registry, data) = if let Some(path) = store.strip_prefix("sqlite:") {
        let db = Embedded::open(std::path::Path::new(path))?;
        (db.registry_table(), db.data_table())
    } else if store == "dynamodb" {
        let client = dynamodb::client_from_env().await;
        let table =
            |var: &str, default: &str| std::env::var(var).unwrap_or_else(|_| default.to_owned());
        let registry: Arc<dyn crate::ports::ItemStore> = Arc::new(dynamodb::DynamoStore::new(
            client.clone(),
            table("REGISTRY_TABLE", "switchboard-registry"),
        ));
        let data: Arc<dyn crate::ports::ItemStore> = Arc::new(dynamodb::DynamoStore::new(
            client,
            table("DATA_TABLE", "switchboard-data"),
        ));
        (registry, data)
    } else {
        return Err(format!(
            "SWITCHBOARD_STORE must be 'dynamodb' or 'sqlite:<path>', not '{store}'"
        )
        .into());
    };
    Ok(Platform::new(
        Registry::new(registry),
        Arc::new(BuiltinData::new(data)),
        ttl_from_env(),
    ))
}

/// The whole `main` of a plugin Lambda: tracing, clients once, then the runtime loop.
pub async fn run_plugin(plugin: Plugin) -> Result<(), lambda_http::Error> {
    telemetry::init();
    let platform = Arc::new(platform_from_env().await?);
    let service = PluginService::new(plugin, platform);
    let service = &service;
    lambda_http::run(service_fn(move |req: Request| async move {
        Ok::<_, std::convert::Infallible>(handle(service, req).await)
    }))
    .await
}

/// The tenant from `requestContext.authorizer.lambda`; `None` when there is none.
pub fn tenant_of(req: &Request) -> Result<Option<TenantContext>, Error> {
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
    let routes = service.plugin().routes();
    let path = req.uri().path().to_owned();
    if !routes.contains(&path) {
        let e = if path.starts_with("/plugins/") {
            Error::NotFound {
                code: "unknown_plugin",
                message: format!(
                    "no plugin is served at {path}; this function serves {}",
                    routes.join(", ")
                ),
            }
        } else {
            Error::not_found(format!("no route {path}"))
        };
        return json_response(e.status(), &e.to_body());
    }
    if req.method() != lambda_http::http::Method::POST {
        let e = Error::MethodNotAllowed(format!("{path} accepts POST only"));
        return json_response(e.status(), &e.to_body());
    }
    let tenant = match tenant_of(&req) {
        Ok(t) => t,
        Err(e) => return json_response(e.status(), &e.to_body()),
    };
    let rid = request_id(&req);
    let body: &[u8] = match req.body() {
        Body::Empty => b"",
        Body::Text(t) => t.as_bytes(),
        Body::Binary(b) => b,
        _ => b"",
    };
    let (status, value) = service
        .call(CallInput {
            tenant,
            body,
            request_id: &rid,
        })
        .await;
    json_response(status, &value)
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
