//! The admin Lambda: `/admin/…` for the organization in the authorizer context.

#[tokio::main]
async fn main() -> Result<(), switchboard::lambda::Error> {
    switchboard::lambda::run_admin().await
}
