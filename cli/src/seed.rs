//! First-start seeding of the demo tenant from `infra/seed/demo.json`, and the banner.

use std::net::SocketAddr;
use std::path::Path;

use serde::Deserialize;
use serde_json::{Map, Value};

use switchboard::data::BuiltinData;
use switchboard::ports::DataAdapter;
use switchboard::registry::{
    ApiKeyRecord, ChannelConfig, KeyHash, OrgProfile, PluginInstance, Published, Registry,
};
use switchboard::{Channel, EntityName, OrgId, Plugin, PluginName};

const DEMO: &str = include_str!("../../infra/seed/demo.json");
const KEY_FILE: &str = "demo-api-key";

#[derive(Deserialize)]
struct Demo {
    org: OrgId,
    profile: OrgProfile,
    instances: Vec<DemoInstance>,
    #[serde(default)]
    channels: Map<String, Value>,
    #[serde(default)]
    data: Map<String, Value>,
    scopes: Vec<String>,
}

#[derive(Deserialize)]
struct DemoInstance {
    plugin: PluginName,
    enabled: bool,
    #[serde(default)]
    config: Value,
}

type BoxError = Box<dyn std::error::Error>;

fn load(suffix: Option<&str>) -> Result<Demo, BoxError> {
    let mut demo: Demo = serde_json::from_str(DEMO)?;
    if let Some(s) = suffix {
        demo.org = OrgId::parse(format!("{}-{s}", demo.org))?;
    }
    Ok(demo)
}

/// The demo organization's id (`demo-dental`, or `demo-dental-<suffix>` for isolated tests).
pub fn demo_org(suffix: Option<&str>) -> Result<OrgId, BoxError> {
    Ok(load(suffix)?.org)
}

/// Seeds the demo tenant unless already there; returns its API key.
pub async fn ensure_demo(
    registry: &Registry,
    data: &BuiltinData,
    plugins: &[Plugin],
    data_dir: &Path,
    suffix: Option<&str>,
) -> Result<String, BoxError> {
    let demo = load(suffix)?;
    for p in plugins {
        match registry.publish_manifest(p.manifest().manifest()).await {
            Ok(Published::Created) => tracing::info!(plugin = %p.name(), "published manifest"),
            Ok(Published::Unchanged) => {}
            Err(e) => tracing::warn!(plugin = %p.name(), error = %e,
                "the stored manifest differs from this build under the same version; bump the version to publish it"),
        }
    }
    if registry.get_profile(&demo.org).await?.is_none() {
        seed(registry, data, plugins, &demo).await?;
    }
    // A store written by an older build lacks the entries of indexes declared since.
    for p in plugins {
        let indexes = &p.manifest().manifest().indexes;
        if indexes.is_empty() {
            continue;
        }
        let adapter = data.scoped(&demo.org, p.name(), indexes);
        let mut at = None;
        loop {
            let step = adapter.reindex(at, 500).await?;
            if step.written > 0 || step.removed > 0 {
                tracing::info!(plugin = %p.name(), entity = %step.entity, written = step.written,
                    removed = step.removed, "reindexed the demo tenant's records");
            }
            match step.next {
                Some(next) => at = Some(next),
                None => break,
            }
        }
    }
    demo_key(registry, &demo, data_dir).await
}

async fn seed(
    registry: &Registry,
    data: &BuiltinData,
    plugins: &[Plugin],
    demo: &Demo,
) -> Result<(), BoxError> {
    for inst in &demo.instances {
        let Some(plugin) = plugins.iter().find(|p| p.name() == &inst.plugin) else {
            return Err(format!(
                "demo.json enables '{}', which this build does not serve",
                inst.plugin
            )
            .into());
        };
        if registry
            .get_instance(&demo.org, &inst.plugin)
            .await?
            .is_none()
        {
            let instance = PluginInstance {
                plugin: inst.plugin.clone(),
                enabled: inst.enabled,
                pinned_version: plugin.manifest().manifest().version.clone(),
                config: inst.config.clone(),
                data_adapter: Default::default(),
            };
            registry.put_instance(&demo.org, &instance, None).await?;
        }
    }
    for (name, config) in &demo.channels {
        let channel = Channel::parse(name.as_str())?;
        let config = ChannelConfig::from_json(config)?;
        if registry.get_channel(&demo.org, &channel).await?.is_none() {
            registry
                .put_channel(&demo.org, &channel, &config, None)
                .await?;
        }
    }
    for (plugin, entities) in &demo.data {
        let name = PluginName::parse(plugin.as_str())?;
        let Some(served) = plugins.iter().find(|p| p.name() == &name) else {
            return Err(format!(
                "demo.json has data for '{name}', which this build does not serve"
            )
            .into());
        };
        let adapter = data.scoped(&demo.org, &name, &served.manifest().manifest().indexes);
        let Value::Object(entities) = entities else {
            return Err(
                format!("demo.json data.{plugin} must be an object of entity lists").into(),
            );
        };
        for (entity, records) in entities {
            let entity = EntityName::parse(entity.as_str())?;
            // An entity with records was seeded by an earlier, interrupted start.
            if !adapter.list(&entity, 1, None).await?.items.is_empty() {
                continue;
            }
            for record in records.as_array().into_iter().flatten() {
                adapter.create(&entity, record.clone()).await?;
            }
        }
    }
    // Written last: its presence marks a complete seed.
    registry.put_profile(&demo.org, &demo.profile, None).await?;
    tracing::info!(org = %demo.org, "seeded the demo tenant");
    Ok(())
}

