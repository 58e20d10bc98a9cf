//! The authorizer Lambda: `Authorization: Bearer <key>` to `{orgId, scopes}` for API Gateway.

#[tokio::main]
async fn main() -> Result<(), switchboard::lambda::Error> {
    switchboard::lambda::run_authorizer().await
}
