//! Cross-function tests. Everything that needs DynamoDB runs against moto's server started by
//! `scripts/test`; the same checks run against the embedded store.

mod adapter_postgres;
mod adapter_rest;
mod adapters;
mod admin;
mod agents;
mod audit;
mod bedrock;
mod connections;
mod console;
mod contract;
mod dev_server;
mod egress;
mod events;
mod faults;
mod fixtures;
mod fuzz;
mod idempotency;
mod isolation;
mod mcp;
mod oauth2;
mod pipeline;
mod plugins;
mod ratelimit;
mod reminders;
mod secrets;
mod vendors;
