//! The Zoom Lambda: the plugin served by the platform's Lambda glue.

#[tokio::main]
async fn main() -> Result<(), switchboard_runtime::Error> {
    switchboard_runtime::run_plugin(zoom::plugin()?).await
}
