//! A kit for plugin tests: a [`Harness`] that calls a plugin's functions on the embedded
//! in-memory store exactly as the pipeline does (through [`Plugin::call`]), and a [`Meddler`] data adapter that
//! lands other requests' writes at a chosen moment, to make lost races deterministic.
//!
//! Test-only code: it panics on anything unexpected.

use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use serde_json::Value;

use switchboard::data::BuiltinData;
use switchboard::manifest::overlay;
use switchboard::pipeline::InvokedTenant;
use switchboard::ports::Api;
use switchboard::schedule::{Deferrals, DeferredCall, StoredSchedules};
use switchboard::{
    CallScope, Channel, Condition, DataAdapter, DataError, EntityName, Error, OrgId, Page, Plugin,
    RecordId,
};
use switchboard_embedded::Embedded;

/// One organization's instance of a plugin on an in-memory store, with a fixed clock.
///
/// Calls validate their parameters against the manifest first, as the pipeline does. The
/// fields are public so a test can change the context between calls.
pub struct Harness {
    pub plugin: Arc<Plugin>,
    pub store: Embedded,
    pub org: OrgId,
    /// The data adapter confined to this org and plugin (or a [`Meddler`] around it).
    pub data: Arc<dyn DataAdapter>,
    /// The effective config: `default_config` overlaid with [`Harness::config`] patches.
    pub config: Value,
    /// The clock every call sees: the Unix epoch until [`Harness::at`].
    pub now: SystemTime,
    /// The credential's scopes: `plugins:call` unless [`Harness::scopes`] says otherwise.
    pub scopes: Vec<String>,
    pub channel: Option<Channel>,
    pub session_id: Option<String>,
    pub caller_phone: Option<String>,
    /// The vendor API `ctx.api()` returns, for plugins on the `api` adapter.
    pub api: Option<Arc<dyn Api>>,
    /// Where `ctx.schedule_call` puts calls: the store's data table, as in `dev`
    /// ([`Harness::take_due`]).
    pub schedules: Arc<StoredSchedules>,
    /// The call's language: `en-US` unless [`Harness::locale`] says otherwise.
    pub locale: String,
}

impl Harness {
    /// `plugin` for `org` on a fresh in-memory store, with its default config.
    pub fn new(plugin: Plugin, org: &str) -> Self {
        let store = Embedded::in_memory().unwrap();
        let org = OrgId::parse(org).unwrap();
        let data = scoped(&store, &org, &plugin);
        let config = plugin.manifest().manifest().default_config.clone();
        let schedules = Arc::new(StoredSchedules::new(store.data_table()));
        Self {
            plugin: Arc::new(plugin),
            store,
            org,
            data,
            config,
            now: SystemTime::UNIX_EPOCH,
            scopes: vec!["plugins:call".into()],
            channel: None,
            session_id: None,
            caller_phone: None,
            api: None,
            schedules,
            locale: switchboard::locale::DEFAULT_LOCALE.to_owned(),
        }
    }

    /// Takes the scheduled calls due at `now` (epoch seconds), as `dev` does before running
    /// them.
    pub async fn take_due(&self, now: i64) -> Vec<DeferredCall> {
        self.schedules.take_due(now).await.unwrap()
    }

    /// Calls speak `locale` (a BCP 47 tag), as a channel or organization locale sets it.
    pub fn locale(mut self, locale: &str) -> Self {
        self.locale = locale.to_owned();
        self
    }

    /// Calls reach `api` through `ctx.api()`.
    pub fn api(mut self, api: Arc<dyn Api>) -> Self {
        self.api = Some(api);
        self
    }

    /// Overlays `patch` on the effective config, which must still fit the config schema.
    pub fn config(mut self, patch: Value) -> Self {
        overlay(&mut self.config, &patch);
        self.plugin
            .manifest()
            .validate_config(&self.config)
            .unwrap();
        self
    }

    pub fn at(mut self, now: SystemTime) -> Self {
        self.now = now;
        self
    }

    pub fn scopes(mut self, scopes: &[&str]) -> Self {
        self.scopes = scopes.iter().map(|s| (*s).to_owned()).collect();
        self
    }

    pub fn channel(mut self, channel: &str) -> Self {
        self.channel = Some(Channel::parse(channel).unwrap());
        self
    }

    pub fn session(mut self, session_id: &str) -> Self {
        self.session_id = Some(session_id.to_owned());
        self
    }

