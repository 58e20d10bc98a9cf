//! PLACEHOLDER — replaced by the postgres adapter work.
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Map, Value};

use crate::error::Detail;
use crate::ids::{EntityName, OrgId, RecordId};
use crate::ports::{Condition, DataAdapter, DataError, Page};
use crate::secrets::{CredentialRef, Secrets};

#[derive(Clone, Default)]
pub struct PgPools;

pub struct PgConfig {
    credential: CredentialRef,
}

impl PgConfig {
    pub fn parse(settings: &Map<String, Value>) -> Result<Self, Vec<Detail>> {
        let mut p = Vec::new();
        let credential = super::credential_setting(settings, &mut p);
        match credential {
            Some(credential) if p.is_empty() => Ok(Self { credential }),
            None if p.is_empty() => Err(vec![Detail::new(
                "/credential",
                "is required: the secret holding the connection string",
            )]),
            _ => Err(p),
        }
    }
    pub fn credential(&self) -> &CredentialRef {
        &self.credential
    }
}

pub struct PgData;

impl PgData {
    pub fn new(_: PgPools, _: PgConfig, _: Arc<Secrets>, _: OrgId) -> Self {
        Self
    }
}

fn todo() -> DataError {
    DataError::Invalid("postgres adapter not implemented".into())
}

#[async_trait]
impl DataAdapter for PgData {
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
