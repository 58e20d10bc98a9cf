//! The agent-builder Lambda: `GET /agents/{channel}[?format=…]`.

use switchboard::agent::builder::AgentBuilder;
use switchboard::agent::dialects::ExportOptions;
use switchboard::agent::service::AgentService;
use switchboard::settings::Settings;

#[tokio::main]
async fn main() -> Result<(), switchboard::lambda::Error> {
    let settings = Settings::from_env()?;
    switchboard::telemetry::init(&settings.log);
    let registry = switchboard_runtime::registry(&settings).await?;
    let service = AgentService::new(
        AgentBuilder::new(registry, settings.cache_ttl),
        ExportOptions {
            public_base_url: settings.public_url.clone(),
        },
    );
    switchboard::lambda::serve::agent(&service).await
}
