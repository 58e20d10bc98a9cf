//! Shared fixtures for the cross-function tests: stores on both backends, unique ids, and
//! the contract suites every store implementation must pass unchanged.

pub mod contract;
pub mod egress;
pub mod faults;
pub mod http;
pub mod invoke_api;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use switchboard::ports::ItemStore;
use switchboard_aws::dynamodb::DynamoStore;
use switchboard_embedded::Embedded;

/// Sends this process's logs through libtest's capture, once: a failing test then prints the
/// warnings and errors of its own calls (`RUST_LOG` sets the level; `warn` by default).
/// The fixtures call it, so every test that builds a store does.
pub fn capture_logs() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let spec = std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".to_owned());
        let subscriber = switchboard::telemetry::subscriber_for(
            &spec,
            false,
            tracing_subscriber::fmt::TestWriter::new(),
        );
        if tracing::subscriber::set_global_default(subscriber).is_err() {
            tracing::debug!("a tracing subscriber was already installed");
        }
    });
}

/// Binds a free loopback port and serves HTTP/1 on it with `svc`, one task per connection,
/// until the returned task is aborted. Returns the address and the task.
pub async fn serve_http1<S, B>(svc: S) -> (std::net::SocketAddr, tokio::task::JoinHandle<()>)
where
    S: hyper::service::Service<
            hyper::Request<hyper::body::Incoming>,
            Response = hyper::Response<B>,
        > + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("bind: {e}"));
    let addr = listener
        .local_addr()
        .unwrap_or_else(|e| panic!("local_addr: {e}"));
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let svc = svc.clone();
            tokio::spawn(async move {
                // A client that hangs up, or a server that does on purpose, ends its connection.
                if let Err(e) = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                    .await
                {
                    tracing::debug!(error = %e, "test server connection closed");
                }
            });
        }
    });
    (addr, task)
}

/// The settings `scripts/test` exports: private upstreams allowed, since the tests' servers
/// (json-server, PostgreSQL) are on loopback.
pub fn settings() -> switchboard::settings::Settings {
    switchboard::settings::Settings::from_env().unwrap_or_else(|e| panic!("{e}"))
}

/// The TLS client config of production (`switchboard_aws::tls_config`), loaded once.
pub fn tls() -> Arc<rustls::ClientConfig> {
    static TLS: std::sync::OnceLock<Arc<rustls::ClientConfig>> = std::sync::OnceLock::new();
    TLS.get_or_init(|| switchboard_aws::tls_config().unwrap_or_else(|e| panic!("{e}")))
        .clone()
}

/// The egress guard of [`settings`].
pub fn egress() -> switchboard::egress::Egress {
    settings().egress
}

/// The admin API over `registry`, with credentials in `secrets`: as the admin Lambda builds it.
pub fn admin_service(
    registry: switchboard::registry::Registry,
    secrets: Arc<switchboard::secrets::Secrets>,
) -> switchboard::admin::AdminService {
    switchboard_runtime::admin_with(registry, secrets, &settings())
}

/// The write-time check of adapter configs the admin API runs.
pub fn config_check(
    secrets: Arc<switchboard::secrets::Secrets>,
) -> switchboard_runtime::adapters::ConfigCheck {
    switchboard_runtime::adapters::ConfigCheck::new(secrets, egress())
}

