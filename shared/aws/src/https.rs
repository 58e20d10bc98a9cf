//! The AWS SDK's HTTPS client: hyper's pooled HTTP/1.1 client over rustls with ring, the TLS
//! stack the data adapters use too.
//!
//! The SDK's own client also speaks HTTP/2, which DynamoDB and Secrets Manager do not need
//! (their endpoints answer HTTP/1.1), and whose implementation (`h2`) is one of the largest
//! pieces of every function's binary. This one leaves it out.

use std::collections::HashMap;
use std::sync::Mutex;
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
#[derive(Debug, Default)]
struct Pools {
    by_timeouts: Mutex<HashMap<Timeouts, SharedHttpConnector>>,
}

/// The SDK's HTTPS client, for an `SdkConfig`'s `http_client`.
pub fn client() -> SharedHttpClient {
    SharedHttpClient::new(Pools::default())
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
            return SharedHttpConnector::new(Pool::new(key));
        };
        pools
            .entry(key)
            .or_insert_with(|| SharedHttpConnector::new(Pool::new(key)))
            .clone()
    }
}

#[derive(Debug)]
struct Pool {
    client: Option<Client<Https, SdkBody>>,
    /// How long the response's head may take (the body's reads are the SDK's).
    read_timeout: Option<Duration>,
}

impl Pool {
    fn new((connect_timeout, read_timeout): Timeouts) -> Self {
        let mut tcp = Tcp::new();
        tcp.enforce_http(false);
        tcp.set_nodelay(true);
        tcp.set_connect_timeout(connect_timeout);
        let client = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_native_roots(rustls::crypto::ring::default_provider())
            .map_err(|e| tracing::error!(error = %e, "no TLS roots for the AWS SDK's client"))
            .ok()
            .map(|b| {
                let https = b.https_or_http().enable_http1().wrap_connector(tcp);
                Client::builder(TokioExecutor::new())
                    .pool_timer(TokioTimer::new())
                    // AWS closes idle connections after about 60 s.
                    .pool_idle_timeout(Duration::from_secs(50))
                    .build(https)
            });
        Self {
            client,
            read_timeout,
        }
    }
}

impl HttpConnector for Pool {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let Some(client) = self.client.clone() else {
            return HttpConnectorFuture::ready(Err(ConnectorError::other(
                "the AWS SDK's HTTPS client has no TLS roots".into(),
                None,
            )));
        };
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
