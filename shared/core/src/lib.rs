//! Switchboard's domain: the plugin contract, the registry, the ports every adapter
//! implements, the call pipeline, agent assembly, the admin API, and the Lambda edge.
//!
//! Dependencies point inward (ARCHITECTURE.md): the adapter crates (`switchboard-aws`,
//! `-rest`, `-postgres`, `-embedded`) implement [`ports`]; `switchboard-runtime` builds
//! each function's adapters from [`settings::Settings`]; nothing here names an adapter, an
//! AWS SDK type or a database driver.

pub mod admin;
pub mod agent;
pub mod api;
pub mod audit;
pub mod auth;
pub mod cache;
pub mod console;
pub mod data;
pub mod egress;
pub mod error;
pub mod i18n;
pub mod idempotency;
pub mod ids;
pub mod index;
pub mod lambda;
pub mod locale;
pub mod manifest;
pub mod mcp;
pub mod pipeline;
pub mod plugin;
pub mod ports;
pub mod ratelimit;
pub mod registry;
pub mod schedule;
pub mod secrets;
pub mod settings;
pub mod signature;
pub mod spec;
pub mod telemetry;
pub mod toolnames;

/// For implementing the ports (e.g. a wrapping `DataAdapter`) without a direct dependency.
pub use async_trait::async_trait;
pub use error::{Detail, Error, Result};
pub use ids::{
    BedrockAgentRef, Channel, ConnectionId, EntityName, FunctionName, OrgId, PluginName, RecordId,
    VoicePlatform,
};
pub use plugin::{CallContext, CallScope, ContractError, Plugin, Speaker};
pub use ports::{Condition, DataAdapter, DataError, Op, Page};
