//! The registry: manifests, org profiles, plugin instances, channel configs, API keys and
//! credential metadata in the single-table model (ARCHITECTURE.md), over any [`ItemStore`].
//! `model` is what it holds, `keys` where each item lives; this module reads and writes them.

pub mod keys;
mod model;

use std::sync::Arc;

use serde::{Deserialize, Serialize, de::DeserializeOwned};
use serde_json::Value;

use crate::error::Error;
use crate::ids::{BedrockAgentRef, Channel, ConnectionId, OrgId, PluginName};
use crate::manifest::{Manifest, sort_versions};
use crate::ports::{ItemStore, Key, Precondition, StoreError, Write, query_all};

pub use model::*;

#[derive(Serialize, Deserialize)]
struct KeyIndex {
    #[serde(flatten)]
    meta: ApiKeyMeta,
    hash: String,
}

fn key_index(hash: &KeyHash, record: &ApiKeyRecord) -> (ApiKeyMeta, KeyIndex) {
    let meta = ApiKeyMeta {
        id: hash.id().to_owned(),
        name: record.name.clone(),
        scopes: record.scopes.clone(),
        channel: record.channel.clone(),
        rate_limit_per_second: record.rate_limit_per_second,
        created: record.created,
        revoked: record.revoked,
    };
    let index = KeyIndex {
        meta: meta.clone(),
        hash: hash.as_str().to_owned(),
    };
    (meta, index)
}

/// The stored library entry of one plugin. Listing the versions here makes reading them
/// one small item, not every version's manifest.
#[derive(Serialize, Deserialize)]
struct CatalogEntry {
    name: PluginName,
    /// `None` in entries written before the versions were listed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    versions: Option<Vec<String>>,
}

/// Attempts at a library entry that other publishes of the same plugin keep changing.
const CATALOG_ATTEMPTS: usize = 5;

/// Typed registry operations over one table. Clone is cheap.
#[derive(Clone)]
pub struct Registry {
    table: Arc<dyn ItemStore>,
}

fn decode<T: DeserializeOwned>(key: &Key, data: Value) -> Result<T, StoreError> {
    serde_json::from_value(data).map_err(|e| StoreError::Internal(format!("item {key}: {e}")))
}

fn encode<T: Serialize>(value: &T) -> Result<Value, StoreError> {
    serde_json::to_value(value).map_err(|e| StoreError::Internal(e.to_string()))
}

fn precondition(expected: Option<u64>) -> Precondition {
    match expected {
        None => Precondition::NotExists,
        Some(v) => Precondition::Version(v),
    }
}

impl Registry {
    pub fn new(table: Arc<dyn ItemStore>) -> Self {
        Self { table }
    }

    pub fn table(&self) -> &Arc<dyn ItemStore> {
        &self.table
    }

    async fn get_versioned<T: DeserializeOwned>(
        &self,
        key: Key,
    ) -> Result<Option<Versioned<T>>, StoreError> {
        match self.table.get(&key).await? {
            Some(item) => Ok(Some(Versioned {
                value: decode(&key, item.data)?,
                version: item.version,
            })),
            None => Ok(None),
        }
    }

