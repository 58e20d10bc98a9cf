//! `GET /agents/{channel}[?format=…]` as the agent builder answers it, whatever carried it.

use std::time::Instant;

use serde_json::Value;

use crate::agent::builder::AgentBuilder;
use crate::agent::dialects::{ExportOptions, Format, export};
use crate::auth::{TenantContext, no_tenant};
use crate::error::Error;
use crate::ids::Channel;

/// The scope a credential needs to read agents.
pub const READ_SCOPE: &str = "agents:read";

pub struct AgentService {
    pub builder: AgentBuilder,
    pub export: ExportOptions,
}

impl AgentService {
    pub fn new(builder: AgentBuilder, export: ExportOptions) -> Self {
        Self { builder, export }
    }

    /// Answers one request as `(status, body)`; the body is the agent itself, or an error
    /// in the contract's envelope.
    pub async fn get(
        &self,
        tenant: Option<TenantContext>,
        channel: &str,
        format: Option<&str>,
        request_id: &str,
    ) -> (u16, Value) {
        let started = Instant::now();
        let span = tracing::info_span!("agent", request_id, org = tracing::field::Empty, channel);
        let result = self.run(tenant, channel, format, &span).await;
        let elapsed_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        span.in_scope(|| match &result {
            Ok(_) => tracing::info!(status = 200, elapsed_us, "agent built"),
            Err(Error::Internal(cause)) => {
                tracing::error!(status = 500, elapsed_us, cause = %cause, "agent failed: internal")
            }
            Err(e) => tracing::info!(
                status = e.status(),
                code = e.code(),
                elapsed_us,
                "agent refused"
            ),
        });
        match result {
            Ok(v) => (200, v),
            Err(e) => (e.status(), e.to_body()),
        }
    }

    async fn run(
        &self,
        tenant: Option<TenantContext>,
        channel: &str,
        format: Option<&str>,
        span: &tracing::Span,
    ) -> Result<Value, Error> {
        let tenant = tenant.ok_or_else(no_tenant)?;
        span.record("org", tenant.org.as_str());
        if !tenant.scopes.iter().any(|s| s == READ_SCOPE) {
            return Err(Error::Forbidden {
                code: "forbidden",
                message: format!(
                    "this credential lacks the '{READ_SCOPE}' scope needed to read agents"
                ),
            });
        }
        let channel = Channel::parse(channel).map_err(|e| Error::invalid_request(e.to_string()))?;
        if let Some(bound) = tenant.channel.as_ref().filter(|b| **b != channel) {
            return Err(Error::Forbidden {
                code: "forbidden",
                message: format!(
                    "this key is bound to the '{bound}' channel; it can read only /agents/{bound}"
                ),
            });
        }
        let format = format.map(Format::parse).transpose()?;
        let agent = self.builder.build(&tenant.org, &channel).await?;
        match format {
            None => Ok(agent.to_json()),
            Some(f) => export(&agent, f, &self.export),
        }
    }
}
