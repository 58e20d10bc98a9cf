//! Agent build cost for 20 plugins (3 functions each), on the embedded store:
//! - `warm`: a repeat build within the cache TTL (what a warm Lambda container serves);
//! - `assemble`: the pure assembly from a snapshot (template rendering, naming), i.e. the
//!   CPU part of a cold build without the two DynamoDB round trips;
//! - `export_openai`: strict lowering of all 60 tools into OpenAI's dialect.
//!
//! Run: `cargo bench -p switchboard --bench agent_build`

use std::collections::HashMap;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::json;
use switchboard::agent::assemble;
use switchboard::agent::builder::AgentBuilder;
use switchboard::agent::dialects::{ExportOptions, Format, export};
use switchboard::manifest::CompiledManifest;
use switchboard::registry::{Assignment, ChannelConfig, OrgProfile, PluginInstance, Registry};
use switchboard::{Channel, OrgId};
use switchboard_embedded::Embedded;

const PLUGINS: usize = 20;

fn manifest(i: usize) -> switchboard::manifest::Manifest {
    let params = json!({"type": "object", "additionalProperties": false, "required": ["id"],
        "properties": {"id": {"type": "integer", "minimum": 1}, "note": {"type": "string", "maxLength": 500},
                       "when": {"type": "string", "pattern": "^\\d{4}-\\d{2}-\\d{2}$"}}});
    let m = json!({"name": format!("plugin{i}"), "version": "1.0.0", "display_name": format!("Plugin {i}"),
        "description": "bench", "default_config": {"tone": "warm"},
        "instruction_template": "You help {{ org.display_name }} callers on {{ channel }} with plugin {i}, in a {{ config.tone }} tone.",
        "functions": [
            {"name": "Get", "description": "Get one", "side_effects": false, "parameters": params},
            {"name": format!("Create{i}"), "description": "Create one", "side_effects": true, "parameters": params},
            {"name": format!("Cancel{i}"), "description": "Cancel one", "side_effects": true, "parameters": params}]});
    CompiledManifest::from_value(m)
        .map(|c| c.manifest().clone())
        .unwrap_or_else(|e| panic!("{e}"))
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let db = Embedded::in_memory().unwrap();
    let registry = Registry::new(db.registry_table());
    let org = OrgId::parse("bench-org").unwrap();
    let twilio = Channel::parse("twilio").unwrap();
    let manifests: Vec<_> = (0..PLUGINS).map(manifest).collect();
    rt.block_on(async {
        let profile = OrgProfile {
            display_name: "Bench Dental".into(),
            ..Default::default()
        };
        registry.put_profile(&org, &profile, None).await.unwrap();
        let mut assignments = Vec::new();
        for (i, m) in manifests.iter().enumerate() {
            registry.publish_manifest(m).await.unwrap();
            let inst = PluginInstance {
                plugin: m.name.clone(),
                enabled: true,
                pinned_version: "1.0.0".into(),
                config: json!({}),
                data_adapter: Default::default(),
            };
            registry.put_instance(&org, &inst, None).await.unwrap();
            assignments.push(Assignment {
                plugin: m.name.clone(),
                enabled: true,
                priority: i as i64,
                data_adapter: None,
            });
        }
        let chan = ChannelConfig {
            locale: None,
            instructions: None,
            plugin_assignments: assignments,
        };
        registry
            .put_channel(&org, &twilio, &chan, None)
            .await
            .unwrap();
    });

    let builder = AgentBuilder::new(registry.clone(), Duration::from_secs(3600));
    let agent = rt.block_on(builder.build(&org, &twilio)).unwrap();
    assert_eq!(agent.tools.len(), PLUGINS * 3);
    c.bench_function("agent_build/warm_20_plugins", |b| {
        b.to_async(&rt)
            .iter(|| async { builder.build(&org, &twilio).await.unwrap() })
    });

    let snapshot = rt.block_on(registry.org_snapshot(&org)).unwrap();
    let by_version: HashMap<_, _> = manifests
        .iter()
        .map(|m| ((m.name.clone(), m.version.clone()), m.clone()))
        .collect();
    c.bench_function("agent_build/assemble_20_plugins", |b| {
        b.iter(|| assemble(&org, &twilio, &snapshot, &by_version).unwrap())
    });

    let opts = ExportOptions {
        public_base_url: Some("https://api.example.com".into()),
    };
    c.bench_function("agent_build/export_openai_60_tools", |b| {
        b.iter(|| export(&agent, Format::OpenAi, &opts).unwrap())
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
