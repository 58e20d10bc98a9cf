//! Log capture, in its own test binary: tracing's callsite cache is process-wide, so other
//! tests running in parallel threads would make the captured output flaky.

#[path = "suite/fixtures.rs"]
mod fixtures;

use std::io::Write;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use std::time::Duration;

use switchboard::admin::AdminRequest;
use switchboard::audit::AuditLog;
use switchboard::auth::TenantContext;
use switchboard::pipeline::CallInput;
use switchboard::ports::{Item, ItemStore, Key, Page, Precondition, SkRange, StoreError};
use switchboard::registry::Registry;
use switchboard::secrets::Secrets;
use switchboard_aws::secretsmanager::SecretsManagerStore;
use switchboard_tests::embedded_tables;

use fixtures::{booking_service, demo};

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut v) = self.0.lock() {
            v.extend_from_slice(buf);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn logs_carry_the_call_and_never_the_parameters() {
    let captured = Captured::default();
    let writer = captured.clone();
    let log = switchboard::settings::LogSettings {
        json: true,
        level: "info".into(),
    };
    let subscriber = switchboard::telemetry::subscriber(&log, move || writer.clone());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    tracing::subscriber::with_default(subscriber, || {
        rt.block_on(async {
            let demo = demo(embedded_tables(), None).await;
            let svc = booking_service(&demo.platform);
            let body = json!({"function": "CreateAppointment", "parameters":
                {"PatNum": 2, "ProvNum": 2, "AptDateTime": "2027-06-01 11:00", "Note": "PRIVATE-NOTE-4417"}})
            .to_string();
            let (status, resp) = svc
                .call(CallInput {
                    tenant: Some(TenantContext::new(demo.org.clone()).with_scopes(&["plugins:call"])),
                    body: body.as_bytes(),
                    request_id: "req-log-1",
                    idempotency_key: None,
                })
                .await;
            assert_eq!(status, 200, "{resp}");
        });
    });
    let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let call_line = text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v["message"] == "call ok")
        .unwrap_or_else(|| panic!("no 'call ok' line in:\n{text}"));
    let span = &call_line["span"];
    assert_eq!(span["request_id"], "req-log-1", "{call_line}");
    assert_eq!(span["org"], "demo-dental");
    assert_eq!(span["plugin"], "booking");
    assert_eq!(span["function"], "CreateAppointment");
    assert_eq!(call_line["status"], 200);
    assert!(
        !text.contains("PRIVATE-NOTE-4417"),
        "parameters leaked into the log:\n{text}"
    );
}

fn env(var: &str) -> String {
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => v,
        _ => panic!(
            "{var} is not set: moto and json-server are started by scripts/test. Run scripts/test."
        ),
    }
}

