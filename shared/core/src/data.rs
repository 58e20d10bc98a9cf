//! The built-in data adapter ("dynamodb" in instance config): plugin records in the data
//! table, keyed `ORG#<org>#<plugin>#<entity>` / `<id>`. The same code runs over DynamoDB on
//! Lambda and over the embedded store locally.

use std::cmp::Ordering;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde_json::{Map, Value, json};

use crate::error::Error;
use crate::ids::{EntityName, OrgId, PluginName, RecordId};
use crate::ports::{
    Condition, DataAdapter, DataAdapterFactory, DataError, Item, ItemStore, Key,
    MAX_TRANSACT_ITEMS, Op, Page, Precondition, StoreError, query_all,
};
use crate::spec::AdapterSpec;

/// The tenant and plugin every key of an adapter is confined to.
#[derive(Debug, Clone)]
struct Scope {
    prefix: String,
}

impl Scope {
    fn new(org: &OrgId, plugin: &PluginName) -> Self {
        Self {
            prefix: format!("ORG#{org}#{plugin}#"),
        }
    }
    fn partition(&self, entity: &EntityName) -> String {
        format!("{}{entity}", self.prefix)
    }
    // '~' is outside the entity-name alphabet, so these never collide with an entity.
    fn sequences(&self) -> String {
        format!("{}~seq", self.prefix)
    }
    fn entities(&self) -> String {
        format!("{}~entities", self.prefix)
    }
}

/// Factory for the built-in adapter over one data table.
#[derive(Clone)]
pub struct BuiltinData {
    table: Arc<dyn ItemStore>,
    /// Entity partitions already recorded in the entity index by this container.
    known: Arc<Mutex<HashSet<String>>>,
}

impl BuiltinData {
    pub fn new(table: Arc<dyn ItemStore>) -> Self {
        Self {
            table,
            known: Arc::default(),
        }
    }

    /// The table under it, which also holds the platform's idempotency records.
    pub fn table(&self) -> Arc<dyn ItemStore> {
        self.table.clone()
    }

    /// An adapter confined to one organization and plugin.
    pub fn scoped(&self, org: &OrgId, plugin: &PluginName) -> TableData {
        TableData {
            table: self.table.clone(),
            scope: Scope::new(org, plugin),
            known: self.known.clone(),
        }
    }
}

impl DataAdapterFactory for BuiltinData {
    fn build(
        &self,
        org: &OrgId,
        plugin: &PluginName,
        spec: &AdapterSpec,
    ) -> Result<Arc<dyn DataAdapter>, Error> {
        match spec {
            AdapterSpec::Builtin => Ok(Arc::new(self.scoped(org, plugin))),
            other => Err(Error::Validation {
                code: "invalid_config",
                message: format!(
                    "the {plugin} instance uses data adapter '{}', which this build does not provide; use 'dynamodb'",
                    other.kind()
                ),
                details: vec![crate::error::Detail::new(
                    "/data_adapter/type",
                    "unsupported",
                )],
            }),
        }
    }
}

pub struct TableData {
    table: Arc<dyn ItemStore>,
    scope: Scope,
    known: Arc<Mutex<HashSet<String>>>,
}

pub fn as_object(entity: &EntityName, v: Value) -> Result<Map<String, Value>, DataError> {
    match v {
        Value::Object(m) => Ok(m),
        other => Err(DataError::Invalid(format!(
            "a {entity} record must be a JSON object, not {}",
            type_name(&other)
        ))),
    }
}

/// `record` shallow-merged with `patch`; the id is never changed.
pub fn merged(mut record: Map<String, Value>, patch: Map<String, Value>) -> Value {
    for (k, v) in patch {
        if k != "id" {
            record.insert(k, v);
        }
    }
    Value::Object(record)
}

pub fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn record_id(
    entity: &EntityName,
    record: &Map<String, Value>,
) -> Result<Option<RecordId>, DataError> {
    match record.get("id") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => RecordId::parse(s.clone())
            .map(Some)
            .map_err(|e| DataError::Invalid(e.to_string())),
        Some(Value::Number(n)) => RecordId::parse(n.to_string())
            .map(Some)
            .map_err(|e| DataError::Invalid(e.to_string())),
        Some(other) => Err(DataError::Invalid(format!(
            "a {entity} id must be a string, not {}",
            type_name(other)
        ))),
    }
}

fn conflict(entity: &EntityName, id: &str, e: StoreError) -> DataError {
    match e {
        StoreError::Conflict { .. } => DataError::Conflict {
            entity: entity.to_string(),
            id: id.to_owned(),
        },
        other => DataError::Store(other),
    }
}

impl TableData {
    fn key(&self, entity: &EntityName, id: &RecordId) -> Key {
        Key::new(self.scope.partition(entity), id.as_str())
    }

