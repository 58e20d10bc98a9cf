//! `POST /plugins/{plugin}` and the plugin's route aliases: the call pipeline. And
//! `POST /channels/{platform}/{connection}/{plugin}`: the same pipeline behind a voice
//! platform's signature instead of the authorizer. A plugin function also takes the MCP
//! function's tool-call events ([`ToolCallEvent`]) and Bedrock Agents' action group events
//! ([`crate::pipeline::BedrockEvent`]), so its runtime loop reads events as JSON and tells
//! the kinds apart ([`handle_event`]).

use lambda_http::aws_lambda_events::apigw::ApiGatewayV2httpResponse;
use lambda_http::http::HeaderValue;
use lambda_http::http::header::RETRY_AFTER;
use lambda_http::request::LambdaRequest;
use lambda_http::{Body, Context, LambdaEvent, Request, RequestExt, Response, service_fn};
use serde::Serialize;
use serde_json::Value;

use super::{Error, body_bytes, json_response, request_id, tenant_of};
use crate::error::Error as ApiError;
use crate::pipeline::{
    CallInput, CallOutput, PluginService, SignedCall, ToolCallEvent, route_error,
};
use crate::signature::SignatureHeaders;

/// A plugin Lambda's runtime loop.
pub async fn serve(service: &PluginService) -> Result<(), Error> {
    lambda_http::lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        handle_event(service, event.payload, event.context).await
    }))
    .await
}

/// What a plugin function answers an event with.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum EventReply {
    /// To API Gateway (HTTP API, payload 2.0).
    Http(Box<ApiGatewayV2httpResponse>),
    /// To the MCP function's `Invoke`.
    ToolCall(CallOutput),
    /// To Bedrock Agents, in its action group response format.
    Bedrock(Value),
}

/// Answers one Lambda event: a tool call from the MCP function, a Bedrock action group's
/// call, or an API Gateway request.
/// An event of neither kind is a wiring mistake, reported as the invocation's error.
pub async fn handle_event(
    service: &PluginService,
    event: Value,
    context: Context,
) -> Result<EventReply, Error> {
    if let Some(call) = ToolCallEvent::from_event(&event) {
        let out = match call {
            Ok(call) if call.scheduled => {
                let out = service.respond_tool_call(call).await;
                // A call that surely did not run fails the invocation, so it is delivered
                // again (Lambda's asynchronous retries). Not a timeout, a 502 or a call cut
                // off while it ran: the text may have gone, and a repeat could send a second.
                let message = out.body["error"]["message"].as_str().unwrap_or_default();
                let did_not_run = out.status == 429
                    || (out.status == 503 && !message.contains(crate::pipeline::MAY_HAVE_RUN));
                if did_not_run {
                    return Err(format!(
                        "the scheduled call failed with {} and may succeed later: {}",
                        out.status, out.body["error"]["code"]
                    )
                    .into());
                }
                out
            }
            Ok(call) => service.respond_tool_call(call).await,
            Err(e) => {
                tracing::warn!(request_id = %context.request_id, error = %e, "tool-call event refused");
                CallOutput {
                    status: e.status(),
                    body: e.to_body(),
                    replayed: false,
                }
            }
        };
        return Ok(EventReply::ToolCall(out));
    }
    if event.get("messageVersion").is_some() && event.get("actionGroup").is_some() {
        let reply = service.respond_bedrock(&event, &context.request_id).await;
        return Ok(EventReply::Bedrock(reply));
    }
    let request: LambdaRequest = serde_json::from_value(event).map_err(|e| {
        format!(
            "{} takes API Gateway HTTP API (2.0) events, Switchboard tool calls and Bedrock action group events; this event is none of them: {e}",
            service.plugin().name()
        )
    })?;
    let req = Request::from(request).with_lambda_context(context);
    Ok(EventReply::Http(Box::new(v2_response(
        handle(service, req).await,
    ))))
}

/// The response as API Gateway's HTTP API takes it from a function.
fn v2_response(resp: Response<Body>) -> ApiGatewayV2httpResponse {
    let (parts, body) = resp.into_parts();
    let mut out = ApiGatewayV2httpResponse::default();
    out.status_code = i64::from(parts.status.as_u16());
    out.headers = parts.headers;
    out.is_base64_encoded = matches!(body, Body::Binary(_));
    out.body = match body {
        Body::Empty => None,
        b => Some(b),
    };
    out
}

/// Answers one API Gateway request for this plugin's routes.
pub async fn handle(service: &PluginService, req: Request) -> Response<Body> {
    // API Gateway has routed the request already; the check catches a mis-wired route. A
    // named stage prefixes the path, so match `{plugin}` or the path's tail.
    let path = req.uri().path();
    if let Some(signed) = signed_route(path) {
        return handle_signed(service, &req, signed).await;
    }
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
    output_response(&out)
}

/// `(platform, connection, plugin)` of a path ending in `/channels/<p>/<c>/<plugin>`,
/// whatever stage prefix comes before it (even a stage named `channels`).
fn signed_route(path: &str) -> Option<[&str; 3]> {
    let mut tail = path.rsplit('/');
    let (plugin, connection, platform) = (tail.next()?, tail.next()?, tail.next()?);
    (tail.next()? == "channels").then_some([platform, connection, plugin])
}

