//! The authorizer Lambda: `Authorization: Bearer <key>` to `{orgId, scopes}` for API Gateway.

use switchboard::auth::{Authorizer, KEY_CACHE_TTL};
use switchboard::settings::Settings;

#[tokio::main]
async fn main() -> Result<(), switchboard::lambda::Error> {
    let settings = Settings::from_env()?;
    switchboard::telemetry::init(&settings.log);
    let registry = switchboard_runtime::registry(&settings).await?;
    let authorizer = Authorizer::new(registry, KEY_CACHE_TTL);
    switchboard::lambda::serve::authorizer(&authorizer).await
}
