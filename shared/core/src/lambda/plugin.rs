//! `POST /plugins/{plugin}` and the plugin's route aliases: the call pipeline.

use lambda_http::{Body, Request, RequestExt, Response, service_fn};

use super::{Error, body_bytes, json_response, request_id, tenant_of};
use crate::error::Error as ApiError;
use crate::pipeline::{CallInput, PluginService, route_error};

/// A plugin Lambda's runtime loop.
pub async fn serve(service: &PluginService) -> Result<(), Error> {
    lambda_http::run(service_fn(move |req: Request| async move {
        Ok::<_, std::convert::Infallible>(handle(service, req).await)
    }))
    .await
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
