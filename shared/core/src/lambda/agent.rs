//! `GET /agents/{channel}[?format=…]`: the agent builder.

use lambda_http::{Body, Request, RequestExt, Response, service_fn};

use super::{Error, channel_param, json_response, request_id, tenant_of};
use crate::agent::service::AgentService;
use crate::error::Error as ApiError;

/// The agent builder's runtime loop.
pub async fn serve(service: &AgentService) -> Result<(), Error> {
    lambda_http::run(service_fn(move |req: Request| async move {
        Ok::<_, std::convert::Infallible>(handle_agent(service, req).await)
    }))
    .await
}

/// Answers one API Gateway request for `GET /agents/{channel}`.
pub async fn handle_agent(service: &AgentService, req: Request) -> Response<Body> {
    if req.method() != lambda_http::http::Method::GET {
        let e = ApiError::MethodNotAllowed("/agents/{channel} accepts GET only".into());
        return json_response(e.status(), &e.to_body());
    }
    let channel = channel_param(&req, "/agents/");
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