    /// Publishes an immutable manifest version: same content again is a no-op, different
    /// content under an existing version is a conflict. The manifest and the library entry
    /// that lists its versions are written in one transaction.
    pub async fn publish_manifest(&self, manifest: &Manifest) -> Result<Published, StoreError> {
        let key = keys::manifest(&manifest.name, &manifest.version);
        let catalog = keys::catalog(&manifest.name);
        let data = encode(manifest)?;
        for _ in 0..CATALOG_ATTEMPTS {
            let (mut versions, pre, listed) = self.catalog_entry(&manifest.name).await?;
            if versions.contains(&manifest.version) {
                let published = self.republished(manifest, &key).await?;
                if !listed {
                    // Written before the library listed versions: list them now.
                    let entry = encode(&CatalogEntry {
                        name: manifest.name.clone(),
                        versions: Some(versions),
                    })?;
                    match self.table.put(&catalog, &entry, pre).await {
                        Ok(_) | Err(StoreError::Conflict { .. }) => {}
                        Err(e) => return Err(e),
                    }
                }
                return Ok(published);
            }
            versions.push(manifest.version.clone());
            sort_versions(&mut versions);
            let entry = encode(&CatalogEntry {
                name: manifest.name.clone(),
                versions: Some(versions),
            })?;
            let written = self
                .table
                .transact_put(&[
                    (key.clone(), data.clone(), Precondition::NotExists),
                    (catalog.clone(), entry.clone(), pre),
                ])
                .await;
            match written {
                Ok(()) => return Ok(Published::Created),
                Err(StoreError::Conflict { .. }) => {
                    // The manifest exists but the entry does not list it (a publish before
                    // the two were written together stopped in between): list it now.
                    if self
                        .get_manifest(&manifest.name, &manifest.version)
                        .await?
                        .is_some()
                    {
                        let published = self.republished(manifest, &key).await?;
                        match self.table.put(&catalog, &entry, pre).await {
                            Ok(_) => return Ok(published),
                            Err(StoreError::Conflict { .. }) => {}
                            Err(e) => return Err(e),
                        }
                    }
                    // Otherwise another publish of this plugin landed first: read again.
                }
                Err(e) => return Err(e),
            }
        }
        Err(StoreError::Unavailable(format!(
            "the library entry of {} kept changing during {CATALOG_ATTEMPTS} attempts",
            manifest.name
        )))
    }

    /// `Unchanged` if the stored manifest of that version is `manifest`, else a conflict.
    async fn republished(&self, manifest: &Manifest, key: &Key) -> Result<Published, StoreError> {
        match self.get_manifest(&manifest.name, &manifest.version).await? {
            Some(existing) if existing == *manifest => Ok(Published::Unchanged),
            Some(_) => Err(StoreError::Conflict {
                key: key.to_string(),
                current: None,
                found: None,
            }),
            // Listed but absent: only a hand-edited table gets here; write it.
            None => {
                self.table
                    .put(key, &encode(manifest)?, Precondition::NotExists)
                    .await?;
                Ok(Published::Created)
            }
        }
    }

    /// A plugin's published versions, the precondition for rewriting its library entry, and
    /// whether the entry lists them itself.
    async fn catalog_entry(
        &self,
        plugin: &PluginName,
    ) -> Result<(Vec<String>, Precondition, bool), StoreError> {
        let key = keys::catalog(plugin);
        match self.table.get(&key).await? {
            Some(item) => {
                let version = item.version;
                let entry: CatalogEntry = decode(&key, item.data)?;
                let listed = entry.versions.is_some();
                let versions = self.entry_versions(plugin, entry.versions).await?;
                Ok((versions, Precondition::Version(version), listed))
            }
            // No entry: a new plugin, or one whose entry write was lost before the two were
            // written together; its partition says which.
            None => Ok((
                self.entry_versions(plugin, None).await?,
                Precondition::NotExists,
                false,
            )),
        }
    }

    /// The versions an entry lists; an entry from before they were listed costs one read of
    /// the plugin's partition.
    async fn entry_versions(
        &self,
        plugin: &PluginName,
        listed: Option<Vec<String>>,
    ) -> Result<Vec<String>, StoreError> {
        if let Some(v) = listed {
            return Ok(v);
        }
        let items = query_all(self.table.as_ref(), &keys::manifests(plugin)).await?;
        let mut versions: Vec<String> = items
            .into_iter()
            .filter_map(|i| i.key.sk.strip_prefix("V#").map(str::to_owned))
            .collect();
        sort_versions(&mut versions);
        Ok(versions)
    }

    /// The plugin library: every published plugin with its versions (oldest first), in name
    /// order. One query of the library's partition, whatever the number of manifests.
    pub async fn library(&self) -> Result<Vec<LibraryEntry>, StoreError> {
        let mut out = Vec::new();
        for item in query_all(self.table.as_ref(), keys::CATALOG).await? {
            let entry: CatalogEntry = decode(&item.key, item.data)?;
            let versions = self.entry_versions(&entry.name, entry.versions).await?;
            out.push(LibraryEntry {
                name: entry.name,
                versions,
            });
        }
        Ok(out)
    }

    pub async fn get_manifest(
        &self,
        plugin: &PluginName,
        version: &str,
    ) -> Result<Option<Manifest>, StoreError> {
        let key = keys::manifest(plugin, version);
        match self.table.get(&key).await? {
            Some(item) => Ok(Some(decode(&key, item.data)?)),
            None => Ok(None),
        }
    }

