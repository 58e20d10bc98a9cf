//! The AWS adapters: [`dynamodb::DynamoStore`] implements the `ItemStore` port over one
//! DynamoDB table; [`secretsmanager::SecretsManagerStore`] the `SecretStore` port (feature
//! `secretsmanager`, which only the functions that read or write credentials enable);
//! [`lambda::LambdaInvoker`] the `ToolInvoker` port (feature `lambda`: the MCP function);
//! [`scheduler::EventBridgeScheduler`] the `Scheduler` port (feature `scheduler`: plugins).
//!
//! The SDK clients are configured from the settings directly, not through `aws-config`:
//! Lambda hands a function its region and credentials in the environment, so the default
//! credential chain (profiles, SSO, STS, instance metadata) would be code that never runs.

#[cfg(feature = "dynamodb")]
pub mod dynamodb;
mod https;
#[cfg(feature = "lambda")]
pub mod lambda;
#[cfg(feature = "scheduler")]
pub mod scheduler;
#[cfg(feature = "secretsmanager")]
pub mod secretsmanager;

use aws_credential_types::Credentials;
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_smithy_runtime_api::client::behavior_version::BehaviorVersion;
use aws_types::region::Region;
use switchboard::settings::AwsSettings;

pub use aws_types::SdkConfig;

/// Timeouts and retries of a client whose whole operation (3 s) must end well inside a
/// call's budget (Secrets Manager, EventBridge Scheduler), so an outage is answered (a stale
/// value or a 503) rather than cut off by the caller's deadline.
#[cfg(any(feature = "secretsmanager", feature = "scheduler"))]
pub(crate) fn within_a_call() -> (
    aws_smithy_types::timeout::TimeoutConfig,
    aws_smithy_types::retry::RetryConfig,
) {
    use std::time::Duration;
    (
        aws_smithy_types::timeout::TimeoutConfig::builder()
            .connect_timeout(Duration::from_secs(1))
            .operation_attempt_timeout(Duration::from_millis(1500))
            .operation_timeout(Duration::from_secs(3))
            .build(),
        aws_smithy_types::retry::RetryConfig::standard().with_max_attempts(2),
    )
}
pub use https::{client as https_client, tls_config};

/// The SDK config every client of a container is built from: region, credentials and
/// endpoint from the settings, the HTTP/1 HTTPS client over `tls` ([`tls_config`]), tokio's
/// sleep. Fails naming what is missing.
pub fn sdk_config(
    aws: &AwsSettings,
    tls: std::sync::Arc<rustls::ClientConfig>,
) -> Result<SdkConfig, String> {
    let region = aws
        .region
        .clone()
        .ok_or("AWS_REGION is not set: Lambda sets it; elsewhere, set it to the tables' region")?;
    let (Some(key), Some(secret)) = (&aws.access_key_id, &aws.secret_access_key) else {
        return Err(
            "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set: Lambda sets them from the function's role"
                .into(),
        );
    };
    let credentials = Credentials::new(key, secret, aws.session_token.clone(), None, "environment");
    let mut builder = SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(region))
        .credentials_provider(SharedCredentialsProvider::new(credentials))
        .http_client(https_client(tls))
        .sleep_impl(aws_smithy_async::rt::sleep::TokioSleep::new());
    if let Some(url) = &aws.endpoint_url {
        builder = builder.endpoint_url(url);
    }
    Ok(builder.build())
}