/// A full call path with real credentials, logged with the production subscriber asked for
/// TRACE: the credential is stored through the admin API into moto's Secrets Manager
/// (CreateSecret), resolved from it (GetSecretValue), and used by booking's `rest` adapter
/// with bearer auth against json-server: a good call, a failing upstream (502), and a
/// rejected credential that is refreshed and still refused (502) while the upstream echoes
/// the header back. The secret values appear in no log line and no response.
#[test]
fn secret_values_reach_no_log_error_or_response() {
    const GOOD: &str = "sb-rest-test-token-v2";
    const WRONG: &str = "LEAKCHECK-wrong-token-5150";
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = switchboard::telemetry::subscriber_for("trace", true, move || writer.clone());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut responses = Vec::new();
    tracing::subscriber::with_default(subscriber, || {
        rt.block_on(async {
            let cases = [
                (
                    "ok",
                    env("SWITCHBOARD_TEST_REST"),
                    GOOD,
                    "/bk_patients",
                    200,
                ),
                (
                    "failing",
                    env("SWITCHBOARD_TEST_REST_FAILING"),
                    GOOD,
                    "/bk_patients",
                    502,
                ),
                (
                    "rejected",
                    env("SWITCHBOARD_TEST_REST"),
                    WRONG,
                    "/secure_notes",
                    502,
                ),
            ];
            for (name, base, token, patients, want) in cases {
                let suffix = switchboard_tests::unique(name);
                let org = switchboard_cli::seed::demo_org(Some(&suffix)).unwrap();
                let store = SecretsManagerStore::new(
                    switchboard_tests::secretsmanager_client(&env("SWITCHBOARD_TEST_DYNAMODB"))
                        .await,
                );
                let secrets = Arc::new(Secrets::new(
                    Arc::new(store),
                    Duration::from_secs(300),
                    "switchboard",
                ));
                let tables = embedded_tables();
                let admin = switchboard_tests::admin_service(
                    Registry::new(tables.registry.clone()),
                    secrets.clone(),
                );
                let body = json!({"value": {"token": token}}).to_string();
                let (status, stored) = admin
                    .handle(AdminRequest {
                        tenant: Some(TenantContext::new(org.clone()).with_scopes(&["admin:write"])),
                        method: "PUT",
                        path: "/admin/credentials/clinic-api",
                        if_match: None,
                        body: body.as_bytes(),
                        ..Default::default()
                    })
                    .await;
                assert_eq!(status, 201, "{stored}");
                responses.push(stored.to_string());
                let reference = stored["result"]["reference"].as_str().unwrap().to_owned();
                let entities = json!({
                    "patients": patients, "providers": "/bk_providers",
                    "operatories": "/bk_operatories", "appointments": "/bk_appointments",
                    "slot_claims": "/bk_slot_claims"});
                let adapter = serde_json::from_value(json!({
                    "type": "rest", "base_url": base, "entities": entities,
                    "credential": reference, "auth": {"bearer": "token"},
                    "retries": 0, "timeout_ms": 2000}))
                .unwrap();
                let demo = fixtures::demo_on(tables, Some(&suffix), Some(adapter), secrets).await;
                let svc = booking_service(&demo.platform);
                let body = json!({"function": "SearchPatients", "parameters": {"name": "Rivera"}})
                    .to_string();
                let (status, resp) = svc
                    .call(CallInput {
                        tenant: Some(
                            TenantContext::new(demo.org.clone()).with_scopes(&["plugins:call"]),
                        ),
                        body: body.as_bytes(),
                        request_id: name,
                        idempotency_key: None,
                    })
                    .await;
                assert_eq!(status, want, "{name}: {resp}");
                responses.push(resp.to_string());
            }
        });
    });
    let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let refused = lines
        .iter()
        .filter(|l| l["status"] == 502 && l["span"]["plugin"] == "booking")
        .count();
    assert_eq!(refused, 2, "the two refused calls were not logged:\n{text}");
    assert!(
        lines.iter().any(|l| l["level"] == "TRACE"),
        "nothing was captured at TRACE, so the test proves little:\n{text}"
    );
    assert!(
        text.contains("GetSecretValue") || text.contains("secretsmanager"),
        "Secrets Manager calls were not in the captured log:\n{text}"
    );
    for secret in [GOOD, WRONG] {
        assert!(!text.contains(secret), "{secret} leaked into the log");
        for r in &responses {
            assert!(!r.contains(secret), "{secret} leaked into a response: {r}");
        }
    }
}

/// A store that refuses every audit write, as DynamoDB does when throttled or down.
struct AuditDown(Arc<dyn ItemStore>);

#[switchboard::async_trait]
impl ItemStore for AuditDown {
    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        self.0.get(key).await
    }
    async fn put(&self, key: &Key, data: &Value, pre: Precondition) -> Result<u64, StoreError> {
        self.0.put(key, data, pre).await
    }
    async fn delete(&self, key: &Key, pre: Precondition) -> Result<bool, StoreError> {
        self.0.delete(key, pre).await
    }
    async fn query_range(
        &self,
        pk: &str,
        range: &SkRange,
        after: Option<&str>,
        limit: Option<usize>,
    ) -> Result<Page<Item>, StoreError> {
        self.0.query_range(pk, range, after, limit).await
    }
    async fn batch_get(&self, keys: &[Key]) -> Result<Vec<Item>, StoreError> {
        self.0.batch_get(keys).await
    }
    async fn transact_write(
        &self,
        writes: &[switchboard::ports::Write<'_>],
    ) -> Result<(), StoreError> {
        self.0.transact_write(writes).await
    }
    async fn increment(&self, key: &Key) -> Result<u64, StoreError> {
        self.0.increment(key).await
    }
    async fn put_expiring(
        &self,
        _: &Key,
        _: &Value,
        _: Precondition,
        _: u64,
    ) -> Result<u64, StoreError> {
        Err(StoreError::Unavailable(
            "ProvisionedThroughputExceededException".into(),
        ))
    }
}

