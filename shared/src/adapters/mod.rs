//! Implementations of the ports: DynamoDB for Lambda, SQLite for `dev` and tests.

pub mod dynamodb;
pub mod embedded;
