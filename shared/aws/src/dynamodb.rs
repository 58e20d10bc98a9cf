//! [`ItemStore`] over one DynamoDB table (`PK`/`SK` strings, `version` and `counter` numbers,
//! the JSON body as a native DynamoDB value in `data`).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
pub use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::delete_item::DeleteItemError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, Delete, KeysAndAttributes, ReturnValue,
    ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update,
};
use aws_smithy_types::retry::RetryConfig;
use aws_smithy_types::timeout::TimeoutConfig;
use aws_types::SdkConfig;
use serde_json::{Map, Number, Value};

use switchboard::ports::{
    Item, ItemStore, Key, MAX_TRANSACT_ITEMS, Page, Precondition, SkRange, StoreError, Write,
};

const PK: &str = "PK";
const SK: &str = "SK";
const VERSION: &str = "version";
const DATA: &str = "data";
const COUNTER: &str = "counter";
/// The attribute the tables' TTL is enabled on (template.yaml), in epoch seconds.
const EXPIRES_AT: &str = "expires_at";

/// DynamoDB's BatchGetItem limit.
const MAX_BATCH_GET: usize = 100;
const BATCH_GET_ATTEMPTS: u32 = 8;
/// Attempts of a transaction cancelled only by other transactions (TransactionConflict).
const TRANSACT_ATTEMPTS: u32 = 4;
const BATCH_GET_BASE_DELAY_MS: u64 = 20;
const BATCH_GET_MAX_DELAY_MS: u64 = 1_000;

type AttrMap = HashMap<String, AttributeValue>;

/// A DynamoDB client from a loaded SDK config ([`crate::sdk_config`]), with bounded
/// timeouts and retries replacing the config's own. Build once per container and share it.
pub fn client_from_config(sdk: &SdkConfig) -> Client {
    let conf = aws_sdk_dynamodb::config::Builder::from(sdk)
        .timeout_config(timeouts())
        .retry_config(retries())
        .build();
    Client::from_conf(conf)
}

// An unreachable endpoint must surface as Unavailable within seconds, not hang the Lambda.
fn timeouts() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(1))
        .operation_attempt_timeout(Duration::from_secs(2))
        .operation_timeout(Duration::from_secs(5))
        .build()
}

// The SDK's default first backoff is up to 1 s: after a 2 s attempt timed out, a retry of
// a call's bookkeeping (3 s each) would often miss its budget. DynamoDB answers in
// milliseconds, so its retries may come sooner.
fn retries() -> RetryConfig {
    RetryConfig::standard()
        .with_max_attempts(3)
        .with_initial_backoff(Duration::from_millis(100))
}

