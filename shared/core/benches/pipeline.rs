//! Platform overhead of one warm tool call: everything except adapter I/O (envelope parsing,
//! instance cache hit, parameter validation, config, adapter construction, handler dispatch,
//! response envelope), on the embedded store. Also the JSON Schema validation of a booking
//! CreateAppointment payload on its own, for comparison; and a read-only call as a Retell
//! custom function twice, with an API key's tenant context and on the signed route
//! (connection and secret from the caches, HMAC over the body), so their difference is what
//! verifying a signature costs.
//!
//! Run: `cargo bench -p switchboard --bench pipeline`

use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::{Value, json};
use switchboard::auth::TenantContext;
use switchboard::data::BuiltinData;
use switchboard::manifest::CompiledManifest;
use switchboard::pipeline::{CallInput, Platform, PluginService, SignedCall};
use switchboard::registry::{Assignment, ChannelConfig, Connection, PluginInstance, Registry};
use switchboard::secrets::{SecretValue, Secrets};
use switchboard::signature::{SignatureHeaders, sign_retell};
use switchboard::{
    CallContext, Channel, ConnectionId, Error, FunctionName, OrgId, Plugin, VoicePlatform,
};
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
    let signed_at = std::time::SystemTime::now();
    let channel = Channel::parse("retell").unwrap();
    let assigned = ChannelConfig {
        locale: None,
        instructions: None,
        plugin_assignments: vec![Assignment {
            plugin: plugin.name().clone(),
            enabled: true,
            priority: 1,
            data_adapter: None,
        }],
    };
    rt.block_on(registry.put_channel(&org, &channel, &assigned, None))
        .unwrap();
    let secrets = Arc::new(Secrets::new(
        db.secret_store(),
        Duration::from_secs(3600),
        "switchboard",
    ));
    let api_key = "key_bench_retell";
    let fields = serde_json::Map::from_iter([("api_key".to_owned(), json!(api_key))]);
    rt.block_on(secrets.store(&org, "retell-signing", &SecretValue::new(fields)))
        .unwrap();
    let connection = ConnectionId::parse("cn_00000000000000000000000000000be7").unwrap();
    rt.block_on(registry.create_connection(&Connection {
        id: connection.clone(),
        org: org.clone(),
        channel: channel.clone(),
        platform: VoicePlatform::Retell,
        credential: "retell-signing".into(),
        created: 0,
    }))
    .unwrap();
    let platform = Arc::new(
        Platform::new(
            registry,
            Arc::new(BuiltinData::new(db.data_table())),
            db.data_table(),
            Duration::from_secs(3600),
        )
        .with_secrets(secrets)
        // Pinned, so the signature below stays inside its window however long the run.
        .with_clock(Arc::new(move || signed_at)),
    );
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

    // A read-only function, so no idempotency record is written: only the way in differs.
    let retell = json!({"name": "GetAvailableSlots", "args": {"date": "2027-06-01", "ProvNum": 1},
        "call": {"call_id": "call-1", "from_number": "+15550102000"}})
    .to_string();
    let bound = TenantContext {
        channel: Some(channel.clone()),
        ..TenantContext::new(org.clone()).with_scopes(&["plugins:call"])
    };
    let keyed = || {
        service.call(CallInput {
            tenant: Some(bound.clone()),
            body: retell.as_bytes(),
            request_id: "bench",
            idempotency_key: None,
        })
    };
    let (status, reply) = rt.block_on(keyed());
    assert_eq!(status, 200, "{reply}");
    let header = sign_retell(
        api_key.as_bytes(),
        retell.as_bytes(),
        std::time::SystemTime::now(),
    );
    let path_id = connection.to_string();
    let signed = || {
        service.respond_signed(SignedCall {
            platform: "retell",
            connection: &path_id,
            headers: SignatureHeaders {
                retell_signature: Some(&header),
                ..Default::default()
            },
            body: retell.as_bytes(),
            url: "",
            request_id: "bench",
        })
    };
    let out = rt.block_on(signed());
    assert_eq!(out.status, 200, "{}", out.body);
    c.bench_function("pipeline/retell_call_with_key", |b| {
        b.to_async(&rt).iter(keyed)
    });
    c.bench_function("pipeline/retell_call_signed", |b| {
        b.to_async(&rt).iter(signed)
    });

    let create = FunctionName::parse("CreateAppointment").unwrap();
    c.bench_function("pipeline/validate_create_appointment", |b| {
        b.iter(|| manifest.validate_params(&create, &params).unwrap())
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
