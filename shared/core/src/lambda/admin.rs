//! `/admin/…`: the admin API for the organization in the authorizer context.

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
