//! The `dev` server over real sockets: the README's curl booking, 409 on a repeat, the
//! emulated authorizer, and a restart that keeps the booking.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use serde_json::json;
use switchboard::adapters::embedded::Embedded;
use switchboard::agent::builder::AgentBuilder;
use switchboard::agent::dialects::ExportOptions;
use switchboard::agent::service::AgentService;
use switchboard::data::BuiltinData;
use switchboard::pipeline::Platform;
use switchboard::registry::Registry;
use switchboard_cli::dev::{Server, plugins, serve};
use switchboard_cli::seed::ensure_demo;
use switchboard_tests::http::{post, send};
use tokio::net::TcpListener;

use crate::fixtures::pinned_now;

async fn start(
    dir: &Path,
) -> (
    SocketAddr,
    String,
    tokio::task::JoinHandle<std::io::Result<()>>,
) {
    let db = Embedded::open(&dir.join("switchboard.db")).unwrap();
    let registry = Registry::new(db.registry_table());
    let data = BuiltinData::new(db.data_table());
    let plugins = plugins().unwrap();
    let key = ensure_demo(&registry, &data, &plugins, dir, None)
        .await
        .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let agents = AgentService::new(
        AgentBuilder::new(registry.clone(), std::time::Duration::from_secs(30)),
        ExportOptions {
            public_base_url: Some(format!("http://{addr}")),
        },
    );
    let platform = Platform::new(registry, Arc::new(data), std::time::Duration::from_secs(30))
        .with_clock(Arc::new(pinned_now));
    let server = Arc::new(Server::new(Arc::new(platform), plugins, agents));
    (addr, key, tokio::spawn(serve(listener, server)))
}

#[tokio::test]
async fn curl_booking_conflicts_on_repeat_and_survives_a_restart() {
    let dir = std::env::temp_dir().join(switchboard_tests::unique("sb-dev"));
    let (addr, key, task) = start(&dir).await;
    let booking = json!({"function": "CreateAppointment",
        "parameters": {"PatNum": 1, "ProvNum": 1, "AptDateTime": "2027-06-01 10:00"}});

    let first = post(addr, "/plugins/booking", Some(&key), &booking).await;
    assert_eq!(first.status, 200, "{}", first.body);
    let apt = first.body["result"]["AptNum"].clone();
    let again = post(addr, "/plugins/booking", Some(&key), &booking).await;
    assert_eq!(again.status, 409, "{}", again.body);
    assert!(
        again.body["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("booked"),
        "{}",
        again.body
    );

    // The emulated authorizer.
    assert_eq!(
        post(addr, "/plugins/booking", None, &booking).await.status,
        401
    );
    assert_eq!(
        post(addr, "/plugins/booking", Some("sb_dev_wrong"), &booking)
            .await
            .status,
        401
    );
    // Routing.
    let unknown = post(addr, "/plugins/payroll", Some(&key), &booking).await;
    assert_eq!(
        (unknown.status, unknown.body["error"]["code"].as_str()),
        (404, Some("unknown_plugin"))
    );
    assert_eq!(
        send(addr, "GET", "/plugins/booking", Some(&key), b"")
            .await
            .status,
        405
    );
    let legacy = post(
        addr,
        "/api/booking",
        Some(&key),
        &json!({"function": "GetPatient", "parameters": {"PatNum": 1}}),
    )
    .await;
    assert_eq!(legacy.status, 200, "{}", legacy.body);
    // A body over the limit is refused without being buffered whole.
    let big = vec![b' '; 300 * 1024];
    assert_eq!(
        send(addr, "POST", "/plugins/booking", Some(&key), &big)
            .await
            .status,
        413
    );

    // Restart: a new server over the same files still has the booking and the key.
    task.abort();
    assert!(task.await.is_err_and(|e| e.is_cancelled()));
    let (addr, key2, task) = start(&dir).await;
    assert_eq!(
        key2, key,
        "the saved demo key keeps working across restarts"
    );
    let list = post(
        addr,
        "/plugins/booking",
        Some(&key),
        &json!({"function": "GetAppointments", "parameters": {"PatNum": 1}}),
    )
    .await;
    assert_eq!(list.status, 200, "{}", list.body);
    let apts = list.body["result"]["appointments"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(apts.iter().any(|a| a["AptNum"] == apt), "{}", list.body);
    let repeat = post(addr, "/plugins/booking", Some(&key), &booking).await;
    assert_eq!(
        repeat.status, 409,
        "still booked after the restart: {}",
        repeat.body
    );
    task.abort();
    std::fs::remove_dir_all(&dir).unwrap();
}
