//! Credentials against moto's Secrets Manager: round trips, references that do not resolve,
//! and the outage behaviour (stale value after warm-up, 503 on a cold start) with a moto
//! this test starts and stops through `scripts/moto`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use switchboard::OrgId;
use switchboard::data::BuiltinData;
use switchboard::ports::AdapterCheck;
use switchboard::registry::DataAdapterConfig;
use switchboard::secrets::{CredentialRef, SecretError, SecretStore, SecretValue, Secrets};
use switchboard_aws::secretsmanager::SecretsManagerStore;
use switchboard_runtime::adapters::DataAdapters;
use switchboard_tests::{
    PrivateMoto, embedded_tables, moto_endpoint, secretsmanager_client, unique,
};

fn value(token: &str) -> SecretValue {
    match json!({"token": token}) {
        serde_json::Value::Object(m) => SecretValue::new(m),
        _ => unreachable!(),
    }
}

async fn shared_store() -> Arc<dyn SecretStore> {
    Arc::new(SecretsManagerStore::new(
        secretsmanager_client(&moto_endpoint()).await,
    ))
}

#[tokio::test]
async fn secrets_manager_round_trip_and_update() {
    let store = shared_store().await;
    let secrets = Secrets::new(store.clone(), Duration::from_secs(300), "switchboard");
    let org = OrgId::parse(unique("org")).unwrap();
    let r = secrets
        .store(&org, "crm-api", &value("tok-1"))
        .await
        .unwrap();
    assert_eq!(r.as_str(), format!("switchboard/{org}/crm-api"));
    assert_eq!(
        secrets.resolve(&org, &r).await.unwrap().field("token"),
        Some("tok-1")
    );
    // Storing again replaces the value (PutSecretValue) and drops the cached one.
    secrets
        .store(&org, "crm-api", &value("tok-2"))
        .await
        .unwrap();
    assert_eq!(
        secrets.resolve(&org, &r).await.unwrap().field("token"),
        Some("tok-2")
    );
    assert_eq!(store.fetch(&r).await.unwrap().field("token"), Some("tok-2"));
}

#[tokio::test]
async fn missing_and_malformed_secrets_are_config_errors() {
    let store = shared_store().await;
    let org = OrgId::parse(unique("org")).unwrap();
    let missing = CredentialRef::parse(format!("switchboard/{org}/nope")).unwrap();
    assert!(matches!(
        store.fetch(&missing).await,
        Err(SecretError::NotFound(_))
    ));

    let plain = format!("switchboard/{org}/plain");
    secretsmanager_client(&moto_endpoint())
        .await
        .create_secret()
        .name(&plain)
        .secret_string("not-json-PLAINVALUE")
        .send()
        .await
        .unwrap();
    let secrets = Secrets::new(store, Duration::from_secs(300), "switchboard");
    let e = secrets
        .resolve(&org, &CredentialRef::parse(plain).unwrap())
        .await
        .unwrap_err();
    assert_eq!(e.status(), 422, "{e:?}");
    assert!(!format!("{e:?}").contains("PLAINVALUE"));
}