    /// Another organization on the same store, with the same plugin, config and context.
    pub fn other_org(&self, org: &str) -> Self {
        let org = OrgId::parse(org).unwrap();
        Self {
            plugin: self.plugin.clone(),
            store: self.store.clone(),
            data: scoped(&self.store, &org, &self.plugin),
            org,
            config: self.config.clone(),
            now: self.now,
            scopes: self.scopes.clone(),
            channel: self.channel.clone(),
            session_id: self.session_id.clone(),
            caller_phone: self.caller_phone.clone(),
            api: self.api.clone(),
            schedules: self.schedules.clone(),
            locale: self.locale.clone(),
        }
    }

    /// The same harness, with `plan` landing just before the matching writes.
    pub fn meddled(mut self, plan: Vec<Meddle>) -> Self {
        self.data = Arc::new(Meddler::new(self.data.clone(), plan));
        self
    }

    /// What a call knows before its function is resolved.
    pub fn scope(&self) -> CallScope {
        CallScope {
            org: self.org.clone(),
            channel: self.channel.clone(),
            session_id: self.session_id.clone(),
            caller_phone: self.caller_phone.clone(),
            scopes: self.scopes.clone(),
            config: Arc::new(self.config.clone()),
            data: self.data.clone(),
            api: self.api.clone(),
            deferrals: Some(Deferrals::new(
                self.schedules.clone(),
                InvokedTenant {
                    org: self.org.clone(),
                    channel: self.channel.clone(),
                    scopes: self.scopes.clone(),
                    key_id: None,
                    key_rate_limit: None,
                },
            )),
            locale: self.locale.clone(),
            now: self.now,
        }
    }

    /// Calls `function` (a declared or agent-qualified tool name) as the pipeline does:
    /// strict-mode nulls dropped, parameters validated, handler run.
    pub async fn call(&self, function: &str, params: Value) -> Result<Value, Error> {
        self.plugin.call(function, params, self.scope()).await
    }

    /// Calls a function that must succeed; returns its result.
    pub async fn ok(&self, function: &str, params: Value) -> Value {
        match self.call(function, params.clone()).await {
            Ok(v) => v,
            Err(e) => panic!("{function} {params} failed: {} {e}", e.status()),
        }
    }

    /// Calls a function that must fail; returns (status, message, detail paths).
    pub async fn fails(&self, function: &str, params: Value) -> (u16, String, Vec<String>) {
        match self.call(function, params.clone()).await {
            Ok(v) => panic!("{function} {params} succeeded with {v}"),
            Err(e) => {
                let paths = match &e {
                    Error::Validation { details, .. } => {
                        details.iter().map(|d| d.path.clone()).collect()
                    }
                    _ => Vec::new(),
                };
                (e.status(), e.to_string(), paths)
            }
        }
    }

    /// Every stored record of `entity`.
    pub async fn stored(&self, entity: &str) -> Vec<Value> {
        let entity = EntityName::parse(entity).unwrap();
        let mut out = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let page = self
                .data
                .list(&entity, 1000, cursor.as_deref())
                .await
                .unwrap();
            out.extend(page.items);
            match page.next {
                Some(n) => cursor = Some(n),
                None => return out,
            }
        }
    }
}

fn scoped(store: &Embedded, org: &OrgId, plugin: &Plugin) -> Arc<dyn DataAdapter> {
    let indexes = &plugin.manifest().manifest().indexes;
    Arc::new(BuiltinData::new(store.data_table()).scoped(org, plugin.name(), indexes))
}

/// When a [`Meddle`] lands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Before {
    /// The first conditional write (`update_where`/`delete_where` with conditions) to the
    /// record `(entity, id)`.
    Write(String, String),
    /// The first create in the entity.
    Create(String),
}

/// A write of another request.
#[derive(Clone, Debug)]
pub enum Write {
    Update(String, String, Value),
    Delete(String, String),
    Create(String, Value),
}

/// Other requests' writes, landing once between a handler's read and its write.
#[derive(Clone, Debug)]
pub struct Meddle {
    pub before: Before,
    pub writes: Vec<Write>,
}

impl Meddle {
    /// Lands just before the first conditional write to `(entity, id)`.
    pub fn before_write(entity: &str, id: &str) -> Self {
        Self {
            before: Before::Write(entity.to_owned(), id.to_owned()),
            writes: Vec::new(),
        }
    }

    /// Lands just before the first create in `entity`.
    pub fn before_create(entity: &str) -> Self {
        Self {
            before: Before::Create(entity.to_owned()),
            writes: Vec::new(),
        }
    }

