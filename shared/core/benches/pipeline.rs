//! Platform overhead of one warm tool call: everything except adapter I/O (envelope parsing,
//! instance cache hit, parameter validation, config, adapter construction, handler dispatch,
//! response envelope), on the embedded store. Also the JSON Schema validation of a booking
//! CreateAppointment payload on its own, for comparison.
//!
//! Run: `cargo bench -p switchboard --bench pipeline`

use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::{Value, json};
use switchboard::auth::TenantContext;
use switchboard::data::BuiltinData;
use switchboard::manifest::CompiledManifest;
use switchboard::pipeline::{CallInput, Platform, PluginService};
use switchboard::registry::{PluginInstance, Registry};
use switchboard::{CallContext, Error, FunctionName, OrgId, Plugin};
use switchboard_embedded::Embedded;

const BOOKING: &str = include_str!("../../../functions/booking/manifest.json");

/// The booking manifest's CreateAppointment, served by a handler that does no I/O.
async fn echo(_: CallContext, params: Value) -> Result<Value, Error> {
    Ok(params)
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let manifest = CompiledManifest::from_json(BOOKING).unwrap();
    let functions: Vec<String> = manifest
        .manifest()
        .functions
        .iter()
        .map(|f| f.name.to_string())
        .collect();
    let mut builder = Plugin::builder(BOOKING);
    for f in &functions {
        builder = builder.handler(f, echo);
    }
    let plugin = builder.build().unwrap();

    let db = Embedded::in_memory().unwrap();
    let registry = Registry::new(db.registry_table());
    let org = OrgId::parse("bench-org").unwrap();
    let instance = PluginInstance {
        plugin: plugin.name().clone(),
        enabled: true,
        pinned_version: manifest.manifest().version.clone(),
        config: json!({"practiceName": "Bench Dental"}),
        data_adapter: Default::default(),
    };
    rt.block_on(registry.put_instance(&org, &instance, None))
        .unwrap();
    let platform = Arc::new(Platform::new(
        registry,
        Arc::new(BuiltinData::new(db.data_table())),
        db.data_table(),
        Duration::from_secs(3600),
    ));
    let service = PluginService::new(plugin, platform);

    let params = json!({"PatNum": 1, "ProvNum": 1, "AptDateTime": "2027-06-01 10:00", "durationMinutes": 30,
                        "Note": "first visit", "ProcDescript": "Cleaning"});
    let body =
        json!({"function": "CreateAppointment", "parameters": params, "sessionId": "call-1"})
            .to_string();
    let tenant = TenantContext::new(org.clone()).with_scopes(&["plugins:call"]);
    let call = || {
        service.call(CallInput {
            tenant: Some(tenant.clone()),
            body: body.as_bytes(),
            request_id: "bench",
            idempotency_key: None,
        })
    };
    let (status, reply) = rt.block_on(call());
    assert_eq!(status, 200, "{reply}");

    c.bench_function("pipeline/warm_call_overhead", |b| {
        b.to_async(&rt).iter(call)
    });

    let create = FunctionName::parse("CreateAppointment").unwrap();
    c.bench_function("pipeline/validate_create_appointment", |b| {
        b.iter(|| manifest.validate_params(&create, &params).unwrap())
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
