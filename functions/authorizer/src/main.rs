//! The authorizer Lambda: `Authorization: Bearer <key>` to `{orgId, scopes, keyId, channel,
//! keyRateLimit}` for API Gateway (`channel` only for a channel-bound key, `keyRateLimit` only
//! for a key with a limit of its own).

use switchboard::settings::Settings;

#[tokio::main]
async fn main() -> Result<(), switchboard::lambda::Error> {
    let settings = Settings::from_env()?;
    switchboard::telemetry::init(&settings.log);
    let authorizer = switchboard_runtime::authorizer(&settings).await?;
    switchboard::lambda::serve::authorizer(&authorizer).await
}
