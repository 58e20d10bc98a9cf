//! The `dev` server over real sockets: the README's curl booking, 409 on a repeat, the
//! emulated authorizer, and a restart that keeps the booking.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use serde_json::json;
use switchboard::agent::builder::AgentBuilder;
use switchboard::agent::dialects::ExportOptions;
use switchboard::agent::service::AgentService;
use switchboard::data::BuiltinData;
use switchboard::registry::Registry;
use switchboard::secrets::Secrets;
use switchboard_cli::dev::{Gateway, plugins, serve};
use switchboard_cli::seed::ensure_demo;
use switchboard_embedded::Embedded;
use switchboard_tests::http::{post, send};
use tokio::net::TcpListener;

use crate::fixtures::pinned_now;

pub(crate) async fn start(
    dir: &Path,
) -> (
    SocketAddr,
    String,
    tokio::task::JoinHandle<std::io::Result<()>>,
) {
    let (addr, key, _, task) = start_with_operator(dir).await;
    (addr, key, task)
}

/// [`start`], and dev's platform-operator key too.
pub(crate) async fn start_with_operator(
    dir: &Path,
) -> (
    SocketAddr,
    String,
    String,
    tokio::task::JoinHandle<std::io::Result<()>>,
) {
    let (addr, key, operator, _, task) = start_gateway(dir).await;
    (addr, key, operator, task)
}

