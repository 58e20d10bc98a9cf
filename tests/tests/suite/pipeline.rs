//! The error contract: every status the call pipeline can produce, on real stores, and that
//! bad input writes nothing.

use std::sync::Arc;
use std::time::Duration;
use switchboard::ports::query_all;

use serde_json::{Value, json};
use switchboard::auth::{Authorizer, TenantContext};
use switchboard::data::BuiltinData;
use switchboard::lambda::handle;
use switchboard::pipeline::{CallInput, MAX_BODY_BYTES, Platform, PluginService};
use switchboard::registry::{ApiKeyRecord, ChannelConfig, KeyHash, PluginInstance, Registry};
use switchboard::{CallContext, Channel, Error, OrgId, Plugin, PluginName};
use switchboard_aws::dynamodb::DynamoStore;
use switchboard_tests::{Tables, dynamodb_client, embedded_tables, moto_tables, unique};

use crate::fixtures::{booking_service, demo};

async fn call(svc: &PluginService, org: Option<&OrgId>, body: &[u8]) -> (u16, Value) {
    svc.call(CallInput {
        tenant: org.map(|o| TenantContext::new(o.clone()).with_scopes(&["plugins:call"])),
        body,
        request_id: "test",
        idempotency_key: None,
    })
    .await
}

fn envelope(function: &str, parameters: Value) -> Vec<u8> {
    json!({"function": function, "parameters": parameters})
        .to_string()
        .into_bytes()
}

async fn appointment_count(svc: &PluginService, org: &OrgId) -> usize {
    let (status, body) = call(
        svc,
        Some(org),
        &envelope(
            "GetAppointments",
            json!({"startDate": "2026-01-01", "endDate": "2035-12-31", "includeCancelled": true}),
        ),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body["result"]["appointments"]
        .as_array()
        .map_or(0, Vec::len)
}

/// What, as whom, the body, the expected status and code.
type Case<'a> = (&'a str, Option<&'a OrgId>, Vec<u8>, u16, &'a str);

/// Each bad input gets its 4xx with a message, and leaves the appointment book untouched.
async fn bad_input_contract(tables: Tables) {
    let suffix = unique("t");
    let demo = demo(tables, Some(&suffix)).await;
    let svc = booking_service(&demo.platform);
    let org = &demo.org;
    let book = |when: &str| {
        envelope(
            "CreateAppointment",
            json!({"PatNum": 1, "ProvNum": 1, "AptDateTime": when}),
        )
    };

    let before = appointment_count(&svc, org).await;
    let paused = OrgId::parse("demo-paused").unwrap();
    let oversize = {
        let mut b = envelope("GetPatient", json!({"PatNum": 1}));
        b.extend(std::iter::repeat_n(b' ', MAX_BODY_BYTES));
        b
    };
    let cases: Vec<Case> = vec![
        (
            "body not JSON",
            Some(org),
            b"{\"function\": ".to_vec(),
            400,
            "invalid_request",
        ),
        (
            "missing function",
            Some(org),
            br#"{"parameters": {}}"#.to_vec(),
            400,
            "invalid_request",
        ),
        (
            "parameters not an object",
            Some(org),
            br#"{"function": "GetPatient", "parameters": "PatNum=1"}"#.to_vec(),
            400,
            "invalid_request",
        ),
        (
            "no tenant",
            None,
            book("2027-06-01 10:00"),
            401,
            "unauthenticated",
        ),
        (
            "disabled plugin",
            Some(&paused),
            book("2027-06-01 10:00"),
            403,
            "plugin_not_enabled",
        ),
        (
            "unknown function",
            Some(org),
            envelope("DropTables", json!({})),
            404,
            "unknown_function",
        ),
        (
            "oversize body",
            Some(org),
            oversize,
            413,
            "payload_too_large",
        ),
        (
            "wrong type",
            Some(org),
            envelope(
                "CreateAppointment",
                json!({"PatNum": "1", "ProvNum": 1, "AptDateTime": "2027-06-01 10:00"}),
            ),
            422,
            "validation_failed",
        ),
        (
            "missing required",
            Some(org),
            envelope(
                "CreateAppointment",
                json!({"PatNum": 1, "AptDateTime": "2027-06-01 10:00"}),
            ),
            422,
            "validation_failed",
        ),
        (
            "extra field",
            Some(org),
            envelope(
                "CreateAppointment",
                json!({"PatNum": 1, "ProvNum": 1, "AptDateTime": "2027-06-01 10:00", "orgId": "other"}),
            ),
            422,
            "validation_failed",
        ),
        (
            "date in the past",
            Some(org),
            book("2020-01-07 10:00"),
            422,
            "validation_failed",
        ),
        (
            "not a date",
            Some(org),
            book("2027-02-30 10:00"),
            422,
            "validation_failed",
        ),
        (
            "not a date at all",
            Some(org),
            book("next tuesday"),
            422,
            "validation_failed",
        ),
        (
            "outside office hours",
            Some(org),
            book("2027-06-01 19:00"),
            422,
            "validation_failed",
        ),
        (
            "closed day",
            Some(org),
            book("2027-06-06 10:00"),
            422,
            "validation_failed",
        ),
    ];
    for (what, tenant, body, status, code) in cases {
        let (got, resp) = call(&svc, tenant, &body).await;
        assert_eq!(got, status, "{what}: {resp}");
        assert_eq!(resp["success"], false, "{what}");
        assert_eq!(resp["error"]["code"], code, "{what}: {resp}");
        let msg = resp["error"]["message"].as_str().unwrap_or("");
        assert!(
            msg.len() > 10,
            "{what}: the message must say what to fix: {resp}"
        );
    }
    assert_eq!(
        appointment_count(&svc, org).await,
        before,
        "bad input wrote nothing"
    );

    // Double booking: the first succeeds, an identical second is 409, and only one is stored.
    let (s1, first) = call(&svc, Some(org), &book("2027-06-02 09:30")).await;
    assert_eq!(s1, 200, "{first}");
    let (s2, second) = call(&svc, Some(org), &book("2027-06-02 09:30")).await;
    assert_eq!(s2, 409, "{second}");
    assert_eq!(second["error"]["code"], "conflict");
    assert_eq!(appointment_count(&svc, org).await, before + 1);

    // The unknown-plugin route, through the Lambda glue.
    let mut req = lambda_http::Request::new(lambda_http::Body::Text("{}".into()));
    *req.method_mut() = lambda_http::http::Method::POST;
    *req.uri_mut() = "/plugins/payroll".parse().unwrap();
    let resp = handle(&svc, req).await;
    assert_eq!(resp.status().as_u16(), 404);
    let body: Value = match resp.body() {
        lambda_http::Body::Text(t) => serde_json::from_str(t).unwrap(),
        other => panic!("unexpected body {other:?}"),
    };
    assert_eq!(body["error"]["code"], "unknown_plugin", "{body}");
}

