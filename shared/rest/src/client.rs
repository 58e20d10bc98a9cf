//! The HTTP(S) client every `rest` adapter of a container shares: hyper's pooled client over
//! rustls (HTTP/1), connecting only where the egress guard allows.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use hyper::{Request, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::connect::dns::Name;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use switchboard::egress::{Egress, Refused, literal_ip};
use tower_service::Service;

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type Https = hyper_rustls::HttpsConnector<Guarded>;
type Connecting<T> = Pin<Box<dyn Future<Output = Result<T, BoxError>> + Send>>;

/// One HTTP(S) client per container, shared by every `rest` adapter (its pool is per host).
#[derive(Clone)]
pub struct RestClient {
    pub(crate) http: Client<Https, Full<Bytes>>,
    egress: Egress,
}

impl RestClient {
    /// The client, connecting where `egress` allows, with the container's TLS config (the
    /// system's roots, loaded once for every HTTPS client).
    pub fn new(egress: Egress, tls: Arc<rustls::ClientConfig>) -> Self {
        if egress.allows_private() {
            tracing::warn!(
                "private upstreams are allowed: the rest data adapter may call loopback and private addresses"
            );
        }
        let mut http = HttpConnector::new_with_resolver(GuardedResolver {
            egress: egress.clone(),
        });
        // The HTTPS connector checks the scheme; this one must pass https through.
        http.enforce_http(false);
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(rustls::ClientConfig::clone(&tls))
            .https_or_http()
            .enable_http1()
            .wrap_connector(Guarded {
                http,
                egress: egress.clone(),
            });
        let http = Client::builder(TokioExecutor::new())
            // Below the 5 s keep-alive of Node servers (and most others): reusing a connection
            // the server is closing fails a write, which is never retried.
            .pool_idle_timeout(Duration::from_secs(4))
            .pool_timer(TokioTimer::new())
            .build(connector);
        Self { http, egress }
    }

    pub fn egress(&self) -> &Egress {
        &self.egress
    }
}

/// The guard's answer for a name: the connection goes to exactly what is returned here, so
/// a name re-resolving to a private address later changes nothing.
#[derive(Clone)]
pub(crate) struct GuardedResolver {
    egress: Egress,
}

impl Service<Name> for GuardedResolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = BoxError;
    type Future = Connecting<Self::Response>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let egress = self.egress.clone();
        Box::pin(async move {
            // HttpConnector sets the port on what the resolver returns.
            let found = egress.resolve(name.as_str(), 0).await?;
            Ok(found.into_iter())
        })
    }
}

/// The TCP connector, refusing a literal non-public IP (which `HttpConnector` connects to
/// without asking the resolver).
#[derive(Clone)]
pub(crate) struct Guarded {
    http: HttpConnector<GuardedResolver>,
    egress: Egress,
}

impl Service<Uri> for Guarded {
    type Response = <HttpConnector<GuardedResolver> as Service<Uri>>::Response;
    type Error = BoxError;
    type Future = Connecting<Self::Response>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.http.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        if let Some(ip) = uri.host().and_then(literal_ip)
            && let Err(refused) = self.egress.check_ip(ip)
        {
            return Box::pin(std::future::ready(Err(Box::new(refused) as BoxError)));
        }
        let connecting = self.http.call(uri);
        Box::pin(async move { connecting.await.map_err(Into::into) })
    }
}

/// The guard's refusal in a client error's chain, if that is what failed the request.
pub(crate) fn refusal<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a Refused> {
    let mut next = Some(e);
    while let Some(e) = next {
        if let Some(r) = e.downcast_ref::<Refused>() {
            return Some(r);
        }
        next = e.source();
    }
    None
}

/// Larger answers are refused rather than buffered.
const MAX_BODY_BYTES: usize = 8 << 20;

/// Why one attempt got no answer.
pub(crate) enum Failure {
    Timeout,
    /// The upstream's address is not public (and the client does not allow that).
    Refused,
    /// No connection was made: the request never left, so even a write may be retried.
    Connect(String),
    Transport(String),
}

impl RestClient {
    /// One attempt of `req` before `deadline` (connect, headers and the whole body).
    pub(crate) async fn exchange(
        &self,
        req: Request<Full<Bytes>>,
        deadline: tokio::time::Instant,
    ) -> Result<(hyper::http::response::Parts, Bytes), Failure> {
        let attempt = async {
            let resp = self.http.request(req).await.map_err(|e| {
                let cause = format!("{e:?}");
                if refusal(&e).is_some_and(|r| r.is_policy()) {
                    Failure::Refused
                } else if e.is_connect() {
                    Failure::Connect(cause)
                } else {
                    Failure::Transport(cause)
                }
            })?;
            let (parts, body) = resp.into_parts();
            let body = Limited::new(body, MAX_BODY_BYTES)
                .collect()
                .await
                .map_err(|e| Failure::Transport(format!("reading the answer: {e}")))?
                .to_bytes();
            Ok((parts, body))
        };
        tokio::time::timeout_at(deadline, attempt)
            .await
            .map_err(|_| Failure::Timeout)?
    }
}