/// An adapter config is checked when written: unknown type, missing settings, and a
/// credential that is another tenant's or does not resolve are all 422 with a pointer.
#[tokio::test]
async fn adapter_configs_are_checked_on_write() {
    let secrets = Arc::new(Secrets::new(
        shared_store().await,
        Duration::from_secs(300),
        "switchboard",
    ));
    let org = OrgId::parse(unique("org")).unwrap();
    let adapters = switchboard_tests::config_check(secrets.clone());
    let good = secrets.store(&org, "api", &value("t")).await.unwrap();
    let config = |v: serde_json::Value| -> DataAdapterConfig { serde_json::from_value(v).unwrap() };
    let unknown = DataAdapterConfig::from_json(&json!({"type": "mongodb"}), "/data_adapter");
    assert_eq!(
        unknown.unwrap_err().to_body()["error"]["details"][0]["path"],
        "/data_adapter/type"
    );
    let cases = [
        (
            json!({"type": "rest", "credential": good.as_str(), "entities": {"patients": "/patients"}}),
            "/data_adapter/base_url",
        ),
        (
            json!({"type": "rest", "base_url": "http://127.0.0.1:9", "entities": {"patients": "/patients"},
                   "auth": {"bearer": "token"}, "credential": format!("switchboard/{org}/missing")}),
            "/data_adapter/credential",
        ),
        (
            json!({"type": "rest", "base_url": "http://127.0.0.1:9", "entities": {"patients": "/patients"},
                   "auth": {"bearer": "token"}, "credential": "switchboard/someone-else/api"}),
            "/data_adapter/credential",
        ),
        (json!({"type": "postgres"}), "/data_adapter/credential"),
    ];
    for (c, pointer) in cases {
        let e = adapters
            .check(&org, &config(c.clone()), "/data_adapter")
            .await
            .expect_err(&c.to_string());
        assert_eq!(e.status(), 422, "{c}: {e:?}");
        let body = e.to_body();
        let details = body["error"]["details"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert!(
            details.iter().any(|d| d["path"] == pointer),
            "{c}: expected a detail at {pointer}, got {body}"
        );
    }
    adapters
        .check(&org, &config(json!({"type": "dynamodb"})), "/data_adapter")
        .await
        .unwrap();
}

#[tokio::test]
async fn secrets_manager_outage_serves_stale_after_warm_up_and_503_when_cold() {
    let mut moto = PrivateMoto::start();
    let store: Arc<dyn SecretStore> = Arc::new(SecretsManagerStore::new(
        secretsmanager_client(&moto.endpoint).await,
    ));
    let org = OrgId::parse("acme").unwrap();
    let warm = Secrets::new(store.clone(), Duration::from_millis(100), "switchboard");
    let r = warm.store(&org, "api", &value("warm-token")).await.unwrap();
    assert_eq!(
        warm.resolve(&org, &r).await.unwrap().field("token"),
        Some("warm-token")
    );

    moto.stop();
    tokio::time::sleep(Duration::from_millis(150)).await;

    // Warm container, entry expired, store down: the stale value is served.
    let started = Instant::now();
    let v = warm.resolve(&org, &r).await.unwrap();
    assert_eq!(v.field("token"), Some("warm-token"));
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );

    // Cold container with the store down: 503 within a bounded time, never a hang.
    let cold = Secrets::new(store, Duration::from_secs(300), "switchboard");
    let started = Instant::now();
    let e = cold.resolve(&org, &r).await.unwrap_err();
    assert_eq!(
        (e.status(), e.code()),
        (503, "dependency_unavailable"),
        "{e:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert!(!format!("{e:?}").contains("warm-token"));
}

/// Secrets Manager that accepts connections and never answers (a black-holed endpoint, not
/// a refused one): the first cold resolve fails within the SDK's operation timeout, and the
/// calls after it answer 503 at once instead of each waiting again.
#[tokio::test]
async fn a_silent_secrets_manager_costs_one_timeout_not_one_per_call() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((sock, _)) = listener.accept().await {
            open.push(sock);
        }
    });
    let store: Arc<dyn SecretStore> = Arc::new(SecretsManagerStore::new(
        secretsmanager_client(&format!("http://{addr}")).await,
    ));
    let secrets = Arc::new(Secrets::new(store, Duration::from_secs(300), "switchboard"));
    let org = OrgId::parse("acme").unwrap();
    let r = CredentialRef::parse("switchboard/acme/api").unwrap();

    let started = Instant::now();
    let e = secrets.resolve(&org, &r).await.unwrap_err();
    assert_eq!(e.status(), 503, "{e:?}");
    let first = started.elapsed();
    assert!(first < Duration::from_secs(7), "{first:?}");

    let started = Instant::now();
    let calls = (0..10).map(|_| {
        let (s, o, r) = (secrets.clone(), org.clone(), r.clone());
        tokio::spawn(async move { s.resolve(&o, &r).await })
    });
    for c in calls {
        assert_eq!(c.await.unwrap().unwrap_err().status(), 503);
    }
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "later calls waited {:?}",
        started.elapsed()
    );
    held.abort();
}