/// Reuses the key saved beside the database while it still authenticates; else issues one.
async fn demo_key(registry: &Registry, demo: &Demo, data_dir: &Path) -> Result<String, BoxError> {
    saved_key(
        registry,
        &data_dir.join(KEY_FILE),
        &demo.org,
        &demo.scopes,
        "demo (dev)",
    )
    .await
}

/// The org that holds dev's platform-operator key.
pub const OPERATOR_ORG: &str = "switchboard-operator";
/// What a platform operator may do: publish manifests and create organizations.
pub const OPERATOR_SCOPES: [&str; 3] = ["platform:publish", "platform:orgs", "admin:read"];
const OPERATOR_KEY_FILE: &str = "operator-api-key";

/// dev's platform-operator key (saved beside the database, 0600), for `manifest publish`
/// and `org create`.
pub async fn operator_key(registry: &Registry, data_dir: &Path) -> Result<String, BoxError> {
    let org = OrgId::parse(OPERATOR_ORG)?;
    let scopes: Vec<String> = OPERATOR_SCOPES.iter().map(|s| (*s).to_owned()).collect();
    saved_key(
        registry,
        &data_dir.join(OPERATOR_KEY_FILE),
        &org,
        &scopes,
        "platform operator (dev)",
    )
    .await
}

async fn saved_key(
    registry: &Registry,
    path: &Path,
    org: &OrgId,
    scopes: &[String],
    name: &str,
) -> Result<String, BoxError> {
    if let Ok(saved) = std::fs::read_to_string(path) {
        let saved = saved.trim().to_owned();
        // The saved key is reused only for the organization it was made for: a data
        // directory seeded for another one must not hand out that one's key.
        if let Some(rec) = registry.get_api_key(&KeyHash::of(&saved)).await?
            && !rec.revoked
            && rec.org == *org
            && rec.scopes == scopes
        {
            return Ok(saved);
        }
    }
    let key = switchboard::registry::new_api_key("sb_dev_")?;
    let created = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let record = ApiKeyRecord {
        org: org.clone(),
        scopes: scopes.to_vec(),
        created,
        revoked: false,
        name: Some(name.into()),
        channel: None,
        rate_limit_per_second: None,
    };
    registry.create_api_key(&KeyHash::of(&key), &record).await?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    write_private(path, &key)?;
    Ok(key)
}

fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    opts.open(path)?.write_all(contents.as_bytes())
}

/// The next weekday at least two days out, for a booking that passes every demo rule.
pub fn demo_booking_date() -> String {
    let tz = load(None)
        .ok()
        .and_then(|d| jiff::tz::TimeZone::get(&d.profile.timezone).ok())
        .unwrap_or(jiff::tz::TimeZone::UTC);
    let mut d = jiff::Timestamp::now().to_zoned_datetime(tz).date();
    for _ in 0..2 {
        d = d.tomorrow().unwrap_or(d);
    }
    while matches!(
        d.weekday(),
        jiff::civil::Weekday::Saturday | jiff::civil::Weekday::Sunday
    ) {
        d = d.tomorrow().unwrap_or(d);
    }
    d.to_string()
}

pub fn banner(addr: SocketAddr, data_dir: &Path, key: &str, operator: &str) -> String {
    let date = demo_booking_date();
    format!(
        "\nSwitchboard dev server on http://{addr}  (embedded store: {dir})\n\
         Demo tenant: Bright Smile Dental (org demo-dental), with booking, support and crm enabled.\n\
         API key: {key}\n\n\
         Book an appointment:\n\
         curl -s -X POST http://{addr}/plugins/booking \\\n  \
           -H 'Authorization: Bearer {key}' -H 'Content-Type: application/json' \\\n  \
           -d '{{\"function\":\"CreateAppointment\",\"parameters\":{{\"PatNum\":1,\"ProvNum\":1,\"AptDateTime\":\"{date} 10:00\"}}}}'\n\n\
         The Twilio channel's agent (booking, support and crm tools), e.g. as OpenAI tools:\n\
         curl -s 'http://{addr}/agents/twilio?format=openai' -H 'Authorization: Bearer {key}'\n\n\
         Platform operator key (publish manifests, create organizations): {operator}\n\
         Operator commands, e.g.: SWITCHBOARD_URL=http://{addr} SWITCHBOARD_API_KEY={operator} switchboard plugins\n",
        dir = data_dir.display()
    )
}
