//! Every trait the domain is written against, and the only place they are declared. The
//! implementations (adapters) live in their own crates: `switchboard-aws` (DynamoDB, Secrets
//! Manager), `switchboard-embedded` (SQLite), `switchboard-rest`, `switchboard-postgres`;
//! `switchboard-runtime` wires them together per function.
//!
//! - [`ItemStore`]: one table of the single-table model (registry, built-in data).
//! - [`DataAdapter`]: a plugin's records, confined to one (organization, plugin).
//! - [`Api`]: a vendor's HTTP API with the instance's credential (the `api` adapter).
//! - [`DataAdapterFactory`]: the data adapter for one call, from a parsed [`AdapterSpec`].
//! - [`AdapterCheck`]: an adapter config checked when it is written (admin).
//! - [`SecretStore`]: where credential values live.
//! - [`ToolInvoker`]: how the MCP server reaches a plugin's function (Lambda `Invoke`, or
//!   in-process in `dev`).

use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::Error;
use crate::ids::{EntityName, OrgId, PluginName, RecordId};
use crate::index::Indexes;
use crate::secrets::{CredentialRef, SecretValue};
use crate::spec::{AdapterSpec, DataAdapterConfig};

/// A failure of a storage backend.
#[derive(Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// A precondition (optimistic lock, create-only, must-exist) did not hold. `current`
    /// is the item's version and `found` its data as the failed write found them, where
    /// the backend answers with them (DynamoDB does): a retry can go on from there
    /// without reading the item again.
    #[error("precondition failed for {key}")]
    Conflict {
        key: String,
        current: Option<u64>,
        found: Option<Box<Value>>,
    },
    /// The backend could not be reached or did not answer in time.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// Stored data or the backend's answer could not be understood: a bug or corruption.
    #[error("storage error: {0}")]
    Internal(String),
}

// By hand: a conflict's `found` is a tenant's record, which a `{:?}` must not put in a log.
impl std::fmt::Debug for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Conflict {
                key,
                current,
                found,
            } => f
                .debug_struct("Conflict")
                .field("key", key)
                .field("current", current)
                .field("found", &found.as_ref().map(|_| "…"))
                .finish(),
            Self::Unavailable(m) => f.debug_tuple("Unavailable").field(m).finish(),
            Self::Internal(m) => f.debug_tuple("Internal").field(m).finish(),
        }
    }
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict { current, .. } => Error::Conflict {
                code: "conflict",
                message: match current {
                    Some(v) => format!("the item changed concurrently; current version is {v}"),
                    None => "the item was changed or already exists".to_owned(),
                },
            },
            StoreError::Unavailable(cause) => {
                // The caller's message is generic; this is the one place the cause is kept.
                tracing::warn!(%cause, "store unavailable");
                Error::Unavailable(
                    "the registry or data store is unreachable; retry shortly".into(),
                )
            }
            StoreError::Internal(m) => Error::internal(m),
        }
    }
}

/// A key in a single-table layout.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    pub pk: String,
    pub sk: String,
}

impl Key {
    pub fn new(pk: impl Into<String>, sk: impl Into<String>) -> Self {
        Self {
            pk: pk.into(),
            sk: sk.into(),
        }
    }
}

impl std::fmt::Display for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} / {}", self.pk, self.sk)
    }
}

/// A stored item: its JSON body and the optimistic-lock version (1 on first write).
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    pub key: Key,
    pub data: Value,
    pub version: u64,
}

/// What must hold for a write to happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precondition {
    None,
    NotExists,
    Exists,
    Version(u64),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass back as `after` to continue; `None` when this was the last page.
    pub next: Option<String>,
}

/// Max items in one `transact_write` (DynamoDB's TransactWriteItems limit).
pub const MAX_TRANSACT_ITEMS: usize = 100;

/// Refuses a batch of more than `max` records (a client error, with the numbers).
pub fn check_batch_len(len: usize, max: usize) -> Result<(), DataError> {
    if len > max {
        Err(DataError::Invalid(format!(
            "a batch holds at most {max} records, not {len}"
        )))
    } else {
        Ok(())
    }
}