    /// Fetches many manifest versions in one batch read.
    pub async fn get_manifests(
        &self,
        wanted: &[(PluginName, String)],
    ) -> Result<Vec<Manifest>, StoreError> {
        let keys: Vec<Key> = wanted.iter().map(|(p, v)| keys::manifest(p, v)).collect();
        self.table
            .batch_get(&keys)
            .await?
            .into_iter()
            .map(|item| decode(&item.key, item.data))
            .collect()
    }

    /// A plugin's published versions, oldest first: one read of its library entry.
    pub async fn manifest_versions(&self, plugin: &PluginName) -> Result<Vec<String>, StoreError> {
        Ok(self.catalog_entry(plugin).await?.0)
    }

    pub async fn get_profile(
        &self,
        org: &OrgId,
    ) -> Result<Option<Versioned<OrgProfile>>, StoreError> {
        self.get_versioned(keys::profile(org)).await
    }

    /// `expected`: `None` creates (fails if present), `Some(v)` updates version `v`.
    pub async fn put_profile(
        &self,
        org: &OrgId,
        profile: &OrgProfile,
        expected: Option<u64>,
    ) -> Result<u64, StoreError> {
        self.table
            .put(
                &keys::profile(org),
                &encode(profile)?,
                precondition(expected),
            )
            .await
    }

    pub async fn get_instance(
        &self,
        org: &OrgId,
        plugin: &PluginName,
    ) -> Result<Option<Versioned<PluginInstance>>, StoreError> {
        self.get_versioned(keys::instance(org, plugin)).await
    }

    pub async fn put_instance(
        &self,
        org: &OrgId,
        instance: &PluginInstance,
        expected: Option<u64>,
    ) -> Result<u64, StoreError> {
        self.table
            .put(
                &keys::instance(org, &instance.plugin),
                &encode(instance)?,
                precondition(expected),
            )
            .await
    }

    pub async fn get_channel(
        &self,
        org: &OrgId,
        channel: &Channel,
    ) -> Result<Option<Versioned<ChannelConfig>>, StoreError> {
        self.get_versioned(keys::channel(org, channel)).await
    }

    /// Refuses (422) a config that assigns a plugin twice, whoever writes it.
    pub async fn put_channel(
        &self,
        org: &OrgId,
        channel: &Channel,
        config: &ChannelConfig,
        expected: Option<u64>,
    ) -> Result<u64, Error> {
        config.validate()?;
        Ok(self
            .table
            .put(
                &keys::channel(org, channel),
                &encode(config)?,
                precondition(expected),
            )
            .await?)
    }

