//! The authorizer Lambda: `Authorization: Bearer <key>` to `{orgId, scopes, keyId, channel}`
//! for API Gateway (`channel` only for a channel-bound key).

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
