//! The `switchboard` CLI as a library, so integration tests can run the dev server in-process.

pub mod data;
pub mod dev;
pub mod manifest;
pub mod ops;
pub mod seed;
