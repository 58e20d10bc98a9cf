//! The one egress guard on every path out. The guard, the `rest` adapter and the `postgres`
//! adapter refuse each address of the table (`switchboard_tests::egress`), literally and
//! through a host name that resolves to it, before any connection; the admin API refuses the
//! literal ones when a config is written; and a redirect is never followed.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use switchboard::egress::{Egress, is_public};
use switchboard::ports::AdapterCheck;
use switchboard::registry::DataAdapterConfig;
use switchboard::secrets::{SecretValue, Secrets};
use switchboard::spec::{PgConfig, RestConfig};
use switchboard::{DataAdapter, DataError, EntityName, Error, OrgId, RecordId};
use switchboard_embedded::Embedded;
use switchboard_postgres::{PgData, PgPools};
use switchboard_rest::{RestClient, RestData};
use switchboard_runtime::adapters::ConfigCheck;
use switchboard_tests::egress::{ALLOWED, REFUSED, host, names};
use switchboard_tests::unique;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

fn secrets() -> Arc<Secrets> {
    let store = Embedded::in_memory().unwrap().secret_store();
    Arc::new(Secrets::new(store, Duration::from_secs(60), "switchboard"))
}

fn items() -> EntityName {
    EntityName::parse("items").unwrap()
}

/// Every upstream a config can name for each refused address: the literal, and a name.
fn upstreams() -> Vec<(String, &'static str)> {
    REFUSED
        .iter()
        .enumerate()
        .flat_map(|(i, a)| [(host(a), *a), (format!("refused-{i}.test"), *a)])
        .collect()
}

#[tokio::test]
async fn the_guard_refuses_the_table_and_allows_its_neighbours() {
    let guard = Egress::public_only().with_hosts(names());
    for (upstream, address) in upstreams() {
        let e = guard.resolve(&upstream, 443).await.unwrap_err();
        assert!(e.is_policy(), "{upstream} ({address}): {e}");
    }
    for a in REFUSED {
        assert!(!is_public(a.parse().unwrap()), "{a}");
        assert!(guard.check_host(&host(a)).is_err(), "{a}");
    }
    for a in ALLOWED {
        assert!(is_public(a.parse().unwrap()), "{a}");
        assert_eq!(guard.resolve(&host(a), 443).await.unwrap().len(), 1, "{a}");
    }
    // One setting opens them all (local development, upstreams in the VPC).
    let open = Egress::new(true).with_hosts(names());
    for (upstream, _) in upstreams() {
        assert!(open.resolve(&upstream, 443).await.is_ok(), "{upstream}");
    }
}

fn rest_adapter(client: &RestClient, base_url: &str) -> RestData {
    let config = RestConfig::parse(
        json!({"base_url": base_url, "entities": {"items": "/items"}, "timeout_ms": 500, "retries": 0})
            .as_object()
            .unwrap(),
    )
    .unwrap();
    RestData::new(
        client.clone(),
        Arc::new(config),
        secrets(),
        OrgId::parse("acme").unwrap(),
        switchboard::index::Indexes::default(),
    )
}

#[tokio::test]
async fn the_rest_adapter_refuses_the_table_without_connecting() {
    let client = RestClient::new(
        Egress::public_only().with_hosts(names()),
        switchboard_tests::tls(),
    );
    for (upstream, address) in upstreams() {
        let a = rest_adapter(&client, &format!("http://{upstream}:9/v1"));
        let started = Instant::now();
        let e = a
            .get(&items(), &RecordId::parse("1").unwrap())
            .await
            .unwrap_err();
        assert!(
            matches!(&e, DataError::Upstream(m) if m.contains("refuses to call private or loopback addresses")),
            "{upstream} ({address}): {e:?}"
        );
        assert_eq!(Error::from(e).status(), 502);
        assert!(
            started.elapsed() < Duration::from_millis(200),
            "{upstream}: not refused at once"
        );
    }
    // The neighbours are not refused by the guard: whatever the network makes of the call
    // (no route, a timeout, an answer), it is not the guard's refusal.
    let mut calls = tokio::task::JoinSet::new();
    for a in ALLOWED {
        let adapter = rest_adapter(&client, &format!("http://{}:9/v1", host(a)));
        calls.spawn(async move {
            let result = adapter.get(&items(), &RecordId::parse("1").unwrap()).await;
            (a, result)
        });
    }
    while let Some(done) = calls.join_next().await {
        let (a, result) = done.unwrap();
        if let Err(e) = result {
            assert!(!e.to_string().contains("refuses"), "{a}: {e}");
        }
    }
}

