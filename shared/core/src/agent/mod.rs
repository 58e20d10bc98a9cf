//! Agent assembly: for one (organization, channel), the merged instructions and the tools of
//! the assigned plugins. `assemble` is a pure function of a registry snapshot; `dialects`
//! exports the result in the formats channels and model APIs speak.

pub mod builder;
pub mod dialects;
pub mod service;

use std::collections::HashMap;

use serde::Serialize;
use serde_json::Value;

use crate::error::{Detail, Error};
use crate::ids::{Channel, ConnectionId, FunctionName, OrgId, PluginName, VoicePlatform};
use crate::manifest::{Annotations, Manifest, overlay};
use crate::registry::{Assignment, ChannelConfig, DataAdapterConfig, OrgSnapshot, PluginInstance};
use crate::toolnames;

/// One tool of an assembled agent.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AgentTool {
    /// Unique across the agent: the declared name, or a qualified one on a collision
    /// ([`crate::toolnames`]).
    pub name: String,
    pub description: String,
    /// The function's JSON Schema, as declared (`type: object`).
    pub parameters: Value,
    pub plugin: PluginName,
    pub function: FunctionName,
    /// Where to call it: `POST <route>` with `{"function", "parameters"}`.
    pub route: String,
    #[serde(skip)]
    pub annotations: Annotations,
    /// The function's declared result schema, if any.
    #[serde(skip)]
    pub output_schema: Option<Value>,
    #[serde(skip)]
    pub data_adapter: DataAdapterConfig,
}

/// An assigned plugin left out of the agent, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Skipped {
    pub plugin: PluginName,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Agent {
    pub org: OrgId,
    pub channel: Channel,
    /// The locale the agent speaks: the channel's, else the organization profile's.
    pub locale: String,
    pub instructions: String,
    /// In priority order, then by plugin name, then in manifest order.
    pub tools: Vec<AgentTool>,
    pub skipped: Vec<Skipped>,
    /// The channel's voice-platform connections, oldest first: Retell and Vapi exports point
    /// their tool URLs at the signed routes of the first one of their platform.
    pub connections: Vec<(VoicePlatform, ConnectionId)>,
}

impl Agent {
    /// The connection a `platform` export's tool URLs go through, if the channel has one.
    pub fn connection(&self, platform: VoicePlatform) -> Option<&ConnectionId> {
        self.connections
            .iter()
            .find(|(p, _)| *p == platform)
            .map(|(_, id)| id)
    }

    /// The default (`?format` absent) JSON: tools plus a routing table keyed by tool name.
    pub fn to_json(&self) -> Value {
        let routing: serde_json::Map<String, Value> = self
            .tools
            .iter()
            .map(|t| {
                (
                    t.name.clone(),
                    // Only the adapter type: its settings name credentials and hosts.
                    serde_json::json!({
                        "plugin": t.plugin, "function": t.function, "route": t.route,
                        "data_adapter": t.data_adapter.kind,
                    }),
                )
            })
            .collect();
        serde_json::json!({
            "org": self.org,
            "channel": self.channel,
            "locale": self.locale,
            "instructions": self.instructions,
            "tools": self.tools,
            "routing": routing,
            "skipped": self.skipped,
        })
    }
}

/// Separates the rendered instructions of consecutive plugins.
pub const INSTRUCTION_SEPARATOR: &str = "\n\n---\n\n";

/// Template evaluation budget: a runaway template fails instead of burning the Lambda.
const TEMPLATE_FUEL: u64 = 50_000;

/// Assembles the agent for `channel` from one org snapshot and the pinned manifests.
pub fn assemble(
    org: &OrgId,
    channel: &Channel,
    snapshot: &OrgSnapshot,
    manifests: &HashMap<(PluginName, String), Manifest>,
) -> Result<Agent, Error> {
    let config = channel_config(snapshot, channel)?;
    let mut skipped = Vec::new();
    let mut chosen = Vec::new();
    for (a, instance) in usable(config, snapshot, &mut skipped) {
        match manifests.get(&(instance.plugin.clone(), instance.pinned_version.clone())) {
            Some(m) => chosen.push((a, instance, m)),
            None => skipped.push(Skipped {
                plugin: a.plugin.clone(),
                reason: format!(
                    "no manifest is registered for {} {}",
                    instance.plugin, instance.pinned_version
                ),
            }),
        }
    }

    let locale = config
        .locale
        .clone()
        .or_else(|| snapshot.profile.as_ref().map(|p| p.value.locale.clone()))
        .unwrap_or_else(|| crate::locale::DEFAULT_LOCALE.to_owned());
    let instructions = match &config.instructions {
        Some(text) => text.clone(),
        None => render_instructions(snapshot, channel, &locale, &chosen)?,
    };

    let mut tools = Vec::new();
    for (a, instance, manifest) in &chosen {
        let adapter = a
            .data_adapter
            .clone()
            .unwrap_or_else(|| instance.data_adapter.clone());
        // A webhook function is its platform's, never an agent's.
        for f in manifest.functions.iter().filter(|f| f.is_tool()) {
            tools.push(AgentTool {
                name: f.name.to_string(),
                description: f.description.clone(),
                parameters: f.parameters.clone(),
                plugin: manifest.name.clone(),
                function: f.name.clone(),
                route: format!("/plugins/{}", manifest.name),
                annotations: f.annotations.clone(),
                output_schema: f.output_schema.clone(),
                data_adapter: adapter.clone(),
            });
        }
    }
    name_tools(&mut tools, &mut skipped);
    let mut connections: Vec<_> = snapshot
        .connections
        .iter()
        .filter(|c| &c.channel == channel)
        .collect();
    connections.sort_by(|a, b| (a.created, &a.id).cmp(&(b.created, &b.id)));
    Ok(Agent {
        org: org.clone(),
        channel: channel.clone(),
        locale,
        instructions,
        tools,
        skipped,
        connections: connections
            .iter()
            .map(|c| (c.platform, c.id.clone()))
            .collect(),
    })
}

