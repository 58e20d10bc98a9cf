//! Lambda's Invoke API on loopback (`POST /2015-03-31/functions/{name}/invocations`), running
//! plugin functions' event handling as Lambda would: the payload in, the function's reply
//! out, `X-Amz-Function-Error` when the function fails, 404 `ResourceNotFoundException` for
//! a name it does not know. moto cannot run functions without Docker; this lets the AWS
//! SDK's real Lambda client invoke them.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use serde_json::{Value, json};
use switchboard::lambda::handle_event;
use switchboard::pipeline::PluginService;

/// How a function named in [`InvokeApi::failing`] fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The function ran and failed (`X-Amz-Function-Error: Unhandled`).
    FunctionError,
    /// Lambda refused the invocation: the function is at its concurrency limit (429).
    Throttled,
    /// The function ran past its timeout (Lambda's `Sandbox.Timedout`).
    TimedOut,
}

pub struct InvokeApi {
    functions: HashMap<String, Arc<PluginService>>,
    failing: HashMap<String, Failure>,
    /// Whether to keep every event in `received` (the bench does not).
    record: bool,
    /// Every (function name, event) invoked, in order.
    pub received: Mutex<Vec<(String, Value)>>,
}

impl InvokeApi {
    pub fn new(functions: HashMap<String, Arc<PluginService>>) -> Arc<Self> {
        Self::build(functions, HashMap::new(), true)
    }

    /// Also functions that fail as `failing` says.
    pub fn failing(
        functions: HashMap<String, Arc<PluginService>>,
        failing: HashMap<String, Failure>,
    ) -> Arc<Self> {
        Self::build(functions, failing, true)
    }

    /// Keeps no events (for many invocations).
    pub fn unrecorded(functions: HashMap<String, Arc<PluginService>>) -> Arc<Self> {
        Self::build(functions, HashMap::new(), false)
    }

    fn build(
        functions: HashMap<String, Arc<PluginService>>,
        failing: HashMap<String, Failure>,
        record: bool,
    ) -> Arc<Self> {
        Arc::new(Self {
            functions,
            failing,
            record,
            received: Mutex::new(Vec::new()),
        })
    }

    pub fn function(&self, name: &str) -> Option<&Arc<PluginService>> {
        self.functions.get(name)
    }

    async fn answer(
        &self,
        req: hyper::Request<hyper::body::Incoming>,
    ) -> hyper::Response<Full<Bytes>> {
        let path = req.uri().path().to_owned();
        let name = path
            .strip_prefix("/2015-03-31/functions/")
            .and_then(|p| p.strip_suffix("/invocations"))
            .unwrap_or_default()
            .to_owned();
        let invocation_type = req
            .headers()
            .get("x-amz-invocation-type")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = match req.into_body().collect().await {
            Ok(b) => b.to_bytes(),
            Err(e) => return respond(400, &[], json!({"message": e.to_string()})),
        };
        if invocation_type.as_deref() != Some("RequestResponse") {
            let e = json!({"message": "only RequestResponse invocations are served here"});
            return respond(
                400,
                &[("x-amzn-errortype", "InvalidParameterValueException")],
                e,
            );
        }
        match self.failing.get(&name) {
            Some(Failure::FunctionError) => {
                return function_error(
                    "Runtime.ExitError",
                    "the process exited before completing the request",
                );
            }
            Some(Failure::TimedOut) => {
                return function_error("Sandbox.Timedout", "Task timed out after 20.00 seconds");
            }
            Some(Failure::Throttled) => {
                let e = json!({"Type": "User", "message": "Rate Exceeded.", "Reason": "ReservedFunctionConcurrentInvocationLimitExceeded"});
                return respond(429, &[("x-amzn-errortype", "TooManyRequestsException")], e);
            }
            None => {}
        }
        let Some(function) = self.functions.get(&name) else {
            let e = json!({"Type": "User", "message": format!("Function not found: {name}")});
            return respond(404, &[("x-amzn-errortype", "ResourceNotFoundException")], e);
        };
        let event: Value = match serde_json::from_slice(&body) {
            Ok(v) => v,
            Err(e) => {
                let e = json!({"message": format!("the payload is not JSON: {e}")});
                return respond(
                    400,
                    &[("x-amzn-errortype", "InvalidRequestContentException")],
                    e,
                );
            }
        };
        if self.record {
            self.received
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push((name, event.clone()));
        }
        match handle_event(function, event, lambda_http::Context::default()).await {
            Ok(reply) => match serde_json::to_value(&reply) {
                Ok(v) => respond(200, &[("x-amz-executed-version", "$LATEST")], v),
                Err(e) => function_error("Error", &e.to_string()),
            },
            Err(e) => function_error("Error", &e.to_string()),
        }
    }
}

fn function_error(kind: &str, message: &str) -> hyper::Response<Full<Bytes>> {
    let e = json!({"errorType": kind, "errorMessage": message});
    respond(200, &[("x-amz-function-error", "Unhandled")], e)
}

fn respond(status: u16, headers: &[(&str, &str)], body: Value) -> hyper::Response<Full<Bytes>> {
    let mut b = hyper::Response::builder()
        .status(status)
        .header("content-type", "application/json");
    for (n, v) in headers {
        b = b.header(*n, *v);
    }
    b.body(Full::new(Bytes::from(body.to_string())))
        .unwrap_or_else(|e| panic!("response: {e}"))
}

/// Serves `api` on a free loopback port; returns its endpoint URL and the server task.
pub async fn serve(api: Arc<InvokeApi>) -> (String, tokio::task::JoinHandle<()>) {
    let svc = hyper::service::service_fn(move |req| {
        let api = api.clone();
        async move { Ok::<_, Infallible>(api.answer(req).await) }
    });
    let (addr, task) = crate::serve_http1(svc).await;
    (format!("http://{addr}"), task)
}