/// One DynamoDB table of the single-table model.
#[derive(Clone, Debug)]
pub struct DynamoStore {
    client: Client,
    table: String,
    /// Items Query read (its ScannedCount), for measurements.
    scanned: Arc<AtomicU64>,
}

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
            scanned: Arc::default(),
        }
    }

    /// How many items this store's queries have read so far (DynamoDB's `ScannedCount`,
    /// what a query is billed by), across clones.
    pub fn items_scanned(&self) -> u64 {
        self.scanned.load(Ordering::Relaxed)
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// An `UpdateItem` that writes a whole item; returns its new version.
    async fn update(&self, key: &Key, up: PutUpdate, pre: Precondition) -> Result<u64, StoreError> {
        // With NotExists/Version the new version is known; only None/Exists need it back.
        let known = match pre {
            Precondition::NotExists => Some(1),
            Precondition::Version(v) => Some(
                v.checked_add(1)
                    .ok_or_else(|| StoreError::Internal(format!("item {key}: version overflow")))?,
            ),
            Precondition::None | Precondition::Exists => None,
        };
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key_attrs(key)))
            .update_expression(up.expression)
            .set_condition_expression(up.condition.map(str::to_owned))
            .set_expression_attribute_names(Some(up.names))
            .set_expression_attribute_values(Some(up.values))
            .return_values(if known.is_some() {
                ReturnValue::None
            } else {
                ReturnValue::UpdatedNew
            })
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await
            .map_err(|e| match e.as_service_error() {
                Some(UpdateItemError::ConditionalCheckFailedException(c)) => {
                    conflict(key, c.item())
                }
                _ => self.error("UpdateItem", &e),
            })?;
        match known {
            Some(v) => Ok(v),
            None => number_attr(&out.attributes.unwrap_or_default(), VERSION, key),
        }
    }

    /// A `PutItem` of the whole item at the version it will have. Same outcome as
    /// [`Self::update`] where no other attribute of the item is to be kept: an item that
    /// does not exist yet, or an expiring one (always written whole). No update expression
    /// to evaluate, which moto, the local stand-in every test shares, answers several
    /// times faster.
    async fn replace(
        &self,
        key: &Key,
        data: &Value,
        pre: Precondition,
        version: u64,
        expires_at: Option<u64>,
    ) -> Result<u64, StoreError> {
        let (expression, names, values) = request_condition(pre);
        let mut item = key_attrs(key);
        item.insert(DATA.to_owned(), to_attr(data));
        item.insert(VERSION.to_owned(), n(version));
        if let Some(at) = expires_at {
            item.insert(EXPIRES_AT.to_owned(), n(at));
        }
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .set_condition_expression(expression)
            .set_expression_attribute_names(names)
            .set_expression_attribute_values(values)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await
            .map_err(|e| match e.as_service_error() {
                Some(PutItemError::ConditionalCheckFailedException(c)) => conflict(key, c.item()),
                _ => self.error("PutItem", &e),
            })?;
        Ok(version)
    }

    /// Maps an SDK failure that is not a condition failure.
    fn error<E>(&self, op: &str, err: &SdkError<E>) -> StoreError
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let table = &self.table;
        let e = match err {
            SdkError::DispatchFailure(_)
            | SdkError::TimeoutError(_)
            | SdkError::ResponseError(_) => StoreError::Unavailable(format!(
                "DynamoDB {op} on table {table}: {}",
                DisplayErrorContext(err)
            )),
            SdkError::ServiceError(s) => {
                let code = s.err().code().unwrap_or("unknown");
                let message = s.err().message().unwrap_or("");
                let status = s.raw().status().as_u16();
                if code == "ResourceNotFoundException" {
                    StoreError::Unavailable(format!(
                        "DynamoDB table {table} does not exist or is not active ({op})"
                    ))
                } else if transient_code(code) || status >= 500 {
                    StoreError::Unavailable(format!(
                        "DynamoDB {op} on table {table}: {code} (HTTP {status}) {message}"
                    ))
                } else {
                    StoreError::Internal(format!(
                        "DynamoDB {op} on table {table}: {code} (HTTP {status}) {message}"
                    ))
                }
            }
            _ => StoreError::Internal(format!(
                "DynamoDB {op} on table {table}: {}",
                DisplayErrorContext(err)
            )),
        };
        tracing::warn!(error = %e, "dynamodb request failed");
        e
    }
}

fn transient_code(code: &str) -> bool {
    matches!(
        code,
        "ThrottlingException"
            | "Throttling"
            | "ProvisionedThroughputExceededException"
            | "RequestLimitExceeded"
            | "InternalServerError"
            | "InternalFailure"
            | "ServiceUnavailable"
            | "ServiceUnavailableException"
            | "TransactionConflictException"
            | "TransactionInProgressException"
            | "ReplicatedWriteConflictException"
    )
}

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_owned())
}