/// [`start_with_operator`], and the gateway itself (to run scheduled calls when a test
/// says they are due: the clock is pinned).
pub(crate) async fn start_gateway(
    dir: &Path,
) -> (
    SocketAddr,
    String,
    String,
    Arc<Gateway>,
    tokio::task::JoinHandle<std::io::Result<()>>,
) {
    let db = Embedded::open(&dir.join("switchboard.db")).unwrap();
    let registry = Registry::new(db.registry_table());
    let data = BuiltinData::new(db.data_table());
    let plugins = plugins().unwrap();
    let key = ensure_demo(&registry, &data, &plugins, dir, None)
        .await
        .unwrap();
    let operator = switchboard_cli::seed::operator_key(&registry, dir)
        .await
        .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    // As `dev` composes it, with the clock pinned so the events' dates are in the future.
    let settings = switchboard_cli::dev::settings().unwrap();
    let secrets = Arc::new(Secrets::from_settings(db.secret_store(), &settings));
    let platform = switchboard_runtime::platform_with(
        registry.clone(),
        data,
        secrets.clone(),
        switchboard_tests::tls(),
        &settings,
    )
    .unwrap()
    .with_clock(Arc::new(pinned_now));
    let schedules = Arc::new(switchboard::schedule::StoredSchedules::new(db.data_table()));
    let platform = platform.with_scheduler(schedules.clone());
    let agents = AgentService::new(
        AgentBuilder::new(registry.clone(), settings.cache_ttl),
        ExportOptions {
            public_base_url: Some(format!("http://{addr}")),
        },
    );
    let mcp_agents = AgentBuilder::new(registry.clone(), settings.cache_ttl);
    let audit = Arc::new(switchboard::audit::AuditLog::new(db.data_table()));
    let admin = switchboard_runtime::admin_with(registry, secrets, &settings)
        .with_audit(audit)
        .with_export(ExportOptions {
            public_base_url: Some(format!("http://{addr}")),
        });
    let gateway = Arc::new(
        Gateway::new(
            Arc::new(platform),
            plugins,
            agents,
            admin,
            mcp_agents,
            &settings,
            addr,
        )
        .with_schedules(schedules),
    );
    (
        addr,
        key,
        operator,
        gateway.clone(),
        tokio::spawn(serve(listener, gateway)),
    )
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

    // The authorizer, as API Gateway runs it: no key 401, a refused key 403.
    assert_eq!(
        post(addr, "/plugins/booking", None, &booking).await.status,
        401
    );
    assert_eq!(
        post(addr, "/plugins/booking", Some("sb_dev_wrong"), &booking)
            .await
            .status,
        403
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
    // Headers API Gateway sets itself are not the client's to choose (lambda_http builds
    // the request URL from them).
    {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let head = format!(
            "GET /agents/twilio HTTP/1.1\r\nHost: a b\r\nX-Forwarded-Proto: 1\r\n\
             Authorization: Bearer {key}\r\nConnection: close\r\n\r\n"
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await.unwrap();
        let text = String::from_utf8_lossy(&raw);
        assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    }
    assert_eq!(
        send(addr, "GET", "/agents/", Some(&key), b"").await.status,
        404,
        "an empty channel is no route"
    );
    let legacy = post(
        addr,
        "/api/booking",
        Some(&key),
        &json!({"function": "GetPatient", "parameters": {"PatNum": 1}}),
    )
    .await;
    assert_eq!(legacy.status, 200, "{}", legacy.body);
    // A body over the function's limit is refused by the function, naming its real size;
    // one over Lambda's payload limit never reaches it.
    let big = vec![b' '; 300_054];
    let refused = send(addr, "POST", "/plugins/booking", Some(&key), &big).await;
    assert_eq!(refused.status, 413, "{}", refused.body);
    assert_eq!(
        refused.body["error"]["message"],
        "request body is 300054 bytes; the limit is 262144 bytes"
    );
    let huge = vec![b' '; 7 * 1024 * 1024];
    let refused = send(addr, "POST", "/plugins/booking", Some(&key), &huge).await;
    assert_eq!(refused.status, 413);
    assert_eq!(refused.body["message"], "Request Entity Too Large");

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

/// A key bound to a channel, created over the admin API and used over real sockets: it
/// reaches only its channel's plugins and agent, and a Retell call's caller number reaches
/// the plugin.
#[tokio::test]
async fn a_channel_bound_key_reaches_only_its_channel() {
    let dir = std::env::temp_dir().join(switchboard_tests::unique("sb-dev"));
    let (addr, admin_key, task) = start(&dir).await;
    let bad = post(
        addr,
        "/admin/keys",
        Some(&admin_key),
        &json!({"scopes": ["plugins:call"], "channel": "Web Chat"}),
    )
    .await;
    assert_eq!(bad.status, 422, "{}", bad.body);
    assert_eq!(bad.body["error"]["details"][0]["path"], "/channel");
    let created = post(
        addr,
        "/admin/keys",
        Some(&admin_key),
        &json!({"name": "web widget", "scopes": ["plugins:call", "agents:read"], "channel": "web"}),
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(created.body["result"]["channel"], "web");
    let key = created.body["result"]["key"].as_str().unwrap().to_owned();

    // booking is assigned on web: the call runs, and Retell's caller number finds the patient.
    let retell = json!({"name": "SearchPatients", "args": {},
        "call": {"call_id": "call_1", "from_number": "+1 555-010-2000"}});
    let found = post(addr, "/plugins/booking", Some(&key), &retell).await;
    assert_eq!(found.status, 200, "{}", found.body);
    assert_eq!(found.body["result"]["patients"][0]["FName"], "Jordan");
    // crm is assigned on twilio only.
    let lead = json!({"function": "GetLeadsByStatus", "parameters": {"status": "new"}});
    let refused = post(addr, "/plugins/crm", Some(&key), &lead).await;
    assert_eq!(
        (refused.status, refused.body["error"]["code"].as_str()),
        (403, Some("plugin_not_assigned")),
        "{}",
        refused.body
    );
    let message = refused.body["error"]["message"].as_str().unwrap_or("");
    assert!(message.contains("'web' channel"), "{message}");
    // The unbound admin key still reaches crm.
    let unbound = post(addr, "/plugins/crm", Some(&admin_key), &lead).await;
    assert_eq!(unbound.status, 200, "{}", unbound.body);
    // Its agent is web's; twilio's is not its to read.
    let web = send(addr, "GET", "/agents/web", Some(&key), b"").await;
    assert_eq!(web.status, 200, "{}", web.body);
    let twilio = send(addr, "GET", "/agents/twilio", Some(&key), b"").await;
    assert_eq!(twilio.status, 403, "{}", twilio.body);
    task.abort();
    assert!(task.await.is_err_and(|e| e.is_cancelled()));
    std::fs::remove_dir_all(&dir).unwrap();
}