    /// Merges `patch` into a record.
    pub fn update(mut self, entity: &str, id: &str, patch: Value) -> Self {
        self.writes
            .push(Write::Update(entity.to_owned(), id.to_owned(), patch));
        self
    }

    pub fn delete(mut self, entity: &str, id: &str) -> Self {
        self.writes
            .push(Write::Delete(entity.to_owned(), id.to_owned()));
        self
    }

    pub fn create(mut self, entity: &str, record: Value) -> Self {
        self.writes.push(Write::Create(entity.to_owned(), record));
        self
    }

    /// Deletes a record and stores `record` in its place (another request's claim).
    pub fn replace(self, entity: &str, id: &str, record: Value) -> Self {
        self.delete(entity, id).create(entity, record)
    }
}

/// A data adapter that forwards everything to `inner` and, just before the first call a
/// planned [`Meddle`] waits for, lands its writes: lost races, deterministically.
pub struct Meddler {
    inner: Arc<dyn DataAdapter>,
    plan: Mutex<Vec<Meddle>>,
}

impl Meddler {
    pub fn new(inner: Arc<dyn DataAdapter>, plan: Vec<Meddle>) -> Self {
        Self {
            inner,
            plan: Mutex::new(plan),
        }
    }

    async fn interfere(&self, now: Before) {
        let due = {
            let mut plan = self.plan.lock().unwrap();
            let i = plan.iter().position(|m| m.before == now);
            i.map(|i| plan.remove(i))
        };
        let Some(m) = due else { return };
        let entity = |e: &str| EntityName::parse(e).unwrap();
        let id = |i: &str| RecordId::parse(i).unwrap();
        for w in m.writes {
            match w {
                Write::Update(e, i, patch) => {
                    self.inner
                        .update(&entity(&e), &id(&i), patch)
                        .await
                        .unwrap();
                }
                Write::Delete(e, i) => {
                    self.inner.delete(&entity(&e), &id(&i)).await.unwrap();
                }
                Write::Create(e, record) => {
                    self.inner.create(&entity(&e), record).await.unwrap();
                }
            }
        }
    }

    async fn before_write(&self, entity: &EntityName, id: &RecordId, expect: &[Condition]) {
        if !expect.is_empty() {
            let at = Before::Write(entity.as_str().to_owned(), id.as_str().to_owned());
            self.interfere(at).await;
        }
    }
}

#[switchboard::async_trait]
impl DataAdapter for Meddler {
    async fn list(
        &self,
        entity: &EntityName,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<Page<Value>, DataError> {
        self.inner.list(entity, limit, cursor).await
    }
    async fn get(&self, entity: &EntityName, id: &RecordId) -> Result<Option<Value>, DataError> {
        self.inner.get(entity, id).await
    }
    async fn create(&self, entity: &EntityName, record: Value) -> Result<Value, DataError> {
        self.interfere(Before::Create(entity.as_str().to_owned()))
            .await;
        self.inner.create(entity, record).await
    }
    async fn update_where(
        &self,
        entity: &EntityName,
        id: &RecordId,
        patch: Value,
        expect: &[Condition],
    ) -> Result<Value, DataError> {
        self.before_write(entity, id, expect).await;
        self.inner.update_where(entity, id, patch, expect).await
    }
    async fn delete_where(
        &self,
        entity: &EntityName,
        id: &RecordId,
        expect: &[Condition],
    ) -> Result<bool, DataError> {
        self.before_write(entity, id, expect).await;
        self.inner.delete_where(entity, id, expect).await
    }
    async fn query_page(
        &self,
        entity: &EntityName,
        filter: &[Condition],
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<Page<Value>, DataError> {
        self.inner.query_page(entity, filter, limit, cursor).await
    }
    async fn batch_create(
        &self,
        entity: &EntityName,
        records: Vec<Value>,
    ) -> Result<Vec<Value>, DataError> {
        self.inner.batch_create(entity, records).await
    }
    async fn batch_update(
        &self,
        entity: &EntityName,
        patches: Vec<(RecordId, Value)>,
    ) -> Result<Vec<Value>, DataError> {
        self.inner.batch_update(entity, patches).await
    }
    async fn get_schema(&self, entity: &EntityName) -> Result<Value, DataError> {
        self.inner.get_schema(entity).await
    }
    async fn list_entities(&self) -> Result<Vec<EntityName>, DataError> {
        self.inner.list_entities().await
    }
}
