//! The dry run of a channel's agent (`POST /admin/channels/{channel}/preview`): the agent a
//! draft channel config and draft instance configs would give, next to the saved one, and
//! what differs (instructions; tools added, removed, changed). It writes nothing.

use std::collections::BTreeMap;

use super::channels::only_enabled;
use super::instances::InstancePatch;
use super::*;
use crate::agent::dialects::{Format, export};
use crate::agent::{Agent, AgentTool, assemble, channel_config};

impl AdminService {
    pub(super) async fn preview(&self, org: &OrgId, channel: &Channel, body: &[u8]) -> Reply {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Draft {
            /// The channel's config as it would be written (`PUT /admin/channels/{channel}`).
            channel: Option<Value>,
            /// Instance patches by plugin, as `PUT /admin/instances/{plugin}` takes them.
            #[serde(default)]
            instances: BTreeMap<String, Value>,
            /// An export format (`GET /agents/{channel}?format=`): both agents in it too.
            format: Option<String>,
        }
        let draft: Draft = parse_as(body)?;
        let format = draft
            .format
            .as_deref()
            .map(Format::parse)
            .transpose()
            .map_err(|e| Error::invalid_field("/format", e.to_string()))?;
        let saved = self.registry.org_snapshot(org).await?;
        let mut drafted = saved.clone();
        for (name, patch) in draft.instances {
            let at = format!("/instances/{name}");
            let plugin = PluginName::parse(&name)
                .map_err(|e| Error::invalid_field(at.clone(), e.to_string()))?;
            let under = |e: Error| under(&at, e);
            let patch: InstancePatch = serde_json::from_value(patch)
                .map_err(|e| Error::invalid_field(at.clone(), e.to_string()))?;
            let written_adapter = patch.adapter().map_err(under)?;
            let i = drafted
                .instances
                .iter()
                .position(|i| i.value.plugin == plugin);
            let base = i.map(|i| drafted.instances[i].value.clone());
            let instance = self
                .patched_instance(&plugin, base.as_ref(), patch, written_adapter)
                .await
                .map_err(under)?;
            match i {
                Some(i) => drafted.instances[i].value = instance,
                None => drafted.instances.push(Versioned {
                    value: instance,
                    version: 0,
                }),
            }
        }
        if let Some(value) = draft.channel {
            let under = |e: Error| under("/channel", e);
            let config = ChannelConfig::from_json(&value).map_err(under)?;
            only_enabled(&config, &drafted.instances).map_err(under)?;
            for (i, a) in config.plugin_assignments.iter().enumerate() {
                let Some(d) = &a.data_adapter else { continue };
                if let Some(inst) = drafted
                    .instances
                    .iter()
                    .find(|x| x.value.plugin == a.plugin)
                {
                    let m = self.manifest(&a.plugin, &inst.value.pinned_version).await?;
                    let at = format!("/plugin_assignments/{i}/data_adapter");
                    supports(&m, d.kind, &at).map_err(under)?;
                }
            }
            match drafted.channels.iter_mut().find(|(c, _)| c == channel) {
                Some((_, v)) => v.value = config,
                None => drafted.channels.push((
                    channel.clone(),
                    Versioned {
                        value: config,
                        version: 0,
                    },
                )),
            }
        }
        let manifests =
            crate::agent::builder::manifests(&self.registry, channel, &[&saved, &drafted]).await?;
        // A saved state that does not build (say, a template error) is what a draft may fix:
        // the draft is still shown, against nothing.
        let (before, saved_error) = match channel_config(&saved, channel) {
            Ok(_) => match assemble(org, channel, &saved, &manifests) {
                Ok(agent) => (Some(agent), None),
                // The caller's message: an internal cause stays out of the answer, in the log.
                Err(e) => {
                    if e.status() >= 500 {
                        tracing::error!(error = ?e, "saved agent did not build for a preview");
                    }
                    (None, Some(e.to_body()["error"]["message"].clone()))
                }
            },
            Err(_) => (None, None),
        };
        let after = assemble(org, channel, &drafted, &manifests)?;
        // A format this deployment cannot export (Vapi's and Retell's need the public URL)
        // leaves the diff standing, with the reason.
        let exported = format.map(|f| {
            let both = before
                .as_ref()
                .map(|b| export(b, f, &self.export))
                .transpose()
                .and_then(|saved| Ok((saved, export(&after, f, &self.export)?)));
            match both {
                Ok((saved, draft)) => json!({"format": f.as_str(), "saved": saved, "draft": draft}),
                Err(e) => json!({"format": f.as_str(), "error": e.to_body()["error"]["message"]}),
            }
        });
        ok(
            200,
            json!({
                "export": exported,
                "saved": before.as_ref().map(Agent::to_json),
                "saved_error": saved_error,
                "draft": after.to_json(),
                "draft_skipped": after.skipped,
                "diff": diff(before.as_ref(), &after),
            }),
        )
    }
}

/// A draft's refusal, with its fields' paths under where the draft put them.
fn under(at: &str, e: Error) -> Error {
    match e {
        Error::Validation {
            code,
            message,
            details,
        } => Error::Validation {
            code,
            message,
            details: prefixed(at, details),
        },
        other => other,
    }
}

/// What `after` changes against `before` (none: every tool is new).
fn diff(before: Option<&Agent>, after: &Agent) -> Value {
    let tools = |a: Option<&Agent>| -> BTreeMap<String, AgentTool> {
        a.map(|a| {
            a.tools
                .iter()
                .map(|t| (t.name.clone(), t.clone()))
                .collect()
        })
        .unwrap_or_default()
    };
    let (old, new) = (tools(before), tools(Some(after)));
    let added: Vec<&String> = new.keys().filter(|k| !old.contains_key(*k)).collect();
    let removed: Vec<&String> = old.keys().filter(|k| !new.contains_key(*k)).collect();
    let changed: Vec<Value> = new
        .iter()
        .filter_map(|(name, t)| {
            let o = old.get(name)?;
            let fields: Vec<&str> = [
                ("description", o.description != t.description),
                ("parameters", o.parameters != t.parameters),
                ("plugin", o.plugin != t.plugin),
                ("function", o.function != t.function),
                ("route", o.route != t.route),
                ("data_adapter", o.data_adapter.kind != t.data_adapter.kind),
            ]
            .into_iter()
            .filter_map(|(f, differs)| differs.then_some(f))
            .collect();
            (!fields.is_empty()).then(|| json!({"name": name, "fields": fields}))
        })
        .collect();
    let saved_instructions = before.map(|b| b.instructions.as_str());
    json!({
        "instructions": {
            "changed": saved_instructions != Some(after.instructions.as_str()),
            "saved": saved_instructions,
            "draft": after.instructions,
        },
        "tools": {"added": added, "removed": removed, "changed": changed},
    })
}