/// An audit entry that cannot be stored fails no call: it is logged in full at ERROR (so
/// the log group keeps it; its parameters only as a hash) and counted.
#[test]
fn an_entry_that_cannot_be_stored_is_logged_and_counted_and_the_call_succeeds() {
    let captured = Captured::default();
    let writer = captured.clone();
    let log_settings = switchboard::settings::LogSettings {
        json: true,
        // The strictest level that still logs the loss: the metric is written at it too.
        level: "error".into(),
    };
    let subscriber = switchboard::telemetry::subscriber(&log_settings, move || writer.clone());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let audit = tracing::subscriber::with_default(subscriber, || {
        rt.block_on(async {
            let tables = embedded_tables();
            let audit = Arc::new(AuditLog::new(Arc::new(AuditDown(tables.data.clone()))));
            let demo = fixtures::demo_audited_by(tables, Some("down"), audit.clone()).await;
            let svc = booking_service(&demo.platform);
            for rid in ["lost-1", "lost-2"] {
                let body = json!({"function": "SearchPatients", "parameters": {"name": "PRIVATE-NAME-8812"}})
                    .to_string();
                let (status, resp) = svc
                    .call(CallInput {
                        tenant: Some(
                            TenantContext::new(demo.org.clone()).with_scopes(&["plugins:call"]),
                        ),
                        body: body.as_bytes(),
                        request_id: rid,
                        idempotency_key: None,
                    })
                    .await;
                assert_eq!(status, 200, "{resp}");
            }
            audit
        })
    });
    assert_eq!(audit.failures(), 2);
    let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let lost: Vec<Value> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["message"] == "audit entry not stored")
        .collect();
    assert_eq!(lost.len(), 2, "{text}");
    assert_eq!(lost[1]["level"], "ERROR", "{}", lost[1]);
    assert_eq!(lost[1]["audit_failures"], 2, "{}", lost[1]);
    let entry: Value = serde_json::from_str(lost[1]["entry"].as_str().unwrap()).unwrap();
    assert_eq!(entry["requestId"], "lost-2");
    assert_eq!(entry["function"], "SearchPatients");
    assert!(entry["paramsSha256"].is_string());
    assert!(
        !text.contains("PRIVATE-NAME-8812"),
        "parameters leaked into the log:\n{text}"
    );
    // Each loss is also a CloudWatch metric, in embedded metric format (the template alarms
    // on it), and the metric is not a log line of its own.
    let metrics: Vec<Value> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v.get("_aws").is_some())
        .collect();
    assert_eq!(metrics.len(), 2, "{text}");
    let emf = &metrics[1];
    let directive = &emf["_aws"]["CloudWatchMetrics"][0];
    assert_eq!(directive["Namespace"], "Switchboard");
    assert_eq!(
        directive["Metrics"],
        json!([{"Name": "AuditEntriesNotStored", "Unit": "Count"}])
    );
    assert_eq!(
        directive["Dimensions"],
        json!([["service"], ["service", "function"]])
    );
    assert_eq!(emf["AuditEntriesNotStored"], 1);
    assert_eq!(emf["service"], "switchboard");
    assert_eq!(emf["level"], "ERROR");
    assert!(emf["function"].is_string() && emf["_aws"]["Timestamp"].is_u64());
    assert!(!text.contains("switchboard::metric"), "{text}");
}
