//! A fault-injecting proxy on loopback between the AWS SDK's clients and moto: each request
//! is matched against a schedule of rules (by operation, by a string in its body, by its
//! place among the requests that match) and is forwarded, held, dropped, answered with a
//! throttling error or a 500, or forwarded and then lost on the way back. Every request is
//! logged with what was done to it, so a test can tell which of its writes reached moto.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use tokio::net::TcpStream;

/// What the proxy does to a request a rule matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Holds the request and never answers it: the client's attempt timeout fires.
    Stall,
    /// Forwards after this long (a slow dependency that still answers).
    Delay(Duration),
    /// Closes the connection without forwarding: the request never arrived.
    Drop,
    /// Forwards, then closes the connection without the answer: the request took effect
    /// and the client cannot know it.
    LoseAnswer,
    /// Answers 400 `ProvisionedThroughputExceededException` (Secrets Manager:
    /// `ThrottlingException`) without forwarding.
    Throttle,
    /// Answers 500 `InternalServerError` without forwarding.
    ServerError,
    /// Forwards, then answers 500 in place of the real answer (DynamoDB's "the request may
    /// or may not have succeeded").
    ServerErrorAfter,
}

impl Fault {
    /// Whether the request reached moto, so a write may have taken effect.
    pub fn forwards(self) -> bool {
        matches!(
            self,
            Self::Delay(_) | Self::LoseAnswer | Self::ServerErrorAfter
        )
    }

    /// Whether the client cannot tell from the answer whether a forwarded write took effect.
    pub fn ambiguous(self) -> bool {
        matches!(self, Self::LoseAnswer | Self::ServerErrorAfter)
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Stall => write!(f, "stall"),
            Self::Delay(d) => write!(f, "delay {} ms", d.as_millis()),
            Self::Drop => write!(f, "drop"),
            Self::LoseAnswer => write!(f, "lose answer"),
            Self::Throttle => write!(f, "throttle"),
            Self::ServerError => write!(f, "500"),
            Self::ServerErrorAfter => write!(f, "500 after"),
        }
    }
}

/// Which requests a rule applies to, and how many of them.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Operations (`UpdateItem`, `GetSecretValue`, …); empty matches every operation.
    pub ops: Vec<String>,
    /// A string the request body must contain (`IDEM#`, `AUDIT#`), if any.
    pub contains: Option<String>,
    /// Matching requests let through before the fault starts.
    pub skip: usize,
    /// Matching requests faulted after that (`usize::MAX`: all of them).
    pub times: usize,
    pub fault: Fault,
    matched: usize,
}

impl Rule {
    pub fn new(ops: &[&str], contains: Option<&str>, fault: Fault) -> Self {
        Self {
            ops: ops.iter().map(|s| (*s).to_owned()).collect(),
            contains: contains.map(str::to_owned),
            skip: 0,
            times: usize::MAX,
            fault,
            matched: 0,
        }
    }

    /// Faults only `times` matching requests, after letting `skip` through.
    pub fn window(mut self, skip: usize, times: usize) -> Self {
        self.skip = skip;
        self.times = times;
        self
    }

    fn applies(&mut self, op: &str, body: &[u8]) -> Option<Fault> {
        let op_ok = self.ops.is_empty() || self.ops.iter().any(|o| o == op);
        let body_ok = self
            .contains
            .as_ref()
            .is_none_or(|needle| body.windows(needle.len()).any(|w| w == needle.as_bytes()));
        if !(op_ok && body_ok) {
            return None;
        }
        let n = self.matched;
        self.matched += 1;
        (n >= self.skip && n - self.skip < self.times).then_some(self.fault)
    }
}

/// One request the proxy saw.
#[derive(Debug, Clone)]
pub struct Seen {
    pub op: String,
    /// The partition key the request names first (`IDEM#…`, `AUDIT#…`), if any.
    pub pk: Option<String>,
    pub fault: Option<Fault>,
}

#[derive(Default)]
struct State {
    rules: Vec<Rule>,
    seen: Vec<Seen>,
}

