//! The AWS SDK's HTTPS client: hyper's pooled HTTP/1.1 client over rustls with ring, the TLS
//! stack the data adapters use too.
//!
//! The SDK's own client also speaks HTTP/2, which DynamoDB and Secrets Manager do not need
//! (their endpoints answer HTTP/1.1), and whose implementation (`h2`) is one of the largest
//! pieces of every function's binary. This one leaves it out.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::retry::ErrorKind;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector as Tcp;
use hyper_util::rt::{TokioExecutor, TokioTimer};

type Https = hyper_rustls::HttpsConnector<Tcp>;

/// (connect timeout, read timeout), as the SDK's connector settings give them.
type Timeouts = (Option<Duration>, Option<Duration>);

/// The client: one connection pool per pair of timeouts the SDK asks for (one, in practice).
#[derive(Debug)]
struct Pools {
    tls: Arc<rustls::ClientConfig>,
    by_timeouts: Mutex<HashMap<Timeouts, SharedHttpConnector>>,
}

/// The SDK's HTTPS client, for an `SdkConfig`'s `http_client`, over `tls` ([`tls_config`]).
pub fn client(tls: Arc<rustls::ClientConfig>) -> SharedHttpClient {
    SharedHttpClient::new(Pools {
        tls,
        by_timeouts: Mutex::default(),
    })
}

/// The TLS client config of every HTTPS client of a container (the SDK's and the rest
/// adapter's): rustls with ring and the system's roots, loaded once, at start-up.
pub fn tls_config() -> Result<Arc<rustls::ClientConfig>, String> {
    let found = rustls_native_certs::load_native_certs();
    let mut roots = rustls::RootCertStore::empty();
    let (added, _ignored) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        return Err(format!(
            "no TLS root certificates could be loaded from the system ({} errors)",
            found.errors.len()
        ));
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| format!("TLS protocol versions: {e}"))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(Arc::new(config))
}

impl HttpClient for Pools {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        _components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        let key = (settings.connect_timeout(), settings.read_timeout());
        let Ok(mut pools) = self.by_timeouts.lock() else {
            // A poisoned map only costs connection reuse.
            return SharedHttpConnector::new(Pool::new(&self.tls, key));
        };
        pools
            .entry(key)
            .or_insert_with(|| SharedHttpConnector::new(Pool::new(&self.tls, key)))
            .clone()
    }
}

#[derive(Debug)]
struct Pool {
    client: Client<Https, SdkBody>,
    /// How long the response's head may take (the body's reads are the SDK's).
    read_timeout: Option<Duration>,
}

impl Pool {
    fn new(tls: &Arc<rustls::ClientConfig>, (connect_timeout, read_timeout): Timeouts) -> Self {
        let mut tcp = Tcp::new();
        tcp.enforce_http(false);
        tcp.set_nodelay(true);
        tcp.set_connect_timeout(connect_timeout);
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(rustls::ClientConfig::clone(tls))
            .https_or_http()
            .enable_http1()
            .wrap_connector(tcp);
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            // AWS closes idle connections after about 60 s.
            .pool_idle_timeout(Duration::from_secs(50))
            .build(https);
        Self {
            client,
            read_timeout,
        }
    }
}

impl HttpConnector for Pool {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let client = self.client.clone();
        let request = match request.try_into_http1x() {
            Ok(r) => r,
            Err(e) => return HttpConnectorFuture::ready(Err(ConnectorError::user(e.into()))),
        };
        let read_timeout = self.read_timeout;
        HttpConnectorFuture::new(async move {
            let response = match read_timeout {
                None => client.request(request).await,
                Some(limit) => tokio::time::timeout(limit, client.request(request))
                    .await
                    .map_err(|elapsed| ConnectorError::timeout(elapsed.into()))?,
            }
            .map_err(classify)?;
            HttpResponse::try_from(response.map(SdkBody::from_body_1_x))
                .map_err(|e| ConnectorError::other(e.into(), None))
        })
    }
}

/// Connection failures are I/O errors (retried by the SDK's standard retry policy); others are
/// transient unless the chain says otherwise.
fn classify(e: hyper_util::client::legacy::Error) -> ConnectorError {
    let io = {
        let mut next: Option<&(dyn std::error::Error + 'static)> = Some(&e);
        let mut found = false;
        while let Some(err) = next {
            if err.is::<std::io::Error>() {
                found = true;
                break;
            }
            next = err.source();
        }
        found
    };
    if e.is_connect() || io {
        ConnectorError::io(e.into())
    } else {
        ConnectorError::other(e.into(), Some(ErrorKind::TransientError))
    }
}
