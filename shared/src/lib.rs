//! Switchboard's platform library: the plugin contract, the registry and data ports with
//! their DynamoDB and embedded adapters, the call pipeline and the Lambda glue.
//!
//! Dependencies point inward: `adapters` and `lambda` use the domain and `ports`; the
//! domain modules never name an adapter or an AWS type.

pub mod adapters;
pub mod admin;
pub mod agent;
pub mod auth;
pub mod cache;
pub mod data;
pub mod error;
pub mod ids;
pub mod lambda;
pub mod manifest;
pub mod pipeline;
pub mod plugin;
pub mod ports;
pub mod registry;
pub mod secrets;
pub mod telemetry;
#[cfg(feature = "testkit")]
pub mod testkit;

/// For implementing the ports (e.g. a wrapping `DataAdapter`) without a direct dependency.
pub use async_trait::async_trait;
pub use error::{Detail, Error, Result};
pub use ids::{Channel, EntityName, FunctionName, OrgId, PluginName, RecordId};
pub use plugin::{CallContext, ContractError, Plugin};
pub use ports::{Condition, DataAdapter, DataError, Op, Page};
