//! Building agents from the registry: one `Query` on the org partition and one
//! `BatchGetItem` for the pinned manifests, whatever the number of plugins; repeat builds on
//! a warm container come from a TTL cache.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use crate::agent::{Agent, assemble, channel_config, usable};
use crate::cache::TtlCache;
use crate::error::Error;
use crate::ids::{Channel, OrgId, PluginName};
use crate::manifest::Manifest;
use crate::registry::{OrgSnapshot, Registry};

pub struct AgentBuilder {
    registry: Registry,
    cache: TtlCache<(OrgId, Channel), Arc<Agent>>,
}

impl AgentBuilder {
    pub fn new(registry: Registry, cache_ttl: Duration) -> Self {
        Self {
            registry,
            cache: TtlCache::new(cache_ttl),
        }
    }

    pub async fn build(&self, org: &OrgId, channel: &Channel) -> Result<Arc<Agent>, Error> {
        let key = (org.clone(), channel.clone());
        if let Some(agent) = self.cache.get(&key) {
            return Ok(agent);
        }
        let snapshot = self.registry.org_snapshot(org).await?;
        // An unknown channel fails before any read.
        channel_config(&snapshot, channel)?;
        let manifests = manifests(&self.registry, channel, &[&snapshot]).await?;
        let agent = Arc::new(assemble(org, channel, &snapshot, &manifests)?);
        self.cache.insert(key, agent.clone());
        Ok(agent)
    }
}

/// Exactly the manifests the channel's agent uses in any of `snapshots` (a saved state and a
/// draft of it), in one read.
pub(crate) async fn manifests(
    registry: &Registry,
    channel: &Channel,
    snapshots: &[&OrgSnapshot],
) -> Result<HashMap<(PluginName, String), Manifest>, Error> {
    let mut wanted = Vec::new();
    for snap in snapshots {
        if let Ok(config) = channel_config(snap, channel) {
            wanted.extend(
                usable(config, snap, &mut Vec::new())
                    .into_iter()
                    .map(|(_, i)| (i.plugin.clone(), i.pinned_version.clone())),
            );
        }
    }
    wanted.sort();
    wanted.dedup();
    if wanted.is_empty() {
        return Ok(HashMap::new());
    }
    Ok(registry
        .get_manifests(&wanted)
        .await?
        .into_iter()
        .map(|m| ((m.name.clone(), m.version.clone()), m))
        .collect())
}