/// The channel's enabled assignments whose instance exists and is enabled, by priority then
/// name; the others are recorded in `skipped`. Shared by assembly and by the builder, which
/// fetches exactly these pinned manifests.
pub fn usable<'a>(
    config: &'a ChannelConfig,
    snapshot: &'a OrgSnapshot,
    skipped: &mut Vec<Skipped>,
) -> Vec<(&'a Assignment, &'a PluginInstance)> {
    let mut assignments: Vec<&Assignment> = config
        .plugin_assignments
        .iter()
        .filter(|a| a.enabled)
        .collect();
    assignments.sort_by(|a, b| (a.priority, &a.plugin).cmp(&(b.priority, &b.plugin)));
    let mut out = Vec::with_capacity(assignments.len());
    for a in assignments {
        let reason = match snapshot
            .instances
            .iter()
            .map(|v| &v.value)
            .find(|i| i.plugin == a.plugin)
        {
            None => "the organization has no instance of this plugin",
            Some(i) if !i.enabled => "the plugin instance is disabled",
            Some(i) => {
                out.push((a, i));
                continue;
            }
        };
        skipped.push(Skipped {
            plugin: a.plugin.clone(),
            reason: reason.to_owned(),
        });
    }
    out
}

pub fn channel_config<'a>(
    snapshot: &'a OrgSnapshot,
    channel: &Channel,
) -> Result<&'a ChannelConfig, Error> {
    snapshot
        .channels
        .iter()
        .find(|(c, _)| c == channel)
        .map(|(_, v)| &v.value)
        .ok_or_else(|| Error::NotFound {
            code: "unknown_channel",
            message: format!("this organization has no '{channel}' channel configured"),
        })
}

fn render_instructions(
    snapshot: &OrgSnapshot,
    channel: &Channel,
    locale: &str,
    chosen: &[(&Assignment, &PluginInstance, &Manifest)],
) -> Result<String, Error> {
    let mut env = minijinja::Environment::new();
    env.set_fuel(Some(TEMPLATE_FUEL));
    let profile = snapshot
        .profile
        .as_ref()
        .map(|p| p.value.clone())
        .unwrap_or_default();
    let mut parts = Vec::with_capacity(chosen.len());
    for (_, instance, manifest) in chosen {
        let mut config = manifest.default_config.clone();
        overlay(&mut config, &instance.config);
        let vars = serde_json::json!({"org": profile, "config": config, "channel": channel, "locale": locale});
        let (template, language) = crate::locale::choose(
            locale,
            &manifest.instruction_template,
            &manifest.instruction_templates,
        );
        let at = if language == crate::locale::TEMPLATE_LANGUAGE {
            format!("/plugins/{}/instruction_template", manifest.name)
        } else {
            format!(
                "/plugins/{}/instruction_templates/{language}",
                manifest.name
            )
        };
        let text = env
            .render_str(template, vars)
            .map_err(|e| Error::Validation {
                code: "template_error",
                message: format!(
                    "the {} plugin's instruction_template failed to render: {e}",
                    manifest.name
                ),
                details: vec![Detail::new(at.clone(), e.to_string())],
            })?;
        let text = text.trim();
        if !text.is_empty() {
            parts.push(text.to_owned());
        }
    }
    Ok(parts.join(INSTRUCTION_SEPARATOR))
}

/// Names the tools ([`crate::toolnames`]); a tool that cannot be named is left out, with
/// the reason.
fn name_tools(tools: &mut Vec<AgentTool>, skipped: &mut Vec<Skipped>) {
    let pairs: Vec<(&PluginName, &FunctionName)> =
        tools.iter().map(|t| (&t.plugin, &t.function)).collect();
    let names = toolnames::assign(&pairs);
    let mut kept = Vec::with_capacity(tools.len());
    for (mut t, name) in std::mem::take(tools).into_iter().zip(names) {
        match name {
            Some(n) => {
                t.name = n;
                kept.push(t);
            }
            None => skipped.push(Skipped {
                plugin: t.plugin.clone(),
                reason: format!(
                    "the tool name of {} collides with another tool's after qualification",
                    t.function
                ),
            }),
        }
    }
    *tools = kept;
}