    /// [`Registry::put_channel`], written only while each of `instances` (plugin, version
    /// read) is unchanged, in one transaction: the admin API checks that the plugins a
    /// channel assigns are enabled, and a disable landing between that check and this write
    /// must not leave a saved channel that the check would have refused.
    pub async fn put_channel_checked(
        &self,
        org: &OrgId,
        channel: &Channel,
        config: &ChannelConfig,
        expected: Option<u64>,
        instances: &[(PluginName, u64)],
    ) -> Result<u64, Error> {
        config.validate()?;
        if instances.len() >= crate::ports::MAX_TRANSACT_ITEMS {
            return Err(Error::invalid_field(
                "/plugin_assignments",
                format!(
                    "a channel assigns at most {} plugins",
                    crate::ports::MAX_TRANSACT_ITEMS - 1
                ),
            ));
        }
        let key = keys::channel(org, channel);
        let data = encode(config)?;
        let checked: Vec<Key> = instances
            .iter()
            .map(|(plugin, _)| keys::instance(org, plugin))
            .collect();
        let mut writes = vec![Write::Put {
            key: &key,
            data: &data,
            pre: precondition(expected),
        }];
        writes.extend(
            checked
                .iter()
                .zip(instances)
                .map(|(k, (_, v))| Write::Check {
                    key: k,
                    pre: Precondition::Version(*v),
                }),
        );
        match self.table.transact_write(&writes).await {
            Ok(()) => Ok(expected.map_or(1, |v| v + 1)),
            Err(StoreError::Conflict { key: failed, .. }) if failed != key.to_string() => {
                let plugin = instances
                    .iter()
                    .zip(&checked)
                    .find(|(_, k)| k.to_string() == failed)
                    .map_or_else(
                        || "an assigned plugin".to_owned(),
                        |((p, _), _)| p.to_string(),
                    );
                Err(Error::conflict(format!(
                    "{plugin}'s instance changed (enabled, disabled or reconfigured) while channel {channel} was saved, so it was not saved: read the instance and the channel again and retry"
                )))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Profile, instances, channels and connections of one organization in one partition
    /// query.
    pub async fn org_snapshot(&self, org: &OrgId) -> Result<OrgSnapshot, StoreError> {
        let mut snap = OrgSnapshot::default();
        for item in query_all(self.table.as_ref(), &keys::org(org)).await? {
            let version = item.version;
            if item.key.sk == "PROFILE" {
                snap.profile = Some(Versioned {
                    value: decode(&item.key, item.data)?,
                    version,
                });
            } else if item.key.sk.starts_with("INST#") {
                snap.instances.push(Versioned {
                    value: decode(&item.key, item.data)?,
                    version,
                });
            } else if let Some(name) = item.key.sk.strip_prefix("CHAN#") {
                let channel = Channel::parse(name)
                    .map_err(|e| StoreError::Internal(format!("item {}: {e}", item.key)))?;
                snap.channels.push((
                    channel,
                    Versioned {
                        value: decode(&item.key, item.data)?,
                        version,
                    },
                ));
            } else if item.key.sk.starts_with("CONN#") {
                snap.connections.push(decode(&item.key, item.data)?);
            } else if item.key.sk.starts_with("BAGENT#") {
                snap.bedrock_agents.push(decode(&item.key, item.data)?);
            }
        }
        Ok(snap)
    }

    pub async fn get_api_key(&self, hash: &KeyHash) -> Result<Option<ApiKeyRecord>, StoreError> {
        Ok(self
            .get_versioned(keys::api_key(hash))
            .await?
            .map(|v: Versioned<ApiKeyRecord>| v.value))
    }

    /// Stores a new key and its org index entry together; a second key with the same hash
    /// is a conflict.
    pub async fn create_api_key(
        &self,
        hash: &KeyHash,
        record: &ApiKeyRecord,
    ) -> Result<ApiKeyMeta, StoreError> {
        let (meta, index) = key_index(hash, record);
        self.table
            .transact_put(&[
                (
                    keys::api_key(hash),
                    encode(record)?,
                    Precondition::NotExists,
                ),
                (
                    keys::key_index(&record.org, &meta.id),
                    encode(&index)?,
                    Precondition::NotExists,
                ),
            ])
            .await?;
        Ok(meta)
    }

    /// The org's keys (never the keys themselves).
    pub async fn list_api_keys(&self, org: &OrgId) -> Result<Vec<ApiKeyMeta>, StoreError> {
        let mut out = Vec::new();
        for item in query_all(self.table.as_ref(), &keys::org(org)).await? {
            if item.key.sk.starts_with("KEY#") {
                let index: KeyIndex = decode(&item.key, item.data)?;
                out.push(index.meta);
            }
        }
        Ok(out)
    }

    /// Revokes the org's key `id`; `None` when the org has no such key. Both items change
    /// in one transaction, and only this org's index can name the key.
    pub async fn revoke_api_key(
        &self,
        org: &OrgId,
        id: &str,
    ) -> Result<Option<ApiKeyMeta>, StoreError> {
        if id.len() != 16 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(None);
        }
        let Some(index) = self
            .get_versioned::<KeyIndex>(keys::key_index(org, id))
            .await?
        else {
            return Ok(None);
        };
        let hash = KeyHash(index.value.hash.clone());
        let Some(key) = self
            .get_versioned::<ApiKeyRecord>(keys::api_key(&hash))
            .await?
        else {
            return Err(StoreError::Internal(format!("key index {id} names no key")));
        };
        if key.value.org != *org {
            return Ok(None);
        }
        let mut record = key.value;
        record.revoked = true;
        let mut index_value = index.value;
        index_value.meta.revoked = true;
        self.table
            .transact_put(&[
                (
                    keys::api_key(&hash),
                    encode(&record)?,
                    Precondition::Version(key.version),
                ),
                (
                    keys::key_index(org, id),
                    encode(&index_value)?,
                    Precondition::Version(index.version),
                ),
            ])
            .await?;
        Ok(Some(index_value.meta))
    }

    /// The org's credentials as the registry knows them: references and field names, never
    /// values (those are in the secret store).
    pub async fn list_credentials(
        &self,
        org: &OrgId,
    ) -> Result<Vec<Versioned<CredentialMeta>>, StoreError> {
        let mut out = Vec::new();
        for item in query_all(self.table.as_ref(), &keys::org(org)).await? {
            if item.key.sk.starts_with("CRED#") {
                out.push(Versioned {
                    value: decode(&item.key, item.data)?,
                    version: item.version,
                });
            }
        }
        Ok(out)
    }

    pub async fn get_credential_versioned(
        &self,
        org: &OrgId,
        name: &str,
    ) -> Result<Option<Versioned<CredentialMeta>>, StoreError> {
        if !crate::ids::is_valid_name(name) {
            return Ok(None);
        }
        self.get_versioned(keys::credential(org, name)).await
    }

    pub async fn delete_credential(
        &self,
        org: &OrgId,
        name: &str,
        expected: u64,
    ) -> Result<(), StoreError> {
        self.table
            .delete(
                &keys::credential(org, name),
                Precondition::Version(expected),
            )
            .await
            .map(|_| ())
    }

    /// Whether any item (profile, instance, channel, key, credential) names `org`.
    pub async fn org_exists(&self, org: &OrgId) -> Result<bool, StoreError> {
        Ok(!self
            .table
            .query(&keys::org(org), None, Some(1))
            .await?
            .items
            .is_empty())
    }

    /// A new organization: its profile, its first key and the key's index entry, all or none.
    pub async fn create_org(
        &self,
        org: &OrgId,
        profile: &OrgProfile,
        hash: &KeyHash,
        record: &ApiKeyRecord,
    ) -> Result<ApiKeyMeta, StoreError> {
        let (meta, index) = key_index(hash, record);
        self.table
            .transact_put(&[
                (
                    keys::profile(org),
                    encode(profile)?,
                    Precondition::NotExists,
                ),
                (
                    keys::api_key(hash),
                    encode(record)?,
                    Precondition::NotExists,
                ),
                (
                    keys::key_index(org, &meta.id),
                    encode(&index)?,
                    Precondition::NotExists,
                ),
            ])
            .await?;
        Ok(meta)
    }

    /// Stores a connection and its org index entry together.
    pub async fn create_connection(&self, conn: &Connection) -> Result<(), StoreError> {
        let value = encode(conn)?;
        self.table
            .transact_put(&[
                (
                    keys::connection(&conn.id),
                    value.clone(),
                    Precondition::NotExists,
                ),
                (
                    keys::connection_index(&conn.org, &conn.id),
                    value,
                    Precondition::NotExists,
                ),
            ])
            .await
    }

    /// The connection `id`, whichever org holds it: the signed routes' only lookup.
    pub async fn get_connection(
        &self,
        id: &ConnectionId,
    ) -> Result<Option<Connection>, StoreError> {
        Ok(self
            .get_versioned(keys::connection(id))
            .await?
            .map(|v: Versioned<Connection>| v.value))
    }

    /// Deletes the org's connection `id` and its index entry in one transaction; `None` when
    /// the org has no such connection.
    pub async fn delete_connection(
        &self,
        org: &OrgId,
        id: &ConnectionId,
    ) -> Result<Option<Connection>, StoreError> {
        let index_key = keys::connection_index(org, id);
        let Some(index) = self.get_versioned::<Connection>(index_key.clone()).await? else {
            return Ok(None);
        };
        if index.value.org != *org {
            return Err(StoreError::Internal(format!(
                "connection index {id} under {org} names another org"
            )));
        }
        self.table
            .transact_write(&[
                // None: an index entry left by an interrupted delete of an older version can
                // still be deleted; the index's version guards against a concurrent change.
                Write::Delete {
                    key: &keys::connection(id),
                    pre: Precondition::None,
                },
                Write::Delete {
                    key: &index_key,
                    pre: Precondition::Version(index.version),
                },
            ])
            .await?;
        Ok(Some(index.value))
    }

    /// Maps a Bedrock agent alias, with the org's index entry, in one transaction; a
    /// conflict when the alias is mapped already.
    pub async fn create_bedrock_agent(&self, mapping: &BedrockAgent) -> Result<(), StoreError> {
        let value = encode(mapping)?;
        self.table
            .transact_put(&[
                (
                    keys::bedrock_agent(&mapping.agent),
                    value.clone(),
                    Precondition::NotExists,
                ),
                (
                    keys::bedrock_agent_index(&mapping.org, &mapping.agent),
                    value,
                    Precondition::NotExists,
                ),
            ])
            .await
    }

    /// The mapping of a Bedrock agent alias, whichever org it names: the action groups'
    /// only lookup.
    pub async fn get_bedrock_agent(
        &self,
        agent: &BedrockAgentRef,
    ) -> Result<Option<BedrockAgent>, StoreError> {
        Ok(self
            .get_versioned(keys::bedrock_agent(agent))
            .await?
            .map(|v: Versioned<BedrockAgent>| v.value))
    }

    /// Removes a Bedrock agent alias's mapping and its org index entry in one transaction;
    /// `None` when the alias is not mapped.
    pub async fn delete_bedrock_agent(
        &self,
        agent: &BedrockAgentRef,
    ) -> Result<Option<BedrockAgent>, StoreError> {
        let key = keys::bedrock_agent(agent);
        let Some(found) = self.get_versioned::<BedrockAgent>(key.clone()).await? else {
            return Ok(None);
        };
        self.table
            .transact_write(&[
                Write::Delete {
                    key: &key,
                    pre: Precondition::Version(found.version),
                },
                // None: an index entry left without its mapping can still go.
                Write::Delete {
                    key: &keys::bedrock_agent_index(&found.value.org, agent),
                    pre: Precondition::None,
                },
            ])
            .await?;
        Ok(Some(found.value))
    }

    /// `expected`: `None` creates (fails if present), `Some(v)` updates version `v`.
    pub async fn put_credential(
        &self,
        org: &OrgId,
        meta: &CredentialMeta,
        expected: Option<u64>,
    ) -> Result<u64, StoreError> {
        self.table
            .put(
                &keys::credential(org, &meta.name),
                &encode(meta)?,
                precondition(expected),
            )
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_configs_refuse_duplicates_and_fractional_priorities() {
        let ok = serde_json::json!({"plugin_assignments": [
            {"plugin": "booking", "priority": 1}, {"plugin": "crm", "priority": 2, "enabled": false}]});
        assert_eq!(
            ChannelConfig::from_json(&ok)
                .unwrap()
                .plugin_assignments
                .len(),
            2
        );

        let dup = serde_json::json!({"plugin_assignments": [
            {"plugin": "booking", "priority": 1}, {"plugin": "booking", "priority": 2}]});
        let e = ChannelConfig::from_json(&dup).unwrap_err();
        assert_eq!(e.status(), 422);
        assert_eq!(
            e.to_body()["error"]["details"][0]["path"],
            "/plugin_assignments/1/plugin"
        );

        for bad in [serde_json::json!(1.5), serde_json::json!("1")] {
            let v = serde_json::json!({"plugin_assignments": [
                {"plugin": "booking", "priority": 1}, {"plugin": "crm", "priority": bad}]});
            let e = ChannelConfig::from_json(&v).unwrap_err();
            assert_eq!(e.status(), 422, "{e}");
            assert_eq!(
                e.to_body()["error"]["details"][0]["path"],
                "/plugin_assignments/1/priority"
            );
        }
    }

    #[test]
    fn key_hash_is_hex_sha256() {
        assert_eq!(
            KeyHash::of("abc").as_str(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn keys_follow_the_single_table_model() {
        let org = OrgId::parse("acme").unwrap();
        let p = PluginName::parse("booking").unwrap();
        assert_eq!(
            keys::instance(&org, &p),
            Key::new("ORG#acme", "INST#booking")
        );
        assert_eq!(
            keys::manifest(&p, "1.2.3"),
            Key::new("PLUGIN#booking", "V#1.2.3")
        );
    }
}
