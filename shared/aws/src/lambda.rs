//! [`ToolInvoker`] over AWS Lambda: a request-response `Invoke` of the plugin's own function
//! with the tool-call event (how the MCP function reaches the plugins it does not link).

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_lambda::Client;
use aws_sdk_lambda::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::InvocationType;
use aws_smithy_types::retry::RetryConfig;
use aws_smithy_types::timeout::TimeoutConfig;
use aws_types::SdkConfig;

use switchboard::pipeline::{CallOutput, ToolCallEvent};
use switchboard::ports::ToolInvoker;
use switchboard::{Error, PluginName};

/// Longer than a plugin function's own timeout (20 s in template.yaml), so a plugin's
/// answer, even its 504, arrives; shorter than API Gateway's 30 s.
const INVOKE_TIMEOUT: Duration = Duration::from_secs(25);

/// A Lambda client for invocations, at `endpoint_url` when set (`AWS_ENDPOINT_URL_LAMBDA`).
/// One attempt: a retried invoke could run a call with side effects twice.
pub fn client_from_config(sdk: &SdkConfig, endpoint_url: Option<&str>) -> Client {
    let mut conf = aws_sdk_lambda::config::Builder::from(sdk)
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(1))
                .operation_timeout(INVOKE_TIMEOUT)
                .build(),
        )
        .retry_config(RetryConfig::standard().with_max_attempts(1));
    if let Some(url) = endpoint_url {
        conf = conf.endpoint_url(url);
    }
    Client::from_conf(conf.build())
}

#[derive(Clone, Debug)]
pub struct LambdaInvoker {
    client: Client,
    /// Each plugin's function name or ARN (`SWITCHBOARD_PLUGIN_FUNCTIONS`).
    functions: HashMap<PluginName, String>,
}

impl LambdaInvoker {
    pub fn new(client: Client, functions: HashMap<PluginName, String>) -> Self {
        Self { client, functions }
    }
}

#[async_trait]
impl ToolInvoker for LambdaInvoker {
    async fn invoke(&self, call: &ToolCallEvent) -> Result<CallOutput, Error> {
        let function = self.functions.get(&call.plugin).ok_or_else(|| {
            Error::internal(format!(
                "SWITCHBOARD_PLUGIN_FUNCTIONS names no function for the {} plugin; deploy it with scripts/template's template.yaml",
                call.plugin
            ))
        })?;
        let payload = serde_json::to_vec(call)
            .map_err(|e| Error::internal(format!("tool-call event: {e}")))?;
        let out = self
            .client
            .invoke()
            .function_name(function)
            .invocation_type(InvocationType::RequestResponse)
            .payload(Blob::new(payload))
            .send()
            .await
            .map_err(|e| invoke_error(call, function, &e))?;
        if let Some(kind) = out.function_error() {
            // The payload is the runtime's {errorType, errorMessage}; the type is enough
            // here, the plugin's log has the rest under the same request id.
            let payload: serde_json::Value = out
                .payload()
                .and_then(|b| serde_json::from_slice(b.as_ref()).ok())
                .unwrap_or_default();
            let error_type = payload["errorType"].as_str().unwrap_or(kind);
            // The function ran out of its own time: as much an outage as our own timeout.
            if error_type == "Sandbox.Timedout" {
                tracing::warn!(function, request_id = %call.request_id, "plugin function timed out");
                return Err(Error::UpstreamTimeout(format!(
                    "the {} plugin did not answer in time; a call that changes something may still complete, so retry it with the same Idempotency-Key",
                    call.plugin
                )));
            }
            return Err(Error::internal(format!(
                "{function} failed ({kind}: {}) on request {}",
                error_type.chars().take(64).collect::<String>(),
                call.request_id
            )));
        }
        let body = out.payload().map(Blob::as_ref).unwrap_or_default();
        serde_json::from_slice(body).map_err(|e| {
            Error::internal(format!(
                "{function} answered the tool call out of contract: {e}"
            ))
        })
    }
}

/// Outages name the plugin, not the deployment's function (the caller sees them); the rest
/// is internal, its cause logged.
fn invoke_error<E>(call: &ToolCallEvent, function: &str, err: &SdkError<E>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let plugin = &call.plugin;
    match err {
        SdkError::ServiceError(s) => match s.err().code().unwrap_or("unknown") {
            "TooManyRequestsException" => {
                tracing::warn!(function, request_id = %call.request_id, "plugin function throttled");
                Error::Unavailable(format!(
                    "the {plugin} plugin is at its concurrency limit; try again shortly"
                ))
            }
            code => Error::internal(format!(
                "Lambda Invoke {function}: {code} (HTTP {})",
                s.raw().status().as_u16()
            )),
        },
        SdkError::TimeoutError(_) => {
            tracing::warn!(function, request_id = %call.request_id, "plugin function timed out");
            Error::UpstreamTimeout(format!(
                "the {plugin} plugin did not answer within {} s; a call that changes something may still complete, so retry it with the same Idempotency-Key",
                INVOKE_TIMEOUT.as_secs()
            ))
        }
        other => Error::internal(format!(
            "Lambda Invoke {function}: {}",
            DisplayErrorContext(other)
        )),
    }
}
