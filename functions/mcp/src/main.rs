//! The MCP Lambda: `POST /mcp/{channel}`. It links no plugin: `tools/call` invokes the
//! plugin's own function.

use switchboard::settings::Settings;

#[tokio::main]
async fn main() -> Result<(), switchboard::lambda::Error> {
    let settings = Settings::from_env()?;
    switchboard::telemetry::init(&settings.log);
    let service = switchboard_runtime::mcp(&settings).await?;
    switchboard::lambda::serve::mcp(&service).await
}
