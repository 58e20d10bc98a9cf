//! A demo platform on either backend, seeded exactly as `dev` seeds it.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use switchboard::audit::AuditLog;
use switchboard::data::BuiltinData;
use switchboard::pipeline::{Platform, PluginService};
use switchboard::ports::AdapterCheck;
use switchboard::ports::StoreError;
use switchboard::registry::{DataAdapterConfig, PluginInstance, Registry};
use switchboard::secrets::Secrets;
use switchboard::{OrgId, PluginName};
use switchboard_embedded::Embedded;
use switchboard_runtime::adapters::DataAdapters;
use switchboard_tests::Tables;

/// 2026-11-25T12:00:00Z: a Wednesday, so the fixed dates in `events/` are in the future.
pub fn pinned_now() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_608_000)
}

pub struct Demo {
    pub platform: Arc<Platform>,
    pub org: OrgId,
}

/// Seeds the demo tenant (and `demo-paused`, whose booking is disabled) into `tables`.
pub async fn demo(tables: Tables, org_suffix: Option<&str>) -> Demo {
    let secrets = local_secrets();
    demo_on(tables, org_suffix, None, secrets).await
}

/// A secret resolver over a fresh in-memory embedded secret store (prefix `switchboard`).
pub fn local_secrets() -> Arc<Secrets> {
    switchboard_tests::capture_logs();
    let db = Embedded::in_memory().unwrap_or_else(|e| panic!("in-memory SQLite: {e}"));
    Arc::new(Secrets::new(
        db.secret_store(),
        Duration::from_secs(300),
        "switchboard",
    ))
}

/// Like [`demo`], with the audit entries going to `audit` instead of the data table.
pub async fn demo_audited_by(
    tables: Tables,
    org_suffix: Option<&str>,
    audit: Arc<AuditLog>,
) -> Demo {
    demo_full(tables, org_suffix, None, local_secrets(), Some(audit)).await
}

/// Like [`demo`], with the booking instance on `adapter` (when given) and credentials
/// resolved by `secrets`.
pub async fn demo_on(
    tables: Tables,
    org_suffix: Option<&str>,
    adapter: Option<DataAdapterConfig>,
    secrets: Arc<Secrets>,
) -> Demo {
    demo_full(tables, org_suffix, adapter, secrets, None).await
}

async fn demo_full(
    tables: Tables,
    org_suffix: Option<&str>,
    adapter: Option<DataAdapterConfig>,
    secrets: Arc<Secrets>,
    audit: Option<Arc<AuditLog>>,
) -> Demo {
    let registry = Registry::new(tables.registry);
    let data = BuiltinData::new(tables.data);
    let plugins = switchboard_cli::dev::plugins().unwrap();
    let dir = std::env::temp_dir().join(switchboard_tests::unique("sb-demo"));
    std::fs::create_dir_all(&dir).unwrap();
    switchboard_cli::seed::ensure_demo(&registry, &data, &plugins, &dir, org_suffix)
        .await
        .unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    let org = switchboard_cli::seed::demo_org(org_suffix).unwrap();

    let paused = OrgId::parse("demo-paused").unwrap();
    let booking = PluginName::parse("booking").unwrap();
    let inst = PluginInstance {
        plugin: booking,
        enabled: false,
        pinned_version: "1.0.0".into(),
        config: serde_json::json!({}),
        data_adapter: Default::default(),
    };
    match registry.put_instance(&paused, &inst, None).await {
        Ok(_) | Err(StoreError::Conflict { .. }) => {}
        Err(e) => panic!("{e}"),
    }
    let booking = PluginName::parse("booking").unwrap();
    if let Some(adapter) = adapter {
        let current = registry
            .get_instance(&org, &booking)
            .await
            .unwrap()
            .unwrap();
        let mut inst = current.value;
        inst.data_adapter = adapter;
        switchboard_tests::config_check(secrets.clone())
            .check(&org, &inst.data_adapter, "/data_adapter")
            .await
            .unwrap_or_else(|e| panic!("{e:?}"));
        registry
            .put_instance(&org, &inst, Some(current.version))
            .await
            .unwrap();
    }
    let table = data.table();
    let audit = audit.unwrap_or_else(|| Arc::new(AuditLog::new(table.clone())));
    let adapters = adapters(data, secrets.clone());
    let platform = Platform::new(registry, Arc::new(adapters), table, Duration::from_secs(30))
        .with_secrets(secrets)
        .with_audit(audit)
        .with_clock(Arc::new(pinned_now));
    Demo {
        platform: Arc::new(platform),
        org,
    }
}

/// The data adapters a function's `main` builds, over the built-in store `data`, with the
/// tests' egress rules and TLS.
pub fn adapters(data: BuiltinData, secrets: Arc<Secrets>) -> DataAdapters {
    DataAdapters::new(
        data,
        secrets,
        &switchboard_tests::egress(),
        switchboard_tests::tls(),
    )
}

pub fn booking_service(platform: &Arc<Platform>) -> PluginService {
    PluginService::new(booking::plugin().unwrap(), platform.clone())
}