fn n(v: u64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn key_attrs(key: &Key) -> AttrMap {
    HashMap::from([(PK.to_owned(), s(&key.pk)), (SK.to_owned(), s(&key.sk))])
}

/// The pieces of a write request a precondition adds.
struct Condition {
    expression: Option<&'static str>,
    names: Vec<(&'static str, &'static str)>,
    values: Vec<(&'static str, AttributeValue)>,
}

fn condition(pre: Precondition) -> Condition {
    match pre {
        Precondition::None => Condition {
            expression: None,
            names: vec![],
            values: vec![],
        },
        Precondition::NotExists => Condition {
            expression: Some("attribute_not_exists(#pk)"),
            names: vec![("#pk", PK)],
            values: vec![],
        },
        Precondition::Exists => Condition {
            expression: Some("attribute_exists(#pk)"),
            names: vec![("#pk", PK)],
            values: vec![],
        },
        Precondition::Version(v) => Condition {
            expression: Some("#v = :expected"),
            names: vec![("#v", VERSION)],
            values: vec![(":expected", n(v))],
        },
    }
}

/// A precondition as a request's condition expression, attribute names and values (each
/// `None` when empty, which DynamoDB requires).
type RequestCondition = (
    Option<String>,
    Option<HashMap<String, String>>,
    Option<AttrMap>,
);

fn request_condition(pre: Precondition) -> RequestCondition {
    let cond = condition(pre);
    let names: HashMap<String, String> = cond
        .names
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let values: AttrMap = cond
        .values
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
    (
        cond.expression.map(str::to_owned),
        (!names.is_empty()).then_some(names),
        (!values.is_empty()).then_some(values),
    )
}

/// A put as an update: `data` replaced, `version` bumped, the precondition as condition.
struct PutUpdate {
    expression: &'static str,
    condition: Option<&'static str>,
    names: HashMap<String, String>,
    values: AttrMap,
}

fn put_update(data: &Value, pre: Precondition) -> PutUpdate {
    let cond = condition(pre);
    let mut names = HashMap::from([
        ("#d".to_owned(), DATA.to_owned()),
        ("#v".to_owned(), VERSION.to_owned()),
    ]);
    let mut values = HashMap::from([(":d".to_owned(), to_attr(data)), (":one".to_owned(), n(1))]);
    for (k, v) in cond.names {
        names.insert(k.to_owned(), v.to_owned());
    }
    for (k, v) in cond.values {
        values.insert(k.to_owned(), v);
    }
    PutUpdate {
        expression: "SET #d = :d ADD #v :one",
        condition: cond.expression,
        names,
        values,
    }
}

/// A failed condition, with the item as DynamoDB found it (the store asks for it back).
fn conflict(key: &Key, found: Option<&AttrMap>) -> StoreError {
    StoreError::Conflict {
        key: key.to_string(),
        current: found.and_then(version_of),
        found: found.and_then(data_of),
    }
}

/// An item's data attribute as JSON, if it has a readable one.
fn data_of(attrs: &AttrMap) -> Option<Box<Value>> {
    attrs
        .get(DATA)
        .and_then(|v| from_attr(v.clone()).ok())
        .map(Box::new)
}

fn version_of(attrs: &AttrMap) -> Option<u64> {
    match attrs.get(VERSION) {
        Some(AttributeValue::N(v)) => v.parse().ok(),
        _ => None,
    }
}

fn number_attr(attrs: &AttrMap, name: &str, key: &Key) -> Result<u64, StoreError> {
    match attrs.get(name) {
        Some(AttributeValue::N(v)) => v
            .parse()
            .map_err(|_| StoreError::Internal(format!("item {key}: invalid '{name}' attribute"))),
        Some(_) => Err(StoreError::Internal(format!(
            "item {key}: '{name}' attribute is not a number"
        ))),
        None => Err(StoreError::Internal(format!(
            "item {key}: '{name}' attribute is missing"
        ))),
    }
}

fn string_attr(attrs: &AttrMap, name: &str) -> Result<String, StoreError> {
    match attrs.get(name) {
        Some(AttributeValue::S(v)) => Ok(v.clone()),
        _ => Err(StoreError::Internal(format!(
            "item without a string '{name}' attribute"
        ))),
    }
}

fn item_from(mut attrs: AttrMap) -> Result<Item, StoreError> {
    let key = Key::new(string_attr(&attrs, PK)?, string_attr(&attrs, SK)?);
    let version = number_attr(&attrs, VERSION, &key)?;
    let data = match attrs.remove(DATA) {
        Some(d) => from_attr(d).map_err(|e| StoreError::Internal(format!("item {key}: {e}")))?,
        None => Value::Null,
    };
    Ok(Item { key, data, version })
}

/// A JSON value as a native DynamoDB value.
pub fn to_attr(v: &Value) -> AttributeValue {
    match v {
        Value::Null => AttributeValue::Null(true),
        Value::Bool(b) => AttributeValue::Bool(*b),
        Value::Number(x) => AttributeValue::N(x.to_string()),
        Value::String(x) => AttributeValue::S(x.clone()),
        Value::Array(xs) => AttributeValue::L(xs.iter().map(to_attr).collect()),
        Value::Object(m) => {
            AttributeValue::M(m.iter().map(|(k, v)| (k.clone(), to_attr(v))).collect())
        }
    }
}

/// A DynamoDB value as JSON; string and number sets become arrays, binary is refused.
pub fn from_attr(v: AttributeValue) -> Result<Value, StoreError> {
    Ok(match v {
        AttributeValue::Null(_) => Value::Null,
        AttributeValue::Bool(b) => Value::Bool(b),
        AttributeValue::N(x) => Value::Number(parse_number(&x)?),
        AttributeValue::S(x) => Value::String(x),
        AttributeValue::L(xs) => {
            Value::Array(xs.into_iter().map(from_attr).collect::<Result<_, _>>()?)
        }
        AttributeValue::M(m) => Value::Object(
            m.into_iter()
                .map(|(k, v)| Ok((k, from_attr(v)?)))
                .collect::<Result<Map<_, _>, StoreError>>()?,
        ),
        AttributeValue::Ss(xs) => Value::Array(xs.into_iter().map(Value::String).collect()),
        AttributeValue::Ns(xs) => Value::Array(
            xs.iter()
                .map(|x| parse_number(x).map(Value::Number))
                .collect::<Result<_, _>>()?,
        ),
        _ => {
            return Err(StoreError::Internal(
                "unsupported DynamoDB attribute type (binary or unknown)".to_owned(),
            ));
        }
    })
}

fn parse_number(x: &str) -> Result<Number, StoreError> {
    if let Ok(i) = x.parse::<i64>() {
        return Ok(i.into());
    }
    if let Ok(u) = x.parse::<u64>() {
        return Ok(u.into());
    }
    x.parse::<f64>()
        .ok()
        .and_then(Number::from_f64)
        .ok_or_else(|| StoreError::Internal("invalid DynamoDB number".to_owned()))
}

/// Cheap jitter: nanoseconds of the clock; good enough to spread retries.
fn jitter(max: u64) -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::from(d.subsec_nanos()))
        .unwrap_or(0);
    if max == 0 { 0 } else { nanos % max }
}

