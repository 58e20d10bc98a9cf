//! PLACEHOLDER — replaced by the rest adapter work.
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Map, Value};

use crate::error::{Detail, Error};
use crate::ids::{EntityName, OrgId, RecordId};
use crate::ports::{Condition, DataAdapter, DataError, Page};
use crate::secrets::{CredentialRef, Secrets};

#[derive(Clone, Default)]
pub struct RestClient;

impl RestClient {
    pub fn new() -> Result<Self, Error> {
        Ok(Self)
    }
}

pub struct RestConfig {
    credential: Option<CredentialRef>,
}

impl RestConfig {
    pub fn parse(settings: &Map<String, Value>) -> Result<Self, Vec<Detail>> {
        let mut p = Vec::new();
        let credential = super::credential_setting(settings, &mut p);
        if !settings.get("base_url").is_some_and(Value::is_string) {
            p.push(Detail::new("/base_url", "is required"));
        }
        if p.is_empty() {
            Ok(Self { credential })
        } else {
            Err(p)
        }
    }
    pub fn credential(&self) -> Option<&CredentialRef> {
        self.credential.as_ref()
    }
}

pub struct RestData;

impl RestData {
    pub fn new(_: RestClient, _: RestConfig, _: Arc<Secrets>, _: OrgId) -> Self {
        Self
    }
}

fn todo() -> DataError {
    DataError::Invalid("rest adapter not implemented".into())
}

#[async_trait]
impl DataAdapter for RestData {
    async fn list(
        &self,
        _: &EntityName,
        _: usize,
        _: Option<&str>,
    ) -> Result<Page<Value>, DataError> {
        Err(todo())
    }
    async fn get(&self, _: &EntityName, _: &RecordId) -> Result<Option<Value>, DataError> {
        Err(todo())
    }
    async fn create(&self, _: &EntityName, _: Value) -> Result<Value, DataError> {
        Err(todo())
    }
    async fn update_where(
        &self,
        _: &EntityName,
        _: &RecordId,
        _: Value,
        _: &[Condition],
    ) -> Result<Value, DataError> {
        Err(todo())
    }
    async fn delete_where(
        &self,
        _: &EntityName,
        _: &RecordId,
        _: &[Condition],
    ) -> Result<bool, DataError> {
        Err(todo())
    }
    async fn query(&self, _: &EntityName, _: &[Condition]) -> Result<Vec<Value>, DataError> {
        Err(todo())
    }
    async fn batch_create(&self, _: &EntityName, _: Vec<Value>) -> Result<Vec<Value>, DataError> {
        Err(todo())
    }
    async fn batch_update(
        &self,
        _: &EntityName,
        _: Vec<(RecordId, Value)>,
    ) -> Result<Vec<Value>, DataError> {
        Err(todo())
    }
    async fn get_schema(&self, _: &EntityName) -> Result<Value, DataError> {
        Err(todo())
    }
    async fn list_entities(&self) -> Result<Vec<EntityName>, DataError> {
        Err(todo())
    }
}