/// One table of the single-table model: the storage engine under the registry and the
/// built-in data adapter. Implemented by DynamoDB and by the embedded SQLite store.
#[async_trait]
pub trait ItemStore: Send + Sync {
    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError>;
    /// Writes `data`, bumping the version; returns the new version.
    async fn put(&self, key: &Key, data: &Value, pre: Precondition) -> Result<u64, StoreError>;
    /// Returns whether an item was deleted.
    async fn delete(&self, key: &Key, pre: Precondition) -> Result<bool, StoreError>;
    /// Items of one partition in ascending sort-key order, starting after `after`.
    async fn query(
        &self,
        pk: &str,
        after: Option<&str>,
        limit: Option<usize>,
    ) -> Result<Page<Item>, StoreError> {
        self.query_range(pk, &SkRange::All, after, limit).await
    }
    /// Like [`ItemStore::query`], only the items whose sort key is in `range`: the store
    /// reads no other item (a key condition, not a filter).
    async fn query_range(
        &self,
        pk: &str,
        range: &SkRange,
        after: Option<&str>,
        limit: Option<usize>,
    ) -> Result<Page<Item>, StoreError>;
    /// Items that exist among `keys`, in no particular order.
    async fn batch_get(&self, keys: &[Key]) -> Result<Vec<Item>, StoreError>;
    /// All writes happen or none do (at most [`MAX_TRANSACT_ITEMS`], each item once); a
    /// failed precondition is [`StoreError::Conflict`] naming its item.
    async fn transact_write(&self, writes: &[Write<'_>]) -> Result<(), StoreError>;
    /// [`ItemStore::transact_write`] of puts only.
    async fn transact_put(&self, puts: &[(Key, Value, Precondition)]) -> Result<(), StoreError> {
        let writes: Vec<Write<'_>> = puts
            .iter()
            .map(|(key, data, pre)| Write::Put {
                key,
                data,
                pre: *pre,
            })
            .collect();
        self.transact_write(&writes).await
    }
    /// Atomically adds one to a counter item and returns the new value.
    async fn increment(&self, key: &Key) -> Result<u64, StoreError>;
    /// [`ItemStore::put`] of an item that may be deleted once `expires_at` (epoch seconds)
    /// has passed, and must be treated as gone by readers from then on. A store without
    /// expiry (the embedded one) keeps it; DynamoDB's TTL deletes it some time later. Write
    /// such an item only this way: a plain `put` over it would keep the old expiry. It is
    /// written whole (data, version, expiry; never a counter), so a store may replace it.
    async fn put_expiring(
        &self,
        key: &Key,
        data: &Value,
        pre: Precondition,
        _expires_at: u64,
    ) -> Result<u64, StoreError> {
        self.put(key, data, pre).await
    }
}

/// Which sort keys of a partition a query reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SkRange {
    All,
    /// From the first to the second, both included.
    Between(String, String),
    Prefix(String),
}

impl SkRange {
    pub fn contains(&self, sk: &str) -> bool {
        match self {
            Self::All => true,
            Self::Between(lo, hi) => lo.as_str() <= sk && sk <= hi.as_str(),
            Self::Prefix(p) => sk.starts_with(p.as_str()),
        }
    }
}

/// One write of a transaction.
#[derive(Debug, Clone, Copy)]
pub enum Write<'a> {
    Put {
        key: &'a Key,
        data: &'a Value,
        pre: Precondition,
    },
    Delete {
        key: &'a Key,
        pre: Precondition,
    },
    /// Writes nothing; the transaction happens only if `pre` holds for this item.
    Check {
        key: &'a Key,
        pre: Precondition,
    },
}

impl Write<'_> {
    pub fn key(&self) -> &Key {
        match self {
            Self::Put { key, .. } | Self::Delete { key, .. } | Self::Check { key, .. } => key,
        }
    }
}

/// Reads the whole partition, page by page.
pub async fn query_all(store: &dyn ItemStore, pk: &str) -> Result<Vec<Item>, StoreError> {
    let mut out = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = store.query(pk, after.as_deref(), None).await?;
        out.extend(page.items);
        match page.next {
            Some(n) => after = Some(n),
            None => return Ok(out),
        }
    }
}

/// One comparison in a [`DataAdapter::query`] filter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Condition {
    pub field: String,
    #[serde(default)]
    pub op: Op,
    pub value: Value,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    #[default]
    Eq,
    Ne,
    Lt,
    Lte,
    Gt,
    Gte,
    BeginsWith,
    Contains,
}

impl Condition {
    pub fn eq(field: impl Into<String>, value: impl Into<Value>) -> Self {
        Self {
            field: field.into(),
            op: Op::Eq,
            value: value.into(),
        }
    }
    pub fn new(field: impl Into<String>, op: Op, value: impl Into<Value>) -> Self {
        Self {
            field: field.into(),
            op,
            value: value.into(),
        }
    }
}