/// The proxy: its endpoint, its schedule and what it has seen.
pub struct FaultProxy {
    pub endpoint: String,
    state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FaultProxy {
    /// Starts a proxy on a free loopback port in front of `upstream` (`http://host:port`).
    pub async fn start(upstream: &str) -> Self {
        let upstream = upstream
            .strip_prefix("http://")
            .unwrap_or_else(|| panic!("the proxy forwards to http:// only, not {upstream}"))
            .trim_end_matches('/')
            .to_owned();
        let state = Arc::new(Mutex::new(State::default()));
        let shared = state.clone();
        let svc = hyper::service::service_fn(move |req| {
            let (state, upstream) = (shared.clone(), upstream.clone());
            async move { handle(req, &state, &upstream).await }
        });
        let (addr, task) = crate::serve_http1(svc).await;
        Self {
            endpoint: format!("http://{addr}"),
            state,
            task,
        }
    }

    /// Replaces the schedule (and forgets what was seen).
    pub fn schedule(&self, rules: Vec<Rule>) {
        let mut s = self.lock();
        s.rules = rules;
        s.seen.clear();
    }

    /// Forwards everything from now on.
    pub fn heal(&self) {
        self.schedule(Vec::new());
    }

    /// The requests seen since the schedule was last set.
    pub fn seen(&self) -> Vec<Seen> {
        self.lock().seen.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The error the proxy's service returns to make hyper close the connection unanswered.
#[derive(Debug)]
struct Hangup;

impl fmt::Display for Hangup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "fault proxy hung up")
    }
}

impl std::error::Error for Hangup {}

async fn handle(
    req: hyper::Request<hyper::body::Incoming>,
    state: &Mutex<State>,
    upstream: &str,
) -> Result<hyper::Response<Full<Bytes>>, Hangup> {
    let (parts, body) = req.into_parts();
    let body = match body.collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return Err(Hangup),
    };
    let target = parts
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let op = target.rsplit('.').next().unwrap_or("").to_owned();
    let fault = {
        let mut s = state.lock().unwrap_or_else(|p| p.into_inner());
        let fault = s.rules.iter_mut().find_map(|r| r.applies(&op, &body));
        s.seen.push(Seen {
            op: op.clone(),
            pk: first_pk(&body),
            fault,
        });
        fault
    };
    let dynamodb = target.starts_with("DynamoDB_");
    match fault {
        None => forward(parts, body, upstream).await,
        Some(Fault::Stall) => {
            // Longer than any client waits; then the connection is let go.
            tokio::time::sleep(Duration::from_secs(60)).await;
            Err(Hangup)
        }
        Some(Fault::Delay(d)) => {
            tokio::time::sleep(d).await;
            forward(parts, body, upstream).await
        }
        Some(Fault::Drop) => Err(Hangup),
        Some(Fault::LoseAnswer) => {
            forward(parts, body, upstream).await?;
            Err(Hangup)
        }
        Some(Fault::Throttle) => Ok(if dynamodb {
            error(
                400,
                "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
                "The level of configured provisioned throughput for the table was exceeded.",
                "1.0",
            )
        } else {
            error(400, "ThrottlingException", "Rate exceeded", "1.1")
        }),
        Some(Fault::ServerError) => Ok(server_error(dynamodb)),
        Some(Fault::ServerErrorAfter) => {
            forward(parts, body, upstream).await?;
            Ok(server_error(dynamodb))
        }
    }
}

fn server_error(dynamodb: bool) -> hyper::Response<Full<Bytes>> {
    if dynamodb {
        error(
            500,
            "com.amazonaws.dynamodb.v20120810#InternalServerError",
            "Internal server error",
            "1.0",
        )
    } else {
        error(
            500,
            "InternalServiceError",
            "An error occurred on the server side.",
            "1.1",
        )
    }
}

fn error(status: u16, kind: &str, message: &str, json: &str) -> hyper::Response<Full<Bytes>> {
    let body = serde_json::json!({"__type": kind, "message": message}).to_string();
    hyper::Response::builder()
        .status(status)
        .header("content-type", format!("application/x-amz-json-{json}"))
        .header("x-amzn-requestid", "fault-proxy")
        .body(Full::new(Bytes::from(body)))
        .unwrap_or_else(|e| panic!("response: {e}"))
}

/// The first `"PK": {"S": "…"}` in a request body.
fn first_pk(body: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    let at = text.find("\"PK\":{\"S\":\"")? + "\"PK\":{\"S\":\"".len();
    let rest = &text[at..];
    Some(rest[..rest.find('"')?].to_owned())
}

async fn forward(
    parts: http::request::Parts,
    body: Bytes,
    upstream: &str,
) -> Result<hyper::Response<Full<Bytes>>, Hangup> {
    let stream = TcpStream::connect(upstream).await.map_err(|_| Hangup)?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(|_| Hangup)?;
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!(error = %e, "fault proxy upstream connection");
        }
    });
    let mut req = hyper::Request::from_parts(parts, Full::new(body));
    // Each forward is a connection of its own.
    req.headers_mut().remove(http::header::CONNECTION);
    let res = sender.send_request(req).await.map_err(|_| Hangup)?;
    let (parts, body) = res.into_parts();
    let body = body.collect().await.map_err(|_| Hangup)?.to_bytes();
    Ok(hyper::Response::from_parts(parts, Full::new(body)))
}
