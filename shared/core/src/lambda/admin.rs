//! `/admin/…`: the admin API for the organization in the authorizer context.

use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response, service_fn};

use super::{Error, body_bytes, json_response, tenant_of};
use crate::admin::{AdminRequest, AdminService};

/// The admin Lambda's runtime loop.
pub async fn serve(service: &AdminService) -> Result<(), Error> {
    lambda_http::run(service_fn(move |req: Request| async move {
        Ok::<_, std::convert::Infallible>(handle_admin(service, req).await)
    }))
    .await
}

/// Answers one API Gateway request under `/admin/`, or for the console's files.
pub async fn handle_admin(service: &AdminService, req: Request) -> Response<Body> {
    // The console's routes have no authorizer: they serve its files and nothing else.
    let route = match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(ctx)) => ctx.route_key.as_deref(),
        _ => None,
    };
    if route.is_some_and(crate::console::is_console_route) {
        return console(&req);
    }
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
    let query: Vec<(String, String)> = req
        .query_string_parameters_ref()
        .map(|q| {
            q.iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect()
        })
        .unwrap_or_default();
    let request_id = super::request_id(&req);
    let (status, value) = service
        .handle(AdminRequest {
            tenant,
            method: req.method().as_str(),
            path: req.uri().path(),
            if_match: if_match.as_deref(),
            body,
            query: &query,
            request_id: &request_id,
        })
        .await;
    json_response(status, &value)
}

/// A console file, with the headers that keep the page to its own files and origin.
fn console(req: &Request) -> Response<Body> {
    use lambda_http::http::{HeaderValue, Method, header};
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let e = crate::error::Error::MethodNotAllowed(format!(
            "{} is not supported on the console; it serves GET only",
            req.method()
        ));
        return json_response(e.status(), &e.to_body());
    }
    let Some(asset) = crate::console::asset(req.uri().path()) else {
        let e = crate::error::Error::not_found(
            "the console has /console, /console/app.js and /console/app.css only",
        );
        return json_response(e.status(), &e.to_body());
    };
    let mut resp = Response::new(Body::Text(asset.body.into_owned()));
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(asset.content_type),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(crate::console::CONTENT_SECURITY_POLICY),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    // Small files: always revalidated, so a deploy shows at once.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    resp
}