/// Records per page when [`DataAdapter::query`] reads all matches.
pub const QUERY_PAGE: usize = 500;

/// A data operation failure, mapped onto the error contract by `From<DataError> for Error`.
#[derive(Debug, Clone, thiserror::Error)]
pub enum DataError {
    #[error("{entity} '{id}' was not found")]
    NotFound { entity: String, id: String },
    #[error("{entity} '{id}' already exists or was changed concurrently")]
    Conflict { entity: String, id: String },
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// An external adapter's remote API failed or refused the call (502). The message names
    /// the entity and status, never a credential or the remote's body.
    #[error("{0}")]
    Upstream(String),
    /// An external adapter's remote API did not answer in time (504).
    #[error("{0}")]
    UpstreamTimeout(String),
    /// A query no declared index answers: the plugin's bug, not the caller's (500).
    #[error("{0}")]
    Undeclared(String),
}

impl From<DataError> for Error {
    fn from(e: DataError) -> Self {
        match e {
            DataError::NotFound { .. } => Error::not_found(e.to_string()),
            DataError::Conflict { .. } => Error::conflict(e.to_string()),
            DataError::Invalid(m) => Error::unprocessable(m),
            DataError::Store(s) => s.into(),
            DataError::Upstream(m) => Error::Upstream(m),
            DataError::UpstreamTimeout(m) => Error::UpstreamTimeout(m),
            DataError::Undeclared(m) => Error::internal(m),
        }
    }
}

/// The seed's data adapter, scoped at construction to one (organization, plugin): no call
/// can name another tenant. Records are JSON objects carrying their id in `"id"`.
#[async_trait]
pub trait DataAdapter: Send + Sync {
    async fn list(
        &self,
        entity: &EntityName,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<Page<Value>, DataError>;
    async fn get(&self, entity: &EntityName, id: &RecordId) -> Result<Option<Value>, DataError>;
    /// Creates a record; an `"id"` in `record` is used, otherwise one is allocated
    /// (a per-entity sequence: "1", "2", …). An existing id is a conflict.
    async fn create(&self, entity: &EntityName, record: Value) -> Result<Value, DataError>;
    /// Shallow-merges `patch` into an existing record.
    async fn update(
        &self,
        entity: &EntityName,
        id: &RecordId,
        patch: Value,
    ) -> Result<Value, DataError> {
        self.update_where(entity, id, patch, &[]).await
    }
    /// Like `update`, only if the stored record still satisfies every condition, checked and
    /// written atomically; otherwise `Conflict`. This is how a handler acts on what it read.
    async fn update_where(
        &self,
        entity: &EntityName,
        id: &RecordId,
        patch: Value,
        expect: &[Condition],
    ) -> Result<Value, DataError>;
    async fn delete(&self, entity: &EntityName, id: &RecordId) -> Result<bool, DataError> {
        self.delete_where(entity, id, &[]).await
    }
    /// Deletes only if the stored record satisfies every condition (atomically); a record
    /// that no longer matches is a `Conflict`, a missing one returns `false`.
    async fn delete_where(
        &self,
        entity: &EntityName,
        id: &RecordId,
        expect: &[Condition],
    ) -> Result<bool, DataError>;
    /// One page of the records matching every condition, read through a declared index:
    /// at least one condition must be an exact, range or prefix match on a field the
    /// plugin declared in its manifest's `indexes` (see [`crate::index`]); the first such
    /// condition picks the index, the others filter what it finds. A page may hold fewer than `limit` records and still
    /// have a `next` cursor.
    async fn query_page(
        &self,
        entity: &EntityName,
        filter: &[Condition],
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<Page<Value>, DataError>;
    /// Every record matching `filter`, page by page (see [`DataAdapter::query_page`]).
    async fn query(
        &self,
        entity: &EntityName,
        filter: &[Condition],
    ) -> Result<Vec<Value>, DataError> {
        let mut out = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let page = self
                .query_page(entity, filter, QUERY_PAGE, cursor.as_deref())
                .await?;
            out.extend(page.items);
            match page.next {
                Some(next) => cursor = Some(next),
                None => return Ok(out),
            }
        }
    }
    /// Creates all records or none; any existing id makes the whole batch a conflict.
    async fn batch_create(
        &self,
        entity: &EntityName,
        records: Vec<Value>,
    ) -> Result<Vec<Value>, DataError>;
    /// Applies all patches or none; a missing id fails the batch.
    async fn batch_update(
        &self,
        entity: &EntityName,
        patches: Vec<(RecordId, Value)>,
    ) -> Result<Vec<Value>, DataError>;
    /// A JSON Schema describing the entity's records, as far as the adapter knows it.
    async fn get_schema(&self, entity: &EntityName) -> Result<Value, DataError>;
    async fn list_entities(&self) -> Result<Vec<EntityName>, DataError>;
}

/// A vendor's HTTP API with the instance's credential (the `api` data adapter), confined to
/// its base URL: what a plugin reaches through [`crate::CallContext::api`].
#[async_trait]
pub trait Api: Send + Sync {
    /// Sends one request within the call's budget; an answer is `Ok` whatever its status,
    /// except a 401 the adapter could not cure with a new token or a rotated secret (502).
    /// Fails when no answer came (502/504), the credential cannot be used (422) or the token
    /// endpoint refused it (502).
    async fn send(&self, request: crate::api::ApiRequest)
    -> Result<crate::api::ApiResponse, Error>;
}

/// Builds the data adapter of one call, confined to `(org, plugin)`. One per container.
pub trait DataAdapterFactory: Send + Sync {
    /// `indexes`: what the plugin's manifest declares; every adapter refuses a query no
    /// declared index answers, and the built-in one maintains them.
    fn build(
        &self,
        org: &OrgId,
        plugin: &PluginName,
        spec: &AdapterSpec,
        indexes: &Indexes,
    ) -> Result<Arc<dyn DataAdapter>, Error>;

