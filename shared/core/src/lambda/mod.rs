//! The Lambda edge: an API Gateway HTTP API (v2) request → the domain service → a response
//! in the error contract's envelope. One module per function kind; `main` builds the service
//! once and hands it to that module's `serve`.

mod admin;
mod agent;
mod authorizer;
mod invoke;
mod mcp;
mod plugin;

use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};
use serde_json::Value;

use crate::auth::TenantContext;
use crate::error::Error as ApiError;

pub use admin::handle_admin;
pub use agent::handle_agent;
pub use invoke::LocalInvoker;
pub use mcp::handle_mcp;
pub use plugin::{EventReply, handle, handle_event};

/// The error `main` returns (lambda_http's), so function crates need not depend on it.
pub use lambda_http::Error;

/// Serves the function's requests until the runtime stops: `main`'s last line.
pub mod serve {
    pub use super::admin::serve as admin;
    pub use super::agent::serve as agent;
    pub use super::authorizer::serve as authorizer;
    pub use super::mcp::serve as mcp;
    pub use super::plugin::serve as plugin;
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

pub(crate) fn request_id(req: &Request) -> String {
    if let Some(ctx) = req.lambda_context_ref() {
        return ctx.request_id.clone();
    }
    match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(ctx)) => ctx.request_id.clone().unwrap_or_default(),
        _ => String::new(),
    }
}

/// The `{channel}` of a route `<prefix>{channel}`: API Gateway's path parameter, or the
/// path's tail after `prefix` (whatever stage comes before it).
pub(crate) fn channel_param(req: &Request, prefix: &str) -> String {
    req.path_parameters_ref()
        .and_then(|p| p.first("channel").map(str::to_owned))
        .or_else(|| {
            req.uri()
                .path()
                .rsplit_once(prefix)
                .map(|(_, c)| c.to_owned())
        })
        .unwrap_or_default()
}

pub(crate) fn body_bytes(req: &Request) -> &[u8] {
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
