//! The HTTP API Lambda authorizer (payload format 2.0, simple responses): an API key to the
//! tenant context API Gateway passes to every function.

use lambda_http::LambdaEvent;
use serde_json::Value;

use super::Error;
use crate::auth::Authorizer;

/// The authorizer's runtime loop. A refused key answers `isAuthorized: false`; only a
/// registry outage fails the invocation (API Gateway then answers 500, and retries later).
pub async fn serve(authorizer: &Authorizer) -> Result<(), Error> {
    lambda_http::lambda_runtime::run(lambda_http::service_fn(
        move |event: LambdaEvent<Value>| async move {
            authorizer
                .simple_response(&event.payload)
                .await
                .map_err(|e| Error::from(format!("authorizer: {e}")))
        },
    ))
    .await
}
