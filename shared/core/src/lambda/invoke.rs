//! [`LocalInvoker`]: the [`ToolInvoker`] of `dev` and the tests, where the plugin functions
//! run in the same process. The event still goes through the plugin function's own event
//! handling as JSON, as Lambda would deliver it.

use std::sync::Arc;

use async_trait::async_trait;
use lambda_http::Context;

use super::plugin::{EventReply, handle_event};
use crate::error::Error;
use crate::pipeline::{CallOutput, PluginService, ToolCallEvent};
use crate::ports::ToolInvoker;

pub struct LocalInvoker {
    plugins: Vec<Arc<PluginService>>,
}

impl LocalInvoker {
    pub fn new(plugins: Vec<Arc<PluginService>>) -> Self {
        Self { plugins }
    }
}

#[async_trait]
impl ToolInvoker for LocalInvoker {
    async fn invoke(&self, call: &ToolCallEvent) -> Result<CallOutput, Error> {
        let service = self
            .plugins
            .iter()
            .find(|p| p.plugin().name() == &call.plugin)
            .ok_or_else(|| {
                Error::internal(format!(
                    "no function serves the {} plugin here",
                    call.plugin
                ))
            })?;
        let event = serde_json::to_value(call)
            .map_err(|e| Error::internal(format!("tool-call event: {e}")))?;
        let mut context = Context::default();
        context.request_id = call.request_id.clone();
        match handle_event(service, event, context).await {
            Ok(EventReply::ToolCall(out)) => Ok(out),
            Ok(other) => Err(Error::internal(format!(
                "the plugin answered a tool-call event as another kind: {other:?}"
            ))),
            Err(e) => Err(Error::internal(format!(
                "the plugin refused the event: {e}"
            ))),
        }
    }
}
