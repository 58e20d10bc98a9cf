//! The demo booking flow, unchanged on every data adapter: the same plugin code and the same
//! calls pass on the built-in store (embedded and DynamoDB), `rest` and `postgres`.

use std::sync::Arc;

use serde_json::{Value, json};
use switchboard::OrgId;
use switchboard::auth::TenantContext;
use switchboard::pipeline::{CallInput, Platform, PluginService};

use crate::fixtures;

async fn call(svc: &PluginService, org: &OrgId, function: &str, parameters: Value) -> (u16, Value) {
    let body = json!({"function": function, "parameters": parameters}).to_string();
    svc.call(CallInput {
        tenant: Some(TenantContext::new(org.clone()).with_scopes(&["plugins:call"])),
        body: body.as_bytes(),
        request_id: "flow",
        idempotency_key: None,
    })
    .await
}

async fn ok(svc: &PluginService, org: &OrgId, function: &str, parameters: Value) -> Value {
    let (status, body) = call(svc, org, function, parameters.clone()).await;
    assert_eq!(status, 200, "{function} {parameters}: {body}");
    body["result"].clone()
}

fn slots_at(result: &Value, provider: i64) -> Vec<String> {
    result["slots"]
        .as_array()
        .unwrap_or_else(|| panic!("no slots in {result}"))
        .iter()
        .filter(|s| s["ProvNum"] == provider)
        .filter_map(|s| s["AptDateTime"].as_str().map(str::to_owned))
        .collect()
}

/// Search a patient, list free slots, book one (a second booking of it is 409), see it,
/// cancel it, and see the slot free again. `day` keeps concurrent runs on one store apart.
pub async fn booking_flow(platform: Arc<Platform>, org: OrgId, day: &str) {
    let svc = fixtures::booking_service(&platform);

    let found = ok(&svc, &org, "SearchPatients", json!({"name": "Rivera"})).await;
    let patients = found["patients"].as_array().expect("patients");
    assert_eq!(patients.len(), 1, "{found}");
    assert_eq!(patients[0]["LName"], "Rivera");
    let pat = patients[0]["PatNum"].as_i64().expect("PatNum");

    let providers = ok(&svc, &org, "GetProviders", json!({})).await;
    let prov = providers["providers"][0]["ProvNum"]
        .as_i64()
        .unwrap_or_else(|| panic!("no provider in {providers}"));

    let before = ok(
        &svc,
        &org,
        "GetAvailableSlots",
        json!({"date": day, "ProvNum": prov}),
    )
    .await;
    let free = slots_at(&before, prov);
    let when = free
        .first()
        .unwrap_or_else(|| panic!("no free slot on {day}: {before}"))
        .clone();

    let booked = ok(
        &svc,
        &org,
        "CreateAppointment",
        json!({"PatNum": pat, "ProvNum": prov, "AptDateTime": when}),
    )
    .await;
    let apt = booked["AptNum"]
        .as_i64()
        .unwrap_or_else(|| panic!("no AptNum in {booked}"));

    let (status, again) = call(
        &svc,
        &org,
        "CreateAppointment",
        json!({"PatNum": pat, "ProvNum": prov, "AptDateTime": when}),
    )
    .await;
    assert_eq!(status, 409, "double booking must be refused: {again}");

    let taken = ok(
        &svc,
        &org,
        "GetAvailableSlots",
        json!({"date": day, "ProvNum": prov}),
    )
    .await;
    assert!(
        !slots_at(&taken, prov).contains(&when),
        "{when} still offered: {taken}"
    );

    let mine = ok(&svc, &org, "GetAppointments", json!({"PatNum": pat})).await;
    assert!(
        mine["appointments"]
            .as_array()
            .is_some_and(|a| a.iter().any(|x| x["AptNum"] == apt)),
        "{mine}"
    );

    ok(
        &svc,
        &org,
        "CancelAppointment",
        json!({"AptNum": apt, "reason": "flow test"}),
    )
    .await;
    let after = ok(
        &svc,
        &org,
        "GetAvailableSlots",
        json!({"date": day, "ProvNum": prov}),
    )
    .await;
    assert!(
        slots_at(&after, prov).contains(&when),
        "{when} not free again: {after}"
    );
}

#[tokio::test]
async fn booking_flow_on_embedded() {
    let demo = fixtures::demo(switchboard_tests::embedded_tables(), None).await;
    booking_flow(demo.platform, demo.org, "2027-06-01").await;
}

#[tokio::test]
async fn booking_flow_on_dynamodb() {
    let suffix = switchboard_tests::unique("flow");
    let demo = fixtures::demo(switchboard_tests::moto_tables().await, Some(&suffix)).await;
    booking_flow(demo.platform, demo.org, "2027-06-01").await;
}