#[tokio::test]
async fn the_postgres_adapter_refuses_the_table_without_connecting() {
    let pools = PgPools::new(Egress::public_only().with_hosts(names()));
    let org = OrgId::parse(unique("org")).unwrap();
    for (upstream, address) in upstreams() {
        let secrets = secrets();
        let value = json!({"connection_string": format!("postgres://u:pw@{upstream}:5432/db")});
        let Value::Object(fields) = value else {
            unreachable!()
        };
        let r = secrets
            .store(&org, "db", &SecretValue::new(fields))
            .await
            .unwrap();
        let config = PgConfig::parse(
            json!({"credential": r.as_str(), "entities": {"items": "items"}, "timeout_ms": 500})
                .as_object()
                .unwrap(),
        )
        .unwrap();
        let adapter = PgData::new(
            pools.clone(),
            Arc::new(config),
            secrets,
            org.clone(),
            switchboard::index::Indexes::default(),
        );
        let started = Instant::now();
        let e = adapter
            .get(&items(), &RecordId::parse("1").unwrap())
            .await
            .unwrap_err();
        assert!(
            matches!(&e, DataError::Invalid(m) if m.contains("non-public address") && !m.contains("pw")),
            "{upstream} ({address}): {e:?}"
        );
        assert!(
            started.elapsed() < Duration::from_millis(200),
            "{upstream}: not refused at once"
        );
    }
}

#[tokio::test]
async fn written_configs_naming_a_refused_address_are_422() {
    let secrets = secrets();
    let org = OrgId::parse(unique("org")).unwrap();
    let check = ConfigCheck::new(secrets.clone(), Egress::public_only());
    for a in REFUSED {
        let rest: DataAdapterConfig = DataAdapterConfig::from_json(
            &json!({"type": "rest", "base_url": format!("https://{}/v1", host(a)), "entities": {"items": "/items"}}),
            "/data_adapter",
        )
        .unwrap();
        let e = check.check(&org, &rest, "/data_adapter").await.unwrap_err();
        assert_eq!(
            e.to_body()["error"]["details"][0]["path"],
            "/data_adapter/base_url",
            "{a}"
        );

        let value = json!({"connection_string": format!("postgres://u:pw@{}:5432/db", host(a))});
        let Value::Object(fields) = value else {
            unreachable!()
        };
        let r = secrets
            .store(&org, "db", &SecretValue::new(fields))
            .await
            .unwrap();
        let pg = DataAdapterConfig::from_json(
            &json!({"type": "postgres", "credential": r.as_str(), "entities": {"items": "items"}}),
            "/data_adapter",
        )
        .unwrap();
        let e = check.check(&org, &pg, "/data_adapter").await.unwrap_err();
        let body = e.to_body();
        assert_eq!(e.status(), 422, "{a}: {body}");
        assert_eq!(
            body["error"]["details"][0]["path"], "/data_adapter/credential",
            "{a}"
        );
        assert!(!body.to_string().contains("pw@"), "{body}");
    }
}

/// A server that answers every request with a redirect to `location`.
async fn redirecting(location: String) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let location = location.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                if sock.read(&mut buf).await.is_ok() {
                    let reply = format!(
                        "HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    );
                    if let Err(e) = sock.write_all(reply.as_bytes()).await {
                        eprintln!("redirecting server: {e}");
                    }
                }
            });
        }
    });
    port
}

#[tokio::test]
async fn a_redirect_is_never_followed() {
    // Where the redirect points: a listener that counts who connects.
    let target = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let target_port = target.local_addr().unwrap().port();
    let connected = Arc::new(AtomicUsize::new(0));
    let seen = connected.clone();
    tokio::spawn(async move {
        while let Ok((_sock, _)) = target.accept().await {
            seen.fetch_add(1, Ordering::SeqCst);
        }
    });
    for location in [
        "http://169.254.169.254/latest/meta-data/".to_owned(),
        format!("http://127.0.0.1:{target_port}/items/1"),
    ] {
        let port = redirecting(location.clone()).await;
        // Private upstreams allowed, so the first hop (loopback) is reachable at all.
        let client = RestClient::new(Egress::new(true), switchboard_tests::tls());
        let adapter = rest_adapter(&client, &format!("http://127.0.0.1:{port}"));
        let e = adapter
            .get(&items(), &RecordId::parse("1").unwrap())
            .await
            .unwrap_err();
        assert!(
            matches!(&e, DataError::Upstream(m) if m.contains("302")),
            "{location}: {e:?}"
        );
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(
        connected.load(Ordering::SeqCst),
        0,
        "the redirect was followed"
    );
}