/// An id no other test (or earlier run against the same moto) uses.
pub fn unique(prefix: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "{prefix}-{}-{}",
        nanos % 1_000_000_000_000,
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// moto's endpoint, set by `scripts/test`. Without it the DynamoDB tests fail, never skip.
pub fn moto_endpoint() -> String {
    capture_logs();
    match std::env::var("SWITCHBOARD_TEST_DYNAMODB") {
        Ok(e) if !e.is_empty() => e,
        _ => panic!(
            "SWITCHBOARD_TEST_DYNAMODB is not set: the DynamoDB tests run against moto's server, \
             which scripts/test installs and starts. Run scripts/test."
        ),
    }
}

/// A DynamoDB client for `endpoint` with the same timeouts and retries as production.
pub async fn dynamodb_client(endpoint: &str) -> aws_sdk_dynamodb::Client {
    switchboard_aws::dynamodb::client_from_config(&sdk_config(endpoint).await)
}

/// A Secrets Manager client for `endpoint` with production's timeouts and retries.
pub async fn secretsmanager_client(endpoint: &str) -> aws_sdk_secretsmanager::Client {
    switchboard_aws::secretsmanager::client_from_config(&sdk_config(endpoint).await)
}

/// A Lambda client for `endpoint` with production's timeouts and retries (the MCP
/// function's).
pub async fn lambda_client(endpoint: &str) -> aws_sdk_lambda::Client {
    switchboard_aws::lambda::client_from_config(&sdk_config(endpoint).await, Some(endpoint))
}

/// An EventBridge Scheduler client for `endpoint` with production's timeouts and retries.
pub async fn scheduler_client(endpoint: &str) -> aws_sdk_scheduler::Client {
    switchboard_aws::scheduler::client_from_config(&sdk_config(endpoint).await)
}

/// The SDK config of production (`switchboard_aws::sdk_config`), pointed at `endpoint`.
pub async fn sdk_config(endpoint: &str) -> switchboard_aws::SdkConfig {
    capture_logs();
    let aws = switchboard::settings::AwsSettings {
        region: Some("us-east-1".into()),
        access_key_id: Some("testing".into()),
        secret_access_key: Some("testing".into()),
        session_token: None,
        endpoint_url: Some(endpoint.to_owned()),
        lambda_endpoint_url: None,
    };
    switchboard_aws::sdk_config(&aws, tls()).unwrap_or_else(|e| panic!("{e}"))
}

/// A private moto server started by the project's own `scripts/moto`, for tests that stop
/// it. Dropping it stops the server.
pub struct PrivateMoto {
    child: std::process::Child,
    pub endpoint: String,
}

impl PrivateMoto {
    pub fn start() -> Self {
        use std::io::BufRead;
        capture_logs();
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/moto");
        let mut child = std::process::Command::new("bash")
            .arg(script)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run scripts/moto: {e}"));
        let out = child.stdout.take().expect("piped stdout");
        for line in std::io::BufReader::new(out).lines() {
            let line = line.unwrap_or_default();
            if let Some(url) = line.split("AWS_ENDPOINT_URL=").nth(1) {
                return Self {
                    child,
                    endpoint: url.trim().to_owned(),
                };
            }
        }
        // Its output ended, so the script is exiting: reap it for the message.
        let status = child.wait();
        panic!("scripts/moto exited without printing its endpoint ({status:?})");
    }

    /// Stops the server (scripts/moto's EXIT trap kills moto) and waits for it.
    pub fn stop(&mut self) {
        let pid = self.child.id().to_string();
        let status = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status();
        assert!(
            status.is_ok_and(|s| s.success()),
            "cannot signal scripts/moto"
        );
        if let Err(e) = self.child.wait() {
            panic!("scripts/moto did not exit: {e}");
        }
    }
}

impl Drop for PrivateMoto {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            self.stop();
        }
    }
}

pub struct Tables {
    pub registry: Arc<dyn ItemStore>,
    pub data: Arc<dyn ItemStore>,
}

/// The tables `scripts/test` created on moto from `infra/tables/`.
pub async fn moto_tables() -> Tables {
    let client = dynamodb_client(&moto_endpoint()).await;
    Tables {
        registry: Arc::new(DynamoStore::new(client.clone(), "switchboard-registry")),
        data: Arc::new(DynamoStore::new(client, "switchboard-data")),
    }
}

/// A fresh in-memory embedded database.
pub fn embedded_tables() -> Tables {
    capture_logs();
    let db = Embedded::in_memory().unwrap_or_else(|e| panic!("in-memory SQLite: {e}"));
    Tables {
        registry: db.registry_table(),
        data: db.data_table(),
    }
}

/// Counts the DynamoDB requests a client sends, by operation (`X-Amz-Target`), at the SDK's
/// transmit step: what went on the wire, not what the code meant to do.
#[derive(Debug, Clone, Default)]
pub struct RequestCounter(Arc<std::sync::Mutex<Vec<String>>>);

impl RequestCounter {
    /// Operations sent so far (`Query`, `BatchGetItem`, …), in order.
    pub fn operations(&self) -> Vec<String> {
        self.0.lock().map(|v| v.clone()).unwrap_or_default()
    }

    pub fn reset(&self) {
        if let Ok(mut v) = self.0.lock() {
            v.clear();
        }
    }
}

impl aws_sdk_dynamodb::config::Intercept for RequestCounter {
    fn name(&self) -> &'static str {
        "RequestCounter"
    }

    fn read_before_transmit(
        &self,
        ctx: &aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef<'_>,
        _: &aws_sdk_dynamodb::config::RuntimeComponents,
        _: &mut aws_sdk_dynamodb::config::ConfigBag,
    ) -> Result<(), aws_sdk_dynamodb::error::BoxError> {
        let target = ctx.request().headers().get("x-amz-target").unwrap_or("?");
        let op = target.rsplit('.').next().unwrap_or(target).to_owned();
        if let Ok(mut v) = self.0.lock() {
            v.push(op);
        }
        Ok(())
    }
}

/// moto's registry table through a client whose every request is counted.
pub async fn counted_moto_registry() -> (Arc<dyn ItemStore>, RequestCounter) {
    let client = dynamodb_client(&moto_endpoint()).await;
    let counter = RequestCounter::default();
    let conf = client
        .config()
        .to_builder()
        .interceptor(counter.clone())
        .build();
    let client = aws_sdk_dynamodb::Client::from_conf(conf);
    (
        Arc::new(DynamoStore::new(client, "switchboard-registry")),
        counter,
    )
}

/// Declared indexes for adapter tests that exercise query semantics on arbitrary fields:
/// each of `entities` indexed by each of `fields`.
pub fn indexes(entities: &[&str], fields: &[&str]) -> switchboard::index::Indexes {
    switchboard::index::Indexes::new(
        entities
            .iter()
            .map(|e| {
                (
                    (*e).to_owned(),
                    fields.iter().map(|f| (*f).into()).collect(),
                )
            })
            .collect(),
    )
}
