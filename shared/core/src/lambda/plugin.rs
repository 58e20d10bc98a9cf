//! `POST /plugins/{plugin}` and the plugin's route aliases: the call pipeline.

use lambda_http::http::HeaderValue;
use lambda_http::http::header::RETRY_AFTER;
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
    let key = match req.headers().get("idempotency-key").map(|v| v.to_str()) {
        None => None,
        Some(Ok(k)) => Some(k),
        Some(Err(_)) => {
            let e = ApiError::invalid_request(
                "the Idempotency-Key header must be 1 to 255 visible ASCII characters",
            );
            return json_response(e.status(), &e.to_body());
        }
    };
    let out = service
        .respond(CallInput {
            tenant,
            body,
            request_id: &rid,
            idempotency_key: key,
        })
        .await;
    let mut resp = json_response(out.status, &out.body);
    if out.replayed {
        resp.headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    if out.body["error"]["code"] == "request_in_progress" {
        resp.headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from_static("1"));
    }
    resp
}
