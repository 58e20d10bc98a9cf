//! The AWS adapters: [`dynamodb::DynamoStore`] implements the `ItemStore` port over one
//! DynamoDB table; [`secretsmanager::SecretsManagerStore`] the `SecretStore` port (feature
//! `secretsmanager`, which only the functions that read or write credentials enable).

#[cfg(feature = "dynamodb")]
pub mod dynamodb;
#[cfg(feature = "secretsmanager")]
pub mod secretsmanager;

pub use aws_config::SdkConfig;

/// The SDK config from Lambda's environment (region, credentials, `AWS_ENDPOINT_URL`): load
/// once per container and build each client from it.
pub async fn sdk_config() -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .load()
        .await
}
