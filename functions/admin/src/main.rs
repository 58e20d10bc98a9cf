//! The admin Lambda: `/admin/…` for the organization in the authorizer context.

use switchboard::settings::Settings;

#[tokio::main]
async fn main() -> Result<(), switchboard::lambda::Error> {
    let settings = Settings::from_env()?;
    switchboard::telemetry::init(&settings.log);
    let service = switchboard_runtime::admin(&settings).await?;
    switchboard::lambda::serve::admin(&service).await
}
