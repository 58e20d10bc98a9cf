//! The single-table key layout (ARCHITECTURE.md, "Registry data model"): every item's
//! partition and sort key, in one place.

use crate::ids::{BedrockAgentRef, Channel, ConnectionId, OrgId, PluginName};
use crate::ports::Key;

use super::model::KeyHash;

pub const CATALOG: &str = "PLUGINS";

pub fn manifest(plugin: &PluginName, version: &str) -> Key {
    Key::new(manifests(plugin), format!("V#{version}"))
}
/// The partition of a plugin's manifest versions.
pub fn manifests(plugin: &PluginName) -> String {
    format!("PLUGIN#{plugin}")
}
pub fn org(org: &OrgId) -> String {
    format!("ORG#{org}")
}
pub fn profile(org: &OrgId) -> Key {
    Key::new(self::org(org), "PROFILE")
}
pub fn instance(org: &OrgId, plugin: &PluginName) -> Key {
    Key::new(self::org(org), format!("INST#{plugin}"))
}
pub fn channel(org: &OrgId, channel: &Channel) -> Key {
    Key::new(self::org(org), format!("CHAN#{channel}"))
}
/// The plugin library's index: one item per published plugin name.
pub fn catalog(plugin: &PluginName) -> Key {
    Key::new(CATALOG, plugin.as_str())
}
/// An org's index entry for one of its API keys (listing and revoking by id).
pub fn key_index(org: &OrgId, id: &str) -> Key {
    Key::new(org_pk(org), format!("KEY#{id}"))
}
/// An org's credential metadata (the value is in the secret store).
pub fn credential(org: &OrgId, name: &str) -> Key {
    Key::new(org_pk(org), format!("CRED#{name}"))
}
fn org_pk(o: &OrgId) -> String {
    org(o)
}
pub fn api_key(hash: &KeyHash) -> Key {
    Key::new(format!("KEY#{}", hash.as_str()), "KEY")
}
/// A voice-platform connection, found by its id alone (the request names no org).
pub fn connection(id: &ConnectionId) -> Key {
    Key::new(format!("CONN#{id}"), "CONN")
}
/// An org's index entry for one of its connections (listing, deleting).
pub fn connection_index(org: &OrgId, id: &ConnectionId) -> Key {
    Key::new(org_pk(org), format!("CONN#{id}"))
}
/// A Bedrock agent alias's mapping, found by the ids in the action group's event alone.
pub fn bedrock_agent(agent: &BedrockAgentRef) -> Key {
    Key::new(
        format!("BAGENT#{}#{}", agent.agent_id, agent.alias_id),
        "BAGENT",
    )
}
/// An org's index entry for a Bedrock agent alias mapped to it (listing).
pub fn bedrock_agent_index(org: &OrgId, agent: &BedrockAgentRef) -> Key {
    Key::new(
        org_pk(org),
        format!("BAGENT#{}#{}", agent.agent_id, agent.alias_id),
    )
}
