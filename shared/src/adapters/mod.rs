//! Implementations of the ports: DynamoDB for Lambda, SQLite for `dev` and tests.

pub mod dynamodb;
#[cfg(feature = "embedded")]
pub mod embedded;