    /// The vendor API of an `api` spec, confined to `org`; `None` for the record adapters.
    fn api(&self, _org: &OrgId, _spec: &AdapterSpec) -> Result<Option<Arc<dyn Api>>, Error> {
        Ok(None)
    }
}

/// Checks a data adapter config when it is written, not when it is first called: its
/// settings, the upstream it names, and a credential that belongs to `org`, resolves and
/// holds what the adapter needs. `at` is the config's JSON pointer in the written document.
#[async_trait]
pub trait AdapterCheck: Send + Sync {
    async fn check(
        &self,
        org: &OrgId,
        config: &DataAdapterConfig,
        at: &str,
    ) -> Result<AdapterSpec, Error>;
}

/// A secret store failure. Messages name the reference, never a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("secret '{0}' does not exist")]
    NotFound(String),
    #[error("the secret store is unavailable: {0}")]
    Unavailable(String),
    #[error("{0}")]
    Invalid(String),
}

/// Where secret values live: Secrets Manager, or the embedded store for `dev`.
#[async_trait]
pub trait SecretStore: Send + Sync {
    async fn fetch(&self, reference: &CredentialRef) -> Result<SecretValue, SecretError>;
    /// Creates or replaces the secret `name`; returns the reference to keep in config.
    async fn put(&self, name: &str, value: &SecretValue) -> Result<CredentialRef, SecretError>;
    /// Writes a new value of the existing secret `reference` (a rotated OAuth2 refresh
    /// token): one write, no create.
    async fn update(
        &self,
        reference: &CredentialRef,
        value: &SecretValue,
    ) -> Result<(), SecretError> {
        self.put(reference.name(), value).await.map(|_| ())
    }
}

/// Where scheduled calls wait for their time (see [`crate::schedule`]): EventBridge
/// Scheduler on AWS, the data table on the embedded store.
#[async_trait]
pub trait Scheduler: Send + Sync {
    /// Schedules `call`; a name already scheduled is `409 conflict`.
    async fn create(&self, call: &crate::schedule::DeferredCall) -> Result<(), Error>;
    /// Deletes the schedule `name`; whether there was one.
    async fn delete(&self, name: &str) -> Result<bool, Error>;
}

/// Runs a tool call on the plugin's own function and returns its answer. Fails only when
/// the function could not be reached or answered out of contract; a refused call is an
/// `Ok` output with its 4xx status.
#[async_trait]
pub trait ToolInvoker: Send + Sync {
    async fn invoke(
        &self,
        call: &crate::pipeline::ToolCallEvent,
    ) -> Result<crate::pipeline::CallOutput, Error>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_conflict_prints_no_record() {
        let e = StoreError::Conflict {
            key: "ORG#acme#booking#patients/7".into(),
            current: Some(3),
            found: Some(Box::new(serde_json::json!({"LName": "PRIVATE-LNAME-5521"}))),
        };
        let printed = format!("{e:?} {e}");
        assert!(!printed.contains("PRIVATE-LNAME-5521"), "{printed}");
        assert!(printed.contains("current: Some(3)"), "{printed}");
    }
}