fn backoff(attempt: u32) -> Duration {
    let base = BATCH_GET_BASE_DELAY_MS
        .saturating_mul(1u64 << attempt.min(16))
        .min(BATCH_GET_MAX_DELAY_MS);
    Duration::from_millis(base / 2 + jitter(base / 2 + 1))
}

#[async_trait]
impl ItemStore for DynamoStore {
    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key_attrs(key)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| self.error("GetItem", &e))?;
        out.item.map(item_from).transpose()
    }

    async fn put(&self, key: &Key, data: &Value, pre: Precondition) -> Result<u64, StoreError> {
        if pre == Precondition::NotExists {
            return self.replace(key, data, pre, 1, None).await;
        }
        self.update(key, put_update(data, pre), pre).await
    }

    async fn put_expiring(
        &self,
        key: &Key,
        data: &Value,
        pre: Precondition,
        expires_at: u64,
    ) -> Result<u64, StoreError> {
        let version = match pre {
            Precondition::NotExists => Some(1),
            Precondition::Version(v) => v.checked_add(1),
            Precondition::None | Precondition::Exists => None,
        };
        if let Some(version) = version {
            return self
                .replace(key, data, pre, version, Some(expires_at))
                .await;
        }
        // The table's TTL reads a top-level number attribute.
        let mut up = put_update(data, pre);
        up.expression = "SET #d = :d, #x = :x ADD #v :one";
        up.names.insert("#x".to_owned(), EXPIRES_AT.to_owned());
        up.values.insert(":x".to_owned(), n(expires_at));
        self.update(key, up, pre).await
    }

    async fn delete(&self, key: &Key, pre: Precondition) -> Result<bool, StoreError> {
        let (expression, names, values) = request_condition(pre);
        let out = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key_attrs(key)))
            .set_condition_expression(expression)
            .set_expression_attribute_names(names)
            .set_expression_attribute_values(values)
            .return_values(ReturnValue::AllOld)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await
            .map_err(|e| match e.as_service_error() {
                Some(DeleteItemError::ConditionalCheckFailedException(c)) => {
                    conflict(key, c.item())
                }
                _ => self.error("DeleteItem", &e),
            })?;
        Ok(out.attributes.is_some_and(|a| !a.is_empty()))
    }

    async fn query_range(
        &self,
        pk: &str,
        range: &SkRange,
        after: Option<&str>,
        limit: Option<usize>,
    ) -> Result<Page<Item>, StoreError> {
        // DynamoDB rejects Limit 0.
        if limit == Some(0) {
            return Ok(Page {
                items: vec![],
                next: None,
            });
        }
        let request = self
            .client
            .query()
            .table_name(&self.table)
            .expression_attribute_names("#pk", PK)
            .expression_attribute_values(":pk", s(pk));
        let request = match range {
            SkRange::All => request.key_condition_expression("#pk = :pk"),
            SkRange::Between(lo, hi) => request
                .key_condition_expression("#pk = :pk AND #sk BETWEEN :lo AND :hi")
                .expression_attribute_names("#sk", SK)
                .expression_attribute_values(":lo", s(lo))
                .expression_attribute_values(":hi", s(hi)),
            SkRange::Prefix(p) => request
                .key_condition_expression("#pk = :pk AND begins_with(#sk, :p)")
                .expression_attribute_names("#sk", SK)
                .expression_attribute_values(":p", s(p)),
        };
        let out = request
            .scan_index_forward(true)
            .consistent_read(true)
            .set_limit(limit.map(|l| i32::try_from(l).unwrap_or(i32::MAX)))
            .set_exclusive_start_key(after.map(|a| key_attrs(&Key::new(pk, a))))
            .send()
            .await
            .map_err(|e| self.error("Query", &e))?;
        self.scanned.fetch_add(
            u64::try_from(out.scanned_count).unwrap_or(0),
            Ordering::Relaxed,
        );
        let items = out
            .items
            .unwrap_or_default()
            .into_iter()
            .map(item_from)
            .collect::<Result<Vec<_>, _>>()?;
        let next = match out.last_evaluated_key {
            Some(k) if !k.is_empty() => Some(string_attr(&k, SK)?),
            _ => None,
        };
        Ok(Page { items, next })
    }

    async fn batch_get(&self, keys: &[Key]) -> Result<Vec<Item>, StoreError> {
        let mut seen = HashSet::with_capacity(keys.len());
        let unique: Vec<&Key> = keys.iter().filter(|k| seen.insert(*k)).collect();
        let mut found = Vec::with_capacity(unique.len());
        for chunk in unique.chunks(MAX_BATCH_GET) {
            let mut pending: Vec<AttrMap> = chunk.iter().map(|k| key_attrs(k)).collect();
            let mut attempt = 0;
            while !pending.is_empty() {
                if attempt == BATCH_GET_ATTEMPTS {
                    return Err(StoreError::Unavailable(format!(
                        "DynamoDB BatchGetItem on table {}: {} keys still unprocessed after {attempt} attempts",
                        self.table,
                        pending.len()
                    )));
                }
                if attempt > 0 {
                    tokio::time::sleep(backoff(attempt - 1)).await;
                }
                attempt += 1;
                let request = KeysAndAttributes::builder()
                    .set_keys(Some(std::mem::take(&mut pending)))
                    .consistent_read(true)
                    .build()
                    .map_err(|e| StoreError::Internal(format!("BatchGetItem request: {e}")))?;
                let out = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, request)
                    .send()
                    .await
                    .map_err(|e| self.error("BatchGetItem", &e))?;
                if let Some(mut responses) = out.responses
                    && let Some(items) = responses.remove(&self.table)
                {
                    for attrs in items {
                        found.push(item_from(attrs)?);
                    }
                }
                if let Some(mut unprocessed) = out.unprocessed_keys
                    && let Some(rest) = unprocessed.remove(&self.table)
                {
                    pending = rest.keys;
                }
            }
        }
        Ok(found)
    }

    async fn transact_write(&self, writes: &[Write<'_>]) -> Result<(), StoreError> {
        if writes.is_empty() {
            return Ok(());
        }
        if writes.len() > MAX_TRANSACT_ITEMS {
            return Err(StoreError::Internal(format!(
                "a transaction holds at most {MAX_TRANSACT_ITEMS} items, not {}",
                writes.len()
            )));
        }
        let mut seen = HashSet::with_capacity(writes.len());
        if let Some(dup) = writes.iter().find(|w| !seen.insert(w.key())) {
            return Err(StoreError::Internal(format!(
                "a transaction names item {} twice",
                dup.key()
            )));
        }
        let request = |e: aws_sdk_dynamodb::error::BuildError| {
            StoreError::Internal(format!("TransactWriteItems request: {e}"))
        };
        let mut items = Vec::with_capacity(writes.len());
        for write in writes {
            let item = match *write {
                Write::Put { key, data, pre } => {
                    let up = put_update(data, pre);
                    let op = Update::builder()
                        .table_name(&self.table)
                        .set_key(Some(key_attrs(key)))
                        .update_expression(up.expression)
                        .set_condition_expression(up.condition.map(str::to_owned))
                        .set_expression_attribute_names(Some(up.names))
                        .set_expression_attribute_values(Some(up.values))
                        .build()
                        .map_err(request)?;
                    TransactWriteItem::builder().update(op).build()
                }
                Write::Delete { key, pre } => {
                    let (expression, names, values) = request_condition(pre);
                    let op = Delete::builder()
                        .table_name(&self.table)
                        .set_key(Some(key_attrs(key)))
                        .set_condition_expression(expression)
                        .set_expression_attribute_names(names)
                        .set_expression_attribute_values(values)
                        .build()
                        .map_err(request)?;
                    TransactWriteItem::builder().delete(op).build()
                }
                Write::Check { key, pre } => {
                    let (expression, names, values) = request_condition(pre);
                    let op = ConditionCheck::builder()
                        .table_name(&self.table)
                        .set_key(Some(key_attrs(key)))
                        // A check must have a condition: "no condition" is one that holds.
                        .condition_expression(expression.unwrap_or_else(|| {
                            format!("attribute_exists({PK}) OR attribute_not_exists({PK})")
                        }))
                        .set_expression_attribute_names(names)
                        .set_expression_attribute_values(values)
                        .build()
                        .map_err(request)?;
                    TransactWriteItem::builder().condition_check(op).build()
                }
            };
            items.push(item);
        }
        // DynamoDB cancels transactions that touch an item another one is writing
        // (TransactionConflict): with several writers, possibly all of them. That is no
        // verdict on the conditions, so retry; only a failed condition is a conflict.
        let mut attempt = 0;
        loop {
            let sent = self
                .client
                .transact_write_items()
                .set_transact_items(Some(items.clone()))
                .send()
                .await;
            let Err(e) = sent else { return Ok(()) };
            let Some(TransactWriteItemsError::TransactionCanceledException(t)) =
                e.as_service_error()
            else {
                return Err(self.error("TransactWriteItems", &e));
            };
            let reasons = t.cancellation_reasons();
            let code_at = |i: usize| reasons.get(i).and_then(|r| r.code()).unwrap_or("None");
            let first_with = |code: &str| {
                writes
                    .iter()
                    .enumerate()
                    .find(|(i, _)| code_at(*i) == code)
                    .map(|(_, w)| w.key())
            };
            if let Some(key) = first_with("ConditionalCheckFailed") {
                return Err(StoreError::Conflict {
                    key: key.to_string(),
                    current: None,
                    found: None,
                });
            }
            if let Some(key) = first_with("TransactionConflict") {
                if attempt + 1 < TRANSACT_ATTEMPTS {
                    tokio::time::sleep(backoff(attempt)).await;
                    attempt += 1;
                    continue;
                }
                // Still contended after the retries: report it as the race it is.
                return Err(StoreError::Conflict {
                    key: key.to_string(),
                    current: None,
                    found: None,
                });
            }
            let codes: Vec<&str> = (0..writes.len())
                .map(code_at)
                .filter(|c| *c != "None")
                .collect();
            let transient = codes.iter().any(|c| {
                matches!(
                    *c,
                    "ProvisionedThroughputExceeded" | "ThrottlingError" | "RequestLimitExceeded"
                )
            });
            let msg = format!(
                "DynamoDB TransactWriteItems on table {} cancelled: {}",
                self.table,
                codes.join(", ")
            );
            tracing::warn!(error = %msg, "dynamodb transaction cancelled");
            return Err(if transient {
                StoreError::Unavailable(msg)
            } else {
                StoreError::Internal(msg)
            });
        }
    }

    async fn increment(&self, key: &Key) -> Result<u64, StoreError> {
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key_attrs(key)))
            .update_expression("ADD #c :one, #v :one")
            .expression_attribute_names("#c", COUNTER)
            .expression_attribute_names("#v", VERSION)
            .expression_attribute_values(":one", n(1))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await
            .map_err(|e| self.error("UpdateItem", &e))?;
        number_attr(&out.attributes.unwrap_or_default(), COUNTER, key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_round_trips_through_attribute_values() {
        let v = json!({
            "s": "text",
            "empty": "",
            "i": -42,
            "u": u64::MAX,
            "f": 1.5,
            "b": true,
            "n": null,
            "l": [1, "two", [3], {"four": 4}],
            "m": {"nested": {"deep": [false, null]}},
            "el": [],
            "em": {}
        });
        let attr = to_attr(&v);
        assert_eq!(from_attr(attr).unwrap(), v);
    }

    #[test]
    fn values_map_to_native_types() {
        assert_eq!(to_attr(&json!(null)), AttributeValue::Null(true));
        assert_eq!(to_attr(&json!(7)), AttributeValue::N("7".into()));
        assert_eq!(to_attr(&json!("x")), AttributeValue::S("x".into()));
        assert_eq!(to_attr(&json!(false)), AttributeValue::Bool(false));
        assert!(matches!(to_attr(&json!([1])), AttributeValue::L(_)));
        assert!(matches!(to_attr(&json!({"a": 1})), AttributeValue::M(_)));
    }

    #[test]
    fn numbers_parse_as_integer_then_float() {
        assert_eq!(
            from_attr(AttributeValue::N("12".into())).unwrap(),
            json!(12)
        );
        assert_eq!(
            from_attr(AttributeValue::N("18446744073709551615".into())).unwrap(),
            json!(u64::MAX)
        );
        assert_eq!(
            from_attr(AttributeValue::N("0.25".into())).unwrap(),
            json!(0.25)
        );
        assert_eq!(
            from_attr(AttributeValue::N("1E3".into())).unwrap(),
            json!(1000.0)
        );
        assert!(matches!(
            from_attr(AttributeValue::N("nope".into())),
            Err(StoreError::Internal(_))
        ));
        assert!(matches!(
            from_attr(AttributeValue::N("inf".into())),
            Err(StoreError::Internal(_))
        ));
    }

    #[test]
    fn sets_become_arrays_and_binary_is_refused() {
        assert_eq!(
            from_attr(AttributeValue::Ss(vec!["a".into()])).unwrap(),
            json!(["a"])
        );
        assert_eq!(
            from_attr(AttributeValue::Ns(vec!["1".into()])).unwrap(),
            json!([1])
        );
        assert!(
            from_attr(AttributeValue::B(aws_sdk_dynamodb::primitives::Blob::new(
                vec![1]
            )))
            .is_err()
        );
    }

    #[test]
    fn items_need_keys_and_version() {
        let mut attrs = key_attrs(&Key::new("P", "S"));
        assert!(matches!(
            item_from(attrs.clone()),
            Err(StoreError::Internal(_))
        ));
        attrs.insert(VERSION.into(), n(3));
        let item = item_from(attrs.clone()).unwrap();
        assert_eq!(item.data, Value::Null);
        assert_eq!(item.version, 3);
        attrs.insert(DATA.into(), to_attr(&json!({"a": 1})));
        assert_eq!(item_from(attrs).unwrap().data, json!({"a": 1}));
    }

    #[test]
    fn backoff_is_bounded() {
        for attempt in 0..BATCH_GET_ATTEMPTS {
            assert!(backoff(attempt) <= Duration::from_millis(BATCH_GET_MAX_DELAY_MS));
        }
        assert!(backoff(0) >= Duration::from_millis(BATCH_GET_BASE_DELAY_MS / 2));
    }
}