    /// The stored item, if it exists and satisfies `expect`.
    async fn current(
        &self,
        entity: &EntityName,
        id: &RecordId,
        key: &Key,
        expect: &[Condition],
    ) -> Result<Item, DataError> {
        let Some(current) = self.table.get(key).await? else {
            return Err(DataError::NotFound {
                entity: entity.to_string(),
                id: id.to_string(),
            });
        };
        if expect.iter().all(|c| matches(&current.data, c)) {
            Ok(current)
        } else {
            Err(DataError::Conflict {
                entity: entity.to_string(),
                id: id.to_string(),
            })
        }
    }

    async fn note_entity(&self, entity: &EntityName) -> Result<(), DataError> {
        let pk = self.scope.partition(entity);
        if self.known.lock().map(|k| k.contains(&pk)).unwrap_or(false) {
            return Ok(());
        }
        self.table
            .put(
                &Key::new(self.scope.entities(), entity.as_str()),
                &json!({"entity": entity}),
                Precondition::None,
            )
            .await?;
        if let Ok(mut k) = self.known.lock() {
            k.insert(pk);
        }
        Ok(())
    }

    async fn prepare(
        &self,
        entity: &EntityName,
        record: Value,
    ) -> Result<(RecordId, Map<String, Value>), DataError> {
        let mut record = as_object(entity, record)?;
        let id = match record_id(entity, &record)? {
            Some(id) => id,
            None => {
                let n = self
                    .table
                    .increment(&Key::new(self.scope.sequences(), entity.as_str()))
                    .await?;
                RecordId::parse(n.to_string()).map_err(|e| DataError::Invalid(e.to_string()))?
            }
        };
        record.insert("id".into(), Value::String(id.as_str().to_owned()));
        Ok((id, record))
    }
}