async fn handle_signed(
    service: &PluginService,
    req: &Request,
    [platform, connection, plugin]: [&str; 3],
) -> Response<Body> {
    if plugin != service.plugin().name().as_str() {
        let e = ApiError::NotFound {
            code: "unknown_plugin",
            message: format!(
                "no plugin named '{}' is served here; this function serves /channels/{platform}/{{connection}}/{}",
                plugin.chars().take(64).collect::<String>(),
                service.plugin().name()
            ),
        };
        return json_response(e.status(), &e.to_body());
    }
    if req.method() != lambda_http::http::Method::POST {
        let e = ApiError::MethodNotAllowed(format!("{} accepts POST only", req.uri().path()));
        return json_response(e.status(), &e.to_body());
    }
    // A value that is not visible ASCII reads as malformed, not as absent.
    let header = |name: &str| {
        req.headers()
            .get(name)
            .map(|v| v.to_str().unwrap_or_default())
    };
    let rid = request_id(req);
    let url = public_url(req);
    let out = service
        .respond_signed(SignedCall {
            platform,
            connection,
            headers: SignatureHeaders {
                retell_signature: header("x-retell-signature"),
                authorization: header("authorization"),
                vapi_secret: header("x-vapi-secret"),
                signature: header("x-signature"),
                timestamp: header("x-timestamp"),
                twilio_signature: header("x-twilio-signature"),
            },
            body: body_bytes(req),
            url: &url,
            request_id: &rid,
        })
        .await;
    output_response(&out)
}

/// The URL the caller requested, as it signed it: API Gateway's `Host` (or the request
/// context's domain) and scheme, the raw path (a named stage's or API mapping's prefix
/// included) and the raw query, none of them re-encoded.
fn public_url(req: &Request) -> String {
    let headers = req.headers();
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let domain = match req.request_context_ref() {
        Some(lambda_http::request::RequestContext::ApiGatewayV2(c)) => c.domain_name.as_deref(),
        _ => None,
    };
    let host = text("host").or(domain).unwrap_or_default();
    let scheme = text("x-forwarded-proto").unwrap_or("https");
    let mut url = format!("{scheme}://{host}{}", req.raw_http_path());
    if let Some(query) = req.uri().query().filter(|q| !q.is_empty()) {
        url.push('?');
        url.push_str(query);
    }
    url
}

/// The HTTP response of a call's output, with the replay and retry headers.
fn output_response(out: &CallOutput) -> Response<Body> {
    let mut resp = json_response(out.status, &out.body);
    if out.replayed {
        resp.headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    // A token of the rate limit frees up within a second.
    let code = &out.body["error"]["code"];
    if code == "request_in_progress" || code == "rate_limited" {
        resp.headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from_static("1"));
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::{public_url, signed_route};

    /// The URL a caller signed, rebuilt from API Gateway's event as lambda_http parses it:
    /// the host, a named stage's prefix in the raw path, the raw query, nothing re-encoded.
    #[test]
    fn the_public_url_is_the_one_requested() {
        let event = serde_json::json!({
            "version": "2.0", "routeKey": "POST /channels/twilio/{connection}/sms",
            "rawPath": "/prod/channels/twilio/cn_1/sms",
            "rawQueryString": "bodySHA256=ab12&x=a%20b+c",
            "headers": {"host": "api.example.com", "x-forwarded-proto": "https"},
            "requestContext": {"accountId": "1", "apiId": "a", "domainName": "api.example.com",
                "http": {"method": "POST", "path": "/prod/channels/twilio/cn_1/sms", "protocol": "HTTP/1.1",
                    "sourceIp": "203.0.113.1", "userAgent": "TwilioProxy/1.1"},
                "requestId": "r", "routeKey": "POST /channels/twilio/{connection}/sms", "stage": "prod",
                "time": "01/Jan/2027:00:00:00 +0000", "timeEpoch": 1},
            "body": "", "isBase64Encoded": false
        });
        let req = lambda_http::request::from_str(&event.to_string()).unwrap();
        assert_eq!(
            public_url(&req),
            "https://api.example.com/prod/channels/twilio/cn_1/sms?bodySHA256=ab12&x=a%20b+c"
        );
        // Without a Host header, the request context's domain.
        let mut bare = event.clone();
        bare["headers"] = serde_json::json!({});
        bare["rawQueryString"] = serde_json::json!("");
        let req = lambda_http::request::from_str(&bare.to_string()).unwrap();
        assert_eq!(
            public_url(&req),
            "https://api.example.com/prod/channels/twilio/cn_1/sms"
        );
    }

    #[test]
    fn signed_routes_are_the_last_four_segments() {
        let route = Some(["retell", "cn_1", "booking"]);
        assert_eq!(signed_route("/channels/retell/cn_1/booking"), route);
        assert_eq!(signed_route("/prod/channels/retell/cn_1/booking"), route);
        assert_eq!(
            signed_route("/channels/channels/retell/cn_1/booking"),
            route
        );
        for other in [
            "/plugins/booking",
            "/api/booking",
            "/channels/retell/cn_1",
            "/channels/retell/cn_1/booking/x",
            "/x/retell/cn_1/booking",
            "",
        ] {
            assert_eq!(signed_route(other), None, "{other}");
        }
    }
}
