//! Building agents from the registry: one `Query` on the org partition and one
//! `BatchGetItem` for the pinned manifests, whatever the number of plugins; repeat builds on
//! a warm container come from a TTL cache.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use crate::agent::{Agent, assemble};
use crate::cache::TtlCache;
use crate::error::Error;
use crate::ids::{Channel, OrgId};
use crate::registry::Registry;

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
        // Only the manifests the agent can use: enabled assignments of enabled instances.
        let mut wanted: Vec<_> = snapshot
            .channels
            .iter()
            .filter(|(c, _)| c == channel)
            .flat_map(|(_, cfg)| cfg.value.plugin_assignments.iter().filter(|a| a.enabled))
            .filter_map(|a| {
                snapshot
                    .instances
                    .iter()
                    .find(|i| i.value.plugin == a.plugin && i.value.enabled)
                    .map(|i| (i.value.plugin.clone(), i.value.pinned_version.clone()))
            })
            .collect();
        wanted.sort();
        wanted.dedup();
        let manifests = if wanted.is_empty() {
            HashMap::new()
        } else {
            self.registry
                .get_manifests(&wanted)
                .await?
                .into_iter()
                .map(|m| ((m.name.clone(), m.version.clone()), m))
                .collect()
        };
        let agent = Arc::new(assemble(org, channel, &snapshot, &manifests)?);
        self.cache.insert(key, agent.clone());
        Ok(agent)
    }
}