/// The same outage seen by a caller: booking on the `rest` adapter with its credential in
/// a moto this test stops. A warm container keeps answering 200 from its cached secret; a
/// cold container answers 503 `dependency_unavailable` in the envelope, within seconds.
#[tokio::test]
async fn plugin_calls_during_a_secrets_manager_outage() {
    use switchboard::auth::TenantContext;
    use switchboard::pipeline::{CallInput, Platform, PluginService};
    use switchboard::registry::Registry;

    let mut moto = PrivateMoto::start();
    let endpoint = moto.endpoint.clone();
    let store = || async {
        Arc::new(SecretsManagerStore::new(
            secretsmanager_client(&endpoint).await,
        )) as Arc<dyn SecretStore>
    };
    let warm_secrets = Arc::new(Secrets::new(
        store().await,
        Duration::from_secs(300),
        "switchboard",
    ));
    let suffix = unique("outage");
    let org = switchboard_cli::seed::demo_org(Some(&suffix)).unwrap();
    let reference = warm_secrets
        .store(&org, "clinic-api", &value("sb-rest-test-token-v2"))
        .await
        .unwrap();
    let rest = std::env::var("SWITCHBOARD_TEST_REST")
        .expect("SWITCHBOARD_TEST_REST: json-server is started by scripts/test");
    let adapter: DataAdapterConfig = serde_json::from_value(json!({
        "type": "rest", "base_url": rest, "credential": reference.as_str(),
        "auth": {"bearer": "token"},
        "entities": {"patients": "/bk_patients", "providers": "/bk_providers",
                     "operatories": "/bk_operatories", "appointments": "/bk_appointments",
                     "slot_claims": "/bk_slot_claims"}}))
    .unwrap();
    let tables = embedded_tables();
    let (registry, data) = (tables.registry.clone(), tables.data.clone());
    let warm = crate::fixtures::demo_on(tables, Some(&suffix), Some(adapter), warm_secrets).await;

    let body = json!({"function": "SearchPatients", "parameters": {"name": "Rivera"}}).to_string();
    let call = |platform: Arc<Platform>| {
        let (org, body) = (org.clone(), body.clone());
        async move {
            let svc = PluginService::new(booking::plugin().unwrap(), platform);
            svc.call(CallInput {
                tenant: Some(TenantContext::new(org).with_scopes(&["plugins:call"])),
                body: body.as_bytes(),
                request_id: "outage",
                idempotency_key: None,
            })
            .await
        }
    };
    assert_eq!(call(warm.platform.clone()).await.0, 200);
    moto.stop();
    let (status, resp) = call(warm.platform.clone()).await;
    assert_eq!(status, 200, "warm container, cached secret: {resp}");

    let cold_secrets = Arc::new(Secrets::new(
        store().await,
        Duration::from_secs(300),
        "switchboard",
    ));
    let cold = Arc::new(
        Platform::new(
            Registry::new(registry),
            Arc::new(DataAdapters::new(
                BuiltinData::new(data.clone()),
                cold_secrets,
                &switchboard_tests::egress(),
                switchboard_tests::tls(),
            )),
            data,
            Duration::from_secs(30),
        )
        .with_clock(Arc::new(crate::fixtures::pinned_now)),
    );
    let started = Instant::now();
    let (status, resp) = call(cold).await;
    assert_eq!(
        (status, resp["error"]["code"].as_str()),
        (503, Some("dependency_unavailable")),
        "{resp}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(7),
        "{:?}",
        started.elapsed()
    );
    assert!(!resp.to_string().contains("sb-rest-test-token-v2"));
}

/// A store that answers once, then stalls like a black-holed Secrets Manager until its own
/// client gives up (here after 1.5 s) with "unavailable".
struct Stalling {
    calls: std::sync::atomic::AtomicUsize,
}

#[switchboard::async_trait]
impl SecretStore for Stalling {
    async fn fetch(&self, _: &CredentialRef) -> Result<SecretValue, SecretError> {
        if self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
            return Ok(value("sb-rest-test-token-v2"));
        }
        tokio::time::sleep(Duration::from_millis(1500)).await;
        Err(SecretError::Unavailable("timed out".into()))
    }
    async fn put(&self, name: &str, _: &SecretValue) -> Result<CredentialRef, SecretError> {
        CredentialRef::parse(name).map_err(SecretError::Invalid)
    }
}

/// An adapter call whose budget (800 ms) ends before the stalled fetch does: the fetch runs
/// on, records the outage, and the next calls are served the stale value at once.
#[tokio::test]
async fn a_stalled_fetch_cut_off_by_a_call_budget_still_records_the_outage() {
    use switchboard::egress::Egress;
    use switchboard::ports::DataAdapter;
    use switchboard::spec::RestConfig;
    use switchboard_rest::{RestClient, RestData};

    let rest = std::env::var("SWITCHBOARD_TEST_REST")
        .expect("SWITCHBOARD_TEST_REST: json-server is started by scripts/test");
    let store = Arc::new(Stalling {
        calls: Default::default(),
    });
    let secrets = Arc::new(Secrets::new(
        store.clone(),
        Duration::from_millis(1000),
        "switchboard",
    ));
    let org = OrgId::parse("acme").unwrap();
    let settings = json!({"base_url": rest, "entities": {"patients": "/bk_patients"},
        "credential": "switchboard/acme/api", "auth": {"bearer": "token"},
        "timeout_ms": 800, "retries": 0});
    let adapter = || {
        RestData::new(
            RestClient::new(Egress::new(true), switchboard_tests::tls()),
            Arc::new(RestConfig::parse(settings.as_object().unwrap()).unwrap()),
            secrets.clone(),
            org.clone(),
            switchboard_tests::indexes(&["patients"], &["age"]),
        )
    };
    let patients = switchboard::EntityName::parse("patients").unwrap();
    let all = [switchboard::Condition::new(
        "age",
        switchboard::ports::Op::Gte,
        0,
    )];
    assert!(adapter().query(&patients, &all).await.is_ok(), "warm call");
    tokio::time::sleep(Duration::from_millis(1100)).await;

    let started = Instant::now();
    let cut = adapter().query(&patients, &all).await;
    assert!(cut.is_err(), "the budget ends first");
    assert!(
        started.elapsed() < Duration::from_millis(1300),
        "{:?}",
        started.elapsed()
    );

    tokio::time::sleep(Duration::from_millis(1000)).await;
    let started = Instant::now();
    let served = adapter().query(&patients, &all).await;
    assert!(
        served.is_ok(),
        "stale value served after the detached fetch recorded the outage: {served:?}"
    );
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(store.calls.load(std::sync::atomic::Ordering::SeqCst), 2);
}
