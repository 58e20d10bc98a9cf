//! The support Lambda: the plugin served by the platform's Lambda glue.

#[tokio::main]
async fn main() -> Result<(), switchboard::lambda::Error> {
    switchboard::lambda::run_plugin(support::plugin()?).await
}
