//! The translation Lambda: Amazon Translate's client built once, then the plugin served by
//! the platform's Lambda glue.

#[tokio::main]
async fn main() -> Result<(), switchboard_runtime::Error> {
    let translate = translation::AwsTranslate::from_env()?;
    switchboard_runtime::run_plugin(translation::plugin_with(translate)?).await
}