#[async_trait]
impl DataAdapter for TableData {
    async fn list(
        &self,
        entity: &EntityName,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<Page<Value>, DataError> {
        if cursor.is_some_and(|c| RecordId::parse(c).is_err()) {
            return Err(DataError::Invalid(
                "the cursor is not one this API returned; start again without it".into(),
            ));
        }
        let page = self
            .table
            .query(
                &self.scope.partition(entity),
                cursor,
                Some(limit.clamp(1, 1000)),
            )
            .await?;
        Ok(Page {
            items: page.items.into_iter().map(|i| i.data).collect(),
            next: page.next,
        })
    }

    async fn get(&self, entity: &EntityName, id: &RecordId) -> Result<Option<Value>, DataError> {
        Ok(self.table.get(&self.key(entity, id)).await?.map(|i| i.data))
    }

    async fn create(&self, entity: &EntityName, record: Value) -> Result<Value, DataError> {
        let (id, record) = self.prepare(entity, record).await?;
        let data = Value::Object(record);
        self.table
            .put(&self.key(entity, &id), &data, Precondition::NotExists)
            .await
            .map_err(|e| conflict(entity, id.as_str(), e))?;
        self.note_entity(entity).await?;
        Ok(data)
    }

    async fn update_where(
        &self,
        entity: &EntityName,
        id: &RecordId,
        patch: Value,
        expect: &[Condition],
    ) -> Result<Value, DataError> {
        let patch = as_object(entity, patch)?;
        let key = self.key(entity, id);
        let current = self.current(entity, id, &key, expect).await?;
        let data = merged(as_object(entity, current.data)?, patch);
        // The version check makes "read, test the conditions, write" atomic.
        self.table
            .put(&key, &data, Precondition::Version(current.version))
            .await
            .map_err(|e| conflict(entity, id.as_str(), e))?;
        Ok(data)
    }

    async fn delete_where(
        &self,
        entity: &EntityName,
        id: &RecordId,
        expect: &[Condition],
    ) -> Result<bool, DataError> {
        let key = self.key(entity, id);
        if expect.is_empty() {
            return Ok(self.table.delete(&key, Precondition::None).await?);
        }
        let current = match self.current(entity, id, &key, expect).await {
            Ok(c) => c,
            Err(DataError::NotFound { .. }) => return Ok(false),
            Err(e) => return Err(e),
        };
        self.table
            .delete(&key, Precondition::Version(current.version))
            .await
            .map_err(|e| conflict(entity, id.as_str(), e))
    }

    async fn query(
        &self,
        entity: &EntityName,
        filter: &[Condition],
    ) -> Result<Vec<Value>, DataError> {
        let items = query_all(self.table.as_ref(), &self.scope.partition(entity)).await?;
        Ok(items
            .into_iter()
            .map(|i| i.data)
            .filter(|r| filter.iter().all(|c| matches(r, c)))
            .collect())
    }

    async fn batch_create(
        &self,
        entity: &EntityName,
        records: Vec<Value>,
    ) -> Result<Vec<Value>, DataError> {
        crate::ports::check_batch_len(records.len(), MAX_TRANSACT_ITEMS)?;
        let mut puts = Vec::with_capacity(records.len());
        let mut out = Vec::with_capacity(records.len());
        let mut ids = HashSet::with_capacity(records.len());
        for r in records {
            let (id, record) = self.prepare(entity, r).await?;
            if !ids.insert(id.clone()) {
                return Err(DataError::Invalid(format!(
                    "the batch names {entity} '{id}' twice"
                )));
            }
            let data = Value::Object(record);
            puts.push((self.key(entity, &id), data.clone(), Precondition::NotExists));
            out.push(data);
        }
        if puts.is_empty() {
            return Ok(out);
        }
        self.table.transact_put(&puts).await.map_err(|e| {
            let id = match &e {
                StoreError::Conflict { key, .. } => {
                    key.rsplit(" / ").next().unwrap_or("").to_owned()
                }
                _ => String::new(),
            };
            conflict(entity, &id, e)
        })?;
        self.note_entity(entity).await?;
        Ok(out)
    }

    async fn batch_update(
        &self,
        entity: &EntityName,
        patches: Vec<(RecordId, Value)>,
    ) -> Result<Vec<Value>, DataError> {
        crate::ports::check_batch_len(patches.len(), MAX_TRANSACT_ITEMS)?;
        let mut ids = HashSet::with_capacity(patches.len());
        if let Some((id, _)) = patches.iter().find(|(id, _)| !ids.insert(id)) {
            return Err(DataError::Invalid(format!(
                "the batch names {entity} '{id}' twice"
            )));
        }
        let keys: Vec<Key> = patches.iter().map(|(id, _)| self.key(entity, id)).collect();
        let current = self.table.batch_get(&keys).await?;
        let mut puts = Vec::with_capacity(patches.len());
        for ((id, patch), key) in patches.into_iter().zip(keys) {
            let Some(item) = current.iter().find(|i| i.key == key) else {
                return Err(DataError::NotFound {
                    entity: entity.to_string(),
                    id: id.to_string(),
                });
            };
            let data = merged(
                as_object(entity, item.data.clone())?,
                as_object(entity, patch)?,
            );
            puts.push((key, data, Precondition::Version(item.version)));
        }
        self.table
            .transact_put(&puts)
            .await
            .map_err(|e| conflict(entity, "", e))?;
        Ok(puts.into_iter().map(|(_, v, _)| v).collect())
    }

    async fn get_schema(&self, entity: &EntityName) -> Result<Value, DataError> {
        // The built-in store is schemaless: describe the fields seen on the first records.
        let page = self
            .table
            .query(&self.scope.partition(entity), None, Some(50))
            .await?;
        Ok(describe(entity, page.items.into_iter().map(|i| i.data)))
    }

    async fn list_entities(&self) -> Result<Vec<EntityName>, DataError> {
        let items = query_all(self.table.as_ref(), &self.scope.entities()).await?;
        items
            .into_iter()
            .map(|i| EntityName::parse(i.key.sk).map_err(|e| DataError::Invalid(e.to_string())))
            .collect()
    }
}

/// A JSON Schema of the fields seen on `records`, for schemaless stores.
pub fn describe(entity: &EntityName, records: impl IntoIterator<Item = Value>) -> Value {
    let mut props = Map::new();
    for record in records {
        if let Value::Object(rec) = record {
            for (k, v) in rec {
                props
                    .entry(k)
                    .or_insert_with(|| json!({"type": type_name(&v)}));
            }
        }
    }
    json!({"title": entity, "type": "object", "properties": props})
}

/// Whether a record satisfies one condition. Numbers compare numerically, strings
/// lexicographically; a missing field never matches (except `ne`).
pub fn matches(record: &Value, c: &Condition) -> bool {
    let field = record.get(&c.field);
    let Some(v) = field else {
        return c.op == Op::Ne;
    };
    match c.op {
        Op::Eq => values_eq(v, &c.value),
        Op::Ne => !values_eq(v, &c.value),
        Op::Lt => compare(v, &c.value) == Some(Ordering::Less),
        Op::Lte => matches!(compare(v, &c.value), Some(Ordering::Less | Ordering::Equal)),
        Op::Gt => compare(v, &c.value) == Some(Ordering::Greater),
        Op::Gte => matches!(
            compare(v, &c.value),
            Some(Ordering::Greater | Ordering::Equal)
        ),
        Op::BeginsWith => match (v, &c.value) {
            (Value::String(s), Value::String(p)) => s.starts_with(p.as_str()),
            _ => false,
        },
        Op::Contains => match (v, &c.value) {
            (Value::String(s), Value::String(p)) => s.contains(p.as_str()),
            (Value::Array(a), x) => a.iter().any(|e| values_eq(e, x)),
            _ => false,
        },
    }
}

fn values_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

fn compare(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64()?.partial_cmp(&y.as_f64()?),
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        _ => None,
    }
}
