//! `POST /mcp/{channel}`: the channel's MCP server ([`McpService`]).

use lambda_http::{Body, Request, Response, service_fn};

use super::{Error, body_bytes, channel_param, json_response, request_id, tenant_of};
use crate::mcp::{McpRequest, McpService};

/// The MCP function's runtime loop.
pub async fn serve(service: &McpService) -> Result<(), Error> {
    lambda_http::run(service_fn(move |req: Request| async move {
        Ok::<_, std::convert::Infallible>(handle_mcp(service, req).await)
    }))
    .await
}

/// Answers one API Gateway request for `/mcp/{channel}`.
pub async fn handle_mcp(service: &McpService, req: Request) -> Response<Body> {
    let tenant = match tenant_of(&req) {
        Ok(t) => t,
        Err(e) => return json_response(e.status(), &e.to_body()),
    };
    let channel = channel_param(&req, "/mcp/");
    let rid = request_id(&req);
    let out = service
        .handle(McpRequest {
            method: req.method(),
            channel: &channel,
            tenant,
            headers: req.headers(),
            body: body_bytes(&req),
            request_id: &rid,
        })
        .await;
    let mut resp = match &out.body {
        Some(body) => json_response(out.status, body),
        None => {
            let mut r = Response::new(Body::Empty);
            *r.status_mut() = lambda_http::http::StatusCode::ACCEPTED;
            r
        }
    };
    for (name, value) in out.headers {
        resp.headers_mut().insert(name, value);
    }
    resp
}