/// Eight callers race for one slot: exactly one wins, the rest get 409, one appointment stored.
async fn concurrent_double_booking(tables: Tables) {
    let table = tables.data.clone();
    let demo = demo(tables, Some(&unique("race"))).await;
    let svc = Arc::new(booking_service(&demo.platform));
    let before = appointment_count(&svc, &demo.org).await;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let svc = svc.clone();
        let org = demo.org.clone();
        tasks.spawn(async move {
            let body = envelope(
                "CreateAppointment",
                json!({"PatNum": 3, "ProvNum": 2, "AptDateTime": "2027-06-03 14:00"}),
            );
            call(&svc, Some(&org), &body).await
        });
    }
    let mut statuses = Vec::new();
    let mut bodies = Vec::new();
    while let Some(done) = tasks.join_next().await {
        let (status, body) = done.unwrap();
        assert!(status == 200 || status == 409, "{status}: {body}");
        statuses.push(status);
        bodies.push(body);
    }
    statuses.sort_unstable();
    assert_eq!(
        statuses,
        [200, 409, 409, 409, 409, 409, 409, 409],
        "{bodies:#?}"
    );
    assert_eq!(appointment_count(&svc, &demo.org).await, before + 1);
    // Every appointment has exactly one entry per indexed field, and every entry a record;
    // likewise every slot claim the winner holds.
    let partition = |suffix: &str| format!("ORG#{}#booking#{suffix}", demo.org);
    let ids = |items: Vec<switchboard::ports::Item>, entries: bool| -> Vec<String> {
        let mut ids: Vec<String> = items
            .into_iter()
            .map(|i| match entries {
                true => i.key.sk.rsplit('\u{1}').next().unwrap().to_owned(),
                false => i.key.sk,
            })
            .collect();
        ids.sort();
        ids
    };
    for (entity, fields) in [
        ("appointments", &["AptDate", "PatNum"][..]),
        ("slot_claims", &["AptDate"][..]),
    ] {
        let records = query_all(table.as_ref(), &partition(entity)).await.unwrap();
        let records = ids(records, false);
        assert!(!records.is_empty());
        for field in fields {
            let entries = query_all(table.as_ref(), &partition(&format!("{entity}~{field}")))
                .await
                .unwrap();
            assert_eq!(ids(entries, true), records, "{entity} by {field}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_double_booking_on_embedded() {
    concurrent_double_booking(embedded_tables()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_double_booking_on_dynamodb() {
    concurrent_double_booking(moto_tables().await).await;
}

/// An embedded platform with one enabled instance of `plugin`, pinned to `version`.
async fn platform_with_instance(plugin: &str, version: &str) -> (Arc<Platform>, OrgId) {
    let tables = embedded_tables();
    let registry = Registry::new(tables.registry);
    let org = OrgId::parse(unique("org")).unwrap();
    let inst = PluginInstance {
        plugin: PluginName::parse(plugin).unwrap(),
        enabled: true,
        pinned_version: version.into(),
        config: json!({}),
        data_adapter: Default::default(),
    };
    registry.put_instance(&org, &inst, None).await.unwrap();
    let data = Arc::new(BuiltinData::new(tables.data.clone()));
    (
        Arc::new(Platform::new(registry, data, tables.data, Duration::ZERO)),
        org,
    )
}

#[tokio::test]
async fn a_channel_assignment_overrides_the_data_adapter() {
    let (platform, org) = platform_with_instance("booking", "1.0.0").await;
    let web = Channel::parse("web").unwrap();
    let config = ChannelConfig::from_json(&json!({"plugin_assignments": [
        {"plugin": "booking", "priority": 1, "data_adapter": {"type": "rest", "base_url": "https://pms.example.com",
            "entities": {"providers": "/providers"}}}]}))
    .unwrap();
    platform
        .registry
        .put_channel(&org, &web, &config, None)
        .await
        .unwrap();
    let svc = booking_service(&platform);
    let body = envelope("GetProviders", json!({}));
    let as_channel = |channel: Option<Channel>| {
        let mut t = TenantContext::new(org.clone()).with_scopes(&["plugins:call"]);
        t.channel = channel;
        t
    };
    // On the web channel the assignment's adapter (rest, not in this build) is chosen.
    let (status, resp) = svc
        .call(CallInput {
            tenant: Some(as_channel(Some(web))),
            body: &body,
            request_id: "t",
            idempotency_key: None,
        })
        .await;
    assert_eq!(
        (status, resp["error"]["code"].as_str()),
        (422, Some("invalid_config")),
        "{resp}"
    );
    assert!(
        resp["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("'rest'"),
        "{resp}"
    );
    // Without a channel, the instance's own adapter serves the call.
    let (status, resp) = svc
        .call(CallInput {
            tenant: Some(as_channel(None)),
            body: &body,
            request_id: "t",
            idempotency_key: None,
        })
        .await;
    assert_eq!(status, 200, "{resp}");
    // A key bound to a channel without the plugin, or with it disabled, is refused.
    let twilio = Channel::parse("twilio").unwrap();
    let disabled = ChannelConfig::from_json(&json!({"plugin_assignments": [
        {"plugin": "booking", "priority": 1, "enabled": false}]}))
    .unwrap();
    platform
        .registry
        .put_channel(&org, &twilio, &disabled, None)
        .await
        .unwrap();
    for (channel, why) in [("twilio", "disabled"), ("whatsapp", "not configured")] {
        let (status, resp) = svc
            .call(CallInput {
                tenant: Some(as_channel(Some(Channel::parse(channel).unwrap()))),
                body: &body,
                request_id: "t",
                idempotency_key: None,
            })
            .await;
        assert_eq!(
            (status, resp["error"]["code"].as_str()),
            (403, Some("plugin_not_assigned")),
            "{resp}"
        );
        let message = resp["error"]["message"].as_str().unwrap_or("");
        assert!(
            message.contains(&format!("'{channel}' channel")) && message.contains(why),
            "{message}"
        );
    }
    // Each call of a Vapi batch is refused on its own (Vapi gets 200 with an error each).
    let vapi = json!({"message": {"type": "tool-calls", "toolCallList": [
        {"id": "a", "name": "GetProviders", "arguments": {}},
        {"id": "b", "name": "GetProviders", "arguments": {}}]}})
    .to_string();
    let (status, resp) = svc
        .call(CallInput {
            tenant: Some(as_channel(Some(Channel::parse("whatsapp").unwrap()))),
            body: vapi.as_bytes(),
            request_id: "t",
            idempotency_key: None,
        })
        .await;
    assert_eq!(status, 200, "{resp}");
    for r in resp["results"].as_array().unwrap() {
        assert!(r["result"].is_null(), "{resp}");
        assert!(
            r["error"]
                .as_str()
                .unwrap_or("")
                .contains("'whatsapp' channel"),
            "{resp}"
        );
    }
}

#[tokio::test]
async fn a_tool_name_qualified_by_its_plugin_reaches_the_function() {
    let (platform, org) = platform_with_instance("booking", "1.0.0").await;
    let svc = booking_service(&platform);
    let (status, body) = call(
        &svc,
        Some(&org),
        &envelope("booking_GetProviders", json!({})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = call(&svc, Some(&org), &envelope("crm_GetProviders", json!({}))).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("unknown_function"))
    );
}

#[tokio::test]
async fn the_authorizer_refuses_revoked_keys_and_fails_closed_when_dynamodb_is_down() {
    let tables = embedded_tables();
    let registry = Registry::new(tables.registry);
    let org = OrgId::parse(unique("org")).unwrap();
    let record = |revoked| ApiKeyRecord {
        org: org.clone(),
        scopes: vec!["plugins:call".into()],
        created: 1,
        revoked,
        name: None,
        channel: None,
        rate_limit_per_second: None,
    };
    registry
        .create_api_key(&KeyHash::of("sb_live"), &record(false))
        .await
        .unwrap();
    registry
        .create_api_key(&KeyHash::of("sb_revoked"), &record(true))
        .await
        .unwrap();
    let auth = Authorizer::new(registry, Duration::ZERO);
    let event = |key: &str| json!({"headers": {"authorization": format!("Bearer {key}")}});
    let ok = auth.simple_response(&event("sb_live")).await.unwrap();
    assert_eq!(ok["context"]["orgId"], org.as_str());
    let revoked = auth.simple_response(&event("sb_revoked")).await.unwrap();
    assert_eq!(revoked, json!({"isAuthorized": false}));
    let missing = auth.simple_response(&json!({"headers": {}})).await.unwrap();
    assert_eq!(missing, json!({"isAuthorized": false}));

    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let client = dynamodb_client(&format!("http://127.0.0.1:{port}")).await;
    let down = Authorizer::new(
        Registry::new(Arc::new(DynamoStore::new(client, "t"))),
        Duration::ZERO,
    );
    let err = down.simple_response(&event("sb_live")).await.unwrap_err();
    assert_eq!(err.status(), 503, "an outage is an error, never an allow");
}

#[tokio::test]
async fn an_instance_pinned_to_another_major_version_is_409() {
    let (platform, org) = platform_with_instance("booking", "2.0.0").await;
    let svc = booking_service(&platform);
    let (status, body) = call(
        &svc,
        Some(&org),
        &envelope("GetPatient", json!({"PatNum": 1})),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("version_mismatch")),
        "{body}"
    );
}

#[tokio::test]
async fn bad_input_on_embedded() {
    bad_input_contract(embedded_tables()).await;
}

#[tokio::test]
async fn bad_input_on_dynamodb() {
    bad_input_contract(moto_tables().await).await;
}

#[tokio::test]
async fn unreachable_dynamodb_is_503_not_500() {
    // Nothing listens on this port: connections are refused.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let client = dynamodb_client(&format!("http://127.0.0.1:{port}")).await;
    let table = Arc::new(DynamoStore::new(client, "switchboard-registry"));
    let platform = Arc::new(Platform::new(
        Registry::new(table.clone()),
        Arc::new(BuiltinData::new(table.clone())),
        table,
        Duration::from_secs(30),
    ));
    let svc = booking_service(&platform);
    let org = OrgId::parse("demo-dental").unwrap();
    let started = std::time::Instant::now();
    let (status, body) = call(
        &svc,
        Some(&org),
        &envelope("GetPatient", json!({"PatNum": 1})),
    )
    .await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "dependency_unavailable");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "bounded: {:?}",
        started.elapsed()
    );
}

const FAULTY: &str = r#"{
    "name": "faulty", "version": "0.1.0", "display_name": "Faulty", "description": "Has a bug",
    "instruction_template": "",
    "functions": [{"name": "Crash", "description": "fails", "side_effects": false, "parameters": {"type": "object"}}]
}"#;

async fn crash(_: CallContext, _: Value) -> Result<Value, Error> {
    Err(Error::internal("index out of range in slot table at row 7"))
}

#[tokio::test]
async fn a_bug_is_500_and_its_cause_stays_in_the_log() {
    let (platform, org) = platform_with_instance("faulty", "0.1.0").await;
    let plugin = Plugin::builder(FAULTY)
        .handler("Crash", crash)
        .build()
        .unwrap();
    let svc = PluginService::new(plugin, platform);
    let (status, body) = call(&svc, Some(&org), &envelope("Crash", json!({}))).await;
    assert_eq!(status, 500);
    assert_eq!(body["error"]["code"], "internal");
    assert!(!body.to_string().contains("slot table"), "{body}");
}
