//! The AWS adapters: [`dynamodb::DynamoStore`] implements the `ItemStore` port over one
//! DynamoDB table; [`secretsmanager::SecretsManagerStore`] the `SecretStore` port (feature
//! `secretsmanager`, which only the functions that read or write credentials enable).

#[cfg(feature = "dynamodb")]
pub mod dynamodb;
#[cfg(feature = "secretsmanager")]
pub mod secretsmanager;

pub use aws_config::SdkConfig;

/// The SDK config from Lambda's environment (region, credentials, `AWS_ENDPOINT_URL`): load
/// once per container and build each client from it. Its HTTPS client is rustls over ring,
/// the crypto provider the data adapters use too, so the build links one.
pub async fn sdk_config() -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(https_client())
        .load()
        .await
}

/// The SDK's HTTPS client: rustls over ring.
pub fn https_client() -> aws_smithy_runtime_api::client::http::SharedHttpClient {
    use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
    aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https()
}
