//! The built-in data adapter ("dynamodb" in instance config): plugin records in the data
//! table, keyed `ORG#<org>#<plugin>#<entity>` / `<id>`, and their index entries beside them
//! (see [`crate::index`]), written in the same transaction. The same code runs over DynamoDB
//! on Lambda and over the embedded store locally.

use std::cmp::Ordering;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde_json::{Map, Value, json};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::error::Error;
use crate::ids::{EntityName, OrgId, PluginName, RecordId};
use crate::index::{IndexField, Indexes, entry_sort_key};
use crate::ports::{
    Condition, DataAdapter, DataAdapterFactory, DataError, Item, ItemStore, Key,
    MAX_TRANSACT_ITEMS, Op, Page, Precondition, StoreError, Write, query_all,
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
    // Field names are letters, digits and '_', so "<entity>~<field>" is no entity's.
    fn index(&self, entity: &EntityName, field: &str) -> String {
        format!("{}{entity}~{field}", self.prefix)
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

    /// An adapter confined to one organization and plugin, keeping `indexes`.
    pub fn scoped(&self, org: &OrgId, plugin: &PluginName, indexes: &Indexes) -> TableData {
        TableData {
            table: self.table.clone(),
            scope: Scope::new(org, plugin),
            known: self.known.clone(),
            indexes: indexes.clone(),
        }
    }
}

impl DataAdapterFactory for BuiltinData {
    fn build(
        &self,
        org: &OrgId,
        plugin: &PluginName,
        spec: &AdapterSpec,
        indexes: &Indexes,
    ) -> Result<Arc<dyn DataAdapter>, Error> {
        match spec {
            AdapterSpec::Builtin => Ok(Arc::new(self.scoped(org, plugin, indexes))),
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
    indexes: Indexes,
}

/// The records of an instance on the `api` adapter: there are none, the plugin's code talks
/// to the vendor through `ctx.api()`. Every operation is a 422 saying so.
pub struct NoRecords {
    pub plugin: PluginName,
}

impl NoRecords {
    fn refuse<T>(&self) -> Result<T, DataError> {
        Err(DataError::Invalid(format!(
            "the {} instance's data adapter is an api connection, which keeps no records; use dynamodb, rest or postgres for a plugin that stores them",
            self.plugin
        )))
    }
}

#[async_trait]
impl DataAdapter for NoRecords {
    async fn list(
        &self,
        _: &EntityName,
        _: usize,
        _: Option<&str>,
    ) -> Result<Page<Value>, DataError> {
        self.refuse()
    }
    async fn get(&self, _: &EntityName, _: &RecordId) -> Result<Option<Value>, DataError> {
        self.refuse()
    }
    async fn create(&self, _: &EntityName, _: Value) -> Result<Value, DataError> {
        self.refuse()
    }
    async fn update_where(
        &self,
        _: &EntityName,
        _: &RecordId,
        _: Value,
        _: &[Condition],
    ) -> Result<Value, DataError> {
        self.refuse()
    }
    async fn delete_where(
        &self,
        _: &EntityName,
        _: &RecordId,
        _: &[Condition],
    ) -> Result<bool, DataError> {
        self.refuse()
    }
    async fn query_page(
        &self,
        _: &EntityName,
        _: &[Condition],
        _: usize,
        _: Option<&str>,
    ) -> Result<Page<Value>, DataError> {
        self.refuse()
    }
    async fn batch_create(&self, _: &EntityName, _: Vec<Value>) -> Result<Vec<Value>, DataError> {
        self.refuse()
    }
    async fn batch_update(
        &self,
        _: &EntityName,
        _: Vec<(RecordId, Value)>,
    ) -> Result<Vec<Value>, DataError> {
        self.refuse()
    }
    async fn get_schema(&self, _: &EntityName) -> Result<Value, DataError> {
        self.refuse()
    }
    async fn list_entities(&self) -> Result<Vec<EntityName>, DataError> {
        Ok(Vec::new())
    }
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

/// The record id a failed transaction names, also when the store names one of its index
/// entries (`<pk> / <value>\u{1}<id>`). Partition keys hold no " / "; ids may.
fn conflicting_id(e: &StoreError) -> String {
    match e {
        StoreError::Conflict { key, .. } => {
            let sk = key.split_once(" / ").map_or("", |(_, sk)| sk);
            sk.split_once('\u{1}').map_or(sk, |(_, id)| id).to_owned()
        }
        _ => String::new(),
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

    /// The keys of `record`'s index entries: one per declared field it holds a value for.
    fn entry_keys(&self, entity: &EntityName, id: &RecordId, record: &Value) -> Vec<Key> {
        self.indexes
            .fields(entity)
            .iter()
            .filter_map(|field| {
                let sk = entry_sort_key(field.value(record)?.as_ref(), id)?;
                Some(Key::new(self.scope.index(entity, field.name()), sk))
            })
            .collect()
    }

    /// The item writes a record's index entries need: those of `old` it no longer has
    /// deleted, every one of `new` written with its body.
    fn entry_writes<'a>(
        old: &'a [Key],
        new: &'a [Key],
        data: Option<&'a Value>,
        out: &mut Vec<Write<'a>>,
    ) {
        out.extend(
            old.iter()
                .filter(|k| !new.contains(k))
                .map(|key| Write::Delete {
                    key,
                    pre: Precondition::None,
                }),
        );
        if let Some(data) = data {
            out.extend(new.iter().map(|key| Write::Put {
                key,
                data,
                pre: Precondition::None,
            }));
        }
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
        if self.indexes.matcher(entity, expect).matches(&current.data) {
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

    /// Refuses a batch whose records and index entries would not fit one transaction.
    fn check_batch(&self, entity: &EntityName, len: usize) -> Result<(), DataError> {
        let per_record = 1 + self.indexes.fields(entity).len();
        let max = MAX_TRANSACT_ITEMS / per_record;
        if len > max {
            return Err(DataError::Invalid(format!(
                "a batch of {entity} holds at most {max} records, not {len} (each is written with its {} index entries in one transaction of at most {MAX_TRANSACT_ITEMS} items)",
                per_record - 1
            )));
        }
        Ok(())
    }

    /// Writes the index entries of one page of existing records (data written before its
    /// indexes were declared, or by a build that did not keep them), then removes entries
    /// whose record is gone or no longer holds their value. Idempotent; each step holds only
    /// while what it read is unchanged, so it runs safely beside live calls.
    pub async fn reindex(
        &self,
        cursor: Option<ReindexCursor>,
        batch: usize,
    ) -> Result<ReindexStep, DataError> {
        let entities: Vec<(EntityName, Vec<IndexField>)> = self
            .indexes
            .entities()
            .filter(|(_, f)| !f.is_empty())
            .map(|(e, f)| {
                EntityName::parse(e)
                    .map(|e| (e, f.to_vec()))
                    .map_err(|e| DataError::Invalid(e.to_string()))
            })
            .collect::<Result<_, _>>()?;
        let given = cursor.is_some();
        let mut at = cursor.unwrap_or_default();
        let mut step = ReindexStep::default();
        // A token goes on only with the organization, plugin and manifest it came from: it
        // names the partition it was reading.
        if given && self.reindex_partition(&entities, &at) != Some(at.partition.clone()) {
            return Err(DataError::Invalid(
                "the reindex token is from another organization, plugin or manifest version; start again without it".into(),
            ));
        }
        let Some((entity, fields)) = entities.get(at.entity) else {
            return Ok(step);
        };
        step.entity = entity.to_string();
        let batch = batch.clamp(1, 1000);
        if at.field == 0 {
            // Records: write each one's entries, if the record is still as read.
            let page = self
                .table
                .query(
                    &self.scope.partition(entity),
                    at.after.as_deref(),
                    Some(batch),
                )
                .await?;
            let mut plans = Vec::with_capacity(page.items.len());
            for item in &page.items {
                let id = RecordId::parse(item.key.sk.as_str())
                    .map_err(|e| DataError::Invalid(e.to_string()))?;
                plans.push(self.entry_keys(entity, &id, &item.data));
            }
            // As many records as fit one transaction, each with a check that it is unchanged;
            // a group one of whose records changed meanwhile goes again record by record.
            let todo: Vec<(&Item, &Vec<Key>)> = page
                .items
                .iter()
                .zip(&plans)
                .filter(|(_, keys)| !keys.is_empty())
                .collect();
            let mut groups: Vec<Vec<(&Item, &Vec<Key>)>> = vec![];
            let mut size = 0;
            for (item, keys) in todo {
                let n = 1 + keys.len();
                if groups.is_empty() || size + n > MAX_TRANSACT_ITEMS {
                    groups.push(vec![]);
                    size = 0;
                }
                size += n;
                if let Some(g) = groups.last_mut() {
                    g.push((item, keys));
                }
            }
            for group in groups {
                match self.write_entries(&group).await {
                    Ok(()) => step.written += group.iter().map(|(_, k)| k.len()).sum::<usize>(),
                    Err(StoreError::Conflict { .. }) => {
                        for one in group {
                            match self.write_entries(&[one]).await {
                                Ok(()) => step.written += one.1.len(),
                                // Changed since read: that write kept its own entries.
                                Err(StoreError::Conflict { .. }) => step.skipped += 1,
                                Err(e) => return Err(e.into()),
                            }
                        }
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            step.records = page.items.len();
            at.after = page.next;
            if at.after.is_none() {
                at.field = 1;
            }
        } else {
            // Entries of one field: drop those their record no longer backs.
            let Some(field) = fields.get(at.field - 1) else {
                return Err(DataError::Invalid(format!(
                    "the reindex token names field {} of {entity}, which declares {}; start again without it",
                    at.field,
                    fields.len()
                )));
            };
            let page = self
                .table
                .query(
                    &self.scope.index(entity, field.name()),
                    at.after.as_deref(),
                    Some(batch),
                )
                .await?;
            let ids: Vec<Option<RecordId>> = page
                .items
                .iter()
                .map(|e| {
                    let id = e.key.sk.split_once('\u{1}').map(|(_, id)| id);
                    id.and_then(|id| RecordId::parse(id).ok())
                })
                .collect();
            let keys: Vec<Key> = ids
                .iter()
                .flatten()
                .map(|id| self.key(entity, id))
                .collect();
            let records = self.table.batch_get(&keys).await?;
            for (entry, id) in page.items.iter().zip(&ids) {
                let record = id.as_ref().map(|id| {
                    let key = self.key(entity, id);
                    let found = records.iter().find(|r| r.key == key);
                    (key, found)
                });
                let backed = record.as_ref().is_some_and(|(_, found)| {
                    found.is_some_and(|r| {
                        id.as_ref().and_then(|id| {
                            field.value(&r.data).and_then(|v| entry_sort_key(&v, id))
                        }) == Some(entry.key.sk.clone())
                    })
                });
                if backed {
                    continue;
                }
                // Removed only while both the entry and its record are as read: a live write
                // in between (which may have put this very entry back) keeps it.
                let mut writes = vec![Write::Delete {
                    key: &entry.key,
                    pre: Precondition::Version(entry.version),
                }];
                if let Some((key, found)) = &record {
                    writes.push(Write::Check {
                        key,
                        pre: found.map_or(Precondition::NotExists, |r| {
                            Precondition::Version(r.version)
                        }),
                    });
                }
                match self.table.transact_write(&writes).await {
                    Ok(_) => step.removed += 1,
                    Err(StoreError::Conflict { .. }) => step.skipped += 1,
                    Err(e) => return Err(e.into()),
                }
            }
            step.entries_checked = page.items.len();
            at.after = page.next;
            if at.after.is_none() {
                at.field += 1;
                if at.field > fields.len() {
                    at = ReindexCursor {
                        entity: at.entity + 1,
                        ..ReindexCursor::default()
                    };
                }
            }
        }
        if let Some(partition) = self.reindex_partition(&entities, &at) {
            at.partition = partition;
            step.next = Some(at);
        }
        Ok(step)
    }

    /// Deletes the record and its entries if it is as read and satisfies `expect`.
    async fn delete_read(
        &self,
        entity: &EntityName,
        id: &RecordId,
        key: &Key,
        expect: &[Condition],
    ) -> Result<bool, DataError> {
        let current = match self.current(entity, id, key, expect).await {
            Ok(c) => c,
            Err(DataError::NotFound { .. }) => return Ok(false),
            Err(e) => return Err(e),
        };
        let old = self.entry_keys(entity, id, &current.data);
        let pre = Precondition::Version(current.version);
        if old.is_empty() {
            return self
                .table
                .delete(key, pre)
                .await
                .map_err(|e| conflict(entity, id.as_str(), e));
        }
        let mut writes = vec![Write::Delete { key, pre }];
        Self::entry_writes(&old, &[], None, &mut writes);
        self.table
            .transact_write(&writes)
            .await
            .map_err(|e| conflict(entity, id.as_str(), e))?;
        Ok(true)
    }

    /// The partition a reindex at `at` reads: the entity's records, or one field's entries.
    fn reindex_partition(
        &self,
        entities: &[(EntityName, Vec<IndexField>)],
        at: &ReindexCursor,
    ) -> Option<String> {
        let (entity, fields) = entities.get(at.entity)?;
        match at.field {
            0 => Some(self.scope.partition(entity)),
            n => fields
                .get(n - 1)
                .map(|f| self.scope.index(entity, f.name())),
        }
    }

    /// Writes the entries `keys` of each record, all or none, if every record is as read.
    async fn write_entries(&self, group: &[(&Item, &Vec<Key>)]) -> Result<(), StoreError> {
        let mut writes = Vec::new();
        for (item, keys) in group {
            writes.push(Write::Check {
                key: &item.key,
                pre: Precondition::Version(item.version),
            });
            Self::entry_writes(&[], keys, Some(&item.data), &mut writes);
        }
        self.table.transact_write(&writes).await
    }
}

/// Reads of a record before an unconditional delete gives up on concurrent changes.
const DELETE_ATTEMPTS: usize = 3;

/// Where [`TableData::reindex`] goes on from: the index of the declared entity, then its
/// records (`field` 0) or the entries of its `field`-th indexed field, after a sort key.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ReindexCursor {
    pub entity: usize,
    pub field: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
    /// The partition being read, which a token must still name to be used.
    #[serde(default)]
    pub partition: String,
}

impl ReindexCursor {
    /// An opaque token to print and pass back.
    pub fn token(&self) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(self).unwrap_or_default())
    }

    pub fn parse(token: &str) -> Option<Self> {
        let bytes = URL_SAFE_NO_PAD.decode(token.trim()).ok()?;
        serde_json::from_slice(&bytes).ok()
    }
}

impl TableData {
    /// Removes every entry of an index `entity` no longer declares (a plugin version that
    /// dropped it leaves its entries, copies of records, behind). Refused for a declared
    /// one. Returns how many were removed; idempotent.
    pub async fn drop_index(&self, entity: &EntityName, field: &str) -> Result<usize, DataError> {
        if self
            .indexes
            .fields(entity)
            .iter()
            .any(|f| f.name() == field)
        {
            return Err(DataError::Invalid(format!(
                "{entity} is still indexed by {field}: only an index the manifest no longer declares can be dropped"
            )));
        }
        let pk = self.scope.index(entity, field);
        let mut removed = 0;
        loop {
            // Always the first page: what was read is deleted before the next read.
            let page = self
                .table
                .query(&pk, None, Some(MAX_TRANSACT_ITEMS))
                .await?;
            if page.items.is_empty() {
                return Ok(removed);
            }
            let writes: Vec<Write<'_>> = page
                .items
                .iter()
                .map(|i| Write::Delete {
                    key: &i.key,
                    pre: Precondition::None,
                })
                .collect();
            self.table.transact_write(&writes).await?;
            removed += writes.len();
        }
    }
}

/// What one [`TableData::reindex`] step did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReindexStep {
    pub entity: String,
    pub records: usize,
    pub written: usize,
    pub entries_checked: usize,
    pub removed: usize,
    /// Items changed by a live call since read, left as that call wrote them.
    pub skipped: usize,
    pub next: Option<ReindexCursor>,
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
        let key = self.key(entity, &id);
        let entries = self.entry_keys(entity, &id, &data);
        let written = if entries.is_empty() {
            self.table
                .put(&key, &data, Precondition::NotExists)
                .await
                .map(|_| ())
        } else {
            let mut writes = vec![Write::Put {
                key: &key,
                data: &data,
                pre: Precondition::NotExists,
            }];
            Self::entry_writes(&[], &entries, Some(&data), &mut writes);
            self.table.transact_write(&writes).await
        };
        written.map_err(|e| conflict(entity, id.as_str(), e))?;
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
        let old = self.entry_keys(entity, id, &current.data);
        let data = merged(as_object(entity, current.data)?, patch);
        let new = self.entry_keys(entity, id, &data);
        // The version check makes "read, test the conditions, write" atomic.
        let pre = Precondition::Version(current.version);
        let written = if old.is_empty() && new.is_empty() {
            self.table.put(&key, &data, pre).await.map(|_| ())
        } else {
            let mut writes = vec![Write::Put {
                key: &key,
                data: &data,
                pre,
            }];
            Self::entry_writes(&old, &new, Some(&data), &mut writes);
            self.table.transact_write(&writes).await
        };
        written.map_err(|e| conflict(entity, id.as_str(), e))?;
        Ok(data)
    }

    async fn delete_where(
        &self,
        entity: &EntityName,
        id: &RecordId,
        expect: &[Condition],
    ) -> Result<bool, DataError> {
        let key = self.key(entity, id);
        if expect.is_empty() && self.indexes.fields(entity).is_empty() {
            return Ok(self.table.delete(&key, Precondition::None).await?);
        }
        if expect.is_empty() {
            // An unconditional delete: a concurrent change only means reading again.
            for _ in 0..DELETE_ATTEMPTS - 1 {
                match self.delete_read(entity, id, &key, expect).await {
                    Err(DataError::Conflict { .. }) => continue,
                    done => return done,
                }
            }
        }
        self.delete_read(entity, id, &key, expect).await
    }

    async fn query_page(
        &self,
        entity: &EntityName,
        filter: &[Condition],
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<Page<Value>, DataError> {
        let lookup = self.indexes.lookup(entity, filter)?;
        let Some(range) = lookup.range else {
            return Ok(Page {
                items: vec![],
                next: None,
            });
        };
        let after = match cursor {
            None => None,
            Some(c) => Some(
                URL_SAFE_NO_PAD
                    .decode(c)
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok())
                    .filter(|sk| range.contains(sk))
                    .ok_or_else(|| {
                        DataError::Invalid(
                            "the cursor is not one this query returned; start again without it"
                                .into(),
                        )
                    })?,
            ),
        };
        let page = self
            .table
            .query_range(
                &self.scope.index(entity, &lookup.field),
                &range,
                after.as_deref(),
                Some(limit.clamp(1, 1000)),
            )
            .await?;
        let matcher = self.indexes.matcher(entity, filter);
        Ok(Page {
            next: page.next.map(|sk| URL_SAFE_NO_PAD.encode(sk)),
            items: page
                .items
                .into_iter()
                .map(|i| i.data)
                .filter(|r| matcher.matches(r))
                .collect(),
        })
    }

    async fn batch_create(
        &self,
        entity: &EntityName,
        records: Vec<Value>,
    ) -> Result<Vec<Value>, DataError> {
        self.check_batch(entity, records.len())?;
        let mut rows = Vec::with_capacity(records.len());
        let mut ids = HashSet::with_capacity(records.len());
        for r in records {
            let (id, record) = self.prepare(entity, r).await?;
            if !ids.insert(id.clone()) {
                return Err(DataError::Invalid(format!(
                    "the batch names {entity} '{id}' twice"
                )));
            }
            let data = Value::Object(record);
            let entries = self.entry_keys(entity, &id, &data);
            rows.push((self.key(entity, &id), data, entries));
        }
        if rows.is_empty() {
            return Ok(vec![]);
        }
        let mut writes = Vec::new();
        for (key, data, entries) in &rows {
            writes.push(Write::Put {
                key,
                data,
                pre: Precondition::NotExists,
            });
            Self::entry_writes(&[], entries, Some(data), &mut writes);
        }
        self.table.transact_write(&writes).await.map_err(|e| {
            let id = conflicting_id(&e);
            conflict(entity, &id, e)
        })?;
        self.note_entity(entity).await?;
        Ok(rows.into_iter().map(|(_, data, _)| data).collect())
    }

    async fn batch_update(
        &self,
        entity: &EntityName,
        patches: Vec<(RecordId, Value)>,
    ) -> Result<Vec<Value>, DataError> {
        self.check_batch(entity, patches.len())?;
        let mut ids = HashSet::with_capacity(patches.len());
        if let Some((id, _)) = patches.iter().find(|(id, _)| !ids.insert(id)) {
            return Err(DataError::Invalid(format!(
                "the batch names {entity} '{id}' twice"
            )));
        }
        let keys: Vec<Key> = patches.iter().map(|(id, _)| self.key(entity, id)).collect();
        let current = self.table.batch_get(&keys).await?;
        let mut rows = Vec::with_capacity(patches.len());
        for ((id, patch), key) in patches.into_iter().zip(keys) {
            let Some(item) = current.iter().find(|i| i.key == key) else {
                return Err(DataError::NotFound {
                    entity: entity.to_string(),
                    id: id.to_string(),
                });
            };
            let old = self.entry_keys(entity, &id, &item.data);
            let data = merged(
                as_object(entity, item.data.clone())?,
                as_object(entity, patch)?,
            );
            let new = self.entry_keys(entity, &id, &data);
            rows.push((key, data, Precondition::Version(item.version), old, new));
        }
        let mut writes = Vec::new();
        for (key, data, pre, old, new) in &rows {
            writes.push(Write::Put {
                key,
                data,
                pre: *pre,
            });
            Self::entry_writes(old, new, Some(data), &mut writes);
        }
        // Moving indexed values deletes old entries besides writing new ones.
        if writes.len() > MAX_TRANSACT_ITEMS {
            return Err(DataError::Invalid(format!(
                "this batch of {} {entity} changes indexed fields of its records, which takes {} writes; one transaction holds at most {MAX_TRANSACT_ITEMS}: send fewer records at a time",
                rows.len(),
                writes.len()
            )));
        }
        self.table.transact_write(&writes).await.map_err(|e| {
            let id = conflicting_id(&e);
            conflict(entity, &id, e)
        })?;
        Ok(rows.into_iter().map(|(_, data, ..)| data).collect())
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
    matches_value(record.get(&c.field), c)
}

/// Whether a field holding `field` (`None`: absent) satisfies `c`.
pub fn matches_value(field: Option<&Value>, c: &Condition) -> bool {
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
