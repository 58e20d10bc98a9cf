//! The booking Lambda: the plugin served by the platform's Lambda glue.

/// `lambda_http::Error` (a boxed error), named directly so the binary needs no extra crate.
type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    switchboard::lambda::run_plugin(booking::plugin()?).await
}
