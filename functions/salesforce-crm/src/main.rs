//! The Salesforce CRM Lambda: the plugin served by the platform's Lambda glue.

#[tokio::main]
async fn main() -> Result<(), switchboard_runtime::Error> {
    switchboard_runtime::run_plugin(salesforce_crm::plugin()?).await
}
